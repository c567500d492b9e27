"""The console's browser suite: fixtures (docs/console.md, "Tests").

Run by scripts/test.d/80-browser, which starts the local stack (--demo) and exports:
CONSOLE_BASE_URL, CONSOLE_DEMO_KEY (what --demo printed), CONSOLE_ADMIN_KEY and CONSOLE_OTHER_KEY
(an admin and a second user of the demo org), LOCAL_WEBEX_SECRET (what ingest verifies Webex
signatures with), CHROMIUM (Debian's /usr/bin/chromium), AXE_JS (axe-core from .tools/node_modules),
RELAY_NODE, and optionally CONSOLE_SCREENSHOTS (a folder: write the docs' screenshots there).

Every wait is on an element, an answer or a request the receiver got, bounded by
BROWSER_TEST_TIMEOUT_MS (default 20 s): no sleeps.
"""

import hashlib
import hmac
import json
import os
import re
import shutil
import tempfile
import threading
import urllib.error
import urllib.request
import uuid
from datetime import datetime, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from playwright.sync_api import expect, sync_playwright

BASE = os.environ.get("CONSOLE_BASE_URL", "").rstrip("/")
DEMO_KEY = os.environ.get("CONSOLE_DEMO_KEY", "")
ADMIN_KEY = os.environ.get("CONSOLE_ADMIN_KEY", "")
OTHER_KEY = os.environ.get("CONSOLE_OTHER_KEY", "")
WEBEX_SECRET = os.environ.get("LOCAL_WEBEX_SECRET", "local-webex-secret")
CHROMIUM = os.environ.get("CHROMIUM", "/usr/bin/chromium")
AXE_JS = os.environ.get("AXE_JS", "")
SCREENSHOTS = os.environ.get("CONSOLE_SCREENSHOTS", "")
TIMEOUT_MS = int(os.environ.get("BROWSER_TEST_TIMEOUT_MS", "20000"))
ROOT = Path(__file__).resolve().parents[2]

# What the hostile receiver answers: if any of it ran, window.__pwned would be set or a dialog open.
HOSTILE_RESPONSE = '<script>window.__pwned = "response";alert("response")</script><img src=x onerror="window.__pwned=1">'
HOSTILE_CALLER = '<img src=x onerror="window.__pwned=2;alert(2)">'

CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]

expect.set_options(timeout=TIMEOUT_MS)


def pytest_configure(config):
    if not BASE:
        raise pytest.UsageError("CONSOLE_BASE_URL is not set: run the suite with scripts/test.d/80-browser")


# ------------------------------------------------------------------------------------------------
# The API, for set-up only (what a person does is done in the browser).


def api(method, path, key=DEMO_KEY, body=None):
    data = None if body is None else json.dumps(body).encode()
    req = urllib.request.Request(f"{BASE}/api/hooks{path}", data=data, method=method)
    req.add_header("Authorization", f"Bearer {key}")
    if data is not None:
        req.add_header("Content-Type", "application/json")
    try:
        with urllib.request.urlopen(req, timeout=10) as r:
            text = r.read().decode()
            return r.status, (json.loads(text) if text else None)
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read().decode() or "null")


def unique(name):
    return f"{name} {uuid.uuid4().hex[:8]}"


def post_webex_event(envelope):
    """POST a Webex telephony envelope to ingest, signed as Webex signs (X-Spark-Signature)."""
    body = json.dumps(envelope, separators=(",", ":")).encode()
    sig = hmac.new(WEBEX_SECRET.encode(), body, hashlib.sha1).hexdigest()
    req = urllib.request.Request(f"{BASE}/webex/telephony", data=body, method="POST")
    req.add_header("Content-Type", "application/json")
    req.add_header("X-Spark-Signature", sig)
    with urllib.request.urlopen(req, timeout=10) as r:
        assert r.status == 200, r.status


