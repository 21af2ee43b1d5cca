"""The verification policy: the same JSON manifest as the Swift client (docs/attestation.md §5), loaded with the
same strictness (unknown members are errors) and evaluated with the same rules, in the same order, with the same
error codes (Sources/BlindAIAttestation/Policy.swift, PolicyRules.swift)."""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field

from .. import _der
from ..errors import AttestationError
from .tdx import STATUSES


@dataclass
class MinimumTCB:
    bootloader: int | None = None
    tee: int | None = None
    snp: int | None = None
    microcode: int | None = None
    fmc: int | None = None


@dataclass
class SNPRules:
    measurements: list[str] | None = None
    signers: list[str] | None = None
    products: list[str] | None = None
    minimum_tcb: MinimumTCB | None = None
    minimum_guest_svn: int | None = None
    chip_ids: list[str] | None = None
    maximum_vmpl: int | None = None


@dataclass
class TDXMeasurement:
    mrtd: str
    rtmrs: list | None = None


@dataclass
class TDXRules:
    measurements: list[TDXMeasurement] | None = None
    allowed_tcb_statuses: list[str] | None = field(default_factory=lambda: ["UpToDate"])


@dataclass
class Policy:
    allow_simulated: bool = False
    allow_debug: bool = False
    max_evidence_age_seconds: float | None = None
    snp: SNPRules | None = field(default_factory=SNPRules)
    tdx: TDXRules | None = field(default_factory=TDXRules)

    @staticmethod
    def authenticity_only() -> "Policy":
        """Authenticity plus the safety defaults (the CLI's default without --policy)."""
        return Policy(snp=SNPRules(), tdx=TDXRules(allowed_tcb_statuses=None))

    # MARK: loading

    @staticmethod
    def load(source) -> "Policy":
        """A policy from a path, JSON bytes/str, or an already-parsed dict."""
        if isinstance(source, Policy):
            return source
        if isinstance(source, dict):
            return _from_manifest(source)
        if isinstance(source, (bytes, bytearray)):
            text = bytes(source)
        elif isinstance(source, (str, os.PathLike)):
            try:
                with open(source, "rb") as f:
                    text = f.read()
            except OSError:
                raise AttestationError("malformedPolicy", f"policy file {os.fspath(source)} cannot be read") from None
        else:
            raise TypeError("policy must be a path, JSON bytes, a dict or a Policy")
        try:
            obj = json.loads(text, parse_constant=_reject_constant, object_pairs_hook=_der.json_no_duplicates)
        except (ValueError, UnicodeDecodeError) as e:
            raise AttestationError("malformedPolicy", f"policy: the data is not valid JSON ({e})") from None
        return _from_manifest(obj)

    # MARK: evaluation

    def evaluate(self, claims: "dict", t: float) -> None:
        for rule in self._rules():
            rule(claims, t)

    def _rules(self):
        rules = [_tee_rule(self.snp is not None, self.tdx is not None), _simulated_rule(self.allow_simulated),
                 _debug_rule(self.allow_debug)]
        if self.max_evidence_age_seconds is not None:
            rules.append(_age_rule(self.max_evidence_age_seconds))
        s = self.snp
        if s is not None:
            if s.measurements is not None:
                rules.append(_snp_measurement_rule(s.measurements))
            if s.signers is not None:
                rules.append(_list_rule("snp.signers", "signer", "signerNotAllowed", s.signers))
            if s.products is not None:
                rules.append(_list_rule("snp.products", "product", "productNotAllowed", s.products))
            if s.minimum_tcb is not None:
                rules.append(_min_tcb_rule(s.minimum_tcb))
            if s.minimum_guest_svn is not None:
                rules.append(_guest_svn_rule(s.minimum_guest_svn))
            if s.chip_ids is not None:
                rules.append(_chip_rule(s.chip_ids))
            if s.maximum_vmpl is not None:
                rules.append(_vmpl_rule(s.maximum_vmpl))
        x = self.tdx
        if x is not None:
            if x.measurements is not None:
                rules.append(_tdx_measurement_rule(x.measurements))
            if x.allowed_tcb_statuses is not None:
                rules.append(_tcb_status_rule(x.allowed_tcb_statuses))
        return rules


def _reject_constant(c):
    raise ValueError(f"{c} is not JSON")


def _abbrev(h: str) -> str:
    return h if len(h) <= 12 else f"{h[:8]}…{h[-4:]}"


