"""Widget benchmarks in Chromium (not tests; run with `python bench/widget.py`).

1. Bundle parse + execute: evaluating static/milepost/milepost.js in a blank page, against a
   baseline measured in the same run (evaluating a script of the same size that only defines
   one string), so the figure is what the SDK's own code costs.
2. `welcome` to first step painted: a page with the snippet, whose WebSocket is answered by
   Playwright with a `welcome` carrying a one-step tour; measured in the page from the moment
   the welcome message is dispatched to the animation frame after the step's card exists.
   Baseline in the same run: the same page reacting to a plain message by inserting a div.

No server or database: the page, the bundle and the socket are all served by Playwright.
"""

from __future__ import annotations

import json
import statistics
import sys
from pathlib import Path

from playwright.sync_api import sync_playwright

ROOT = Path(__file__).resolve().parent.parent
BUNDLE = ROOT / "static" / "milepost" / "milepost.js"
ORIGIN = "http://app.bench.test"
RUNS = 15
ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
WELCOME = {
    "type": "welcome",
    "user": {"id": "bench"},
    "seq": 0,
    "theme": {},
    "journeys": [],
    "content": {
        "walkthroughs": [
            {
                "key": "bench",
                "name": "Bench",
                "priority": 0,
                "auto_start": True,
                "state": None,
                "steps": [{"id": 1, "title": "Hello", "selector": "", "body_html": "<p>Hi</p>"}],
            }
        ],
        "tooltips": [],
        "progress_bars": [],
    },
}
# Timestamps the welcome's dispatch, then waits for the card and one painted frame.
PROBE = """
window.__welcomeAt = null;
window.__paintedAt = new Promise((resolve) => {
  const Native = window.WebSocket;
  window.WebSocket = class extends Native {
    constructor(...a) {
      super(...a);
      this.addEventListener('message', () => { window.__welcomeAt ??= performance.now(); });
    }
  };
  const look = () => {
    const root = document.querySelector('milepost-widget')?.shadowRoot;
    const card = root?.querySelector('[role=dialog]');
    if (card) requestAnimationFrame(() => resolve(performance.now()));
    else requestAnimationFrame(look);
  };
  requestAnimationFrame(look);
});
"""
BASELINE_PAGE = """<!doctype html><title>baseline</title><script>
window.__paintedAt = new Promise((resolve) => {
  const ws = new WebSocket('ws://app.bench.test/ws/baseline/');
  ws.onopen = () => ws.send('hello');
  ws.onmessage = () => {
    window.__welcomeAt = performance.now();
    const card = document.createElement('div');
    card.setAttribute('role', 'dialog');
    card.textContent = 'Hello';
    document.body.append(card);
    requestAnimationFrame(() => resolve(performance.now()));
  };
});
</script>"""


def widget_page(key: str = "pk_bench") -> str:
    return (
        f'<!doctype html><title>bench</title><script async src="{ORIGIN}/milepost.js" '
        f'data-key="{key}" data-api="{ORIGIN}"></script>'
        "<script>window.milepost=window.milepost||[];"
        'milepost.push(["identify","bench",{}]);</script><main>App</main>'
    )


def answer_welcome(ws) -> None:  # type: ignore[no-untyped-def]
    ws.on_message(lambda message: ws.send(json.dumps(WELCOME)) if "hello" in message else None)


def main() -> None:
    source = BUNDLE.read_text()
    filler = "window.__x = " + json.dumps("x" * (len(source) - 20)) + ";"
    parse, parse_base, paint, paint_base = [], [], [], []
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path="/usr/bin/chromium", args=ARGS)
        for _ in range(RUNS):
            page = browser.new_page()
            page.goto("about:blank")
            timing = (
                "(src) => { const t = performance.now(); (0, eval)(src);"
                " return performance.now() - t; }"
            )
            parse_base.append(page.evaluate(timing, filler))
            parse.append(page.evaluate(timing, source))
            page.close()

            context = browser.new_context()
            context.route(
                f"{ORIGIN}/milepost.js",
                lambda r: r.fulfill(body=source, content_type="text/javascript"),
            )
            context.route(
                f"{ORIGIN}/app", lambda r: r.fulfill(body=widget_page(), content_type="text/html")
            )
            context.route(
                f"{ORIGIN}/base", lambda r: r.fulfill(body=BASELINE_PAGE, content_type="text/html")
            )
            context.route_web_socket("**/ws/widget/**", answer_welcome)
            context.route_web_socket(
                "**/ws/baseline/**", lambda ws: ws.on_message(lambda m: ws.send("hi"))
            )
            page = context.new_page()
            page.add_init_script(PROBE)
            page.goto(f"{ORIGIN}/app")
            painted = page.evaluate("window.__paintedAt")
            paint.append(painted - page.evaluate("window.__welcomeAt"))
            base = context.new_page()
            base.goto(f"{ORIGIN}/base")
            painted = base.evaluate("window.__paintedAt")
            paint_base.append(painted - base.evaluate("window.__welcomeAt"))
            context.close()
        browser.close()

    def line(name: str, values: list[float], baseline: list[float]) -> str:
        median, base = statistics.median(values), statistics.median(baseline)
        ratio = median / base if base else float("inf")
        return f"{name:<38} {median:8.2f} ms   baseline {base:6.2f} ms   ratio {ratio:5.1f}x"

    print(f"milepost.js: {len(source.encode())} bytes; {RUNS} runs, medians")
    print(line("bundle parse + execute", parse, parse_base))
    print(line("welcome -> first step painted", paint, paint_base))


if __name__ == "__main__":
    sys.exit(main())
