"""SEV-SNP: the ATTESTATION_REPORT (versions 2 to 5) and its verification against AMD's certificate chain.
Mirrors Sources/BlindAIAttestation/SNPReport.swift and SNPVerifier.swift check by check, in the same order."""

from __future__ import annotations

import hashlib
import struct
from dataclasses import dataclass

from cryptography.hazmat.primitives import hashes

from .. import _der
from .._der import Certificate
from ..errors import AttestationError
from . import _roots

SIMULATED_ROOT_PREFIX = "BlindAI Simulated"
PRODUCTS = ("Milan", "Genoa", "Turin")


def product_from_cpuid(family: int, model: int) -> str | None:
    if family == 0x19 and 0x00 <= model <= 0x0F:
        return "Milan"
    if family == 0x19 and (0x10 <= model <= 0x1F or 0xA0 <= model <= 0xAF):
        return "Genoa"
    if family == 0x1A and 0x00 <= model <= 0x1F:
        return "Turin"
    return None


def product_from_common_name(cn: str | None) -> str | None:
    if cn is None:
        return None
    for p in PRODUCTS:
        if cn.endswith("-" + p):
            return p
    return None


@dataclass(frozen=True)
class SNPTCB:
    bootloader: int
    tee: int
    snp: int
    microcode: int
    fmc: int | None = None

    @staticmethod
    def decode(raw: int, product: str) -> "SNPTCB":
        b = raw.to_bytes(8, "little")
        if product == "Turin":
            return SNPTCB(bootloader=b[1], tee=b[2], snp=b[3], microcode=b[7], fmc=b[0])
        return SNPTCB(bootloader=b[0], tee=b[1], snp=b[6], microcode=b[7])

    def as_json(self) -> dict:
        d = {"bootloader": self.bootloader, "tee": self.tee, "snp": self.snp, "microcode": self.microcode}
        if self.fmc is not None:
            d["fmc"] = self.fmc
        return d


class SNPReport:
    SIZE = 0x4A0
    SIGNED_END = 0x2A0

    def __init__(self, data: bytes):
        data = bytes(data)
        if len(data) != self.SIZE:
            raise AttestationError("malformed_evidence", f"SNP report is {len(data)} bytes, expected {self.SIZE}")
        self.raw = data
        u32 = lambda o: struct.unpack_from("<I", data, o)[0]  # noqa: E731
        u64 = lambda o: struct.unpack_from("<Q", data, o)[0]  # noqa: E731
        self.version = u32(0x00)
        if not 2 <= self.version <= 5:
            raise AttestationError("unsupported_version", f"SNP report version {self.version} is not supported (2 to 5)")
        self.guest_svn = u32(0x04)
        self.policy = u64(0x08)
        self.family_id = data[0x10:0x20]
        self.image_id = data[0x20:0x30]
        self.vmpl = u32(0x30)
        self.signature_algorithm = u32(0x34)
        self.current_tcb = u64(0x38)
        self.platform_info = u64(0x40)
        self.signer_info = u32(0x48)
        self.report_data = data[0x50:0x90]
        self.measurement = data[0x90:0xC0]
        self.host_data = data[0xC0:0xE0]
        self.id_key_digest = data[0xE0:0x110]
        self.author_key_digest = data[0x110:0x140]
        self.report_id = data[0x140:0x160]
        self.report_id_ma = data[0x160:0x180]
        self.reported_tcb_raw = u64(0x180)
        self.cpuid_family = data[0x188]
        self.cpuid_model = data[0x189]
        self.cpuid_stepping = data[0x18A]
        self.chip_id = data[0x1A0:0x1E0]
        self.committed_tcb = u64(0x1E0)
        self.launch_tcb = u64(0x1F0)
        if self.signature_algorithm != 1:
            raise AttestationError(
                "malformed_evidence",
                f"SNP report signature algorithm {self.signature_algorithm} is not ECDSA P-384 with SHA-384 (1)")
        r_le = data[0x2A0:0x2A0 + 72]
        s_le = data[0x2A0 + 72:0x2A0 + 144]
        if any(r_le[48:]) or any(s_le[48:]):
            raise AttestationError("malformed_evidence", "SNP report signature components exceed 48 bytes")
        self.sig_r = r_le[:48][::-1]
        self.sig_s = s_le[:48][::-1]

    @property
    def debug(self) -> bool:
        return bool(self.policy & (1 << 19))

    @property
    def signer(self) -> str | None:
        return {0: "VCEK", 1: "VLEK"}.get((self.signer_info >> 2) & 0x7)

    @property
    def chip_key_masked(self) -> bool:
        """SIGNER_INFO bit 1, MASK_CHIP_KEY: the firmware did not sign the report with the VCEK."""
        return bool(self.signer_info & 0x2)

    @property
    def chip_id_masked(self) -> bool:
        """CHIP_ID is all zero (the platform was configured with MaskChipId)."""
        return not any(self.chip_id)

    @property
    def guest_policy(self) -> dict:
        p = self.policy
        return {"abiMinor": p & 0xFF, "abiMajor": (p >> 8) & 0xFF, "smt": bool(p & (1 << 16)), "migrateMA": bool(p & (1 << 18)),
                "debug": bool(p & (1 << 19)), "singleSocket": bool(p & (1 << 20))}

    @property
    def cpuid_product(self) -> str | None:
        return product_from_cpuid(self.cpuid_family, self.cpuid_model) if self.version >= 3 else None


