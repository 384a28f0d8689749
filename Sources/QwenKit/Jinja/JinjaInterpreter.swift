import Foundation

/// The work one render may do. Templates come from model files, so every operation that loops
/// (statements, expressions, loop iterations, comparisons, searches, copies, printing) spends
/// steps here, and a template that would run for minutes ends in a ``JinjaError`` instead.
/// One step is one element visited or 16 bytes copied or scanned.
final class JinjaBudget {
    /// Steps a render may take: 50 million. Qwen3's template takes about 4.3 million for a 2 MB
    /// conversation of 200 messages with 20 tools; a hostile template stops after a few seconds.
    static let defaultSteps = 50_000_000
    let limit: Int
    private var remaining: Int

    init(steps: Int = JinjaBudget.defaultSteps) {
        limit = steps
        remaining = steps
    }

    func spend(_ steps: Int) throws {
        remaining -= min(max(steps, 0), Int.max / 2)
        guard remaining >= 0 else {
            remaining = -1
            throw JinjaError(line: 0, message: "the template did more work than allowed (\(limit) steps): "
                             + "a loop, search, comparison or copy is too large")
        }
    }

    /// Steps spent so far.
    var used: Int { limit - max(remaining, 0) }

    /// Spends the steps for copying or scanning `bytes` bytes.
    func spendCopy(_ bytes: Int) throws {
        try spend(1 + bytes >> 4)
    }
}

/// Executes a parsed template. One instance per render; not shared across threads.
final class JinjaInterpreter {
    static let maxOutputBytes = 16 << 20
    static let maxIterations = 1_000_000
    static let maxCallDepth = 40
    static let maxCollection = 1_000_000
    static let maxRange = 100_000

    static let filterNames: Set<String> = [
        "tojson", "trim", "length", "count", "join", "default", "d", "items", "lower", "upper", "replace", "first",
        "last", "list", "string", "int", "float", "abs", "capitalize", "title", "safe", "map", "selectattr",
        "rejectattr", "select", "reject", "unique", "sort", "reverse", "indent", "dictsort", "round", "batch",
        "escape", "e", "forceescape", "sum", "min", "max", "attr", "wordcount", "center",
    ]
    static let testNames: Set<String> = [
        "defined", "undefined", "none", "string", "number", "integer", "float", "mapping", "sequence", "iterable",
        "boolean", "true", "false", "even", "odd", "divisibleby", "eq", "equalto", "==", "ne", "!=", "lt", "lessthan",
        "<", "gt", "greaterthan", ">", "le", "<=", "ge", ">=", "in", "sameas", "callable", "lower", "upper", "escaped",
        "filter", "test",
    ]
    static let builtinNames: Set<String> = ["range", "namespace", "raise_exception", "strftime_now", "dict"]

    enum Flow { case normal, breakLoop, continueLoop }

    private var scopes: [[String: JinjaValue]]
    private var buffers: [String] = [""]
    private var outputBytes = 0
    private var iterations = 0
    private var callDepth = 0
    private var evalDepth = 0
    let budget: JinjaBudget

    init(context: [String: JinjaValue], budget: JinjaBudget = JinjaBudget()) {
        scopes = [context]
        self.budget = budget
    }

    func render(_ nodes: [Node]) throws -> String {
        _ = try exec(nodes)
        return buffers.last ?? ""
    }

    // MARK: Output

    private func write(_ s: String) throws {
        outputBytes += s.utf8.count
        guard outputBytes <= JinjaInterpreter.maxOutputBytes else {
            throw JinjaError(line: 0, message: "template output exceeds \(JinjaInterpreter.maxOutputBytes) bytes")
        }
        buffers[buffers.count - 1] += s
    }

    private func capture(_ body: () throws -> Void) throws -> String {
        buffers.append("")
        defer { buffers.removeLast() }
        try body()
        return buffers.last ?? ""
    }

    static func checkSize(_ s: String) throws -> String {
        try checkSize(bytes: s.utf8.count)
        return s
    }

    /// Throws when a string of `bytes` bytes would be over the limit: called before building it.
    static func checkSize(bytes: Int) throws {
        guard bytes >= 0, bytes <= maxOutputBytes else {
            throw JinjaError(line: 0, message: "string longer than \(maxOutputBytes) bytes")
        }
    }

