import Foundation
import Hummingbird
import HummingbirdTesting
import QwenKit
@testable import QwenServer
import Synchronization
import XCTest
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// A bare TCP client for what HTTP clients will not do: stop half-way through the headers, or
/// vanish before the answer.
final class RawConnection {
    private var fd: Int32

    init(port: Int) throws {
        #if canImport(Glibc)
        fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        #else
        fd = socket(AF_INET, SOCK_STREAM, 0)
        #endif
        guard fd >= 0 else { throw ServerTestError.unexpected("socket failed") }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = in_port_t(UInt16(port).bigEndian)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        let connected = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        guard connected == 0 else { throw ServerTestError.unexpected("connect failed: \(errno)") }
    }

    deinit { close() }

    func send(_ text: String) throws {
        let bytes = Array(text.utf8)
        var sent = 0
        while sent < bytes.count {
            let n = bytes[sent...].withUnsafeBytes { write(fd, $0.baseAddress, $0.count) }
            guard n > 0 else { throw ServerTestError.unexpected("write failed: \(errno)") }
            sent += n
        }
    }

    /// Reads until the server closes the connection: what it sent, or nil if it is still open after `timeout`.
    func readUntilClosed(timeout: Duration) -> String? {
        let deadline = ContinuousClock.now + timeout
        var received: [UInt8] = []
        var buffer = [UInt8](repeating: 0, count: 4096)
        while ContinuousClock.now < deadline {
            let left = deadline - ContinuousClock.now
            var poller = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
            let ready = poll(&poller, 1, Int32(max(1, left.components.seconds * 1000 + left.components.attoseconds / 1_000_000_000_000_000)))
            guard ready > 0 else { continue }
            let n = buffer.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
            if n <= 0 { return String(decoding: received, as: UTF8.self) }
            received += buffer[..<n]
        }
        return nil
    }

    func close() {
        if fd >= 0 {
            _ = Glibc.close(fd)
            fd = -1
        }
    }
}

/// The value of a sample line in Prometheus text (`name value`).
func metric(_ name: String, in text: String) -> Double? {
    for line in text.split(separator: "\n") where line.hasPrefix(name + " ") {
        return Double(line.dropFirst(name.count + 1))
    }
    return nil
}

