"""Check what the dagster_postgresql role writes into pg_hba.conf and postgresql.auto.conf."""

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
    C(port), C(password_encryption), C(ssl), C(hba_file), ...), and names
    that are not configuration parameters.
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
}
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
    return settings


class FilterModule:
    """PostgreSQL input filters."""

    def filters(self):
        return {
            "dagster_postgresql_client_networks": dagster_postgresql_client_networks,
            "dagster_postgresql_settings": dagster_postgresql_settings,
        }
