/// NFC as the reference computes it, in time linear in the input.
///
/// The reference's NFC (`tokenizers`, crate `unicode-normalization-alignments`) uses Unicode
/// 9.0 data: a character assigned later has, for it, combining class 0, no decomposition and
/// no composition. The tables here (`NormalizationData.swift`) are newer; by the Unicode
/// normalization stability policy they agree with 9.0 on every character 9.0 assigned, so every
/// entry that involves a later character is dropped when they are loaded, which makes such a
/// character an inert starter, exactly as for the reference.
///
/// The algorithm is UAX #15's, applied segment by segment. A segment starts at a character
/// before which nothing can change: its decomposition starts with a starter (class 0) that
/// never composes with a preceding character. Such a character neither moves nor merges
/// with what comes before it, so NFC(a + b) = NFC(a) + NFC(b) when `b` starts with one. Each
/// segment is decomposed, put in canonical order (a stable sort of each run of non-starters
/// by combining class: insertion sort for short runs, a counting sort for long ones), and
/// composed. Every step is linear in the segment's length, so a megabyte of combining marks
/// or of conjoining jamo costs what a megabyte of text does. (Foundation's NFC on Linux sorts
/// marks with a quadratic bubble sort and is quadratic on long jamo runs as well.)
enum Normalization {
    /// The Unicode version of the reference's normalization tables.
    static let referenceVersion = (major: 9, minor: 0)

    /// The NFC form of `text`.
    static func nfc(_ text: String) -> String {
        // ASCII is always in NFC.
        if text.utf8.allSatisfy({ $0 < 0x80 }) { return text }
        var normalizer = NFCNormalizer()
        var output: [Unicode.Scalar] = []
        for scalar in text.unicodeScalars { normalizer.append(scalar, to: &output) }
        normalizer.finish(to: &output)
        var result = String.UnicodeScalarView()
        result.append(contentsOf: output)
        return String(result)
    }

    // MARK: - Tables

    /// Per-character facts, for code points below `Tables.size` (none above has any).
    struct Flags: OptionSet {
        let rawValue: UInt8
        /// A segment cannot start here: the character has a non-zero class, can compose with
        /// a preceding character, or decomposes into something that starts so.
        static let continuesSegment = Flags(rawValue: 1)
        /// Has a canonical decomposition.
        static let decomposes = Flags(rawValue: 2)
        /// NFC of the character alone is something else (a singleton, a composition exclusion,
        /// a decomposition that starts with a non-starter).
        static let changesAlone = Flags(rawValue: 4)
        /// The second character of some primary composite.
        static let composesWithPrevious = Flags(rawValue: 8)
    }

    struct Tables: Sendable {
        /// Every character with a non-zero class, a decomposition or a composition is below this.
        static let size = 0x30000
        var combiningClass: [UInt8]
        var flags: [UInt8]
        /// One-level canonical decompositions (Hangul syllables excepted: algorithmic).
        var decompositions: [UInt32: [UInt32]]
        /// `(first << 32) | second` → primary composite (Hangul excepted).
        var compositions: [UInt64: UInt32]
    }

    static let tables: Tables = makeTables()

    private static func isNewerThanReference(_ value: UInt32) -> Bool {
        guard let scalar = Unicode.Scalar(value), let age = scalar.properties.age else { return true }
        return age.major > referenceVersion.major
            || (age.major == referenceVersion.major && age.minor > referenceVersion.minor)
    }

    private static func hexValues(_ text: Substring) -> [UInt32] {
        text.split(separator: " ").compactMap { UInt32($0, radix: 16) }
    }

