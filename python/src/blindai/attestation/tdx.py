"""Intel TDX: quotes v4/v5 and their verification against the Intel SGX Root CA and PCS collateral (TCB info,
QE identity, CRLs). Mirrors Sources/BlindAIAttestation/TDXQuote.swift, TDXVerifier.swift and TDXCollateral.swift."""

from __future__ import annotations

import hashlib
import json
import os
import struct
from dataclasses import dataclass, field

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec

from .. import _der
from .._der import CRL, Certificate, pem_decode_all
from ..errors import AttestationError
from . import _roots

STATUSES = ("UpToDate", "SWHardeningNeeded", "ConfigurationNeeded", "ConfigurationAndSWHardeningNeeded", "OutOfDate",
            "OutOfDateConfigurationNeeded", "Revoked", "NotSupported")


def _reader(data: bytes):
    def sl(o: int, n: int) -> bytes:
        if o < 0 or n < 0 or o > len(data) or len(data) - o < n:
            raise AttestationError("malformed_evidence", f"read of {n} bytes at offset {o} exceeds the {len(data)}-byte buffer")
        return data[o:o + n]

    def u16(o):
        return struct.unpack("<H", sl(o, 2))[0]

    def u32(o):
        return struct.unpack("<I", sl(o, 4))[0]
    return sl, u16, u32


class TDReportBody:
    def __init__(self, sl, o: int, tdx15: bool):
        self.tee_tcb_svn = sl(o, 16)
        self.mr_seam = sl(o + 16, 48)
        self.mr_signer_seam = sl(o + 64, 48)
        self.seam_attributes = sl(o + 112, 8)
        self.td_attributes = sl(o + 120, 8)
        self.xfam = sl(o + 128, 8)
        self.mr_td = sl(o + 136, 48)
        self.mr_config_id = sl(o + 184, 48)
        self.mr_owner = sl(o + 232, 48)
        self.mr_owner_config = sl(o + 280, 48)
        self.rtmrs = [sl(o + 328 + 48 * i, 48) for i in range(4)]
        self.report_data = sl(o + 520, 64)
        self.tee_tcb_svn2 = sl(o + 584, 16) if tdx15 else None
        self.mr_service_td = sl(o + 600, 48) if tdx15 else None

    @property
    def debug(self) -> bool:
        return bool(self.td_attributes[0] & 0x01)


class SGXEnclaveReport:
    def __init__(self, data: bytes):
        sl, u16, u32 = _reader(data)
        self.raw = data
        self.cpu_svn = sl(0, 16)
        self.misc_select = u32(16)
        self.attributes = sl(48, 16)
        self.mr_enclave = sl(64, 32)
        self.mr_signer = sl(128, 32)
        self.isv_prod_id = u16(256)
        self.isv_svn = u16(258)
        self.report_data = sl(320, 64)


class TDXQuote:
    def __init__(self, data: bytes):
        data = bytes(data)
        sl, u16, u32 = _reader(data)
        if len(data) < 48:
            raise AttestationError("malformed_evidence", f"TDX quote is {len(data)} bytes, shorter than its 48-byte header")
        self.version = u16(0)
        self.attestation_key_type = u16(2)
        self.tee_type = u32(4)
        self.qe_vendor_id = sl(12, 16)
        if self.version not in (4, 5):
            raise AttestationError("unsupported_version", f"TDX quote version {self.version} is not supported (4 or 5)")
        if self.attestation_key_type != 2:
            raise AttestationError("unsupported_version",
                                   f"TDX quote attestation key type {self.attestation_key_type} is not ECDSA-P256 (2)")
        if self.tee_type != 0x81:
            raise AttestationError("unsupported_version", f"quote TEE type 0x{self.tee_type:x} is not TDX (0x81)")
        if self.version == 4:
            self.body_type, start, size = 2, 48, 584
        else:
            self.body_type = u16(48)
            size = u32(50)
            start = 54
            expected = {2: 584, 3: 648}.get(self.body_type)
            if expected is None:
                raise AttestationError("unsupported_version", f"TDX quote v5 body type {self.body_type} is not a TD report (2 or 3)")
            if size != expected:
                raise AttestationError("malformed_evidence",
                                       f"TDX quote v5 body type {self.body_type} has size {size}, expected {expected}")
        self.body = TDReportBody(sl, start, self.body_type == 3)
        end = start + size
        self.signed_bytes = sl(0, end)
        sig_len = u32(end)
        sig_data = sl(end + 4, sig_len)
        self.trailing = len(data) - (end + 4 + sig_len)
        ssl_, su16, su32 = _reader(sig_data)
        self.signature = ssl_(0, 64)
        self.attestation_key = ssl_(64, 64)
        cert_type = su16(128)
        cert_size = su32(130)
        if cert_type != 6:
            raise AttestationError("unsupported_version",
                                   f"TDX quote certification data type {cert_type} is not QE report certification data (6)")
        cert = ssl_(134, cert_size)
        if 134 + cert_size != len(sig_data):
            raise AttestationError("malformed_evidence",
                                   f"TDX quote signature data length {len(sig_data)} disagrees with its certification data ({134 + cert_size})")
        csl, cu16, cu32 = _reader(cert)
        self.qe_report = SGXEnclaveReport(csl(0, 384))
        self.qe_report_signature = csl(384, 64)
        auth_len = cu16(448)
        self.qe_auth_data = csl(450, auth_len)
        inner_type = cu16(450 + auth_len)
        inner_size = cu32(452 + auth_len)
        if inner_type != 5:
            raise AttestationError("unsupported_version", f"QE certification data type {inner_type} is not a PCK certificate chain (5)")
        pem = csl(456 + auth_len, inner_size)
        if 456 + auth_len + inner_size != cert_size:
            raise AttestationError("malformed_evidence", f"QE certification data length {cert_size} disagrees with its contents")
        self.pck_chain_pem = pem.decode("utf-8", "replace")


