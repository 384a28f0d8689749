/// Finds added tokens (`<|im_start|>`, `<tool_call>`, …) in text with leftmost-longest,
/// non-overlapping semantics, like the reference's Aho-Corasick `LeftmostLongest` search.
///
/// A byte trie is walked from each start position, so the cost is O(n · L) for input length n
/// and longest token length L (a small constant): linear in the input. Positions whose byte
/// starts no token are skipped with one table lookup. There is no re-scan of the text per
/// token, which is what makes some engines quadratic on inputs full of near misses.
struct AddedTokenMatcher: Sendable {
    struct Match {
        /// Byte range in the UTF-8 input.
        let range: Range<Int>
        /// Index into the token list given at construction.
        let tokenIndex: Int
    }

    /// Packed `(node << 8) | byte` → child node. Node 0 is the root.
    private var transitions: [Int: Int] = [:]
    /// Token index that ends at each node, or -1.
    private var terminal: [Int] = [-1]
    private var startsToken = [Bool](repeating: false, count: 256)

    /// - Parameter tokens: the token strings; empty strings are ignored.
    init(tokens: [String]) {
        for (index, token) in tokens.enumerated() where !token.isEmpty {
            var node = 0
            for byte in token.utf8 {
                let key = (node << 8) | Int(byte)
                if let child = transitions[key] {
                    node = child
                } else {
                    terminal.append(-1)
                    let child = terminal.count - 1
                    transitions[key] = child
                    node = child
                }
            }
            // On duplicate strings the first token wins.
            if terminal[node] < 0 { terminal[node] = index }
            if let first = token.utf8.first { startsToken[Int(first)] = true }
        }
    }

    var isEmpty: Bool { terminal.count == 1 }

    /// All matches in `bytes`, left to right. A match of valid UTF-8 inside valid UTF-8
    /// always starts and ends on scalar boundaries.
    func matches(in bytes: [UInt8]) -> [Match] {
        var result: [Match] = []
        if isEmpty { return result }
        var start = 0
        while start < bytes.count {
            guard startsToken[Int(bytes[start])] else {
                start += 1
                continue
            }
            var node = 0
            var longest: (end: Int, token: Int)?
            var position = start
            while position < bytes.count, let child = transitions[(node << 8) | Int(bytes[position])] {
                node = child
                position += 1
                if terminal[node] >= 0 { longest = (position, terminal[node]) }
            }
            if let longest {
                result.append(Match(range: start..<longest.end, tokenIndex: longest.token))
                start = longest.end
            } else {
                start += 1
            }
        }
        return result
    }
}
