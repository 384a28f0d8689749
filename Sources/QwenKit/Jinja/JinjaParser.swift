/// The template's syntax tree.
enum Literal: Sendable {
    case none, bool(Bool), int(Int), double(Double), string(String)
}

indirect enum ExprKind: Sendable {
    case literal(Literal)
    case name(String)
    case list([Expr])
    case tuple([Expr])
    case dict([(Expr, Expr)])
    case getattr(Expr, String)
    case getitem(Expr, Expr)
    case slice(Expr, Expr?, Expr?, Expr?)
    case call(Expr, [Expr], [(String, Expr)])
    case filter(Expr, String, [Expr], [(String, Expr)])
    case test(Expr, String, [Expr], negated: Bool)
    case unary(String, Expr)
    case binary(String, Expr, Expr)
    case compare(Expr, [(String, Expr)])
    case conditional(Expr, Expr, Expr?)
}

struct Expr: Sendable {
    var kind: ExprKind
    var line: Int
    /// Height of this subtree; the parser rejects very deep trees (see `JinjaParser.maxExprHeight`)
    /// so that evaluating and releasing them cannot exhaust the stack.
    var height: Int

    init(kind: ExprKind, line: Int) {
        self.kind = kind
        self.line = line
        var children: [Expr] = []
        switch kind {
        case .literal, .name: break
        case let .list(items), let .tuple(items): children = items
        case let .dict(pairs): children = pairs.flatMap { [$0.0, $0.1] }
        case let .getattr(e, _): children = [e]
        case let .getitem(a, b): children = [a, b]
        case let .slice(e, a, b, c): children = [e] + [a, b, c].compactMap { $0 }
        case let .call(e, args, kwargs): children = [e] + args + kwargs.map(\.1)
        case let .filter(e, _, args, kwargs): children = [e] + args + kwargs.map(\.1)
        case let .test(e, _, args, _): children = [e] + args
        case let .unary(_, e): children = [e]
        case let .binary(_, a, b): children = [a, b]
        case let .compare(e, ops): children = [e] + ops.map(\.1)
        case let .conditional(a, b, c): children = [a, b] + (c.map { [$0] } ?? [])
        }
        height = 1 + (children.map(\.height).max() ?? 0)
    }
}

enum SetTarget: Sendable {
    case names([String])
    case attribute(String, String)
}

struct FilterCall: Sendable {
    var name: String
    var args: [Expr]
    var kwargs: [(String, Expr)]
}

indirect enum NodeKind: Sendable {
    case text(String)
    case output(Expr)
    case ifBlock([(Expr, [Node])], [Node])
    case forBlock(targets: [String], iterable: Expr, condition: Expr?, body: [Node], elseBody: [Node])
    case set(SetTarget, Expr)
    case setBlock(String, [FilterCall], [Node])
    case macro(String, [(String, Expr?)], [Node])
    case breakLoop, continueLoop
    case filterBlock([FilterCall], [Node])
    case with([(String, Expr)], [Node])
    case generation([Node])
}

struct Node: Sendable {
    var kind: NodeKind
    var line: Int
}

struct JinjaParser {
    private let tokens: [Token]
    private var index = 0
    private var depth = 0
    static let maxDepth = 64

    init(tokens: [Token]) { self.tokens = tokens }

    static func parse(_ source: String) throws -> [Node] {
        var parser = JinjaParser(tokens: try JinjaLexer.tokenize(source))
        let (nodes, end) = try parser.subparse(endTags: [])
        if let end { throw JinjaError(line: end.line, message: "unexpected '\(end.name)' tag") }
        return nodes
    }

    // MARK: Token helpers

    private var current: Token { tokens[min(index, tokens.count - 1)] }
    private var line: Int { current.line }
    private mutating func next() -> Token {
        let t = current
        if index < tokens.count - 1 { index += 1 }
        return t
    }

    private func error(_ message: String, line: Int? = nil) -> JinjaError {
        JinjaError(line: line ?? self.line, message: message)
    }

