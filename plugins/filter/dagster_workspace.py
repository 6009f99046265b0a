"""The collection's code-location list: Dagster's workspace.yaml, and the gRPC
code servers the dagster_code_location role deploys from the same list."""

from __future__ import annotations

import ipaddress
import re

DOCUMENTATION = r"""
name: dagster_workspace
author: dagsterops maintainers
version_added: "0.1.0"
short_description: Build a Dagster workspace from a list of code locations
description:
  - Validates C(dagster_code_locations) and returns the mapping that
    workspace.yaml holds, with C(location_name) set on every entry.
  - A location is a map with C(name) and C(type), one of C(grpc), C(module)
    or C(file). C(grpc) needs C(port) and either C(host) (a server run
    elsewhere) or C(deploy_to) (an inventory host of the
    C(dagster_code_locations) group, where the dagster_code_location role runs
    the server; its address comes from O(addresses)). C(module) needs
    C(module); C(file) needs C(file), an absolute path. C(module) and C(file)
    locations accept C(attribute), C(working_directory) and C(executable_path).
  - A deployed C(grpc) location takes C(module) or C(file) (the code the server
    loads), C(attribute), C(working_directory), C(bind), C(source),
    C(packages), C(requirements_lock), C(environment), C(environment_files), C(read_write_paths),
    C(memory_deny_write_execute), C(memory_max) and C(tasks_max) (the
    limits of its unit, over the role-wide ones, in their form - bytes with K,
    M, G or T, a percentage or C(infinity), and an integer of at least 64), and
    for the docker run launcher either
    C(image) (the image its runs use) or C(image_build) (C(name) and C(base),
    an image the role builds from the location's code); see the
    dagster_code_location role.
  - The whole list is checked, names and endpoints across entries included.
    Any error names the entry's index and the offending field, and is raised
    before anything is written to a host.
  - The companion filters C(dagster_code_location_addresses) (the address of
    each code-location host, from its host variables) and
    C(dagster_code_location_servers) (the servers one host runs) share the
    validation.
options:
  _input:
    description: The code locations.
    type: list
    elements: dict
    required: true
  addresses:
    description: Map of inventory host to the address the instance reaches it at, for C(deploy_to).
    type: dict
    default: {}
"""

EXAMPLES = r"""
- name: Write workspace.yaml
  ansible.builtin.copy:
    content: >-
      {{ dagster_code_locations | dagsterops.dagster.dagster_workspace(
           addresses=hostvars | dagsterops.dagster.dagster_code_location_addresses(groups['dagster_code_locations'])) | to_nice_yaml }}
    dest: /var/lib/dagster/workspace.yaml
    mode: "0640"
  vars:
    dagster_code_locations:
      - {name: etl, type: grpc, port: 4000, deploy_to: code1, module: etl.definitions,
         source: {git: "https://git.example.net/etl.git", version: v1.4.0}}
      - {name: vendor, type: grpc, host: vendor.example.net, port: 4000}
      - {name: example, type: module, module: dagster_example, working_directory: /opt/dagster/examples}

- name: The servers this host runs
  ansible.builtin.debug:
    msg: >-
      {{ dagster_code_locations | dagsterops.dagster.dagster_code_location_servers(
           inventory_hostname, hostvars | dagsterops.dagster.dagster_code_location_addresses(groups['dagster_code_locations'])) }}
"""

RETURN = r"""
_value:
  description: "The workspace mapping: a single key, C(load_from), holding the list of locations."
  type: dict
"""

try:
    from ansible.errors import AnsibleFilterError
except ImportError:  # pragma: no cover - lets the module load without Ansible
    AnsibleFilterError = ValueError  # type: ignore[misc,assignment]

try:
    from ansible_collections.dagsterops.dagster.plugins.filter.dagster_service import limit_problem
except ImportError:  # the unit tests import the filters by file name, from plugins/filter
    from dagster_service import limit_problem

LOCATION_TYPES = ("grpc", "module", "file")

# A location name becomes part of a systemd unit name and of Dagster's
# location selector, so it keeps to characters valid in both.
LOCATION_NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]{0,62}\Z")
ENV_NAME_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*\Z")

# The systemd template unit of a deployed location; its instance is the name.
UNIT_TEMPLATE = "dagster-code-location@{}.service"

_COMMON_KEYS = {"name", "type"}
_PYTHON_KEYS = {"attribute", "working_directory", "executable_path"}
_KEYS_BY_TYPE = {
    "grpc": _COMMON_KEYS | {"host", "port", "ssl"},
    "module": _COMMON_KEYS | _PYTHON_KEYS | {"module"},
    "file": _COMMON_KEYS | _PYTHON_KEYS | {"file"},
}

