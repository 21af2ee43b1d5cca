import BlindAIAttestation
import Crypto
import Foundation
import NIOConcurrencyHelpers
import NIOCore
import NIOSSL

/// The TLS key of one attested session.
///
/// Every connection the session's HTTP client opens passes through `admit(channel:)` after its TLS handshake and
/// before any request is written on it. It reads the leaf certificate that connection presented and:
///
/// * before attestation: the first connection's SubjectPublicKeyInfo becomes the candidate; a connection presenting
///   another key is refused, so the attestation request necessarily travels over a connection presenting the
///   candidate key, and the evidence is checked against exactly that key;
/// * after attestation (`pin()`): only connections presenting the pinned key are admitted; any other key fails the
///   request with `serverKeyChanged`. There is no silent re-trust: only a new attestation (`reconnect()`) pins a
///   new key.
final class TLSKeyPin: Sendable {
    struct State {
        var candidate: [UInt8]?
        var pinned = false
        var connections = 0
    }

    private let state = NIOLockedValueBox(State())

    /// The key the session is bound to (or, before attestation, the one its connections presented).
    var subjectPublicKeyInfo: [UInt8]? { state.withLockedValue { $0.candidate } }
    var isPinned: Bool { state.withLockedValue { $0.pinned } }
    var connectionCount: Int { state.withLockedValue { $0.connections } }

    func pin() { state.withLockedValue { $0.pinned = true } }

    /// Checks the leaf certificate of a new connection.
    func admit(certificateDER: [UInt8]) throws {
        let spki: [UInt8]
        do {
            spki = try ReportDataBinding.subjectPublicKeyInfo(certificateDER: certificateDER)
        } catch {
            throw PinViolation.unreadableCertificate("\(error)")
        }
        try state.withLockedValue { s in
            if let candidate = s.candidate {
                guard candidate == spki else {
                    throw PinViolation.keyChanged(pinned: Self.fingerprint(candidate), presented: Self.fingerprint(spki), attested: s.pinned)
                }
            } else {
                s.candidate = spki
            }
            s.connections += 1
        }
    }

    /// The connection initializer for AsyncHTTPClient: runs after the TLS handshake, before the connection is used.
    /// A refused connection is closed and its error fails the request that asked for it.
    func admit(channel: any Channel) -> EventLoopFuture<Void> {
        channel.nioSSL_peerCertificate().flatMapThrowing { certificate in
            guard let certificate else { throw PinViolation.noCertificate }
            try self.admit(certificateDER: try certificate.toDERBytes())
        }.flatMapError { error in
            channel.close(promise: nil)
            return channel.eventLoop.makeFailedFuture(error)
        }
    }

    static func fingerprint(_ spki: [UInt8]) -> String {
        SHA256.hash(data: spki).map { String(format: "%02x", $0) }.joined()
    }
}

/// Why a connection was refused by the pin.
enum PinViolation: Error, Sendable, CustomStringConvertible {
    case noCertificate
    case unreadableCertificate(String)
    case keyChanged(pinned: String, presented: String, attested: Bool)

    var description: String {
        switch self {
        case .noCertificate: return "the server presented no TLS certificate"
        case .unreadableCertificate(let m): return "the server's TLS certificate cannot be read: \(m)"
        case .keyChanged(let pinned, let presented, let attested):
            return attested
                ? "the server presented TLS key \(presented), not the attested key \(pinned)"
                : "the server presented two different TLS keys (\(pinned), \(presented)) while being attested"
        }
    }
}
