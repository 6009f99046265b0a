"""dagster_unit_values, dagster_dedicated_dirs, dagster_service_account: inputs that would take over a host."""

from __future__ import annotations

import dagster_inputs
import pytest
from dagster_inputs import dagster_dedicated_dirs as dirs
from dagster_inputs import dagster_service_account as account
from dagster_inputs import dagster_unit_values as unit_values


def test_filters_are_registered():
    assert dagster_inputs.FilterModule().filters() == {
        "dagster_unit_values": unit_values,
        "dagster_dedicated_dirs": dirs,
        "dagster_service_account": account,
    }


@pytest.mark.parametrize(
    ("values", "kind"),
    [
        ({"dagster_webserver_host": "127.0.0.1", "dagster_python": "/usr/bin/python3"}, "word"),
        ({"dagster_webserver_path_prefix": "/dagster"}, "word"),
        ({"dagster_run_purge_schedule": "Mon *-*-* 03:00:00"}, "line"),
        ({"dagster_service_after": ["docker.service", "remote-fs.target", "getty@tty1.service"]}, "unit"),
        ({"dagster_service_after": []}, "unit"),
    ],
)
def test_good_unit_values_pass(values, kind):
    assert unit_values(values, kind=kind) == values


@pytest.mark.parametrize(
    ("values", "kind", "field", "reason"),
    [
        ({"dagster_webserver_host": "127.0.0.1\nExecStartPre=/bin/sh"}, "word", "dagster_webserver_host", "line break"),
        ({"dagster_webserver_path_prefix": "/%h"}, "word", "dagster_webserver_path_prefix", "specifier"),
        ({"dagster_home": "/var/lib/$USER"}, "word", "dagster_home", "variable"),
        ({"dagster_webserver_host": "a b"}, "word", "dagster_webserver_host", "white space"),
        ({"dagster_webserver_host": "x;id"}, "word", "dagster_webserver_host", "';'"),
        ({"dagster_webserver_host": "'x'"}, "word", "dagster_webserver_host", "quote"),
        ({"dagster_run_purge_schedule": "daily\n[Service]"}, "line", "dagster_run_purge_schedule", "line break"),
        ({"dagster_run_purge_schedule": "%H"}, "line", "dagster_run_purge_schedule", "specifier"),
        ({"dagster_service_after": ["ok.service", "bad\nunit.service"]}, "unit", "dagster_service_after[1]", "line break"),
        ({"dagster_service_after": ["postgresql"]}, "unit", "dagster_service_after[0]", "unit name"),
        ({"dagster_service_after": ["a.service b.service"]}, "unit", "dagster_service_after[0]", "white space"),
        ({"dagster_webserver_host": ""}, "word", "dagster_webserver_host", "non-empty"),
        ({"dagster_webserver_host": 5}, "word", "dagster_webserver_host", "non-empty"),
    ],
)
def test_bad_unit_values_are_refused_naming_the_field(filter_error, assert_field, values, kind, field, reason):
    message = filter_error(unit_values, values, kind=kind)
    assert_field(message, field)
    assert reason in message


def test_unknown_kind_and_non_map_are_refused(filter_error):
    assert "kind" in filter_error(unit_values, {}, kind="path")
    assert "map" in filter_error(unit_values, ["x"])


DEFAULTS = {
    "dagster_home": "/var/lib/dagster",
    "dagster_config_dir": "/etc/dagster",
    "dagster_install_dir": "/opt/dagster",
    "dagster_backup_dir": "/var/backups/dagster",
}


def test_the_role_defaults_are_dedicated_and_disjoint():
    assert dirs(DEFAULTS, disjoint=True) == DEFAULTS
    assert dirs({"dagster_venv_path": "/srv/venvs/dagster"}, protected=DEFAULTS)
    assert dirs({"x": "/data"}) and dirs({"x": "/home/etl/dagster"}) and dirs({"x": "/var/lib/dagster-2"})


