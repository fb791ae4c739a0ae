"""`bulwark certs` and the certificate checks: what the API server and the server rely on."""

from __future__ import annotations

import datetime as dt
import ipaddress
import os
import stat
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID
from cryptography.x509.verification import PolicyBuilder, Store, VerificationError

from webhook.certs import (
    FILE_NAMES,
    ensure_serving_pair,
    generate_bundle,
    inspect_pair,
    service_hosts,
    write_bundle,
)
from webhook.cli import main
from webhook.errors import CertificateError


def bulwark(*args: str) -> list[str]:
    script = Path(sys.executable).with_name("bulwark")
    return [str(script), *args] if script.exists() else [sys.executable, "-m", "webhook", *args]


def load(folder: Path, name: str) -> x509.Certificate:
    return x509.load_pem_x509_certificate((folder / name).read_bytes())


def private_key(folder: Path, name: str) -> ec.EllipticCurvePrivateKey:
    key = serialization.load_pem_private_key((folder / name).read_bytes(), password=None)
    assert isinstance(key, ec.EllipticCurvePrivateKey)
    return key


@pytest.fixture(scope="module")
def made(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A folder filled by the real `bulwark certs` command, with two extra hosts."""
    out = tmp_path_factory.mktemp("certs") / "out"
    command = bulwark(
        "certs", "--out", str(out), "--service", "guard", "--namespace", "sec",
        "--days", "30", "--host", "guard.example.com", "--host", "::1",
    )  # fmt: skip
    result = subprocess.run(command, capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == [str(out / name) for name in FILE_NAMES]
    return out


@pytest.mark.parametrize(
    "name",
    [
        pytest.param(x509.DNSName("guard"), id="service"),
        pytest.param(x509.DNSName("guard.sec"), id="service.namespace"),
        pytest.param(x509.DNSName("guard.sec.svc"), id="service.namespace.svc"),
        pytest.param(x509.DNSName("guard.sec.svc.cluster.local"), id="cluster-local"),
        pytest.param(x509.DNSName("localhost"), id="localhost"),
        pytest.param(x509.IPAddress(ipaddress.ip_address("127.0.0.1")), id="loopback-ip"),
        pytest.param(x509.DNSName("guard.example.com"), id="extra-host"),
        pytest.param(x509.IPAddress(ipaddress.ip_address("::1")), id="extra-ip"),
    ],
)
def test_serving_certificate_names_every_host_the_api_server_may_dial(
    made: Path, name: x509.GeneralName
) -> None:
    """The SANs cover the service's DNS names, loopback, and every --host given."""
    sans = load(made, "tls.crt").extensions.get_extension_for_class(x509.SubjectAlternativeName)
    assert name in sans.value


def test_serving_certificate_has_no_other_names(made: Path) -> None:
    """Nothing but the asked-for names is in the SANs (IPs as IP entries, not DNS)."""
    sans = load(made, "tls.crt").extensions.get_extension_for_class(x509.SubjectAlternativeName)
    assert len(sans.value) == 8
    assert "127.0.0.1" not in sans.value.get_values_for_type(x509.DNSName)


@pytest.mark.parametrize(
    ("cert_name", "key_name"),
    [pytest.param("ca.crt", "ca.key", id="ca"), pytest.param("tls.crt", "tls.key", id="serving")],
)
def test_keys_are_ecdsa_p256_and_belong_to_their_certificates(
    made: Path, cert_name: str, key_name: str
) -> None:
    """Both keys are ECDSA on P-256, and each is the key of its certificate."""
    key = private_key(made, key_name)
    assert isinstance(key.curve, ec.SECP256R1)
    assert load(made, cert_name).public_key() == key.public_key()


def test_serving_certificate_is_for_server_auth_only(made: Path) -> None:
    """The leaf is no CA, signs (ECDHE) and carries the server-auth extended key usage."""
    extensions = load(made, "tls.crt").extensions
    assert extensions.get_extension_for_class(x509.BasicConstraints).value.ca is False
    usage = extensions.get_extension_for_class(x509.KeyUsage).value
    assert usage.digital_signature
    assert not usage.key_cert_sign
    eku = extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    assert list(eku) == [ExtendedKeyUsageOID.SERVER_AUTH]


def test_ca_can_sign_certificates_but_no_further_cas(made: Path) -> None:
    """The CA is a CA with path length 0 and may sign certificates."""
    extensions = load(made, "ca.crt").extensions
    constraints = extensions.get_extension_for_class(x509.BasicConstraints).value
    assert constraints.ca is True
    assert constraints.path_length == 0
    assert extensions.get_extension_for_class(x509.KeyUsage).value.key_cert_sign


@pytest.mark.parametrize(
    "subject",
    [
        pytest.param(x509.DNSName("guard.sec.svc"), id="service-dns"),
        pytest.param(x509.IPAddress(ipaddress.ip_address("127.0.0.1")), id="loopback-ip"),
    ],
)
def test_serving_certificate_verifies_against_ca_crt(made: Path, subject: x509.DNSName) -> None:
    """A client trusting only ca.crt accepts the serving certificate for the service name."""
    ca, leaf = load(made, "ca.crt"), load(made, "tls.crt")
    assert leaf.issuer == ca.subject
    verifier = PolicyBuilder().store(Store([ca])).build_server_verifier(subject)
    chain = verifier.verify(leaf, [])
    assert chain[-1] == ca


def test_serving_certificate_from_another_ca_does_not_verify(tmp_path: Path, made: Path) -> None:
    """The chain check is real: another run's CA does not vouch for this certificate."""
    write_bundle(generate_bundle(["other"]), tmp_path)
    verifier = PolicyBuilder().store(Store([load(tmp_path, "ca.crt")]))
    with pytest.raises(VerificationError):
        verifier.build_server_verifier(x509.DNSName("guard")).verify(load(made, "tls.crt"), [])


def test_days_sets_the_validity_of_both_certificates(made: Path) -> None:
    """--days 30 makes both certificates expire in 30 days (backdated a few minutes)."""
    for name in ("ca.crt", "tls.crt"):
        cert = load(made, name)
        assert cert.not_valid_after_utc - cert.not_valid_before_utc == dt.timedelta(
            days=30, minutes=5
        )
        assert cert.not_valid_before_utc <= dt.datetime.now(dt.UTC)


@pytest.mark.parametrize(
    ("name", "mode"),
    [
        pytest.param("ca.key", 0o600, id="ca-key"),
        pytest.param("tls.key", 0o600, id="serving-key"),
        pytest.param("ca.crt", 0o644, id="ca-cert"),
        pytest.param("tls.crt", 0o644, id="serving-cert"),
    ],
)
def test_keys_are_readable_by_their_owner_only(made: Path, name: str, mode: int) -> None:
    """Keys are 0600; certificates are public and 0644."""
    assert stat.S_IMODE((made / name).stat().st_mode) == mode


def test_existing_files_are_kept_and_named_without_force(tmp_path: Path) -> None:
    """A second run exits 2 naming every file it would overwrite, and changes none."""
    out = tmp_path / "out"
    subprocess.run(bulwark("certs", "--out", str(out)), check=True, capture_output=True)
    before = {name: (out / name).read_bytes() for name in FILE_NAMES}

    result = subprocess.run(
        bulwark("certs", "--out", str(out)), capture_output=True, text=True, check=False
    )

    assert result.returncode == 2
    assert result.stderr.startswith("bulwark certs: error:")
    assert "--force" in result.stderr
    for name in FILE_NAMES:
        assert str(out / name) in result.stderr
    assert {name: (out / name).read_bytes() for name in FILE_NAMES} == before


def test_a_single_existing_file_is_enough_to_refuse(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Even one file of the four (say a CA key) is kept, and named alone."""
    (tmp_path / "ca.key").write_text("precious")
    assert main(["certs", "--out", str(tmp_path)]) == 2
    error = capsys.readouterr().err
    assert str(tmp_path / "ca.key") in error
    assert str(tmp_path / "tls.key") not in error
    assert (tmp_path / "ca.key").read_text() == "precious"
    assert not (tmp_path / "tls.crt").exists()


def test_force_replaces_every_file_and_keeps_keys_private(tmp_path: Path) -> None:
    """--force writes a new CA and pair over the old one; keys stay 0600."""
    main(["certs", "--out", str(tmp_path)])
    os.chmod(tmp_path / "tls.key", 0o644)
    before = {name: (tmp_path / name).read_bytes() for name in FILE_NAMES}

    assert main(["certs", "--out", str(tmp_path), "--force"]) == 0

    for name in FILE_NAMES:
        assert (tmp_path / name).read_bytes() != before[name]
    assert stat.S_IMODE((tmp_path / "tls.key").stat().st_mode) == 0o600
    assert sorted(path.name for path in tmp_path.iterdir()) == sorted(FILE_NAMES)


def test_keys_are_private_whatever_the_umask_and_leftovers(tmp_path: Path) -> None:
    """A permissive umask and a world-readable leftover temporary file leak no key."""
    stale = tmp_path / ".tls.key.tmp"
    stale.write_text("left by a crash")
    os.chmod(stale, 0o666)
    previous = os.umask(0)
    try:
        write_bundle(generate_bundle(["bulwark"]), tmp_path)
    finally:
        os.umask(previous)
    assert stat.S_IMODE((tmp_path / "tls.key").stat().st_mode) == 0o600
    assert not stale.exists()


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        pytest.param(["--days", "0"], "--days must be between 1 and 36500", id="zero-days"),
        pytest.param(["--days", "99999999"], "--days must be between 1 and", id="absurd-days"),
        pytest.param(["--host", ""], "host name must be non-empty", id="empty-host"),
        pytest.param(["--host", "not a host!"], "is neither a DNS name", id="spaces-in-host"),
        pytest.param(["--host", "a..b"], "is neither a DNS name", id="empty-label"),
        pytest.param(["--host=-a.example"], "is neither a DNS name", id="leading-hyphen"),
        pytest.param(["--host", "x" * 64 + ".example"], "is neither", id="label-too-long"),
    ],
)
def test_bad_arguments_exit_2_with_a_message(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], argv: list[str], message: str
) -> None:
    """Nonsense arguments are refused before anything is written."""
    assert main(["certs", "--out", str(tmp_path / "out"), *argv]) == 2
    assert message in capsys.readouterr().err
    assert not (tmp_path / "out").exists()


def test_unwritable_folder_exits_2_naming_it(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A --out that is a file is reported, not a traceback."""
    (tmp_path / "file").write_text("")
    assert main(["certs", "--out", str(tmp_path / "file")]) == 2
    assert f"cannot write certificates to {tmp_path / 'file'}" in capsys.readouterr().err


def test_service_hosts_lists_names_once_in_order() -> None:
    """Duplicates among the extras are dropped; the service's names come first."""
    assert service_hosts("b", "ns", ("localhost", "b.example")) == [
        "b", "b.ns", "b.ns.svc", "b.ns.svc.cluster.local", "localhost", "127.0.0.1", "b.example",
    ]  # fmt: skip


def _pair(
    *, not_before: dt.timedelta, not_after: dt.timedelta, password: bytes | None = None
) -> tuple[bytes, bytes]:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "t")])
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now + not_before)
        .not_valid_after(now + not_after)
        .sign(key, hashes.SHA256())
    )
    encryption = (
        serialization.BestAvailableEncryption(password)
        if password
        else serialization.NoEncryption()
    )
    key_pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, encryption
    )
    return cert.public_bytes(serialization.Encoding.PEM), key_pem


