import Foundation

enum Normalization {
    /// NFC, via Foundation, made exact.
    ///
    /// Foundation's single-pass NFC (and NFD) on Linux misorders marks when a character whose
    /// canonical decomposition starts with a non-starter (U+0344, U+0F73, U+0F75, U+0F81) follows
    /// other combining marks: the decomposed marks are not reordered by combining class, e.g.
    /// NFC("\u{0968}\u{0300}\u{0F73}") comes out as 0968 0300 0F71 0F72 instead of 0968 0F71 0F72 0300.
    /// Once the text is in NFD those characters are gone, and composing that NFD text again
    /// reorders correctly, so such text takes two passes. Checked against the reference's NFC
    /// on 30,000 random strings of combining marks and precomposed characters.
    static func nfc(_ text: String) -> String {
        // ASCII is always in NFC.
        if text.utf8.allSatisfy({ $0 < 0x80 }) { return text }
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
