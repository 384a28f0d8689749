import Foundation
import QwenKernels

/// A `.safetensors` file over a memory map.
///
/// Layout:
///
///     header_length: u64 little-endian | header: header_length bytes of UTF-8 JSON | data
///
///     header = { "__metadata__": { string: string, ... },            (optional)
///                "<tensor name>": { "dtype": "BF16", "shape": [rows, cols],
///                                   "data_offsets": [begin, end] }, ... }
///
/// `data_offsets` are relative to the first byte after the header; `end - begin` must equal
/// the element count × the dtype's size. Everything read from the file is untrusted: the header
/// length, every offset and shape is checked against the file size with overflow-checked
/// arithmetic, and a bad file throws a ``ModelFileError`` naming the file and the field.
public struct SafetensorsFile: Sendable {
    /// `__metadata__`, string values only (as the format defines it).
    public let metadata: [String: String]
    /// Tensor descriptions in header order.
    public let tensors: [SafetensorsTensorInfo]
    public let file: MappedFile

    private let tensorIndex: [String: Int]

    /// Headers larger than this are refused (the reference implementation's limit).
    static let maximumHeaderLength = 100_000_000

    public init(path: String) throws(ModelFileError) {
        try self.init(file: MappedFile(path: path))
    }

    public init(file: MappedFile) throws(ModelFileError) {
        self.file = file
        let path = file.path
        let bytes = file.bytes
        func invalid(_ field: String, _ reason: String) -> ModelFileError {
            .invalidFile(path: path, field: field, reason: reason)
        }
        guard bytes.count >= 8 else {
            throw invalid("header length", "the file is \(bytes.count) bytes, too short for the 8-byte header length")
        }
        let declared = UInt64(littleEndian: bytes.loadUnaligned(as: UInt64.self))
        guard declared <= UInt64(bytes.count - 8) else {
            throw invalid("header length", "\(declared) bytes, but only \(bytes.count - 8) follow it in the file")
        }
        guard declared <= UInt64(Self.maximumHeaderLength), declared >= 2 else {
            throw invalid("header length", "\(declared) bytes is out of range")
        }
        let headerLength = Int(declared)
        let dataStart = 8 + headerLength
        let dataSize = bytes.count - dataStart

        let header: JSONValue
        do {
            header = try JSONValue.parse(UnsafeRawBufferPointer(rebasing: bytes[8..<dataStart]), maxDepth: 8)
        } catch {
            throw invalid("header", "not valid JSON: \(error)")
        }
        guard let members = header.objectValue else { throw invalid("header", "not a JSON object") }
        // The JSON parser keeps the last of duplicate keys; a header naming a tensor twice is refused.
        let keys = Self.topLevelKeys(UnsafeRawBufferPointer(rebasing: bytes[8..<dataStart]))
        if keys.count != members.count {
            var seen: Set<[UInt8]> = []
            let duplicate = keys.first { !seen.insert($0).inserted }.map { String(decoding: $0, as: UTF8.self) }
            throw invalid("tensor '\(duplicate ?? "?")'", "duplicate tensor name")
        }

        var metadata: [String: String] = [:]
        var tensors: [SafetensorsTensorInfo] = []
        var tensorIndex: [String: Int] = [:]
        tensors.reserveCapacity(members.count)
        for (name, entry) in members {
            if name == "__metadata__" {
                guard let pairs = entry.objectValue else { throw invalid("__metadata__", "not an object") }
                for (key, value) in pairs {
                    guard let string = value.stringValue else {
                        throw invalid("__metadata__.\(key)", "not a string")
                    }
                    metadata[key] = string
                }
                continue
            }
            let field = "tensor '\(name)'"
            guard tensorIndex[name] == nil else { throw invalid(field, "duplicate tensor name") }
            guard entry.objectValue != nil else { throw invalid(field, "not an object") }
            guard let dtypeName = entry["dtype"]?.stringValue else { throw invalid("\(field) dtype", "missing or not a string") }
            guard let dtype = SafetensorsDType(rawValue: dtypeName) else {
                throw invalid("\(field) dtype", "unknown dtype '\(dtypeName)'")
            }
            guard let dims = entry["shape"]?.arrayValue, dims.count <= 8 else {
                throw invalid("\(field) shape", "missing, not an array, or more than 8 dimensions")
            }
            var shape: [Int] = []
            var elements = 1
            for dim in dims {
                guard let n = dim.intValue, n >= 0 else {
                    throw invalid("\(field) shape", "dimensions must be non-negative integers")
                }
                let (product, overflow) = elements.multipliedReportingOverflow(by: n)
                guard !overflow else { throw invalid("\(field) shape", "element count overflows") }
                elements = product
                shape.append(n)
            }
            guard let offsets = entry["data_offsets"]?.arrayValue, offsets.count == 2,
                  let begin = offsets[0].intValue, let end = offsets[1].intValue else {
                throw invalid("\(field) data_offsets", "expected two integers [begin, end]")
            }
            guard begin >= 0, begin <= end, end <= dataSize else {
                throw invalid("\(field) data_offsets",
                              "[\(begin), \(end)] is outside the \(dataSize) data bytes of the file")
            }
            let (byteCount, overflow) = elements.multipliedReportingOverflow(by: dtype.size)
            guard !overflow, byteCount == end - begin else {
                throw invalid("\(field) data_offsets",
                              "[\(begin), \(end)] holds \(end - begin) bytes, but \(dtype.rawValue) \(shape) needs \(overflow ? "more" : "\(byteCount)")")
            }
            let fileOffset = dataStart + begin
            // The kernels read float types as aligned values; the mapping itself is page-aligned.
            guard fileOffset % dtype.size == 0 else {
                throw invalid("\(field) data_offsets", "data at byte \(fileOffset) is not aligned to \(dtype.size) bytes")
            }
            tensorIndex[name] = tensors.count
            tensors.append(SafetensorsTensorInfo(name: name, dtype: dtype, shape: shape,
                                                 fileOffset: fileOffset, byteCount: byteCount))
        }
        self.metadata = metadata
        self.tensors = tensors
        self.tensorIndex = tensorIndex
    }