HOUR = dt.timedelta(hours=1)
Pair = tuple[bytes, bytes]


def _good() -> Pair:
    return _pair(not_before=-HOUR, not_after=HOUR)


def _mismatched() -> Pair:
    return _good()[0], _good()[1]


def _expired() -> Pair:
    return _pair(not_before=-2 * HOUR, not_after=-HOUR)


def _future() -> Pair:
    return _pair(not_before=HOUR, not_after=2 * HOUR)


def _encrypted_key() -> Pair:
    return _pair(not_before=-HOUR, not_after=HOUR, password=b"secret")


def _junk_cert() -> Pair:
    return b"junk", _good()[1]


def _junk_key() -> Pair:
    return _good()[0], b"junk"


@pytest.mark.parametrize(
    ("make", "message"),
    [
        pytest.param(_mismatched, "the key does not belong", id="key-of-another-cert"),
        pytest.param(_expired, "expired", id="expired"),
        pytest.param(_future, "not valid before", id="not-yet-valid"),
        pytest.param(_encrypted_key, "unencrypted", id="encrypted-key"),
        pytest.param(_junk_cert, "not a PEM certificate", id="junk-cert"),
        pytest.param(_junk_key, "PEM key", id="junk-key"),
    ],
)
def test_unusable_pair_is_refused_with_the_reason(make: Callable[[], Pair], message: str) -> None:
    """inspect_pair refuses what a TLS server could not or should not serve, saying why."""
    cert, key = make()
    with pytest.raises(CertificateError, match=message):
        inspect_pair(cert, key)


