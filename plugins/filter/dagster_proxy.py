"""Check what the dagster_proxy role puts in front of the Dagster webserver: users, certificates and ports."""

from __future__ import annotations

import datetime
import re

DOCUMENTATION = r"""
name: dagster_proxy_users
author: dagsterops maintainers
version_added: "0.4.0"
short_description: The users of the Dagster proxy, each an editor or a viewer with a strong password hash
description:
  - Takes C(dagster_proxy_users), a list of C({name, role, password | password_hash}) maps, and
    returns them with C(name), C(role) and C(password_hash) or C(password) (only one of the two).
  - A C(name) is letters, digits and C(. _ @ -) (the name of a basic-auth user, or the common
    name of a client certificate, or the value of the sign-in proxy's header). C(role) is
    C(editor) (the normal webserver) or C(viewer) (the read-only one).
  - When C(basic) is the only method (O(methods)) every user needs a C(password) (hashed on the host,
    never written out) or a C(password_hash); with other methods a user without either signs in by them only. A C(password_hash) must be a strong crypt(3) hash -
    yescrypt (C($y$)), gost-yescrypt (C($gy$)), scrypt (C($7$)), bcrypt (C($2b$), C($2y$)) or
    SHA-512 crypt with at least 50000 rounds (C($6$rounds=N$)); anything else, a plain password
    above all, is refused without showing it.
  - C(dagster_proxy_tls) checks the user's certificate and key (both or none; the key that of the
    certificate; the certificate not expired) and returns C(given), or C(generated) when none is
    set. C(dagster_proxy_client_ca) checks the CA that issues client certificates.
  - C(dagster_proxy_tls_names) turns the host's names and C(dagster_proxy_tls_names) into the
    subjectAltNames of a certificate the role issues.
  - C(dagster_proxy_ports) refuses a proxy port that the webserver or its read-only sibling uses.
  - Errors name the variable and the index of the entry.
options:
  _input:
    description: The users.
    type: list
    elements: dict
    required: true
  methods:
    description: The sign-in methods, C(dagster_proxy_auth_methods).
    type: list
    elements: str
    default: [basic]
"""

EXAMPLES = r"""
- name: Check the users
  ansible.builtin.assert:
    that: (dagster_proxy_users | dagsterops.dagster.dagster_proxy_users(dagster_proxy_auth_methods)) is sequence
    quiet: true
"""

RETURN = r"""
_value:
  description: The users, each with name, role and one of password or password_hash.
  type: list
  elements: dict
"""

try:
    from ansible.errors import AnsibleFilterError
except ImportError:  # pragma: no cover - lets the module load without Ansible
    AnsibleFilterError = ValueError  # type: ignore[misc,assignment]

try:
    from ansible_collections.dagsterops.dagster.plugins.filter.dagster_postgresql import (
        _pem_blocks,
        dagster_postgresql_client_networks,
        dagster_postgresql_tls_names,
        key_of_certificate,
        pem_material,
    )
except ImportError:  # the unit tests import the plugins by file name
    from dagster_postgresql import (
        _pem_blocks,
        dagster_postgresql_client_networks,
        dagster_postgresql_tls_names,
        key_of_certificate,
        pem_material,
    )

USERS_FIELD = "dagster_proxy_users"
METHODS = ("basic", "client_cert", "header")
ROLES = ("editor", "viewer")
USER_KEYS = {"name", "role", "password", "password_hash"}
_NAME = re.compile(r"[A-Za-z0-9._@-]{1,128}\Z")
# crypt(3) hashes that libxcrypt (Debian's libcrypt, which nginx's auth_basic calls) verifies and
# that cost an attacker real work per guess.
_STRONG_HASHES = (
    re.compile(r"\$y\$[./0-9A-Za-z]+\$[./0-9A-Za-z]+\$[./0-9A-Za-z]{43}\Z"),
    re.compile(r"\$gy\$[./0-9A-Za-z]+\$[./0-9A-Za-z]+\$[./0-9A-Za-z]{43}\Z"),
    re.compile(r"\$7\$[./0-9A-Za-z]{11,}\$[./0-9A-Za-z]{43}\Z"),
    re.compile(r"\$2[by]\$(?P<cost>[0-9]{2})\$[./0-9A-Za-z]{53}\Z"),
)
_SHA512 = re.compile(r"\$6\$(rounds=(?P<rounds>[0-9]+)\$)?[^$:\s]{1,16}\$[./0-9A-Za-z]{86}\Z")
MIN_SHA512_ROUNDS = 50000
MIN_BCRYPT_COST = 10
TLS_FIELDS = ("dagster_proxy_tls_cert", "dagster_proxy_tls_key")


