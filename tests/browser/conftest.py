"""Real Chromium against real servers: Milepost (milepost.asgi) under uvicorn on 127.0.0.1, and
the customer's pages on ANOTHER origin (localhost): the Acme demo host app, and a host of
purpose-made pages for the edge cases. The servers run in a background thread of the test
process, against the test database (transactional_db, so the threads see committed rows)."""

from __future__ import annotations

import asyncio
import random
import re
import socket
import struct
import threading
import time
import uuid
import zlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from io import StringIO
from pathlib import Path
from typing import Any

import pytest
import uvicorn
from django.conf import settings
from django.core.management import call_command
from django.db import OperationalError, connections

from onboarding.models import Event, Workspace

BUNDLE = Path(settings.BASE_DIR) / "static" / "milepost" / "milepost.js"
AXE = Path(settings.BASE_DIR) / "widget" / "node_modules" / "axe-core" / "axe.min.js"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]


def in_thread(work: Callable[[], Any]) -> Any:
    """Run `work` in a plain thread: code that pushes to sockets (async_to_sync) cannot run in
    the test thread, where Playwright's event loop is running."""
    result: list[Any] = []
    errors: list[BaseException] = []

    def run() -> None:
        try:
            result.append(work())
        except BaseException as error:
            errors.append(error)
        finally:
            # Back to the pool: a thread that ends holding its connection keeps it taken.
            connections.close_all()

    thread = threading.Thread(target=run)
    thread.start()
    thread.join()
    if errors:
        raise errors[0]
    return result[0]


# Below Linux's ephemeral range (32768-60999), where the system never picks a port by itself:
# a port probed here and released stays free unless someone else picks the same one on purpose.
PICKED_PORTS = range(20000, 32768)
# Not `random`'s generator: pytest-randomly and Hypothesis reseed it alike for every test.
_ports = random.SystemRandom()


def free_port() -> int:
    """A port free right now, for a server in another process (in this one, `listener()`
    holds the port until its server takes it). Picked at random outside the ephemeral range,
    so that the outgoing connections and `bind(0)`s of the other CI leg's tests, which run
    beside these, do not take it before the server binds it."""
    while True:
        port = _ports.choice(PICKED_PORTS)
        with socket.socket() as probe:
            try:
                probe.bind(("127.0.0.1", port))
            except OSError:
                continue
            return port


def listener() -> socket.socket:
    """A socket bound to a port the system picks, kept until its server listens on it, so that
    no other process (the other CI leg's tests run beside these) can take the port in between."""
    bound = socket.socket()
    bound.bind(("127.0.0.1", 0))
    return bound


def port_of(bound: socket.socket) -> int:
    return int(bound.getsockname()[1])


class ServerThread:
    """uvicorn servers on their own event loop in a daemon thread, each on its bound socket."""

    def __init__(self, apps: list[tuple[Any, socket.socket]]) -> None:
        self.apps = [
            (uvicorn.Server(uvicorn.Config(app, lifespan="off", log_level="warning")), bound)
            for app, bound in apps
        ]
        self.servers = [server for server, _ in self.apps]
        self.thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        asyncio.run(self._serve())

    async def _serve(self) -> None:
        await asyncio.gather(*(server.serve(sockets=[bound]) for server, bound in self.apps))

    def __enter__(self) -> ServerThread:
        self.thread.start()
        deadline = time.monotonic() + 15
        while not all(server.started for server in self.servers):
            if time.monotonic() > deadline or not self.thread.is_alive():
                raise RuntimeError("the test servers did not start")
            time.sleep(0.05)
        return self

    def __exit__(self, *exc: object) -> None:
        for server in self.servers:
            server.should_exit = True
        self.thread.join(timeout=10)


@dataclass
class HostPages:
    """A customer's pages made for one test: path -> HTML, each with an optional CSP."""

    pages: dict[str, tuple[str, str | None]] = field(default_factory=dict)

    def add(self, path: str, html: str, csp: str | None = None) -> None:
        self.pages[path] = (html, csp)

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return
        html, csp = self.pages.get(scope["path"], ("Not found", None))
        headers = [(b"content-type", b"text/html; charset=utf-8")]
        if csp:
            headers.append((b"content-security-policy", csp.encode()))
        status = 200 if scope["path"] in self.pages else 404
        await send({"type": "http.response.start", "status": status, "headers": headers})
        await send({"type": "http.response.body", "body": html.encode()})


@dataclass
class Live:
    milepost_url: str
    demo_url: str
    host_url: str
    host: HostPages
    secret_key: str

    @property
    def demo(self) -> Workspace:
        return Workspace.objects.get(slug="acme")


@pytest.fixture
def orm_beside_playwright(monkeypatch: pytest.MonkeyPatch) -> None:
    """Playwright's sync API keeps an event loop running in the test thread, which makes Django
    refuse ORM calls there; the test's own queries are plain synchronous ones, so allow them
    (set before the database fixture, undone after it)."""
    monkeypatch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")