    private func isOp(_ op: String) -> Bool { current.kind == .op(op) }
    private func isName(_ name: String) -> Bool { current.kind == .name(name) }

    private static func describe(_ kind: TokenKind) -> String {
        switch kind {
        case let .text(t): return "template text '\(t.prefix(20))'"
        case .variableBegin: return "'{{'"
        case .variableEnd: return "'}}'"
        case .blockBegin: return "'{%'"
        case .blockEnd: return "'%}'"
        case let .name(n): return "'\(n)'"
        case .string: return "string literal"
        case let .int(i): return "'\(i)'"
        case let .float(d): return "'\(d)'"
        case let .op(o): return "'\(o)'"
        case .eof: return "end of template"
        }
    }

    private mutating func expectOp(_ op: String) throws {
        guard isOp(op) else { throw error("expected '\(op)', found \(JinjaParser.describe(current.kind))") }
        _ = next()
    }

    private mutating func expectName() throws -> String {
        guard case let .name(n) = current.kind else { throw error("expected a name, found \(JinjaParser.describe(current.kind))") }
        _ = next()
        return n
    }

    private mutating func expectBlockEnd() throws {
        guard current.kind == .blockEnd else { throw error("expected '%}', found \(JinjaParser.describe(current.kind))") }
        _ = next()
    }

    private mutating func enter() throws {
        depth += 1
        guard depth <= JinjaParser.maxDepth else { throw error("template nested too deeply") }
    }

    // MARK: Statements

    struct EndTag { var name: String; var line: Int }

    /// Parses nodes until `{% <one of endTags>` (the tag name is consumed, the rest is not) or EOF.
    private mutating func subparse(endTags: Set<String>) throws -> ([Node], EndTag?) {
        var nodes: [Node] = []
        while true {
            let token = current
            switch token.kind {
            case .eof:
                return (nodes, nil)
            case let .text(t):
                _ = next()
                nodes.append(Node(kind: .text(t), line: token.line))
            case .variableBegin:
                _ = next()
                let e = try parseTuple()
                guard current.kind == .variableEnd else { throw error("expected '}}', found \(JinjaParser.describe(current.kind))") }
                _ = next()
                nodes.append(Node(kind: .output(e), line: token.line))
            case .blockBegin:
                _ = next()
                guard case let .name(tag) = current.kind else { throw error("expected a statement name after '{%'") }
                if endTags.contains(tag) {
                    _ = next()
                    return (nodes, EndTag(name: tag, line: token.line))
                }
                nodes.append(try parseStatement())
            default:
                throw error("unexpected \(JinjaParser.describe(token.kind))")
            }
        }
    }

    private mutating func parseBody(_ blockName: String, openedAt: Int, endTags: Set<String>) throws -> ([Node], EndTag) {
        try enter()
        defer { depth -= 1 }
        let (nodes, end) = try subparse(endTags: endTags)
        guard let end else {
            let wanted = endTags.sorted().map { "'\($0)'" }.joined(separator: " or ")
            throw error("unexpected end of template: the '\(blockName)' block opened on line \(openedAt) is never closed (expected \(wanted))", line: openedAt)
        }
        return (nodes, end)
    }

