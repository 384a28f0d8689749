import QwenKit

/// The ids a conversation has really shown: whole words of the user's messages and values in
/// tool results that succeeded. The agent's own words never count — not the model's replies, not
/// its error messages ("flight_id QK123 appears in no search result"), not a refusal — so a
/// made-up id stays made up however often it is repeated.
struct GroundedValues: Sendable {
    /// Whole ASCII words (letters and digits), lowercased, from the user and from results.
    private var words: Set<String> = []
    /// Integers from results by the key they stood under (`booking_id` → {1, 2}).
    private var numbers: [String: Set<Int>] = [:]

    /// Counts the words of a user's message.
    mutating func addUserText(_ text: String) {
        words.formUnion(Self.words(in: text))
    }

    /// Counts a successful tool result: the words of its strings, and its integers by key.
    mutating func addResult(_ value: JSONValue, key: String? = nil) {
        switch value {
        case .string(let text): words.formUnion(Self.words(in: text))
        case .int(let number): if let key { numbers[key, default: []].insert(number) }
        case .array(let items): for item in items { addResult(item, key: key) }
        case .object(let members): for (name, member) in members { addResult(member, key: name) }
        case .null, .bool, .double: break
        }
    }

    /// Whether the argument `key` with `value` names something the conversation has shown: a
    /// string that is one whole word seen (case-insensitive, so `QK1` is not grounded by `QK123`),
    /// or an integer that the user wrote or a result gave under the same key.
    func contains(_ value: JSONValue, for key: String) -> Bool {
        if let text = value.stringValue {
            return words.contains(text.lowercased())
        }
        if case .int(let number) = value {
            return numbers[key]?.contains(number) == true || words.contains(String(number))
        }
        return false
    }

    /// The maximal runs of ASCII letters and digits, lowercased: "预订QK123航班, P0007." → qk123, p0007.
    static func words(in text: String) -> Set<String> {
        var found: Set<String> = []
        var current = ""
        for scalar in text.unicodeScalars {
            if scalar.isASCII, scalar.properties.isAlphabetic || ("0"..."9").contains(scalar) {
                current.unicodeScalars.append(scalar)
            } else if !current.isEmpty {
                found.insert(current.lowercased())
                current = ""
            }
        }
        if !current.isEmpty { found.insert(current.lowercased()) }
        return found
    }
}
