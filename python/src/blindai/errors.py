"""Typed exceptions. The codes are the Swift client's (`AttestationError.Code`, `BlindAIClientError`)."""

from __future__ import annotations

#: Every stable attestation error code, in the order of `AttestationError.Code` in the Swift verifier.
ATTESTATION_CODES = (
    "malformed_evidence", "unsupported_version", "malformed_certificate", "malformed_collateral",
    "report_signature_invalid", "certificate_signature_invalid", "untrusted_root", "simulated_root_not_allowed",
    "certificate_not_valid_at_time", "certificate_revoked", "crl_invalid", "product_mismatch", "signer_mismatch",
    "tcb_mismatch", "chip_id_mismatch", "quote_signature_invalid", "qe_report_signature_invalid",
    "qe_report_binding_invalid", "collateral_signature_invalid", "collateral_not_valid_at_time", "collateral_mismatch",
    "qe_identity_mismatch",
    "nonce_mismatch", "report_data_mismatch", "tls_key_mismatch", "claims_document_mismatch",
    "malformed_policy", "simulated_not_allowed", "debug_not_allowed", "measurement_not_allowed", "tcb_below_minimum",
    "guest_svn_below_minimum", "signer_not_allowed", "product_not_allowed", "chip_id_not_allowed", "vmpl_not_allowed",
    "tee_not_allowed", "tcb_status_not_allowed", "collateral_missing", "evidence_too_old",
    "simulated_root_not_pinned", "tls_key_not_generated_in_tee", "migration_agent_not_allowed", "guest_policy_not_allowed",
    "host_data_not_allowed", "csp_id_not_allowed", "td_attributes_not_allowed", "xfam_not_allowed", "mr_config_id_not_allowed",
    "mr_owner_not_allowed", "tcb_evaluation_data_number_below_minimum", "operator_models_mismatch",
)


class BlindAIError(Exception):
    """Base class of every error this package raises. `code` is stable and machine-readable."""

    code = "blindai_error"


class AttestationError(BlindAIError):
    """The evidence failed verification: authenticity, channel binding or a policy rule (`code` says which)."""

    def __init__(self, code: str, reason: str):
        if code not in ATTESTATION_CODES:
            raise ValueError(f"unknown attestation error code {code!r}")
        super().__init__(f"{code}: {reason}")
        self.code = code
        self.reason = reason


class ConnectionFailed(BlindAIError):
    """The server cannot be reached or the TLS connection failed."""

    code = "connection"


class ServerKeyChanged(BlindAIError):
    """A connection presented a TLS key other than the attested one. Nothing was sent on it."""

    code = "server_key_changed"

    def __init__(self, pinned_spki_sha256: str, presented_spki_sha256: str):
        super().__init__(
            f"the server presented a different TLS key (SHA-256 of its public key {presented_spki_sha256[:16]}…, "
            f"attested key {pinned_spki_sha256[:16]}…): nothing was sent. If the server was restarted, connect "
            "again to attest the new key; otherwise something is intercepting the connection.")
        self.pinned_spki_sha256 = pinned_spki_sha256
        self.presented_spki_sha256 = presented_spki_sha256


class AttestationUnavailable(BlindAIError):
    """The server offers no attestation (plain HTTP, or no TEE provider)."""

    code = "attestation_unavailable"


class ProtocolViolation(BlindAIError):
    """The server's answer does not follow the protocol."""

    code = "protocol_violation"


_HINTS = {
    401: ". Give an API key (api_key=...).",
    403: ". This API key may not do that (the model belongs to another key, or the operator loaded it at start).",
    404: ". Check the model name (conn.models() lists what you may use).",
    413: ". The server's size limits are in docs/server.md.",
    429: ". The server is busy: retry shortly.",
    503: ". The server is busy: retry shortly.",
}


class ServerError(BlindAIError):
    """The server refused the request: its HTTP status and its message."""

    code = "server"

    def __init__(self, status: int, message: str):
        super().__init__(f"the server refused the request (HTTP {status}): {message}{_HINTS.get(status, '')}")
        self.status = status
        self.message = message


class InvalidInput(BlindAIError, ValueError):
    """A tensor, file or argument given to the client is not usable."""

    code = "invalid_input"


class NotConnected(BlindAIError):
    """The connection was closed, or a reconnect failed."""

    code = "not_connected"

    def __init__(self, message: str = "not connected: connect (or reconnect) first"):
        super().__init__(message)
