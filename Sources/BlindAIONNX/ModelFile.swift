import BlindAITensor
import Foundation
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Loading a model file without holding its weights twice.
///
/// Decoding the whole file with SwiftProtobuf copies every `raw_data` field into the decoded message while the
/// file is still mapped: for a moment the process holds every weight twice. Instead, the file is scanned at the
/// wire level: the `raw_data` payloads of the main graph's large initializers are cut out, the remaining
/// (small) message is decoded as usual, and each payload is then read from the file straight into its tensor's
/// aligned storage with `pread`. Weights are copied once (file → tensor) and never held twice. Anything
/// unusual in the wire format falls back to the plain decoder, which reports errors as before.
enum ModelFile {
    /// A `raw_data` payload left in the file: where it is, by index of its initializer in `graph.initializer`.
    struct RawPayloads {
        var byInitializer: [Int: (offset: Int, length: Int)] = [:]
    }

    /// Payloads smaller than this stay in the decoded message.
    static let minimumPayload = 4096

    // ModelProto.graph = 7, GraphProto.initializer = 5, TensorProto.raw_data = 9.
    static let modelGraphField = 7
    static let graphInitializerField = 5
    static let tensorRawDataField = 9

    /// The serialized model without the large initializer payloads, and where those payloads are; nil when the
    /// bytes are not a plain, well-formed message (the caller then decodes them as they are).
    static func strip(_ data: Data) -> (Data, RawPayloads)? {
        data.withUnsafeBytes { (raw: UnsafeRawBufferPointer) -> (Data, RawPayloads)? in
            guard let base = raw.baseAddress else { return nil }
            var scanner = Scanner(base: base.assumingMemoryBound(to: UInt8.self), count: raw.count)
            return scanner.stripModel()
        }
    }

    struct Scanner {
        let base: UnsafePointer<UInt8>
        let count: Int
        var payloads = RawPayloads()

        struct Field {
            let number: Int
            let wireType: Int
            let start: Int      // first byte of the tag
            let bodyStart: Int  // first byte of the value (after the length for length-delimited fields)
            let end: Int        // one past the last byte
        }

        func varint(_ at: inout Int, limit: Int) -> UInt64? {
            var v: UInt64 = 0
            var shift: UInt64 = 0
            while at < limit, shift < 64 {
                let b = base[at]
                at += 1
                v |= UInt64(b & 0x7F) << shift
                if b & 0x80 == 0 { return v }
                shift += 7
            }
            return nil
        }

        /// The fields of the message in bytes `range`, in order; nil when malformed or using groups.
        func fields(_ range: Range<Int>) -> [Field]? {
            var out: [Field] = []
            var at = range.lowerBound
            while at < range.upperBound {
                let start = at
                guard let tag = varint(&at, limit: range.upperBound), tag >> 3 > 0, tag >> 3 <= UInt64(Int32.max) else { return nil }
                let number = Int(tag >> 3), wire = Int(tag & 7)
                switch wire {
                case 0:
                    guard varint(&at, limit: range.upperBound) != nil else { return nil }
                    out.append(Field(number: number, wireType: wire, start: start, bodyStart: start, end: at))
                case 1, 5:
                    let n = wire == 1 ? 8 : 4
                    guard range.upperBound - at >= n else { return nil }
                    at += n
                    out.append(Field(number: number, wireType: wire, start: start, bodyStart: start, end: at))
                case 2:
                    guard let len = varint(&at, limit: range.upperBound), len <= UInt64(range.upperBound - at) else { return nil }
                    let body = at
                    at += Int(len)
                    out.append(Field(number: number, wireType: wire, start: start, bodyStart: body, end: at))
                default:
                    return nil
                }
            }
            return out
        }

        static func appendVarint(_ v: Int, to out: inout Data) {
            var x = UInt64(v)
            while x >= 0x80 {
                out.append(UInt8(x & 0x7F) | 0x80)
                x >>= 7
            }
            out.append(UInt8(x))
        }

        func copy(_ f: Field, to out: inout Data) {
            out.append(base + f.start, count: f.end - f.start)
        }