# Keys of a grpc location whose server the dagster_code_location role runs on
# the host named by deploy_to; the workspace reads only name, port and the
# host's address.
DEPLOYMENT_KEYS = {
    "deploy_to",
    "bind",
    "module",
    "file",
    "attribute",
    "working_directory",
    "source",
    "packages",
    "requirements_lock",
    "environment",
    "environment_files",
    "read_write_paths",
    "memory_deny_write_execute",
    "memory_max",
    "tasks_max",
    "image",
    "image_build",
    "executor",
    "celery_queues",
}
IMAGE_BUILD_KEYS = {"name", "base"}
# A Docker repository name (lower case path components, an optional registry
# host[:port] in front), and a reference: a name with a tag and/or a digest.
_DOMAIN = r"[a-zA-Z0-9](?:[a-zA-Z0-9-]*[a-zA-Z0-9])?(?:\.[a-zA-Z0-9](?:[a-zA-Z0-9-]*[a-zA-Z0-9])?)*(?::[0-9]+)?"
_COMPONENT = r"[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*"
_IMAGE_NAME = rf"(?:{_DOMAIN}/)?{_COMPONENT}(?:/{_COMPONENT})*"
_IMAGE_NAME_RE = re.compile(rf"{_IMAGE_NAME}\Z")
_IMAGE_REF_RE = re.compile(rf"{_IMAGE_NAME}(?::[A-Za-z0-9_][A-Za-z0-9_.-]{{0,127}})?(?:@sha256:[0-9a-f]{{64}})?\Z")
_DEPLOYED_KEYS = (_COMMON_KEYS | {"port"} | DEPLOYMENT_KEYS)
SOURCE_KINDS = ("directory", "git", "pip")

# Characters that a value placed on a unit's ExecStart= or ReadWritePaths= line
# must not hold: systemd would split, unquote or expand them.
_UNIT_UNSAFE_RE = re.compile(r"[\s\"'\\%$;]")
# A requirement is one line of requirements.txt; a line starting with '-' is an
# option of pip or uv (--index-url, -e, -r FILE, ...), not a requirement.
_LINE_BREAK_RE = re.compile(r"[\x00-\x1f\x7f]")
# The git transports a source may use (ext:: would run a command); scp-like user@host:path too.
_GIT_URL_RE = re.compile(r"(https://|http://|ssh://|git://|file:///|/)[^\s]+\Z|[A-Za-z0-9._-]+@[A-Za-z0-9.-]+:[^\s]+\Z")
_GIT_VERSION_RE = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_./+-]*\Z")
# Set in a location's environment file by the role itself.
RESERVED_ENVIRONMENT = ("DAGSTER_PG_PASSWORD", "DAGSTER_CURRENT_IMAGE", "CELERY_BROKER_URL", "CELERY_RESULT_BACKEND")

# The executors a deployed location may declare: `celery` sends its runs' steps
# to the Celery workers (the dagster_celery_worker role) through the broker.
EXECUTORS = ("celery",)
# dagster-celery's queue when a step names none (its app's task_default_queue).
CELERY_DEFAULT_QUEUES = ("dagster",)
CELERY_QUEUE_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,62}\Z")
# dagster-celery refuses a worker on more than four queues.
CELERY_MAX_QUEUES = 4
# The systemd template unit of a Celery worker of a location; its instance is the name.
WORKER_UNIT_TEMPLATE = "dagster-celery-worker@{}.service"


def _fail(index, name, field, problem):
    where = f"dagster_code_locations[{index}]"
    if name:
        where += f" ({name!r})"
    raise AnsibleFilterError(f"{where}.{field}: {problem}")


def _is_int(value):
    return isinstance(value, int) and not isinstance(value, bool)


def _non_empty_string(index, name, location, field):
    value = location.get(field)
    if not isinstance(value, str) or not value.strip():
        _fail(index, name, field, f"is required for a {location['type']!r} location and must be a non-empty string")
    return value


def validate_port(index, name, value, field="port"):
    if not _is_int(value) or not 1 <= value <= 65535:
        _fail(index, name, field, f"must be an integer from 1 to 65535, got {value!r}")
    return value


def _unit_safe(index, name, field, value):
    if _UNIT_UNSAFE_RE.search(value):
        _fail(index, name, field, f"{value!r} holds white space, a quote, '\\', '%', '$' or ';', which systemd would reinterpret")
    return value


