"""dagster_tailscale: comparing `tailscale serve status --json` with the wanted serve."""

from __future__ import annotations

import copy

import dagster_tailscale
import pytest
import yaml
from dagster_tailscale import login_state, serve_command, serve_plan

TARGET = "http://127.0.0.1:3000"
NODE = "dagster1.tail1234.ts.net"


def wanted(**overrides):
    base = {
        "enabled": True,
        "mode": "service",
        "service_name": "dagster",
        "https_port": 443,
        "target": TARGET,
        "funnel": False,
    }
    base.update(overrides)
    return base


# Shapes as tailscale's ipn.ServeConfig marshals them (ipn/serve.go).
def node_serve(target=TARGET, port=443, funnel=False, extra_mounts=None):
    handlers = {"/": {"Proxy": target}}
    handlers.update(extra_mounts or {})
    config = {"TCP": {str(port): {"HTTPS": True}}, "Web": {f"{NODE}:{port}": {"Handlers": handlers}}}
    if funnel:
        config["AllowFunnel"] = {f"{NODE}:{port}": True}
    return config


def service_serve(target=TARGET, name="dagster", port=443, host=None):
    host = host or f"{name}.tail1234.ts.net"
    return {
        "Services": {
            f"svc:{name}": {
                "TCP": {str(port): {"HTTPS": True}},
                "Web": {f"{host}:{port}": {"Handlers": {"/": {"Proxy": target}}}},
            }
        }
    }


def merged(*configs):
    out = {}
    for config in configs:
        for key, value in config.items():
            out.setdefault(key, {}).update(value)
    return out


def test_filters_are_registered():
    assert dagster_tailscale.FilterModule().filters() == {
        "dagster_tailscale_serve_plan": serve_plan,
        "dagster_tailscale_serve_command": serve_command,
        "dagster_tailscale_login": login_state,
        "dagster_tailscale_up_args": dagster_tailscale.up_args,
    }


@pytest.mark.parametrize("block", ["DOCUMENTATION", "EXAMPLES", "RETURN"])
def test_documentation_blocks_are_yaml(block):
    assert yaml.safe_load(getattr(dagster_tailscale, block))


# --- the command lines -------------------------------------------------------


def test_service_command():
    assert serve_command(wanted()) == ["serve", "--bg", "--service=svc:dagster", "--https=443", TARGET]


def test_node_command():
    assert serve_command(wanted(mode="node")) == ["serve", "--bg", "--https=443", TARGET]


def test_node_funnel_command_uses_funnel():
    assert serve_command(wanted(mode="node", funnel=True)) == ["funnel", "--bg", "--https=443", TARGET]


def test_other_port_and_name():
    assert serve_command(wanted(service_name="ops-ui", https_port=8443)) == [
        "serve", "--bg", "--service=svc:ops-ui", "--https=8443", TARGET,
    ]


# --- plans from an empty config ------------------------------------------------


@pytest.mark.parametrize("status", [None, {}, {"TCP": None, "Web": None}])
def test_empty_config_gets_the_service(status):
    plan = serve_plan(status, wanted())
    assert plan["commands"] == [["serve", "--bg", "--service=svc:dagster", "--https=443", TARGET]]
    assert not plan["in_sync"]
    assert plan["changes"] == [f"svc:dagster on port 443 -> {TARGET}"]


def test_empty_config_gets_the_node_serve():
    assert serve_plan({}, wanted(mode="node"))["commands"] == [["serve", "--bg", "--https=443", TARGET]]


def test_empty_config_and_disabled_is_in_sync():
    assert serve_plan({}, wanted(enabled=False)) == {"in_sync": True, "commands": [], "changes": []}


# --- idempotence -----------------------------------------------------------------


def test_service_in_place_is_in_sync():
    assert serve_plan(service_serve(), wanted())["in_sync"]


def test_service_web_key_of_older_releases_is_recognised():
    # Older releases keyed a Service's web config by NAME:PORT, without the MagicDNS suffix.
    assert serve_plan(service_serve(host="dagster"), wanted())["in_sync"]


def test_node_serve_in_place_is_in_sync():
    assert serve_plan(node_serve(), wanted(mode="node"))["in_sync"]


def test_node_funnel_in_place_is_in_sync():
    assert serve_plan(node_serve(funnel=True), wanted(mode="node", funnel=True))["in_sync"]


def test_trailing_slash_of_the_proxy_is_the_same_target():
    assert serve_plan(node_serve(target=TARGET + "/"), wanted(mode="node"))["in_sync"]


def test_other_serves_are_left_alone():
    status = merged(service_serve(), service_serve(name="grafana", target="http://127.0.0.1:3001"))
    status["TCP"] = {"8080": {"HTTP": True}}
    status["Web"] = {f"{NODE}:8080": {"Handlers": {"/": {"Proxy": "http://127.0.0.1:9090"}}}}
    assert serve_plan(status, wanted())["in_sync"]
    assert serve_plan(status, wanted(enabled=False))["commands"] == [["serve", "clear", "svc:dagster"]]


