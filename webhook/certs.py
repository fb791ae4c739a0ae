"""Certificates: a CA and a serving certificate (ECDSA P-256), made, written and checked.

The file names are those of a Kubernetes TLS Secret (`tls.crt`, `tls.key`) plus the CA
(`ca.crt`, `ca.key`), so a mounted Secret and `bulwark certs --out` look alike. The
serving certificate names every host the API server may dial: the service's short and
qualified DNS names, localhost and 127.0.0.1.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import os
import re
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from webhook.errors import CertificateError

CA_CERT, CA_KEY, TLS_CERT, TLS_KEY = "ca.crt", "ca.key", "tls.crt", "tls.key"
FILE_NAMES = (CA_CERT, CA_KEY, TLS_CERT, TLS_KEY)
# A hundred years: long past any sane rotation, well inside X.509's dates.
MAX_DAYS = 36500
# Allow for clocks that disagree a little between the webhook and the API server.
BACKDATE = dt.timedelta(minutes=5)


@dataclass(frozen=True)
class Bundle:
    """A CA and a serving certificate signed by it, PEM-encoded."""

    ca_cert: bytes
    ca_key: bytes
    tls_cert: bytes
    tls_key: bytes

    def files(self) -> dict[str, bytes]:
        return {
            CA_CERT: self.ca_cert,
            CA_KEY: self.ca_key,
            TLS_CERT: self.tls_cert,
            TLS_KEY: self.tls_key,
        }


def service_hosts(service: str, namespace: str, extra: tuple[str, ...] = ()) -> list[str]:
    """Every name the API server may use to reach `service` in `namespace`, and loopback."""
    names = [
        service,
        f"{service}.{namespace}",
        f"{service}.{namespace}.svc",
        f"{service}.{namespace}.svc.cluster.local",
        "localhost",
        "127.0.0.1",
        *extra,
    ]
    return list(dict.fromkeys(names))


# A DNS name as certificates carry it (RFC 1123 labels, a leading `*.` for a wildcard).
_DNS_NAME = re.compile(
    r"(?:\*\.)?[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?"
    r"(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*"
)


def _general_name(host: str) -> x509.GeneralName:
    try:
        return x509.IPAddress(ipaddress.ip_address(host))
    except ValueError:
        pass
    if len(host) > 253 or not _DNS_NAME.fullmatch(host):
        raise CertificateError(
            f"{host!r} is neither a DNS name (letters, digits, hyphens and dots, such as "
            "bulwark.bulwark-system.svc) nor an IP address"
        )
    return x509.DNSName(host)


def _pem_key(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )


def generate_bundle(hosts: list[str], *, days: int = 365, common_name: str = "bulwark") -> Bundle:
    """A new CA and a serving certificate for `hosts`, valid for `days` days."""
    if not 1 <= days <= MAX_DAYS:
        raise CertificateError(f"--days must be between 1 and {MAX_DAYS}, not {days}")
    if not hosts or not all(host.strip() for host in hosts):
        raise CertificateError(f"every host name must be non-empty, got {hosts!r}")
    now = dt.datetime.now(dt.UTC)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, f"{common_name}-ca")])
    ca_cert = (
        x509.CertificateBuilder()
        .subject_name(ca_name)
        .issuer_name(ca_name)
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - BACKDATE)
        .not_valid_after(now + dt.timedelta(days=days))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                key_cert_sign=True,
                crl_sign=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()), False)
        .sign(ca_key, hashes.SHA256())
    )
    key = ec.generate_private_key(ec.SECP256R1())
    cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, hosts[0][:64])]))
        .issuer_name(ca_name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - BACKDATE)
        .not_valid_after(now + dt.timedelta(days=days))
        .add_extension(x509.SubjectAlternativeName([_general_name(h) for h in hosts]), False)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                key_encipherment=False,
                key_cert_sign=False,
                crl_sign=False,
                content_commitment=False,
                data_encipherment=False,
                key_agreement=False,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), False
        )
        .sign(ca_key, hashes.SHA256())
    )
    pem = serialization.Encoding.PEM
    return Bundle(
        ca_cert.public_bytes(pem), _pem_key(ca_key), cert.public_bytes(pem), _pem_key(key)
    )


def _write_file(path: Path, content: bytes) -> Path:
    """Write beside, then rename: a server polling the folder never reads half a file.

    The temporary file is made afresh (O_EXCL) with its final mode, so a key is never
    readable by others, not even for a moment.
    """
    mode = 0o600 if path.name.endswith(".key") else 0o644
    temporary = path.with_name(f".{path.name}.tmp")
    temporary.unlink(missing_ok=True)  # left by an interrupted run
    descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode)
    with os.fdopen(descriptor, "wb") as handle:
        handle.write(content)
    os.chmod(temporary, mode)  # the umask may have taken bits the mode asks for
    os.replace(temporary, path)
    return path


def write_bundle(bundle: Bundle, out_dir: str | Path, *, force: bool = False) -> list[Path]:
    """Write the four files; keys are readable by their owner only.

    Existing files are kept unless `force`: overwriting a CA silently would break every
    webhook configuration whose caBundle still names the old one.
    """
    folder = Path(out_dir)
    existing = [folder / name for name in FILE_NAMES if (folder / name).exists()]
    if existing and not force:
        names = ", ".join(str(path) for path in existing)
        raise CertificateError(f"{names} already exist; pass --force to replace them")
    try:
        folder.mkdir(parents=True, exist_ok=True)
        written = [_write_file(folder / name, content) for name, content in bundle.files().items()]
    except OSError as error:
        raise CertificateError(f"cannot write certificates to {folder}: {error.strerror}") from None
    return written


@dataclass(frozen=True)
class ServedCertificate:
    """What a log line and /readyz need to know about the certificate being served."""

    serial: str
    not_after: dt.datetime
    subject: str

    def expired(self, now: dt.datetime | None = None) -> bool:
        return (now or dt.datetime.now(dt.UTC)) >= self.not_after


def inspect_pair(cert_pem: bytes, key_pem: bytes) -> ServedCertificate:
    """Check that the key matches the certificate and that it is in date; describe it."""
    try:
        cert = x509.load_pem_x509_certificate(cert_pem)
    except ValueError as error:
        raise CertificateError(f"not a PEM certificate: {error}") from None
    try:
        key = serialization.load_pem_private_key(key_pem, password=None)
    except (ValueError, TypeError, UnsupportedAlgorithm) as error:
        # TypeError: the key is encrypted; a server started unattended has no passphrase.
        raise CertificateError(f"not a usable unencrypted PEM key: {error}") from None
    public = serialization.PublicFormat.SubjectPublicKeyInfo
    if key.public_key().public_bytes(
        serialization.Encoding.PEM, public
    ) != cert.public_key().public_bytes(serialization.Encoding.PEM, public):
        raise CertificateError("the key does not belong to the certificate")
    served = ServedCertificate(
        serial=format(cert.serial_number, "x"),
        not_after=cert.not_valid_after_utc,
        subject=cert.subject.rfc4514_string(),
    )
    if served.expired():
        raise CertificateError(f"the certificate expired at {served.not_after.isoformat()}")
    if cert.not_valid_before_utc > dt.datetime.now(dt.UTC):
        raise CertificateError(f"the certificate is not valid before {cert.not_valid_before_utc}")
    return served


def ensure_serving_pair(cert_dir: str | Path, hosts: list[str]) -> bool:
    """Make a self-signed CA and serving pair in `cert_dir` when it has none. True if made."""
    folder = Path(cert_dir)
    present = [name for name in FILE_NAMES if (folder / name).exists()]
    if TLS_CERT in present and TLS_KEY in present:
        return False
    if present:
        missing = TLS_KEY if TLS_CERT in present else TLS_CERT
        raise CertificateError(
            f"{folder} holds {', '.join(present)} but no {missing}; add it, "
            "or empty the folder to have a self-signed pair made"
        )
    write_bundle(generate_bundle(hosts), folder)
    return True
