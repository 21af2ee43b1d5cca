"""BlindAI Python client: attest a BlindAI server (SEV-SNP, TDX, or the simulated TEE), then upload models and run
inference over a TLS connection whose key the attestation evidence is bound to."""

from .errors import (AttestationError, AttestationUnavailable, BlindAIError, ConnectionFailed, InvalidInput, NotConnected,
                     ProtocolViolation, ServerError, ServerKeyChanged)

from .client import Attestation, Connection, PredictResponse, UploadedModel, UploadProgress, connect
from .tensor import BF16, Tensor

__version__ = "0.1.0"

__all__ = ["Attestation", "BF16", "Connection", "PredictResponse", "Tensor", "UploadProgress", "UploadedModel", "connect",
           "AttestationError", "AttestationUnavailable", "BlindAIError", "ConnectionFailed", "InvalidInput", "NotConnected",
           "ProtocolViolation", "ServerError", "ServerKeyChanged", "__version__"]
