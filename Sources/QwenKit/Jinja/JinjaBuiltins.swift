import Foundation

/// Python `str` operations on Unicode scalars (Python strings index code points).
enum PyString {
    static func isSpace(_ s: Unicode.Scalar) -> Bool {
        switch s.value {
        case 0x09...0x0D, 0x1C...0x1F, 0x20, 0x85, 0xA0: return true
        default: return s.value > 0x7F && s.properties.isWhitespace
        }
    }

    /// The first index at or after `from` where `needle` occurs in `hay`. Knuth–Morris–Pratt, so
    /// linear in what it scans (a naive search is quadratic on `aaa…ab`); the scalars scanned
    /// cost budget like bytes copied.
    static func find(_ hay: [Unicode.Scalar], _ needle: [Unicode.Scalar], from: Int, _ budget: JinjaBudget) throws -> Int? {
        if needle.isEmpty { return from <= hay.count ? from : nil }
        guard from >= 0, hay.count - from >= needle.count else { return nil }
        try budget.spendCopy(needle.count)
        // failure[j]: the length of the longest proper border of needle[0...j].
        var failure = [Int](repeating: 0, count: needle.count)
        var k = 0
        for j in 1..<max(needle.count, 1) {
            while k > 0 && needle[j] != needle[k] { k = failure[k - 1] }
            if needle[j] == needle[k] { k += 1 }
            failure[j] = k
        }
        var matched = 0
        var i = from
        while i < hay.count {
            if (i - from) & 1023 == 0 { try budget.spendCopy(1024) }
            while matched > 0 && hay[i] != needle[matched] { matched = failure[matched - 1] }
            if hay[i] == needle[matched] { matched += 1 }
            if matched == needle.count { return i - needle.count + 1 }
            i += 1
        }
        return nil
    }

    static func string(_ scalars: some Sequence<Unicode.Scalar>) -> String {
        var v = String.UnicodeScalarView()
        v.append(contentsOf: scalars)
        return String(v)
    }

    static func strip(_ s: String, _ chars: String?, left: Bool, right: Bool) -> String {
        let a = Array(s.unicodeScalars)
        let set = chars.map { Set($0.unicodeScalars) }
        func strippable(_ c: Unicode.Scalar) -> Bool { set.map { $0.contains(c) } ?? isSpace(c) }
        var lo = 0, hi = a.count
        if left { while lo < hi && strippable(a[lo]) { lo += 1 } }
        if right { while hi > lo && strippable(a[hi - 1]) { hi -= 1 } }
        return string(a[lo..<hi])
    }

    static func split(_ s: String, _ sep: String?, maxsplit: Int, _ budget: JinjaBudget) throws -> [String] {
        try budget.spendCopy(s.utf8.count)
        let a = Array(s.unicodeScalars)
        var parts: [String] = []
        if let sep {
            let n = Array(sep.unicodeScalars)
            guard !n.isEmpty else { throw JinjaError(line: 0, message: "empty separator") }
            var start = 0
            while maxsplit < 0 || parts.count < maxsplit, let i = try find(a, n, from: start, budget) {
                parts.append(string(a[start..<i]))
                start = i + n.count
            }
            parts.append(string(a[start...]))
            return parts
        }
        var i = 0
        while i < a.count {
            while i < a.count && isSpace(a[i]) { i += 1 }
            guard i < a.count else { break }
            if maxsplit >= 0 && parts.count >= maxsplit {
                var end = a.count
                while end > i && isSpace(a[end - 1]) { end -= 1 }
                parts.append(string(a[i..<end]))
                break
            }
            let start = i
            while i < a.count && !isSpace(a[i]) { i += 1 }
            parts.append(string(a[start..<i]))
        }
        return parts
    }

