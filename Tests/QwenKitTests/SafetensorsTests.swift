import Foundation
import XCTest
@testable import QwenKit

/// Hostile or broken safetensors files and Hugging Face directories: a clear thrown error, never a crash.
final class SafetensorsTests: XCTestCase {
    private var folder: URL!

    override func setUpWithError() throws {
        folder = FileManager.default.temporaryDirectory.appendingPathComponent("qwenkit-safetensors-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
    }

    override func tearDownWithError() throws {
        try? FileManager.default.removeItem(at: folder)
    }

    /// A safetensors file: the header length (default: the real one), the header padded with
    /// spaces to a multiple of 8 bytes as the reference writer does, the data.
    private func write(_ name: String = "model.safetensors", header unpadded: String, data: [UInt8] = [],
                       declaredLength: UInt64? = nil, truncateTo: Int? = nil) throws -> String {
        var header = unpadded
        while header.utf8.count % 8 != 0 { header += " " }
        var bytes: [UInt8] = []
        var length = (declaredLength ?? UInt64(header.utf8.count)).littleEndian
        withUnsafeBytes(of: &length) { bytes.append(contentsOf: $0) }
        bytes.append(contentsOf: header.utf8)
        bytes.append(contentsOf: data)
        if let truncateTo { bytes = Array(bytes.prefix(truncateTo)) }
        let url = folder.appendingPathComponent(name)
        try Data(bytes).write(to: url)
        return url.path
    }

    private func assertInvalid(_ path: String, mentions fragment: String, file: StaticString = #filePath, line: UInt = #line) {
        XCTAssertThrowsError(try SafetensorsFile(path: path), file: file, line: line) { error in
            XCTAssertTrue(error is ModelFileError, "\(error)", file: file, line: line)
            XCTAssertTrue("\(error)".contains(fragment), "'\(error)' does not mention '\(fragment)'", file: file, line: line)
        }
    }

    func testValidFileReadsInPlace() throws {
        let values: [Float] = [1, -2, 0.5, 3]
        let data = values.flatMap { v in withUnsafeBytes(of: v.bitPattern.littleEndian) { Array($0) } }
        let path = try write(header: #"{"__metadata__":{"format":"pt"},"w":{"dtype":"F32","shape":[2,2],"data_offsets":[0,16]}}"#,
                             data: data)
        let file = try SafetensorsFile(path: path)
        XCTAssertEqual(file.metadata["format"], "pt")
        let w = try XCTUnwrap(file.tensor(named: "w"))
        XCTAssertEqual(w.shape, [2, 2])
        XCTAssertEqual(w.dtype, .f32)
        let read = (0..<4).map { file.data(of: w).loadUnaligned(fromByteOffset: $0 * 4, as: Float.self) }
        XCTAssertEqual(read, values)
    }

    func testTruncatedHeader() throws {
        let header = #"{"w":{"dtype":"F32","shape":[1],"data_offsets":[0,4]}}"#
        assertInvalid(try write(header: header, data: [0, 0, 0, 0], truncateTo: 20), mentions: "header length")
        assertInvalid(try write(header: "", truncateTo: 5), mentions: "header length")
    }

    func testHeaderLengthLargerThanFile() throws {
        assertInvalid(try write(header: "{}", declaredLength: 1 << 40), mentions: "header length")
        assertInvalid(try write(header: "{}", declaredLength: UInt64.max), mentions: "header length")
    }

    func testHeaderNotJSON() throws {
        assertInvalid(try write(header: #"{"w": [1, 2"#), mentions: "JSON")
        assertInvalid(try write(header: "[1, 2]"), mentions: "not a JSON object")
    }

    func testOffsetsPastEnd() throws {
        assertInvalid(try write(header: #"{"w":{"dtype":"F32","shape":[4],"data_offsets":[0,16]}}"#, data: [0, 0, 0, 0]),
                      mentions: "data_offsets")
        assertInvalid(try write(header: #"{"w":{"dtype":"F32","shape":[1],"data_offsets":[9223372036854775804,9223372036854775807]}}"#,
                                data: [0, 0, 0, 0]), mentions: "data_offsets")
        assertInvalid(try write(header: #"{"w":{"dtype":"F32","shape":[1],"data_offsets":[4,0]}}"#, data: [0, 0, 0, 0]),
                      mentions: "data_offsets")
    }

    /// A header that lies about sizes: the offsets do not hold dtype × shape.
    func testSizeMismatch() throws {
        assertInvalid(try write(header: #"{"w":{"dtype":"BF16","shape":[3],"data_offsets":[0,4]}}"#, data: [0, 0, 0, 0]),
                      mentions: "needs 6")
        assertInvalid(try write(header: #"{"w":{"dtype":"F32","shape":[4611686018427387904,8],"data_offsets":[0,4]}}"#,
                                data: [0, 0, 0, 0]), mentions: "overflows")
    }

    func testBadDType() throws {
        assertInvalid(try write(header: #"{"w":{"dtype":"F128","shape":[1],"data_offsets":[0,4]}}"#, data: [0, 0, 0, 0]),
                      mentions: "unknown dtype 'F128'")
        assertInvalid(try write(header: #"{"w":{"dtype":7,"shape":[1],"data_offsets":[0,4]}}"#, data: [0, 0, 0, 0]),
                      mentions: "dtype")
        assertInvalid(try write(header: #"{"w":{"dtype":"F32","shape":[-1],"data_offsets":[0,4]}}"#, data: [0, 0, 0, 0]),
                      mentions: "shape")
    }

    /// Float data must be aligned to its element size: the kernels load it in place.
    func testMisalignedData() throws {
        assertInvalid(try write(header: #"{"w":{"dtype":"F32","shape":[1],"data_offsets":[2,6]}}"#, data: [0, 0, 0, 0, 0, 0]),
                      mentions: "not aligned")
    }

    func testDuplicateTensorName() throws {
        let entry = #"{"dtype":"F32","shape":[1],"data_offsets":[0,4]}"#
        assertInvalid(try write(header: #"{"w":\#(entry),"w":\#(entry)}"#, data: [0, 0, 0, 0]), mentions: "duplicate")
    }

    /// An index naming a shard that is not there, and one naming a tensor its shard lacks.
    func testShardedCheckpointErrors() throws {
        _ = try write("model-00001-of-00002.safetensors",
                      header: #"{"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]}}"#, data: [0, 0, 0, 0])
        let index = folder.appendingPathComponent("model.safetensors.index.json")
        try Data(#"{"weight_map":{"a":"model-00001-of-00002.safetensors","b":"model-00002-of-00002.safetensors"}}"#.utf8)
            .write(to: index)
        XCTAssertThrowsError(try SafetensorsCheckpoint(directory: folder.path)) { error in
            XCTAssertTrue("\(error)".contains("model-00002-of-00002.safetensors") && "\(error)".contains("missing"), "\(error)")
        }
        try Data(#"{"weight_map":{"a":"model-00001-of-00002.safetensors","c":"model-00001-of-00002.safetensors"}}"#.utf8)
            .write(to: index)
        XCTAssertThrowsError(try SafetensorsCheckpoint(directory: folder.path)) { error in
            XCTAssertTrue("\(error)".contains("'c'"), "\(error)")
        }
        try Data(#"{"weight_map":{"a":"../elsewhere.safetensors"}}"#.utf8).write(to: index)
        XCTAssertThrowsError(try SafetensorsCheckpoint(directory: folder.path)) { error in
            XCTAssertTrue("\(error)".contains("not a file name"), "\(error)")
        }
        try Data(#"{"weight_map":{"a":"model-00001-of-00002.safetensors"}}"#.utf8).write(to: index)
        let checkpoint = try SafetensorsCheckpoint(directory: folder.path)
        XCTAssertNotNil(checkpoint.tensor(named: "a"))
    }

    /// A sharded copy of tiny-qwen3 (weights split over two files by an index) loads and gives
    /// the same logits as the single file.
    func testShardedCheckpointLoads() throws {
        let source = Fixtures.url("models/tiny-qwen3")
        let single = try SafetensorsFile(path: source.appendingPathComponent("model.safetensors").path)
        // Two shards, each a re-serialization of half of the tensors.
        var weightMap: [String] = []
        let halves = [Array(single.tensors.prefix(single.tensors.count / 2)), Array(single.tensors.dropFirst(single.tensors.count / 2))]
        for (n, tensors) in halves.enumerated() {
            let shard = "model-0000\(n + 1)-of-00002.safetensors"
            var entries: [String] = []
            var data: [UInt8] = []
            for t in tensors {
                let begin = data.count
                data.append(contentsOf: UnsafeRawBufferPointer(start: single.data(of: t), count: t.byteCount))
                entries.append(#""\#(t.name)":{"dtype":"\#(t.dtype.rawValue)","shape":\#(t.shape),"data_offsets":[\#(begin),\#(data.count)]}"#)
                weightMap.append(#""\#(t.name)":"\#(shard)""#)
            }
            _ = try write(shard, header: "{" + entries.joined(separator: ",") + "}", data: data)
        }
        try Data(("{\"weight_map\":{" + weightMap.joined(separator: ",") + "}}").utf8)
            .write(to: folder.appendingPathComponent("model.safetensors.index.json"))
        try FileManager.default.copyItem(at: source.appendingPathComponent("config.json"),
                                         to: folder.appendingPathComponent("config.json"))
        let sharded = try LanguageModel(path: folder.path)
        XCTAssertEqual((try SafetensorsCheckpoint(directory: folder.path)).files.count, 2)
        XCTAssertNil(sharded.tokenizer)
        let original = try LanguageModel(path: source.path)
        let prompt = [9707, 1879, 11, 220]
        let a = InferenceState(model: sharded.transformer, contextLength: 8, threads: 2).forward(prompt)
        let b = InferenceState(model: original.transformer, contextLength: 8, threads: 2).forward(prompt)
        XCTAssertEqual(a, b)
    }

    /// config.json: a wrong type, an unknown architecture, a missing field.
    func testBadConfig() throws {
        let config = try String(contentsOf: Fixtures.url("models/tiny-qwen3/config.json"), encoding: .utf8)
        let configURL = folder.appendingPathComponent("config.json")
        func assertConfigError(_ text: String, mentions fragment: String, line: UInt = #line) throws {
            try Data(text.utf8).write(to: configURL)
            XCTAssertThrowsError(try LanguageModel(path: folder.path), line: line) { error in
                XCTAssertTrue("\(error)".contains(fragment), "'\(error)' does not mention '\(fragment)'", line: line)
            }
        }
        try assertConfigError(config.replacingOccurrences(of: #""hidden_size": 8"#, with: #""hidden_size": "8""#),
                              mentions: "hidden_size")
        try assertConfigError(config.replacingOccurrences(of: "Qwen3ForCausalLM", with: "LlamaForCausalLM"),
                              mentions: "LlamaForCausalLM")
        try assertConfigError(config.replacingOccurrences(of: #""num_hidden_layers": 2,"#, with: ""),
                              mentions: "num_hidden_layers")
        try assertConfigError(config.replacingOccurrences(of: #""rope_type": "yarn""#, with: #""rope_type": "longrope""#)
                                .replacingOccurrences(of: #""rope_scaling": null"#,
                                                      with: #""rope_scaling": {"rope_type": "longrope"}"#),
                              mentions: "longrope")
        try assertConfigError("[1]", mentions: "not a JSON object")
        // A valid config but no weights.
        try assertConfigError(config, mentions: "model.safetensors")
    }

    /// Weights of the right names but the wrong shape or dtype.
    func testWrongTensorShapeAndDType() throws {
        try FileManager.default.copyItem(at: Fixtures.url("models/tiny-qwen3/config.json"),
                                         to: folder.appendingPathComponent("config.json"))
        _ = try write(header: #"{"model.embed_tokens.weight":{"dtype":"F32","shape":[1,8],"data_offsets":[0,32]}}"#,
                      data: [UInt8](repeating: 0, count: 32))
        XCTAssertThrowsError(try LanguageModel(path: folder.path)) { error in
            XCTAssertTrue("\(error)".contains("model.embed_tokens.weight") && "\(error)".contains("shape"), "\(error)")
        }
        _ = try write(header: #"{"model.embed_tokens.weight":{"dtype":"I8","shape":[151936,8],"data_offsets":[0,1215488]}}"#,
                      data: [UInt8](repeating: 0, count: 1_215_488))
        XCTAssertThrowsError(try LanguageModel(path: folder.path)) { error in
            XCTAssertTrue("\(error)".contains("I8"), "\(error)")
        }
    }
}
