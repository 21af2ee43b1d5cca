"""End to end against a live `blindai serve --tee simulated` on loopback: attestation and policies, every datatype,
uploads (streaming, large models, client memory), agreement with the Swift client's outputs, a relay, a restart."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
import textwrap
import time

import numpy as np
import pytest

import blindai
from blindai.errors import AttestationError, ServerError, ServerKeyChanged

import onnx_builder
from conftest import REPO
from relay import Relay
from server import Server

if os.environ.get("BLINDAI_TORCH_OPTIONAL"):  # set by scripts/test.sh only when no CPU torch wheel exists
    torch = pytest.importorskip("torch")
else:
    import torch  # noqa: E402  (a missing torch is a failure, not a skip)

DIGITS = REPO / "demo" / "digits.onnx"
SAMPLES = REPO / "demo" / "samples"


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


def test_connect_attests_and_exposes_claims(server):
    with blindai.connect(server.address, policy=server.policy_path) as c:
        a = c.attestation
        assert a.tee == "sev-snp" and a.simulated
        assert a.claims["channelBound"] is True
        assert len(a.measurement) == 96
        assert set(a.tcb) >= {"bootloader", "tee", "snp", "microcode"}
        assert a.claims_document["tee"] == "sev-snp"
        assert len(a.tls_key_sha256) == 64


def test_policy_as_dict_and_wrong_policies_refused_with_their_codes(server):
    policy = server.policy
    with blindai.connect(server.address, policy=policy) as c:
        assert c.attestation.claims["channelBound"]
    wrong_measurement = json.loads(json.dumps(policy))
    wrong_measurement.setdefault("snp", {})["measurements"] = ["00" * 48]
    with pytest.raises(AttestationError) as e:
        blindai.connect(server.address, policy=wrong_measurement)
    assert e.value.code == "measurement_not_allowed"
    no_sim = {k: v for k, v in policy.items() if k not in ("allowSimulated", "simulatedRootKeys")}
    with pytest.raises(AttestationError) as e:
        blindai.connect(server.address, policy=no_sim)
    assert e.value.code == "simulated_root_not_allowed"
    tdx_only = {k: v for k, v in policy.items() if k != "snp"}
    tdx_only["tdx"] = {"anyMeasurement": True}
    with pytest.raises(AttestationError) as e:
        blindai.connect(server.address, policy=tdx_only)
    assert e.value.code == "tee_not_allowed"
    other_chip = json.loads(json.dumps(policy))
    other_chip["snp"]["chipIDs"] = ["ab" * 64]
    with pytest.raises(AttestationError) as e:
        blindai.connect(server.address, policy=other_chip)
    assert e.value.code == "chip_id_not_allowed"
    if "simulatedRootKeys" in policy:  # servers with the pinned simulated root (attestation hardening)
        other_root = dict(policy, simulatedRootKeys=["00" * 32])
        with pytest.raises(AttestationError) as e:
            blindai.connect(server.address, policy=other_root)
        assert e.value.code == "simulated_root_not_pinned"
    with pytest.raises(AttestationError) as e:
        blindai.connect(server.address, policy={"snp": {"measurement": []}})
    assert e.value.code == "malformed_policy"


DTYPES = ["FP16", "BF16", "FP32", "FP64", "INT8", "INT16", "INT32", "INT64", "UINT8", "UINT16", "UINT32", "UINT64", "BOOL", "BYTES"]


def sample(datatype: str, rng) -> np.ndarray:
    n = 37
    if datatype == "BOOL":
        return rng.random(n) < 0.5
    if datatype == "BYTES":
        # The engine takes BYTES elements that are UTF-8 text (others are refused with 400, tested below).
        return np.array([b"", b"a", "h\u00e9llo \u4e16\u754c \U0001f600".encode(), bytes(range(1, 128)), b"x" * 5000] * 3, dtype=object)
    if datatype in ("FP16", "FP32", "FP64"):
        dt = {"FP16": np.float16, "FP32": np.float32, "FP64": np.float64}[datatype]
        a = (rng.standard_normal(n) * 1000).astype(dt)
        a[:4] = [np.inf, -np.inf, -0.0, np.finfo(dt).tiny]
        return a
    if datatype == "BF16":
        return rng.standard_normal(n).astype(np.float32)
    info = np.iinfo(blindai.tensor.NUMPY_OF[datatype])
    a = rng.integers(info.min, info.max, size=n, endpoint=True, dtype=blindai.tensor.NUMPY_OF[datatype])
    a[:2] = [info.min, info.max]
    return a


@pytest.mark.parametrize("datatype", DTYPES)
def test_every_datatype_round_trips(conn, tmp_path, datatype):
    path = tmp_path / f"id_{datatype.lower()}.onnx"
    path.write_bytes(onnx_builder.identity_model(datatype))
    up = conn.upload_model(path, model_name=f"id_{datatype.lower()}")
    assert up.sha256 == hashlib.sha256(path.read_bytes()).hexdigest()
    rng = np.random.default_rng(1)
    a = sample(datatype, rng)
    if datatype == "BF16":
        x = torch.from_numpy(a).to(torch.bfloat16)
        out = conn.predict(up.name, x).output[0]
        assert out.datatype == "BF16" and out.shape == (len(a),)
        assert torch.equal(out.as_torch().view(torch.int16), x.view(torch.int16))
        bits = blindai.BF16(a)
        out2 = conn.predict(up.name, bits).output[0]
        assert np.array_equal(out2.as_numpy(), x.float().numpy())
    else:
        out = conn.predict(up.name, {"x": a}).output[0]
        assert out.name == "y" and out.shape == a.shape and out.datatype == datatype
        got = out.as_numpy()
        if datatype == "BYTES":
            assert list(got) == list(a)
        else:
            assert got.dtype == a.dtype.newbyteorder("<") or got.dtype == a.dtype
            assert got.tobytes() == a.tobytes()
            t = conn.predict(up.name, torch.from_numpy(a.copy())).output[0].as_torch()
            assert t.numpy().tobytes() == a.tobytes()
    conn.delete_model(up.name)


def test_bytes_that_are_not_utf8_are_refused_by_the_server(conn, tmp_path):
    path = tmp_path / "id_bytes.onnx"
    path.write_bytes(onnx_builder.identity_model("BYTES"))
    conn.upload_model(path, model_name="id_bytes_raw")
    with pytest.raises(ServerError) as e:
        conn.predict("id_bytes_raw", np.array([b"\xff\xfe"], dtype=object))
    assert e.value.status == 400
    assert conn.predict("id_bytes_raw", np.array(["ok"])).output[0].tolist() == [b"ok"]
    conn.delete_model("id_bytes_raw")


def test_upload_progress_models_list_and_delete(conn, tmp_path):
    seen = []
    up = conn.upload_model(DIGITS, model_name="digits_list", progress=seen.append)
    assert up.name == "digits_list" and up.version and up.sha256 == hashlib.sha256(DIGITS.read_bytes()).hexdigest()
    assert seen and seen[-1].sent == seen[-1].total == DIGITS.stat().st_size
    assert [p.sent for p in seen] == sorted(p.sent for p in seen)
    assert "digits_list" in [m["name"] for m in conn.models()]
    conn.delete_model("digits_list")
    assert "digits_list" not in [m["name"] for m in conn.models()]
    with pytest.raises(ServerError) as e:
        conn.predict("digits_list", np.zeros((1, 1, 8, 8), np.float32))
    assert e.value.status == 404


def test_list_inputs_follow_the_model_order(conn, tmp_path):
    p = tmp_path / "add.onnx"
    p.write_bytes(onnx_builder.add_model())
    conn.upload_model(p, model_name="add2")
    a = np.arange(5, dtype=np.float32)
    b = np.full(5, 10, dtype=np.float32)
    assert conn.run_model("add2", [a, b]).output[0].tolist() == (a + b).tolist()
    assert conn.predict("add2", {"b": b, "a": a})["y"].tolist() == (a + b).tolist()
    conn.delete_model("add2")


def swift_predict(blindai_bin, server, model, npy, outdir) -> np.ndarray:
    p = subprocess.run([blindai_bin, "predict", model, "--input", f"image={npy}", "--output-dir", str(outdir), "--policy",
                        server.policy_path, "--server", server.address], capture_output=True, text=True, timeout=120)
    assert p.returncode == 0, p.stderr
    return np.load(outdir / "logits.npy")


def test_numpy_and_torch_inputs_give_the_swift_clients_outputs(conn, server, blindai_bin, tmp_path):
    conn.upload_model(DIGITS, model_name="digits")
    for i, npy in enumerate(sorted(SAMPLES.glob("digit_*.npy"))[:6]):
        x = np.load(npy)
        swift = swift_predict(blindai_bin, server, "digits", npy, tmp_path / f"out{i}")
        from_numpy = conn.predict("digits", x).output[0]
        from_torch = conn.predict("digits", torch.from_numpy(x)).output[0]
        assert from_numpy.name == "logits" and from_numpy.shape == swift.shape
        assert from_numpy.as_numpy().tobytes() == swift.tobytes()
        assert from_torch.as_torch().numpy().tobytes() == swift.tobytes()
        assert int(np.argmax(swift)) == int(npy.stem.split("_")[1]) or npy.stem == "digit_5_1"
    conn.delete_model("digits")


def test_model_over_100_mb_uploads(conn, tmp_path):
    path = tmp_path / "large.onnx"
    onnx_builder.write_large_model(str(path), 110 << 20)
    assert path.stat().st_size > 100 << 20
    up = conn.upload_model(path, model_name="large110")
    assert up.size == path.stat().st_size
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    assert up.sha256 == h.hexdigest()
    out = conn.predict("large110", np.array([1.0], np.float32)).output[0].as_numpy()
    assert out.tolist() == [1.5]
    conn.delete_model("large110")
    os.unlink(path)


RSS_SCRIPT = textwrap.dedent("""
    import json, sys, blindai
    def status(field):
        for line in open("/proc/self/status"):
            if line.startswith(field + ":"):
                return int(line.split()[1]) * 1024
    addr, policy, path = sys.argv[1:4]
    with blindai.connect(addr, policy=policy) as c:
        before = status("VmRSS")
        try:
            with open("/proc/self/clear_refs", "w") as f:
                f.write("5")  # reset VmHWM to the current RSS
            reset = True
        except OSError:
            reset = False
        up = c.upload_model(path, model_name="large300")
        peak = status("VmHWM")
        c.delete_model("large300")
    print(json.dumps({"before": before, "peak": peak, "reset": reset, "size": up.size}))
