import Hummingbird
import HummingbirdCore
import NIOCore
import NIOHTTPTypes
import Synchronization

/// How long the server waits on a client, like nginx's `client_header_timeout`,
/// `client_body_timeout` and `keepalive_timeout`. A connection that runs past one is closed.
public struct ConnectionTimeouts: Sendable, Equatable {
    /// From the connection's start until the first request's headers are complete.
    public var header: Duration = .seconds(60)
    /// Between two reads of a request body.
    public var body: Duration = .seconds(60)
    /// From the end of a response until the next request's headers are complete.
    public var idle: Duration = .seconds(75)

    public init() {}
}

/// What the server knows about one connection, shared between its channel handler and the
/// requests it carries: whether the client has gone (closed, or shut its side), and the
/// requests to cancel when it does.
final class ConnectionMonitor: Sendable {
    private let state = Mutex<(closed: Bool, watched: [ObjectIdentifier: CancellationFlag])>((false, [:]))

    /// Cancels `flag` when the client goes (at once if it has); until ``unwatch(_:)``.
    func watch(_ flag: CancellationFlag) {
        let closed = state.withLock { state in
            if !state.closed { state.watched[ObjectIdentifier(flag)] = flag }
            return state.closed
        }
        if closed { flag.cancel() }
    }

    func unwatch(_ flag: CancellationFlag) {
        _ = state.withLock { $0.watched.removeValue(forKey: ObjectIdentifier(flag)) }
    }

    func clientClosed() {
        let flags = state.withLock { state in
            state.closed = true
            defer { state.watched.removeAll() }
            return Array(state.watched.values)
        }
        for flag in flags { flag.cancel() }
    }

    /// The monitors of open connections, by channel: a request finds its connection's here.
    private static let open = Mutex<[ObjectIdentifier: ConnectionMonitor]>([:])

    static func of(_ channel: any Channel) -> ConnectionMonitor? {
        open.withLock { $0[ObjectIdentifier(channel)] }
    }

    fileprivate static func register(_ monitor: ConnectionMonitor, for channel: any Channel) {
        open.withLock { $0[ObjectIdentifier(channel)] = monitor }
    }

    fileprivate static func unregister(_ channel: any Channel) {
        _ = open.withLock { $0.removeValue(forKey: ObjectIdentifier(channel)) }
    }
}

/// Sits after HTTP decoding on every connection: enforces ``ConnectionTimeouts`` and tells the
/// connection's ``ConnectionMonitor`` when the client goes. No timer runs while a request is
/// being answered (a generation may take minutes); that is what the monitor is for.
final class ConnectionGuard: ChannelDuplexHandler, RemovableChannelHandler {
    typealias InboundIn = HTTPRequestPart
    typealias InboundOut = HTTPRequestPart
    typealias OutboundIn = HTTPResponsePart
    typealias OutboundOut = HTTPResponsePart

    private let timeouts: ConnectionTimeouts
    private let monitor = ConnectionMonitor()
    private var timer: Scheduled<Void>?
    /// Between a request's head and its end.
    private var readingRequest = false
    /// Requests received whose response has not ended yet.
    private var unanswered = 0
    private var answeredAny = false

    init(timeouts: ConnectionTimeouts) {
        self.timeouts = timeouts
    }

    func handlerAdded(context: ChannelHandlerContext) {
        ConnectionMonitor.register(monitor, for: context.channel)
        if context.channel.isActive { rearm(context) }
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        timer?.cancel()
        timer = nil
        ConnectionMonitor.unregister(context.channel)
    }

    func channelActive(context: ChannelHandlerContext) {
        rearm(context)
        context.fireChannelActive()
    }

    func channelInactive(context: ChannelHandlerContext) {
        timer?.cancel()
        timer = nil
        monitor.clientClosed()
        ConnectionMonitor.unregister(context.channel)
        context.fireChannelInactive()
    }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if case ChannelEvent.inputClosed? = event as? ChannelEvent { monitor.clientClosed() }
        context.fireUserInboundEventTriggered(event)
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        switch unwrapInboundIn(data) {
        case .head:
            readingRequest = true
            unanswered += 1
        case .body: break
        case .end: readingRequest = false
        }
        rearm(context)
        context.fireChannelRead(data)
    }

    func write(context: ChannelHandlerContext, data: NIOAny, promise: EventLoopPromise<Void>?) {
        if case .end = unwrapOutboundIn(data) {
            unanswered = max(unanswered - 1, 0)
            answeredAny = true
            rearm(context)
        }
        context.write(data, promise: promise)
    }

    /// Starts the timer that applies now: body while a request is read, none while one is
    /// answered, header (first request) or idle (later ones) while the connection waits.
    private func rearm(_ context: ChannelHandlerContext) {
        timer?.cancel()
        timer = nil
        let limit: Duration
        if readingRequest {
            limit = timeouts.body
        } else if unanswered > 0 {
            return
        } else {
            limit = answeredAny ? timeouts.idle : timeouts.header
        }
        let nanoseconds = limit.components.seconds * 1_000_000_000 + limit.components.attoseconds / 1_000_000_000
        timer = context.eventLoop.assumeIsolated().scheduleTask(in: .nanoseconds(nanoseconds)) {
            context.close(promise: nil)
        }
    }
}

/// The request context of the server's routes: Hummingbird's basic context, plus the
/// connection's monitor (nil where there is no connection, as in the in-memory router tests).
public struct ServerRequestContext: RequestContext {
    public var coreContext: CoreRequestContextStorage
    let connection: ConnectionMonitor?

    public init(source: ApplicationRequestContextSource) {
        coreContext = .init(source: source)
        connection = ConnectionMonitor.of(source.channel)
    }
}