# MARK: PCK certificate

SGX_EXT = "1.2.840.113741.1.13.1"


class PCKInfo:
    def __init__(self, cert: Certificate):
        value = cert.extension(SGX_EXT)
        if value is None:
            raise AttestationError("malformed_certificate", f"PCK certificate has no SGX extensions ({SGX_EXT})")
        root = _der.parse_or(value, "malformed_certificate", "SGX extensions")
        fmspc = pce_id = pcesvn = None
        comps = [-1] * 16
        for item in _der.seq(root, "SGX extensions"):
            kv = _der.seq(item, "SGX extension")
            if len(kv) != 2:
                continue
            arcs = _der.oid(kv[0], "SGX extension id").split(".")
            if len(arcs) != 8 or ".".join(arcs[:7]) != SGX_EXT:
                continue
            a = int(arcs[7])
            if a == 2:
                for c in _der.seq(kv[1], "SGX TCB"):
                    p = _der.seq(c, "SGX TCB component")
                    if len(p) != 2:
                        continue
                    carcs = _der.oid(p[0], "SGX TCB component id").split(".")
                    if len(carcs) != 9:
                        continue
                    last = int(carcs[-1])
                    if 1 <= last <= 16:
                        comps[last - 1] = _der.small_int(p[1], "SGX TCB component")
                    if last == 17:
                        pcesvn = _der.small_int(p[1], "PCESVN")
            elif a == 3:
                if kv[1].children is not None:
                    raise AttestationError("malformed_certificate", "PCE-ID: expected a primitive DER element")
                pce_id = kv[1].content
            elif a == 4:
                if kv[1].children is not None:
                    raise AttestationError("malformed_certificate", "FMSPC: expected a primitive DER element")
                fmspc = kv[1].content
        if fmspc is None or len(fmspc) != 6 or pce_id is None or pcesvn is None or -1 in comps:
            raise AttestationError("malformed_certificate", "PCK certificate SGX extensions lack FMSPC, PCE-ID, PCESVN or a TCB component")
        self.fmspc = fmspc
        self.pce_id = pce_id
        self.sgx_components = comps
        self.pce_svn = pcesvn


def fmspc_of_quote(quote: bytes) -> str:
    q = TDXQuote(quote)
    blocks = pem_decode_all(q.pck_chain_pem)
    if not blocks:
        raise AttestationError("malformed_evidence", "TDX quote PCK chain is empty")
    return PCKInfo(Certificate(blocks[0])).fmspc.hex()


# MARK: Collateral