def _absolute_path(index, name, field, value, unit_line=False):
    if not isinstance(value, str) or not value.startswith("/") or len(value) < 2:
        _fail(index, name, field, f"must be an absolute path, got {value!r}")
    if unit_line:
        _unit_safe(index, name, field, value)
    return value


def _string_list(index, name, field, value, check=None):
    if not isinstance(value, list):
        _fail(index, name, field, f"must be a list, got {type(value).__name__}")
    for position, item in enumerate(value):
        where = f"{field}[{position}]"
        if not isinstance(item, str) or not item.strip():
            _fail(index, name, where, f"must be a non-empty string, got {item!r}")
        if check:
            check(index, name, where, item)
    return value


def _validate_source(index, name, source):
    if not isinstance(source, dict):
        _fail(index, name, "source", f"must be a map with one of {', '.join(SOURCE_KINDS)}, got {type(source).__name__}")
    kinds = [kind for kind in SOURCE_KINDS if kind in source]
    if len(kinds) != 1:
        _fail(index, name, "source", f"must hold exactly one of {', '.join(SOURCE_KINDS)}, got {sorted(source)}")
    kind = kinds[0]
    allowed = {kind, "version"} if kind == "git" else {kind}
    unknown = sorted(set(source) - allowed)
    if unknown:
        _fail(index, name, f"source.{unknown[0]}", f"is not a key of a {kind!r} source (allowed: {', '.join(sorted(allowed))})")
    for key in allowed & set(source):
        if not isinstance(source[key], str) or not source[key].strip():
            _fail(index, name, f"source.{key}", f"must be a non-empty string, got {source[key]!r}")
    if kind == "pip":
        _requirement(index, name, "source.pip", source["pip"])
    if kind == "git":
        url = source["git"]
        if url.startswith("-") or not _GIT_URL_RE.match(url):
            _fail(
                index,
                name,
                "source.git",
                f"{url!r} must be a repository URL (https://, ssh://, git://, file:///, an absolute path or "
                "user@host:path); an option of git (starting with '-') or a command transport (ext::) is refused",
            )
        version = source.get("version", "HEAD")
        if not _GIT_VERSION_RE.match(version) or ".." in version:
            _fail(
                index,
                name,
                "source.version",
                f"{version!r} must be a branch, tag or commit (letters, digits, '_', '.', '/', '+' and '-', "
                "not starting with '-')",
            )
    return kind


def _requirement(index, name, field, value):
    """One requirement line: no line break, no option."""
    if _LINE_BREAK_RE.search(value):
        _fail(index, name, field, f"{value!r} holds a line break or control character; give one requirement per entry")
    if value.lstrip().startswith("-"):
        _fail(
            index,
            name,
            field,
            f"{value!r} is an option of pip or uv, not a requirement; set indexes and the like in "
            "dagster_code_location_install_environment (UV_INDEX_URL, ...)",
        )
    return value


def _no_dot_dot(index, name, field, value):
    if ".." in value.split("/"):
        _fail(index, name, field, f"{value!r} holds '..'; name the path without leaving its directory")
    return value


