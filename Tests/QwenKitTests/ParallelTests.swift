import Dispatch
import Synchronization
import XCTest
@testable import QwenKit

/// The worker pool behind `parallel`: every iteration runs exactly once per job, whatever the
/// thread count, however many jobs follow each other, and with several callers at once (all but
/// one of them fall back to Dispatch).
final class ParallelTests: XCTestCase {
    final class Counts: Sendable {
        private let values: Mutex<[Int]>
        init(_ n: Int) { values = Mutex(Array(repeating: 0, count: n)) }
        func bump(_ i: Int) { values.withLock { $0[i] += 1 } }
        var all: [Int] { values.withLock { $0 } }
    }

    func testEveryIterationRunsOncePerJob() {
        for threads in [2, 3, 4, 2, 1, 4] {
            let counts = Counts(threads)
            for _ in 0..<2_000 {
                parallel(threads) { worker in counts.bump(worker) }
            }
            XCTAssertEqual(counts.all, Array(repeating: 2_000, count: threads), "\(threads) threads")
        }
    }

    func testConcurrentCallers() {
        let counts = Counts(8)
        DispatchQueue.concurrentPerform(iterations: 4) { caller in
            for _ in 0..<500 {
                parallel(2) { worker in counts.bump(2 * caller + worker) }
            }
        }
        XCTAssertEqual(counts.all, Array(repeating: 500, count: 8))
    }
}
