"""Model identity (docs/receipts.md): the policy member `operatorModels` and its rule, the claims document's `models`
and `receiptKey`, `predict(model_sha256=...)` and the response's `model_sha256`, against a live
`blindai serve --tee simulated` (with and without `--model-repository`)."""

from __future__ import annotations

import base64
import copy
import hashlib
import json

import numpy as np
import pytest

import blindai
from blindai.attestation import AttestationVerifier, ChannelBinding, EvidenceBundle, Policy
from blindai.attestation.policy import PinnedModel
from blindai.attestation.verifier import decode_claims_document
from blindai.client import PredictResponse, _decode_inference, _Response
from blindai.errors import AttestationError, InvalidInput, ProtocolViolation, ServerError

import onnx_builder
import simtee
from conftest import REPO
from server import Server

DIGITS = REPO / "demo" / "digits.onnx"
SAMPLES = REPO / "demo" / "samples"
A, B, C = (hashlib.sha256(x).hexdigest() for x in (b"model a", b"model b", b"model c"))


# MARK: policy parsing

def test_operator_models_are_parsed_lowercased_and_optional(tmp_path):
    p = Policy.load({"operatorModels": [{"name": "resnet18", "sha256": A.upper()}, {"name": "bert", "sha256": B}],
                     "snp": {"anyMeasurement": True}})
    assert p.operator_models == [PinnedModel("resnet18", A), PinnedModel("bert", B)]
    assert p.operator_models[0].sha256 == A  # stored lowercase
    assert Policy.load({"snp": {"anyMeasurement": True}}).operator_models is None  # absent: not checked
    assert Policy.load({"operatorModels": [], "snp": {"anyMeasurement": True}}).operator_models == []  # pins "none"
    f = tmp_path / "policy.json"
    f.write_text(json.dumps({"version": 1, "operatorModels": [{"name": "m", "sha256": C}], "tdx": {"anyMeasurement": True}}))
    assert Policy.load(str(f)).operator_models == [PinnedModel("m", C)]
    assert Policy.load(f.read_bytes()).operator_models == [PinnedModel("m", C)]


@pytest.mark.parametrize("models, why", [
    ([{"name": "m", "sha256": A}, {"name": "m", "sha256": B}], "operatorModels names 'm' twice"),
    ([{"name": "m", "sha256": A}, {"name": "m", "sha256": A}], "operatorModels names 'm' twice"),
    ([{"name": "m", "sha256": A[:63]}], "is not 64 hex digits"),
    ([{"name": "m", "sha256": A + "0"}], "is not 64 hex digits"),
    ([{"name": "m", "sha256": "zz" * 32}], "is not 64 hex digits"),
    ([{"name": "m", "sha256": ""}], "is not 64 hex digits"),
    ([{"name": "m", "sha256": A, "version": "1"}], 'unknown member "version" in an operatorModels entry'),
    ([{"name": "m"}], "has no sha256"),
    ([{"sha256": A}], "has no name"),
    ([{"name": 7, "sha256": A}], "wrong type at operatorModels.0.name"),
    ([{"name": "m", "sha256": None}], "has no sha256"),
    ([{"name": "m", "sha256": ["x"]}], "wrong type at operatorModels.0.sha256"),
    (["m"], "wrong type at operatorModels.0"),
    ({"name": "m", "sha256": A}, "wrong type at operatorModels"),
    ("m", "wrong type at operatorModels"),
    (None, "wrong type at operatorModels"),
])
def test_malformed_operator_models_are_refused(models, why):
    with pytest.raises(AttestationError) as e:
        Policy.load({"operatorModels": models, "snp": {"anyMeasurement": True}})
    assert e.value.code == "malformed_policy"
    assert why in str(e.value)


def test_misspelt_member_is_refused():
    with pytest.raises(AttestationError) as e:
        Policy.load({"operatorModel": [{"name": "m", "sha256": A}], "snp": {"anyMeasurement": True}})
    assert e.value.code == "malformed_policy" and 'unknown member "operatorModel"' in str(e.value)
    with pytest.raises(AttestationError) as e:  # duplicate members are refused before any rule
        Policy.load(b'{"operatorModels": [], "operatorModels": [], "snp": {"anyMeasurement": true}}')
    assert e.value.code == "malformed_policy"


# MARK: the rule, on verified claims

