import Foundation

/// The TD report body carried by a TDX quote (TD 1.0: 584 bytes; TD 1.5 adds TEE_TCB_SVN2 and MRSERVICETD: 648 bytes).
public struct TDReportBody: Sendable {
    public let teeTCBSVN: [UInt8]
    public let mrSeam: [UInt8]
    public let mrSignerSeam: [UInt8]
    public let seamAttributes: [UInt8]
    public let tdAttributes: [UInt8]
    public let xfam: [UInt8]
    public let mrTD: [UInt8]
    public let mrConfigID: [UInt8]
    public let mrOwner: [UInt8]
    public let mrOwnerConfig: [UInt8]
    public let rtmrs: [[UInt8]]
    public let reportData: [UInt8]
    /// TD 1.5 only.
    public let teeTCBSVN2: [UInt8]?
    public let mrServiceTD: [UInt8]?

    /// TD_ATTRIBUTES bit 0.
    public var isDebug: Bool { tdAttributes[0] & 0x01 != 0 }
    /// TD_ATTRIBUTES as a little-endian 64-bit value.
    public var tdAttributesValue: UInt64 { tdAttributes.reversed().reduce(0) { $0 << 8 | UInt64($1) } }

    init(_ r: ByteReader, at o: Int, tdx15: Bool) throws(AttestationError) {
        teeTCBSVN = try r.slice(o, 16)
        mrSeam = try r.slice(o + 16, 48)
        mrSignerSeam = try r.slice(o + 64, 48)
        seamAttributes = try r.slice(o + 112, 8)
        tdAttributes = try r.slice(o + 120, 8)
        xfam = try r.slice(o + 128, 8)
        mrTD = try r.slice(o + 136, 48)
        mrConfigID = try r.slice(o + 184, 48)
        mrOwner = try r.slice(o + 232, 48)
        mrOwnerConfig = try r.slice(o + 280, 48)
        var rt = [[UInt8]]()
        for i in 0..<4 { rt.append(try r.slice(o + 328 + 48 * i, 48)) }
        rtmrs = rt
        reportData = try r.slice(o + 520, 64)
        if tdx15 {
            teeTCBSVN2 = try r.slice(o + 584, 16)
            mrServiceTD = try r.slice(o + 600, 48)
        } else {
            teeTCBSVN2 = nil
            mrServiceTD = nil
        }
    }
}

/// The SGX report of the Quoting Enclave (384 bytes).
public struct SGXEnclaveReport: Sendable {
    public let rawBytes: [UInt8]
    public let cpuSVN: [UInt8]
    public let miscSelect: UInt32
    public let attributes: [UInt8]
    public let mrEnclave: [UInt8]
    public let mrSigner: [UInt8]
    public let isvProdID: UInt16
    public let isvSVN: UInt16
    public let reportData: [UInt8]

    init(_ bytes: [UInt8]) throws(AttestationError) {
        let r = ByteReader(bytes)
        rawBytes = bytes
        cpuSVN = try r.slice(0, 16)
        miscSelect = try r.u32(16)
        attributes = try r.slice(48, 16)
        mrEnclave = try r.slice(64, 32)
        mrSigner = try r.slice(128, 32)
        isvProdID = try r.u16(256)
        isvSVN = try r.u16(258)
        reportData = try r.slice(320, 64)
    }
}

/// An Intel TDX quote, version 4 or 5 (body types 2 and 3), with ECDSA-P256 attestation key and
/// QE-report certification data (type 6) wrapping the PCK certificate chain (type 5).
public struct TDXQuote: Sendable {
    public let version: UInt16
    public let attestationKeyType: UInt16
    public let teeType: UInt32
    public let qeVendorID: [UInt8]
    /// 2 = TD 1.0, 3 = TD 1.5 (v5 quotes); v4 quotes are TD 1.0.
    public let bodyType: UInt16
    public let body: TDReportBody
    /// Header and body: the bytes the attestation key signs.
    public let signedBytes: [UInt8]
    public let signature: [UInt8]
    public let attestationKey: [UInt8]
    public let qeReport: SGXEnclaveReport
    public let qeReportSignature: [UInt8]
    public let qeAuthData: [UInt8]
    /// PEM text of the PCK chain (leaf, intermediate, root).
    public let pckChainPEM: String
    /// Bytes after the signature data that are ignored (some producers pad quotes).
    public let trailingByteCount: Int

