import CQwenKernels
import Dispatch
import Foundation
import Synchronization

/// Runs `body(worker)` for `worker` in `0..<threads`, on the calling thread when `threads` is 1.
/// Work is split statically by the caller, so each worker can own a slice of scratch memory.
@inline(__always)
func parallel(_ threads: Int, _ body: @escaping @Sendable (Int) -> Void) {
    if threads <= 1 {
        body(0)
    } else {
        WorkerPool.shared.run(threads, body)
    }
}

/// Persistent workers for ``parallel``: between jobs each spins for a few microseconds, then
/// parks. A one-token forward pass hands out ~170 jobs of a few hundred microseconds each; with
/// Dispatch, which parks its workers at once, waking them cost ~16% of a 2-thread decode profile
/// (the kernel's scheduler and wake-up paths). Spinning only briefly keeps the pool harmless on a
/// busy machine, where thread pools that spin until the next job collapse (PERF-NOTES). As with
/// Dispatch, the caller and the helpers claim the `threads` iterations from a shared counter, so a
/// helper that the scheduler has not run yet never holds the caller up: the caller does its share.
/// One job at a time: a caller that finds the pool busy uses Dispatch instead.
final class WorkerPool: @unchecked Sendable {
    static let shared = WorkerPool()

    /// Pause instructions a waiting worker spins through before it parks (~50 µs).
    private static let spinLimit = 4096

    private let busy = Atomic<Bool>(false)
    /// Bumped once per job; workers wait for it to change.
    private let generation = Atomic<Int>(0)
    /// The next iteration of the current job to hand out (`idle` between jobs, so that a late
    /// helper's claim never lands on a job being set up), and how many are finished.
    private static let idle = Int.max / 2
    private let next = Atomic<Int>(WorkerPool.idle)
    private let completed = Atomic<Int>(0)
    /// Helpers waiting on `condition` (instead of spinning).
    private let sleepers = Atomic<Int>(0)
    private let condition = NSCondition()
    /// The current job; written by the caller before `generation` is bumped, read by helpers after.
    private var job: (@Sendable (Int) -> Void)?
    /// Iterations of the current job (atomic: a late helper may read it while the next job is set up).
    private let jobThreads = Atomic<Int>(0)
    /// Helper threads started so far (worker indices 1...helpers). Only the caller holding `busy` touches it.
    private var helpers = 0

    /// Escaping, because a helper may still hold the closure for a moment after its last iteration.
    func run(_ threads: Int, _ body: @escaping @Sendable (Int) -> Void) {
        guard busy.compareExchange(expected: false, desired: true, ordering: .acquiring).exchanged else {
            DispatchQueue.concurrentPerform(iterations: threads, execute: body)
            return
        }
        defer { busy.store(false, ordering: .releasing) }
        while helpers < threads - 1 {
            helpers += 1
            // The helper waits for the generation after this one, even if it starts late.
            let index = helpers, seen = generation.load(ordering: .sequentiallyConsistent)
            let thread = Thread { [unowned self] in self.helperLoop(index, seen: seen) }
            thread.name = "qwenkit-worker-\(index)"
            thread.start()
        }
        do {
            job = body
            jobThreads.store(threads, ordering: .relaxed)
            completed.store(0, ordering: .sequentiallyConsistent)
            next.store(0, ordering: .sequentiallyConsistent)
            generation.add(1, ordering: .sequentiallyConsistent)
            if sleepers.load(ordering: .sequentiallyConsistent) > 0 {
                condition.lock()
                condition.broadcast()
                condition.unlock()
            }
            work()
            // Wait for iterations a helper claimed; yield the core now and then in case it needs it.
            var spins = 0
            while completed.load(ordering: .acquiring) < threads {
                spins += 1
                if spins % 256 == 0 { sched_yield() } else { qk_spin_pause() }
            }
            next.store(Self.idle, ordering: .sequentiallyConsistent)
            job = nil
        }
    }

    private func helperLoop(_ index: Int, seen start: Int) {
        var seen = start
        while true {
            var spins = 0
            var current = generation.load(ordering: .acquiring)
            while current == seen {
                if spins < Self.spinLimit {
                    spins += 1
                    qk_spin_pause()
                } else {
                    condition.lock()
                    sleepers.add(1, ordering: .sequentiallyConsistent)
                    while generation.load(ordering: .sequentiallyConsistent) == seen { condition.wait() }
                    sleepers.subtract(1, ordering: .sequentiallyConsistent)
                    condition.unlock()
                }
                current = generation.load(ordering: .acquiring)
            }
            seen = current
            work()
        }
    }

    /// Runs unclaimed iterations of the current job until none is left.
    private func work() {
        while true {
            let i = next.wrappingAdd(1, ordering: .acquiringAndReleasing).oldValue
            guard i < jobThreads.load(ordering: .relaxed), let job else { return }
            job(i)
            completed.add(1, ordering: .releasing)
        }
    }
}

/// The half-open range of `0..<count` that worker `worker` of `workers` handles, in whole multiples of `granule`.
@inline(__always)
func slice(_ count: Int, worker: Int, of workers: Int, granule: Int = 1) -> Range<Int> {
    let units = (count + granule - 1) / granule
    let start = units * worker / workers * granule
    let end = min(count, units * (worker + 1) / workers * granule)
    return start..<max(start, end)
}

/// A raw pointer that may cross into worker closures. The workers write disjoint slices.
struct SendablePointer<T>: @unchecked Sendable {
    let pointer: UnsafeMutablePointer<T>
    init(_ pointer: UnsafeMutablePointer<T>) { self.pointer = pointer }
}