def _validate_deployed(index, name, location):
    """Check the keys of a grpc location that a code-location host runs."""
    deploy_to = location.get("deploy_to")
    if not isinstance(deploy_to, str) or not deploy_to.strip():
        _fail(index, name, "deploy_to", f"must name an inventory host of the dagster_code_locations group, got {deploy_to!r}")
    if "host" in location:
        _fail(index, name, "host", "a deployed location takes its address from deploy_to's host; leave host out")
    if "ssl" in location:
        _fail(index, name, "ssl", "is not supported for a deployed location: dagster code-server serves plain gRPC")
    if "bind" in location:
        bind = location["bind"]
        if not isinstance(bind, str) or not bind.strip():
            _fail(index, name, "bind", f"must be an address to listen on, got {bind!r}")
        _unit_safe(index, name, "bind", bind)
    source = location.get("source")
    kind = _validate_source(index, name, source) if "source" in location else None
    targets = [field for field in ("module", "file") if field in location]
    if not targets:
        _fail(index, name, "module", "a deployed location needs module or file: the code its server loads")
    target = targets[0]
    value = location[target]
    if not isinstance(value, str) or not value.strip():
        _fail(index, name, target, f"must be a non-empty string, got {value!r}")
    _unit_safe(index, name, target, value)
    if target == "file" and not value.startswith("/") and kind not in ("directory", "git"):
        _fail(index, name, "file", f"must be an absolute path, or relative to a directory or git source, got {value!r}")
    if target == "file":
        _no_dot_dot(index, name, "file", value)
    if "attribute" in location:
        attribute = location["attribute"]
        if not isinstance(attribute, str) or not attribute:
            _fail(index, name, "attribute", f"must be a non-empty string, got {attribute!r}")
        _unit_safe(index, name, "attribute", attribute)
    if "working_directory" in location:
        _absolute_path(index, name, "working_directory", location["working_directory"], unit_line=True)
        _no_dot_dot(index, name, "working_directory", location["working_directory"])
    if "packages" in location:
        _string_list(index, name, "packages", location["packages"], check=_requirement)
    if "requirements_lock" in location:
        lock = location["requirements_lock"]
        if not isinstance(lock, str) or not lock.strip() or "\n" in lock or "\x00" in lock:
            _fail(index, name, "requirements_lock", f"must be the path of a lock file on the controller, got {lock!r}")
    if "environment" in location:
        environment = location["environment"]
        if not isinstance(environment, dict):
            _fail(index, name, "environment", f"must be a map of variable names to values, got {type(environment).__name__}")
        for key, env_value in environment.items():
            if not isinstance(key, str) or not ENV_NAME_RE.match(key):
                _fail(index, name, "environment", f"{key!r} is not a valid environment variable name")
            if key in RESERVED_ENVIRONMENT:
                _fail(index, name, f"environment.{key}", "is set by the role itself; leave it out")
            if not isinstance(env_value, (str, int, float, bool)):
                _fail(index, name, f"environment.{key}", f"must be a string, a number or a bool, got {type(env_value).__name__}")
    for field in ("environment_files", "read_write_paths"):
        if field in location:
            _string_list(
                index,
                name,
                field,
                location[field],
                check=lambda i, n, where, item: _no_dot_dot(i, n, where, _absolute_path(i, n, where, item, unit_line=True)),
            )
    if "memory_deny_write_execute" in location and not isinstance(location["memory_deny_write_execute"], bool):
        _fail(index, name, "memory_deny_write_execute", f"must be true or false, got {location['memory_deny_write_execute']!r}")
    for field in ("memory_max", "tasks_max"):
        if field in location:
            problem = limit_problem(field, location[field])
            if problem:
                _fail(index, name, field, problem)
    _validate_image(index, name, location, kind)
    _validate_executor(index, name, location)


def celery_queue_list(value, fail):
    """A list of 1-4 distinct Celery queue names; `fail(problem)` raises."""
    if not isinstance(value, list) or not value:
        fail(f"must be a non-empty list of queue names, got {value!r}")
    if len(value) > CELERY_MAX_QUEUES:
        fail(f"a Celery worker listens on at most {CELERY_MAX_QUEUES} queues (dagster-celery's limit), got {len(value)}")
    for queue in value:
        if not isinstance(queue, str) or not CELERY_QUEUE_RE.match(queue):
            fail(f"{queue!r} is not a queue name (1-63 letters, digits, '_', '.' and '-', starting with a letter or digit)")
    if len(set(value)) != len(value):
        fail(f"names a queue twice: {value!r}")
    return list(value)


def _validate_executor(index, name, location):
    executor = location.get("executor")
    if "executor" in location and executor not in EXECUTORS:
        _fail(index, name, "executor", f"must be one of {', '.join(EXECUTORS)} (or left out for Dagster's own), got {executor!r}")
    if "celery_queues" in location:
        if executor != "celery":
            _fail(index, name, "celery_queues", "needs executor: celery")
        celery_queue_list(location["celery_queues"], lambda problem: _fail(index, name, "celery_queues", problem))
    if executor == "celery" and ("image" in location or "image_build" in location):
        _fail(index, name, "executor", "celery runs the steps on the Celery workers' hosts, not in a run image; "
                                       "leave out image and image_build")


def _validate_image(index, name, location, kind):
    """image: the run image the code server advertises; image_build: one the role builds for it."""
    if "image" in location and "image_build" in location:
        _fail(index, name, "image", "set either image (an image of your own) or image_build, not both")
    if "image" in location:
        image = location["image"]
        if not isinstance(image, str) or not _IMAGE_REF_RE.match(image):
            _fail(index, name, "image", f"must be a Docker image reference such as registry.example.net/etl:1.4, got {image!r}")
    if "image_build" in location:
        build = location["image_build"]
        if not isinstance(build, dict):
            _fail(index, name, "image_build", f"must be a map with name and base, got {type(build).__name__}")
        unknown = sorted(map(str, set(build) - IMAGE_BUILD_KEYS))
        if unknown:
            _fail(index, name, f"image_build.{unknown[0]}", f"is not a key of image_build (allowed: {', '.join(sorted(IMAGE_BUILD_KEYS))})")
        if not isinstance(build.get("name"), str) or not _IMAGE_NAME_RE.match(build["name"]):
            _fail(index, name, "image_build.name", f"must be a Docker repository name without a tag (the role tags by content), got {build.get('name')!r}")
        if not isinstance(build.get("base"), str) or not _IMAGE_REF_RE.match(build["base"]):
            _fail(index, name, "image_build.base", f"must name the base image (with python3 in it), got {build.get('base')!r}")
        if kind is None:
            _fail(index, name, "image_build", "needs a source (directory, git or pip): the image holds the location's code")


