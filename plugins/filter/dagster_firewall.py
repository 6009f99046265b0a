"""Who may reach a Dagster server port: an nftables table and the unit's own address filter."""

from __future__ import annotations

import ipaddress
import re

DOCUMENTATION = r"""
name: dagster_firewall_ruleset
author: dagsterops maintainers
version_added: "1.1.0"
short_description: An nftables table that lets only the named clients reach some TCP ports
description:
  - Returns the text of an nftables file with one table, C(inet dagsterops_NAME).
    Loading the file replaces that table whole and touches no other table, so
    the rules of a firewall managed elsewhere stay as they are.
  - Its input chain accepts loopback, accepts the ports from the client
    addresses, and rejects them from every other address with a TCP reset.
    Other ports are left to the rest of the host's rule set.
  - The companion filters C(dagster_firewall_unit) (the oneshot unit that
    loads the file at boot and removes the table on stop) and
    C(dagster_ip_address_allow) (the C(IPAddressAllow=) value for a unit's own
    filter) take the same names and addresses.
options:
  _input:
    description: The table's name, a short word such as C(postgresql).
    type: str
    required: true
  ports:
    description: TCP ports.
    type: list
    elements: int
    required: true
  addresses:
    description: IPv4 or IPv6 addresses or CIDR networks of the clients.
    type: list
    elements: str
    required: true
"""

EXAMPLES = r"""
- name: The rule set of the PostgreSQL port
  ansible.builtin.debug:
    msg: "{{ 'postgresql' | dagsterops.dagster.dagster_firewall_ruleset([5432], ['10.0.0.11', '10.0.1.0/24']) }}"
"""

RETURN = r"""
_value:
  description: The nftables file, or the unit file, or the address list.
  type: str
"""

try:
    from ansible.errors import AnsibleFilterError
except ImportError:  # pragma: no cover - lets the module load without Ansible
    AnsibleFilterError = ValueError  # type: ignore[misc,assignment]

_NAME = re.compile(r"^[a-z][a-z0-9_]{0,30}\Z")
NFT = "/usr/sbin/nft"
RULES_DIR = "/etc/dagster-firewall"


def _name(name):
    if not isinstance(name, str) or not _NAME.match(name):
        raise AnsibleFilterError(f"firewall name: must be a short lower-case word, got {name!r}")
    return name


def _networks(addresses, field="addresses"):
    if not isinstance(addresses, (list, tuple)):
        raise AnsibleFilterError(f"{field}: must be a list of addresses or networks, got {addresses!r}")
    networks = []
    for index, address in enumerate(addresses):
        try:
            network = ipaddress.ip_network(str(address), strict=False)
        except ValueError:
            raise AnsibleFilterError(f"{field}[{index}]: {address!r} is not an IP address or network") from None
        if network.prefixlen == 0:
            raise AnsibleFilterError(f"{field}[{index}]: {address!r} would let every address in")
        networks.append(network)
    return networks


def _ports(ports):
    if not isinstance(ports, (list, tuple)) or not ports:
        raise AnsibleFilterError(f"ports: must be a non-empty list of TCP ports, got {ports!r}")
    for index, port in enumerate(ports):
        if isinstance(port, bool) or not isinstance(port, int) or not 1 <= port <= 65535:
            raise AnsibleFilterError(f"ports[{index}]: must be a TCP port (1 to 65535), got {port!r}")
    return sorted(set(ports))


def dagster_firewall_ruleset(name, ports, addresses):
    name, ports, networks = _name(name), _ports(ports), _networks(addresses)
    table = f"inet dagsterops_{name}"
    port_set = "{ " + ", ".join(str(port) for port in ports) + " }"
    lines = [
        f"# Only the Dagster clients reach TCP {port_set}; other ports are left to the host's own rules.",
        f"table {table}",
        f"delete table {table}",
        f"table {table} {{",
        "  chain input {",
        "    type filter hook input priority filter; policy accept;",
        '    iif "lo" accept',
    ]
    for family, version in (("ip", 4), ("ip6", 6)):
        chosen = [str(network) for network in networks if network.version == version]
        if chosen:
            lines.append(f"    tcp dport {port_set} {family} saddr {{ {', '.join(chosen)} }} accept")
    lines += [f"    tcp dport {port_set} reject with tcp reset", "  }", "}", ""]
    return "\n".join(lines)


def dagster_firewall_unit(name):
    name = _name(name)
    return "\n".join([
        "[Unit]",
        f"Description=Firewall rules of the Dagster {name} port (nftables table dagsterops_{name})",
        "DefaultDependencies=no",
        "Before=network-pre.target",
        "Wants=network-pre.target",
        "",
        "[Service]",
        "Type=oneshot",
        "RemainAfterExit=yes",
        f"ExecStart={NFT} -f {RULES_DIR}/{name}.nft",
        f"ExecReload={NFT} -f {RULES_DIR}/{name}.nft",
        f"ExecStop={NFT} delete table inet dagsterops_{name}",
        "",
        "[Install]",
        "WantedBy=sysinit.target",
        "",
    ])


def dagster_ip_address_allow(addresses):
    return " ".join(["localhost"] + [str(network) for network in _networks(addresses)])


class FilterModule:
    def filters(self):
        return {
            "dagster_firewall_ruleset": dagster_firewall_ruleset,
            "dagster_firewall_unit": dagster_firewall_unit,
            "dagster_ip_address_allow": dagster_ip_address_allow,
        }
