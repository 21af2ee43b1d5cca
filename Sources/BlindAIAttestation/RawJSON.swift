import Foundation

/// Finds the exact bytes of a top-level member's value in a JSON object, without re-serializing.
/// Intel signs the bytes of the inner `"tcbInfo"` / `"enclaveIdentity"` object as served.
enum RawJSON {
    /// Top-level members of an object: key -> byte range of the value. Duplicate keys are rejected.
    static func topLevelMembers(_ b: [UInt8]) throws(AttestationError) -> [String: Range<Int>] {
        var i = 0
        func fail(_ why: String) -> AttestationError { AttestationError(.malformedCollateral, "collateral JSON: \(why) at byte \(i)") }
        func skipWS() { while i < b.count, b[i] == 0x20 || b[i] == 0x0A || b[i] == 0x0D || b[i] == 0x09 { i += 1 } }
        func scanString() throws(AttestationError) -> Range<Int> {
            guard i < b.count, b[i] == UInt8(ascii: "\"") else { throw fail("expected a string") }
            let start = i
            i += 1
            while i < b.count {
                if b[i] == UInt8(ascii: "\\") { i += 2; continue }
                if b[i] == UInt8(ascii: "\"") { i += 1; return start..<i }
                i += 1
            }
            throw fail("unterminated string")
        }
        func scanValue() throws(AttestationError) -> Range<Int> {
            skipWS()
            guard i < b.count else { throw fail("expected a value") }
            let start = i
            switch b[i] {
            case UInt8(ascii: "\""):
                return try scanString()
            case UInt8(ascii: "{"), UInt8(ascii: "["):
                var depth = 0
                while i < b.count {
                    switch b[i] {
                    case UInt8(ascii: "\""): _ = try scanString(); continue
                    case UInt8(ascii: "{"), UInt8(ascii: "["): depth += 1
                    case UInt8(ascii: "}"), UInt8(ascii: "]"):
                        depth -= 1
                        if depth == 0 { i += 1; return start..<i }
                    default: break
                    }
                    i += 1
                }
                throw fail("unbalanced brackets")
            default:
                while i < b.count, ![UInt8(ascii: ","), UInt8(ascii: "}"), UInt8(ascii: "]"), 0x20, 0x0A, 0x0D, 0x09].contains(b[i]) { i += 1 }
                guard i > start else { throw fail("empty value") }
                return start..<i
            }
        }

        var members = [String: Range<Int>]()
        skipWS()
        guard i < b.count, b[i] == UInt8(ascii: "{") else { throw fail("expected an object") }
        i += 1
        skipWS()
        if i < b.count, b[i] == UInt8(ascii: "}") { return members }
        while true {
            skipWS()
            let keyRange = try scanString()
            let key = String(decoding: b[(keyRange.lowerBound + 1)..<(keyRange.upperBound - 1)], as: UTF8.self)
            skipWS()
            guard i < b.count, b[i] == UInt8(ascii: ":") else { throw fail("expected ':'") }
            i += 1
            let value = try scanValue()
            guard members[key] == nil else { throw fail("duplicate member \"\(key)\"") }
            members[key] = value
            skipWS()
            guard i < b.count else { throw fail("unterminated object") }
            if b[i] == UInt8(ascii: ",") { i += 1; continue }
            if b[i] == UInt8(ascii: "}") { i += 1; break }
            throw fail("expected ',' or '}'")
        }
        skipWS()
        guard i == b.count else { throw fail("trailing data after the object") }
        return members
    }

    /// The signed object bytes and the hex signature of a PCS response such as `{"tcbInfo":{...},"signature":"..."}`.
    static func signedObject(_ b: [UInt8], key: String) throws(AttestationError) -> (body: [UInt8], signature: [UInt8]) {
        let members = try topLevelMembers(b)
        guard let bodyRange = members[key], b[bodyRange.lowerBound] == UInt8(ascii: "{") else {
            throw AttestationError(.malformedCollateral, "collateral JSON has no \"\(key)\" object")
        }
        guard let sigRange = members["signature"], b[sigRange.lowerBound] == UInt8(ascii: "\""),
            let sig = Hex.decode(String(decoding: b[(sigRange.lowerBound + 1)..<(sigRange.upperBound - 1)], as: UTF8.self)), sig.count == 64
        else {
            throw AttestationError(.malformedCollateral, "collateral JSON \"\(key)\" has no 64-byte hex \"signature\"")
        }
        return (Array(b[bodyRange]), sig)
    }
}

