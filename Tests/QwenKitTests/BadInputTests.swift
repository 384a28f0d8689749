import Foundation
import XCTest

/// Hostile and broken input through the built binary: one clear error line, a non-zero exit,
/// no crash, no hang.
final class BadInputTests: XCTestCase {
    var folder: URL!

    override func setUpWithError() throws {
        folder = FileManager.default.temporaryDirectory.appendingPathComponent("qwenkit-bad-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
    }

    override func tearDownWithError() throws {
        try? FileManager.default.removeItem(at: folder)
    }

    /// Runs `qwenkit run` on `model` and checks the failure is clean; returns the error line.
    @discardableResult
    func expectCleanFailure(_ arguments: [String], mentioning needle: String, file: StaticString = #filePath,
                            line: UInt = #line) throws -> String {
        let output = try QwenKitBinary.run(arguments, timeout: 60)
        XCTAssertFalse(output.timedOut, "hung: \(arguments)", file: file, line: line)
        XCTAssertFalse(output.crashed, "crashed: \(arguments)\n\(output.stderr)", file: file, line: line)
        XCTAssertNotEqual(output.status, 0, "exit status 0: \(arguments)", file: file, line: line)
        let lines = output.stderr.split(separator: "\n")
        XCTAssertEqual(lines.count, 1, "expected one error line, got:\n\(output.stderr)", file: file, line: line)
        XCTAssertTrue(output.stderr.contains(needle), "error should mention '\(needle)': \(output.stderr)",
                      file: file, line: line)
        return output.stderr
    }

    func write(_ data: Data, _ name: String) throws -> String {
        let url = folder.appendingPathComponent(name)
        try data.write(to: url)
        return url.path
    }

    func testMissingFile() throws {
        try expectCleanFailure(["run", "-m", folder.appendingPathComponent("nope.gguf").path, "hi"],
                               mentioning: "nope.gguf")
    }

    func testNotAGGUFFile() throws {
        let path = try write(Data("this is not a model, just some text\n".utf8), "text.gguf")
        try expectCleanFailure(["run", "-m", path, "hi"], mentioning: "not a GGUF file")
    }

    func testTruncatedFiles() throws {
        let original = try Data(contentsOf: Fixtures.url("models/tiny-qwen2/tiny-qwen2-q8_0.gguf"))
        // Cuts inside the header, the metadata (tokenizer arrays), the tensor table and the data.
        let cuts = [2, 6, 13, 24, 100, 5_000, 1_000_000, 3_000_000, original.count - 4096, original.count - 1]
        for cut in cuts {
            let path = try write(original.prefix(cut), "cut-\(cut).gguf")
            try expectCleanFailure(["run", "-m", path, "hi"], mentioning: "GGUF")
        }
    }

    func testTensorOffsetPastEnd() throws {
        var gguf = TinyGGUF()
        gguf.tensorOffsetOverride = 1 << 40
        let path = try write(gguf.data(), "offset.gguf")
        try expectCleanFailure(["run", "-m", path, "hi"], mentioning: "attn_norm")
    }

    func testUnsupportedArchitecture() throws {
        var gguf = TinyGGUF()
        gguf.architecture = "llama"
        let path = try write(gguf.data(), "llama.gguf")
        try expectCleanFailure(["run", "-m", path, "hi"], mentioning: "unsupported model architecture 'llama'")
    }

    func testUnsupportedTensorType() throws {
        var gguf = TinyGGUF()
        gguf.tensorType = 16  // IQ2_XXS
        let path = try write(gguf.data(), "iq2.gguf")
        try expectCleanFailure(["run", "-m", path, "hi"], mentioning: "unsupported type 16")
    }

    func testPromptLongerThanContext() throws {
        let model = Fixtures.url("models/tiny-qwen2/tiny-qwen2-f32.gguf").path
        let message = try expectCleanFailure(
            ["run", "-m", model, "--context", "16", "--max-tokens", "4",
             String(repeating: "many words here ", count: 20)],
            mentioning: "context")
        XCTAssertTrue(message.contains("16"), message)
    }

    func testBadFlag() throws {
        let output = try QwenKitBinary.run(["run", "--temperature", "-1", "hi"])
        XCTAssertNotEqual(output.status, 0)
        XCTAssertFalse(output.crashed)
        XCTAssertTrue(output.stderr.contains("temperature"), output.stderr)
    }

    /// The server's limits are validated like every flag, before any model is loaded.
    func testBadServeLimits() throws {
        for (flag, value) in [("--header-timeout", "0"), ("--body-timeout", "-0.5"), ("--idle-timeout", "nan"),
                              ("--max-connections", "0"), ("--header-timeout", "1e300")] {
            let output = try QwenKitBinary.run(["serve", "\(flag)=\(value)"], timeout: 30)
            XCTAssertFalse(output.timedOut, "\(flag) \(value): started serving")
            XCTAssertFalse(output.crashed, "\(flag) \(value)")
            XCTAssertNotEqual(output.status, 0, "\(flag) \(value)")
            XCTAssertTrue(output.stderr.contains(flag), "\(flag) \(value): \(output.stderr)")
        }
    }
}

/// Writes a minimal GGUF v3 file: a few metadata keys and one F32 tensor, with knobs to break it.
struct TinyGGUF {
    var architecture = "qwen2"
    var tensorType: UInt32 = 0
    var tensorOffsetOverride: UInt64?

    func data() -> Data {
        var d = Data()
        func u32(_ v: UInt32) { withUnsafeBytes(of: v.littleEndian) { d.append(contentsOf: $0) } }
        func u64(_ v: UInt64) { withUnsafeBytes(of: v.littleEndian) { d.append(contentsOf: $0) } }
        func string(_ s: String) { u64(UInt64(s.utf8.count)); d.append(contentsOf: Array(s.utf8)) }
        func kvString(_ key: String, _ value: String) { string(key); u32(8); string(value) }
        func kvU32(_ key: String, _ value: UInt32) { string(key); u32(4); u32(value) }

        d.append(contentsOf: Array("GGUF".utf8))
        u32(3)
        u64(1)  // tensors
        u64(3)  // metadata
        kvString("general.architecture", architecture)
        kvU32("\(architecture).block_count", 1)
        kvU32("\(architecture).embedding_length", 32)
        string("blk.0.attn_norm.weight")
        u32(1)
        u64(32)
        u32(tensorType)
        u64(tensorOffsetOverride ?? 0)
        while d.count % 32 != 0 { d.append(0) }
        d.append(Data(count: 32 * 4))
        return d
    }
}
