"""Agreement of the two verifiers: the Swift `blindai attestation verify` and the Python
`python -m blindai attestation verify` run over every committed attestation vector and over mutations of each
(bit flips in the measurement, report data, signature, chip ID, TCB, policy and version fields; truncation; a
wrong VCEK; times outside the validity windows; debug evidence; damaged certificates and collateral; policies that
each rule refuses). Both must accept and refuse exactly the same cases with the same error code, and when they
accept, print the same verified claims."""

from __future__ import annotations

import base64
import contextlib
import io
import json
import os
import pathlib
import re
import shutil
import subprocess
import sys

import pytest

from blindai import cli

from conftest import VECTORS

SNP = VECTORS / "sev-snp"
TDX = VECTORS / "tdx"

# (label, report, vcek, pinned time) from the vectors' README §2.2
SNP_SETS = [
    ("gosev", SNP / "milan/gosev_attestation.bin", SNP / "milan/gosev_vcek.der", "2022-09-24T01:00:00Z", "milan"),
    ("virtee", SNP / "milan/virtee_report_milan.bin", SNP / "milan/virtee_vcek_milan.der", "2024-01-01T00:00:00Z", "milan"),
    ("trustee", SNP / "milan/trustee_report.bin", SNP / "milan/trustee_vcek.der", "2024-01-01T00:00:00Z", "milan"),
    ("vlek", SNP / "milan/trustee_aws_vlek_report.bin", SNP / "milan/trustee_aws_vlek.der", "2025-06-01T00:00:00Z", "milan"),
    ("azure-genoa", SNP / "genoa/azure_genoa_report.bin", SNP / "genoa/azure_genoa_vcek.pem", "2025-06-01T00:00:00Z", "genoa"),
    ("genoa-v5", SNP / "genoa/attrs_genoa_v5_report.bin", SNP / "genoa/attrs_genoa_v5_vcek.der", "2026-07-01T00:00:00Z", "genoa"),
    ("turin-v5", SNP / "turin/anolis_turin_report.bin", SNP / "turin/anolis_turin_vcek.der", "2026-07-01T00:00:00Z", "turin"),
]

# (label, quote, collateral or None, pinned time) from the vectors' README §3.2
TDX_SETS = [
    ("spr-e4", TDX / "go-tdx-guest/tdx_prod_quote_SPR_E4.dat", TDX / "go-tdx-guest/collateral", "2023-07-01T01:00:00Z"),
    ("spr-e4-trimmed", TDX / "go-tdx-guest/tdx_prod_quote_SPR_E4.trimmed.dat", TDX / "go-tdx-guest/collateral", "2023-07-01T01:00:00Z"),
    ("gotdx-v5", TDX / "go-tdx-guest/quote_v5_sample.dat", None, "2026-02-03T01:00:00Z"),
    ("gotdx-v5-own-collateral", TDX / "go-tdx-guest/quote_v5_sample.dat", TDX / "go-tdx-guest/collateral", "2026-02-03T01:00:00Z"),
    ("gotdx-v5-dcap-collateral", TDX / "go-tdx-guest/quote_v5_sample.dat", TDX / "dcap-qvl/collateral_v5_90c06f_outdated", "2026-03-01T00:00:00Z"),
    ("dcap-v4", TDX / "dcap-qvl/tdx_quote_v4_b0c06f.dat", TDX / "dcap-qvl/collateral_v4_b0c06f", "2025-07-01T00:00:00Z"),
    ("dcap-v4-json", TDX / "dcap-qvl/tdx_quote_v4_b0c06f.dat", TDX / "dcap-qvl/tdx_quote_v4_b0c06f_collateral.json", "2025-07-01T00:00:00Z"),
    ("dcap-v5", TDX / "dcap-qvl/tdx_quote_v5_90c06f_outdated.dat", TDX / "dcap-qvl/collateral_v5_90c06f_outdated", "2026-03-01T00:00:00Z"),
    ("dcap-v5-json", TDX / "dcap-qvl/tdx_quote_v5_90c06f_outdated.dat", TDX / "dcap-qvl/tdx_quote_v5_90c06f_outdated_collateral.json", "2026-03-01T00:00:00Z"),
    ("trustee-6", TDX / "trustee/tdx_quote_6.dat", TDX / "trustee", "2025-11-01T00:00:00Z"),
    ("trustee-4-debug", TDX / "trustee/tdx_quote_4_debug_td.dat", None, "2025-11-01T00:00:00Z"),
    ("trustee-5", TDX / "trustee/tdx_quote_5_v5.dat", None, "2025-11-01T00:00:00Z"),
]


