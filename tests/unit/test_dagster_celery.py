"""dagster_celery: the broker's URLs, and the checks of a Celery deployment across the inventory."""

from __future__ import annotations

import copy
from urllib.parse import parse_qs, unquote, urlsplit

import dagster_celery
import pytest
import yaml
from dagster_celery import dagster_celery_broker_url as broker_url
from dagster_celery import dagster_celery_deployment as celery_deployment
from dagster_deployment import dagster_deployment as deployment

CA_FILE = "/etc/dagster/celery-broker-ca.crt"
BROKER = {"inventory_hostname": "broker1"}


def test_filters_are_registered():
    assert dagster_celery.FilterModule().filters() == {
        "dagster_celery_broker_url": broker_url,
        "dagster_celery_deployment": celery_deployment,
    }


@pytest.mark.parametrize(
    ("role", "constants"),
    [("dagster_celery_broker", "BROKER_DEFAULTS"), ("dagster_celery_worker", "WORKER_DEFAULTS")],
)
def test_the_fallbacks_are_the_celery_roles_defaults(repo_root, role, constants):
    fallbacks = getattr(dagster_celery, constants)
    defaults = yaml.safe_load((repo_root / f"roles/{role}/defaults/main.yml").read_text())
    assert {key: defaults[key] for key in fallbacks} == fallbacks


# --- dagster_celery_broker_url ----------------------------------------------------------------


def test_tls_is_on_by_default_with_queue_and_results_in_databases_0_and_1():
    assert broker_url(BROKER, "s3cret", CA_FILE) == {
        "broker_url": "rediss://dagster:s3cret@broker1:6379/0?ssl_cert_reqs=required"
                      "&ssl_ca_certs=%2Fetc%2Fdagster%2Fcelery-broker-ca.crt",
        "result_backend": "rediss://dagster:s3cret@broker1:6379/1?ssl_cert_reqs=required"
                          "&ssl_ca_certs=%2Fetc%2Fdagster%2Fcelery-broker-ca.crt",
    }


def test_the_tls_query_verifies_the_broker_against_the_ca_file():
    for url in broker_url(BROKER, "s3cret", CA_FILE).values():
        assert parse_qs(urlsplit(url).query) == {"ssl_cert_reqs": ["required"], "ssl_ca_certs": [CA_FILE]}


@pytest.mark.parametrize("password", ["p@ss:/w%rd", "a b?c#d&e=f", "ünï/cødé+", "%40"])
def test_a_password_with_special_characters_is_quoted_and_reads_back(password):
    for url in broker_url(BROKER, password, CA_FILE).values():
        parts = urlsplit(url)
        assert unquote(parts.password) == password
        assert (parts.username, parts.hostname, parts.port) == ("dagster", "broker1", 6379)
        assert parse_qs(parts.query)["ssl_ca_certs"] == [CA_FILE]


@pytest.mark.parametrize("tls", [False, "false", "False", "no"])
def test_tls_off_gives_plain_redis_without_a_query(tls):
    assert broker_url({**BROKER, "dagster_celery_broker_tls": tls}, "s3cret", CA_FILE) == {
        "broker_url": "redis://dagster:s3cret@broker1:6379/0",
        "result_backend": "redis://dagster:s3cret@broker1:6379/1",
    }


@pytest.mark.parametrize("tls", [True, "true", "yes"])
def test_tls_on_by_setting_gives_rediss(tls):
    urls = broker_url({**BROKER, "dagster_celery_broker_tls": tls}, "s3cret", CA_FILE)
    assert all(url.startswith("rediss://") for url in urls.values())


@pytest.mark.parametrize("port", [6380, "6380"], ids=["int", "ini-string"])
def test_port_and_user_are_the_broker_hosts_own(port):
    broker = {**BROKER, "dagster_celery_broker_port": port, "dagster_celery_broker_user": "celery"}
    urls = broker_url(broker, "s3cret", CA_FILE)
    assert urls["broker_url"].startswith("rediss://celery:s3cret@broker1:6380/0?")
    assert urls["result_backend"].startswith("rediss://celery:s3cret@broker1:6380/1?")


