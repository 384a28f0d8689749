import QwenKit
@testable import QwenServer
import XCTest

/// The error body is OpenAI's envelope, with every field present (null when absent).
final class APIErrorEnvelopeTests: XCTestCase {
    func testEnvelopeHasOpenAIShape() throws {
        let error = APIError(.badRequest, "bad temperature", param: "temperature", code: "invalid_value")
        let parsed = try JSONValue.parse(error.json.pythonJSON)
        XCTAssertEqual(parsed["error"]?["message"]?.stringValue, "bad temperature")
        XCTAssertEqual(parsed["error"]?["type"]?.stringValue, "invalid_request_error")
        XCTAssertEqual(parsed["error"]?["param"]?.stringValue, "temperature")
        XCTAssertEqual(parsed["error"]?["code"]?.stringValue, "invalid_value")
        XCTAssertEqual(APIError(.notFound, "x").json["error"]?["param"], .null)
    }
}
