import Foundation
import Testing

@testable import BlindAIAttestation

/// The real-hardware vectors are committed beside this file (`Vectors/`, 72 files, 496 KB; their README gives
/// each file's source, license and facts). A missing file is a test failure, never a silent skip.
enum Vectors {
    static let root: URL = URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("Vectors")

    struct Missing: Error, CustomStringConvertible {
        let path: String
        var description: String { "attestation vector missing: \(path)" }
    }

    static func url(_ relative: String) -> URL { root.appendingPathComponent(relative) }

    static func bytes(_ relative: String) throws -> [UInt8] {
        let u = url(relative)
        guard let data = FileManager.default.contents(atPath: u.path) else { throw Missing(path: u.path) }
        return [UInt8](data)
    }

    static func pemBlocks(_ relative: String) throws -> [[UInt8]] {
        let blocks = PEM.decodeAll(String(decoding: try bytes(relative), as: UTF8.self))
        guard !blocks.isEmpty else { throw Missing(path: url(relative).path + " (no PEM blocks)") }
        return blocks
    }

    static func directory(_ relative: String) throws -> URL {
        let u = url(relative)
        var isDir: ObjCBool = false
        guard FileManager.default.fileExists(atPath: u.path, isDirectory: &isDir), isDir.boolValue else { throw Missing(path: u.path) }
        return u
    }
}

func date(_ iso: String) -> Date {
    guard let d = ISO8601.parse(iso) else { fatalError("bad date literal \(iso)") }
    return d
}

func hex(_ s: String) -> [UInt8] {
    guard let b = Hex.decode(s) else { fatalError("bad hex literal") }
    return b
}

/// Runs `body` and returns the attestation error code it threw (or records a failure).
@discardableResult
func expectCode(
    _ code: AttestationError.Code, sourceLocation: SourceLocation = #_sourceLocation, _ body: () throws -> Void
) -> AttestationError? {
    do {
        try body()
        Issue.record("expected \(code.rawValue), but verification succeeded", sourceLocation: sourceLocation)
        return nil
    } catch let e as AttestationError {
        #expect(e.code == code, "expected \(code.rawValue), got \(e)", sourceLocation: sourceLocation)
        return e
    } catch {
        Issue.record("expected \(code.rawValue), got non-attestation error \(error)", sourceLocation: sourceLocation)
        return nil
    }
}

@discardableResult
func expectCodeAsync(
    _ code: AttestationError.Code, sourceLocation: SourceLocation = #_sourceLocation, _ body: () async throws -> Void
) async -> AttestationError? {
    do {
        try await body()
        Issue.record("expected \(code.rawValue), but verification succeeded", sourceLocation: sourceLocation)
        return nil
    } catch let e as AttestationError {
        #expect(e.code == code, "expected \(code.rawValue), got \(e)", sourceLocation: sourceLocation)
        return e
    } catch {
        Issue.record("expected \(code.rawValue), got non-attestation error \(error)", sourceLocation: sourceLocation)
        return nil
    }
}

/// Flips the lowest bit of the last byte of the certificate's serial number (inside the signed TBS).
func flipSerialBit(_ der: [UInt8]) throws -> [UInt8] {
    let cert = try DERCertificate(derEncoded: der)
    var out = der
    // Find the serial INTEGER: tag 0x02, length, bytes; it follows the [0] version in the TBS.
    let serialTLV: [UInt8] = [0x02, UInt8(max(cert.serialNumber.count, 1) + (cert.serialNumber.first.map { $0 & 0x80 != 0 ? 1 : 0 } ?? 0))]
    guard let at = (0..<(der.count - 2)).first(where: { der[$0] == serialTLV[0] && der[$0 + 1] == serialTLV[1] && $0 > 8 }) else {
        throw Vectors.Missing(path: "serial number in certificate")
    }
    out[at + 1 + Int(serialTLV[1])] ^= 0x01
    return out
}

extension TDXVerifier {
    /// The quote layer alone, for vectors published without CRLs or QE identity (the production verifier refuses them).
    static func quoteLayer(anchors: TDXTrustAnchors = .intel) -> TDXVerifier {
        var v = TDXVerifier(anchors: anchors)
        v.requiresRevocationAndQEIdentity = false
        return v
    }
}

extension TDXCollateral {
    /// Whether the CRLs and QE identity the production verifier requires are all present.
    var isComplete: Bool { pckCRL != nil && rootCACRL != nil && qeIdentityJSON != nil }
}