@dataclass
class TDXCollateral:
    tcb_info_json: bytes | None = None
    qe_identity_json: bytes | None = None
    pck_crl: bytes | None = None
    root_ca_crl: bytes | None = None
    tcb_info_issuer_chain: str | None = None
    qe_identity_issuer_chain: str | None = None
    pck_crl_issuer_chain: str | None = None

    @staticmethod
    def from_files(get, fmspc: str) -> "TDXCollateral":
        def text(n):
            b = get(n)
            return None if b is None else b.decode("utf-8", "replace")
        tcb = get(f"tcbInfo_fmspc_{fmspc.lower()}.json")
        if tcb is None:
            tcb = get(f"tcbInfo_fmspc_{fmspc.upper()}.json")
        pck = get("pck_crl_platform.der")
        if pck is None:
            pck = get("pck_crl_processor.der")
        return TDXCollateral(tcb, get("qeIdentity.json"), pck, get("root_ca_crl.der"), text("tcbInfo_issuer_chain.pem"),
                             text("qeIdentity_issuer_chain.pem"), text("pck_crl_issuer_chain.pem"))

    @staticmethod
    def load_directory(directory: str, fmspc: str) -> "TDXCollateral":
        def get(name):
            p = os.path.join(directory, name)
            try:
                with open(p, "rb") as f:
                    return f.read()
            except OSError:
                return None
        return TDXCollateral.from_files(get, fmspc)

    @staticmethod
    def load_mapping(files: dict, fmspc: str) -> "TDXCollateral":
        return TDXCollateral.from_files(files.get, fmspc)

    @staticmethod
    def load_quote_collateral_v3(data: bytes) -> "TDXCollateral":
        try:
            v = json.loads(data, object_pairs_hook=_der.json_first_wins)
            if not isinstance(v, dict):
                raise ValueError("not an object")
            keys = ("tcb_info", "tcb_info_signature", "tcb_info_issuer_chain", "qe_identity", "qe_identity_signature",
                    "qe_identity_issuer_chain", "pck_crl", "root_ca_crl", "pck_crl_issuer_chain")
            for k in keys:
                if k in v and v[k] is not None and not isinstance(v[k], str):
                    raise ValueError(f"{k} is not a string")
        except (ValueError, UnicodeDecodeError) as e:
            raise AttestationError("malformed_collateral", f"QuoteCollateralV3 JSON is invalid: {e}") from None

        def response(key, body, signature):
            if body is None:
                return None
            if signature is None or _hex(signature) is None:
                raise AttestationError("malformed_collateral", f"QuoteCollateralV3 has {key} without a hex signature")
            return f'{{"{key}":'.encode() + body.encode() + f',"signature":"{signature}"}}'.encode()

        def der(h, name):
            if h is None:
                return None
            b = _hex(h)
            if b is None:
                raise AttestationError("malformed_collateral", f"QuoteCollateralV3 {name} is not hex")
            return b
        return TDXCollateral(
            response("tcbInfo", v.get("tcb_info"), v.get("tcb_info_signature")),
            response("enclaveIdentity", v.get("qe_identity"), v.get("qe_identity_signature")),
            der(v.get("pck_crl"), "pck_crl"), der(v.get("root_ca_crl"), "root_ca_crl"),
            v.get("tcb_info_issuer_chain"), v.get("qe_identity_issuer_chain"), v.get("pck_crl_issuer_chain"))


def _hex(text: str) -> bytes | None:
    if len(text) % 2 or any(c not in "0123456789abcdefABCDEF" for c in text):
        return None
    return bytes.fromhex(text)


# MARK: Raw JSON (signed bytes as served)

_WS = b" \n\r\t"


def top_level_members(b: bytes) -> dict[str, tuple[int, int]]:
    i = 0

    def fail(why):
        return AttestationError("malformed_collateral", f"collateral JSON: {why} at byte {i}")

    def skip_ws():
        nonlocal i
        while i < len(b) and b[i] in _WS:
            i += 1

    def scan_string():
        nonlocal i
        if i >= len(b) or b[i] != 0x22:
            raise fail("expected a string")
        start = i
        i += 1
        while i < len(b):
            if b[i] == 0x5C:
                i += 2
                continue
            if b[i] == 0x22:
                i += 1
                return start, i
            i += 1
        raise fail("unterminated string")

    def scan_value():
        nonlocal i
        skip_ws()
        if i >= len(b):
            raise fail("expected a value")
        start = i
        c = b[i]
        if c == 0x22:
            return scan_string()
        if c in (0x7B, 0x5B):
            depth = 0
            while i < len(b):
                c = b[i]
                if c == 0x22:
                    scan_string()
                    continue
                if c in (0x7B, 0x5B):
                    depth += 1
                elif c in (0x7D, 0x5D):
                    depth -= 1
                    if depth == 0:
                        i += 1
                        return start, i
                i += 1
            raise fail("unbalanced brackets")
        while i < len(b) and b[i] not in b",}] \n\r\t":
            i += 1
        if i == start:
            raise fail("empty value")
        return start, i

    members: dict[str, tuple[int, int]] = {}
    skip_ws()
    if i >= len(b) or b[i] != 0x7B:
        raise fail("expected an object")
    i += 1
    skip_ws()
    if i < len(b) and b[i] == 0x7D:
        return members
    while True:
        skip_ws()
        ks, ke = scan_string()
        key = b[ks + 1:ke - 1].decode("utf-8", "replace")
        skip_ws()
        if i >= len(b) or b[i] != 0x3A:
            raise fail("expected ':'")
        i += 1
        value = scan_value()
        if key in members:
            raise fail(f'duplicate member "{key}"')
        members[key] = value
        skip_ws()
        if i >= len(b):
            raise fail("unterminated object")
        if b[i] == 0x2C:
            i += 1
            continue
        if b[i] == 0x7D:
            i += 1
            break
        raise fail("expected ',' or '}'")
    skip_ws()
    if i != len(b):
        raise fail("trailing data after the object")
    return members