    static func checkCount(_ n: Int) throws {
        guard n <= maxCollection else { throw JinjaError(line: 0, message: "collection larger than \(maxCollection) items") }
    }

    // MARK: Scopes

    private func lookup(_ name: String) -> JinjaValue {
        for scope in scopes.reversed() {
            if let v = scope[name] { return v }
        }
        if JinjaInterpreter.builtinNames.contains(name) { return .builtin(name) }
        return .undefined(hint: "'\(name)' is undefined")
    }

    private func assign(_ name: String, _ value: JinjaValue) {
        scopes[scopes.count - 1][name] = value
    }

    private func withScope<T>(_ scope: [String: JinjaValue], _ body: () throws -> T) rethrows -> T {
        scopes.append(scope)
        defer { scopes.removeLast() }
        return try body()
    }

    // MARK: Statements

    private func exec(_ nodes: [Node]) throws -> Flow {
        for node in nodes {
            let flow: Flow
            do {
                try budget.spend(1)
                flow = try execNode(node)
            } catch var e as JinjaError where e.line == 0 {
                e.line = node.line
                throw e
            }
            if flow != .normal { return flow }
        }
        return .normal
    }

    private func execNode(_ node: Node) throws -> Flow {
        switch node.kind {
        case let .text(t):
            try write(t)
        case let .output(e):
            try write(try eval(e).str(budget))
        case let .ifBlock(branches, elseBody):
            for (condition, body) in branches {
                if try eval(condition).truthy { return try exec(body) }
            }
            return try exec(elseBody)
        case let .forBlock(targets, iterableExpr, condition, body, elseBody):
            return try execFor(targets: targets, iterableExpr: iterableExpr, condition: condition, body: body, elseBody: elseBody)
        case let .set(target, expr):
            let value = try eval(expr)
            switch target {
            case let .names(names):
                if names.count == 1 {
                    assign(names[0], value)
                } else {
                    let items = try iterate(value)
                    guard items.count == names.count else {
                        throw JinjaError(line: 0, message: "cannot unpack \(items.count) values into \(names.count) names")
                    }
                    for (n, v) in zip(names, items) { assign(n, v) }
                }
            case let .attribute(name, attr):
                guard case let .namespace(ns) = lookup(name) else {
                    throw JinjaError(line: 0, message: "cannot assign attribute on non-namespace object '\(name)'")
                }
                ns.dict[attr] = value
            }
        case let .setBlock(name, filters, body):
            var value = JinjaValue.string(try capture { _ = try exec(body) })
            for f in filters { value = try applyFilter(f.name, value, f.args, f.kwargs) }
            assign(name, value)
        case let .macro(name, params, body):
            assign(name, .macro(JinjaMacro(name: name, parameters: params, body: body)))
        case .breakLoop:
            return .breakLoop
        case .continueLoop:
            return .continueLoop
        case let .filterBlock(filters, body):
            var value = JinjaValue.string(try capture { _ = try withScope([:]) { try exec(body) } })
            for f in filters { value = try applyFilter(f.name, value, f.args, f.kwargs) }
            try write(try value.str(budget))
        case let .with(assignments, body):
            var scope: [String: JinjaValue] = [:]
            for (n, e) in assignments { scope[n] = try eval(e) }
            return try withScope(scope) { try exec(body) }
        case let .generation(body):
            return try exec(body)
        }
        return .normal
    }

    private func execFor(targets: [String], iterableExpr: Expr, condition: Expr?, body: [Node], elseBody: [Node]) throws -> Flow {
        var items = try iterate(try eval(iterableExpr))
        if let condition {
            var kept: [JinjaValue] = []
            try withScope([:]) {
                for item in items {
                    try countIteration()
                    try bind(targets, item)
                    if try eval(condition).truthy { kept.append(item) }
                }
            }
            items = kept
        }
        if items.isEmpty { return try exec(elseBody) }
        let length = items.count
        // Like Jinja2, each iteration starts from the enclosing scope: a `set` inside the body
        // is neither visible after the loop nor in the next iteration.
        for (i, item) in items.enumerated() {
            try countIteration()
            let flow: Flow = try withScope(["loop": .loop(JinjaLoop(items: items, index: i))]) {
                try bind(targets, item)
                return try exec(body)
            }
            if flow == .breakLoop { break }
        }
        return .normal
    }

