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


def test_filter_is_registered():
    assert dagster_workspace.FilterModule().filters() == {"dagster_workspace": workspace}


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
