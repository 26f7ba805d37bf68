"""Credentials for a secure Flower deployment: throwaway ones for trials, and checks of any set before use.

What Flower 1.42 reads, and so what `generate` writes (all keys EC P-384):

    ca.pem               the CA certificate: public; every party needs it to verify the SuperLink
    superlink.pem        the SuperLink's TLS certificate (SANs: localhost, 127.0.0.1, ::1 and `hosts`)
    superlink.key        its private key (PEM, PKCS#8): SECRET, label party only
    supernode-K.key      feature party K's authentication key (OpenSSH private key): SECRET, party K only
    supernode-K.pub      its public key (OpenSSH): the label party registers it (`flwr supernode register`)

The CA's private key is never written: a throwaway CA signs this one server certificate and is discarded, so a
leaked folder cannot mint more certificates. Real deployments bring certificates from their own PKI; `check_*`
validates those too, so a wrong file fails with one line before Flower starts (Flower itself exits on some
of these mistakes with a vague message and on others only at the first TLS handshake).
"""

from __future__ import annotations

import datetime
import ipaddress
import os
import re
from collections.abc import Sequence
from pathlib import Path

from cryptography import x509
from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.types import PublicKeyTypes
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID
from cryptography.x509.verification import PolicyBuilder, Store, VerificationError

from fedsim.errors import UserError, check
from fedsim.fileio import staged_directory

CURVE = ec.SECP384R1()
LOOPBACK = ("localhost", "127.0.0.1", "::1")  # the SuperLink's own ServerApp process connects on loopback
CLOCK_SKEW = datetime.timedelta(minutes=5)
CA_FILE, SERVER_CERT_FILE, SERVER_KEY_FILE = "ca.pem", "superlink.pem", "superlink.key"
SECRET_MODE, PUBLIC_MODE = 0o600, 0o644
NIST_CURVES = (ec.SECP192R1, ec.SECP224R1, ec.SECP256R1, ec.SECP384R1, ec.SECP521R1)
LABEL = r"[A-Za-z0-9]([A-Za-z0-9-]*[A-Za-z0-9])?"
HOST_NAME = re.compile(rf"(?=.{{1,253}}$){LABEL}(\.{LABEL})*")


def node_key_file(k: int) -> str:
    return f"supernode-{k}.key"


def node_public_file(k: int) -> str:
    return f"supernode-{k}.pub"


def generate(out: Path, supernodes: int, hosts: Sequence[str] = (), days: int = 30, overwrite: bool = False,
             now: datetime.datetime | None = None) -> list[Path]:
    """Write a throwaway CA, the SuperLink's certificate and key, and `supernodes` key pairs into `out`.

    The folder appears whole or not at all (staged, then renamed). Returns the written paths.
    """
    check(supernodes >= 1, f"--supernodes must be at least 1, got {supernodes}")
    check(1 <= days <= 3650, f"--days must be between 1 and 3650, got {days}")
    names = [_subject_alt_name(h) for h in (*LOOPBACK, *hosts)]
    now = now or datetime.datetime.now(datetime.UTC)
    ca_key, server_key = ec.generate_private_key(CURVE), ec.generate_private_key(CURVE)
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "fedsim throwaway CA")])
    ca_cert = (_builder(ca_name, ca_name, ca_key.public_key(), now, days)
               .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
               .add_extension(_key_usage(cert_sign=True), critical=True)
               .add_extension(x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()), critical=False)
               .sign(ca_key, hashes.SHA384()))
    host = hosts[0] if hosts else "localhost"
    server_cert = (_builder(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, host)]), ca_name,
                            server_key.public_key(), now, days)
                   .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
                   .add_extension(_key_usage(cert_sign=False), critical=True)
                   .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
                   .add_extension(x509.SubjectAlternativeName(list(dict.fromkeys(names))), critical=False)
                   .add_extension(x509.SubjectKeyIdentifier.from_public_key(server_key.public_key()), critical=False)
                   .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()),
                                  critical=False)
                   .sign(ca_key, hashes.SHA384()))
    pem = serialization.Encoding.PEM
    files: dict[str, tuple[bytes, bool]] = {
        CA_FILE: (ca_cert.public_bytes(pem), False),
        SERVER_CERT_FILE: (server_cert.public_bytes(pem), False),
        SERVER_KEY_FILE: (server_key.private_bytes(pem, serialization.PrivateFormat.PKCS8,
                                                   serialization.NoEncryption()), True),
    }
    for k in range(supernodes):
        key = ec.generate_private_key(CURVE)
        files[node_key_file(k)] = (key.private_bytes(pem, serialization.PrivateFormat.OpenSSH,
                                                     serialization.NoEncryption()), True)
        files[node_public_file(k)] = (key.public_key().public_bytes(serialization.Encoding.OpenSSH,
                                                                    serialization.PublicFormat.OpenSSH) + b"\n", False)
    with staged_directory(out, overwrite) as staging:
        for name, (content, secret) in files.items():
            # a secret file is private from its creation on, not chmod-ed after being written
            with os.fdopen(os.open(staging / name, os.O_WRONLY | os.O_CREAT | os.O_EXCL,
                                   SECRET_MODE if secret else PUBLIC_MODE), "wb") as handle:
                handle.write(content)
    return [out / name for name in files]