    static func replace(_ s: String, _ old: String, _ new: String, count: Int, _ budget: JinjaBudget) throws -> String {
        try budget.spendCopy(s.utf8.count)
        let a = Array(s.unicodeScalars), o = Array(old.unicodeScalars), n = Array(new.unicodeScalars)
        var out: [Unicode.Scalar] = []
        var done = 0
        if o.isEmpty {
            for (i, c) in a.enumerated() {
                if count < 0 || done < count { out += n; done += 1 }
                out.append(c)
                if out.count > JinjaInterpreter.maxOutputBytes { throw JinjaError(line: 0, message: "replace result too large") }
                _ = i
            }
            if count < 0 || done < count { out += n }
            return string(out)
        }
        var start = 0
        while count < 0 || done < count, let i = try find(a, o, from: start, budget) {
            out += a[start..<i]
            out += n
            start = i + o.count
            done += 1
            if out.count > JinjaInterpreter.maxOutputBytes { throw JinjaError(line: 0, message: "replace result too large") }
            try budget.spend(n.count)
        }
        out += a[start...]
        return string(out)
    }

    static func count(_ s: String, _ sub: String, _ budget: JinjaBudget) throws -> Int {
        try budget.spendCopy(s.utf8.count)
        let a = Array(s.unicodeScalars), n = Array(sub.unicodeScalars)
        if n.isEmpty { return a.count + 1 }
        var c = 0, start = 0
        while let i = try find(a, n, from: start, budget) { c += 1; start = i + n.count }
        return c
    }

    static func isCased(_ c: Unicode.Scalar) -> Bool {
        c.properties.isUppercase || c.properties.isLowercase || c.properties.generalCategory == .titlecaseLetter
    }

    /// Python's `str.title()`.
    static func title(_ s: String) -> String {
        var out = ""
        var previousCased = false
        for c in s.unicodeScalars {
            if isCased(c) {
                out += previousCased ? c.properties.lowercaseMapping : c.properties.titlecaseMapping
                previousCased = true
            } else {
                out.unicodeScalars.append(c)
                previousCased = false
            }
        }
        return out
    }

    /// Python's `str.capitalize()`.
    static func capitalize(_ s: String) -> String {
        guard let first = s.unicodeScalars.first else { return s }
        return first.properties.titlecaseMapping + string(s.unicodeScalars.dropFirst()).lowercased()
    }

    /// Python's `str.splitlines()`.
    static func splitlines(_ s: String) -> [String] {
        let a = Array(s.unicodeScalars)
        var lines: [String] = []
        var start = 0, i = 0
        while i < a.count {
            switch a[i].value {
            case 0x0A, 0x0B, 0x0C, 0x1C, 0x1D, 0x1E, 0x85, 0x2028, 0x2029:
                lines.append(string(a[start..<i])); i += 1; start = i
            case 0x0D:
                lines.append(string(a[start..<i]))
                i += (i + 1 < a.count && a[i + 1] == "\n") ? 2 : 1
                start = i
            default:
                i += 1
            }
        }
        if start < a.count { lines.append(string(a[start...])) }
        return lines
    }
}

extension JinjaInterpreter {
    /// Positional-or-keyword argument access for filters and methods.
    struct Args {
        var positional: [JinjaValue]
        var keyword: [(String, JinjaValue)]
        func get(_ index: Int, _ name: String) -> JinjaValue? {
            if index < positional.count { return positional[index] }
            return keyword.last(where: { $0.0 == name })?.1
        }
        func bool(_ index: Int, _ name: String, _ def: Bool) -> Bool { get(index, name)?.truthy ?? def }
    }

    // MARK: Methods