def verified_claims(models=None, bound=True) -> dict:
    """Claims as the verifier makes them for simulated SEV-SNP evidence with a bound claims document."""
    c = {"tee": "sev-snp", "simulated": False, "debug": False, "measurement": "ab" * 48, "reportData": "00" * 64,
         "verifiedAt": "2026-07-01T00:00:00Z", "channelBound": bound,
         "snp": {"reportVersion": 3, "product": "Milan", "signer": "VCEK", "vmpl": 0, "guestSVN": 0, "policy": "0x30000",
                 "reportedTCB": {"bootloader": 3, "tee": 0, "snp": 8, "microcode": 115}, "hostData": "00" * 32,
                 "guestPolicy": {"abiMinor": 0, "abiMajor": 0, "smt": True, "migrateMA": False, "debug": False, "singleSocket": False},
                 "reportIDMA": "ff" * 32, "checkedCRL": False}}
    if bound:
        c.update(claimsIssuedAt="2026-07-01T00:00:00Z", tlsKeyGeneratedInTEE=True,
                 operatorModels=[{"name": n, "version": "1", "sha256": d} for n, d in (models or [])])
    return c


def pinning(*models, **extra) -> Policy:
    return Policy.load({"operatorModels": [{"name": n, "sha256": d} for n, d in models], "snp": {"anyMeasurement": True}, **extra})


def refusal(policy: Policy, claims: dict) -> str:
    with pytest.raises(AttestationError) as e:
        policy.evaluate(claims, 0)
    assert e.value.code == "operator_models_mismatch"
    assert e.value.reason.startswith("rule operatorModels: ")
    return e.value.reason


def test_rule_accepts_exactly_the_pinned_models():
    pinning(("a", A), ("b", B)).evaluate(verified_claims([("b", B), ("a", A)]), 0)  # order does not matter
    pinning(("a", A.upper())).evaluate(verified_claims([("a", A.upper())]), 0)  # nor case
    pinning().evaluate(verified_claims([]), 0)  # a server without operator models, pinned as such
    pinning().evaluate(verified_claims(None), 0)  # a bound claims document without `models`: none
    Policy.load({"snp": {"anyMeasurement": True}}).evaluate(verified_claims([("a", A)]), 0)  # not pinned: not checked


def test_rule_refuses_another_digest_a_missing_and_an_extra_model():
    reason = refusal(pinning(("a", A), ("b", B)), verified_claims([("a", A), ("b", C)]))
    assert f"'b' has SHA-256 {C[:16]}…, the policy pins {B[:16]}…" in reason
    assert "'a'" not in reason
    assert "'b' is missing" in refusal(pinning(("a", A), ("b", B)), verified_claims([("a", A)]))
    assert "'c' is not pinned" in refusal(pinning(("a", A)), verified_claims([("a", A), ("c", C)]))
    assert "'a' is not pinned" in refusal(pinning(), verified_claims([("a", A)]))
    assert "'a' is missing" in refusal(pinning(("a", A)), verified_claims([]))
    # Every difference is listed, pinned names first (sorted), then the unpinned ones.
    reason = refusal(pinning(("b", B), ("a", A)), verified_claims([("a", B), ("z", A), ("c", C)]))
    assert reason.endswith(f"'a' has SHA-256 {B[:16]}…, the policy pins {A[:16]}…; 'b' is missing; 'c' is not pinned; 'z' is not pinned")


def test_rule_refuses_evidence_without_a_bound_claims_document():
    # (the TLS-key-origin rule, which comes first, would refuse it too unless the policy waives it)
    reason = refusal(pinning(allowTLSKeyFromFile=True), verified_claims(bound=False))
    assert "no bound claims document" in reason


# MARK: the claims document and the verifier

def claims_document(**members) -> bytes:
    doc = {"attributes": {"tlsKeyGeneratedInMemory": "true"}, "issuedAt": "2026-06-30T23:59:00Z", "tee": "sev-snp", "version": 1}
    doc.update(members)
    return json.dumps(doc, separators=(",", ":"), sort_keys=True).encode()


