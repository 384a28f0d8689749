/// Jinja2's lexer with transformers' settings: `trim_blocks=True`, `lstrip_blocks=True`,
/// `keep_trailing_newline=False`, newlines normalised to `\n`.
enum TokenKind: Equatable {
    case text(String)
    case variableBegin, variableEnd, blockBegin, blockEnd
    case name(String)
    case string(String)
    case int(Int)
    case float(Double)
    case op(String)
    case eof
}

struct Token {
    var kind: TokenKind
    var line: Int
}

struct JinjaLexer {
    private let bytes: [UInt8]
    private var pos = 0
    private var line = 1
    private var tokens: [Token] = []
    /// True when the previous tag ended at the start of a line (lstrip_blocks applies at pos 0 too).
    private var lineStarting = true

    static let maxTokens = 2_000_000

    init(source: String) {
        var normalized = [UInt8]()
        normalized.reserveCapacity(source.utf8.count)
        var previousWasCR = false
        for b in source.utf8 {
            if b == 0x0D {
                normalized.append(0x0A)
                previousWasCR = true
                continue
            }
            if b == 0x0A && previousWasCR { previousWasCR = false; continue }
            previousWasCR = false
            normalized.append(b)
        }
        if normalized.last == 0x0A { normalized.removeLast() }
        bytes = normalized
    }

    static func tokenize(_ source: String) throws -> [Token] {
        var lexer = JinjaLexer(source: source)
        try lexer.run()
        return lexer.tokens
    }

    private func error(_ message: String) -> JinjaError { JinjaError(line: line, message: message) }

    private func startsWith(_ s: String, at i: Int) -> Bool {
        var j = i
        for b in s.utf8 {
            guard j < bytes.count, bytes[j] == b else { return false }
            j += 1
        }
        return true
    }

    private mutating func advance(to newPos: Int) {
        var i = pos
        while i < newPos {
            if bytes[i] == 0x0A { line += 1 }
            i += 1
        }
        pos = newPos
    }

    private static func isSpace(_ b: UInt8) -> Bool { b == 0x20 || b == 0x09 || b == 0x0A || b == 0x0D || b == 0x0B || b == 0x0C }

    private mutating func emit(_ kind: TokenKind, line: Int? = nil) throws {
        guard tokens.count < JinjaLexer.maxTokens else { throw error("template too large") }
        tokens.append(Token(kind: kind, line: line ?? self.line))
    }

    /// Emits template text, applying the whitespace control of the tag that follows it.
    private mutating func emitText(_ start: Int, _ end: Int, stripRight: Bool, lstrip: Bool) throws {
        var textEnd = end
        if stripRight {
            while textEnd > start && JinjaLexer.isSpace(bytes[textEnd - 1]) { textEnd -= 1 }
        } else if lstrip {
            // Only spaces/tabs between the last newline (or the start of a line) and the tag.
            var i = textEnd
            while i > start && (bytes[i - 1] == 0x20 || bytes[i - 1] == 0x09 || bytes[i - 1] == 0x0B || bytes[i - 1] == 0x0C) { i -= 1 }
            if i > start ? bytes[i - 1] == 0x0A : lineStarting {
                textEnd = i
            }
        }
        let startLine = line
        advance(to: end)
        if textEnd > start {
            try emit(.text(String(decoding: bytes[start..<textEnd], as: UTF8.self)), line: startLine)
        }
    }

    /// Skips what follows a tag end: all whitespace after `-`, one newline with trim_blocks.
    private mutating func afterTagEnd(stripLeft: Bool, trimBlock: Bool) {
        var i = pos
        if stripLeft {
            while i < bytes.count && JinjaLexer.isSpace(bytes[i]) { i += 1 }
        } else if trimBlock, i < bytes.count, bytes[i] == 0x0A {
            i += 1
        }
        lineStarting = i > 0 && bytes[i - 1] == 0x0A
        advance(to: i)
    }

    private mutating func run() throws {
        while pos < bytes.count {
            // Find the next tag opener.
            var i = pos
            var found: UInt8 = 0
            while i + 1 < bytes.count {
                if bytes[i] == UInt8(ascii: "{") {
                    let c = bytes[i + 1]
                    if c == UInt8(ascii: "{") || c == UInt8(ascii: "%") || c == UInt8(ascii: "#") { found = c; break }
                }
                i += 1
            }
            if found == 0 {
                try emitText(pos, bytes.count, stripRight: false, lstrip: false)
                break
            }
            let modifier: UInt8 = i + 2 < bytes.count ? bytes[i + 2] : 0
            let stripRight = modifier == UInt8(ascii: "-")
            let noLstrip = modifier == UInt8(ascii: "+")
            try emitText(pos, i, stripRight: stripRight, lstrip: found != UInt8(ascii: "{") && !noLstrip)
            advance(to: i + 2 + (stripRight || noLstrip ? 1 : 0))
            switch found {
            case UInt8(ascii: "#"):
                var j = pos
                while j + 1 < bytes.count && !(bytes[j] == UInt8(ascii: "#") && bytes[j + 1] == UInt8(ascii: "}")) { j += 1 }
                guard j + 1 < bytes.count else { throw error("missing end of comment tag") }
                let before: UInt8 = j > pos ? bytes[j - 1] : 0
                advance(to: j + 2)
                afterTagEnd(stripLeft: before == UInt8(ascii: "-"), trimBlock: before != UInt8(ascii: "+"))
            case UInt8(ascii: "%"):
                if try lexRawBlock() { continue }
                try emit(.blockBegin)
                try lexInside(block: true)
            default:
                try emit(.variableBegin)
                try lexInside(block: false)
            }
        }
        try emit(.eof)
    }

