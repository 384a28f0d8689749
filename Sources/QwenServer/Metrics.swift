import QwenKit
import Synchronization

/// Counters for `GET /metrics`, in Prometheus' text exposition format.
final class ServerMetrics: Sendable {
    private struct Values {
        var requests: [String: Int] = [:]
        var promptTokens = 0
        var generatedTokens = 0
        var cancelled = 0
        var firstTokenSecondsSum = 0.0
        var firstTokenCount = 0
        var generationSeconds = 0.0
        var queueLength = 0
    }

    private let values = Mutex(Values())

    func recordRequest(_ route: String, status: Int) {
        values.withLock { $0.requests["\(route)|\(status)", default: 0] += 1 }
    }

    func recordFirstToken(after duration: Duration) {
        let seconds = Double(duration.components.seconds) + Double(duration.components.attoseconds) / 1e18
        values.withLock {
            $0.firstTokenSecondsSum += seconds
            $0.firstTokenCount += 1
        }
    }

    func recordGeneration(_ result: GenerationResult, cancelled: Bool) {
        values.withLock {
            $0.promptTokens += result.timings.promptTokens
            $0.generatedTokens += result.tokens.count
            $0.generationSeconds += result.timings.generationMilliseconds / 1000
            if cancelled { $0.cancelled += 1 }
        }
    }

    func setQueueLength(_ n: Int) {
        values.withLock { $0.queueLength = n }
    }

    /// Prometheus text format.
    func render() -> String {
        let v = values.withLock { $0 }
        var out = "# HELP qwenkit_requests_total HTTP requests by route and status.\n# TYPE qwenkit_requests_total counter\n"
        for (key, count) in v.requests.sorted(by: { $0.key < $1.key }) {
            let parts = key.split(separator: "|")
            out += "qwenkit_requests_total{route=\"\(parts[0])\",status=\"\(parts.count > 1 ? parts[1] : "")\"} \(count)\n"
        }
        out += "# HELP qwenkit_prompt_tokens_total Prompt tokens processed.\n# TYPE qwenkit_prompt_tokens_total counter\n"
        out += "qwenkit_prompt_tokens_total \(v.promptTokens)\n"
        out += "# HELP qwenkit_generated_tokens_total Tokens generated.\n# TYPE qwenkit_generated_tokens_total counter\n"
        out += "qwenkit_generated_tokens_total \(v.generatedTokens)\n"
        out += "# HELP qwenkit_cancelled_generations_total Generations stopped because the client went away.\n# TYPE qwenkit_cancelled_generations_total counter\n"
        out += "qwenkit_cancelled_generations_total \(v.cancelled)\n"
        out += "# HELP qwenkit_generation_tokens_per_second Tokens generated per second of generation time.\n# TYPE qwenkit_generation_tokens_per_second gauge\n"
        out += "qwenkit_generation_tokens_per_second \(v.generationSeconds > 0 ? Double(v.generatedTokens) / v.generationSeconds : 0)\n"
        out += "# HELP qwenkit_time_to_first_token_seconds Time from a request's start to its first token.\n# TYPE qwenkit_time_to_first_token_seconds summary\n"
        out += "qwenkit_time_to_first_token_seconds_sum \(v.firstTokenSecondsSum)\n"
        out += "qwenkit_time_to_first_token_seconds_count \(v.firstTokenCount)\n"
        out += "# HELP qwenkit_queue_length Requests waiting for a free slot.\n# TYPE qwenkit_queue_length gauge\n"
        out += "qwenkit_queue_length \(v.queueLength)\n"
        return out
    }
}
