"""SMTP over STARTTLS and implicit TLS with a login, against a real server that insists on both."""

from __future__ import annotations

import datetime as dt
import email
import email.policy
import ipaddress
import socket
import subprocess
import sys
from email.message import EmailMessage

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from services.notifications.settings import SettingsError, SmtpSettings
from services.notifications.smtp import ConnectionProblem, SmtpConnection
from shared.testing import free_port, wait_for

pytestmark = pytest.mark.integration
PASSWORD = "s3cret: with #odd chars"


@pytest.fixture(scope="module")
def certificate(tmp_path_factory):
    """A self-signed certificate for 127.0.0.1 and localhost; its file is the CA to trust."""
    directory = tmp_path_factory.mktemp("tls")
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")])
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName(
                [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]
            ),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_path = directory / "cert.pem"
    key_path = directory / "key.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return cert_path, key_path


@pytest.fixture(scope="module")
def servers(certificate, tmp_path_factory):
    """Both servers: mode -> (port, directory of saved messages)."""
    cert, key = certificate
    procs, out = [], {}
    for mode in ("starttls", "tls"):
        port = free_port()
        directory = tmp_path_factory.mktemp(f"mail-{mode}")
        argv = [sys.executable, "-m", "tests.notifications.tls_smtp", "--port", str(port)]
        argv += ["--dir", str(directory), "--cert", str(cert), "--key", str(key)]
        argv += ["--mode", mode, "--user", "portal", "--password", PASSWORD]
        procs.append(subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
        wait_for(lambda p=port: _listening(p), timeout=15, what=f"the {mode} SMTP server")
        out[mode] = (port, directory)
    yield out
    for proc in procs:
        proc.terminate()
        proc.wait(10)


def _listening(port: int) -> bool:
    with socket.socket() as sock:
        return sock.connect_ex(("127.0.0.1", port)) == 0


def settings(mode, port, cert, **extra):
    config = {
        "SMTP_HOST": "127.0.0.1",
        "SMTP_PORT": port,
        "SMTP_SECURITY": mode,
        "SMTP_USER": "portal",
        "SMTP_PASSWORD": PASSWORD,
        "SMTP_CA_FILE": str(cert),
        "SMTP_TIMEOUT": 5,
        **extra,
    }
    return SmtpSettings.from_config(config)


def a_message(subject: str) -> EmailMessage:
    msg = EmailMessage()
    msg["From"], msg["To"], msg["Subject"] = "city@example.org", "ana@example.org", subject
    msg.set_content("hello over TLS")
    return msg


@pytest.mark.parametrize("mode", ["starttls", "tls"])
def test_sends_over_tls_after_logging_in(servers, certificate, mode):
    port, directory = servers[mode]
    with SmtpConnection(settings(mode, port, certificate[0])) as session:
        outcome = session.send(a_message(f"over {mode}"), "city@example.org", "ana@example.org")
    assert outcome.ok
    saved = [
        email.message_from_bytes(p.read_bytes(), policy=email.policy.default)
        for p in directory.glob("*.eml")
    ]
    assert f"over {mode}" in [m["Subject"] for m in saved]


@pytest.mark.parametrize("mode", ["starttls", "tls"])
def test_a_wrong_password_is_a_connection_problem_that_names_the_settings(
    servers, certificate, mode
):
    port, _ = servers[mode]
    with pytest.raises(ConnectionProblem) as caught:
        SmtpConnection(settings(mode, port, certificate[0], SMTP_PASSWORD="wrong")).open()
    assert "SMTP_USER and SMTP_PASSWORD" in str(caught.value)
    assert "wrong" not in str(caught.value)


@pytest.mark.parametrize("mode", ["starttls", "tls"])
def test_an_untrusted_certificate_is_refused(servers, mode):
    port, _ = servers[mode]
    with pytest.raises(ConnectionProblem) as caught:
        SmtpConnection(settings(mode, port, "")).open()  # system CAs: ours is not among them
    assert "TLS" in str(caught.value) or "certificate" in str(caught.value).lower()


def test_a_server_that_requires_starttls_refuses_a_plain_session(servers, certificate):
    port, _ = servers["starttls"]
    with pytest.raises(ConnectionProblem):
        SmtpConnection(settings("none", port, certificate[0])).open()


def test_credentials_are_never_sent_in_clear_to_another_host():
    with pytest.raises(SettingsError) as caught:
        SmtpSettings.from_config(
            {"SMTP_HOST": "smtp.example.org", "SMTP_SECURITY": "none", "SMTP_USER": "portal"}
        )
    assert "starttls or tls" in str(caught.value)
    assert SmtpSettings.from_config({"SMTP_HOST": "smtp.example.org"}).security == "starttls"
    assert SmtpSettings.from_config({"SMTP_HOST": "smtp.example.org"}).port == 587