def signed_object(b: bytes, key: str) -> tuple[bytes, bytes]:
    m = top_level_members(b)
    r = m.get(key)
    if r is None or b[r[0]] != 0x7B:
        raise AttestationError("malformed_collateral", f'collateral JSON has no "{key}" object')
    s = m.get("signature")
    sig = None
    if s is not None and b[s[0]] == 0x22:
        sig = _hex(b[s[0] + 1:s[1] - 1].decode("utf-8", "replace"))
    if sig is None or len(sig) != 64:
        raise AttestationError("malformed_collateral", f'collateral JSON "{key}" has no 64-byte hex "signature"')
    return b[r[0]:r[1]], sig


# Typed decoding with the strictness of Swift's JSONDecoder on the PCS models.

class _Bad(Exception):
    pass


def _get(obj, key, kind, optional=False):
    if not isinstance(obj, dict):
        raise _Bad("expected an object")
    if key not in obj or obj[key] is None:
        if optional:
            return None
        raise _Bad(f'missing "{key}"')
    v = obj[key]
    if kind is int:
        if isinstance(v, bool) or not (isinstance(v, int) or (isinstance(v, float) and v.is_integer())):
            raise _Bad(f'"{key}" is not an integer')
        return int(v)
    if kind is str:
        if not isinstance(v, str):
            raise _Bad(f'"{key}" is not a string')
        return v
    if kind is list:
        if not isinstance(v, list):
            raise _Bad(f'"{key}" is not an array')
        return v
    if kind is dict:
        if not isinstance(v, dict):
            raise _Bad(f'"{key}" is not an object')
        return v
    raise AssertionError(kind)


def _identity_levels(levels):
    out = []
    for lv in levels:
        tcb = _get(lv, "tcb", dict)
        adv = _get(lv, "advisoryIDs", list, True)
        if adv is not None and not all(isinstance(a, str) for a in adv):
            raise _Bad("advisoryIDs")
        out.append({"isvsvn": _get(tcb, "isvsvn", int), "tcbDate": _get(lv, "tcbDate", str),
                    "tcbStatus": _get(lv, "tcbStatus", str), "advisoryIDs": adv})
    return out


def _components(lst):
    return [_get(c, "svn", int) for c in lst]


def decode_tcb_info(o) -> dict:
    info = {"id": _get(o, "id", str, True), "version": _get(o, "version", int), "issueDate": _get(o, "issueDate", str),
            "nextUpdate": _get(o, "nextUpdate", str), "fmspc": _get(o, "fmspc", str), "pceId": _get(o, "pceId", str),
            "tcbEvaluationDataNumber": _get(o, "tcbEvaluationDataNumber", int, True)}
    m = _get(o, "tdxModule", dict, True)
    info["tdxModule"] = None if m is None else {k: _get(m, k, str) for k in ("mrsigner", "attributes", "attributesMask")}
    ids = _get(o, "tdxModuleIdentities", list, True)
    if ids is not None:
        ids = [dict({k: _get(i, k, str) for k in ("id", "mrsigner", "attributes", "attributesMask")},
                    tcbLevels=_identity_levels(_get(i, "tcbLevels", list))) for i in ids]
    info["tdxModuleIdentities"] = ids
    levels = []
    for lv in _get(o, "tcbLevels", list):
        tcb = _get(lv, "tcb", dict)
        tdx = _get(tcb, "tdxtcbcomponents", list, True)
        adv = _get(lv, "advisoryIDs", list, True)
        if adv is not None and not all(isinstance(a, str) for a in adv):
            raise _Bad("advisoryIDs")
        levels.append({"sgx": _components(_get(tcb, "sgxtcbcomponents", list)), "pcesvn": _get(tcb, "pcesvn", int),
                       "tdx": None if tdx is None else _components(tdx), "tcbDate": _get(lv, "tcbDate", str),
                       "tcbStatus": _get(lv, "tcbStatus", str), "advisoryIDs": adv})
    info["tcbLevels"] = levels
    return info


