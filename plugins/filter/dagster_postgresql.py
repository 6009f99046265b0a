"""Check what the dagster_postgresql role writes into pg_hba.conf, postgresql.auto.conf and its TLS certificate."""

from __future__ import annotations

import ipaddress
import re

DOCUMENTATION = r"""
name: dagster_postgresql_client_networks
author: dagsterops maintainers
version_added: "0.3.0"
short_description: The client addresses of the Dagster database as pg_hba networks, open-to-all refused
description:
  - Takes C(dagster_postgresql_client_addresses), a list of host addresses
    and CIDR networks, and returns them as networks (C(10.0.0.5) becomes
    C(10.0.0.5/32)).
  - An entry that is not an address or a network (C(abc), C(10.0.0.1/99)), a
    network written with host bits (C(10.0.0.1/24)), or a keyword of
    pg_hba.conf (C(all), C(samenet)) is an error.
  - So is a network that lets in a large part of the internet - an IPv4
    prefix shorter than /8 (C(0.0.0.0/0), C(0.0.0.0/00), C(0.0.0.0/1)) or an
    IPv6 prefix shorter than /16 (C(::/0), C(::0/0)) - and a list whose
    entries together cover more than a /6 (IPv4) or a /14 (IPv6), such as
    many /8 networks side by side.
  - The companion C(dagster_postgresql_settings) refuses settings in
    C(dagster_postgresql_settings) that the role sets itself or that would
    move the server's files or its authentication (C(listen_addresses),
    C(port), C(password_encryption), C(ssl), C(hba_file), C(ssl_cert_file),
    ...), an C(ssl_min_protocol_version) older than TLSv1.2, and names that
    are not configuration parameters.
  - C(dagster_postgresql_tls_names) turns the server's names and addresses
    into the subjectAltNames of its certificate (C(DNS:db1.internal),
    C(IP:10.0.0.5)), refusing an entry of C(dagster_postgresql_tls_names)
    that is neither.
  - C(dagster_postgresql_tls) checks the user's CA certificate, server
    certificate and key (all three or none; the key that of the certificate,
    the certificate issued by the CA) and returns C(given), or C(generated)
    when none is set.
  - Errors name the variable and the index of the entry.
options:
  _input:
    description: The client addresses.
    type: list
    elements: str
    required: true
"""

EXAMPLES = r"""
- name: Check the client addresses
  ansible.builtin.assert:
    that: (dagster_postgresql_client_addresses | dagsterops.dagster.dagster_postgresql_client_networks) is sequence
    quiet: true
"""

RETURN = r"""
_value:
  description: The networks, in CIDR form.
  type: list
  elements: str
"""

try:
    from ansible.errors import AnsibleFilterError
except ImportError:  # pragma: no cover - lets the module load without Ansible
    AnsibleFilterError = ValueError  # type: ignore[misc,assignment]

FIELD = "dagster_postgresql_client_addresses"
SETTINGS_FIELD = "dagster_postgresql_settings"
# The broadest network one entry, or the whole list, may let in.
SHORTEST_PREFIX = {4: 8, 6: 16}
# The whole list may cover four times that (all three private IPv4 ranges fit).
UNION_SLACK = 2
# Set by the role from its own variables, or moving what the role manages.
MANAGED_SETTINGS = {
    "listen_addresses": "dagster_postgresql_listen_addresses",
    "port": "dagster_postgresql_port",
    "password_encryption": "the role (scram-sha-256)",
    "ssl": "the role (its hostssl entries need TLS)",
    "hba_file": "the role (it edits the cluster's pg_hba.conf)",
    "ident_file": "the role",
    "config_file": "the role",
    "data_directory": "the role",
    "unix_socket_directories": "the role (it connects through /run/postgresql)",
    "ssl_cert_file": "the role (dagster_postgresql_tls_cert, or the certificate of its own CA)",
    "ssl_key_file": "the role (dagster_postgresql_tls_key, or the key it generates)",
    "ssl_ca_file": "the role (clients are authenticated by password, not certificate)",
}
# Oldest protocol the server may accept; the role sets the first.
TLS_PROTOCOLS = ("TLSv1.2", "TLSv1.3")
TLS_NAMES_FIELD = "dagster_postgresql_tls_names"
TLS_FIELDS = ("dagster_postgresql_tls_ca_cert", "dagster_postgresql_tls_cert", "dagster_postgresql_tls_key")
_DNS_NAME = re.compile(r"(\*\.)?[a-z0-9_]([a-z0-9_-]{0,61}[a-z0-9_])?(\.[a-z0-9_]([a-z0-9_-]{0,61}[a-z0-9_])?)*\Z")
# What a server listens on without being a name clients use.
_NOT_A_NAME = {"", "*", "0.0.0.0", "::"}
_SETTING_NAME = re.compile(r"[a-z_][a-z0-9_]*(\.[a-z_][a-z0-9_]*)?\Z", re.IGNORECASE)