@dataclass
class ProductRoots:
    product: str
    ark: Certificate
    ask: Certificate
    asvk: Certificate


_AMD: list[ProductRoots] | None = None


def amd_roots() -> list[ProductRoots]:
    global _AMD
    if _AMD is None:
        def load(p, a, b, c):
            return ProductRoots(p, Certificate.from_bytes(a.encode()), Certificate.from_bytes(b.encode()),
                                Certificate.from_bytes(c.encode()))
        _AMD = [
            load("Milan", _roots.AMD_MILAN_ARK, _roots.AMD_MILAN_ASK, _roots.AMD_MILAN_ASVK),
            load("Genoa", _roots.AMD_GENOA_ARK, _roots.AMD_GENOA_ASK, _roots.AMD_GENOA_ASVK),
            load("Turin", _roots.AMD_TURIN_ARK, _roots.AMD_TURIN_ASK, _roots.AMD_TURIN_ASVK),
        ]
    return _AMD


@dataclass
class ValidatedSNPReport:
    report: SNPReport
    product: str
    signer: str
    reported_tcb: SNPTCB
    simulated: bool
    endorsement_key: Certificate
    time: float
    root_key_sha256: str = ""
    csp_id: str | None = None
    checked_crl: bool = False


OID_BOOTLOADER = "1.3.6.1.4.1.3704.1.3.1"
OID_TEE = "1.3.6.1.4.1.3704.1.3.2"
OID_SNP = "1.3.6.1.4.1.3704.1.3.3"
OID_MICROCODE = "1.3.6.1.4.1.3704.1.3.8"
OID_FMC = "1.3.6.1.4.1.3704.1.3.9"
OID_HWID = "1.3.6.1.4.1.3704.1.4"


