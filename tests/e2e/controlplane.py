"""A real Kubernetes control plane (etcd + kube-apiserver) for Bulwark's end-to-end tests.

Both binaries are built from Go modules by the small module in ``apiserver/`` (upstream
``k8s.io/kubernetes/cmd/kube-apiserver/app`` and ``go.etcd.io/etcd/server/v3/embed``),
once, into ``.cache/e2e/bin/<k8s-version>-<digest>/`` (override the cache folder with
``BULWARK_E2E_CACHE``). There is no controller-manager, scheduler or kubelet: objects are
stored and admitted, never run.

Command line (from the repository root)::

    .venv/bin/python -m tests.e2e.controlplane build     # build or reuse the binaries
    .venv/bin/python -m tests.e2e.controlplane up        # run a control plane until Ctrl-C
    .venv/bin/python -m tests.e2e.controlplane measure   # time a start, report memory

Only the standard library is imported at module level (``cryptography``, ``yaml`` and
``kubernetes`` are imported where they are used), so ``build`` runs anywhere.
"""

from __future__ import annotations

import argparse
import atexit
import base64
import contextlib
import datetime as dt
import fcntl
import hashlib
import ipaddress
import json
import os
import re
import shutil
import signal
import socket
import ssl
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
MODULE_DIR = HERE / "apiserver"
REPO = HERE.parents[1]
DEFAULT_CACHE = REPO / ".cache" / "e2e"

SERVICE_CLUSTER_IP_RANGE = "10.96.0.0/16"  # configuration only: nothing is routed there
SERVICE_ACCOUNT_ISSUER = "https://kubernetes.default.svc"
ADMIN_USER = "bulwark-e2e-admin"
# The ServiceAccount admission plugin makes every pod CREATE look up its ServiceAccount
# ("default" unless named) and forbids the pod when it is missing, even with
# automountServiceAccountToken: false. Without a controller-manager nothing creates
# "default" in new namespaces, so the plugin is off unless a test asks for it (then use
# ControlPlane.ensure_namespace, which creates the "default" ServiceAccount as well).
DEFAULT_DISABLED_ADMISSION_PLUGINS = ("ServiceAccount",)

Log = Callable[[str], None]


class ControlPlaneError(RuntimeError):
    """The control plane could not be built or started; the message says why."""


class GoUnavailable(ControlPlaneError):
    """No Go toolchain to build the binaries with (tests skip on this one)."""


# --------------------------------------------------------------------------- build


@dataclass(frozen=True)
class Binaries:
    kube_apiserver: Path
    etcd: Path
    k8s_version: str
    etcd_version: str

    @property
    def directory(self) -> Path:
        return self.kube_apiserver.parent


def module_versions() -> dict[str, str]:
    """The versions pinned in apiserver/go.mod: kubernetes, etcd and the go directive."""
    text = (MODULE_DIR / "go.mod").read_text()

    def find(pattern: str, what: str) -> str:
        match = re.search(pattern, text, re.MULTILINE)
        if not match:
            raise ControlPlaneError(f"{MODULE_DIR / 'go.mod'} names no {what}")
        return match.group(1)

    return {
        "kubernetes": find(r"^\s*k8s\.io/kubernetes (v\S+)", "k8s.io/kubernetes version"),
        "etcd": find(r"^\s*go\.etcd\.io/etcd/server/v3 (v\S+)", "etcd server version"),
        "go": find(r"^go (\S+)", "go directive"),
    }


def _source_digest() -> str:
    digest = hashlib.sha256()
    files = [MODULE_DIR / "go.mod", MODULE_DIR / "go.sum", *sorted(MODULE_DIR.rglob("*.go"))]
    for path in files:
        digest.update(path.relative_to(MODULE_DIR).as_posix().encode() + b"\0")
        digest.update(path.read_bytes() + b"\0")
    return digest.hexdigest()[:12]


def cache_dir() -> Path:
    return Path(os.environ.get("BULWARK_E2E_CACHE") or DEFAULT_CACHE).resolve()


def bin_dir() -> Path:
    """Where this source tree's binaries live: keyed by k8s version and source digest."""
    return cache_dir() / "bin" / f"{module_versions()['kubernetes']}-{_source_digest()}"


