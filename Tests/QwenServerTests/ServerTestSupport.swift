import Foundation
import Hummingbird
import HummingbirdTesting
import NIOCore
import QwenKit
@testable import QwenServer
import XCTest

/// Locates the shared reference fixtures: `$QWENKIT_FIXTURES`, else `<repository root>/../shared/fixtures`.
enum ServerFixtures {
    static var root: URL {
        if let path = ProcessInfo.processInfo.environment["QWENKIT_FIXTURES"], !path.isEmpty {
            return URL(fileURLWithPath: path, isDirectory: true)
        }
        return URL(fileURLWithPath: #filePath)
            .deletingLastPathComponent()  // QwenServerTests
            .deletingLastPathComponent()  // Tests
            .deletingLastPathComponent()  // repository root
            .appendingPathComponent("../shared/fixtures", isDirectory: true).standardized
    }

    static var tinyModelPath: String { root.appendingPathComponent("models/tiny-qwen2/tiny-qwen2-f32.gguf").path }

    /// The tiny random-weight Qwen2 model, loaded once for all tests.
    static let tinyModel = Result { try LanguageModel(path: tinyModelPath) }

    /// The tiny Qwen2 model's Hugging Face folder, linked into a temporary folder with `template`
    /// in place of its own chat template.
    static func tinyModel(template: String) throws -> LanguageModel {
        let source = root.appendingPathComponent("models/tiny-qwen2")
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent("qwenkit-template-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        for file in ["config.json", "generation_config.json", "model.safetensors", "tokenizer.json"] {
            try FileManager.default.createSymbolicLink(at: folder.appendingPathComponent(file),
                                                       withDestinationURL: source.appendingPathComponent(file))
        }
        let configuration = try JSONValue.parse(Data(contentsOf: source.appendingPathComponent("tokenizer_config.json")))
        let members = (configuration.objectValue ?? []).filter { $0.0 != "chat_template" } + [("chat_template", .string(template))]
        try Data(JSONValue.object(members).pythonJSON.utf8).write(to: folder.appendingPathComponent("tokenizer_config.json"))
        return try LanguageModel(path: folder.path)
    }
}

/// A response read back whole: status, headers, body text and (when it parses) the JSON body.
struct Reply {
    var status: HTTPResponse.Status
    var headers: HTTPFields
    var text: String
    var json: JSONValue? { try? JSONValue.parse(text) }
}

enum ServerTestError: Error, CustomStringConvertible {
    case unexpected(String)
    var description: String {
        switch self { case .unexpected(let s): s }
    }
}

extension XCTestCase {
    static let tinyModelID = "tiny-qwen2"

    func makeEngine(context: Int = 512, parallel: Int = 1, maxQueue: Int = 8) throws -> InferenceEngine {
        try InferenceEngine(model: ServerFixtures.tinyModel.get(), modelID: Self.tinyModelID, contextLength: context,
                            parallel: parallel, threads: 1, maxQueue: maxQueue)
    }

    /// Runs `body` against the router in memory (no socket).
    func withRouter(_ engine: InferenceEngine, apiKey: String? = nil, maxBodyBytes: Int? = nil,
                    _ body: @escaping @Sendable (any TestClientProtocol) async throws -> Void) async throws {
        var configuration = ServerConfiguration()
        configuration.apiKey = apiKey
        if let maxBodyBytes { configuration.maxBodyBytes = maxBodyBytes }
        let app = Application(router: buildRouter(engine: engine, configuration: configuration))
        try await app.test(.router) { client in try await body(client) }
    }
}

extension TestClientProtocol {
    func send(_ method: HTTPRequest.Method, _ uri: String, body: String? = nil, headers: HTTPFields = [:]) async throws -> Reply {
        var headers = headers
        if body != nil { headers[.contentType] = "application/json" }
        return try await execute(uri: uri, method: method, headers: headers, body: body.map { ByteBuffer(string: $0) }) { response in
            Reply(status: response.status, headers: response.headers, text: String(buffer: response.body))
        }
    }

    func post(_ uri: String, _ body: String, headers: HTTPFields = [:]) async throws -> Reply {
        try await send(.post, uri, body: body, headers: headers)
    }

    /// Posts a JSON object built from `members`.
    func post(_ uri: String, json: JSONValue, headers: HTTPFields = [:]) async throws -> Reply {
        try await send(.post, uri, body: json.pythonJSON, headers: headers)
    }
}

/// Server-sent events: the `data:` payloads in order. Fails unless every event is exactly one
/// `data: ` line followed by a blank line.
func sseEvents(_ text: String, file: StaticString = #filePath, line: UInt = #line) -> [String] {
    XCTAssertTrue(text.hasSuffix("\n\n"), "an event stream ends with a blank line", file: file, line: line)
    var events: [String] = []
    for block in text.components(separatedBy: "\n\n").dropLast() {
        XCTAssertFalse(block.contains("\n"), "one line per event: \(block)", file: file, line: line)
        guard block.hasPrefix("data: ") else {
            XCTFail("event without 'data: ': \(block)", file: file, line: line)
            continue
        }
        events.append(String(block.dropFirst("data: ".count)))
    }
    return events
}

/// Checks OpenAI's error envelope: exactly `{"error": {"message", "type", "param", "code"}}`, with
/// a non-empty message and string type; returns the inner object.
@discardableResult
func assertErrorEnvelope(_ reply: Reply, status: HTTPResponse.Status, param: String?? = .none,
                         file: StaticString = #filePath, line: UInt = #line) -> JSONValue? {
    XCTAssertEqual(reply.status, status, reply.text, file: file, line: line)
    XCTAssertEqual(reply.headers[.contentType], "application/json", file: file, line: line)
    guard let json = reply.json, let members = json.objectValue, members.count == 1, members[0].0 == "error",
          let error = json["error"], let inner = error.objectValue else {
        XCTFail("not an error envelope: \(reply.text)", file: file, line: line)
        return nil
    }
    XCTAssertEqual(Set(inner.map(\.0)), ["message", "type", "param", "code"], file: file, line: line)
    XCTAssertEqual(inner.count, 4, file: file, line: line)
    XCTAssertFalse((error["message"]?.stringValue ?? "").isEmpty, "message", file: file, line: line)
    XCTAssertNotNil(error["type"]?.stringValue, "type", file: file, line: line)
    XCTAssertTrue(error["param"]?.stringValue != nil || error["param"]?.isNull == true, "param", file: file, line: line)
    XCTAssertTrue(error["code"]?.stringValue != nil || error["code"]?.isNull == true, "code", file: file, line: line)
    if case .some(let expected) = param {
        XCTAssertEqual(error["param"]?.stringValue, expected, "param", file: file, line: line)
    }
    return error
}