        /// Appends a length-delimited field `number` holding `body`.
        static func appendMessage(_ number: Int, _ body: Data, to out: inout Data) {
            appendVarint(number << 3 | 2, to: &out)
            appendVarint(body.count, to: &out)
            out.append(body)
        }

        mutating func stripModel() -> (Data, RawPayloads)? {
            guard let top = fields(0..<count) else { return nil }
            let graphs = top.filter { $0.number == ModelFile.modelGraphField }
            // Several `graph` fields would be merged by a decoder: leave such files to it.
            guard graphs.count == 1, graphs[0].wireType == 2 else { return nil }
            var out = Data()
            for f in top {
                if f.number == ModelFile.modelGraphField {
                    guard let g = stripGraph(f.bodyStart..<f.end) else { return nil }
                    Self.appendMessage(f.number, g, to: &out)
                } else {
                    copy(f, to: &out)
                }
            }
            return payloads.byInitializer.isEmpty ? nil : (out, payloads)
        }

        mutating func stripGraph(_ range: Range<Int>) -> Data? {
            guard let fs = fields(range) else { return nil }
            var out = Data()
            var index = 0
            for f in fs {
                if f.number == ModelFile.graphInitializerField && f.wireType == 2 {
                    guard let t = stripTensor(f.bodyStart..<f.end, index: index) else { return nil }
                    Self.appendMessage(f.number, t, to: &out)
                    index += 1
                } else {
                    copy(f, to: &out)
                }
            }
            return out
        }

        mutating func stripTensor(_ range: Range<Int>, index: Int) -> Data? {
            guard let fs = fields(range) else { return nil }
            let raws = fs.filter { $0.number == ModelFile.tensorRawDataField }
            guard raws.count == 1, raws[0].wireType == 2, raws[0].end - raws[0].bodyStart >= ModelFile.minimumPayload else {
                return Data(bytes: base + range.lowerBound, count: range.count)
            }
            var out = Data()
            for f in fs where f.number != ModelFile.tensorRawDataField { copy(f, to: &out) }
            payloads.byInitializer[index] = (raws[0].bodyStart, raws[0].end - raws[0].bodyStart)
            return out
        }
    }

    /// Reads payloads from the model file into tensors.
    final class PayloadReader {
        let fd: Int32
        let path: String
        let payloads: RawPayloads

        init(url: URL, payloads: RawPayloads) throws {
            path = url.path
            fd = open(url.path, O_RDONLY)
            guard fd >= 0 else { throw EngineError(.io, "cannot open model file '\(url.path)'") }
            self.payloads = payloads
        }

        deinit { close(fd) }

        /// The tensor of initializer `index` whose `raw_data` was left in the file, or nil when it was not.
        func tensor(_ p: Onnx_TensorProto, index: Int, limits: TensorLimits) throws -> Tensor? {
            // External data takes precedence over raw_data (as in `ONNXTensor.tensor(from:)`).
            guard let (offset, length) = payloads.byInitializer[index], p.dataLocation != .external else { return nil }
            guard let dt = DataType(rawValue: Int(p.dataType)), dt != .string else {
                throw EngineError(.invalidModel, "tensor '\(p.name)' has unsupported data type \(p.dataType)")
            }
            let shape = p.dims.map { Int($0) }
            let count = try limits.checkedCount(shape, dt)
            guard length == count * dt.byteSize else {
                throw EngineError(.invalidModel, "tensor '\(p.name)' has \(length) bytes of raw data, expected \(count * dt.byteSize) for \(dt) \(shape)")
            }
            let t = try Tensor(uninitialized: dt, shape: shape, limits: limits)
            var done = 0
            while done < length {
                let n = pread(fd, t.storage.base + done, length - done, off_t(offset + done))
                if n < 0 && errno == EINTR { continue }
                guard n > 0 else { throw EngineError(.io, "reading tensor '\(p.name)' from '\(path)' failed") }
                done += n
            }
            if dt == .bool { Tensor.canonicalizeBools(t.storage.base, count: count) }
            return t
        }
    }
}