def find_go() -> str | None:
    found = shutil.which("go")
    if found:
        return found
    fallback = Path("/usr/local/go/bin/go")
    return str(fallback) if fallback.is_file() else None


def cached_binaries() -> Binaries | None:
    versions = module_versions()
    directory = bin_dir()
    apiserver, etcd = directory / "kube-apiserver", directory / "etcd"
    if not (os.access(apiserver, os.X_OK) and os.access(etcd, os.X_OK)):
        return None
    return Binaries(apiserver, etcd, versions["kubernetes"], versions["etcd"])


@contextlib.contextmanager
def _build_lock() -> Iterator[None]:
    cache_dir().mkdir(parents=True, exist_ok=True)
    with open(cache_dir() / "build.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


def _ldflags(k8s_version: str) -> str:
    major, minor = k8s_version.lstrip("v").split(".")[:2]
    pkg = "k8s.io/component-base/version"
    return " ".join(
        [
            "-s",
            "-w",
            f"-X {pkg}.gitVersion={k8s_version}",
            f"-X {pkg}.gitMajor={major}",
            f"-X {pkg}.gitMinor={minor}",
            f"-X {pkg}.gitTreeState=clean",
        ]
    )


def build(*, force: bool = False, log: Log | None = None) -> Binaries:
    """Return the cached binaries, building them first if this source tree has none.

    Safe to call from several processes at once: a file lock lets one of them build.
    Raises GoUnavailable without a Go toolchain and ControlPlaneError on a failed build.
    """
    log = log or (lambda _msg: None)
    with _build_lock():
        found = cached_binaries()
        if found and not force:
            return found
        go = find_go()
        if go is None:
            raise GoUnavailable(
                "go not found on PATH: the e2e suite builds kube-apiserver and etcd from Go "
                "modules (Go >= " + module_versions()["go"] + ", see tests/e2e/README.md)"
            )
        versions = module_versions()
        target = bin_dir()
        staging = target.with_name(f"{target.name}.partial-{os.getpid()}")
        shutil.rmtree(staging, ignore_errors=True)
        staging.mkdir(parents=True)
        build_log = cache_dir() / "build.log"
        cmd = [
            go,
            "build",
            "-trimpath",
            "-buildvcs=false",
            f"-ldflags={_ldflags(versions['kubernetes'])}",
            "-o",
            f"{staging}/",
            "./cmd/kube-apiserver",
            "./cmd/etcd",
        ]
        log(
            f"building kube-apiserver {versions['kubernetes']} and etcd {versions['etcd']} "
            f"into {target} (cold: ~5 min on 2 cores; log: {build_log})"
        )
        started = time.monotonic()
        with open(build_log, "w") as out:
            out.write("$ (cd " + str(MODULE_DIR) + " && " + " ".join(cmd) + ")\n")
            out.flush()
            result = subprocess.run(
                cmd, cwd=MODULE_DIR, stdout=out, stderr=subprocess.STDOUT, check=False
            )
        elapsed = time.monotonic() - started
        if result.returncode != 0:
            shutil.rmtree(staging, ignore_errors=True)
            tail = _tail(build_log, 40)
            raise ControlPlaneError(
                f"go build failed (exit {result.returncode}) in {MODULE_DIR}:\n"
                f"  {' '.join(cmd)}\n{tail}"
            )
        version = subprocess.run(
            [str(staging / "kube-apiserver"), "--version"],
            capture_output=True,
            text=True,
            check=False,
        ).stdout.strip()
        if versions["kubernetes"] not in version:
            raise ControlPlaneError(f"built kube-apiserver reports {version!r}")
        (staging / "build-info.json").write_text(
            json.dumps({**versions, "seconds": round(elapsed, 1), "go_build": cmd[1:]}, indent=2)
            + "\n"
        )
        shutil.rmtree(target, ignore_errors=True)
        staging.rename(target)
        for stale in (cache_dir() / "bin").iterdir():  # keep one build per cache
            if stale != target and stale.is_dir():
                shutil.rmtree(stale, ignore_errors=True)
        log(f"built in {elapsed:.0f}s")
        found = cached_binaries()
        assert found is not None
        return found


# --------------------------------------------------------------------------- certificates


@dataclass(frozen=True)
class PKI:
    """PEM files of a throw-away cluster PKI, all in one folder."""

    directory: Path
    ca_cert: Path
    ca_key: Path
    serving_cert: Path
    serving_key: Path
    sa_public_key: Path
    sa_private_key: Path
    admin_cert: Path
    admin_key: Path

    def issue(
        self,
        name: str,
        *,
        hosts: Sequence[str] = (),
        organizations: Sequence[str] = (),
        client: bool = False,
    ) -> tuple[Path, Path]:
        """Issue a certificate signed by the cluster CA; returns (cert, key) paths.

        With hosts it is a serving certificate (their DNS names and IP addresses go into
        the SAN); with client=True a client certificate (CN=name, O=organizations).
        """
        from cryptography import x509
        from cryptography.hazmat.primitives import serialization

        ca_cert = x509.load_pem_x509_certificate(self.ca_cert.read_bytes())
        ca_key = serialization.load_pem_private_key(self.ca_key.read_bytes(), None)
        cert_pem, key_pem = _issue(
            ca_cert, ca_key, name, hosts=hosts, organizations=organizations, client=client
        )
        cert_path, key_path = self.directory / f"{name}.crt", self.directory / f"{name}.key"
        _write(cert_path, cert_pem)
        _write(key_path, key_pem, private=True)
        return cert_path, key_path


def _write(path: Path, data: bytes, *, private: bool = False) -> None:
    path.write_bytes(data)
    if private:
        path.chmod(0o600)


def _ec_key() -> Any:
    from cryptography.hazmat.primitives.asymmetric import ec

    return ec.generate_private_key(ec.SECP256R1())


def _key_pem(key: Any) -> bytes:
    from cryptography.hazmat.primitives import serialization

    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )


