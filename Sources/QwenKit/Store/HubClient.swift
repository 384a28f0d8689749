import Foundation
#if canImport(FoundationNetworking)
import FoundationNetworking
#endif
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// What a pull reports while it works. Delivered on a background thread.
public enum HubEvent: Sendable {
    /// The file is already in the cache; nothing is downloaded.
    case cached(file: String, bytes: Int64)
    /// A download starts (`resumingAt` > 0 when a partial download is continued).
    case started(file: String, resumingAt: Int64, total: Int64?)
    /// Bytes arrived: `completed` of `total` (when known), at `bytesPerSecond` since the transfer began.
    case progress(file: String, completed: Int64, total: Int64?, bytesPerSecond: Double)
    /// The connection failed midway; the download continues from where it stopped.
    case retrying(file: String, reason: String)
    /// The file is complete and in place; `verified` when its SHA-256 matched the hub's (LFS files).
    case finished(file: String, bytes: Int64, verified: Bool)
}

/// The outcome of a pull.
public struct HubPullResult: Sendable {
    /// The commit the files belong to.
    public var commit: String
    /// `snapshots/{commit}` in the cache.
    public var snapshot: URL
    /// The pulled files, inside the snapshot folder.
    public var files: [URL]
    /// The path a model loader wants: the file for `REPO:FILE`, else the snapshot folder.
    public var path: URL
    /// Bytes actually transferred (0 when everything came from the cache).
    public var downloadedBytes: Int64
}

/// Downloads models from the Hugging Face hub into the standard hub cache (see `HubCache`).
///
/// Honours `HF_ENDPOINT` (default `https://huggingface.co`), `HF_TOKEN` (sent as `Authorization: Bearer`,
/// never to another host after a redirect), `HF_HUB_OFFLINE` (no network: the cache or a clear error),
/// and `HF_HOME` / `HF_HUB_CACHE` for the cache folder. Downloads go to `blobs/{etag}.incomplete` and
/// resume with a `Range` request; LFS files are checked against the SHA-256 the hub publishes before
/// they are moved into place. Never prints: progress arrives through a callback.
///
/// The hub is not trusted to be honest: a download stops at the size the hub announced for the
/// file, an API reply at ``maximumReplyBytes``, and nothing in the cache is written through a
/// symbolic link (a link at `blobs/{etag}.incomplete` is removed, the file opened with `O_NOFOLLOW`).
public struct HubClient: Sendable {
    /// The most bytes an API reply (the file list of a repository) may have: 16 MiB.
    public static let maximumReplyBytes = 16 << 20

    /// The hub's base URL.
    public var endpoint: URL
    /// The access token, if any.
    public var token: String?
    /// When true, nothing goes over the network.
    public var offline: Bool
    /// Where files are kept.
    public var cache: HubCache
    /// How many times a transfer that breaks midway is resumed before giving up.
    public var retries: Int = 5

    /// A client configured from the environment.
    public init(environment: [String: String] = ProcessInfo.processInfo.environment) {
        var base = environment["HF_ENDPOINT"].flatMap { $0.isEmpty ? nil : $0 } ?? "https://huggingface.co"
        while base.hasSuffix("/") { base.removeLast() }
        endpoint = URL(string: base) ?? URL(fileURLWithPath: "/")
        token = environment["HF_TOKEN"].flatMap { $0.isEmpty ? nil : $0 }
            ?? environment["HUGGING_FACE_HUB_TOKEN"].flatMap { $0.isEmpty ? nil : $0 }
        let offlineValue = (environment["HF_HUB_OFFLINE"] ?? "").lowercased()
        offline = ["1", "true", "yes", "on"].contains(offlineValue)
        cache = HubCache(environment: environment)
    }

    /// Downloads `reference` (one file, or every file of the repository) unless the cache already has it.
    public func pull(_ reference: HubReference,
                     events: @escaping @Sendable (HubEvent) -> Void = { _ in }) throws(HubError) -> HubPullResult {
        if let file = reference.file, !HubCache.isSafeRelativePath(file) { throw .unsafePath(file) }
        if offline { return try resolveOffline(reference) }
        let before = downloaded.value

        let commit: String
        let files: [String]
        if let file = reference.file {
            let meta = try metadata(reference.repo, revision: reference.revision, file: file)
            commit = meta.commit
            try fetch(reference.repo, commit: commit, file: file, meta: meta, events: events)
            files = [file]
        } else {
            let info = try repositoryInfo(reference.repo, revision: reference.revision)
            commit = info.commit
            files = info.files
            for file in files {
                let meta = try metadata(reference.repo, revision: commit, file: file)
                try fetch(reference.repo, commit: commit, file: file, meta: meta, events: events)
            }
        }
        do {
            try cache.writeRef(reference.repo, revision: reference.revision, commit: commit)
        } catch {
            throw .fileSystem("cannot write the ref of \(reference.repo): \(error.localizedDescription)")
        }
        let snapshot = cache.snapshot(reference.repo, commit: commit)
        let urls = files.map { snapshot.appendingPathComponent($0) }
        return HubPullResult(commit: commit, snapshot: snapshot, files: urls,
                             path: reference.file != nil ? urls[0] : snapshot,
                             downloadedBytes: downloaded.value - before)
    }

