"""A real `bulwark serve` process on a loopback port, for tests that need the real socket."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import ssl
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx

from webhook.logs import FLUSH_AFTER_SECONDS


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


class LiveServer:
    """`bulwark serve` started as a subprocess; its CA verifies every connection."""

    def __init__(self, workdir: Path, *args: str, config: str | None = None) -> None:
        self.port = free_port()
        self.cert_dir = workdir / f"certs-{self.port}"
        self.log_path = workdir / f"serve-{self.port}.log"
        command = [
            sys.executable, "-m", "webhook", "serve",
            "--host", "127.0.0.1", "--port", str(self.port), "--cert-dir", str(self.cert_dir),
            *args,
        ]  # fmt: skip
        if config is not None:
            config_path = workdir / f"config-{self.port}.yaml"
            config_path.write_text(config)
            command += ["--config", str(config_path)]
        self._log = self.log_path.open("w")
        self.process = subprocess.Popen(
            command, stdout=self._log, stderr=subprocess.STDOUT, start_new_session=True
        )

    @property
    def url(self) -> str:
        return f"https://127.0.0.1:{self.port}"

    @property
    def ca(self) -> str:
        return str(self.cert_dir / "ca.crt")

    def client(self, **kwargs: Any) -> httpx.Client:
        verify = ssl.create_default_context(cafile=self.ca)
        return httpx.Client(base_url=self.url, verify=verify, timeout=10, **kwargs)

    def wait_ready(self, timeout: float = 30) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"bulwark serve exited early:\n{self.log()}")
            with contextlib.suppress(httpx.HTTPError, OSError):
                if (self.cert_dir / "ca.crt").exists():
                    with self.client() as client:
                        if client.get("/readyz").status_code == 200:
                            return
            time.sleep(0.1)
        raise RuntimeError(f"bulwark serve was not ready in {timeout}s:\n{self.log()}")

    def log(self) -> str:
        """What the server has logged, including lines still waiting for their flush."""
        if self.process.poll() is None:
            time.sleep(2 * FLUSH_AFTER_SECONDS)
        if not self._log.closed:
            self._log.flush()
        return self.log_path.read_text()

    def terminate(self, timeout: float = 30) -> int:
        """SIGTERM, wait for the drain, and return the exit status."""
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(timeout)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait()
        if not self._log.closed:
            self._log.close()
        return self.process.returncode


@contextlib.contextmanager
def live_server(workdir: Path, *args: str, config: str | None = None) -> Iterator[LiveServer]:
    server = LiveServer(workdir, *args, config=config)
    try:
        server.wait_ready()
        yield server
    finally:
        server.terminate()
