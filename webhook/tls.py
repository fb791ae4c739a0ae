"""The TLS edge: a server-side SSLContext, and reloading its certificate without a restart.

Only TLS 1.2 and 1.3 are offered, with forward-secret AEAD ciphers for 1.2 (1.3's suites
are all modern). A mounted Secret changes by an atomic symlink swap, which file-event
watchers miss, so the reloader polls the files' content instead. Loading a new pair into
the live SSLContext changes what new handshakes see while open connections finish on the
old one.
"""

from __future__ import annotations

import asyncio
import hashlib
import ssl
from collections.abc import Callable
from pathlib import Path

from webhook import logs
from webhook.certs import TLS_CERT, TLS_KEY, ServedCertificate, inspect_pair
from webhook.errors import CertificateError

TLS12_CIPHERS = ":".join(
    (
        "ECDHE-ECDSA-AES128-GCM-SHA256",
        "ECDHE-RSA-AES128-GCM-SHA256",
        "ECDHE-ECDSA-AES256-GCM-SHA384",
        "ECDHE-RSA-AES256-GCM-SHA384",
        "ECDHE-ECDSA-CHACHA20-POLY1305",
        "ECDHE-RSA-CHACHA20-POLY1305",
    )
)

log = logs.get_logger("bulwark.tls")


def server_context() -> ssl.SSLContext:
    """A server SSLContext that speaks TLS 1.2 and 1.3 only, with no certificate yet."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    context.maximum_version = ssl.TLSVersion.TLSv1_3
    context.set_ciphers(TLS12_CIPHERS)
    context.options |= ssl.OP_NO_COMPRESSION | ssl.OP_CIPHER_SERVER_PREFERENCE
    return context


class CertificateReloader:
    """Keeps an SSLContext serving the pair in `cert_dir`, polling for new content."""

    def __init__(self, context: ssl.SSLContext, cert_dir: str | Path, *, interval: float = 5.0):
        self.context = context
        self.folder = Path(cert_dir)
        self.interval = interval
        self.served: ServedCertificate | None = None
        self._fingerprint = b""

    @property
    def cert_path(self) -> Path:
        return self.folder / TLS_CERT

    @property
    def key_path(self) -> Path:
        return self.folder / TLS_KEY

    def _read(self) -> tuple[bytes, bytes, bytes]:
        cert, key = self.cert_path.read_bytes(), self.key_path.read_bytes()
        return cert, key, hashlib.sha256(cert + b"\0" + key).digest()

    def load(self) -> ServedCertificate:
        """Load the pair now; raise CertificateError if it is unusable."""
        try:
            cert, key, fingerprint = self._read()
        except OSError as error:
            raise CertificateError(f"cannot read {self.folder}: {error}") from None
        served = inspect_pair(cert, key)
        try:
            self.context.load_cert_chain(self.cert_path, self.key_path)
        except (ssl.SSLError, OSError) as error:
            raise CertificateError(f"cannot load {self.cert_path}: {error}") from None
        self.served, self._fingerprint = served, fingerprint
        log.info(
            "certificate_loaded",
            path=str(self.cert_path),
            serial=served.serial,
            not_after=served.not_after.isoformat(),
            subject=served.subject,
        )
        return served

    def check(self) -> bool:
        """Reload when the files' content changed. True if a new pair is now served.

        A pair that does not match, is half-written or has expired is refused and the
        old one kept, so a bad rotation never takes the webhook down.
        """
        try:
            *_, fingerprint = self._read()
        except OSError as error:
            log.warning("certificate_unreadable", path=str(self.folder), error=str(error))
            return False
        if fingerprint == self._fingerprint:
            return False
        try:
            self.load()
        except CertificateError as error:
            self._fingerprint = fingerprint  # do not retry (and re-log) until it changes again
            log.error("certificate_refused", path=str(self.cert_path), error=str(error))
            return False
        return True

    def healthy(self) -> bool:
        return self.served is not None and not self.served.expired()

    async def watch(self, stop: Callable[[], bool]) -> None:
        while not stop():
            await asyncio.sleep(self.interval)
            self.check()