def test_a_user_with_special_characters_is_quoted():
    (url, _) = broker_url({**BROKER, "dagster_celery_broker_user": "ops:x@y"}, "s3cret", CA_FILE).values()
    assert url.startswith("rediss://ops%3Ax%40y:s3cret@broker1:6379/0?")
    assert (unquote(urlsplit(url).username), urlsplit(url).password) == ("ops:x@y", "s3cret")


def test_the_broker_address_wins_over_the_inventory_name():
    broker = {**BROKER, "dagster_celery_broker_address": "10.0.0.30"}
    urls = broker_url(broker, "s3cret", CA_FILE)
    assert {urlsplit(url).hostname for url in urls.values()} == {"10.0.0.30"}


def test_an_empty_broker_address_falls_back_to_the_inventory_name():
    urls = broker_url({**BROKER, "dagster_celery_broker_address": ""}, "s3cret", CA_FILE)
    assert {urlsplit(url).hostname for url in urls.values()} == {"broker1"}


@pytest.mark.parametrize("password", ["", None, 123])
def test_an_empty_password_is_an_error(filter_error, assert_field, password):
    assert_field(filter_error(broker_url, BROKER, password, CA_FILE), "dagster_celery_broker_password")


@pytest.mark.parametrize("broker", [{}, {"inventory_hostname": " "}, {"dagster_celery_broker_address": ""}, None])
def test_a_broker_without_an_address_is_an_error(filter_error, assert_field, broker):
    assert_field(filter_error(broker_url, broker, "s3cret", CA_FILE), "dagster_celery_broker_address")


# --- dagster_celery_deployment (and dagster_deployment, which calls it) -------------------------

CELERY = {"name": "etl", "type": "grpc", "port": 4000, "deploy_to": "code1", "module": "etl", "executor": "celery"}
PLAIN = {"name": "report", "type": "grpc", "port": 4001, "deploy_to": "code1", "module": "report"}
QUEUED = {**CELERY, "name": "ml", "port": 4002, "celery_queues": ["fast", "slow"]}
GROUPS = {
    "dagster_instance": ["web1"],
    "dagster_code_locations": ["code1"],
    "dagster_celery_broker": ["broker1"],
    "dagster_celery_worker": ["worker1"],
}


def _inventory(locations, workers=("worker1",), **worker_vars):
    """hostvars and groups of a deployment with one instance, code host and broker, and the workers."""
    everyone = {"dagster_code_locations": copy.deepcopy(locations)}
    hostvars = {
        "web1": {**everyone, "dagster_postgres_host": "db1.example.net"},
        "code1": dict(everyone),
        "broker1": {},
        **{worker: {**everyone, **worker_vars} for worker in workers},
    }
    return hostvars, {**GROUPS, "dagster_celery_worker": list(workers)}


def _check(hostvars, groups):
    return celery_deployment(hostvars, groups, groups.get("dagster_instance", []))


def test_a_celery_deployment_returns_the_sorted_workers_of_each_celery_location():
    workers = ("worker5", "worker3", "worker1", "worker4", "worker2")
    hostvars, groups = _inventory([CELERY, PLAIN, QUEUED], workers=workers)
    assert _check(hostvars, groups) == {"etl": sorted(workers), "ml": sorted(workers)}


def test_dagster_deployment_passes_a_celery_deployment():
    hostvars, groups = _inventory([CELERY, PLAIN])
    assert deployment(hostvars, groups) == {"db1.example.net:5432/dagster": "web1"}


def test_workers_may_split_the_queues_between_them():
    hostvars, groups = _inventory([QUEUED], workers=("worker1", "worker2"))
    hostvars["worker1"]["dagster_celery_worker_locations"] = [{"name": "ml", "queues": ["fast"]}]
    hostvars["worker2"]["dagster_celery_worker_locations"] = [{"name": "ml", "queues": ["slow"], "concurrency": 8}]
    assert _check(hostvars, groups) == {"ml": ["worker1", "worker2"]}


