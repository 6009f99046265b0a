"""Celery for the code locations that declare it: the broker's URL as its clients
use it, and the checks of a Celery deployment across the inventory."""

from __future__ import annotations

import ipaddress
from urllib.parse import quote, urlencode

DOCUMENTATION = r"""
name: dagster_celery_broker_url
author: dagsterops maintainers
version_added: "0.3.0"
short_description: The URLs a Celery location's code server and workers reach the broker at
description:
  - Reads the broker host's variables (the dagster_celery_broker role's defaults where
    unset) and returns C(broker_url) and C(result_backend), the values of Celery's
    C(CELERY_BROKER_URL) and C(CELERY_RESULT_BACKEND), which the roles write into the
    location's environment file, never onto a command line.
  - Redis is both, the queue in database 0 and the results in database 1. With TLS
    (C(dagster_celery_broker_tls), the default) the scheme is C(rediss) and the
    server's certificate is verified against O(ca_file).
  - The companion filter C(dagster_celery_deployment) checks a Celery deployment
    across the inventory; C(dagster_deployment) calls it.
options:
  _input:
    description: The broker host's variables (C(hostvars[broker])), and C(inventory_hostname) among them.
    type: dict
    required: true
  password:
    description: The password of the broker's user.
    type: str
    required: true
  ca_file:
    description: The CA certificate file clients verify the broker with.
    type: str
    required: true
"""

EXAMPLES = r"""
- name: The URLs of the broker
  ansible.builtin.debug:
    msg: "{{ hostvars[groups['dagster_celery_broker'][0]] | dagsterops.dagster.dagster_celery_broker_url('s3cret', '/etc/dagster/celery-broker-ca.crt') }}"
  # {"broker_url": "rediss://dagster:s3cret@broker1:6379/0?ssl_cert_reqs=required&ssl_ca_certs=...", "result_backend": "...6379/1?..."}
"""

RETURN = r"""
_value:
  description: C(broker_url) and C(result_backend).
  type: dict
"""

try:
    from ansible.errors import AnsibleFilterError
except ImportError:  # pragma: no cover - lets the module load without Ansible
    AnsibleFilterError = ValueError  # type: ignore[misc,assignment]

try:
    from ansible_collections.dagsterops.dagster.plugins.filter.dagster_workspace import (
        celery_worker_wanted,
        validate_locations,
    )
except ImportError:  # the unit tests import the filters by file name, from plugins/filter
    from dagster_workspace import celery_worker_wanted, validate_locations

# The dagster_celery_broker role's defaults for what the broker host does not set
# (a unit test keeps them equal to roles/dagster_celery_broker/defaults/main.yml).
BROKER_DEFAULTS = {
    "dagster_celery_broker_port": 6379,
    "dagster_celery_broker_tls": True,
    "dagster_celery_broker_user": "dagster",
}
# The dagster_celery_worker role's defaults read here (the same unit test).
WORKER_DEFAULTS = {
    "dagster_celery_worker_version": "1.13.27",
    "dagster_celery_worker_locations": [],
}
BROKER_GROUP = "dagster_celery_broker"
WORKER_GROUP = "dagster_celery_worker"
QUEUE_DB = 0
RESULT_DB = 1


def _get(variables, key, default=None):
    try:
        return variables[key]
    except (KeyError, TypeError):
        return default


_TRUE = ("true", "yes", "on", "1")
_FALSE = ("false", "no", "off", "0")


def _bool(value, name):
    """A boolean, or its spelling from an INI inventory; anything else is an error."""
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if text in _TRUE or text in _FALSE:
        return text in _TRUE
    raise AnsibleFilterError(f"{name}: must be true or false, got {value!r}")


def _port(value, name):
    try:
        port = int(str(value).strip())
    except ValueError:
        port = 0
    if isinstance(value, bool) or not 1 <= port <= 65535:
        raise AnsibleFilterError(f"{name}: must be a port from 1 to 65535, got {value!r}")
    return port


def _url_host(host):
    """A host for a URL: an IPv6 address in brackets."""
    try:
        return f"[{host}]" if ipaddress.ip_address(host.strip("[]")).version == 6 else host
    except ValueError:
        return host


