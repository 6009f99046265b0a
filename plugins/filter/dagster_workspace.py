"""Turn the collection's code-location list into Dagster's workspace.yaml."""

from __future__ import annotations

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
    or C(file). C(grpc) needs C(host) and C(port); C(module) needs C(module);
    C(file) needs C(file), an absolute path. C(module) and C(file) locations
    accept C(attribute), C(working_directory) and C(executable_path).
  - Any error names the entry's index and the offending field, and is raised
    before anything is written to a host.
options:
  _input:
    description: The code locations.
    type: list
    elements: dict
    required: true
"""

EXAMPLES = r"""
- name: Write workspace.yaml
  ansible.builtin.copy:
    content: "{{ dagster_code_locations | dagsterops.dagster.dagster_workspace | to_nice_yaml }}"
    dest: /var/lib/dagster/workspace.yaml
    mode: "0640"
  vars:
    dagster_code_locations:
      - {name: etl, type: grpc, host: code1.example.net, port: 4000}
      - {name: example, type: module, module: dagster_example, working_directory: /opt/dagster/examples}
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

LOCATION_TYPES = ("grpc", "module", "file")

# A location name becomes part of a systemd unit name and of Dagster's
# location selector, so it keeps to characters valid in both.
LOCATION_NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]{0,62}\Z")

_COMMON_KEYS = {"name", "type"}
_PYTHON_KEYS = {"attribute", "working_directory", "executable_path"}
_KEYS_BY_TYPE = {
    "grpc": _COMMON_KEYS | {"host", "port", "ssl"},
    "module": _COMMON_KEYS | _PYTHON_KEYS | {"module"},
    "file": _COMMON_KEYS | _PYTHON_KEYS | {"file"},
}

# Keys other roles of the collection read from the same list (the managed
# gRPC code servers); the workspace ignores them.
DEPLOYMENT_KEYS: set[str] = set()


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
            f"must be 1-63 characters of letters, digits, '-' and '_', starting with a letter or digit, got {name!r}",
        )
    kind = location.get("type")
    if kind not in LOCATION_TYPES:
        _fail(index, name, "type", f"must be one of {', '.join(LOCATION_TYPES)}, got {kind!r}")
    if "module" in location and "file" in location:
        _fail(index, name, "module", "a location takes either module or file, not both")
    unknown = sorted(set(location) - _KEYS_BY_TYPE[kind] - DEPLOYMENT_KEYS)
    if unknown:
        allowed = ", ".join(sorted(_KEYS_BY_TYPE[kind] | DEPLOYMENT_KEYS))
        _fail(index, name, unknown[0], f"is not a key of a {kind!r} location (allowed: {allowed})")
    if kind == "grpc":
        _non_empty_string(index, name, location, "host")
        if "port" not in location:
            _fail(index, name, "port", "is required for a 'grpc' location")
        validate_port(index, name, location["port"])
        if "ssl" in location and not isinstance(location["ssl"], bool):
            _fail(index, name, "ssl", f"must be true or false, got {location['ssl']!r}")
    elif kind == "module":
        _non_empty_string(index, name, location, "module")
    else:
        path = _non_empty_string(index, name, location, "file")
        if not path.startswith("/"):
            _fail(index, name, "file", f"must be an absolute path, got {path!r}")
    for field in ("attribute", "working_directory", "executable_path"):
        if field in location:
            value = location[field]
            if not isinstance(value, str) or not value:
                _fail(index, name, field, f"must be a non-empty string, got {value!r}")
            if field != "attribute" and not value.startswith("/"):
                _fail(index, name, field, f"must be an absolute path, got {value!r}")
    return name


def validate_locations(locations):
    """Check the whole list: each entry, then names and endpoints across entries."""
    if locations is None:
        return []
    if not isinstance(locations, list):
        raise AnsibleFilterError(f"dagster_code_locations: must be a list, got {type(locations).__name__}")
    seen_names = {}
    seen_endpoints = {}
    for index, location in enumerate(locations):
        name = validate_location(index, location)
        if name in seen_names:
            _fail(index, name, "name", f"duplicates the name of dagster_code_locations[{seen_names[name]}]")
        seen_names[name] = index
        if location["type"] == "grpc":
            endpoint = (location["host"], location["port"])
            if endpoint in seen_endpoints:
                other = seen_endpoints[endpoint]
                _fail(
                    index,
                    name,
                    "port",
                    f"{endpoint[0]}:{endpoint[1]} is already used by dagster_code_locations[{other}]",
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


def workspace_entry(location):
    """The workspace.yaml entry of one validated location."""
    kind = location["type"]
    if kind == "grpc":
        server = {"host": location["host"], "port": location["port"], "location_name": location["name"]}
        if location.get("ssl"):
            server["ssl"] = True
        return {"grpc_server": server}
    if kind == "module":
        return {"python_module": _python_entry(location, "module_name")}
    return {"python_file": _python_entry(location, "relative_path")}


def dagster_workspace(locations):
    """Validate the code locations and return the workspace.yaml mapping."""
    validated = validate_locations(locations)
    return {"load_from": [workspace_entry(location) for location in validated]}


class FilterModule:
    """Dagster workspace filters."""

    def filters(self):
        return {"dagster_workspace": dagster_workspace}
