"""dagster_instance: the dagster role's settings -> the dagster.yaml mapping."""

from __future__ import annotations

import copy
import re

import dagster_instance
import pytest
import yaml
from dagster_instance import dagster_instance as instance, deep_merge

# The settings the role passes with its defaults (roles/dagster/vars/main.yml
# `_dagster_instance_settings` over roles/dagster/defaults/main.yml), with real types.
DEFAULT_SETTINGS = {
    "postgres": {
        "host": "/run/postgresql",
        "port": 5432,
        "database": "dagster",
        "user": "dagster",
        "password_env": "DAGSTER_PG_PASSWORD",
        "params": {},
    },
    "run_coordinator": "queued",
    "max_concurrent_runs": 10,
    "tag_concurrency_limits": [],
    "dequeue_interval_seconds": 2,
    "run_launcher": "default",
    "docker": {},
    "code_locations": [],
    "example_location": False,
    "run_retries": {"max_retries": 0, "retry_on_asset_or_op_failure": True},
    "run_monitoring": {
        "enabled": True,
        "poll_interval": 120,
        "start_timeout": 180,
        "cancel_timeout": 180,
        "max_resume_run_attempts": 0,
        "max_runtime": 0,
    },
    "retention_days": 7,
    "telemetry_enabled": False,
    "nux_enabled": False,
    "extra_config": {},
}

TAG_LIMITS = [
    {"key": "database", "value": "warehouse", "limit": 2},
    {"key": "team", "value": {"applyLimitPerUniqueValue": True}, "limit": 1},
    {"key": "heavy", "limit": 0},
]
DOCKER = {
    "image": "registry.example.net/etl:1",
    "network": "dagster",
    "env_vars": ["API_TOKEN", "MODE=prod"],
    "container_kwargs": {"volumes": ["/srv/data:/data"]},
}
_DELETE = object()


def settings(**changes):
    """DEFAULT_SETTINGS with changes; a key `a__b` sets settings[a][b], a value _DELETE removes it."""
    result = copy.deepcopy(DEFAULT_SETTINGS)
    for dotted, value in changes.items():
        *parents, key = dotted.split("__")
        target = result
        for parent in parents:
            target = target[parent]
        if value is _DELETE:
            del target[key]
        else:
            target[key] = value
    return result


def tcp(**changes):
    return settings(postgres__host="db.example.net", **changes)


# ---------------------------------------------------------------- the fixture is the role's


def _render(value, variables):
    """Resolve the `{{ name }}` templates _dagster_instance_settings is made of."""
    if isinstance(value, dict):
        return {key: _render(item, variables) for key, item in value.items()}
    match = re.fullmatch(r"\{\{\s*(\w+)\s*\}\}", value) if isinstance(value, str) else None
    if not match:
        return value
    return _render(variables[match.group(1)], variables)


def test_fixture_is_what_the_role_passes_with_its_defaults(repo_root):
    role = repo_root / "roles" / "dagster"
    defaults = yaml.safe_load((role / "defaults" / "main.yml").read_text())
    role_vars = yaml.safe_load((role / "vars" / "main.yml").read_text())
    rendered = _render(role_vars["_dagster_instance_settings"], {**defaults, **role_vars})
    # An expression, not a plain variable: the run containers' files with docker over TCP, none otherwise.
    run_files = rendered.pop("docker_run_files")
    assert "if _dagster_docker and not _dagster_postgres_local else {}" in run_files
    # The database settings come from dagster_postgres_settings (test_role_agreement.py renders them).
    assert "dagster_postgres_settings(dagster_postgres_ca_file)" in rendered.pop("postgres")
    expected = settings()
    del expected["postgres"]
    assert rendered == expected


def test_filter_is_registered():
    assert dagster_instance.FilterModule().filters() == {
        "dagster_instance": instance,
        "dagster_docker_pgpass": dagster_instance.dagster_docker_pgpass,
        "dagster_code_host_instance": dagster_instance.dagster_code_host_instance,
        "dagster_postgres_settings": dagster_instance.dagster_postgres_settings,
        "dagster_lost_run_check": dagster_instance.dagster_lost_run_check,
    }


# ---------------------------------------------------------------- sections