def _issue(
    ca_cert: Any,
    ca_key: Any,
    name: str,
    *,
    hosts: Sequence[str] = (),
    organizations: Sequence[str] = (),
    client: bool = False,
) -> tuple[bytes, bytes]:
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

    key = _ec_key()
    subject = [x509.NameAttribute(NameOID.ORGANIZATION_NAME, org) for org in organizations]
    subject.append(x509.NameAttribute(NameOID.COMMON_NAME, name))
    now = dt.datetime.now(dt.UTC)
    builder = (
        x509.CertificateBuilder()
        .subject_name(x509.Name(subject))
        .issuer_name(ca_cert.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=7))
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=False,
                crl_sign=False,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()),
            critical=False,
        )
    )
    usages = [ExtendedKeyUsageOID.CLIENT_AUTH] if client else []
    if hosts:
        usages.append(ExtendedKeyUsageOID.SERVER_AUTH)
        sans: list[x509.GeneralName] = []
        for host in hosts:
            try:
                sans.append(x509.IPAddress(ipaddress.ip_address(host)))
            except ValueError:
                sans.append(x509.DNSName(host))
        builder = builder.add_extension(x509.SubjectAlternativeName(sans), critical=False)
    if usages:
        builder = builder.add_extension(x509.ExtendedKeyUsage(usages), critical=False)
    cert = builder.sign(ca_key, hashes.SHA256())
    return cert.public_bytes(serialization.Encoding.PEM), _key_pem(key)


