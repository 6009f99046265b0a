"""dagster_deployment: checks across the inventory, before any host changes."""

from __future__ import annotations

import dagster_deployment
import pytest
import yaml
from dagster_deployment import dagster_deployment as deployment

LOCATIONS = [{"name": "etl", "type": "grpc", "port": 4000, "deploy_to": "code1", "module": "etl"}]
TCP = {"dagster_postgres_host": "db1.example.net", "dagster_code_locations": LOCATIONS}


def test_filter_is_registered():
    assert dagster_deployment.FilterModule().filters() == {"dagster_deployment": deployment}


def test_the_fallbacks_are_the_dagster_roles_defaults(repo_root):
    defaults = yaml.safe_load((repo_root / "roles/dagster/defaults/main.yml").read_text())
    assert {key: defaults[key] for key in dagster_deployment.ROLE_DEFAULTS} == dagster_deployment.ROLE_DEFAULTS


def test_all_in_one_defaults_pass():
    assert deployment({"aio": {}}, {"dagster_instance": ["aio"], "dagster_postgresql": ["aio"]}) == {
        "aio:/run/postgresql/dagster": "aio"
    }


def test_no_groups_at_all_pass():
    assert deployment({}, {"all": [], "ungrouped": []}) == {}


def test_one_daemon_and_extra_webservers_share_a_database():
    hostvars = {
        "web1": TCP,
        "web2": {**TCP, "dagster_daemon_enabled": False},
        "web3": {**TCP, "dagster_daemon_enabled": False},
        "code1": {"dagster_code_locations": LOCATIONS},
    }
    groups = {"dagster_instance": ["web1", "web2", "web3"], "dagster_code_locations": ["code1"]}
    assert deployment(hostvars, groups) == {"db1.example.net:5432/dagster": "web1"}


def test_instances_with_their_own_databases_each_run_a_daemon():
    hostvars = {
        "a": {},  # local socket: its own database
        "b": {},
        "c": {"dagster_postgres_host": "db1", "dagster_postgres_database": "prod"},
        "d": {"dagster_postgres_host": "db1", "dagster_postgres_database": "staging"},
        "e": {"dagster_postgres_host": "db1", "dagster_postgres_database": "prod", "dagster_postgres_port": 6432},
    }
    result = deployment(hostvars, {"dagster_instance": ["a", "b", "c", "d", "e"]})
    assert sorted(result.values()) == ["a", "b", "c", "d", "e"]


def test_two_daemons_on_one_database_are_an_error_naming_the_hosts(filter_error, assert_field):
    message = filter_error(deployment, {"web1": TCP, "web2": TCP}, {"dagster_instance": ["web1", "web2"]})
    assert_field(message, "dagster_daemon_enabled")
    assert "web1, web2 would each run dagster-daemon" in message
    assert "db1.example.net:5432/dagster" in message
    assert "dagster_daemon_enabled: false on all of them but one" in message


def test_no_daemon_for_a_database_is_an_error(filter_error, assert_field):
    off = {**TCP, "dagster_daemon_enabled": False}
    message = filter_error(deployment, {"web1": off, "web2": off}, {"dagster_instance": ["web1", "web2"]})
    assert_field(message, "dagster_daemon_enabled")
    assert "no host runs dagster-daemon" in message and "web1, web2" in message


def test_part_of_a_deployment_may_lack_the_daemon_but_never_has_two(filter_error):
    off = {**TCP, "dagster_daemon_enabled": False}
    assert deployment({"web2": off}, {"dagster_instance": ["web2"]}, partial=True) == {}
    message = filter_error(deployment, {"web1": TCP, "web2": TCP}, {"dagster_instance": ["web1", "web2"]}, partial=True)
    assert "web1, web2 would each run dagster-daemon" in message


def test_daemon_switch_must_be_a_bool(filter_error, assert_field):
    message = filter_error(deployment, {"web1": {"dagster_daemon_enabled": "no"}}, {"dagster_instance": ["web1"]})
    assert_field(message, "dagster_daemon_enabled")


