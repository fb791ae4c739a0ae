"""Certificate rotation on a live `bulwark serve`, the way a mounted Secret rotates.

The kubelet updates a Secret volume with its atomic writer: the files go into a new
timestamped folder (`..2026_01_02_03_04_05.123`), a `..data` symlink is pointed at it by a
rename, and `tls.crt` and `tls.key` are symlinks through `..data`. These tests do the same
to a folder a real server polls, while clients keep talking to it.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import os
import signal
import socket
import ssl
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from tests.live import free_port
from tests.reviews import pod, review

POLL = "0.2"
Files = dict[str, bytes]


def bulwark(*args: str) -> list[str]:
    """The command line of the installed `bulwark` script (or `python -m webhook`)."""
    script = Path(sys.executable).with_name("bulwark")
    return [str(script), *args] if script.exists() else [sys.executable, "-m", "webhook", *args]


def certs(out: Path) -> Files:
    """A CA and serving pair made by `bulwark certs`, as the files a Secret would hold."""
    subprocess.run(bulwark("certs", "--out", str(out)), check=True, capture_output=True)
    return {name: (out / name).read_bytes() for name in ("ca.crt", "tls.crt", "tls.key")}


def self_signed(*, not_after: dt.datetime, not_before: dt.datetime | None = None) -> Files:
    """A matching self-signed pair with the given validity, made without Bulwark's help."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "short-lived")])
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(not_before or now - dt.timedelta(days=2))
        .not_valid_after(not_after)
        .add_extension(x509.SubjectAlternativeName([x509.DNSName("localhost")]), False)
        .sign(key, hashes.SHA256())
    )
    pem = cert.public_bytes(serialization.Encoding.PEM)
    key_pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    return {"ca.crt": pem, "tls.crt": pem, "tls.key": key_pem}


def serial_of(cert_pem: bytes) -> int:
    return x509.load_pem_x509_certificate(cert_pem).serial_number


class SecretVolume:
    """A folder laid out and updated like the kubelet's atomic writer does for a Secret."""

    def __init__(self, root: Path) -> None:
        self.root = root
        root.mkdir(parents=True, exist_ok=True)

    def publish(self, files: Files) -> None:
        """Write `files` into a new timestamped folder and swap `..data` to it atomically."""
        stamp = dt.datetime.now(dt.UTC).strftime("..%Y_%m_%d_%H_%M_%S.") + uuid.uuid4().hex[:9]
        (self.root / stamp).mkdir()
        for name, content in files.items():
            (self.root / stamp / name).write_bytes(content)
        data = self.root / "..data"
        old = os.readlink(data) if data.is_symlink() else None
        (self.root / "..data_tmp").symlink_to(stamp)
        os.replace(self.root / "..data_tmp", data)
        for name in files:
            link = self.root / name
            if not link.is_symlink():
                link.symlink_to(f"..data/{name}")
        if old is not None:
            for leftover in (self.root / old).iterdir():
                leftover.unlink()
            (self.root / old).rmdir()


class Served:
    """A `bulwark serve` subprocess polling a Secret volume every 0.2 s."""

    def __init__(self, cert_dir: Path, log_path: Path) -> None:
        self.port = free_port()
        self.log_path = log_path
        self._log = log_path.open("w")
        command = bulwark(
            "serve", "--host", "127.0.0.1", "--port", str(self.port),
            "--cert-dir", str(cert_dir), "--cert-poll-seconds", POLL, "--drain-seconds", "2",
        )  # fmt: skip
        self.process = subprocess.Popen(
            command, stdout=self._log, stderr=subprocess.STDOUT, start_new_session=True
        )

    @property
    def url(self) -> str:
        return f"https://127.0.0.1:{self.port}"

    def events(self, name: str) -> list[dict[str, object]]:
        """The JSON log lines whose event is `name`."""
        self._log.flush()
        found = []
        for line in self.log_path.read_text().splitlines():
            with contextlib.suppress(ValueError):
                entry = json.loads(line)
                if isinstance(entry, dict) and entry.get("event") == name:
                    found.append(entry)
        return found

    def wait_until_listening(self, timeout: float = 30) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"bulwark serve exited early:\n{self.log_path.read_text()}")
            with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", self.port)):
                return
            time.sleep(0.1)
        raise RuntimeError(f"bulwark serve did not listen in {timeout}s")

    def stop(self) -> None:
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(15)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait()
        self._log.close()


@pytest.fixture
def volume(tmp_path: Path) -> SecretVolume:
    return SecretVolume(tmp_path / "secret")


@pytest.fixture
def start(volume: SecretVolume, tmp_path: Path) -> Iterator[Callable[[], Served]]:
    """Starts `bulwark serve` on the volume (once published); stops it after the test."""
    started: list[Served] = []

    def launch() -> Served:
        served = Served(volume.root, tmp_path / "serve.log")
        started.append(served)
        served.wait_until_listening()
        return served

    try:
        yield launch
    finally:
        for served in started:
            served.stop()


