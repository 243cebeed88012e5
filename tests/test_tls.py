"""TLS as configured on a task: required / verify CA against a MariaDB server that demands TLS."""

from __future__ import annotations

import datetime as dt
import ipaddress
import os
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
from conftest import REPL_PASSWORD, REPL_USER, MariaDBServer, ServerPair
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import NameOID

from engine.connect import connect, server_info
from engine.errors import ConnectError, TlsError
from engine.spec import Endpoint, Secret


def _key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


def _write_key(key: rsa.RSAPrivateKey, path: Path) -> None:
    path.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.TraditionalOpenSSL, serialization.NoEncryption()))


def make_ca_and_server_cert(directory: Path, ca_name: str = "DRS test CA") -> tuple[Path, Path, Path]:
    now = dt.datetime.now(dt.UTC)
    ca_key = _key()
    ca_subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, ca_name)])
    ca_cert = (
        x509.CertificateBuilder().subject_name(ca_subject).issuer_name(ca_subject).public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number()).not_valid_before(now - dt.timedelta(days=1))
        .not_valid_after(now + dt.timedelta(days=30)).add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(ca_key, hashes.SHA256())
    )  # fmt: skip
    server_key = _key()
    server_cert = (
        x509.CertificateBuilder().subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")]))
        .issuer_name(ca_subject).public_key(server_key.public_key()).serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(days=1)).not_valid_after(now + dt.timedelta(days=30))
        .add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), critical=False)
        .sign(ca_key, hashes.SHA256())
    )  # fmt: skip
    directory.mkdir(parents=True, exist_ok=True)
    ca_path, cert_path, key_path = directory / "ca.pem", directory / "server-cert.pem", directory / "server-key.pem"
    ca_path.write_bytes(ca_cert.public_bytes(serialization.Encoding.PEM))
    cert_path.write_bytes(server_cert.public_bytes(serialization.Encoding.PEM))
    _write_key(server_key, key_path)
    return ca_path, cert_path, key_path


@pytest.fixture(scope="module")
def tls_server(servers: ServerPair) -> Iterator[tuple[MariaDBServer, Path, Path]]:
    certs = servers.base / "tls-certs"
    ca, cert, key = make_ca_and_server_cert(certs)
    other_ca, _, _ = make_ca_and_server_cert(servers.base / "other-ca", "Some other CA")
    if os.geteuid() == 0:
        for p in (certs, *certs.iterdir()):
            shutil.chown(p, "mysql", "mysql")
    server = MariaDBServer("tls", server_id=505)
    server.start(servers.base, extra_args=[f"--ssl-ca={ca}", f"--ssl-cert={cert}", f"--ssl-key={key}", "--require-secure-transport=ON"])
    try:
        yield server, ca, other_ca
    finally:
        server.stop()
        shutil.rmtree(server.datadir, ignore_errors=True)


def endpoint(server: MariaDBServer, tls: str, ca: Path | None = None) -> Endpoint:
    return Endpoint("127.0.0.1", server.port, REPL_USER, Secret(REPL_PASSWORD), tls=tls, ca_file=str(ca) if ca else None)


def test_tls_required_and_verify_ca_connect_encrypted(tls_server):
    server, ca, _ = tls_server
    for ep in (endpoint(server, "required"), endpoint(server, "verify_ca", ca)):
        conn = connect(ep)
        with conn.cursor() as cur:
            cur.execute("SHOW SESSION STATUS LIKE 'Ssl_cipher'")
            assert cur.fetchone()[1], "the session is not encrypted"
        assert server_info(conn).is_mariadb
        conn.close()


def test_tls_off_against_a_server_requiring_it_says_why(tls_server):
    server, _, _ = tls_server
    with pytest.raises(ConnectError) as err:
        connect(endpoint(server, "off"))
    assert REPL_PASSWORD not in str(err.value)
    # MariaDB answers "access denied" to an unencrypted login it refuses; the message says what to try
    assert "access denied" in str(err.value) and "TLS" in str(err.value)


def test_verify_ca_with_the_wrong_ca_is_a_tls_error(tls_server):
    server, _, other_ca = tls_server
    with pytest.raises(TlsError) as err:
        connect(endpoint(server, "verify_ca", other_ca))
    assert "TLS" in str(err.value)