    private func countIteration() throws {
        try budget.spend(1)
        iterations += 1
        guard iterations <= JinjaInterpreter.maxIterations else {
            throw JinjaError(line: 0, message: "too many loop iterations (more than \(JinjaInterpreter.maxIterations))")
        }
    }

    private func bind(_ targets: [String], _ item: JinjaValue) throws {
        if targets.count == 1 {
            assign(targets[0], item)
            return
        }
        let parts = try iterate(item)
        guard parts.count == targets.count else {
            throw JinjaError(line: 0, message: "cannot unpack \(parts.count) values into \(targets.count) loop variables")
        }
        for (t, v) in zip(targets, parts) { assign(t, v) }
    }

    // MARK: Expressions

    func eval(_ e: Expr) throws -> JinjaValue {
        evalDepth += 1
        defer { evalDepth -= 1 }
        guard evalDepth < 200 else { throw JinjaError(line: e.line, message: "expression nested too deeply") }
        do {
            try budget.spend(1)
            return try evalInner(e)
        } catch var err as JinjaError where err.line == 0 {
            err.line = e.line
            throw err
        }
    }

    private func evalInner(_ e: Expr) throws -> JinjaValue {
        switch e.kind {
        case let .literal(l):
            switch l {
            case .none: return .none
            case let .bool(b): return .bool(b)
            case let .int(i): return .int(i)
            case let .double(d): return .double(d)
            case let .string(s): return .string(s)
            }
        case let .name(n):
            return lookup(n)
        case let .list(items):
            return .list(try items.map(eval))
        case let .tuple(items):
            return .tuple(try items.map(eval))
        case let .dict(pairs):
            var d = JinjaDict()
            for (k, v) in pairs {
                let key = try eval(k)
                guard case let .string(ks) = key else { throw JinjaError(line: 0, message: "only string keys are supported in dict literals") }
                d[ks] = try eval(v)
            }
            return .dict(d)
        case let .getattr(objExpr, name):
            return try getattr(try eval(objExpr), name)
        case let .getitem(objExpr, keyExpr):
            return try getitem(try eval(objExpr), try eval(keyExpr))
        case let .slice(objExpr, a, b, c):
            let obj = try eval(objExpr)
            return try slice(obj, try a.map(eval), try b.map(eval), try c.map(eval))
        case let .call(callee, args, kwargs):
            let argValues = try args.map(eval)
            var kw: [(String, JinjaValue)] = []
            for (k, v) in kwargs { kw.append((k, try eval(v))) }
            if case let .getattr(objExpr, name) = callee.kind {
                let obj = try eval(objExpr)
                if let result = try callMethod(obj, name, argValues, kw) { return result }
                return try call(try getattr(obj, name), argValues, kw)
            }
            return try call(try eval(callee), argValues, kw)
        case let .filter(valueExpr, name, args, kwargs):
            if name == "default" || name == "d" {
                // default only needs the value; it must not fail on an undefined attribute chain.
                return try applyFilter(name, try eval(valueExpr), args, kwargs)
            }
            return try applyFilter(name, try eval(valueExpr), args, kwargs)
        case let .test(valueExpr, name, args, negated):
            let value = try eval(valueExpr)
            let result = try applyTest(name, value, try args.map(eval))
            return .bool(result != negated)
        case let .unary(op, operandExpr):
            let v = try eval(operandExpr)
            switch op {
            case "not": return .bool(!v.truthy)
            case "-":
                switch v {
                case let .int(i):
                    guard i != .min else { throw JinjaError(line: 0, message: "integer overflow") }
                    return .int(-i)
                case let .bool(b): return .int(b ? -1 : 0)
                case let .double(d): return .double(-d)
                default: throw typeError("bad operand type for unary -: '\(v.typeName)'", v)
                }
            default:
                guard v.number != nil else { throw typeError("bad operand type for unary +: '\(v.typeName)'", v) }
                if case .bool = v { return .int(v.integer ?? 0) }
                return v
            }
        case let .binary(op, lhs, rhs):
            if op == "and" {
                let l = try eval(lhs)
                return l.truthy ? try eval(rhs) : l
            }
            if op == "or" {
                let l = try eval(lhs)
                return l.truthy ? l : try eval(rhs)
            }
            return try binary(op, try eval(lhs), try eval(rhs))
        case let .compare(first, ops):
            var left = try eval(first)
            for (op, rhsExpr) in ops {
                let right = try eval(rhsExpr)
                let ok: Bool
                switch op {
                case "==": ok = try equal(left, right)
                case "!=": ok = try !equal(left, right)
                case "in": ok = try contains(right, left)
                case "notin": ok = try !contains(right, left)
                default: ok = try order(op, left, right)
                }
                if !ok { return .bool(false) }
                left = right
            }
            return .bool(true)
        case let .conditional(condition, thenExpr, elseExpr):
            if try eval(condition).truthy { return try eval(thenExpr) }
            if let elseExpr { return try eval(elseExpr) }
            return .undefined(hint: "the inline if expression evaluated to false and no else section was defined")
        }
    }

