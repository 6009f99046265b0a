"""dagster_proxy_*: the proxy's users, certificate, client CA, names, ports and sign-in proxy addresses."""

from __future__ import annotations

import datetime

import dagster_proxy
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from dagster_proxy import dagster_proxy_client_ca as client_ca
from dagster_proxy import dagster_proxy_ports as ports
from dagster_proxy import dagster_proxy_sso_networks as sso_networks
from dagster_proxy import dagster_proxy_tls as tls
from dagster_proxy import dagster_proxy_tls_names as tls_names
from dagster_proxy import dagster_proxy_users as users

NOW = datetime.datetime(2026, 6, 1, tzinfo=datetime.timezone.utc)
# Real hashes: mkpasswd -m yescrypt, mkpasswd -m sha-512 -R 100000 / -R 5000, mkpasswd -m bcrypt -R 12 / -R 5.
YESCRYPT = "$y$j9T$z1.APiyeShzPimiuuecHu1$dPFFsP3mNINrav18.mq.I.GEIE9vuyUxpxNk7rhlnUC"
SHA512_STRONG = ("$6$rounds=100000$abcdefghijklmnop$LHDeMoyLhfKsxjIqnjZQ7NG5aqvgmttiVQeVFKuKTrYI26ReQR3e9IdUX6L"
                 "k6CAaYa2Vjjq6yhcb6bjzpLl321")
SHA512_DEFAULT_ROUNDS = ("$6$abcdefghijklmnop$GRSTFj3H0pZ9BY1uhdqITG.qORbXkTk40qgaa1roNICfs/axSgdNnbKEYghuyLnr"
                         "mnFXvSE09GdxJbCDOnxdc1")
BCRYPT_12 = "$2b$12$B0yh9Rw5EBJD30gAGBHrZeSqAlFfwFAsG4EW8bDJi83c6X7ywHSA2"
BCRYPT_5 = "$2b$05$O7n9i3B9U2HeYzdjoT.4M.Jlls2ENtGjvBFB8GVQoVa/GhjIwTTTe"


def test_filters_are_registered():
    assert dagster_proxy.FilterModule().filters() == {
        "dagster_proxy_users": users,
        "dagster_proxy_tls": tls,
        "dagster_proxy_client_ca": client_ca,
        "dagster_proxy_tls_names": tls_names,
        "dagster_proxy_ports": ports,
        "dagster_proxy_sso_networks": sso_networks,
    }


# --- users ----------------------------------------------------------------------------------------------


def test_users_keep_their_name_role_and_one_credential():
    given = [
        {"name": "alice", "role": "editor", "password": "from-a-vault"},
        {"name": "bob@example.org", "role": "viewer", "password_hash": YESCRYPT},
        {"name": "dana", "role": "editor", "password": ""},
    ]
    assert users(given, ["basic", "client_cert"]) == [
        {"name": "alice", "role": "editor", "password": "from-a-vault"},
        {"name": "bob@example.org", "role": "viewer", "password_hash": YESCRYPT},
        {"name": "dana", "role": "editor"},
    ]
    assert users([]) == []


@pytest.mark.parametrize("digest", [YESCRYPT, SHA512_STRONG, BCRYPT_12])
def test_strong_hashes_are_accepted(digest):
    assert users([{"name": "a", "role": "viewer", "password_hash": digest}])[0]["password_hash"] == digest


@pytest.mark.parametrize("digest", [
    "correct horse battery staple",  # a plain password in the hash field
    "$apr1$abcdefgh$0123456789abcdefghijkl",  # htpasswd's MD5
    "{SHA}W6ph5Mm5Pz8GgiULbPgzG37mj9g=",
    "{PLAIN}secret",
    "abJnggxhB/yWI",  # DES crypt
    SHA512_DEFAULT_ROUNDS,  # 5000 rounds
    BCRYPT_5,
    YESCRYPT + "x",
])
def test_weak_or_plain_hashes_are_refused_without_showing_them(filter_error, assert_field, digest):
    message = filter_error(users, [{"name": "a", "role": "viewer", "password_hash": digest}])
    assert_field(message, "dagster_proxy_users[0].password_hash")
    assert digest not in message
    assert "plain password belongs in password" in message