def test_defaults_give_the_expected_instance():
    assert instance(DEFAULT_SETTINGS) == {
        "storage": {"postgres": {"postgres_url": "postgresql+psycopg2://dagster@/dagster?host=/run/postgresql"}},
        "run_coordinator": {
            "module": "dagster.core.run_coordinator",
            "class": "QueuedRunCoordinator",
            "config": {"max_concurrent_runs": 10, "dequeue_interval_seconds": 2},
        },
        "run_launcher": {"module": "dagster.core.launcher", "class": "DefaultRunLauncher"},
        "run_retries": {"enabled": False, "max_retries": 0, "retry_on_asset_or_op_failure": True},
        "run_monitoring": {
            "enabled": True,
            "poll_interval_seconds": 120,
            "start_timeout_seconds": 180,
            "cancel_timeout_seconds": 180,
            "max_resume_run_attempts": 0,
        },
        "retention": {
            "schedule": {"purge_after_days": 7},
            "sensor": {"purge_after_days": 7},
            "auto_materialize": {"purge_after_days": 7},
        },
        "telemetry": {"enabled": False},
        "nux": {"enabled": False},
    }


def test_socket_storage_on_another_port_names_the_port():
    storage = instance(settings(postgres__port=5433))["storage"]
    assert storage == {"postgres": {"postgres_url": "postgresql+psycopg2://dagster@/dagster?host=/run/postgresql&port=5433"}}


def test_socket_storage_needs_no_password_env():
    storage = instance(settings(postgres__password_env=_DELETE))["storage"]
    assert storage == {"postgres": {"postgres_url": "postgresql+psycopg2://dagster@/dagster?host=/run/postgresql"}}


def test_tcp_storage_reads_the_password_from_the_environment():
    storage = instance(tcp(postgres__port=6432, postgres__user="etl", postgres__database="runs"))["storage"]
    assert storage == {
        "postgres": {
            "postgres_db": {
                "username": "etl",
                "password": {"env": "DAGSTER_PG_PASSWORD"},
                "hostname": "db.example.net",
                "db_name": "runs",
                "port": 6432,
                "scheme": "postgresql+psycopg2",
            }
        }
    }


def test_tcp_storage_carries_connection_params():
    db = instance(tcp(postgres__params={"sslmode": "require"}))["storage"]["postgres"]["postgres_db"]
    assert db["params"] == {"sslmode": "require"}


def test_queued_coordinator_carries_its_limits():
    coordinator = instance(
        settings(max_concurrent_runs=3, dequeue_interval_seconds=15, tag_concurrency_limits=TAG_LIMITS)
    )["run_coordinator"]
    assert coordinator == {
        "module": "dagster.core.run_coordinator",
        "class": "QueuedRunCoordinator",
        "config": {"max_concurrent_runs": 3, "dequeue_interval_seconds": 15, "tag_concurrency_limits": TAG_LIMITS},
    }


def test_queued_coordinator_accepts_no_limit():
    assert instance(settings(max_concurrent_runs=-1))["run_coordinator"]["config"]["max_concurrent_runs"] == -1


def test_default_coordinator_has_no_config():
    coordinator = instance(settings(run_coordinator="default"))["run_coordinator"]
    assert coordinator == {"module": "dagster.core.run_coordinator", "class": "DefaultRunCoordinator"}


def test_docker_launcher_carries_its_config():
    launcher = instance(settings(run_launcher="docker", docker=DOCKER))["run_launcher"]
    assert launcher == {"module": "dagster_docker", "class": "DockerRunLauncher", "config": DOCKER}


def test_docker_launcher_without_config():
    launcher = instance(settings(run_launcher="docker"))["run_launcher"]
    assert launcher == {"module": "dagster_docker", "class": "DockerRunLauncher"}


@pytest.mark.parametrize(("max_retries", "enabled"), [(0, False), (1, True), (5, True)])
@pytest.mark.parametrize("on_failure", [True, False])
def test_run_retries_are_enabled_exactly_when_max_retries_is_positive(max_retries, enabled, on_failure):
    retries = instance(
        settings(run_retries__max_retries=max_retries, run_retries__retry_on_asset_or_op_failure=on_failure)
    )["run_retries"]
    assert retries == {"enabled": enabled, "max_retries": max_retries, "retry_on_asset_or_op_failure": on_failure}


