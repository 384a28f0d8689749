import Foundation
import Hummingbird
import HTTPTypes
import NIOCore

/// The chat page served at `/`: plain HTML, CSS and JavaScript modules from `WebApp/`, compiled
/// into the binary by SwiftPM's `embedInCode` rule (`PackageResources`), so a moved or copied
/// binary still serves it and nothing is fetched from elsewhere.
///
/// The page holds no data, so it is served without the API key; every `/v1` call it makes sends
/// the key. Its Content-Security-Policy allows scripts, styles and connections from this server
/// only, and no inline script: a second line of defence behind the page's Markdown renderer,
/// which never parses model text as HTML.
enum WebApp {
    struct Asset: Sendable {
        let bytes: [UInt8]
        let contentType: String
        /// A strong validator of the content, so a browser revalidates with a 304 instead of a download.
        let eTag: String

        init(_ bytes: [UInt8], _ contentType: String) {
            self.bytes = bytes
            self.contentType = contentType
            eTag = "\"" + fnv1a64Hex(bytes) + "\""
        }
    }

    /// Every served path and its file. A file added to `WebApp/` is served once it is listed here
    /// (WebAppTests checks that everything the page references is).
    static let assets: [(path: String, asset: Asset)] = [
        ("/", Asset(PackageResources.index_html, "text/html; charset=utf-8")),
        ("/app.css", Asset(PackageResources.app_css, "text/css; charset=utf-8")),
        ("/app.js", Asset(PackageResources.app_js, "text/javascript; charset=utf-8")),
        ("/api.js", Asset(PackageResources.api_js, "text/javascript; charset=utf-8")),
        ("/chat.js", Asset(PackageResources.chat_js, "text/javascript; charset=utf-8")),
        ("/markdown.js", Asset(PackageResources.markdown_js, "text/javascript; charset=utf-8")),
        ("/store.js", Asset(PackageResources.store_js, "text/javascript; charset=utf-8")),
        ("/favicon.svg", Asset(PackageResources.favicon_svg, "image/svg+xml")),
    ]

    static let contentSecurityPolicy = [
        "default-src 'none'", "script-src 'self'", "style-src 'self'", "connect-src 'self'", "img-src 'self'",
        "base-uri 'none'", "form-action 'none'", "frame-ancestors 'none'",
    ].joined(separator: "; ")

    /// The response for `asset`: a 304 when the browser's copy is current, headers only for HEAD.
    /// `no-cache` makes the browser ask every time, so a new binary's page is never mixed with an
    /// old one's modules.
    static func response(for asset: Asset, request: Request) -> Response {
        var headers: HTTPFields = [
            .contentType: asset.contentType,
            .cacheControl: "no-cache",
            .eTag: asset.eTag,
            .contentSecurityPolicy: contentSecurityPolicy,
            .xContentTypeOptions: "nosniff",
        ]
        if let given = request.headers[.ifNoneMatch], given.split(separator: ",").contains(where: {
            $0.trimmingCharacters(in: .whitespaces) == asset.eTag
        }) {
            headers[.contentType] = nil
            return Response(status: .notModified, headers: headers)
        }
        if request.method == .head {
            headers[.contentLength] = String(asset.bytes.count)
            return Response(status: .ok, headers: headers)
        }
        return Response(status: .ok, headers: headers, body: .init(byteBuffer: ByteBuffer(bytes: asset.bytes)))
    }
}

extension Router {
    /// Serves the chat page (``WebApp``) at `/` and its modules beside it.
    func addWebApp() {
        for (path, asset) in WebApp.assets {
            get(RouterPath(path)) { request, _ in WebApp.response(for: asset, request: request) }
            head(RouterPath(path)) { request, _ in WebApp.response(for: asset, request: request) }
        }
    }
}

/// FNV-1a, 64 bits, in hex: enough to tell two versions of a file apart (not a security measure).
private func fnv1a64Hex(_ bytes: [UInt8]) -> String {
    var hash: UInt64 = 0xcbf2_9ce4_8422_2325
    for byte in bytes {
        hash ^= UInt64(byte)
        hash &*= 0x0000_0100_0000_01b3
    }
    let hex = String(hash, radix: 16)
    return String(repeating: "0", count: 16 - hex.count) + hex
}
