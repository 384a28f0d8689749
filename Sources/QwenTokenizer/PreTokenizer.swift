extension Tokenizer {
    /// The regex that splits text into pre-tokens before BPE: one of the two Qwen patterns,
    /// each implemented by hand in `PreTokenizer`. The raw value is the GGUF name
    /// (`tokenizer.ggml.pre`).
    public enum SplitPattern: String, Sendable, CaseIterable {
        /// Qwen2, Qwen2.5 and Qwen3:
        ///
        ///     (?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+
        case qwen2
        /// Qwen3.5 and later: Qwen2's pattern with combining marks (`\p{M}`) joined to letters,
        /// so a letter followed by marks stays one piece:
        ///
        ///     (?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?[\p{L}\p{M}]+|\p{N}| ?[^\s\p{L}\p{M}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+
        case qwen35

        /// The regex as a `tokenizer.json` `Split` pre-tokenizer writes it.
        public var regex: String {
            switch self {
            case .qwen2:
                #"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+"#
            case .qwen35:
                #"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?[\p{L}\p{M}]+|\p{N}| ?[^\s\p{L}\p{M}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+"#
            }
        }
    }
}

/// The Qwen pre-tokenizers, a hand-written matcher for exactly the regexes of
/// `Tokenizer.SplitPattern` (leftmost-first alternation, greedy quantifiers, as in the
/// reference's `fancy-regex`). Shown here for Qwen2:
///
///     (?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+
///
/// The Qwen3.5 pattern writes `[\p{L}\p{M}]+` for `\p{L}+` and adds `\p{M}` to the symbol
/// class. Both are this matcher with marks classed as letters: a mark as the optional
/// leading character of alternative 2 is followed by letters or marks, so it matches
/// exactly as the run `[\p{L}\p{M}]+` would from the same start.
///
/// Written by hand rather than with `NSRegularExpression` because ICU's notion of `\s` and
/// its Unicode version differ from the reference, and because it is much faster.
/// `\p{L}` / `\p{N}` / `\p{M}` are the general categories L* / N* / M*, `\s` is the
/// Unicode White_Space property.
enum PreTokenizer {
    /// Character classes of one scalar, as bit flags.
    struct Class: OptionSet {
        let rawValue: UInt8
        static let letter = Class(rawValue: 1)
        static let number = Class(rawValue: 2)
        static let whitespace = Class(rawValue: 4)
        static let newline = Class(rawValue: 8)  // \r or \n (also whitespace)
    }

    /// - Parameter marksAreLetters: class combining marks (M*) as letters (Qwen3.5);
    ///   otherwise they are symbols (Qwen2).
    static func classify(_ scalar: Unicode.Scalar, marksAreLetters: Bool) -> Class {
        let value = scalar.value
        if value < 0x80 {
            // ASCII fast path.
            switch value {
            case 0x41...0x5A, 0x61...0x7A: return .letter
            case 0x30...0x39: return .number
            case 0x0A, 0x0D: return [.whitespace, .newline]
            case 0x09, 0x0B, 0x0C, 0x20: return .whitespace
            default: return []
            }
        }
        let properties = scalar.properties
        if properties.isWhitespace { return .whitespace }
        let category: Class
        switch properties.generalCategory {
        case .uppercaseLetter, .lowercaseLetter, .titlecaseLetter, .modifierLetter, .otherLetter:
            category = .letter
        case .decimalNumber, .letterNumber, .otherNumber:
            category = .number
        case .nonspacingMark, .spacingMark, .enclosingMark:
            guard marksAreLetters else { return [] }
            category = .letter
        default:
            return []
        }
        // The reference's regex engine has Unicode 16.0 tables; the standard library may be
        // newer. A character assigned later is unassigned (Cn) there, so neither L nor N.
        // (Checked against the reference for every code point: only such characters differ.)
        if let age = properties.age,
           age.major > referenceVersion.major
            || (age.major == referenceVersion.major && age.minor > referenceVersion.minor) {
            return []
        }
        return category
    }