    private mutating func parseStatement() throws -> Node {
        let startLine = line
        let tag = try expectName()
        switch tag {
        case "if":
            var branches: [(Expr, [Node])] = []
            var condition = try parseTuple()
            try expectBlockEnd()
            while true {
                let (body, end) = try parseBody("if", openedAt: startLine, endTags: ["elif", "else", "endif"])
                branches.append((condition, body))
                switch end.name {
                case "elif":
                    condition = try parseTuple()
                    try expectBlockEnd()
                case "else":
                    try expectBlockEnd()
                    let (elseBody, _) = try parseBody("if", openedAt: startLine, endTags: ["endif"])
                    try expectBlockEnd()
                    return Node(kind: .ifBlock(branches, elseBody), line: startLine)
                default:
                    try expectBlockEnd()
                    return Node(kind: .ifBlock(branches, []), line: startLine)
                }
            }
        case "for":
            var targets: [String] = []
            let parenthesized = isOp("(")
            if parenthesized { _ = next() }
            repeat {
                if !targets.isEmpty { _ = next() }
                targets.append(try expectName())
            } while isOp(",")
            if parenthesized { try expectOp(")") }
            guard isName("in") else { throw error("expected 'in' in for loop") }
            _ = next()
            let iterable = try parseTuple(withCondexpr: false)
            var condition: Expr?
            if isName("if") {
                _ = next()
                condition = try parseExpression()
            }
            if isName("recursive") { throw error("recursive for loops are not supported") }
            try expectBlockEnd()
            let (body, end) = try parseBody("for", openedAt: startLine, endTags: ["endfor", "else"])
            var elseBody: [Node] = []
            if end.name == "else" {
                try expectBlockEnd()
                (elseBody, _) = try parseBody("for", openedAt: startLine, endTags: ["endfor"])
            }
            try expectBlockEnd()
            return Node(kind: .forBlock(targets: targets, iterable: iterable, condition: condition, body: body, elseBody: elseBody), line: startLine)
        case "set":
            let first = try expectName()
            if isOp(".") {
                _ = next()
                let attr = try expectName()
                try expectOp("=")
                let value = try parseTuple()
                try expectBlockEnd()
                return Node(kind: .set(.attribute(first, attr), value), line: startLine)
            }
            var names = [first]
            while isOp(",") {
                _ = next()
                names.append(try expectName())
            }
            if isOp("=") {
                _ = next()
                let value = try parseTuple()
                try expectBlockEnd()
                return Node(kind: .set(.names(names), value), line: startLine)
            }
            guard names.count == 1 else { throw error("expected '='") }
            let filters = try parseFilterChain()
            try expectBlockEnd()
            let (body, _) = try parseBody("set", openedAt: startLine, endTags: ["endset"])
            try expectBlockEnd()
            return Node(kind: .setBlock(first, filters, body), line: startLine)
        case "macro":
            let name = try expectName()
            try expectOp("(")
            var params: [(String, Expr?)] = []
            while !isOp(")") {
                if !params.isEmpty { try expectOp(",") }
                if isOp(")") { break }
                let p = try expectName()
                var def: Expr?
                if isOp("=") {
                    _ = next()
                    def = try parseExpression()
                }
                params.append((p, def))
            }
            _ = next()
            try expectBlockEnd()
            let (body, _) = try parseBody("macro", openedAt: startLine, endTags: ["endmacro"])
            if case .name = current.kind { _ = next() }  // {% endmacro name %}
            try expectBlockEnd()
            return Node(kind: .macro(name, params, body), line: startLine)
        case "break", "continue":
            try expectBlockEnd()
            return Node(kind: tag == "break" ? .breakLoop : .continueLoop, line: startLine)
        case "filter":
            let filters = try parseFilterChain(leadingPipe: false)
            try expectBlockEnd()
            let (body, _) = try parseBody("filter", openedAt: startLine, endTags: ["endfilter"])
            try expectBlockEnd()
            return Node(kind: .filterBlock(filters, body), line: startLine)
        case "with":
            var assignments: [(String, Expr)] = []
            while current.kind != .blockEnd {
                if !assignments.isEmpty { try expectOp(",") }
                let n = try expectName()
                try expectOp("=")
                assignments.append((n, try parseExpression()))
            }
            try expectBlockEnd()
            let (body, _) = try parseBody("with", openedAt: startLine, endTags: ["endwith"])
            try expectBlockEnd()
            return Node(kind: .with(assignments, body), line: startLine)
        case "generation":
            try expectBlockEnd()
            let (body, _) = try parseBody("generation", openedAt: startLine, endTags: ["endgeneration"])
            try expectBlockEnd()
            return Node(kind: .generation(body), line: startLine)
        default:
            throw error("unknown or unsupported tag '\(tag)'", line: startLine)
        }
    }

