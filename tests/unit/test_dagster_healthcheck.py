"""dagster_healthcheck: the code servers to check, the ping URL, and the check script's pings."""

from __future__ import annotations

import importlib.util
import json
import os
import socket
import sys
import threading
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path

import dagster_healthcheck
import pytest
import yaml
from dagster_healthcheck import code_servers, ping_url

REPO_ROOT = Path(__file__).resolve().parents[2]
SCRIPT = REPO_ROOT / "roles" / "dagster_healthcheck" / "files" / "dagster-healthcheck.py"
LOCAL = ["localhost", "127.0.0.1", "::1", "dagster1", "dagster1.example.net"]
UUID_URL = "https://hc-ping.com/5a1d8c3e-7b2f-4e61-9d0a-1234567890ab"
SLUG_URL = "https://hc-ping.com/fqOOd6-F4MMNuCEnzTU01w/dagster-prod"


def _script():
    """The role's check script, loaded without leaving a __pycache__ in the role."""
    spec = importlib.util.spec_from_file_location("dagster_healthcheck_script", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    previous, sys.dont_write_bytecode = sys.dont_write_bytecode, True
    try:
        spec.loader.exec_module(module)
    finally:
        sys.dont_write_bytecode = previous
    return module


def test_filters_are_registered():
    assert dagster_healthcheck.FilterModule().filters() == {
        "dagster_healthcheck_code_servers": code_servers,
        "dagster_healthcheck_ping_url": ping_url,
    }


@pytest.mark.parametrize("block", ["DOCUMENTATION", "EXAMPLES", "RETURN"])
def test_documentation_blocks_are_yaml(block):
    assert yaml.safe_load(getattr(dagster_healthcheck, block))


# --- code servers ------------------------------------------------------------------------


LOCATIONS = [
    {"name": "etl", "type": "grpc", "host": "localhost", "port": 4000},
    {"name": "reports", "type": "grpc", "host": "dagster1.example.net", "port": 4001},
    {"name": "remote", "type": "grpc", "host": "code2.example.net", "port": 4000},
    {"name": "example", "type": "module", "module": "dagster_example"},
    # A key another role reads from the same list is ignored.
    {"name": "ml", "type": "grpc", "host": "127.0.0.1", "port": 4002, "command": "dagster code-server start"},
]


def test_local_grpc_locations_by_default():
    assert code_servers([], LOCATIONS, LOCAL) == [
        {"name": "etl", "host": "localhost", "port": 4000},
        {"name": "reports", "host": "dagster1.example.net", "port": 4001},
        {"name": "ml", "host": "127.0.0.1", "port": 4002},
    ]


DEPLOYED = [
    {"name": "etl", "type": "grpc", "port": 4000, "deploy_to": "code1", "module": "etl.definitions"},
    {"name": "ml", "type": "grpc", "port": 4001, "deploy_to": "code2", "file": "defs.py"},
    {"name": "local", "type": "grpc", "host": "localhost", "port": 4002},
    {"name": "remote", "type": "grpc", "host": "code9.example.net", "port": 4003},
]


def test_role_managed_servers_by_default_at_the_instances_address():
    """Every grpc location with deploy_to, wherever it runs, at the address workspace.yaml names."""
    assert code_servers([], DEPLOYED, LOCAL, {"code1": "10.0.0.21"}) == [
        {"name": "etl", "host": "10.0.0.21", "port": 4000},
        # A host missing from the address map is reached by its inventory name.
        {"name": "ml", "host": "code2", "port": 4001},
        {"name": "local", "host": "localhost", "port": 4002},
    ]


def test_bad_addresses(filter_error, assert_field):
    assert_field(filter_error(code_servers, [], DEPLOYED, LOCAL, ["10.0.0.21"]), "addresses")


def test_bad_deployed_location_names_its_index(filter_error, assert_field):
    locations = [{"name": "etl", "type": "grpc", "port": 0, "deploy_to": "code1"}]
    assert_field(filter_error(code_servers, [], locations, LOCAL, {}), "dagster_code_locations[0].port")


def test_host_names_compare_without_case():
    assert code_servers([], [{"name": "a", "type": "grpc", "host": "LOCALHOST", "port": 4000}], LOCAL)


def test_no_locations_no_servers():
    assert code_servers([], None, LOCAL) == []
    assert code_servers(None, [], LOCAL) == []


def test_explicit_list_wins():
    explicit = [{"name": "etl", "port": 4000}, {"name": "far", "host": "code2.example.net", "port": 4100}]
    assert code_servers(explicit, LOCATIONS, LOCAL) == [
        {"name": "etl", "host": "127.0.0.1", "port": 4000},
        {"name": "far", "host": "code2.example.net", "port": 4100},
    ]


@pytest.mark.parametrize(
    ("entry", "field"),
    [
        ("etl:4000", "dagster_healthcheck_code_servers[0]"),
        ({"port": 4000}, "dagster_healthcheck_code_servers[0].name"),
        ({"name": "bad name", "port": 4000}, "dagster_healthcheck_code_servers[0].name"),
        ({"name": "etl"}, "dagster_healthcheck_code_servers[0].port"),
        ({"name": "etl", "port": "4000"}, "dagster_healthcheck_code_servers[0].port"),
        ({"name": "etl", "port": 0}, "dagster_healthcheck_code_servers[0].port"),
        ({"name": "etl", "port": True}, "dagster_healthcheck_code_servers[0].port"),
        ({"name": "etl", "port": 4000, "host": "a host"}, "dagster_healthcheck_code_servers[0].host"),
        ({"name": "etl", "port": 4000, "host": 7}, "dagster_healthcheck_code_servers[0].host"),
    ],
)
def test_bad_explicit_entry(filter_error, assert_field, entry, field):
    assert_field(filter_error(code_servers, [entry], [], LOCAL), field)


def test_bad_local_location_names_its_index(filter_error, assert_field):
    locations = [LOCATIONS[3], {"name": "etl", "type": "grpc", "host": "localhost", "port": 70000}]
    assert_field(filter_error(code_servers, [], locations, LOCAL), "dagster_code_locations[1].port")


def test_list_types(filter_error, assert_field):
    assert_field(filter_error(code_servers, {"name": "etl"}, [], LOCAL), "dagster_healthcheck_code_servers")
    assert_field(filter_error(code_servers, [], {"etl": 1}, LOCAL), "dagster_code_locations")


def test_same_endpoint_twice(filter_error, assert_field):
    explicit = [{"name": "a", "port": 4000}, {"name": "b", "port": 4000, "host": "127.0.0.1"}]
    message = filter_error(code_servers, explicit, [], LOCAL)
    assert_field(message, "dagster_healthcheck_code_servers")
    assert "127.0.0.1:4000" in message


# --- ping URL --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "url",
    [UUID_URL, SLUG_URL, SLUG_URL + "?create=1", "http://127.0.0.1:8099/ping/abc", "https://hc.example.net/ping/x"],
)
def test_good_ping_urls(url):
    assert ping_url(url) == url


