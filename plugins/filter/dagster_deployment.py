"""Checks that span the inventory: what one host's variables cannot tell."""

from __future__ import annotations

import ipaddress

DOCUMENTATION = r"""
name: dagster_deployment
author: dagsterops maintainers
version_added: "0.2.0"
short_description: Check a multi-host Dagster inventory as a whole
description:
  - Run once, before any host changes, over the hosts of the
    C(dagster_code_locations) and C(dagster_instance) groups.
  - Every one of those hosts must see the same C(dagster_code_locations) list,
    the single source the code servers and the workspace are built from
    (define it once, in group_vars/all).
  - Instance hosts that share a database are one Dagster instance, which runs
    exactly one daemon. Two daemons on one database, or none, is an error
    that names the hosts; extra webservers set C(dagster_daemon_enabled=false).
  - The code servers run the instance's Dagster release - C(dagster_code_location_version)
    of every code-location host equals C(dagster_version) of every instance host.
  - A code server deployed to a host does not take the port of the webserver
    (an instance host) or of PostgreSQL (a database host) on that host, nor
    does the webserver take PostgreSQL's.
  - The code locations whose C(executor) is C(celery) have one broker host (group
    C(dagster_celery_broker)) and workers (group C(dagster_celery_worker)) on
    each of their queues; a worker runs declared Celery locations only, with the
    instance's Dagster release; see C(dagster_celery_deployment).
  - An instance host with the C(docker) run launcher must reach its database
    over TCP at an address other than loopback, since its runs start in
    containers, which reach neither the host's socket nor its loopback.
  - Returns a map of each database to the host that runs its daemon.
options:
  _input:
    description: C(hostvars).
    type: dict
    required: true
  groups:
    description: C(groups), the inventory's groups.
    type: dict
    required: true
  partial:
    description:
      - The hosts are part of the deployment only, such as the hosts of a play of the user's own that lists the
        dagster role. Two daemons on one database are still an error; a database that none of them runs the
        daemon of is not.
    type: bool
    default: false
"""

EXAMPLES = r"""
- name: Check the deployment as a whole
  ansible.builtin.assert:
    that: (hostvars | dagsterops.dagster.dagster_deployment(groups)) is mapping
    quiet: true
  run_once: true
"""

RETURN = r"""
_value:
  description: Map of C(host:port/database) (or C(host:socket/database) for a local socket) to the host running its daemon.
  type: dict
"""

try:
    from ansible.errors import AnsibleFilterError
except ImportError:  # pragma: no cover - lets the module load without Ansible
    AnsibleFilterError = ValueError  # type: ignore[misc,assignment]

try:
    from ansible_collections.dagsterops.dagster.plugins.filter.dagster_celery import WORKER_GROUP, dagster_celery_deployment
except ImportError:  # the unit tests import the filters by file name, from plugins/filter
    from dagster_celery import WORKER_GROUP, dagster_celery_deployment

# The dagster role's defaults for what a host does not set (a unit test keeps
# them equal to roles/dagster/defaults/main.yml).
ROLE_DEFAULTS = {
    "dagster_daemon_enabled": True,
    "dagster_postgres_host": "/run/postgresql",
    "dagster_postgres_port": 5432,
    "dagster_postgres_database": "dagster",
    "dagster_run_launcher": "default",
    "dagster_version": "1.13.27",
    "dagster_webserver_port": 3000,
}
# The same for the other roles' variables read here (kept equal to their defaults by a unit test).
OTHER_ROLE_DEFAULTS = {
    "dagster_code_location": {"dagster_code_location_version": "1.13.27"},
    "dagster_postgresql": {"dagster_postgresql_port": 5432},
}
CODE_GROUP = "dagster_code_locations"
INSTANCE_GROUP = "dagster_instance"
DATABASE_GROUP = "dagster_postgresql"


def _get(hostvars, host, key, default=None):
    variables = hostvars[host] if host in hostvars else {}
    try:
        value = variables[key]
    except KeyError:
        return default
    return value


def _database(hostvars, host):
    """The key of the database an instance host stores its runs in."""
    server = _get(hostvars, host, "dagster_postgres_host", ROLE_DEFAULTS["dagster_postgres_host"])
    port = _get(hostvars, host, "dagster_postgres_port", ROLE_DEFAULTS["dagster_postgres_port"])
    database = _get(hostvars, host, "dagster_postgres_database", ROLE_DEFAULTS["dagster_postgres_database"])
    if str(server).startswith("/"):
        # A socket reaches the database of the host itself.
        return f"{host}:{server}/{database}"
    return f"{server}:{port}/{database}"


def check_locations_agree(hostvars, hosts):
    reference_host, reference = None, None
    for host in hosts:
        locations = _get(hostvars, host, "dagster_code_locations", [])
        if reference_host is None:
            reference_host, reference = host, locations
        elif locations != reference:
            raise AnsibleFilterError(
                f"dagster_code_locations: {host} sees a different list than {reference_host}; the code servers "
                "and the workspace are built from one list, so define it once (group_vars/all) for every host "
                f"of the {CODE_GROUP}, {INSTANCE_GROUP} and {WORKER_GROUP} groups"
            )