    private func typeError(_ message: String, _ operands: JinjaValue...) -> JinjaError {
        for v in operands {
            if case let .undefined(hint) = v { return JinjaError(line: 0, message: hint) }
        }
        return JinjaError(line: 0, message: message)
    }

    // MARK: Attribute and item access

    func getattr(_ obj: JinjaValue, _ name: String) throws -> JinjaValue {
        switch obj {
        case let .undefined(hint):
            throw JinjaError(line: 0, message: hint)
        case let .dict(d):
            if let v = d[name] { return v }
            return .undefined(hint: "'dict object' has no attribute '\(name)'")
        case let .namespace(ns):
            if let v = ns.dict[name] { return v }
            return .undefined(hint: "'Namespace object' has no attribute '\(name)'")
        case let .loop(l):
            if let v = l.attribute(name) { return v }
            return .undefined(hint: "'LoopContext object' has no attribute '\(name)'")
        default:
            return .undefined(hint: "'\(obj.typeName) object' has no attribute '\(name)'")
        }
    }

    func getitem(_ obj: JinjaValue, _ key: JinjaValue) throws -> JinjaValue {
        switch obj {
        case let .undefined(hint):
            throw JinjaError(line: 0, message: hint)
        case let .dict(d):
            if case let .string(k) = key, let v = d[k] { return v }
            return .undefined(hint: "'dict object' has no attribute \((try? key.repr(budget)) ?? "")")
        case let .list(items), let .tuple(items):
            guard let i = key.integer else {
                if case let .string(name) = key { return try getattr(obj, name) }
                return .undefined(hint: "'\(obj.typeName) object' has no attribute \((try? key.repr(budget)) ?? "")")
            }
            let idx = i < 0 ? i + items.count : i
            guard items.indices.contains(idx) else { return .undefined(hint: "\(obj.typeName) object has no element \(i)") }
            return items[idx]
        case let .string(s):
            guard let i = key.integer else { return .undefined(hint: "'str object' has no attribute \((try? key.repr(budget)) ?? "")") }
            let scalars = Array(s.unicodeScalars)
            let idx = i < 0 ? i + scalars.count : i
            guard scalars.indices.contains(idx) else { return .undefined(hint: "str object has no element \(i)") }
            return .string(String(scalars[idx]))
        case .namespace:
            if case let .string(name) = key { return try getattr(obj, name) }
            return .undefined(hint: "'Namespace object' has no attribute \((try? key.repr(budget)) ?? "")")
        default:
            return .undefined(hint: "'\(obj.typeName) object' has no attribute \((try? key.repr(budget)) ?? "")")
        }
    }

    private static func sliceIndices(count: Int, _ a: JinjaValue?, _ b: JinjaValue?, _ c: JinjaValue?) throws -> [Int] {
        func intOrNil(_ v: JinjaValue?) throws -> Int? {
            guard let v, !v.isNone else { return nil }
            guard let i = v.integer else { throw JinjaError(line: 0, message: "slice indices must be integers or None") }
            return i
        }
        let step = try intOrNil(c) ?? 1
        guard step != 0 else { throw JinjaError(line: 0, message: "slice step cannot be zero") }
        func clamp(_ v: Int?, _ def: Int) -> Int {
            guard var v else { return def }
            if v < 0 { v += count; if v < 0 { v = step < 0 ? -1 : 0 } }
            else if v >= count { v = step < 0 ? count - 1 : count }
            return v
        }
        let start = clamp(try intOrNil(a), step < 0 ? count - 1 : 0)
        let stop = clamp(try intOrNil(b), step < 0 ? -1 : count)
        var result: [Int] = []
        var i = start
        while step > 0 ? i < stop : i > stop {
            result.append(i)
            // A step near Int.max or Int.min steps past the end: stop there rather than overflow.
            let (next, overflow) = i.addingReportingOverflow(step)
            if overflow { break }
            i = next
        }
        return result
    }

