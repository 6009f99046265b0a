"""dagster_env_file_value: values reach a service through an EnvironmentFile byte for byte.

The parser below follows systemd's own (src/basic/env-file.c, parse_env_file_internal,
v252 as in Debian 12): the tests render the roles' real templates and read them back
the way systemd does. The faults scenario compares the same kind of value with what the
running services hold in /proc/PID/environ.
"""

from __future__ import annotations

from pathlib import Path

import dagster_env_file
import jinja2
import pytest
from dagster_env_file import dagster_env_file_value as quote

ROLES = Path(__file__).resolve().parents[2] / "roles"
NEWLINE, WHITESPACE, COMMENTS, SHELL_NEED_ESCAPE = "\n\r", " \t\n\r", "#;", '"\\`$'


def systemd_env_file(text):
    """Parse an EnvironmentFile as systemd does; return {name: value}."""
    result = {}
    state, key, value, key_ws, value_ws = "PRE_KEY", [], [], None, None

    def push():
        name = "".join(key[:key_ws] if key_ws is not None else key)
        result[name] = "".join(value)

    for char in text:
        if state == "PRE_KEY":
            if char in COMMENTS:
                state = "COMMENT"
            elif char not in WHITESPACE:
                state, key, key_ws = "KEY", [char], None
        elif state == "KEY":
            if char in NEWLINE:
                state, key = "PRE_KEY", []
            elif char == "=":
                state, value, value_ws = "PRE_VALUE", [], None
            else:
                if char not in WHITESPACE:
                    key_ws = None
                elif key_ws is None:
                    key_ws = len(key)
                key.append(char)
        elif state == "PRE_VALUE":
            if char in NEWLINE:
                push()
                state, key, value = "PRE_KEY", [], []
            elif char == "'":
                state = "SINGLE_QUOTE_VALUE"
            elif char == '"':
                state = "DOUBLE_QUOTE_VALUE"
            elif char == "\\":
                state = "VALUE_ESCAPE"
            elif char not in WHITESPACE:
                state = "VALUE"
                value.append(char)
        elif state == "VALUE":
            if char in NEWLINE:
                if value_ws is not None:
                    del value[value_ws:]
                push()
                state, key, value = "PRE_KEY", [], []
            elif char == "\\":
                state, value_ws = "VALUE_ESCAPE", None
            else:
                if char not in WHITESPACE:
                    value_ws = None
                elif value_ws is None:
                    value_ws = len(value)
                value.append(char)
        elif state == "VALUE_ESCAPE":
            state = "VALUE"
            if char not in NEWLINE:
                value.append(char)
        elif state == "SINGLE_QUOTE_VALUE":
            if char == "'":
                state = "PRE_VALUE"
            else:
                value.append(char)
        elif state == "DOUBLE_QUOTE_VALUE":
            if char == '"':
                state = "PRE_VALUE"
            elif char == "\\":
                state = "DOUBLE_QUOTE_VALUE_ESCAPE"
            else:
                value.append(char)
        elif state == "DOUBLE_QUOTE_VALUE_ESCAPE":
            state = "DOUBLE_QUOTE_VALUE"
            if char in SHELL_NEED_ESCAPE:
                value.append(char)
            elif char != "\n":
                value.extend(["\\", char])
        elif state == "COMMENT":
            if char == "\\":
                state = "COMMENT_ESCAPE"
            elif char in NEWLINE:
                state = "PRE_KEY"
        elif state == "COMMENT_ESCAPE":
            state = "COMMENT"
    if state == "VALUE" and value_ws is not None:
        del value[value_ws:]
    if state not in ("PRE_KEY", "KEY", "COMMENT", "COMMENT_ESCAPE"):
        push()
    return result


VALUES = [
    "plain",
    "pä$$wörd\"'\\",
    "$HOME ${HOME} `id` $(id)",
    "ends with a backslash\\",
    "back\\slash\\n is two characters",
    "two\nlines",
    "a backslash at the end of a line\\\nnext",
    "  leading and trailing spaces  ",
    "tab\tand\rcarriage return",
    "# not a comment; nor this",
    "quote ' and \" mixed '\"'",
    "日本語 ✓ emoji 🐍",
    "",
]


def test_filter_is_registered():
    assert dagster_env_file.FilterModule().filters() == {
        "dagster_env_file_value": quote, "dagster_env_file": dagster_env_file.dagster_env_file}


