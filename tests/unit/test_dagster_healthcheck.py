"""dagster_healthcheck: the code servers to check, the ping URL, and the check script's pings."""

from __future__ import annotations

import importlib.util
import json
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


def test_whole_run_reports_each_failed_part(receiver, tmp_path, monkeypatch, capsys):
    """Webserver down, daemon check failing, code server answering: one /fail naming two parts."""
    base, handler = receiver
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    for name, body in {"dagster-daemon": "echo 'Daemon(s) not running'; exit 1", "dagster": "echo SERVING"}.items():
        tool = bin_dir / name
        tool.write_text(f"#!/bin/sh\n{body}\n")
        tool.chmod(0o755)
    config = tmp_path / "healthcheck.json"
    config.write_text(json.dumps({
        "webserver_url": "http://127.0.0.1:9/server_info",
        "dagster_bin": str(bin_dir),
        "daemon_unit": "",
        "code_servers": [{"name": "etl", "host": "127.0.0.1", "port": 4000}],
        "timeout": 5,
        "ping_timeout": 5,
        "ping_retries": 0,
    }))
    monkeypatch.setenv("DAGSTER_HEALTHCHECK_PING_URL", base)
    assert _script().main(["dagster-healthcheck", str(config)]) == 1
    paths = [path for path, _ in handler.requests]
    assert paths == ["/ping/5a1d8c3e-secret/start", "/ping/5a1d8c3e-secret/fail"]
    report = handler.requests[1][1]
    assert "FAILED: webserver, daemon" in report
    assert "FAIL daemon: dagster-daemon liveness-check exited 1: Daemon(s) not running" in report
    assert "ok   code server etl: 127.0.0.1:4000 serving" in report
    assert "5a1d8c3e" not in capsys.readouterr().out


def test_missing_ping_url_is_an_error(tmp_path, monkeypatch):
    config = tmp_path / "healthcheck.json"
    config.write_text("{}")
    monkeypatch.delenv("DAGSTER_HEALTHCHECK_PING_URL", raising=False)
    assert _script().main(["dagster-healthcheck", str(config)]) == 2