def _fail(field, problem):
    raise AnsibleFilterError(f"{field}: {problem}")


def _network(index, entry):
    where = f"{FIELD}[{index}]"
    if not isinstance(entry, str) or not entry.strip():
        _fail(where, f"must be a host address or a CIDR network, got {entry!r}")
    try:
        network = ipaddress.ip_network(entry, strict=True)
    except ValueError as error:
        if "has host bits set" in str(error):
            _fail(where, f"{entry!r} has host bits set; write the network ({ipaddress.ip_network(entry, strict=False)})")
        _fail(where, f"{entry!r} is not a host address or a CIDR network such as 10.0.0.5 or 10.0.0.0/24")
    if "/" in entry and not re.search(r"/[0-9]{1,3}\Z", entry):
        _fail(where, f"{entry!r} is not a CIDR network: the prefix length must be 0-32 (IPv4) or 0-128 (IPv6)")
    return network


def dagster_postgresql_client_networks(addresses):
    """Check the client addresses; return them as CIDR networks."""
    if not isinstance(addresses, list):
        _fail(FIELD, f"must be a list of addresses and networks, got {type(addresses).__name__}")
    networks = []
    for index, entry in enumerate(addresses):
        network = _network(index, entry)
        family, prefix = network.version, network.prefixlen
        if prefix < SHORTEST_PREFIX[family]:
            _fail(
                f"{FIELD}[{index}]",
                f"{entry} lets in {'every address' if prefix == 0 else 'a large part of the internet'}; name the "
                f"Dagster hosts (a network of at most /{SHORTEST_PREFIX[family]} for IPv{family})",
            )
        networks.append(network)
    # The entries together: overlapping ones counted once.
    for family in (4, 6):
        collapsed = ipaddress.collapse_addresses(n for n in networks if n.version == family)
        covered = sum(n.num_addresses for n in collapsed)
        if covered > 2 ** ((32 if family == 4 else 128) - SHORTEST_PREFIX[family] + UNION_SLACK):
            _fail(
                FIELD,
                f"the IPv{family} entries together let in more than a /{SHORTEST_PREFIX[family] - UNION_SLACK} "
                "network; name the Dagster hosts",
            )
    return [str(network) for network in networks]


def dagster_postgresql_settings(settings):
    """Check the further server settings; return them."""
    if not isinstance(settings, dict):
        _fail(SETTINGS_FIELD, f"must be a map of setting to value, got {type(settings).__name__}")
    for name, value in settings.items():
        if not isinstance(name, str) or not _SETTING_NAME.match(name):
            _fail(SETTINGS_FIELD, f"{name!r} is not a configuration parameter name")
        if name.lower() in MANAGED_SETTINGS:
            _fail(f"{SETTINGS_FIELD}.{name}", f"is set by {MANAGED_SETTINGS[name.lower()]}; leave it out")
        if not isinstance(value, (str, int, float)):
            _fail(f"{SETTINGS_FIELD}.{name}", f"must be a string or a number, got {type(value).__name__}")
        if isinstance(value, str) and re.search(r"[\x00-\x1f]", value):
            _fail(f"{SETTINGS_FIELD}.{name}", "must be a single line")
        if name.lower() == "ssl_min_protocol_version" and str(value) not in TLS_PROTOCOLS:
            _fail(f"{SETTINGS_FIELD}.{name}", f"must be one of {', '.join(TLS_PROTOCOLS)}, got {value!r}")
    return settings


def _subject_alt_name(entry):
    """'IP:...' for an address, 'DNS:...' for a host name, None for anything else."""
    try:
        return f"IP:{ipaddress.ip_address(entry)}"
    except ValueError:
        pass
    name = entry.lower().rstrip(".")
    if len(name) <= 253 and _DNS_NAME.match(name):
        return f"DNS:{name}"
    return None