@pytest.mark.parametrize("value", VALUES)
def test_a_value_reads_back_unchanged(value):
    assert systemd_env_file(f"NAME={quote(value)}\n") == {"NAME": value}


def test_non_ascii_is_written_as_is_not_as_json_escapes():
    assert quote("pä$$wörd") == '"pä\\$\\$wörd"'


def test_numbers_and_bools_are_written_as_ansible_writes_them():
    assert systemd_env_file(f"A={quote(5)}\nB={quote(True)}\nC={quote(1.5)}\n") == {"A": "5", "B": "True", "C": "1.5"}


def test_nul_and_other_types_are_refused_without_the_value(filter_error, assert_field):
    message = filter_error(quote, "secret\0value", "DAGSTER_PG_PASSWORD")
    assert_field(message, "DAGSTER_PG_PASSWORD")
    assert "secret" not in message
    assert_field(filter_error(quote, ["a"], "X"), "X")


def test_the_parser_is_systemds_not_json():
    # What the earlier to_json quoting wrote: systemd keeps \u00e4 as six characters.
    assert systemd_env_file('A="p\\u00e4"\n') == {"A": "p\\u00e4"}
    assert systemd_env_file("A=x  \n# c\\\nB=hidden\nC='s\\'\n") == {"A": "x", "C": "s\\"}


def _render(template, **variables):
    environment = jinja2.Environment(keep_trailing_newline=True, trim_blocks=True)
    environment.filters.update(
        {
            "comment": lambda text: "#\n# " + text + "\n#",
            "combine": lambda *maps: {k: v for m in maps for k, v in m.items()},
            "dagsterops.dagster.dagster_env_file_value": quote,
            "dagsterops.dagster.dagster_env_file": dagster_env_file.dagster_env_file,
        }
    )
    return environment.from_string(template.read_text()).render(ansible_managed="Ansible managed", **variables)


def test_the_instance_environment_file_carries_every_value():
    values = {f"V{index}": value for index, value in enumerate(VALUES)}
    text = _render(ROLES / "dagster/templates/dagster.env.j2", dagster_home="/var/lib/dagster",
                   _dagster_environment=dict(values, DAGSTER_PG_PASSWORD="pä$$wörd\"'\\"))
    assert systemd_env_file(text) == dict(values, DAGSTER_HOME="/var/lib/dagster", DAGSTER_PG_PASSWORD="pä$$wörd\"'\\")


# A broker URL as dagster_celery_broker_url writes it: a quoted password, & and ? and %.
CELERY_URL = "rediss://dagster:p%40%24s@broker1:6379/0?ssl_cert_reqs=required&ssl_ca_certs=%2Fetc%2Fca.crt"


def test_the_code_location_environment_file_carries_every_value():
    values = {f"V{index}": value for index, value in enumerate(VALUES)}
    text = _render(
        ROLES / "dagster_code_location/templates/location.env.j2",
        dagster_code_location_environment=values,
        item={"environment": {"LOCATION": "x"}},
        _dagster_code_location_password_environment={"DAGSTER_PG_PASSWORD": "pä$$wörd\"'\\"},
        __dagster_code_location_image="",
        _dagster_code_location_celery_environment={"CELERY_BROKER_URL": CELERY_URL},
    )
    assert systemd_env_file(text) == dict(values, LOCATION="x", DAGSTER_PG_PASSWORD="pä$$wörd\"'\\",
                                          CELERY_BROKER_URL=CELERY_URL)


def test_a_whole_file_is_one_quoted_line_a_variable_in_name_order():
    text = dagster_env_file.dagster_env_file({"B": "x y", "A": 1, "PASS": 'a"$'})
    assert text == 'A="1"\nB="x y"\nPASS="a\\"\\$"\n'
    assert systemd_env_file(text) == {"A": "1", "B": "x y", "PASS": 'a"$'}
    assert dagster_env_file.dagster_env_file({}) == ""


def test_a_whole_file_refuses_what_is_no_variable_name(filter_error, assert_field):
    assert_field(filter_error(dagster_env_file.dagster_env_file, {"A B": "x"}), "dagster_env_file")
    assert_field(filter_error(dagster_env_file.dagster_env_file, ["A=x"]), "dagster_env_file")
    assert_field(filter_error(dagster_env_file.dagster_env_file, {"P": "a\0b"}), "P")