def validate_location(index, location):
    """Check one entry; return its name. Raises AnsibleFilterError."""
    if not isinstance(location, dict):
        raise AnsibleFilterError(
            f"dagster_code_locations[{index}]: must be a map with name and type, got {type(location).__name__}"
        )
    name = location.get("name")
    if not isinstance(name, str) or not LOCATION_NAME_RE.match(name):
        _fail(
            index,
            None,
            "name",
            f"must be 1-63 characters of letters, digits, '-' and '_', starting with a letter or digit "
            f"(it names a systemd unit and a Dagster location), got {name!r}",
        )
    kind = location.get("type")
    if kind not in LOCATION_TYPES:
        _fail(index, name, "type", f"must be one of {', '.join(LOCATION_TYPES)}, got {kind!r}")
    if "module" in location and "file" in location:
        _fail(index, name, "module", "a location takes either module or file, not both")
    deployed = kind == "grpc" and "deploy_to" in location
    allowed = _DEPLOYED_KEYS if deployed else _KEYS_BY_TYPE[kind]
    unknown = sorted(set(location) - allowed)
    if unknown:
        what = "deployed 'grpc'" if deployed else repr(kind)
        hint = ""
        if kind == "grpc" and not deployed and set(unknown) & DEPLOYMENT_KEYS:
            hint = "; keys of a server the collection runs need deploy_to"
        _fail(index, name, unknown[0], f"is not a key of a {what} location (allowed: {', '.join(sorted(allowed))}){hint}")
    if kind == "grpc":
        if deployed:
            _validate_deployed(index, name, location)
        elif "host" not in location:
            _fail(index, name, "host", "is required for a 'grpc' location: the server's address, or deploy_to an inventory host")
        else:
            _non_empty_string(index, name, location, "host")
        if "port" not in location:
            _fail(index, name, "port", "is required for a 'grpc' location")
        validate_port(index, name, location["port"])
        if "ssl" in location and not isinstance(location["ssl"], bool):
            _fail(index, name, "ssl", f"must be true or false, got {location['ssl']!r}")
        return name
    if kind == "module":
        _non_empty_string(index, name, location, "module")
    else:
        path = _non_empty_string(index, name, location, "file")
        if not path.startswith("/"):
            _fail(index, name, "file", f"must be an absolute path, got {path!r}")
        _no_dot_dot(index, name, "file", path)
    for field in ("attribute", "working_directory", "executable_path"):
        if field in location:
            value = location[field]
            if not isinstance(value, str) or not value:
                _fail(index, name, field, f"must be a non-empty string, got {value!r}")
            if field != "attribute" and not value.startswith("/"):
                _fail(index, name, field, f"must be an absolute path, got {value!r}")
            if field != "attribute":
                _no_dot_dot(index, name, field, value)
    return name


def _address_of(index, name, location, addresses):
    host = location["deploy_to"]
    address = (addresses or {}).get(host)
    if not isinstance(address, str) or not address:
        known = ", ".join(sorted(addresses or {})) or "none"
        _fail(
            index,
            name,
            "deploy_to",
            f"{host!r} is not a host of the dagster_code_locations inventory group (its hosts: {known})",
        )
    return address


def _canonical_host(host, addresses):
    """One spelling per server: an inventory name becomes its address, a name is lower case without
    a trailing dot, localhost is 127.0.0.1, and an IP address is written the standard way."""
    host = host.strip().strip("[]").rstrip(".").lower()
    for inventory_host, address in (addresses or {}).items():
        if host == str(inventory_host).lower():
            host = str(address).strip().strip("[]").rstrip(".").lower()
            break
    if host == "localhost":
        host = "127.0.0.1"
    try:
        return str(ipaddress.ip_address(host))
    except ValueError:
        return host


