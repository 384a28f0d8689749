import QwenKernels

/// A GGUF file (versions 2 and 3) over a memory map.
///
/// Layout, all little-endian:
///
///     magic "GGUF" | version: u32 | tensor_count: u64 | kv_count: u64
///     kv_count × [key: string | value_type: u32 | value]
///     tensor_count × [name: string | n_dims: u32 | n_dims × ne: u64 | type: u32 | offset: u64]
///     padding to general.alignment (default 32)
///     data section: each tensor at data_start + offset (offset a multiple of the alignment)
///
///     string = [length: u64 | UTF-8 bytes];  array = [element_type: u32 | count: u64 | elements]
///
/// Everything read from the file is untrusted: every count, length, offset and shape is checked
/// against the file size with overflow-checked arithmetic before it is used, and a bad file throws
/// a ``ModelFileError`` naming the field. The memory the header takes once read (metadata values,
/// strings, tensor descriptions) is charged, in the bytes actually allocated, against
/// ``maximumHeaderMemory`` before anything is reserved, so a count that the file could hold at one
/// byte an element cannot ask for twenty times that.
public struct GGUFFile: Sendable {
    /// The most memory the metadata and tensor table of one file may take once read: 256 MiB,
    /// about ten times what the largest Qwen vocabulary (248,320 tokens and their merges) needs.
    public static let maximumHeaderMemory = 256 << 20

    public let version: UInt32
    /// Metadata in file order.
    public let metadata: [(key: String, value: GGUFValue)]
    /// Tensor descriptions in file order.
    public let tensors: [GGUFTensorInfo]
    public let alignment: Int
    /// Byte offset of the data section in the file.
    public let dataOffset: Int
    public let file: MappedFile

    private let metadataIndex: [String: Int]
    private let tensorIndex: [String: Int]

    public init(path: String) throws(ModelFileError) {
        try self.init(file: MappedFile(path: path))
    }

    public init(file: MappedFile) throws(ModelFileError) {
        self.file = file
        var reader = ByteReader(bytes: file.bytes, memoryBudget: Self.maximumHeaderMemory)
        guard file.bytes.count >= 4, try reader.read(UInt32.self, "magic") == 0x4655_4747 else {
            throw .notGGUF(path: file.path)
        }
        version = try reader.read(UInt32.self, "version")
        guard version == 2 || version == 3 else { throw .unsupportedVersion(version) }
        let tensorCount = try reader.readCount("tensor_count", minimumBytesEach: 24)
        let kvCount = try reader.readCount("kv_count", minimumBytesEach: 12)

        var metadata: [(key: String, value: GGUFValue)] = []
        var metadataIndex: [String: Int] = [:]
        try reader.charge(kvCount, bytesEach: MemoryLayout<(String, GGUFValue)>.stride + 64, "kv_count")
        metadata.reserveCapacity(kvCount)
        for i in 0..<kvCount {
            let key = try reader.readString("metadata key #\(i)")
            let typeRaw = try reader.read(UInt32.self, "type of '\(key)'")
            let value = try reader.readValue(typeRaw: typeRaw, field: key, depth: 0)
            guard metadataIndex[key] == nil else { throw .invalid(field: key, reason: "duplicate metadata key") }
            metadataIndex[key] = metadata.count
            metadata.append((key, value))
        }
        self.metadata = metadata
        self.metadataIndex = metadataIndex

        var alignment = 32
        if let index = metadataIndex["general.alignment"] {
            guard let value = metadata[index].value.integer, value > 0, value <= 1 << 20, value & (value - 1) == 0 else {
                throw .invalid(field: "general.alignment", reason: "must be a power of two")
            }
            alignment = value
        }
        self.alignment = alignment

        var infos: [(name: String, shape: [Int], type: GGMLType, offset: Int, byteCount: Int)] = []
        // Each description, the info the file keeps and the index entry: a few hundred bytes at most.
        try reader.charge(tensorCount, bytesEach: 256, "tensor_count")
        infos.reserveCapacity(tensorCount)
        for i in 0..<tensorCount {
            let name = try reader.readString("tensor #\(i) name")
            let dimCount = try reader.read(UInt32.self, "n_dims of tensor '\(name)'")
            guard (1...4).contains(dimCount) else {
                throw .invalid(field: "n_dims of tensor '\(name)'", reason: "\(dimCount) is not in 1...4")
            }
            var shape: [Int] = []
            var elements = 1
            for d in 0..<Int(dimCount) {
                let ne = try reader.read(UInt64.self, "ne[\(d)] of tensor '\(name)'")
                guard ne > 0, ne <= UInt64(Int32.max) else {
                    throw .invalid(field: "ne[\(d)] of tensor '\(name)'", reason: "dimension \(ne) out of range")
                }
                let (product, overflow) = elements.multipliedReportingOverflow(by: Int(ne))
                guard !overflow else { throw .invalid(field: "shape of tensor '\(name)'", reason: "element count overflows") }
                elements = product
                shape.append(Int(ne))
            }
            let typeRaw = try reader.read(UInt32.self, "type of tensor '\(name)'")
            guard let type = GGMLType(rawValue: typeRaw), type != .q8_K, type != .q8_1 else {
                throw .unsupportedTensorType(tensor: name, type: typeRaw)
            }
            let offset = try reader.read(UInt64.self, "offset of tensor '\(name)'")
            guard let rowBytes = type.rowBytes(count: shape[0]) else {
                throw .invalid(field: "ne[0] of tensor '\(name)'",
                               reason: "\(shape[0]) is not a multiple of the \(type) block size \(type.blockSize)")
            }
            let (byteCount, overflow) = rowBytes.multipliedReportingOverflow(by: elements / shape[0])
            guard !overflow, offset <= UInt64(Int.max), Int(offset) % alignment == 0 else {
                throw .invalid(field: "offset of tensor '\(name)'", reason: "\(offset) is not aligned to \(alignment)")
            }
            infos.append((name, shape, type, Int(offset), byteCount))
        }

        let (padded, overflow) = reader.position.addingReportingOverflow(alignment - 1)
        guard !overflow else { throw .invalid(field: "data section", reason: "offset overflows") }
        dataOffset = padded / alignment * alignment
        let fileSize = file.bytes.count

        var tensors: [GGUFTensorInfo] = []
        var tensorIndex: [String: Int] = [:]
        for info in infos {
            let (start, o1) = dataOffset.addingReportingOverflow(info.offset)
            let (end, o2) = start.addingReportingOverflow(info.byteCount)
            guard !o1, !o2, end <= fileSize else {
                throw .truncated(field: "data of tensor '\(info.name)'", offset: o1 ? Int.max : start, fileSize: fileSize)
            }
            guard tensorIndex[info.name] == nil else {
                throw .invalid(field: "tensor '\(info.name)'", reason: "duplicate tensor name")
            }
            tensorIndex[info.name] = tensors.count
            tensors.append(GGUFTensorInfo(name: info.name, shape: info.shape, type: info.type,
                                          fileOffset: start, byteCount: info.byteCount))
        }
        self.tensors = tensors
        self.tensorIndex = tensorIndex
    }

