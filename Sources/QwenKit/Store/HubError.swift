import Foundation

/// Why a Hugging Face hub operation failed; each case reads as one line for the user.
public enum HubError: Error, CustomStringConvertible, Equatable {
    /// The hub has no such repository (404).
    case repoNotFound(String)
    /// The hub answered 401: the repository does not exist, or it is private or gated.
    case repoNotFoundOrPrivate(repo: String, tokenSet: Bool)
    /// The repository exists but has no such revision.
    case revisionNotFound(repo: String, revision: String)
    /// The repository exists but has no such file.
    case fileNotFound(repo: String, file: String)
    /// 401 or 403 for a repository that exists.
    case unauthorized(repo: String, status: Int, tokenSet: Bool)
    /// The hub could not be reached.
    case network(endpoint: String, reason: String)
    /// The hub answered something that is not what its API documents.
    case malformedResponse(String)
    /// The hub answered an unexpected HTTP status.
    case http(status: Int, url: String)
    /// A file name from the hub (or the user) would leave the repository folder.
    case unsafePath(String)
    /// The downloaded bytes do not have the SHA-256 the hub publishes.
    case hashMismatch(file: String, expected: String, actual: String)
    /// The downloaded file has a different size from the one the hub announced.
    case sizeMismatch(file: String, expected: Int64, actual: Int64)
    /// The hub sent more bytes than it announced for the file; the download was stopped.
    case tooLarge(file: String, announced: Int64)
    /// `HF_HUB_OFFLINE` is set and the cache lacks what was asked for.
    case offlineNotCached(reference: String, cache: String)
    /// `rm` of something the cache does not have.
    case notCached(String, String)
    /// Reading or writing the cache failed.
    case fileSystem(String)

    public var description: String {
        switch self {
        case let .repoNotFound(repo):
            "repository '\(repo)' not found on the hub"
        case let .repoNotFoundOrPrivate(repo, tokenSet):
            tokenSet
                ? "repository '\(repo)' not found on the hub, or HF_TOKEN has no access to it (private or gated)"
                : "repository '\(repo)' not found on the hub, or it is private or gated: set HF_TOKEN to a token with access"
        case let .revisionNotFound(repo, revision):
            "revision '\(revision)' not found in repository '\(repo)'"
        case let .fileNotFound(repo, file):
            "file '\(file)' not found in repository '\(repo)'"
        case let .unauthorized(repo, status, tokenSet):
            tokenSet
                ? "the hub refused access to '\(repo)' (HTTP \(status)): HF_TOKEN is not valid for it (is the repository gated? accept its terms on the hub)"
                : "the hub refused access to '\(repo)' (HTTP \(status)): it needs a token; set HF_TOKEN"
        case let .network(endpoint, reason):
            "cannot reach the hub at \(endpoint) (\(reason)); check the network, or set HF_HUB_OFFLINE=1 to use only the cache"
        case let .malformedResponse(what):
            "the hub sent a malformed response: \(what)"
        case let .http(status, url):
            "the hub answered HTTP \(status) for \(url)"
        case let .unsafePath(name):
            "refusing file name '\(name)': it would leave the repository folder (path traversal)"
        case let .hashMismatch(file, expected, actual):
            "'\(file)' is corrupt: its SHA-256 is \(actual) but the hub publishes \(expected); the download was deleted, try again"
        case let .sizeMismatch(file, expected, actual):
            "'\(file)' has \(actual) bytes but the hub announced \(expected); the download was deleted, try again"
        case let .tooLarge(file, announced):
            "'\(file)' is larger than the \(announced) bytes the hub announced; the download was stopped and deleted"
        case let .offlineNotCached(reference, cache):
            "HF_HUB_OFFLINE is set and '\(reference)' is not in the cache \(cache); unset HF_HUB_OFFLINE to download it"
        case let .notCached(name, path):
            "'\(name)' is not in the cache (no \(path))"
        case let .fileSystem(reason):
            reason
        }
    }
}
