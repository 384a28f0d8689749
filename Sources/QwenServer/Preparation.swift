import Dispatch
import Foundation

/// Runs the CPU work that turns a request into tokens — parsing the body, rendering the chat
/// template, tokenizing, compiling a JSON schema — on its own threads, `width` at a time, so that
/// it never holds an event-loop thread (which would stall `/health` and every other client) or
/// the batch runner's thread (which would stall every generation). Waiting requests queue here.
final class PreparationPool: Sendable {
    // OperationQueue is thread-safe; Foundation does not mark it Sendable on every platform.
    private nonisolated(unsafe) let queue: OperationQueue

    init(width: Int) {
        let queue = OperationQueue()
        queue.name = "qwenkit-prepare"
        queue.maxConcurrentOperationCount = max(width, 1)
        queue.qualityOfService = .userInitiated
        self.queue = queue
    }

    /// Runs `work` on the pool; its result or error comes back to the caller.
    func run<Value: Sendable>(_ work: @escaping @Sendable () throws -> Value) async throws -> Value {
        try await withCheckedThrowingContinuation { continuation in
            queue.addOperation { continuation.resume(with: Result(catching: work)) }
        }
    }
}

