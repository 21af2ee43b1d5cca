import Foundation

/// A `.npy` file that cannot be read or written: what is wrong with it, for a person.
public struct NPYError: Error, Sendable, Equatable, CustomStringConvertible {
    public let reason: String
    public init(_ reason: String) { self.reason = reason }
    public var description: String { reason }
}

/// The element types a `.npy` file may hold here: NumPy's little-endian (or byte-sized) numbers and booleans, and
/// fixed-width Unicode strings (`<U`, UTF-32 code points padded with zeros).
public enum NPYElement: Sendable, Hashable {
    case float16, float32, float64
    case int8, int16, int32, int64
    case uint8, uint16, uint32, uint64
    case bool
    /// `<U<width>`: each element is `width` UTF-32LE code points, zero-padded.
    case unicode(width: Int)

    /// Bytes per element.
    public var itemSize: Int {
        switch self {
        case .int8, .uint8, .bool: 1
        case .float16, .int16, .uint16: 2
        case .float32, .int32, .uint32: 4
        case .float64, .int64, .uint64: 8
        case .unicode(let width): 4 * width
        }
    }

    /// The header's `descr` for this element type (the one NumPy writes on a little-endian machine).
    public var descr: String {
        switch self {
        case .float16: "<f2"
        case .float32: "<f4"
        case .float64: "<f8"
        case .int8: "|i1"
        case .int16: "<i2"
        case .int32: "<i4"
        case .int64: "<i8"
        case .uint8: "|u1"
        case .uint16: "<u2"
        case .uint32: "<u4"
        case .uint64: "<u8"
        case .bool: "|b1"
        case .unicode(let width): "<U\(width)"
        }
    }

    /// Every fixed-size element type (all but `.unicode`).
    public static let fixedSize: [NPYElement] = Array(numeric.values)

    static let numeric: [String: NPYElement] = [
        "f2": .float16, "f4": .float32, "f8": .float64,
        "i1": .int8, "i2": .int16, "i4": .int32, "i8": .int64,
        "u1": .uint8, "u2": .uint16, "u4": .uint32, "u8": .uint64,
        "b1": .bool,
    ]

    /// Parses a `descr` string: byte order `<`, `=` (this machine: little-endian) or `|` (not applicable), then a
    /// kind and a size; `?` alone is a boolean. Big-endian arrays are refused with the conversion to use.
    public init(descr: String) throws(NPYError) {
        if descr == "?" {
            self = .bool
            return
        }
        guard let order = descr.first, "<=|>".contains(order), descr.count >= 3 else {
            throw NPYError(".npy element type '\(descr)' is not supported")
        }
        let body = String(descr.dropFirst())
        if body.hasPrefix("U") {
            guard order != ">" else {
                throw NPYError(".npy array is big-endian (\(descr)): convert with array.astype(array.dtype.newbyteorder('<'))")
            }
            guard let width = Int(body.dropFirst()), width >= 1, width <= 1 << 24 else {
                throw NPYError(".npy string type '\(descr)' has no usable width")
            }
            self = .unicode(width: width)
            return
        }
        guard let element = Self.numeric[body] else {
            throw NPYError(".npy element type '\(descr)' is not supported")
        }
        if order == ">" && element.itemSize > 1 {
            throw NPYError(".npy array is big-endian (\(descr)): convert with array.astype(array.dtype.newbyteorder('<'))")
        }
        self = element
    }
}

/// The contents of a `.npy` file: element type, shape (C order) and the elements' bytes, little-endian.
public struct NPYArray: Sendable, Equatable {
    public var element: NPYElement
    public var shape: [Int]
    /// Exactly `count * element.itemSize` bytes.
    public var body: Data

    public init(element: NPYElement, shape: [Int], body: Data) {
        self.element = element
        self.shape = shape
        self.body = body
    }

