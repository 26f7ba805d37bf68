"""Throwaway deployment credentials (`fedsim.deploy.credentials`) and the checks run on any set before Flower."""

from __future__ import annotations

import datetime
import ssl
import stat
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID
from flwr.cli.supernode.register import try_load_public_key

from fedsim.cli.app import load_command, main
from fedsim.deploy.credentials import (
    CA_FILE,
    SERVER_CERT_FILE,
    SERVER_KEY_FILE,
    check_node_key,
    check_public_key,
    check_root_certificate,
    check_server_credentials,
    generate,
    node_key_file,
    node_public_file,
)
from fedsim.errors import UserError


@pytest.fixture(scope="module")
def creds(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("deploy") / "creds"
    generate(out, supernodes=2, hosts=["superlink.example.org", "10.1.2.3"])
    return out


def handshake(folder: Path, server_name: str) -> None:
    """A TLS handshake in memory: the server presents superlink.pem, the client verifies it against ca.pem."""
    server = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    server.load_cert_chain(folder / SERVER_CERT_FILE, folder / SERVER_KEY_FILE)
    client = ssl.create_default_context(cafile=str(folder / CA_FILE))
    buffers = [ssl.MemoryBIO() for _ in range(4)]  # client in/out, server in/out
    c = client.wrap_bio(buffers[0], buffers[1], server_hostname=server_name)
    s = server.wrap_bio(buffers[2], buffers[3], server_side=True)
    done = {c: False, s: False}
    for _ in range(10):
        for end in (c, s):
            if not done[end]:
                try:
                    end.do_handshake()
                    done[end] = True
                except ssl.SSLWantReadError:
                    pass
        buffers[2].write(buffers[1].read())
        buffers[0].write(buffers[3].read())
        if all(done.values()):
            return
    raise AssertionError("handshake did not finish")


def test_generated_files_are_what_flower_reads_and_keys_are_private(creds):
    nodes = [f(k) for k in range(2) for f in (node_key_file, node_public_file)]
    assert sorted(p.name for p in creds.iterdir()) == sorted([CA_FILE, SERVER_CERT_FILE, SERVER_KEY_FILE, *nodes])
    assert {stat.S_IMODE(p.stat().st_mode) for p in creds.glob("*.key")} == {0o600}
    check_server_credentials(creds / CA_FILE, creds / SERVER_CERT_FILE, creds / SERVER_KEY_FILE)
    for k in range(2):
        check_node_key(creds / node_key_file(k))
        check_public_key(creds / node_public_file(k))
        assert try_load_public_key(creds / node_public_file(k))  # Flower's own `flwr supernode register` loader
        private = serialization.load_ssh_private_key((creds / node_key_file(k)).read_bytes(), None)
        public = serialization.load_ssh_public_key((creds / node_public_file(k)).read_bytes())
        assert private.public_key().public_numbers() == public.public_numbers()


def test_server_certificate_verifies_for_its_names_only(creds):
    for name in ("localhost", "127.0.0.1", "::1", "superlink.example.org", "10.1.2.3"):
        handshake(creds, name)
    with pytest.raises(ssl.SSLCertVerificationError, match="mismatch"):
        handshake(creds, "other.example.org")
    cert = x509.load_pem_x509_certificate((creds / SERVER_CERT_FILE).read_bytes())
    assert not cert.extensions.get_extension_for_class(x509.BasicConstraints).value.ca


def test_generate_refuses_bad_input_and_writes_nothing(tmp_path, creds):
    for kwargs, message in [(dict(supernodes=0), "--supernodes must be at least 1"),
                            (dict(supernodes=1, days=0), "--days must be between"),
                            (dict(supernodes=1, hosts=["https://x.org"]), "--host must be a DNS name")]:
        with pytest.raises(UserError, match=message):
            generate(tmp_path / "out", **kwargs)
    before = sorted(creds.iterdir())
    with pytest.raises(UserError, match="already exists"):
        generate(creds, supernodes=1)
    assert sorted(creds.iterdir()) == before
    assert list(tmp_path.iterdir()) == []


def test_checks_name_the_bad_file(tmp_path, creds):
    other = tmp_path / "other"
    generate(other, supernodes=1)
    ca, cert, key = creds / CA_FILE, creds / SERVER_CERT_FILE, creds / SERVER_KEY_FILE
    with pytest.raises(UserError, match="certificate file '.*missing.pem' does not exist"):
        check_server_credentials(ca, tmp_path / "missing.pem", key)
    with pytest.raises(UserError, match="private key file '.*nokey' does not exist"):
        check_server_credentials(ca, cert, tmp_path / "nokey")
    with pytest.raises(UserError, match="does not match private key"):
        check_server_credentials(ca, cert, other / SERVER_KEY_FILE)
    with pytest.raises(UserError, match="does not verify against CA"):
        check_server_credentials(ca, other / SERVER_CERT_FILE, other / SERVER_KEY_FILE)
    with pytest.raises(UserError, match="cannot be parsed"):
        check_server_credentials(creds / node_public_file(0), cert, key)
    with pytest.raises(UserError, match="cannot be parsed"):
        check_node_key(key)  # a PEM key where an OpenSSH one belongs
    rsa_key = tmp_path / "rsa"
    rsa_key.write_bytes(rsa.generate_private_key(65537, 2048).private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.OpenSSH, serialization.NoEncryption()))
    with pytest.raises(UserError, match="not an EC key on a NIST curve"):
        check_node_key(rsa_key)


