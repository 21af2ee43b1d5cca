"""The client: `connect()` attests the server before returning, then models and inference over connections that
must all present the attested TLS key (checked after each TLS handshake, before any request byte is written).
Mirrors Sources/BlindAIClient (BlindAIClient.swift, TLSPinning.swift)."""

from __future__ import annotations

import base64
import hashlib
import http.client
import ipaddress
import json
import os
import re
import select
import socket
import ssl
import threading
import time
from dataclasses import dataclass, field
from typing import Any, Callable

from . import _der
from .attestation.policy import Policy
from .attestation.verifier import AttestationVerifier, ChannelBinding, EvidenceBundle, decode_claims_document
from .errors import (AttestationError, AttestationUnavailable, ConnectionFailed, InvalidInput, NotConnected,
                     ProtocolViolation, ServerError, ServerKeyChanged)
from .tensor import Tensor, to_wire

HEADER_CONTENT_LENGTH = "Inference-Header-Content-Length"
DEFAULT_PORT = 8000
_NAME_RE = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9._-]{0,127}$")
_SHA256_RE = re.compile(r"[0-9a-fA-F]{64}")
#: Inference request parameter: the SHA-256 the model must have (the server answers 412 `model_digest_mismatch` and
#: runs nothing otherwise). Inference response parameter: the SHA-256 of the model that answered.
REQUIRE_MODEL_SHA256 = "require_model_sha256"
MODEL_SHA256 = "model_sha256"


def parse_address(text: str) -> tuple[str, int]:
    t = text.strip()
    if t.startswith("https://"):
        t = t[8:]
    if t.startswith("http://"):
        raise InvalidInput(f"'{text}': BlindAI clients only speak TLS; use host:port")
    t = t.rstrip("/")
    port = None
    if t.startswith("["):
        close = t.find("]")
        if close < 0:
            raise InvalidInput(f"'{text}' is not host:port")
        host, rest = t[1:close], t[close + 1:]
        if rest.startswith(":"):
            port = rest[1:]
        elif rest:
            raise InvalidInput(f"'{text}' is not host:port")
    elif t.count(":") == 1:
        host, port = t.split(":")
    else:
        host = t
    if not host or "/" in host:
        raise InvalidInput(f"'{text}' is not host:port")
    if port is None:
        return host, DEFAULT_PORT
    if not port.isdigit() or not 1 <= int(port) <= 65535:
        raise InvalidInput(f"'{text}': the port must be a number from 1 to 65535")
    return host, int(port)


def validate_model_name(name: str) -> None:
    if not isinstance(name, str) or not _NAME_RE.fullmatch(name) or name.startswith("-"):
        raise InvalidInput(f"model name '{name}' is invalid: use 1 to 128 of A-Z a-z 0-9 . _ - (not starting with . or -)")


def model_name_for_file(path: str) -> str:
    stem = os.path.splitext(os.path.basename(path))[0]
    name = "".join(c if (c.isascii() and (c.isalnum() or c in "._-")) else "_" for c in stem)[:128]
    name = name.lstrip(".-")
    return name or "model"


class _KeyPin:
    """The TLS key of one attested session (Swift's `TLSKeyPin`): before attestation the first connection's
    SubjectPublicKeyInfo is the candidate and any other key is refused; after `pin()` only that key is admitted."""

    def __init__(self):
        self.candidate: bytes | None = None
        self.pinned = False
        self.connections = 0
        self._lock = threading.Lock()

    def admit(self, certificate_der: bytes | None) -> None:
        if not certificate_der:
            raise ConnectionFailed("the server presented no TLS certificate")
        try:
            spki = _der.subject_public_key_info(certificate_der)
        except AttestationError as e:
            raise ConnectionFailed(f"the server's TLS certificate cannot be read: {e}") from None
        with self._lock:
            if self.candidate is None:
                self.candidate = spki
            elif spki != self.candidate:
                pinned, presented = fingerprint(self.candidate), fingerprint(spki)
                if self.pinned:
                    raise ServerKeyChanged(pinned, presented)
                raise ConnectionFailed(f"the server presented two different TLS keys ({pinned}, {presented}) while being attested")
            self.connections += 1


def fingerprint(spki: bytes) -> str:
    return hashlib.sha256(spki).hexdigest()