def make_pki(directory: Path) -> PKI:
    """A CA, the apiserver's serving cert, a service-account key pair, an admin client."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import rsa
    from cryptography.x509.oid import NameOID

    directory.mkdir(parents=True, exist_ok=True)
    ca_key = _ec_key()
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "bulwark-e2e-ca")])
    now = dt.datetime.now(dt.UTC)
    ca_cert = (
        x509.CertificateBuilder()
        .subject_name(ca_name)
        .issuer_name(ca_name)
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=7))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=True,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(
            x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()), critical=False
        )
        .sign(ca_key, hashes.SHA256())
    )
    pki = PKI(
        directory=directory,
        ca_cert=directory / "ca.crt",
        ca_key=directory / "ca.key",
        serving_cert=directory / "apiserver.crt",
        serving_key=directory / "apiserver.key",
        sa_public_key=directory / "sa.pub",
        sa_private_key=directory / "sa.key",
        admin_cert=directory / "admin.crt",
        admin_key=directory / "admin.key",
    )
    _write(pki.ca_cert, ca_cert.public_bytes(serialization.Encoding.PEM))
    _write(pki.ca_key, _key_pem(ca_key), private=True)

    serving = _issue(
        ca_cert,
        ca_key,
        "kube-apiserver",
        hosts=[
            "127.0.0.1",
            "localhost",
            "kubernetes",
            "kubernetes.default",
            "kubernetes.default.svc",
            str(next(ipaddress.ip_network(SERVICE_CLUSTER_IP_RANGE).hosts())),
        ],
    )
    _write(pki.serving_cert, serving[0])
    _write(pki.serving_key, serving[1], private=True)

    sa_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    _write(pki.sa_private_key, _key_pem(sa_key), private=True)
    _write(
        pki.sa_public_key,
        sa_key.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        ),
    )

    admin = _issue(ca_cert, ca_key, ADMIN_USER, organizations=["system:masters"], client=True)
    _write(pki.admin_cert, admin[0])
    _write(pki.admin_key, admin[1], private=True)
    return pki


# --------------------------------------------------------------------------- processes


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _tail(path: Path, lines: int) -> str:
    try:
        text = path.read_text(errors="replace").splitlines()
    except OSError:
        return "(no log)"
    return "\n".join(text[-lines:])


def _die_with_parent() -> None:
    """Runs in the child before exec: SIGKILL it if the Python process that started it dies."""
    with contextlib.suppress(Exception):
        import ctypes

        pr_set_pdeathsig = 1
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(pr_set_pdeathsig, signal.SIGKILL)


class _Process:
    def __init__(self, name: str, argv: Sequence[str], log_path: Path) -> None:
        self.name = name
        self.argv = list(argv)
        self.log_path = log_path
        with open(log_path, "ab") as log:
            log.write(("$ " + " ".join(self.argv) + "\n").encode())
            log.flush()
            self.popen = subprocess.Popen(
                self.argv,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,  # own process group, killed as a group
                preexec_fn=_die_with_parent,  # noqa: PLW1509 - only prctl, no locks
            )
        self.peak_rss_kib = 0

    @property
    def pid(self) -> int:
        return self.popen.pid

    def alive(self) -> bool:
        return self.popen.poll() is None

    def sample_rss(self) -> int:
        """Peak resident set size so far (VmHWM), in KiB; remembered for after exit."""
        try:
            for line in Path(f"/proc/{self.pid}/status").read_text().splitlines():
                if line.startswith("VmHWM:"):
                    self.peak_rss_kib = max(self.peak_rss_kib, int(line.split()[1]))
        except (OSError, ValueError):
            pass
        return self.peak_rss_kib

    def check_alive(self) -> None:
        if not self.alive():
            raise ControlPlaneError(
                f"{self.name} exited with code {self.popen.returncode}; "
                f"last lines of {self.log_path}:\n{_tail(self.log_path, 30)}"
            )

    def stop(self, grace: float = 15.0) -> None:
        if self.popen.returncode is not None:
            return
        self.sample_rss()
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.pid, signal.SIGTERM)
        try:
            self.popen.wait(timeout=grace)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.pid, signal.SIGKILL)
            self.popen.wait(timeout=10)
        # reap anything else left in the group
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.pid, signal.SIGKILL)


class ControlPlane:
    """etcd and kube-apiserver on 127.0.0.1, random ports, state in a temporary folder.

    Use as a context manager, or call start() and stop(). After start():
    ``server`` (https URL), ``kubeconfig`` (admin, O=system:masters), ``pki`` (the CA,
    to sign webhook serving certs with ``pki.issue``), ``api_client()``.
    """

    def __init__(
        self,
        binaries: Binaries,
        *,
        workdir: Path | None = None,
        disable_admission_plugins: Sequence[str] = DEFAULT_DISABLED_ADMISSION_PLUGINS,
        extra_apiserver_args: Sequence[str] = (),
        keep_workdir: bool = False,
        log: Log | None = None,
    ) -> None:
        self.binaries = binaries
        self._own_workdir = workdir is None
        self.workdir = Path(workdir) if workdir else Path(tempfile.mkdtemp(prefix="bulwark-e2e-"))
        self.disable_admission_plugins = list(disable_admission_plugins)
        self.extra_apiserver_args = list(extra_apiserver_args)
        self.keep_workdir = keep_workdir or bool(os.environ.get("BULWARK_E2E_KEEP"))
        self.log = log or (lambda _msg: None)
        self.etcd: _Process | None = None
        self.apiserver: _Process | None = None
        self.pki: PKI | None = None
        self.server = ""
        self.etcd_url = ""
        self.kubeconfig = self.workdir / "admin.kubeconfig"
        self.startup_seconds = 0.0
        self._stopped = False

    # -- lifecycle

    def __enter__(self) -> ControlPlane:
        try:
            return self.start()
        except BaseException:
            self.stop()
            raise

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def start(self, timeout: float = 180.0) -> ControlPlane:
        started = time.monotonic()
        atexit.register(self.stop)
        self.pki = make_pki(self.workdir / "pki")
        self._start_etcd(deadline=started + timeout)
        self._start_apiserver(deadline=started + timeout)
        self._write_kubeconfig()
        self._wait_ready(deadline=started + timeout)
        self.startup_seconds = time.monotonic() - started
        self.log(f"control plane ready at {self.server} in {self.startup_seconds:.1f}s")
        return self

    def stop(self) -> None:
        if self._stopped:
            return
        self._stopped = True
        for proc in (self.apiserver, self.etcd):
            if proc is not None:
                proc.stop()
        if self._own_workdir and not self.keep_workdir:
            shutil.rmtree(self.workdir, ignore_errors=True)
        elif self.keep_workdir:
            self.log(f"kept {self.workdir}")
        atexit.unregister(self.stop)

    # -- etcd

    def _start_etcd(self, deadline: float) -> None:
        for attempt in range(3):  # a free port can be taken between probe and bind
            client, peer = free_port(), free_port()
            self.etcd_url = f"http://127.0.0.1:{client}"
            data = self.workdir / "etcd"
            shutil.rmtree(data, ignore_errors=True)
            self.etcd = _Process(
                "etcd",
                [
                    str(self.binaries.etcd),
                    f"-data-dir={data}",
                    f"-listen-client-url={self.etcd_url}",
                    f"-listen-peer-url=http://127.0.0.1:{peer}",
                    "-unsafe-no-fsync",
                    "-log-level=warn",
                ],
                self.workdir / "etcd.log",
            )
            while time.monotonic() < deadline:
                if not self.etcd.alive():
                    break
                if self._etcd_healthy():
                    return
                time.sleep(0.1)
            else:
                raise ControlPlaneError(
                    f"etcd not healthy in time; log:\n{_tail(self.etcd.log_path, 30)}"
                )
            if attempt == 2:
                self.etcd.check_alive()
        raise AssertionError("unreachable")

    def _etcd_healthy(self) -> bool:
        try:
            with urllib.request.urlopen(f"{self.etcd_url}/health", timeout=2) as resp:
                return bool(json.load(resp).get("health") == "true")
        except (OSError, ValueError):
            return False

    # -- kube-apiserver

    def apiserver_args(self, port: int) -> list[str]:
        assert self.pki is not None
        pki = self.pki
        args = [
            str(self.binaries.kube_apiserver),
            "--bind-address=127.0.0.1",
            "--advertise-address=127.0.0.1",
            f"--secure-port={port}",
            f"--cert-dir={self.workdir / 'apiserver-certs'}",
            f"--etcd-servers={self.etcd_url}",
            f"--client-ca-file={pki.ca_cert}",
            f"--tls-cert-file={pki.serving_cert}",
            f"--tls-private-key-file={pki.serving_key}",
            f"--service-account-issuer={SERVICE_ACCOUNT_ISSUER}",
            f"--service-account-key-file={pki.sa_public_key}",
            f"--service-account-signing-key-file={pki.sa_private_key}",
            f"--service-cluster-ip-range={SERVICE_CLUSTER_IP_RANGE}",
            "--authorization-mode=Node,RBAC",
            # on by default already; named so that the suite's needs are visible here
            "--enable-admission-plugins=NamespaceLifecycle,"
            "MutatingAdmissionWebhook,ValidatingAdmissionWebhook",
            # privileged pods must reach the webhook: without this the API server's own
            # validation rejects them before any validating webhook is called
            "--allow-privileged=true",
            # 127.0.0.1 may not go into the "kubernetes" Endpoints (loopback is invalid)
            "--endpoint-reconciler-type=none",
            "--profiling=false",
            "--v=" + os.environ.get("BULWARK_E2E_APISERVER_V", "1"),
        ]
        if self.disable_admission_plugins:
            args.append("--disable-admission-plugins=" + ",".join(self.disable_admission_plugins))
        return args + self.extra_apiserver_args

    def _start_apiserver(self, deadline: float) -> None:
        for attempt in range(3):
            port = free_port()
            self.server = f"https://127.0.0.1:{port}"
            self.apiserver = _Process(
                "kube-apiserver", self.apiserver_args(port), self.workdir / "kube-apiserver.log"
            )
            # a port clash shows within a few seconds; readiness is waited for later
            until = min(deadline, time.monotonic() + 3)
            while time.monotonic() < until and self.apiserver.alive():
                time.sleep(0.2)
            if self.apiserver.alive():
                return
            if attempt == 2 or "address already in use" not in _tail(self.apiserver.log_path, 20):
                self.apiserver.check_alive()
        raise AssertionError("unreachable")

    def _ssl_context(self) -> ssl.SSLContext:
        assert self.pki is not None
        ctx = ssl.create_default_context(cafile=str(self.pki.ca_cert))
        ctx.load_cert_chain(str(self.pki.admin_cert), str(self.pki.admin_key))
        return ctx

    def get(self, path: str, timeout: float = 5.0) -> tuple[int, bytes]:
        """GET a path on the API server as the admin user; returns (status, body)."""
        try:
            with urllib.request.urlopen(
                self.server + path, context=self._ssl_context(), timeout=timeout
            ) as resp:
                return int(resp.status), resp.read()
        except urllib.error.HTTPError as err:
            return int(err.code), err.read()

    def _wait_ready(self, deadline: float) -> None:
        assert self.apiserver is not None
        assert self.etcd is not None
        last = "no answer yet"
        # /readyz covers the RBAC bootstrap roles; the namespaces default and
        # kube-system are created by a bootstrap controller right around it
        pending = ["/readyz", "/api/v1/namespaces/default", "/api/v1/namespaces/kube-system"]
        while pending:
            self.apiserver.check_alive()
            self.etcd.check_alive()
            if time.monotonic() > deadline:
                raise ControlPlaneError(
                    f"kube-apiserver not ready in time ({pending[0]}: {last}); last lines of "
                    f"{self.apiserver.log_path}:\n{_tail(self.apiserver.log_path, 30)}"
                )
            try:
                status, body = self.get(pending[0], timeout=5)
                last = f"HTTP {status}: {body[:300].decode(errors='replace')}"
                if status == 200:
                    pending.pop(0)
                    continue
            except (OSError, ssl.SSLError) as err:
                last = repr(err)
            time.sleep(0.25)
        self.apiserver.sample_rss()
        self.etcd.sample_rss()

    def _write_kubeconfig(self) -> None:
        assert self.pki is not None

        def b64(path: Path) -> str:
            return base64.b64encode(path.read_bytes()).decode()

        config = {
            "apiVersion": "v1",
            "kind": "Config",
            "clusters": [
                {
                    "name": "bulwark-e2e",
                    "cluster": {
                        "server": self.server,
                        "certificate-authority-data": b64(self.pki.ca_cert),
                    },
                }
            ],
            "users": [
                {
                    "name": ADMIN_USER,
                    "user": {
                        "client-certificate-data": b64(self.pki.admin_cert),
                        "client-key-data": b64(self.pki.admin_key),
                    },
                }
            ],
            "contexts": [
                {"name": "bulwark-e2e", "context": {"cluster": "bulwark-e2e", "user": ADMIN_USER}}
            ],
            "current-context": "bulwark-e2e",
        }
        # JSON is YAML: every kubeconfig reader accepts it
        self.kubeconfig.write_text(json.dumps(config, indent=2) + "\n")
        self.kubeconfig.chmod(0o600)

    # -- helpers for tests

    def api_client(self) -> Any:
        """A new kubernetes.client.ApiClient for the admin user (close it when done)."""
        from kubernetes import config

        return config.new_client_from_config(config_file=str(self.kubeconfig))

    def ensure_namespace(self, name: str, labels: dict[str, str] | None = None) -> None:
        """Create a namespace (and its "default" ServiceAccount, as the controller-manager
        would) unless it exists. Labels, when given, are applied either way."""
        from kubernetes import client
        from kubernetes.client.rest import ApiException

        with self.api_client() as api:
            core = client.CoreV1Api(api)
            body = client.V1Namespace(metadata=client.V1ObjectMeta(name=name, labels=labels))
            try:
                core.create_namespace(body)
            except ApiException as err:
                if err.status != 409:
                    raise
                if labels:
                    core.patch_namespace(name, {"metadata": {"labels": labels}})
            try:
                core.create_namespaced_service_account(
                    name, client.V1ServiceAccount(metadata=client.V1ObjectMeta(name="default"))
                )
            except ApiException as err:
                if err.status != 409:
                    raise

    def peak_rss_mib(self) -> dict[str, float]:
        """Peak resident memory of each process so far, in MiB."""
        out = {}
        for proc in (self.apiserver, self.etcd):
            if proc is not None:
                out[proc.name] = round(proc.sample_rss() / 1024, 1)
        return out

    def env(self) -> dict[str, str]:
        """Environment for a child process (kubectl, the webhook) to reach this cluster."""
        return {**os.environ, "KUBECONFIG": str(self.kubeconfig)}


# --------------------------------------------------------------------------- CLI


def _say(msg: str) -> None:
    print(f"[controlplane] {msg}", file=sys.stderr, flush=True)


def _cmd_build(args: argparse.Namespace) -> int:
    try:
        binaries = build(force=args.force, log=_say)
    except GoUnavailable as err:
        _say(f"ERROR: {err}")
        return 2
    except ControlPlaneError as err:
        _say(f"ERROR: {err}")
        return 1
    print(binaries.directory)
    return 0


def _cmd_up(args: argparse.Namespace) -> int:
    binaries = build(log=_say)
    stop = {"now": False}

    def on_signal(_sig: int, _frame: object) -> None:
        stop["now"] = True

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    with ControlPlane(binaries, keep_workdir=args.keep, log=_say) as plane:
        print(f"export KUBECONFIG={plane.kubeconfig}", flush=True)
        _say(f"server {plane.server}; logs in {plane.workdir}; Ctrl-C stops")
        while not stop["now"]:
            time.sleep(0.5)
            plane.apiserver.check_alive()  # type: ignore[union-attr]
    return 0


def _cmd_measure(args: argparse.Namespace) -> int:
    started = time.monotonic()
    binaries = build(log=_say)
    cached = time.monotonic() - started
    with ControlPlane(binaries, log=_say) as plane:
        from kubernetes import client

        plane.ensure_namespace("measure")
        with plane.api_client() as api:
            core = client.CoreV1Api(api)
            for i in range(args.pods):
                core.create_namespaced_pod(
                    "measure",
                    {
                        "apiVersion": "v1",
                        "kind": "Pod",
                        "metadata": {"name": f"p{i}"},
                        "spec": {"containers": [{"name": "c", "image": "busybox"}]},
                    },
                )
            core.list_namespaced_pod("measure")
        memory = plane.peak_rss_mib()
        report = {
            "k8s": binaries.k8s_version,
            "etcd": binaries.etcd_version,
            "build_or_cache_s": round(cached, 2),
            "start_to_ready_s": round(plane.startup_seconds, 2),
            "pods_created": args.pods,
            "peak_rss_mib": memory,
        }
    print(json.dumps(report, indent=2))
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m tests.e2e.controlplane",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    sub = parser.add_subparsers(dest="command", required=True)
    p_build = sub.add_parser("build", help="build kube-apiserver and etcd unless cached")
    p_build.add_argument("--force", action="store_true", help="rebuild even if cached")
    p_build.set_defaults(func=_cmd_build)
    p_up = sub.add_parser("up", help="run a control plane until interrupted")
    p_up.add_argument("--keep", action="store_true", help="keep the work folder (logs, certs)")
    p_up.set_defaults(func=_cmd_up)
    p_measure = sub.add_parser("measure", help="time a start and report peak memory")
    p_measure.add_argument("--pods", type=int, default=50, help="pods to store (default 50)")
    p_measure.set_defaults(func=_cmd_measure)
    args = parser.parse_args(argv)
    try:
        return int(args.func(args))
    except ControlPlaneError as err:
        _say(f"ERROR: {err}")
        return 1


if __name__ == "__main__":
    sys.exit(main())