    // MARK: - Offline

    private func resolveOffline(_ reference: HubReference) throws(HubError) -> HubPullResult {
        guard let commit = cache.commit(reference.repo, revision: reference.revision),
              let path = cache.resolve(reference) else {
            throw .offlineNotCached(reference: reference.description, cache: cache.root.path)
        }
        let snapshot = cache.snapshot(reference.repo, commit: commit)
        let files: [URL]
        if reference.file != nil {
            files = [path]
        } else {
            files = (cache.repository(reference.repo)?.snapshots.first { $0.commit == commit }?.files ?? [])
                .map { snapshot.appendingPathComponent($0) }
        }
        return HubPullResult(commit: commit, snapshot: snapshot, files: files, path: path, downloadedBytes: 0)
    }

    // MARK: - Hub API

    /// Counts transferred bytes across the files of one pull.
    private let downloaded = ByteCounter()

    private struct FileMetadata {
        var commit: String
        var etag: String
        var size: Int64?
        /// LFS files carry their SHA-256 as the etag.
        var sha256: String? { etag.count == 64 && etag.allSatisfy(\.isHexDigit) ? etag.lowercased() : nil }
    }

    private func url(_ path: String) -> URL? { URL(string: endpoint.absoluteString + path) }

    private static func encode(_ text: String, slashes: Bool) -> String {
        var allowed = CharacterSet.urlPathAllowed
        if !slashes { allowed.remove("/") }
        allowed.remove(charactersIn: "?#%;")
        return text.addingPercentEncoding(withAllowedCharacters: allowed) ?? text
    }

    private func resolveURL(_ repo: String, revision: String, file: String) throws(HubError) -> URL {
        guard let url = url("/\(repo)/resolve/\(Self.encode(revision, slashes: false))/\(Self.encode(file, slashes: true))") else {
            throw .malformedResponse("cannot form a URL for '\(file)'")
        }
        return url
    }

    /// Lists the files of `repo` at `revision` and the commit it points at.
    private func repositoryInfo(_ repo: String, revision: String) throws(HubError) -> (commit: String, files: [String]) {
        guard let url = url("/api/models/\(repo)/revision/\(Self.encode(revision, slashes: false))") else {
            throw .malformedResponse("cannot form the API URL for '\(repo)'")
        }
        let response = try send(request(url, method: "GET"), followRedirects: true)
        try check(response, repo: repo, revision: revision, file: nil)
        guard let object = try? JSONSerialization.jsonObject(with: response.body),
              let dictionary = object as? [String: Any] else {
            throw .malformedResponse("the file list of '\(repo)' is not a JSON object")
        }
        guard let commit = dictionary["sha"] as? String, HubCache.isSafeComponent(commit) else {
            throw .malformedResponse("the file list of '\(repo)' has no commit hash ('sha')")
        }
        guard let siblings = dictionary["siblings"] as? [Any] else {
            throw .malformedResponse("the file list of '\(repo)' has no 'siblings' array")
        }
        var files: [String] = []
        for sibling in siblings {
            guard let name = (sibling as? [String: Any])?["rfilename"] as? String else {
                throw .malformedResponse("an entry of 'siblings' of '\(repo)' has no 'rfilename'")
            }
            guard HubCache.isSafeRelativePath(name) else { throw .unsafePath(name) }
            files.append(name)
        }
        return (commit, files)
    }