@pytest.mark.parametrize(
    ("url", "fragment"),
    [
        ("", "is required when dagster_healthcheck_enabled is true"),
        (None, "is required"),
        ("   ", "is required"),
        (UUID_URL + " ", "white space"),
        ("hc-ping.com/" + UUID_URL[-36:], "must start with https://"),
        ("ftp://hc-ping.com/abc", "must start with https://"),
        ("https:///abc", "has no host name"),
        (UUID_URL + "#x", "#fragment"),
        ("https://hc-ping.com/", "has no check path"),
        ("https://hc-ping.com", "has no check path"),
        (UUID_URL + "/start", "base URL"),
        (UUID_URL + "/fail", "base URL"),
        (UUID_URL + "/0", "base URL"),
        (SLUG_URL + "/1/", "base URL"),
    ],
)
def test_bad_ping_urls_never_repeat_the_url(filter_error, assert_field, url, fragment):
    message = filter_error(ping_url, url)
    assert_field(message, "dagster_healthcheck_ping_url")
    assert fragment in message
    for secret in ("5a1d8c3e", "fqOOd6", "abc"):
        assert secret not in message


# --- the check script's pings -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("base", "suffix", "expected"),
    [
        (UUID_URL, "start", UUID_URL + "/start"),
        (UUID_URL + "/", "0", UUID_URL + "/0"),
        (SLUG_URL, "fail", SLUG_URL + "/fail"),
        (SLUG_URL + "?create=1", "start", SLUG_URL + "/start?create=1"),
    ],
)
def test_script_ping_urls(base, suffix, expected):
    assert _script().ping_url(base, suffix) == expected


