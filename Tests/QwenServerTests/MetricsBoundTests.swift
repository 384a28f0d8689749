import Foundation
import Hummingbird
import HummingbirdTesting
@testable import QwenServer
import XCTest

/// `/metrics` is open without a key, so what a client sends must not grow it: the request counter
/// is labelled by route pattern (or `other`), never by the raw path.
final class MetricsBoundTests: XCTestCase {
    func testRandomPathsLeaveMetricsTheSameSize() async throws {
        let engine = try makeEngine()
        try await withRouter(engine, apiKey: "sk-test") { client in
            let key: HTTPFields = [.authorization: "Bearer sk-test"]
            var generator = SystemRandomNumberGenerator()
            func randomWord() -> String {
                String((0..<12).map { _ in "abcdefghijklmnopqrstuvwxyz0123456789".randomElement(using: &generator) ?? "x" })
            }
            /// One request of each kind the loop below sends, so every series exists before measuring.
            func kinds(_ word: String) -> [(String, HTTPFields)] {
                [("/\(word)", [:]), ("/v1/\(word)", key), ("/v1/models/\(word)", key), ("/v1/models/\(word)", [:]),
                 ("/\(word)/../metrics?\(word)=1", [:])]
            }
            for (path, headers) in kinds(randomWord()) { _ = try await client.send(.get, path, headers: headers) }
            _ = try await client.send(.get, "/metrics")  // counted after it renders
            let before = try await client.send(.get, "/metrics").text

            var statuses: [String: Int] = [:]
            var sent: [String] = []
            for i in 0..<10_000 {
                let word = randomWord()
                let (path, headers) = kinds(word)[i % 5]
                let reply = try await client.send(.get, path, headers: headers)
                if i % 5 == 0 { statuses["\(reply.status.code)", default: 0] += 1 }
                if i < 50 { sent.append(word) }
            }
            let after = try await client.send(.get, "/metrics").text

            // Only counters moved: each series' value gained at most four digits.
            XCTAssertLessThan(abs(after.utf8.count - before.utf8.count), 64, "before:\n\(before)\nafter:\n\(after)")
            XCTAssertEqual(after.split(separator: "\n").count, before.split(separator: "\n").count)
            for word in sent { XCTAssertFalse(after.contains(word), word) }
            // The unmatched top-level paths all count under `other`, by the status each reply had.
            XCTAssertEqual(statuses.count, 1)
            for (status, count) in statuses {
                let line = after.split(separator: "\n").first { $0.hasPrefix("qwenkit_requests_total{") && $0.contains(#"route="other""#)
                    && $0.contains(#"status="\#(status)""#) }
                XCTAssertNotNil(line, after)
                XCTAssertGreaterThanOrEqual(Int(line?.split(separator: " ").last ?? "") ?? 0, count)
            }
        }
    }
}