    /// Asks the hub for a file's commit, etag and size with a HEAD request that does not follow redirects.
    private func metadata(_ repo: String, revision: String, file: String) throws(HubError) -> FileMetadata {
        let url = try resolveURL(repo, revision: revision, file: file)
        let response = try send(request(url, method: "HEAD"), followRedirects: false)
        try check(response, repo: repo, revision: revision, file: file)
        guard let commit = response.header("X-Repo-Commit"), HubCache.isSafeComponent(commit) else {
            throw .malformedResponse("no X-Repo-Commit header for '\(file)'")
        }
        guard let rawTag = response.header("X-Linked-Etag") ?? response.header("ETag") else {
            throw .malformedResponse("no ETag header for '\(file)'")
        }
        var etag = rawTag.trimmingCharacters(in: .whitespaces)
        if etag.hasPrefix("W/") { etag.removeFirst(2) }
        etag = etag.trimmingCharacters(in: CharacterSet(charactersIn: "\""))
        guard HubCache.isSafeComponent(etag), !etag.hasSuffix(".incomplete") else {
            throw .malformedResponse("the ETag of '\(file)' is not usable as a file name")
        }
        let size = (response.header("X-Linked-Size") ?? response.header("Content-Length")).flatMap { Int64($0) }
        return FileMetadata(commit: commit, etag: etag, size: size)
    }

    /// Turns an error status into the matching `HubError`.
    private func check(_ response: HTTPResponse, repo: String, revision: String, file: String?) throws(HubError) {
        let status = response.status
        if (200..<400).contains(status) { return }
        let code = response.header("X-Error-Code") ?? ""
        switch status {
        case 401 where code == "RepoNotFound" || file == nil && code.isEmpty:
            throw .repoNotFoundOrPrivate(repo: repo, tokenSet: token != nil)
        case 401, 403:
            throw .unauthorized(repo: repo, status: status, tokenSet: token != nil)
        case 404:
            if code == "RevisionNotFound" { throw .revisionNotFound(repo: repo, revision: revision) }
            if code == "EntryNotFound", let file { throw .fileNotFound(repo: repo, file: file) }
            if code == "RepoNotFound" || file == nil { throw .repoNotFound(repo) }
            throw .fileNotFound(repo: repo, file: file ?? "")
        default:
            throw .http(status: status, url: response.url)
        }
    }

    // MARK: - Downloading one file

    private func fetch(_ repo: String, commit: String, file: String, meta: FileMetadata,
                       events: @escaping @Sendable (HubEvent) -> Void) throws(HubError) {
        let fm = FileManager.default
        let blob = cache.blob(repo, etag: meta.etag)
        if let attributes = try? fm.attributesOfItem(atPath: blob.path) {
            let size = (attributes[.size] as? NSNumber)?.int64Value ?? 0
            if meta.size == nil || meta.size == size {
                try link(repo, commit: commit, file: file, etag: meta.etag)
                events(.cached(file: file, bytes: size))
                return
            }
        }
        let partial = blob.deletingLastPathComponent().appendingPathComponent(meta.etag + ".incomplete")
        do {
            try fm.createDirectory(at: blob.deletingLastPathComponent(), withIntermediateDirectories: true)
        } catch {
            throw .fileSystem("cannot create \(blob.deletingLastPathComponent().path): \(error.localizedDescription)")
        }
        let url = try resolveURL(repo, revision: commit, file: file)
        try download(url, to: partial, expectedSize: meta.size, repo: repo, file: file, events: events)

        let actualSize = ((try? fm.attributesOfItem(atPath: partial.path))?[.size] as? NSNumber)?.int64Value ?? 0
        if let expected = meta.size, expected != actualSize {
            try? fm.removeItem(at: partial)
            throw .sizeMismatch(file: file, expected: expected, actual: actualSize)
        }
        if let expected = meta.sha256 {
            let actual: String
            do {
                actual = try SHA256Hasher.hexDigest(ofFileAt: partial)
            } catch {
                throw .fileSystem("cannot read \(partial.path): \(error.localizedDescription)")
            }
            guard actual == expected else {
                try? fm.removeItem(at: partial)
                throw .hashMismatch(file: file, expected: expected, actual: actual)
            }
        }
        do {
            if (try? fm.attributesOfItem(atPath: blob.path)) != nil { try fm.removeItem(at: blob) }
            try fm.moveItem(at: partial, to: blob)
        } catch {
            throw .fileSystem("cannot move \(partial.path) into place: \(error.localizedDescription)")
        }
        try link(repo, commit: commit, file: file, etag: meta.etag)
        events(.finished(file: file, bytes: actualSize, verified: meta.sha256 != nil))
    }

    private func link(_ repo: String, commit: String, file: String, etag: String) throws(HubError) {
        do {
            try cache.link(repo, commit: commit, file: file, etag: etag)
        } catch {
            throw .fileSystem("cannot link \(file) into the snapshot \(commit): \(error.localizedDescription)")
        }
    }

