import Foundation

/// Limits applied to every tensor the engine allocates, so that a hostile shape ("shape bomb") fails cleanly
/// instead of exhausting memory. Passed explicitly (no global state).
public struct TensorLimits: Sendable, Equatable {
    /// Largest single tensor, in bytes.
    public var maxTensorBytes: Int
    /// Largest single tensor, in elements (also bounds string tensors).
    public var maxTensorElements: Int

    public init(maxTensorBytes: Int = 4 << 30, maxTensorElements: Int = 1 << 30) {
        self.maxTensorBytes = maxTensorBytes
        self.maxTensorElements = maxTensorElements
    }

    public static let `default` = TensorLimits()

    /// The element count of `shape`, checked for negative dimensions, overflow and the limits.
    ///
    /// The limit on elements also bounds the shape's volume with zero dimensions counted as one: an empty tensor
    /// of shape [0, 2^31 - 1, 2^31 - 1, 2^31 - 1] holds nothing, but its strides and the products of its trailing
    /// dimensions, which operators compute, overflow. No real model needs an empty tensor whose other dimensions
    /// multiply past the element limit, so such shapes are refused wherever a tensor is made or received.
    public func checkedCount(_ shape: [Int], _ dataType: DataType) throws -> Int {
        var n = 1
        var volume = 1
        for d in shape {
            guard d >= 0 else { throw EngineError(.shapeMismatch, "negative dimension in shape \(shape)") }
            let (m, o) = n.multipliedReportingOverflow(by: d)
            let (v, vo) = volume.multipliedReportingOverflow(by: Swift.max(d, 1))
            guard !o, !vo, v <= maxTensorElements else {
                if n == 0 || m == 0 {
                    throw EngineError(.memoryLimit, "empty tensor of shape \(shape): its non-zero dimensions multiply past \(maxTensorElements), over the limit of elements")
                }
                throw EngineError(.memoryLimit, "tensor of shape \(shape) has more than \(maxTensorElements) elements, over the limit of \(maxTensorElements)")
            }
            n = m
            volume = v
        }
        guard n <= maxTensorElements else {
            throw EngineError(.memoryLimit, "tensor of shape \(shape) has \(n) elements, over the limit of \(maxTensorElements)")
        }
        let bytes = n.multipliedReportingOverflow(by: max(dataType.byteSize, 1))
        guard !bytes.overflow, bytes.partialValue <= maxTensorBytes else {
            throw EngineError(.memoryLimit, "tensor of shape \(shape) (\(dataType)) needs \(n * max(dataType.byteSize, 1)) bytes, over the limit of \(maxTensorBytes)")
        }
        return n
    }
}

/// Contiguous, 64-byte aligned storage for tensor elements, or an array of strings for string tensors.
///
/// Storage is written only by the code that creates it, before the tensor is shared; after that it is
/// read-only, which is why it may be `@unchecked Sendable`.
public final class TensorStorage: @unchecked Sendable {
    public let base: UnsafeMutableRawPointer
    public let byteCount: Int
    public let strings: [String]
    private let owned: Bool
    /// Keeps borrowed bytes (a protobuf `bytes` field) alive while this storage points into them.
    private let keepAlive: AnyObject?
    private let keepAliveData: Data?

    public init(byteCount: Int, zeroed: Bool = true) {
        let n = max(byteCount, 1)
        base = UnsafeMutableRawPointer.allocate(byteCount: n, alignment: 64)
        if zeroed { base.initializeMemory(as: UInt8.self, repeating: 0, count: n) }
        self.byteCount = byteCount
        self.strings = []
        self.owned = true
        self.keepAlive = nil
        self.keepAliveData = nil
    }

    public init(strings: [String]) {
        base = UnsafeMutableRawPointer.allocate(byteCount: 1, alignment: 64)
        byteCount = 0
        self.strings = strings
        owned = true
        keepAlive = nil
        keepAliveData = nil
    }

