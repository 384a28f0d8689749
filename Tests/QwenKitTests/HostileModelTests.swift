import Foundation
import XCTest
@testable import QwenKit

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Model files edited as an attacker would: amplifying counts, non-regular files, metadata that
/// disagrees with the tensors present, hostile bytes in names. Each must end in one clean error.
final class HostileModelTests: XCTestCase {
    private var folder: URL!

    override func setUpWithError() throws {
        folder = FileManager.default.temporaryDirectory.appendingPathComponent("qwenkit-hostile-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
    }

    override func tearDownWithError() throws {
        try? FileManager.default.removeItem(at: folder)
    }

    private var tinyQwen2: String { Fixtures.url("models/tiny-qwen2/tiny-qwen2-f32.gguf").path }

    private func write(_ data: Data, _ name: String) throws -> String {
        let url = folder.appendingPathComponent(name)
        try data.write(to: url)
        return url.path
    }

    private func assertLoadFails(_ path: String, mentioning needles: [String], file: StaticString = #filePath,
                                 line: UInt = #line) {
        XCTAssertThrowsError(try LanguageModel(path: path), file: file, line: line) { error in
            let message = "\(error)"
            for needle in needles {
                XCTAssertTrue(message.contains(needle), "'\(message)' does not mention '\(needle)'", file: file, line: line)
            }
        }
    }

    // MARK: - GGUF

    /// One uint8 array whose count the file really holds (1 byte each) but which would take
    /// 24 bytes an element once read: 12 M elements, ~290 MB asked for from a 12 MB file.
    func testArrayCountBoundedByMemoryNotFileBytes() throws {
        var gguf = try GGUFRewrite(path: tinyQwen2)
        let count = 12_000_000
        gguf.rawMetadata.append(GGUFRewrite.rawArray(key: "general.padding", elementType: 0,
                                                     count: UInt64(count), payload: Data(count: count)))
        let path = try write(gguf.data(), "amplified.gguf")
        XCTAssertThrowsError(try GGUFFile(path: path)) { error in
            XCTAssertTrue("\(error)".contains("general.padding"), "\(error)")
            XCTAssertTrue("\(error)".contains("MiB"), "\(error)")
        }
    }

    func testTooFewLayersStatedInGGUF() throws {
        var gguf = try GGUFRewrite(path: tinyQwen2)
        gguf.set("qwen2.block_count", .uint32(1))
        assertLoadFails(try write(gguf.data(), "fewer.gguf"), mentioning: ["qwen2.block_count", "layer 1"])
    }

    func testTooManyLayersStatedInGGUF() throws {
        var gguf = try GGUFRewrite(path: tinyQwen2)
        gguf.set("qwen2.block_count", .uint32(3))
        assertLoadFails(try write(gguf.data(), "more.gguf"), mentioning: ["blk.2."])
    }

    func testQwen2WithoutQueryBias() throws {
        var gguf = try GGUFRewrite(path: tinyQwen2)
        gguf.tensors.removeAll { $0.name == "blk.1.attn_q.bias" }
        assertLoadFails(try write(gguf.data(), "nobias.gguf"), mentioning: ["blk.1.attn_q.bias"])
    }

    /// Twice the heads at half the size fit every tensor shape of a Qwen2 file; where the file
    /// states its head size (`rope.dimension_count`, as llama.cpp writes it), the counts are caught.
    func testHeadCountsThatSplitHeadsWrongly() throws {
        var gguf = try GGUFRewrite(path: tinyQwen2)
        gguf.set("qwen2.rope.dimension_count", .uint32(4))
        XCTAssertNoThrow(try LanguageModel(path: try write(gguf.data(), "heads-ok.gguf")))
        gguf.set("qwen2.attention.head_count", .uint32(8))
        gguf.set("qwen2.attention.head_count_kv", .uint32(4))
        assertLoadFails(try write(gguf.data(), "heads.gguf"), mentioning: ["rope.dimension_count"])
        // With an explicit head size, the q/k shapes themselves disagree.
        gguf.set("qwen2.attention.key_length", .uint32(4))
        assertLoadFails(try write(gguf.data(), "heads-kl.gguf"), mentioning: ["attn_q.weight"])
    }

    func testHostileBytesInErrorsAreEscaped() throws {
        var gguf = try GGUFRewrite(path: tinyQwen2)
        let hostile = "\u{1B}]0;pwned\u{07}\u{1B}[2J" + String(repeating: "A", count: 5000)
        gguf.set("general.architecture", .string(hostile))
        XCTAssertThrowsError(try LanguageModel(path: try write(gguf.data(), "escape.gguf"))) { error in
            let message = "\(error)"
            XCTAssertFalse(message.unicodeScalars.contains { $0.value < 0x20 }, message)
            XCTAssertTrue(message.contains("\\x1b"), message)
            XCTAssertLessThan(message.count, 600, message)
        }
    }

    // MARK: - score

    /// Overflowed the KV-cache size and reserved Int.max + 1 entries before.
    func testScoreWithHugeContextAndTop() throws {
        let model = Fixtures.url("models/tiny-qwen3-moe").path
        let huge = String(Int.max)
        let output = try QwenKitBinary.run(["score", "-m", model, "--ids", "1,2", "--context", huge, "--top", huge, "--json"],
                                           timeout: 120)
        XCTAssertFalse(output.crashed, output.stderr)
        XCTAssertEqual(output.status, 0, output.stderr)
        let json = try XCTUnwrap(JSONSerialization.jsonObject(with: Data(output.stdout.utf8)) as? [String: Any])
        let positions = try XCTUnwrap(json["positions"] as? [[String: Any]])
        XCTAssertEqual(positions.count, 2)
        XCTAssertEqual((positions[0]["top"] as? [Any])?.count, 2048)   // the whole vocabulary, no more
        // A prompt longer than the model's context is refused, not given a bigger cache.
        let ids = Array(repeating: "1", count: 5000).joined(separator: ",")
        let long = try QwenKitBinary.run(["score", "-m", model, "--ids", ids, "--context", huge], timeout: 120)
        XCTAssertFalse(long.crashed, long.stderr)
        XCTAssertNotEqual(long.status, 0)
        XCTAssertTrue(long.stderr.contains("context"), long.stderr)
    }

    // MARK: - Non-regular files

    private func makeFIFO(_ path: String) throws {
        guard mkfifo(path, 0o600) == 0 else { throw XCTSkip("mkfifo failed: \(errno)") }
    }

    func testFIFOAsGGUFModelPath() throws {
        let path = folder.appendingPathComponent("model.gguf").path
        try makeFIFO(path)
        let output = try QwenKitBinary.run(["run", "-m", path, "hi"], timeout: 30)
        XCTAssertFalse(output.timedOut, "hung on a FIFO")
        XCTAssertNotEqual(output.status, 0)
        XCTAssertTrue(output.stderr.contains("not a regular file"), output.stderr)
    }

    /// A copy of a tiny Hugging Face directory in the temporary folder, files copied.
    private func copyDirectory(_ name: String) throws -> URL {
        let source = Fixtures.url("models/\(name)")
        let target = folder.appendingPathComponent(name)
        try FileManager.default.copyItem(at: source, to: target)
        return target
    }

    func testFIFOAsSafetensorsShard() throws {
        let dir = try copyDirectory("tiny-qwen2")
        let shard = dir.appendingPathComponent("model.safetensors")
        let names = try SafetensorsFile(path: shard.path).tensors.map(\.name)
        try FileManager.default.removeItem(at: shard)
        try makeFIFO(shard.path)
        let map = names.map { "\"\($0)\": \"model.safetensors\"" }.joined(separator: ", ")
        try Data("{\"weight_map\": {\(map)}}".utf8).write(to: dir.appendingPathComponent("model.safetensors.index.json"))
        let output = try QwenKitBinary.run(["score", "-m", dir.path, "--ids", "1,2"], timeout: 30)
        XCTAssertFalse(output.timedOut, "hung on a FIFO shard")
        XCTAssertNotEqual(output.status, 0)
        XCTAssertTrue(output.stderr.contains("not a regular file"), output.stderr)
    }

    func testFIFOAsConfigJSON() throws {
        let dir = try copyDirectory("tiny-qwen2")
        let config = dir.appendingPathComponent("config.json")
        try FileManager.default.removeItem(at: config)
        try makeFIFO(config.path)
        let output = try QwenKitBinary.run(["score", "-m", dir.path, "--ids", "1,2"], timeout: 30)
        XCTAssertFalse(output.timedOut, "hung on a FIFO config.json")
        XCTAssertTrue(output.stderr.contains("not a regular file"), output.stderr)
    }

    // MARK: - Hugging Face directories

    private func editJSON(_ url: URL, _ edit: (inout [String: Any]) -> Void) throws {
        var object = try XCTUnwrap(JSONSerialization.jsonObject(with: Data(contentsOf: url)) as? [String: Any])
        edit(&object)
        try JSONSerialization.data(withJSONObject: object).write(to: url)
    }

    func testConfigWithFewerLayersThanWeights() throws {
        let dir = try copyDirectory("tiny-qwen2")
        try editJSON(dir.appendingPathComponent("config.json")) { $0["num_hidden_layers"] = 1 }
        assertLoadFails(dir.path, mentioning: ["num_hidden_layers", "layer 1"])
    }

    func testConfigVocabularySmallerThanTokenizer() throws {
        let dir = try copyDirectory("tiny-qwen3-moe")
        // The MoE model's 2,048-row embedding with the 151,936-id Qwen tokenizer.
        for name in ["tokenizer.json", "tokenizer_config.json"] {
            try FileManager.default.copyItem(at: Fixtures.url("models/tiny-qwen2/\(name)"),
                                             to: dir.appendingPathComponent(name))
        }
        assertLoadFails(dir.path, mentioning: ["vocab_size", "151936"])
    }

    func testGenerationConfigValidatedLikeFlags() throws {
        for (key, value) in [("repetition_penalty", 0.0), ("top_p", 1.5), ("top_p", 0.0), ("temperature", -1.0)] {
            let dir = try copyDirectory("tiny-qwen2")
            try editJSON(dir.appendingPathComponent("generation_config.json")) { $0[key] = value }
            assertLoadFails(dir.path, mentioning: [key])
            try FileManager.default.removeItem(at: dir)
        }
    }
}

/// A GGUF file read back into editable parts and written again (version 3, alignment 32).
struct GGUFRewrite {
    var metadata: [(key: String, value: GGUFValue)]
    /// Extra metadata entries as raw bytes (key, type and value already encoded).
    var rawMetadata: [Data] = []
    var tensors: [(name: String, shape: [Int], type: UInt32, data: Data)]

