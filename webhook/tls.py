"""The TLS edge: a server-side SSLContext, and replacing its certificate without a restart.

Only TLS 1.2 and 1.3 are offered, with forward-secret AEAD ciphers for 1.2 (1.3's suites
are all modern). A mounted Secret changes by an atomic symlink swap, which file-event
watchers miss, so the reloader polls the files' content instead.

A new pair is never loaded into the context the server listens with: OpenSSL replaces
a context's certificate before it checks the key, so a failed load would leave the live
context with a certificate and no usable key. Each pair gets a context of its own
instead, and the listening context's SNI callback (which OpenSSL runs on every
ClientHello, with or without a server name) hands each new handshake the newest good
one. Open connections finish on the pair they started with.
"""

from __future__ import annotations

import asyncio
import hashlib
import ssl
import time
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
# How often a startup load re-reads files that change while it reads them.
SETTLE_ATTEMPTS, SETTLE_PAUSE = 5, 0.2

log = logs.get_logger("bulwark.tls")


def server_context() -> ssl.SSLContext:
    """A server SSLContext that speaks TLS 1.2 and 1.3 only, with no certificate yet."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    context.maximum_version = ssl.TLSVersion.TLSv1_3
    context.set_ciphers(TLS12_CIPHERS)
    context.options |= ssl.OP_NO_COMPRESSION | ssl.OP_CIPHER_SERVER_PREFERENCE
    return context


class _Unsettled(Exception):
    """The files changed while they were read (a rotation in progress); read them later."""


class CertificateReloader:
    """Keeps `context` serving the newest good pair in `cert_dir`, polling for new content.

    `context` is the one the server listens with; it gets an SNI callback and no
    certificate of its own. `context_factory` makes the per-pair contexts and must make
    them like `context` (the default makes both with `server_context`).
    """

    def __init__(
        self,
        context: ssl.SSLContext,
        cert_dir: str | Path,
        *,
        interval: float = 5.0,
        context_factory: Callable[[], ssl.SSLContext] = server_context,
    ) -> None:
        self.context = context
        self.folder = Path(cert_dir)
        self.interval = interval
        self.served: ServedCertificate | None = None
        self._factory = context_factory
        self._current: ssl.SSLContext | None = None
        self._fingerprint = b""
        self._unreadable = ""  # why the files could not be read at the last poll, if so
        context.sni_callback = self._select

    @property
    def cert_path(self) -> Path:
        return self.folder / TLS_CERT

    @property
    def key_path(self) -> Path:
        return self.folder / TLS_KEY

    def _select(
        self, connection: ssl.SSLObject, server_name: str, listener: ssl.SSLContext
    ) -> None:
        # Runs inside OpenSSL's ClientHello processing: keep it to an attribute swap.
        current = self._current
        if current is not None and current is not connection.context:
            connection.context = current

    def _read(self) -> tuple[bytes, bytes, bytes]:
        cert, key = self.cert_path.read_bytes(), self.key_path.read_bytes()
        return cert, key, hashlib.sha256(cert + b"\0" + key).digest()

    def _settled(self, fingerprint: bytes) -> bool:
        try:
            return self._read()[2] == fingerprint
        except OSError:
            return False

    def _load_once(self) -> ServedCertificate:
        """Check and load the pair; _Unsettled if the files changed meanwhile."""
        try:
            cert, key, fingerprint = self._read()
        except OSError as error:
            raise CertificateError(f"cannot read {self.folder}: {error.strerror}") from None
        fresh = self._factory()
        try:
            served = inspect_pair(cert, key)
            # NB: this reads the files a second time; the fingerprint check below makes
            # sure it read what inspect_pair judged.
            fresh.load_cert_chain(self.cert_path, self.key_path)
        except (CertificateError, ssl.SSLError, OSError) as error:
            if not self._settled(fingerprint):
                raise _Unsettled from None
            raise CertificateError(f"{self.cert_path}: {error}") from None
        if not self._settled(fingerprint):
            raise _Unsettled

        self._current, self.served, self._fingerprint = fresh, served, fingerprint
        log.info(
            "certificate_loaded",
            path=str(self.cert_path),
            serial=served.serial,
            not_after=served.not_after.isoformat(),
            subject=served.subject,
        )
        return served

    def load(self) -> ServedCertificate:
        """Load the pair now (at startup); raise CertificateError if it is unusable."""
        for _ in range(SETTLE_ATTEMPTS):
            try:
                return self._load_once()
            except _Unsettled:
                time.sleep(SETTLE_PAUSE)
        raise CertificateError(f"the files in {self.folder} kept changing while being read")

    def check(self) -> bool:
        """Reload when the files' content changed. True if a new pair is now served.

        A pair that does not match, cannot be parsed or has expired is refused and the
        old one kept, so a bad rotation never takes the webhook down. Files caught in
        the middle of a change are read again at the next poll.
        """
        try:
            *_, fingerprint = self._read()
        except OSError as error:
            if str(error) != self._unreadable:  # once, not at every poll while it lasts
                log.warning("certificate_unreadable", path=str(self.folder), error=str(error))
                self._unreadable = str(error)
            return False
        if self._unreadable:
            log.info("certificate_readable", path=str(self.folder))
            self._unreadable = ""
        if fingerprint == self._fingerprint:
            return False
        try:
            self._load_once()
        except _Unsettled:
            log.debug("certificate_changing", path=str(self.folder))
            return False
        except CertificateError as error:
            self._fingerprint = fingerprint  # do not retry (and re-log) until it changes again
            log.error("certificate_refused", path=str(self.cert_path), error=str(error))
            return False
        return True

    def healthy(self) -> bool:
        """True while a pair is served and has not expired (read by /readyz)."""
        return self.served is not None and not self.served.expired()

    async def watch(self, stop: Callable[[], bool]) -> None:
        """Poll every `interval` seconds until `stop()` is true."""
        while not stop():
            await asyncio.sleep(self.interval)
            try:
                self.check()
            except Exception as error:  # a dead watcher would silently end rotation
                log.error("certificate_check_failed", path=str(self.folder), exc_info=error)