def decode_qe_identity(o) -> dict:
    d = {k: _get(o, k, str) for k in ("id", "issueDate", "nextUpdate", "miscselect", "miscselectMask", "attributes",
                                       "attributesMask", "mrsigner")}
    d["version"] = _get(o, "version", int)
    d["tcbEvaluationDataNumber"] = _get(o, "tcbEvaluationDataNumber", int, True)
    d["isvprodid"] = _get(o, "isvprodid", int)
    d["tcbLevels"] = _identity_levels(_get(o, "tcbLevels", list))
    return d


# MARK: Verifier

@dataclass
class TDXAnchors:
    root: Certificate
    tcb_signing: list[Certificate]


_INTEL: TDXAnchors | None = None


def intel_anchors() -> TDXAnchors:
    global _INTEL
    if _INTEL is None:
        _INTEL = TDXAnchors(Certificate.from_bytes(_roots.INTEL_SGX_ROOT_CA.encode()),
                            [Certificate.from_bytes(_roots.INTEL_TCB_SIGNING_2025.encode()),
                             Certificate.from_bytes(_roots.INTEL_TCB_SIGNING_2018.encode())])
    return _INTEL


@dataclass
class TCBEvaluation:
    status: str
    platform_status: str
    tdx_module_status: str | None
    qe_status: str | None
    tcb_date: str | None
    advisory_ids: list = field(default_factory=list)

    def as_json(self) -> dict:
        d = {"status": self.status, "platformStatus": self.platform_status, "advisoryIDs": list(self.advisory_ids)}
        if self.tdx_module_status is not None:
            d["tdxModuleStatus"] = self.tdx_module_status
        if self.qe_status is not None:
            d["qeStatus"] = self.qe_status
        if self.tcb_date is not None:
            d["tcbDate"] = self.tcb_date
        return d


@dataclass
class ValidatedTDXQuote:
    quote: TDXQuote
    pck: PCKInfo
    tcb: TCBEvaluation | None
    checked_pck_crl: bool
    checked_root_ca_crl: bool
    checked_qe_identity: bool
    time: float
    tcb_info_evaluation_data_number: int | None = None
    qe_identity_evaluation_data_number: int | None = None


_BASIC_CONSTRAINTS = "2.5.29.19"
_KEY_USAGE = "2.5.29.15"
# Critical extensions an RFC 5280 path validator understands.
_KNOWN_CRITICAL = {_BASIC_CONSTRAINTS, _KEY_USAGE, "2.5.29.37", "2.5.29.17", "2.5.29.30", "2.5.29.36", "2.5.29.32", "2.5.29.54"}


def _rfc5280_path(path: list[Certificate], t: float) -> None:
    """The RFC 5280 checks beyond signatures, names and dates (which the caller made): issuers are CAs
    (basicConstraints cA, path length), may sign certificates (keyUsage keyCertSign), no unknown critical extension."""
    reasons = []
    for depth, cert in enumerate(path):
        for o, (critical, _) in cert.extensions.items():
            if critical and o not in _KNOWN_CRITICAL:
                reasons.append(f"'{cert.display_name}' has an unhandled critical extension {o}")
        if depth == 0:
            continue
        bc = cert.extension(_BASIC_CONSTRAINTS)
        is_ca, path_len = False, None
        if bc is not None:
            try:
                items = _der.seq(_der.parse(bc), "basicConstraints")
                for it in items:
                    if it.tag == _der.BOOLEAN:
                        is_ca = _der.boolean(it)
                    elif it.tag == _der.INTEGER:
                        path_len = _der.small_int(it, "pathLenConstraint")
            except (_der.DERError, AttestationError):
                reasons.append(f"'{cert.display_name}' has a malformed basicConstraints")
        if not is_ca:
            reasons.append(f"'{cert.display_name}' is not a CA")
        elif path_len is not None and depth - 1 > path_len:
            reasons.append(f"'{cert.display_name}' path length constraint {path_len} is exceeded")
        ku = cert.extension(_KEY_USAGE)
        if ku is not None:
            try:
                n = _der.parse(ku)
                bits = n.content[1:] if n.tag == _der.BIT_STRING and n.content else b""
                if not bits or not bits[0] & 0x04:
                    reasons.append(f"'{cert.display_name}' key usage does not allow certificate signing")
            except _der.DERError:
                reasons.append(f"'{cert.display_name}' has a malformed keyUsage")
    if reasons:
        raise AttestationError("untrusted_root",
                               f"PCK chain does not validate to the Intel SGX Root CA at {_der.iso(t)}: {'; '.join(reasons)}")