    init(path: String) throws {
        let file = try GGUFFile(path: path)
        metadata = file.metadata.filter { $0.key != "general.alignment" }
        tensors = file.tensors.map { t in
            (t.name, t.shape, t.type.rawValue, Data(bytes: file.data(of: t), count: t.byteCount))
        }
    }

    mutating func set(_ key: String, _ value: GGUFValue) {
        if let i = metadata.firstIndex(where: { $0.key == key }) {
            metadata[i].value = value
        } else {
            metadata.append((key, value))
        }
    }

    static func rawArray(key: String, elementType: UInt32, count: UInt64, payload: Data) -> Data {
        var d = Data()
        appendString(key, to: &d)
        append(UInt32(9), to: &d)
        append(elementType, to: &d)
        append(count, to: &d)
        d.append(payload)
        return d
    }

    private static func append<T: FixedWidthInteger>(_ v: T, to d: inout Data) {
        withUnsafeBytes(of: v.littleEndian) { d.append(contentsOf: $0) }
    }

    private static func appendString(_ s: String, to d: inout Data) {
        append(UInt64(s.utf8.count), to: &d)
        d.append(contentsOf: Array(s.utf8))
    }

    private static func typeCode(_ v: GGUFValue) -> UInt32 {
        switch v {
        case .uint8: 0
        case .int8: 1
        case .uint16: 2
        case .int16: 3
        case .uint32: 4
        case .int32: 5
        case .float32: 6
        case .bool: 7
        case .string: 8
        case .array: 9
        case .uint64: 10
        case .int64: 11
        case .float64: 12
        }
    }