    /// Calls `obj.name(...)` for Python's built-in str/dict/list methods; nil when there is none.
    func callMethod(_ obj: JinjaValue, _ name: String, _ args: [JinjaValue], _ kwargs: [(String, JinjaValue)]) throws -> JinjaValue? {
        let a = Args(positional: args, keyword: kwargs)
        switch obj {
        case let .string(s):
            func strArg(_ i: Int, _ n: String) throws -> String? {
                guard let v = a.get(i, n), !v.isNone else { return nil }
                guard case let .string(str) = v else { throw JinjaError(line: 0, message: "\(name)() argument must be str, not \(v.typeName)") }
                return str
            }
            switch name {
            case "startswith", "endswith":
                guard let v = a.get(0, "prefix") else { throw JinjaError(line: 0, message: "\(name)() takes at least 1 argument") }
                let candidates: [JinjaValue]
                if case let .tuple(t) = v { candidates = t } else if case let .list(l) = v { candidates = l } else { candidates = [v] }
                let hay = Array(s.unicodeScalars)
                for c in candidates {
                    guard case let .string(p) = c else { throw JinjaError(line: 0, message: "\(name) first arg must be str or a tuple of str, not \(c.typeName)") }
                    let n = Array(p.unicodeScalars)
                    if name == "startswith" ? hay.starts(with: n) : hay.reversed().starts(with: n.reversed()) { return .bool(true) }
                }
                return .bool(false)
            case "split", "rsplit":
                let maxsplit = a.get(1, "maxsplit")?.integer ?? -1
                if name == "rsplit" && maxsplit >= 0 {
                    let reversedParts = try PyString.split(String(s.reversed()), try strArg(0, "sep").map { String($0.reversed()) },
                                                           maxsplit: maxsplit, budget)
                    return .list(reversedParts.reversed().map { .string(String($0.reversed())) })
                }
                return .list(try PyString.split(s, try strArg(0, "sep"), maxsplit: maxsplit, budget).map { .string($0) })
            case "strip": return .string(PyString.strip(s, try strArg(0, "chars"), left: true, right: true))
            case "lstrip": return .string(PyString.strip(s, try strArg(0, "chars"), left: true, right: false))
            case "rstrip": return .string(PyString.strip(s, try strArg(0, "chars"), left: false, right: true))
            case "replace":
                guard let old = try strArg(0, "old"), let new = try strArg(1, "new") else {
                    throw JinjaError(line: 0, message: "replace() takes at least 2 arguments")
                }
                return .string(try PyString.replace(s, old, new, count: a.get(2, "count")?.integer ?? -1, budget))
            case "lower": return .string(s.lowercased())
            case "upper": return .string(s.uppercased())
            case "title": return .string(PyString.title(s))
            case "capitalize": return .string(PyString.capitalize(s))
            case "find", "rfind", "index", "rindex":
                let sub = Array((try strArg(0, "sub") ?? "").unicodeScalars)
                let hay = Array(s.unicodeScalars)
                var found: Int?
                if name.hasPrefix("r") {
                    // The last match is the first one in the reversed text.
                    found = try PyString.find(hay.reversed(), sub.reversed(), from: 0, budget).map { hay.count - $0 - sub.count }
                } else {
                    found = try PyString.find(hay, sub, from: 0, budget)
                }
                if found == nil && name.hasSuffix("index") { throw JinjaError(line: 0, message: "substring not found") }
                return .int(found ?? -1)
            case "count": return .int(try PyString.count(s, try strArg(0, "x") ?? "", budget))
            case "join":
                let parts = try iterate(a.get(0, "iterable") ?? .list([])).map { v -> String in
                    guard case let .string(x) = v else { throw JinjaError(line: 0, message: "sequence item: expected str instance, \(v.typeName) found") }
                    return x
                }
                return .string(try joined(parts, separator: s))
            case "splitlines": return .list(PyString.splitlines(s).map { .string($0) })
            case "isdigit", "isnumeric", "isdecimal":
                return .bool(!s.isEmpty && s.unicodeScalars.allSatisfy { $0.properties.numericType != nil })
            case "isalpha": return .bool(!s.isEmpty && s.unicodeScalars.allSatisfy { $0.properties.isAlphabetic })
            case "isalnum": return .bool(!s.isEmpty && s.unicodeScalars.allSatisfy { $0.properties.isAlphabetic || $0.properties.numericType != nil })
            case "isspace": return .bool(!s.isEmpty && s.unicodeScalars.allSatisfy(PyString.isSpace))
            case "islower": return .bool(s.unicodeScalars.contains(where: PyString.isCased) && s == s.lowercased())
            case "isupper": return .bool(s.unicodeScalars.contains(where: PyString.isCased) && s == s.uppercased())
            case "format": return .string(try JinjaInterpreter.checkSize(try pythonFormat(s, a)))
            default: return nil
            }
        case let .dict(d):
            switch name {
            case "items": return .list(d.pairs.map { .tuple([.string($0.0), $0.1]) })
            case "keys": return .list(d.keys.map { .string($0) })
            case "values": return .list(d.values)
            case "get":
                guard let key = a.get(0, "key") else { throw JinjaError(line: 0, message: "get() takes at least 1 argument") }
                if case let .string(k) = key, let v = d[k] { return v }
                return a.get(1, "default") ?? JinjaValue.none
            default: return nil
            }
        case let .list(items), let .tuple(items):
            switch name {
            case "index":
                guard let x = a.get(0, "x"), let i = try items.firstIndex(where: { try equal($0, x) }) else {
                    throw JinjaError(line: 0, message: "value is not in list")
                }
                return .int(i)
            case "count":
                guard let x = a.get(0, "x") else { return .int(0) }
                return .int(try items.filter { try equal($0, x) }.count)
            case "append", "extend", "pop", "insert", "remove", "clear", "sort", "reverse":
                throw JinjaError(line: 0, message: "list.\(name)() is not allowed: the template environment is immutable")
            default: return nil
            }
        case let .loop(l) where name == "cycle":
            guard !args.isEmpty else { throw JinjaError(line: 0, message: "no items for cycling given") }
            return args[l.index % args.count]
        default:
            return nil
        }
    }