def validate_locations(locations, addresses=None):
    """Check the whole list: each entry, then names and endpoints across entries."""
    if locations is None:
        return []
    if not isinstance(locations, list):
        raise AnsibleFilterError(f"dagster_code_locations: must be a list, got {type(locations).__name__}")
    if addresses is not None and not isinstance(addresses, dict):
        raise AnsibleFilterError(f"addresses: must be a map of inventory host to address, got {type(addresses).__name__}")
    seen_names = {}
    seen_endpoints = {}
    for index, location in enumerate(locations):
        name = validate_location(index, location)
        if name in seen_names:
            _fail(index, name, "name", f"duplicates the name of dagster_code_locations[{seen_names[name]}]")
        seen_names[name] = index
        if location["type"] == "grpc":
            if "deploy_to" in location:
                address = _address_of(index, name, location, addresses)
                shown = f"{location['deploy_to']} ({address})"
            else:
                address = shown = location["host"]
            endpoint = (_canonical_host(address, addresses), location["port"])
            if endpoint in seen_endpoints:
                other = seen_endpoints[endpoint]
                _fail(
                    index,
                    name,
                    "port",
                    f"{shown}:{location['port']} is already used by dagster_code_locations[{other}]",
                )
            seen_endpoints[endpoint] = index
    return locations


def _python_entry(location, target_key):
    entry = {target_key: location[location["type"]]}
    for field in ("attribute", "working_directory", "executable_path"):
        if field in location:
            entry[field] = location[field]
    entry["location_name"] = location["name"]
    return entry


def workspace_entry(location, addresses=None):
    """The workspace.yaml entry of one validated location."""
    kind = location["type"]
    if kind == "grpc":
        host = addresses[location["deploy_to"]] if "deploy_to" in location else location["host"]
        server = {"host": host, "port": location["port"], "location_name": location["name"]}
        if location.get("ssl"):
            server["ssl"] = True
        return {"grpc_server": server}
    if kind == "module":
        return {"python_module": _python_entry(location, "module_name")}
    return {"python_file": _python_entry(location, "relative_path")}


def dagster_workspace(locations, addresses=None):
    """Validate the code locations and return the workspace.yaml mapping."""
    validated = validate_locations(locations, addresses)
    return {"load_from": [workspace_entry(location, addresses) for location in validated]}


def dagster_code_location_addresses(hostvars, hosts=None):
    """Map each code-location host to the address the instance reaches it at.

    The host's `dagster_code_location_address`, else its `ansible_host`, else
    its inventory name: the address is written once, on the host.
    """
    if hosts is None:
        hosts = []
    if not isinstance(hosts, (list, tuple)):
        raise AnsibleFilterError(f"hosts: must be a list of inventory hosts, got {type(hosts).__name__}")
    addresses = {}
    for host in hosts:
        variables = hostvars[host] if host in hostvars else {}
        address = None
        for key in ("dagster_code_location_address", "ansible_host"):
            value = variables.get(key) if hasattr(variables, "get") else None
            if isinstance(value, str) and value.strip():
                address = value.strip()
                break
        if address is None:
            address = host
        if _UNIT_UNSAFE_RE.search(address):
            raise AnsibleFilterError(f"dagster_code_location_address of {host}: {address!r} is not an address")
        addresses[host] = address
    return addresses


_WILDCARDS = {"0.0.0.0": "127.0.0.1", "::": "::1", "*": "127.0.0.1"}


def _default_bind(address, resolved, host):
    """Listen on the address the instance uses: itself when it is an IP address, else the host's own
    address the name resolves to on the host (resolved); never on every address."""
    if address == "localhost":
        return "127.0.0.1"
    try:
        ipaddress.ip_address(address)
    except ValueError:
        pass
    else:
        return address
    for candidate in resolved or []:
        try:
            return str(ipaddress.ip_address(str(candidate).strip()))
        except ValueError:
            continue
    raise AnsibleFilterError(
        f"dagster_code_location_address of {host}: {address!r} resolves on the host to none of its own addresses, "
        f"so its code servers would not know where to listen; give an IP address of the host, or a bind for each location")


def _probe_host(bind):
    return _WILDCARDS.get(bind, bind)