def test_plan_does_not_change_its_input():
    status = merged(node_serve(), service_serve())
    before = copy.deepcopy(status)
    serve_plan(status, wanted(mode="node"))
    assert status == before


# --- only what differs -------------------------------------------------------------


def test_service_to_another_port_of_the_webserver():
    plan = serve_plan(service_serve(target="http://127.0.0.1:3001"), wanted())
    assert plan["commands"] == [["serve", "--bg", "--service=svc:dagster", "--https=443", TARGET]]


def test_funnel_is_switched_on_with_the_funnel_command():
    plan = serve_plan(node_serve(), wanted(mode="node", funnel=True))
    assert plan["commands"] == [["funnel", "--bg", "--https=443", TARGET]]
    assert plan["changes"] == ["Funnel on port 443: on"]


def test_funnel_is_switched_off_by_serving_again():
    plan = serve_plan(node_serve(funnel=True), wanted(mode="node"))
    assert plan["commands"] == [["serve", "--bg", "--https=443", TARGET]]
    assert plan["changes"] == ["Funnel on port 443: off"]


def test_funnel_on_another_port_is_not_ours():
    status = node_serve()
    status["AllowFunnel"] = {f"{NODE}:8443": True}
    assert serve_plan(status, wanted(mode="node"))["in_sync"]


def test_switch_from_node_to_service_removes_the_node_serve():
    plan = serve_plan(node_serve(), wanted())
    assert plan["commands"] == [
        ["serve", "--https=443", "off"],
        ["serve", "--bg", "--service=svc:dagster", "--https=443", TARGET],
    ]


def test_switch_from_service_to_node_clears_the_service():
    plan = serve_plan(service_serve(), wanted(mode="node"))
    assert plan["commands"] == [["serve", "--bg", "--https=443", TARGET], ["serve", "clear", "svc:dagster"]]


# --- removal ---------------------------------------------------------------------------


def test_disabled_removes_the_service():
    assert serve_plan(service_serve(), wanted(enabled=False))["commands"] == [["serve", "clear", "svc:dagster"]]


def test_disabled_removes_the_node_serve_and_its_funnel():
    plan = serve_plan(node_serve(funnel=True), wanted(enabled=False, mode="node"))
    assert plan["commands"] == [["serve", "--https=443", "off"]]


def test_disabled_keeps_other_mounts_on_the_port():
    status = node_serve(extra_mounts={"/grafana": {"Proxy": "http://127.0.0.1:3001"}})
    plan = serve_plan(status, wanted(enabled=False, mode="node"))
    assert plan["commands"] == [["serve", "--https=443", "--set-path=/", "off"]]


def test_disabled_leaves_a_serve_of_another_target():
    status = merged(node_serve(target="http://127.0.0.1:8080"), service_serve(target="http://127.0.0.1:8080"))
    assert serve_plan(status, wanted(enabled=False))["in_sync"]


# --- conflicts -----------------------------------------------------------------------


def test_port_used_for_raw_tcp_is_an_error(filter_error, assert_field):
    status = {"TCP": {"443": {"TCPForward": "127.0.0.1:5432"}}}
    message = filter_error(serve_plan, status, wanted(mode="node"))
    assert_field(message, "dagster_tailscale_https_port")
    assert "raw TCP" in message


def test_port_used_for_plain_http_is_an_error(filter_error, assert_field):
    status = {"TCP": {"443": {"HTTP": True}}}
    assert_field(filter_error(serve_plan, status, wanted(mode="node")), "dagster_tailscale_https_port")


def test_service_port_used_for_raw_tcp_is_an_error(filter_error, assert_field):
    status = {"Services": {"svc:dagster": {"TCP": {"443": {"TCPForward": "127.0.0.1:22"}}}}}
    assert_field(filter_error(serve_plan, status, wanted()), "dagster_tailscale_https_port")


def test_service_in_tun_mode_is_an_error(filter_error, assert_field):
    status = {"Services": {"svc:dagster": {"Tun": True}}}
    assert_field(filter_error(serve_plan, status, wanted()), "dagster_tailscale_service_name")


# --- validation of the wanted serve ------------------------------------------------------


