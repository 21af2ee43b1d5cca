import Foundation

enum Hex {
    static func encode<C: Collection>(_ bytes: C) -> String where C.Element == UInt8 {
        let digits = Array("0123456789abcdef".utf8)
        var out = [UInt8]()
        out.reserveCapacity(bytes.count * 2)
        for b in bytes {
            out.append(digits[Int(b >> 4)])
            out.append(digits[Int(b & 0x0F)])
        }
        return String(decoding: out, as: UTF8.self)
    }

    static func decode(_ text: String) -> [UInt8]? {
        let utf8 = Array(text.utf8)
        guard utf8.count % 2 == 0 else { return nil }
        var out = [UInt8]()
        out.reserveCapacity(utf8.count / 2)
        var i = 0
        while i < utf8.count {
            guard let hi = nibble(utf8[i]), let lo = nibble(utf8[i + 1]) else { return nil }
            out.append(hi << 4 | lo)
            i += 2
        }
        return out
    }

    private static func nibble(_ c: UInt8) -> UInt8? {
        switch c {
        case UInt8(ascii: "0")...UInt8(ascii: "9"): return c - UInt8(ascii: "0")
        case UInt8(ascii: "a")...UInt8(ascii: "f"): return c - UInt8(ascii: "a") + 10
        case UInt8(ascii: "A")...UInt8(ascii: "F"): return c - UInt8(ascii: "A") + 10
        default: return nil
        }
    }

    /// A short form for error messages: first 4 and last 2 bytes.
    static func abbreviated<C: Collection>(_ bytes: C) -> String where C.Element == UInt8 {
        let a = Array(bytes)
        if a.count <= 8 { return encode(a) }
        return encode(a.prefix(4)) + "…" + encode(a.suffix(2))
    }
}

/// Bounds-checked little-endian reads from a byte buffer.
struct ByteReader {
    let bytes: [UInt8]

    init(_ bytes: [UInt8]) { self.bytes = bytes }

    func slice(_ offset: Int, _ count: Int) throws(AttestationError) -> [UInt8] {
        guard offset >= 0, count >= 0, offset <= bytes.count, bytes.count - offset >= count else {
            throw AttestationError(.malformedEvidence, "read of \(count) bytes at offset \(offset) exceeds the \(bytes.count)-byte buffer")
        }
        return Array(bytes[offset..<(offset + count)])
    }

    func u8(_ offset: Int) throws(AttestationError) -> UInt8 { try slice(offset, 1)[0] }

    func u16(_ offset: Int) throws(AttestationError) -> UInt16 {
        let s = try slice(offset, 2)
        return UInt16(s[0]) | UInt16(s[1]) << 8
    }

    func u32(_ offset: Int) throws(AttestationError) -> UInt32 {
        let s = try slice(offset, 4)
        return s.reversed().reduce(UInt32(0)) { $0 << 8 | UInt32($1) }
    }

    func u64(_ offset: Int) throws(AttestationError) -> UInt64 {
        let s = try slice(offset, 8)
        return s.reversed().reduce(UInt64(0)) { $0 << 8 | UInt64($1) }
    }
}

enum PEM {
    /// Every `-----BEGIN <label>-----` block's DER bytes, in order.
    static func decodeAll(_ text: String, label: String = "CERTIFICATE") -> [[UInt8]] {
        let begin = "-----BEGIN \(label)-----"
        let end = "-----END \(label)-----"
        var result = [[UInt8]]()
        var rest = Substring(text)
        while let b = rest.range(of: begin) {
            guard let e = rest.range(of: end, range: b.upperBound..<rest.endIndex) else { break }
            let body = rest[b.upperBound..<e.lowerBound].filter { !$0.isWhitespace }
            if let data = Data(base64Encoded: String(body)) {
                result.append([UInt8](data))
            }
            rest = rest[e.upperBound...]
        }
        return result
    }

    static func encode(_ der: [UInt8], label: String = "CERTIFICATE") -> String {
        let b64 = Data(der).base64EncodedString(options: [.lineLength64Characters, .endLineWithLineFeed])
        return "-----BEGIN \(label)-----\n\(b64)\n-----END \(label)-----\n"
    }
}

func constantTimeEqual(_ a: [UInt8], _ b: [UInt8]) -> Bool {
    guard a.count == b.count else { return false }
    var diff: UInt8 = 0
    for i in 0..<a.count { diff |= a[i] ^ b[i] }
    return diff == 0
}
