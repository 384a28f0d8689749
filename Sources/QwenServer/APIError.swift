import Hummingbird
import QwenKit

/// An error in OpenAI's envelope: `{"error": {"message", "type", "param", "code"}}`, with the HTTP
/// status that goes with it. Client mistakes are 4xx; only our own failures are 5xx.
public struct APIError: Error, HTTPResponseError, Sendable {
    public var status: HTTPResponse.Status
    public var message: String
    public var type: String
    public var param: String?
    public var code: String?

    public init(_ status: HTTPResponse.Status, _ message: String, type: String = "invalid_request_error",
                param: String? = nil, code: String? = nil) {
        self.status = status
        self.message = message
        self.type = type
        self.param = param
        self.code = code
    }

    /// A request field with a wrong type or value.
    static func invalid(_ param: String, _ message: String) -> APIError {
        APIError(.badRequest, message, param: param, code: "invalid_value")
    }

    /// The client went away before its answer (nginx's 499); only logs and metrics see it.
    static let clientClosed = APIError(HTTPResponse.Status(code: 499, reasonPhrase: "Client Closed Request"),
                                       "The client closed the connection before the answer.", code: "client_closed")

    static func contextExceeded(tokens: Int, context: Int, param: String = "messages") -> APIError {
        APIError(.badRequest,
                 "This model's maximum context length is \(context) tokens. However, your request has \(tokens) prompt tokens. Please reduce the length of the messages.",
                 param: param, code: "context_length_exceeded")
    }

    /// The envelope for an error met after a stream has started (its status is already 200).
    static func envelope(for error: Error) -> JSONValue {
        ((error as? APIError) ?? APIError(.internalServerError, "\(error)", type: "server_error")).json
    }

    var json: JSONValue {
        .object([("error", .object([
            ("message", .string(message)),
            ("type", .string(type)),
            ("param", param.map(JSONValue.string) ?? .null),
            ("code", code.map(JSONValue.string) ?? .null),
        ]))])
    }

    public func response(from request: Request, context: some RequestContext) throws -> Response {
        jsonResponse(json, status: status)
    }
}

func jsonResponse(_ value: JSONValue, status: HTTPResponse.Status = .ok) -> Response {
    Response(status: status, headers: [.contentType: "application/json"],
             body: .init(byteBuffer: ByteBuffer(string: value.pythonJSON)))
}