def test_run_monitoring_with_a_maximum_runtime():
    monitoring = instance(
        settings(
            run_monitoring={
                "enabled": True,
                "poll_interval": 30,
                "start_timeout": 300,
                "cancel_timeout": 60,
                "max_resume_run_attempts": 2,
                "max_runtime": 3600,
            }
        )
    )["run_monitoring"]
    assert monitoring == {
        "enabled": True,
        "poll_interval_seconds": 30,
        "start_timeout_seconds": 300,
        "cancel_timeout_seconds": 60,
        "max_resume_run_attempts": 2,
        "max_runtime_seconds": 3600,
    }


@pytest.mark.parametrize(("days", "purge_after_days"), [(7, 7), (1, 1), (90, 90), (0, -1)])
def test_retention_covers_every_tick_kind(days, purge_after_days):
    retention = instance(settings(retention_days=days))["retention"]
    assert retention == {
        kind: {"purge_after_days": purge_after_days} for kind in ("schedule", "sensor", "auto_materialize")
    }


@pytest.mark.parametrize("enabled", [True, False])
def test_telemetry_and_nux_follow_their_settings(enabled):
    result = instance(settings(telemetry_enabled=enabled, nux_enabled=enabled))
    assert result["telemetry"] == {"enabled": enabled}
    assert result["nux"] == {"enabled": enabled}


def test_settings_are_not_modified():
    given = settings(run_launcher="docker", docker=DOCKER, tag_concurrency_limits=TAG_LIMITS)
    before = copy.deepcopy(given)
    result = instance(given)
    result["run_launcher"]["config"]["env_vars"].append("CHANGED")
    result["run_coordinator"]["config"]["tag_concurrency_limits"][0]["limit"] = 99
    assert given == before


# ---------------------------------------------------------------- extra_config


def test_extra_config_is_merged_last_key_by_key():
    extra = {
        "run_coordinator": {"config": {"dequeue_use_threads": True}},
        "run_monitoring": {"cancellation_thread_poll_interval_seconds": 30},
        "code_servers": {"local_startup_timeout": 360},
        "concurrency": {"pools": {"default_limit": 1}},
    }
    result = instance(settings(extra_config=extra))
    assert result["run_coordinator"]["config"] == {
        "max_concurrent_runs": 10,
        "dequeue_interval_seconds": 2,
        "dequeue_use_threads": True,
    }
    assert result["run_coordinator"]["class"] == "QueuedRunCoordinator"
    assert result["run_monitoring"]["cancellation_thread_poll_interval_seconds"] == 30
    assert result["run_monitoring"]["poll_interval_seconds"] == 120
    assert result["code_servers"] == {"local_startup_timeout": 360}
    assert result["concurrency"] == {"pools": {"default_limit": 1}}


@pytest.mark.parametrize(
    "extra, variable",
    [
        ({"run_coordinator": {"config": {"tag_concurrency_limits": [{"key": "team", "limit": 4}]}}},
         "dagster_tag_concurrency_limits"),
        # The NixOS module's defect, through the back door: retries without `enabled`.
        ({"run_retries": {"max_retries": 3}}, "dagster_run_retries_max_retries"),
        ({"run_coordinator": {"class": "DefaultRunCoordinator"}}, "dagster_run_coordinator"),
        ({"run_monitoring": {"poll_interval_seconds": 30}}, "dagster_run_monitoring_*"),
        ({"telemetry": {"enabled": True}}, "dagster_telemetry_enabled"),
    ],
    ids=["tag-limits", "retries", "coordinator-class", "monitoring", "telemetry"],
)
def test_extra_config_may_not_change_what_a_variable_sets(filter_error, extra, variable):
    message = filter_error(instance, settings(tag_concurrency_limits=TAG_LIMITS, extra_config=extra))
    assert message.startswith("dagster_extra_config."), message
    assert variable in message, message


def test_extra_config_repeating_a_role_value_is_accepted():
    result = instance(settings(extra_config={"telemetry": {"enabled": False}}))
    assert result["telemetry"] == {"enabled": False}


def test_deep_merge_leaves_its_inputs_alone():
    base = {"a": {"b": 1, "c": [1]}, "d": 1}
    override = {"a": {"c": [1], "e": {"f": 3}}, "g": {"h": 4}}
    base_before, override_before = copy.deepcopy(base), copy.deepcopy(override)
    merged = deep_merge(base, override)
    assert merged == {"a": {"b": 1, "c": [1], "e": {"f": 3}}, "d": 1, "g": {"h": 4}}
    merged["a"]["e"]["f"] = 0
    assert (base, override) == (base_before, override_before)


# ---------------------------------------------------------------- errors

