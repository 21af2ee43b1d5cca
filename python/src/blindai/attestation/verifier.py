"""The composed verifier: evidence parsing -> cryptographic verification -> channel binding -> policy rules
(Sources/BlindAIAttestation/AttestationVerifier.swift, EvidenceBundle.swift, ReportDataBinding.swift,
VerifiedClaims.swift). Claims are plain dicts with the member names of the Swift `VerifiedClaims` JSON."""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import os
import time as _time

from .. import _der
from ..errors import AttestationError
from .policy import Policy
from .snp import SNPVerifier, ValidatedSNPReport
from .tdx import TDXCollateral, TDXVerifier, ValidatedTDXQuote, fmspc_of_quote

EVIDENCE_FORMAT = "blindai-evidence/1"
DOMAIN_SEPARATOR = b"BLINDAI-ATTESTATION-V1\x00"
NONCE_LENGTH = 32


# MARK: claims

def snp_claims(v: ValidatedSNPReport) -> dict:
    r = v.report
    snp = {"reportVersion": r.version, "product": v.product, "signer": v.signer, "vmpl": r.vmpl, "guestSVN": r.guest_svn,
           "policy": f"0x{r.policy:x}", "reportedTCB": v.reported_tcb.as_json(), "hostData": r.host_data.hex(),
           "familyID": r.family_id.hex(), "imageID": r.image_id.hex(), "idKeyDigest": r.id_key_digest.hex(),
           "guestPolicy": r.guest_policy, "reportIDMA": r.report_id_ma.hex(), "checkedCRL": v.checked_crl}
    if v.csp_id is not None:
        snp["cspID"] = v.csp_id
    if not (r.chip_id_masked or v.signer == "VLEK"):
        snp["chipID"] = r.chip_id.hex()
    c = {"tee": "sev-snp", "simulated": v.simulated, "debug": r.debug, "measurement": r.measurement.hex(),
         "reportData": r.report_data.hex(), "verifiedAt": _der.iso(v.time), "channelBound": False, "snp": snp}
    if v.simulated:
        c["simulatedRootKeySHA256"] = v.root_key_sha256
    return c


def tdx_claims(v: ValidatedTDXQuote) -> dict:
    b = v.quote.body
    tdx = {"quoteVersion": v.quote.version, "bodyType": v.quote.body_type, "fmspc": v.pck.fmspc.hex(),
           "teeTCBSVN": b.tee_tcb_svn.hex(), "mrSeam": b.mr_seam.hex(), "tdAttributes": b.td_attributes.hex(),
           "xfam": b.xfam.hex(), "rtmrs": [x.hex() for x in b.rtmrs], "mrConfigID": b.mr_config_id.hex(),
           "mrOwner": b.mr_owner.hex(), "mrOwnerConfig": b.mr_owner_config.hex(), "checkedPCKCRL": v.checked_pck_crl,
           "checkedRootCACRL": v.checked_root_ca_crl, "checkedQEIdentity": v.checked_qe_identity,
           "attributes": td_attributes(int.from_bytes(b.td_attributes, "little"))}
    if v.tcb_info_evaluation_data_number is not None:
        tdx["tcbInfoEvaluationDataNumber"] = v.tcb_info_evaluation_data_number
    if v.qe_identity_evaluation_data_number is not None:
        tdx["qeIdentityEvaluationDataNumber"] = v.qe_identity_evaluation_data_number
    if b.mr_service_td is not None:
        tdx["mrServiceTD"] = b.mr_service_td.hex()
    if v.tcb is not None:
        tdx["tcb"] = v.tcb.as_json()
    return {"tee": "tdx", "simulated": False, "debug": b.debug, "measurement": b.mr_td.hex(),
            "reportData": b.report_data.hex(), "verifiedAt": _der.iso(v.time), "channelBound": False, "tdx": tdx}


def td_attributes(raw: int) -> dict:
    return {"debug": bool(raw & 1), "septVEDisable": bool(raw & (1 << 28)), "migratable": bool(raw & (1 << 29)),
            "pks": bool(raw & (1 << 30)), "perfmon": bool(raw & (1 << 63))}


def snp_crl_file_name(signer: str) -> str:
    return "vcek_crl.der" if signer == "VCEK" else "vlek_crl.der"


# MARK: evidence bundle and claims document

def _b64(v, what: str, optional: bool = False):
    if v is None:
        if optional:
            return None
        raise AttestationError("malformed_evidence", f"evidence bundle JSON is invalid: missing {what}")
    if not isinstance(v, str):
        raise AttestationError("malformed_evidence", f"evidence bundle JSON is invalid: {what} is not a base64 string")
    try:
        return base64.b64decode(v, validate=True)
    except (binascii.Error, ValueError):
        raise AttestationError("malformed_evidence", f"evidence bundle JSON is invalid: {what} is not base64") from None


