#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#elseif canImport(Musl)
import Musl
#endif

/// A read-only memory map of a whole file. Weights stay in the page cache and are
/// paged in on first touch, so loading a model copies nothing.
public final class MappedFile: @unchecked Sendable {
    /// The mapped bytes; valid for the lifetime of this object. Never written.
    public let bytes: UnsafeRawBufferPointer
    public let path: String

    public init(path: String) throws(ModelFileError) {
        self.path = path
        let fd = try openRegularFile(path)
        defer { close(fd) }
        let size = try regularFileSize(fd, path: path)
        guard size > 0 else {
            bytes = UnsafeRawBufferPointer(start: nil, count: 0)
            return
        }
        let address = mmap(nil, size, PROT_READ, MAP_PRIVATE, fd, 0)
        guard let address, address != MAP_FAILED else {
            throw .cannotOpen(path: path, reason: "mmap failed: \(String(cString: strerror(errno)))")
        }
        bytes = UnsafeRawBufferPointer(start: address, count: size)
    }

    /// Drops this process's copy of the whole pages inside `range` (which must lie in ``bytes``):
    /// they leave the resident set and are read again from the file if touched later. For bytes
    /// that were copied elsewhere (repacked weights) and are not needed any more.
    public func release(_ range: Range<Int>) {
        guard let base = bytes.baseAddress, range.lowerBound >= 0, range.upperBound <= bytes.count else { return }
        let page = Int(sysconf(Int32(_SC_PAGESIZE)))
        let start = (Int(bitPattern: base) + range.lowerBound + page - 1) / page * page
        let end = (Int(bitPattern: base) + range.upperBound) / page * page
        guard end > start, let address = UnsafeMutableRawPointer(bitPattern: start) else { return }
        _ = madvise(address, end - start, Int32(MADV_DONTNEED))
    }

    deinit {
        if let base = bytes.baseAddress {
            munmap(UnsafeMutableRawPointer(mutating: base), bytes.count)
        }
    }
}

/// Opens `path` for reading without blocking: a FIFO or device named as a model file would
/// otherwise hang the open (a FIFO until a writer comes) or the first read. Throws unless the
/// opened file is a regular file; the caller closes the descriptor.
func openRegularFile(_ path: String) throws(ModelFileError) -> Int32 {
    let fd = open(path, O_RDONLY | O_NONBLOCK | O_CLOEXEC)
    guard fd >= 0 else { throw .cannotOpen(path: path, reason: String(cString: strerror(errno))) }
    do {
        _ = try regularFileSize(fd, path: path)
    } catch {
        close(fd)
        throw error
    }
    return fd
}

/// The size of the open file `fd`; throws unless it is a regular file.
private func regularFileSize(_ fd: Int32, path: String) throws(ModelFileError) -> Int {
    var info = stat()
    guard fstat(fd, &info) == 0 else { throw .cannotOpen(path: path, reason: String(cString: strerror(errno))) }
    guard (info.st_mode & S_IFMT) == S_IFREG else { throw .cannotOpen(path: path, reason: "not a regular file") }
    return Int(info.st_size)
}

/// The whole contents of a small file of a model directory (`config.json`, `tokenizer.json`, a
/// chat template), read without blocking on a FIFO and refused when over `limit` bytes.
public func readModelFile(_ path: String, limit: Int = 256 << 20) throws(ModelFileError) -> [UInt8] {
    let fd = try openRegularFile(path)
    defer { close(fd) }
    let size = try regularFileSize(fd, path: path)
    guard size <= limit else {
        throw .cannotOpen(path: path, reason: "\(size) bytes is more than the \(limit >> 20) MiB allowed for this file")
    }
    var bytes = [UInt8](repeating: 0, count: size)
    var done = 0
    while done < size {
        let n = bytes.withUnsafeMutableBytes { buffer in
            // Non-nil: size > 0 here.
            read(fd, buffer.baseAddress.unsafelyUnwrapped + done, size - done)
        }
        if n < 0, errno == EINTR { continue }
        guard n > 0 else {
            throw .cannotOpen(path: path, reason: n == 0 ? "file shrank while being read" : String(cString: strerror(errno)))
        }
        done += n
    }
    return bytes
}

/// `text` made safe to show on a terminal: at most `limit` characters (then "…"), control
/// characters, escape sequences and bidi overrides escaped (``TerminalText``). For names and
/// values taken from model files, which a stranger wrote.
public func terminalExcerpt(_ text: some StringProtocol, limit: Int = 80) -> String {
    TerminalText.excerpt(text, limit: limit)
}

/// Why a model file could not be used. Every case names the file's field or value at fault.
public enum ModelFileError: Error, Equatable, CustomStringConvertible {
    case cannotOpen(path: String, reason: String)
    case notGGUF(path: String)
    case unsupportedVersion(UInt32)
    case truncated(field: String, offset: Int, fileSize: Int)
    case invalid(field: String, reason: String)
    case unsupportedTensorType(tensor: String, type: UInt32)
    case missingMetadata(key: String)
    case missingTensor(name: String)
    case unsupportedArchitecture(String)
    /// A field of a Hugging Face file (safetensors header, `config.json`, index) is missing or wrong.
    case invalidFile(path: String, field: String, reason: String)

    public var description: String {
        switch self {
        // Names, keys and reasons may quote the file's own bytes: each is shown as a short, escaped excerpt.
        case let .cannotOpen(path, reason):
            "cannot open model file '\(terminalExcerpt(path, limit: 400))': \(terminalExcerpt(reason, limit: 200))"
        case let .notGGUF(path):
            "'\(terminalExcerpt(path, limit: 400))' is not a GGUF file (bad magic number)"
        case let .unsupportedVersion(version):
            "unsupported GGUF version \(version) (supported: 2, 3)"
        case let .truncated(field, offset, fileSize):
            "GGUF file is truncated: \(terminalExcerpt(field, limit: 160)) at byte \(offset) runs past the end of the file (\(fileSize) bytes)"
        case let .invalid(field, reason):
            "invalid GGUF file: \(terminalExcerpt(field, limit: 160)): \(terminalExcerpt(reason, limit: 200))"
        case let .unsupportedTensorType(tensor, type):
            "tensor '\(terminalExcerpt(tensor))' has unsupported type \(type)"
        case let .missingMetadata(key):
            "model file lacks the metadata key '\(terminalExcerpt(key))'"
        case let .missingTensor(name):
            "model file lacks the tensor '\(terminalExcerpt(name))'"
        case let .unsupportedArchitecture(arch):
            "unsupported model architecture '\(terminalExcerpt(arch))' (supported: \(ModelFamily.supportedNames))"
        case let .invalidFile(path, field, reason):
            "invalid model file '\(terminalExcerpt(path, limit: 400))': \(terminalExcerpt(field, limit: 160)): \(terminalExcerpt(reason, limit: 200))"
        }
    }
}