func schemaBody(_ schema: String, _ extra: String = #""max_tokens": 4"#) -> String {
    chatBody("Pick one", #""response_format": {"type": "json_schema", "json_schema": {"name": "x", "schema": \#(schema)}}, "# + extra)
}

/// One client cannot stall the others: client schemas are bounded and compiled off the generation
/// thread, a client that goes is forgotten at once, and a slow one is cut off.
final class ServerLimitsTests: XCTestCase {
    /// Runs `body` against the application on a real socket, with `configure` applied.
    func withLiveServer(_ engine: InferenceEngine, configure: (inout ServerConfiguration) -> Void = { _ in },
                        _ body: @escaping @Sendable (any TestClientProtocol, Int) async throws -> Void) async throws {
        var configuration = ServerConfiguration()
        configuration.port = 0
        configure(&configuration)
        let app = buildApplication(engine: engine, configuration: configuration)
        try await app.test(.live) { client in
            guard let port = client.port else { throw ServerTestError.unexpected("no port") }
            try await body(client, port)
        }
    }

    /// A 200,000-value enum (2.6 MB) is refused with 400 naming the limit, while another client's
    /// chat is answered in about the time it takes alone.
    func testHugeEnumDoesNotStallAnotherClient() async throws {
        let engine = try makeEngine(parallel: 2)
        let values = (0..<200_000).map { "\"value number \($0)\"" }.joined(separator: ",")
        let huge = schemaBody(#"{"enum": [\#(values)]}"#)
        let chat = chatBody("Hello there", #""max_tokens": 8, "temperature": 0"#)
        try await withRouter(engine) { client in
            let alone = ContinuousClock.now
            let first = try await client.post("/v1/chat/completions", chat)
            XCTAssertEqual(first.status, .ok, first.text)
            let aloneTime = ContinuousClock.now - alone

            async let refused = client.post("/v1/chat/completions", huge)
            try await Task.sleep(for: .milliseconds(50))
            let start = ContinuousClock.now
            let answered = try await client.post("/v1/chat/completions", chat)
            let together = ContinuousClock.now - start
            XCTAssertEqual(answered.status, .ok, answered.text)
            XCTAssertEqual(answered.json?["choices"]?[0]?["message"]?["content"], first.json?["choices"]?[0]?["message"]?["content"])
            XCTAssertLessThan(together, aloneTime * 3 + .seconds(2), "alone \(aloneTime), beside the huge schema \(together)")

            let error = assertErrorEnvelope(try await refused, status: .badRequest, param: "response_format")
            XCTAssertEqual(error?["code"], "json_schema_too_large")
            XCTAssertTrue(error?["message"]?.stringValue?.contains("max_enum_values") == true, "\(String(describing: error))")
        }
    }

    /// An enum at the limit (1,000 values) is accepted, and the answer is one of its values.
    func testEnumAtTheLimitConstrainsTheAnswer() async throws {
        let engine = try makeEngine()
        let values = (0..<1_000).map { "item-\($0)" }
        let schema = #"{"enum": [\#(values.map { "\"\($0)\"" }.joined(separator: ","))]}"#
        try await withRouter(engine) { client in
            let reply = try await client.post("/v1/chat/completions", schemaBody(schema, #""max_tokens": 40, "temperature": 0"#))
            XCTAssertEqual(reply.status, .ok, reply.text)
            let content = reply.json?["choices"]?[0]?["message"]?["content"]?.stringValue ?? ""
            let value = try JSONValue.parse(Array(content.utf8)).stringValue ?? ""
            XCTAssertTrue(values.contains(value), content)
        }
    }

    /// Schemas no value satisfies, and schemas past a limit, are the client's mistake: 400.
    func testUnsatisfiableAndOversizedSchemasAreRefused() async throws {
        let engine = try makeEngine()
        try await withRouter(engine) { client in
            for schema in [#"{"enum": []}"#, #"{"type": "integer", "minimum": 5, "maximum": 1}"#, #"{"not": {}}"#,
                           #"{"type": "object", "properties": {"a": {"type": "string"}}, "required": ["b"]}"#] {
                let reply = try await client.post("/v1/chat/completions", schemaBody(schema))
                let error = assertErrorEnvelope(reply, status: .badRequest, param: "response_format")
                XCTAssertEqual(error?["code"], "invalid_json_schema", schema)
            }
            let wide = "{\"anyOf\": [" + Array(repeating: #"{"type": "string"}"#, count: 10_000).joined(separator: ",") + "]}"
            let wideError = assertErrorEnvelope(try await client.post("/v1/chat/completions", schemaBody(wide)), status: .badRequest)
            XCTAssertTrue(wideError?["message"]?.stringValue?.contains("max_any_of") == true)

            var deep = #"{"type": "string"}"#
            for _ in 0..<160 { deep = #"{"type": "object", "properties": {"a": \#(deep)}, "required": ["a"]}"# }
            let tools = #"[{"type": "function", "function": {"name": "f", "parameters": \#(deep)}}]"#
            let forced = try await client.post("/v1/chat/completions",
                                               chatBody("Call f", #""tools": \#(tools), "tool_choice": "required", "max_tokens": 4"#))
            let deepError = assertErrorEnvelope(forced, status: .badRequest, param: "tools")
            XCTAssertTrue(deepError?["message"]?.stringValue?.contains("max_depth") == true, forced.text)
        }
    }

    /// A non-streaming client that disconnects mid-generation frees its slot within a second (the
    /// next request is answered), and `/metrics` counts it cancelled.
    func testDisconnectedClientFreesItsSlot() async throws {
        let engine = try makeEngine(context: 1024, parallel: 1)
        let request = chatBody("Write a long story", #""max_tokens": 900, "temperature": 0"#)
        try await withLiveServer(engine) { client, port in
            let quick = chatBody("Hi", #""max_tokens": 1"#)
            let alone = ContinuousClock.now
            _ = try await client.post("/v1/chat/completions", quick)
            let quickTime = ContinuousClock.now - alone

            let firstTokens = "qwenkit_time_to_first_token_seconds_count"
            let before = metric(firstTokens, in: try await client.send(.get, "/metrics").text) ?? 0
            let connection = try RawConnection(port: port)
            try connection.send("POST /v1/chat/completions HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\n"
                                + "Content-Length: \(request.utf8.count)\r\n\r\n" + request)
            // Wait until its generation has started.
            var started = false
            for _ in 0..<400 where !started {
                let metrics = try await client.send(.get, "/metrics").text
                started = (metric(firstTokens, in: metrics) ?? 0) > before
                if !started { try await Task.sleep(for: .milliseconds(10)) }
            }
            XCTAssertTrue(started, "the long request started")
            connection.close()
            let closed = ContinuousClock.now
            let next = try await client.post("/v1/chat/completions", quick)
            let waited = ContinuousClock.now - closed
            XCTAssertEqual(next.status, .ok, next.text)
            XCTAssertLessThan(waited, .seconds(1) + quickTime * 2, "the slot was freed")
            let metrics = try await client.send(.get, "/metrics").text
            XCTAssertEqual(metric("qwenkit_cancelled_generations_total", in: metrics), 1, metrics)
            XCTAssertLessThan(metric("qwenkit_generated_tokens_total", in: metrics) ?? 900, 900, "stopped before max_tokens")
        }
    }

    /// A client that disconnects while queued leaves the queue at once and counts as cancelled.
    func testDisconnectedQueuedClientLeavesTheQueue() async throws {
        let engine = try makeEngine(parallel: 1, maxQueue: 4)
        let tokens = try ServerFixtures.tinyModel.get().requireTokenizer().encode("Hold the slot")
        let started = CancellationFlag()
        let release = DispatchSemaphore(value: 0)
        var options = GenerationOptions()
        options.sampling = .greedy
        options.maxTokens = 3
        let holder = Task {
            try await engine.generate(prompt: tokens, options: options, cancellation: CancellationFlag()) { _ in
                if !started.isCancelled {
                    started.cancel()
                    release.wait()
                }
            }
        }
        while !started.isCancelled { try await Task.sleep(for: .milliseconds(5)) }
        let request = chatBody("Hi", #""max_tokens": 1"#)
        try await withLiveServer(engine) { client, port in
            let connection = try RawConnection(port: port)
            try connection.send("POST /v1/chat/completions HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\n"
                                + "Content-Length: \(request.utf8.count)\r\n\r\n" + request)
            var queued = false
            for _ in 0..<500 where !queued {
                queued = await engine.queueLength == 1
                if !queued { try await Task.sleep(for: .milliseconds(10)) }
            }
            XCTAssertTrue(queued, "the request waits for the slot")
            connection.close()
            let closed = ContinuousClock.now
            while await engine.queueLength > 0, ContinuousClock.now - closed < .seconds(5) {
                try await Task.sleep(for: .milliseconds(10))
            }
            XCTAssertLessThan(ContinuousClock.now - closed, .seconds(1), "left the queue")
            let metrics = try await client.send(.get, "/metrics").text
            XCTAssertEqual(metric("qwenkit_cancelled_generations_total", in: metrics), 1, metrics)
            XCTAssertEqual(metric("qwenkit_queue_length", in: metrics), 0, metrics)
            // Before the server stops: were the request still queued, it would be served now, not hang the test.
            release.signal()
        }
        _ = try await holder.value
    }

    /// A client that stops half-way through its headers is cut off at the header timeout; one
    /// that sends them whole is answered, and its idle connection closes at the idle timeout.
    func testSlowHeadersAreCutOffAtTheTimeout() async throws {
        let engine = try makeEngine()
        try await withLiveServer(engine, configure: {
            $0.timeouts.header = .milliseconds(500)
            $0.timeouts.idle = .milliseconds(500)
        }) { _, port in
            let slow = try RawConnection(port: port)
            let start = ContinuousClock.now
            try slow.send("GET /health HTTP/1.1\r\nHost: localhost\r\n")
            let reply = slow.readUntilClosed(timeout: .seconds(10))
            let elapsed = ContinuousClock.now - start
            XCTAssertEqual(reply, "", "closed without an answer")
            XCTAssertGreaterThanOrEqual(elapsed, .milliseconds(450))
            XCTAssertLessThan(elapsed, .seconds(5))

            let whole = try RawConnection(port: port)
            try whole.send("GET /health HTTP/1.1\r\nHost: localhost\r\n\r\n")
            let answer = whole.readUntilClosed(timeout: .seconds(10))
            XCTAssertTrue(answer?.hasPrefix("HTTP/1.1 200") == true, answer ?? "still open")
            XCTAssertTrue(answer?.contains(#"{"status": "ok"}"#) == true || answer?.contains(#""status""#) == true, answer ?? "")
        }
    }

    /// A client that announces a body and stops sending it is cut off at the body timeout.
    func testStalledBodyIsCutOffAtTheTimeout() async throws {
        let engine = try makeEngine()
        try await withLiveServer(engine, configure: {
            $0.timeouts.header = .seconds(30)
            $0.timeouts.body = .milliseconds(500)
        }) { _, port in
            let slow = try RawConnection(port: port)
            let start = ContinuousClock.now
            try slow.send("POST /v1/chat/completions HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\n"
                          + "Content-Length: 1000\r\n\r\n{\"messages\": [")
            let reply = slow.readUntilClosed(timeout: .seconds(10))
            let elapsed = ContinuousClock.now - start
            XCTAssertNotNil(reply, "still open after 10 s")
            XCTAssertFalse(reply?.hasPrefix("HTTP/1.1 200") == true, reply ?? "")
            XCTAssertGreaterThanOrEqual(elapsed, .milliseconds(450))
            XCTAssertLessThan(elapsed, .seconds(5))
        }
    }

    /// With `--max-connections 2`, a third client waits (its request is not read) until one of
    /// the two open connections closes; then it is answered. Through the binary: the in-process
    /// test server of HummingbirdTesting does not apply the application's connection limit.
    func testConnectionLimitHoldsNewClientsUntilOneCloses() async throws {
        let server = try ServeProcess(["--max-connections", "2", "--header-timeout", "30", "--idle-timeout", "0.3"])
        defer { server.stop() }
        let held = try (0 ..< 2).map { _ in try RawConnection(port: server.port) }
        for connection in held { try connection.send("GET /health HTTP/1.1\r\n") }
        try await Task.sleep(for: .milliseconds(300))
        let third = try RawConnection(port: server.port)   // the kernel completes the handshake; the server does not read
        try third.send("GET /health HTTP/1.1\r\nHost: localhost\r\n\r\n")
        XCTAssertNil(third.readUntilClosed(timeout: .seconds(1)), "answered past the connection limit")
        held[0].close()
        let answer = third.readUntilClosed(timeout: .seconds(10))
        XCTAssertTrue(answer?.hasPrefix("HTTP/1.1 200") == true, answer ?? "still waiting after a connection closed")
    }
}

/// `qwenkit serve` on the tiny fixture model and a port the system picks, run as a process.
final class ServeProcess {
    let process = Process()
    let port: Int

    init(_ arguments: [String]) throws {
        let binary = URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent().appendingPathComponent("qwenkit")
        process.executableURL = binary
        process.arguments = ["serve", "-m", ServerFixtures.tinyModelPath, "--port", "0", "--threads", "1"] + arguments
        let err = Pipe()
        process.standardError = err
        process.standardOutput = FileHandle.nullDevice
        try process.run()
        // The server logs the address it listens on ("… listening on 127.0.0.1:PORT").
        var log = ""
        let deadline = Date().addingTimeInterval(60)
        while Date() < deadline {
            let chunk = err.fileHandleForReading.availableData
            if chunk.isEmpty { break }
            log += String(decoding: chunk, as: UTF8.self)
            if let range = log.range(of: #"listening on [0-9.]+:([0-9]+)"#, options: .regularExpression),
               let port = Int(log[range].split(separator: ":").last ?? "") {
                self.port = port
                return
            }
        }
        process.terminate()
        throw ServerTestError.unexpected("qwenkit serve did not start: \(log)")
    }

    func stop() {
        if process.isRunning { process.terminate() }
        process.waitUntilExit()
    }
}