def flip(data: bytes, offset: int, bit: int = 0) -> bytes:
    b = bytearray(data)
    b[offset] ^= 1 << bit
    return bytes(b)


def put_u32(data: bytes, offset: int, value: int) -> bytes:
    b = bytearray(data)
    b[offset:offset + 4] = value.to_bytes(4, "little")
    return bytes(b)


def put_u16(data: bytes, offset: int, value: int) -> bytes:
    b = bytearray(data)
    b[offset:offset + 2] = value.to_bytes(2, "little")
    return bytes(b)


def tdx_offsets(q: bytes) -> dict:
    version = int.from_bytes(q[0:2], "little")
    if version == 4:
        start, size = 48, 584
    else:
        start, size = 54, int.from_bytes(q[50:54], "little")
    end = start + size
    sig = end + 4
    cert = sig + 134
    auth = int.from_bytes(q[cert + 448:cert + 450], "little")
    return {"body": start, "end": end, "sig": sig, "akey": sig + 64, "cert": cert, "qe_report": cert,
            "qe_sig": cert + 384, "auth_len": cert + 448, "pck": cert + 456 + auth,
            "sig_len": int.from_bytes(q[end:end + 4], "little")}


class Case:
    def __init__(self, label: str, args: list, files: dict | None = None, dirs: dict | None = None):
        self.label = label
        self.args = args  # strings; "{name}" placeholders refer to files written for the case
        self.files = files or {}  # name -> bytes
        self.dirs = dirs or {}  # name -> (source dir, {file: bytes or None to delete})


def policy_case(label, base_args, policy: dict | str):
    if isinstance(policy, dict):
        # Policies must choose between a measurement allowlist and "anyMeasurement": true; the cases that test
        # other rules say "any".
        policy = json.loads(json.dumps(policy))
        # Offline evidence has no bound claims document, so the TLS-key-origin rule would refuse everything first.
        policy.setdefault("allowTLSKeyFromFile", True)
        for section in ("snp", "tdx"):
            sec = policy.get(section)
            if isinstance(sec, dict) and "measurements" not in sec and "anyMeasurement" not in sec:
                sec["anyMeasurement"] = True
    text = policy if isinstance(policy, str) else json.dumps(policy)
    return Case(label, base_args + ["--policy", "{policy}"], {"policy": text.encode()})