def _server(location, address, root, resolved=None, host=None):
    name = location["name"]
    base = f"{root.rstrip('/')}/{name}"
    source = location.get("source")
    kind = next((k for k in SOURCE_KINDS if source and k in source), None)
    checkout = f"{base}/src" if kind in ("directory", "git") else None
    working_directory = location.get("working_directory") or checkout or base
    bind = location.get("bind") or _default_bind(address, resolved, host)
    if "module" in location:
        target = ["--module-name", location["module"]]
    else:
        path = location["file"]
        target = ["--python-file", path if path.startswith("/") else f"{checkout}/{path}"]
    if "attribute" in location:
        target += ["--attribute", location["attribute"]]
    normalized_source = None
    if kind == "directory":
        normalized_source = {"kind": kind, "directory": source["directory"]}
    elif kind == "git":
        normalized_source = {"kind": kind, "git": source["git"], "version": source.get("version", "HEAD")}
    elif kind == "pip":
        normalized_source = {"kind": kind, "pip": source["pip"]}
    return {
        "name": name,
        "unit": UNIT_TEMPLATE.format(name),
        "port": location["port"],
        "bind": bind,
        "probe_host": _probe_host(bind),
        "address": address,
        "dir": base,
        "venv": f"{base}/venv",
        "checkout": checkout,
        "source": normalized_source,
        "source_kind": kind or "",
        "working_directory": working_directory,
        "target": target,
        "packages": list(location.get("packages", [])),
        "requirements_lock": location.get("requirements_lock", ""),
        "environment": dict(location.get("environment", {})),
        "environment_files": list(location.get("environment_files", [])),
        "read_write_paths": list(location.get("read_write_paths", [])),
        "memory_deny_write_execute": location.get("memory_deny_write_execute", True),
        # None: the role-wide limits (dagster_code_location_memory_max, _tasks_max) apply.
        "memory_max": location.get("memory_max"),
        "tasks_max": location.get("tasks_max"),
        "image": location.get("image", ""),
        "image_build": dict(location["image_build"]) if "image_build" in location else None,
        "executor": location.get("executor", ""),
        "celery_queues": _celery_queues(location),
        # The collection's package set (and lock) of its environment: the bundle, with
        # dagster-celery and its Redis client for a Celery location (the code server
        # imports the executor, the workers run it).
        "bundle": "celery" if location.get("executor") == "celery" else "default",
        "kind": "server",
    }


def _celery_queues(location):
    if location.get("executor") != "celery":
        return []
    return list(location.get("celery_queues") or CELERY_DEFAULT_QUEUES)


def _check_root(root):
    if not isinstance(root, str) or not root.startswith("/") or _UNIT_UNSAFE_RE.search(root):
        raise AnsibleFilterError(f"dagster_code_location_root: must be an absolute path without white space, got {root!r}")


def dagster_code_location_servers(locations, host, addresses, root="/opt/dagster/code-locations", resolved=None,
                                  host_addresses=None):
    """Validate the whole list; return the gRPC servers that `host` runs, ready for the role's tasks.

    `resolved` lists what the host's address resolves to on the host when that address is a name
    (addresses, or `getent ahosts` lines whose first field is one); with `host_addresses`, only the
    host's own addresses among them count. The servers bind the first."""
    if resolved is not None and not isinstance(resolved, (list, tuple)):
        raise AnsibleFilterError(f"resolved: must be a list of addresses, got {type(resolved).__name__}")
    if resolved is not None:
        firsts = [str(line).split()[0] for line in resolved if str(line).split()]
        resolved = [a for i, a in enumerate(firsts) if a not in firsts[:i]]
        if host_addresses is not None:
            own = {str(a) for a in host_addresses}
            resolved = [a for a in resolved if a in own]
    _check_root(root)
    validated = validate_locations(locations, addresses)
    return [
        _server(location, addresses[host], root, resolved, host)
        for location in validated
        if location["type"] == "grpc" and location.get("deploy_to") == host
    ]


