"""What the Dagster healthcheck checks, and where it pings."""

from __future__ import annotations

import re
from urllib.parse import urlsplit

DOCUMENTATION = r"""
name: dagster_healthcheck_code_servers
author: dagsterops maintainers
version_added: "0.2.0"
short_description: The gRPC code servers a host's healthcheck checks
description:
  - Given the explicit list C(dagster_healthcheck_code_servers) (maps of
    C(name) and C(port), optionally C(host)), validates and returns it.
  - Given an empty list, returns the code servers the instance on this host
    depends on, as maps of C(name), C(host) and C(port) - every C(grpc) entry
    of C(dagster_code_locations) that the dagster_code_location role runs (it
    has C(deploy_to)), at the address the instance reaches it at (from
    C(addresses), as in workspace.yaml), and every other C(grpc) entry whose
    C(host) is one of C(local_hosts). Other keys of a location are ignored.
  - The companion filter C(dagster_healthcheck_ping_url) validates a
    healthchecks.io-style ping URL (the UUID form C(https://hc-ping.com/UUID)
    or the slug form C(https://hc-ping.com/PING_KEY/SLUG), or a self-hosted
    server's) and returns it unchanged. Its errors never repeat the URL,
    which holds a secret.
options:
  _input:
    description: C(dagster_healthcheck_code_servers).
    type: list
    elements: dict
    required: true
  locations:
    description: C(dagster_code_locations).
    type: list
    elements: dict
    default: []
  local_hosts:
    description: Names and addresses of this host (C(localhost), C(127.0.0.1), its host names, ...).
    type: list
    elements: str
    default: []
  addresses:
    description:
      - Map of code-location host to the address the instance reaches it at
        (the C(dagster_code_location_addresses) filter); a C(deploy_to) host
        missing from it is reached by its inventory name.
    type: dict
    default: {}
"""

EXAMPLES = r"""
- name: The code servers to check
  ansible.builtin.debug:
    msg: >-
      {{ [] | dagsterops.dagster.dagster_healthcheck_code_servers(
             dagster_code_locations, ['localhost', '127.0.0.1', ansible_facts.hostname],
             {'code1': '10.0.0.21'}) }}
  vars:
    dagster_code_locations:
      - {name: etl, type: grpc, host: localhost, port: 4000}
      - {name: remote, type: grpc, host: code2.example.net, port: 4000}
      - {name: reports, type: grpc, port: 4001, deploy_to: code1, module: reports.definitions}
# -> [{name: etl, host: localhost, port: 4000}, {name: reports, host: 10.0.0.21, port: 4001}]
"""

RETURN = r"""
_value:
  description: Maps of C(name), C(host) and C(port), one per code server.
  type: list
  elements: dict
"""

try:
    from ansible.errors import AnsibleFilterError
except ImportError:  # pragma: no cover - lets the module load without Ansible
    AnsibleFilterError = ValueError  # type: ignore[misc,assignment]

NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]{0,62}\Z")
HOST_RE = re.compile(r"^[A-Za-z0-9.:_\[\]-]+\Z")
# A ping URL ends where the healthcheck appends /start, /fail or /0.
PING_SUFFIX_RE = re.compile(r"/(start|fail|log|[0-9]{1,3})/?\Z")


def _is_int(value):
    return isinstance(value, int) and not isinstance(value, bool)


def _server(index, entry, field, default_host="127.0.0.1"):
    where = f"{field}[{index}]"
    if not isinstance(entry, dict):
        raise AnsibleFilterError(f"{where}: must be a map with name and port, got {type(entry).__name__}")
    name = entry.get("name")
    if not isinstance(name, str) or not NAME_RE.match(name):
        raise AnsibleFilterError(
            f"{where}.name: must be 1-63 letters, digits, '-' and '_', starting with a letter or digit, got {name!r}"
        )
    port = entry.get("port")
    if not _is_int(port) or not 1 <= port <= 65535:
        raise AnsibleFilterError(f"{where}.port: must be an integer from 1 to 65535, got {port!r}")
    host = entry.get("host", default_host)
    if not isinstance(host, str) or not HOST_RE.match(host):
        raise AnsibleFilterError(f"{where}.host: must be a host name or address, got {host!r}")
    return {"name": name, "host": host, "port": port}


def code_servers(explicit, locations=None, local_hosts=None, addresses=None):
    """The explicit list when given, else the role-managed and the local gRPC servers."""
    if explicit is None:
        explicit = []
    if not isinstance(explicit, list):
        raise AnsibleFilterError(f"dagster_healthcheck_code_servers: must be a list, got {type(explicit).__name__}")
    if explicit:
        servers = [_server(i, e, "dagster_healthcheck_code_servers") for i, e in enumerate(explicit)]
    else:
        if locations is None:
            locations = []
        if not isinstance(locations, list):
            raise AnsibleFilterError(f"dagster_code_locations: must be a list, got {type(locations).__name__}")
        if addresses is None:
            addresses = {}
        if not isinstance(addresses, dict):
            raise AnsibleFilterError(f"addresses: must be a map of inventory host to address, got {type(addresses).__name__}")
        local = {str(h).lower() for h in (local_hosts or []) if h}
        servers = []
        for index, location in enumerate(locations):
            if not isinstance(location, dict) or location.get("type") != "grpc":
                continue
            deploy_to = location.get("deploy_to")
            if deploy_to:
                # Run by the dagster_code_location role: checked where the instance reaches it.
                address = addresses.get(deploy_to) or deploy_to
                entry = {"name": location.get("name"), "port": location.get("port"), "host": address}
                servers.append(_server(index, entry, "dagster_code_locations"))
            elif str(location.get("host", "")).lower() in local:
                servers.append(_server(index, location, "dagster_code_locations"))
    seen = {}
    for server in servers:
        endpoint = (server["host"], server["port"])
        if endpoint in seen:
            raise AnsibleFilterError(
                f"dagster_healthcheck_code_servers: {server['name']!r} and {seen[endpoint]!r} "
                f"both name {endpoint[0]}:{endpoint[1]}"
            )
        seen[endpoint] = server["name"]
    return servers


def ping_url(url):
    """Validate a ping URL; the error messages never contain it."""
    field = "dagster_healthcheck_ping_url"
    if not isinstance(url, str) or not url.strip():
        raise AnsibleFilterError(
            f"{field}: is required when dagster_healthcheck_enabled is true "
            "(https://hc-ping.com/UUID or https://hc-ping.com/PING_KEY/SLUG)"
        )
    if url != url.strip() or any(c.isspace() for c in url):
        raise AnsibleFilterError(f"{field}: must not contain white space")
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https"):
        raise AnsibleFilterError(f"{field}: must start with https:// (or http://), got a {parts.scheme or 'missing'} scheme")
    if not parts.hostname:
        raise AnsibleFilterError(f"{field}: has no host name")
    if parts.fragment:
        raise AnsibleFilterError(f"{field}: must not have a #fragment")
    if parts.path.strip("/") == "":
        raise AnsibleFilterError(f"{field}: has no check path (the UUID, or the ping key and slug)")
    if PING_SUFFIX_RE.search(parts.path):
        raise AnsibleFilterError(
            f"{field}: must be the check's base URL; the healthcheck appends /start, /fail and /0 itself"
        )
    return url


class FilterModule:
    """Dagster healthcheck filters."""

    def filters(self):
        return {
            "dagster_healthcheck_code_servers": code_servers,
            "dagster_healthcheck_ping_url": ping_url,
        }
