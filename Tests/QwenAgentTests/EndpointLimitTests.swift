import Foundation
#if canImport(Glibc)
import Glibc
#endif
import QwenAgent
import QwenKit
import XCTest

/// A remote endpoint that answers without end: the agent stops reading at the cap instead of
/// holding the whole reply in memory (a 200 MB reply took 1.9 GB before).
final class EndpointLimitTests: XCTestCase {
    /// A loopback HTTP server (python3) that answers every POST with `{"choices": [` and then
    /// spaces without end, close-delimited; with `announce`, a Content-Length of 200 MB first.
    private func startServer(announce: Bool) throws -> (Process, Int) {
        let script = """
        import sys
        from http.server import BaseHTTPRequestHandler, HTTPServer
        class H(BaseHTTPRequestHandler):
            def log_message(self, *a): pass
            def do_POST(self):
                self.rfile.read(int(self.headers.get("Content-Length", "0")))
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                if \(announce ? "True" : "False"):
                    self.send_header("Content-Length", str(200 * 1024 * 1024))
                self.end_headers()
                try:
                    self.wfile.write(b'{"choices": [')
                    for _ in range(3200):
                        self.wfile.write(b" " * 65536)
                except OSError:
                    pass
        s = HTTPServer(("127.0.0.1", 0), H)
        print(s.server_address[1], flush=True)
        s.serve_forever()
        """
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        process.arguments = ["python3", "-c", script]
        let out = Pipe()
        process.standardOutput = out
        try process.run()
        var line = Data()
        while !line.contains(UInt8(ascii: "\n")) {
            let chunk = out.fileHandleForReading.availableData
            if chunk.isEmpty { break }
            line.append(chunk)
        }
        guard let port = Int(String(decoding: line, as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)) else {
            process.terminate()
            throw XCTSkip("python3 server did not start")
        }
        return (process, port)
    }

    func testOversizedReplyIsCutOff() async throws {
        for announce in [false, true] {
            let (server, port) = try startServer(announce: announce)
            // SIGKILL: blocked writing to a client that stopped reading, it may not act on SIGTERM.
            defer { kill(server.processIdentifier, SIGKILL); server.waitUntilExit() }
            var brain = EndpointBrain(baseURL: try XCTUnwrap(URL(string: "http://127.0.0.1:\(port)")))
            brain.maximumReplyBytes = 1 << 20
            do {
                _ = try await brain.respond(to: [.user("hi")], tools: []) { _ in }
                XCTFail("an endless reply was accepted")
            } catch {
                XCTAssertTrue("\(error)".contains("larger than \(1 << 20) bytes"), "\(error)")
            }
        }
    }
}
