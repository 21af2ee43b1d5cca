import Crypto
import Foundation
import SwiftASN1
import _CryptoExtras

/// Builds DER X.509 v3 certificates in AMD's format (RSASSA-PSS SHA-384 signatures) with swift-asn1.
struct AMDStyleCertificateBuilder {
    enum Key {
        case rsa(_RSA.Signing.PublicKey)
        case p384(P384.Signing.PublicKey)

        var spki: [UInt8] {
            switch self {
            case .rsa(let k): return [UInt8](k.derRepresentation)
            case .p384(let k): return [UInt8](k.derRepresentation)
            }
        }
    }

    enum ExtensionValue {
        case integer(Int)
        case ia5String(String)
        case raw([UInt8])
        case basicConstraintsCA
    }

    static let rsassaPSS: ASN1ObjectIdentifier = [1, 2, 840, 113549, 1, 1, 10]
    static let sha384: ASN1ObjectIdentifier = [2, 16, 840, 1, 101, 3, 4, 2, 2]
    static let mgf1: ASN1ObjectIdentifier = [1, 2, 840, 113549, 1, 1, 8]

    /// AlgorithmIdentifier { rsassaPss, { [0] sha384, [1] mgf1(sha384), [2] 48, [3] 1 } } as AMD writes it.
    static func pssAlgorithm(_ s: inout DER.Serializer) throws {
        try s.appendConstructedNode(identifier: .sequence) { s in
            try s.serialize(rsassaPSS)
            try s.appendConstructedNode(identifier: .sequence) { s in
                try s.serialize(explicitlyTaggedWithTagNumber: 0, tagClass: .contextSpecific) { s in
                    try s.appendConstructedNode(identifier: .sequence) { s in
                        try s.serialize(sha384)
                        try s.serialize(ASN1Null())
                    }
                }
                try s.serialize(explicitlyTaggedWithTagNumber: 1, tagClass: .contextSpecific) { s in
                    try s.appendConstructedNode(identifier: .sequence) { s in
                        try s.serialize(mgf1)
                        try s.appendConstructedNode(identifier: .sequence) { s in
                            try s.serialize(sha384)
                            try s.serialize(ASN1Null())
                        }
                    }
                }
                try s.serialize(explicitlyTaggedWithTagNumber: 2, tagClass: .contextSpecific) { s in try s.serialize(48) }
                try s.serialize(explicitlyTaggedWithTagNumber: 3, tagClass: .contextSpecific) { s in try s.serialize(1) }
            }
        }
    }

    static func name(_ s: inout DER.Serializer, commonName: String) throws {
        let attrs: [(ASN1ObjectIdentifier, String)] = [
            ([2, 5, 4, 11], "Engineering"), ([2, 5, 4, 6], "US"), ([2, 5, 4, 7], "Santa Clara"), ([2, 5, 4, 8], "CA"),
            ([2, 5, 4, 10], "BlindAI Simulation (not Advanced Micro Devices)"), ([2, 5, 4, 3], commonName),
        ]
        try s.appendConstructedNode(identifier: .sequence) { s in
            for (oid, value) in attrs {
                try s.appendConstructedNode(identifier: .set) { s in
                    try s.appendConstructedNode(identifier: .sequence) { s in
                        try s.serialize(oid)
                        try s.serialize(ASN1UTF8String(value))
                    }
                }
            }
        }
    }

    static func time(_ s: inout DER.Serializer, _ date: Date) throws {
        let c = Calendar(identifier: .gregorian).dateComponents(in: TimeZone(identifier: "UTC")!, from: date)
        let (y, mo, d, h, mi, se) = (c.year!, c.month!, c.day!, c.hour!, c.minute!, c.second!)
        if (1950..<2050).contains(y) {
            try s.serialize(try UTCTime(year: y, month: mo, day: d, hours: h, minutes: mi, seconds: se))
        } else {
            try s.serialize(try GeneralizedTime(year: y, month: mo, day: d, hours: h, minutes: mi, seconds: se, fractionalSeconds: 0))
        }
    }

