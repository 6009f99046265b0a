"""Compare `tailscale serve status --json` with the serve the Dagster UI wants."""

from __future__ import annotations

import re

DOCUMENTATION = r"""
name: dagster_tailscale_serve_plan
author: dagsterops maintainers
version_added: "0.2.0"
short_description: The tailscale serve calls that bring a node's serve config to the wanted state
description:
  - Reads the parsed output of C(tailscale serve status --json) (Tailscale's
    C(ipn.ServeConfig) - C(TCP), C(Web), C(Services), C(AllowFunnel)) and the
    wanted serve of the Dagster webserver, and returns the C(tailscale)
    arguments that change only what differs.
  - The wanted serve is either a plain node serve, C(mode=node), set with
    C(tailscale serve --bg --https=PORT TARGET) (or C(tailscale funnel ...)
    when C(funnel) is true), or a Tailscale Service, C(mode=service), set with
    C(tailscale serve --bg --service=svc:NAME --https=PORT TARGET).
  - A serve counts as the role's own when its C(/) handler proxies to
    C(target). With C(enabled=false), or after a switch of C(mode), the
    role's own serve of the other form is removed
    (C(tailscale serve --https=PORT off), C(tailscale serve clear svc:NAME));
    serves of other targets are left alone, and a port that another serve
    uses for raw TCP is an error.
  - Errors name the bad field (C(dagster_tailscale_serve_mode), ...) and are
    raised before any call is made. They never contain an auth key (the
    filter does not see one).
  - Funnel serves only on the ports Tailscale allows for it, 443, 8443 and
    10000; another C(dagster_tailscale_https_port) with C(funnel) is an error.
  - The family also holds C(dagster_tailscale_login), which reads
    C(tailscale status --json), C(dagster_tailscale_serve_command), the
    call the boot unit repeats, and C(dagster_tailscale_up_args), which checks
    the further C(tailscale up) flags (C(--operator) names a Unix user).
options:
  _input:
    description: The parsed C(tailscale serve status --json); null or C({}) when nothing is served.
    type: dict
    required: true
  wanted:
    description: >-
      C(enabled) (bool), C(mode) (C(node) or C(service)), C(service_name)
      (a DNS label, without C(svc:)), C(https_port) (int), C(target)
      (C(http://127.0.0.1:PORT) or C(http://localhost:PORT)), C(funnel) (bool).
    type: dict
    required: true
"""

EXAMPLES = r"""
- name: Read the serve config
  ansible.builtin.command:
    argv: [tailscale, serve, status, --json]
  register: __serve_status
  changed_when: false

- name: Apply what differs
  ansible.builtin.command:
    argv: "{{ ['tailscale'] + item }}"
  loop: "{{ (__serve_status.stdout | from_json | dagsterops.dagster.dagster_tailscale_serve_plan(wanted)).commands }}"
  vars:
    wanted:
      enabled: true
      mode: service
      service_name: dagster
      https_port: 443
      target: http://127.0.0.1:3000
      funnel: false
"""

RETURN = r"""
_value:
  description: The plan.
  type: dict
  contains:
    in_sync:
      description: True when the serve config already is as wanted.
      type: bool
    commands:
      description: C(tailscale) argument lists, to run in order.
      type: list
      elements: list
    changes:
      description: One line per difference, for the task output.
      type: list
      elements: str
"""

try:
    from ansible.errors import AnsibleFilterError
except ImportError:  # pragma: no cover - lets the module load without Ansible
    AnsibleFilterError = ValueError  # type: ignore[misc,assignment]

MODES = ("node", "service")
# tailcfg.ServiceName: "svc:" and a DNS label.
SERVICE_LABEL_RE = re.compile(r"^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?\Z")
TARGET_RE = re.compile(r"^https?://(127\.0\.0\.1|localhost):([0-9]{1,5})(/[^\s]*)?\Z")
# ipn.State names (ipn/backend.go); logged in once the node has a key.
BACKEND_STATES = ("NoState", "NeedsLogin", "NeedsMachineAuth", "Stopped", "Starting", "Running", "InUseOtherUser")
LOGGED_IN_STATES = ("NeedsMachineAuth", "Stopped", "Starting", "Running")
STATUS = "tailscale serve status --json"
# The only HTTPS ports Tailscale Funnel accepts (tailscale funnel --help; ipn.IsFunnelPort refuses others).
FUNNEL_PORTS = (443, 8443, 10000)
_UNIX_USER_RE = re.compile(r"[a-z_][a-z0-9_-]{0,31}\Z")
_CONTROL_RE = re.compile(r"[\x00-\x1f\x7f]")


def _is_int(value):
    return isinstance(value, int) and not isinstance(value, bool)