class EvidenceBundle:
    """What the server's attestation endpoint returns (JSON, byte fields base64)."""

    def __init__(self, tee, report, certificates=(), collateral=None, claims=None, nonce=None, tls_certificate=None,
                 format=EVIDENCE_FORMAT):
        self.format = format
        self.tee = tee
        self.report = report
        self.certificates = list(certificates)
        self.collateral = dict(collateral or {})
        self.claims = claims
        self.nonce = nonce
        self.tls_certificate = tls_certificate

    @staticmethod
    def decode(data: bytes) -> "EvidenceBundle":
        try:
            o = json.loads(data, object_pairs_hook=_der.json_no_duplicates)
        except (ValueError, UnicodeDecodeError) as e:
            raise AttestationError("malformed_evidence", f"evidence bundle JSON is invalid: {e}") from None
        if not isinstance(o, dict):
            raise AttestationError("malformed_evidence", "evidence bundle JSON is invalid: not an object")
        fmt = o.get("format")
        if not isinstance(fmt, str):
            raise AttestationError("malformed_evidence", "evidence bundle JSON is invalid: no format")
        tee = o.get("tee")
        if tee not in ("sev-snp", "tdx"):
            raise AttestationError("malformed_evidence", f"evidence bundle JSON is invalid: tee {tee!r}")
        certs = o.get("certificates")
        if certs is None:
            certs = []
        if not isinstance(certs, list):
            raise AttestationError("malformed_evidence", "evidence bundle JSON is invalid: certificates is not an array")
        coll = o.get("collateral")
        if coll is None:
            coll = {}
        if not isinstance(coll, dict):
            raise AttestationError("malformed_evidence", "evidence bundle JSON is invalid: collateral is not an object")
        b = EvidenceBundle(
            tee, _b64(o.get("report"), "report"), [_b64(c, "certificates[]") for c in certs],
            {k: _b64(v, f"collateral[{k}]") for k, v in coll.items()}, _b64(o.get("claims"), "claims", True),
            _b64(o.get("nonce"), "nonce", True), _b64(o.get("tlsCertificate"), "tlsCertificate", True), fmt)
        if fmt != EVIDENCE_FORMAT:
            raise AttestationError("unsupported_version", f'evidence bundle format "{fmt}" is not "{EVIDENCE_FORMAT}"')
        return b


def decode_claims_document(data: bytes) -> dict:
    try:
        o = json.loads(data, object_pairs_hook=_der.json_no_duplicates)
        if not isinstance(o, dict):
            raise ValueError("not an object")
        v = o.get("version")
        if isinstance(v, bool) or not isinstance(v, int):
            raise ValueError("version is not an integer")
        if o.get("tee") not in ("sev-snp", "tdx"):
            raise ValueError("tee is not sev-snp or tdx")
        if not isinstance(o.get("issuedAt"), str):
            raise ValueError("issuedAt is not a string")
        attrs = o.get("attributes")
        if not isinstance(attrs, dict) or not all(isinstance(x, str) for x in attrs.values()):
            raise ValueError("attributes is not a string map")
        # Optional (as Swift's ClaimsDocument): the operator's pre-loaded models and the receipt-signing key.
        models = o.get("models")
        if models is not None:
            if not isinstance(models, list):
                raise ValueError("models is not an array")
            for i, m in enumerate(models):
                if not isinstance(m, dict):
                    raise ValueError(f"models[{i}] is not an object")
                for key in ("name", "version", "sha256"):
                    if not isinstance(m.get(key), str):
                        raise ValueError(f"models[{i}].{key} is not a string")
        receipt_key = o.get("receiptKey")
        if receipt_key is not None and not isinstance(receipt_key, str):
            raise ValueError("receiptKey is not a string")
        return o
    except (ValueError, UnicodeDecodeError) as e:
        raise AttestationError("claims_document_mismatch", f"claims document is not valid JSON of version 1: {e}") from None


# MARK: report-data binding

def compute_report_data(spki: bytes, nonce: bytes, claims_digest: bytes) -> bytes:
    if len(nonce) != NONCE_LENGTH:
        raise AttestationError("nonce_mismatch", f"nonce is {len(nonce)} bytes, expected {NONCE_LENGTH}")
    if len(claims_digest) != 32:
        raise AttestationError("claims_document_mismatch", f"claims digest is {len(claims_digest)} bytes, expected 32 (SHA-256)")
    return hashlib.sha512(DOMAIN_SEPARATOR + hashlib.sha256(spki).digest() + nonce + claims_digest).digest()