class _Receiver(BaseHTTPRequestHandler):
    requests: list = []
    status = 200

    def do_POST(self):  # noqa: N802 - the http.server API
        body = self.rfile.read(int(self.headers["Content-Length"] or 0)).decode()
        type(self).requests.append((self.path, body))
        self.send_response(type(self).status)
        self.end_headers()

    def log_message(self, *_args):
        pass


@pytest.fixture
def receiver():
    _Receiver.requests = []
    _Receiver.status = 200
    server = HTTPServer(("127.0.0.1", 0), _Receiver)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_port}/ping/5a1d8c3e-secret", _Receiver
    server.shutdown()


def test_ping_posts_the_report(receiver):
    base, handler = receiver
    assert _script().ping(base, "fail", "FAIL daemon: stale", timeout=5, retries=0)
    assert handler.requests == [("/ping/5a1d8c3e-secret/fail", "FAIL daemon: stale")]


def test_ping_retries_and_never_prints_the_url(receiver, capsys, monkeypatch):
    base, handler = receiver
    handler.status = 500
    script = _script()
    monkeypatch.setattr(script.time, "sleep", lambda _s: None)
    assert not script.ping(base, "start", "", timeout=5, retries=2)
    assert len(handler.requests) == 3
    out = capsys.readouterr().out
    assert "HTTP 500" in out and "5a1d8c3e" not in out and "127.0.0.1" not in out


def test_ping_to_nowhere_fails_quietly(capsys, monkeypatch):
    script = _script()
    monkeypatch.setattr(script.time, "sleep", lambda _s: None)
    assert not script.ping("http://127.0.0.1:9/ping/5a1d8c3e-secret", "0", "", timeout=2, retries=1)
    assert "5a1d8c3e" not in capsys.readouterr().out


# --- the check script's judgements, on answers captured from a real webserver -------------------

FIXTURES = Path(__file__).parent / "fixtures" / "healthcheck"


def _fixture(name):
    return json.loads((FIXTURES / f"{name}.json").read_text())


def _statuses(answer):
    return answer["graphql"]["data"]["instance"]["daemonHealth"]["allDaemonStatuses"]


def _newest_beat(answer):
    return max(s["lastHeartbeatTime"] for s in _statuses(answer))


def test_locations_all_loaded():
    workspace = _fixture("healthy")["graphql"]["data"]["workspaceOrError"]
    assert _script().judge_locations(workspace) == [("code locations", True, "3 loaded (hold, probe, example)")]


def test_location_load_error_names_the_location_and_its_cause():
    workspace = _fixture("location-error")["graphql"]["data"]["workspaceOrError"]
    results = _script().judge_locations(workspace)
    assert results[0] == ("code locations", True, "2 loaded (hold, example)")
    name, ok, detail = results[1]
    assert (name, ok) == ("location probe", False)
    assert detail == ("failed to load: RuntimeError: the probe location is broken on purpose "
                      "(dagster._core.errors.DagsterUserCodeLoadError: Error occurred during the loading of "
                      "Dagster definitions in)")


