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
    any_measurement: bool = False
    allow_migration_agent: bool = False
    allow_smt: bool = True
    require_single_socket: bool = False
    minimum_abi: tuple | None = None  # (major, minor)
    host_data: list[str] | None = None
    vlek_csp_ids: list[str] | None = None
    require_crl: bool = False


@dataclass
class TDXMeasurement:
    mrtd: str
    rtmrs: list | None = None


@dataclass
class TDXRules:
    measurements: list[TDXMeasurement] | None = None
    allowed_tcb_statuses: list[str] | None = field(default_factory=lambda: ["UpToDate"])
    any_measurement: bool = False
    minimum_tcb_evaluation_data_number: int | None = None
    require_sept_ve_disable: bool = True
    allow_migratable: bool = False
    mr_service_tds: list[str] | None = None
    allow_pks: bool = True
    allow_perfmon: bool = False
    xfams: list[str] | None = None
    mr_config_ids: list[str] | None = None
    mr_owners: list[str] | None = None


@dataclass
class PinnedModel:
    """One of the operator's pre-loaded models a policy pins (`operatorModels`): its name and SHA-256 (lowercase)."""

    name: str
    sha256: str

    def __post_init__(self):
        self.sha256 = self.sha256.lower()


@dataclass
class Policy:
    allow_simulated: bool = False
    allow_debug: bool = False
    max_evidence_age_seconds: float | None = None
    simulated_root_keys: list[str] | None = None
    allow_tls_key_from_file: bool = False
    #: The operator's pre-loaded models the server must have, exactly (the claims document's `models`); None: not checked.
    operator_models: list[PinnedModel] | None = None
    snp: SNPRules | None = field(default_factory=SNPRules)
    tdx: TDXRules | None = field(default_factory=TDXRules)

    @staticmethod
    def authenticity_only() -> "Policy":
        """Authenticity plus the safety defaults (the CLI's default without --policy)."""
        return Policy(allow_tls_key_from_file=True, snp=SNPRules(any_measurement=True),
                      tdx=TDXRules(any_measurement=True, allowed_tcb_statuses=None))

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
                raise AttestationError("malformed_policy", f"policy file {os.fspath(source)} cannot be read") from None
        else:
            raise TypeError("policy must be a path, JSON bytes, a dict or a Policy")
        try:
            obj = json.loads(text, parse_constant=_reject_constant, object_pairs_hook=_der.json_no_duplicates)
        except (ValueError, UnicodeDecodeError) as e:
            raise AttestationError("malformed_policy", f"policy: the data is not valid JSON ({e})") from None
        return _from_manifest(obj)

    # MARK: evaluation

    def evaluate(self, claims: "dict", t: float) -> None:
        for rule in self._rules():
            rule(claims, t)

    def _rules(self):
        rules = [_tee_rule(self.snp is not None, self.tdx is not None), _simulated_rule(self.allow_simulated, self.simulated_root_keys),
                 _debug_rule(self.allow_debug)]
        if not self.allow_tls_key_from_file:
            rules.append(_tls_key_origin_rule)
        if self.max_evidence_age_seconds is not None:
            rules.append(_age_rule(self.max_evidence_age_seconds))
        if self.operator_models is not None:
            rules.append(_operator_models_rule(self.operator_models))
        s = self.snp
        if s is not None:
            rules.append(_snp_measurement_rule(None if s.any_measurement else (s.measurements or [])))
            rules.append(_snp_launch_rule(s))
            if s.host_data is not None:
                rules.append(_register_rule("snp.hostData", "snp", "hostData", "HOST_DATA", "host_data_not_allowed", s.host_data))
            if s.vlek_csp_ids is not None:
                rules.append(_csp_rule(s.vlek_csp_ids))
            if s.require_crl:
                rules.append(_snp_crl_rule)
            if s.signers is not None:
                rules.append(_list_rule("snp.signers", "signer", "signer_not_allowed", s.signers))
            if s.products is not None:
                rules.append(_list_rule("snp.products", "product", "product_not_allowed", s.products))
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
            rules.append(_tdx_measurement_rule(None if x.any_measurement else (x.measurements or [])))
            rules.append(_tdx_attributes_rule(x))
            if x.xfams is not None:
                rules.append(_register_rule("tdx.xfams", "tdx", "xfam", "XFAM", "xfam_not_allowed", x.xfams))
            if x.mr_config_ids is not None:
                rules.append(_register_rule("tdx.mrConfigIDs", "tdx", "mrConfigID", "MRCONFIGID", "mr_config_id_not_allowed", x.mr_config_ids))
            if x.mr_owners is not None:
                rules.append(_register_rule("tdx.mrOwners", "tdx", "mrOwner", "MROWNER", "mr_owner_not_allowed", x.mr_owners))
            if x.allowed_tcb_statuses is not None:
                rules.append(_tcb_status_rule(x.allowed_tcb_statuses))
            if x.minimum_tcb_evaluation_data_number is not None:
                rules.append(_evaluation_number_rule(x.minimum_tcb_evaluation_data_number))
        return rules


