import Foundation

/// A Hugging Face model reference typed by the user: `org/name`, optionally `@revision`, optionally `:file`.
///
/// Examples: `Qwen/Qwen3-0.6B`, `Qwen/Qwen2.5-0.5B-Instruct-GGUF:qwen2.5-0.5b-instruct-q4_k_m.gguf`,
/// `Qwen/Qwen3-0.6B@main`.
public struct HubReference: Sendable, Equatable, CustomStringConvertible {
    /// The repository id, `org/name`.
    public var repo: String
    /// One file of the repository, or nil for the whole repository.
    public var file: String?
    /// A branch, tag or commit hash (default `main`).
    public var revision: String

    /// A reference to `repo` (and `file` in it) at `revision`.
    public init(repo: String, file: String? = nil, revision: String = "main") {
        self.repo = repo
        self.file = file
        self.revision = revision
    }

    /// Parses `org/name[@revision][:file]`; nil when `text` does not have that shape (e.g. `qwen2.5-coder:0.5b`).
    public init?(parsing text: String) {
        var head = Substring(text)
        var file: String?
        if let colon = head.firstIndex(of: ":") {
            file = String(head[head.index(after: colon)...])
            head = head[..<colon]
        }
        var revision = "main"
        if let at = head.firstIndex(of: "@") {
            revision = String(head[head.index(after: at)...])
            head = head[..<at]
        }
        let repo = String(head)
        guard HubReference.isValidRepo(repo), HubCache.isSafeRelativePath(revision),
              file.map({ !$0.isEmpty }) ?? true else { return nil }
        self.init(repo: repo, file: file, revision: revision)
    }

    /// The reference as the user would type it.
    public var description: String {
        repo + (revision == "main" ? "" : "@" + revision) + (file.map { ":" + $0 } ?? "")
    }

    /// True for `org/name` made of letters, digits, `-`, `_`, `.`, with no `..` and no leading `.` or `-`.
    public static func isValidRepo(_ repo: String) -> Bool {
        let parts = repo.split(separator: "/", omittingEmptySubsequences: false)
        guard parts.count == 2 else { return false }
        return parts.allSatisfy { part in
            !part.isEmpty && part.count <= 96 && !part.contains("..") && part.first != "." && part.first != "-"
                && part.unicodeScalars.allSatisfy { CharacterSet.alphanumerics.contains($0) && $0.isASCII || "-_.".unicodeScalars.contains($0) }
        }
    }
}

/// The Hugging Face hub cache, laid out as `huggingface_hub` lays it out, so files downloaded by other
/// tools are reused and vice versa:
///
///     models--{org}--{name}/blobs/{etag}                 the file contents
///     models--{org}--{name}/snapshots/{commit}/{file}    relative symlinks to the blobs
///     models--{org}--{name}/refs/{revision}              the commit hash a branch or tag points at
///
/// The folder is `$HF_HUB_CACHE`, else `$HF_HOME/hub`, else `~/.cache/huggingface/hub`.
public struct HubCache: Sendable {
    /// The hub cache folder.
    public let root: URL

    /// The cache the environment names.
    public init(environment: [String: String] = ProcessInfo.processInfo.environment) {
        if let cache = environment["HF_HUB_CACHE"], !cache.isEmpty {
            root = URL(fileURLWithPath: cache)
        } else if let home = environment["HF_HOME"], !home.isEmpty {
            root = URL(fileURLWithPath: home).appendingPathComponent("hub")
        } else {
            root = FileManager.default.homeDirectoryForCurrentUser.appendingPathComponent(".cache/huggingface/hub")
        }
    }

    /// A cache at `root`.
    public init(root: URL) { self.root = root }

    /// `models--org--name` for `org/name`.
    public static func folderName(for repo: String) -> String {
        "models--" + repo.replacingOccurrences(of: "/", with: "--")
    }