def test_expired_and_not_yet_valid_certificates_are_refused(tmp_path):
    now = datetime.datetime.now(datetime.UTC)
    old = tmp_path / "old"
    generate(old, supernodes=1, days=30, now=now - datetime.timedelta(days=31))
    with pytest.raises(UserError, match=r"certificate '.*ca.pem' expired on \d{4}-\d\d-\d\d"):
        check_server_credentials(old / CA_FILE, old / SERVER_CERT_FILE, old / SERVER_KEY_FILE)
    with pytest.raises(UserError, match="expired on"):
        check_root_certificate(old / CA_FILE)
    future = tmp_path / "future"
    generate(future, supernodes=1, now=now + datetime.timedelta(days=2))
    with pytest.raises(UserError, match="is not valid before"):
        check_root_certificate(future / CA_FILE)


def test_command_line_one_line_errors_exit_2(tmp_path, capsys):
    out = tmp_path / "keys"
    assert main(["deploy", "keys", "--out", str(out), "--supernodes", "1", "--host", "10.0.0.9"]) == 0
    printed = capsys.readouterr().out
    assert "superlink.key  SECRET" in printed and "ca.pem  public" in printed
    assert main(["deploy", "check", "--ca", str(out / CA_FILE), "--cert", str(out / SERVER_CERT_FILE),
                 "--key", str(out / SERVER_KEY_FILE), "--node-key", str(out / node_key_file(0)),
                 "--public-key", str(out / node_public_file(0))]) == 0
    assert capsys.readouterr().out == "credentials ok\n"
    for argv in (["keys", "--out", str(out)],
                 ["keys", "--out", str(tmp_path / "new"), "--host", "a b"],
                 ["keys", "--out", str(tmp_path / "new"), "--supernodes", "many"],
                 ["check", "--ca", str(out / CA_FILE), "--cert", str(out / SERVER_CERT_FILE)],
                 ["check", "--ca", str(tmp_path / "nope.pem")],
                 ["check", "--ca", str(out / CA_FILE), "--public-key", str(out / CA_FILE)]):
        assert main(["deploy", *argv]) == 2
        captured = capsys.readouterr()
        assert captured.out == "" and captured.err.startswith("fedsim: error: ")
        assert captured.err.count("\n") == 1, captured.err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["keys"]


@pytest.mark.parametrize("command", ["keys", "check", "fleet-proxy", "run"])
def test_help_fits_80_columns_and_describes_every_flag(capsys, monkeypatch, command):
    monkeypatch.setenv("COLUMNS", "80")
    assert main(["deploy", command, "--help"]) == 0
    out = capsys.readouterr().out
    assert max(len(line) for line in out.splitlines()) <= 80, out
    assert "--no-" not in out and "\\[" not in out
    click_command = load_command("deploy").commands[command]
    assert all(param.help for param in click_command.params)


def test_a_certificate_chain_with_an_intermediate_ca_verifies(tmp_path):
    """Real PKIs issue from an intermediate: superlink.pem then holds the leaf followed by the intermediate."""
    now, hour = datetime.datetime.now(datetime.UTC), datetime.timedelta(hours=1)
    keys = [ec.generate_private_key(ec.SECP256R1()) for _ in range(3)]  # root, intermediate, leaf
    names = [x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, n)]) for n in ("root", "intermediate", "leaf")]

    def issue(k: int, path_length: int | None) -> x509.Certificate:
        issuer = max(k - 1, 0)
        builder = (x509.CertificateBuilder().subject_name(names[k]).issuer_name(names[issuer])
                   .public_key(keys[k].public_key()).serial_number(x509.random_serial_number())
                   .not_valid_before(now - hour).not_valid_after(now + 24 * hour)
                   .add_extension(x509.BasicConstraints(ca=k < 2, path_length=path_length), critical=True)
                   .add_extension(x509.SubjectKeyIdentifier.from_public_key(keys[k].public_key()), critical=False)
                   .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(keys[issuer].public_key()),
                                  critical=False)
                   .add_extension(x509.KeyUsage(True, False, False, False, False, k < 2, k < 2, False, False),
                                  critical=True))
        if k == 2:
            builder = (builder.add_extension(x509.SubjectAlternativeName([x509.DNSName("vfl.example.org")]), False)
                       .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), False))
        return builder.sign(keys[issuer], hashes.SHA256())

    root, intermediate, leaf = issue(0, 1), issue(1, 0), issue(2, None)
    pem = serialization.Encoding.PEM
    (tmp_path / "root.pem").write_bytes(root.public_bytes(pem))
    (tmp_path / "chain.pem").write_bytes(leaf.public_bytes(pem) + intermediate.public_bytes(pem))
    (tmp_path / "leaf.pem").write_bytes(leaf.public_bytes(pem))
    (tmp_path / "leaf.key").write_bytes(keys[2].private_bytes(pem, serialization.PrivateFormat.PKCS8,
                                                              serialization.NoEncryption()))
    check_server_credentials(tmp_path / "root.pem", tmp_path / "chain.pem", tmp_path / "leaf.key")
    with pytest.raises(UserError, match="does not verify against CA"):  # the intermediate left out
        check_server_credentials(tmp_path / "root.pem", tmp_path / "leaf.pem", tmp_path / "leaf.key")
