"""dagster_hardening: the systemd sandbox lines every Dagster unit shares."""

from __future__ import annotations

import copy

import dagster_hardening
import pytest
from dagster_hardening import dagster_hardening as hardening


def _directive(lines, key):
    """The lines that set `key`."""
    return [line for line in lines if line.split("=", 1)[0] == key]


def test_filter_is_registered():
    assert dagster_hardening.FilterModule().filters() == {"dagster_hardening": hardening}


@pytest.mark.parametrize(
    "line",
    [
        "ProtectSystem=strict",
        "NoNewPrivileges=yes",
        "MemoryDenyWriteExecute=yes",
        "CapabilityBoundingSet=",
        "AmbientCapabilities=",
        "PrivateTmp=yes",
        "ProtectHome=yes",
        "SystemCallFilter=@system-service",
        "UMask=0027",
    ],
)
def test_default_sandbox_has(line):
    assert line in hardening({})


def test_default_lines_are_key_value_and_set_each_directive_once():
    lines = hardening({})
    assert all("=" in line and "\n" not in line for line in lines)
    keys = [line.split("=", 1)[0] for line in lines]
    # SystemCallFilter is the one directive systemd accumulates: an allow-list, then a deny-list.
    assert _directive(lines, "SystemCallFilter") == [
        "SystemCallFilter=@system-service",
        "SystemCallFilter=~@privileged @resources",
    ]
    assert len(keys) - 1 == len(set(keys))
    assert not _directive(lines, "ReadWritePaths")


def test_no_overrides_is_the_default():
    assert hardening(None) == hardening({}) == hardening()


def test_read_write_paths_become_read_write_paths_lines_in_order():
    lines = hardening({"read_write_paths": ["/var/lib/dagster", "/srv/data"]})
    assert _directive(lines, "ReadWritePaths") == ["ReadWritePaths=/var/lib/dagster", "ReadWritePaths=/srv/data"]
    assert lines[: len(hardening({}))] == hardening({})


@pytest.mark.parametrize(("flag", "value"), [(False, "no"), (True, "yes")])
def test_memory_deny_write_execute_switch(flag, value):
    lines = hardening({"memory_deny_write_execute": flag})
    assert _directive(lines, "MemoryDenyWriteExecute") == [f"MemoryDenyWriteExecute={value}"]


@pytest.mark.parametrize(
    ("overrides", "expected"),
    [
        ({"ProtectHome": "read-only"}, "ProtectHome=read-only"),
        ({"PrivateUsers": False}, "PrivateUsers=no"),
        (
            {"RestrictAddressFamilies": "AF_UNIX AF_INET AF_INET6 AF_NETLINK"},
            "RestrictAddressFamilies=AF_UNIX AF_INET AF_INET6 AF_NETLINK",
        ),
        ({"LimitNOFILE": 65536}, "LimitNOFILE=65536"),
    ],
)
def test_an_override_replaces_the_default_of_its_name(overrides, expected):
    key = expected.split("=", 1)[0]
    assert _directive(hardening(overrides), key) == [expected]


def test_an_override_of_null_drops_the_directive():
    lines = hardening({"ProtectHostname": None, "ProcSubset": None})
    assert not _directive(lines, "ProtectHostname")
    assert not _directive(lines, "ProcSubset")
    assert len(lines) == len(hardening({})) - 2


def test_same_input_gives_the_same_list_and_input_is_not_modified():
    overrides = {
        "read_write_paths": ["/var/lib/dagster"],
        "memory_deny_write_execute": False,
        "ProtectHome": "read-only",
        "PrivateUsers": None,
    }
    before = copy.deepcopy(overrides)
    first = hardening(overrides)
    assert hardening(copy.deepcopy(overrides)) == first
    assert overrides == before


BAD_INPUTS = {
    "not-a-map": (["NoNewPrivileges=yes"], "hardening overrides"),
    "paths-string": ({"read_write_paths": "/var/lib/dagster"}, "read_write_paths"),
    "paths-relative": ({"read_write_paths": ["var/lib/dagster"]}, "read_write_paths"),
    "paths-not-strings": ({"read_write_paths": [1]}, "read_write_paths"),
    "value-list": ({"ReadOnlyPaths": ["/etc"]}, "hardening override ReadOnlyPaths"),
    "value-map": ({"ProtectHome": {"mode": "read-only"}}, "hardening override ProtectHome"),
    "value-float": ({"CPUWeight": 1.5}, "hardening override CPUWeight"),
}

MORE_BAD_INPUTS = {
    "mdwe-string-false": pytest.param(
        {"memory_deny_write_execute": "false"}, "memory_deny_write_execute"
    ),
    "mdwe-string-no": pytest.param(
        {"memory_deny_write_execute": "no"}, "memory_deny_write_execute"
    ),
    "value-newline": pytest.param(
        {"UMask": "0027\nExecStartPre=/bin/sh"}, "hardening override UMask"
    ),
    "path-newline": pytest.param(
        {"read_write_paths": ["/srv\nExecStartPre=/bin/sh"]}, "read_write_paths"
    ),
}


@pytest.mark.parametrize(
    ("overrides", "field"),
    [*BAD_INPUTS.values(), *MORE_BAD_INPUTS.values()],
    ids=[*BAD_INPUTS, *MORE_BAD_INPUTS],
)
def test_bad_input_is_rejected(filter_error, assert_field, overrides, field):
    assert_field(filter_error(hardening, overrides), field)