def test_locations_loading_count_as_up_and_workspace_errors_fail():
    script = _script()
    loading = {"__typename": "Workspace",
               "locationEntries": [{"name": "etl", "loadStatus": "LOADING", "locationOrLoadError": None}]}
    assert script.judge_locations(loading) == [("code locations", True, "0 loaded, 1 loading (etl)")]
    broken = {"__typename": "PythonError", "message": "OperationalError: could not connect\nmore"}
    assert script.judge_locations(broken) == [
        ("code locations", False, "the workspace failed to load: OperationalError: could not connect")]
    assert script.judge_locations(None)[0][1] is False


def test_heartbeats_within_the_tolerance():
    answer = _fixture("healthy")
    ok, detail = _script().judge_heartbeats(_statuses(answer), _newest_beat(answer) + 5, 30, 120)
    assert ok, detail
    assert detail.startswith("heartbeats of 6 daemons, oldest ") and detail.endswith("(allowed 150 s)")


def test_heartbeats_late_by_dagsters_rule():
    """Late once older than the interval plus the tolerance, as Dagster's get_daemon_statuses counts."""
    answer = _fixture("healthy")
    statuses = _statuses(answer)
    oldest = min(statuses, key=lambda s: s["lastHeartbeatTime"])
    script = _script()
    assert script.judge_heartbeats(statuses, oldest["lastHeartbeatTime"] + 150, 30, 120)[0]
    ok, detail = script.judge_heartbeats(statuses, oldest["lastHeartbeatTime"] + 151, 30, 120)
    assert not ok and f"{oldest['daemonType']}'s last heartbeat is 151 s old" in detail
    assert detail.endswith("(allowed 150 s)")


def test_heartbeats_missing_or_not_required():
    script = _script()
    ok, detail = script.judge_heartbeats(
        [{"daemonType": "SENSOR", "required": True, "lastHeartbeatTime": None},
         {"daemonType": "MONITORING", "required": False, "lastHeartbeatTime": None}], 1000.0, 30, 120)
    assert not ok and detail == "SENSOR never sent a heartbeat (allowed 150 s)"
    assert script.judge_heartbeats([], 1000.0, 30, 120) == (False, "the instance reports no required daemon")


@pytest.mark.parametrize(
    ("properties", "state", "ok", "fragment"),
    [
        ({"Id": "dagster-daemon.service", "ActiveState": "active", "MainPID": "42", "FreezerState": "running"}, "S",
         True, "pid 42 running"),
        ({"Id": "dagster-daemon.service", "ActiveState": "inactive", "MainPID": "0"}, "", False,
         "dagster-daemon.service is inactive"),
        ({"Id": "dagster-daemon.service", "ActiveState": "failed", "MainPID": "0"}, "", False, "is failed"),
        ({"Id": "dagster-daemon.service", "ActiveState": "active", "MainPID": "42", "FreezerState": "frozen"}, "S",
         False, "dagster-daemon.service is frozen (cgroup freezer)"),
        ({"Id": "dagster-daemon.service", "ActiveState": "active", "MainPID": "42"}, "T", False,
         "its main process 42 is stopped by a signal (state T)"),
    ],
)
def test_daemon_process(properties, state, ok, fragment):
    result, detail = _script().judge_process(properties, state)
    assert result is ok and fragment in detail


def test_process_state_of_this_process_and_of_none():
    script = _script()
    assert script.process_state(os.getpid()) in ("R", "S")
    assert script.process_state(0) == ""


class _Webserver(BaseHTTPRequestHandler):
    """Answers /server_info and /graphql with what a real webserver answered (the fixtures)."""

    answer: dict = {}

    def do_GET(self):  # noqa: N802 - the http.server API
        self._send(type(self).answer["server_info"])

    def do_POST(self):  # noqa: N802 - the http.server API
        query = json.loads(self.rfile.read(int(self.headers["Content-Length"])))["query"]
        assert query == _script().STATE_QUERY
        self._send(type(self).answer["graphql"])

    def _send(self, payload):
        body = json.dumps(payload).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *_args):
        pass


@pytest.fixture
def webserver():
    server = HTTPServer(("127.0.0.1", 0), _Webserver)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_port}", _Webserver
    server.shutdown()