    private mutating func parseFilterChain(leadingPipe: Bool = true) throws -> [FilterCall] {
        var filters: [FilterCall] = []
        while leadingPipe ? isOp("|") : (filters.isEmpty || isOp("|")) {
            if isOp("|") { _ = next() }
            filters.append(try parseFilterCall())
        }
        return filters
    }

    private mutating func parseFilterCall() throws -> FilterCall {
        let filterLine = line
        var name = try expectName()
        while isOp(".") {
            _ = next()
            name += "." + (try expectName())
        }
        guard JinjaInterpreter.filterNames.contains(name) else {
            throw error("no filter named '\(name)'", line: filterLine)
        }
        var args: [Expr] = []
        var kwargs: [(String, Expr)] = []
        if isOp("(") { (args, kwargs) = try parseCallArguments() }
        return FilterCall(name: name, args: args, kwargs: kwargs)
    }

    // MARK: Expressions

    /// A comma-separated list without brackets becomes a tuple (`{{ a, b }}`, `for x in a, b`).
    private mutating func parseTuple(withCondexpr: Bool = true) throws -> Expr {
        let startLine = line
        let first = withCondexpr ? try parseExpression() : try parseOr()
        guard isOp(",") else { return first }
        var items = [first]
        while isOp(",") {
            _ = next()
            if current.kind == .blockEnd || current.kind == .variableEnd || isOp(")") || isName("if") { break }
            items.append(withCondexpr ? try parseExpression() : try parseOr())
        }
        return try makeExpr(kind: .tuple(items), line: startLine)
    }

    static let maxExprHeight = 150

    /// Builds an expression node, refusing trees too tall to evaluate or release safely.
    private func makeExpr(kind: ExprKind, line: Int) throws -> Expr {
        let e = Expr(kind: kind, line: line)
        guard e.height <= JinjaParser.maxExprHeight else { throw error("expression too deeply nested or too long", line: line) }
        return e
    }

    mutating func parseExpression() throws -> Expr {
        let e = try parseExpressionUnchecked()
        guard e.height <= JinjaParser.maxExprHeight else { throw error("expression too deeply nested or too long", line: e.line) }
        return e
    }

    private mutating func parseExpressionUnchecked() throws -> Expr {
        try enter()
        defer { depth -= 1 }
        let startLine = line
        var expr = try parseOr()
        while isName("if") {
            _ = next()
            let condition = try parseOr()
            var elseExpr: Expr?
            if isName("else") {
                _ = next()
                elseExpr = try parseExpression()
            }
            expr = try makeExpr(kind: .conditional(condition, expr, elseExpr), line: startLine)
        }
        return expr
    }

    private mutating func parseOr() throws -> Expr {
        var left = try parseAnd()
        while isName("or") {
            let l = line
            _ = next()
            left = try makeExpr(kind: .binary("or", left, try parseAnd()), line: l)
        }
        return left
    }

    private mutating func parseAnd() throws -> Expr {
        var left = try parseNot()
        while isName("and") {
            let l = line
            _ = next()
            left = try makeExpr(kind: .binary("and", left, try parseNot()), line: l)
        }
        return left
    }

    private mutating func parseNot() throws -> Expr {
        if isName("not") {
            let l = line
            _ = next()
            try enter()
            defer { depth -= 1 }
            return try makeExpr(kind: .unary("not", try parseNot()), line: l)
        }
        return try parseCompare()
    }

    private mutating func parseCompare() throws -> Expr {
        let startLine = line
        let left = try parseMath1()
        var ops: [(String, Expr)] = []
        while true {
            if case let .op(o) = current.kind, ["==", "!=", "<", ">", "<=", ">="].contains(o) {
                _ = next()
                ops.append((o, try parseMath1()))
            } else if isName("in") {
                _ = next()
                ops.append(("in", try parseMath1()))
            } else if isName("not"), index + 1 < tokens.count, tokens[index + 1].kind == .name("in") {
                _ = next(); _ = next()
                ops.append(("notin", try parseMath1()))
            } else {
                break
            }
        }
        return ops.isEmpty ? left : try makeExpr(kind: .compare(left, ops), line: startLine)
    }