/// Duplicate member names anywhere in a JSON document. `JSONDecoder` silently keeps one of the duplicates, so
/// `{"allowDebug":true,"allowDebug":false}` would mean whatever it picks while a reader (or another verifier) sees
/// the other one; policies, evidence bundles and claims documents are refused instead (Intel-signed collateral is
/// authenticated and keeps `JSONDecoder`'s first-wins reading, see `RawJSON`).
///
/// Mirrors the Python verifier's `object_pairs_hook`: member names are compared as decoded code points (escapes
/// resolved, no Unicode normalization), and the duplicate reported is the one Python reports: objects are checked
/// as they close (inner before outer), members in document order.
enum JSONMemberCheck {
    enum Outcome: Equatable, Sendable {
        /// Every object's member names are distinct.
        case unique
        /// The first duplicate member name (as Python's `json` module reports it).
        case duplicate(String)
        /// The document could not be scanned (not JSON, or an encoding this scanner does not read); callers refuse
        /// it even if `JSONDecoder` reads it, so a duplicate can never hide behind a scanner limitation.
        case unreadable(String)
    }

    /// Nesting deeper than this is unreadable (`JSONDecoder` itself stops at 512).
    static let maximumDepth = 512

    static func check(_ data: some Collection<UInt8>) -> Outcome {
        guard let utf8 = utf8Text(Array(data)) else { return .unreadable("the text encoding is not UTF-8, UTF-16 or UTF-32") }
        var scanner = Scanner(b: utf8)
        do throws(Scanner.Stop) {
            scanner.skipWhitespace()
            try scanner.value(depth: 0)
            scanner.skipWhitespace()
            guard scanner.i == utf8.count else { throw scanner.fail("trailing data") }
            return .unique
        } catch {
            switch error {
            case .duplicate(let key): return .duplicate(String(String.UnicodeScalarView(key.map { Unicode.Scalar($0) ?? "\u{FFFD}" })))
            case .unreadable(let why): return .unreadable(why)
            }
        }
    }

    /// The document as UTF-8, detecting the encoding as Python's `json.detect_encoding` does.
    static func utf8Text(_ b: [UInt8]) -> [UInt8]? {
        func transcode(_ encoding: String.Encoding) -> [UInt8]? { String(data: Data(b), encoding: encoding).map { Array($0.utf8) } }
        if b.starts(with: [0x00, 0x00, 0xFE, 0xFF]) || b.starts(with: [0xFF, 0xFE, 0x00, 0x00]) { return transcode(.utf32) }
        if b.starts(with: [0xFE, 0xFF]) || b.starts(with: [0xFF, 0xFE]) { return transcode(.utf16) }
        if b.starts(with: [0xEF, 0xBB, 0xBF]) { return Array(b.dropFirst(3)) }
        if b.count >= 4 {
            if b[0] == 0 { return transcode(b[1] != 0 ? .utf16BigEndian : .utf32BigEndian) }
            if b[1] == 0 { return transcode(b[2] != 0 || b[3] != 0 ? .utf16LittleEndian : .utf32LittleEndian) }
        } else if b.count == 2 {
            if b[0] == 0 { return transcode(.utf16BigEndian) }
            if b[1] == 0 { return transcode(.utf16LittleEndian) }
        }
        return b
    }

    private struct Scanner {
        enum Stop: Error {
            case duplicate([UInt32])
            case unreadable(String)
        }

        let b: [UInt8]
        var i = 0

        init(b: [UInt8]) { self.b = b }

        mutating func skipWhitespace() { while i < b.count, b[i] == 0x20 || b[i] == 0x0A || b[i] == 0x0D || b[i] == 0x09 { i += 1 } }

        func fail(_ why: String) -> Stop { .unreadable("\(why) at byte \(i)") }

        static func isHexDigit(_ c: UInt8) -> Bool {
            (UInt8(ascii: "0")...UInt8(ascii: "9")).contains(c) || (UInt8(ascii: "a")...UInt8(ascii: "f")).contains(c)
                || (UInt8(ascii: "A")...UInt8(ascii: "F")).contains(c)
        }