    /// The tensor named `name`, if present.
    public func tensor(named name: String) -> SafetensorsTensorInfo? {
        tensorIndex[name].map { tensors[$0] }
    }

    /// The raw (still escaped) keys of the outermost object of a JSON text already known to be valid.
    private static func topLevelKeys(_ json: UnsafeRawBufferPointer) -> [[UInt8]] {
        var keys: [[UInt8]] = []
        var depth = 0, i = 0
        var lastString: Range<Int>?
        while i < json.count {
            let byte = json[i]
            switch byte {
            case UInt8(ascii: "\""):
                let start = i + 1
                i += 1
                while i < json.count, json[i] != UInt8(ascii: "\"") {
                    i += json[i] == UInt8(ascii: "\\") ? 2 : 1
                }
                lastString = start..<min(i, json.count)
            case UInt8(ascii: "{"), UInt8(ascii: "["): depth += 1
            case UInt8(ascii: "}"), UInt8(ascii: "]"): depth -= 1
            case UInt8(ascii: ":") where depth == 1:
                if let range = lastString { keys.append(Array(json[range])) }
            default: break
            }
            i += 1
        }
        return keys
    }

    /// The first byte of a tensor's data (validated to lie inside the file). Zero-size tensors
    /// may point one past the end of the data and must not be read.
    public func data(of tensor: SafetensorsTensorInfo) -> UnsafeRawPointer {
        // Non-nil: a file with a valid header is at least 10 bytes long, so the mapping is not empty.
        file.bytes.baseAddress.unsafelyUnwrapped + tensor.fileOffset
    }
}

/// One tensor of a safetensors file. `shape` is outermost first, as PyTorch writes it:
/// a linear layer's weight of `out` × `in` has shape `[out, in]`, stored row-major.
public struct SafetensorsTensorInfo: Sendable, Equatable {
    public let name: String
    public let dtype: SafetensorsDType
    public let shape: [Int]
    /// Absolute byte offset in the file.
    public let fileOffset: Int
    public let byteCount: Int

    public var elementCount: Int { shape.reduce(1, *) }
}

/// The element types a safetensors header may name.
public enum SafetensorsDType: String, Sendable, CaseIterable {
    case bool = "BOOL", u8 = "U8", i8 = "I8", f8e4m3 = "F8_E4M3", f8e5m2 = "F8_E5M2"
    case i16 = "I16", u16 = "U16", f16 = "F16", bf16 = "BF16"
    case i32 = "I32", u32 = "U32", f32 = "F32"
    case i64 = "I64", u64 = "U64", f64 = "F64"

