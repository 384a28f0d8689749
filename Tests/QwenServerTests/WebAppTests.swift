import Foundation
import Hummingbird
import HummingbirdTesting
import QwenKit
@testable import QwenServer
import XCTest

/// The chat page's routes, in memory. What the page does is tested in a real browser
/// (Tests/browser/test_chat.py); here: that it is served whole, typed, cached and fenced by CSP.
final class WebAppTests: XCTestCase {
    func testPageIsServedWithItsHeaders() async throws {
        let engine = try makeEngine()
        try await withRouter(engine) { client in
            let page = try await client.send(.get, "/")
            XCTAssertEqual(page.status, .ok)
            XCTAssertEqual(page.headers[.contentType], "text/html; charset=utf-8")
            XCTAssertEqual(page.headers[.cacheControl], "no-cache")
            XCTAssertEqual(page.headers[.xContentTypeOptions], "nosniff")
            let csp = try XCTUnwrap(page.headers[.contentSecurityPolicy])
            XCTAssertTrue(csp.contains("default-src 'none'"), csp)
            XCTAssertTrue(csp.contains("script-src 'self'"), csp)
            XCTAssertFalse(csp.contains("unsafe-inline"), csp)
            XCTAssertFalse(csp.contains("unsafe-eval"), csp)
            XCTAssertTrue(page.text.hasPrefix("<!doctype html>"))
            // No inline script or style: the CSP would block them.
            XCTAssertFalse(page.text.contains("<script>"))
            XCTAssertFalse(page.text.contains(" style=\""))
            XCTAssertNil(page.text.range(of: #"\son[a-z]+="#, options: .regularExpression), "no inline event handlers")

            let script = try await client.send(.get, "/app.js")
            XCTAssertEqual(script.status, .ok)
            XCTAssertEqual(script.headers[.contentType], "text/javascript; charset=utf-8")
            let style = try await client.send(.get, "/app.css")
            XCTAssertEqual(style.headers[.contentType], "text/css; charset=utf-8")

            let head = try await client.send(.head, "/app.js")
            XCTAssertEqual(head.status, .ok)
            XCTAssertEqual(head.headers[.contentLength], String(script.text.utf8.count))
            XCTAssertEqual(head.text, "")

            let missing = try await client.send(.get, "/nothing.js")
            XCTAssertEqual(missing.status, .notFound)
        }
    }

    /// Every file the page names (`src`, `href`, module imports) is served: a file added to
    /// WebApp/ but not to ``WebApp/assets`` fails here, not in a person's browser.
    func testEveryReferencedFileIsServed() async throws {
        let engine = try makeEngine()
        try await withRouter(engine) { client in
            var pending = ["/"], seen = Set<String>()
            while let path = pending.popLast() {
                guard seen.insert(path).inserted else { continue }
                let reply = try await client.send(.get, path)
                XCTAssertEqual(reply.status, .ok, path)
                pending += Self.references(in: reply.text)
            }
            XCTAssertEqual(seen, Set(WebApp.assets.map { $0.path }), "every asset is reachable from the page, and only those")
        }
    }

    /// Local paths in `src="/…"`, `href="/…"` and `from "./….js"`.
    static func references(in text: String) -> [String] {
        var paths: [String] = []
        for pattern in [##"(?:src|href)="(/[^"#]*)""##, #"from "\./([^"]+)""#] {
            let regex = try? NSRegularExpression(pattern: pattern)
            let range = NSRange(text.startIndex..., in: text)
            for match in regex?.matches(in: text, range: range) ?? [] {
                guard let r = Range(match.range(at: 1), in: text) else { continue }
                let path = String(text[r])
                paths.append(path.hasPrefix("/") ? path : "/" + path)
            }
        }
        return paths
    }

    func testUnchangedFileIsNotSentAgain() async throws {
        let engine = try makeEngine()
        try await withRouter(engine) { client in
            let first = try await client.send(.get, "/markdown.js")
            let tag = try XCTUnwrap(first.headers[.eTag])
            let again = try await client.send(.get, "/markdown.js", headers: [.ifNoneMatch: tag])
            XCTAssertEqual(again.status, .notModified)
            XCTAssertEqual(again.text, "")
            let changed = try await client.send(.get, "/markdown.js", headers: [.ifNoneMatch: "\"0000000000000000\""])
            XCTAssertEqual(changed.status, .ok)
            XCTAssertEqual(changed.text, first.text)
        }
    }

    /// The page holds no data and is served without the key; what it calls under /v1 needs it.
    func testPageNeedsNoKeyButTheAPIStillDoes() async throws {
        let engine = try makeEngine()
        try await withRouter(engine, apiKey: "sk-page") { client in
            let page = try await client.send(.get, "/")
            XCTAssertEqual(page.status, .ok)
            let models = try await client.send(.get, "/v1/models")
            assertErrorEnvelope(models, status: .unauthorized)
        }
    }

    /// What the page reads from /v1/models besides OpenAI's members.
    func testModelsTellTheContextLengthAndThinking() async throws {
        let engine = try makeEngine(context: 384)
        try await withRouter(engine) { client in
            let models = try await client.send(.get, "/v1/models")
            let model = try XCTUnwrap(models.json?["data"]?.arrayValue?.first)
            XCTAssertEqual(model["context_length"]?.intValue, 384)
            XCTAssertEqual(model["supports_thinking"], .bool(engine.model.supportsThinking))
        }
    }
}
