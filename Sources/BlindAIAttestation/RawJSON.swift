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