@pytest.mark.parametrize(("user", "field"), [
    ({"name": "a", "password": "x"}, "dagster_proxy_users[0].role"),
    ({"name": "a", "role": "admin", "password": "x"}, "dagster_proxy_users[0].role"),
    ({"role": "editor", "password": "x"}, "dagster_proxy_users[0].name"),
    ({"name": "a b", "role": "editor", "password": "x"}, "dagster_proxy_users[0].name"),
    ({"name": "a:b", "role": "editor", "password": "x"}, "dagster_proxy_users[0].name"),
    ({"name": "a", "role": "editor", "pasword": "x"}, "dagster_proxy_users[0].pasword"),
    ({"name": "a", "role": "editor", "password": "x", "password_hash": YESCRYPT}, "dagster_proxy_users[0]"),
    ({"name": "a", "role": "editor"}, "dagster_proxy_users[0]"),
])
def test_bad_users_are_refused_naming_the_field(filter_error, assert_field, user, field):
    assert_field(filter_error(users, [user], ["basic"]), field)


def test_a_user_without_a_password_needs_another_method(filter_error):
    assert "no password or password_hash" in filter_error(users, [{"name": "a", "role": "editor"}], ["basic"])
    assert users([{"name": "a", "role": "editor"}], ["basic", "header"]) == [{"name": "a", "role": "editor"}]


def test_a_name_given_twice_is_refused(filter_error, assert_field):
    message = filter_error(users, [{"name": "a", "role": "editor", "password": "x"},
                                   {"name": "a", "role": "viewer", "password": "y"}])
    assert_field(message, "dagster_proxy_users[1].name")


@pytest.mark.parametrize("methods", [[], ["kerberos"], "basic"])
def test_unknown_methods_are_refused(filter_error, methods):
    assert filter_error(users, [], methods).startswith("dagster_proxy_auth_methods")


# --- certificates ---------------------------------------------------------------------------------------


def _key():
    return ec.generate_private_key(ec.SECP256R1())


def _cert(key, name="proxy.example.net", days=(-1, 30), issuer_key=None, ca=False):
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    builder = (x509.CertificateBuilder().subject_name(subject).issuer_name(subject).public_key(key.public_key())
               .serial_number(x509.random_serial_number())
               .not_valid_before(NOW + datetime.timedelta(days=days[0]))
               .not_valid_after(NOW + datetime.timedelta(days=days[1])))
    if ca:
        builder = builder.add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
    return builder.sign(issuer_key or key, hashes.SHA256()).public_bytes(serialization.Encoding.PEM).decode()


def _pem(key):
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                             serialization.NoEncryption()).decode()


def test_a_certificate_and_its_key_are_given_or_neither():
    key = _key()
    material = {"dagster_proxy_tls_cert": _cert(key), "dagster_proxy_tls_key": _pem(key)}
    assert tls(material, now=NOW) == "given"
    assert tls({"dagster_proxy_tls_cert": "", "dagster_proxy_tls_key": ""}) == "generated"


def test_a_certificate_without_its_key_is_refused(filter_error, assert_field):
    message = filter_error(tls, {"dagster_proxy_tls_cert": _cert(_key()), "dagster_proxy_tls_key": ""}, now=NOW)
    assert_field(message, "dagster_proxy_tls_key")
    message = filter_error(tls, {"dagster_proxy_tls_cert": "", "dagster_proxy_tls_key": _pem(_key())}, now=NOW)
    assert_field(message, "dagster_proxy_tls_cert")


def test_a_key_of_another_certificate_is_refused_without_showing_it(filter_error, assert_field):
    other = _pem(_key())
    message = filter_error(tls, {"dagster_proxy_tls_cert": _cert(_key()), "dagster_proxy_tls_key": other}, now=NOW)
    assert_field(message, "dagster_proxy_tls_key")
    assert "not the key of the certificate" in message
    assert "PRIVATE" not in message


