"""What the loopback scripts (server-overhead.py, slow-clients.py) share: a release `blindai serve --tee simulated`
started on 127.0.0.1 with free ports, and a TLS connection to it once it answers its readiness check."""
import http.client
import socket
import ssl
import subprocess
import sys
import time


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def tls_context() -> ssl.SSLContext:
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE  # measuring on loopback only; the client library attests and pins
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
