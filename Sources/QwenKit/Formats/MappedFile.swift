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
        let fd = open(path, O_RDONLY)
        guard fd >= 0 else {
            throw .cannotOpen(path: path, reason: String(cString: strerror(errno)))
        }
        defer { close(fd) }
        var info = stat()
        guard fstat(fd, &info) == 0 else {
            throw .cannotOpen(path: path, reason: String(cString: strerror(errno)))
        }
        guard (info.st_mode & S_IFMT) == S_IFREG else {
            throw .cannotOpen(path: path, reason: "not a regular file")
        }
        let size = Int(info.st_size)
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
        case let .cannotOpen(path, reason):
            "cannot open model file '\(path)': \(reason)"
        case let .notGGUF(path):
            "'\(path)' is not a GGUF file (bad magic number)"
        case let .unsupportedVersion(version):
            "unsupported GGUF version \(version) (supported: 2, 3)"
        case let .truncated(field, offset, fileSize):
            "GGUF file is truncated: \(field) at byte \(offset) runs past the end of the file (\(fileSize) bytes)"
        case let .invalid(field, reason):
            "invalid GGUF file: \(field): \(reason)"
        case let .unsupportedTensorType(tensor, type):
            "tensor '\(tensor)' has unsupported type \(type)"
        case let .missingMetadata(key):
            "model file lacks the metadata key '\(key)'"
        case let .missingTensor(name):
            "model file lacks the tensor '\(name)'"
        case let .unsupportedArchitecture(arch):
            "unsupported model architecture '\(arch)' (supported: \(ModelFamily.supportedNames))"
        case let .invalidFile(path, field, reason):
            "invalid model file '\(path)': \(field): \(reason)"
        }
    }
}