        mutating func value(depth: Int) throws(Stop) {
            guard depth < JSONMemberCheck.maximumDepth else { throw fail("nesting deeper than \(JSONMemberCheck.maximumDepth)") }
            guard i < b.count else { throw fail("expected a value") }
            switch b[i] {
            case UInt8(ascii: "{"):
                i += 1
                var names = [[UInt32]]()
                skipWhitespace()
                if i < b.count, b[i] == UInt8(ascii: "}") {
                    i += 1
                    return
                }
                while true {
                    skipWhitespace()
                    names.append(try string())
                    skipWhitespace()
                    guard i < b.count, b[i] == UInt8(ascii: ":") else { throw fail("expected ':'") }
                    i += 1
                    skipWhitespace()
                    try value(depth: depth + 1)
                    skipWhitespace()
                    guard i < b.count else { throw fail("unterminated object") }
                    if b[i] == UInt8(ascii: ",") {
                        i += 1
                        continue
                    }
                    guard b[i] == UInt8(ascii: "}") else { throw fail("expected ',' or '}'") }
                    i += 1
                    break
                }
                var seen = Set<[UInt32]>()
                for name in names where !seen.insert(name).inserted { throw .duplicate(name) }
            case UInt8(ascii: "["):
                i += 1
                skipWhitespace()
                if i < b.count, b[i] == UInt8(ascii: "]") {
                    i += 1
                    return
                }
                while true {
                    skipWhitespace()
                    try value(depth: depth + 1)
                    skipWhitespace()
                    guard i < b.count else { throw fail("unterminated array") }
                    if b[i] == UInt8(ascii: ",") {
                        i += 1
                        continue
                    }
                    guard b[i] == UInt8(ascii: "]") else { throw fail("expected ',' or ']'") }
                    i += 1
                    break
                }
            case UInt8(ascii: "\""):
                _ = try string()
            default:
                // A number or a literal: their exact syntax is JSONDecoder's to check; only where they end matters here.
                let start = i
                while i < b.count, (UInt8(ascii: "a")...UInt8(ascii: "z")).contains(b[i]) || (UInt8(ascii: "0")...UInt8(ascii: "9")).contains(b[i])
                    || b[i] == UInt8(ascii: "-") || b[i] == UInt8(ascii: "+") || b[i] == UInt8(ascii: ".") || b[i] == UInt8(ascii: "E")
                {
                    i += 1
                }
                guard i > start else { throw fail("unexpected character") }
            }
        }

        /// A string's code points, escapes resolved as Python's `json` does (a surrogate pair of `\u` escapes is one
        /// code point; a lone surrogate stays a code point of its own).
        mutating func string() throws(Stop) -> [UInt32] {
            guard i < b.count, b[i] == UInt8(ascii: "\"") else { throw fail("expected a string") }
            i += 1
            var out = [UInt32]()
            var pendingHigh: UInt32?
            func flush() {
                if let h = pendingHigh { out.append(h) }
                pendingHigh = nil
            }
            while true {
                guard i < b.count else { throw fail("unterminated string") }
                let c = b[i]
                if c == UInt8(ascii: "\"") {
                    i += 1
                    flush()
                    return out
                }
                if c < 0x20 { throw fail("control character in a string") }
                if c == UInt8(ascii: "\\") {
                    guard i + 1 < b.count else { throw fail("unterminated escape") }
                    let e = b[i + 1]
                    i += 2
                    let simple: UInt32? =
                        switch e {
                        case UInt8(ascii: "\""): 0x22
                        case UInt8(ascii: "\\"): 0x5C
                        case UInt8(ascii: "/"): 0x2F
                        case UInt8(ascii: "b"): 0x08
                        case UInt8(ascii: "f"): 0x0C
                        case UInt8(ascii: "n"): 0x0A
                        case UInt8(ascii: "r"): 0x0D
                        case UInt8(ascii: "t"): 0x09
                        default: nil
                        }
                    if let simple {
                        flush()
                        out.append(simple)
                        continue
                    }
                    guard e == UInt8(ascii: "u"), i + 4 <= b.count, b[i..<(i + 4)].allSatisfy(Self.isHexDigit),
                        let u = UInt32(String(decoding: b[i..<(i + 4)], as: UTF8.self), radix: 16)
                    else { throw fail("invalid escape") }
                    i += 4
                    if let h = pendingHigh, (0xDC00...0xDFFF).contains(u) {
                        out.append(0x10000 + ((h - 0xD800) << 10) + (u - 0xDC00))
                        pendingHigh = nil
                    } else {
                        flush()
                        if (0xD800...0xDBFF).contains(u) { pendingHigh = u } else { out.append(u) }
                    }
                    continue
                }
                flush()
                // One UTF-8 sequence (the decoder refuses overlong forms, surrogates and truncated sequences).
                let length = c < 0x80 ? 1 : c >= 0xF0 ? 4 : c >= 0xE0 ? 3 : 2
                guard i + length <= b.count else { throw fail("invalid UTF-8") }
                var bytes = b[i..<(i + length)].makeIterator()
                var decoder = UTF8()
                guard case .scalarValue(let scalar) = decoder.decode(&bytes), bytes.next() == nil else { throw fail("invalid UTF-8") }
                out.append(scalar.value)
                i += length
            }
        }
    }
}
