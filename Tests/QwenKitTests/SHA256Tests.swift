import Foundation
import QwenKit
import XCTest

final class SHA256Tests: XCTestCase {
    private func digest(_ text: String) -> String { SHA256Hasher.hexDigest(of: Array(text.utf8)) }

    /// FIPS 180-4 / NIST example vectors.
    func testStandardVectors() {
        XCTAssertEqual(digest(""), "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855")
        XCTAssertEqual(digest("abc"), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad")
        XCTAssertEqual(digest("abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq"),
                       "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1")
        XCTAssertEqual(digest("abcdefghbcdefghicdefghijdefghijkefghijklfghijklmghijklmnhijklmnoijklmnopjklmnopqklmnopqrlmnopqrsmnopqrstnopqrstu"),
                       "cf5b16a778af8380036ce59e7b0492370b249b11e8f07a51afac45037afee9d1")
        XCTAssertEqual(SHA256Hasher.hexDigest(of: [UInt8](repeating: UInt8(ascii: "a"), count: 1_000_000)),
                       "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0")
    }

    /// Feeding the bytes in pieces of any size gives the same digest as one piece.
    func testIncrementalUpdatesMatchOneShot() {
        let message = (0..<300).map { UInt8(truncatingIfNeeded: $0 &* 31 &+ 7) }
        let whole = SHA256Hasher.hexDigest(of: message)
        for split in [0, 1, 55, 56, 63, 64, 65, 127, 128, 200, 299, 300] {
            var hasher = SHA256Hasher()
            hasher.update(message[..<split])
            hasher.update(message[split...])
            XCTAssertEqual(SHA256Hasher.hex(hasher.finalize()), whole, "split at \(split)")
        }
        var bytewise = SHA256Hasher()
        for byte in message { bytewise.update([byte]) }
        XCTAssertEqual(SHA256Hasher.hex(bytewise.finalize()), whole)
    }

    /// The file hash agrees with the in-memory hash.
    func testFileDigest() throws {
        let url = FileManager.default.temporaryDirectory.appendingPathComponent("qwenkit-sha-\(UUID().uuidString)")
        defer { try? FileManager.default.removeItem(at: url) }
        let data = Data((0..<(3 << 20) + 17).map { UInt8(truncatingIfNeeded: $0 % 251) })
        try data.write(to: url)
        XCTAssertEqual(try SHA256Hasher.hexDigest(ofFileAt: url), SHA256Hasher.hexDigest(of: data))
    }

    /// Verifying a 500 MB download must not take long; reports the speed and fails only when far too slow.
    func testThroughput() {
        let buffer = [UInt8](repeating: 0x5A, count: 64 << 20)
        var hasher = SHA256Hasher()
        let start = Date()
        buffer.withUnsafeBytes { hasher.update($0) }
        _ = hasher.finalize()
        let seconds = Date().timeIntervalSince(start)
        let megabytesPerSecond = Double(buffer.count) / 1e6 / seconds
        print("SHA-256: \(Int(megabytesPerSecond)) MB/s")
        XCTAssertGreaterThan(megabytesPerSecond, 50, "SHA-256 runs at \(megabytesPerSecond) MB/s")
    }
}
