#!/usr/bin/python3
"""Check every part of a Dagster instance and report to a healthchecks.io-style URL.

    dagster-healthcheck.py CONFIG.json

Pings PING_URL/start, then checks
  - the webserver: its /server_info answers with Dagster's version;
  - the code locations: every entry of the webserver's workspace loaded,
    none holds a load error (workspaceOrError through /graphql);
  - the daemon, where it runs on this host: its unit is active, its main
    process is not stopped (SIGSTOP) or frozen, and every daemon the instance
    requires wrote a heartbeat within Dagster's heartbeat interval plus the
    tolerance (instance.daemonHealth through /graphql);
  - each code server: it answers the gRPC health check as SERVING;
then pings PING_URL/0 with a report, or PING_URL/fail with a report that
names each part that failed. Exits 0 when all is well, 1 otherwise.

No check imports Dagster or reads the instance's database: a check costs a
few HTTP requests and one small gRPC call, so it answers in about a second
even on a host busy with runs. The ping URL comes from the environment
(DAGSTER_HEALTHCHECK_PING_URL, from an EnvironmentFile readable only by root
and the service's group) and is never printed: it may hold a secret.
Installed by the dagsterops.dagster dagster_healthcheck role; Python
standard library only (the gRPC call runs in the instance's own Python).
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from urllib.parse import urlsplit, urlunsplit

PING_URL_ENV = "DAGSTER_HEALTHCHECK_PING_URL"
# The report healthchecks.io keeps is limited (100 kB); stay well below.
MAX_BODY = 10000

# One request for what the webserver knows: its workspace and the daemons' heartbeats.
STATE_QUERY = """
{
  workspaceOrError {
    __typename
    ... on Workspace {
      locationEntries {
        name
        loadStatus
        locationOrLoadError { __typename ... on PythonError { message errorChain { error { message } } } }
      }
    }
    ... on PythonError { message }
  }
  instance { daemonHealth { allDaemonStatuses { daemonType required lastHeartbeatTime } } }
}
"""

# The request `dagster api grpc-health-check` makes, without importing Dagster:
# run by the instance's Python, which has grpcio and grpcio-health-checking.
GRPC_HEALTH = (
    "import sys, grpc\n"
    "from grpc_health.v1 import health_pb2, health_pb2_grpc\n"
    "target, timeout = sys.argv[1], float(sys.argv[2])\n"
    "with grpc.insecure_channel(target) as channel:\n"
    "    try:\n"
    "        reply = health_pb2_grpc.HealthStub(channel).Check(\n"
    "            health_pb2.HealthCheckRequest(service='DagsterApi'), timeout=timeout)\n"
    "    except grpc.RpcError as error:\n"
    "        print(error.code().name, (error.details() or '').splitlines()[:1])\n"
    "        raise SystemExit(1)\n"
    "name = health_pb2.HealthCheckResponse.ServingStatus.Name(reply.status)\n"
    "print(name)\n"
    "raise SystemExit(0 if name == 'SERVING' else 1)\n"
)


def ping_url(base, suffix):
    """base + /suffix, before any query string (slug URLs may carry ?create=1)."""
    parts = urlsplit(base)
    path = parts.path.rstrip("/") + "/" + suffix
    return urlunsplit((parts.scheme, parts.netloc, path, parts.query, ""))


def ping(base, suffix, body, timeout, retries):
    """POST the report; True when the receiver answered 2xx. Errors never show the URL."""
    data = body.encode("utf-8", "replace")[:MAX_BODY]
    request = urllib.request.Request(
        ping_url(base, suffix), data=data, method="POST",
        headers={"Content-Type": "text/plain; charset=utf-8", "User-Agent": "dagster-healthcheck"},
    )
    for attempt in range(1, retries + 2):
        try:
            with urllib.request.urlopen(request, timeout=timeout) as response:
                if 200 <= response.status < 300:
                    return True
                problem = f"HTTP {response.status}"
        except urllib.error.HTTPError as error:
            problem = f"HTTP {error.code}"
        except (urllib.error.URLError, OSError) as error:
            reason = getattr(error, "reason", error)
            problem = type(reason).__name__ if not isinstance(reason, str) else "connection failed"
        print(f"ping /{suffix}: attempt {attempt} failed ({problem})", flush=True)
        if attempt <= retries:
            time.sleep(min(2 ** attempt, 10))
    return False


def _first_line(text):
    lines = [line.strip() for line in str(text).strip().splitlines() if line.strip()]
    return lines[0][:300] if lines else ""


def _reason(error):
    if isinstance(error, urllib.error.HTTPError):
        return f"answered HTTP {error.code}"
    if isinstance(error, (TimeoutError, socket.timeout)):
        return "no answer in time"
    reason = getattr(error, "reason", error)
    if isinstance(reason, (TimeoutError, socket.timeout)):
        return "no answer in time"
    return str(reason) or type(reason).__name__


def http_json(url, timeout, body=None):
    """GET (or POST a JSON body to) url; the decoded JSON answer."""
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(url, data=data, headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=timeout) as response:
        return json.loads(response.read().decode())


# --- judgements: pure functions of what was read, unit-tested ----------------------------------


def judge_server_info(info, seconds):
    version = info.get("dagster_version") if isinstance(info, dict) else None
    if not version:
        return False, "/server_info answered without dagster_version"
    return True, f"Dagster {version}, answered in {seconds:.1f} s"


def _load_error(error):
    """The error's first line, and its root cause's (the user's own exception) when it has one."""
    text = _first_line(error.get("message"))
    chain = [link.get("error") or {} for link in error.get("errorChain") or []]
    cause = _first_line(chain[-1].get("message")) if chain else ""
    return f"{cause} ({text})" if cause else text


def judge_locations(workspace):
    """[(name, ok, detail)] for the workspace part of the GraphQL answer.

    A location whose entry holds a PythonError failed to load (its code raised,
    its file or module is missing, or its gRPC server did not answer when the
    webserver loaded it). A location still LOADING has no error yet and counts
    as up: the webserver is (re)loading it now."""
    if not isinstance(workspace, dict):
        return [("code locations", False, "the webserver returned no workspace")]
    if workspace.get("__typename") != "Workspace":
        return [("code locations", False, f"the workspace failed to load: {_first_line(workspace.get('message'))}")]
    results, loaded, loading = [], [], []
    for entry in workspace.get("locationEntries") or []:
        name = entry.get("name", "?")
        location = entry.get("locationOrLoadError") or {}
        if location.get("__typename") == "PythonError":
            results.append((f"location {name}", False, f"failed to load: {_load_error(location)}"))
        elif entry.get("loadStatus") == "LOADING" or not location:
            loading.append(name)
        else:
            loaded.append(name)
    summary = f"{len(loaded)} loaded" + (f" ({', '.join(loaded)})" if loaded else "")
    if loading:
        summary += f", {len(loading)} loading ({', '.join(loading)})"
    return [("code locations", True, summary)] + results


def judge_heartbeats(statuses, now, interval, tolerance):
    """(ok, detail) for instance.daemonHealth.allDaemonStatuses.

    Dagster counts a daemon healthy while now <= last heartbeat + interval +
    tolerance (dagster/_daemon/controller.py, get_daemon_statuses); the same
    rule, with the role's tolerance."""
    allowed = interval + tolerance
    required = [s for s in statuses or [] if s.get("required")]
    if not required:
        return False, "the instance reports no required daemon"
    late, oldest = [], None
    for status in required:
        kind, last = status.get("daemonType", "?"), status.get("lastHeartbeatTime")
        if last is None:
            late.append(f"{kind} never sent a heartbeat")
            continue
        age = max(0.0, now - float(last))
        if oldest is None or age > oldest[1]:
            oldest = (kind, age)
        if age > allowed:
            late.append(f"{kind}'s last heartbeat is {age:.0f} s old")
    if late:
        return False, f"{'; '.join(late)} (allowed {allowed:g} s)"
    return True, (f"heartbeats of {len(required)} daemons, oldest {oldest[0]} {oldest[1]:.0f} s ago "
                  f"(allowed {allowed:g} s)")


def judge_process(properties, proc_state):
    """(ok, detail) from the unit's properties and its main process's state letter."""
    unit_state = properties.get("ActiveState", "unknown")
    if unit_state != "active":
        return False, f"{properties.get('Id', 'the unit')} is {unit_state}"
    freezer = properties.get("FreezerState", "running") or "running"
    if freezer != "running":
        return False, f"{properties.get('Id', 'the unit')} is {freezer} (cgroup freezer)"
    if proc_state in ("T", "t"):
        return False, f"its main process {properties.get('MainPID')} is stopped by a signal (state {proc_state})"
    return True, f"pid {properties.get('MainPID')} running"


# --- probes --------------------------------------------------------------------------------------


def unit_properties(unit):
    done = subprocess.run(
        ["systemctl", "show", "--property=Id,ActiveState,SubState,MainPID,FreezerState", unit],
        capture_output=True, text=True, check=False,
    )
    properties = dict(line.split("=", 1) for line in done.stdout.splitlines() if "=" in line)
    properties.setdefault("Id", unit)
    return properties


def process_state(pid):
    """The state letter of /proc/PID/stat ('R', 'S', 'T', ...), or '' when it cannot be read."""
    try:
        with open(f"/proc/{int(pid)}/stat", encoding="ascii", errors="replace") as handle:
            return handle.read().rsplit(")", 1)[1].split()[0]
    except (OSError, ValueError, IndexError):
        return ""


def read_state(config):
    """(server_info result, GraphQL data or None, why not) from the webserver."""
    base, timeout = config["webserver_url"].rstrip("/"), config["timeout"]
    started = time.monotonic()
    try:
        info = http_json(f"{base}/server_info", timeout)
    except (urllib.error.URLError, OSError, ValueError) as error:
        return (False, f"{base}/server_info: {_reason(error)}"), None, "the webserver does not answer"
    webserver = judge_server_info(info, time.monotonic() - started)
    try:
        answer = http_json(f"{base}/graphql", timeout, {"query": STATE_QUERY})
    except (urllib.error.URLError, OSError, ValueError) as error:
        return (False, f"{base}/graphql: {_reason(error)}"), None, "the webserver's GraphQL does not answer"
    if not isinstance(answer, dict) or answer.get("errors") or not isinstance(answer.get("data"), dict):
        errors = answer.get("errors") if isinstance(answer, dict) else None
        detail = _first_line(errors[0].get("message")) if errors else "no data"
        return (False, f"{base}/graphql: {detail}"), None, "the webserver's GraphQL failed"
    return webserver, answer["data"], ""


def check_daemon(daemon, data, why_not):
    properties = unit_properties(daemon["unit"])
    ok, detail = judge_process(properties, process_state(properties.get("MainPID", "0")))
    if not ok:
        return False, detail
    if data is None:
        return True, f"{detail}; heartbeats not read: {why_not}"
    statuses = ((data.get("instance") or {}).get("daemonHealth") or {}).get("allDaemonStatuses")
    ok, beats = judge_heartbeats(statuses, time.time(), daemon["heartbeat_interval"], daemon["heartbeat_tolerance"])
    return ok, f"{detail}, {beats}"


def check_code_server(server, config):
    host = server["host"]
    target = f"[{host}]:{server['port']}" if ":" in host and not host.startswith("[") else f"{host}:{server['port']}"
    started = time.monotonic()
    try:
        done = subprocess.run([config["python"], "-c", GRPC_HEALTH, target, str(config["timeout"])],
                              capture_output=True, text=True, timeout=config["timeout"] + 10, check=False)
    except subprocess.TimeoutExpired:
        return False, f"{target}: no answer within {config['timeout']} s"
    except OSError as error:
        return False, f"cannot run {config['python']}: {error.strerror}"
    answer = _first_line(done.stdout) or _first_line(done.stderr) or f"exit status {done.returncode}"
    if done.returncode != 0:
        return False, f"{target}: {answer}"
    return True, f"{target} {answer} ({time.monotonic() - started:.1f} s)"


def main(argv):
    if len(argv) != 2:
        print(__doc__.strip().splitlines()[2], file=sys.stderr)
        return 2
    with open(argv[1], encoding="utf-8") as handle:
        config = json.load(handle)
    # Taken out of the environment: the probes this check starts (systemctl, the code-server
    # probe in the instance's Python) never hold the ping URL.
    base = os.environ.pop(PING_URL_ENV, "")
    if not base:
        print(f"{PING_URL_ENV} is not set; nothing to ping", file=sys.stderr)
        return 2
    timeout, retries = config["ping_timeout"], config["ping_retries"]

    if not ping(base, "start", "", timeout, retries):
        print("ping /start: not delivered", flush=True)

    webserver, data, why_not = read_state(config)
    results = [("webserver", *webserver)]
    if data is not None:
        results += judge_locations(data.get("workspaceOrError"))
    notes = [] if data is not None else [f"--   code locations: not checked: {why_not}"]
    daemon = config.get("daemon")
    if daemon:
        results.append(("daemon", *check_daemon(daemon, data, why_not)))
    else:
        notes.append("--   daemon: not on this host (dagster_daemon_enabled is false); its own host checks it")
    for server in config["code_servers"]:
        results.append((f"code server {server['name']}", *check_code_server(server, config)))

    failed = [name for name, ok, _ in results if not ok]
    host = socket.gethostname()
    headline = (f"Dagster on {host}: FAILED: {', '.join(failed)}" if failed
                else f"Dagster on {host}: all {len(results)} checks passed")
    lines = [f"{'ok  ' if ok else 'FAIL'} {name}: {detail}" for name, ok, detail in results]
    body = "\n".join([headline, ""] + lines + notes)
    print(body, flush=True)
    if not ping(base, "fail" if failed else "0", body + "\n", timeout, retries):
        print(f"ping /{'fail' if failed else '0'}: not delivered", flush=True)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
