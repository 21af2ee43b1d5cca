"""Helpers shared by the scripts that drive a live `blindai serve` on loopback (hostile-models.py, soak.py,
slow-clients.py, server-overhead.py): a release `blindai serve --tee simulated` started on 127.0.0.1 with free
ports, connections to it, and the request and response bodies of the Open Inference Protocol.

Loopback only: every address these helpers connect to is 127.0.0.1.
"""
import functools
import http.client
import json
import os
import socket
import ssl
import subprocess
import sys
import time

import numpy as np

# Open Inference Protocol datatypes of the NumPy element types these scripts send.
OIP_TYPES = {np.dtype(np.float32): "FP32", np.dtype(np.float64): "FP64", np.dtype(np.float16): "FP16",
             np.dtype(np.int64): "INT64", np.dtype(np.int32): "INT32", np.dtype(np.int8): "INT8",
             np.dtype(np.uint8): "UINT8", np.dtype(np.bool_): "BOOL"}
NUMPY_TYPES = {v: k for k, v in OIP_TYPES.items()}


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@functools.lru_cache(maxsize=None)
def tls_context() -> ssl.SSLContext:
    """TLS without certificate checks: these scripts measure and probe the server on loopback; the client
    libraries' attested and pinned path is tested elsewhere. One context per process: making one loads the
    system's CA certificates (about 27 ms here), which a latency measurement must not count."""
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    return ctx


def start(blindai: str, port: int, metrics_port: int) -> subprocess.Popen:
    """`blindai serve --tee simulated` on 127.0.0.1 with the default limits, its output discarded."""
    return subprocess.Popen([blindai, "serve", "--host", "127.0.0.1", "--port", str(port), "--tee", "simulated",
                             "--metrics-port", str(metrics_port)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def wait_ready(server: subprocess.Popen, port: int, ctx: ssl.SSLContext, timeout: float = 60) -> http.client.HTTPSConnection:
    """A connection to the server once GET /v2/health/ready answers 200; exits if it does not within `timeout`."""
    deadline = time.time() + timeout
    while True:
        try:
            c = http.client.HTTPSConnection("127.0.0.1", port, context=ctx, timeout=120)
            c.request("GET", "/v2/health/ready")
            r = c.getresponse()
            r.read()
            if r.status == 200:
                return c
        except OSError:
            pass
        if time.time() > deadline or server.poll() is not None:
            sys.exit("the server did not start")
        time.sleep(0.2)


def request(port, method, path, body=None, headers=None, timeout=60):
    """One request on a new TLS connection to the server on `port`: (status, body)."""
    c = http.client.HTTPSConnection("127.0.0.1", port, timeout=timeout, context=tls_context())
    try:
        c.request(method, path, body=body, headers=headers or {})
        r = c.getresponse()
        return r.status, r.read()
    finally:
        c.close()


def is_ready(port, timeout=5):
    """Whether GET /v2/health/ready on a new TLS connection answers 200."""
    try:
        return request(port, "GET", "/v2/health/ready", timeout=timeout)[0] == 200
    except (OSError, http.client.HTTPException):
        return False


def rss_kib(pid):
    """VmRSS of a process in KiB, or None."""
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
    except OSError:
        return None
    return None


class Server:
    """A release `blindai serve --tee simulated` on a free loopback port, with its log in `workdir`."""

    def __init__(self, binary, workdir, extra_args=()):
        self.port = free_port()
        self.log = open(os.path.join(workdir, "server.log"), "wb")
        self.proc = subprocess.Popen([binary, "serve", "--tee", "simulated", "--host", "127.0.0.1", "--port", str(self.port),
                                      "--metrics-port", "0", *extra_args], stdout=self.log, stderr=subprocess.STDOUT)
        deadline = time.time() + 60
        while time.time() < deadline:
            if self.ready():
                return
            if self.proc.poll() is not None:
                break
            time.sleep(0.2)
        raise SystemExit(f"the server did not start (see {workdir}/server.log)")

    def connect(self, timeout=60):
        return http.client.HTTPSConnection("127.0.0.1", self.port, timeout=timeout, context=tls_context())

    def request(self, method, path, body=None, headers=None, timeout=60):
        return request(self.port, method, path, body, headers, timeout)

    def ready(self, timeout=5):
        return is_ready(self.port, timeout)

    def alive(self):
        return self.proc.poll() is None and self.ready()

    def upload(self, name, data, shared=True):
        return self.request("PUT", f"/v2/repository/models/{name}?shared={'true' if shared else 'false'}", body=data)

    def unload(self, name):
        return self.request("POST", f"/v2/repository/models/{name}/unload")

    def infer(self, name, inputs, timeout=60):
        body, headers = infer_body(inputs)
        status, raw = self.request("POST", f"/v2/models/{name}/infer", body=body, headers=headers, timeout=timeout)
        return status, raw

    def stop(self):
        self.proc.terminate()
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
        self.log.close()


class EmptyTensor:
    """An empty tensor whose other dimensions NumPy cannot represent (their product overflows its size checks)."""

    def __init__(self, shape, dtype=np.float32):
        self.shape = tuple(shape)
        self.dtype = np.dtype(dtype)

    def tobytes(self):
        return b""

    def save_npy(self, path):
        header = "{'descr': '%s', 'fortran_order': False, 'shape': (%s), }" % (
            self.dtype.str, "".join(f"{d}, " for d in self.shape))
        header += " " * ((64 - (10 + len(header) + 1) % 64) % 64) + "\n"
        with open(path, "wb") as f:
            f.write(b"\x93NUMPY\x01\x00" + len(header).to_bytes(2, "little") + header.encode("latin1"))


def infer_body(inputs, parameters=None):
    """An OIP request whose tensors travel in the binary tensor extension; outputs asked for in binary too.
    `parameters` are added to the request's parameters (e.g. {"receipt": True})."""
    specs, blobs = [], []
    for name, a in inputs.items():
        raw = a.tobytes() if isinstance(a, EmptyTensor) else np.ascontiguousarray(a).tobytes()
        specs.append({"name": name, "shape": list(a.shape), "datatype": OIP_TYPES[a.dtype],
                      "parameters": {"binary_data_size": len(raw)}})
        blobs.append(raw)
    header = json.dumps({"inputs": specs, "parameters": {"binary_data_output": True, **(parameters or {})}}).encode()
    return header + b"".join(blobs), {"Inference-Header-Content-Length": str(len(header)),
                                      "Content-Type": "application/octet-stream"}


def decode_response(raw, header_length=None):
    """The outputs of an OIP response (JSON or binary extension) as {name: ndarray}."""
    if header_length is None:
        # Without the header, find the JSON's end: the binary part starts right after the closing brace.
        depth, end, in_str, esc = 0, None, False, False
        for i, ch in enumerate(raw):
            c = chr(ch)
            if in_str:
                esc = (c == "\\") and not esc
                if c == '"' and not esc:
                    in_str = False
                continue
            if c == '"':
                in_str = True
            elif c == "{":
                depth += 1
            elif c == "}":
                depth -= 1
                if depth == 0:
                    end = i + 1
                    break
        header_length = end
    doc = json.loads(raw[:header_length])
    out, offset = {}, header_length
    for o in doc["outputs"]:
        dtype = NUMPY_TYPES[o["datatype"]]
        size = (o.get("parameters") or {}).get("binary_data_size")
        if size is not None:
            a = np.frombuffer(raw[offset:offset + size], dtype=dtype).reshape(o["shape"])
            offset += size
        else:
            a = np.array(o["data"], dtype=dtype).reshape(o["shape"])
        out[o["name"]] = a
    return out
