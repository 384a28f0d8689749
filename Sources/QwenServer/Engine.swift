import Dispatch
import Foundation
import QwenKit
import QwenTokenizer
import Synchronization

/// Set when the client that asked for a generation has gone; the generation stops at its next
/// token, and a request still waiting for a slot leaves the queue (through ``onCancel(_:)``).
final class CancellationFlag: Sendable {
    private let flag = Atomic<Bool>(false)
    private let handlers = Mutex<[@Sendable () -> Void]>([])

    var isCancelled: Bool { flag.load(ordering: .relaxed) }

    func cancel() {
        guard !flag.exchange(true, ordering: .acquiringAndReleasing) else { return }
        for handler in handlers.withLock({ handlers in defer { handlers.removeAll() }; return handlers }) { handler() }
    }

    /// Runs `handler` once when the flag is set: at once if it is set already.
    func onCancel(_ handler: @escaping @Sendable () -> Void) {
        let runNow = handlers.withLock { handlers in
            if isCancelled { return true }
            handlers.append(handler)
            return false
        }
        if runNow { handler() }
    }
}


/// Runs the server's generations: `parallel` slots, each a ``Generator`` with its own KV cache.
/// A request takes the free slot whose cache shares the longest prefix with its prompt, so a
/// conversation that continues reuses its cached tokens; when every slot is busy it waits in a
/// bounded queue, and past the bound it is refused with 503.
public final class InferenceEngine: Sendable {
    public let model: LanguageModel
    /// The model's tokenizer: a server works on text, so a model without one cannot be served.
    public let tokenizer: Tokenizer
    /// The name clients use for the model (`GET /v1/models`).
    public let modelID: String
    public let contextLength: Int
    let metrics: ServerMetrics
    private let pool: SlotPool
    private let runner: BatchRunner

    public init(model: LanguageModel, modelID: String, contextLength: Int, parallel: Int, threads: Int,
                maxQueue: Int = 64) throws {
        self.model = model
        tokenizer = try model.requireTokenizer()
        self.modelID = modelID
        self.contextLength = contextLength
        metrics = ServerMetrics()
        // Every slot steps in the same batched forward pass, which uses all the threads.
        pool = SlotPool(slots: (0..<max(parallel, 1)).map { _ in
            Slot(generator: Generator(model: model, contextLength: contextLength, threads: threads))
        }, maxQueue: maxQueue, metrics: metrics)
        runner = BatchRunner()
    }

    /// Takes a slot for one request, waiting in the bounded queue when every slot is busy and
    /// throwing 503 past the bound. Streaming handlers call this before they answer, so that a
    /// full queue is an HTTP status and not an error inside a `200` event stream.
    /// A set `cancellation` takes the request out of the queue (``APIError/clientClosed``).
    func reserve(prompt: [Int], cancellation: CancellationFlag) async throws -> SlotLease {
        SlotLease(slot: try await pool.acquire(prompt: prompt, cancellation: cancellation), pool: pool)
    }

    /// Reserves a slot and generates on it; see ``generate(on:prompt:options:cancellation:onText:)``.
    func generate(prompt: [Int], options: GenerationOptions, cancellation: CancellationFlag,
                  onText: @escaping @Sendable (String) -> Void) async throws -> GenerationResult {
        let lease = try await reserve(prompt: prompt, cancellation: cancellation)
        return try await generate(on: lease, prompt: prompt, options: options, cancellation: cancellation, onText: onText)
    }

    /// Generates on a reserved slot and gives the slot back at the end; `onText` receives each
    /// piece as it is produced. The generation joins the batch runner, which steps every active
    /// generation in one forward pass. A set `cancellation` stops it at its next token.
    /// `onLogprobs`, when given, receives the log-probabilities of the tokens behind each piece just before it.
    func generate(on lease: SlotLease, prompt: [Int], options: GenerationOptions, cancellation: CancellationFlag,
                  onLogprobs: (@Sendable ([TokenLogprob]) -> Void)? = nil,
                  onText: @escaping @Sendable (String) -> Void) async throws -> GenerationResult {
        let metrics = self.metrics
        do {
            let result = try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<GenerationResult, Error>) in
                runner.submit(BatchRunner.Job(slot: lease.slot, prompt: prompt, options: options, cancellation: cancellation,
                                              onText: onText, onLogprobs: onLogprobs, metrics: metrics,
                                              continuation: continuation))
            }
            await lease.release()
            metrics.recordGeneration(result, cancelled: cancellation.isCancelled)
            return result
        } catch {
            await lease.release()
            throw error
        }
    }

    var queueLength: Int {
        get async { await pool.waiting }
    }
}

/// A slot reserved for one request; released once (further calls do nothing).
final class SlotLease: Sendable {
    let slot: Slot
    private let pool: SlotPool
    private let released = Atomic<Bool>(false)

    fileprivate init(slot: Slot, pool: SlotPool) {
        self.slot = slot
        self.pool = pool
    }

    func release() async {
        guard !released.exchange(true, ordering: .acquiringAndReleasing) else { return }
        await pool.release(slot)
    }
}

/// One sequence's KV cache and generator; used by one request at a time.
final class Slot: @unchecked Sendable {
    let generator: Generator
    init(generator: Generator) { self.generator = generator }
}

