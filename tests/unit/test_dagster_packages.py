"""dagster_packages and dagster_library_version: one pinned bundle per release."""

from __future__ import annotations

import dagster_packages
import pytest
from dagster_packages import dagster_library_version, dagster_packages as packages

CORE_1_13_27 = [
    "dagster==1.13.27",
    "dagster-webserver==1.13.27",
    "dagster-graphql==1.13.27",
    "dagster-pipes==1.13.27",
    "dagster-shared==1.13.27",
    "dagster-postgres==0.29.27",
]


def test_filters_are_registered():
    assert dagster_packages.FilterModule().filters() == {
        "dagster_packages": packages,
        "dagster_library_version": dagster_library_version,
    }


@pytest.mark.parametrize(
    ("core", "library"),
    [("1.13.27", "0.29.27"), ("1.12.22", "0.28.22"), ("1.0.0", "0.16.0"), ("1.9.5", "0.25.5")],
)
def test_library_version_is_minor_plus_16(core, library):
    assert dagster_library_version(core) == library


def test_default_bundle_is_core_plus_dagster_postgres():
    assert packages("1.13.27") == CORE_1_13_27


def test_default_launcher_is_the_default_bundle():
    assert packages("1.13.27", run_launcher="default") == CORE_1_13_27


def test_docker_launcher_adds_dagster_docker_at_the_library_version():
    assert packages("1.13.27", run_launcher="docker") == [*CORE_1_13_27, "dagster-docker==0.29.27"]


def test_other_release_pins_its_own_pair():
    assert packages("1.12.22") == [
        "dagster==1.12.22",
        "dagster-webserver==1.12.22",
        "dagster-graphql==1.12.22",
        "dagster-pipes==1.12.22",
        "dagster-shared==1.12.22",
        "dagster-postgres==0.28.22",
    ]


def test_extras_are_appended_as_given_after_the_launcher_library():
    extra = ["pandas==2.2.3", "dagster-dbt==0.29.27"]
    assert packages("1.13.27", run_launcher="docker", extra=extra) == [
        *CORE_1_13_27,
        "dagster-docker==0.29.27",
        *extra,
    ]


@pytest.mark.parametrize("extra", [None, []])
def test_no_extras(extra):
    assert packages("1.13.27", extra=extra) == CORE_1_13_27


BAD_VERSIONS = [
    "2.0.0",
    "1.13",
    "latest",
    1.13,
    "",
    None,
    "v1.13.27",
    "1.13.27rc1",
    "1.13.27.1",
    " 1.13.27",
    "1.13.27\n",
]


@pytest.mark.parametrize("version", BAD_VERSIONS)
@pytest.mark.parametrize("func", [dagster_library_version, packages], ids=["library_version", "packages"])
def test_bad_version_is_rejected(filter_error, assert_field, func, version):
    assert_field(filter_error(func, version), "dagster_version")


@pytest.mark.parametrize("launcher", ["k8s", "Docker", "", None])
def test_bad_launcher_is_rejected(filter_error, assert_field, launcher):
    assert_field(filter_error(packages, "1.13.27", run_launcher=launcher), "dagster_run_launcher")


@pytest.mark.parametrize(
    "extra",
    ["pandas", {"pandas": "2"}, [""], ["  "], [1], [None], ["pandas", 2]],
    ids=["string", "map", "empty", "blank", "int", "null", "mixed"],
)
def test_bad_extras_are_rejected(filter_error, assert_field, extra):
    assert_field(filter_error(packages, "1.13.27", extra=extra), "dagster_extra_packages")


@pytest.mark.parametrize(
    ("extra", "index", "reason"),
    [
        (["pandas", "--index-url=https://evil.example.net/simple"], 1, "option"),
        (["-e /srv/etl"], 0, "option"),
        (["  -r /etc/shadow"], 0, "option"),
        (["pandas\n--index-url https://evil.example.net"], 0, "line break"),
        (["pandas\r"], 0, "line break"),
    ],
)
def test_options_and_line_breaks_in_extra_packages_are_refused(filter_error, assert_field, extra, index, reason):
    message = filter_error(packages, "1.13.27", extra=extra)
    assert_field(message, f"dagster_extra_packages[{index}]")
    assert reason in message


def test_requirements_with_markers_and_urls_pass():
    extra = ["pandas>=2 ; python_version >= '3.11'", "etl @ https://files.example.net/etl-1.0-py3-none-any.whl"]
    assert packages("1.13.27", extra=extra)[-2:] == extra


def test_the_celery_executor_adds_dagster_celery_with_redis_at_the_library_version():
    assert packages("1.13.27", executor="celery") == [*CORE_1_13_27, "dagster-celery[redis]==0.29.27"]
    assert packages("1.12.22", executor="celery")[-1] == "dagster-celery[redis]==0.28.22"


def test_the_default_executor_is_the_default_bundle():
    assert packages("1.13.27", executor="default") == CORE_1_13_27


def test_the_celery_library_comes_after_the_launchers_and_before_the_extras():
    assert packages("1.13.27", run_launcher="docker", extra=["pandas==2.2.3"], executor="celery") == [
        *CORE_1_13_27,
        "dagster-docker==0.29.27",
        "dagster-celery[redis]==0.29.27",
        "pandas==2.2.3",
    ]


@pytest.mark.parametrize("executor", ["dask", "Celery", "", None])
def test_bad_executor_is_rejected(filter_error, assert_field, executor):
    assert_field(filter_error(packages, "1.13.27", executor=executor), "executor")