def snp_cases() -> list[Case]:
    cases = []
    for label, report, vcek, at, product in SNP_SETS:
        r = report.read_bytes()
        base = ["--report", str(report), "--vcek", str(vcek), "--at", at]
        cases.append(Case(f"{label}", base))
        chain = SNP / "roots" / product / f"ask_ark_{product}_{'vlek' if label == 'vlek' else 'vcek'}.pem"
        cases.append(Case(f"{label}/chain", base + ["--chain", str(chain)]))
        other = "genoa" if product != "genoa" else "milan"
        cases.append(Case(f"{label}/wrong-product-chain", base + ["--chain", str(SNP / "roots" / other / f"ask_ark_{other}_vcek.pem")]))
        cases.append(Case(f"{label}/ark-only-chain", base + ["--chain", str(SNP / "roots" / product / "ark.pem")]))
        cases.append(Case(f"{label}/ask-only-chain", base + ["--chain", str(SNP / "roots" / product / "ask.pem")]))
        mutations = {
            "measurement": flip(r, 0x90), "report-data": flip(r, 0x50, 3), "signature-r": flip(r, 0x2A0),
            "signature-s": flip(r, 0x2A0 + 72 + 5, 7), "signature-high": flip(r, 0x2A0 + 60), "chip-id": flip(r, 0x1A0),
            "chip-id-tail": flip(r, 0x1A0 + 40), "reported-tcb-bl": flip(r, 0x180), "reported-tcb-ucode": flip(r, 0x187),
            "reported-tcb-fmc": flip(r, 0x180, 1) if product == "turin" else flip(r, 0x183),
            "current-tcb": flip(r, 0x38), "debug-bit": flip(r, 0x0A, 3), "vmpl": flip(r, 0x30), "guest-svn": flip(r, 0x04),
            "version-1": put_u32(r, 0, 1), "version-6": put_u32(r, 0, 6), "version-3": put_u32(r, 0, 3),
            "sig-algo": put_u32(r, 0x34, 2), "signer-vlek": flip(r, 0x48, 2), "signer-unknown": flip(r, 0x48, 4),
            "mask-chip-id": flip(r, 0x48, 1), "cpuid-family": flip(r, 0x188, 4), "cpuid-model": flip(r, 0x189, 4),
            "host-data": flip(r, 0xC0), "unsigned-tail": flip(r, 0x400),
            "truncated-1": r[:-1], "truncated-half": r[:len(r) // 2], "empty": b"", "extended": r + b"\x00",
        }
        for m, data in mutations.items():
            cases.append(Case(f"{label}/{m}", ["--report", "{r}", "--vcek", str(vcek), "--at", at], {"r": data}))
        v = vcek.read_bytes()
        if v[:1] == b"\x30":
            vm = {"vcek-truncated": v[:-10], "vcek-tbs-flip": flip(v, 200), "vcek-sig-flip": flip(v, len(v) - 20),
                  "vcek-garbage": b"\x30\x03\x02\x01\x00", "vcek-trailing": v + b"\x00"}
            for m, data in vm.items():
                cases.append(Case(f"{label}/{m}", ["--report", str(report), "--vcek", "{v}", "--at", at], {"v": data}))
        cases.append(Case(f"{label}/expired", ["--report", str(report), "--vcek", str(vcek), "--at", "2060-01-01T00:00:00Z"]))
        cases.append(Case(f"{label}/not-yet-valid", ["--report", str(report), "--vcek", str(vcek), "--at", "2019-01-01T00:00:00Z"]))
        # policies
        cases.append(policy_case(f"{label}/policy-allow-debug", base, {"allowDebug": True, "snp": {}}))
        cases.append(policy_case(f"{label}/policy-tdx-only", base, {"tdx": {}}))
        cases.append(policy_case(f"{label}/policy-measurement-other", base, {"allowDebug": True, "snp": {"measurements": ["00" * 48]}}))
        m_hex = r[0x90:0xC0].hex()
        cases.append(policy_case(f"{label}/policy-measurement-own", base, {"allowDebug": True, "snp": {"measurements": [m_hex.upper()]}}))
        cases.append(policy_case(f"{label}/policy-tcb-high", base, {"allowDebug": True, "snp": {"minimumTCB": {"bootloader": 255}}}))
        cases.append(policy_case(f"{label}/policy-tcb-fmc", base, {"allowDebug": True, "snp": {"minimumTCB": {"fmc": 0}}}))
        cases.append(policy_case(f"{label}/policy-tcb-zero", base, {"allowDebug": True, "snp": {"minimumTCB": {"bootloader": 0, "tee": 0, "snp": 0, "microcode": 0}}}))
        cases.append(policy_case(f"{label}/policy-chip-own", base, {"allowDebug": True, "snp": {"chipIDs": [r[0x1A0:0x1E0].hex()]}}))
        cases.append(policy_case(f"{label}/policy-chip-other", base, {"allowDebug": True, "snp": {"chipIDs": ["ab" * 64]}}))
        cases.append(policy_case(f"{label}/policy-vmpl-0", base, {"allowDebug": True, "snp": {"maximumVMPL": 0}}))
        cases.append(policy_case(f"{label}/policy-guest-svn", base, {"allowDebug": True, "snp": {"minimumGuestSVN": 1000}}))
        cases.append(policy_case(f"{label}/policy-signer-vcek", base, {"allowDebug": True, "snp": {"signers": ["VCEK"]}}))
        cases.append(policy_case(f"{label}/policy-product-turin", base, {"allowDebug": True, "snp": {"products": ["Turin"]}}))
        cases.append(policy_case(f"{label}/policy-age", base, {"allowDebug": True, "maxEvidenceAgeSeconds": 300, "snp": {}}))
        cases.append(policy_case(f"{label}/policy-tls-origin-default", base, {"allowDebug": True, "allowTLSKeyFromFile": False, "snp": {}}))
        d = {"allowDebug": True, "allowTLSKeyFromFile": True}
        cases.append(policy_case(f"{label}/policy-no-smt", base, dict(d, snp={"allowSMT": False})))
        cases.append(policy_case(f"{label}/policy-single-socket", base, dict(d, snp={"requireSingleSocket": True})))
        cases.append(policy_case(f"{label}/policy-abi-high", base, dict(d, snp={"minimumABI": {"major": 255, "minor": 0}})))
        cases.append(policy_case(f"{label}/policy-abi-zero", base, dict(d, snp={"minimumABI": {"major": 0, "minor": 0}})))
        cases.append(policy_case(f"{label}/policy-migration-agent", base, dict(d, snp={"allowMigrationAgent": True})))
        cases.append(policy_case(f"{label}/policy-host-data-other", base, dict(d, snp={"hostData": ["11" * 32]})))
        cases.append(policy_case(f"{label}/policy-host-data-own", base, dict(d, snp={"hostData": [r[0xC0:0xE0].hex()]})))
        cases.append(policy_case(f"{label}/policy-csp", base, dict(d, snp={"vlekCSPIDs": ["cc-us-east-2.amazonaws.com"]})))
        cases.append(policy_case(f"{label}/policy-csp-other", base, dict(d, snp={"vlekCSPIDs": ["example.com"]})))
        cases.append(policy_case(f"{label}/policy-require-crl", base, dict(d, snp={"requireCRL": True})))
        cases.append(Case(f"{label}/ma-report-id", ["--report", "{r}", "--vcek", str(vcek), "--at", at], {"r": flip(r, 0x160)}))
    r = (SNP / "milan/trustee_report.bin").read_bytes()
    tr = ["--report", str(SNP / "milan/trustee_report.bin"), "--at", "2024-01-01T00:00:00Z"]
    cases.append(Case("wrong-vcek/virtee", tr + ["--vcek", str(SNP / "milan/virtee_vcek_milan.der")]))
    cases.append(Case("wrong-vcek/genoa", tr + ["--vcek", str(SNP / "genoa/attrs_genoa_v5_vcek.der")]))
    cases.append(Case("wrong-vcek/turin", tr + ["--vcek", str(SNP / "turin/virtee_vcek_turin.der")]))
    cases.append(Case("wrong-vcek/vlek", tr + ["--vcek", str(SNP / "milan/trustee_aws_vlek.der")]))
    cases.append(Case("negative/hwid-raw", tr + ["--vcek", str(SNP / "negative/trustee_vcek_hwid_raw_badsig.der")]))
    cases.append(Case("negative/hwid-octetstring", tr + ["--vcek", str(SNP / "negative/trustee_vcek_hwid_octetstring_badsig.der")]))
    cases.append(Case("root-as-vcek", tr + ["--vcek", str(SNP / "roots/milan/ark.pem")]))
    cases.append(Case("tdx-cert-as-vcek", tr + ["--vcek", str(TDX / "roots/intel_sgx_root_ca.der")]))
    # malformed policies (same code, whatever the evidence)
    base = ["--report", str(SNP / "milan/trustee_report.bin"), "--vcek", str(SNP / "milan/trustee_vcek.der"), "--at", "2024-01-01T00:00:00Z"]
    for i, bad in enumerate(['{"snp":{"measurement":[]}}', '{"snp":{"measurements":[]}}', '{"snp":{"measurements":["zz"]}}',
                             '{"version":2}', '{"allowDebug":"yes"}', '{"maxEvidenceAgeSeconds":0}', '{"snp":{"signers":["ARK"]}}',
                             '{"snp":{"minimumTCB":{"bootloader":256}}}', '{"snp":{"minimumTCB":{"boot":1}}}', '{"tdx":{"allowedTCBStatuses":[]}}',
                             '{"tdx":{"measurements":[{"mrtd":"00"}]}}', '[]', 'not json', '{"snp":null}', '{"snp":{"chipIDs":["' + "0" * 127 + '"]}}']):
        cases.append(policy_case(f"malformed-policy-{i}", base, bad))
    return cases


def tdx_cases() -> list[Case]:
    cases = []
    for label, quote, coll, at in TDX_SETS:
        q = quote.read_bytes()
        cargs = ["--collateral", str(coll)] if coll else []
        base = ["--quote", str(quote), "--at", at] + cargs
        cases.append(Case(label, base))
        cases.append(Case(f"{label}/no-collateral", ["--quote", str(quote), "--at", at]))
        o = tdx_offsets(q)
        b = o["body"]
        mutations = {
            "mrtd": flip(q, b + 136), "report-data": flip(q, b + 520, 5), "rtmr0": flip(q, b + 328), "debug-bit": flip(q, b + 120),
            "tee-tcb-svn": flip(q, b + 0), "mr-signer-seam": flip(q, b + 64), "seam-attributes": flip(q, b + 112),
            "signature": flip(q, o["sig"]), "attestation-key": flip(q, o["akey"] + 3), "qe-report": flip(q, o["qe_report"] + 70),
            "qe-report-isvsvn": flip(q, o["qe_report"] + 258), "qe-report-signature": flip(q, o["qe_sig"] + 1),
            "pck-pem": flip(q, o["pck"] + 100), "version-3": put_u16(q, 0, 3), "version-swap": put_u16(q, 0, 9 - int.from_bytes(q[0:2], "little")),
            "key-type": put_u16(q, 2, 3), "tee-type": put_u32(q, 4, 0), "header-vendor": flip(q, 12),
            "sig-len": put_u32(q, o["end"], o["sig_len"] + 1), "truncated-1": q[:o["sig"] + o["sig_len"] - 1],
            "truncated-header": q[:40], "truncated-body": q[:b + 300], "truncated-sig": q[:o["sig"] + 100], "empty": b"",
            "trailing": q + b"\x00" * 7,
        }
        if int.from_bytes(q[0:2], "little") == 5:
            mutations["body-type-9"] = put_u16(q, 48, 9)
            mutations["body-size"] = put_u32(q, 50, 584)
        for m, data in mutations.items():
            cases.append(Case(f"{label}/{m}", ["--quote", "{q}", "--at", at] + cargs, {"q": data}))
        cases.append(Case(f"{label}/expired", ["--quote", str(quote), "--at", "2060-01-01T00:00:00Z"] + cargs))
        cases.append(Case(f"{label}/early", ["--quote", str(quote), "--at", "2015-01-01T00:00:00Z"] + cargs))
        cases.append(policy_case(f"{label}/policy-default-tdx", base, {"tdx": {}}))
        cases.append(policy_case(f"{label}/policy-any-status", base, {"allowDebug": True, "tdx": {"allowedTCBStatuses": list(
            ["UpToDate", "SWHardeningNeeded", "ConfigurationNeeded", "ConfigurationAndSWHardeningNeeded", "OutOfDate",
             "OutOfDateConfigurationNeeded", "Revoked", "NotSupported"])}}))
        cases.append(policy_case(f"{label}/policy-snp-only", base, {"snp": {}}))
        mrtd = q[b + 136:b + 184].hex()
        rtmr1 = q[b + 328 + 48:b + 328 + 96].hex()
        cases.append(policy_case(f"{label}/policy-mrtd-own", base, {"allowDebug": True, "tdx": {"measurements": [{"mrtd": mrtd}], "allowedTCBStatuses": ["UpToDate", "OutOfDate", "NotSupported"]}}))
        cases.append(policy_case(f"{label}/policy-mrtd-rtmr", base, {"allowDebug": True, "tdx": {"measurements": [{"mrtd": mrtd, "rtmrs": [None, rtmr1]}], "allowedTCBStatuses": ["UpToDate", "OutOfDate", "NotSupported"]}}))
        cases.append(policy_case(f"{label}/policy-mrtd-rtmr-other", base, {"allowDebug": True, "tdx": {"measurements": [{"mrtd": mrtd, "rtmrs": [None, "11" * 48]}]}}))
        cases.append(policy_case(f"{label}/policy-mrtd-other", base, {"tdx": {"measurements": [{"mrtd": "22" * 48}]}}))
        d = {"allowDebug": True, "allowTLSKeyFromFile": True}
        st = ["UpToDate", "OutOfDate", "NotSupported"]
        cases.append(policy_case(f"{label}/policy-no-sept", base, dict(d, tdx={"allowedTCBStatuses": st, "requireSEPTVEDisable": False})))
        cases.append(policy_case(f"{label}/policy-no-pks", base, dict(d, tdx={"allowedTCBStatuses": st, "allowPKS": False})))
        cases.append(policy_case(f"{label}/policy-migratable", base, dict(d, tdx={"allowedTCBStatuses": st, "allowMigratable": True, "mrServiceTDs": ["33" * 48]})))
        cases.append(policy_case(f"{label}/policy-xfam-other", base, dict(d, tdx={"allowedTCBStatuses": st, "xfams": ["00" * 8]})))
        cases.append(policy_case(f"{label}/policy-xfam-own", base, dict(d, tdx={"allowedTCBStatuses": st, "xfams": [q[b + 128:b + 136].hex()]})))
        cases.append(policy_case(f"{label}/policy-mrconfig-other", base, dict(d, tdx={"allowedTCBStatuses": st, "mrConfigIDs": ["44" * 48]})))
        cases.append(policy_case(f"{label}/policy-mrowner-other", base, dict(d, tdx={"allowedTCBStatuses": st, "mrOwners": ["55" * 48]})))
        cases.append(policy_case(f"{label}/policy-evaluation-floor", base, dict(d, tdx={"allowedTCBStatuses": st, "minimumTCBEvaluationDataNumber": 10 ** 6})))
        cases.append(policy_case(f"{label}/policy-evaluation-zero", base, dict(d, tdx={"allowedTCBStatuses": st, "minimumTCBEvaluationDataNumber": 0})))
        if coll is not None and coll.is_dir():
            names = [p.name for p in coll.iterdir()]
            tcb = next((n for n in names if n.startswith("tcbInfo_fmspc_")), None)
            dir_mutations = {}
            for n in names:
                data = (coll / n).read_bytes()
                if n.endswith(".json"):
                    body_at = data.find(b'"issueDate"')
                    dir_mutations[f"{n}-body-flip"] = {n: flip(data, body_at + 3)}
                    sig_at = data.rfind(b'"signature"') + 15
                    dir_mutations[f"{n}-sig-flip"] = {n: data[:sig_at] + (b"0" if data[sig_at:sig_at + 1] != b"0" else b"1") + data[sig_at + 1:]}
                    dir_mutations[f"{n}-truncated"] = {n: data[:-5]}
                    dir_mutations[f"{n}-removed"] = {n: None}
                elif n.endswith(".der"):
                    dir_mutations[f"{n}-flip"] = {n: flip(data, len(data) // 2)}
                    dir_mutations[f"{n}-truncated"] = {n: data[:-3]}
                    dir_mutations[f"{n}-removed"] = {n: None}
                elif n.endswith(".pem") and n.startswith(("tcbInfo", "qeIdentity")):
                    dir_mutations[f"{n}-root-only"] = {n: (TDX / "roots/intel_sgx_root_ca.pem").read_bytes()}
            for m, changes in dir_mutations.items():
                cases.append(Case(f"{label}/{m}", ["--quote", str(quote), "--at", at, "--collateral", "{d}"], dirs={"d": (coll, changes)}))
                cases.append(Case(f"{label}/{m}/policy", ["--quote", str(quote), "--at", at, "--collateral", "{d}", "--policy", "{policy}"],
                                  {"policy": json.dumps({"allowDebug": True, "tdx": {"allowedTCBStatuses": ["UpToDate", "OutOfDate", "NotSupported"]}}).encode()},
                                  dirs={"d": (coll, changes)}))
            if tcb:
                cases.append(Case(f"{label}/other-fmspc-tcbinfo", ["--quote", str(quote), "--at", at, "--collateral", "{d}"],
                                  dirs={"d": (coll, {tcb: None, tcb.replace(tcb[14:26], "b0c06f000000" if "b0c06f" not in tcb else "90c06f000000"):
                                                     (TDX / ("dcap-qvl/collateral_v4_b0c06f/tcbInfo_fmspc_b0c06f000000.json" if "b0c06f" not in tcb else "dcap-qvl/collateral_v5_90c06f_outdated/tcbInfo_fmspc_90c06f000000.json")).read_bytes()})}))
    return cases


def evidence_cases() -> list[Case]:
    """Evidence bundles built from the vectors (no claims or with edited ones, wrong formats, binding checks)."""
    cases = []
    r = (SNP / "milan/trustee_report.bin").read_bytes()
    v = (SNP / "milan/trustee_vcek.der").read_bytes()
    at = "2024-01-01T00:00:00Z"

    def bundle(**kw):
        d = {"format": "blindai-evidence/1", "tee": "sev-snp", "report": base64.b64encode(r).decode(),
             "certificates": [base64.b64encode(v).decode()], "collateral": {}}
        d.update(kw)
        return json.dumps(d).encode()
    claims = json.dumps({"attributes": {}, "issuedAt": "2024-01-01T00:00:00Z", "tee": "sev-snp", "version": 1}).encode()
    b64 = lambda x: base64.b64encode(x).decode()  # noqa: E731
    variants = {
        "plain": bundle(), "with-claims": bundle(claims=b64(claims)),
        "claims-tdx": bundle(claims=b64(claims.replace(b"sev-snp", b"tdx"))), "claims-bad": bundle(claims=b64(b"{}")),
        "format": bundle(format="blindai-evidence/2"), "no-certs": bundle(certificates=[]), "tee-tdx": bundle(tee="tdx"),
        "bad-json": b"{", "bad-base64": bundle(report="***"),
    }
    for m, data in variants.items():
        cases.append(Case(f"evidence/{m}", ["--evidence", "{e}", "--at", at], {"e": data}))
    cases.append(policy_case("evidence/with-claims-age", ["--evidence", "{e}", "--at", at], {"maxEvidenceAgeSeconds": 60, "snp": {}}))
    cases[-1].files["e"] = variants["with-claims"]
    tls = (SNP / "milan/virtee_vcek_milan.der").read_bytes()
    for m, kw in {"binding-no-nonce": {"claims": b64(claims)},
                  "binding-nonce": {"claims": b64(claims), "nonce": b64(b"\x01" * 32)},
                  "binding-no-claims": {"nonce": b64(b"\x01" * 32)},
                  "binding-relayed": {"claims": b64(claims), "nonce": b64(b"\x01" * 32), "tlsCertificate": b64(v)}}.items():
        cases.append(Case(f"evidence/{m}", ["--evidence", "{e}", "--at", at, "--nonce", "01" * 32, "--tls-certificate", "{t}"],
                          {"e": bundle(**kw), "t": tls}))
    return cases


import simtee  # noqa: E402

ALL_CASES = snp_cases() + tdx_cases() + evidence_cases() + simtee.simulated_cases(Case)
CODE_RE = re.compile(r"(?:verification failed|Error): ([a-z0-9_]+):")


def materialize(case: Case, root: pathlib.Path) -> list[str]:
    paths = {}
    for name, data in case.files.items():
        p = root / name
        p.write_bytes(data)
        paths[name] = str(p)
    for name, (src, changes) in case.dirs.items():
        d = root / name
        shutil.copytree(src, d)
        for fname, data in changes.items():
            if data is None:
                (d / fname).unlink()
            else:
                (d / fname).write_bytes(data)
        paths[name] = str(d)
    return [a.format(**paths) if "{" in a else a for a in case.args]


def outcome(rc: int, out: str, err: str):
    if rc == 0:
        return ("accepted", json.loads(out))
    m = CODE_RE.search(err)
    return ("refused", rc, m.group(1) if m else err.strip().splitlines()[-1:])


def run_swift(binary: str, args: list[str]):
    p = subprocess.run([binary, "attestation", "verify", *args], capture_output=True, text=True, timeout=120)
    return outcome(p.returncode, p.stdout, p.stderr)


def run_python(args: list[str]):
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        rc = cli.verify_main(args)
    return outcome(rc, out.getvalue(), err.getvalue())


@pytest.mark.parametrize("case", ALL_CASES, ids=[c.label for c in ALL_CASES])
def test_same_verdict(case, blindai_bin, tmp_path):
    args = materialize(case, tmp_path)
    swift = run_swift(blindai_bin, args)
    python = run_python(args)
    assert python == swift


def test_case_set_covers_both_outcomes_and_many_codes(blindai_bin, tmp_path):
    """The mutations must exercise both verdicts and a wide range of codes (checked on the Python side, which the
    parametrized test has shown equal to the Swift side)."""
    codes, accepted = set(), 0
    for case in ALL_CASES:
        d = tmp_path / re.sub(r"[^A-Za-z0-9]+", "_", case.label)
        d.mkdir()
        res = run_python(materialize(case, d))
        if res[0] == "accepted":
            accepted += 1
        else:
            codes.add(res[2])
    assert accepted >= 20
    for code in ("malformed_evidence", "unsupported_version", "malformed_certificate", "report_signature_invalid",
                 "certificate_signature_invalid", "untrusted_root", "certificate_not_valid_at_time", "tcb_mismatch", "chip_id_mismatch",
                 "product_mismatch", "signer_mismatch", "quote_signature_invalid", "qe_report_signature_invalid", "qe_report_binding_invalid",
                 "collateral_signature_invalid", "collateral_not_valid_at_time", "crl_invalid", "malformed_collateral", "collateral_missing",
                 "debug_not_allowed", "measurement_not_allowed", "tcb_below_minimum", "chip_id_not_allowed", "vmpl_not_allowed", "tee_not_allowed",
                 "tcb_status_not_allowed", "malformed_policy", "guest_svn_below_minimum", "signer_not_allowed", "product_not_allowed",
                 "evidence_too_old", "nonce_mismatch", "report_data_mismatch", "tls_key_mismatch", "claims_document_mismatch",
                 "operator_models_mismatch"):
        assert code in codes, code


def test_module_entry_point_matches_cli(tmp_path):
    """`python -m blindai attestation verify` (a real subprocess) exits 0 with claims, and 1 with `code: reason`."""
    base = [sys.executable, "-m", "blindai", "attestation", "verify", "--report", str(SNP / "milan/trustee_report.bin"),
            "--vcek", str(SNP / "milan/trustee_vcek.der")]
    ok = subprocess.run(base + ["--at", "2024-01-01T00:00:00Z"], capture_output=True, text=True)
    assert ok.returncode == 0, ok.stderr
    assert json.loads(ok.stdout)["snp"]["product"] == "Milan"
    bad = subprocess.run(base + ["--at", "2060-01-01T00:00:00Z"], capture_output=True, text=True)
    assert bad.returncode == 1
    assert "verification failed: certificate_not_valid_at_time: " in bad.stderr
    usage = subprocess.run(base[:5], capture_output=True, text=True)
    assert usage.returncode == 64


# Duplicate JSON members (at any depth) and unknown members inside a tdx.measurements entry: both verifiers refuse
# them. Swift's JSONDecoder used to keep one of the duplicates silently (`{"snp":{"anyMeasurement":true},"snp":{...}}`
# accepted any measurement) and ignored unknown members in tdx.measurements entries (a misspelt "rtmr" accepted any
# RTMR); policies are malformed_policy, evidence bundles malformed_evidence, claims documents claims_document_mismatch.
_Z = "00" * 48


def strict_member_cases() -> list[Case]:
    snp_trustee = ["--report", str(SNP / "milan/trustee_report.bin"), "--vcek", str(SNP / "milan/trustee_vcek.der"), "--at", "2024-01-01T00:00:00Z"]
    cases = [
        policy_case("duplicate/snp-section", snp_trustee,
                    '{"allowTLSKeyFromFile":true,"snp":{"anyMeasurement":true},"snp":{"measurements":["' + _Z + '"]}}'),
        policy_case("unknown-member/tdx-measurement-entry", ["--quote", str(TDX / "dcap-qvl/tdx_quote_v4_b0c06f.dat"), "--collateral",
                                                             str(TDX / "dcap-qvl/collateral_v4_b0c06f"), "--at", "2025-07-01T00:00:00Z"],
                    {"tdx": {"measurements": [
                        {"mrtd": "91eb2b44d141d4ece09f0c75c2c53d247a3c68edd7fafe8a3520c942a604a407de03ae6dc5f87f27428b2538873118b7",
                         "rtmr": ["00" * 48]}]}}),
        policy_case("duplicate/allow-debug", ["--report", str(SNP / "milan/gosev_attestation.bin"), "--vcek", str(SNP / "milan/gosev_vcek.der"),
                                              "--at", "2022-09-24T01:00:00Z"],
                    '{"allowDebug":true,"allowDebug":false,"allowTLSKeyFromFile":true,"snp":{"anyMeasurement":true}}'),
        policy_case("duplicate/escaped-nested", snp_trustee,
                    '{"allowTLSKeyFromFile":true,"snp":{"anyMeasurement":true,"minimumTCB":{"snp":0,"\\u0073np":0}}}'),
    ]
    r = base64.b64encode((SNP / "milan/trustee_report.bin").read_bytes()).decode()
    v = base64.b64encode((SNP / "milan/trustee_vcek.der").read_bytes()).decode()
    claims = ('{"attributes":{"tlsKeyGeneratedInMemory":"false","tlsKeyGeneratedInMemory":"true"},'
              '"issuedAt":"2024-01-01T00:00:00Z","tee":"sev-snp","version":1}').encode()
    bundles = {
        "format": '{"format":"blindai-evidence/2","format":"blindai-evidence/1","tee":"sev-snp","report":"%s","certificates":["%s"]}' % (r, v),
        "collateral": '{"format":"blindai-evidence/1","tee":"sev-snp","report":"%s","certificates":["%s"],'
                      '"collateral":{"vcek_crl.der":"AA==","vcek_crl.der":"AQ=="}}' % (r, v),
        "claims": '{"format":"blindai-evidence/1","tee":"sev-snp","report":"%s","certificates":["%s"],"claims":"%s"}'
                  % (r, v, base64.b64encode(claims).decode()),
    }
    for m, data in bundles.items():
        cases.append(Case(f"duplicate/evidence-{m}", ["--evidence", "{e}", "--at", "2024-01-01T00:00:00Z"], {"e": data.encode()}))
    return cases


STRICT_MEMBER_CASES = strict_member_cases()
STRICT_MEMBER_CODES = {"duplicate/evidence-format": "malformed_evidence", "duplicate/evidence-collateral": "malformed_evidence",
                       "duplicate/evidence-claims": "claims_document_mismatch"}


@pytest.mark.parametrize("case", STRICT_MEMBER_CASES, ids=[c.label for c in STRICT_MEMBER_CASES])
def test_same_verdict_on_duplicate_and_unknown_members(case, blindai_bin, tmp_path):
    args = materialize(case, tmp_path)
    python = run_python(args)
    assert python == run_swift(blindai_bin, args)
    assert python == ("refused", 1, STRICT_MEMBER_CODES.get(case.label, "malformed_policy"))