    /// The metadata value for `key`, if present.
    public subscript(key: String) -> GGUFValue? {
        metadataIndex[key].map { metadata[$0].value }
    }

    /// The tensor named `name`, if present.
    public func tensor(named name: String) -> GGUFTensorInfo? {
        tensorIndex[name].map { tensors[$0] }
    }

    /// The first byte of a tensor's data (validated to lie inside the file).
    public func data(of tensor: GGUFTensorInfo) -> UnsafeRawPointer {
        // Non-nil: a tensor with data implies a non-empty mapping.
        file.bytes.baseAddress.unsafelyUnwrapped + tensor.fileOffset
    }
}

/// One tensor of a GGUF file. `shape` lists dimensions innermost first, as ggml does:
/// a weight of `rows` outputs × `cols` inputs has shape `[cols, rows]`.
public struct GGUFTensorInfo: Sendable, Equatable {
    public let name: String
    public let shape: [Int]
    public let type: GGMLType
    /// Absolute byte offset in the file.
    public let fileOffset: Int
    public let byteCount: Int

    public var elementCount: Int { shape.reduce(1, *) }
}

/// A GGUF metadata value.
public enum GGUFValue: Sendable, Equatable {
    case uint8(UInt8), int8(Int8), uint16(UInt16), int16(Int16), uint32(UInt32), int32(Int32)
    case uint64(UInt64), int64(Int64), float32(Float), float64(Double), bool(Bool)
    case string(String)
    case array([GGUFValue])

    /// The value as an `Int`, for any integer type that fits.
    public var integer: Int? {
        switch self {
        case let .uint8(v): Int(v)
        case let .int8(v): Int(v)
        case let .uint16(v): Int(v)
        case let .int16(v): Int(v)
        case let .uint32(v): Int(v)
        case let .int32(v): Int(v)
        case let .uint64(v): Int(exactly: v)
        case let .int64(v): Int(exactly: v)
        default: nil
        }
    }

    /// The value as a `Double`, for any numeric type.
    public var number: Double? {
        switch self {
        case let .float32(v): Double(v)
        case let .float64(v): v
        default: integer.map(Double.init)
        }
    }

    public var string: String? {
        if case let .string(s) = self { s } else { nil }
    }