def test_usable_pair_is_described_by_serial_and_expiry() -> None:
    """A good pair yields the serial (hex) and expiry that logs and /readyz use."""
    cert_pem, key_pem = _good()
    served = inspect_pair(cert_pem, key_pem)
    cert = x509.load_pem_x509_certificate(cert_pem)
    assert served.serial == format(cert.serial_number, "x")
    assert served.not_after == cert.not_valid_after_utc
    assert not served.expired()
    assert served.expired(cert.not_valid_after_utc)


def test_empty_folder_gets_a_self_signed_pair_once(tmp_path: Path) -> None:
    """`serve` on an empty folder makes a pair, and leaves it alone the next time."""
    assert ensure_serving_pair(tmp_path, ["bulwark"]) is True
    first = (tmp_path / "tls.crt").read_bytes()
    assert ensure_serving_pair(tmp_path, ["bulwark"]) is False
    assert (tmp_path / "tls.crt").read_bytes() == first


def test_half_a_pair_is_an_error_not_a_new_pair(tmp_path: Path) -> None:
    """A folder with tls.crt but no tls.key is reported rather than overwritten."""
    (tmp_path / "tls.crt").write_text("mounted")
    with pytest.raises(CertificateError, match=r"no tls\.key"):
        ensure_serving_pair(tmp_path, ["bulwark"])
    assert (tmp_path / "tls.crt").read_text() == "mounted"
