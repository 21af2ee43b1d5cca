import BlindAIAttestation
import Foundation

/// Every error the client library throws.
public enum BlindAIClientError: Error, Sendable, CustomStringConvertible {
    /// The server cannot be reached or the TLS connection failed.
    case connection(String)
    /// The server presented a TLS key other than the one attestation bound this session to (for example after a
    /// restart, or an interception). Nothing was sent on that connection. `reconnect()` attests the new key.
    case serverKeyChanged(pinnedSPKISHA256: String, presentedSPKISHA256: String)
    /// The evidence failed verification: authenticity, channel binding, or a policy rule (`error.code` says which).
    case attestation(AttestationError)
    /// The server offers no attestation (plain HTTP, or no TEE provider configured).
    case attestationUnavailable(String)
    /// The server's answer does not follow the protocol.
    case protocolViolation(String)
    /// The server refused the request: its HTTP status and message.
    case server(status: Int, message: String)
    /// A tensor, file or argument given to the client is not usable.
    case invalidInput(String)
    /// The session was closed (`close()`), or a previous `reconnect()` failed.
    case notConnected

    /// A stable, machine-readable code for each case, the same as the Python client's `BlindAIError.code` (an
    /// attestation failure's own code is `AttestationError.code`). A struct, so that new codes do not break a switch.
    public struct Code: RawRepresentable, Hashable, Sendable, CustomStringConvertible {
        public let rawValue: String
        public init(rawValue: String) { self.rawValue = rawValue }
        public var description: String { rawValue }
        /// The server cannot be reached or the TLS connection failed.
        public static let connection = Code(rawValue: "connection")
        /// The server presented another TLS key than the attested one; nothing was sent.
        public static let serverKeyChanged = Code(rawValue: "server_key_changed")
        /// The evidence failed verification; `AttestationError.code` says which check or rule.
        public static let attestation = Code(rawValue: "attestation")
        /// The server offers no attestation (plain HTTP, or no TEE provider).
        public static let attestationUnavailable = Code(rawValue: "attestation_unavailable")
        /// The server's answer does not follow the protocol.
        public static let protocolViolation = Code(rawValue: "protocol_violation")
        /// The server refused the request (HTTP status and message).
        public static let server = Code(rawValue: "server")
        /// A tensor, file or argument given to the client is not usable.
        public static let invalidInput = Code(rawValue: "invalid_input")
        /// The session was closed, or a previous reconnect failed.
        public static let notConnected = Code(rawValue: "not_connected")

        /// Every code this version defines.
        public static let allCases: [Code] = [
            .connection,
            .serverKeyChanged,
            .attestation,
            .attestationUnavailable,
            .protocolViolation,
            .server,
            .invalidInput,
            .notConnected,
        ]
    }

    public var code: Code {
        switch self {
        case .connection: .connection
        case .serverKeyChanged: .serverKeyChanged
        case .attestation: .attestation
        case .attestationUnavailable: .attestationUnavailable
        case .protocolViolation: .protocolViolation
        case .server: .server
        case .invalidInput: .invalidInput
        case .notConnected: .notConnected
        }
    }

    public var description: String {
        switch self {
        case .connection(let m):
            return "connection failed: \(m). Check the server address and that the server is running."
        case .serverKeyChanged(let pinned, let presented):
            return """
                the server presented a different TLS key (SHA-256 of its public key \(presented.prefix(16))…, attested key \
                \(pinned.prefix(16))…): nothing was sent. If the server was restarted, connect again to attest the new key; \
                otherwise something is intercepting the connection.
                """
        case .attestation(let e):
            return "attestation failed: \(e.code.rawValue): \(e.reason)"
        case .attestationUnavailable(let m):
            return "the server offers no attestation: \(m). Nothing was sent."
        case .protocolViolation(let m):
            return "unexpected answer from the server: \(m)"
        case .server(let status, let message):
            return "the server refused the request (HTTP \(status)): \(message)\(Self.hint(status: status))"
        case .invalidInput(let m):
            return m
        case .notConnected:
            return "not connected: connect (or reconnect) first"
        }
    }

    static func hint(status: Int) -> String {
        switch status {
        case 401: return ". Give an API key (--api-key or BLINDAI_API_KEY)."
        case 403: return ". This API key may not do that (the model belongs to another key, or the operator loaded it at start)."
        case 404: return ". Check the model name (`blindai models` lists what you may use)."
        case 413: return ". The server's size limits are in docs/server.md."
        case 429, 503: return ". The server is busy: retry shortly."
        default: return ""
        }
    }
}
