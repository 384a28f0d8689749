import Prometheus
import QwenKit

/// The server's metrics for `GET /metrics`, kept in a swift-prometheus registry and rendered in
/// Prometheus' text exposition format.
final class ServerMetrics: Sendable {
    private let registry = PrometheusCollectorRegistry()
    private let promptTokens: Counter
    private let generatedTokens: Counter
    private let cancelled: Counter
    private let tokensPerSecond: Gauge
    private let queueLength: Gauge
    private let timeToFirstToken: DurationHistogram

    init() {
        promptTokens = registry.makeCounter(name: "qwenkit_prompt_tokens_total", help: "Prompt tokens processed.")
        generatedTokens = registry.makeCounter(name: "qwenkit_generated_tokens_total", help: "Tokens generated.")
        cancelled = registry.makeCounter(name: "qwenkit_cancelled_generations_total",
                                         help: "Requests stopped (queued or generating) because the client went away.")
        tokensPerSecond = registry.makeGauge(name: "qwenkit_generation_tokens_per_second",
                                             help: "Tokens per second of the last finished generation.")
        queueLength = registry.makeGauge(name: "qwenkit_queue_length", help: "Requests waiting for a free slot.")
        timeToFirstToken = registry.makeDurationHistogram(
            name: "qwenkit_time_to_first_token_seconds",
            buckets: [.milliseconds(50), .milliseconds(100), .milliseconds(250), .milliseconds(500), .seconds(1),
                      .seconds(2), .seconds(5), .seconds(10), .seconds(30), .seconds(60)],
            help: "Time from a request's start to its first token.")
        queueLength.set(0.0)
    }

    func recordRequest(_ route: String, status: Int) {
        registry.makeCounter(name: "qwenkit_requests_total", labels: [("route", route), ("status", String(status))],
                             help: "HTTP requests by route and status.").increment()
    }

    func recordFirstToken(after duration: Duration) {
        timeToFirstToken.record(duration)
    }

    func recordGeneration(_ result: GenerationResult, cancelled wasCancelled: Bool) {
        promptTokens.increment(by: Int64(result.timings.promptTokens))
        generatedTokens.increment(by: Int64(result.tokens.count))
        if result.timings.generationMilliseconds > 0 {
            tokensPerSecond.set(result.timings.generationTokensPerSecond)
        }
        if wasCancelled { cancelled.increment() }
    }

    /// A request whose client went away while it waited for a slot.
    func recordCancelledWhileQueued() {
        cancelled.increment()
    }

    func setQueueLength(_ n: Int) {
        queueLength.set(Double(n))
    }

    /// Prometheus text format.
    func render() -> String {
        registry.emitToString()
    }
}