    /// The Unicode version of the reference regex engine's property tables.
    static let referenceVersion = (major: 16, minor: 0)

    /// Splits `scalars` into pre-tokens; returns the end index (exclusive) of each piece.
    /// The pattern matches at every position, so the pieces tile the input with no gaps.
    static func split(_ scalars: [Unicode.Scalar], pattern: Tokenizer.SplitPattern) -> [Int] {
        let count = scalars.count
        let marksAreLetters = pattern == .qwen35
        var classes = [Class]()
        classes.reserveCapacity(count)
        for scalar in scalars { classes.append(classify(scalar, marksAreLetters: marksAreLetters)) }

        var ends: [Int] = []
        var position = 0
        while position < count {
            let end = matchEnd(at: position, scalars: scalars, classes: classes)
            ends.append(end)
            position = end
        }
        return ends
    }

    /// The end of the regex match that starts at `start` (always > `start`).
    private static func matchEnd(at start: Int, scalars: [Unicode.Scalar], classes: [Class]) -> Int {
        let count = scalars.count
        let first = classes[start]

        // 1. (?i:'s|'t|'re|'ve|'m|'ll|'d). Case-insensitive matching uses Unicode simple case
        //    folding, under which `s` also matches U+017F LATIN SMALL LETTER LONG S.
        if scalars[start] == "'" && start + 1 < count {
            switch scalars[start + 1] {
            case "s", "S", "\u{017F}", "t", "T", "m", "M", "d", "D":
                return start + 2
            default:
                break
            }
            if start + 2 < count {
                let pair = (scalars[start + 1], scalars[start + 2])
                switch pair {
                case ("r", "e"), ("r", "E"), ("R", "e"), ("R", "E"),
                     ("v", "e"), ("v", "E"), ("V", "e"), ("V", "E"),
                     ("l", "l"), ("l", "L"), ("L", "l"), ("L", "L"):
                    return start + 3
                default:
                    break
                }
            }
        }

        // 2. [^\r\n\p{L}\p{N}]?\p{L}+ (Qwen3.5: `.letter` includes marks)
        if first.contains(.letter) {
            return letterRunEnd(from: start + 1, classes: classes)
        }
        if !first.contains(.newline) && !first.contains(.number)
            && start + 1 < count && classes[start + 1].contains(.letter) {
            return letterRunEnd(from: start + 2, classes: classes)
        }

        // 3. \p{N}: one digit at a time.
        if first.contains(.number) { return start + 1 }

        // 4.  ?[^\s\p{L}\p{N}]+[\r\n]* (Qwen3.5: not marks either)
        let symbolStart = scalars[start] == " " ? start + 1 : start
        if symbolStart < count && isSymbol(classes[symbolStart]) {
            var end = symbolStart + 1
            while end < count && isSymbol(classes[end]) { end += 1 }
            while end < count && classes[end].contains(.newline) { end += 1 }
            return end
        }

        // Only whitespace is left: every other class matched above.
        var runEnd = start
        var lastNewline = -1
        while runEnd < count && classes[runEnd].contains(.whitespace) {
            if classes[runEnd].contains(.newline) { lastNewline = runEnd }
            runEnd += 1
        }
        // 5. \s*[\r\n]+ — \s* backtracks to the last newline of the run.
        if lastNewline >= 0 { return lastNewline + 1 }
        // 6. \s+(?!\S) — at the end of input the whole run; else give back one whitespace
        //    so the next piece (e.g. " word") keeps its leading space.
        if runEnd == count { return runEnd }
        if runEnd - start >= 2 { return runEnd - 1 }
        // 7. \s+
        return max(runEnd, start + 1)
    }

    private static func isSymbol(_ cls: Class) -> Bool {
        !cls.contains(.whitespace) && !cls.contains(.letter) && !cls.contains(.number)
    }

    private static func letterRunEnd(from index: Int, classes: [Class]) -> Int {
        var end = index
        while end < classes.count && classes[end].contains(.letter) { end += 1 }
        return end
    }
}