def test_claims_document_models_and_receipt_key_are_checked():
    doc = decode_claims_document(claims_document(models=[{"name": "a", "version": "1", "sha256": A}], receiptKey="AAAA"))
    assert doc["models"] == [{"name": "a", "version": "1", "sha256": A}] and doc["receiptKey"] == "AAAA"
    assert "models" not in decode_claims_document(claims_document())
    decode_claims_document(claims_document(models=None, receiptKey=None))
    for bad in ({"models": {"a": A}}, {"models": ["a"]}, {"models": [{"name": "a", "sha256": A}]},
                {"models": [{"name": "a", "version": 1, "sha256": A}]}, {"models": [{"name": None, "version": "1", "sha256": A}]},
                {"receiptKey": 5}, {"receiptKey": ["AAAA"]}):
        with pytest.raises(AttestationError) as e:
            decode_claims_document(claims_document(**bad))
        assert e.value.code == "claims_document_mismatch", bad


def simulated_bundle(doc: bytes):
    """Simulated SEV-SNP evidence bound to a fresh TLS certificate, a nonce and `doc`; and a policy trusting its root."""
    ca = simtee.make_ca("Milan")
    chip = bytes(range(64))
    vcek, key = simtee.make_vcek(ca, simtee.MILAN_SPL, chip)
    tls = simtee.tls_certificate()
    nonce = bytes(range(32))
    report = simtee.make_report(key, chip_id=chip, report_data=simtee.report_data(simtee.spki(tls), nonce, doc), report_id_ma=b"\xff" * 32)
    b64 = lambda x: base64.b64encode(x).decode()  # noqa: E731
    bundle = EvidenceBundle.decode(json.dumps({
        "format": "blindai-evidence/1", "tee": "sev-snp", "report": b64(report),
        "certificates": [b64(simtee.der(c)) for c in (vcek, ca["ask"], ca["ark"])], "claims": b64(doc), "nonce": b64(nonce),
        "tlsCertificate": b64(simtee.der(tls))}).encode())
    root = hashlib.sha256(simtee.spki(ca["ark"])).hexdigest()
    policy = {"allowSimulated": True, "simulatedRootKeys": [root], "snp": {"anyMeasurement": True}}
    return bundle, ChannelBinding(nonce, simtee.spki(tls)), policy


def test_verifier_exposes_the_bound_models_and_receipt_key_only():
    at = blindai._der.parse_iso8601(simtee.AT)
    doc = claims_document(models=[{"name": "a", "version": "2", "sha256": A}], receiptKey="S0VZ")
    bundle, binding, policy = simulated_bundle(doc)
    claims = AttestationVerifier(Policy.load(policy)).verify(bundle, binding, at)
    assert claims["channelBound"] and claims["operatorModels"] == [{"name": "a", "version": "2", "sha256": A}]
    assert claims["receiptKey"] == "S0VZ"
    AttestationVerifier(Policy.load(dict(policy, operatorModels=[{"name": "a", "sha256": A}]))).verify(bundle, binding, at)
    with pytest.raises(AttestationError) as e:
        AttestationVerifier(Policy.load(dict(policy, operatorModels=[{"name": "a", "sha256": B}]))).verify(bundle, binding, at)
    assert e.value.code == "operator_models_mismatch"
    # Without a channel binding the claims document is not tied to the report: it vouches for nothing.
    offline = dict(policy, allowTLSKeyFromFile=True)
    claims = AttestationVerifier(Policy.load(offline)).verify(bundle, None, at)
    assert "operatorModels" not in claims and "receiptKey" not in claims and not claims["channelBound"]
    with pytest.raises(AttestationError) as e:
        AttestationVerifier(Policy.load(dict(offline, operatorModels=[{"name": "a", "sha256": A}]))).verify(bundle, None, at)
    assert e.value.code == "operator_models_mismatch" and "no bound claims document" in e.value.reason
    # A bound claims document without models: the server has none.
    bundle, binding, policy = simulated_bundle(claims_document())
    claims = AttestationVerifier(Policy.load(dict(policy, operatorModels=[]))).verify(bundle, binding, at)
    assert claims["operatorModels"] == [] and "receiptKey" not in claims


# MARK: the inference response

def inference_response(parameters) -> _Response:
    head = {"model_name": "m", "model_version": "1", "outputs": [{"name": "y", "datatype": "FP32", "shape": [1], "data": [1.0]}]}
    if parameters is not None:
        head["parameters"] = parameters
    return _Response(200, {}, json.dumps(head).encode())


def test_response_model_sha256_is_read_from_its_parameters():
    r = _decode_inference(inference_response({"model_sha256": A}))
    assert isinstance(r, PredictResponse) and r.model_sha256 == A and r.parameters == {"model_sha256": A}
    assert _decode_inference(inference_response(None)).model_sha256 is None
    assert _decode_inference(inference_response({})).model_sha256 is None
    with pytest.raises(ProtocolViolation):
        _decode_inference(inference_response({"model_sha256": 5}))


