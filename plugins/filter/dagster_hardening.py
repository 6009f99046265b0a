"""The systemd sandboxing every Dagster unit of the collection runs under."""

from __future__ import annotations

DOCUMENTATION = r"""
name: dagster_hardening
author: dagsterops maintainers
version_added: "0.1.0"
short_description: systemd sandboxing directives for a Dagster service
description:
  - Returns the C(Key=Value) lines of the sandbox the collection's units share,
    a read-only system, private /tmp and devices, no capabilities, a system-call
    allow-list and W^X memory.
  - The input is a map of overrides. C(read_write_paths) (a list) becomes
    C(ReadWritePaths=); C(memory_deny_write_execute) (a bool) switches the
    W^X rule for code that needs a JIT; any other key is a systemd directive
    that replaces the default of the same name, or is dropped when its value
    is null.
options:
  _input:
    description: Overrides.
    type: dict
    required: true
"""

EXAMPLES = r"""
- name: Hardening of a code server whose code needs a JIT
  ansible.builtin.debug:
    msg: "{{ {'read_write_paths': ['/var/lib/dagster'], 'memory_deny_write_execute': false}
             | dagsterops.dagster.dagster_hardening }}"
"""

RETURN = r"""
_value:
  description: Unit-file lines, in a stable order.
  type: list
  elements: str
"""

try:
    from ansible.errors import AnsibleFilterError
except ImportError:  # pragma: no cover - lets the module load without Ansible
    AnsibleFilterError = ValueError  # type: ignore[misc,assignment]

# Ordered: the unit files read the same on every run.
DEFAULT_SANDBOX = (
    ("NoNewPrivileges", "yes"),
    ("ProtectSystem", "strict"),
    ("ProtectHome", "yes"),
    ("PrivateTmp", "yes"),
    ("PrivateDevices", "yes"),
    ("ProtectHostname", "yes"),
    ("ProtectClock", "yes"),
    ("ProtectKernelTunables", "yes"),
    ("ProtectKernelModules", "yes"),
    ("ProtectKernelLogs", "yes"),
    ("ProtectControlGroups", "yes"),
    ("ProtectProc", "invisible"),
    ("ProcSubset", "pid"),
    ("RestrictAddressFamilies", "AF_UNIX AF_INET AF_INET6"),
    ("RestrictNamespaces", "yes"),
    ("RestrictRealtime", "yes"),
    ("RestrictSUIDSGID", "yes"),
    ("LockPersonality", "yes"),
    ("MemoryDenyWriteExecute", "yes"),
    ("RemoveIPC", "yes"),
    ("DevicePolicy", "closed"),
    ("CapabilityBoundingSet", ""),
    ("AmbientCapabilities", ""),
    ("SystemCallArchitectures", "native"),
    ("SystemCallFilter", "@system-service"),
    ("SystemCallFilter", "~@privileged @resources"),
    ("SystemCallErrorNumber", "EPERM"),
    ("UMask", "0027"),
)


def _value(key, value):
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, str) and ("\n" in value or "\r" in value):
        raise AnsibleFilterError(f"hardening override {key}: must be a single line, got {value!r}")
    if value is None or isinstance(value, (str, int)):
        return value
    raise AnsibleFilterError(f"hardening override {key}: must be a string, a number or a bool, got {value!r}")


def dagster_hardening(overrides=None):
    """Sandbox lines with the overrides applied."""
    if overrides is None:
        overrides = {}
    if not isinstance(overrides, dict):
        raise AnsibleFilterError(f"hardening overrides: must be a map, got {type(overrides).__name__}")
    overrides = dict(overrides)
    paths = overrides.pop("read_write_paths", [])
    if not isinstance(paths, list) or not all(isinstance(p, str) and p.startswith("/") for p in paths):
        raise AnsibleFilterError(f"read_write_paths: must be a list of absolute paths, got {paths!r}")
    for path in paths:
        if any(char.isspace() for char in path):
            raise AnsibleFilterError(f"read_write_paths: {path!r} holds white space, which systemd would split")
    if "memory_deny_write_execute" in overrides:
        switch = overrides.pop("memory_deny_write_execute")
        if not isinstance(switch, bool):
            raise AnsibleFilterError(f"memory_deny_write_execute: must be true or false, got {switch!r}")
        overrides["MemoryDenyWriteExecute"] = switch
    replaced = {key: _value(key, value) for key, value in overrides.items()}
    lines = []
    for key, value in DEFAULT_SANDBOX:
        if key in replaced:
            continue
        lines.append(f"{key}={value}")
    for key, value in replaced.items():
        if value is not None:
            lines.append(f"{key}={value}")
    lines.extend(f"ReadWritePaths={path}" for path in paths)
    return lines


class FilterModule:
    """Dagster systemd filters."""

    def filters(self):
        return {"dagster_hardening": dagster_hardening}