class TDXVerifier:
    """The PCK CRL, the Root CA CRL and the QE identity are required (without them a revoked PCK, or a quoting enclave
    that is not Intel's, would pass); the TCB info stays optional here and a policy's allowedTCBStatuses requires it."""

    def __init__(self, anchors: TDXAnchors | None = None, requires_revocation_and_qe_identity: bool = True):
        self.anchors = anchors or intel_anchors()
        self.requires_revocation_and_qe_identity = requires_revocation_and_qe_identity

    def verify(self, quote_bytes: bytes, collateral: TDXCollateral, t: float) -> ValidatedTDXQuote:
        q = TDXQuote(quote_bytes)
        if self.requires_revocation_and_qe_identity:
            missing = [m for m, absent in (
                ("the PCK CRL (pck_crl_platform.der or pck_crl_processor.der)", collateral.pck_crl is None),
                ("the Intel SGX Root CA CRL (root_ca_crl.der)", collateral.root_ca_crl is None),
                ("the QE identity (qeIdentity.json)", collateral.qe_identity_json is None)) if absent]
            if missing:
                raise AttestationError("collateral_missing",
                                       f"TDX evidence needs {', '.join(missing)}: without them a revoked PCK or a quoting enclave that is not Intel's would pass")
        chain = [Certificate(d) for d in pem_decode_all(q.pck_chain_pem)]
        if len(chain) < 2:
            raise AttestationError("malformed_evidence",
                                   f"TDX quote PCK chain has {len(chain)} certificate(s), expected leaf, intermediate and root")
        root = self.anchors.root
        path = [c for c in chain if not c.self_issued]
        supplied_root = next((c for c in chain if c.self_issued), None)
        if supplied_root is not None and supplied_root.der != root.der:
            raise AttestationError("untrusted_root",
                                   f"the PCK chain ends at '{supplied_root.display_name}', which is not the pinned Intel SGX Root CA")
        path.append(root)
        for c in path:
            c.check_validity(t)
        for i in range(len(path) - 1):
            if not path[i].is_signed_by(path[i + 1]):
                if path[i].issuer_bytes != path[i + 1].subject_bytes:
                    raise AttestationError("untrusted_root", f"'{path[i].display_name}' is not issued by '{path[i + 1].display_name}'")
                raise AttestationError("certificate_signature_invalid",
                                       f"'{path[i].display_name}' signature does not verify under '{path[i + 1].display_name}'")
        _rfc5280_path(path, t)
        leaf = path[0]
        pck = PCKInfo(leaf)

        if leaf.public_key.kind != "p256" or not leaf.public_key.verify_raw_ecdsa(q.qe_report_signature, q.qe_report.raw, hashes.SHA256()):
            raise AttestationError("qe_report_signature_invalid",
                                   f"QE report signature does not verify with the PCK certificate '{leaf.display_name}'")
        binding = hashlib.sha256(q.attestation_key + q.qe_auth_data).digest()
        if q.qe_report.report_data[:32] != binding or any(q.qe_report.report_data[32:]):
            raise AttestationError(
                "qe_report_binding_invalid",
                f"QE report data {q.qe_report.report_data[:4].hex()}… is not SHA-256(attestation key || QE auth data) {binding[:4].hex()}…")
        if not _verify_raw_p256(q.attestation_key, q.signature, q.signed_bytes):
            raise AttestationError("quote_signature_invalid", "TDX quote signature does not verify with its attestation key")

        checked_root = checked_pck = False
        if collateral.root_ca_crl is not None:
            crl = CRL(collateral.root_ca_crl)
            crl.check(root, t, path + self.anchors.tcb_signing, "Intel SGX Root CA CRL")
            checked_root = True
        if collateral.pck_crl is not None:
            crl = CRL(collateral.pck_crl)
            if crl.issuer_bytes != leaf.issuer_bytes:
                raise AttestationError("collateral_mismatch",
                                       f"PCK CRL issuer '{crl.issuer_cn or '?'}' is not the PCK certificate's issuer '{leaf.issuer_cn or '?'}'")
            crl.check(path[1], t, [leaf], "PCK CRL")
            checked_pck = True

        qe_status = qe_number = tcb_number = None
        if collateral.qe_identity_json is not None:
            identity = self._signed(collateral.qe_identity_json, "enclaveIdentity", collateral.qe_identity_issuer_chain, t,
                                    "QE identity", decode_qe_identity)
            _check_dates(identity["issueDate"], identity["nextUpdate"], t, "QE identity")
            qe_number = identity["tcbEvaluationDataNumber"]
            qe_status = qe_status_of(identity, q.qe_report)

        evaluation = None
        if collateral.tcb_info_json is not None:
            info = self._signed(collateral.tcb_info_json, "tcbInfo", collateral.tcb_info_issuer_chain, t, "TCB info",
                                decode_tcb_info)
            _check_dates(info["issueDate"], info["nextUpdate"], t, "TCB info")
            tcb_number = info["tcbEvaluationDataNumber"]
            evaluation = evaluate(info, pck, q.body, qe_status)
        return ValidatedTDXQuote(q, pck, evaluation, checked_pck, checked_root, qe_status is not None, t, tcb_number, qe_number)

    def _signed(self, data: bytes, key: str, issuer_chain: str | None, t: float, name: str, decode):
        body, sig = signed_object(data, key)
        candidates = []
        if issuer_chain is not None:
            for d in pem_decode_all(issuer_chain):
                c = Certificate(d)
                if not c.self_issued:
                    candidates.append(c)
        candidates += self.anchors.tcb_signing
        signers = [c for c in candidates
                   if c.is_signed_by(self.anchors.root) and c.public_key.kind == "p256"
                   and c.public_key.verify_raw_ecdsa(sig, body, hashes.SHA256())]
        if not signers:
            raise AttestationError("collateral_signature_invalid", f"{name} signature does not verify with any Intel SGX TCB Signing certificate")
        if not any(c.valid_at(t) for c in signers):
            raise AttestationError("certificate_not_valid_at_time", f"no TCB Signing certificate that signed the {name} is valid at {_der.iso(t)}")
        try:
            return decode(json.loads(body, object_pairs_hook=_der.json_first_wins))
        except (ValueError, _Bad, UnicodeDecodeError) as e:
            raise AttestationError("malformed_collateral", f"{name} JSON does not have the expected fields: {e}") from None