_POSTGRES_PG = {"postgres_db": {"hostname": "other"}}
LIMIT = {"key": "team", "limit": 1}

# name -> (settings, the variable the message must begin with)
ERRORS = {
    # extra_config keys that contradict what the role writes
    "extra-storage": (settings(extra_config={"storage": {"postgres": _POSTGRES_PG}}), "dagster_extra_config.storage"),
    "extra-run-storage": (settings(extra_config={"run_storage": {}}), "dagster_extra_config.run_storage"),
    "extra-event-log-storage": (
        settings(extra_config={"event_log_storage": {}}),
        "dagster_extra_config.event_log_storage",
    ),
    "extra-schedule-storage": (
        settings(extra_config={"schedule_storage": {}}),
        "dagster_extra_config.schedule_storage",
    ),
    "extra-run-queue": (
        settings(extra_config={"run_queue": {"max_concurrent_runs": 5}}),
        "dagster_extra_config.run_queue",
    ),
    "extra-concurrency-runs": (
        settings(extra_config={"concurrency": {"runs": {"max_concurrent_runs": 5}}}),
        "dagster_extra_config.concurrency.runs",
    ),
    "extra-not-a-map": (settings(extra_config=["telemetry"]), "dagster_extra_config"),
    # choices
    "coordinator-choice": (settings(run_coordinator="QueuedRunCoordinator"), "dagster_run_coordinator"),
    "launcher-choice": (settings(run_launcher="k8s"), "dagster_run_launcher"),
    # tag concurrency limits
    "tag-limits-with-default-coordinator": (
        settings(run_coordinator="default", tag_concurrency_limits=[LIMIT]),
        "dagster_tag_concurrency_limits",
    ),
    "tag-limits-not-a-list": (settings(tag_concurrency_limits={"team": 1}), "dagster_tag_concurrency_limits"),
    "tag-limit-not-a-map": (settings(tag_concurrency_limits=["team"]), "dagster_tag_concurrency_limits[0]"),
    "tag-limit-key-missing": (
        settings(tag_concurrency_limits=[LIMIT, {"limit": 1}]),
        "dagster_tag_concurrency_limits[1].key",
    ),
    "tag-limit-key-empty": (
        settings(tag_concurrency_limits=[{**LIMIT, "key": ""}]),
        "dagster_tag_concurrency_limits[0].key",
    ),
    "tag-limit-limit-missing": (
        settings(tag_concurrency_limits=[{"key": "team"}]),
        "dagster_tag_concurrency_limits[0].limit",
    ),
    "tag-limit-limit-string": (
        settings(tag_concurrency_limits=[{**LIMIT, "limit": "1"}]),
        "dagster_tag_concurrency_limits[0].limit",
    ),
    "tag-limit-limit-negative": (
        settings(tag_concurrency_limits=[{**LIMIT, "limit": -1}]),
        "dagster_tag_concurrency_limits[0].limit",
    ),
    "tag-limit-unknown-key": (
        settings(tag_concurrency_limits=[{**LIMIT, "pool": "x"}]),
        "dagster_tag_concurrency_limits[0].pool",
    ),
    "tag-limit-value-int": (
        settings(tag_concurrency_limits=[{**LIMIT, "value": 3}]),
        "dagster_tag_concurrency_limits[0].value",
    ),
    "tag-limit-value-map": (
        settings(tag_concurrency_limits=[{**LIMIT, "value": {"applyLimitPerUniqueValue": False}}]),
        "dagster_tag_concurrency_limits[0].value",
    ),
    # integers
    "max-concurrent-runs-string": (settings(max_concurrent_runs="10"), "dagster_max_concurrent_runs"),
    "max-concurrent-runs-below-minus-one": (settings(max_concurrent_runs=-2), "dagster_max_concurrent_runs"),
    "dequeue-interval-zero": (settings(dequeue_interval_seconds=0), "dagster_dequeue_interval_seconds"),
    "max-retries-string": (settings(run_retries__max_retries="3"), "dagster_run_retries_max_retries"),
    "max-retries-bool": (settings(run_retries__max_retries=True), "dagster_run_retries_max_retries"),
    "max-retries-negative": (settings(run_retries__max_retries=-1), "dagster_run_retries_max_retries"),
    "poll-interval-string": (settings(run_monitoring__poll_interval="120"), "dagster_run_monitoring_poll_interval"),
    "poll-interval-zero": (settings(run_monitoring__poll_interval=0), "dagster_run_monitoring_poll_interval"),
    "start-timeout-missing": (settings(run_monitoring__start_timeout=_DELETE), "dagster_run_monitoring_start_timeout"),
    "cancel-timeout-float": (settings(run_monitoring__cancel_timeout=1.5), "dagster_run_monitoring_cancel_timeout"),
    "resume-attempts-negative": (
        settings(run_monitoring__max_resume_run_attempts=-1),
        "dagster_run_monitoring_max_resume_run_attempts",
    ),
    "max-runtime-string": (settings(run_monitoring__max_runtime="1h"), "dagster_run_monitoring_max_runtime"),
    "retention-string": (settings(retention_days="7"), "dagster_retention_days"),
    "retention-negative": (settings(retention_days=-1), "dagster_retention_days"),
    # booleans
    "retry-on-failure-int": (
        settings(run_retries__retry_on_asset_or_op_failure=1),
        "dagster_run_retries_retry_on_asset_or_op_failure",
    ),
    "retry-on-failure-string": (
        settings(run_retries__retry_on_asset_or_op_failure="true"),
        "dagster_run_retries_retry_on_asset_or_op_failure",
    ),
    "monitoring-enabled-int": (settings(run_monitoring__enabled=1), "dagster_run_monitoring_enabled"),
    "telemetry-int": (settings(telemetry_enabled=0), "dagster_telemetry_enabled"),
    "nux-string": (settings(nux_enabled="no"), "dagster_nux_enabled"),
    # storage
    "postgres-not-a-map": (settings(postgres="postgresql://dagster@/dagster"), "dagster_postgres"),
    "postgres-host-empty": (settings(postgres__host=""), "dagster_postgres_host"),
    "postgres-database-missing": (settings(postgres__database=_DELETE), "dagster_postgres_database"),
    "postgres-user-int": (settings(postgres__user=1), "dagster_postgres_user"),
    "postgres-port-string": (settings(postgres__port="5432"), "dagster_postgres_port"),
    "postgres-port-zero": (tcp(postgres__port=0), "dagster_postgres_port"),
    "tcp-without-password-env": (tcp(postgres__password_env=_DELETE), "dagster_postgres_password_env"),
    "tcp-with-empty-password-env": (tcp(postgres__password_env=""), "dagster_postgres_password_env"),
    "tcp-params-not-a-map": (tcp(postgres__params=["sslmode=require"]), "dagster_postgres_params"),
    # docker launcher
    "docker-not-a-map": (settings(run_launcher="docker", docker=["image"]), "dagster_docker_launcher"),
    "docker-unknown-key": (
        settings(run_launcher="docker", docker={"volumes": ["/a:/a"]}),
        "dagster_docker_launcher.volumes",
    ),
    "docker-network-and-networks": (
        settings(run_launcher="docker", docker={"network": "a", "networks": ["b"]}),
        "dagster_docker_launcher.network",
    ),
    "docker-env-vars-string": (
        settings(run_launcher="docker", docker={"env_vars": "A=1"}),
        "dagster_docker_launcher.env_vars",
    ),
    "docker-env-vars-int": (
        settings(run_launcher="docker", docker={"env_vars": [1]}),
        "dagster_docker_launcher.env_vars",
    ),
}