    static let tdxTEEType: UInt32 = 0x81

    public init(bytes: [UInt8]) throws(AttestationError) {
        let r = ByteReader(bytes)
        guard bytes.count >= 48 else { throw AttestationError(.malformedEvidence, "TDX quote is \(bytes.count) bytes, shorter than its 48-byte header") }
        version = try r.u16(0)
        attestationKeyType = try r.u16(2)
        teeType = try r.u32(4)
        qeVendorID = try r.slice(12, 16)
        guard version == 4 || version == 5 else { throw AttestationError(.unsupportedVersion, "TDX quote version \(version) is not supported (4 or 5)") }
        guard attestationKeyType == 2 else {
            throw AttestationError(.unsupportedVersion, "TDX quote attestation key type \(attestationKeyType) is not ECDSA-P256 (2)")
        }
        guard teeType == TDXQuote.tdxTEEType else {
            throw AttestationError(.unsupportedVersion, "quote TEE type 0x\(String(teeType, radix: 16)) is not TDX (0x81)")
        }
        let bodyStart: Int
        let bodySize: Int
        if version == 4 {
            bodyType = 2
            bodyStart = 48
            bodySize = 584
        } else {
            bodyType = try r.u16(48)
            bodySize = Int(try r.u32(50))
            bodyStart = 54
            let expected: Int
            switch bodyType {
            case 2: expected = 584
            case 3: expected = 648
            default: throw AttestationError(.unsupportedVersion, "TDX quote v5 body type \(bodyType) is not a TD report (2 or 3)")
            }
            guard bodySize == expected else {
                throw AttestationError(.malformedEvidence, "TDX quote v5 body type \(bodyType) has size \(bodySize), expected \(expected)")
            }
        }
        body = try TDReportBody(r, at: bodyStart, tdx15: bodyType == 3)
        let signedEnd = bodyStart + bodySize
        signedBytes = try r.slice(0, signedEnd)
        let sigDataLength = Int(try r.u32(signedEnd))
        let sigData = try r.slice(signedEnd + 4, sigDataLength)
        trailingByteCount = bytes.count - (signedEnd + 4 + sigDataLength)

        let s = ByteReader(sigData)
        signature = try s.slice(0, 64)
        attestationKey = try s.slice(64, 64)
        let certType = try s.u16(128)
        let certSize = Int(try s.u32(130))
        guard certType == 6 else {
            throw AttestationError(.unsupportedVersion, "TDX quote certification data type \(certType) is not QE report certification data (6)")
        }
        let cert = ByteReader(try s.slice(134, certSize))
        guard 134 + certSize == sigData.count else {
            throw AttestationError(.malformedEvidence, "TDX quote signature data length \(sigData.count) disagrees with its certification data (\(134 + certSize))")
        }
        qeReport = try SGXEnclaveReport(try cert.slice(0, 384))
        qeReportSignature = try cert.slice(384, 64)
        let authLength = Int(try cert.u16(448))
        qeAuthData = try cert.slice(450, authLength)
        let innerType = try cert.u16(450 + authLength)
        let innerSize = Int(try cert.u32(452 + authLength))
        guard innerType == 5 else {
            throw AttestationError(.unsupportedVersion, "QE certification data type \(innerType) is not a PCK certificate chain (5)")
        }
        let pem = try cert.slice(456 + authLength, innerSize)
        guard 456 + authLength + innerSize == certSize else {
            throw AttestationError(.malformedEvidence, "QE certification data length \(certSize) disagrees with its contents")
        }
        pckChainPEM = String(decoding: pem, as: UTF8.self)
    }
}