def _fail(field, problem):
    raise AnsibleFilterError(f"{field}: {problem}")


def _strong_hash(value):
    if not isinstance(value, str):
        return False
    sha512 = _SHA512.match(value)
    if sha512:
        return int(sha512.group("rounds") or 5000) >= MIN_SHA512_ROUNDS
    for pattern in _STRONG_HASHES:
        match = pattern.match(value)
        if match:
            return "cost" not in match.groupdict() or int(match.group("cost")) >= MIN_BCRYPT_COST
    return False


def _methods(methods):
    if not isinstance(methods, list) or not methods:
        _fail("dagster_proxy_auth_methods", f"must be a non-empty list of {', '.join(METHODS)}, got {methods!r}")
    for index, method in enumerate(methods):
        if method not in METHODS:
            _fail(f"dagster_proxy_auth_methods[{index}]", f"must be one of {', '.join(METHODS)}, got {method!r}")
    return methods


def dagster_proxy_users(users, methods=None):
    """Check the users; return each with its name, role and password or hash."""
    methods = _methods(["basic"] if methods is None else methods)
    if not isinstance(users, list):
        _fail(USERS_FIELD, f"must be a list of users, got {type(users).__name__}")
    result, seen = [], set()
    for index, user in enumerate(users):
        where = f"{USERS_FIELD}[{index}]"
        if not isinstance(user, dict):
            _fail(where, f"must be a map with name and role, got {type(user).__name__}")
        unknown = sorted(set(user) - USER_KEYS)
        if unknown:
            _fail(f"{where}.{unknown[0]}", f"is not a user setting (known: {', '.join(sorted(USER_KEYS))})")
        name = user.get("name")
        if not isinstance(name, str) or not _NAME.match(name):
            _fail(f"{where}.name", f"must be 1-128 letters, digits or . _ @ -, got {name!r}")
        if name in seen:
            _fail(f"{where}.name", f"{name!r} is listed twice")
        seen.add(name)
        role = user.get("role")
        if role not in ROLES:
            _fail(f"{where}.role", f"must be editor or viewer, got {role!r}")
        password, password_hash = user.get("password") or "", user.get("password_hash") or ""
        if not isinstance(password, str):
            _fail(f"{where}.password", "must be a string")
        if password and password_hash:
            _fail(where, "has both password and password_hash; give one")
        if password_hash and not _strong_hash(password_hash):
            # Never show the value: it may be a plain password given in the wrong field.
            _fail(f"{where}.password_hash", "is not a strong crypt(3) hash: only yescrypt ($y$), scrypt ($7$), "
                  f"bcrypt ($2b$, cost >= {MIN_BCRYPT_COST}) or SHA-512 crypt with rounds >= {MIN_SHA512_ROUNDS} "
                  "are accepted (a plain password belongs in password, from a vault; "
                  "mkpasswd -m yescrypt makes a hash)")
        if methods == ["basic"] and not (password or password_hash):
            _fail(where, f"user {name!r} has no password or password_hash, and basic is the only sign-in method")
        entry = {"name": name, "role": role}
        entry.update({"password": password} if password else {"password_hash": password_hash} if password_hash else {})
        result.append(entry)
    return result


def _load_cert(field, text):
    from cryptography import x509

    blocks = _pem_blocks(text, "CERTIFICATE")
    if not blocks:
        _fail(field, "is not a PEM certificate (-----BEGIN CERTIFICATE-----)")
    try:
        return [x509.load_pem_x509_certificate(block.encode()) for block in blocks]
    except ValueError:
        _fail(field, "is not a readable PEM certificate")


def _not_after(cert):
    end = getattr(cert, "not_valid_after_utc", None)
    return end if end is not None else cert.not_valid_after.replace(tzinfo=datetime.timezone.utc)


