"""The Dagster UI as a user sees it, in headless Chromium (Debian's chromium,
driven by Playwright).

The webserver listens on the host's loopback only, as the role deploys it. For
the browser on the test machine, a relay started inside the container for the
length of this module forwards one port of the container's address to it. It
is a test aid: it is not part of the deployment and goes away with the module.

Screenshots of each page go to .molecule-logs/ui/ (DAGSTEROPS_SCREENSHOTS
overrides the directory); docs/images/ holds the ones the README shows.
"""

from __future__ import annotations

import base64
import re
import time

import pytest
from browser_checks import chromium, screenshot
from dagster_checks import journal, launch_run, wait_for_run
from playwright.sync_api import expect

RELAY_UNIT = "dagsterops-ui-relay"
RELAY_PORT = 3080
TIMEOUT_MS = 60_000
expect.set_options(timeout=TIMEOUT_MS)

# Copies bytes both ways between a client of ADDRESS:PORT and the webserver on
# 127.0.0.1:3000; runs inside the container with its own python3.
_RELAY = r"""
import asyncio, sys

async def pipe(reader, writer):
    try:
        while data := await reader.read(65536):
            writer.write(data)
            await writer.drain()
    finally:
        writer.close()

async def handle(client_reader, client_writer):
    try:
        upstream_reader, upstream_writer = await asyncio.open_connection("127.0.0.1", 3000)
    except OSError:
        client_writer.close()
        return
    await asyncio.gather(pipe(client_reader, upstream_writer), pipe(upstream_reader, client_writer),
                         return_exceptions=True)

async def main():
    server = await asyncio.start_server(handle, sys.argv[1], int(sys.argv[2]))
    async with server:
        await server.serve_forever()

asyncio.run(main())
"""


@pytest.fixture(scope="module")
def ui_url(host):
    address = host.check_output("hostname -I").split()[0]
    code = base64.b64encode(_RELAY.encode()).decode()
    host.run(f"systemctl stop {RELAY_UNIT}")
    host.check_output(
        f"systemd-run --collect --unit={RELAY_UNIT} -p DynamicUser=yes /usr/bin/python3 -c "
        f"\"import base64; exec(base64.b64decode('{code}'))\" {address} {RELAY_PORT}"
    )
    # systemd-run returns once the relay's process is forked: wait until it listens.
    deadline = time.monotonic() + 30
    while not host.socket(f"tcp://{address}:{RELAY_PORT}").is_listening:
        assert time.monotonic() < deadline, journal(host, RELAY_UNIT)
        time.sleep(0.5)
    yield f"http://{address}:{RELAY_PORT}"
    host.run(f"systemctl stop {RELAY_UNIT}")


@pytest.fixture(scope="module")
def browser():
    with chromium() as browser:
        yield browser


@pytest.fixture(scope="module")
def run_id(host, ui_url):
    """A run launched through GraphQL, as a user's client would, finished before the UI is looked at."""
    run_id = launch_run(host, "example", "example_job")
    status, _seconds, seen = wait_for_run(host, run_id)
    assert status == "SUCCESS", f"{seen}\n{journal(host, 'dagster-daemon')}"
    return run_id


@pytest.fixture
def page(browser):
    context = browser.new_context(viewport={"width": 1440, "height": 900})
    page = context.new_page()
    page.set_default_timeout(TIMEOUT_MS)
    errors = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    yield page
    context.close()
    assert not errors, f"JavaScript errors on the page: {errors}"


def test_the_code_locations_are_loaded(page, ui_url):
    page.goto(f"{ui_url}/locations")
    expect(page.get_by_text("2 code locations")).to_be_visible()
    for kind, target in (("module_name:", "dagster_example"), ("python_file:", "file_location.py")):
        # The innermost element holding the location's target and its status: its row.
        row = page.locator("div").filter(has_text=kind).filter(has_text="Reload").last
        expect(row).to_contain_text(target)
        expect(row.get_by_text("Loaded", exact=True)).to_be_visible()
    screenshot(page, "locations")


def test_the_example_assets_are_listed(page, ui_url):
    page.goto(f"{ui_url}/assets")
    for name, description in (("numbers", "A handful of numbers."), ("total", "The sum of the numbers."),
                              ("run_host", "Where this run executed.")):
        link = page.locator(f'a[href$="/assets/{name}"]').first
        expect(link).to_be_visible()
        expect(page.get_by_text(description, exact=True)).to_be_visible()
    screenshot(page, "assets")


def test_the_run_is_in_the_runs_list_and_opens(page, ui_url, run_id):
    page.goto(f"{ui_url}/runs")
    link = page.locator(f'a[href*="/runs/{run_id}"]').first
    expect(link).to_be_visible()
    expect(link).to_have_text(run_id[:8])
    # The innermost element holding both the run's link and its job: its row.
    row = page.locator("div").filter(has=link).filter(has_text="example_job").last
    expect(row).to_contain_text("Success")
    screenshot(page, "runs")
    link.click()
    page.wait_for_url(re.compile(f"/runs/{run_id}"))
    # The run's page: its event log reaches the end of the run, each asset materialized.
    expect(page.get_by_text("RUN_SUCCESS").first).to_be_visible()
    for name in ("numbers", "total", "run_host"):
        expect(page.get_by_text(name, exact=True).first).to_be_visible()
    screenshot(page, "run")