def check_server_credentials(ca: Path, cert: Path, key: Path, now: datetime.datetime | None = None) -> None:
    """The SuperLink's three TLS files: readable, `cert` matching `key`, every certificate valid now, and `cert`
    (with any intermediates after it in the file) verifying against `ca` for the first name it lists."""
    now = now or datetime.datetime.now(datetime.UTC)
    roots = _load(ca, "CA certificate", x509.load_pem_x509_certificates)
    chain = _load(cert, "certificate", x509.load_pem_x509_certificates)
    private = _load(key, "private key", lambda data: serialization.load_pem_private_key(data, None))
    check(_same_key(chain[0].public_key(), private.public_key()),
          f"certificate {str(cert)!r} does not match private key {str(key)!r} (different public keys)")
    for path, certificates in ((ca, roots), (cert, chain)):
        for certificate in certificates:
            check_validity(path, certificate, now)
    try:
        names = list(chain[0].extensions.get_extension_for_class(x509.SubjectAlternativeName).value)
    except x509.ExtensionNotFound:
        raise UserError(f"certificate {str(cert)!r} lists no subject alternative names (TLS clients check the "
                        "SuperLink's name against them)") from None
    verifier = PolicyBuilder().store(Store(roots)).time(now).build_server_verifier(names[0])
    try:
        verifier.verify(chain[0], chain[1:])
    except VerificationError as exc:
        raise UserError(f"certificate {str(cert)!r} does not verify against CA {str(ca)!r}: {exc}") from None


def check_root_certificate(ca: Path, now: datetime.datetime | None = None) -> None:
    """The CA certificate a SuperNode or the `flwr` CLI verifies the SuperLink with."""
    for certificate in _load(ca, "CA certificate", x509.load_pem_x509_certificates):
        check_validity(ca, certificate, now)


def check_node_key(key: Path) -> None:
    """A SuperNode's authentication key as `flower-supernode` reads it (OpenSSH, NIST-curve EC; the SuperNode
    derives the public key it presents from it)."""
    private = _load(key, "SuperNode private key", lambda data: serialization.load_ssh_private_key(data, None))
    check(_nist_ec(private.public_key()),
          f"SuperNode private key {str(key)!r} is not an EC key on a NIST curve (P-256, P-384, P-521)")


def check_public_key(path: Path) -> None:
    """A SuperNode public key as `flwr supernode register` reads it (OpenSSH, NIST-curve EC)."""
    public = _load(path, "SuperNode public key", serialization.load_ssh_public_key)
    check(_nist_ec(public),
          f"SuperNode public key {str(path)!r} is not an EC key on a NIST curve (P-256, P-384, P-521)")


def _nist_ec(key: PublicKeyTypes) -> bool:
    """The curves Flower's SuperNode authentication accepts."""
    return isinstance(key, ec.EllipticCurvePublicKey) and isinstance(key.curve, NIST_CURVES)


def check_validity(path: Path, certificate: x509.Certificate, now: datetime.datetime | None = None) -> None:
    now = now or datetime.datetime.now(datetime.UTC)
    stamp = "%Y-%m-%d %H:%M UTC"
    check(certificate.not_valid_after_utc > now,
          f"certificate {str(path)!r} expired on {certificate.not_valid_after_utc:{stamp}}; "
          "issue a new one (fedsim deploy keys makes throwaway ones)")
    check(certificate.not_valid_before_utc <= now,
          f"certificate {str(path)!r} is not valid before {certificate.not_valid_before_utc:{stamp}}")


def _load(path: Path, what: str, parse):
    if not path.is_file():
        raise UserError(f"{what} file {str(path)!r} does not exist")
    try:
        return parse(path.read_bytes())
    except (ValueError, TypeError, UnsupportedAlgorithm):
        raise UserError(f"{what} file {str(path)!r} cannot be parsed (expected "
                        f"{'an OpenSSH' if 'SuperNode' in what else 'a PEM'} file)") from None


def _same_key(a: PublicKeyTypes, b: PublicKeyTypes) -> bool:
    spki = serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    try:
        return a.public_bytes(*spki) == b.public_bytes(*spki)
    except (ValueError, TypeError):
        return False


def _subject_alt_name(host: str) -> x509.GeneralName:
    try:
        return x509.IPAddress(ipaddress.ip_address(host.strip("[]")))
    except ValueError:
        check(HOST_NAME.fullmatch(host) is not None,
              f"--host must be a DNS name or an IP address (no port, no scheme), got {host!r}")
        return x509.DNSName(host)


def _builder(subject: x509.Name, issuer: x509.Name, public: ec.EllipticCurvePublicKey, now: datetime.datetime,
             days: int) -> x509.CertificateBuilder:
    return (x509.CertificateBuilder().subject_name(subject).issuer_name(issuer).public_key(public)
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - CLOCK_SKEW).not_valid_after(now + datetime.timedelta(days=days)))


def _key_usage(cert_sign: bool) -> x509.KeyUsage:
    """EC keys sign (TLS 1.2/1.3 ECDHE handshakes); only the CA signs certificates."""
    return x509.KeyUsage(digital_signature=True, content_commitment=False, key_encipherment=False,
                         data_encipherment=False, key_agreement=False, key_cert_sign=cert_sign, crl_sign=cert_sign,
                         encipher_only=False, decipher_only=False)