    private mutating func parseMath1() throws -> Expr {
        var left = try parseConcat()
        while isOp("+") || isOp("-") {
            let l = line
            guard case let .op(o) = next().kind else { break }
            left = try makeExpr(kind: .binary(o, left, try parseConcat()), line: l)
        }
        return left
    }

    private mutating func parseConcat() throws -> Expr {
        var left = try parseMath2()
        while isOp("~") {
            let l = line
            _ = next()
            left = try makeExpr(kind: .binary("~", left, try parseMath2()), line: l)
        }
        return left
    }

    private mutating func parseMath2() throws -> Expr {
        var left = try parsePow()
        while isOp("*") || isOp("/") || isOp("//") || isOp("%") {
            let l = line
            guard case let .op(o) = next().kind else { break }
            left = try makeExpr(kind: .binary(o, left, try parsePow()), line: l)
        }
        return left
    }

    private mutating func parsePow() throws -> Expr {
        var left = try parseUnary()
        while isOp("**") {
            let l = line
            _ = next()
            left = try makeExpr(kind: .binary("**", left, try parseUnary()), line: l)
        }
        return left
    }

    private mutating func parseUnary(withFilter: Bool = true) throws -> Expr {
        try enter()
        defer { depth -= 1 }
        let l = line
        var node: Expr
        if isOp("-") || isOp("+") {
            guard case let .op(o) = next().kind else { throw error("internal") }
            node = try makeExpr(kind: .unary(o, try parseUnary(withFilter: false)), line: l)
        } else {
            node = try parsePrimary()
        }
        node = try parsePostfix(node)
        if withFilter { node = try parseFilterExpr(node) }
        return node
    }

    private mutating func parsePrimary() throws -> Expr {
        let token = current
        let l = token.line
        switch token.kind {
        case let .name(n):
            _ = next()
            switch n {
            case "true", "True": return try makeExpr(kind: .literal(.bool(true)), line: l)
            case "false", "False": return try makeExpr(kind: .literal(.bool(false)), line: l)
            case "none", "None": return try makeExpr(kind: .literal(.none), line: l)
            default: return try makeExpr(kind: .name(n), line: l)
            }
        case var .string(s):
            _ = next()
            while case let .string(more) = current.kind {
                s += more
                _ = next()
            }
            return try makeExpr(kind: .literal(.string(s)), line: l)
        case let .int(i):
            _ = next()
            return try makeExpr(kind: .literal(.int(i)), line: l)
        case let .float(d):
            _ = next()
            return try makeExpr(kind: .literal(.double(d)), line: l)
        case .op("("):
            _ = next()
            if isOp(")") {
                _ = next()
                return try makeExpr(kind: .tuple([]), line: l)
            }
            let first = try parseExpression()
            if isOp(")") {
                _ = next()
                return first
            }
            var items = [first]
            while isOp(",") {
                _ = next()
                if isOp(")") { break }
                items.append(try parseExpression())
            }
            try expectOp(")")
            return try makeExpr(kind: .tuple(items), line: l)
        case .op("["):
            _ = next()
            var items: [Expr] = []
            while !isOp("]") {
                if !items.isEmpty { try expectOp(","); if isOp("]") { break } }
                items.append(try parseExpression())
            }
            _ = next()
            return try makeExpr(kind: .list(items), line: l)
        case .op("{"):
            _ = next()
            var items: [(Expr, Expr)] = []
            while !isOp("}") {
                if !items.isEmpty { try expectOp(","); if isOp("}") { break } }
                let k = try parseExpression()
                try expectOp(":")
                items.append((k, try parseExpression()))
            }
            _ = next()
            return try makeExpr(kind: .dict(items), line: l)
        default:
            throw error("unexpected \(JinjaParser.describe(token.kind))")
        }
    }

