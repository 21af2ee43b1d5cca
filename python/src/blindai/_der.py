"""A strict minimal DER reader (the subset swift-asn1 gives the Swift verifier), and X.509 certificates and CRLs
parsed with it. Cryptographic primitives come from `cryptography`; parsing is done here so that the Python and the
Swift verifiers accept and refuse exactly the same bytes."""

from __future__ import annotations

import base64
import re
from dataclasses import dataclass
from datetime import datetime, timezone

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.hazmat.primitives.serialization import load_der_public_key

from .errors import AttestationError

SEQUENCE = 0x30
SET = 0x31
INTEGER = 0x02
BIT_STRING = 0x03
OCTET_STRING = 0x04
OID_TAG = 0x06
BOOLEAN = 0x01
UTC_TIME = 0x17
GENERALIZED_TIME = 0x18


class DERError(Exception):
    pass


@dataclass
class Node:
    tag: int  # the identifier octet (single-byte tags only; multi-byte tags are refused)
    content: bytes
    encoded: bytes
    children: list | None  # parsed children of a constructed node

    @property
    def constructed(self) -> bool:
        return self.tag & 0x20 != 0

    @property
    def tag_class(self) -> int:
        return self.tag >> 6

    @property
    def tag_number(self) -> int:
        return self.tag & 0x1F


def _parse_one(data: bytes, offset: int, depth: int) -> tuple[Node, int]:
    if depth > 50:
        raise DERError("nesting too deep")
    if offset >= len(data):
        raise DERError("truncated")
    tag = data[offset]
    if tag & 0x1F == 0x1F:
        raise DERError("multi-byte tags are not supported")
    i = offset + 1
    if i >= len(data):
        raise DERError("truncated length")
    first = data[i]
    i += 1
    if first < 0x80:
        length = first
    elif first == 0x80:
        raise DERError("indefinite length")
    else:
        n = first & 0x7F
        if n > 8 or i + n > len(data):
            raise DERError("bad length")
        raw = data[i:i + n]
        i += n
        if raw[0] == 0:
            raise DERError("non-minimal length")
        length = int.from_bytes(raw, "big")
        if length < 0x80:
            raise DERError("non-minimal length")
    if length > len(data) - i:
        raise DERError("length exceeds data")
    content = data[i:i + length]
    end = i + length
    children = None
    if tag & 0x20:
        children = []
        j = 0
        while j < len(content):
            child, j = _parse_one(content, j, depth + 1)
            children.append(child)
    return Node(tag, content, data[offset:end], children), end


def parse(data: bytes) -> Node:
    """One DER element that must fill `data` exactly."""
    node, end = _parse_one(bytes(data), 0, 0)
    if end != len(data):
        raise DERError("trailing data")
    return node


def parse_or(data: bytes, code: str, what: str) -> Node:
    try:
        return parse(data)
    except DERError as e:
        raise AttestationError(code, f"{what}: not valid DER ({e})") from None


def seq(node: Node, what: str, code: str = "malformed_certificate") -> list[Node]:
    if node.tag != SEQUENCE:
        raise AttestationError(code, f"{what}: expected a SEQUENCE, found tag 0x{node.tag:02x}")
    return node.children


def children(node: Node, what: str, code: str = "malformed_certificate") -> list[Node]:
    if node.children is None:
        raise AttestationError(code, f"{what}: expected a constructed DER element")
    return node.children


def oid(node: Node, what: str, code: str = "malformed_certificate") -> str:
    if node.tag != OID_TAG or not node.content:
        raise AttestationError(code, f"{what}: expected an OBJECT IDENTIFIER")
    c = node.content
    arcs = []
    value = 0
    if c[-1] & 0x80:
        raise AttestationError(code, f"{what}: expected an OBJECT IDENTIFIER")
    start = True
    for b in c:
        if start and b == 0x80:
            raise AttestationError(code, f"{what}: expected an OBJECT IDENTIFIER")
        start = False
        value = (value << 7) | (b & 0x7F)
        if not b & 0x80:
            arcs.append(value)
            value = 0
            start = True
    first = arcs[0]
    if first < 40:
        head = [0, first]
    elif first < 80:
        head = [1, first - 40]
    else:
        head = [2, first - 80]
    return ".".join(str(a) for a in head + arcs[1:])