class ChannelBinding:
    """What the client knows about its own connection: the nonce it sent and the SPKI its TLS handshake presented."""

    def __init__(self, nonce: bytes, tls_spki: bytes):
        self.nonce = bytes(nonce)
        self.tls_spki = bytes(tls_spki)

    @staticmethod
    def from_certificate(nonce: bytes, certificate_der: bytes) -> "ChannelBinding":
        return ChannelBinding(nonce, _der.subject_public_key_info(certificate_der))

    @staticmethod
    def fresh_nonce() -> bytes:
        return os.urandom(NONCE_LENGTH)

    def check(self, report_data: bytes, bundle: EvidenceBundle) -> None:
        if bundle.nonce is None:
            raise AttestationError("nonce_mismatch", f"evidence carries no nonce; this connection sent {self.nonce[:4].hex()}…")
        if not hmac.compare_digest(bundle.nonce, self.nonce):
            raise AttestationError("nonce_mismatch",
                                   f"evidence answers nonce {bundle.nonce[:4].hex()}…, this connection sent {self.nonce[:4].hex()}…")
        if bundle.claims is None:
            raise AttestationError("claims_document_mismatch", "evidence carries no claims document")
        digest = hashlib.sha256(bundle.claims).digest()
        expected = compute_report_data(self.tls_spki, self.nonce, digest)
        if hmac.compare_digest(expected, report_data):
            return
        if bundle.tls_certificate is not None:
            try:
                other = _der.subject_public_key_info(bundle.tls_certificate)
                relayed = compute_report_data(other, self.nonce, digest)
            except AttestationError:
                other = relayed = None
            if other is not None and other != self.tls_spki and hmac.compare_digest(relayed, report_data):
                raise AttestationError(
                    "tls_key_mismatch",
                    f"evidence is bound to TLS key {hashlib.sha256(other).hexdigest()[:8]}…, but this connection presented "
                    f"{hashlib.sha256(self.tls_spki).hexdigest()[:8]}… (relayed evidence)")
        raise AttestationError("report_data_mismatch",
                               f"report data {report_data[:4].hex()}… is not the binding of this connection's TLS key, nonce and claims document {expected[:4].hex()}…")


# MARK: verifier

class AttestationVerifier:
    def __init__(self, policy: Policy, snp_roots=None, tdx_anchors=None):
        self.policy = policy
        self.snp_roots = snp_roots
        self.tdx_anchors = tdx_anchors

    def _snp(self, report, vek, chain, t, crl=None) -> dict:
        return snp_claims(SNPVerifier(self.snp_roots, self.policy.allow_simulated).verify(report, vek, chain, t, crl))

    def _tdx(self, quote, collateral, t) -> dict:
        return tdx_claims(TDXVerifier(self.tdx_anchors).verify(quote, collateral, t))

    def verify(self, bundle: EvidenceBundle, binding: ChannelBinding | None, t: float | None = None) -> dict:
        t = _time.time() if t is None else t
        if bundle.format != EVIDENCE_FORMAT:
            raise AttestationError("unsupported_version", f'evidence bundle format "{bundle.format}" is not "{EVIDENCE_FORMAT}"')
        if bundle.tee == "sev-snp":
            if not bundle.certificates:
                raise AttestationError("malformed_evidence", "SEV-SNP evidence carries no VCEK/VLEK certificate")
            from .snp import SNPReport
            signer = SNPReport(bundle.report).signer
            crl = bundle.collateral.get(snp_crl_file_name(signer)) if signer is not None else None
            claims = self._snp(bundle.report, bundle.certificates[0], bundle.certificates[1:], t, crl)
        else:
            fmspc = fmspc_of_quote(bundle.report)
            claims = self._tdx(bundle.report, TDXCollateral.load_mapping(bundle.collateral, fmspc), t)
        if bundle.claims is not None:
            doc = decode_claims_document(bundle.claims)
            if doc["tee"] != bundle.tee:
                raise AttestationError("claims_document_mismatch", f"claims document says {doc['tee']} but the evidence is {bundle.tee}")
            claims["claimsIssuedAt"] = doc["issuedAt"]
            origin = doc["attributes"].get("tlsKeyGeneratedInMemory")
            if origin is not None:
                if origin not in ("true", "false"):
                    raise AttestationError("claims_document_mismatch",
                                           f'claims document attribute tlsKeyGeneratedInMemory is "{origin}", not "true" or "false"')
                claims["tlsKeyGeneratedInTEE"] = origin == "true"
            # A bound claims document without `models`: the server has no operator models.
            claims["operatorModels"] = [{"name": m["name"], "version": m["version"], "sha256": m["sha256"]}
                                        for m in (doc.get("models") or [])]
            if doc.get("receiptKey") is not None:
                claims["receiptKey"] = doc["receiptKey"]
        if binding is not None:
            binding.check(bytes.fromhex(claims["reportData"]), bundle)
            claims["channelBound"] = True
        else:
            # Without a binding the claims document is not tied to the report: do not let it vouch for anything.
            claims.pop("claimsIssuedAt", None)
            claims.pop("tlsKeyGeneratedInTEE", None)
            claims.pop("operatorModels", None)
            claims.pop("receiptKey", None)
        self.policy.evaluate(claims, t)
        return claims

    def verify_snp(self, report: bytes, endorsement_key: bytes, chain=(), t: float | None = None, crl: bytes | None = None) -> dict:
        t = _time.time() if t is None else t
        claims = self._snp(report, endorsement_key, list(chain), t, crl)
        self.policy.evaluate(claims, t)
        return claims

    def verify_tdx(self, quote: bytes, collateral: TDXCollateral | None = None, t: float | None = None) -> dict:
        t = _time.time() if t is None else t
        claims = self._tdx(quote, collateral or TDXCollateral(), t)
        self.policy.evaluate(claims, t)
        return claims
