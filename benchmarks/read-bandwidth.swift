// Read bandwidth of this machine, for the decode limit in docs/PERFORMANCE.md: each of T threads
// sums its own slice of a 1 GiB buffer (far beyond the caches) with 512-bit vector loads, 5 times;
// prints the best pass in GB/s. Run by hand:
//
//   swiftc -O -Xcc -march=native benchmarks/read-bandwidth.swift -o /tmp/read-bandwidth
//   /tmp/read-bandwidth 1 && /tmp/read-bandwidth 2

import Dispatch
import Foundation

let threads = CommandLine.arguments.count > 1 ? max(1, Int(CommandLine.arguments[1]) ?? 1) : 1
let bytes = 1 << 30
let lanes = bytes / MemoryLayout<SIMD16<Float>>.stride
let buffer = UnsafeMutablePointer<SIMD16<Float>>.allocate(capacity: lanes)
buffer.initialize(repeating: SIMD16<Float>(repeating: 1), count: lanes)

struct Shared: @unchecked Sendable { let pointer: UnsafeMutablePointer<SIMD16<Float>> }
let shared = Shared(pointer: buffer)
var best = 0.0
for _ in 0..<5 {
    let start = DispatchTime.now().uptimeNanoseconds
    DispatchQueue.concurrentPerform(iterations: threads) { worker in
        let lo = lanes * worker / threads, hi = lanes * (worker + 1) / threads
        var a = SIMD16<Float>(), b = SIMD16<Float>(), c = SIMD16<Float>(), d = SIMD16<Float>()
        var i = lo
        while i + 4 <= hi {
            a += shared.pointer[i]; b += shared.pointer[i + 1]; c += shared.pointer[i + 2]; d += shared.pointer[i + 3]
            i += 4
        }
        let total = a + b + c + d
        if total[0] == -1 { print("unreachable") }   // keeps the sums alive
    }
    let seconds = Double(DispatchTime.now().uptimeNanoseconds - start) / 1e9
    best = max(best, Double(bytes) / seconds / 1e9)
}
print(String(format: "threads %d: %.1f GB/s read (best of 5 passes over 1 GiB)", threads, best))