def check_one_daemon(hostvars, hosts, partial=False):
    daemons = {}
    for host in hosts:
        enabled = _get(hostvars, host, "dagster_daemon_enabled", ROLE_DEFAULTS["dagster_daemon_enabled"])
        if not isinstance(enabled, bool):
            raise AnsibleFilterError(f"dagster_daemon_enabled: must be true or false on {host}, got {enabled!r}")
        runners = daemons.setdefault(_database(hostvars, host), [])
        if enabled:
            runners.append(host)
    result = {}
    for database, runners in daemons.items():
        if len(runners) > 1:
            raise AnsibleFilterError(
                f"dagster_daemon_enabled: {', '.join(runners)} would each run dagster-daemon for the instance "
                f"stored in {database}; an instance runs exactly one daemon, so set "
                f"dagster_daemon_enabled: false on all of them but one (those run the webserver only)"
            )
        if not runners and partial:
            continue
        if not runners:
            sharing = [host for host in hosts if _database(hostvars, host) == database]
            raise AnsibleFilterError(
                f"dagster_daemon_enabled: no host runs dagster-daemon for the instance stored in {database} "
                f"({', '.join(sharing)}); without it no schedule, sensor or queued run happens, so leave it "
                "enabled on one of them"
            )
        result[database] = runners[0]
    return result


def _loopback(server):
    if server == "localhost" or server.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(server.strip("[]")).is_loopback
    except ValueError:
        return False


def check_run_containers_reach_the_database(hostvars, hosts):
    for host in hosts:
        launcher = _get(hostvars, host, "dagster_run_launcher", ROLE_DEFAULTS["dagster_run_launcher"])
        server = str(_get(hostvars, host, "dagster_postgres_host", ROLE_DEFAULTS["dagster_postgres_host"]))
        if launcher == "docker" and (server.startswith("/") or _loopback(server)):
            raise AnsibleFilterError(
                f"dagster_run_launcher: docker on {host} starts each run in a container, which cannot reach the "
                f"database at {server} (the host's own socket or loopback); set dagster_postgres_host to an "
                "address the containers reach over TCP "
                "(with dagster_postgresql_listen_addresses and dagster_postgresql_client_addresses on the "
                "database host)"
            )


def check_versions(hostvars, instances, code_hosts):
    default = OTHER_ROLE_DEFAULTS["dagster_code_location"]["dagster_code_location_version"]
    for instance in instances:
        wanted = str(_get(hostvars, instance, "dagster_version", ROLE_DEFAULTS["dagster_version"]))
        for host in code_hosts:
            version = str(_get(hostvars, host, "dagster_code_location_version", default))
            if version != wanted:
                raise AnsibleFilterError(
                    f"dagster_code_location_version: {version} on {host} differs from dagster_version {wanted} "
                    f"of the instance on {instance}; a code server must run the instance's Dagster release, "
                    "so set both to the same version"
                )


def check_ports(hostvars, instances, code_hosts, databases):
    """No two services of the collection on one port of one host."""
    postgresql_port = OTHER_ROLE_DEFAULTS["dagster_postgresql"]["dagster_postgresql_port"]
    taken = {}
    for host in databases:
        taken[(host, _get(hostvars, host, "dagster_postgresql_port", postgresql_port))] = (
            "dagster_postgresql_port",
            "PostgreSQL",
        )
    for host in instances:
        port = _get(hostvars, host, "dagster_webserver_port", ROLE_DEFAULTS["dagster_webserver_port"])
        if (host, port) in taken:
            raise AnsibleFilterError(
                f"dagster_webserver_port: {port} on {host} is the port of {taken[(host, port)][1]} there "
                f"({taken[(host, port)][0]})"
            )
        taken[(host, port)] = ("dagster_webserver_port", "the Dagster webserver")
    for host in code_hosts:
        locations = _get(hostvars, host, "dagster_code_locations", []) or []
        for index, location in enumerate(locations if isinstance(locations, list) else []):
            if not isinstance(location, dict) or location.get("deploy_to") != host:
                continue
            port = location.get("port")
            if (host, port) in taken:
                field, service = taken[(host, port)]
                raise AnsibleFilterError(
                    f"dagster_code_locations[{index}] ({location.get('name')!r}).port: {port} on {host} is the "
                    f"port of {service} there ({field}); give the code server another port"
                )


def dagster_deployment(hostvars, groups, partial=False):
    """Check the inventory as a whole; return {database: daemon host}.

    partial: the hosts are part of the deployment only (a play of the user's own,
    or --limit): a database none of them runs the daemon of is not an error."""
    if not isinstance(groups, dict):
        raise AnsibleFilterError(f"groups: must be the inventory's groups, got {type(groups).__name__}")
    instances = list(groups.get(INSTANCE_GROUP) or [])
    code_hosts = list(groups.get(CODE_GROUP) or [])
    workers = list(groups.get(WORKER_GROUP) or [])
    readers = instances + [host for host in code_hosts + workers if host not in instances]
    check_locations_agree(hostvars, list(dict.fromkeys(readers)))
    dagster_celery_deployment(hostvars, groups, instances, ROLE_DEFAULTS["dagster_version"],
                              ROLE_DEFAULTS["dagster_run_launcher"])
    check_versions(hostvars, instances, code_hosts)
    check_ports(hostvars, instances, code_hosts, list(groups.get(DATABASE_GROUP) or []))
    check_run_containers_reach_the_database(hostvars, instances)
    return check_one_daemon(hostvars, instances, partial=bool(partial))


class FilterModule:
    """Dagster deployment filters."""

    def filters(self):
        return {"dagster_deployment": dagster_deployment}