    /// Bytes per element.
    public var size: Int {
        switch self {
        case .bool, .u8, .i8, .f8e4m3, .f8e5m2: 1
        case .i16, .u16, .f16, .bf16: 2
        case .i32, .u32, .f32: 4
        case .i64, .u64, .f64: 8
        }
    }

    /// The kernel type that reads this dtype in place, for the float types the engine computes with.
    public var ggmlType: GGMLType? {
        switch self {
        case .f32: .f32
        case .f16: .f16
        case .bf16: .bf16
        default: nil
        }
    }
}

/// A Hugging Face checkpoint: `model.safetensors`, or the shards that
/// `model.safetensors.index.json` lists in its `weight_map`.
public struct SafetensorsCheckpoint: Sendable {
    /// The shards, each mapped once.
    public let files: [SafetensorsFile]
    /// Tensor name → index into `files`.
    private let location: [String: Int]

    /// The file name of a single-file checkpoint.
    public static let singleFileName = "model.safetensors"
    /// The file name of a sharded checkpoint's index.
    public static let indexFileName = "model.safetensors.index.json"

    /// Opens the checkpoint in `directory`, preferring the index when there is one.
    public init(directory: String) throws(ModelFileError) {
        let folder = URL(fileURLWithPath: directory, isDirectory: true)
        let indexPath = folder.appendingPathComponent(Self.indexFileName).path
        guard FileManager.default.fileExists(atPath: indexPath) else {
            let single = folder.appendingPathComponent(Self.singleFileName).path
            guard FileManager.default.fileExists(atPath: single) else {
                throw .cannotOpen(path: single, reason: "no \(Self.singleFileName) or \(Self.indexFileName) in the directory")
            }
            try self.init(files: [SafetensorsFile(path: single)])
            return
        }
        let index = try JSONFile(path: indexPath)
        let weightMap = try index.object("weight_map", in: index.root)
        var shardNames: [String] = []
        var shardOf: [String: Int] = [:]
        var expected: [(tensor: String, shard: Int)] = []
        for (tensor, value) in weightMap {
            guard let shard = value.stringValue else {
                throw index.invalid("weight_map.\(tensor)", "not a string")
            }
            // Shard names come from the file: keep them inside the directory.
            guard !shard.isEmpty, !shard.contains("/"), !shard.contains("\\"), shard != ".", shard != ".." else {
                throw index.invalid("weight_map.\(tensor)", "'\(shard)' is not a file name in the model directory")
            }
            let number: Int
            if let known = shardOf[shard] {
                number = known
            } else {
                number = shardNames.count
                shardOf[shard] = number
                shardNames.append(shard)
            }
            expected.append((tensor, number))
        }
        var files: [SafetensorsFile] = []
        for shard in shardNames {
            let path = folder.appendingPathComponent(shard).path
            guard FileManager.default.fileExists(atPath: path) else {
                throw .cannotOpen(path: path, reason: "shard listed in \(Self.indexFileName) is missing")
            }
            files.append(try SafetensorsFile(path: path))
        }
        for (tensor, shard) in expected where files[shard].tensor(named: tensor) == nil {
            throw .invalidFile(path: files[shard].file.path, field: "tensor '\(tensor)'",
                               reason: "listed in \(Self.indexFileName) but absent from the shard")
        }
        try self.init(files: files)
    }

    /// A checkpoint made of already opened files; a tensor name may appear in only one of them.
    public init(files: [SafetensorsFile]) throws(ModelFileError) {
        var location: [String: Int] = [:]
        for (i, file) in files.enumerated() {
            for tensor in file.tensors {
                guard location[tensor.name] == nil else {
                    throw .invalidFile(path: file.file.path, field: "tensor '\(tensor.name)'",
                                       reason: "also present in another shard")
                }
                location[tensor.name] = i
            }
        }
        self.files = files
        self.location = location
    }

    /// The tensor named `name` and the file holding it, if present.
    public func tensor(named name: String) -> (info: SafetensorsTensorInfo, file: SafetensorsFile)? {
        guard let i = location[name], let info = files[i].tensor(named: name) else { return nil }
        return (info, files[i])
    }
}
