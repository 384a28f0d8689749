import Foundation
import QwenKit
@testable import QwenServer
import XCTest

/// `tool_choice` `required` or a named function: the answer is generated as a call to a
/// function the request offered, with arguments that match its schema — even from a random model.
final class ToolChoiceTests: XCTestCase {
    static let tools = #"""
        [{"type": "function", "function": {"name": "set_unit", "description": "Choose a unit",
          "parameters": {"type": "object", "properties": {"unit": {"type": "string", "enum": ["celsius", "fahrenheit"]}},
                         "required": ["unit"]}}},
         {"type": "function", "function": {"name": "toggle", "description": "Switch a lamp",
          "parameters": {"type": "object", "properties": {"on": {"type": "boolean"}}, "required": ["on"]}}}]
        """#

    /// - Parameter extra: more members, each written `, "key": value`.
    static func request(_ choice: String, extra: String = "") -> String {
        #"{"messages": [{"role": "user", "content": "Hello"}], "max_tokens": 200, "temperature": 0.9, "seed": 3, "tools": \#(Self.tools), "tool_choice": \#(choice)\#(extra)}"#
    }

    func testNamedFunctionIsCalledWithValidArguments() async throws {
        try await checkNamedToolChoice(makeEngine())
    }

    func testRequiredCallsSomeOfferedFunction() async throws {
        let engine = try makeEngine()
        try await withRouter(engine) { client in
            let reply = try await client.post("/v1/chat/completions", Self.request(#""required""#))
            XCTAssertEqual(reply.status, .ok, reply.text)
            let call = reply.json?["choices"]?[0]?["message"]?["tool_calls"]?[0]?["function"]
            XCTAssertTrue(["set_unit", "toggle"].contains(call?["name"]?.stringValue ?? ""), reply.text)
            let arguments = try JSONValue.parse(try XCTUnwrap(call?["arguments"]?.stringValue))
            guard case .object = arguments else { return XCTFail("arguments are not an object: \(arguments.pythonJSON)") }
        }
    }
}

extension XCTestCase {
    /// Asks for each function of ``ToolChoiceTests/tools`` by name and checks the answer is
    /// that call alone, with arguments that match its schema.
    func checkNamedToolChoice(_ engine: InferenceEngine, extra: String = "") async throws {
        try await withRouter(engine) { client in
            for (name, check) in [("set_unit", "unit"), ("toggle", "on")] {
                let reply = try await client.post("/v1/chat/completions", ToolChoiceTests.request(
                    #"{"type": "function", "function": {"name": "\#(name)"}}"#, extra: extra))
                XCTAssertEqual(reply.status, .ok, reply.text)
                let choice = reply.json?["choices"]?[0]
                XCTAssertEqual(choice?["finish_reason"], "tool_calls", reply.text)
                XCTAssertEqual(choice?["message"]?["content"], .null, reply.text)
                let call = choice?["message"]?["tool_calls"]?[0]?["function"]
                XCTAssertEqual(call?["name"]?.stringValue, name)
                let arguments = try JSONValue.parse(try XCTUnwrap(call?["arguments"]?.stringValue))
                XCTAssertNotNil(arguments[check], "\(name) arguments: \(arguments.pythonJSON)")
                if name == "set_unit" {
                    XCTAssertTrue(["celsius", "fahrenheit"].contains(arguments["unit"]?.stringValue ?? ""))
                } else {
                    XCTAssertNotNil(arguments["on"]?.boolValue)
                }
            }
        }
    }
}