def _run(tmp_path, monkeypatch, base, webserver_url, **config):
    path = tmp_path / "healthcheck.json"
    path.write_text(json.dumps({"webserver_url": webserver_url, "python": sys.executable, "daemon": None,
                                "code_servers": [], "timeout": 5, "ping_timeout": 5, "ping_retries": 0, **config}))
    monkeypatch.setenv("DAGSTER_HEALTHCHECK_PING_URL", base)
    return _script().main(["dagster-healthcheck", str(path)])


def test_webserver_only_host_passes_without_a_daemon(receiver, webserver, tmp_path, monkeypatch):
    base, pings = receiver
    url, handler = webserver
    handler.answer = _fixture("healthy")
    assert _run(tmp_path, monkeypatch, base, url) == 0
    assert [path for path, _ in pings.requests] == ["/ping/5a1d8c3e-secret/start", "/ping/5a1d8c3e-secret/0"]
    report = pings.requests[1][1]
    assert "all 2 checks passed" in report
    assert "--   daemon: not on this host (dagster_daemon_enabled is false)" in report


def test_whole_run_reports_each_failed_part(receiver, webserver, tmp_path, monkeypatch, capsys):
    """A location that failed to load and a code server that does not answer: one /fail naming both."""
    base, pings = receiver
    url, handler = webserver
    handler.answer = _fixture("location-error")
    closed = socket.socket()
    closed.bind(("127.0.0.1", 0))
    port = closed.getsockname()[1]
    closed.close()
    code_servers_ = [{"name": "etl", "host": "127.0.0.1", "port": port}]
    # A real gRPC health check (the test's Python has grpcio, as the instance's has) of a closed port.
    assert _run(tmp_path, monkeypatch, base, url, code_servers=code_servers_) == 1
    assert [path for path, _ in pings.requests] == ["/ping/5a1d8c3e-secret/start", "/ping/5a1d8c3e-secret/fail"]
    report = pings.requests[1][1]
    assert "FAILED: location probe, code server etl" in report
    assert "FAIL location probe: failed to load: RuntimeError: the probe location is broken on purpose" in report
    assert f"FAIL code server etl: 127.0.0.1:{port}: UNAVAILABLE" in report
    assert "5a1d8c3e" not in capsys.readouterr().out


def test_webserver_down_fails_and_skips_what_it_serves(receiver, tmp_path, monkeypatch):
    base, pings = receiver
    closed = socket.socket()
    closed.bind(("127.0.0.1", 0))
    url = f"http://127.0.0.1:{closed.getsockname()[1]}"
    closed.close()
    assert _run(tmp_path, monkeypatch, base, url) == 1
    report = pings.requests[1][1]
    assert report.startswith(f"Dagster on {socket.gethostname()}: FAILED: webserver\n")
    assert f"FAIL webserver: {url}/server_info: " in report
    assert "--   code locations: not checked: the webserver does not answer" in report


def test_missing_ping_url_is_an_error(tmp_path, monkeypatch):
    config = tmp_path / "healthcheck.json"
    config.write_text("{}")
    monkeypatch.delenv("DAGSTER_HEALTHCHECK_PING_URL", raising=False)
    assert _script().main(["dagster-healthcheck", str(config)]) == 2


def test_the_probes_it_starts_do_not_hold_the_ping_url(receiver, webserver, tmp_path, monkeypatch):
    """The code-server probe runs in the instance's Python: it gets an environment without the URL."""
    base, _pings = receiver
    url, handler = webserver
    handler.answer = _fixture("healthy")
    seen = tmp_path / "probe-environment"
    probe = tmp_path / "python"
    probe.write_text(f"#!/bin/sh\nenv > {seen}\necho SERVING\n")
    probe.chmod(0o755)
    servers = [{"name": "etl", "host": "127.0.0.1", "port": 4000}]
    assert _run(tmp_path, monkeypatch, base, url, python=str(probe), code_servers=servers) == 0
    assert "PATH=" in seen.read_text()
    assert "5a1d8c3e" not in seen.read_text()
