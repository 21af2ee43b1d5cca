"""BlindAI Python client: attest a BlindAI server (SEV-SNP, TDX, or the simulated TEE), then upload models and run
inference over a TLS connection whose key the attestation evidence is bound to."""

from .errors import (AttestationError, AttestationUnavailable, BlindAIError, ConnectionFailed, InvalidInput, NotConnected,
                     ProtocolViolation, ServerError, ServerKeyChanged)

__version__ = "0.1.0"

__all__ = ["AttestationError", "AttestationUnavailable", "BlindAIError", "ConnectionFailed", "InvalidInput", "NotConnected",
           "ProtocolViolation", "ServerError", "ServerKeyChanged", "__version__"]