    /// A DER certificate signed with RSASSA-PSS SHA-384 (salt 48) by `issuerKey`.
    static func build(
        serial: Int, issuerCN: String, subjectCN: String, notBefore: Date, notAfter: Date, subjectKey: Key,
        extensions: [(String, ExtensionValue)], issuerKey: _RSA.Signing.PrivateKey
    ) throws -> [UInt8] {
        var tbs = DER.Serializer()
        try tbs.appendConstructedNode(identifier: .sequence) { s in
            try s.serialize(explicitlyTaggedWithTagNumber: 0, tagClass: .contextSpecific) { s in try s.serialize(2) }
            try s.serialize(serial)
            try pssAlgorithm(&s)
            try name(&s, commonName: issuerCN)
            try s.appendConstructedNode(identifier: .sequence) { s in
                try time(&s, notBefore)
                try time(&s, notAfter)
            }
            try name(&s, commonName: subjectCN)
            s.serializeRawBytes(subjectKey.spki)
            if !extensions.isEmpty {
                try s.serialize(explicitlyTaggedWithTagNumber: 3, tagClass: .contextSpecific) { s in
                    try s.appendConstructedNode(identifier: .sequence) { s in
                        for (oidText, value) in extensions {
                            try s.appendConstructedNode(identifier: .sequence) { s in
                                try s.serialize(try ASN1ObjectIdentifier(dotRepresentation: oidText))
                                var inner = DER.Serializer()
                                var critical = false
                                switch value {
                                case .integer(let i): try inner.serialize(i)
                                case .ia5String(let t): try inner.serialize(ASN1IA5String(t))
                                case .raw(let b): inner.serializeRawBytes(b)
                                case .basicConstraintsCA:
                                    critical = true
                                    try inner.appendConstructedNode(identifier: .sequence) { s in try s.serialize(true) }
                                }
                                if critical { try s.serialize(true) }
                                try s.serialize(ASN1OctetString(contentBytes: inner.serializedBytes[...]))
                            }
                        }
                    }
                }
            }
        }
        return try signed(tbs.serializedBytes, by: issuerKey)
    }

    /// A DER X.509 v2 CRL (as AMD KDS serves for an ARK) signed with RSASSA-PSS SHA-384 by `issuerKey`.
    static func buildCRL(
        issuerCN: String, thisUpdate: Date, nextUpdate: Date, revoked: [(serial: Int, date: Date)], issuerKey: _RSA.Signing.PrivateKey
    ) throws -> [UInt8] {
        var tbs = DER.Serializer()
        try tbs.appendConstructedNode(identifier: .sequence) { s in
            try s.serialize(1)  // v2
            try pssAlgorithm(&s)
            try name(&s, commonName: issuerCN)
            try time(&s, thisUpdate)
            try time(&s, nextUpdate)
            if !revoked.isEmpty {
                try s.appendConstructedNode(identifier: .sequence) { s in
                    for entry in revoked {
                        try s.appendConstructedNode(identifier: .sequence) { s in
                            try s.serialize(entry.serial)
                            try time(&s, entry.date)
                        }
                    }
                }
            }
        }
        return try signed(tbs.serializedBytes, by: issuerKey)
    }

    /// SEQUENCE { tbs, RSASSA-PSS SHA-384 AlgorithmIdentifier, BIT STRING signature }.
    private static func signed(_ tbsBytes: [UInt8], by issuerKey: _RSA.Signing.PrivateKey) throws -> [UInt8] {
        let signature = try issuerKey.signature(for: SHA384.hash(data: tbsBytes), padding: .PSS)
        var out = DER.Serializer()
        try out.appendConstructedNode(identifier: .sequence) { s in
            s.serializeRawBytes(tbsBytes)
            try pssAlgorithm(&s)
            try s.serialize(ASN1BitString(bytes: [UInt8](signature.rawRepresentation)[...]))
        }
        return out.serializedBytes
    }
}