def test_server_error_keeps_the_servers_message():
    text = f"model 'm' (version 2) has SHA-256 {B}, not the required {A}: it was replaced; nothing was run"
    e = ServerError(412, text)
    assert e.status == 412 and e.message == text and f"(HTTP 412): {text}" in str(e)
    r = _Response(412, {}, json.dumps({"error": text}).encode())
    assert r.error_message == text


# MARK: against a live server

def neg_model() -> bytes:
    """y = -x, float32 [N]: the same inputs and outputs as the FP32 identity model, other bytes and other results."""
    g = (onnx_builder.ld(1, onnx_builder.node("Neg", ["x"], ["y"])) + onnx_builder.s(2, "neg")
         + onnx_builder.ld(11, onnx_builder.value_info("x", 1, ["N"])) + onnx_builder.ld(12, onnx_builder.value_info("y", 1, ["N"])))
    return onnx_builder.model(g)


@pytest.fixture(scope="module")
def server(blindai_bin, tmp_path_factory):
    s = Server(blindai_bin, tmp_path_factory.mktemp("server"))
    yield s
    s.stop()


@pytest.fixture(scope="module")
def conn(server):
    c = blindai.connect(server.address, policy=server.policy_path)
    yield c
    c.close()


def test_a_required_digest_refuses_a_replaced_model(conn, tmp_path):
    first, second = tmp_path / "identity.onnx", tmp_path / "neg.onnx"
    first.write_bytes(onnx_builder.identity_model("FP32"))
    second.write_bytes(neg_model())
    x = np.array([1.0, -2.0, 3.5], np.float32)
    up1 = conn.upload_model(first, model_name="mi_swap")
    assert up1.sha256 == hashlib.sha256(first.read_bytes()).hexdigest()
    r = conn.predict("mi_swap", {"x": x}, model_sha256=up1.sha256)
    assert r.model_sha256 == up1.sha256 and r["y"].as_numpy().tolist() == x.tolist()
    assert conn.predict("mi_swap", {"x": x}, model_sha256=up1.sha256.upper()).model_sha256 == up1.sha256
    assert conn.predict("mi_swap", {"x": x}).model_sha256 == up1.sha256
    assert conn.metadata("mi_swap")["parameters"]["model_sha256"] == up1.sha256

    up2 = conn.upload_model(second, model_name="mi_swap")
    assert up2.replaced and up2.sha256 != up1.sha256
    with pytest.raises(ServerError) as e:
        conn.predict("mi_swap", {"x": x}, model_sha256=up1.sha256)
    assert e.value.status == 412
    # The server's own text: which digest the model has and which one was required.
    assert up2.sha256 in e.value.message and up1.sha256 in e.value.message and "nothing was run" in e.value.message
    assert "(HTTP 412)" in str(e.value) and e.value.message in str(e.value)
    r = conn.predict("mi_swap", {"x": x})
    assert r.model_sha256 == up2.sha256 and r["y"].as_numpy().tolist() == (-x).tolist()
    assert conn.predict("mi_swap", [x], model_sha256=up2.sha256).model_sha256 == up2.sha256
    conn.delete_model("mi_swap")


@pytest.mark.parametrize("digest", ["ab" * 31, "ab" * 33, "zz" * 32, " " + "ab" * 32, "ab" * 32 + "\n", "", 1234])
def test_a_malformed_required_digest_is_refused_by_the_client(conn, digest):
    with pytest.raises(InvalidInput):
        conn.predict("never_sent", {"x": np.zeros(1, np.float32)}, model_sha256=digest)


def test_an_answer_from_another_digest_is_a_protocol_violation(conn, tmp_path, monkeypatch):
    path = tmp_path / "identity.onnx"
    path.write_bytes(onnx_builder.identity_model("FP32"))
    up = conn.upload_model(path, model_name="mi_lying")
    import blindai.client as client
    real = client._decode_inference
    sent = []

    def lying(r):
        resp = real(r)
        sent.append(resp.model_sha256)
        resp.model_sha256 = B
        return resp

    monkeypatch.setattr(client, "_decode_inference", lying)
    with pytest.raises(ProtocolViolation) as e:
        conn.predict("mi_lying", {"x": np.ones(2, np.float32)}, model_sha256=up.sha256)
    assert sent == [up.sha256] and B in str(e.value) and up.sha256 in str(e.value)
    conn.predict("mi_lying", {"x": np.ones(2, np.float32)})  # nothing required: nothing checked
    monkeypatch.undo()
    conn.delete_model("mi_lying")


