import Foundation

/// Byte-level BPE over token ids: a pre-token's bytes start as one symbol each, then the
/// lowest-ranked adjacent pair is merged repeatedly (ties: leftmost first), as in the
/// reference `tokenizers` BPE model.
///
/// The one deviation from the reference: a word longer than `maxWordBytes` (1 MiB; no real
/// text has such a word, but a hostile one can: a megabyte of one letter, or of combining
/// marks) is merged as consecutive words of at most `maxWordBytes` bytes, cut between
/// characters. That bounds the memory and the merge work per word (O(n log n) in the word's
/// length) to a constant per byte. The reference merges the whole word, so ids can differ
/// near each cut, and only in such words.
final class BPEModel: @unchecked Sendable {
    // @unchecked: everything is immutable except `cache`, which is guarded by `cacheLock`.

    /// A merge's priority (lower merges first) and the id of the merged token.
    struct Merge {
        let rank: UInt32
        let result: Int32
    }

    /// Packed `(left << 32) | right` → merge.
    private let merges: [UInt64: Merge]
    /// Id of each byte's single-character token, or -1 when the vocabulary lacks it
    /// (such bytes are dropped, as the reference does when there is no unknown token).
    private let byteIDs: [Int32]

    private var cache: [[UInt8]: [Int32]] = [:]
    private let cacheLock = NSLock()
    /// Caching stops at this many words, bounding memory on adversarial input.
    private let cacheCapacity = 100_000
    /// Longer words are rare and not worth keeping.
    private let maxCachedWordLength = 64

    /// The longest word merged as one; see the type's documentation.
    let maxWordBytes: Int
    static let defaultMaxWordBytes = 1 << 20

    init(merges: [UInt64: Merge], byteIDs: [Int32], maxWordBytes: Int = BPEModel.defaultMaxWordBytes) {
        precondition(maxWordBytes >= 4, "a word limit must hold any one UTF-8 character")
        self.merges = merges
        self.byteIDs = byteIDs
        self.maxWordBytes = maxWordBytes
    }

    /// The same model with another word limit (and its own cache): for tests.
    func withMaxWordBytes(_ limit: Int) -> BPEModel {
        BPEModel(merges: merges, byteIDs: byteIDs, maxWordBytes: limit)
    }

    static func pairKey(_ left: Int32, _ right: Int32) -> UInt64 {
        (UInt64(UInt32(bitPattern: left)) << 32) | UInt64(UInt32(bitPattern: right))
    }

    /// Appends the ids of one pre-token (given as UTF-8 bytes of whole characters) to
    /// `output`; a word longer than `maxWordBytes` is merged in pieces (see the type).
    /// `work` counts merge steps, for tests that check the work is linear.
    func encode(word: ArraySlice<UInt8>, into output: inout [Int], work: inout Int) {
        var start = word.startIndex
        while word.endIndex - start > maxWordBytes {
            // Cut before the character that would cross the limit: back up over continuation bytes.
            var cut = start + maxWordBytes
            while cut > start + 1 && word[cut] & 0xC0 == 0x80 { cut -= 1 }
            encodeWhole(word[start..<cut], into: &output, work: &work)
            start = cut
        }
        encodeWhole(word[start...], into: &output, work: &work)
    }

    private func encodeWhole(_ word: ArraySlice<UInt8>, into output: inout [Int], work: inout Int) {
        let cacheable = word.count <= maxCachedWordLength
        let key = cacheable ? Array(word) : []
        if cacheable {
            cacheLock.lock()
            let hit = cache[key]
            cacheLock.unlock()
            if let hit {
                for id in hit { output.append(Int(id)) }
                return
            }
        }
        let ids = merge(word, work: &work)
        for id in ids { output.append(Int(id)) }
        if cacheable {
            cacheLock.lock()
            if cache.count < cacheCapacity { cache[key] = ids }
            cacheLock.unlock()
        }
    }

    /// Merges in O(n log n): symbols form a doubly linked list, candidate pairs sit in a
    /// min-heap keyed by (rank, position); stale candidates are skipped when popped.
    private func merge(_ word: ArraySlice<UInt8>, work: inout Int) -> [Int32] {
        var ids: [Int32] = []
        ids.reserveCapacity(word.count)
        for byte in word {
            let id = byteIDs[Int(byte)]
            if id >= 0 { ids.append(id) }
        }
        let count = ids.count
        if count < 2 { return ids }

        var next = [Int](unsafeUninitializedCapacity: count) { buffer, initialized in
            for i in 0..<count { buffer[i] = i + 1 }
            initialized = count
        }
        next[count - 1] = -1
        var previous = (0..<count).map { $0 - 1 }
        var alive = [Bool](repeating: true, count: count)

        var heap = MinHeap()
        for i in 0..<(count - 1) {
            if let merge = merges[Self.pairKey(ids[i], ids[i + 1])] {
                heap.push((UInt64(merge.rank) << 32) | UInt64(i))
            }
        }
        defer { work += count + heap.steps }
        while let top = heap.pop() {
            let rank = UInt32(truncatingIfNeeded: top >> 32)
            let position = Int(UInt32(truncatingIfNeeded: top))
            guard alive[position] else { continue }
            let right = next[position]
            guard right >= 0,
                  let merge = merges[Self.pairKey(ids[position], ids[right])],
                  merge.rank == rank  // the pair at this position changed since it was queued
            else { continue }

            ids[position] = merge.result
            alive[right] = false
            let afterRight = next[right]
            next[position] = afterRight
            if afterRight >= 0 { previous[afterRight] = position }

            let left = previous[position]
            if left >= 0, let candidate = merges[Self.pairKey(ids[left], ids[position])] {
                heap.push((UInt64(candidate.rank) << 32) | UInt64(left))
            }
            if afterRight >= 0, let candidate = merges[Self.pairKey(ids[position], ids[afterRight])] {
                heap.push((UInt64(candidate.rank) << 32) | UInt64(position))
            }
        }

        var result: [Int32] = []
        var index = 0
        while index >= 0 {
            result.append(ids[index])
            index = next[index]
        }
        return result
    }
}

/// A binary min-heap of packed (rank, position) keys.
private struct MinHeap {
    private var items: [UInt64] = []
    /// Pushes, pops and sift steps so far.
    private(set) var steps = 0

    mutating func push(_ value: UInt64) {
        steps += 1
        items.append(value)
        var child = items.count - 1
        while child > 0 {
            let parent = (child - 1) / 2
            if items[parent] <= items[child] { break }
            steps += 1
            items.swapAt(parent, child)
            child = parent
        }
    }

    mutating func pop() -> UInt64? {
        guard let first = items.first else { return nil }
        steps += 1
        let last = items.removeLast()
        if !items.isEmpty {
            items[0] = last
            var parent = 0
            while true {
                let left = 2 * parent + 1
                if left >= items.count { break }
                let right = left + 1
                let smaller = right < items.count && items[right] < items[left] ? right : left
                if items[parent] <= items[smaller] { break }
                steps += 1
                items.swapAt(parent, smaller)
                parent = smaller
            }
        }
        return first
    }
}
