import ArgumentParser
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import Foundation
import QwenKernels
import QwenKit

/// `qwenkit bench`, modelled on llama-bench: prompt processing of `-p` tokens as one batch from
/// an empty cache, and `-n` single-token generation steps, each timed `-r` times after one
/// untimed warm-up run. Timings are of `InferenceState.forward` alone (no tokenization, no sampling).
struct Bench: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Measure prompt processing (pp) and generation (tg) speed, like llama-bench.")

    @OptionGroup var modelOptions: ModelOptions
    @Option(name: [.customShort("p"), .customLong("prompt")], help: "Prompt tokens, processed as one batch (0: skip).")
    var promptTokens = 512
    @Option(name: [.customShort("n"), .customLong("generate")], help: "Generated tokens, one step each (0: skip).")
    var generatedTokens = 128
    @Option(name: [.customShort("r"), .customLong("repetitions")], help: "Timed repetitions of each test.")
    var repetitions = 5
    @Flag(help: "Print one JSON object.") var json = false

    func validate() throws {
        guard promptTokens >= 0, generatedTokens >= 0 else { throw ValidationError("token counts must not be negative") }
        guard promptTokens + generatedTokens > 0 else { throw ValidationError("nothing to measure") }
        guard repetitions >= 1 else { throw ValidationError("--repetitions must be at least 1") }
    }

    func run() throws {
        let options = modelOptions
        let clock = ContinuousClock()
        let loadStart = clock.now
        let model = try options.load()
        let loadMilliseconds = loadStart.duration(to: clock.now).inMilliseconds
        let threadCount = options.threadCount
        let config = model.transformer.config
        let context = max(promptTokens, generatedTokens)
        guard context <= config.trainedContextLength else {
            throw CLIError("-p and -n must fit the model's context (\(config.trainedContextLength))")
        }
        let state = InferenceState(model: model.transformer, contextLength: context, threads: threadCount)
        var generator = SystemRandomNumberGenerator()
        func randomTokens(_ n: Int) -> [Int] { (0..<n).map { _ in Int.random(in: 0..<config.vocabularySize, using: &generator) } }

        /// Tokens per second of each timed repetition (the first, warm-up run is dropped).
        func measure(tokens: Int, _ body: ([Int]) -> Void) -> [Double] {
            var rates: [Double] = []
            for repetition in 0...repetitions {
                let ids = randomTokens(tokens)
                state.truncate(to: 0)
                let start = clock.now
                body(ids)
                let seconds = start.duration(to: clock.now).inMilliseconds / 1000
                if repetition > 0 { rates.append(Double(tokens) / seconds) }
            }
            return rates
        }
        var results: [(name: String, tokens: Int, rates: [Double])] = []
        if promptTokens > 0 {
            results.append(("pp", promptTokens, measure(tokens: promptTokens) { _ = state.forward($0) }))
        }
        if generatedTokens > 0 {
            results.append(("tg", generatedTokens, measure(tokens: generatedTokens) { ids in
                for id in ids { _ = state.forward([id]) }
            }))
        }
        let peak = peakResidentBytes()

        func meanSD(_ v: [Double]) -> (Double, Double) {
            let mean = v.reduce(0, +) / Double(v.count)
            guard v.count > 1 else { return (mean, 0) }
            let variance = v.map { ($0 - mean) * ($0 - mean) }.reduce(0, +) / Double(v.count - 1)
            return (mean, variance.squareRoot())
        }
        if json {
            var object: [String: Any] = ["threads": threadCount, "load_ms": loadMilliseconds, "peak_rss_bytes": peak,
                                         "model": model.path, "repetitions": repetitions,
                                         "kernels": InstructionSet.active.description]
            for r in results {
                let (mean, sd) = meanSD(r.rates)
                object[r.name] = ["tokens": r.tokens, "tokens_per_second": mean, "sd": sd, "samples": r.rates]
            }
            write(try jsonString(object) + "\n")
        } else {
            write("model: \(model.path)\nkernels: \(InstructionSet.active) (CPU supports \(InstructionSet.supported))\nthreads: \(threadCount)  load: \(String(format: "%.0f", loadMilliseconds)) ms  peak RSS: \(peak / 1_000_000) MB\n")
            for r in results {
                let (mean, sd) = meanSD(r.rates)
                write(String(format: "%@%d: %8.2f ± %.2f tokens/s\n", r.name, r.tokens, mean, sd))
            }
        }
    }
}

/// The process's peak resident set size in bytes (VmHWM; ru_maxrss as a fallback).
func peakResidentBytes() -> Int {
    if let status = try? String(contentsOfFile: "/proc/self/status", encoding: .utf8) {
        for line in status.split(separator: "\n") where line.hasPrefix("VmHWM:") {
            let fields = line.split(separator: " ", omittingEmptySubsequences: true)
            if fields.count >= 2, let kb = Int(fields[1]) { return kb * 1024 }
        }
    }
    var usage = rusage()
    #if canImport(Darwin)
    getrusage(RUSAGE_SELF, &usage)
    return usage.ru_maxrss   // bytes on Darwin
    #else
    getrusage(RUSAGE_SELF.rawValue, &usage)
    return usage.ru_maxrss * 1024   // kilobytes on Linux
    #endif
}
