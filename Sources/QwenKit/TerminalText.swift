/// Text from strangers (model files, templates, MCP servers, the model, remote replies) made safe
/// to show in a terminal.
///
/// A terminal obeys control characters and escape sequences in what it prints: `ESC [ 2 K` erases
/// the line, `CR` returns to its start, a bidi override reorders what follows. Anything untrusted
/// goes through ``escaped(_:keepingNewlines:)`` before it is shown, so such characters appear as
/// visible escapes (`\x1b[2K`) and cannot rewrite a question the user is about to answer.
public enum TerminalText {
    /// `text` with every control character written as a visible escape: C0 controls and DEL as
    /// `\xNN`; C1 controls, bidi controls and line/paragraph separators as `\u{NNNN}`. Newlines and
    /// tabs stay only when `keepingNewlines` (model prose); a one-line part (a tool name, a question)
    /// escapes them too.
    public static func escaped(_ text: String, keepingNewlines: Bool = false) -> String {
        var result = ""
        result.unicodeScalars.reserveCapacity(text.unicodeScalars.count)
        for scalar in text.unicodeScalars {
            if keepingNewlines && (scalar == "\n" || scalar == "\t") {
                result.unicodeScalars.append(scalar)
            } else if scalar.value < 0x20 || scalar.value == 0x7F {
                result += "\\x" + hex(scalar.value, digits: 2)
            } else if isInvisibleControl(scalar) {
                result += "\\u{" + hex(scalar.value, digits: 4) + "}"
            } else {
                result.unicodeScalars.append(scalar)
            }
        }
        return result
    }

    /// C1 controls (`U+009B` is a one-character CSI), line and paragraph separators, and the
    /// bidirectional controls that reorder the text after them.
    static func isInvisibleControl(_ scalar: Unicode.Scalar) -> Bool {
        switch scalar.value {
        case 0x80...0x9F, 0x2028, 0x2029, 0x202A...0x202E, 0x2066...0x2069, 0x200E, 0x200F, 0x061C: true
        default: false
        }
    }

    private static func hex(_ value: UInt32, digits: Int) -> String {
        let text = String(value, radix: 16)
        return String(repeating: "0", count: max(0, digits - text.count)) + text
    }

    /// At most `limit` characters of `text` (then "…"), escaped as ``escaped(_:keepingNewlines:)``
    /// does: for names and values quoted in error messages.
    public static func excerpt(_ text: some StringProtocol, limit: Int = 80) -> String {
        let scalars = text.unicodeScalars
        guard scalars.count > limit else { return escaped(String(text)) }
        var head = String.UnicodeScalarView()
        head.append(contentsOf: scalars.prefix(max(limit, 0)))
        return escaped(String(head)) + "…"
    }
}
