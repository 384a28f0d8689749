/// Why a tokenizer could not be built. Every case names the offending field, so a bad
/// `tokenizer.json` or GGUF array can be located without a debugger.
public enum TokenizerError: Error, CustomStringConvertible, Sendable {
    /// The data is not JSON, or its top level is not an object.
    case invalidJSON(file: String, reason: String)
    /// A required field is absent, e.g. `model.vocab`.
    case missingField(String)
    /// A field is present but has the wrong type or an invalid value.
    case invalidField(String, reason: String)
    /// A merge names a token (or produces one) that the vocabulary does not contain.
    case unknownMergeToken(field: String, token: String)
    /// Two parallel arrays disagree in length, e.g. `tokenizer.ggml.token_type` vs `tokenizer.ggml.tokens`.
    case lengthMismatch(field: String, expected: Int, actual: Int)
    /// A feature this tokenizer does not implement, e.g. a normalizer other than NFC.
    case unsupported(field: String, value: String)

    public var description: String {
        switch self {
        case let .invalidJSON(file, reason):
            return "\(file): not a valid JSON object (\(reason))"
        case let .missingField(field):
            return "missing field `\(field)`"
        case let .invalidField(field, reason):
            return "invalid field `\(field)`: \(reason)"
        case let .unknownMergeToken(field, token):
            return "`\(field)` names a token that is not in the vocabulary: \(token.debugDescription)"
        case let .lengthMismatch(field, expected, actual):
            return "`\(field)` has \(actual) entries, expected \(expected)"
        case let .unsupported(field, value):
            return "unsupported `\(field)`: \(value)"
        }
    }
}