def _reject_constant(c):
    raise ValueError(f"{c} is not JSON")


def _abbrev(h: str) -> str:
    return h if len(h) <= 12 else f"{h[:8]}…{h[-4:]}"


def _tee_rule(snp: bool, tdx: bool):
    def rule(c, t):
        ok = snp if c["tee"] == "sev-snp" else tdx
        if not ok:
            raise AttestationError("tee_not_allowed",
                                   f"rule tee: {c['tee']} evidence is not allowed (the policy has no {'snp' if c['tee'] == 'sev-snp' else 'tdx'} section)")
    return rule


def _simulated_rule(allowed: bool, pinned: list[str] | None):
    def rule(c, t):
        if not c["simulated"]:
            return
        if not allowed:
            raise AttestationError("simulated_not_allowed",
                                   "rule allowSimulated: the evidence comes from a simulated TEE and the policy does not allow simulated evidence")
        if pinned is not None:
            key = c.get("simulatedRootKeySHA256") or "?"
            if key not in pinned:
                raise AttestationError("simulated_root_not_pinned",
                                       f"rule simulatedRootKeys: the simulated root's key {_abbrev(key)} is not one the policy pins ({', '.join(map(_abbrev, pinned))})")
    return rule


def _tls_key_origin_rule(c, t):
    origin = c.get("tlsKeyGeneratedInTEE")
    if origin is True:
        return
    if origin is False:
        raise AttestationError("tls_key_not_generated_in_tee",
                               "rule allowTLSKeyFromFile: the server loaded its TLS key from a file (it existed outside the TEE) and the policy requires a key generated in the TEE")
    raise AttestationError("tls_key_not_generated_in_tee",
                           "rule allowTLSKeyFromFile: the evidence has no bound claims document saying the TLS key was generated in the TEE")


def _operator_models_rule(pinned: list[PinnedModel]):
    """The operator's pre-loaded models (claims `operatorModels`, from the bound claims document's `models`) must be
    exactly the pinned ones: the same names with the same SHA-256, none missing and none more."""
    def rule(c, t):
        claimed = c.get("operatorModels")
        if claimed is None:
            raise AttestationError("operator_models_mismatch",
                                   "rule operatorModels: the evidence has no bound claims document listing the operator's models")
        have: dict[str, str] = {}
        for m in claimed:
            have.setdefault(m["name"], m["sha256"].lower())
        want: dict[str, str] = {}
        for m in pinned:
            want.setdefault(m.name, m.sha256.lower())
        if have == want:
            return
        differences = []
        for name in sorted(want):
            digest = want[name]
            other = have.get(name)
            if other is None:
                differences.append(f"'{name}' is missing")
            elif other != digest:
                differences.append(f"'{name}' has SHA-256 {other[:16]}…, the policy pins {digest[:16]}…")
        differences.extend(f"'{name}' is not pinned" for name in sorted(have) if name not in want)
        raise AttestationError("operator_models_mismatch",
                               "rule operatorModels: the server's pre-loaded models differ from the policy: " + "; ".join(differences))
    return rule