    private func slice(_ obj: JinjaValue, _ a: JinjaValue?, _ b: JinjaValue?, _ c: JinjaValue?) throws -> JinjaValue {
        switch obj {
        case let .list(items):
            return .list(try JinjaInterpreter.sliceIndices(count: items.count, a, b, c).map { items[$0] })
        case let .tuple(items):
            return .tuple(try JinjaInterpreter.sliceIndices(count: items.count, a, b, c).map { items[$0] })
        case let .string(s):
            let scalars = Array(s.unicodeScalars)
            var out = String.UnicodeScalarView()
            for i in try JinjaInterpreter.sliceIndices(count: scalars.count, a, b, c) { out.append(scalars[i]) }
            return .string(String(out))
        case let .undefined(hint):
            throw JinjaError(line: 0, message: hint)
        default:
            throw JinjaError(line: 0, message: "'\(obj.typeName)' object is not subscriptable")
        }
    }

    // MARK: Calls

    private func call(_ callee: JinjaValue, _ args: [JinjaValue], _ kwargs: [(String, JinjaValue)]) throws -> JinjaValue {
        switch callee {
        case let .macro(m):
            return try callMacro(m, args, kwargs)
        case let .builtin(name):
            return try callBuiltin(name, args, kwargs)
        case let .undefined(hint):
            throw JinjaError(line: 0, message: hint)
        default:
            throw JinjaError(line: 0, message: "'\(callee.typeName)' object is not callable")
        }
    }

    private func callMacro(_ m: JinjaMacro, _ args: [JinjaValue], _ kwargs: [(String, JinjaValue)]) throws -> JinjaValue {
        // A call costs more than a step: its scopes and its captured output.
        try budget.spend(10)
        callDepth += 1
        defer { callDepth -= 1 }
        guard callDepth <= JinjaInterpreter.maxCallDepth else {
            throw JinjaError(line: 0, message: "macro calls nested more than \(JinjaInterpreter.maxCallDepth) deep")
        }
        let saved = scopes
        scopes = [scopes[0], [:]]
        defer { scopes = saved }
        var kw = Dictionary(kwargs, uniquingKeysWith: { _, b in b })
        for (i, (name, def)) in m.parameters.enumerated() {
            if i < args.count {
                assign(name, args[i])
            } else if let v = kw.removeValue(forKey: name) {
                assign(name, v)
            } else if let def {
                assign(name, try eval(def))
            } else {
                assign(name, .undefined(hint: "parameter '\(name)' was not provided"))
            }
        }
        assign("varargs", .list(args.count > m.parameters.count ? Array(args[m.parameters.count...]) : []))
        assign("kwargs", .dict(JinjaDict(kwargs.filter { kw[$0.0] != nil })))
        let text = try capture { _ = try exec(m.body) }
        return .string(text)
    }