    /// `{% raw %}...{% endraw %}`: the content is emitted as text unchanged.
    private mutating func lexRawBlock() throws -> Bool {
        var j = pos
        while j < bytes.count && JinjaLexer.isSpace(bytes[j]) { j += 1 }
        guard startsWith("raw", at: j) else { return false }
        j += 3
        while j < bytes.count && JinjaLexer.isSpace(bytes[j]) { j += 1 }
        var stripAfterOpen = false
        if startsWith("-%}", at: j) { stripAfterOpen = true; j += 3 }
        else if startsWith("%}", at: j) { j += 2 }
        else { return false }
        advance(to: j)
        afterTagEnd(stripLeft: stripAfterOpen, trimBlock: true)
        // Find {%[-+]? endraw [-+]?%}
        var k = pos
        while k + 1 < bytes.count {
            if bytes[k] == UInt8(ascii: "{") && bytes[k + 1] == UInt8(ascii: "%") {
                var m = k + 2
                let mod: UInt8 = m < bytes.count ? bytes[m] : 0
                if mod == UInt8(ascii: "-") || mod == UInt8(ascii: "+") { m += 1 }
                while m < bytes.count && JinjaLexer.isSpace(bytes[m]) { m += 1 }
                if startsWith("endraw", at: m) {
                    m += 6
                    while m < bytes.count && JinjaLexer.isSpace(bytes[m]) { m += 1 }
                    var stripLeft = false
                    if startsWith("-%}", at: m) { stripLeft = true; m += 3 }
                    else if startsWith("+%}", at: m) { m += 3 }
                    else if startsWith("%}", at: m) { m += 2 }
                    else { k += 1; continue }
                    try emitText(pos, k, stripRight: mod == UInt8(ascii: "-"), lstrip: mod != UInt8(ascii: "+"))
                    advance(to: m)
                    afterTagEnd(stripLeft: stripLeft, trimBlock: bytes[m - 3] != UInt8(ascii: "+"))
                    return true
                }
            }
            k += 1
        }
        throw error("missing end of raw directive")
    }

    private mutating func lexInside(block: Bool) throws {
        var depth = 0
        let startLine = line
        while true {
            // Skip whitespace.
            while pos < bytes.count && JinjaLexer.isSpace(bytes[pos]) { advance(to: pos + 1) }
            guard pos < bytes.count else {
                throw JinjaError(line: startLine, message: block ? "unexpected end of template, missing '%}'" : "unexpected end of template, missing '}}'")
            }
            let c = bytes[pos]
            if depth == 0 {
                let closer = block ? "%}" : "}}"
                if c == UInt8(ascii: "-") && startsWith(closer, at: pos + 1) {
                    try emit(block ? .blockEnd : .variableEnd)
                    advance(to: pos + 3)
                    afterTagEnd(stripLeft: true, trimBlock: false)
                    return
                }
                if block && c == UInt8(ascii: "+") && startsWith(closer, at: pos + 1) {
                    try emit(.blockEnd)
                    advance(to: pos + 3)
                    afterTagEnd(stripLeft: false, trimBlock: false)
                    return
                }
                if startsWith(closer, at: pos) {
                    try emit(block ? .blockEnd : .variableEnd)
                    advance(to: pos + 2)
                    afterTagEnd(stripLeft: false, trimBlock: block)
                    return
                }
            }
            if c == UInt8(ascii: "_") || (c >= UInt8(ascii: "a") && c <= UInt8(ascii: "z")) || (c >= UInt8(ascii: "A") && c <= UInt8(ascii: "Z")) {
                var j = pos
                while j < bytes.count, bytes[j] == UInt8(ascii: "_") || (bytes[j] | 0x20 >= UInt8(ascii: "a") && bytes[j] | 0x20 <= UInt8(ascii: "z")) || (bytes[j] >= UInt8(ascii: "0") && bytes[j] <= UInt8(ascii: "9")) { j += 1 }
                try emit(.name(String(decoding: bytes[pos..<j], as: UTF8.self)))
                advance(to: j)
                continue
            }
            if c >= UInt8(ascii: "0") && c <= UInt8(ascii: "9") {
                try lexNumber()
                continue
            }
            if c == UInt8(ascii: "'") || c == UInt8(ascii: "\"") {
                try lexString(quote: c)
                continue
            }
            if let op = ["//", "**", "==", "!=", "<=", ">="].first(where: { startsWith($0, at: pos) }) {
                try emit(.op(op))
                advance(to: pos + 2)
                continue
            }
            let single = "+-*/%~<>=()[]{},.:|"
            guard single.utf8.contains(c) else {
                throw error("unexpected character '\(String(decoding: [c], as: UTF8.self))' in tag")
            }
            switch c {
            case UInt8(ascii: "("), UInt8(ascii: "["), UInt8(ascii: "{"): depth += 1
            case UInt8(ascii: ")"), UInt8(ascii: "]"), UInt8(ascii: "}"): depth = max(0, depth - 1)
            default: break
            }
            try emit(.op(String(UnicodeScalar(c))))
            advance(to: pos + 1)
        }
    }