    public var array: [GGUFValue]? {
        if case let .array(a) = self { a } else { nil }
    }
}

/// A bounds-checked little-endian cursor over untrusted bytes.
private struct ByteReader {
    let bytes: UnsafeRawBufferPointer
    var position = 0
    /// Bytes of memory the values read so far may still take.
    var memoryBudget: Int

    init(bytes: UnsafeRawBufferPointer, memoryBudget: Int) {
        self.bytes = bytes
        self.memoryBudget = memoryBudget
    }

    var remaining: Int { bytes.count - position }

    mutating func read<T: FixedWidthInteger>(_: T.Type, _ field: @autoclosure () -> String) throws(ModelFileError) -> T {
        let size = MemoryLayout<T>.size
        guard remaining >= size else {
            throw .truncated(field: field(), offset: position, fileSize: bytes.count)
        }
        let value = bytes.loadUnaligned(fromByteOffset: position, as: T.self)
        position += size
        return T(littleEndian: value)
    }

    /// Reads a u64 count and checks that the file could hold that many items of at least
    /// `minimumBytesEach` bytes, so a hostile count cannot make us reserve huge arrays.
    mutating func readCount(_ field: @autoclosure () -> String, minimumBytesEach: Int) throws(ModelFileError) -> Int {
        let count = try read(UInt64.self, field())
        guard count <= UInt64(remaining / max(minimumBytesEach, 1)) else {
            throw .truncated(field: "\(field()) (\(count) items)", offset: position, fileSize: bytes.count)
        }
        return Int(count)
    }

    /// Takes `count` items of `bytesEach` bytes of memory from the budget, or throws naming `field`.
    mutating func charge(_ count: Int, bytesEach: Int, _ field: @autoclosure () -> String) throws(ModelFileError) {
        let (bytes, overflow) = count.multipliedReportingOverflow(by: bytesEach)
        guard !overflow, bytes <= memoryBudget else {
            throw .invalid(field: field(), reason: "\(count) items would take more than the \(GGUFFile.maximumHeaderMemory >> 20) MiB "
                           + "of memory allowed for a GGUF header")
        }
        memoryBudget -= bytes
    }

    mutating func readString(_ field: @autoclosure () -> String) throws(ModelFileError) -> String {
        let length = try readCount(field(), minimumBytesEach: 1)
        try charge(length, bytesEach: 1, field())
        let slice = UnsafeRawBufferPointer(rebasing: bytes[position..<position + length])
        position += length
        // Invalid UTF-8 is repaired (U+FFFD) rather than rejected: it can only appear in text
        // we display, and llama.cpp accepts such files too.
        return String(decoding: slice, as: UTF8.self)
    }

    mutating func readValue(typeRaw: UInt32, field: String, depth: Int) throws(ModelFileError) -> GGUFValue {
        switch typeRaw {
        case 0: return .uint8(try read(UInt8.self, field))
        case 1: return .int8(try read(Int8.self, field))
        case 2: return .uint16(try read(UInt16.self, field))
        case 3: return .int16(try read(Int16.self, field))
        case 4: return .uint32(try read(UInt32.self, field))
        case 5: return .int32(try read(Int32.self, field))
        case 6: return .float32(Float(bitPattern: try read(UInt32.self, field)))
        case 7:
            let byte = try read(UInt8.self, field)
            guard byte <= 1 else { throw .invalid(field: field, reason: "bool value \(byte)") }
            return .bool(byte == 1)
        case 8: return .string(try readString(field))
        case 9:
            guard depth < 4 else { throw .invalid(field: field, reason: "arrays nested too deeply") }
            let elementType = try read(UInt32.self, "element type of '\(field)'")
            let count = try readCount("length of '\(field)'", minimumBytesEach: Self.minimumSize(of: elementType))
            try charge(count, bytesEach: MemoryLayout<GGUFValue>.stride, "length of '\(field)'")
            var elements: [GGUFValue] = []
            elements.reserveCapacity(count)
            for _ in 0..<count {
                elements.append(try readValue(typeRaw: elementType, field: field, depth: depth + 1))
            }
            return .array(elements)
        case 10: return .uint64(try read(UInt64.self, field))
        case 11: return .int64(try read(Int64.self, field))
        case 12: return .float64(Double(bitPattern: try read(UInt64.self, field)))
        default:
            throw .invalid(field: field, reason: "unknown value type \(typeRaw)")
        }
    }

    /// The fewest bytes one value of a type can occupy (strings and arrays: their length field).
    static func minimumSize(of typeRaw: UInt32) -> Int {
        switch typeRaw {
        case 0, 1, 7: 1
        case 2, 3: 2
        case 4, 5, 6: 4
        case 8, 10, 11, 12: 8
        case 9: 12
        default: 1
        }
    }
}