@pytest.mark.parametrize(
    ("overrides", "field"),
    [
        ({"enabled": "yes"}, "dagster_tailscale_serve_enabled"),
        ({"funnel": 1}, "dagster_tailscale_funnel"),
        ({"mode": "tcp"}, "dagster_tailscale_serve_mode"),
        ({"service_name": "svc:dagster"}, "dagster_tailscale_service_name"),
        ({"service_name": "Dagster"}, "dagster_tailscale_service_name"),
        ({"service_name": "-dagster"}, "dagster_tailscale_service_name"),
        ({"service_name": "a" * 64}, "dagster_tailscale_service_name"),
        ({"service_name": ""}, "dagster_tailscale_service_name"),
        ({"https_port": 0}, "dagster_tailscale_https_port"),
        ({"https_port": 65536}, "dagster_tailscale_https_port"),
        ({"https_port": "443"}, "dagster_tailscale_https_port"),
        ({"https_port": True}, "dagster_tailscale_https_port"),
        ({"target": "http://10.0.0.5:3000"}, "target"),
        ({"target": "http://127.0.0.1"}, "target"),
        ({"target": "http://127.0.0.1:99999"}, "target"),
        ({"target": "ftp://127.0.0.1:3000"}, "target"),
        ({"target": None}, "target"),
        ({"funnel": True}, "dagster_tailscale_funnel"),
    ],
)
def test_bad_wanted_serve(filter_error, assert_field, overrides, field):
    assert_field(filter_error(serve_plan, {}, wanted(**overrides)), field)
    assert_field(filter_error(serve_command, wanted(**overrides)), field)


def test_wanted_must_be_a_map(filter_error, assert_field):
    assert_field(filter_error(serve_command, ["serve"]), "wanted")


def test_funnel_with_a_service_explains_the_alternative(filter_error):
    assert "dagster_tailscale_serve_mode: node" in filter_error(serve_command, wanted(funnel=True))


def test_localhost_target_is_accepted():
    assert serve_command(wanted(target="http://localhost:3000"))[-1] == "http://localhost:3000"


# --- malformed serve status -----------------------------------------------------------------


@pytest.mark.parametrize(
    ("status", "fragment"),
    [
        ([], "serve config must be a map"),
        ({"TCP": []}, "serve config.TCP must be a map"),
        ({"TCP": {"https": {"HTTPS": True}}}, "is not a port number"),
        ({"TCP": {"443": "yes"}}, "serve config.TCP[443] must be a map"),
        ({"Web": {"no-port": {"Handlers": {}}}}, "is not HOST:PORT"),
        ({"Web": {f"{NODE}:443": {"Handlers": []}}}, "Handlers must be a map"),
        ({"Services": []}, "Services must be a map"),
        ({"Services": {"svc:dagster": []}}, "Services[svc:dagster] must be a map"),
        ({"AllowFunnel": {"nohost": True}}, "AllowFunnel key"),
    ],
)
def test_malformed_status_names_the_field(filter_error, assert_field, status, fragment):
    message = filter_error(serve_plan, status, wanted(mode="node"))
    assert_field(message, "tailscale serve status --json")
    assert fragment in message


# --- login state ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("state", "logged_in", "running"),
    [
        ("NoState", False, False),
        ("NeedsLogin", False, False),
        ("NeedsMachineAuth", True, False),
        ("Stopped", True, False),
        ("Starting", True, False),
        ("Running", True, True),
    ],
)
def test_login_states(state, logged_in, running):
    result = login_state({"BackendState": state, "Self": {"DNSName": f"{NODE}."}})
    assert (result["logged_in"], result["running"], result["backend_state"]) == (logged_in, running, state)
    assert result["needs_up"] is (not running)
    assert result["dns_name"] == NODE


def test_login_state_without_self():
    assert login_state({"BackendState": "NeedsLogin", "Self": None})["dns_name"] == ""


@pytest.mark.parametrize(
    ("status", "fragment"),
    [
        ("Running", "must be a map"),
        ({}, "BackendState must be one of"),
        ({"BackendState": "Up"}, "BackendState must be one of"),
        ({"BackendState": "Running", "Self": []}, "Self must be a map"),
    ],
)
def test_bad_status(filter_error, assert_field, status, fragment):
    message = filter_error(login_state, status)
    assert_field(message, "tailscale status --json")
    assert fragment in message


@pytest.mark.parametrize("port", [443, 8443, 10000])
def test_funnel_on_the_ports_tailscale_allows(port):
    assert serve_command(wanted(mode="node", funnel=True, https_port=port))[2] == f"--https={port}"


@pytest.mark.parametrize("port", [444, 80, 8080, 3000])
def test_funnel_on_another_port_is_refused(filter_error, assert_field, port):
    message = filter_error(serve_command, wanted(mode="node", funnel=True, https_port=port))
    assert_field(message, "dagster_tailscale_https_port")
    assert "443, 8443, 10000" in message
    # Without Funnel any port serves on the tailnet.
    assert serve_command(wanted(mode="node", https_port=port))


@pytest.mark.parametrize("args", [[], ["--hostname=dagster"], ["--operator=dagster"], ["--operator", "ops_user"]])
def test_good_up_args_pass(args):
    assert dagster_tailscale.up_args(args) == args


@pytest.mark.parametrize(
    ("args", "index"),
    [
        (["--operator=alice@example.com"], 0),
        (["--hostname=x", "--operator", "alice@example.com"], 1),
        (["--operator=Root User"], 0),
        (["--operator"], 0),
        (["--hostname=x\n--reset"], 0),
    ],
)
def test_bad_up_args_are_refused(filter_error, assert_field, args, index):
    assert_field(filter_error(dagster_tailscale.up_args, args), f"dagster_tailscale_up_args[{index}]")