    private mutating func lexNumber() throws {
        var j = pos
        func digits() { while j < bytes.count, (bytes[j] >= UInt8(ascii: "0") && bytes[j] <= UInt8(ascii: "9")) || bytes[j] == UInt8(ascii: "_") { j += 1 } }
        digits()
        var isFloat = false
        if j + 1 < bytes.count, bytes[j] == UInt8(ascii: "."), bytes[j + 1] >= UInt8(ascii: "0"), bytes[j + 1] <= UInt8(ascii: "9") {
            isFloat = true
            j += 1
            digits()
        }
        if j < bytes.count, bytes[j] == UInt8(ascii: "e") || bytes[j] == UInt8(ascii: "E") {
            var k = j + 1
            if k < bytes.count, bytes[k] == UInt8(ascii: "+") || bytes[k] == UInt8(ascii: "-") { k += 1 }
            if k < bytes.count, bytes[k] >= UInt8(ascii: "0"), bytes[k] <= UInt8(ascii: "9") {
                isFloat = true
                j = k
                digits()
            }
        }
        let text = String(decoding: bytes[pos..<j].filter { $0 != UInt8(ascii: "_") }, as: UTF8.self)
        if isFloat {
            guard let d = Double(text) else { throw error("invalid number '\(text)'") }
            try emit(.float(d))
        } else {
            guard let i = Int(text) else { throw error("integer literal '\(text)' is too large") }
            try emit(.int(i))
        }
        advance(to: j)
    }

    private mutating func lexString(quote: UInt8) throws {
        let startLine = line
        var j = pos + 1
        var scalars = String.UnicodeScalarView()
        var runStart = j
        func flush(_ end: Int) {
            if end > runStart { scalars.append(contentsOf: String(decoding: bytes[runStart..<end], as: UTF8.self).unicodeScalars) }
        }
        func hex(_ count: Int) -> UInt32? {
            guard j + count <= bytes.count else { return nil }
            var v: UInt32 = 0
            for k in 0..<count {
                guard let d = Int(String(UnicodeScalar(bytes[j + k])), radix: 16) else { return nil }
                v = v * 16 + UInt32(d)
            }
            return v
        }
        while true {
            guard j < bytes.count else { throw JinjaError(line: startLine, message: "unterminated string literal") }
            let b = bytes[j]
            if b == quote { flush(j); j += 1; break }
            if b != UInt8(ascii: "\\") { j += 1; continue }
            flush(j)
            j += 1
            guard j < bytes.count else { throw JinjaError(line: startLine, message: "unterminated string literal") }
            let e = bytes[j]
            j += 1
            switch e {
            case UInt8(ascii: "n"): scalars.append("\n")
            case UInt8(ascii: "t"): scalars.append("\t")
            case UInt8(ascii: "r"): scalars.append("\r")
            case UInt8(ascii: "\\"): scalars.append("\\")
            case UInt8(ascii: "'"): scalars.append("'")
            case UInt8(ascii: "\""): scalars.append("\"")
            case UInt8(ascii: "a"): scalars.append("\u{07}")
            case UInt8(ascii: "b"): scalars.append("\u{08}")
            case UInt8(ascii: "f"): scalars.append("\u{0C}")
            case UInt8(ascii: "v"): scalars.append("\u{0B}")
            case 0x0A: break  // line continuation
            case UInt8(ascii: "0")...UInt8(ascii: "7"):
                var v = UInt32(e - UInt8(ascii: "0"))
                var n = 1
                while n < 3, j < bytes.count, bytes[j] >= UInt8(ascii: "0"), bytes[j] <= UInt8(ascii: "7") {
                    v = v * 8 + UInt32(bytes[j] - UInt8(ascii: "0")); j += 1; n += 1
                }
                scalars.append(Unicode.Scalar(v) ?? "\u{FFFD}")
            case UInt8(ascii: "x"), UInt8(ascii: "u"), UInt8(ascii: "U"):
                let count = e == UInt8(ascii: "x") ? 2 : e == UInt8(ascii: "u") ? 4 : 8
                guard let v = hex(count) else { throw JinjaError(line: line, message: "invalid \\\(UnicodeScalar(e)) escape in string literal") }
                j += count
                scalars.append(Unicode.Scalar(v) ?? "\u{FFFD}")
            default:
                scalars.append("\\")
                j -= 1  // keep the character as-is
            }
            runStart = j
        }
        try emit(.string(String(scalars)), line: startLine)
        advance(to: j)
    }
}