def dagster_celery_broker_url(broker, password, ca_file):
    """{broker_url, result_backend} of the broker host whose variables are `broker`."""
    host = _get(broker, "dagster_celery_broker_address") or _get(broker, "inventory_hostname")
    if not isinstance(host, str) or not host.strip():
        raise AnsibleFilterError("dagster_celery_broker_address: the broker host has no address to reach it at")
    if not isinstance(password, str) or not password:
        raise AnsibleFilterError("dagster_celery_broker_password: the broker's password is empty")
    port = _port(_get(broker, "dagster_celery_broker_port", BROKER_DEFAULTS["dagster_celery_broker_port"]),
                 "dagster_celery_broker_port")
    user = _get(broker, "dagster_celery_broker_user", BROKER_DEFAULTS["dagster_celery_broker_user"])
    tls = _bool(_get(broker, "dagster_celery_broker_tls", BROKER_DEFAULTS["dagster_celery_broker_tls"]),
                "dagster_celery_broker_tls")
    netloc = f"{quote(str(user), safe='')}:{quote(password, safe='')}@{_url_host(host.strip())}:{port}"
    query = "?" + urlencode({"ssl_cert_reqs": "required", "ssl_ca_certs": ca_file}) if tls else ""
    scheme = "rediss" if tls else "redis"
    return {
        "broker_url": f"{scheme}://{netloc}/{QUEUE_DB}{query}",
        "result_backend": f"{scheme}://{netloc}/{RESULT_DB}{query}",
    }


def dagster_celery_deployment(hostvars, groups, instances=(), version_default="1.13.27", launcher_default="default"):
    """Check the Celery side of the inventory; return {location: [worker hosts]}.

    - a location with executor: celery needs exactly one broker host and at least one
      worker, and each of its queues a worker that listens on it;
    - a worker host's dagster_celery_worker_locations names declared Celery locations
      and their queues only, and a worker host without any is an error;
    - workers run the instance's Dagster release;
    - the docker run launcher does not go with Celery locations."""
    brokers = list(groups.get(BROKER_GROUP) or [])
    workers = list(groups.get(WORKER_GROUP) or [])
    sources = list(instances) + list(groups.get("dagster_code_locations") or []) + workers
    locations = _get(hostvars[sources[0]], "dagster_code_locations", []) if sources else []
    validate_locations(locations, {loc["deploy_to"]: loc["deploy_to"] for loc in locations or []
                                   if isinstance(loc, dict) and isinstance(loc.get("deploy_to"), str)})
    celery = [(index, loc) for index, loc in enumerate(locations or []) if loc.get("executor") == "celery"]
    served = {}
    for host in workers:
        wanted = _get(hostvars[host], "dagster_celery_worker_locations", WORKER_DEFAULTS["dagster_celery_worker_locations"])
        entries = celery_worker_wanted(wanted, locations or [], host)
        if not entries:
            raise AnsibleFilterError(
                f"{WORKER_GROUP}: {host} would run no worker, since no location of dagster_code_locations has "
                "executor: celery; declare one, or take the host out of the group")
        for location, queues, _ in entries:
            for queue in queues:
                served.setdefault((location["name"], queue), []).append(host)
        version = str(_get(hostvars[host], "dagster_celery_worker_version", WORKER_DEFAULTS["dagster_celery_worker_version"]))
        for instance in instances:
            wanted_version = str(_get(hostvars[instance], "dagster_version", version_default))
            if version != wanted_version:
                raise AnsibleFilterError(
                    f"dagster_celery_worker_version: {version} on {host} differs from dagster_version {wanted_version} "
                    f"of the instance on {instance}; a worker runs steps of the instance's runs with its own Dagster, "
                    "so set both to the same version")
    result = {}
    for index, location in celery:
        where = f"dagster_code_locations[{index}] ({location['name']!r})"
        if len(brokers) != 1:
            raise AnsibleFilterError(
                f"{where}.executor: celery needs exactly one host in the {BROKER_GROUP} group, "
                f"which has {len(brokers)}{': ' + ', '.join(brokers) if brokers else ''}")
        queues = location.get("celery_queues") or ["dagster"]
        hosts = sorted({host for queue in queues for host in served.get((location["name"], queue), [])})
        if not hosts:
            raise AnsibleFilterError(
                f"{where}.executor: celery, but no host of the {WORKER_GROUP} group runs its worker, so its steps "
                "would wait in the queue for ever; add a worker host")
        for queue in queues:
            if not served.get((location["name"], queue)):
                raise AnsibleFilterError(
                    f"{where}.celery_queues: no worker listens on the queue {queue!r} (workers: {', '.join(hosts)}), "
                    "so a step sent to it would wait for ever")
        for instance in instances:
            if _get(hostvars[instance], "dagster_run_launcher", launcher_default) == "docker":
                raise AnsibleFilterError(
                    f"{where}.executor: celery does not go with dagster_run_launcher: docker on {instance}; its runs "
                    "start on the code server's host, which sends their steps to the Celery workers")
        result[location["name"]] = hosts
    return result


class FilterModule:
    """Dagster Celery filters."""

    def filters(self):
        return {
            "dagster_celery_broker_url": dagster_celery_broker_url,
            "dagster_celery_deployment": dagster_celery_deployment,
        }
