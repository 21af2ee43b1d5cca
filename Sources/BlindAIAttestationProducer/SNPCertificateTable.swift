import Foundation

/// The SEV-SNP extended-report certificate table (GHCB specification): entries of
/// { GUID (16 bytes), offset u32 LE, length u32 LE } ending with an all-zero entry; offsets are from the
/// start of the table. GUIDs are in RFC 4122 byte order.
public struct SNPCertificateTable: Sendable, Equatable {
    public enum Kind: String, Sendable, CaseIterable {
        case vcek, vlek, ask, ark, crl

        public var guid: String {
            switch self {
            case .vcek: return "63da758d-e664-4564-adc5-f4b93be8accd"
            case .vlek: return "a8074bc2-a25a-483e-aae6-39c045a0b8a1"
            case .ask: return "4ab7b379-bbac-4fe4-a02f-05aef327c782"
            case .ark: return "c0b406a4-a803-4952-9743-3fb6014cd0ae"
            case .crl: return "92f81bc3-5811-4d3d-97ff-d19f88dc67ea"
            }
        }

        var guidBytes: [UInt8] { SNPCertificateTable.bytes(ofGUID: guid) }

        /// The same GUID in the mixed-endian (Microsoft/EFI) layout some hosts emit.
        var mixedEndianGUIDBytes: [UInt8] {
            let b = guidBytes
            return Array(b[0..<4].reversed()) + Array(b[4..<6].reversed()) + Array(b[6..<8].reversed()) + Array(b[8...])
        }
    }

    /// Known entries by kind; unknown GUIDs are kept by their text.
    public var entries: [Kind: [UInt8]]
    public var unknown: [String: [UInt8]]

    public init(entries: [Kind: [UInt8]], unknown: [String: [UInt8]] = [:]) {
        self.entries = entries
        self.unknown = unknown
    }

    static func bytes(ofGUID text: String) -> [UInt8] {
        let hex = text.replacingOccurrences(of: "-", with: "")
        var out = [UInt8]()
        var i = hex.startIndex
        while i < hex.endIndex {
            let j = hex.index(i, offsetBy: 2)
            out.append(UInt8(hex[i..<j], radix: 16) ?? 0)
            i = j
        }
        return out
    }

    static func text(ofGUID b: [UInt8]) -> String {
        let h = b.map { String(format: "%02x", $0) }.joined()
        let c = Array(h)
        return String(c[0..<8]) + "-" + String(c[8..<12]) + "-" + String(c[12..<16]) + "-" + String(c[16..<20]) + "-" + String(c[20..<32])
    }

    public init(bytes: [UInt8]) throws(EvidenceProviderError) {
        var entries = [Kind: [UInt8]]()
        var unknown = [String: [UInt8]]()
        var i = 0
        func u32(_ o: Int) -> Int { Int(bytes[o]) | Int(bytes[o + 1]) << 8 | Int(bytes[o + 2]) << 16 | Int(bytes[o + 3]) << 24 }
        while true {
            guard i + 24 <= bytes.count else {
                throw EvidenceProviderError(.malformedOutput, "SNP certificate table has no terminating entry within \(bytes.count) bytes")
            }
            let guid = Array(bytes[i..<(i + 16)])
            let offset = u32(i + 16)
            let length = u32(i + 20)
            if guid.allSatisfy({ $0 == 0 }) { break }
            guard offset >= 0, length >= 0, offset <= bytes.count, bytes.count - offset >= length, offset >= i + 24 else {
                throw EvidenceProviderError(
                    .malformedOutput, "SNP certificate table entry \(SNPCertificateTable.text(ofGUID: guid)) points outside the table (\(offset)+\(length))")
            }
            let blob = Array(bytes[offset..<(offset + length)])
            if let kind = Kind.allCases.first(where: { $0.guidBytes == guid || $0.mixedEndianGUIDBytes == guid }) {
                entries[kind] = blob
            } else {
                unknown[SNPCertificateTable.text(ofGUID: guid)] = blob
            }
            i += 24
        }
        self.entries = entries
        self.unknown = unknown
    }

    /// Serializes the table (used by the simulated TEE and tests).
    public func encoded() -> [UInt8] {
        let ordered = Kind.allCases.compactMap { k in entries[k].map { (k.guidBytes, $0) } }
        var header = [UInt8]()
        var body = [UInt8]()
        let headerSize = (ordered.count + 1) * 24
        for (guid, blob) in ordered {
            header += guid
            let off = UInt32(headerSize + body.count)
            let len = UInt32(blob.count)
            header += withUnsafeBytes(of: off.littleEndian, Array.init) + withUnsafeBytes(of: len.littleEndian, Array.init)
            body += blob
        }
        header += [UInt8](repeating: 0, count: 24)
        return header + body
    }

    /// VCEK/VLEK first, then ASK, then ARK: the order the verifier's evidence bundle expects.
    public var certificateChain: [[UInt8]] {
        [entries[.vcek] ?? entries[.vlek], entries[.ask], entries[.ark]].compactMap { $0 }
    }
}