    private func callBuiltin(_ name: String, _ args: [JinjaValue], _ kwargs: [(String, JinjaValue)]) throws -> JinjaValue {
        switch name {
        case "raise_exception":
            let message = try args.first?.str(budget) ?? ""
            throw JinjaError(line: 0, message: message, isRaisedByTemplate: true)
        case "range":
            guard !args.isEmpty, args.count <= 3, let ints = Optional(args.compactMap(\.integer)), ints.count == args.count else {
                throw JinjaError(line: 0, message: "range() expects 1 to 3 integer arguments")
            }
            let (start, stop, step) = ints.count == 1 ? (0, ints[0], 1) : (ints[0], ints[1], ints.count == 3 ? ints[2] : 1)
            guard step != 0 else { throw JinjaError(line: 0, message: "range() arg 3 must not be zero") }
            // The distance between two Ints always fits a UInt, and so does a step's magnitude.
            let distance: UInt = step > 0 ? (stop > start ? UInt(bitPattern: stop &- start) : 0)
                                          : (start > stop ? UInt(bitPattern: start &- stop) : 0)
            let count = distance == 0 ? 0 : (distance - 1) / step.magnitude + 1
            guard count <= UInt(JinjaInterpreter.maxRange) else {
                throw JinjaError(line: 0, message: "range too big (more than \(JinjaInterpreter.maxRange) items)")
            }
            // Each item lies between start and stop, so the wrapping arithmetic gives it exactly.
            return .list((0..<Int(count)).map { .int(start &+ $0 &* step) })
        case "namespace", "dict":
            var d = JinjaDict()
            for a in args {
                guard case let .dict(initial) = a else { throw JinjaError(line: 0, message: "\(name)() takes a mapping argument") }
                for (k, v) in initial.pairs { d[k] = v }
            }
            for (k, v) in kwargs { d[k] = v }
            return name == "dict" ? .dict(d) : .namespace(JinjaNamespace(d))
        case "strftime_now":
            return .string(JinjaInterpreter.strftime(try args.first?.str(budget) ?? "", Date()))
        default:
            throw JinjaError(line: 0, message: "unknown function '\(name)'")
        }
    }

    // MARK: Iteration, equality, ordering

    func iterate(_ v: JinjaValue) throws -> [JinjaValue] {
        switch v {
        case .undefined: return []
        case let .list(items), let .tuple(items): return items
        case let .string(s):
            try JinjaInterpreter.checkCount(s.unicodeScalars.count)
            try budget.spendCopy(s.utf8.count)
            return s.unicodeScalars.map { .string(String($0)) }
        case let .dict(d): return d.keys.map { .string($0) }
        default: throw JinjaError(line: 0, message: "'\(v.typeName)' object is not iterable")
        }
    }

    /// Python `==`, one budget step per element compared.
    func equal(_ a: JinjaValue, _ b: JinjaValue) throws -> Bool {
        try budget.spend(1)
        switch (a, b) {
        case (.undefined, .undefined), (.none, .none): return true
        case let (.string(x), .string(y)):
            try budget.spendCopy(min(x.utf8.count, y.utf8.count))
            return x.unicodeScalars.elementsEqual(y.unicodeScalars)
        case let (.list(x), .list(y)), let (.tuple(x), .tuple(y)):
            guard x.count == y.count else { return false }
            for (p, q) in zip(x, y) where try !equal(p, q) { return false }
            return true
        case let (.dict(x), .dict(y)):
            guard x.count == y.count else { return false }
            for (k, v) in x.pairs {
                guard let w = y[k], try equal(v, w) else { return false }
            }
            return true
        case let (.namespace(x), .namespace(y)): return x === y
        case let (.macro(x), .macro(y)): return x === y
        case let (.builtin(x), .builtin(y)): return x == y
        default:
            if let x = a.number, let y = b.number {
                if let i = a.integer, let j = b.integer { return i == j }
                return x == y
            }
            return false
        }
    }

    /// Python ordering for `<`, `<=`, `>`, `>=`; nil result means the types cannot be compared.
    func compare(_ a: JinjaValue, _ b: JinjaValue) throws -> Int? {
        try budget.spend(1)
        if let i = a.integer, let j = b.integer { return i < j ? -1 : i > j ? 1 : 0 }
        if let x = a.number, let y = b.number { return x < y ? -1 : x > y ? 1 : 0 }
        switch (a, b) {
        case let (.string(x), .string(y)):
            try budget.spendCopy(min(x.utf8.count, y.utf8.count))
            let xs = x.unicodeScalars.map(\.value), ys = y.unicodeScalars.map(\.value)
            if xs == ys { return 0 }
            return xs.lexicographicallyPrecedes(ys) ? -1 : 1
        case let (.list(x), .list(y)), let (.tuple(x), .tuple(y)):
            for (p, q) in zip(x, y) where try !equal(p, q) {
                return try compare(p, q)
            }
            return x.count < y.count ? -1 : x.count > y.count ? 1 : 0
        default:
            return nil
        }
    }