def test_an_expired_certificate_or_chain_is_refused(filter_error, assert_field):
    key = _key()
    expired = {"dagster_proxy_tls_cert": _cert(key, days=(-60, -1)), "dagster_proxy_tls_key": _pem(key)}
    message = filter_error(tls, expired, now=NOW)
    assert_field(message, "dagster_proxy_tls_cert")
    assert "expired on 2026-05-31" in message
    ca_key = _key()
    chain = _cert(key, issuer_key=ca_key) + _cert(ca_key, "old CA", days=(-900, -2), ca=True)
    message = filter_error(tls, {"dagster_proxy_tls_cert": chain, "dagster_proxy_tls_key": _pem(key)}, now=NOW)
    assert "certificate 1 of the chain" in message


def test_text_that_is_no_certificate_or_key_is_refused(filter_error, assert_field):
    key = _key()
    assert_field(filter_error(tls, {"dagster_proxy_tls_cert": "cert", "dagster_proxy_tls_key": _pem(key)}),
                 "dagster_proxy_tls_cert")
    assert_field(filter_error(tls, {"dagster_proxy_tls_cert": _cert(key), "dagster_proxy_tls_key": "k"}, now=NOW),
                 "dagster_proxy_tls_key")


def test_the_client_ca_goes_with_the_client_cert_method(filter_error, assert_field):
    ca = _cert(_key(), "users' CA", ca=True)
    assert client_ca(ca, ["client_cert"], now=NOW) == ca
    assert client_ca("", ["basic"]) == ""
    assert_field(filter_error(client_ca, "", ["basic", "client_cert"]), "dagster_proxy_client_ca_cert")
    assert_field(filter_error(client_ca, ca, ["basic"]), "dagster_proxy_client_ca_cert")
    expired = _cert(_key(), "old CA", days=(-900, -2), ca=True)
    assert "expired" in filter_error(client_ca, expired, ["client_cert"], now=NOW)


# --- names, ports, addresses ----------------------------------------------------------------------------


def test_names_become_subject_alt_names_and_errors_name_the_proxys_field(filter_error, assert_field):
    assert tls_names(["web1", "10.0.0.7"], ["dagster.example.net"]) == [
        "DNS:dagster.example.net", "DNS:web1", "IP:10.0.0.7"]
    assert_field(filter_error(tls_names, ["web1"], ["not a name"]), "dagster_proxy_tls_names[0]")


WEBSERVERS = {"dagster_webserver_port": 3000, "dagster_webserver_readonly_port": 3001}


def test_ports_of_their_own_are_accepted():
    assert ports({"dagster_proxy_https_port": 443, "dagster_proxy_http_port": 80}, WEBSERVERS)
    assert ports({"dagster_proxy_https_port": 8443, "dagster_proxy_http_port": 0},
                 {"dagster_webserver_port": 3000, "dagster_webserver_readonly_port": 0})


@pytest.mark.parametrize(("given", "webservers", "field"), [
    ({"dagster_proxy_https_port": 3000, "dagster_proxy_http_port": 80}, WEBSERVERS, "dagster_proxy_https_port"),
    ({"dagster_proxy_https_port": 443, "dagster_proxy_http_port": 3001}, WEBSERVERS, "dagster_proxy_http_port"),
    ({"dagster_proxy_https_port": 443, "dagster_proxy_http_port": 443}, WEBSERVERS, "dagster_proxy_http_port"),
    ({"dagster_proxy_https_port": 0, "dagster_proxy_http_port": 80}, WEBSERVERS, "dagster_proxy_https_port"),
    ({"dagster_proxy_https_port": 70000, "dagster_proxy_http_port": 80}, WEBSERVERS, "dagster_proxy_https_port"),
    ({"dagster_proxy_https_port": 443, "dagster_proxy_http_port": 80},
     {"dagster_webserver_port": 3000, "dagster_webserver_readonly_port": 3000}, "dagster_webserver_readonly_port"),
])
def test_port_clashes_are_refused(filter_error, assert_field, given, webservers, field):
    assert_field(filter_error(ports, given, webservers), field)


def test_sign_in_proxy_addresses_are_networks_and_errors_name_the_proxys_field(filter_error, assert_field):
    assert sso_networks(["10.0.0.5", "10.1.0.0/16"]) == ["10.0.0.5/32", "10.1.0.0/16"]
    assert_field(filter_error(sso_networks, ["0.0.0.0/0"]), "dagster_proxy_sso_addresses[0]")