    private mutating func parsePostfix(_ start: Expr) throws -> Expr {
        var node = start
        while true {
            let l = line
            if isOp(".") {
                _ = next()
                switch current.kind {
                case let .name(n):
                    _ = next()
                    node = try makeExpr(kind: .getattr(node, n), line: l)
                case let .int(i):
                    _ = next()
                    node = try makeExpr(kind: .getitem(node, try makeExpr(kind: .literal(.int(i)), line: l)), line: l)
                default:
                    throw error("expected an attribute name after '.'")
                }
            } else if isOp("[") {
                _ = next()
                node = try parseSubscript(node)
            } else if isOp("(") {
                let (args, kwargs) = try parseCallArguments()
                node = try makeExpr(kind: .call(node, args, kwargs), line: l)
            } else {
                return node
            }
        }
    }

    private mutating func parseSubscript(_ target: Expr) throws -> Expr {
        let l = line
        var parts: [Expr?] = []
        var current: Expr?
        var sawColon = false
        while !isOp("]") {
            if isOp(":") {
                _ = next()
                parts.append(current)
                current = nil
                sawColon = true
                guard parts.count <= 2 else { throw error("too many ':' in subscript") }
            } else {
                guard current == nil else { throw error("expected ']' in subscript") }
                current = try parseExpression()
            }
        }
        _ = next()
        parts.append(current)
        if !sawColon {
            guard let key = current else { throw error("empty subscript") }
            return try makeExpr(kind: .getitem(target, key), line: l)
        }
        while parts.count < 3 { parts.append(nil) }
        return try makeExpr(kind: .slice(target, parts[0], parts[1], parts[2]), line: l)
    }

    private mutating func parseCallArguments() throws -> ([Expr], [(String, Expr)]) {
        try expectOp("(")
        var args: [Expr] = []
        var kwargs: [(String, Expr)] = []
        while !isOp(")") {
            if !args.isEmpty || !kwargs.isEmpty { try expectOp(","); if isOp(")") { break } }
            if isOp("*") || isOp("**") { throw error("*args and **kwargs in calls are not supported") }
            if case let .name(n) = current.kind, index + 1 < tokens.count, tokens[index + 1].kind == .op("=") {
                _ = next(); _ = next()
                kwargs.append((n, try parseExpression()))
            } else {
                guard kwargs.isEmpty else { throw error("positional argument after keyword argument") }
                args.append(try parseExpression())
            }
        }
        _ = next()
        return (args, kwargs)
    }

    private mutating func parseFilterExpr(_ start: Expr) throws -> Expr {
        var node = start
        while true {
            let l = line
            if isOp("|") {
                _ = next()
                let f = try parseFilterCall()
                node = try makeExpr(kind: .filter(node, f.name, f.args, f.kwargs), line: l)
            } else if isName("is") {
                _ = next()
                var negated = false
                if isName("not") { _ = next(); negated = true }
                var name = try expectName()
                while isOp(".") { _ = next(); name += "." + (try expectName()) }
                guard JinjaInterpreter.testNames.contains(name) else { throw error("no test named '\(name)'", line: l) }
                var args: [Expr] = []
                if isOp("(") {
                    let (a, kw) = try parseCallArguments()
                    args = a + kw.map(\.1)
                } else {
                    switch current.kind {
                    case .name("else"), .name("or"), .name("and"), .name("if"), .name("in"), .name("not"), .name("is"): break
                    case .name, .string, .int, .float, .op("["), .op("{"):
                        args = [try parsePostfix(try parsePrimary())]
                    case .op("-"):
                        args = [try parseUnary(withFilter: false)]
                    default: break
                    }
                }
                node = try makeExpr(kind: .test(node, name, args, negated: negated), line: l)
            } else if isOp("(") {
                let (args, kwargs) = try parseCallArguments()
                node = try makeExpr(kind: .call(node, args, kwargs), line: l)
            } else {
                return node
            }
        }
    }
}