    func order(_ op: String, _ a: JinjaValue, _ b: JinjaValue) throws -> Bool {
        guard let c = try compare(a, b) else {
            for v in [a, b] { if case let .undefined(hint) = v { throw JinjaError(line: 0, message: hint) } }
            throw JinjaError(line: 0, message: "'\(op)' not supported between instances of '\(a.typeName)' and '\(b.typeName)'")
        }
        switch op {
        case "<": return c < 0
        case "<=": return c <= 0
        case ">": return c > 0
        default: return c >= 0
        }
    }

    func contains(_ container: JinjaValue, _ item: JinjaValue) throws -> Bool {
        switch container {
        case .undefined: return false
        case let .string(s):
            guard case let .string(needle) = item else {
                throw JinjaError(line: 0, message: "'in <string>' requires string as left operand, not \(item.typeName)")
            }
            return try PyString.find(Array(s.unicodeScalars), Array(needle.unicodeScalars), from: 0, budget) != nil
        case let .list(items), let .tuple(items):
            for x in items where try equal(x, item) { return true }
            return false
        case let .dict(d):
            if case let .string(k) = item { return d[k] != nil }
            return false
        case let .namespace(ns):
            if case let .string(k) = item { return ns.dict[k] != nil }
            return false
        default:
            throw JinjaError(line: 0, message: "argument of type '\(container.typeName)' is not iterable")
        }
    }

    // MARK: Arithmetic

    /// A binary operator. Integers are overflow-checked; strings and lists are sized before they
    /// are built and their copying costs budget steps.
    func binary(_ op: String, _ a: JinjaValue, _ b: JinjaValue) throws -> JinjaValue {
        if op == "~" {
            let x = try a.str(budget), y = try b.str(budget)
            try JinjaInterpreter.checkSize(bytes: x.utf8.count + y.utf8.count)
            try budget.spendCopy(x.utf8.count + y.utf8.count)
            return .string(x + y)
        }
        for v in [a, b] { if case let .undefined(hint) = v { throw JinjaError(line: 0, message: hint) } }
        func unsupported() -> JinjaError {
            JinjaError(line: 0, message: "unsupported operand type(s) for \(op): '\(a.typeName)' and '\(b.typeName)'")
        }
        func overflow() -> JinjaError { JinjaError(line: 0, message: "integer overflow in '\(op)'") }
        switch op {
        case "+":
            switch (a, b) {
            case let (.string(x), .string(y)):
                try JinjaInterpreter.checkSize(bytes: x.utf8.count + y.utf8.count)
                try budget.spendCopy(x.utf8.count + y.utf8.count)
                return .string(x + y)
            case let (.list(x), .list(y)):
                try JinjaInterpreter.checkCount(x.count + y.count)
                try budget.spend(x.count + y.count)
                return .list(x + y)
            case let (.tuple(x), .tuple(y)):
                try JinjaInterpreter.checkCount(x.count + y.count)
                try budget.spend(x.count + y.count)
                return .tuple(x + y)
            default: break
            }
            if let i = a.integer, let j = b.integer {
                let (r, o) = i.addingReportingOverflow(j)
                if o { throw overflow() }
                return .int(r)
            }
            if let x = a.number, let y = b.number { return .double(x + y) }
            throw unsupported()
        case "-":
            if let i = a.integer, let j = b.integer {
                let (r, o) = i.subtractingReportingOverflow(j)
                if o { throw overflow() }
                return .int(r)
            }
            if let x = a.number, let y = b.number { return .double(x - y) }
            throw unsupported()
        case "*":
            if let i = a.integer, let j = b.integer {
                let (r, o) = i.multipliedReportingOverflow(by: j)
                if o { throw overflow() }
                return .int(r)
            }
            if let x = a.number, let y = b.number, a.integer == nil || b.integer == nil { return .double(x * y) }
            /// How many copies to make: none of an empty value (however many are asked for),
            /// else as many as fit the limit on `unit`-sized copies.
            func repeatCount(_ n: Int, _ unit: Int, limit: Int) throws -> Int {
                guard unit > 0, n > 0 else { return 0 }
                guard n <= limit / unit else { throw JinjaError(line: 0, message: "repetition result too large") }
                try budget.spend(n * unit >> 4 + n)
                return n
            }
            switch (a, b) {
            case let (.string(s), .int(n)), let (.int(n), .string(s)):
                return .string(String(repeating: s, count: try repeatCount(n, s.utf8.count, limit: JinjaInterpreter.maxOutputBytes)))
            case let (.list(l), .int(n)), let (.int(n), .list(l)):
                let c = try repeatCount(n, l.count, limit: JinjaInterpreter.maxCollection)
                return .list(Array([[JinjaValue]](repeating: l, count: c).joined()))
            default: throw unsupported()
            }
        case "/":
            guard let x = a.number, let y = b.number else { throw unsupported() }
            guard y != 0 else { throw JinjaError(line: 0, message: "division by zero") }
            return .double(x / y)
        case "//", "%":
            if let i = a.integer, let j = b.integer {
                guard j != 0 else { throw JinjaError(line: 0, message: "integer division or modulo by zero") }
                if i == .min && j == -1 { throw overflow() }
                var q = i / j
                var r = i % j
                if r != 0 && ((r < 0) != (j < 0)) { q -= 1; r += j }
                return .int(op == "//" ? q : r)
            }
            guard let x = a.number, let y = b.number else { throw unsupported() }
            guard y != 0 else { throw JinjaError(line: 0, message: "float division or modulo by zero") }
            if op == "//" { return .double((x / y).rounded(.down)) }
            var r = fmod(x, y)
            if r != 0 && ((r < 0) != (y < 0)) { r += y }
            return .double(r)
        case "**":
            if let i = a.integer, let j = b.integer, j >= 0 {
                var result = 1
                var e = j
                var base = i
                while e > 0 {
                    if e & 1 == 1 {
                        let (r, o) = result.multipliedReportingOverflow(by: base)
                        if o { throw overflow() }
                        result = r
                    }
                    e >>= 1
                    if e > 0 {
                        let (s, o) = base.multipliedReportingOverflow(by: base)
                        if o { throw overflow() }
                        base = s
                    }
                }
                return .int(result)
            }
            guard let x = a.number, let y = b.number else { throw unsupported() }
            return .double(pow(x, y))
        default:
            throw JinjaError(line: 0, message: "unknown operator '\(op)'")
        }
    }

