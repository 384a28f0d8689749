import Dispatch

/// Runs `body(worker)` for `worker` in `0..<threads`, on the calling thread when `threads` is 1.
/// Work is split statically by the caller, so each worker can own a slice of scratch memory.
@inline(__always)
func parallel(_ threads: Int, _ body: @Sendable (Int) -> Void) {
    if threads <= 1 {
        body(0)
    } else {
        DispatchQueue.concurrentPerform(iterations: threads, execute: body)
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