    /// A `<U` array of these strings (the width is the longest string's, at least 1).
    public init(strings: [String], shape: [Int]) {
        let width = max(1, strings.map { $0.unicodeScalars.count }.max() ?? 1)
        var body = Data(capacity: width * 4 * strings.count)
        for s in strings {
            var n = 0
            for u in s.unicodeScalars {
                let v = u.value
                body.append(contentsOf: [UInt8(v & 0xFF), UInt8(v >> 8 & 0xFF), UInt8(v >> 16 & 0xFF), UInt8(v >> 24)])
                n += 1
            }
            body.append(contentsOf: [UInt8](repeating: 0, count: 4 * (width - n)))
        }
        self.init(element: .unicode(width: width), shape: shape, body: body)
    }

    /// The strings of a `<U` array (trailing zero code points removed, as NumPy does).
    public func strings() throws(NPYError) -> [String] {
        guard case .unicode(let width) = element else { throw NPYError("the .npy array holds \(element.descr), not strings") }
        var count = 1
        for d in shape {
            let (c, o) = count.multipliedReportingOverflow(by: d)
            guard d >= 0, !o else { throw NPYError("the .npy shape \(shape) is malformed") }
            count = c
        }
        let (need, o) = count.multipliedReportingOverflow(by: 4 * width)
        guard !o, body.count >= need else { throw NPYError("the .npy string array has \(body.count) bytes for shape \(shape)") }
        var strings: [String] = []
        strings.reserveCapacity(count)
        var offset = body.startIndex
        for _ in 0..<count {
            var scalars = String.UnicodeScalarView()
            for k in 0..<width {
                let i = offset + 4 * k
                let v = UInt32(body[i]) | UInt32(body[i + 1]) << 8 | UInt32(body[i + 2]) << 16 | UInt32(body[i + 3]) << 24
                if v == 0 { break }
                guard let s = Unicode.Scalar(v) else { throw NPYError(".npy string holds an invalid code point") }
                scalars.append(s)
            }
            strings.append(String(scalars))
            offset += 4 * width
        }
        return strings
    }
}

/// NumPy's `.npy` format, versions 1.0 to 3.0, C order: the one codec of the project (the engine's tensors and
/// the client's tensors convert to and from `NPYArray`). Headers are Latin-1 in versions 1 and 2 and UTF-8 in
/// version 3, as the format specifies. Nothing here traps on hostile input: sizes are checked arithmetic.
public enum NPYFile {
    static let magic: [UInt8] = [0x93, 0x4E, 0x55, 0x4D, 0x50, 0x59]
    /// Longest header accepted (NumPy itself refuses headers over 10,000 bytes by default).
    public static let maxHeaderBytes = 1 << 20