def _snp_launch_rule(r: SNPRules):
    def rule(c, t):
        s = c.get("snp")
        if s is None:
            return
        g = s["guestPolicy"]
        if not r.allow_migration_agent:
            if g["migrateMA"]:
                raise AttestationError("migration_agent_not_allowed",
                                       f"rule snp.allowMigrationAgent: guest policy {s['policy']} has MIGRATE_MA (bit 18) set and the policy refuses migration agents")
            if any(ch != "f" for ch in s["reportIDMA"]):
                raise AttestationError("migration_agent_not_allowed",
                                       f"rule snp.allowMigrationAgent: the report names migration agent {_abbrev(s['reportIDMA'])} (REPORT_ID_MA) and the policy refuses migration agents")
        if not r.allow_smt and g["smt"]:
            raise AttestationError("guest_policy_not_allowed", f"rule snp.allowSMT: guest policy {s['policy']} allows SMT (bit 16) and the policy refuses it")
        if r.require_single_socket and not g["singleSocket"]:
            raise AttestationError("guest_policy_not_allowed", f"rule snp.requireSingleSocket: guest policy {s['policy']} does not have SINGLE_SOCKET (bit 20) set")
        if r.minimum_abi is not None:
            abi = (g["abiMajor"], g["abiMinor"])
            if abi < tuple(r.minimum_abi):
                raise AttestationError("guest_policy_not_allowed",
                                       f"rule snp.minimumABI: guest policy {s['policy']} requires firmware ABI {abi[0]}.{abi[1]}, below the minimum {r.minimum_abi[0]}.{r.minimum_abi[1]}")
    return rule


def _csp_rule(allowed):
    def rule(c, t):
        s = c.get("snp")
        if s is None or s["signer"] != "VLEK":
            return
        csp = s.get("cspID")
        if csp is None or csp not in allowed:
            shown = f'"{csp}"' if csp is not None else "(none)"
            raise AttestationError("csp_id_not_allowed", f"rule snp.vlekCSPIDs: the VLEK's cspID {shown} is not one of {', '.join(allowed)}")
    return rule


def _snp_crl_rule(c, t):
    s = c.get("snp")
    if s is not None and not s["checkedCRL"]:
        raise AttestationError("collateral_missing", "rule snp.requireCRL: no AMD CRL (vcek_crl.der or vlek_crl.der) came with the evidence or the collateral directory")


def _tdx_attributes_rule(r: TDXRules):
    def rule(c, t):
        x = c.get("tdx")
        if x is None:
            return
        ta = x["tdAttributes"]
        raw = int.from_bytes(bytes.fromhex(ta), "little") if _is_hex(ta) else 0
        if r.require_sept_ve_disable and not raw & (1 << 28):
            raise AttestationError("td_attributes_not_allowed", f"rule tdx.requireSEPTVEDisable: TD_ATTRIBUTES {ta} lacks SEPT_VE_DISABLE (bit 28): the host could inject #VE on private-memory EPT violations")
        if not r.allow_migratable and raw & (1 << 29):
            raise AttestationError("migration_agent_not_allowed", f"rule tdx.allowMigratable: TD_ATTRIBUTES {ta} has MIGRATABLE (bit 29) set and the policy refuses migratable TDs")
        if not r.allow_pks and raw & (1 << 30):
            raise AttestationError("td_attributes_not_allowed", f"rule tdx.allowPKS: TD_ATTRIBUTES {ta} has PKS (bit 30) set and the policy does not allow it")
        if not r.allow_perfmon and raw & (1 << 63):
            raise AttestationError("td_attributes_not_allowed", f"rule tdx.allowPerfmon: TD_ATTRIBUTES {ta} has PERFMON (bit 63) set and the policy does not allow it")
        service = x.get("mrServiceTD")
        if service is not None and any(ch != "0" for ch in service) and service not in (r.mr_service_tds or []):
            raise AttestationError("migration_agent_not_allowed",
                                   f"rule tdx.mrServiceTDs: a service TD (for example a migration TD) is bound, MRSERVICETD {_abbrev(service)}, and the policy does not list it")
    return rule