def dagster_postgresql_tls_names(names, extra=None):
    """The subjectAltNames of the server certificate: the server's own names and addresses, and the user's.

    names are what the role knows of the host (inventory name, address, host name, listen
    addresses); entries that are no name a client could use are left out. extra is
    dagster_postgresql_tls_names: each entry must be a host name or an address.
    """
    if extra is None:
        extra = []
    if not isinstance(extra, list):
        _fail(TLS_NAMES_FIELD, f"must be a list of host names and addresses, got {type(extra).__name__}")
    result = []
    for index, entry in enumerate(extra):
        san = _subject_alt_name(entry) if isinstance(entry, str) and entry.strip() == entry else None
        if san is None or entry in _NOT_A_NAME:
            _fail(f"{TLS_NAMES_FIELD}[{index}]", f"must be a host name or an IP address, got {entry!r}")
        result.append(san)
    for entry in names or []:
        if isinstance(entry, str) and entry.strip() not in _NOT_A_NAME:
            san = _subject_alt_name(entry.strip())
            if san is not None:
                result.append(san)
    # The user's first, then the host's own; each once.
    return sorted(set(result), key=result.index)


def _pem_blocks(text, label):
    return re.findall(rf"-----BEGIN {label}-----[A-Za-z0-9+/=\s]+-----END {label}-----", text)


def pem_material(name, material, fields):
    """The PEM texts of fields in material (empty for unset), and the fields that are set."""
    if not isinstance(material, dict):
        _fail(name, f"must be a map, got {type(material).__name__}")
    values = {field: material.get(field) or "" for field in fields}
    for field, value in values.items():
        if not isinstance(value, str):
            _fail(field, f"must be PEM text, got {type(value).__name__}")
    return values, [field for field in fields if values[field].strip()]


def key_of_certificate(text, key_field, cert, cert_field):
    """Fail naming key_field unless text is an unencrypted PEM private key whose public key is cert's."""
    from cryptography.hazmat.primitives import serialization

    try:
        key = serialization.load_pem_private_key(text.strip().encode(), password=None)
    except (ValueError, TypeError):
        _fail(key_field, "is not a readable unencrypted PEM private key")
    public = serialization.PublicFormat.SubjectPublicKeyInfo
    encoding = serialization.Encoding.DER
    if key.public_key().public_bytes(encoding, public) != cert.public_key().public_bytes(encoding, public):
        _fail(key_field, f"is not the key of the certificate in {cert_field}")


def dagster_postgresql_tls(material):
    """Check the user's CA certificate, server certificate and key; return 'given', or 'generated' when none is set.

    material maps dagster_postgresql_tls_ca_cert, _tls_cert and _tls_key to PEM text (empty for
    unset). All three or none. With the cryptography package (which Ansible itself needs) the
    key must belong to the certificate, and the certificate must be issued by the CA.
    """
    values, given = pem_material("dagster_postgresql_tls", material, TLS_FIELDS)
    if not given:
        return "generated"
    if len(given) != len(TLS_FIELDS):
        missing = [field for field in TLS_FIELDS if field not in given]
        _fail(missing[0], f"is empty while {', '.join(given)} is set; give the CA certificate, the server "
              "certificate and its key together, or none to have the role make its own CA")
    ca_field, cert_field, key_field = TLS_FIELDS
    for field in (ca_field, cert_field):
        if not _pem_blocks(values[field], "CERTIFICATE"):
            _fail(field, "is not a PEM certificate (-----BEGIN CERTIFICATE-----)")
    if not _pem_blocks(values[key_field], "(?:RSA |EC )?PRIVATE KEY"):
        # Never show the value: it is a secret.
        _fail(key_field, "is not an unencrypted PEM private key (-----BEGIN PRIVATE KEY-----)")
    try:
        from cryptography import x509
        from cryptography.exceptions import InvalidSignature
    except ImportError:  # pragma: no cover - Ansible depends on cryptography
        return "given"
    try:
        ca = x509.load_pem_x509_certificate(_pem_blocks(values[ca_field], "CERTIFICATE")[0].encode())
    except ValueError:
        _fail(ca_field, "is not a readable PEM certificate")
    try:
        cert = x509.load_pem_x509_certificate(_pem_blocks(values[cert_field], "CERTIFICATE")[0].encode())
    except ValueError:
        _fail(cert_field, "is not a readable PEM certificate")
    key_of_certificate(values[key_field], key_field, cert, cert_field)
    if not hasattr(cert, "verify_directly_issued_by"):  # pragma: no cover - cryptography before 40
        return "given"
    try:
        cert.verify_directly_issued_by(ca)
    except (InvalidSignature, ValueError, TypeError):
        _fail(cert_field, f"is not issued by the CA certificate in {ca_field} (subject {ca.subject.rfc4514_string()})")
    return "given"


class FilterModule:
    """PostgreSQL input filters."""

    def filters(self):
        return {
            "dagster_postgresql_client_networks": dagster_postgresql_client_networks,
            "dagster_postgresql_settings": dagster_postgresql_settings,
            "dagster_postgresql_tls_names": dagster_postgresql_tls_names,
            "dagster_postgresql_tls": dagster_postgresql_tls,
        }
