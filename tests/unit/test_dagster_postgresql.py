"""dagster_postgresql_client_networks and dagster_postgresql_settings: pg_hba and server settings."""

from __future__ import annotations

import dagster_postgresql
import pytest
from dagster_postgresql import dagster_postgresql_client_networks as networks
from dagster_postgresql import dagster_postgresql_settings as settings

FIELD = "dagster_postgresql_client_addresses"


def test_filters_are_registered():
    assert dagster_postgresql.FilterModule().filters() == {
        "dagster_postgresql_client_networks": networks,
        "dagster_postgresql_settings": settings,
        "dagster_postgresql_tls_names": dagster_postgresql.dagster_postgresql_tls_names,
        "dagster_postgresql_tls": dagster_postgresql.dagster_postgresql_tls,
    }


def test_addresses_become_networks():
    assert networks(["10.0.0.5", "10.1.0.0/16", "fd00::5", "fd00:1::/64", "0.0.0.0/8"]) == [
        "10.0.0.5/32", "10.1.0.0/16", "fd00::5/128", "fd00:1::/64", "0.0.0.0/8"]
    assert networks([]) == []
    # All three private IPv4 ranges together are within the limit.
    assert networks(["10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16"])


@pytest.mark.parametrize(
    ("entries", "index", "reason"),
    [
        (["0.0.0.0/0"], 0, "every address"),
        (["::/0"], 0, "every address"),
        (["::0/0"], 0, "every address"),
        (["0.0.0.0/00"], 0, "every address"),
        (["10.0.0.5", "0.0.0.0/1", "128.0.0.0/1"], 1, "large part"),
        (["2000::/3"], 0, "large part"),
        (["10.0.0.1/99"], 0, "not a host address"),
        (["abc"], 0, "not a host address"),
        (["all"], 0, "not a host address"),
        (["samenet"], 0, "not a host address"),
        (["10.0.0.5", ""], 1, "must be"),
        ([None], 0, "must be"),
        (["10.0.0.1/24"], 0, "host bits"),
        (["10.0.0.0/+8"], 0, "not a"),
    ],
)
def test_open_to_all_and_invalid_entries_are_refused(filter_error, assert_field, entries, index, reason):
    message = filter_error(networks, entries)
    assert_field(message, f"{FIELD}[{index}]")
    assert reason in message


def test_many_networks_together_are_refused(filter_error, assert_field):
    message = filter_error(networks, [f"{n}.0.0.0/8" for n in range(1, 6)])
    assert_field(message, FIELD)
    assert "together" in message


def test_not_a_list_is_refused(filter_error, assert_field):
    assert_field(filter_error(networks, "10.0.0.5"), FIELD)


def test_further_settings_pass():
    assert settings({"work_mem": "64MB", "max_connections": 200, "auto_explain.log_min_duration": "1s"})


@pytest.mark.parametrize(
    "name", ["password_encryption", "listen_addresses", "port", "ssl", "hba_file", "data_directory",
             "unix_socket_directories", "Password_Encryption"]
)
def test_settings_the_role_manages_are_refused(filter_error, assert_field, name):
    message = filter_error(settings, {"work_mem": "64MB", name: "x"})
    assert_field(message, f"dagster_postgresql_settings.{name}")
    assert "leave it out" in message


@pytest.mark.parametrize("bad", [{"work mem": "1"}, {"a;b": "1"}, {"work_mem": "1\nport = 1"}, {"work_mem": ["1"]}])
def test_malformed_settings_are_refused(filter_error, bad):
    assert filter_error(settings, bad).startswith("dagster_postgresql_settings")


@pytest.mark.parametrize("name", ["ssl_cert_file", "ssl_key_file", "ssl_ca_file", "SSL_Key_File"])
def test_the_tls_files_are_the_roles(filter_error, assert_field, name):
    message = filter_error(settings, {name: "/etc/ssl/private/ssl-cert-snakeoil.key"})
    assert_field(message, f"dagster_postgresql_settings.{name}")
    assert "leave it out" in message


def test_tls_protocol_may_be_raised_not_lowered(filter_error, assert_field):
    assert settings({"ssl_min_protocol_version": "TLSv1.3"})
    for old in ("TLSv1", "TLSv1.1", ""):
        message = filter_error(settings, {"ssl_min_protocol_version": old})
        assert_field(message, "dagster_postgresql_settings.ssl_min_protocol_version")
        assert "TLSv1.2" in message


