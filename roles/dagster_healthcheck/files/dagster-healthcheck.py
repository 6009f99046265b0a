#!/usr/bin/python3
"""Check every part of a Dagster instance and report to a healthchecks.io-style URL.

    dagster-healthcheck.py CONFIG.json

Pings PING_URL/start, then checks
  - the webserver: its /server_info answers with Dagster's version;
  - the daemon: its unit is active, and `dagster-daemon liveness-check` finds
    fresh heartbeats (tolerance DAGSTER_DAEMON_HEARTBEAT_TOLERANCE);
  - each code server: `dagster api grpc-health-check` answers;
then pings PING_URL/0 with a report, or PING_URL/fail with a report that
names each part that failed. Exits 0 when all is well, 1 otherwise.

The ping URL comes from the environment (DAGSTER_HEALTHCHECK_PING_URL, from
an EnvironmentFile readable only by root and the service's group) and is never
printed: it may hold a secret. Installed by the dagsterops.dagster
dagster_healthcheck role; Python standard library only.
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


def _tail(text, lines=5):
    kept = [line for line in text.strip().splitlines() if line.strip()]
    return " | ".join(kept[-lines:])


def run(argv, timeout, env):
    started = time.monotonic()
    try:
        done = subprocess.run(argv, capture_output=True, text=True, timeout=timeout, env=env, check=False)
    except subprocess.TimeoutExpired:
        return False, f"no answer within {timeout} s", time.monotonic() - started
    except OSError as error:
        return False, f"cannot run {argv[0]}: {error.strerror}", time.monotonic() - started
    output = _tail(done.stdout + "\n" + done.stderr)
    if done.returncode != 0:
        return False, f"exited {done.returncode}: {output}", time.monotonic() - started
    return True, output, time.monotonic() - started


def check_webserver(config):
    started = time.monotonic()
    try:
        with urllib.request.urlopen(config["webserver_url"], timeout=config["timeout"]) as response:
            info = json.loads(response.read().decode())
    except urllib.error.HTTPError as error:
        return False, f"{config['webserver_url']} answered HTTP {error.code}"
    except (urllib.error.URLError, OSError, ValueError) as error:
        return False, f"{config['webserver_url']}: {getattr(error, 'reason', error)}"
    version = info.get("dagster_version") if isinstance(info, dict) else None
    if not version:
        return False, f"{config['webserver_url']} answered without dagster_version"
    return True, f"Dagster {version}, answered in {time.monotonic() - started:.1f} s"


def check_daemon(config, env):
    unit = config.get("daemon_unit")
    if unit:
        done = subprocess.run(["systemctl", "is-active", unit], capture_output=True, text=True, check=False)
        state = done.stdout.strip() or "unknown"
        if state != "active":
            return False, f"{unit} is {state}"
    ok, output, seconds = run([os.path.join(config["dagster_bin"], "dagster-daemon"), "liveness-check"],
                              config["timeout"], env)
    if not ok:
        return False, f"dagster-daemon liveness-check {output}"
    return True, f"{output or 'live'} ({seconds:.1f} s)"


def check_code_server(server, config, env):
    argv = [os.path.join(config["dagster_bin"], "dagster"), "api", "grpc-health-check",
            "--host", server["host"], "--port", str(server["port"])]
    ok, output, seconds = run(argv, config["timeout"], env)
    where = f"{server['host']}:{server['port']}"
    if not ok:
        return False, f"{where}: grpc-health-check {output}"
    return True, f"{where} serving ({seconds:.1f} s)"


def main(argv):
    if len(argv) != 2:
        print(__doc__.strip().splitlines()[2], file=sys.stderr)
        return 2
    with open(argv[1], encoding="utf-8") as handle:
        config = json.load(handle)
    base = os.environ.get(PING_URL_ENV, "")
    if not base:
        print(f"{PING_URL_ENV} is not set; nothing to ping", file=sys.stderr)
        return 2
    # The checks' own processes do not need the ping URL.
    env = {k: v for k, v in os.environ.items() if k != PING_URL_ENV}
    timeout, retries = config["ping_timeout"], config["ping_retries"]

    if not ping(base, "start", "", timeout, retries):
        print("ping /start: not delivered", flush=True)

    results = [("webserver", *check_webserver(config)), ("daemon", *check_daemon(config, env))]
    for server in config["code_servers"]:
        results.append((f"code server {server['name']}", *check_code_server(server, config, env)))

    failed = [name for name, ok, _ in results if not ok]
    host = socket.gethostname()
    headline = (f"Dagster on {host}: FAILED: {', '.join(failed)}" if failed
                else f"Dagster on {host}: all {len(results)} checks passed")
    body = "\n".join([headline, ""] + [f"{'ok  ' if ok else 'FAIL'} {name}: {detail}" for name, ok, detail in results])
    print(body, flush=True)
    if not ping(base, "fail" if failed else "0", body + "\n", timeout, retries):
        print(f"ping /{'fail' if failed else '0'}: not delivered", flush=True)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