    /// The folder of `repo`, whether or not it exists.
    public func repoFolder(_ repo: String) -> URL { root.appendingPathComponent(Self.folderName(for: repo)) }

    /// The blob file of `etag` in `repo`.
    public func blob(_ repo: String, etag: String) -> URL {
        repoFolder(repo).appendingPathComponent("blobs").appendingPathComponent(etag)
    }

    /// The snapshot folder of `commit` in `repo`.
    public func snapshot(_ repo: String, commit: String) -> URL {
        repoFolder(repo).appendingPathComponent("snapshots").appendingPathComponent(commit)
    }

    /// The commit `revision` points at in the cache: the contents of `refs/{revision}`, or `revision` itself
    /// when it names a snapshot folder (a commit hash). Nil when the cache knows neither.
    public func commit(_ repo: String, revision: String) -> String? {
        let ref = repoFolder(repo).appendingPathComponent("refs").appendingPathComponent(revision)
        if let data = try? Data(contentsOf: ref) {
            let commit = String(decoding: data, as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)
            if Self.isSafeComponent(commit) { return commit }
        }
        if Self.isSafeComponent(revision),
           FileManager.default.fileExists(atPath: snapshot(repo, commit: revision).path) { return revision }
        return nil
    }

    /// Records that `revision` points at `commit`.
    public func writeRef(_ repo: String, revision: String, commit: String) throws {
        guard revision != commit else { return }
        let ref = repoFolder(repo).appendingPathComponent("refs").appendingPathComponent(revision)
        try FileManager.default.createDirectory(at: ref.deletingLastPathComponent(), withIntermediateDirectories: true)
        try Data(commit.utf8).write(to: ref, options: .atomic)
    }

    /// Points `snapshots/{commit}/{file}` at `blobs/{etag}` with a relative symlink, replacing what was there.
    public func link(_ repo: String, commit: String, file: String, etag: String) throws {
        let fm = FileManager.default
        let destination = snapshot(repo, commit: commit).appendingPathComponent(file)
        try fm.createDirectory(at: destination.deletingLastPathComponent(), withIntermediateDirectories: true)
        let depth = file.split(separator: "/").count - 1 + 2
        let target = String(repeating: "../", count: depth) + "blobs/" + etag
        if (try? fm.destinationOfSymbolicLink(atPath: destination.path)) == target { return }
        if (try? fm.attributesOfItem(atPath: destination.path)) != nil { try fm.removeItem(at: destination) }
        try fm.createSymbolicLink(atPath: destination.path, withDestinationPath: target)
    }

    /// True when `name` can be a single path component: not empty, not `.`/`..`, no `/`, no NUL.
    static func isSafeComponent(_ name: String) -> Bool {
        !name.isEmpty && name != "." && name != ".." && !name.contains("/") && !name.contains("\0")
    }

    /// True when `file`, a path inside a repository, stays inside it: relative, no `..` or empty components,
    /// no backslashes or NULs.
    public static func isSafeRelativePath(_ file: String) -> Bool {
        guard !file.isEmpty, !file.hasPrefix("/"), !file.contains("\\"), !file.contains("\0") else { return false }
        return file.split(separator: "/", omittingEmptySubsequences: false).allSatisfy {
            !$0.isEmpty && $0 != "." && $0 != ".."
        }
    }

    /// The repositories in the cache, sorted by id.
    public func repositories() -> [CachedRepository] {
        let fm = FileManager.default
        guard let names = try? fm.contentsOfDirectory(atPath: root.path) else { return [] }
        return names.filter { $0.hasPrefix("models--") }.sorted().compactMap { name in
            let id = String(name.dropFirst("models--".count)).replacingOccurrences(of: "--", with: "/")
            return repository(id)
        }
    }