@pytest.fixture
def live(orm_beside_playwright: None, transactional_db: None, settings: Any) -> Iterator[Live]:
    if not BUNDLE.is_file():
        pytest.fail(f"{BUNDLE} is missing: build the SDK first (make widget)")
    from milepost.asgi import application as milepost_app
    from milepost.demo_host import application as demo_app

    sockets = listener(), listener(), listener()
    ports = [port_of(bound) for bound in sockets]
    settings.PUBLIC_URL = f"http://127.0.0.1:{ports[0]}"
    settings.DEMO_HOST_URL = f"http://localhost:{ports[1]}"
    output = StringIO()
    in_thread(lambda: call_command("seed_demo", stdout=output))
    found = re.search(r"sk_[\w-]+", output.getvalue())
    assert found, output.getvalue()
    host = HostPages()
    apps = [(milepost_app, sockets[0]), (demo_app, sockets[1]), (host, sockets[2])]
    with ServerThread(apps):
        yield Live(
            milepost_url=settings.PUBLIC_URL,
            demo_url=settings.DEMO_HOST_URL,
            host_url=f"http://localhost:{ports[2]}",
            host=host,
            secret_key=found.group(0),
        )


@pytest.fixture(scope="package")
def browser() -> Iterator[Any]:
    # Package scope: Playwright's loop must be gone before the other suites' tests run.
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(
            executable_path="/usr/bin/chromium", args=CHROMIUM_ARGS
        )
        yield chromium
        chromium.close()


@pytest.fixture
def context(browser: Any) -> Iterator[Any]:
    context = browser.new_context(viewport={"width": 1200, "height": 800})
    context.set_default_timeout(10_000)
    yield context
    context.close()


def new_tab(context: Any) -> Any:
    """A page of `context` that keeps the page's uncaught errors in `.errors`."""
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    page.errors = errors
    return page


@pytest.fixture
def page(context: Any) -> Any:
    return new_tab(context)


def snippet(live: Live, workspace: Workspace, user_id: str, traits: str = "{}") -> str:
    """The customer's snippet for a purpose-made host page."""
    user_hash = workspace.user_hash_for(user_id)
    return (
        f'<script async src="{live.milepost_url}/static/milepost/milepost.js" '
        f'data-key="{workspace.publishable_key}"></script>'
        "<script>window.milepost = window.milepost || [];"
        f'milepost.push(["identify", "{user_id}", {traits}, {{userHash: "{user_hash}"}}]);'
        "</script>"
    )


def add_hooked_page(live: Live, workspace: Workspace, path: str = "/app") -> None:
    """A host page at `path` with the snippet for a new user, whose host hooks mark its body:
    `data-ready` once the widget is welcomed, `data-error` with the code of the last error."""
    live.host.add(
        path,
        "<!doctype html><html lang=en><head><title>Host</title>"
        f"{snippet(live, workspace, new_user_id())}"
        '<script>milepost.push(["on", "ready", () => { document.body.dataset.ready = "1"; }]);'
        'milepost.push(["on", "error", (e) => { document.body.dataset.error = e.code; }]);'
        "</script></head><body><main>Reports</main></body></html>",
    )


# An init script: the page notes, with its own clock, each message the widget's socket sends and
# reads in `frames_` (Playwright hears of frames only while the test waits on it).
FRAME_LOG = """
window.frames_ = [];
const Native = window.WebSocket;
window.WebSocket = class extends Native {
  constructor(...args) {
    super(...args);
    this.addEventListener("message", (e) =>
      frames_.push({t: performance.now(), way: "in", data: JSON.parse(e.data)}));
  }
  send(data) {
    frames_.push({t: performance.now(), way: "out", data: JSON.parse(data)});
    super.send(data);
  }
};
"""


def wait_for(check: Callable[[], Any], timeout: float = 10.0, interval: float = 0.1) -> Any:
    """Poll the database until `check` is truthy (the widget's writes are asynchronous)."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            result = check()
        except OperationalError:
            # SQLite's shared-cache test database locks a table while a server thread writes.
            result = None
        if result or time.monotonic() > deadline:
            return result
        time.sleep(interval)


def events_named(name: str, **properties: Any) -> list[Event]:
    return [
        event
        for event in Event.objects.filter(name=name)
        if all(event.properties.get(k) == v for k, v in properties.items())
    ]


def new_user_id() -> str:
    return f"user-{uuid.uuid4().hex[:10]}"


def pixel(page: Any, x: float, y: float) -> tuple[int, int, int]:
    """The colour a person sees at viewport point (x, y): a 1x1 screenshot, decoded here (a
    one-pixel PNG row is the same whichever filter the encoder chose: the filter predicts
    from pixels that do not exist, which count as zero)."""
    png: bytes = page.screenshot(clip={"x": x, "y": y, "width": 1, "height": 1})
    data, offset = b"", 8
    while offset < len(png):
        (length,) = struct.unpack(">I", png[offset : offset + 4])
        kind = png[offset + 4 : offset + 8]
        if kind == b"IDAT":
            data += png[offset + 8 : offset + 8 + length]
        offset += 12 + length
    assert png[24:26] in {b"\x08\x02", b"\x08\x06"}, "expected an 8-bit RGB(A) screenshot"
    row = zlib.decompress(data)
    return row[1], row[2], row[3]


def brightness(colour: tuple[int, int, int]) -> float:
    red, green, blue = colour
    return 0.299 * red + 0.587 * green + 0.114 * blue


SCREENS = Path(settings.BASE_DIR) / "test-results" / "screens"


def screen(page: Any, name: str) -> Path:
    """Save what the page shows now as test-results/screens/<name>.png, to look at."""
    SCREENS.mkdir(parents=True, exist_ok=True)
    path = SCREENS / f"{name}.png"
    page.screenshot(path=str(path))
    return path