def _tee_rule(snp: bool, tdx: bool):
    def rule(c, t):
        ok = snp if c["tee"] == "sev-snp" else tdx
        if not ok:
            raise AttestationError("teeNotAllowed",
                                   f"rule tee: {c['tee']} evidence is not allowed (the policy has no {'snp' if c['tee'] == 'sev-snp' else 'tdx'} section)")
    return rule


def _simulated_rule(allowed: bool):
    def rule(c, t):
        if c["simulated"] and not allowed:
            raise AttestationError("simulatedNotAllowed",
                                   "rule allowSimulated: the evidence comes from a simulated TEE and the policy does not allow simulated evidence")
    return rule


def _debug_rule(allowed: bool):
    def rule(c, t):
        if c["debug"] and not allowed:
            if c["tee"] == "sev-snp":
                detail = f"guest policy {c['snp']['policy']} has DEBUG (bit 19) set"
            else:
                detail = f"TD_ATTRIBUTES {c['tdx']['tdAttributes']} has DEBUG (bit 0) set"
            raise AttestationError("debugNotAllowed", f"rule allowDebug: {detail} and the policy forbids debug")
    return rule


def _age_rule(maximum: float, skew: float = 60):
    def rule(c, t):
        text = c.get("claimsIssuedAt")
        issued = _der.parse_iso8601(text) if text is not None else None
        if issued is None:
            raise AttestationError("evidenceTooOld", "rule maxEvidenceAgeSeconds: the evidence has no bound claims document with an issuance time")
        age = t - issued
        if not (age <= maximum and age >= -skew):
            raise AttestationError("evidenceTooOld",
                                   f"rule maxEvidenceAgeSeconds: evidence issued at {text} is {int(age)} s old at {_der.iso(t)}; maximum {int(maximum)} s")
    return rule


def _snp_measurement_rule(allowed):
    def rule(c, t):
        if c["tee"] != "sev-snp":
            return
        if c["measurement"] not in allowed:
            n = len(allowed)
            raise AttestationError("measurementNotAllowed",
                                   f"rule snp.measurements: measurement {_abbrev(c['measurement'])} is not in the allowlist ({n} entr{'y' if n == 1 else 'ies'})")
    return rule


def _list_rule(name, what, code, allowed):
    key = "signer" if what == "signer" else "product"

    def rule(c, t):
        s = c.get("snp")
        if s is None:
            return
        if s[key] not in allowed:
            raise AttestationError(code, f"rule {name}: {what} {s[key]} is not one of {', '.join(allowed)}")
    return rule


def _min_tcb_rule(m: MinimumTCB):
    def rule(c, t):
        s = c.get("snp")
        if s is None:
            return
        tcb = s["reportedTCB"]
        for fname in ("bootloader", "tee", "snp", "microcode", "fmc"):
            minimum = getattr(m, fname)
            if minimum is None:
                continue
            actual = tcb.get(fname)
            if actual is None:
                raise AttestationError("tcbBelowMinimum", f"rule snp.minimumTCB: {fname} minimum {minimum} is set but {s['product']} reports no {fname} SVN")
            if actual < minimum:
                raise AttestationError("tcbBelowMinimum", f"rule snp.minimumTCB: reported {fname} SVN {actual} is below the minimum {minimum}")
    return rule


def _guest_svn_rule(minimum: int):
    def rule(c, t):
        s = c.get("snp")
        if s is not None and s["guestSVN"] < minimum:
            raise AttestationError("guestSVNBelowMinimum", f"rule snp.minimumGuestSVN: guest SVN {s['guestSVN']} is below the minimum {minimum}")
    return rule


def _chip_rule(allowed):
    def rule(c, t):
        s = c.get("snp")
        if s is None:
            return
        chip = s.get("chipID")
        if chip is None:
            raise AttestationError("chipIDNotAllowed",
                                   f"rule snp.chipIDs: the report carries no chip ID ({'VLEK-signed' if s['signer'] == 'VLEK' else 'masked'}), so it cannot match the allowlist")
        if chip not in allowed:
            raise AttestationError("chipIDNotAllowed", f"rule snp.chipIDs: chip ID {_abbrev(chip)} is not in the allowlist ({len(allowed)} entries)")
    return rule


def _vmpl_rule(maximum: int):
    def rule(c, t):
        s = c.get("snp")
        if s is not None and s["vmpl"] > maximum:
            raise AttestationError("vmplNotAllowed", f"rule snp.maximumVMPL: report VMPL {s['vmpl']} is above the maximum {maximum}")
    return rule