""")


def test_300_mb_upload_grows_client_rss_by_less_than_64_mb(server, tmp_path):
    path = tmp_path / "large300.onnx"
    onnx_builder.write_large_model(str(path), 300 << 20)
    p = subprocess.run([sys.executable, "-c", RSS_SCRIPT, server.address, server.policy_path, str(path)],
                       capture_output=True, text=True, timeout=600)
    os.unlink(path)
    assert p.returncode == 0, p.stderr
    r = json.loads(p.stdout)
    assert r["reset"], "cannot reset VmHWM (/proc/self/clear_refs): the peak would include earlier allocations"
    assert r["size"] > 300 << 20
    growth = r["peak"] - r["before"]
    print(f"client RSS before {r['before'] >> 20} MiB, peak during a {r['size'] >> 20} MiB upload {r['peak'] >> 20} MiB (+{growth >> 20} MiB)")
    assert growth < 64 << 20


def test_relay_with_its_own_certificate_is_refused_before_anything_is_sent(server, tmp_path):
    relay = Relay(("127.0.0.1", server.port))
    try:
        with pytest.raises(AttestationError) as e:
            blindai.connect(relay.address, policy=server.policy_path, api_key="secret-key-1234")
        assert e.value.code == "tls_key_mismatch"
        received = b"".join(relay.received.values())
        assert received.startswith(b"POST /v2/attestation ")
        assert b"secret-key-1234" not in received and b"Authorization" not in received
        assert received.count(b"POST ") == 1 and b"PUT " not in received and b"/infer" not in received
    finally:
        relay.close()


def test_interception_after_attestation_is_refused_before_any_request_byte(server, tmp_path):
    """The first connection passes through untouched (attestation succeeds); later connections are terminated by
    the relay with its own certificate: the client must close them after the handshake without writing anything."""
    relay = Relay(("127.0.0.1", server.port), mode_for=lambda n: "passthrough" if n == 0 else "terminate")
    try:
        c = blindai.connect(relay.address, policy=server.policy_path)
        c._conn.close()  # force a new connection for the next request
        x = np.load(SAMPLES / "digit_3_0.npy")
        with pytest.raises(ServerKeyChanged):
            c.upload_model(DIGITS, model_name="intercepted")
        with pytest.raises(ServerKeyChanged):
            c.predict("intercepted", x)
        time.sleep(0.2)
        assert relay.modes[1] == "terminate" and relay.modes[2] == "terminate"
        assert relay.received[1] == b"" and relay.received[2] == b"", "request bytes reached the intercepting relay"
        c.close()
    finally:
        relay.close()


def test_restarted_server_is_refused_until_reconnect(blindai_bin, tmp_path):
    s1 = Server(blindai_bin, tmp_path)
    port = s1.port
    c = blindai.connect(s1.address, policy=s1.policy_path)
    c.upload_model(DIGITS, model_name="digits")
    x = np.load(SAMPLES / "digit_0_0.npy")
    before = c.predict("digits", x).output[0].as_numpy().copy()
    old_key = c.attestation.tls_key_sha256
    s1.stop()
    s2 = Server(blindai_bin, tmp_path, port=port)
    try:
        with pytest.raises(ServerKeyChanged) as e:
            c.predict("digits", x)
        assert e.value.pinned_spki_sha256 == old_key
        with pytest.raises(ServerKeyChanged):
            c.models()
        c.reconnect(policy=s2.policy_path)
        assert c.attestation.tls_key_sha256 != old_key
        c.upload_model(DIGITS, model_name="digits")
        assert c.predict("digits", x).output[0].as_numpy().tobytes() == before.tobytes()
        c.close()
    finally:
        s2.stop()