@pytest.mark.parametrize(("given", "variable"), list(ERRORS.values()), ids=list(ERRORS))
def test_bad_setting_is_rejected_naming_the_variable(filter_error, assert_field, given, variable):
    assert_field(filter_error(instance, given), variable)


@pytest.mark.parametrize("given", [None, [], "dagster"], ids=["null", "list", "string"])
def test_settings_must_be_a_map(filter_error, assert_field, given):
    assert_field(filter_error(instance, given), "dagster_instance")


# ---------------------------------------------------------------- against Dagster itself


@pytest.mark.parametrize(
    "given",
    [
        DEFAULT_SETTINGS,
        tcp(tag_concurrency_limits=TAG_LIMITS, run_retries__max_retries=2, retention_days=0),
        settings(run_coordinator="default", run_launcher="docker", docker=DOCKER, run_monitoring__max_runtime=60),
    ],
    ids=["defaults", "tcp-limits-retries", "default-coordinator-docker"],
)
def test_output_passes_the_installed_dagster_schema(monkeypatch, given):
    # The services' environment file holds the database password.
    monkeypatch.setenv("DAGSTER_PG_PASSWORD", "stand-in")
    from dagster._config import Shape, process_config
    from dagster._core.instance.config import dagster_instance_config_schema

    result = process_config(Shape(dagster_instance_config_schema()), instance(given))
    assert result.success, [error.message for error in result.errors]