    /// Downloads `url` into `partial`, continuing from its current size with `Range` requests.
    private func download(_ url: URL, to partial: URL, expectedSize: Int64?, repo: String, file: String,
                          events: @escaping @Sendable (HubEvent) -> Void) throws(HubError) {
        let fm = FileManager.default
        var attempt = 0
        while true {
            // Anything but a plain file here (a symlink planted to make the download overwrite a
            // file outside the cache) is removed, not followed.
            var info = stat()
            if lstat(partial.path, &info) == 0, (info.st_mode & S_IFMT) != S_IFREG {
                guard unlink(partial.path) == 0 else {
                    throw .fileSystem("cannot remove \(partial.path), which is not a regular file")
                }
            }
            var offset = lstat(partial.path, &info) == 0 ? Int64(info.st_size) : 0
            if let expectedSize, offset > expectedSize {
                try? fm.removeItem(at: partial)
                offset = 0
            }
            if let expectedSize, offset == expectedSize, offset > 0 { return }
            let handle = try Self.openPartial(partial)
            var request = request(url, method: "GET")
            if offset > 0 { request.setValue("bytes=\(offset)-", forHTTPHeaderField: "Range") }
            events(.started(file: file, resumingAt: offset, total: expectedSize))
            let sink = FileSink(handle: handle, offset: offset, total: expectedSize, file: file,
                                counter: downloaded, events: events)
            let outcome = perform(request, followRedirects: true, sink: sink)
            try? handle.close()
            if let writeError = sink.writeError {
                throw .fileSystem("cannot write \(partial.path): \(writeError)")
            }
            if sink.exceededTotal, let expectedSize {
                try? fm.removeItem(at: partial)
                throw .tooLarge(file: file, announced: expectedSize)
            }
            switch outcome {
            case let .success(response):
                if response.status == 416 {
                    // The partial file is not a prefix the server recognises: start over.
                    try? fm.removeItem(at: partial)
                    attempt += 1
                    if attempt > retries { throw .http(status: 416, url: url.absoluteString) }
                    continue
                }
                try check(response, repo: repo, revision: "", file: file)
                return
            case let .failure(error):
                attempt += 1
                guard attempt <= retries, sink.receivedAny || attempt <= 1 else { throw error }
                if case let .network(_, reason) = error {
                    events(.retrying(file: file, reason: reason))
                } else {
                    events(.retrying(file: file, reason: error.description))
                }
                Thread.sleep(forTimeInterval: min(0.2 * Double(attempt), 2))
            }
        }
    }

    /// Opens the partial download for writing, creating it; never through a symbolic link.
    private static func openPartial(_ partial: URL) throws(HubError) -> FileHandle {
        let fd = open(partial.path, O_WRONLY | O_CREAT | O_NOFOLLOW | O_CLOEXEC, 0o644)
        guard fd >= 0 else {
            throw .fileSystem("cannot open \(partial.path): \(String(cString: strerror(errno)))")
        }
        var info = stat()
        guard fstat(fd, &info) == 0, (info.st_mode & S_IFMT) == S_IFREG else {
            close(fd)
            throw .fileSystem("cannot write \(partial.path): not a regular file")
        }
        return FileHandle(fileDescriptor: fd, closeOnDealloc: true)
    }

    // MARK: - HTTP

    private func request(_ url: URL, method: String) -> URLRequest {
        var request = URLRequest(url: url, cachePolicy: .reloadIgnoringLocalCacheData, timeoutInterval: 60)
        request.httpMethod = method
        request.setValue("identity", forHTTPHeaderField: "Accept-Encoding")
        request.setValue("qwenkit", forHTTPHeaderField: "User-Agent")
        if let token { request.setValue("Bearer \(token)", forHTTPHeaderField: "Authorization") }
        return request
    }

    /// Sends a request whose body is small and kept in memory.
    private func send(_ request: URLRequest, followRedirects: Bool) throws(HubError) -> HTTPResponse {
        let sink = MemorySink(limit: Self.maximumReplyBytes)
        let outcome = perform(request, followRedirects: followRedirects, sink: sink)
        if sink.exceededLimit {
            throw .malformedResponse("the reply to \(request.url?.absoluteString ?? "?") is larger than \(Self.maximumReplyBytes >> 20) MiB")
        }
        switch outcome {
        case let .success(response):
            var response = response
            response.body = sink.data
            return response
        case let .failure(error):
            throw error
        }
    }