class _PinnedConnection(http.client.HTTPSConnection):
    """An HTTPS connection that checks the peer's key against the session pin right after the TLS handshake,
    before `http.client` writes any byte of a request on it."""

    def __init__(self, host: str, port: int, pin: _KeyPin, timeout: float, connect_timeout: float):
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        # Trust comes from attestation and the key pin (checked on every connection), not from a CA.
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
        ctx.minimum_version = ssl.TLSVersion.TLSv1_2
        super().__init__(host, port, timeout=timeout, context=ctx)
        self._pin = pin
        self._ctx = ctx
        self._connect_timeout = connect_timeout

    def connect(self):
        sock = socket.create_connection((self.host, self.port), self._connect_timeout)
        try:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            try:
                ipaddress.ip_address(self.host)
                sni = None
            except ValueError:
                sni = self.host
            tls = self._ctx.wrap_socket(sock, server_hostname=sni)
        except BaseException:
            sock.close()
            raise
        try:
            self._pin.admit(tls.getpeercert(binary_form=True))
        except BaseException:
            tls.close()
            raise
        tls.settimeout(self.timeout)
        self.sock = tls


@dataclass
class Attestation:
    """What attestation established: the verified claims (`tee`, `measurement`, `snp`/`tdx` details incl. TCB,
    `simulated`, `channelBound`), the server's claims document, and the attested TLS key."""

    claims: dict
    claims_document: dict | None
    tls_key_sha256: str
    evidence: EvidenceBundle

    @property
    def tee(self) -> str:
        return self.claims["tee"]

    @property
    def measurement(self) -> str:
        return self.claims["measurement"]

    @property
    def simulated(self) -> bool:
        return bool(self.claims["simulated"])

    @property
    def tcb(self):
        if "snp" in self.claims:
            return self.claims["snp"]["reportedTCB"]
        return self.claims.get("tdx", {}).get("tcb")

    @property
    def operator_models(self) -> list[dict] | None:
        """The operator's pre-loaded models (`[{"name", "version", "sha256"}]`) the bound claims document lists
        (empty when the server has none; None without a bound claims document)."""
        return self.claims.get("operatorModels")

    @property
    def receipt_key(self) -> str | None:
        """Base64 of the server's receipt-signing key (SubjectPublicKeyInfo, DER), when it signs receipts."""
        return self.claims.get("receiptKey")


@dataclass
class UploadedModel:
    name: str
    version: str
    sha256: str
    size: int
    shared: bool | None = None
    replaced: bool | None = None
    inputs: list = field(default_factory=list)
    outputs: list = field(default_factory=list)


@dataclass
class UploadProgress:
    sent: int
    total: int

    @property
    def fraction(self) -> float:
        return self.sent / self.total if self.total else 1.0


@dataclass
class PredictResponse:
    """`output` is the list of output tensors in the server's order; `outputs` maps names to them. `model_sha256` is
    the SHA-256 of the model that answered (the response parameter `model_sha256`; None when the server gives none)."""

    model_name: str
    model_version: str | None
    output: list
    parameters: dict | None = None
    model_sha256: str | None = None

    @property
    def outputs(self) -> dict:
        return {t.name: t for t in self.output}

    def __getitem__(self, key):
        return self.outputs[key] if isinstance(key, str) else self.output[key]


class _Response:
    __slots__ = ("status", "headers", "body")

    def __init__(self, status, headers, body):
        self.status = status
        self.headers = headers
        self.body = body

    @property
    def error_message(self) -> str:
        try:
            e = json.loads(self.body)
            if isinstance(e, dict) and isinstance(e.get("error"), str):
                return e["error"]
        except ValueError:
            pass
        text = bytes(self.body[:200]).decode("utf-8", "replace")
        return text or "no details"


