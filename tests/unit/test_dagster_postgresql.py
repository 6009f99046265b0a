"""dagster_postgresql_client_networks and dagster_postgresql_settings: pg_hba and server settings."""

from __future__ import annotations

import dagster_postgresql
import pytest
from dagster_postgresql import dagster_postgresql_client_networks as networks
from dagster_postgresql import dagster_postgresql_settings as settings

FIELD = "dagster_postgresql_client_addresses"


def test_filters_are_registered():
    assert dagster_postgresql.FilterModule().filters() == {
        "dagster_postgresql_client_networks": networks,
        "dagster_postgresql_settings": settings,
    }


def test_addresses_become_networks():
    assert networks(["10.0.0.5", "10.1.0.0/16", "fd00::5", "fd00:1::/64", "0.0.0.0/8"]) == [
        "10.0.0.5/32", "10.1.0.0/16", "fd00::5/128", "fd00:1::/64", "0.0.0.0/8"]
    assert networks([]) == []
    # All three private IPv4 ranges together are within the limit.
    assert networks(["10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16"])


@pytest.mark.parametrize(
    ("entries", "index", "reason"),
    [
        (["0.0.0.0/0"], 0, "every address"),
        (["::/0"], 0, "every address"),
        (["::0/0"], 0, "every address"),
        (["0.0.0.0/00"], 0, "every address"),
        (["10.0.0.5", "0.0.0.0/1", "128.0.0.0/1"], 1, "large part"),
        (["2000::/3"], 0, "large part"),
        (["10.0.0.1/99"], 0, "not a host address"),
        (["abc"], 0, "not a host address"),
        (["all"], 0, "not a host address"),
        (["samenet"], 0, "not a host address"),
        (["10.0.0.5", ""], 1, "must be"),
        ([None], 0, "must be"),
        (["10.0.0.1/24"], 0, "host bits"),
        (["10.0.0.0/+8"], 0, "not a"),
    ],
)
def test_open_to_all_and_invalid_entries_are_refused(filter_error, assert_field, entries, index, reason):
    message = filter_error(networks, entries)
    assert_field(message, f"{FIELD}[{index}]")
    assert reason in message


def test_many_networks_together_are_refused(filter_error, assert_field):
    message = filter_error(networks, [f"{n}.0.0.0/8" for n in range(1, 6)])
    assert_field(message, FIELD)
    assert "together" in message


def test_not_a_list_is_refused(filter_error, assert_field):
    assert_field(filter_error(networks, "10.0.0.5"), FIELD)


def test_further_settings_pass():
    assert settings({"work_mem": "64MB", "max_connections": 200, "auto_explain.log_min_duration": "1s"})


@pytest.mark.parametrize(
    "name", ["password_encryption", "listen_addresses", "port", "ssl", "hba_file", "data_directory",
             "unix_socket_directories", "Password_Encryption"]
)
def test_settings_the_role_manages_are_refused(filter_error, assert_field, name):
    message = filter_error(settings, {"work_mem": "64MB", name: "x"})
    assert_field(message, f"dagster_postgresql_settings.{name}")
    assert "leave it out" in message


@pytest.mark.parametrize("bad", [{"work mem": "1"}, {"a;b": "1"}, {"work_mem": "1\nport = 1"}, {"work_mem": ["1"]}])
def test_malformed_settings_are_refused(filter_error, bad):
    assert filter_error(settings, bad).startswith("dagster_postgresql_settings")