    // MARK: strftime

    static func strftime(_ format: String, _ date: Date) -> String {
        let calendar = Calendar(identifier: .gregorian)
        let c = calendar.dateComponents(in: TimeZone.current, from: date)
        let months = ["January", "February", "March", "April", "May", "June", "July", "August", "September", "October", "November", "December"]
        let days = ["Sunday", "Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday"]
        let year = c.year ?? 1970, month = c.month ?? 1, day = c.day ?? 1
        let hour = c.hour ?? 0, minute = c.minute ?? 0, second = c.second ?? 0, weekday = (c.weekday ?? 1) - 1
        let dayOfYear = calendar.ordinality(of: .day, in: .year, for: date) ?? 1
        func pad(_ v: Int, _ w: Int = 2) -> String {
            let s = String(v)
            return s.count >= w ? s : String(repeating: "0", count: w - s.count) + s
        }
        var out = ""
        var chars = Array(format)
        chars.append("\0")
        var i = 0
        while i < chars.count - 1 {
            let ch = chars[i]
            guard ch == "%" else { out.append(ch); i += 1; continue }
            var spec = chars[i + 1]
            var noPad = false
            if spec == "-" && i + 2 < chars.count - 1 { noPad = true; spec = chars[i + 2]; i += 1 }
            i += 2
            func num(_ v: Int, _ w: Int = 2) -> String { noPad ? String(v) : pad(v, w) }
            switch spec {
            case "Y": out += String(year)
            case "y": out += num(year % 100)
            case "m": out += num(month)
            case "d": out += num(day)
            case "e": out += noPad ? String(day) : (day < 10 ? " " : "") + String(day)
            case "H": out += num(hour)
            case "I": out += num(hour % 12 == 0 ? 12 : hour % 12)
            case "M": out += num(minute)
            case "S": out += num(second)
            case "p": out += hour < 12 ? "AM" : "PM"
            case "B": out += months[month - 1]
            case "b", "h": out += String(months[month - 1].prefix(3))
            case "A": out += days[weekday]
            case "a": out += String(days[weekday].prefix(3))
            case "j": out += num(dayOfYear, 3)
            case "%": out += "%"
            case "\0": out += "%"
            default: out += "%" + String(spec)
            }
        }
        return out
    }
}
