"""A TLS relay on loopback, for tests: it accepts the client's connections and forwards them to the server. In
"terminate" mode it presents its own certificate (so it can read what the client sends) and opens its own TLS
connection to the server; in "passthrough" mode it forwards TCP bytes untouched. `mode_for(n)` picks the mode of the
n-th accepted connection. Everything the client sent after the relay decrypted it is kept in `received[n]`."""

from __future__ import annotations

import datetime
import socket
import ssl
import tempfile
import threading

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID


def self_signed(dirpath: str) -> tuple[str, str]:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "relay")])
    now = datetime.datetime.now(datetime.timezone.utc)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key()).serial_number(7)
            .not_valid_before(now - datetime.timedelta(days=1)).not_valid_after(now + datetime.timedelta(days=1))
            .sign(key, hashes.SHA256()))
    c, k = f"{dirpath}/relay.crt", f"{dirpath}/relay.key"
    with open(c, "wb") as f:
        f.write(cert.public_bytes(serialization.Encoding.PEM))
    with open(k, "wb") as f:
        f.write(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()))
    return c, k


class Relay:
    def __init__(self, upstream: tuple[str, int], mode_for=lambda n: "terminate"):
        self.upstream = upstream
        self.mode_for = mode_for
        self.received: dict[int, bytearray] = {}
        self.modes: dict[int, str] = {}
        self._tmp = tempfile.mkdtemp()
        cert, key = self_signed(self._tmp)
        self.server_ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        self.server_ctx.load_cert_chain(cert, key)
        self.client_ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        self.client_ctx.check_hostname = False
        self.client_ctx.verify_mode = ssl.CERT_NONE
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(16)
        self.port = self.sock.getsockname()[1]
        self._stop = False
        self._count = 0
        threading.Thread(target=self._accept, daemon=True).start()

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    def _accept(self):
        while not self._stop:
            try:
                c, _ = self.sock.accept()
            except OSError:
                return
            n = self._count
            self._count += 1
            threading.Thread(target=self._handle, args=(c, n), daemon=True).start()

    def _handle(self, c, n):
        mode = self.mode_for(n)
        self.modes[n] = mode
        self.received[n] = bytearray()
        try:
            up = socket.create_connection(self.upstream)
            if mode == "terminate":
                c = self.server_ctx.wrap_socket(c, server_side=True)
                up = self.client_ctx.wrap_socket(up)
        except (OSError, ssl.SSLError):
            c.close()
            return
        record = mode == "terminate"

        def pump(src, dst, keep):
            try:
                while True:
                    data = src.recv(65536)
                    if not data:
                        break
                    if keep:
                        self.received[n] += data
                    dst.sendall(data)
            except (OSError, ssl.SSLError):
                pass
            finally:
                for s in (src, dst):
                    try:
                        s.close()
                    except OSError:
                        pass
        threading.Thread(target=pump, args=(up, c, False), daemon=True).start()
        pump(c, up, record)

    def close(self):
        self._stop = True
        self.sock.close()