def _is_hex(text: str) -> bool:
    return len(text) % 2 == 0 and all(ch in "0123456789abcdefABCDEF" for ch in text)


def _register_rule(name, section, member, field_name, code, allowed):
    def rule(c, t):
        sec = c.get(section)
        value = sec.get(member) if sec is not None else None
        if value is None:
            return
        if value not in allowed:
            n = len(allowed)
            raise AttestationError(code, f"rule {name}: {field_name} {_abbrev(value)} is not in the allowlist ({n} entr{'y' if n == 1 else 'ies'})")
    return rule


def _evaluation_number_rule(minimum: int):
    def rule(c, t):
        x = c.get("tdx")
        if x is None:
            return
        for what, key in (("TCB info", "tcbInfoEvaluationDataNumber"), ("QE identity", "qeIdentityEvaluationDataNumber")):
            n = x.get(key)
            if n is None:
                raise AttestationError("collateral_missing", f"rule tdx.minimumTCBEvaluationDataNumber: no {what} with a tcbEvaluationDataNumber was checked")
            if n < minimum:
                raise AttestationError("tcb_evaluation_data_number_below_minimum",
                                       f"rule tdx.minimumTCBEvaluationDataNumber: the {what} has tcbEvaluationDataNumber {n}, below the minimum {minimum}")
    return rule


def _debug_rule(allowed: bool):
    def rule(c, t):
        if c["debug"] and not allowed:
            if c["tee"] == "sev-snp":
                detail = f"guest policy {c['snp']['policy']} has DEBUG (bit 19) set"
            else:
                detail = f"TD_ATTRIBUTES {c['tdx']['tdAttributes']} has DEBUG (bit 0) set"
            raise AttestationError("debug_not_allowed", f"rule allowDebug: {detail} and the policy forbids debug")
    return rule


def _age_rule(maximum: float, skew: float = 60):
    def rule(c, t):
        text = c.get("claimsIssuedAt")
        issued = _der.parse_iso8601(text) if text is not None else None
        if issued is None:
            raise AttestationError("evidence_too_old", "rule maxEvidenceAgeSeconds: the evidence has no bound claims document with an issuance time")
        age = t - issued
        if not (age <= maximum and age >= -skew):
            raise AttestationError("evidence_too_old",
                                   f"rule maxEvidenceAgeSeconds: evidence issued at {text} is {int(age)} s old at {_der.iso(t)}; maximum {int(maximum)} s")
    return rule