    private static func appendValue(_ v: GGUFValue, to d: inout Data) {
        switch v {
        case let .uint8(x): append(x, to: &d)
        case let .int8(x): append(x, to: &d)
        case let .uint16(x): append(x, to: &d)
        case let .int16(x): append(x, to: &d)
        case let .uint32(x): append(x, to: &d)
        case let .int32(x): append(x, to: &d)
        case let .float32(x): append(x.bitPattern, to: &d)
        case let .bool(x): append(UInt8(x ? 1 : 0), to: &d)
        case let .string(s): appendString(s, to: &d)
        case let .array(elements):
            append(elements.first.map(typeCode) ?? 0, to: &d)
            append(UInt64(elements.count), to: &d)
            for e in elements { appendValue(e, to: &d) }
        case let .uint64(x): append(x, to: &d)
        case let .int64(x): append(x, to: &d)
        case let .float64(x): append(x.bitPattern, to: &d)
        }
    }

    func data() -> Data {
        var d = Data("GGUF".utf8)
        Self.append(UInt32(3), to: &d)
        Self.append(UInt64(tensors.count), to: &d)
        Self.append(UInt64(metadata.count + rawMetadata.count), to: &d)
        for (key, value) in metadata {
            Self.appendString(key, to: &d)
            Self.append(Self.typeCode(value), to: &d)
            Self.appendValue(value, to: &d)
        }
        for raw in rawMetadata { d.append(raw) }
        var offset = 0
        for t in tensors {
            Self.appendString(t.name, to: &d)
            Self.append(UInt32(t.shape.count), to: &d)
            for ne in t.shape { Self.append(UInt64(ne), to: &d) }
            Self.append(t.type, to: &d)
            Self.append(UInt64(offset), to: &d)
            offset += (t.data.count + 31) / 32 * 32
        }
        while d.count % 32 != 0 { d.append(0) }
        for t in tensors {
            d.append(t.data)
            while d.count % 32 != 0 { d.append(0) }
        }
        return d
    }
}