def _verify_raw_p256(raw_key: bytes, rs: bytes, message: bytes) -> bool:
    from cryptography.exceptions import InvalidSignature
    from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature
    try:
        key = ec.EllipticCurvePublicKey.from_encoded_point(ec.SECP256R1(), b"\x04" + raw_key)
        key.verify(encode_dss_signature(int.from_bytes(rs[:32], "big"), int.from_bytes(rs[32:], "big")), message,
                   ec.ECDSA(hashes.SHA256()))
        return True
    except (InvalidSignature, ValueError):
        return False


def _check_dates(issue: str, nxt: str, t: float, name: str) -> None:
    i = _der.parse_iso8601(issue)
    n = _der.parse_iso8601(nxt)
    if i is None or n is None:
        raise AttestationError("malformed_collateral", f"{name} issueDate/nextUpdate are not ISO 8601 times")
    if not (i <= t <= n):
        raise AttestationError("collateral_not_valid_at_time", f"{name} is valid {issue} .. {nxt}, not at {_der.iso(t)}")


def _status(text: str, what: str) -> str:
    if text not in STATUSES or text == "NotSupported":
        raise AttestationError("malformed_collateral", f'{what} has unknown tcbStatus "{text}"')
    return text


def _masked_equal(value: bytes, expected: str, mask: str) -> bool:
    e, m = _hex(expected), _hex(mask)
    if e is None or m is None or len(e) != len(value) or len(m) != len(value):
        return False
    return all(v & k == x & k for v, x, k in zip(value, e, m))


def qe_status_of(identity: dict, report: SGXEnclaveReport) -> str:
    if identity["id"] != "TD_QE":
        raise AttestationError("collateral_mismatch", f'QE identity id is "{identity["id"]}", expected "TD_QE"')
    signer = _hex(identity["mrsigner"])
    if signer is None or signer != report.mr_signer:
        raise AttestationError("qe_identity_mismatch", f"QE MRSIGNER {report.mr_signer.hex()} is not the identity's {identity['mrsigner'].lower()}")
    if report.isv_prod_id != identity["isvprodid"]:
        raise AttestationError("qe_identity_mismatch", f"QE ISVPRODID {report.isv_prod_id} is not the identity's {identity['isvprodid']}")
    misc = report.misc_select.to_bytes(4, "big")
    if not _masked_equal(misc, identity["miscselect"], identity["miscselectMask"]):
        raise AttestationError("qe_identity_mismatch", f"QE MISCSELECT {misc.hex()} does not match {identity['miscselect']} under mask {identity['miscselectMask']}")
    if not _masked_equal(report.attributes, identity["attributes"], identity["attributesMask"]):
        raise AttestationError("qe_identity_mismatch",
                               f"QE ATTRIBUTES {report.attributes.hex()} do not match {identity['attributes']} under mask {identity['attributesMask']}")
    for lv in identity["tcbLevels"]:
        if report.isv_svn >= lv["isvsvn"]:
            return _status(lv["tcbStatus"], "QE identity")
    return "NotSupported"


