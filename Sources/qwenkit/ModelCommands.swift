import ArgumentParser
import Foundation
import QwenKit

struct Pull: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Download a model: a known name, or a Hugging Face repository (ORG/NAME[@REVISION][:FILE]).",
        discussion: """
            Known names (\(KnownModel.all.map(\.name).joined(separator: ", "))) go to $QWENKIT_HOME. Hugging Face \
            repositories go to the Hugging Face cache ($HF_HUB_CACHE, else $HF_HOME/hub, else \
            ~/.cache/huggingface/hub), shared with other tools. HF_TOKEN, HF_ENDPOINT and HF_HUB_OFFLINE are honoured. \
            Prints the path of the file (REPO:FILE) or of the snapshot folder (REPO).
            """)

    @Argument(help: "A model name (e.g. \(KnownModel.default.name)) or ORG/NAME[:FILE].") var name: String

    func run() throws {
        if let known = KnownModel.named(name) {
            let store = ModelStore()
            let path = store.file(for: known).path
            if FileManager.default.fileExists(atPath: path) {
                write(path + "\n")
                return
            }
            write(try ModelFetcher(store: store).fetch(known) { log($0) } + "\n")
            return
        }
        guard let reference = HubReference(parsing: name) else {
            throw CLIError("'\(name)' is neither a known model (\(KnownModel.all.map(\.name).joined(separator: ", "))) "
                           + "nor a Hugging Face repository ORG/NAME[:FILE]")
        }
        let reporter = ProgressReporter(terminal: isatty(2) != 0)
        let result = try HubClient().pull(reference) { reporter.handle($0) }
        if result.downloadedBytes == 0 { log("\(reference) is up to date in the cache") }
        write(result.path.path + "\n")
    }
}

struct List: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "List the cached models: known models in $QWENKIT_HOME and Hugging Face repositories in the hub cache.")

    func run() throws {
        var rows: [[String]] = [["NAME", "REVISION", "FILES", "SIZE", "SOURCE"]]
        let store = ModelStore()
        for known in KnownModel.all {
            let url = store.file(for: known)
            guard let attributes = try? FileManager.default.attributesOfItem(atPath: url.path) else { continue }
            let size = (attributes[.size] as? NSNumber)?.int64Value ?? 0
            rows.append([known.name, "-", "1", formatBytes(size), "qwenkit"])
        }
        let cache = HubCache()
        for repo in cache.repositories() {
            var revisions: [String] = []
            var files = Set<String>()
            for snapshot in repo.snapshots {
                files.formUnion(snapshot.files)
                let names = repo.refs.filter { $0.value == snapshot.commit }.keys.sorted()
                let short = String(snapshot.commit.prefix(7))
                revisions.append(names.isEmpty ? short : "\(names.joined(separator: ",")) (\(short))")
            }
            rows.append([repo.repo, revisions.isEmpty ? "-" : revisions.joined(separator: " "),
                         String(files.count), formatBytes(repo.sizeOnDisk), "hugging face"])
        }
        if rows.count == 1 {
            log("no models in the cache yet (\(store.modelsFolder.path), \(cache.root.path)); try 'qwenkit pull'")
            return
        }
        let widths = (0..<rows[0].count).map { column in rows.map { $0[column].count }.max() ?? 0 }
        for row in rows {
            let cells = row.enumerated().map { index, cell in
                index == row.count - 1 ? cell : cell.padding(toLength: widths[index], withPad: " ", startingAt: 0)
            }
            write(cells.joined(separator: "  ") + "\n")
        }
    }
}

struct Rm: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Delete a cached model: a known model's file, or a whole Hugging Face repository (ORG/NAME).")

    @Argument(help: "A known model name, ORG/NAME, or models--ORG--NAME.") var name: String

    func run() throws {
        if let known = KnownModel.named(name) {
            let url = ModelStore().file(for: known)
            guard FileManager.default.fileExists(atPath: url.path) else {
                throw CLIError("'\(name)' is not in the cache (no \(url.path))")
            }
            do {
                try FileManager.default.removeItem(at: url)
            } catch {
                throw CLIError("cannot remove \(url.path): \(error.localizedDescription)")
            }
            log("removed \(url.path)")
            return
        }
        var text = name
        if text.hasPrefix("models--") {
            text = String(text.dropFirst("models--".count)).replacingOccurrences(of: "--", with: "/")
        }
        guard let reference = HubReference(parsing: text) else {
            throw CLIError("'\(name)' is neither a known model (\(KnownModel.all.map(\.name).joined(separator: ", "))) "
                           + "nor a Hugging Face repository ORG/NAME")
        }
        guard reference.file == nil, reference.revision == "main" else {
            throw CLIError("rm removes whole repositories: use 'qwenkit rm \(reference.repo)'")
        }
        let cache = HubCache()
        try cache.remove(reference.repo)
        log("removed \(cache.repoFolder(reference.repo).path)")
    }
}

/// `1.5 GB`, `491.4 MB`, `12 B`.
func formatBytes(_ bytes: Int64) -> String {
    let units = ["B", "kB", "MB", "GB", "TB"]
    var value = Double(bytes)
    var unit = 0
    while value >= 1000, unit < units.count - 1 {
        value /= 1000
        unit += 1
    }
    return unit == 0 ? "\(bytes) B" : String(format: "%.1f %@", value, units[unit])
}

/// Renders download events on stderr: a redrawn bar on a terminal, otherwise a line every few seconds.
final class ProgressReporter: @unchecked Sendable {
    private let lock = NSLock()
    private let terminal: Bool
    private var lastLine = Date.distantPast
    private var barShown = false

    init(terminal: Bool) { self.terminal = terminal }

    func handle(_ event: HubEvent) {
        lock.lock(); defer { lock.unlock() }
        switch event {
        case let .cached(file, bytes):
            endBar()
            log("\(file): in the cache (\(formatBytes(bytes)))")
        case let .started(file, resumingAt, total):
            endBar()
            let size = total.map { " (\(formatBytes($0)))" } ?? ""
            log(resumingAt > 0 ? "\(file): resuming at \(formatBytes(resumingAt))\(size)" : "\(file): downloading\(size)")
            lastLine = Date()
        case let .progress(file, completed, total, speed):
            let percent = total.flatMap { $0 > 0 ? Double(completed) / Double($0) * 100 : nil }
            let amount = formatBytes(completed) + (total.map { " / " + formatBytes($0) } ?? "")
            let rate = formatBytes(Int64(speed)) + "/s"
            if terminal {
                let width = 30
                let filled = Int((percent ?? 0) / 100 * Double(width))
                let bar = String(repeating: "█", count: max(0, min(width, filled)))
                    + String(repeating: "░", count: max(0, width - filled))
                let pct = percent.map { String(format: "%5.1f%%", $0) } ?? "     "
                FileHandle.standardError.write(Data("\r\u{1B}[K\(file) \(bar) \(pct) \(amount) \(rate)".utf8))
                barShown = true
            } else if Date().timeIntervalSince(lastLine) >= 2 {
                lastLine = Date()
                log("\(file): \(percent.map { String(format: "%.0f%% ", $0) } ?? "")\(amount) at \(rate)")
            }
        case let .retrying(file, reason):
            endBar()
            log("\(file): \(reason); resuming")
        case let .finished(file, bytes, verified):
            endBar()
            log("\(file): done (\(formatBytes(bytes))\(verified ? ", SHA-256 verified" : ""))")
        }
    }

    private func endBar() {
        if barShown {
            FileHandle.standardError.write(Data("\n".utf8))
            barShown = false
        }
    }
}