WRITABLE = ["/var/lib/dagster/storage"]


@pytest.mark.parametrize(
    "extra",
    [
        {"local_artifact_storage": {"module": "dagster.core.storage.root", "class": "LocalArtifactStorage",
                                    "config": {"base_dir": "/var/lib/dagster/storage/artifacts"}}},
        {"compute_logs": {"module": "dagster.core.storage.local_compute_log_manager",
                          "class": "LocalComputeLogManager", "config": {"base_dir": "/var/lib/dagster/storage"}}},
        {"compute_logs": {"module": "dagster_aws.s3.compute_log_manager", "class": "S3ComputeLogManager",
                          "config": {"bucket": "logs", "local_dir": "/var/lib/dagster/storage/tmp"}}},
    ],
)
def test_extra_directories_inside_the_writable_ones_pass(extra):
    result = instance({**DEFAULT_SETTINGS, "extra_config": extra}, writable=WRITABLE)
    assert all(result[key] == value for key, value in extra.items())


@pytest.mark.parametrize(
    ("section", "key", "path"),
    [
        ("local_artifact_storage", "base_dir", "/etc/dagster"),
        ("compute_logs", "base_dir", "/var/lib/dagster"),
        ("compute_logs", "base_dir", "/var/lib/dagster/storage/../../../../etc"),
        ("compute_logs", "local_dir", "/tmp/logs"),
        ("local_artifact_storage", "base_dir", "storage"),
        ("compute_logs", "base_dir", "/var/lib/dagster/storage-other"),
    ],
)
def test_extra_directories_outside_the_writable_ones_are_refused(filter_error, assert_field, section, key, path):
    extra = {section: {"module": "m", "class": "C", "config": {key: path}}}
    message = filter_error(instance, {**DEFAULT_SETTINGS, "extra_config": extra}, writable=WRITABLE)
    assert_field(message, f"dagster_extra_config.{section}.config.{key}")
    assert "outside" in message


def test_without_writable_the_directories_are_not_checked():
    extra = {"compute_logs": {"module": "m", "class": "C", "config": {"base_dir": "/elsewhere"}}}
    assert instance({**DEFAULT_SETTINGS, "extra_config": extra})["compute_logs"] == extra["compute_logs"]


@pytest.mark.parametrize(
    ("key", "value"),
    [("user", "dagster@evil"), ("user", "a/b"), ("database", "dagster?host=/tmp"), ("database", "x:y"),
     ("user", "dag ster")],
)
def test_names_that_would_change_the_connection_url_are_refused(filter_error, assert_field, key, value):
    settings = copy.deepcopy(DEFAULT_SETTINGS)
    settings["postgres"][key] = value
    assert_field(filter_error(instance, settings), f"dagster_postgres_{key}")


# ---------------------------------------------------------------- a code host's lost run check


def test_a_code_host_reads_the_instances_storage_with_monitoring_on():
    postgres = tcp(postgres__params={"sslmode": "verify-full"})["postgres"]
    code_host = dagster_instance.dagster_code_host_instance(postgres, "/var/lib/dagster/storage")
    assert code_host["storage"] == instance(tcp(postgres__params={"sslmode": "verify-full"}))["storage"]
    assert code_host["run_monitoring"] == {"enabled": True}
    assert code_host["local_artifact_storage"]["config"] == {"base_dir": "/var/lib/dagster/storage"}
    assert code_host["compute_logs"]["config"] == {"base_dir": "/var/lib/dagster/storage"}
    assert code_host["telemetry"] == {"enabled": False}


@pytest.mark.parametrize(
    ("postgres", "storage_dir", "field"),
    [
        ({"host": "db", "database": "dagster", "user": "dagster"}, "/s", "dagster_postgres_password_env"),
        ({"host": "db", "database": "dag ster", "user": "dagster", "password_env": "P"}, "/s", "dagster_postgres_database"),
        ({"host": "/run/postgresql", "database": "dagster", "user": "dagster"}, "storage", "dagster_code_location_home"),
    ],
)
def test_a_code_hosts_bad_settings_name_the_field(postgres, storage_dir, field):
    with pytest.raises(Exception, match=field):
        dagster_instance.dagster_code_host_instance(postgres, storage_dir)


