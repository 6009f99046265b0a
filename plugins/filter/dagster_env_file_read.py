"""Read a variable back from a systemd environment file."""

from __future__ import annotations

DOCUMENTATION = r"""
name: dagster_env_file_read
author: dagsterops maintainers
version_added: "1.1.0"
short_description: One variable's value from a systemd environment file
description:
  - Parses the content of a file given to a unit's C(EnvironmentFile=) the way
    systemd does, and returns the value of one variable, or an empty string
    when the file does not set it.
  - Double-quoted values take C(\\) escapes of C(\"), C(\\), C($), the
    backtick and a newline; single-quoted values are taken as they are;
    outside quotes a backslash escapes any character. Lines starting with
    C(#) or C(;) are comments.
  - The roles use it to keep the database password already in place when the
    database host is not part of a run (C(--limit)).
options:
  _input:
    description: The file's content.
    type: str
    required: true
  name:
    description: The variable's name.
    type: str
    required: true
"""

EXAMPLES = r"""
- name: The password in place
  ansible.builtin.set_fact:
    password: "{{ slurped.content | b64decode | dagsterops.dagster.dagster_env_file_read('DAGSTER_PG_PASSWORD') }}"
  no_log: true
"""

RETURN = r"""
_value:
  description: The value, or an empty string when the variable is not set.
  type: str
"""

_DQUOTE_ESCAPES = '"\\`$\n'


def parse_env_file(content: str) -> dict[str, str]:
    """Every assignment of the file, as systemd reads it (later assignments win)."""
    values: dict[str, str] = {}
    index, size = 0, len(content)
    while index < size:
        # Start of a line: skip white space, comments and empty lines.
        while index < size and content[index] in " \t\r\n":
            index += 1
        if index >= size:
            break
        if content[index] in "#;":
            while index < size and content[index] != "\n":
                index += 1
            continue
        equals = content.find("=", index)
        newline = content.find("\n", index)
        if equals < 0 or (0 <= newline < equals):
            index = size if newline < 0 else newline + 1
            continue  # not an assignment; systemd ignores it
        name = content[index:equals].strip()
        index = equals + 1
        while index < size and content[index] in " \t":
            index += 1
        value: list[str] = []
        pending = ""  # white space outside quotes: kept only if more follows
        while index < size and content[index] != "\n":
            char = content[index]
            if char in " \t\r":
                pending += char
                index += 1
                continue
            value.append(pending)
            pending = ""
            if char == '"':
                index += 1
                while index < size and content[index] != '"':
                    if content[index] == "\\" and index + 1 < size and content[index + 1] in _DQUOTE_ESCAPES:
                        if content[index + 1] != "\n":
                            value.append(content[index + 1])
                        index += 2
                        continue
                    value.append(content[index])
                    index += 1
                index += 1
            elif char == "'":
                end = content.find("'", index + 1)
                end = size if end < 0 else end
                value.append(content[index + 1:end])
                index = end + 1
            elif char == "\\" and index + 1 < size:
                if content[index + 1] != "\n":
                    value.append(content[index + 1])
                index += 2
            else:
                value.append(char)
                index += 1
        values[name] = "".join(value)
        index += 1
    return values


def dagster_env_file_read(content: str, name: str) -> str:
    return parse_env_file(str(content)).get(name, "")


class FilterModule:
    def filters(self):
        return {"dagster_env_file_read": dagster_env_file_read}
