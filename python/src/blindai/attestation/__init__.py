"""Attestation verification in Python, equal to the Swift verifier (Sources/BlindAIAttestation)."""

from ..errors import AttestationError
from .policy import Policy
from .tdx import TDXCollateral
from .verifier import AttestationVerifier, ChannelBinding, EvidenceBundle, compute_report_data

__all__ = ["AttestationError", "AttestationVerifier", "ChannelBinding", "EvidenceBundle", "Policy", "TDXCollateral",
           "compute_report_data"]
