"""Typed exceptions. The codes are the Swift client's (`AttestationError.Code`, `BlindAIClientError`)."""

from __future__ import annotations

#: Every stable attestation error code, in the order of `AttestationError.Code` in the Swift verifier.
ATTESTATION_CODES = (
    "malformedEvidence", "unsupportedVersion", "malformedCertificate", "malformedCollateral",
    "reportSignatureInvalid", "certificateSignatureInvalid", "untrustedRoot", "simulatedRootNotAllowed",
    "certificateNotValidAtTime", "certificateRevoked", "crlInvalid", "productMismatch", "signerMismatch",
    "tcbMismatch", "chipIDMismatch", "quoteSignatureInvalid", "qeReportSignatureInvalid",
    "qeReportBindingInvalid", "collateralSignatureInvalid", "collateralNotValidAtTime", "collateralMismatch",
    "qeIdentityMismatch",
    "nonceMismatch", "reportDataMismatch", "tlsKeyMismatch", "claimsDocumentMismatch",
    "malformedPolicy", "simulatedNotAllowed", "debugNotAllowed", "measurementNotAllowed", "tcbBelowMinimum",
    "guestSVNBelowMinimum", "signerNotAllowed", "productNotAllowed", "chipIDNotAllowed", "vmplNotAllowed",
    "teeNotAllowed", "tcbStatusNotAllowed", "collateralMissing", "evidenceTooOld",
    "simulatedRootNotPinned", "tlsKeyNotGeneratedInTEE", "migrationAgentNotAllowed", "guestPolicyNotAllowed",
    "hostDataNotAllowed", "cspIDNotAllowed", "tdAttributesNotAllowed", "xfamNotAllowed", "mrConfigIDNotAllowed",
    "mrOwnerNotAllowed", "tcbEvaluationDataNumberBelowMinimum",
)


class BlindAIError(Exception):
    """Base class of every error this package raises. `code` is stable and machine-readable."""

    code = "blindAIError"


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

    code = "serverKeyChanged"

    def __init__(self, pinned_spki_sha256: str, presented_spki_sha256: str):
        super().__init__(
            f"the server presented a different TLS key (SHA-256 of its public key {presented_spki_sha256[:16]}…, "
            f"attested key {pinned_spki_sha256[:16]}…): nothing was sent. If the server was restarted, connect "
            "again to attest the new key; otherwise something is intercepting the connection.")
        self.pinned_spki_sha256 = pinned_spki_sha256
        self.presented_spki_sha256 = presented_spki_sha256


class AttestationUnavailable(BlindAIError):
    """The server offers no attestation (plain HTTP, or no TEE provider)."""

    code = "attestationUnavailable"


class ProtocolViolation(BlindAIError):
    """The server's answer does not follow the protocol."""

    code = "protocolViolation"


_HINTS = {
    401: ". Give an API key (api_key=...).",
    403: ". This API key may not do that (the model belongs to another key).",
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

    code = "invalidInput"


class NotConnected(BlindAIError):
    """The connection was closed, or a reconnect failed."""

    code = "notConnected"

    def __init__(self, message: str = "not connected: connect (or reconnect) first"):
        super().__init__(message)