# ---------------------------------------------------------------- read from an instance host's variables


postgres_settings = dagster_instance.dagster_postgres_settings
lost_run_check = dagster_instance.dagster_lost_run_check
CA = "/etc/dagster/postgresql-ca.crt"


def test_postgres_settings_over_the_socket_need_no_parameter():
    assert postgres_settings({}, CA) == DEFAULT_SETTINGS["postgres"]


def test_postgres_settings_over_tcp_verify_the_server_and_take_the_users_params_last():
    got = postgres_settings({"dagster_postgres_host": "db", "dagster_postgres_port": "6432",
                             "dagster_postgres_params": {"sslmode": "verify-ca", "connect_timeout": 5}}, CA)
    assert got["port"] == 6432  # an INI inventory's string
    assert got["params"] == {"sslmode": "verify-ca", "sslrootcert": CA, "channel_binding": "require", "connect_timeout": 5}
    assert instance(settings(postgres=got))["storage"]["postgres"]["postgres_db"]["hostname"] == "db"


@pytest.mark.parametrize(
    ("variables", "ca_file", "field"),
    [
        ({"dagster_postgres_host": ""}, CA, "dagster_postgres_host"),
        ({"dagster_postgres_params": "sslmode=disable"}, CA, "dagster_postgres_params"),
        ({}, "postgresql-ca.crt", "ca_file"),
        (["dagster_postgres_host"], CA, "dagster_postgres_settings"),
    ],
)
def test_postgres_settings_bad_input_names_the_field(variables, ca_file, field, filter_error, assert_field):
    assert_field(filter_error(postgres_settings, variables, ca_file), field)


QUEUED = {"dagster_daemon_enabled": True, "dagster_run_coordinator": "queued"}


@pytest.mark.parametrize(
    ("here", "locations", "expected"),
    [
        ({}, ["example"], {"check": "instance", "period": 120}),
        ({"dagster_run_monitoring_poll_interval": 5}, ["example"], {"check": "instance", "period": 30}),
        ({}, [], {"check": None, "period": 120}),
        ({"dagster_run_launcher": "docker"}, ["example"], {"check": None, "period": 120}),
        ({"dagster_run_monitoring_enabled": "false"}, ["example"], {"check": None, "period": 120}),
    ],
)
def test_an_instance_host_whose_daemon_launches_every_run_checks_its_own(here, locations, expected):
    assert lost_run_check([], dict(QUEUED, **here), locations=locations) == expected


@pytest.mark.parametrize("here", [None, {"dagster_daemon_enabled": False}, {"dagster_run_coordinator": "default"}])
def test_elsewhere_a_host_with_servers_checks_them_at_the_instances_shortest_interval(here):
    instances = [{"dagster_run_monitoring_poll_interval": 60}, {"dagster_run_monitoring_poll_interval": 45}, {}]
    assert lost_run_check(instances, here, locations=["a"]) == {"check": "code_host", "period": 45}


@pytest.mark.parametrize(
    ("instances", "locations", "enabled"),
    [
        ([{}, {"dagster_run_launcher": "docker"}], ["a"], True),
        ([{"dagster_run_monitoring_enabled": False}], ["a"], True),
        ([], ["a"], True),
        ([{}], [], True),
        ([{}], ["a"], False),
    ],
)
def test_no_code_host_check_unless_every_instance_runs_monitored_workers(instances, locations, enabled):
    assert lost_run_check(instances, None, locations=locations, enabled=enabled)["check"] is None


@pytest.mark.parametrize(
    ("instances", "here", "locations", "field"),
    [
        ({"inst": {}}, None, ["a"], "instances"),
        ([{"dagster_run_monitoring_poll_interval": 0}], None, ["a"], "dagster_run_monitoring_poll_interval"),
        ([{"dagster_run_monitoring_enabled": "maybe"}], None, ["a"], "dagster_run_monitoring_enabled"),
        ([], {"dagster_daemon_enabled": "sometimes"}, ["a"], "dagster_daemon_enabled"),
        ([], None, "a", "locations"),
    ],
)
def test_lost_run_check_bad_input_names_the_field(instances, here, locations, field, filter_error, assert_field):
    assert_field(filter_error(lost_run_check, instances, here, locations=locations), field)