# --- the server certificate's names -----------------------------------------------------------------------

tls_names = dagster_postgresql.dagster_postgresql_tls_names


def test_names_and_addresses_become_subject_alt_names():
    host = ["db1", "10.0.0.5", "DB1.Internal.", "*", "0.0.0.0", "::", "", "fd00::5", "db1"]
    assert tls_names(host, ["pg.example.net", "192.0.2.7"]) == [
        "DNS:pg.example.net", "IP:192.0.2.7", "DNS:db1", "IP:10.0.0.5", "DNS:db1.internal", "IP:fd00::5"]
    assert tls_names(["db1"]) == ["DNS:db1"]


def test_host_facts_that_are_no_name_are_left_out():
    # An inventory alias with a space, or a fact that is not a string, is no name a client connects to.
    assert tls_names(["my db", None, "db1"], []) == ["DNS:db1"]


@pytest.mark.parametrize(
    ("extra", "index"),
    [(["ok.example", "bad name"], 1), (["*"], 0), (["0.0.0.0"], 0), ([""], 0), ([" db1"], 0), (["a;b"], 0),
     ([5], 0), (["x" * 64], 0)],
)
def test_extra_names_must_be_names_or_addresses(filter_error, assert_field, extra, index):
    assert_field(filter_error(tls_names, ["db1"], extra), f"dagster_postgresql_tls_names[{index}]")


def test_extra_names_must_be_a_list(filter_error, assert_field):
    assert_field(filter_error(tls_names, ["db1"], "db1"), "dagster_postgresql_tls_names")


# --- the user's own CA, certificate and key ------------------------------------------------------------------

tls = dagster_postgresql.dagster_postgresql_tls
CA, CERT, KEY = "dagster_postgresql_tls_ca_cert", "dagster_postgresql_tls_cert", "dagster_postgresql_tls_key"


def _pki(name="db1"):
    """A CA, and a server certificate it issued with its key, as PEM text."""
    import datetime

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    def pem_key(key):
        return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                 serialization.NoEncryption()).decode()

    def issue(subject, key, issuer, issuer_key, ca):
        now = datetime.datetime.now(datetime.timezone.utc)
        builder = (x509.CertificateBuilder().subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, subject)]))
                   .issuer_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, issuer)]))
                   .public_key(key.public_key()).serial_number(x509.random_serial_number())
                   .not_valid_before(now).not_valid_after(now + datetime.timedelta(days=1))
                   .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True))
        return builder.sign(issuer_key, hashes.SHA256()).public_bytes(serialization.Encoding.PEM).decode()

    ca_key, server_key = ec.generate_private_key(ec.SECP256R1()), ec.generate_private_key(ec.SECP256R1())
    return {
        CA: issue("Test CA", ca_key, "Test CA", ca_key, True),
        CERT: issue(name, server_key, "Test CA", ca_key, False),
        KEY: pem_key(server_key),
    }


def test_no_material_means_the_role_makes_its_own_ca():
    assert tls({CA: "", CERT: "", KEY: ""}) == "generated"
    assert tls({}) == "generated"


def test_a_matching_set_is_taken():
    assert tls(_pki()) == "given"


@pytest.mark.parametrize("left_out", [CA, CERT, KEY])
def test_a_partial_set_is_refused(filter_error, assert_field, left_out):
    material = _pki() | {left_out: ""}
    message = filter_error(tls, material)
    assert_field(message, left_out)
    assert "together" in message


def test_a_key_of_another_certificate_is_refused_without_showing_it(filter_error, assert_field):
    material = _pki() | {KEY: _pki()[KEY]}
    message = filter_error(tls, material)
    assert_field(message, KEY)
    assert "PRIVATE" not in message and material[KEY].splitlines()[1] not in message


def test_a_certificate_of_another_ca_is_refused(filter_error, assert_field):
    other = _pki()
    material = _pki() | {CERT: other[CERT], KEY: other[KEY]}
    message = filter_error(tls, material)
    assert_field(message, CERT)
    assert "not issued by the CA" in message


@pytest.mark.parametrize(
    ("field", "value"),
    [(CA, "not a certificate"), (CERT, "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----"),
     (KEY, "-----BEGIN ENCRYPTED PRIVATE KEY-----\nAAAA\n-----END ENCRYPTED PRIVATE KEY-----"), (CA, 5)],
)
def test_malformed_material_is_refused(filter_error, assert_field, field, value):
    assert_field(filter_error(tls, _pki() | {field: value}), field)