class Connection:
    """An attested session with a BlindAI server. Use `blindai.connect(...)` to make one."""

    def __init__(self, addr: str, *, policy, api_key: str | None = None, allow_simulated: bool = False,
                 timeout: float = 300.0, connect_timeout: float = 10.0, upload_timeout: float = 3600.0,
                 chunk_size: int = 1 << 20, max_response_bytes: int = 1 << 30):
        self.host, self.port = parse_address(addr)
        self.policy = Policy.load(policy)
        if allow_simulated:
            self.policy.allow_simulated = True
        if api_key is not None and (not api_key or any(c.isspace() for c in api_key)):
            raise InvalidInput("the API key must be non-empty without spaces")
        self._api_key = api_key
        self.timeout = timeout
        self.connect_timeout = connect_timeout
        self.upload_timeout = upload_timeout
        self.chunk_size = chunk_size
        self.max_response_bytes = max_response_bytes
        self._lock = threading.RLock()
        self._conn: _PinnedConnection | None = None
        self._pin: _KeyPin | None = None
        self._inputs_cache: dict[str, list[str]] = {}
        self.attestation: Attestation | None = None
        self._attest_new_session()

    # MARK: session

    @property
    def address(self) -> str:
        return f"[{self.host}]:{self.port}" if ":" in self.host else f"{self.host}:{self.port}"

    def _attest_new_session(self) -> None:
        pin = _KeyPin()
        conn = _PinnedConnection(self.host, self.port, pin, self.timeout, self.connect_timeout)
        try:
            nonce = ChannelBinding.fresh_nonce()
            body = json.dumps({"nonce": base64.b64encode(nonce).decode()}).encode()
            # No Authorization header: nothing secret leaves before the server is attested.
            r = self._exchange(conn, "POST", "/v2/attestation", body, {"Content-Type": "application/json"}, 16 << 20)
            if r.status == 501:
                raise AttestationUnavailable(f"the server offers no attestation: {r.error_message}. Nothing was sent.")
            if not 200 <= r.status < 300:
                raise ServerError(r.status, r.error_message)
            if pin.candidate is None:
                raise ProtocolViolation("no TLS connection was recorded for the attestation request")
            bundle = EvidenceBundle.decode(r.body)
            binding = ChannelBinding(nonce, pin.candidate)
            claims = AttestationVerifier(self.policy).verify(bundle, binding, time.time())
            if not claims.get("channelBound"):
                raise AttestationError("report_data_mismatch", "the evidence was not bound to this connection")
            pin.pinned = True
            doc = decode_claims_document(bundle.claims) if bundle.claims is not None else None
            self.attestation = Attestation(claims, doc, fingerprint(pin.candidate), bundle)
        except BaseException:
            conn.close()
            raise
        self._conn, self._pin = conn, pin
        self._inputs_cache.clear()

    def reconnect(self, *, policy=None) -> None:
        """Drops the session's connection and pinned key, connects again and attests again (for example after the
        server restarted with a new key), optionally with a new policy. On failure the client stays disconnected."""
        with self._lock:
            self.close()
            if policy is not None:
                p = Policy.load(policy)
                p.allow_simulated = p.allow_simulated or self.policy.allow_simulated
                self.policy = p
            self._attest_new_session()

    def close(self) -> None:
        with self._lock:
            if self._conn is not None:
                self._conn.close()
            self._conn = None

    def __enter__(self) -> "Connection":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    # MARK: HTTP

    def _exchange(self, conn: _PinnedConnection, method: str, path: str, body, headers: dict, limit: int,
                  timeout: float | None = None) -> _Response:
        if conn.sock is not None and _peer_closed(conn.sock):
            conn.close()  # the server closed the idle keep-alive connection: connect again (and check the pin again)
        try:
            if timeout is not None:
                conn.timeout = timeout
                if conn.sock is not None:
                    conn.sock.settimeout(timeout)
            try:
                conn.request(method, path, body=body, headers=headers)
            except (BrokenPipeError, ConnectionResetError) as send_error:
                # The server may have answered (e.g. 413) and closed before taking the whole body.
                try:
                    resp = conn.getresponse()
                except Exception:
                    raise send_error from None
                data = resp.read(limit + 1)
                conn.close()
                return _Response(resp.status, resp.headers, data)
            resp = conn.getresponse()
            data = resp.read(limit + 1) if resp.length is None else resp.read()
            if len(data) > limit:
                conn.close()
                raise ProtocolViolation("the answer is larger than the client's limit")
            if resp.will_close:
                conn.close()
            return _Response(resp.status, resp.headers, data)
        except (ServerKeyChanged, ConnectionFailed, ProtocolViolation, InvalidInput):
            conn.close()
            raise
        except (OSError, http.client.HTTPException) as e:
            conn.close()
            if isinstance(e, (socket.timeout, TimeoutError)):
                raise ConnectionFailed(f"{self.address}: the request timed out") from None
            raise ConnectionFailed(f"{self.address}: {e}. Check the server address and that the server is running.") from None
        finally:
            if timeout is not None:
                conn.timeout = self.timeout

    def _request(self, method: str, path: str, body=None, headers: dict | None = None, timeout: float | None = None) -> _Response:
        with self._lock:
            if self._conn is None:
                raise NotConnected()
            h = dict(headers or {})
            if self._api_key is not None:
                h["Authorization"] = f"Bearer {self._api_key}"
            r = self._exchange(self._conn, method, path, body, h, self.max_response_bytes, timeout)
        if not 200 <= r.status < 300:
            raise ServerError(r.status, r.error_message)
        return r

    def _json(self, r: _Response, what: str):
        try:
            return json.loads(r.body)
        except ValueError as e:
            raise ProtocolViolation(f"{what}: {e}") from None

    # MARK: models

    def upload_model(self, model: str | os.PathLike = None, model_name: str | None = None, *, shared: bool | None = None,
                     progress: Callable[[UploadProgress], None] | None = None) -> UploadedModel:
        """Streams an ONNX file to the server (`PUT /v2/repository/models/{name}`) in `chunk_size` pieces, calling
        `progress(UploadProgress)` after each. Returns name, version and SHA-256 (the server's, checked against the
        client's own; the client's when the server gives none)."""
        if model is None:
            raise InvalidInput("give the model file: upload_model(model='model.onnx')")
        path = os.fspath(model)
        name = model_name or model_name_for_file(path)
        validate_model_name(name)
        try:
            size = os.stat(path).st_size
        except OSError as e:
            raise InvalidInput(f"cannot read {path}: {e.strerror}") from None
        if size <= 0 or not os.path.isfile(path):
            raise InvalidInput(f"{path} is empty or not a regular file")
        hasher = hashlib.sha256()
        state = {"sent": 0, "done": False}
        chunk_size = self.chunk_size

        def chunks():
            with open(path, "rb") as f:
                while True:
                    chunk = f.read(chunk_size)
                    if not chunk:
                        break
                    if state["sent"] + len(chunk) > size:
                        raise InvalidInput("the model file changed size while it was being uploaded")
                    hasher.update(chunk)
                    state["sent"] += len(chunk)
                    yield chunk
                    if progress is not None:
                        progress(UploadProgress(state["sent"], size))
            if state["sent"] != size:
                raise InvalidInput("the model file changed size while it was being uploaded")
            state["done"] = True

        q = f"/v2/repository/models/{name}" + (f"?shared={'true' if shared else 'false'}" if shared is not None else "")
        r = self._request("PUT", q, chunks(), {"Content-Type": "application/octet-stream", "Content-Length": str(size)},
                          timeout=self.upload_timeout)
        o = self._json(r, "upload response")
        if not state["done"]:
            raise ProtocolViolation("the server answered before receiving the whole model")
        sent = hasher.hexdigest()
        server_sha = o.get("sha256")
        if server_sha is not None and server_sha.lower() != sent:
            raise ProtocolViolation(f"the server's SHA-256 of the model ({server_sha}) is not the file's ({sent})")
        self._inputs_cache.pop(o.get("name", name), None)
        return UploadedModel(name=o.get("name", name), version=str(o.get("version", "")), sha256=sent,
                             size=int(o.get("size", size)), shared=o.get("shared"), replaced=o.get("replaced"),
                             inputs=o.get("inputs", []), outputs=o.get("outputs", []))

    def models(self) -> list[dict]:
        """The models this client may see: `[{"name", "version", "state", "reason"}]`."""
        r = self._request("POST", "/v2/repository/index", b"{}", {"Content-Type": "application/json"})
        return self._json(r, "model index")

    def metadata(self, model_name: str) -> dict:
        validate_model_name(model_name)
        return self._json(self._request("GET", f"/v2/models/{model_name}"), "model metadata")

    def delete_model(self, model_name: str) -> None:
        """Unloads a model (only its owner or an admin key may)."""
        validate_model_name(model_name)
        self._request("POST", f"/v2/repository/models/{model_name}/unload", b"{}", {"Content-Type": "application/json"})
        self._inputs_cache.pop(model_name, None)

    unload_model = delete_model

    def server_metadata(self) -> dict:
        return self._json(self._request("GET", "/v2"), "server metadata")

    # MARK: inference

    def predict(self, model_name: str, inputs, *, outputs: list[str] | None = None, parameters: dict | None = None,
                model_sha256: str | None = None) -> PredictResponse:
        """Runs a model. `inputs` is one array/tensor, a list (in the model's input order) or a dict name -> array
        (numpy, torch, `blindai.BF16`, or anything numpy.asarray takes). Tensors travel in the binary tensor
        extension both ways. `model_sha256` (64 hex digits) requires the model of that name to have exactly that
        SHA-256: the server runs nothing and refuses (`ServerError` with status 412, `model_digest_mismatch`) when
        it has another, for example because the model was replaced since (docs/receipts.md). `parameters` are
        extra OIP request parameters. The response's `model_sha256` is the digest of the model that answered."""
        validate_model_name(model_name)
        required = None
        if model_sha256 is not None:
            if not isinstance(model_sha256, str) or not _SHA256_RE.fullmatch(model_sha256):
                raise InvalidInput(f"a required model SHA-256 is 64 hex digits, got {model_sha256!r}")
            required = model_sha256.lower()
        named = self._name_inputs(model_name, inputs)
        if not named:
            raise InvalidInput("no input tensors")
        req_inputs, parts = [], []
        for name, value in named:
            datatype, shape, data = to_wire(value)
            req_inputs.append({"name": name, "shape": shape, "datatype": datatype,
                               "parameters": {"binary_data_size": len(data) if not isinstance(data, memoryview) else data.nbytes}})
            parts.append(data)
        request_parameters = {**(parameters or {}), "binary_data_output": True}
        if required is not None:
            request_parameters[REQUIRE_MODEL_SHA256] = required
        request: dict[str, Any] = {"parameters": request_parameters, "inputs": req_inputs}
        if outputs is not None:
            request["outputs"] = [{"name": o, "parameters": {"binary_data": True}} for o in outputs]
        header = json.dumps(request, separators=(",", ":")).encode()
        body = b"".join([header, *parts])
        r = self._request("POST", f"/v2/models/{model_name}/infer", body,
                          {"Content-Type": "application/octet-stream", HEADER_CONTENT_LENGTH: str(len(header))})
        response = _decode_inference(r)
        if required is not None and response.model_sha256 != required:
            raise ProtocolViolation(f"the server answered from model digest {response.model_sha256 or '(none)'}, "
                                    f"not the required {required}")
        return response

    run_model = predict

    def _name_inputs(self, model_name: str, inputs) -> list[tuple[str, Any]]:
        if isinstance(inputs, dict):
            return sorted(((str(k), v) for k, v in inputs.items()), key=lambda kv: kv[0])
        values = list(inputs) if isinstance(inputs, (list, tuple)) else [inputs]
        names = self._inputs_cache.get(model_name)
        if names is None:
            names = [i["name"] for i in self.metadata(model_name).get("inputs", [])]
            self._inputs_cache[model_name] = names
        if len(values) != len(names):
            raise InvalidInput(f"model '{model_name}' takes {len(names)} input(s) ({', '.join(names)}), got {len(values)}")
        return list(zip(names, values))