def trusting(*cas: bytes) -> ssl.SSLContext:
    """A client context that trusts each of `cas`, like a caBundle holding old and new."""
    context = ssl.create_default_context()
    for ca in cas:
        context.load_verify_locations(cadata=ca.decode())
    return context


def insecure() -> ssl.SSLContext:
    context = ssl.create_default_context()
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    return context


def peer_serial(port: int, context: ssl.SSLContext, server_name: str = "localhost") -> int:
    """The serial of the certificate a brand-new handshake sees (SNI set to `server_name`)."""
    with (
        socket.create_connection(("127.0.0.1", port), timeout=5) as raw,
        context.wrap_socket(raw, server_hostname=server_name) as tls,
    ):
        der = tls.getpeercert(binary_form=True)
    assert der is not None
    return x509.load_der_x509_certificate(der).serial_number


def wait_for(condition: Callable[[], bool], what: str, timeout: float = 15) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with contextlib.suppress(OSError, ssl.SSLError):
            if condition():
                return
        time.sleep(0.05)
    raise AssertionError(f"timed out after {timeout}s waiting for {what}")


class Traffic:
    """Clients posting AdmissionReviews until stopped, counting every outcome.

    One thread keeps a single keep-alive connection; another opens a new connection
    (and so a new handshake) for every request. Loops are bounded in count and time.
    """

    LIMIT, SECONDS = 5000, 60.0

    def __init__(self, url: str, verify: ssl.SSLContext) -> None:
        self.url, self.verify = url, verify
        self.done = threading.Event()
        self.sent = {"keep-alive": 0, "new-connection": 0}
        self.failures: list[str] = []
        self.keep_alive_streams: set[int] = set()
        self._threads = [
            threading.Thread(target=self._keep_alive, daemon=True),
            threading.Thread(target=self._new_connections, daemon=True),
        ]

    def __enter__(self) -> Traffic:
        for thread in self._threads:
            thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.done.set()
        for thread in self._threads:
            thread.join(30)

    def _post(self, client: httpx.Client, mode: str) -> httpx.Response | None:
        body = review(pod())
        try:
            reply = client.post("/validate", json=body)
        except httpx.HTTPError as error:
            self.failures.append(f"{mode}: {type(error).__name__}: {error}")
            return None
        self.sent[mode] += 1
        response = reply.json().get("response", {}) if reply.status_code == 200 else {}
        if response.get("uid") != body["request"]["uid"] or response.get("allowed") is not True:
            self.failures.append(f"{mode}: HTTP {reply.status_code}: {reply.text[:200]}")
        return reply

    def _running(self, started: float, count: int) -> bool:
        elapsed = time.monotonic() - started
        return not self.done.is_set() and count < self.LIMIT and elapsed < self.SECONDS

    def _keep_alive(self) -> None:
        started = time.monotonic()
        with httpx.Client(base_url=self.url, verify=self.verify, timeout=10) as client:
            while self._running(started, self.sent["keep-alive"]):
                reply = self._post(client, "keep-alive")
                if reply is not None:
                    self.keep_alive_streams.add(id(reply.extensions["network_stream"]))

    def _new_connections(self) -> None:
        started = time.monotonic()
        while self._running(started, self.sent["new-connection"]):
            with httpx.Client(base_url=self.url, verify=self.verify, timeout=10) as client:
                self._post(client, "new-connection")


def _rotate(volume: SecretVolume, served: Served, traffic: Traffic, pair: Files) -> None:
    """Publish `pair`, wait until new handshakes see it, then for more traffic on both kinds."""
    volume.publish(pair)
    serial, only_new = serial_of(pair["tls.crt"]), trusting(pair["ca.crt"])
    wait_for(lambda: peer_serial(served.port, only_new) == serial, "the new pair")
    sent = dict(traffic.sent)
    wait_for(lambda: all(traffic.sent[m] >= sent[m] + 20 for m in sent), "more traffic")


def test_secret_rotations_are_served_without_a_failed_request(
    volume: SecretVolume, start: Callable[[], Served], tmp_path: Path
) -> None:
    """Secret swaps reach new handshakes while requests, pooled or not, never fail."""
    pairs = [certs(tmp_path / f"pair-{index}") for index in range(3)]
    volume.publish(pairs[0])
    served = start()
    wait_for(lambda: peer_serial(served.port, trusting(pairs[0]["ca.crt"])) > 0, "the first pair")

    with Traffic(served.url, trusting(*(pair["ca.crt"] for pair in pairs))) as traffic:
        wait_for(lambda: min(traffic.sent.values()) >= 20, "traffic on both kinds of connection")
        for pair in pairs[1:]:
            _rotate(volume, served, traffic, pair)

    assert traffic.failures == []
    assert len(traffic.keep_alive_streams) == 1, "the pooled connection outlived the rotations"
    last = pairs[-1]
    assert peer_serial(served.port, trusting(last["ca.crt"]), "127.0.0.1") == serial_of(
        last["tls.crt"]
    ), "also without SNI"
    loaded = [event["serial"] for event in served.events("certificate_loaded")]
    assert loaded == [format(serial_of(pair["tls.crt"]), "x") for pair in pairs]


