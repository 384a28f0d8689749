import Foundation
import QwenKit
import XCTest

/// `scripts/fake-hub.py` on a free loopback port, serving repositories from a temporary folder.
final class FakeHub {
    let folder: URL
    let repos: URL
    let log: URL
    private var process: Process?
    private(set) var port = 0

    static var script: URL {
        URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .deletingLastPathComponent().appendingPathComponent("scripts/fake-hub.py")
    }

    init() throws {
        folder = FileManager.default.temporaryDirectory.appendingPathComponent("qwenkit-hub-\(UUID().uuidString)")
        repos = folder.appendingPathComponent("repos")
        log = folder.appendingPathComponent("requests.jsonl")
        try FileManager.default.createDirectory(at: repos, withIntermediateDirectories: true)
    }

    /// Writes `data` as `file` of `repo`.
    func add(_ repo: String, _ file: String, _ data: Data) throws {
        let url = repos.appendingPathComponent(repo).appendingPathComponent(file)
        try FileManager.default.createDirectory(at: url.deletingLastPathComponent(), withIntermediateDirectories: true)
        try data.write(to: url)
    }

    /// Starts the server with extra `options` (see the script); waits for it to print its port.
    func start(_ options: [String] = []) throws {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        process.arguments = ["python3", Self.script.path, "--root", repos.path, "--log", log.path] + options
        let out = Pipe()
        process.standardOutput = out
        try process.run()
        self.process = process
        var line = Data()
        while !line.contains(UInt8(ascii: "\n")) {
            let chunk = out.fileHandleForReading.availableData
            if chunk.isEmpty { break }
            line.append(chunk)
        }
        guard let port = Int(String(decoding: line, as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)) else {
            throw XCTSkip("the fake hub did not start (python3 missing?)")
        }
        self.port = port
    }

    func stop() {
        if let process, process.isRunning {
            process.terminate()
            process.waitUntilExit()
        }
        process = nil
    }

    var endpoint: String { "http://127.0.0.1:\(port)" }

    /// The requests the server saw, in order.
    var requests: [[String: Any]] {
        guard let data = try? Data(contentsOf: log) else { return [] }
        return String(decoding: data, as: UTF8.self).split(separator: "\n").compactMap {
            (try? JSONSerialization.jsonObject(with: Data($0.utf8))) as? [String: Any]
        }
    }

    func clearLog() { try? FileManager.default.removeItem(at: log) }

    deinit {
        stop()
        try? FileManager.default.removeItem(at: folder)
    }
}

final class HubPullTests: XCTestCase {
    private var hub: FakeHub!
    private var home: URL!
    private let gguf = Data((0..<700_001).map { UInt8(truncatingIfNeeded: ($0 &* 2_654_435_761) >> 13) })
    private let safetensors = Data((0..<300_000).map { UInt8(truncatingIfNeeded: $0 &* 7 &+ 3) })