def _tdx_measurement_rule(allowed: list[TDXMeasurement]):
    def rule(c, t):
        x = c.get("tdx")
        if x is None:
            return
        cands = [m for m in allowed if m.mrtd == c["measurement"]]
        n = len(allowed)
        if not cands:
            raise AttestationError("measurementNotAllowed",
                                   f"rule tdx.measurements: MRTD {_abbrev(c['measurement'])} is not in the allowlist ({n} entr{'y' if n == 1 else 'ies'})")
        if not any(all(w is None or w == x["rtmrs"][i] for i, w in enumerate(m.rtmrs or [])) for m in cands):
            raise AttestationError("measurementNotAllowed",
                                   f"rule tdx.measurements: MRTD {_abbrev(c['measurement'])} is allowed but RTMRs {', '.join(_abbrev(r) for r in x['rtmrs'])} match none of its entries")
    return rule


def _tcb_status_rule(allowed):
    def rule(c, t):
        x = c.get("tdx")
        if x is None:
            return
        tcb = x.get("tcb")
        if tcb is None:
            raise AttestationError("collateralMissing", "rule tdx.allowedTCBStatuses: no TCB info collateral was supplied, so the TCB status is unknown")
        if not x["checkedQEIdentity"]:
            raise AttestationError("collateralMissing", "rule tdx.allowedTCBStatuses: no QE identity collateral was supplied")
        if tcb["status"] not in allowed:
            raise AttestationError("tcbStatusNotAllowed",
                                   f"rule tdx.allowedTCBStatuses: TCB status {tcb['status']} (platform {tcb['platformStatus']}) is not one of {', '.join(allowed)}")
    return rule


# MARK: manifest decoding (strict, as Swift's PolicyManifest)

def _bad(msg: str) -> AttestationError:
    return AttestationError("malformedPolicy", f"policy: {msg}")


def _check_keys(obj: dict, allowed: set, section: str) -> None:
    for k in obj:
        if k not in allowed:
            raise _bad(f'unknown member "{k}" in {section} (known: {", ".join(sorted(allowed))})')


def _typed(obj: dict, key: str, kind: str, path: str):
    if key not in obj or obj[key] is None:
        return None
    v = obj[key]
    where = f"{path}{key}"
    if kind == "bool":
        if not isinstance(v, bool):
            raise _bad(f"wrong type at {where}: expected a boolean")
        return v
    if kind == "double":
        if isinstance(v, bool) or not isinstance(v, (int, float)):
            raise _bad(f"wrong type at {where}: expected a number")
        return float(v)
    if kind in ("int", "u8", "u32"):
        if isinstance(v, bool) or not isinstance(v, (int, float)):
            raise _bad(f"wrong type at {where}: expected an integer")
        if isinstance(v, float):
            if not v.is_integer():
                raise _bad(f"wrong type at {where}: {v} is not an integer")
            v = int(v)
        bounds = {"int": (-(1 << 63), (1 << 63) - 1), "u8": (0, 255), "u32": (0, (1 << 32) - 1)}[kind]
        if not bounds[0] <= v <= bounds[1]:
            raise _bad(f"{v} does not fit at {where}")
        return v
    if kind == "strings":
        if not isinstance(v, list) or not all(isinstance(s, str) for s in v):
            raise _bad(f"wrong type at {where}: expected an array of strings")
        return v
    if kind == "object":
        if not isinstance(v, dict):
            raise _bad(f"wrong type at {where}: expected an object")
        return v
    if kind == "array":
        if not isinstance(v, list):
            raise _bad(f"wrong type at {where}: expected an array")
        return v
    raise AssertionError(kind)


def _hex_list(lst, digits: int, name: str):
    if lst is None:
        return None
    if not lst:
        raise _bad(f"{name} is empty; omit it to accept any value")
    for v in lst:
        if len(v) != digits or any(ch not in "0123456789abcdefABCDEF" for ch in v):
            raise _bad(f'{name} entry "{v}" is not {digits} hex digits')
    return [v.lower() for v in lst]


def _enum_list(lst, values, where):
    if lst is None:
        return None
    for v in lst:
        if v not in values:
            raise _bad(f"Cannot initialize from invalid String value {v} at {where}")
    return lst