@pytest.mark.parametrize(
    ("field", "path", "reason"),
    [
        ("dagster_home", "/", "root directory"),
        ("dagster_config_dir", "/etc", "top-level system directory"),
        ("dagster_install_dir", "/usr", "top-level system directory"),
        ("dagster_home", "/var/lib", "system directory"),
        ("dagster_backup_dir", "/var/backups", "system directory"),
        ("dagster_install_dir", "/usr/local", "system directory"),
        ("dagster_config_dir", "/etc/systemd/system", "system directory"),
        ("dagster_home", "/var/lib/postgresql", "system directory"),
        ("dagster_backup_dir", "/tmp/backups", "writable by every user"),
        ("dagster_backup_dir", "/var/tmp/dagster", "writable by every user"),
        ("dagster_home", "/run/dagster", "emptied at every boot"),
        ("dagster_home", "/proc/self", "virtual"),
        ("dagster_home", "/opt/dagster/../../etc", "'..'"),
        ("dagster_home", "/var/lib/dagster/", "trailing"),
        ("dagster_home", "//var/lib/dagster", "'//'"),
        ("dagster_home", "/var/lib/./dagster", "'.'"),
        ("dagster_home", "var/lib/dagster", "absolute"),
        ("dagster_home", "/var/lib/dag%hster", "specifier"),
        ("dagster_config_dir", "/etc/dagster\nExecStartPre=/bin/sh", "line break"),
    ],
)
def test_system_and_malformed_directories_are_refused(filter_error, assert_field, field, path, reason):
    message = filter_error(dirs, {field: path})
    assert_field(message, field)
    assert reason in message


@pytest.mark.parametrize(
    ("changed", "field", "relation"),
    [
        ({"dagster_config_dir": "/var/lib/dagster"}, "dagster_config_dir", "is dagster_home"),
        ({"dagster_backup_dir": "/var/lib/dagster/storage/backups"}, "dagster_backup_dir", "is inside dagster_home"),
        ({"dagster_install_dir": "/var/lib/dagster/opt"}, "dagster_install_dir", "is inside dagster_home"),
        ({"dagster_backup_dir": "/opt"}, "dagster_backup_dir", "top-level"),
        ({"dagster_backup_dir": "/srv/dagster", "dagster_home": "/srv/dagster/home"}, "dagster_backup_dir", "holds dagster_home"),
    ],
)
def test_nested_directories_are_refused(filter_error, assert_field, changed, field, relation):
    message = filter_error(dirs, dict(DEFAULTS, **changed), disjoint=True)
    assert_field(message, field)
    assert relation in message


def test_without_disjoint_nesting_is_allowed():
    assert dirs(dict(DEFAULTS, dagster_backup_dir="/var/lib/dagster/backups"))


@pytest.mark.parametrize("path", ["/var/lib/dagster/storage/venv", "/etc", "/etc/dagster/venv", "/var"])
def test_a_directory_overlapping_a_protected_one_is_refused(filter_error, assert_field, path):
    message = filter_error(dirs, {"dagster_venv_path": path}, protected=DEFAULTS)
    assert_field(message, "dagster_venv_path")


def test_read_write_paths_name_the_location_and_index(filter_error, assert_field):
    message = filter_error(
        dirs,
        {"dagster_code_locations ('etl').read_write_paths": ["/srv/etl", "/opt"]},
        protected={"dagster_code_location_install_dir": "/opt/dagster"},
    )
    assert_field(message, "dagster_code_locations ('etl').read_write_paths[1]")
    message = filter_error(
        dirs,
        {"dagster_code_locations ('etl').read_write_paths": ["/opt/dagster/code-locations/etl/venv"]},
        protected={"dagster_code_location_install_dir": "/opt/dagster"},
    )
    assert "overlaps dagster_code_location_install_dir" in message


@pytest.mark.parametrize("name", ["dagster", "etl-runner", "_dagster", "svc_dagster2"])
def test_own_accounts_pass(name):
    assert account({"dagster_user": name}) == {"dagster_user": name}


@pytest.mark.parametrize(
    "name", ["root", "postgres", "www-data", "nobody", "daemon", "sudo", "docker", "shadow", "systemd-network", "adm"]
)
def test_system_accounts_are_refused(filter_error, assert_field, name):
    message = filter_error(account, {"dagster_user": "dagster", "dagster_group": name})
    assert_field(message, "dagster_group")
    assert "system account" in message


@pytest.mark.parametrize("name", ["Dagster", "dag ster", "user@example.com", "0day", "", "a" * 33, None])
def test_malformed_account_names_are_refused(filter_error, assert_field, name):
    assert_field(filter_error(account, {"dagster_user": name}), "dagster_user")


@pytest.mark.parametrize("module", ["dagster_inputs", "dagster_postgresql", "dagster_env_file"])
@pytest.mark.parametrize("block", ["DOCUMENTATION", "EXAMPLES", "RETURN"])
def test_documentation_blocks_are_yaml(module, block):
    import importlib

    import yaml

    assert yaml.safe_load(getattr(importlib.import_module(module), block))