def _peer_closed(sock) -> bool:
    """True when an idle connection has become readable: the peer closed it (or sent something unexpected)."""
    try:
        r, _, _ = select.select([sock], [], [], 0)
    except (OSError, ValueError):
        return True
    return bool(r)


def _decode_inference(r: _Response) -> PredictResponse:
    body = r.body
    hl = r.headers.get(HEADER_CONTENT_LENGTH)
    mv = memoryview(body)
    try:
        if hl is not None:
            n = int(hl)
            if not 0 <= n <= len(body):
                raise ProtocolViolation(f"{HEADER_CONTENT_LENGTH} is {n} but the body has {len(body)} bytes")
            head, binary = mv[:n], mv[n:]
        else:
            head, binary = mv, mv[len(body):]
        o = json.loads(bytes(head))
    except ValueError as e:
        raise ProtocolViolation(f"inference response: {e}") from None
    tensors = []
    offset = 0
    for out in o.get("outputs", []):
        size = (out.get("parameters") or {}).get("binary_data_size")
        if size is not None:
            if not isinstance(size, int) or size < 0 or len(binary) - offset < size:
                raise ProtocolViolation(f"inference response: output '{out.get('name')}' declares {size} bytes of binary data")
            tensors.append(Tensor(out["name"], out["datatype"], out["shape"], data=binary[offset:offset + size]))
            offset += size
        else:
            tensors.append(Tensor(out["name"], out["datatype"], out["shape"], json_data=out.get("data")))
    if offset != len(binary):
        raise ProtocolViolation(f"inference response: the body has {len(binary) - offset} bytes of binary data that no tensor declares")
    params = o.get("parameters")
    if params is not None and not isinstance(params, dict):
        raise ProtocolViolation("inference response: parameters is not an object")
    digest = (params or {}).get(MODEL_SHA256)
    if digest is not None and not isinstance(digest, str):
        raise ProtocolViolation(f"inference response: parameter {MODEL_SHA256} is not a string")
    return PredictResponse(o.get("model_name", ""), o.get("model_version"), tensors, params, digest)


def connect(addr: str = "localhost:8000", *, policy, api_key: str | None = None, allow_simulated: bool = False,
            timeout: float = 300.0, **options) -> Connection:
    """Connects to a BlindAI server and attests it before returning: nothing but the attestation request (a fresh
    nonce) is sent before the evidence has satisfied `policy` (a path, a dict in the policy JSON format, or a
    `blindai.attestation.Policy`) and is bound to the TLS key of that very connection. Every later connection must
    present the same key (`ServerKeyChanged` otherwise; `reconnect()` attests again)."""
    return Connection(addr, policy=policy, api_key=api_key, allow_simulated=allow_simulated, timeout=timeout, **options)
