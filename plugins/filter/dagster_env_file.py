"""Quote a value for a systemd EnvironmentFile= so the service gets it byte for byte."""

from __future__ import annotations

import re

DOCUMENTATION = r"""
name: dagster_env_file_value
author: dagsterops maintainers
version_added: "0.3.0"
short_description: A value quoted for a systemd EnvironmentFile
description:
  - Returns the value in double quotes, the form systemd's EnvironmentFile=
    parser (and C(systemd-run --property=EnvironmentFile=)) reads back to the
    same bytes.
  - Inside double quotes systemd removes a backslash before C(\), C("), C($)
    and a backtick, drops a backslash followed by a line break, keeps any other
    backslash, and keeps every other character as it is, line breaks and
    non-ASCII characters included. So those four characters get a backslash,
    and nothing else is escaped. (C(to_json) is not that form - it writes
    non-ASCII characters as C(\\uXXXX), which systemd does not decode.)
  - A NUL character cannot be in an environment variable and is an error; the
    message names the variable, never the value, which may be a secret.
options:
  _input:
    description: The value; numbers and booleans are written as Ansible's C(string) filter does.
    type: raw
    required: true
  name:
    description: The variable's name, for the error message.
    type: str
    default: value
"""

EXAMPLES = r"""
- name: Write an environment file
  ansible.builtin.copy:
    content: |
      {% for name, value in environment | dictsort %}
      {{ name }}={{ value | dagsterops.dagster.dagster_env_file_value(name) }}
      {% endfor %}
    dest: /etc/dagster/dagster.env
    mode: "0640"
"""

RETURN = r"""
_value:
  description: The value in double quotes, escaped for systemd.
  type: str
"""

try:
    from ansible.errors import AnsibleFilterError
except ImportError:  # pragma: no cover - lets the module load without Ansible
    AnsibleFilterError = ValueError  # type: ignore[misc,assignment]

# systemd's SHELL_NEED_ESCAPE: what a backslash escapes inside double quotes.
NEED_ESCAPE = '"\\`$'
_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*\Z")


def dagster_env_file_value(value, name="value"):
    """The value in double quotes, as systemd's EnvironmentFile= parser reads it back."""
    if isinstance(value, bool):
        text = str(value)
    elif isinstance(value, (str, int, float)):
        text = str(value)
    else:
        raise AnsibleFilterError(f"{name}: must be a string, a number or a bool, got {type(value).__name__}")
    if "\0" in text:
        raise AnsibleFilterError(f"{name}: holds a NUL character, which an environment variable cannot hold")
    return '"' + "".join("\\" + char if char in NEED_ESCAPE else char for char in text) + '"'


def dagster_env_file(variables):
    """A systemd EnvironmentFile's lines for a map of variables, by name, each value quoted."""
    if not isinstance(variables, dict):
        raise AnsibleFilterError(f"dagster_env_file: expected a map of variables, got {type(variables).__name__}")
    for name in variables:
        if not isinstance(name, str) or not _NAME.match(name):
            raise AnsibleFilterError(f"dagster_env_file: {name!r} is not a variable name (letters, digits, '_')")
    return "".join(f"{name}={dagster_env_file_value(variables[name], name)}\n" for name in sorted(variables))


class FilterModule:
    """Environment-file filters."""

    def filters(self):
        return {"dagster_env_file_value": dagster_env_file_value, "dagster_env_file": dagster_env_file}