    override func setUpWithError() throws {
        hub = try FakeHub()
        home = hub.folder.appendingPathComponent("home")
        try hub.add("Qwen/Tiny-GGUF", "tiny-q8_0.gguf", gguf)
        try hub.add("Qwen/Tiny-GGUF", "README.md", Data("# tiny\n".utf8))
        try hub.add("Qwen/Tiny-ST", "config.json", Data(#"{"architectures": ["Qwen3ForCausalLM"]}"#.utf8))
        try hub.add("Qwen/Tiny-ST", "model.safetensors", safetensors)
        try hub.add("Qwen/Tiny-ST", "tokenizer.json", Data(#"{"model": {}}"#.utf8))
        try hub.add("Qwen/Tiny-ST", "extra/notes.txt", Data("nested\n".utf8))
    }

    override func tearDown() {
        hub.stop()
        hub = nil
    }

    private var cacheRoot: URL { home.appendingPathComponent("hf/hub") }

    private func qwenkit(_ arguments: [String], _ extra: [String: String] = [:]) throws -> QwenKitBinary.Output {
        var environment = ["HF_ENDPOINT": hub.endpoint, "HF_HOME": home.appendingPathComponent("hf").path,
                           "QWENKIT_HOME": home.appendingPathComponent("qwenkit").path,
                           "HF_TOKEN": "", "HF_HUB_OFFLINE": "", "HF_HUB_CACHE": ""]
        environment.merge(extra) { $1 }
        let output = try QwenKitBinary.run(arguments, environment: environment, timeout: 60)
        XCTAssertFalse(output.crashed, output.stderr)
        XCTAssertFalse(output.timedOut)
        return output
    }

    private func sha256(_ data: Data) -> String { SHA256Hasher.hexDigest(of: data) }

    private func downloads(_ path: String) -> [[String: Any]] {
        hub.requests.filter { $0["method"] as? String == "GET" && ($0["path"] as? String ?? "").hasSuffix(path) }
    }

    func testPullSingleFileIntoHubCacheLayout() throws {
        try hub.start()
        let output = try qwenkit(["pull", "Qwen/Tiny-GGUF:tiny-q8_0.gguf"])
        XCTAssertEqual(output.status, 0, output.stderr)
        let path = output.stdout.trimmingCharacters(in: .whitespacesAndNewlines)
        XCTAssertEqual(try Data(contentsOf: URL(fileURLWithPath: path)), gguf)

        let repo = cacheRoot.appendingPathComponent("models--Qwen--Tiny-GGUF")
        let commit = try String(contentsOf: repo.appendingPathComponent("refs/main"), encoding: .utf8)
        XCTAssertEqual(commit.count, 40)
        XCTAssertEqual(path, repo.appendingPathComponent("snapshots/\(commit)/tiny-q8_0.gguf").path)
        XCTAssertEqual(try FileManager.default.destinationOfSymbolicLink(atPath: path), "../../blobs/\(sha256(gguf))")
        XCTAssertTrue(FileManager.default.fileExists(atPath: repo.appendingPathComponent("blobs/\(sha256(gguf))").path))
        // Only the requested file came over; the redirect went to the CDN route.
        XCTAssertEqual(downloads("/cdn/Qwen/Tiny-GGUF/tiny-q8_0.gguf").count, 1)
        XCTAssertTrue(downloads("README.md").isEmpty)

        // -m accepts the reference of the pulled file.
        let store = ModelStore(environment: ["HF_HOME": home.appendingPathComponent("hf").path,
                                             "QWENKIT_HOME": home.appendingPathComponent("qwenkit").path])
        XCTAssertEqual(try store.resolve("Qwen/Tiny-GGUF:tiny-q8_0.gguf").path, path)
        XCTAssertThrowsError(try store.resolve("Qwen/Not-Pulled")) { error in
            XCTAssertTrue("\(error)".contains("qwenkit pull"), "\(error)")
        }
    }

    func testPullWholeRepositoryAndReuseCache() throws {
        try hub.start()
        let output = try qwenkit(["pull", "Qwen/Tiny-ST"])
        XCTAssertEqual(output.status, 0, output.stderr)
        let snapshot = URL(fileURLWithPath: output.stdout.trimmingCharacters(in: .whitespacesAndNewlines))
        XCTAssertEqual(try Data(contentsOf: snapshot.appendingPathComponent("model.safetensors")), safetensors)
        XCTAssertEqual(try String(contentsOf: snapshot.appendingPathComponent("extra/notes.txt"), encoding: .utf8), "nested\n")
        XCTAssertEqual(try FileManager.default.destinationOfSymbolicLink(atPath: snapshot.appendingPathComponent("extra/notes.txt").path).prefix(15),
                       "../../../blobs/")
        for file in ["config.json", "tokenizer.json"] {
            XCTAssertTrue(FileManager.default.fileExists(atPath: snapshot.appendingPathComponent(file).path), file)
        }
        let store = ModelStore(environment: ["HF_HOME": home.appendingPathComponent("hf").path])
        XCTAssertEqual(try store.resolve("Qwen/Tiny-ST").path, snapshot.path)

        // A second pull asks only for metadata: no file is downloaded again.
        hub.clearLog()
        let again = try qwenkit(["pull", "Qwen/Tiny-ST"])
        XCTAssertEqual(again.status, 0, again.stderr)
        XCTAssertEqual(again.stdout, output.stdout)
        XCTAssertFalse(hub.requests.isEmpty)
        XCTAssertTrue(hub.requests.allSatisfy { $0["method"] as? String != "GET" || ($0["path"] as? String ?? "").hasPrefix("/api/") },
                      "\(hub.requests)")
    }

    func testInterruptedDownloadResumesWithRange() throws {
        try hub.start(["--drop-once"])
        let output = try qwenkit(["pull", "Qwen/Tiny-GGUF:tiny-q8_0.gguf"])
        XCTAssertEqual(output.status, 0, output.stderr)
        let path = output.stdout.trimmingCharacters(in: .whitespacesAndNewlines)
        XCTAssertEqual(try Data(contentsOf: URL(fileURLWithPath: path)), gguf)
        let ranges = downloads("/cdn/Qwen/Tiny-GGUF/tiny-q8_0.gguf").compactMap { $0["range"] as? String }
        XCTAssertEqual(ranges, ["bytes=\(gguf.count / 2)-"])
    }

    func testPartialFileFromAnEarlierRunIsResumed() throws {
        try hub.start()
        let blobs = cacheRoot.appendingPathComponent("models--Qwen--Tiny-GGUF/blobs")
        try FileManager.default.createDirectory(at: blobs, withIntermediateDirectories: true)
        try gguf.prefix(123_456).write(to: blobs.appendingPathComponent("\(sha256(gguf)).incomplete"))
        let output = try qwenkit(["pull", "Qwen/Tiny-GGUF:tiny-q8_0.gguf"])
        XCTAssertEqual(output.status, 0, output.stderr)
        XCTAssertTrue(output.stderr.contains("resuming"), output.stderr)
        XCTAssertEqual(try Data(contentsOf: URL(fileURLWithPath: output.stdout.trimmingCharacters(in: .whitespacesAndNewlines))), gguf)
        XCTAssertEqual(downloads("/cdn/Qwen/Tiny-GGUF/tiny-q8_0.gguf").compactMap { $0["range"] as? String },
                       ["bytes=123456-"])
        XCTAssertFalse(FileManager.default.fileExists(atPath: blobs.appendingPathComponent("\(sha256(gguf)).incomplete").path))
    }

    func testCorruptedFileIsRejectedByItsHash() throws {
        try hub.start(["--corrupt", "tiny-q8_0.gguf"])
        let output = try qwenkit(["pull", "Qwen/Tiny-GGUF:tiny-q8_0.gguf"])
        XCTAssertNotEqual(output.status, 0)
        XCTAssertTrue(output.stderr.contains("SHA-256") && output.stderr.contains(sha256(gguf)), output.stderr)
        let blobs = cacheRoot.appendingPathComponent("models--Qwen--Tiny-GGUF/blobs")
        XCTAssertEqual((try? FileManager.default.contentsOfDirectory(atPath: blobs.path)) ?? [], [])
    }

    func testOfflineModeUsesTheCacheOrFailsClearly() throws {
        let missing = try qwenkit(["pull", "Qwen/Tiny-GGUF:tiny-q8_0.gguf"], ["HF_HUB_OFFLINE": "1"])
        XCTAssertNotEqual(missing.status, 0)
        XCTAssertTrue(missing.stderr.contains("HF_HUB_OFFLINE") && missing.stderr.contains("not in the cache"), missing.stderr)
        XCTAssertEqual(missing.stderr.split(separator: "\n").count, 1, missing.stderr)

        try hub.start()
        let online = try qwenkit(["pull", "Qwen/Tiny-ST"])
        XCTAssertEqual(online.status, 0, online.stderr)
        hub.stop()
        for reference in ["Qwen/Tiny-ST", "Qwen/Tiny-ST:config.json"] {
            let offline = try qwenkit(["pull", reference], ["HF_HUB_OFFLINE": "1"])
            XCTAssertEqual(offline.status, 0, offline.stderr)
            XCTAssertTrue(FileManager.default.fileExists(atPath: offline.stdout.trimmingCharacters(in: .whitespacesAndNewlines)))
        }
        let notThatFile = try qwenkit(["pull", "Qwen/Tiny-ST:other.bin"], ["HF_HUB_OFFLINE": "1"])
        XCTAssertNotEqual(notThatFile.status, 0)
        XCTAssertTrue(notThatFile.stderr.contains("HF_HUB_OFFLINE"), notThatFile.stderr)
    }

    func testListAndRm() throws {
        try hub.start()
        XCTAssertEqual(try qwenkit(["pull", "Qwen/Tiny-GGUF:tiny-q8_0.gguf"]).status, 0)
        XCTAssertEqual(try qwenkit(["pull", "Qwen/Tiny-ST"]).status, 0)
        let list = try qwenkit(["list"])
        XCTAssertEqual(list.status, 0, list.stderr)
        let lines = list.stdout.split(separator: "\n")
        XCTAssertEqual(lines.count, 3, list.stdout)
        XCTAssertTrue(lines[0].hasPrefix("NAME"))
        XCTAssertTrue(lines[1].hasPrefix("Qwen/Tiny-GGUF") && lines[1].contains("main (") && lines[1].contains("700.0 kB"), list.stdout)
        XCTAssertTrue(lines[2].hasPrefix("Qwen/Tiny-ST") && lines[2].contains(" 4 "), list.stdout)

        let rm = try qwenkit(["rm", "Qwen/Tiny-GGUF"])
        XCTAssertEqual(rm.status, 0, rm.stderr)
        XCTAssertFalse(FileManager.default.fileExists(atPath: cacheRoot.appendingPathComponent("models--Qwen--Tiny-GGUF").path))
        XCTAssertFalse(try qwenkit(["list"]).stdout.contains("Tiny-GGUF"))
        let again = try qwenkit(["rm", "Qwen/Tiny-GGUF"])
        XCTAssertNotEqual(again.status, 0)
        XCTAssertTrue(again.stderr.contains("not in the cache"), again.stderr)
        XCTAssertEqual(try qwenkit(["rm", "models--Qwen--Tiny-ST"]).status, 0)
        XCTAssertNotEqual(try qwenkit(["rm", "qwen2.5-coder:0.5b"]).status, 0)
    }

    func testUnknownRepositoryAndFile() throws {
        try hub.start()
        for reference in ["nobody/nothing", "nobody/nothing:model.gguf"] {
            let output = try qwenkit(["pull", reference])
            XCTAssertNotEqual(output.status, 0)
            XCTAssertEqual(output.stderr, "qwenkit: error: repository 'nobody/nothing' not found on the hub\n")
        }
        let file = try qwenkit(["pull", "Qwen/Tiny-GGUF:missing.gguf"])
        XCTAssertTrue(file.stderr.contains("file 'missing.gguf' not found in repository 'Qwen/Tiny-GGUF'"), file.stderr)
        let notAReference = try qwenkit(["pull", "just-a-name"])
        XCTAssertNotEqual(notAReference.status, 0)
        XCTAssertTrue(notAReference.stderr.contains("ORG/NAME"), notAReference.stderr)
    }

    func testTokenRequiredAndNotSentToAnotherHost() throws {
        // Redirects go to http://localhost:PORT while the hub is http://127.0.0.1:PORT: another host.
        try hub.start(["--token", "secret", "--cdn-host", "localhost"])
        let denied = try qwenkit(["pull", "Qwen/Tiny-GGUF:tiny-q8_0.gguf"])
        XCTAssertNotEqual(denied.status, 0)
        XCTAssertTrue(denied.stderr.contains("HF_TOKEN"), denied.stderr)
        let wrong = try qwenkit(["pull", "Qwen/Tiny-ST"], ["HF_TOKEN": "wrong"])
        XCTAssertTrue(wrong.stderr.contains("HF_TOKEN"), wrong.stderr)

        hub.clearLog()
        let allowed = try qwenkit(["pull", "Qwen/Tiny-GGUF:tiny-q8_0.gguf"], ["HF_TOKEN": "secret"])
        XCTAssertEqual(allowed.status, 0, allowed.stderr)
        let resolve = hub.requests.filter { ($0["path"] as? String ?? "").contains("/resolve/") }
        XCTAssertFalse(resolve.isEmpty)
        XCTAssertTrue(resolve.allSatisfy { $0["auth"] as? String == "Bearer secret" })
        let cdn = hub.requests.filter { ($0["path"] as? String ?? "").hasPrefix("/cdn/") }
        XCTAssertEqual(cdn.count, 1)
        XCTAssertTrue(cdn.allSatisfy { $0["auth"] == nil || $0["auth"] is NSNull }, "\(cdn)")
    }

    func testPathTraversalIsRefused() throws {
        try hub.start(["--extra-sibling", "../../escaped.txt"])
        let output = try qwenkit(["pull", "Qwen/Tiny-ST"])
        XCTAssertNotEqual(output.status, 0)
        XCTAssertTrue(output.stderr.contains("path traversal") && output.stderr.contains("../../escaped.txt"), output.stderr)
        let direct = try qwenkit(["pull", "Qwen/Tiny-ST:../../../etc/passwd"])
        XCTAssertNotEqual(direct.status, 0)
        XCTAssertTrue(direct.stderr.contains("path traversal"), direct.stderr)
        let found = FileManager.default.enumerator(atPath: home.path)?.allObjects.compactMap { $0 as? String } ?? []
        XCTAssertFalse(found.contains { $0.hasSuffix("escaped.txt") }, "\(found)")
    }

    func testMalformedAPIResponse() throws {
        try hub.start(["--bad-json"])
        let output = try qwenkit(["pull", "Qwen/Tiny-ST"])
        XCTAssertNotEqual(output.status, 0)
        XCTAssertTrue(output.stderr.contains("malformed"), output.stderr)
        XCTAssertEqual(output.stderr.split(separator: "\n").count, 1, output.stderr)
    }

    func testHubUnreachable() throws {
        let output = try qwenkit(["pull", "Qwen/Tiny-ST"], ["HF_ENDPOINT": "http://127.0.0.1:1"])
        XCTAssertNotEqual(output.status, 0)
        XCTAssertTrue(output.stderr.contains("cannot reach the hub at http://127.0.0.1:1"), output.stderr)
        XCTAssertEqual(output.stderr.split(separator: "\n").count, 1, output.stderr)
    }

    /// The hub announces the file's real size and then streams without end: the pull stops there.
    func testDownloadStopsAtTheAnnouncedSize() throws {
        try hub.start(["--endless", "tiny-q8_0.gguf"])
        let output = try qwenkit(["pull", "Qwen/Tiny-GGUF:tiny-q8_0.gguf"])
        XCTAssertNotEqual(output.status, 0)
        let errors = output.stderr.split(separator: "\n").filter { $0.hasPrefix("qwenkit: error:") }
        XCTAssertEqual(errors.count, 1, output.stderr)
        XCTAssertTrue(output.stderr.contains("larger than the \(gguf.count) bytes the hub announced"), output.stderr)
        let blobs = cacheRoot.appendingPathComponent("models--Qwen--Tiny-GGUF/blobs")
        XCTAssertEqual((try? FileManager.default.contentsOfDirectory(atPath: blobs.path)) ?? [], [])
    }

    func testEndlessAPIReplyIsCut() throws {
        try hub.start(["--endless-api"])
        let output = try qwenkit(["pull", "Qwen/Tiny-ST"])
        XCTAssertNotEqual(output.status, 0)
        XCTAssertTrue(output.stderr.contains("larger than 16 MiB"), output.stderr)
    }

    /// A symlink planted at the partial download's path must not make the pull write through it.
    func testSymlinkedIncompleteFileIsNotFollowed() throws {
        try hub.start()
        let victim = hub.folder.appendingPathComponent("victim.txt")
        try Data("precious".utf8).write(to: victim)
        let blobs = cacheRoot.appendingPathComponent("models--Qwen--Tiny-GGUF/blobs")
        try FileManager.default.createDirectory(at: blobs, withIntermediateDirectories: true)
        try FileManager.default.createSymbolicLink(atPath: blobs.appendingPathComponent("\(sha256(gguf)).incomplete").path,
                                                   withDestinationPath: victim.path)
        let output = try qwenkit(["pull", "Qwen/Tiny-GGUF:tiny-q8_0.gguf"])
        XCTAssertEqual(output.status, 0, output.stderr)
        XCTAssertEqual(try Data(contentsOf: victim), Data("precious".utf8))
        XCTAssertEqual(try Data(contentsOf: URL(fileURLWithPath: output.stdout.trimmingCharacters(in: .whitespacesAndNewlines))), gguf)
    }

    func testReferenceParsing() {
        XCTAssertEqual(HubReference(parsing: "Qwen/Qwen3-0.6B"), HubReference(repo: "Qwen/Qwen3-0.6B"))
        XCTAssertEqual(HubReference(parsing: "Qwen/X-GGUF@v1:a/b.gguf"),
                       HubReference(repo: "Qwen/X-GGUF", file: "a/b.gguf", revision: "v1"))
        XCTAssertNil(HubReference(parsing: "qwen2.5-coder:0.5b"))
        XCTAssertNil(HubReference(parsing: "../x"))
        XCTAssertNil(HubReference(parsing: "a/b/c"))
        XCTAssertFalse(HubCache.isSafeRelativePath("/etc/passwd"))
        XCTAssertFalse(HubCache.isSafeRelativePath("a/../../b"))
        XCTAssertTrue(HubCache.isSafeRelativePath("a/b.json"))
    }
}