def _mismatched(old: Files, other: Files) -> Files:
    return {**old, "tls.crt": other["tls.crt"]}


def _expired(old: Files, other: Files) -> Files:
    return self_signed(not_after=dt.datetime.now(dt.UTC) - dt.timedelta(days=1))


def _not_pem(old: Files, other: Files) -> Files:
    return {**old, "tls.crt": b"-----BEGIN CERTIFICATE-----\nnot base64\n"}


@pytest.mark.parametrize(
    ("make_bad", "reason"),
    [
        pytest.param(_mismatched, "key does not belong", id="key-of-another-certificate"),
        pytest.param(_expired, "expired", id="expired"),
        pytest.param(_not_pem, "not a PEM certificate", id="not-pem"),
    ],
)
def test_unusable_pair_is_refused_and_the_old_one_kept(
    volume: SecretVolume,
    start: Callable[[], Served],
    tmp_path: Path,
    make_bad: Callable[[Files, Files], Files],
    reason: str,
) -> None:
    """A bad pair in the folder is logged as certificate_refused; the old one is still served."""
    old, other = certs(tmp_path / "old"), certs(tmp_path / "other")
    volume.publish(old)
    served = start()
    old_serial = serial_of(old["tls.crt"])
    wait_for(lambda: peer_serial(served.port, trusting(old["ca.crt"])) == old_serial, "old")

    volume.publish(make_bad(old, other))
    wait_for(lambda: bool(served.events("certificate_refused")), "certificate_refused")

    refused = served.events("certificate_refused")
    assert len(refused) == 1, "a refused pair is logged once, not at every poll"
    assert reason in str(refused[0]["error"])
    time.sleep(3 * float(POLL))
    assert peer_serial(served.port, trusting(old["ca.crt"])) == old_serial
    with httpx.Client(base_url=served.url, verify=trusting(old["ca.crt"])) as client:
        assert client.get("/readyz").status_code == 200


def test_files_that_vanish_are_logged_once_and_their_return_is_logged(
    volume: SecretVolume, start: Callable[[], Served], tmp_path: Path
) -> None:
    """A Secret whose files are gone (deleted, being recreated) is logged as unreadable
    once, not at every poll; the old pair is served meanwhile, and the files' return is
    logged and a new pair in them served."""
    old, new = certs(tmp_path / "old"), certs(tmp_path / "new")
    volume.publish(old)
    served = start()
    old_serial = serial_of(old["tls.crt"])
    wait_for(lambda: peer_serial(served.port, trusting(old["ca.crt"])) == old_serial, "old")
    (volume.root / "..data").unlink()
    wait_for(lambda: bool(served.events("certificate_unreadable")), "certificate_unreadable")
    time.sleep(5 * float(POLL))
    assert len(served.events("certificate_unreadable")) == 1
    assert peer_serial(served.port, trusting(old["ca.crt"])) == old_serial

    volume.publish(new)
    wait_for(lambda: bool(served.events("certificate_readable")), "certificate_readable")
    wait_for(
        lambda: peer_serial(served.port, trusting(new["ca.crt"])) == serial_of(new["tls.crt"]),
        "the new pair served",
    )


def test_serve_refuses_to_start_with_an_expired_pair(volume: SecretVolume) -> None:
    """Starting on an expired pair exits 2 with a message, instead of serving it."""
    volume.publish(self_signed(not_after=dt.datetime.now(dt.UTC) - dt.timedelta(hours=1)))
    command = bulwark("serve", "--host", "127.0.0.1", "--port", str(free_port()))
    result = subprocess.run(
        [*command, "--cert-dir", str(volume.root)],
        check=False,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 2
    assert "bulwark serve: error:" in result.stderr
    assert "tls.crt" in result.stderr
    assert "expired" in result.stderr


def test_readyz_fails_once_the_served_certificate_expires(
    volume: SecretVolume, start: Callable[[], Served], tmp_path: Path
) -> None:
    """When the served pair expires and nothing replaces it, /readyz answers 503."""
    volume.publish(certs(tmp_path / "first"))
    served = start()
    # Rotated in after startup, so a slow start cannot eat into its few seconds of life.
    not_after = dt.datetime.now(dt.UTC).replace(microsecond=0) + dt.timedelta(seconds=6)
    short = self_signed(not_after=not_after)
    volume.publish(short)
    wait_for(lambda: peer_serial(served.port, insecure()) == serial_of(short["tls.crt"]), "short")

    with httpx.Client(base_url=served.url, verify=insecure(), timeout=5) as client:
        assert client.get("/readyz").status_code == 200
        wait_for(lambda: client.get("/readyz").status_code == 503, "/readyz to fail", 20)
        reply = client.get("/readyz")
    assert dt.datetime.now(dt.UTC) >= not_after
    assert "the served certificate has expired" in reply.text