class SNPVerifier:
    """Report signature by the VCEK/VLEK, VEK <- ASK/ASVK <- ARK (RSASSA-PSS), ARK pinned per product, validity at
    an injected time, TCB and hardware-ID extensions against the report."""

    def __init__(self, roots: list[ProductRoots] | None = None, allow_simulated: bool = False):
        self.roots = roots if roots is not None else amd_roots()
        self.allow_simulated = allow_simulated

    def verify(self, report: bytes, endorsement_key: bytes, chain: list[bytes], t: float, crl: bytes | None = None) -> ValidatedSNPReport:
        r = SNPReport(report)
        vek = Certificate.from_bytes(endorsement_key)
        supplied = [Certificate.from_bytes(c) for c in chain]
        signer = r.signer
        if signer is None:
            raise AttestationError("malformed_evidence", f"SNP report signer_info {r.signer_info:x} names an unknown signing key")
        intermediate, root, simulated, product = self._resolve_chain(vek, signer, supplied)
        for cert in (vek, intermediate, root):
            cert.check_validity(t)
        cpu = r.cpuid_product
        if cpu is not None and cpu != product:
            raise AttestationError(
                "product_mismatch",
                f"report CPUID family 0x{r.cpuid_family:x} model 0x{r.cpuid_model:x} is {cpu}, but the certificate chain is {product}")
        if r.chip_key_masked:
            raise AttestationError("report_signature_invalid",
                                   f"SNP report signer_info 0x{r.signer_info:x} has MASK_CHIP_KEY (bit 1) set: the firmware did not sign it")
        if vek.public_key.kind != "p384":
            raise AttestationError("malformed_certificate", f"{signer} key is {vek.public_key.name}, expected EC P-384")
        if not vek.public_key.verify_raw_ecdsa(r.sig_r + r.sig_s, r.raw[:SNPReport.SIGNED_END], hashes.SHA384()):
            raise AttestationError("report_signature_invalid",
                                   f"SNP report signature does not verify with the {signer} '{vek.display_name}'")
        self._check_tcb(vek, r, product)
        if signer == "VCEK":
            self._check_hwid(vek, r, product)
        csp_id = self._csp_id(vek) if signer == "VLEK" else None
        if crl is not None:
            lst = _der.CRL(crl)
            if lst.issuer_bytes != root.subject_bytes:
                raise AttestationError("crl_invalid", f"AMD CRL issuer '{lst.issuer_cn or '?'}' is not the chain's root '{root.display_name}'")
            lst.check(root, t, [intermediate, root], f"AMD CRL of '{root.display_name}'")
        return ValidatedSNPReport(r, product, signer, SNPTCB.decode(r.reported_tcb_raw, product), simulated, vek, t,
                                  hashlib.sha256(root.spki).hexdigest(), csp_id, crl is not None)

    @staticmethod
    def _csp_id(vlek: Certificate) -> str | None:
        value = vlek.extension("1.3.6.1.4.1.3704.1.5")
        if value is None:
            return None
        try:
            n = _der.parse(value)
            if n.tag != 0x16 or any(b >= 0x80 for b in n.content):
                raise _der.DERError("not IA5String")
            return n.content.decode("ascii")
        except _der.DERError:
            raise AttestationError("malformed_certificate", "VLEK cspID extension (1.3.6.1.4.1.3704.1.5) is not a DER IA5String") from None

    def _resolve_chain(self, vek: Certificate, signer: str, supplied: list[Certificate]):
        supplied_intermediates = [c for c in supplied if not c.self_issued]
        supplied_roots = [c for c in supplied if c.self_issued]
        pinned_intermediates = [p.ask if signer == "VCEK" else p.asvk for p in self.roots]
        candidates = supplied_intermediates or pinned_intermediates
        named = [c for c in candidates if c.subject_bytes == vek.issuer_bytes]
        if not named:
            raise AttestationError(
                "untrusted_root",
                f"no trusted {'ASK' if signer == 'VCEK' else 'ASVK'} named '{vek.issuer_cn or '?'}' issued the {signer}; "
                f"trusted products: {', '.join(p.product for p in self.roots)}")
        intermediate = next((c for c in named if vek.is_signed_by(c)), None)
        if intermediate is None:
            raise AttestationError("certificate_signature_invalid",
                                   f"{signer} signature does not verify under '{named[0].display_name}' (RSASSA-PSS SHA-384)")
        icn = intermediate.subject_cn
        if signer == "VCEK" and icn is not None and "VLEK" in icn:
            raise AttestationError("signer_mismatch", f"report says VCEK but the endorsement key was issued by '{intermediate.display_name}'")
        if signer == "VLEK" and not (icn is not None and "VLEK" in icn) and not (icn or "").startswith(SIMULATED_ROOT_PREFIX):
            raise AttestationError("signer_mismatch", f"report says VLEK but the endorsement key was issued by '{intermediate.display_name}'")
        root_candidates = [c for c in supplied_roots + [p.ark for p in self.roots] if c.subject_bytes == intermediate.issuer_bytes]
        if not root_candidates:
            raise AttestationError("untrusted_root", f"no root named '{intermediate.issuer_cn or '?'}' issued '{intermediate.display_name}'")
        root = next((c for c in root_candidates if intermediate.is_signed_by(c)), None)
        if root is None:
            raise AttestationError("certificate_signature_invalid",
                                   f"'{intermediate.display_name}' signature does not verify under '{root_candidates[0].display_name}'")
        if not root.is_signed_by(root):
            raise AttestationError("certificate_signature_invalid", f"root '{root.display_name}' self-signature does not verify")
        pinned = next((p for p in self.roots if p.ark.der == root.der), None)
        if pinned is not None:
            return intermediate, root, False, pinned.product
        if (root.subject_cn or "").startswith(SIMULATED_ROOT_PREFIX):
            if not self.allow_simulated:
                raise AttestationError("simulated_root_not_allowed",
                                       f"the chain ends at the simulated root '{root.display_name}' and simulated evidence is not allowed")
            product = product_from_common_name(intermediate.subject_cn) or product_from_common_name(root.subject_cn)
            if product is None:
                raise AttestationError("malformed_certificate", f"simulated chain '{intermediate.display_name}' does not name a product")
            return intermediate, root, True, product
        raise AttestationError(
            "untrusted_root",
            f"the chain ends at '{root.display_name}' (SHA-256 {hashlib.sha256(root.der).hexdigest()[:8]}…), which is not a pinned AMD ARK")

    @staticmethod
    def _check_tcb(vek: Certificate, r: SNPReport, product: str) -> None:
        tcb = SNPTCB.decode(r.reported_tcb_raw, product)
        fields = [(OID_BOOTLOADER, tcb.bootloader, "bootloader"), (OID_TEE, tcb.tee, "tee"), (OID_SNP, tcb.snp, "snp"),
                  (OID_MICROCODE, tcb.microcode, "microcode")]
        if product == "Turin":
            fields.append((OID_FMC, tcb.fmc or 0, "fmc"))
        for o, reported, name in fields:
            value = vek.extension(o)
            if value is None:
                raise AttestationError("tcb_mismatch", f"endorsement key has no {name} SPL extension ({o})")
            try:
                certified = _der.small_int(_der.parse(value), name)
            except (_der.DERError, AttestationError):
                raise AttestationError("malformed_certificate", f"{name} SPL extension ({o}) is not a DER INTEGER") from None
            if certified != reported:
                raise AttestationError("tcb_mismatch",
                                       f"report {name} SVN {reported} differs from the endorsement key's {name} SPL {certified}")

    @staticmethod
    def _check_hwid(vek: Certificate, r: SNPReport, product: str) -> None:
        raw = vek.extension(OID_HWID)
        if raw is None:
            raise AttestationError("chip_id_mismatch", f"VCEK has no hwID extension ({OID_HWID})")
        n = 8 if product == "Turin" else 64
        if len(raw) == n:
            hwid = raw
        elif len(raw) == n + 2 and raw[0] == 0x04 and raw[1] == n:
            hwid = raw[2:]
        else:
            raise AttestationError("malformed_certificate",
                                   f"VCEK hwID extension is {len(raw)} bytes; expected {n} raw or OCTET STRING-wrapped")
        if r.chip_id_masked:
            return
        if r.chip_id[:n] != hwid or any(r.chip_id[n:]):
            raise AttestationError("chip_id_mismatch",
                                   f"report chip_id {r.chip_id[:4].hex()}… differs from the VCEK hwID {hwid[:4].hex()}…")
