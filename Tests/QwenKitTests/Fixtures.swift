import Foundation

/// Locates the shared reference fixtures.
enum Fixtures {
    /// `$QWENKIT_FIXTURES` when set, else `<repository root>/../shared/fixtures`, where the
    /// repository root is two levels above this file's folder (Tests/QwenKitTests).
    static var root: URL {
        if let path = ProcessInfo.processInfo.environment["QWENKIT_FIXTURES"], !path.isEmpty {
            return URL(fileURLWithPath: path, isDirectory: true)
        }
        let repositoryRoot = URL(fileURLWithPath: #filePath)
            .deletingLastPathComponent()  // QwenKitTests
            .deletingLastPathComponent()  // Tests
            .deletingLastPathComponent()  // repository root
        return repositoryRoot.appendingPathComponent("../shared/fixtures", isDirectory: true).standardized
    }

    /// The URL of `relativePath` inside the fixtures folder.
    static func url(_ relativePath: String) -> URL {
        root.appendingPathComponent(relativePath)
    }

    /// The bytes of a fixture file; throws with the path it tried when the file is missing.
    static func data(_ relativePath: String) throws -> Data {
        let url = url(relativePath)
        do {
            return try Data(contentsOf: url)
        } catch {
            throw FixtureError(message: "cannot read fixture \(url.path) (set QWENKIT_FIXTURES?): \(error)")
        }
    }

    struct FixtureError: Error, CustomStringConvertible {
        var message: String
        var description: String { message }
    }
}