    /// Storage that borrows the bytes of `data` without copying them, when they are large, heap-backed and
    /// suitably aligned; otherwise it copies. Used for model initializers so that loading copies each
    /// weight at most once (from the file into the decoded protobuf message).
    public static func borrowing(_ data: Data, alignment: Int) -> TensorStorage {
        // Foundation keeps `Data` of more than a few bytes in a heap buffer whose address is stable while the
        // value is alive and unmutated; we hold the value (an immutable copy of it) for the storage's lifetime.
        if data.count >= 256 {
            let pointer: UnsafeMutableRawPointer? = data.withUnsafeBytes { raw in
                guard let b = raw.baseAddress, Int(bitPattern: b) % max(alignment, 1) == 0 else { return nil }
                return UnsafeMutableRawPointer(mutating: b)
            }
            if let pointer {
                return TensorStorage(borrowed: pointer, byteCount: data.count, data: data)
            }
        }
        let s = TensorStorage(byteCount: data.count, zeroed: false)
        data.withUnsafeBytes { raw in
            if let b = raw.baseAddress { s.base.copyMemory(from: b, byteCount: data.count) }
        }
        return s
    }

    private init(borrowed: UnsafeMutableRawPointer, byteCount: Int, data: Data) {
        base = borrowed
        self.byteCount = byteCount
        strings = []
        owned = false
        keepAlive = nil
        keepAliveData = data
    }

    /// Whether this storage allocated its memory (false when it borrows bytes it does not own, such as a weight
    /// inside the decoded model). Only owned storage may be written after it was shared, and only by its sole owner.
    public var ownsMemory: Bool { owned && strings.isEmpty }

    deinit {
        if owned { base.deallocate() }
    }
}

/// An n-dimensional array: an element type, a shape and contiguous row-major storage.
///
/// Tensors are values: operators never write into a tensor they did not just allocate.
public struct Tensor: Sendable {
    public let dataType: DataType
    public let shape: [Int]
    public let count: Int
    public let storage: TensorStorage

    /// A tensor over existing storage (no copy). `storage` must hold `count` elements of `dataType`.
    public init(dataType: DataType, shape: [Int], storage: TensorStorage) {
        self.dataType = dataType
        self.shape = shape
        // A product that overflows cannot describe existing storage: the precondition below then fails.
        self.count = shape.contains(0) ? 0 : (SizeMath.productIfRepresentable(shape) ?? Int.max)
        self.storage = storage
        precondition(dataType == .string ? storage.strings.count == count : storage.byteCount >= count * dataType.byteSize)
    }

    /// A new zero-filled tensor (checked against `limits`).
    public init(zeros dataType: DataType, shape: [Int], limits: TensorLimits = .default) throws {
        let n = try limits.checkedCount(shape, dataType)
        self.dataType = dataType
        self.shape = shape
        self.count = n
        if dataType == .string {
            storage = TensorStorage(strings: Array(repeating: "", count: n))
        } else {
            storage = TensorStorage(byteCount: n * dataType.byteSize)
        }
    }

    /// A new tensor whose contents the caller must fully write before sharing it.
    public init(uninitialized dataType: DataType, shape: [Int], limits: TensorLimits = .default) throws {
        precondition(dataType != .string)
        let n = try limits.checkedCount(shape, dataType)
        self.dataType = dataType
        self.shape = shape
        self.count = n
        storage = TensorStorage(byteCount: n * dataType.byteSize, zeroed: false)
    }

    public init<T: TensorElement>(shape: [Int], scalars: [T]) {
        precondition(shape.reduce(1, *) == scalars.count, "shape \(shape) does not match \(scalars.count) scalars")
        self.dataType = T.dataType
        self.shape = shape
        self.count = scalars.count
        storage = TensorStorage(byteCount: scalars.count * MemoryLayout<T>.stride, zeroed: false)
        scalars.withUnsafeBytes { raw in
            if let b = raw.baseAddress { storage.base.copyMemory(from: b, byteCount: raw.count) }
        }
    }

    public init<T: TensorElement>(scalar: T) {
        self.init(shape: [], scalars: [scalar])
    }

    public init(shape: [Int], strings: [String]) {
        precondition(shape.reduce(1, *) == strings.count)
        dataType = .string
        self.shape = shape
        count = strings.count
        storage = TensorStorage(strings: strings)
    }

    public var rank: Int { shape.count }
    public var byteCount: Int { count * dataType.byteSize }

    /// Whether the elements may be viewed as `T`: the element type itself, or UInt16 for bfloat16's bits.
    @inlinable
    public func holds<T: TensorElement>(_: T.Type) -> Bool {
        T.dataType == dataType || (dataType == .bfloat16 && T.self == UInt16.self)
    }