def test_a_server_without_operator_models_matches_an_empty_pin_only(server):
    policy = server.policy
    assert "operatorModels" not in policy
    with blindai.connect(server.address, policy=dict(policy, operatorModels=[])) as c:
        assert c.attestation.operator_models == []
    with pytest.raises(AttestationError) as e:
        blindai.connect(server.address, policy=dict(policy, operatorModels=[{"name": "digits", "sha256": A}]))
    assert e.value.code == "operator_models_mismatch" and "'digits' is missing" in str(e.value)


@pytest.fixture(scope="module")
def operator_server(blindai_bin, tmp_path_factory):
    """A server started with --model-repository: digits.onnx (version 1) and neg/{1,2}/model.onnx (Triton's layout,
    the highest version)."""
    root = tmp_path_factory.mktemp("operator")
    repo = root / "models"
    (repo / "neg" / "1").mkdir(parents=True)
    (repo / "neg" / "2").mkdir(parents=True)
    (repo / "digits.onnx").write_bytes(DIGITS.read_bytes())
    (repo / "neg" / "1" / "model.onnx").write_bytes(onnx_builder.identity_model("FP32"))
    (repo / "neg" / "2" / "model.onnx").write_bytes(neg_model())
    s = Server(blindai_bin, root, extra=["--model-repository", str(repo)])
    s.digests = {"digits": hashlib.sha256(DIGITS.read_bytes()).hexdigest(), "neg": hashlib.sha256(neg_model()).hexdigest()}
    yield s
    s.stop()


def test_operator_models_are_pinned_by_the_written_policy(operator_server, tmp_path):
    s = operator_server
    policy = s.policy
    assert sorted((m["name"], m["sha256"]) for m in policy["operatorModels"]) == sorted(s.digests.items())
    with blindai.connect(s.address, policy=s.policy_path) as c:
        assert {m["name"]: (m["version"], m["sha256"]) for m in c.attestation.operator_models} == {
            "digits": ("1", s.digests["digits"]), "neg": ("2", s.digests["neg"])}
        assert c.attestation.claims_document["models"] == sorted(c.attestation.claims_document["models"], key=lambda m: m["name"])
        x = np.load(SAMPLES / "digit_3_0.npy")
        r = c.predict("digits", x, model_sha256=s.digests["digits"])
        assert r.model_sha256 == s.digests["digits"]
        assert c.predict("neg", {"x": np.array([2.0], np.float32)}, model_sha256=s.digests["neg"])["y"].tolist() == [-2.0]
        assert c.metadata("neg")["parameters"].get("operator_model") is True
        # Nobody may unload or replace the operator's models.
        for attempt in (lambda: c.delete_model("digits"), lambda: c.upload_model(DIGITS, model_name="neg")):
            with pytest.raises(ServerError) as e:
                attempt()
            assert e.value.status == 403 and "operator" in e.value.message
        assert c.predict("neg", {"x": np.array([2.0], np.float32)}).model_sha256 == s.digests["neg"]

    pins = lambda **m: dict(policy, operatorModels=[{"name": n, "sha256": d} for n, d in m.items()])  # noqa: E731
    with blindai.connect(s.address, policy=pins(neg=s.digests["neg"].upper(), digits=s.digests["digits"])):
        pass
    for wrong, why in ((pins(digits=s.digests["digits"], neg=A), "'neg' has SHA-256"),
                       (pins(digits=s.digests["digits"]), "'neg' is not pinned"),
                       (pins(digits=s.digests["digits"], neg=s.digests["neg"], other=A), "'other' is missing"),
                       (pins(), "'digits' is not pinned")):
        with pytest.raises(AttestationError) as e:
            blindai.connect(s.address, policy=wrong)
        assert e.value.code == "operator_models_mismatch" and why in str(e.value)
    f = tmp_path / "wrong.json"
    wrong = copy.deepcopy(policy)
    wrong["operatorModels"][0]["sha256"] = "00" * 32
    f.write_text(json.dumps(wrong))
    with pytest.raises(AttestationError) as e:
        blindai.connect(s.address, policy=str(f))
    assert e.value.code == "operator_models_mismatch"
