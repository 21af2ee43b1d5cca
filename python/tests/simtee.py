"""A self-made SEV-SNP chain ("BlindAI Simulated" ARK and ASK, RSASSA-PSS SHA-384 like AMD's, a P-384 VCEK with AMD's
extensions) and reports signed by it. Real vectors cannot be re-signed, so the checks that come after the report
signature (TCB and hwID extensions, signer and product consistency, channel binding) are exercised with these."""

from __future__ import annotations

import datetime
import hashlib
import os
import struct

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature
from cryptography.x509.oid import NameOID

PSS = padding.PSS(mgf=padding.MGF1(hashes.SHA384()), salt_length=48)
NOT_BEFORE = datetime.datetime(2024, 1, 1, tzinfo=datetime.timezone.utc)
NOT_AFTER = datetime.datetime(2034, 1, 1, tzinfo=datetime.timezone.utc)
AT = "2026-07-01T00:00:00Z"


def _name(cn: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)])


def der_int(v: int) -> bytes:
    body = v.to_bytes(max(1, (v.bit_length() + 8) // 8), "big", signed=True)
    return b"\x02" + bytes([len(body)]) + body


def make_ca(product: str = "Milan", ark_cn: str | None = None, ask_cn: str | None = None):
    ark_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    ask_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    ark_name = _name(ark_cn or f"BlindAI Simulated ARK-{product}")
    ask_name = _name(ask_cn or f"BlindAI Simulated SEV-{product}")
    ca = x509.BasicConstraints(ca=True, path_length=None)
    ark = (x509.CertificateBuilder().subject_name(ark_name).issuer_name(ark_name).public_key(ark_key.public_key())
           .serial_number(1).not_valid_before(NOT_BEFORE).not_valid_after(NOT_AFTER).add_extension(ca, True)
           .sign(ark_key, hashes.SHA384(), rsa_padding=PSS))
    ask = (x509.CertificateBuilder().subject_name(ask_name).issuer_name(ark_name).public_key(ask_key.public_key())
           .serial_number(2).not_valid_before(NOT_BEFORE).not_valid_after(NOT_AFTER).add_extension(ca, True)
           .sign(ark_key, hashes.SHA384(), rsa_padding=PSS))
    return {"ark": ark, "ask": ask, "ask_key": ask_key, "ask_name": ask_name}


def make_vcek(ca, spl: dict, hwid: bytes | None, key=None, not_after=NOT_AFTER, extra=None):
    key = key or ec.generate_private_key(ec.SECP384R1())
    b = (x509.CertificateBuilder().subject_name(_name("SEV-VCEK")).issuer_name(ca["ask_name"]).public_key(key.public_key())
         .serial_number(3).not_valid_before(NOT_BEFORE).not_valid_after(not_after))
    oids = {"bootloader": "1.3.6.1.4.1.3704.1.3.1", "tee": "1.3.6.1.4.1.3704.1.3.2", "snp": "1.3.6.1.4.1.3704.1.3.3",
            "microcode": "1.3.6.1.4.1.3704.1.3.8", "fmc": "1.3.6.1.4.1.3704.1.3.9"}
    for name, value in spl.items():
        raw = value if isinstance(value, bytes) else der_int(value)
        b = b.add_extension(x509.UnrecognizedExtension(x509.ObjectIdentifier(oids[name]), raw), False)
    if hwid is not None:
        b = b.add_extension(x509.UnrecognizedExtension(x509.ObjectIdentifier("1.3.6.1.4.1.3704.1.4"), hwid), False)
    for o, raw in (extra or {}).items():
        b = b.add_extension(x509.UnrecognizedExtension(x509.ObjectIdentifier(o), raw), False)
    cert = b.sign(ca["ask_key"], hashes.SHA384(), rsa_padding=PSS)
    return cert, key


def make_report(key, *, version=3, family=0x19, model=0x01, tcb=(3, 0, 0, 0, 0, 0, 8, 115), chip_id=None, signer_info=0,
                policy=0x30000, vmpl=0, report_data=b"\x00" * 64, measurement=None, report_id_ma=None) -> bytes:
    r = bytearray(0x4A0)
    struct.pack_into("<IIQ", r, 0, version, 1, policy)
    struct.pack_into("<II", r, 0x30, vmpl, 1)
    struct.pack_into("<I", r, 0x48, signer_info)
    r[0x50:0x90] = report_data
    r[0x90:0xC0] = measurement or hashlib.sha384(b"blindai simulated measurement").digest()
    r[0x180:0x188] = bytes(tcb)
    r[0x38:0x40] = bytes(tcb)
    r[0x188], r[0x189], r[0x18A] = family, model, 1
    r[0x1A0:0x1E0] = chip_id if chip_id is not None else bytes(range(64))
    if report_id_ma is not None:
        r[0x160:0x180] = report_id_ma
    sig = key.sign(bytes(r[:0x2A0]), ec.ECDSA(hashes.SHA384()))
    rr, ss = decode_dss_signature(sig)
    r[0x2A0:0x2A0 + 72] = rr.to_bytes(72, "little")
    r[0x2A0 + 72:0x2A0 + 144] = ss.to_bytes(72, "little")
    return bytes(r)


def pem(*certs) -> bytes:
    return b"".join(c.public_bytes(serialization.Encoding.PEM) for c in certs)


def der(cert) -> bytes:
    return cert.public_bytes(serialization.Encoding.DER)


def tls_certificate():
    key = ec.generate_private_key(ec.SECP256R1())
    n = _name("blindai tls")
    cert = (x509.CertificateBuilder().subject_name(n).issuer_name(n).public_key(key.public_key()).serial_number(9)
            .not_valid_before(NOT_BEFORE).not_valid_after(NOT_AFTER).sign(key, hashes.SHA256()))
    return cert


def spki(cert) -> bytes:
    return cert.public_key().public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)


def report_data(spki_der: bytes, nonce: bytes, claims: bytes) -> bytes:
    return hashlib.sha512(b"BLINDAI-ATTESTATION-V1\x00" + hashlib.sha256(spki_der).digest() + nonce
                          + hashlib.sha256(claims).digest()).digest()


MILAN_SPL = {"bootloader": 3, "tee": 0, "snp": 8, "microcode": 115}
TURIN_TCB = (1, 3, 0, 8, 0, 0, 0, 115)  # fmc, bl, tee, snp ... ucode
TURIN_SPL = {"fmc": 1, "bootloader": 3, "tee": 0, "snp": 8, "microcode": 115}


def simulated_cases(Case):
    """Cases for test_agreement: (label, args, files)."""
    import base64
    import json
    cases = []
    ca = make_ca("Milan")
    chain = pem(ca["ask"], ca["ark"])
    chip = os.urandom(64)
    vcek, key = make_vcek(ca, MILAN_SPL, chip)

    def add(label, report, cert, chain_bytes=chain, allow=True, policy=None, at=AT):
        files = {"r": report, "v": cert if isinstance(cert, bytes) else der(cert), "c": chain_bytes}
        args = ["--report", "{r}", "--vcek", "{v}", "--chain", "{c}", "--at", at] + (["--allow-simulated"] if allow else [])
        if policy is not None:
            files["policy"] = json.dumps(policy).encode()
            args += ["--policy", "{policy}"]
        cases.append(Case(f"sim/{label}", args, files))

    ok = make_report(key, chip_id=chip)
    add("ok", ok, vcek)
    add("not-allowed", ok, vcek, allow=False)
    add("no-chain-given", ok, vcek, chain_bytes=b"")
    root_key = hashlib.sha256(spki(ca["ark"])).hexdigest()
    add("policy-allows", ok, vcek, allow=False, policy={"allowSimulated": True, "simulatedRootKeys": [root_key], "allowTLSKeyFromFile": True,
                                                        "snp": {"anyMeasurement": True, "chipIDs": [chip.hex()]}})
    add("policy-other-root", ok, vcek, allow=False, policy={"allowSimulated": True, "simulatedRootKeys": ["00" * 32], "allowTLSKeyFromFile": True,
                                                            "snp": {"anyMeasurement": True}})
    add("policy-no-root-keys", ok, vcek, allow=False, policy={"allowSimulated": True, "snp": {"anyMeasurement": True}})
    add("chip-key-masked", make_report(key, chip_id=chip, signer_info=0x2), vcek)
    add("chip-id-zero", make_report(key, chip_id=b"\x00" * 64), vcek)
    add("tcb-mismatch-bl", make_report(key, chip_id=chip, tcb=(2, 0, 0, 0, 0, 0, 8, 115)), vcek)
    add("tcb-mismatch-ucode", make_report(key, chip_id=chip, tcb=(3, 0, 0, 0, 0, 0, 8, 116)), vcek)
    add("tcb-mismatch-snp", make_report(key, chip_id=chip, tcb=(3, 0, 0, 0, 0, 0, 9, 115)), vcek)
    add("chip-mismatch", make_report(key, chip_id=os.urandom(64)), vcek)
    add("chip-masked", make_report(key, chip_id=b"\x00" * 64, signer_info=0x2), vcek)
    add("chip-masked-policy", make_report(key, chip_id=b"\x00" * 64), vcek, policy={"allowTLSKeyFromFile": True, "snp": {"anyMeasurement": True, "chipIDs": [chip.hex()]}})
    add("signer-vlek-from-ask", make_report(key, chip_id=chip, signer_info=0x4), vcek)
    add("product-mismatch", make_report(key, chip_id=chip, model=0x11), vcek)
    add("product-unknown-cpuid", make_report(key, chip_id=chip, family=0x17), vcek)
    add("version-2-cpuid-ignored", make_report(key, chip_id=chip, version=2, model=0x11), vcek)
    add("version-5", make_report(key, chip_id=chip, version=5), vcek)
    add("debug", make_report(key, chip_id=chip, policy=0xB0000), vcek)
    add("vmpl-2", make_report(key, chip_id=chip, vmpl=2), vcek, policy={"allowTLSKeyFromFile": True, "snp": {"anyMeasurement": True, "maximumVMPL": 1}})
    add("smt-refused", ok, vcek, policy={"allowTLSKeyFromFile": True, "snp": {"anyMeasurement": True, "allowSMT": False}})
    add("migrate-ma", make_report(key, chip_id=chip, policy=0x70000), vcek)
    add("expired", ok, vcek, at="2035-01-01T00:00:00Z")
    wrapped, k2 = make_vcek(ca, MILAN_SPL, b"\x04\x40" + chip)
    add("hwid-octet-string", make_report(k2, chip_id=chip), wrapped)
    bad_len, k3 = make_vcek(ca, MILAN_SPL, chip[:32])
    add("hwid-short", make_report(k3, chip_id=chip), bad_len)
    no_hwid, k4 = make_vcek(ca, MILAN_SPL, None)
    add("hwid-missing", make_report(k4, chip_id=chip), no_hwid)
    no_spl, k5 = make_vcek(ca, {"bootloader": 3, "tee": 0, "snp": 8}, chip)
    add("spl-missing", make_report(k5, chip_id=chip), no_spl)
    spl_octets, k6 = make_vcek(ca, dict(MILAN_SPL, tee=b"\x04\x01\x00"), chip)
    add("spl-not-integer", make_report(k6, chip_id=chip), spl_octets)
    spl_big, k7 = make_vcek(ca, dict(MILAN_SPL, tee=256), chip)
    add("spl-out-of-range", make_report(k7, chip_id=chip), spl_big)
    spl_padded, k8 = make_vcek(ca, dict(MILAN_SPL, tee=b"\x02\x02\x00\x00"), chip)
    add("spl-non-minimal", make_report(k8, chip_id=chip), spl_padded)
    expired_vcek, k9 = make_vcek(ca, MILAN_SPL, chip, not_after=datetime.datetime(2025, 1, 1, tzinfo=datetime.timezone.utc))
    add("vcek-expired", make_report(k9, chip_id=chip), expired_vcek)
    p256 = ec.generate_private_key(ec.SECP256R1())
    p256_cert, _ = make_vcek(ca, MILAN_SPL, chip, key=p256)
    add("vcek-p256", ok, p256_cert)
    add("wrong-vcek", ok, make_vcek(ca, MILAN_SPL, chip)[0])
    # Chains that must not be trusted or that do not name what they sign.
    vlek_ca = make_ca("Milan", ask_cn="BlindAI Simulated SEV-VLEK-Milan")
    vlek_vcek, kv = make_vcek(vlek_ca, MILAN_SPL, chip)
    add("vcek-report-from-vlek-ask", make_report(kv, chip_id=chip), vlek_vcek, chain_bytes=pem(vlek_ca["ask"], vlek_ca["ark"]))
    add("vlek-report-from-vlek-ask", make_report(kv, chip_id=b"\x00" * 64, signer_info=0x4), vlek_vcek, chain_bytes=pem(vlek_ca["ask"], vlek_ca["ark"]))
    rogue = make_ca("Milan", ark_cn="Rogue ARK-Milan", ask_cn="Rogue SEV-Milan")
    rogue_vcek, kr = make_vcek(rogue, MILAN_SPL, chip)
    add("rogue-root", make_report(kr, chip_id=chip), rogue_vcek, chain_bytes=pem(rogue["ask"], rogue["ark"]))
    noproduct = make_ca("Milan", ark_cn="BlindAI Simulated ARK", ask_cn="BlindAI Simulated SEV")
    np_vcek, kn = make_vcek(noproduct, MILAN_SPL, chip)
    add("no-product", make_report(kn, chip_id=chip), np_vcek, chain_bytes=pem(noproduct["ask"], noproduct["ark"]))
    add("ask-without-ark", ok, vcek, chain_bytes=pem(ca["ask"]))
    add("other-ark", ok, vcek, chain_bytes=pem(ca["ask"], rogue["ark"]))
    # Turin layout: fmc in byte 0, 8-byte hwID.
    tca = make_ca("Turin")
    tchip = os.urandom(8)
    tvcek, kt = make_vcek(tca, TURIN_SPL, tchip)
    tchain = pem(tca["ask"], tca["ark"])
    add("turin-ok", make_report(kt, family=0x1A, model=0x02, tcb=TURIN_TCB, chip_id=tchip + b"\x00" * 56), tvcek, chain_bytes=tchain)
    add("turin-fmc-mismatch", make_report(kt, family=0x1A, model=0x02, tcb=(2,) + TURIN_TCB[1:], chip_id=tchip + b"\x00" * 56), tvcek, chain_bytes=tchain)
    add("turin-chip-tail", make_report(kt, family=0x1A, model=0x02, tcb=TURIN_TCB, chip_id=tchip + b"\x01" + b"\x00" * 55), tvcek, chain_bytes=tchain)
    add("turin-min-fmc", make_report(kt, family=0x1A, model=0x02, tcb=TURIN_TCB, chip_id=tchip + b"\x00" * 56), tvcek, chain_bytes=tchain,
        policy={"allowTLSKeyFromFile": True, "snp": {"anyMeasurement": True, "minimumTCB": {"fmc": 2}}})
    add("milan-min-fmc", ok, vcek, policy={"allowTLSKeyFromFile": True, "snp": {"anyMeasurement": True, "minimumTCB": {"fmc": 0}}})

    # Evidence bundles with a channel binding.
    tls = tls_certificate()
    other_tls = tls_certificate()
    nonce = os.urandom(32)
    claims = json.dumps({"attributes": {}, "issuedAt": "2026-06-30T23:59:00Z", "tee": "sev-snp", "version": 1},
                        separators=(",", ":"), sort_keys=True).encode()
    bound = make_report(key, chip_id=chip, report_data=report_data(spki(tls), nonce, claims))
    b64 = lambda x: base64.b64encode(x).decode()  # noqa: E731

    def bundle(report, **kw):
        d = {"format": "blindai-evidence/1", "tee": "sev-snp", "report": b64(report),
             "certificates": [b64(der(vcek)), b64(der(ca["ask"])), b64(der(ca["ark"]))], "collateral": {},
             "claims": b64(claims), "nonce": b64(nonce), "tlsCertificate": b64(der(tls))}
        d.update(kw)
        return json.dumps(d).encode()

    def add_ev(label, ev, tls_cert, n=nonce, policy=None):
        files = {"e": ev, "t": der(tls_cert)}
        args = ["--evidence", "{e}", "--nonce", n.hex(), "--tls-certificate", "{t}", "--at", AT, "--allow-simulated"]
        if policy is not None:
            files["policy"] = json.dumps(policy).encode()
            args += ["--policy", "{policy}"]
        cases.append(Case(f"sim-evidence/{label}", args, files))

    add_ev("bound", bundle(bound), tls)
    add_ev("bound-fresh", bundle(bound), tls, policy={"maxEvidenceAgeSeconds": 300, "allowTLSKeyFromFile": True, "snp": {"anyMeasurement": True}})
    add_ev("bound-too-old", bundle(bound), tls, policy={"maxEvidenceAgeSeconds": 30, "allowTLSKeyFromFile": True, "snp": {"anyMeasurement": True}})
    add_ev("tls-origin-absent", bundle(bound), tls, policy={"snp": {"anyMeasurement": True}})
    add_ev("relayed", bundle(bound), other_tls)
    add_ev("other-nonce", bundle(bound), tls, n=os.urandom(32))
    add_ev("edited-claims", bundle(bound, claims=b64(claims.replace(b"23:59", b"23:58"))), tls)
    add_ev("claims-other-tee", bundle(bound, claims=b64(claims.replace(b"sev-snp", b"tdx"))), tls)
    add_ev("no-tls-in-bundle", bundle(bound, tlsCertificate=None), other_tls)
    add_ev("unbound-report", bundle(ok), tls)
    add_ev("nonce-short", bundle(bound, nonce=b64(nonce[:16])), tls, n=nonce[:16])

    # The operator's models (claims document `models`) and the receipt key, pinned by operatorModels.
    digest_a, digest_b = hashlib.sha256(b"model a").hexdigest(), hashlib.sha256(b"model b").hexdigest()
    with_models = json.dumps({"attributes": {"tlsKeyGeneratedInMemory": "true"}, "issuedAt": "2026-06-30T23:59:00Z",
                              "models": [{"name": "a", "sha256": digest_a, "version": "1"}, {"name": "b", "sha256": digest_b, "version": "3"}],
                              "receiptKey": b64(b"not a key, only carried"), "tee": "sev-snp", "version": 1},
                             separators=(",", ":"), sort_keys=True).encode()
    # REPORT_ID_MA all ones (no migration agent), so that the accepted cases pass every launch rule.
    no_ma = b"\xff" * 32
    models_report = make_report(key, chip_id=chip, report_data=report_data(spki(tls), nonce, with_models), report_id_ma=no_ma)
    models_bundle = bundle(models_report, claims=b64(with_models))

    def pin(*models, **extra):
        return {"operatorModels": [{"name": n, "sha256": d} for n, d in models], "snp": {"anyMeasurement": True}, **extra}

    add_ev("models-unpinned", models_bundle, tls, policy={"snp": {"anyMeasurement": True}})
    add_ev("models-pinned", models_bundle, tls, policy=pin(("b", digest_b.upper()), ("a", digest_a)))
    add_ev("models-other-digest", models_bundle, tls, policy=pin(("a", digest_a), ("b", digest_a)))
    add_ev("models-one-missing", models_bundle, tls, policy=pin(("a", digest_a), ("b", digest_b), ("c", digest_a)))
    add_ev("models-one-extra", models_bundle, tls, policy=pin(("a", digest_a)))
    add_ev("models-none-pinned", models_bundle, tls, policy=pin())
    bound_no_ma = bundle(make_report(key, chip_id=chip, report_data=report_data(spki(tls), nonce, claims), report_id_ma=no_ma))
    add_ev("models-absent-none-pinned", bound_no_ma, tls, policy=pin(allowTLSKeyFromFile=True))
    add_ev("models-absent-one-pinned", bound_no_ma, tls, policy=pin(("a", digest_a), allowTLSKeyFromFile=True))
    add_ev("models-duplicate-pin", models_bundle, tls, policy=pin(("a", digest_a), ("a", digest_a)))
    add_ev("models-pin-short-digest", models_bundle, tls, policy=pin(("a", digest_a[:63])))
    add_ev("models-pin-unknown-member", models_bundle, tls,
           policy={"operatorModels": [{"name": "a", "sha256": digest_a, "version": "1"}], "snp": {"anyMeasurement": True}})
    bad_models = with_models.replace(b'"version":"3"', b'"version":3')
    add_ev("models-malformed", bundle(make_report(key, chip_id=chip, report_data=report_data(spki(tls), nonce, bad_models),
                                                  report_id_ma=no_ma), claims=b64(bad_models)), tls)
    # Without a channel binding the claims document vouches for nothing: the models are unknown.
    cases.append(Case("sim-evidence/models-unbound", ["--evidence", "{e}", "--at", AT, "--allow-simulated", "--policy", "{policy}"],
                      {"e": models_bundle, "policy": json.dumps(pin(("a", digest_a), ("b", digest_b), allowTLSKeyFromFile=True)).encode()}))
    cases.append(Case("sim-evidence/models-unbound-unpinned", ["--evidence", "{e}", "--at", AT, "--allow-simulated"], {"e": models_bundle}))
    return cases