    private static func makeTables() -> Tables {
        var tables = Tables(combiningClass: [UInt8](repeating: 0, count: Tables.size),
                            flags: [UInt8](repeating: 0, count: Tables.size),
                            decompositions: [:], compositions: [:])
        for item in combiningClassData.split(separator: ";") {
            let parts = item.split(separator: ":")
            guard parts.count == 2, let ccc = UInt8(parts[1]) else { continue }
            let bounds = parts[0].split(separator: "-").compactMap { UInt32($0, radix: 16) }
            guard let first = bounds.first, let last = bounds.last, last < Tables.size else { continue }
            for value in first...last where !isNewerThanReference(value) {
                tables.combiningClass[Int(value)] = ccc
            }
        }
        for item in decompositionData.split(separator: ";") {
            let parts = item.split(separator: ":")
            guard parts.count == 2, let value = UInt32(parts[0], radix: 16), value < Tables.size else { continue }
            let mapping = hexValues(parts[1])
            if isNewerThanReference(value) || mapping.contains(where: { $0 >= Tables.size || isNewerThanReference($0) }) {
                continue
            }
            tables.decompositions[value] = mapping
        }
        for item in compositionData.split(separator: ";") {
            let parts = item.split(separator: ":")
            guard parts.count == 2, let composite = UInt32(parts[1], radix: 16) else { continue }
            let pair = hexValues(parts[0])
            guard pair.count == 2, tables.decompositions[composite] == pair else { continue }
            tables.compositions[(UInt64(pair[0]) << 32) | UInt64(pair[1])] = composite
            tables.flags[Int(pair[1])] |= Flags.composesWithPrevious.rawValue
        }
        // Hangul: V and T jamo compose with the preceding L or LV.
        for value in UInt32(0x1161)...0x1175 { tables.flags[Int(value)] |= Flags.composesWithPrevious.rawValue }
        for value in UInt32(0x11A8)...0x11C2 { tables.flags[Int(value)] |= Flags.composesWithPrevious.rawValue }

        for (value, _) in tables.decompositions { tables.flags[Int(value)] |= Flags.decomposes.rawValue }
        for value in 0..<UInt32(Tables.size) {
            let index = Int(value)
            var first = value
            if tables.flags[index] & Flags.decomposes.rawValue != 0 {
                while let mapping = tables.decompositions[first], let head = mapping.first { first = head }
            }
            if tables.combiningClass[Int(first)] != 0
                || tables.flags[Int(first)] & Flags.composesWithPrevious.rawValue != 0
                || tables.combiningClass[index] != 0
                || tables.flags[index] & Flags.composesWithPrevious.rawValue != 0 {
                tables.flags[index] |= Flags.continuesSegment.rawValue
            }
        }
        // A decomposing character is stable alone when composing its decomposition gives it back.
        // Collected before any flag is set: setting one while a normalizer shares the tables
        // would copy them.
        let changing = changingAlone(tables)
        for value in changing { tables.flags[Int(value)] |= Flags.changesAlone.rawValue }
        return tables
    }

    /// The decomposing characters whose NFC alone is something else.
    private static func changingAlone(_ tables: Tables) -> [UInt32] {
        var normalizer = NFCNormalizer(tables: tables)
        var changing: [UInt32] = []
        var output: [Unicode.Scalar] = []
        for value in tables.decompositions.keys {
            output.removeAll(keepingCapacity: true)
            normalizer.appendNormalizingAlone(value, to: &output)
            if output.count != 1 || output[0].value != value { changing.append(value) }
        }
        return changing
    }
}

/// Streaming NFC: characters go in one at a time; each completed segment's NFC comes out.
///
/// Work is linear in the input; memory is the longest segment (one starter and the
/// characters that continue it, e.g. a run of combining marks).
struct NFCNormalizer {
    private let tables: Normalization.Tables
    /// The last segment start, not yet decomposed: it comes out unchanged unless a character
    /// continuing its segment follows.
    private var pendingStarter: Unicode.Scalar?
    /// The current segment, decomposed: `(class << 21) | scalar`.
    private var segment: [UInt32] = []
    /// Scratch for the counting sort.
    private var sorted: [UInt32] = []
    /// Steps of sorting (characters, shifts, buckets) and composing (characters), for tests
    /// that check the work is linear.
    private(set) var operations = 0

    init() { self.init(tables: Normalization.tables) }

    init(tables: Normalization.Tables) { self.tables = tables }

    private static let scalarMask: UInt32 = 0x1F_FFFF

    private func flags(_ value: UInt32) -> Normalization.Flags {
        value < Normalization.Tables.size ? Normalization.Flags(rawValue: tables.flags[Int(value)]) : []
    }

    private func combiningClass(_ value: UInt32) -> UInt32 {
        value < Normalization.Tables.size ? UInt32(tables.combiningClass[Int(value)]) : 0
    }

    /// Feeds one character; appends to `output` the NFC of every segment it completes.
    mutating func append(_ scalar: Unicode.Scalar, to output: inout [Unicode.Scalar]) {
        let value = scalar.value
        // Below U+0300 every character starts a segment and is stable alone.
        let flags = value < 0x300 ? [] : flags(value)
        if !flags.contains(.continuesSegment) {
            flushSegment(to: &output)
            if flags.contains(.changesAlone) {
                decompose(value)
            } else {
                pendingStarter = scalar
            }
        } else {
            if let starter = pendingStarter {
                decompose(starter.value)
                pendingStarter = nil
            }
            decompose(value)
        }
    }

    /// Appends the NFC of the last segment; the normalizer is then empty.
    mutating func finish(to output: inout [Unicode.Scalar]) {
        flushSegment(to: &output)
    }

    /// For the table builder: the NFC of one character, ignoring `changesAlone`.
    mutating func appendNormalizingAlone(_ value: UInt32, to output: inout [Unicode.Scalar]) {
        decompose(value)
        flushSegment(to: &output)
    }

    private mutating func flushSegment(to output: inout [Unicode.Scalar]) {
        if let starter = pendingStarter {
            output.append(starter)
            pendingStarter = nil
            return
        }
        if segment.isEmpty { return }
        canonicallyOrder()
        compose()
        for item in segment {
            // Every item holds a scalar taken from a valid one or from the tables.
            if let scalar = Unicode.Scalar(item & Self.scalarMask) { output.append(scalar) }
        }
        segment.removeAll(keepingCapacity: segment.capacity <= 4096)
    }

