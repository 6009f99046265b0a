"""Bad inputs of the proxy, each given to playbooks/site.yml as extra variables on
the converged host: the run stops in its first, read-only play with a message
naming the field, and changes nothing. Secrets given by mistake are not shown."""

from __future__ import annotations

import datetime
import re
from concurrent.futures import ThreadPoolExecutor

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from dagster_checks import PROJECT, ansible_playbook

PLAIN = "hunter2-plain-password"


def _cert(key, days):
    now = datetime.datetime.now(datetime.timezone.utc)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "dagster.example.net")])
    return (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now + datetime.timedelta(days=days[0]))
            .not_valid_after(now + datetime.timedelta(days=days[1]))
            .sign(key, hashes.SHA256()).public_bytes(serialization.Encoding.PEM).decode())


def _pem(key):
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                             serialization.NoEncryption()).decode()


KEY, OTHER_KEY = ec.generate_private_key(ec.SECP256R1()), ec.generate_private_key(ec.SECP256R1())
CASES = {
    "user-without-role": ({"dagster_proxy_users": [{"name": "zoe", "password": "x"}]}, "dagster_proxy_users[0].role"),
    "user-without-hash-source": ({"dagster_proxy_auth_methods": ["basic"],
                                  "dagster_proxy_users": [{"name": "zoe", "role": "editor"}]}, "dagster_proxy_users[0]"),
    "plain-password-as-hash": ({"dagster_proxy_users": [{"name": "zoe", "role": "viewer", "password_hash": PLAIN}]},
                               "dagster_proxy_users[0].password_hash"),
    "certificate-without-key": ({"dagster_proxy_tls_cert": _cert(KEY, (-1, 30))}, "dagster_proxy_tls_key"),
    "key-of-another-certificate": ({"dagster_proxy_tls_cert": _cert(KEY, (-1, 30)),
                                    "dagster_proxy_tls_key": _pem(OTHER_KEY)}, "dagster_proxy_tls_key"),
    "expired-certificate": ({"dagster_proxy_tls_cert": _cert(KEY, (-60, -1)), "dagster_proxy_tls_key": _pem(KEY)},
                            "dagster_proxy_tls_cert"),
    "prefix-differs-from-the-webservers": ({"dagster_proxy_path_prefix": "/ui"}, "dagster_proxy_path_prefix"),
    "https-port-of-the-webserver": ({"dagster_proxy_https_port": 3000}, "dagster_proxy_https_port"),
    "viewers-without-a-read-only-webserver": ({"dagster_webserver_readonly_port": 0}, "dagster_webserver_readonly_port"),
}


@pytest.fixture(scope="module")
def results(host):
    def run(case):
        return case, ansible_playbook(PROJECT / "playbooks/site.yml", CASES[case][0])
    with ThreadPoolExecutor(max_workers=3) as pool:
        return dict(pool.map(run, CASES))


@pytest.mark.parametrize("case", sorted(CASES))
def test_bad_input_is_refused_in_the_first_play_naming_the_field(results, case):
    rc, output, _seconds = results[case]
    assert rc != 0, output[-3000:]
    assert CASES[case][1] in output, output[-3000:]
    plays = re.findall(r"^PLAY \[(.*)\]", output, re.MULTILINE)
    assert plays == ["Check the deployment as a whole before any host changes"], plays
    assert re.search(r"changed=0 ", output), output[-1500:]
    assert PLAIN not in output
    assert "PRIVATE KEY" not in output