def celery_worker_wanted(wanted, locations, host="this host"):
    """The Celery workers a host runs: [(location, queues, concurrency)] from its
    dagster_celery_worker_locations (empty: every celery location, all of its queues).

    `locations` are validated; an entry naming a location that is not declared with
    executor: celery, or a queue the location does not send to, is an error."""
    celery = {location["name"]: location for location in locations if location.get("executor") == "celery"}
    where = f"dagster_celery_worker_locations of {host}"
    if wanted is None or wanted == []:
        return [(location, _celery_queues(location), None) for location in celery.values()]
    if not isinstance(wanted, list):
        raise AnsibleFilterError(f"{where}: must be a list of {{name, queues, concurrency}}, got {type(wanted).__name__}")
    result, seen = [], set()
    for index, entry in enumerate(wanted):
        field = f"{where}[{index}]"
        if isinstance(entry, str):
            entry = {"name": entry}
        if not isinstance(entry, dict):
            raise AnsibleFilterError(f"{field}: must be a location name or a map with name, got {entry!r}")
        unknown = sorted(set(entry) - {"name", "queues", "concurrency"})
        if unknown:
            raise AnsibleFilterError(f"{field}.{unknown[0]}: is not a key (allowed: concurrency, name, queues)")
        name = entry.get("name")
        if name not in celery:
            declared = ", ".join(sorted(celery)) or "none"
            raise AnsibleFilterError(
                f"{field}.name: {name!r} is not a location of dagster_code_locations with executor: celery "
                f"(those are: {declared}); a worker runs the steps of a declared Celery location only")
        if name in seen:
            raise AnsibleFilterError(f"{field}.name: {name!r} is listed twice")
        seen.add(name)
        queues = _celery_queues(celery[name])
        if "queues" in entry:
            def fail(problem, field=field):
                raise AnsibleFilterError(f"{field}.queues: {problem}")
            mine = celery_queue_list(entry["queues"], fail)
            stray = [queue for queue in mine if queue not in queues]
            if stray:
                fail(f"{stray[0]!r} is not a queue of {name!r} (its queues: {', '.join(queues)}), so no step would reach it")
            queues = mine
        concurrency = entry.get("concurrency")
        if concurrency is not None and (not _is_int(concurrency) or not 1 <= int(concurrency) <= 256):
            raise AnsibleFilterError(f"{field}.concurrency: must be a whole number from 1 to 256, got {concurrency!r}")
        result.append((celery[name], queues, None if concurrency is None else int(concurrency)))
    return result


def dagster_celery_workers(locations, host, wanted=None, concurrency=2, root="/opt/dagster/code-locations"):
    """Validate the list; return the Celery workers `host` runs, ready for the role's tasks.

    Each is a location's environment and code (the paths its code server has, so that
    the job's code resolves the same on both) with the worker's unit, queues and
    concurrency (the entry's, else `concurrency`)."""
    if not _is_int(concurrency) or not 1 <= int(concurrency) <= 256:
        raise AnsibleFilterError(f"dagster_celery_worker_concurrency: must be a whole number from 1 to 256, got {concurrency!r}")
    _check_root(root)
    validated = validate_locations(locations, _deployed_addresses(locations))
    workers = []
    for location, queues, own in celery_worker_wanted(wanted, validated, host):
        worker = _server(location, "127.0.0.1", root)
        for key in ("port", "bind", "probe_host", "address"):
            del worker[key]
        worker.update(kind="worker", unit=WORKER_UNIT_TEMPLATE.format(location["name"]), queues=queues,
                      concurrency=int(concurrency) if own is None else own)
        workers.append(worker)
    return workers


def _deployed_addresses(locations):
    """Addresses for validating the list where the hosts' addresses do not matter: each
    deploy_to host as itself."""
    if not isinstance(locations, list):
        return {}
    return {loc["deploy_to"]: loc["deploy_to"] for loc in locations
            if isinstance(loc, dict) and isinstance(loc.get("deploy_to"), str) and loc["deploy_to"].strip()}


# Workspace entries whose runs execute on the instance's host: the webserver and the
# daemon load these code locations in processes of their own there.
_LOCAL_TYPES = ("python_module", "python_file", "python_package")
_LOOPBACK = ("localhost", "127.0.0.1", "::1")


def dagster_local_locations(workspace, here=None):
    """The names of the workspace's locations whose run workers execute on the instance's host.

    `module`, `file` and package locations, and code servers on its loopback or at one of
    the addresses in `here` (where the instance reaches the code servers deployed to its
    own host), in the workspace's order; the lost run check of that host
    (dagster-fail-lost-runs) looks after their runs."""
    if not isinstance(workspace, dict) or not isinstance(workspace.get("load_from", []), list):
        raise AnsibleFilterError(f"dagster_local_locations: expected a workspace mapping with load_from, got {workspace!r}")
    if here is None:
        here = []
    if not isinstance(here, (list, tuple)) or not all(isinstance(address, str) for address in here):
        raise AnsibleFilterError(f"dagster_local_locations: here must be a list of addresses, got {here!r}")
    local_hosts = set(_LOOPBACK) | set(here)
    names = []
    for entry in workspace.get("load_from") or []:
        for kind, spec in entry.items():
            if kind in _LOCAL_TYPES or (kind == "grpc_server" and spec.get("host") in local_hosts):
                names.append(spec["location_name"])
    return names


class FilterModule:
    """Dagster workspace and code-location filters."""

    def filters(self):
        return {
            "dagster_workspace": dagster_workspace,
            "dagster_code_location_addresses": dagster_code_location_addresses,
            "dagster_code_location_servers": dagster_code_location_servers,
            "dagster_local_locations": dagster_local_locations,
            "dagster_celery_workers": dagster_celery_workers,
        }