def test_a_worker_serves_only_the_locations_it_names():
    hostvars, groups = _inventory([CELERY, QUEUED], workers=("worker1", "worker2"))
    hostvars["worker1"]["dagster_celery_worker_locations"] = ["etl"]
    hostvars["worker2"]["dagster_celery_worker_locations"] = [{"name": "ml"}]
    assert _check(hostvars, groups) == {"etl": ["worker1"], "ml": ["worker2"]}


def test_a_deployment_without_celery_passes_unchanged():
    hostvars, _ = _inventory([PLAIN])
    groups = {"dagster_instance": ["web1"], "dagster_code_locations": ["code1"]}
    del hostvars["broker1"], hostvars["worker1"]
    assert celery_deployment(hostvars, groups, ["web1"]) == {}
    assert deployment(hostvars, groups) == {"db1.example.net:5432/dagster": "web1"}
    # Nor do the Celery checks mind an empty broker or worker group.
    assert deployment(hostvars, {**groups, "dagster_celery_broker": [], "dagster_celery_worker": []}) == {
        "db1.example.net:5432/dagster": "web1"}


@pytest.mark.parametrize("brokers", [[], ["broker1", "broker2"]], ids=["none", "two"])
def test_a_celery_location_needs_exactly_one_broker_host(filter_error, assert_field, brokers):
    hostvars, groups = _inventory([PLAIN, CELERY])
    hostvars["broker2"] = {}
    groups["dagster_celery_broker"] = brokers
    for check in (_check, deployment):
        message = filter_error(check, hostvars, groups)
        assert_field(message, "dagster_code_locations[1] ('etl').executor")
        assert f"dagster_celery_broker group, which has {len(brokers)}{': ' if brokers else ''}" in message
        assert all(broker in message for broker in brokers)


@pytest.mark.parametrize("workers", [None, []], ids=["no-group", "empty-group"])
def test_a_celery_location_needs_a_worker(filter_error, assert_field, workers):
    hostvars, groups = _inventory([CELERY])
    if workers is None:
        del groups["dagster_celery_worker"]
    else:
        groups["dagster_celery_worker"] = workers
    message = filter_error(_check, hostvars, groups)
    assert_field(message, "dagster_code_locations[0] ('etl').executor")
    assert "no host of the dagster_celery_worker group runs its worker" in message


def test_a_location_whose_workers_all_serve_other_locations_has_no_worker(filter_error, assert_field):
    hostvars, groups = _inventory([CELERY, QUEUED], dagster_celery_worker_locations=["ml"])
    assert_field(filter_error(_check, hostvars, groups), "dagster_code_locations[0] ('etl').executor")


def test_a_queue_no_worker_listens_on_is_an_error(filter_error, assert_field):
    hostvars, groups = _inventory([QUEUED], dagster_celery_worker_locations=[{"name": "ml", "queues": ["fast"]}])
    message = filter_error(_check, hostvars, groups)
    assert_field(message, "dagster_code_locations[0] ('ml').celery_queues")
    assert "no worker listens on the queue 'slow' (workers: worker1)" in message


def test_a_worker_naming_an_undeclared_location_is_an_error(filter_error, assert_field):
    hostvars, groups = _inventory([CELERY], dagster_celery_worker_locations=["etl", "nope"])
    message = filter_error(_check, hostvars, groups)
    assert_field(message, "dagster_celery_worker_locations of worker1[1].name")
    assert "'nope' is not a location" in message and "(those are: etl)" in message


def test_a_worker_naming_a_location_without_celery_is_an_error(filter_error, assert_field):
    hostvars, groups = _inventory([CELERY, PLAIN], dagster_celery_worker_locations=[{"name": "report"}])
    message = filter_error(deployment, hostvars, groups)
    assert_field(message, "dagster_celery_worker_locations of worker1[0].name")
    assert "'report'" in message


def test_a_worker_naming_a_queue_the_location_lacks_is_an_error(filter_error, assert_field):
    hostvars, groups = _inventory([QUEUED], dagster_celery_worker_locations=[{"name": "ml", "queues": ["fast", "gpu"]}])
    message = filter_error(_check, hostvars, groups)
    assert_field(message, "dagster_celery_worker_locations of worker1[0].queues")
    assert "'gpu' is not a queue of 'ml' (its queues: fast, slow)" in message