actor SlotPool {
    private var free: [Slot]
    private var waiters: [(id: Int, prompt: [Int], continuation: CheckedContinuation<Slot, Error>)] = []
    private var nextWaiter = 0
    private let maxQueue: Int
    private let metrics: ServerMetrics

    init(slots: [Slot], maxQueue: Int, metrics: ServerMetrics) {
        free = slots
        self.maxQueue = maxQueue
        self.metrics = metrics
    }

    var waiting: Int { waiters.count }

    func acquire(prompt: [Int], cancellation: CancellationFlag) async throws -> Slot {
        guard !cancellation.isCancelled else {
            metrics.recordCancelledWhileQueued()
            throw APIError.clientClosed
        }
        if !free.isEmpty {
            // The slot whose cached tokens share the longest prefix with this prompt.
            let best = free.indices.max { a, b in
                commonPrefix(free[a].generator.cachedTokens, prompt) < commonPrefix(free[b].generator.cachedTokens, prompt)
            } ?? 0
            return free.remove(at: best)
        }
        guard waiters.count < maxQueue else {
            throw APIError(.serviceUnavailable, "The server is busy: \(waiters.count) requests are already waiting. Retry later.",
                           type: "server_error", code: "server_busy")
        }
        metrics.setQueueLength(waiters.count + 1)
        let id = nextWaiter
        nextWaiter += 1
        return try await withCheckedThrowingContinuation { continuation in
            waiters.append((id, prompt, continuation))
            cancellation.onCancel { Task { await self.abandon(id) } }
        }
    }

    /// Takes a waiter whose client went away out of the queue; nothing if it has its slot already.
    private func abandon(_ id: Int) {
        guard let index = waiters.firstIndex(where: { $0.id == id }) else { return }
        let waiter = waiters.remove(at: index)
        metrics.setQueueLength(waiters.count)
        metrics.recordCancelledWhileQueued()
        waiter.continuation.resume(throwing: APIError.clientClosed)
    }

    func release(_ slot: Slot) {
        if waiters.isEmpty {
            free.append(slot)
        } else {
            let next = waiters.removeFirst()
            metrics.setQueueLength(waiters.count)
            next.continuation.resume(returning: slot)
        }
    }

    private func commonPrefix(_ a: [Int], _ b: [Int]) -> Int {
        zip(a, b).prefix { $0 == $1 }.count
    }
}

/// Continuous batching: one thread runs every active generation, admitting new ones between
/// steps (their prompts are processed alone) and advancing all the others by one token in a
/// single forward pass, so the weights are read once per step for all of them.
final class BatchRunner: @unchecked Sendable {
    struct Job: @unchecked Sendable {
        let slot: Slot
        let prompt: [Int]
        let options: GenerationOptions
        let cancellation: CancellationFlag
        let onText: @Sendable (String) -> Void
        let onLogprobs: (@Sendable ([TokenLogprob]) -> Void)?
        let metrics: ServerMetrics
        let continuation: CheckedContinuation<GenerationResult, Error>
        let submitted = ContinuousClock.now
    }

    private final class Running {
        let job: Job
        let session: GenerationSession
        var sentText = false
        var sentLogprobs = 0
        init(job: Job, session: GenerationSession) {
            self.job = job
            self.session = session
        }
    }

    private let condition = NSCondition()
    private var incoming: [Job] = []
    // Touched only by the runner thread.
    private var running: [Running] = []

    init() {
        // The thread keeps the runner alive; once idle it parks on the condition and costs nothing.
        let thread = Thread { self.loop() }
        thread.name = "qwenkit-batch"
        thread.start()
    }

    func submit(_ job: Job) {
        condition.lock()
        incoming.append(job)
        condition.signal()
        condition.unlock()
    }

    private func loop() {
        while true {
            condition.lock()
            while incoming.isEmpty && running.isEmpty { condition.wait() }
            let admitted = incoming
            incoming.removeAll()
            condition.unlock()

            for job in admitted {
                do {
                    running.append(Running(job: job, session: try job.slot.generator.start(prompt: job.prompt, options: job.options)))
                } catch {
                    job.continuation.resume(throwing: error)
                }
            }
            step()
        }
    }

    /// Picks each generation's next token, then runs all of those tokens through the model at once.
    private func step() {
        var states: [InferenceState] = [], tokens: [Int] = [], stepping: [Running] = []
        var finished: [Running] = []
        for item in running {
            let job = item.job
            if job.cancellation.isCancelled { item.session.stop() }
            let token = item.session.next { piece in
                if !item.sentText {
                    item.sentText = true
                    job.metrics.recordFirstToken(after: ContinuousClock.now - job.submitted)
                }
                guard !job.cancellation.isCancelled else { return false }
                if let onLogprobs = job.onLogprobs {
                    let all = item.session.tokenLogprobs
                    onLogprobs(Array(all[item.sentLogprobs...]))
                    item.sentLogprobs = all.count
                }
                job.onText(piece)
                return !job.cancellation.isCancelled
            }
            if let token {
                states.append(item.session.generator.state)
                tokens.append(token)
                stepping.append(item)
            } else {
                finished.append(item)
            }
        }
        running = stepping
        for item in finished { item.job.continuation.resume(returning: item.session.result()) }
        guard !states.isEmpty else { return }
        let logits = states.count == 1 ? [states[0].forward([tokens[0]])] : InferenceState.forward(batch: states, tokens: tokens)
        for (item, row) in zip(stepping, logits) { item.session.receive(row) }
    }
}