def _validate_wanted(wanted):
    if not isinstance(wanted, dict):
        raise AnsibleFilterError(f"wanted: must be a map, got {type(wanted).__name__}")
    for key in ("enabled", "funnel"):
        if not isinstance(wanted.get(key), bool):
            raise AnsibleFilterError(
                f"dagster_tailscale_{'serve_enabled' if key == 'enabled' else key}: "
                f"must be true or false, got {wanted.get(key)!r}"
            )
    mode = wanted.get("mode")
    if mode not in MODES:
        raise AnsibleFilterError(f"dagster_tailscale_serve_mode: must be one of {', '.join(MODES)}, got {mode!r}")
    name = wanted.get("service_name")
    if not isinstance(name, str) or not SERVICE_LABEL_RE.match(name):
        raise AnsibleFilterError(
            "dagster_tailscale_service_name: must be a DNS label (lower-case letters, digits and '-', "
            f"at most 63, without the svc: prefix), got {name!r}"
        )
    port = wanted.get("https_port")
    if not _is_int(port) or not 1 <= port <= 65535:
        raise AnsibleFilterError(f"dagster_tailscale_https_port: must be an integer from 1 to 65535, got {port!r}")
    target = wanted.get("target")
    match = TARGET_RE.match(target) if isinstance(target, str) else None
    if not match or not 1 <= int(match.group(2)) <= 65535:
        raise AnsibleFilterError(
            "target: tailscale serve proxies only to http(s)://127.0.0.1:PORT or http(s)://localhost:PORT, "
            f"got {target!r}"
        )
    if wanted["funnel"] and mode == "service":
        raise AnsibleFilterError(
            "dagster_tailscale_funnel: Funnel is not available for a Tailscale Service; "
            "use dagster_tailscale_serve_mode: node to expose the UI to the internet"
        )
    if wanted["funnel"] and port not in FUNNEL_PORTS:
        raise AnsibleFilterError(
            f"dagster_tailscale_https_port: Funnel serves only on ports {', '.join(map(str, FUNNEL_PORTS))}, "
            f"got {port}"
        )
    return wanted


def up_args(args):
    """Check the further `tailscale up` flags; return them.

    --operator names the local user that may use tailscaled's socket without
    root: a Unix user name, not a login such as user@example.com. The auth key
    is checked by the role (without printing the flags)."""
    if not isinstance(args, list) or not all(isinstance(arg, str) for arg in args):
        raise AnsibleFilterError("dagster_tailscale_up_args: must be a list of strings")
    for index, arg in enumerate(args):
        if _CONTROL_RE.search(arg):
            raise AnsibleFilterError(f"dagster_tailscale_up_args[{index}]: holds a line break or control character")
        operator = None
        if arg.startswith("--operator="):
            operator = arg.partition("=")[2]
        elif arg == "--operator":
            operator = args[index + 1] if index + 1 < len(args) else ""
        if operator is not None and not _UNIX_USER_RE.match(operator):
            raise AnsibleFilterError(
                f"dagster_tailscale_up_args[{index}]: --operator must name a local Unix user (who may use "
                f"tailscaled's socket without root), got {operator!r}"
            )
    return args


def _map(value, field):
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise AnsibleFilterError(f"{STATUS}: {field} must be a map, got {type(value).__name__}")
    return value


def _port_of(hostport, field):
    host, sep, port = str(hostport).rpartition(":")
    if not sep or not host or not port.isdigit():
        raise AnsibleFilterError(f"{STATUS}: {field} key {hostport!r} is not HOST:PORT")
    return int(port), host


def _scope(config, field):
    """TCP handlers by port and web handlers by (port, host) of one ServeConfig or ServiceConfig."""
    config = _map(config, field)
    tcp = {}
    for port, handler in _map(config.get("TCP"), f"{field}.TCP").items():
        if not str(port).isdigit():
            raise AnsibleFilterError(f"{STATUS}: {field}.TCP key {port!r} is not a port number")
        tcp[int(port)] = _map(handler, f"{field}.TCP[{port}]")
    web = {}
    for hostport, server in _map(config.get("Web"), f"{field}.Web").items():
        port, host = _port_of(hostport, f"{field}.Web")
        handlers = _map(_map(server, f"{field}.Web[{hostport}]").get("Handlers"), f"{field}.Web[{hostport}].Handlers")
        web[(port, host)] = {m: _map(h, f"{field}.Web[{hostport}].Handlers[{m}]") for m, h in handlers.items()}
    return tcp, web, config


def _same_target(proxy, target):
    return isinstance(proxy, str) and proxy.rstrip("/") == target.rstrip("/")


def _handlers_on(web, port, host_ok=lambda host: True):
    handlers = {}
    for (web_port, host), mounts in web.items():
        if web_port == port and host_ok(host):
            handlers.update(mounts)
    return handlers