    // MARK: Decomposition

    private static let hangulSBase: UInt32 = 0xAC00, hangulLBase: UInt32 = 0x1100
    private static let hangulVBase: UInt32 = 0x1161, hangulTBase: UInt32 = 0x11A7
    private static let hangulLCount: UInt32 = 19, hangulVCount: UInt32 = 21, hangulTCount: UInt32 = 28
    private static let hangulNCount = hangulVCount * hangulTCount
    private static let hangulSCount = hangulLCount * hangulNCount

    /// Appends the full canonical decomposition of `value` to the segment.
    private mutating func decompose(_ value: UInt32) {
        if value &- Self.hangulSBase < Self.hangulSCount {
            let index = value - Self.hangulSBase
            segment.append(Self.hangulLBase + index / Self.hangulNCount)
            segment.append(Self.hangulVBase + (index % Self.hangulNCount) / Self.hangulTCount)
            let t = index % Self.hangulTCount
            if t != 0 { segment.append(Self.hangulTBase + t) }
            return
        }
        if flags(value).contains(.decomposes), let mapping = tables.decompositions[value] {
            for part in mapping { decompose(part) }
            return
        }
        segment.append((combiningClass(value) << 21) | value)
    }

    // MARK: Canonical ordering

    /// Sorts every run of non-starters by combining class, stably.
    private mutating func canonicallyOrder() {
        var index = 0
        let count = segment.count
        while index < count {
            if segment[index] >> 21 == 0 {
                index += 1
                continue
            }
            var end = index + 1
            while end < count && segment[end] >> 21 != 0 { end += 1 }
            if end - index > 1 { sortRun(index..<end) }
            index = end
        }
    }

    private mutating func sortRun(_ run: Range<Int>) {
        operations += run.count
        if run.count <= 16 {
            var shifts = 0
            defer { operations += shifts }
            // Insertion sort on the packed values compares by class first; `>` (not `>=`) keeps
            // equal classes in their order.
            for i in (run.lowerBound + 1)..<run.upperBound {
                let item = segment[i]
                var j = i
                while j > run.lowerBound && segment[j - 1] >> 21 > item >> 21 {
                    segment[j] = segment[j - 1]
                    j -= 1
                    shifts += 1
                }
                segment[j] = item
            }
            return
        }
        // Counting sort by class: stable, O(n + 256).
        operations += 256
        var starts = [Int](repeating: 0, count: 257)
        for i in run { starts[Int(segment[i] >> 21) + 1] += 1 }
        for c in 1...256 { starts[c] += starts[c - 1] }
        if sorted.count < run.count { sorted = [UInt32](repeating: 0, count: run.count) }
        for i in run {
            let c = Int(segment[i] >> 21)
            sorted[starts[c]] = segment[i]
            starts[c] += 1
        }
        for (offset, i) in run.enumerated() { segment[i] = sorted[offset] }
        if sorted.count > 4096 { sorted = [] }
    }

    // MARK: Composition

    /// The primary composite of `first` followed by `second`, if any.
    private func composite(_ first: UInt32, _ second: UInt32) -> UInt32? {
        guard flags(second).contains(.composesWithPrevious) else { return nil }
        // Hangul L + V → LV, LV + T → LVT.
        if first &- Self.hangulLBase < Self.hangulLCount && second &- Self.hangulVBase < Self.hangulVCount {
            return Self.hangulSBase + ((first - Self.hangulLBase) * Self.hangulVCount + second - Self.hangulVBase) * Self.hangulTCount
        }
        if first &- Self.hangulSBase < Self.hangulSCount && (first - Self.hangulSBase) % Self.hangulTCount == 0
            && second > Self.hangulTBase && second - Self.hangulTBase < Self.hangulTCount {
            return first + second - Self.hangulTBase
        }
        return tables.compositions[(UInt64(first) << 32) | UInt64(second)]
    }

    /// Composes the canonically ordered segment in place (UAX #15's composition algorithm): a
    /// character joins the last starter when no character between them is a starter or has a
    /// class at least its own.
    private mutating func compose() {
        operations += segment.count
        var starterIndex = -1
        var lastClass: UInt32 = 0
        var write = 0
        for read in 0..<segment.count {
            let item = segment[read]
            let value = item & Self.scalarMask
            let itemClass = item >> 21
            if starterIndex >= 0 && (lastClass < itemClass || lastClass == 0 && write == starterIndex + 1),
               let composed = composite(segment[starterIndex] & Self.scalarMask, value) {
                segment[starterIndex] = composed
                continue
            }
            if itemClass == 0 { starterIndex = write }
            lastClass = itemClass
            segment[write] = item
            write += 1
        }
        segment.removeLast(segment.count - write)
    }
}