def test_a_worker_host_when_no_location_is_celery_is_an_error(filter_error, assert_field):
    hostvars, groups = _inventory([PLAIN])
    for check in (_check, deployment):
        message = filter_error(check, hostvars, groups)
        assert_field(message, "dagster_celery_worker")
        assert "worker1 would run no worker" in message


def test_a_worker_naming_a_location_when_none_is_celery_lists_none(filter_error, assert_field):
    hostvars, groups = _inventory([PLAIN], dagster_celery_worker_locations=["report"])
    message = filter_error(_check, hostvars, groups)
    assert_field(message, "dagster_celery_worker_locations of worker1[0].name")
    assert "(those are: none)" in message


def test_a_worker_release_other_than_the_instances_is_refused(filter_error, assert_field):
    hostvars, groups = _inventory([CELERY], dagster_celery_worker_version="1.13.26")
    for check in (_check, deployment):
        message = filter_error(check, hostvars, groups)
        assert_field(message, "dagster_celery_worker_version")
        assert "1.13.26 on worker1 differs from dagster_version 1.13.27 of the instance on web1" in message
    hostvars["worker1"]["dagster_celery_worker_version"] = "1.13.27"
    assert _check(hostvars, groups) == {"etl": ["worker1"]}
    # The instance's release changed alone is the same mistake.
    hostvars["web1"]["dagster_version"] = "1.13.28"
    assert_field(filter_error(_check, hostvars, groups), "dagster_celery_worker_version")


def test_the_docker_run_launcher_does_not_go_with_a_celery_location(filter_error, assert_field):
    hostvars, groups = _inventory([PLAIN, CELERY])
    hostvars["web1"]["dagster_run_launcher"] = "docker"
    for check in (_check, deployment):
        message = filter_error(check, hostvars, groups)
        assert_field(message, "dagster_code_locations[1] ('etl').executor")
        assert "dagster_run_launcher: docker on web1" in message
    # Without a Celery location the docker launcher is fine here.
    hostvars, groups = _inventory([PLAIN])
    hostvars["web1"]["dagster_run_launcher"] = "docker"
    del groups["dagster_celery_worker"]
    assert _check(hostvars, groups) == {}


def test_the_celery_checks_validate_the_location_list(filter_error, assert_field):
    hostvars, groups = _inventory([{**CELERY, "celery_queues": []}])
    assert_field(filter_error(_check, hostvars, groups), "dagster_code_locations[0] ('etl').celery_queues")


def test_a_worker_host_seeing_another_location_list_is_refused(filter_error, assert_field):
    hostvars, groups = _inventory([CELERY])
    hostvars["worker1"]["dagster_code_locations"] = [{**CELERY, "celery_queues": ["other"]}]
    message = filter_error(deployment, hostvars, groups)
    assert_field(message, "dagster_code_locations")
    assert "worker1 sees a different list than web1" in message
    assert "dagster_celery_worker groups" in message


# --- what the URL refuses or brackets ------------------------------------------------------------


def test_an_ipv6_broker_address_is_bracketed():
    urls = broker_url({**BROKER, "dagster_celery_broker_address": "fd00::30"}, "s3cret", CA_FILE)
    for url in urls.values():
        assert (urlsplit(url).hostname, urlsplit(url).port) == ("fd00::30", 6379)


def test_a_misspelt_tls_switch_is_an_error_not_plain_redis(filter_error, assert_field):
    assert_field(filter_error(broker_url, {**BROKER, "dagster_celery_broker_tls": "ture"}, "s3cret", CA_FILE),
                 "dagster_celery_broker_tls")


def test_a_bad_port_is_an_error_naming_the_port(filter_error, assert_field):
    assert_field(filter_error(broker_url, {**BROKER, "dagster_celery_broker_port": "63 79"}, "s3cret", CA_FILE),
                 "dagster_celery_broker_port")