    /// What the cache holds of `repo`; nil when its folder does not exist.
    public func repository(_ repo: String) -> CachedRepository? {
        let fm = FileManager.default
        let folder = repoFolder(repo)
        var isDirectory: ObjCBool = false
        guard fm.fileExists(atPath: folder.path, isDirectory: &isDirectory), isDirectory.boolValue else { return nil }
        var refs: [String: String] = [:]
        let refsFolder = folder.appendingPathComponent("refs")
        if let enumerator = fm.enumerator(atPath: refsFolder.path) {
            while let name = enumerator.nextObject() as? String {
                let url = refsFolder.appendingPathComponent(name)
                var isDir: ObjCBool = false
                if fm.fileExists(atPath: url.path, isDirectory: &isDir), !isDir.boolValue,
                   let data = try? Data(contentsOf: url) {
                    refs[name] = String(decoding: data, as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)
                }
            }
        }
        var snapshots: [CachedSnapshot] = []
        let snapshotsFolder = folder.appendingPathComponent("snapshots")
        for commit in ((try? fm.contentsOfDirectory(atPath: snapshotsFolder.path)) ?? []).sorted() {
            let base = snapshotsFolder.appendingPathComponent(commit)
            var files: [String] = []
            if let enumerator = fm.enumerator(atPath: base.path) {
                while let name = enumerator.nextObject() as? String {
                    var isDir: ObjCBool = false
                    if fm.fileExists(atPath: base.appendingPathComponent(name).path, isDirectory: &isDir), !isDir.boolValue {
                        files.append(name)
                    }
                }
            }
            snapshots.append(CachedSnapshot(commit: commit, folder: base, files: files.sorted()))
        }
        var size: Int64 = 0
        let blobs = folder.appendingPathComponent("blobs")
        for name in (try? fm.contentsOfDirectory(atPath: blobs.path)) ?? [] where !name.hasSuffix(".incomplete") {
            let attributes = try? fm.attributesOfItem(atPath: blobs.appendingPathComponent(name).path)
            size += (attributes?[.size] as? NSNumber)?.int64Value ?? 0
        }
        return CachedRepository(repo: repo, folder: folder, refs: refs, snapshots: snapshots, sizeOnDisk: size)
    }

    /// Deletes the whole folder of `repo`. Throws `HubError.notCached` when it is absent.
    public func remove(_ repo: String) throws(HubError) {
        let folder = repoFolder(repo)
        guard (try? FileManager.default.attributesOfItem(atPath: folder.path)) != nil else { throw .notCached(repo, folder.path) }
        do {
            try FileManager.default.removeItem(at: folder)
        } catch {
            throw .fileSystem("cannot remove \(folder.path): \(error.localizedDescription)")
        }
    }

    /// Resolves a reference from the cache alone: the file's path when `reference.file` is set, else the
    /// snapshot folder. Nil when the cache does not have it.
    public func resolve(_ reference: HubReference) -> URL? {
        guard let commit = commit(reference.repo, revision: reference.revision) else { return nil }
        let folder = snapshot(reference.repo, commit: commit)
        if let file = reference.file {
            guard Self.isSafeRelativePath(file) else { return nil }
            let url = folder.appendingPathComponent(file)
            return FileManager.default.fileExists(atPath: url.path) ? url : nil
        }
        let contents = (try? FileManager.default.contentsOfDirectory(atPath: folder.path)) ?? []
        return contents.isEmpty ? nil : folder
    }
}

/// One repository in the hub cache.
public struct CachedRepository: Sendable {
    /// `org/name`.
    public var repo: String
    /// `models--org--name`.
    public var folder: URL
    /// Branch or tag → commit hash.
    public var refs: [String: String]
    /// The snapshots, one per commit.
    public var snapshots: [CachedSnapshot]
    /// Bytes of all complete blobs.
    public var sizeOnDisk: Int64
}

/// The files of one commit of a cached repository.
public struct CachedSnapshot: Sendable {
    /// The commit hash.
    public var commit: String
    /// `snapshots/{commit}`.
    public var folder: URL
    /// Paths relative to the snapshot folder.
    public var files: [String]
}
