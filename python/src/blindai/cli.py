"""`python -m blindai attestation verify ...`: the offline verifier, with the arguments, exit statuses and
`verification failed: code: reason` output of `blindai attestation verify` (Sources/BlindAICommands/AttestationCommands.swift).

Exit status: 0 verified (claims JSON on standard output), 1 verification failed (or a malformed policy), 64 usage error."""

from __future__ import annotations

import argparse
import json
import os
import re
import sys

from . import _der
from .attestation.policy import Policy
from .attestation.snp import SNPReport
from .attestation.tdx import TDXCollateral, fmspc_of_quote
from .attestation.verifier import AttestationVerifier, ChannelBinding, EvidenceBundle, snp_crl_file_name
from .errors import AttestationError

EX_USAGE = 64


class UsageError(Exception):
    pass


def _read(path: str) -> bytes:
    try:
        with open(path, "rb") as f:
            return f.read()
    except OSError:
        raise UsageError(f"cannot read {path}") from None


def _certificates(data: bytes) -> list[bytes]:
    if data[:1] == b"\x30":
        return [data]
    return _der.pem_decode_all(data.decode("utf-8", "replace"))


_AT = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(Z|[+-]\d{2}:\d{2})$")


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m blindai attestation verify",
                                description="Verify SEV-SNP and TDX attestation evidence and print the verified claims as JSON.")
    p.add_argument("--evidence", help="Evidence bundle JSON (as returned by the attestation endpoint).")
    p.add_argument("--report", help="SEV-SNP report (1184 bytes, raw).")
    p.add_argument("--vcek", help="VCEK or VLEK certificate (DER or PEM).")
    p.add_argument("--chain", help="ASK/ASVK and ARK certificates (PEM bundle or DER). Default: the pinned AMD certificates.")
    p.add_argument("--quote", help="TDX quote (v4 or v5).")
    p.add_argument("--collateral", help="TDX collateral (required: CRLs and QE identity): a directory or a QuoteCollateralV3 JSON file. SEV-SNP: a directory with vcek_crl.der/vlek_crl.der, or one CRL (DER).")
    p.add_argument("--policy", help="Policy manifest (JSON). See docs/attestation.md.")
    p.add_argument("--at", help="Verification time, ISO 8601 (default: now).")
    p.add_argument("--nonce", help="With --evidence: the 32-byte nonce (hex) this client sent.")
    p.add_argument("--tls-certificate", help="With --evidence and --nonce: the TLS certificate (DER or PEM) the connection presented.")
    p.add_argument("--allow-simulated", action="store_true", help="Accept evidence from the simulated TEE. Never for production.")
    return p


def verify_main(argv: list[str]) -> int:
    parser = _parser()
    try:
        a = parser.parse_args(argv)
    except SystemExit as e:
        return EX_USAGE if e.code else 0
    try:
        modes = sum([a.evidence is not None, a.report is not None or a.vcek is not None, a.quote is not None])
        if modes != 1:
            raise UsageError("give exactly one of --evidence, --report/--vcek, or --quote")
        if (a.report is not None or a.vcek is not None) and (a.report is None or a.vcek is None):
            raise UsageError("--report needs --vcek (and the reverse)")
        if a.chain is not None and a.report is None:
            raise UsageError("--chain goes with --report")
        if a.collateral is not None and a.quote is None and a.report is None:
            raise UsageError("--collateral goes with --quote or --report")
        if (a.nonce is None) != (a.tls_certificate is None):
            raise UsageError("--nonce and --tls-certificate go together")
        if a.nonce is not None and a.evidence is None:
            raise UsageError("--nonce goes with --evidence")
        if a.at is not None:
            t = _der.parse_iso8601(a.at) if _AT.match(a.at) else None
            if t is None:
                raise UsageError(f'--at "{a.at}" is not an ISO 8601 time')
        else:
            import time
            t = time.time()
        policy = Policy.authenticity_only()
        if a.policy is not None:
            try:
                policy = Policy.load(a.policy)
            except AttestationError as e:
                print(f"Error: {e.code}: {e.reason}", file=sys.stderr)
                return 1
        if a.allow_simulated:
            print("warning: --allow-simulated: evidence from the simulated TEE is accepted; it proves nothing about the server",
                  file=sys.stderr)
            policy.allow_simulated = True
        verifier = AttestationVerifier(policy)
        try:
            if a.evidence is not None:
                bundle = EvidenceBundle.decode(_read(a.evidence))
                binding = None
                if a.nonce is not None:
                    try:
                        n = bytes.fromhex(a.nonce) if len(a.nonce) % 2 == 0 else None
                    except ValueError:
                        n = None
                    if n is None:
                        raise UsageError("--nonce is not hex")
                    certs = _certificates(_read(a.tls_certificate))
                    if not certs:
                        raise UsageError("no certificate found")
                    binding = ChannelBinding.from_certificate(n, certs[0])
                else:
                    print("note: no --nonce/--tls-certificate: the channel binding is not checked", file=sys.stderr)
                claims = verifier.verify(bundle, binding, t)
            elif a.report is not None:
                chain = _certificates(_read(a.chain)) if a.chain is not None else []
                report = _read(a.report)
                crl = None
                if a.collateral is not None:
                    if not os.path.exists(a.collateral):
                        raise UsageError(f"--collateral {a.collateral} does not exist")
                    if os.path.isdir(a.collateral):
                        signer = SNPReport(report).signer or "VCEK"
                        path = os.path.join(a.collateral, snp_crl_file_name(signer))
                        crl = _read(path) if os.path.isfile(path) else None
                    else:
                        crl = _read(a.collateral)
                claims = verifier.verify_snp(report, _read(a.vcek), chain, t, crl)
            else:
                quote = _read(a.quote)
                collateral = TDXCollateral()
                if a.collateral is not None:
                    if not os.path.exists(a.collateral):
                        raise UsageError(f"--collateral {a.collateral} does not exist")
                    if os.path.isdir(a.collateral):
                        collateral = TDXCollateral.load_directory(a.collateral, fmspc_of_quote(quote))
                    else:
                        collateral = TDXCollateral.load_quote_collateral_v3(_read(a.collateral))
                claims = verifier.verify_tdx(quote, collateral, t)
        except AttestationError as e:
            print(f"verification failed: {e.code}: {e.reason}", file=sys.stderr)
            return 1
        print(json.dumps(claims, indent=2, sort_keys=True, ensure_ascii=False))
        if a.policy is None:
            print(f"measurement: {claims['measurement']}", file=sys.stderr)
        return 0
    except UsageError as e:
        print(f"Error: {e}", file=sys.stderr)
        print("Usage: python -m blindai attestation verify [--evidence F | --report F --vcek F [--chain F] | --quote F [--collateral D]] "
              "[--policy F] [--at TIME] [--allow-simulated]", file=sys.stderr)
        return EX_USAGE


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv[:2] == ["attestation", "verify"]:
        return verify_main(argv[2:])
    print("usage: python -m blindai attestation verify [options]   (see --help)", file=sys.stderr)
    return EX_USAGE
