"""The Dagster UI through the proxy in headless Chromium (Debian's chromium, driven by
Playwright), as its users see it: the sign-in page, an editor launching a run from
the launchpad and watching it live over the websocket, a viewer's read-only UI,
and both again signed in with client certificates.

Screenshots go to .molecule-logs/ui/ (DAGSTEROPS_SCREENSHOTS overrides the
directory); docs/images/ holds the ones the README shows.
"""

from __future__ import annotations

import re

import pytest
from browser_checks import chromium, screenshot
from playwright.sync_api import expect
from test_proxy import ADDRESS, BASE, PASSWORDS, client_certs  # noqa: F401 - client_certs is a fixture

TIMEOUT_MS = 120_000
RUN_TIMEOUT_MS = 300_000
LAUNCHPAD = f"{BASE}/locations/__repository__@example/jobs/example_job/playground"
expect.set_options(timeout=TIMEOUT_MS)


@pytest.fixture(scope="module")
def browser(host):
    if host.backend.get_hostname() != "dagster-proxy":
        pytest.skip("the browser test runs against the proxy host only")
    with chromium() as browser:
        yield browser


def _page(browser, **context_options):
    # The browser does not trust the deployment's CA (the other tests verify the certificate with it).
    context = browser.new_context(viewport={"width": 1440, "height": 900}, ignore_https_errors=True,
                                  **context_options)
    page = context.new_page()
    page.set_default_timeout(TIMEOUT_MS)
    return context, page


@pytest.fixture
def open_page(browser):
    contexts = []

    def opener(**options):
        context, page = _page(browser, **options)
        contexts.append(context)
        return page
    yield opener
    for context in contexts:
        context.close()


def _certificate(certs, name):
    cert, key = certs[name]
    return {"client_certificates": [{"origin": f"https://{ADDRESS}", "certPath": cert, "keyPath": key}]}


def test_without_credentials_the_sign_in_page_is_shown(open_page):
    page = open_page()
    # Chromium turns a 401 it has no credentials for into a navigation error: the page is fetched by the
    # browser's request client and shown as it came.
    response = page.context.request.get(f"{BASE}/runs")
    assert response.status == 401
    assert response.headers["www-authenticate"] == 'Basic realm="Dagster"'
    page.set_content(response.text())
    expect(page.get_by_role("heading", name="Sign in to Dagster")).to_be_visible()
    screenshot(page, "proxy-sign-in", min_bytes=5_000)


def _launch_and_watch(page, who):
    """Launch example_job from the launchpad; its run page must reach success without a reload, over the websocket."""
    frames = []

    def on_websocket(socket):
        frames.append(socket.url)
        socket.on("framereceived", lambda payload: frames.append(payload))
    page.on("websocket", on_websocket)
    page.goto(LAUNCHPAD)
    button = page.get_by_role("button", name=re.compile("Launch run", re.IGNORECASE))
    expect(button).to_be_enabled()
    button.click()
    page.wait_for_url(re.compile(r"/dagster/runs/[0-9a-f-]{36}"))
    # The page is not reloaded: the events arrive over the websocket, through the proxy.
    expect(page.get_by_text("RUN_SUCCESS").first).to_be_visible(timeout=RUN_TIMEOUT_MS)
    screenshot(page, f"proxy-run-{who}")
    sockets = [url for url in frames if isinstance(url, str) and url.startswith("wss://")]
    assert sockets and all(url.startswith(f"wss://{ADDRESS}/dagster/graphql") for url in sockets), sockets
    events = [frame for frame in frames if isinstance(frame, str) and "RUN_SUCCESS" in frame]
    assert events, f"no run event came over the websocket ({len(frames)} frames)"


def _is_read_only(page, who):
    page.goto(LAUNCHPAD)
    # The launchpad shows the job, but its launch button is absent or disabled.
    expect(page.get_by_text("example_job").first).to_be_visible()
    page.wait_for_load_state("networkidle")
    buttons = page.get_by_role("button", name=re.compile("Launch run", re.IGNORECASE))
    assert buttons.count() == 0 or not buttons.first.is_enabled(), f"{who} has an enabled launch button"
    page.goto(f"{BASE}/runs")
    expect(page.locator('a[href*="/runs/"]').first).to_be_visible()
    screenshot(page, f"proxy-viewer-{who}")


def test_an_editor_launches_from_the_launchpad_and_watches_the_run_live(open_page):
    _launch_and_watch(open_page(http_credentials={"username": "alice", "password": PASSWORDS["alice"]}), "alice")


def test_a_viewer_sees_the_ui_without_a_launch_button(open_page):
    _is_read_only(open_page(http_credentials={"username": "bob", "password": PASSWORDS["bob"]}), "bob")


def test_a_client_certificate_editor_launches_and_watches_the_run_live(open_page, client_certs):  # noqa: F811
    _launch_and_watch(open_page(**_certificate(client_certs, "dana")), "dana")


def test_a_client_certificate_viewer_sees_the_ui_without_a_launch_button(open_page, client_certs):  # noqa: F811
    _is_read_only(open_page(**_certificate(client_certs, "erin")), "erin")