def integer(node: Node, what: str, code: str = "malformed_certificate") -> int:
    """A DER INTEGER (minimal encoding) as a Python int."""
    c = node.content
    if node.tag != INTEGER or not c:
        raise AttestationError(code, f"{what}: expected an INTEGER")
    if len(c) > 1 and ((c[0] == 0 and c[1] < 0x80) or (c[0] == 0xFF and c[1] >= 0x80)):
        raise AttestationError(code, f"{what}: INTEGER is not minimally encoded")
    return int.from_bytes(c, "big", signed=True)


def small_int(node: Node, what: str, code: str = "malformed_certificate") -> int:
    v = integer(node, what, code)
    if not -(1 << 63) <= v < (1 << 63):
        raise AttestationError(code, f"{what}: expected a small INTEGER")
    return v


def integer_bytes(node: Node, what: str) -> bytes:
    """INTEGER content bytes as big-endian magnitude with redundant leading zeros removed (as the Swift reader)."""
    if node.tag != INTEGER:
        raise AttestationError("malformed_certificate", f"{what}: expected an INTEGER")
    if node.children is not None:
        raise AttestationError("malformed_certificate", f"{what}: expected a primitive DER element")
    b = node.content
    while len(b) > 1 and b[0] == 0:
        b = b[1:]
    return bytes(b)


def boolean(node: Node) -> bool:
    if node.tag != BOOLEAN or len(node.content) != 1 or node.content[0] not in (0, 0xFF):
        raise DERError("not a DER BOOLEAN")
    return node.content[0] == 0xFF


_UTC = re.compile(rb"^(\d{2})(\d{2})(\d{2})(\d{2})(\d{2})(\d{2})Z$")
_GEN = re.compile(rb"^(\d{4})(\d{2})(\d{2})(\d{2})(\d{2})(\d{2})(\.\d*[1-9])?Z$")


def time_of(node: Node, what: str, code: str = "malformed_certificate") -> float:
    """UTCTime or GeneralizedTime as POSIX seconds (whole seconds, as the Swift reader)."""
    if node.tag == UTC_TIME:
        m = _UTC.match(node.content)
        if not m:
            raise AttestationError(code, f"{what}: invalid time")
        yy = int(m.group(1))
        y = 2000 + yy if yy < 50 else 1900 + yy
        fields = [y] + [int(m.group(k)) for k in range(2, 7)]
    elif node.tag == GENERALIZED_TIME:
        m = _GEN.match(node.content)
        if not m:
            raise AttestationError(code, f"{what}: invalid time")
        fields = [int(m.group(k)) for k in range(1, 7)]
    else:
        raise AttestationError(code, f"{what}: expected UTCTime or GeneralizedTime")
    y, mo, d, hh, mm, ss = fields
    if not (1 <= mo <= 12 and 1 <= d <= 31 and hh < 24 and mm < 60 and ss < 61):
        raise AttestationError(code, f"{what}: invalid time")
    try:
        datetime(y, mo, d, tzinfo=timezone.utc)
    except ValueError:
        raise AttestationError(code, f"{what}: invalid time") from None
    return float(_days_from_civil(y, mo, d) * 86400 + hh * 3600 + mm * 60 + ss)


def _days_from_civil(y: int, m: int, d: int) -> int:
    yy = y - 1 if m <= 2 else y
    era = (yy if yy >= 0 else yy - 399) // 400
    yoe = yy - era * 400
    mp = (m + 9) % 12
    doy = (153 * mp + 2) // 5 + d - 1
    doe = yoe * 365 + yoe // 4 - yoe // 100 + doy
    return era * 146097 + doe - 719468