def _from_manifest(obj) -> Policy:
    if not isinstance(obj, dict):
        raise _bad("wrong type at : expected a JSON object")
    _check_keys(obj, {"version", "allowSimulated", "allowDebug", "maxEvidenceAgeSeconds", "snp", "tdx"}, "the policy")
    version = _typed(obj, "version", "int", "")
    version = 1 if version is None else version
    if version != 1:
        raise _bad(f"version {version} is not supported (1)")
    p = Policy(snp=None, tdx=None)
    p.allow_simulated = _typed(obj, "allowSimulated", "bool", "") or False
    p.allow_debug = _typed(obj, "allowDebug", "bool", "") or False
    p.max_evidence_age_seconds = _typed(obj, "maxEvidenceAgeSeconds", "double", "")
    if p.max_evidence_age_seconds is not None and p.max_evidence_age_seconds <= 0:
        raise _bad(f"maxEvidenceAgeSeconds must be positive, found {p.max_evidence_age_seconds}")
    if "snp" in obj:
        s = obj["snp"]
        if not isinstance(s, dict):
            raise _bad("wrong type at snp: expected an object")
        _check_keys(s, {"measurements", "signers", "products", "minimumTCB", "minimumGuestSVN", "chipIDs", "maximumVMPL"}, "snp")
        m = None
        if "minimumTCB" in s:
            t = s["minimumTCB"]
            if not isinstance(t, dict):
                raise _bad("wrong type at snp.minimumTCB: expected an object")
            _check_keys(t, {"bootloader", "tee", "snp", "microcode", "fmc"}, "snp.minimumTCB")
        if s.get("minimumTCB") is not None:
            t = s["minimumTCB"]
            m = MinimumTCB(**{k: _typed(t, k, "u8", "snp.minimumTCB.") for k in ("bootloader", "tee", "snp", "microcode", "fmc")})
        p.snp = SNPRules(
            measurements=_hex_list(_typed(s, "measurements", "strings", "snp."), 96, "snp.measurements"),
            signers=_enum_list(_typed(s, "signers", "strings", "snp."), ("VCEK", "VLEK"), "snp.signers"),
            products=_enum_list(_typed(s, "products", "strings", "snp."), ("Milan", "Genoa", "Turin"), "snp.products"),
            minimum_tcb=m,
            minimum_guest_svn=_typed(s, "minimumGuestSVN", "u32", "snp."),
            chip_ids=_hex_list(_typed(s, "chipIDs", "strings", "snp."), 128, "snp.chipIDs"),
            maximum_vmpl=_typed(s, "maximumVMPL", "u32", "snp."))
    if "tdx" in obj:
        x = obj["tdx"]
        if not isinstance(x, dict):
            raise _bad("wrong type at tdx: expected an object")
        _check_keys(x, {"measurements", "allowedTCBStatuses"}, "tdx")
        ms = _typed(x, "measurements", "array", "tdx.")
        measurements = None
        if ms is not None:
            if not ms:
                raise _bad("tdx.measurements is empty; omit it to accept any value")
            measurements = []
            for i, e in enumerate(ms):
                if not isinstance(e, dict):
                    raise _bad(f"wrong type at tdx.measurements.{i}: expected an object")
                # Stricter than the Swift verifier, which ignores unknown members here (a misspelt "rtmr" would
                # silently accept any RTMR): reported as a Swift bug.
                _check_keys(e, {"mrtd", "rtmrs"}, f"tdx.measurements.{i}")
                mrtd = e.get("mrtd")
                if not isinstance(mrtd, str):
                    raise _bad(f"wrong type at tdx.measurements.{i}.mrtd: expected a string")
                rtmrs = e.get("rtmrs")
                if rtmrs is not None and (not isinstance(rtmrs, list) or not all(r is None or isinstance(r, str) for r in rtmrs)):
                    raise _bad(f"wrong type at tdx.measurements.{i}.rtmrs: expected an array of strings or nulls")
                _hex_list([mrtd], 96, "tdx.measurements.mrtd")
                if rtmrs is not None:
                    if len(rtmrs) > 4:
                        raise _bad(f"tdx.measurements.rtmrs has {len(rtmrs)} entries (at most 4)")
                    present = [r for r in rtmrs if r is not None]
                    _hex_list(present or None, 96, "tdx.measurements.rtmrs")
                measurements.append(TDXMeasurement(mrtd.lower(), None if rtmrs is None else [r.lower() if r else None for r in rtmrs]))
        statuses = _enum_list(_typed(x, "allowedTCBStatuses", "strings", "tdx."), STATUSES, "tdx.allowedTCBStatuses")
        if statuses is None:
            statuses = ["UpToDate"]
        if not statuses:
            raise _bad("tdx.allowedTCBStatuses is empty")
        p.tdx = TDXRules(measurements=measurements, allowed_tcb_statuses=statuses)
    return p