def dagster_proxy_tls(material, now=None):
    """Check the user's certificate (with its chain) and key; return 'given', or 'generated' when neither is set."""
    values, given = pem_material("dagster_proxy_tls", material, TLS_FIELDS)
    if not given:
        return "generated"
    cert_field, key_field = TLS_FIELDS
    if len(given) == 1:
        missing = key_field if given == [cert_field] else cert_field
        _fail(missing, f"is empty while {given[0]} is set; give the certificate and its key together, or neither "
              "to have the role issue one from the deployment's CA")
    chain = _load_cert(cert_field, values[cert_field])
    if not _pem_blocks(values[key_field], "(?:RSA |EC )?PRIVATE KEY"):
        _fail(key_field, "is not an unencrypted PEM private key (-----BEGIN PRIVATE KEY-----)")
    key_of_certificate(values[key_field], key_field, chain[0], cert_field)
    now = now or datetime.datetime.now(datetime.timezone.utc)
    for index, cert in enumerate(chain):
        if _not_after(cert) <= now:
            what = "the certificate" if index == 0 else f"certificate {index} of the chain"
            _fail(cert_field, f"{what} ({cert.subject.rfc4514_string()}) expired on {_not_after(cert).isoformat()}")
    return "given"


def dagster_proxy_client_ca(text, methods, now=None):
    """Check the CA of client certificates: needed, and only allowed, with the client_cert method."""
    field = "dagster_proxy_client_ca_cert"
    methods = _methods(methods)
    text = text or ""
    if "client_cert" not in methods:
        if text.strip():
            _fail(field, "is set but dagster_proxy_auth_methods has no client_cert")
        return ""
    if not text.strip():
        _fail(field, "is empty; the client_cert method needs the CA certificate that issues the users' certificates")
    now = now or datetime.datetime.now(datetime.timezone.utc)
    for cert in _load_cert(field, text):
        if _not_after(cert) <= now:
            _fail(field, f"the CA certificate ({cert.subject.rfc4514_string()}) expired on {_not_after(cert).isoformat()}")
    return text


def _renamed(function, old, new, *args):
    try:
        return function(*args)
    except AnsibleFilterError as error:
        raise AnsibleFilterError(str(error).replace(old, new)) from None


def dagster_proxy_tls_names(names, extra=None):
    """The subjectAltNames of a certificate the role issues, as dagster_postgresql_tls_names makes them."""
    return _renamed(dagster_postgresql_tls_names, "dagster_postgresql_tls_names", "dagster_proxy_tls_names", names, extra)


def dagster_proxy_sso_networks(addresses):
    """The sign-in proxy's addresses as networks, checked as dagster_postgresql_client_networks checks clients."""
    return _renamed(dagster_postgresql_client_networks, "dagster_postgresql_client_addresses",
                    "dagster_proxy_sso_addresses", addresses)


def dagster_proxy_ports(ports, webserver_ports):
    """Refuse proxy ports that clash with each other or with a webserver's port.

    ports maps dagster_proxy_https_port and dagster_proxy_http_port (0: none) to numbers;
    webserver_ports maps the webserver's variables to their ports (0: none).
    """
    taken = {}
    for name, port in webserver_ports.items():
        if int(port) and int(port) in taken:
            _fail(name, f"{port} is also {taken[int(port)]}; the read-only webserver needs a port of its own")
        if int(port):
            taken[int(port)] = name
    for name, port in ports.items():
        if not isinstance(port, int) or isinstance(port, bool) or not 0 <= port <= 65535:
            _fail(name, f"must be a port number, got {port!r}")
        if name.endswith("https_port") and port == 0:
            _fail(name, "must be a port number; the proxy serves HTTPS")
        if port and port in taken:
            _fail(name, f"{port} is the port of {taken[port]}; the webserver keeps it on loopback")
        if port:
            taken[port] = name
    return ports


class FilterModule:
    """Proxy input filters."""

    def filters(self):
        return {
            "dagster_proxy_users": dagster_proxy_users,
            "dagster_proxy_tls": dagster_proxy_tls,
            "dagster_proxy_client_ca": dagster_proxy_client_ca,
            "dagster_proxy_tls_names": dagster_proxy_tls_names,
            "dagster_proxy_ports": dagster_proxy_ports,
            "dagster_proxy_sso_networks": dagster_proxy_sso_networks,
        }