    /// `str.format` with `{}`, `{0}`, `{name}` and `{{`/`}}` (no format specs).
    private func pythonFormat(_ s: String, _ a: Args) throws -> String {
        var out = ""
        var auto = 0
        let chars = Array(s)
        var i = 0
        while i < chars.count {
            let c = chars[i]
            if c == "{" {
                if i + 1 < chars.count && chars[i + 1] == "{" { out.append("{"); i += 2; continue }
                guard let close = chars[i...].firstIndex(of: "}") else { throw JinjaError(line: 0, message: "Single '{' encountered in format string") }
                let field = String(chars[(i + 1)..<close])
                guard !field.contains(":"), !field.contains("!") else { throw JinjaError(line: 0, message: "format specs are not supported in str.format") }
                let value: JinjaValue?
                if field.isEmpty { value = a.positional.indices.contains(auto) ? a.positional[auto] : nil; auto += 1 }
                else if let n = Int(field) { value = a.positional.indices.contains(n) ? a.positional[n] : nil }
                else { value = a.keyword.last(where: { $0.0 == field })?.1 }
                guard let value else { throw JinjaError(line: 0, message: "format argument '\(field)' is missing") }
                let text = try value.str(budget)
                try JinjaInterpreter.checkSize(bytes: out.utf8.count + text.utf8.count)
                try budget.spendCopy(text.utf8.count)
                out += text
                i = close + 1
            } else if c == "}" {
                guard i + 1 < chars.count && chars[i + 1] == "}" else { throw JinjaError(line: 0, message: "Single '}' encountered in format string") }
                out.append("}")
                i += 2
            } else {
                out.append(c)
                i += 1
            }
        }
        return out
    }

    /// `parts` joined, sized before the result is built.
    private func joined(_ parts: [String], separator: String) throws -> String {
        var bytes = separator.utf8.count * max(parts.count - 1, 0)
        for part in parts {
            bytes += part.utf8.count
            try JinjaInterpreter.checkSize(bytes: bytes)
        }
        try budget.spendCopy(bytes + parts.count * 16)
        return parts.joined(separator: separator)
    }

    // MARK: Filters

    func applyFilter(_ name: String, _ value: JinjaValue, _ argExprs: [Expr], _ kwargExprs: [(String, Expr)]) throws -> JinjaValue {
        var kw: [(String, JinjaValue)] = []
        for (k, e) in kwargExprs { kw.append((k, try eval(e))) }
        return try filter(name, value, Args(positional: try argExprs.map(eval), keyword: kw))
    }

    private func attributeValue(_ item: JinjaValue, _ path: String) throws -> JinjaValue {
        var v = item
        for part in path.split(separator: ".", omittingEmptySubsequences: false) {
            if let i = Int(part) { v = try getitem(v, .int(i)) } else { v = try getitem(v, .string(String(part))) }
            if v.isUndefined { return v }
        }
        return v
    }

    private func sortKey(_ v: JinjaValue, caseSensitive: Bool) -> JinjaValue {
        if !caseSensitive, case let .string(s) = v { return .string(s.lowercased()) }
        return v
    }

