/// GPT-2's reversible byte ↔ Unicode alphabet. Printable Latin-1 bytes map to themselves;
/// the other 68 bytes map to U+0100 upwards, so every byte becomes one visible character
/// and BPE vocabularies can be stored as ordinary strings.
enum ByteLevel {
    /// `byteToScalar[b]` is the alphabet character for byte `b`.
    static let byteToScalar: [Unicode.Scalar] = {
        var table = [Unicode.Scalar](repeating: "\0", count: 256)
        var next: UInt32 = 256
        for byte in 0..<256 {
            let printable = (0x21...0x7E).contains(byte) || (0xA1...0xAC).contains(byte) || (0xAE...0xFF).contains(byte)
            if printable {
                table[byte] = Unicode.Scalar(UInt8(byte))
            } else {
                // Values 256..<324 are always valid scalars.
                table[byte] = Unicode.Scalar(next) ?? "\0"
                next += 1
            }
        }
        return table
    }()

    /// The inverse map: alphabet character → byte.
    static let scalarToByte: [UInt32: UInt8] = {
        var map: [UInt32: UInt8] = [:]
        for (byte, scalar) in byteToScalar.enumerated() { map[scalar.value] = UInt8(byte) }
        return map
    }()

    /// Bytes of a vocabulary entry. Like the reference `ByteLevel` decoder, a token holding any
    /// character outside the alphabet (e.g. an added token written in plain text) is taken
    /// verbatim as UTF-8.
    static func decode(token: String) -> [UInt8] {
        var bytes: [UInt8] = []
        bytes.reserveCapacity(token.unicodeScalars.count)
        for scalar in token.unicodeScalars {
            guard let byte = scalarToByte[scalar.value] else { return Array(token.utf8) }
            bytes.append(byte)
        }
        return bytes
    }

    /// The alphabet string for a byte sequence.
    static func encode(bytes: some Sequence<UInt8>) -> String {
        var view = String.UnicodeScalarView()
        for byte in bytes { view.append(byteToScalar[Int(byte)]) }
        return String(view)
    }
}