def iso(t: float) -> str:
    return datetime.fromtimestamp(int(t), timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


_ISO_RE = re.compile(r"^(\d{4})-(\d{2})-(\d{2})T(\d{2}):(\d{2}):(\d{2})(\.\d+)?(Z|[+-]\d{2}:?\d{2})$")


def parse_iso8601(text: str) -> float | None:
    """ISO 8601 date-time with a time zone (`Z` or an offset), optional fractional seconds; None if invalid."""
    m = _ISO_RE.match(text)
    if not m:
        return None
    try:
        tz = m.group(8)
        s = text if tz != "Z" else text[:-1] + "+00:00"
        if tz != "Z" and ":" not in tz:
            s = text[:-2] + ":" + text[-2:]
        return datetime.fromisoformat(s).timestamp()
    except ValueError:
        return None


# MARK: JSON object hooks

def json_no_duplicates(pairs):
    """`object_pairs_hook` refusing duplicate member names, as the Swift verifier does (`JSONMemberCheck`)."""
    out = {}
    for k, v in pairs:
        if k in out:
            raise ValueError(f'duplicate member "{k}"')
        out[k] = v
    return out


def json_first_wins(pairs):
    """`object_pairs_hook` keeping the first of duplicate members, as Swift's JSONDecoder does (used only for Intel-signed
    collateral bodies, whose bytes are authenticated, to decode them exactly as the Swift verifier does)."""
    out = {}
    for k, v in pairs:
        out.setdefault(k, v)
    return out


# MARK: PEM

_PEM_RE = re.compile(r"-----BEGIN CERTIFICATE-----(.*?)-----END CERTIFICATE-----", re.S)


def pem_decode_all(text: str) -> list[bytes]:
    """Every CERTIFICATE block's DER bytes, in order (blocks whose base64 is invalid are skipped, as in Swift)."""
    out = []
    for m in _PEM_RE.finditer(text):
        body = "".join(m.group(1).split())
        try:
            out.append(base64.b64decode(body, validate=True))
        except (ValueError, base64.binascii.Error):
            continue
    return out


# MARK: Signature algorithms

OID_RSA = "1.2.840.113549.1.1.1"
OID_PSS = "1.2.840.113549.1.1.10"
OID_MGF1 = "1.2.840.113549.1.1.8"
OID_SHA256 = "2.16.840.1.101.3.4.2.1"
OID_SHA384 = "2.16.840.1.101.3.4.2.2"
OID_EC = "1.2.840.10045.2.1"
OID_P256 = "1.2.840.10045.3.1.7"
OID_P384 = "1.3.132.0.34"
OID_ECDSA_SHA256 = "1.2.840.10045.4.3.2"
OID_ECDSA_SHA384 = "1.2.840.10045.4.3.3"
OID_CN = "2.5.4.3"

PSS_SHA384 = "RSASSA-PSS-SHA384"
ECDSA_SHA256 = "ECDSA-SHA256"
ECDSA_SHA384 = "ECDSA-SHA384"


def signature_algorithm(node: Node, what: str) -> str:
    parts = seq(node, what)
    if not parts:
        raise AttestationError("malformed_certificate", f"{what}: empty AlgorithmIdentifier")
    o = oid(parts[0], what)
    if o == OID_ECDSA_SHA256:
        return ECDSA_SHA256
    if o == OID_ECDSA_SHA384:
        return ECDSA_SHA384
    if o == OID_PSS:
        if len(parts) != 2:
            raise AttestationError("malformed_certificate", f"{what}: RSASSA-PSS without parameters is not accepted")
        _check_pss(parts[1], what)
        return PSS_SHA384
    raise AttestationError("malformed_certificate", f"{what}: unsupported signature algorithm {o}")


def _check_pss(node: Node, what: str) -> None:
    h = mgf = mgf_hash = None
    salt, trailer = 20, 1
    for field in seq(node, f"{what} PSS parameters"):
        if field.tag_class != 2 or not children(field, what):
            raise AttestationError("malformed_certificate", f"{what}: unexpected PSS parameter field")
        inner = field.children[0]
        n = field.tag_number
        if n == 0:
            alg = seq(inner, what)
            if not alg:
                raise AttestationError("malformed_certificate", f"{what}: missing field 0")
            h = oid(alg[0], what)
        elif n == 1:
            m = seq(inner, what)
            if not m:
                raise AttestationError("malformed_certificate", f"{what}: missing field 0")
            mgf = oid(m[0], what)
            if len(m) > 1:
                mh = seq(m[1], what)
                if not mh:
                    raise AttestationError("malformed_certificate", f"{what}: missing field 0")
                mgf_hash = oid(mh[0], what)
        elif n == 2:
            salt = small_int(inner, what)
        elif n == 3:
            trailer = small_int(inner, what)
        else:
            raise AttestationError("malformed_certificate", f"{what}: unexpected PSS parameter [{n}]")
    if not (h == OID_SHA384 and mgf == OID_MGF1 and mgf_hash == OID_SHA384 and salt == 48 and trailer == 1):
        raise AttestationError(
            "malformed_certificate",
            f"{what}: RSASSA-PSS parameters must be SHA-384/MGF1-SHA-384/salt 48/trailer 1, found hash {h or 'sha1'}, salt {salt}")


def _bits(node: Node, what: str, check_padding: bool) -> bytes:
    if node.tag != BIT_STRING or not node.content:
        raise DERError(f"{what} is not a BIT STRING")
    pad = node.content[0]
    if pad > 7 or (pad and len(node.content) == 1):
        raise DERError(f"{what} is not a BIT STRING")
    if pad and node.content[-1] & ((1 << pad) - 1):
        raise DERError(f"{what} is not a DER BIT STRING")
    if check_padding and pad != 0:
        raise AttestationError("malformed_certificate", "certificate: signature BIT STRING has padding bits")
    return node.content[1:]


class PublicKey:
    """An RSA, P-256 or P-384 key from a SubjectPublicKeyInfo."""

    def __init__(self, kind: str, key):
        self.kind = kind  # "rsa", "p256", "p384"
        self.key = key

    @property
    def name(self) -> str:
        if self.kind == "rsa":
            return f"RSA-{self.key.key_size}"
        return "EC P-256" if self.kind == "p256" else "EC P-384"

    def verify(self, signature: bytes, message: bytes, algorithm: str) -> bool:
        try:
            if self.kind == "rsa":
                if algorithm != PSS_SHA384:
                    return False
                self.key.verify(signature, message, padding.PSS(mgf=padding.MGF1(hashes.SHA384()), salt_length=48),
                                hashes.SHA384())
                return True
            if algorithm == PSS_SHA384:
                return False
            h = hashes.SHA256() if algorithm == ECDSA_SHA256 else hashes.SHA384()
            self.key.verify(signature, message, ec.ECDSA(h))
            return True
        except (InvalidSignature, ValueError, TypeError):
            return False

    def verify_raw_ecdsa(self, rs: bytes, message: bytes, h) -> bool:
        """An r||s signature (fixed width) with hash `h`."""
        from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature
        if self.kind == "rsa":
            return False
        half = len(rs) // 2
        r = int.from_bytes(rs[:half], "big")
        s = int.from_bytes(rs[half:], "big")
        try:
            self.key.verify(encode_dss_signature(r, s), message, ec.ECDSA(h))
            return True
        except (InvalidSignature, ValueError, TypeError):
            return False


def _parse_key(spki: Node) -> PublicKey:
    parts = seq(spki, "SubjectPublicKeyInfo")
    if len(parts) != 2:
        raise AttestationError("malformed_certificate", "SubjectPublicKeyInfo: expected 2 fields")
    alg = seq(parts[0], "SPKI algorithm")
    if not alg:
        raise AttestationError("malformed_certificate", "SPKI algorithm: missing field 0")
    o = oid(alg[0], "SPKI algorithm")
    try:
        if o in (OID_RSA, OID_PSS):
            key = load_der_public_key(spki.encoded)
            if not isinstance(key, rsa.RSAPublicKey):
                raise AttestationError("malformed_certificate", "public key could not be loaded: not RSA")
            if key.key_size < 2048:
                raise AttestationError("malformed_certificate", f"public key could not be loaded: RSA-{key.key_size} is too small")
            return PublicKey("rsa", key)
        if o == OID_EC:
            if len(alg) != 2:
                raise AttestationError("malformed_certificate", "EC key without a curve")
            curve = oid(alg[1], "EC curve")
            if curve not in (OID_P256, OID_P384):
                raise AttestationError("malformed_certificate", f"unsupported EC curve {curve}")
            key = load_der_public_key(spki.encoded)
            want = ec.SECP256R1 if curve == OID_P256 else ec.SECP384R1
            if not isinstance(key, ec.EllipticCurvePublicKey) or not isinstance(key.curve, want):
                raise AttestationError("malformed_certificate", "public key could not be loaded")
            return PublicKey("p256" if curve == OID_P256 else "p384", key)
    except AttestationError:
        raise
    except Exception as e:  # cryptography raises ValueError/UnsupportedAlgorithm on bad keys
        raise AttestationError("malformed_certificate", f"public key could not be loaded: {e}") from None
    raise AttestationError("malformed_certificate", f"unsupported public key algorithm {o}")


def common_name(name: Node, code: str = "malformed_certificate") -> str | None:
    for rdn in seq(name, "Name", code):
        for attr in children(rdn, "RelativeDistinguishedName", code):
            parts = seq(attr, "AttributeTypeAndValue", code)
            if len(parts) != 2:
                continue
            if oid(parts[0], "attribute type", code) == OID_CN and parts[1].children is None:
                return parts[1].content.decode("utf-8", "replace")
    return None


class Certificate:
    """A minimal X.509 v3 certificate that keeps the exact signed bytes (mirrors Swift's `DERCertificate`)."""

    def __init__(self, der: bytes):
        der = bytes(der)
        self.der = der
        root = parse_or(der, "malformed_certificate", "certificate")
        top = seq(root, "certificate")
        if len(top) != 3:
            raise AttestationError("malformed_certificate", f"certificate: expected 3 top-level fields, found {len(top)}")
        self.tbs_bytes = top[0].encoded
        self.signature_algorithm = signature_algorithm(top[1], "certificate signatureAlgorithm")
        try:
            self.signature = _bits(top[2], "signatureValue", True)
        except DERError:
            raise AttestationError("malformed_certificate", "certificate: signatureValue is not a BIT STRING") from None
        tbs = seq(top[0], "tbsCertificate")
        if tbs and tbs[0].tag in (0xA0, 0x80):  # [0] version (swift-asn1 compares tag class and number only)
            tbs = tbs[1:]
        if len(tbs) < 6:
            raise AttestationError("malformed_certificate", "tbsCertificate: too few fields")
        self.serial = integer_bytes(tbs[0], "serialNumber")
        inner = signature_algorithm(tbs[1], "tbsCertificate signature")
        if inner != self.signature_algorithm:
            raise AttestationError("malformed_certificate",
                                   f"certificate: inner and outer signature algorithms differ ({inner} vs {self.signature_algorithm})")
        self.issuer_bytes = tbs[2].encoded
        validity = seq(tbs[3], "validity")
        if len(validity) != 2:
            raise AttestationError("malformed_certificate", "validity: expected 2 times")
        self.not_before = time_of(validity[0], "notBefore")
        self.not_after = time_of(validity[1], "notAfter")
        self.subject_bytes = tbs[4].encoded
        self.subject_cn = common_name(tbs[4])
        self.issuer_cn = common_name(tbs[2])
        self.spki = tbs[5].encoded
        self.public_key = _parse_key(tbs[5])
        exts: dict[str, tuple[bool, bytes]] = {}
        for field in tbs[6:]:
            if field.tag not in (0xA3, 0x83):  # [3] extensions
                continue
            lst = children(field, "extensions")
            if not lst:
                continue
            for ext in seq(lst[0], "extension list"):
                parts = seq(ext, "extension")
                if len(parts) not in (2, 3):
                    raise AttestationError("malformed_certificate", "extension: unexpected field count")
                o = oid(parts[0], "extension id")
                critical = False
                if len(parts) == 3:
                    try:
                        critical = boolean(parts[1])
                    except DERError:
                        raise AttestationError("malformed_certificate", f"extension {o}: critical is not a BOOLEAN") from None
                value = parts[-1]
                if value.tag != OCTET_STRING:
                    raise AttestationError("malformed_certificate", f"extension {o}: extnValue is not an OCTET STRING")
                if o in exts:
                    raise AttestationError("malformed_certificate", f"extension {o} appears twice")
                exts[o] = (critical, value.content)
        self.extensions = exts

    @staticmethod
    def from_bytes(data: bytes) -> "Certificate":
        """PEM or DER (DER when the first byte is 0x30)."""
        data = bytes(data)
        if data[:1] == b"\x30":
            return Certificate(data)
        blocks = pem_decode_all(data.decode("utf-8", "replace"))
        if not blocks:
            raise AttestationError("malformed_certificate", "no PEM CERTIFICATE block found")
        return Certificate(blocks[0])

    @property
    def self_issued(self) -> bool:
        return self.issuer_bytes == self.subject_bytes

    def valid_at(self, t: float) -> bool:
        return self.not_before <= t <= self.not_after

    def extension(self, o: str) -> bytes | None:
        e = self.extensions.get(o)
        return e[1] if e else None

    def is_signed_by(self, issuer: "Certificate") -> bool:
        return self.issuer_bytes == issuer.subject_bytes and issuer.public_key.verify(
            self.signature, self.tbs_bytes, self.signature_algorithm)

    @property
    def display_name(self) -> str:
        return self.subject_cn if self.subject_cn is not None else f"certificate {self.serial.hex()}"

    def check_validity(self, t: float) -> None:
        if not self.valid_at(t):
            raise AttestationError(
                "certificate_not_valid_at_time",
                f"certificate '{self.display_name}' is valid {iso(self.not_before)} .. {iso(self.not_after)}, not at {iso(t)}")


class CRL:
    """An X.509 v2 CRL (mirrors Swift's `DERCertificateRevocationList`)."""

    def __init__(self, der: bytes):
        def bad(why: str) -> AttestationError:
            return AttestationError("crl_invalid", f"CRL: {why}")

        der = bytes(der)
        try:
            root = parse(der)
        except DERError:
            raise bad("not valid DER") from None
        if root.tag != SEQUENCE:
            raise bad("not a SEQUENCE")
        top = root.children
        if len(top) != 3:
            raise bad("expected 3 top-level fields")
        self.tbs_bytes = top[0].encoded
        try:
            self.signature_algorithm = signature_algorithm(top[1], "CRL signatureAlgorithm")
            self.signature = _bits(top[2], "CRL signature", False)
        except (AttestationError, DERError) as e:
            raise bad(f"bad signature fields ({e})") from None
        try:
            f = seq(top[0], "tbsCertList")
            if f and f[0].tag == INTEGER:
                f = f[1:]
            if len(f) < 3:
                raise bad("too few fields")
            self.issuer_bytes = f[1].encoded
            self.issuer_cn = common_name(f[1])
            self.this_update = time_of(f[2], "thisUpdate")
            idx = 3
            self.next_update = None
            if idx < len(f) and f[idx].tag in (UTC_TIME, GENERALIZED_TIME):
                self.next_update = time_of(f[idx], "nextUpdate")
                idx += 1
            serials = set()
            if idx < len(f) and f[idx].tag == SEQUENCE:
                for entry in seq(f[idx], "revokedCertificates"):
                    e = seq(entry, "revoked entry")
                    if not e:
                        raise bad("empty revoked entry")
                    serials.add(integer_bytes(e[0], "revoked serial"))
            self.revoked = serials
        except AttestationError as e:
            if e.code == "crl_invalid":
                raise
            raise AttestationError("crl_invalid", f"CRL: {e.reason}") from None

    def is_signed_by(self, issuer: Certificate) -> bool:
        return self.issuer_bytes == issuer.subject_bytes and issuer.public_key.verify(
            self.signature, self.tbs_bytes, self.signature_algorithm)

    def check(self, issuer: Certificate, t: float, certificates: list[Certificate], name: str) -> None:
        if not self.is_signed_by(issuer):
            raise AttestationError("crl_invalid", f"{name} signature does not verify under '{issuer.display_name}'")
        if not (self.this_update <= t and (self.next_update is None or t <= self.next_update)):
            nu = iso(self.next_update) if self.next_update is not None else "open"
            raise AttestationError("collateral_not_valid_at_time", f"{name} is valid {iso(self.this_update)} .. {nu}, not at {iso(t)}")
        for c in certificates:
            if c.issuer_bytes == self.issuer_bytes and c.serial in self.revoked:
                raise AttestationError("certificate_revoked", f"'{c.display_name}' serial {c.serial.hex()} is revoked by the {name}")


def subject_public_key_info(certificate_der: bytes) -> bytes:
    """The DER SubjectPublicKeyInfo of any X.509 certificate (Swift's `ReportDataBinding.subjectPublicKeyInfo`)."""
    root = parse_or(bytes(certificate_der), "malformed_certificate", "TLS certificate")
    top = seq(root, "TLS certificate")
    if not top:
        raise AttestationError("malformed_certificate", "TLS certificate: empty")
    tbs = seq(top[0], "TLS tbsCertificate")
    if tbs and tbs[0].tag in (0xA0, 0x80):
        tbs = tbs[1:]
    if len(tbs) < 6 or tbs[5].tag != SEQUENCE:
        raise AttestationError("malformed_certificate", "TLS certificate: no SubjectPublicKeyInfo")
    return tbs[5].encoded