    private func sorted(_ items: [JinjaValue], reverse: Bool, key: (JinjaValue) throws -> JinjaValue) throws -> [JinjaValue] {
        let keyed = try items.map { (try key($0), $0) }
        var failure: JinjaError?
        let result = keyed.enumerated().sorted { l, r in
            guard failure == nil else { return l.offset < r.offset }
            let c: Int?
            do {
                c = try compare(l.element.0, r.element.0)
            } catch {
                failure = error as? JinjaError ?? JinjaError(line: 0, message: "\(error)")
                return l.offset < r.offset
            }
            guard let c else {
                failure = JinjaError(line: 0, message: "'<' not supported between instances of '\(l.element.0.typeName)' and '\(r.element.0.typeName)'")
                return l.offset < r.offset
            }
            if c == 0 { return l.offset < r.offset }
            return reverse ? c > 0 : c < 0
        }
        if let failure { throw failure }
        return result.map(\.element.1)
    }

    private func filter(_ name: String, _ value: JinjaValue, _ a: Args) throws -> JinjaValue {
        switch name {
        case "tojson":
            var indent: String?
            if let i = a.get(0, "indent"), !i.isNone {
                if let n = i.integer { indent = String(repeating: " ", count: max(0, min(n, 64))) }
                else if case let .string(s) = i { indent = s }
            }
            let json = try value.toJSON(budget, indentWidth: indent?.utf8.count ?? 0)
            return .string(try JinjaInterpreter.checkSize(json.pythonJSON(indent: indent, sortKeys: a.bool(3, "sort_keys", false))))
        case "trim":
            var chars: String?
            if let c = a.get(0, "chars"), case let .string(s) = c { chars = s }
            return .string(PyString.strip(try value.str(budget), chars, left: true, right: true))
        case "length", "count":
            switch value {
            case .undefined: return .int(0)
            case let .string(s): return .int(s.unicodeScalars.count)
            case let .list(l), let .tuple(l): return .int(l.count)
            case let .dict(d): return .int(d.count)
            case let .namespace(ns): return .int(ns.dict.count)
            default: throw JinjaError(line: 0, message: "object of type '\(value.typeName)' has no len()")
            }
        case "join":
            let separator = try a.get(0, "d")?.str(budget) ?? ""
            var items = try iterate(value)
            if let attr = a.get(1, "attribute") { items = try items.map { try attributeValue($0, try attr.str(budget)) } }
            return .string(try joined(try items.map { try $0.str(budget) }, separator: separator))
        case "default", "d":
            let fallback = a.get(0, "default_value") ?? .string("")
            if value.isUndefined || (a.bool(1, "boolean", false) && !value.truthy) { return fallback }
            return value
        case "items":
            switch value {
            case .undefined: return .list([])
            case let .dict(d): return .list(d.pairs.map { .tuple([.string($0.0), $0.1]) })
            default: throw JinjaError(line: 0, message: "can only get item pairs from a mapping")
            }
        case "lower": return .string(try value.str(budget).lowercased())
        case "upper": return .string(try value.str(budget).uppercased())
        case "replace":
            guard let old = a.get(0, "old"), let new = a.get(1, "new") else { throw JinjaError(line: 0, message: "replace needs 2 arguments") }
            return .string(try PyString.replace(try value.str(budget), try old.str(budget), try new.str(budget),
                                                count: a.get(2, "count")?.integer ?? -1, budget))
        case "first":
            return try iterate(value).first ?? .undefined(hint: "No first item, sequence was empty.")
        case "last":
            return try iterate(value).last ?? .undefined(hint: "No last item, sequence was empty.")
        case "list":
            return .list(try iterate(value))
        case "string", "safe":
            if name == "safe", case .string = value { return value }
            return .string(try value.str(budget))
        case "escape", "e", "forceescape":
            var out = ""
            for c in try value.str(budget).unicodeScalars {
                switch c {
                case "&": out += "&amp;"
                case "<": out += "&lt;"
                case ">": out += "&gt;"
                case "\"": out += "&#34;"
                case "'": out += "&#39;"
                default: out.unicodeScalars.append(c)
                }
            }
            return .string(out)
        case "int":
            let def = a.get(0, "default") ?? .int(0)
            switch value {
            case let .int(i): return .int(i)
            case let .bool(b): return .int(b ? 1 : 0)
            case let .double(d):
                guard d.isFinite, abs(d) < 9.2e18 else { return def }
                return .int(Int(d))
            case let .string(s):
                let t = s.trimmingCharacters(in: .whitespaces).replacingOccurrences(of: "_", with: "")
                let base = a.get(1, "base")?.integer ?? 10
                // Int(_:radix:) traps outside 2...36; Python raises.
                guard (2...36).contains(base) else { throw JinjaError(line: 0, message: "int() base must be >= 2 and <= 36") }
                if let i = Int(t, radix: base) { return .int(i) }
                if let d = Double(t), d.isFinite, abs(d) < 9.2e18 { return .int(Int(d)) }
                return def
            default: return def
            }
        case "float":
            let def = a.get(0, "default") ?? .double(0)
            switch value {
            case let .int(i): return .double(Double(i))
            case let .bool(b): return .double(b ? 1 : 0)
            case let .double(d): return .double(d)
            case let .string(s):
                if let d = Double(s.trimmingCharacters(in: .whitespaces)) { return .double(d) }
                return def
            default: return def
            }
        case "abs":
            switch value {
            case let .int(i): return i == .min ? .double(-Double(i)) : .int(abs(i))
            case let .bool(b): return .int(b ? 1 : 0)
            case let .double(d): return .double(abs(d))
            default: throw JinjaError(line: 0, message: "bad operand type for abs(): '\(value.typeName)'")
            }
        case "capitalize": return .string(PyString.capitalize(try value.str(budget)))
        case "title":
            // Jinja's do_title: split on whitespace, '-', and opening brackets; capitalise each piece.
            var out = ""
            var atWordStart = true
            for c in try value.str(budget).unicodeScalars {
                if PyString.isSpace(c) || "-([{<".unicodeScalars.contains(c) {
                    out.unicodeScalars.append(c)
                    atWordStart = true
                } else {
                    out += atWordStart ? c.properties.uppercaseMapping : c.properties.lowercaseMapping
                    atWordStart = false
                }
            }
            return .string(out)
        case "map":
            let items = try iterate(value)
            if let attr = a.keyword.last(where: { $0.0 == "attribute" })?.1 {
                let path = try attr.str(budget)
                let def = a.keyword.last(where: { $0.0 == "default" })?.1
                return .list(try items.map { item in
                    let v = try attributeValue(item, path)
                    if v.isUndefined, let def { return def }
                    return v
                })
            }
            guard let filterName = a.positional.first, case let .string(fname) = filterName else {
                throw JinjaError(line: 0, message: "map requires a filter name or attribute=")
            }
            guard JinjaInterpreter.filterNames.contains(fname) else { throw JinjaError(line: 0, message: "no filter named '\(fname)'") }
            let rest = Args(positional: Array(a.positional.dropFirst()), keyword: a.keyword)
            return .list(try items.map { try filter(fname, $0, rest) })
        case "select", "reject", "selectattr", "rejectattr":
            let byAttribute = name.hasSuffix("attr")
            var positional = a.positional
            var attr: String?
            if byAttribute {
                guard !positional.isEmpty else { throw JinjaError(line: 0, message: "\(name) needs an attribute name") }
                attr = try positional.removeFirst().str(budget)
            }
            var testName: String?
            if !positional.isEmpty {
                testName = try positional.removeFirst().str(budget)
                if let t = testName, !JinjaInterpreter.testNames.contains(t) { throw JinjaError(line: 0, message: "no test named '\(t)'") }
            }
            let wanted = !name.hasPrefix("reject")
            return .list(try iterate(value).filter { item in
                let subject = try attr.map { try attributeValue(item, $0) } ?? item
                let passed = try testName.map { try applyTest($0, subject, positional) } ?? subject.truthy
                return passed == wanted
            })
        case "unique":
            let caseSensitive = a.bool(0, "case_sensitive", false)
            let attr = try a.get(1, "attribute").map { try $0.str(budget) }
            var seen: [JinjaValue] = []
            var result: [JinjaValue] = []
            for item in try iterate(value) {
                let key = sortKey(try attr.map { try attributeValue(item, $0) } ?? item, caseSensitive: caseSensitive)
                if try !seen.contains(where: { try equal($0, key) }) {
                    seen.append(key)
                    result.append(item)
                }
            }
            return .list(result)
        case "sort":
            let reverse = a.bool(0, "reverse", false)
            let caseSensitive = a.bool(1, "case_sensitive", false)
            let attr = try a.get(2, "attribute").map { try $0.str(budget) }
            return .list(try sorted(try iterate(value), reverse: reverse) { item in
                sortKey(try attr.map { try attributeValue(item, $0) } ?? item, caseSensitive: caseSensitive)
            })
        case "dictsort":
            guard case let .dict(d) = value else { throw JinjaError(line: 0, message: "dictsort requires a mapping") }
            let caseSensitive = a.bool(0, "case_sensitive", false)
            let byValue = try a.get(1, "by")?.str(budget) == "value"
            let reverse = a.bool(2, "reverse", false)
            let pairs = d.pairs.map { JinjaValue.tuple([.string($0.0), $0.1]) }
            return .list(try sorted(pairs, reverse: reverse) { pair in
                guard case let .tuple(t) = pair else { return pair }
                return sortKey(byValue ? t[1] : t[0], caseSensitive: caseSensitive)
            })
        case "reverse":
            if case let .string(s) = value { return .string(PyString.string(s.unicodeScalars.reversed())) }
            return .list(try iterate(value).reversed())
        case "indent":
            var indentation = "    "
            if let w = a.get(0, "width") {
                if let n = w.integer { indentation = String(repeating: " ", count: max(0, min(n, 1000))) } else { indentation = try w.str(budget) }
            }
            let first = a.bool(1, "first", false)
            let blank = a.bool(2, "blank", false)
            let text = try value.str(budget)
            let lineCount = text.unicodeScalars.reduce(1) { count, c in count + (c == "\n" ? 1 : 0) }
            // The result before it is built: the text, plus the indentation on every line.
            let (indented, overflow) = indentation.utf8.count.multipliedReportingOverflow(by: lineCount + 1)
            guard !overflow else { throw JinjaError(line: 0, message: "string longer than \(JinjaInterpreter.maxOutputBytes) bytes") }
            try JinjaInterpreter.checkSize(bytes: text.utf8.count + indented)
            try budget.spendCopy(text.utf8.count + indented)
            let lines = PyString.splitlines(text + "\n")
            var rv: String
            if blank {
                rv = lines.joined(separator: "\n" + indentation)
            } else {
                rv = lines.first ?? ""
                let rest = lines.dropFirst()
                if !rest.isEmpty {
                    rv += "\n" + rest.map { $0.isEmpty ? $0 : indentation + $0 }.joined(separator: "\n")
                }
            }
            if first { rv = indentation + rv }
            return .string(try JinjaInterpreter.checkSize(rv))
        case "round":
            let precision = a.get(0, "precision")?.integer ?? 0
            let method = try a.get(1, "method")?.str(budget) ?? "common"
            guard let x = value.number else { throw JinjaError(line: 0, message: "round requires a number") }
            if method == "common", case .int = value { return value }
            let scale = pow(10.0, Double(precision))
            let rule: FloatingPointRoundingRule
            switch method {
            case "common": rule = .toNearestOrEven
            case "ceil": rule = .up
            case "floor": rule = .down
            default: throw JinjaError(line: 0, message: "method must be common, ceil or floor")
            }
            return .double((x * scale).rounded(rule) / scale)
        case "batch":
            guard let size = a.get(0, "linecount")?.integer, size > 0 else { throw JinjaError(line: 0, message: "batch needs a positive size") }
            let fill = a.get(1, "fill_with")
            let items = try iterate(value)
            // Filling pads the last batch to `size` items: sized before it is built.
            if fill != nil, !items.isEmpty { try JinjaInterpreter.checkCount(items.count + (size - items.count % size) % size) }
            try budget.spend(items.count)
            var batches: [JinjaValue] = []
            var i = 0
            while i < items.count {
                var chunk = Array(items[i..<min(i + size, items.count)])
                if let fill, chunk.count < size { chunk += Array(repeating: fill, count: size - chunk.count) }
                batches.append(.list(chunk))
                i += size
            }
            return .list(batches)
        case "sum":
            var total = a.get(1, "start") ?? .int(0)
            let attr = try a.get(0, "attribute").map { try $0.str(budget) }
            for item in try iterate(value) {
                total = try binary("+", total, try attr.map { try attributeValue(item, $0) } ?? item)
            }
            return total
        case "min", "max":
            let caseSensitive = a.bool(0, "case_sensitive", false)
            let attr = try a.get(1, "attribute").map { try $0.str(budget) }
            let s = try sorted(try iterate(value), reverse: name == "max") { item in
                sortKey(try attr.map { try attributeValue(item, $0) } ?? item, caseSensitive: caseSensitive)
            }
            return s.first ?? .undefined(hint: "No aggregated item, sequence was empty.")
        case "attr":
            return try getattr(value, try a.get(0, "name")?.str(budget) ?? "")
        case "wordcount":
            return .int(try PyString.split(try value.str(budget), nil, maxsplit: -1, budget).count)
        case "center":
            let width = a.get(0, "width")?.integer ?? 80
            let s = try value.str(budget)
            let n = s.unicodeScalars.count
            guard width > n else { return .string(s) }
            let total = min(width, JinjaInterpreter.maxOutputBytes) - n
            let left = total / 2 + (total & width & 1)
            return .string(String(repeating: " ", count: left) + s + String(repeating: " ", count: total - left))
        default:
            throw JinjaError(line: 0, message: "no filter named '\(name)'")
        }
    }

