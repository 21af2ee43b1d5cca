import Foundation

/// NumPy `.npy` files (format versions 1 to 3, C order, little-endian; `<U` strings as BYTES tensors).
extension Tensor {
    static let npyMagic: [UInt8] = [0x93, 0x4E, 0x55, 0x4D, 0x50, 0x59]

    /// Reads a `.npy` file.
    public init(npyFile url: URL) throws {
        let data: Data
        do {
            data = try Data(contentsOf: url)
        } catch {
            throw BlindAIClientError.invalidInput("cannot read \(url.path): \(error.localizedDescription)")
        }
        do {
            try self.init(npy: data)
        } catch let BlindAIClientError.invalidInput(m) {
            throw BlindAIClientError.invalidInput("\(url.path): \(m)")
        }
    }

    /// Decodes `.npy` bytes.
    public init(npy data: Data) throws {
        let bytes = [UInt8](data)
        guard bytes.count >= 10, Array(bytes[0..<6]) == Self.npyMagic else {
            throw BlindAIClientError.invalidInput("not a NumPy .npy file")
        }
        let major = bytes[6]
        let headerLength: Int
        let headerStart: Int
        switch major {
        case 1:
            headerLength = Int(bytes[8]) | Int(bytes[9]) << 8
            headerStart = 10
        case 2, 3:
            guard bytes.count >= 12 else { throw BlindAIClientError.invalidInput("truncated .npy header") }
            headerLength = Int(bytes[8]) | Int(bytes[9]) << 8 | Int(bytes[10]) << 16 | Int(bytes[11]) << 24
            headerStart = 12
        default:
            throw BlindAIClientError.invalidInput(".npy format version \(major) is not supported")
        }
        guard headerStart + headerLength <= bytes.count else { throw BlindAIClientError.invalidInput("truncated .npy header") }
        let header = String(decoding: bytes[headerStart..<(headerStart + headerLength)], as: UTF8.self)
        guard let descr = Self.headerValue("descr", header)?.trimmingCharacters(in: CharacterSet(charactersIn: "'\"")),
            let fortran = Self.headerValue("fortran_order", header), let shapeText = Self.headerValue("shape", header)
        else {
            throw BlindAIClientError.invalidInput(".npy header is malformed: \(header)")
        }
        guard fortran == "False" else {
            throw BlindAIClientError.invalidInput("Fortran-order .npy arrays are not supported: save with numpy.ascontiguousarray")
        }
        let dims = shapeText.trimmingCharacters(in: CharacterSet(charactersIn: "()")).split(separator: ",")
            .map { $0.trimmingCharacters(in: .whitespaces) }.filter { !$0.isEmpty }
        var shape: [Int] = []
        for d in dims {
            guard let v = Int(d), v >= 0 else { throw BlindAIClientError.invalidInput(".npy shape \(shapeText) is malformed") }
            shape.append(v)
        }
        let body = data.suffix(from: data.startIndex + headerStart + headerLength)
        let count = shape.reduce(1, *)
        if descr.hasPrefix("<U") || descr.hasPrefix("=U") || descr.hasPrefix("|U") {
            guard let width = Int(descr.dropFirst(2)), body.count == width * 4 * count else {
                throw BlindAIClientError.invalidInput(".npy string array \(descr) of shape \(shape) has \(body.count) bytes")
            }
            var strings: [String] = []
            var offset = body.startIndex
            for _ in 0..<count {
                var scalars = String.UnicodeScalarView()
                for k in 0..<width {
                    let i = offset + 4 * k
                    let v = UInt32(body[i]) | UInt32(body[i + 1]) << 8 | UInt32(body[i + 2]) << 16 | UInt32(body[i + 3]) << 24
                    if v == 0 { break }
                    guard let s = Unicode.Scalar(v) else { throw BlindAIClientError.invalidInput(".npy string holds an invalid code point") }
                    scalars.append(s)
                }
                strings.append(String(scalars))
                offset += 4 * width
            }
            try self.init(strings: strings, shape: shape)
            return
        }
        guard let datatype = Self.npyTypes.first(where: { $0.descr.contains(descr) })?.type else {
            if descr.hasPrefix(">") {
                throw BlindAIClientError.invalidInput(".npy array is big-endian (\(descr)): convert with array.astype(array.dtype.newbyteorder('<'))")
            }
            throw BlindAIClientError.invalidInput(".npy element type \(descr) is not supported")
        }
        try self.init(datatype: datatype, shape: shape, data: Data(body))
    }

    static let npyTypes: [(descr: [String], type: DataType)] = [
        (["<f4", "=f4"], .fp32), (["<f8", "=f8"], .fp64), (["<f2", "=f2"], .fp16),
        (["|i1", "<i1", "=i1"], .int8), (["<i2", "=i2"], .int16), (["<i4", "=i4"], .int32), (["<i8", "=i8"], .int64),
        (["|u1", "<u1", "=u1"], .uint8), (["<u2", "=u2"], .uint16), (["<u4", "=u4"], .uint32), (["<u8", "=u8"], .uint64),
        (["|b1", "<b1", "=b1", "?"], .bool),
    ]

    static func headerValue(_ key: String, _ header: String) -> String? {
        guard let k = header.range(of: "'\(key)'") ?? header.range(of: "\"\(key)\"") else { return nil }
        var rest = header[k.upperBound...].drop { $0 == " " || $0 == ":" }
        if rest.first == "(" {
            guard let close = rest.firstIndex(of: ")") else { return nil }
            return String(rest[...close])
        }
        rest = rest.prefix { $0 != "," && $0 != "}" }
        return rest.trimmingCharacters(in: .whitespaces)
    }

    /// Encodes the tensor as `.npy` (version 1.0; BYTES as `<U` strings).
    public func npy() throws -> Data {
        let descr: String
        var body: Data
        if datatype == .bytes {
            let strings = try self.strings()
            let width = max(1, strings.map { $0.unicodeScalars.count }.max() ?? 1)
            descr = "<U\(width)"
            body = Data(capacity: width * 4 * strings.count)
            for s in strings {
                var n = 0
                for u in s.unicodeScalars {
                    var v = u.value.littleEndian
                    withUnsafeBytes(of: &v) { body.append(contentsOf: $0) }
                    n += 1
                }
                body.append(contentsOf: [UInt8](repeating: 0, count: 4 * (width - n)))
            }
        } else {
            guard let d = Self.npyTypes.first(where: { $0.type == datatype })?.descr.first else {
                throw BlindAIClientError.invalidInput("a \(datatype.rawValue) tensor cannot be written as .npy")
            }
            descr = d
            body = data
        }
        let shapeText = shape.isEmpty ? "()" : (shape.count == 1 ? "(\(shape[0]),)" : "(\(shape.map(String.init).joined(separator: ", ")))")
        var header = "{'descr': '\(descr)', 'fortran_order': False, 'shape': \(shapeText), }"
        let unpadded = 10 + header.utf8.count + 1
        header += String(repeating: " ", count: (64 - unpadded % 64) % 64) + "\n"
        var out = Data(Self.npyMagic + [1, 0])
        let n = UInt16(header.utf8.count)
        out.append(UInt8(n & 0xFF))
        out.append(UInt8(n >> 8))
        out.append(contentsOf: header.utf8)
        out.append(body)
        return out
    }
}