def _snp_measurement_rule(allowed):
    def rule(c, t):
        if c["tee"] != "sev-snp" or allowed is None:
            return
        if not allowed:
            raise AttestationError("measurement_not_allowed", "rule snp.measurements: the policy lists no measurement and does not say anyMeasurement")
        if c["measurement"] not in allowed:
            n = len(allowed)
            raise AttestationError("measurement_not_allowed",
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
                raise AttestationError("tcb_below_minimum", f"rule snp.minimumTCB: {fname} minimum {minimum} is set but {s['product']} reports no {fname} SVN")
            if actual < minimum:
                raise AttestationError("tcb_below_minimum", f"rule snp.minimumTCB: reported {fname} SVN {actual} is below the minimum {minimum}")
    return rule


def _guest_svn_rule(minimum: int):
    def rule(c, t):
        s = c.get("snp")
        if s is not None and s["guestSVN"] < minimum:
            raise AttestationError("guest_svn_below_minimum", f"rule snp.minimumGuestSVN: guest SVN {s['guestSVN']} is below the minimum {minimum}")
    return rule


def _chip_rule(allowed):
    def rule(c, t):
        s = c.get("snp")
        if s is None:
            return
        chip = s.get("chipID")
        if chip is None:
            raise AttestationError("chip_id_not_allowed",
                                   f"rule snp.chipIDs: the report carries no chip ID ({'VLEK-signed' if s['signer'] == 'VLEK' else 'masked'}), so it cannot match the allowlist")
        if chip not in allowed:
            raise AttestationError("chip_id_not_allowed", f"rule snp.chipIDs: chip ID {_abbrev(chip)} is not in the allowlist ({len(allowed)} entries)")
    return rule


def _vmpl_rule(maximum: int):
    def rule(c, t):
        s = c.get("snp")
        if s is not None and s["vmpl"] > maximum:
            raise AttestationError("vmpl_not_allowed", f"rule snp.maximumVMPL: report VMPL {s['vmpl']} is above the maximum {maximum}")
    return rule


def _tdx_measurement_rule(allowed: list[TDXMeasurement]):
    def rule(c, t):
        x = c.get("tdx")
        if x is None or allowed is None:
            return
        if not allowed:
            raise AttestationError("measurement_not_allowed", "rule tdx.measurements: the policy lists no measurement and does not say anyMeasurement")
        cands = [m for m in allowed if m.mrtd == c["measurement"]]
        n = len(allowed)
        if not cands:
            raise AttestationError("measurement_not_allowed",
                                   f"rule tdx.measurements: MRTD {_abbrev(c['measurement'])} is not in the allowlist ({n} entr{'y' if n == 1 else 'ies'})")
        if not any(all(w is None or w == x["rtmrs"][i] for i, w in enumerate(m.rtmrs or [])) for m in cands):
            raise AttestationError("measurement_not_allowed",
                                   f"rule tdx.measurements: MRTD {_abbrev(c['measurement'])} is allowed but RTMRs {', '.join(_abbrev(r) for r in x['rtmrs'])} match none of its entries")
    return rule


def _tcb_status_rule(allowed):
    def rule(c, t):
        x = c.get("tdx")
        if x is None:
            return
        tcb = x.get("tcb")
        if tcb is None:
            raise AttestationError("collateral_missing", "rule tdx.allowedTCBStatuses: no TCB info collateral was supplied, so the TCB status is unknown")
        if not x["checkedQEIdentity"]:
            raise AttestationError("collateral_missing", "rule tdx.allowedTCBStatuses: no QE identity collateral was supplied")
        if tcb["status"] not in allowed:
            raise AttestationError("tcb_status_not_allowed",
                                   f"rule tdx.allowedTCBStatuses: TCB status {tcb['status']} (platform {tcb['platformStatus']}) is not one of {', '.join(allowed)}")
    return rule


# MARK: manifest decoding (strict, as Swift's PolicyManifest)

def _bad(msg: str) -> AttestationError:
    return AttestationError("malformed_policy", f"policy: {msg}")


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


def _measurement_choice(sec: dict, has_list: bool, section: str, path: str) -> bool:
    any_m = _typed(sec, "anyMeasurement", "bool", path) or False
    if has_list == any_m:
        if has_list:
            raise _bad(f"{section} has both measurements and anyMeasurement; keep one")
        raise _bad(f'{section} lists no measurements; list the allowed ones, or say "anyMeasurement": true to accept any '
                   "(anyone who rents a confidential VM would pass)")
    return any_m


def _nested_keys(sec: dict, key: str, allowed: set, section: str) -> None:
    if key in sec:
        v = sec[key]
        if not isinstance(v, dict):
            raise _bad(f"wrong type at {section}: expected an object")
        _check_keys(v, allowed, section)


def _operator_models(lst) -> list[PinnedModel]:
    # As Swift: the member, when present, must be an array (null included is refused); an empty array pins "no models".
    if not isinstance(lst, list):
        raise _bad("wrong type at operatorModels: expected an array")
    models: list[PinnedModel] = []
    for i, m in enumerate(lst):
        if not isinstance(m, dict):
            raise _bad(f"wrong type at operatorModels.{i}: expected an object")
        _check_keys(m, {"name", "sha256"}, "an operatorModels entry")
        name, digest = m.get("name"), m.get("sha256")
        for key, v in (("name", name), ("sha256", digest)):
            if v is None:
                raise _bad(f"operatorModels.{i} has no {key}")
            if not isinstance(v, str):
                raise _bad(f"wrong type at operatorModels.{i}.{key}: expected a string")
        digest = _hex_list([digest], 64, "operatorModels.sha256")[0]
        if any(x.name == name for x in models):
            raise _bad(f"operatorModels names '{name}' twice")
        models.append(PinnedModel(name, digest))
    return models


def _from_manifest(obj) -> Policy:
    if not isinstance(obj, dict):
        raise _bad("wrong type at : expected a JSON object")
    _check_keys(obj, {"version", "allowSimulated", "simulatedRootKeys", "allowDebug", "allowTLSKeyFromFile", "maxEvidenceAgeSeconds",
                      "operatorModels", "snp", "tdx"}, "the policy")
    version = _typed(obj, "version", "int", "")
    version = 1 if version is None else version
    if version != 1:
        raise _bad(f"version {version} is not supported (1)")
    p = Policy(snp=None, tdx=None)
    p.allow_simulated = _typed(obj, "allowSimulated", "bool", "") or False
    p.simulated_root_keys = _hex_list(_typed(obj, "simulatedRootKeys", "strings", ""), 64, "simulatedRootKeys")
    if p.allow_simulated and p.simulated_root_keys is None:
        raise _bad("allowSimulated needs simulatedRootKeys (the SHA-256 of the simulated root's public key that blindai serve "
                   "prints); without it any self-made simulated chain would pass")
    p.allow_debug = _typed(obj, "allowDebug", "bool", "") or False
    p.allow_tls_key_from_file = _typed(obj, "allowTLSKeyFromFile", "bool", "") or False
    p.max_evidence_age_seconds = _typed(obj, "maxEvidenceAgeSeconds", "double", "")
    if p.max_evidence_age_seconds is not None and p.max_evidence_age_seconds <= 0:
        raise _bad(f"maxEvidenceAgeSeconds must be positive, found {p.max_evidence_age_seconds}")
    if "operatorModels" in obj:
        p.operator_models = _operator_models(obj["operatorModels"])
    if "snp" in obj:
        s = obj["snp"]
        if not isinstance(s, dict):
            raise _bad("wrong type at snp: expected an object")
        _check_keys(s, {"measurements", "anyMeasurement", "signers", "products", "minimumTCB", "minimumGuestSVN", "chipIDs",
                        "maximumVMPL", "allowMigrationAgent", "allowSMT", "requireSingleSocket", "minimumABI", "hostData",
                        "vlekCSPIDs", "requireCRL"}, "snp")
        _nested_keys(s, "minimumTCB", {"bootloader", "tee", "snp", "microcode", "fmc"}, "snp.minimumTCB")
        _nested_keys(s, "minimumABI", {"major", "minor"}, "snp.minimumABI")
        measurements = _hex_list(_typed(s, "measurements", "strings", "snp."), 96, "snp.measurements")
        csp = _typed(s, "vlekCSPIDs", "strings", "snp.")
        if csp is not None and not csp:
            raise _bad("snp.vlekCSPIDs is empty; omit it to accept any value")
        any_m = _measurement_choice(s, measurements is not None, "snp", "snp.")
        signers = _enum_list(_typed(s, "signers", "strings", "snp."), ("VCEK", "VLEK"), "snp.signers")
        products = _enum_list(_typed(s, "products", "strings", "snp."), ("Milan", "Genoa", "Turin"), "snp.products")
        m = None
        if s.get("minimumTCB") is not None:
            t = s["minimumTCB"]
            m = MinimumTCB(**{k: _typed(t, k, "u8", "snp.minimumTCB.") for k in ("bootloader", "tee", "snp", "microcode", "fmc")})
        guest_svn = _typed(s, "minimumGuestSVN", "u32", "snp.")
        chips = _hex_list(_typed(s, "chipIDs", "strings", "snp."), 128, "snp.chipIDs")
        vmpl = _typed(s, "maximumVMPL", "u32", "snp.")
        migration = _typed(s, "allowMigrationAgent", "bool", "snp.") or False
        smt = _typed(s, "allowSMT", "bool", "snp.")
        single = _typed(s, "requireSingleSocket", "bool", "snp.") or False
        abi = None
        if s.get("minimumABI") is not None:
            a = s["minimumABI"]
            major, minor = _typed(a, "major", "u8", "snp.minimumABI."), _typed(a, "minor", "u8", "snp.minimumABI.")
            if major is None or minor is None:
                raise _bad("snp.minimumABI needs major and minor")
            abi = (major, minor)
        host = _hex_list(_typed(s, "hostData", "strings", "snp."), 64, "snp.hostData")
        require_crl = _typed(s, "requireCRL", "bool", "snp.") or False
        p.snp = SNPRules(measurements=measurements, signers=signers, products=products, minimum_tcb=m, minimum_guest_svn=guest_svn,
                         chip_ids=chips, maximum_vmpl=vmpl, any_measurement=any_m, allow_migration_agent=migration,
                         allow_smt=True if smt is None else smt, require_single_socket=single, minimum_abi=abi, host_data=host,
                         vlek_csp_ids=csp, require_crl=require_crl)
    if "tdx" in obj:
        x = obj["tdx"]
        if not isinstance(x, dict):
            raise _bad("wrong type at tdx: expected an object")
        _check_keys(x, {"measurements", "anyMeasurement", "allowedTCBStatuses", "minimumTCBEvaluationDataNumber", "requireSEPTVEDisable",
                        "allowMigratable", "mrServiceTDs", "allowPKS", "allowPerfmon", "xfams", "mrConfigIDs", "mrOwners"}, "tdx")
        ms = _typed(x, "measurements", "array", "tdx.")
        measurements = None
        if ms is not None:
            if not ms:
                raise _bad("tdx.measurements is empty; omit it to accept any value")
            measurements = []
            for i, e in enumerate(ms):
                if not isinstance(e, dict):
                    raise _bad(f"wrong type at tdx.measurements.{i}: expected an object")
                # As in Swift: a misspelt "rtmr" must not silently accept any RTMR.
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
        floor = _typed(x, "minimumTCBEvaluationDataNumber", "int", "tdx.")
        if floor is not None and floor < 0:
            raise _bad("tdx.minimumTCBEvaluationDataNumber must not be negative")
        any_m = _measurement_choice(x, ms is not None, "tdx", "tdx.")
        sept = _typed(x, "requireSEPTVEDisable", "bool", "tdx.")
        migratable = _typed(x, "allowMigratable", "bool", "tdx.") or False
        service = _hex_list(_typed(x, "mrServiceTDs", "strings", "tdx."), 96, "tdx.mrServiceTDs")
        pks = _typed(x, "allowPKS", "bool", "tdx.")
        perfmon = _typed(x, "allowPerfmon", "bool", "tdx.") or False
        p.tdx = TDXRules(measurements=measurements, allowed_tcb_statuses=statuses, any_measurement=any_m,
                         minimum_tcb_evaluation_data_number=floor, require_sept_ve_disable=True if sept is None else sept,
                         allow_migratable=migratable, mr_service_tds=service, allow_pks=True if pks is None else pks,
                         allow_perfmon=perfmon, xfams=_hex_list(_typed(x, "xfams", "strings", "tdx."), 16, "tdx.xfams"),
                         mr_config_ids=_hex_list(_typed(x, "mrConfigIDs", "strings", "tdx."), 96, "tdx.mrConfigIDs"),
                         mr_owners=_hex_list(_typed(x, "mrOwners", "strings", "tdx."), 96, "tdx.mrOwners"))
    return p
