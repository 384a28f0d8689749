import Foundation

/// NFC as the reference computes it.
///
/// The reference's NFC (`tokenizers`, crate `unicode-normalization-alignments`) uses
/// Unicode 9.0 data: a character assigned later has, for it, combining class 0, no
/// decomposition and no composition. Foundation uses the current Unicode data, so such a
/// combining mark would be reordered or composed differently (e.g. U+11D42, ccc 7 since
/// Unicode 10, is moved before U+0334 by Foundation but not by the reference). Since an
/// "unassigned" character is a starter that neither composes nor lets marks move across it,
/// the text is normalized in runs between such characters, which are kept verbatim.
/// Within a run every character is from Unicode ≤ 9.0, and by the Unicode normalization
/// stability policy current data normalizes it exactly as 9.0 data does.
enum Normalization {
    /// The Unicode version of the reference's normalization tables.
    static let referenceVersion = (major: 9, minor: 0)

    static func nfc(_ text: String) -> String {
        // ASCII is always in NFC.
        if text.utf8.allSatisfy({ $0 < 0x80 }) { return text }
        guard text.unicodeScalars.contains(where: isNewerThanReference) else {
            return foundationNFC(text)
        }
        var result = String.UnicodeScalarView()
        var run = String.UnicodeScalarView()
        for scalar in text.unicodeScalars {
            if isNewerThanReference(scalar) {
                if !run.isEmpty {
                    result.append(contentsOf: foundationNFC(String(run)).unicodeScalars)
                    run.removeAll()
                }
                result.append(scalar)
            } else {
                run.append(scalar)
            }
        }
        if !run.isEmpty { result.append(contentsOf: foundationNFC(String(run)).unicodeScalars) }
        return String(result)
    }

    private static func isNewerThanReference(_ scalar: Unicode.Scalar) -> Bool {
        // Everything below U+0300 was assigned by Unicode 5.0 (later additions are scattered,
        // e.g. U+07FD in 11.0, so there is no higher cut-off).
        guard scalar.value >= 0x0300, let age = scalar.properties.age else { return false }
        return age.major > referenceVersion.major
            || (age.major == referenceVersion.major && age.minor > referenceVersion.minor)
    }

    /// Foundation's NFC, made exact.
    ///
    /// Foundation's single-pass NFC (and NFD) on Linux misorders marks when a character whose
    /// canonical decomposition starts with a non-starter (U+0344, U+0F73, U+0F75, U+0F81)
    /// follows other combining marks: the decomposed marks are not reordered by combining class,
    /// e.g. NFC("\u{0968}\u{0300}\u{0F73}") comes out as 0968 0300 0F71 0F72 instead of
    /// 0968 0F71 0F72 0300. Once the text is in NFD those characters are gone, and composing
    /// that NFD text again orders correctly, so such text takes two passes.
    private static func foundationNFC(_ text: String) -> String {
        let needsTwoPasses = text.unicodeScalars.contains { scalar in
            switch scalar.value {
            case 0x0344, 0x0F73, 0x0F75, 0x0F81: return true
            default: return false
            }
        }
        if needsTwoPasses {
            return text.decomposedStringWithCanonicalMapping.precomposedStringWithCanonicalMapping
        }
        return text.precomposedStringWithCanonicalMapping
    }
}