def _check_module(body: TDReportBody, mrsigner: str, attributes: str, mask: str) -> None:
    e = _hex(mrsigner)
    if e is None or e != body.mr_signer_seam:
        raise AttestationError("collateral_mismatch", f"MRSIGNERSEAM {body.mr_signer_seam[:4].hex()}… is not the TDX module identity's {mrsigner.lower()}")
    if not _masked_equal(body.seam_attributes, attributes, mask):
        raise AttestationError("collateral_mismatch", f"SEAMATTRIBUTES {body.seam_attributes.hex()} do not match {attributes} under mask {mask}")


def evaluate(info: dict, pck: PCKInfo, body: TDReportBody, qe_status: str | None) -> TCBEvaluation:
    if info["id"] != "TDX" or info["version"] != 3:
        raise AttestationError("collateral_mismatch", f"TCB info is id {info['id'] or 'none'} version {info['version']}, expected TDX version 3")
    if _hex(info["fmspc"]) != pck.fmspc:
        raise AttestationError("collateral_mismatch", f"TCB info FMSPC {info['fmspc'].lower()} is not the PCK certificate's {pck.fmspc.hex()}")
    if _hex(info["pceId"]) != pck.pce_id:
        raise AttestationError("collateral_mismatch", f"TCB info PCE-ID {info['pceId']} is not the PCK certificate's {pck.pce_id.hex()}")
    svn = body.tee_tcb_svn
    module_version = svn[1]
    module_status = None
    if module_version > 0:
        ident = f"TDX_{module_version:02X}"
        identity = next((m for m in (info["tdxModuleIdentities"] or []) if m["id"].upper() == ident), None)
        if identity is None:
            return combine("NotSupported", None, "NotSupported", qe_status)
        _check_module(body, identity["mrsigner"], identity["attributes"], identity["attributesMask"])
        module_status = "NotSupported"
        for lv in identity["tcbLevels"]:
            if svn[0] >= lv["isvsvn"]:
                module_status = _status(lv["tcbStatus"], f"TDX module identity {ident}")
                break
    elif info["tdxModule"] is not None:
        m = info["tdxModule"]
        _check_module(body, m["mrsigner"], m["attributes"], m["attributesMask"])
    tdx_start = 2 if module_version > 0 else 0
    for lv in info["tcbLevels"]:
        sgx, tdx = lv["sgx"], lv["tdx"]
        if len(sgx) != 16 or tdx is None or len(tdx) != 16:
            raise AttestationError("malformed_collateral", f"TCB info level {lv['tcbDate']} does not have 16 SGX and 16 TDX components")
        sgx_ok = all(pck.sgx_components[k] >= sgx[k] for k in range(16))
        tdx_ok = all(svn[k] >= tdx[k] for k in range(tdx_start, 16))
        if sgx_ok and pck.pce_svn >= lv["pcesvn"] and tdx_ok:
            return combine(_status(lv["tcbStatus"], "TCB info"), lv, module_status, qe_status)
    return combine("NotSupported", None, module_status, qe_status)


def combine(platform: str, level: dict | None, module: str | None, qe: str | None) -> TCBEvaluation:
    result = platform
    for other in (module, qe):
        if other is None:
            continue
        if other == "NotSupported":
            result = "NotSupported"
        elif other == "Revoked":
            if result != "NotSupported":
                result = "Revoked"
        elif other in ("OutOfDate", "OutOfDateConfigurationNeeded"):
            if result in ("UpToDate", "SWHardeningNeeded"):
                result = "OutOfDate"
            elif result in ("ConfigurationNeeded", "ConfigurationAndSWHardeningNeeded"):
                result = "OutOfDateConfigurationNeeded"
    return TCBEvaluation(result, platform, module, qe, level["tcbDate"] if level else None,
                         (level["advisoryIDs"] or []) if level else [])