    /// Decodes a file's bytes. `maxBodyBytes` bounds the size the header may declare (before any allocation).
    public static func decode(_ data: Data, maxBodyBytes: Int = .max) throws(NPYError) -> NPYArray {
        let prefix = [UInt8](data.prefix(12))
        guard prefix.count >= 10, Array(prefix[0..<6]) == magic else { throw NPYError("not a NumPy .npy file (bad magic)") }
        let major = prefix[6]
        let headerLength: Int
        let headerStart: Int
        switch major {
        case 1:
            headerLength = Int(prefix[8]) | Int(prefix[9]) << 8
            headerStart = 10
        case 2, 3:
            guard prefix.count >= 12 else { throw NPYError("truncated .npy header") }
            headerLength = Int(prefix[8]) | Int(prefix[9]) << 8 | Int(prefix[10]) << 16 | Int(prefix[11]) << 24
            headerStart = 12
        default:
            throw NPYError(".npy format version \(major) is not supported")
        }
        guard headerLength <= maxHeaderBytes else { throw NPYError(".npy header of \(headerLength) bytes is too long") }
        guard data.count - headerStart >= headerLength else { throw NPYError("truncated .npy header") }
        let headerBytes = data.subdata(in: data.startIndex + headerStart ..< data.startIndex + headerStart + headerLength)
        guard let header = String(data: headerBytes, encoding: major == 3 ? .utf8 : .isoLatin1) else {
            throw NPYError("unreadable .npy header")
        }
        guard let descrText = value(of: "descr", in: header) else { throw NPYError(".npy header has no descr: \(header.prefix(200))") }
        let element = try NPYElement(descr: descrText.trimmingCharacters(in: CharacterSet(charactersIn: "'\" ")))
        guard let fortran = value(of: "fortran_order", in: header) else {
            throw NPYError(".npy header has no fortran_order: \(header.prefix(200))")
        }
        guard fortran == "False" else {
            throw NPYError(".npy arrays in Fortran order are not supported: save with numpy.ascontiguousarray")
        }
        guard let shapeText = value(of: "shape", in: header), shapeText.hasPrefix("("), shapeText.hasSuffix(")") else {
            throw NPYError(".npy header has no shape: \(header.prefix(200))")
        }
        let dims = shapeText.dropFirst().dropLast().split(separator: ",", omittingEmptySubsequences: false)
            .map { $0.trimmingCharacters(in: .whitespaces) }
        var shape: [Int] = []
        var count = 1
        for (i, d) in dims.enumerated() {
            if d.isEmpty && i == dims.count - 1 && i > 0 { break }  // "(3,)": the trailing comma of a 1-tuple
            if d.isEmpty && dims.count == 1 { break }  // "()": a scalar
            guard let v = Int(d), v >= 0 else { throw NPYError(".npy shape \(shapeText) is malformed") }
            let (c, o) = count.multipliedReportingOverflow(by: v)
            guard !o else { throw NPYError(".npy shape \(shapeText) has too many elements") }
            shape.append(v)
            count = c
        }
        let (byteCount, o) = count.multipliedReportingOverflow(by: element.itemSize)
        guard !o, byteCount <= maxBodyBytes else {
            throw NPYError(".npy shape \(shapeText) of \(element.descr) is over the size limit")
        }
        let start = headerStart + headerLength
        guard data.count - start >= byteCount else {
            throw NPYError(".npy data is truncated: expected \(byteCount) bytes, found \(data.count - start)")
        }
        let body = data.subdata(in: data.startIndex + start ..< data.startIndex + start + byteCount)
        return NPYArray(element: element, shape: shape, body: body)
    }

    /// Encodes an array as a version 1.0 file (3.0 only if the header needs more than 64 KiB, never in practice).
    public static func encode(_ array: NPYArray) -> Data {
        let shapeText = array.shape.isEmpty ? "()"
            : array.shape.count == 1 ? "(\(array.shape[0]),)" : "(" + array.shape.map(String.init).joined(separator: ", ") + ")"
        var header = "{'descr': '\(array.element.descr)', 'fortran_order': False, 'shape': \(shapeText), }"
        let long = 10 + header.utf8.count + 1 > 0xFFFF
        let prefixLength = long ? 12 : 10
        let unpadded = prefixLength + header.utf8.count + 1
        header += String(repeating: " ", count: (64 - unpadded % 64) % 64) + "\n"
        let n = header.utf8.count
        var out = Data(magic + (long ? [3, 0] : [1, 0]))
        out.append(contentsOf: [UInt8(n & 0xFF), UInt8(n >> 8 & 0xFF)])
        if long { out.append(contentsOf: [UInt8(n >> 16 & 0xFF), UInt8(n >> 24 & 0xFF)]) }
        out.append(contentsOf: Array(header.utf8))
        out.append(array.body)
        return out
    }

    /// Finds `'key': value` in a header dictionary; a tuple value runs to its `)`, any other to the next top-level
    /// comma or the closing brace.
    static func value(of key: String, in header: String) -> String? {
        guard let r = header.range(of: "'\(key)'") ?? header.range(of: "\"\(key)\"") else { return nil }
        var rest = header[r.upperBound...].drop { $0 == " " || $0 == ":" }
        if rest.first == "(" {
            guard let close = rest.firstIndex(of: ")") else { return nil }
            return String(rest[...close])
        }
        rest = rest.prefix { $0 != "," && $0 != "}" }
        return rest.trimmingCharacters(in: .whitespaces)
    }
}