def serve_command(wanted):
    """The tailscale arguments that set the wanted serve."""
    wanted = _validate_wanted(wanted)
    port = f"--https={wanted['https_port']}"
    if wanted["mode"] == "service":
        return ["serve", "--bg", f"--service=svc:{wanted['service_name']}", port, wanted["target"]]
    return ["funnel" if wanted["funnel"] else "serve", "--bg", port, wanted["target"]]


def serve_plan(status, wanted):
    """The calls that take the serve config from `status` to `wanted`."""
    wanted = _validate_wanted(wanted)
    port, target, service = wanted["https_port"], wanted["target"], f"svc:{wanted['service_name']}"
    node_tcp, node_web, config = _scope(status, "serve config")
    services = _map(config.get("Services"), "Services")
    funnel = _map(config.get("AllowFunnel"), "AllowFunnel")
    funnel_on = any(flag is True and _port_of(hp, "AllowFunnel")[0] == port for hp, flag in funnel.items())

    node_handlers = _handlers_on(node_web, port)
    node_ours = _same_target(node_handlers.get("/", {}).get("Proxy"), target)

    svc_tcp, svc_web, svc_config = _scope(services.get(service), f"Services[{service}]")
    # The host of a Service's web key is NAME.<MagicDNS suffix> (NAME alone in older releases).
    label = wanted["service_name"]
    svc_handlers = _handlers_on(svc_web, port, lambda host: host == label or host.startswith(label + "."))
    svc_ours = _same_target(svc_handlers.get("/", {}).get("Proxy"), target)

    commands, changes = [], []
    want_node = wanted["enabled"] and wanted["mode"] == "node"
    want_service = wanted["enabled"] and wanted["mode"] == "service"

    if want_node:
        handler = node_tcp.get(port, {})
        if handler.get("TCPForward") or handler.get("HTTP"):
            kind = "raw TCP" if handler.get("TCPForward") else "plain HTTP"
            raise AnsibleFilterError(
                f"dagster_tailscale_https_port: port {port} of this node already serves {kind}; "
                "remove that serve or choose another port"
            )
        if not (handler.get("HTTPS") and node_ours):
            changes.append(f"node serve on port {port} -> {target}" + (" with Funnel" if wanted["funnel"] else ""))
            commands.append(serve_command(wanted))
        elif funnel_on != wanted["funnel"]:
            changes.append(f"Funnel on port {port}: {'on' if wanted['funnel'] else 'off'}")
            commands.append(serve_command(wanted))
    elif node_ours:
        changes.append(f"remove the node serve on port {port} -> {target}")
        off = ["serve", f"--https={port}"]
        if set(node_handlers) != {"/"}:
            off.append("--set-path=/")  # keep other mounts on the port
        commands.append(off + ["off"])

    if want_service:
        if svc_config.get("Tun"):
            raise AnsibleFilterError(
                f"dagster_tailscale_service_name: {service} is served in TUN mode by something else; "
                "clear it (tailscale serve clear) or choose another name"
            )
        handler = svc_tcp.get(port, {})
        if handler.get("TCPForward") or handler.get("HTTP"):
            raise AnsibleFilterError(
                f"dagster_tailscale_https_port: port {port} of {service} already serves "
                f"{'raw TCP' if handler.get('TCPForward') else 'plain HTTP'}; remove that serve or choose another port"
            )
        if not (handler.get("HTTPS") and svc_ours):
            changes.append(f"{service} on port {port} -> {target}")
            commands.append(serve_command(wanted))
    elif svc_ours:
        changes.append(f"remove {service}")
        commands.append(["serve", "clear", service])

    return {"in_sync": not commands, "commands": commands, "changes": changes}


def login_state(status):
    """What `tailscale status --json` says about the node's login."""
    if not isinstance(status, dict):
        raise AnsibleFilterError(f"tailscale status --json: must be a map, got {type(status).__name__}")
    state = status.get("BackendState")
    if state not in BACKEND_STATES:
        raise AnsibleFilterError(
            f"tailscale status --json: BackendState must be one of {', '.join(BACKEND_STATES)}, got {state!r}"
        )
    self_node = status.get("Self")
    if self_node is None:
        self_node = {}
    if not isinstance(self_node, dict):
        raise AnsibleFilterError(f"tailscale status --json: Self must be a map, got {type(self_node).__name__}")
    return {
        "backend_state": state,
        "logged_in": state in LOGGED_IN_STATES,
        "running": state == "Running",
        "needs_up": state != "Running",
        "dns_name": str(self_node.get("DNSName") or "").rstrip("."),
    }


class FilterModule:
    """Tailscale serve filters."""

    def filters(self):
        return {
            "dagster_tailscale_serve_plan": serve_plan,
            "dagster_tailscale_serve_command": serve_command,
            "dagster_tailscale_login": login_state,
            "dagster_tailscale_up_args": up_args,
        }