    /// Runs one request to completion on a private session, feeding the body to `sink`.
    private func perform(_ request: URLRequest, followRedirects: Bool, sink: BodySink) -> Result<HTTPResponse, HubError> {
        let configuration = URLSessionConfiguration.ephemeral
        configuration.urlCache = nil
        configuration.requestCachePolicy = .reloadIgnoringLocalCacheData
        configuration.timeoutIntervalForRequest = 60
        let delegate = TaskDelegate(followRedirects: followRedirects, host: request.url?.host, port: request.url?.port,
                                    sink: sink)
        let queue = OperationQueue()
        queue.maxConcurrentOperationCount = 1
        let session = URLSession(configuration: configuration, delegate: delegate, delegateQueue: queue)
        defer { session.finishTasksAndInvalidate() }
        session.dataTask(with: request).resume()
        delegate.finished.wait()
        let (response, error) = delegate.outcome
        if let error {
            return .failure(.network(endpoint: endpoint.absoluteString, reason: Self.describe(error)))
        }
        guard let response else {
            return .failure(.malformedResponse("no HTTP response for \(request.url?.absoluteString ?? "?")"))
        }
        var headers: [String: String] = [:]
        for (key, value) in response.allHeaderFields {
            if let key = key as? String, let value = value as? String { headers[key.lowercased()] = value }
        }
        return .success(HTTPResponse(status: response.statusCode, headers: headers,
                                     url: response.url?.absoluteString ?? request.url?.absoluteString ?? ""))
    }

    private static func describe(_ error: Error) -> String {
        guard let error = error as? URLError else { return error.localizedDescription }
        switch error.code {
        case .cannotConnectToHost: return "connection refused"
        case .cannotFindHost, .dnsLookupFailed: return "unknown host"
        case .notConnectedToInternet: return "not connected to the internet"
        case .timedOut: return "timed out"
        case .networkConnectionLost: return "the connection was lost"
        case .secureConnectionFailed, .serverCertificateUntrusted, .serverCertificateHasBadDate:
            return "TLS failure"
        default: return "\(error.localizedDescription) [\(error.code.rawValue)]"
        }
    }
}

/// Status, lowercased headers and (for small requests) body of an HTTP response.
struct HTTPResponse {
    var status: Int
    var headers: [String: String]
    var url: String
    var body = Data()

    func header(_ name: String) -> String? { headers[name.lowercased()] }
}

final class ByteCounter: @unchecked Sendable {
    private let lock = NSLock()
    private var total: Int64 = 0
    func add(_ n: Int64) { lock.lock(); total += n; lock.unlock() }
    var value: Int64 { lock.lock(); defer { lock.unlock() }; return total }
}

/// Receives a response body. Called on the session's serial delegate queue.
protocol BodySink: AnyObject, Sendable {
    func begin(_ response: HTTPURLResponse)
    /// Takes the next bytes; false when no more are wanted (the transfer is then cancelled).
    func receive(_ data: Data) -> Bool
}

/// Keeps a small body in memory, refusing more than `limit` bytes.
final class MemorySink: BodySink, @unchecked Sendable {
    private let lock = NSLock()
    private var buffer = Data()
    private let limit: Int
    private var exceeded = false

    init(limit: Int) { self.limit = limit }

    func begin(_ response: HTTPURLResponse) {}

    func receive(_ data: Data) -> Bool {
        lock.lock(); defer { lock.unlock() }
        guard !exceeded, buffer.count + data.count <= limit else {
            exceeded = true
            return false
        }
        buffer.append(data)
        return true
    }

    var data: Data { lock.lock(); defer { lock.unlock() }; return buffer }
    var exceededLimit: Bool { lock.lock(); defer { lock.unlock() }; return exceeded }
}

/// Writes a download to a file: appended after `offset` for a 206 answer, from the start for a 200,
/// not at all for an error status. Never writes past `total`, the announced size: a server that
/// sends more is cut off. Reports progress at most every 100 ms.
final class FileSink: BodySink, @unchecked Sendable {
    private let lock = NSLock()
    private let handle: FileHandle
    private var offset: Int64
    private var total: Int64?
    private let file: String
    private let counter: ByteCounter
    private let events: @Sendable (HubEvent) -> Void
    private var writing = false
    private var received: Int64 = 0
    private let start = Date()
    private var lastReport = Date.distantPast
    private var error: String?
    private var exceeded = false