    // MARK: Tests

    func applyTest(_ name: String, _ value: JinjaValue, _ args: [JinjaValue]) throws -> Bool {
        func arg() throws -> JinjaValue {
            guard let first = args.first else { throw JinjaError(line: 0, message: "test '\(name)' needs an argument") }
            return first
        }
        switch name {
        case "defined": return !value.isUndefined
        case "undefined": return value.isUndefined
        case "none": return value.isNone
        case "string": if case .string = value { return true }; return false
        case "number": return value.number != nil
        case "integer": if case .int = value { return true }; return false
        case "float": if case .double = value { return true }; return false
        case "boolean": if case .bool = value { return true }; return false
        case "true": if case .bool(true) = value { return true }; return false
        case "false": if case .bool(false) = value { return true }; return false
        case "mapping": if case .dict = value { return true }; return false
        case "sequence", "iterable":
            switch value {
            case .string, .list, .tuple, .dict: return true
            default: return false
            }
        case "callable":
            switch value {
            case .macro, .builtin: return true
            default: return false
            }
        case "even", "odd":
            guard let i = value.integer else {
                throw JinjaError(line: 0, message: "test '\(name)' needs an integer, not \(value.typeName)")
            }
            return (i & 1 == 0) == (name == "even")
        case "divisibleby":
            guard let i = value.integer, let n = try arg().integer, n != 0 else {
                throw JinjaError(line: 0, message: "divisibleby needs nonzero integers")
            }
            // Int.min % -1 traps; every integer is divisible by -1.
            return n == -1 || i % n == 0
        case "eq", "equalto", "==": return try equal(value, try arg())
        case "ne", "!=": return try !equal(value, try arg())
        case "lt", "lessthan", "<": return try order("<", value, try arg())
        case "gt", "greaterthan", ">": return try order(">", value, try arg())
        case "le", "<=": return try order("<=", value, try arg())
        case "ge", ">=": return try order(">=", value, try arg())
        case "in": return try contains(try arg(), value)
        case "sameas":
            let other = try arg()
            switch (value, other) {
            case (.none, .none): return true
            case let (.bool(x), .bool(y)): return x == y
            case let (.namespace(x), .namespace(y)): return x === y
            default: return false
            }
        case "lower": let s = try value.str(budget); return s == s.lowercased()
        case "upper": let s = try value.str(budget); return s == s.uppercased()
        case "escaped": return false
        case "filter": return JinjaInterpreter.filterNames.contains(try value.str(budget))
        case "test": return JinjaInterpreter.testNames.contains(try value.str(budget))
        default: throw JinjaError(line: 0, message: "no test named '\(name)'")
        }
    }
}