@pytest.mark.parametrize("differing", ["code1", "web1"])
def test_every_host_must_see_the_same_location_list(filter_error, assert_field, differing):
    hostvars = {"web1": dict(TCP), "code1": {"dagster_code_locations": LOCATIONS}}
    hostvars[differing] = {**hostvars[differing], "dagster_code_locations": []}
    message = filter_error(deployment, hostvars, {"dagster_instance": ["web1"], "dagster_code_locations": ["code1"]})
    assert_field(message, "dagster_code_locations")
    assert "group_vars/all" in message


def test_groups_must_be_a_map(filter_error, assert_field):
    assert_field(filter_error(deployment, {}, ["web1"]), "groups")


def test_the_other_roles_fallbacks_are_their_defaults(repo_root):
    for role, fallbacks in dagster_deployment.OTHER_ROLE_DEFAULTS.items():
        defaults = yaml.safe_load((repo_root / f"roles/{role}/defaults/main.yml").read_text())
        assert {key: defaults[key] for key in fallbacks} == fallbacks


AIO_GROUPS = {"dagster_instance": ["aio"], "dagster_postgresql": ["aio"], "dagster_code_locations": ["aio"]}
AIO_LOCATION = {"name": "etl", "type": "grpc", "port": 4000, "deploy_to": "aio", "module": "etl"}


def test_a_code_location_release_other_than_the_instances_is_refused(filter_error, assert_field):
    hostvars = {"web1": {**TCP, "dagster_version": "1.13.27"},
                "code1": {"dagster_code_locations": LOCATIONS, "dagster_code_location_version": "1.13.26"}}
    groups = {"dagster_instance": ["web1"], "dagster_code_locations": ["code1"]}
    message = filter_error(deployment, hostvars, groups)
    assert_field(message, "dagster_code_location_version")
    assert "1.13.26 on code1" in message and "1.13.27" in message
    hostvars["code1"]["dagster_code_location_version"] = "1.13.27"
    assert deployment(hostvars, groups)
    # The instance's release changed alone is the same mistake.
    hostvars["web1"]["dagster_version"] = "1.13.28"
    assert_field(filter_error(deployment, hostvars, groups), "dagster_code_location_version")


@pytest.mark.parametrize(
    ("variables", "service"),
    [
        ({"dagster_code_locations": [{**AIO_LOCATION, "port": 3000}]}, "webserver"),
        ({"dagster_code_locations": [{**AIO_LOCATION, "port": 5432}]}, "PostgreSQL"),
        ({"dagster_code_locations": [{**AIO_LOCATION, "port": 3100}], "dagster_webserver_port": 3100}, "webserver"),
        ({"dagster_code_locations": [{**AIO_LOCATION, "port": 6000}], "dagster_postgresql_port": 6000}, "PostgreSQL"),
    ],
)
def test_a_code_server_on_a_port_of_the_same_host_is_refused(filter_error, assert_field, variables, service):
    message = filter_error(deployment, {"aio": variables}, AIO_GROUPS)
    assert_field(message, "dagster_code_locations[0] ('etl').port")
    assert service in message


def test_the_webserver_on_postgresqls_port_is_refused(filter_error, assert_field):
    message = filter_error(deployment, {"aio": {"dagster_webserver_port": 5432}}, AIO_GROUPS)
    assert_field(message, "dagster_webserver_port")


def test_the_same_port_on_other_hosts_is_fine():
    hostvars = {"web1": {**TCP, "dagster_code_locations": [{**AIO_LOCATION, "deploy_to": "code1", "port": 3000}]},
                "code1": {"dagster_code_locations": [{**AIO_LOCATION, "deploy_to": "code1", "port": 3000}]},
                "db1": {}}
    groups = {"dagster_instance": ["web1"], "dagster_code_locations": ["code1"], "dagster_postgresql": ["db1"]}
    assert deployment(hostvars, groups)
