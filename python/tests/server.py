"""Start and stop `blindai serve --tee simulated` on loopback for the end-to-end tests."""

from __future__ import annotations

import json
import os
import socket
import ssl
import subprocess
import time


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Server:
    def __init__(self, binary: str, workdir, port: int | None = None, extra: list[str] | None = None):
        self.binary = binary
        self.port = port or free_port()
        self.policy_path = str(workdir / f"policy-{self.port}-{time.monotonic_ns()}.json")
        self.log_path = str(workdir / f"server-{self.port}.log")
        args = [binary, "serve", "--tee", "simulated", "--host", "127.0.0.1", "--port", str(self.port), "--metrics-port", "0",
                "--write-policy", self.policy_path, *(extra or [])]
        self.log = open(self.log_path, "wb")
        self.proc = subprocess.Popen(args, stdout=self.log, stderr=subprocess.STDOUT)
        self._wait_ready()

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    @property
    def policy(self) -> dict:
        with open(self.policy_path) as f:
            return json.load(f)

    def _wait_ready(self, timeout: float = 120):
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"blindai serve exited with {self.proc.returncode}: {open(self.log_path).read()[-2000:]}")
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=1) as s:
                    with ctx.wrap_socket(s):
                        if os.path.exists(self.policy_path):
                            return
            except (OSError, ssl.SSLError):
                pass
            time.sleep(0.1)
        self.stop()
        raise RuntimeError("blindai serve did not become ready")

    def stop(self):
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.log.close()