    /// The elements, viewed as `T` (which must be the tensor's element type).
    @inlinable
    public func buffer<T: TensorElement>(_: T.Type = T.self) -> UnsafeBufferPointer<T> {
        precondition(holds(T.self), "tensor of \(dataType) read as \(T.dataType)")
        return UnsafeBufferPointer(start: storage.base.assumingMemoryBound(to: T.self), count: count)
    }

    /// Writable view for code that has just allocated this tensor and has not shared it yet.
    @inlinable
    public func mutableBuffer<T: TensorElement>(_: T.Type = T.self) -> UnsafeMutableBufferPointer<T> {
        precondition(holds(T.self), "tensor of \(dataType) written as \(T.dataType)")
        return UnsafeMutableBufferPointer(start: storage.base.assumingMemoryBound(to: T.self), count: count)
    }

    public var rawBytes: UnsafeRawBufferPointer { UnsafeRawBufferPointer(start: storage.base, count: byteCount) }

    public var strings: [String] { storage.strings }

    public func scalars<T: TensorElement>(as: T.Type = T.self) -> [T] { Array(buffer(T.self)) }

    /// The same elements with another shape of the same element count (shares storage). The new shape is
    /// checked like any tensor's (`TensorLimits.checkedCount`), so an empty tensor cannot take a shape whose
    /// strides overflow.
    public func reshaped(_ newShape: [Int], limits: TensorLimits = .default) throws -> Tensor {
        guard try limits.checkedCount(newShape, dataType) == count else {
            throw EngineError(.shapeMismatch, "cannot reshape \(shape) to \(newShape)")
        }
        return Tensor(dataType: dataType, shape: newShape, storage: storage)
    }

    /// Rewrites every byte of a bool buffer as 0 or 1. Bytes read from outside (an .npy file, a model's raw
    /// data) may hold any value, and a Swift `Bool` whose byte is neither 0 nor 1 is undefined behaviour.
    public static func canonicalizeBools(_ base: UnsafeMutableRawPointer, count: Int) {
        let b = base.assumingMemoryBound(to: UInt8.self)
        for i in 0..<count where b[i] > 1 { b[i] = 1 }
    }

    /// This tensor with its bool bytes made 0 or 1 (a copy when the storage is borrowed and needs a change).
    public func withCanonicalBools() -> Tensor {
        guard dataType == .bool else { return self }
        let bytes = storage.base.assumingMemoryBound(to: UInt8.self)
        guard (0..<count).contains(where: { bytes[$0] > 1 }) else { return self }
        let copy = TensorStorage(byteCount: count, zeroed: false)
        copy.base.copyMemory(from: storage.base, byteCount: count)
        Tensor.canonicalizeBools(copy.base, count: count)
        return Tensor(dataType: .bool, shape: shape, storage: copy)
    }

    /// Values of an integer tensor as `Int`s (for shape-like inputs: shapes, axes, indices, pads).
    public func intValues() throws -> [Int] {
        switch dataType {
        case .int64: return buffer(Int64.self).map { Int($0) }
        case .int32: return buffer(Int32.self).map { Int($0) }
        case .int16: return buffer(Int16.self).map { Int($0) }
        case .int8: return buffer(Int8.self).map { Int($0) }
        case .uint8: return buffer(UInt8.self).map { Int($0) }
        case .uint16: return buffer(UInt16.self).map { Int($0) }
        case .uint32: return buffer(UInt32.self).map { Int($0) }
        case .uint64: return buffer(UInt64.self).map { Int(clamping: $0) }
        case .bool: return buffer(Bool.self).map { $0 ? 1 : 0 }
        default: throw EngineError(.typeMismatch, "expected an integer tensor, got \(dataType)")
        }
    }

    /// Values converted to Double (for scalars read by operators: alpha, start/limit, thresholds).
    public func doubleValues() throws -> [Double] {
        switch dataType {
        case .float32: return buffer(Float.self).map { Double($0) }
        case .float64: return Array(buffer(Double.self))
        case .float16: return buffer(Float16.self).map { Double($0) }
        case .bfloat16: return buffer(UInt16.self).map { Double(Float(bitPattern: UInt32($0) << 16)) }
        case .string: throw EngineError(.typeMismatch, "expected a numeric tensor, got string")
        default: return try intValues().map { Double($0) }
        }
    }
}

extension Tensor: CustomStringConvertible {
    public var description: String { "Tensor<\(dataType)>\(shape)" }
}