    init(handle: FileHandle, offset: Int64, total: Int64?, file: String, counter: ByteCounter,
         events: @escaping @Sendable (HubEvent) -> Void) {
        self.handle = handle
        self.offset = offset
        self.total = total
        self.file = file
        self.counter = counter
        self.events = events
    }

    var receivedAny: Bool { lock.lock(); defer { lock.unlock() }; return received > 0 }
    var writeError: String? { lock.lock(); defer { lock.unlock() }; return error }
    /// The server sent more than the announced size.
    var exceededTotal: Bool { lock.lock(); defer { lock.unlock() }; return exceeded }

    func begin(_ response: HTTPURLResponse) {
        lock.lock(); defer { lock.unlock() }
        do {
            switch response.statusCode {
            case 206:
                writing = true
                try handle.seek(toOffset: UInt64(offset))
                try handle.truncate(atOffset: UInt64(offset))
            case 200:
                // The server ignored the range: start over.
                writing = true
                offset = 0
                try handle.truncate(atOffset: 0)
                try handle.seek(toOffset: 0)
            default:
                writing = false
            }
        } catch {
            self.error = error.localizedDescription
            writing = false
        }
    }

    func receive(_ data: Data) -> Bool {
        lock.lock()
        guard writing, error == nil else { lock.unlock(); return true }
        if let total, offset + received + Int64(data.count) > total {
            exceeded = true
            writing = false
            lock.unlock()
            return false
        }
        do {
            try handle.write(contentsOf: data)
        } catch {
            self.error = error.localizedDescription
            writing = false
            lock.unlock()
            return false
        }
        received += Int64(data.count)
        counter.add(Int64(data.count))
        let now = Date()
        let completed = offset + received
        let report = now.timeIntervalSince(lastReport) >= 0.1 || completed == total
        if report { lastReport = now }
        let speed = Double(received) / max(now.timeIntervalSince(start), 1e-3)
        let total = self.total
        lock.unlock()
        if report { events(.progress(file: file, completed: completed, total: total, bytesPerSecond: speed)) }
        return true
    }
}

/// Collects one task's response and completion, and applies the redirect policy: follow (or not), and
/// never carry `Authorization` to another host.
final class TaskDelegate: NSObject, URLSessionDataDelegate, @unchecked Sendable {
    let finished = DispatchSemaphore(value: 0)
    private let lock = NSLock()
    private let followRedirects: Bool
    private let host: String?
    private let port: Int?
    private let sink: BodySink
    private var response: HTTPURLResponse?
    private var error: Error?
    /// The sink refused more bytes and `finished` was signalled early.
    private var gaveUp = false

    init(followRedirects: Bool, host: String?, port: Int?, sink: BodySink) {
        self.followRedirects = followRedirects
        self.host = host
        self.port = port
        self.sink = sink
    }

    var outcome: (HTTPURLResponse?, Error?) { lock.lock(); defer { lock.unlock() }; return (response, error) }

    func urlSession(_ session: URLSession, task: URLSessionTask, willPerformHTTPRedirection response: HTTPURLResponse,
                    newRequest request: URLRequest, completionHandler: @Sendable @escaping (URLRequest?) -> Void) {
        guard followRedirects else {
            completionHandler(nil)
            return
        }
        var request = request
        if request.url?.host != host || request.url?.port != port {
            request.setValue(nil, forHTTPHeaderField: "Authorization")
        }
        completionHandler(request)
    }

    func urlSession(_ session: URLSession, dataTask: URLSessionDataTask, didReceive response: URLResponse,
                    completionHandler: @Sendable @escaping (URLSession.ResponseDisposition) -> Void) {
        if let http = response as? HTTPURLResponse {
            lock.lock(); self.response = http; lock.unlock()
            sink.begin(http)
        }
        completionHandler(.allow)
    }

    func urlSession(_ session: URLSession, dataTask: URLSessionDataTask, didReceive data: Data) {
        guard !sink.receive(data) else { return }
        // The sink wants no more (over the announced size): answer now. Linux's URLSession may
        // keep receiving after cancel() and never complete; the sink drops those bytes.
        lock.lock()
        let first = !gaveUp
        gaveUp = true
        lock.unlock()
        if first {
            finished.signal()
            DispatchQueue.global().async { dataTask.cancel() }
        }
    }

    func urlSession(_ session: URLSession, task: URLSessionTask, didCompleteWithError error: Error?) {
        lock.lock()
        guard !gaveUp else { lock.unlock(); return }
        if let http = task.response as? HTTPURLResponse { response = http }
        self.error = error
        lock.unlock()
        finished.signal()
    }
}