def telephony_event(caller_name):
    """The captured `created` telephony event (tests/fixtures/seed001), now, with a caller name."""
    env = json.loads((ROOT / "tests/fixtures/seed001/created.json").read_text())["items"]
    now = datetime.now(timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z")
    env["data"]["eventTimestamp"] = now
    env["data"]["created"] = now
    env["data"]["callId"] = f"Y2lzY29zcGFyazovL3VzL0NBTEwv{uuid.uuid4().hex}"
    env["data"]["callSessionId"] = uuid.uuid4().hex
    env["data"]["remoteParty"]["name"] = caller_name
    return env


# ------------------------------------------------------------------------------------------------
# A receiver on 127.0.0.1: /ok answers 200, /flaky/<tag> fails each delivery's first attempt
# (by webhook-id) with 503 and accepts the next, /hostile answers 500 with HOSTILE_RESPONSE.


class Receiver:
    def __init__(self):
        self.requests = []
        self.seen = set()
        self.cond = threading.Condition()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):  # noqa: N802
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                headers = {k.lower(): v for k, v in self.headers.items()}
                path = self.path
                with receiver.cond:
                    if path.startswith("/flaky"):
                        first = headers.get("webhook-id") not in receiver.seen
                        receiver.seen.add(headers.get("webhook-id"))
                        status, text, ctype = (503, "temporarily down", "text/plain") if first else (200, "ok", "text/plain")
                    elif path.startswith("/hostile"):
                        status, text, ctype = 500, HOSTILE_RESPONSE, "text/html"
                    else:
                        status, text, ctype = 200, "ok", "text/plain"
                    receiver.requests.append({"path": path, "headers": headers, "body": body, "status": status})
                    receiver.cond.notify_all()
                out = text.encode()
                self.send_response(status)
                self.send_header("Content-Type", ctype)
                self.send_header("Content-Length", str(len(out)))
                self.end_headers()
                self.wfile.write(out)

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def arrived(self, pred, timeout):
        """Whether a request matching `pred` arrives within `timeout` seconds (woken by each request)."""
        with self.cond:
            return self.cond.wait_for(lambda: any(pred(r) for r in self.requests), timeout=timeout)

    def wait_for(self, pred, what):
        """The first request matching `pred`, waiting (bounded) until one arrives."""
        with self.cond:
            ok = self.cond.wait_for(lambda: any(pred(r) for r in self.requests), timeout=TIMEOUT_MS / 1000)
            assert ok, f"the receiver got no {what} within {TIMEOUT_MS} ms"
            return next(r for r in self.requests if pred(r))


@pytest.fixture(scope="session")
def receiver():
    r = Receiver()
    yield r
    r.server.shutdown()


# ------------------------------------------------------------------------------------------------
# The browser: a fresh Chromium profile (user-data-dir) per test.


@pytest.fixture(scope="session")
def pw():
    with sync_playwright() as p:
        yield p


class Watch:
    """What the page said: console errors, uncaught exceptions and JS dialogs (none are expected)."""

    def __init__(self, page):
        self.errors = []
        self.dialogs = []
        self.allowed_http = set()
        page.on("console", lambda m: self.errors.append(m.text) if m.type == "error" else None)
        page.on("pageerror", lambda e: self.errors.append(f"uncaught: {e}"))

        def on_dialog(d):
            self.dialogs.append(d.message)
            d.dismiss()

        page.on("dialog", on_dialog)

    def allow_http(self, *statuses):
        """A refused API call logs "Failed to load resource: … status of 4xx": allowed where the test provokes it."""
        self.allowed_http.update(str(s) for s in statuses)

    def unexpected(self):
        out = []
        for e in self.errors:
            m = re.match(r"Failed to load resource: the server responded with a status of (\d+)", e)
            if m and m.group(1) in self.allowed_http:
                continue
            out.append(e)
        return out


@pytest.fixture
def page(pw):
    profile = tempfile.mkdtemp(prefix="console-chromium-")
    context = pw.chromium.launch_persistent_context(
        profile,
        executable_path=CHROMIUM,
        headless=True,
        args=CHROMIUM_ARGS,
        viewport={"width": 1280, "height": 900},
        permissions=["clipboard-read", "clipboard-write"],
    )
    context.set_default_timeout(TIMEOUT_MS)
    page = context.pages[0] if context.pages else context.new_page()
    page.watch = Watch(page)
    yield page
    try:
        assert page.watch.dialogs == [], f"a JS dialog opened: {page.watch.dialogs}"
        assert page.watch.unexpected() == [], f"console errors: {page.watch.unexpected()}"
    finally:
        context.close()
        shutil.rmtree(profile, ignore_errors=True)


_AXE = None


def check_view(page, screenshot=None):
    """On the view now shown: axe-core finds no serious or critical violation, and no console error so far."""
    global _AXE
    if _AXE is None:
        assert AXE_JS and os.path.exists(AXE_JS), f"axe-core not found at {AXE_JS!r} (AXE_JS)"
        _AXE = Path(AXE_JS).read_text()
    page.wait_for_load_state("load")
    # Through the DevTools protocol, as the page's own scripts could not (its CSP forbids eval).
    if not page.evaluate("() => typeof window.axe === 'object'"):
        page.evaluate(_AXE)
    violations = page.evaluate(
        """async () => {
            const r = await axe.run(document, { resultTypes: ['violations'] });
            return r.violations
              .filter((v) => v.impact === 'serious' || v.impact === 'critical')
              .map((v) => ({ id: v.id, impact: v.impact, help: v.help, nodes: v.nodes.slice(0, 5).map((n) => n.target.join(' ')) }));
        }"""
    )
    assert violations == [], f"axe on {page.url}: {json.dumps(violations, indent=1)}"
    assert page.watch.unexpected() == [], f"console errors on {page.url}: {page.watch.unexpected()}"
    if screenshot and SCREENSHOTS:
        Path(SCREENSHOTS).mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(Path(SCREENSHOTS) / f"console-{screenshot}.png"), full_page=True)


def sign_in(page, key=DEMO_KEY):
    page.goto(f"{BASE}/console/sign-in")
    page.get_by_label("API key").fill(key)
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_role("heading", level=1, name="Webhooks")).to_be_visible()
