"""End-to-end: the real dashboard server in a real headless browser.

Starts `python -m streamlit run dashboard/app.py ... --server.headless true` on a free port (the
command line `dashboard.launch` runs), waits for `/_stcore/health`, opens every page by its URL
in Debian's headless Chromium, waits until Plotly has drawn its charts (`.js-plotly-plot
.main-svg`) and no exception box is shown, saves a screenshot per page under
test-output/screenshots/ (git-ignored; CI keeps the folder as an artifact; the paths are
printed), and asserts on what a person sees: every chart's axis tick labels, axis titles, title
and legend entries drawn inside the chart's own box (nothing clipped), axis titles present and
never Optuna's generic "Objective Value", no element wider than the window, the Runs table
without a horizontal scrollbar, no Deploy button.

The browser is driven over the Chrome DevTools Protocol with `websockets` (a dependency of
streamlit), because `chromium --dump-dom` returns before Streamlit's websocket has delivered the
page. Skipped only when Chromium is missing and CI is not 'true'; in CI it must run
(scripts/ci-chromium.sh installs it).
"""

from __future__ import annotations

import base64
import contextlib
import itertools
import json
import os
import shutil
import socket
import subprocess
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[2]
SHOTS = ROOT / "test-output" / "screenshots"
RUN_QUERY = "?run=synthetic-r1-14b-s1"
# screenshot name -> (url path and query, page title, charts that must be drawn at least)
PAGES = {
    "runs": ("runs" + RUN_QUERY, "Runs", 1),
    "traces": ("traces" + RUN_QUERY, "Traces", 4),
    "simulate": ("simulate" + RUN_QUERY, "Simulate", 3),
    "tune": ("tune", "Tune", 1),
    "tune-importances": ("tune?plot=Importances", "Tune", 1),
    "tune-parallel": ("tune?plot=Parallel+coordinates", "Tune", 1),
    "compare": ("compare" + RUN_QUERY, "Compare policies", 3),
    # issue 15: defaults are the bundled H100 hil stores with h100-14b-w4kv8 (docs/hil.md)
    "validate": ("validate", "Validate", 2),
}
# What `aimo validate` prints for the bundled seed-2nd-place hil run (docs/hil.md's table).
VALIDATE_NUMBERS = ("10/10", "0.6%", "0.9%", "-0.5%", "80.6 / 80.2 s", "61.1 s / 63.7 s",
                   "3 · 0.38 s", "0.6% / 1.8% / -0.1%", "2.7% (p90 6.3%)")
# Text a chart draws, by Plotly's classes: tick labels, axis titles, the chart title, legend
# entries, and the axis titles and ticks of parallel coordinates.
CHART_TEXT = (
    ".xtick text, .ytick text, .x2tick text, .y2tick text, .g-xtitle text, .g-ytitle text, "
    ".g-y2title text, .g-x2title text, .gtitle, .legendtext, .parcoords .axis-title, "
    ".parcoords .tick text"
)
CHROMIUM_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-dev-shm-usage",
    "--hide-scrollbars",
    "--mute-audio",
]
PAGE_TIMEOUT_S = 180.0


def chromium_binary() -> str | None:
    for name in ("chromium", "chromium-browser", "google-chrome"):
        found = shutil.which(name)
        if found:
            return found
    return None


CHROMIUM = chromium_binary()
pytestmark = [pytest.mark.browser, pytest.mark.skipif(
    CHROMIUM is None and os.environ.get("CI") != "true",
    reason="Chromium not installed (run scripts/ci-chromium.sh); required when CI=true",
)]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


# Local URLs only: never through an HTTP proxy from the environment.
_OPENER = urllib.request.build_opener(urllib.request.ProxyHandler({}))


def wait_for(url: str, timeout_s: float, proc: subprocess.Popen) -> str:
    """GET `url` until it answers 200 (or the process dies / time runs out)."""
    deadline = time.monotonic() + timeout_s
    last: Exception | None = None
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"process exited with {proc.returncode} while waiting for {url}")
        try:
            with _OPENER.open(url, timeout=2) as response:
                return response.read().decode()
        except Exception as exc:  # noqa: BLE001 - not up yet
            last = exc
            time.sleep(0.25)
    raise TimeoutError(f"{url} did not answer in {timeout_s:.0f} s: {last}")


class Browser:
    """A headless Chromium with one tab, driven over the DevTools protocol (synchronous)."""

    def __init__(self, binary: str, profile: Path) -> None:
        from websockets.sync.client import connect

        port = free_port()
        self.proc = subprocess.Popen(
            [
                binary,
                *CHROMIUM_FLAGS,
                f"--user-data-dir={profile}",
                f"--remote-debugging-port={port}",
                "--remote-allow-origins=*",
                "--window-size=1400,2400",
                "about:blank",
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        targets = json.loads(wait_for(f"http://127.0.0.1:{port}/json/list", 60, self.proc))
        page = next(t for t in targets if t.get("type") == "page")
        self._connection = connect(
            page["webSocketDebuggerUrl"], max_size=2**27, open_timeout=30, proxy=None
        )
        self.ws = self._connection.__enter__()
        self.ids = itertools.count(1)
        self.call("Page.enable")
        self.call(
            "Emulation.setDeviceMetricsOverride",
            width=1400,
            height=int(os.environ.get("SHOT_HEIGHT", "2400")),
            deviceScaleFactor=1,
            mobile=False,
        )

    def call(self, method: str, **params: Any) -> dict[str, Any]:
        """Send one command and return its result (events in between are dropped)."""
        msg_id = next(self.ids)
        self.ws.send(json.dumps({"id": msg_id, "method": method, "params": params}))
        while True:
            reply = json.loads(self.ws.recv(timeout=60))
            if reply.get("id") == msg_id:
                if "error" in reply:
                    raise RuntimeError(f"{method}: {reply['error']}")
                return reply.get("result", {})

    def evaluate(self, expression: str) -> Any:
        result = self.call("Runtime.evaluate", expression=expression, returnByValue=True)
        return result.get("result", {}).get("value")

    def screenshot(self, path: Path) -> None:
        data = self.call("Page.captureScreenshot", format="png")["data"]
        path.write_bytes(base64.b64decode(data))

    def close(self) -> None:
        try:
            self._connection.__exit__(None, None, None)
        finally:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


SEEN = """JSON.stringify((() => {
  const rect = r => [Math.round(r.left), Math.round(r.top), Math.round(r.right), Math.round(r.bottom)];
  const out = {clipped: [], missingAxisTitles: [], generic: [], charts: [], wide: [],
               scrolledTables: [], deploy: !!document.querySelector('[data-testid="stAppDeployButton"]'),
               pageWidth: document.documentElement.scrollWidth, window: window.innerWidth};
  document.querySelectorAll('.js-plotly-plot').forEach((plot, i) => {
    const svg = plot.querySelector('.main-svg');
    if (!svg) return;
    const box = svg.getBoundingClientRect();
    const title = ((plot.querySelector('.gtitle') || {}).textContent || `chart ${i}`).trim();
    out.charts.push(title);
    plot.querySelectorAll(%(text)s).forEach(t => {
      const r = t.getBoundingClientRect();
      const text = (t.textContent || '').trim();
      if (!text || r.width === 0 || r.height === 0) return;
      if (r.left < box.left - 2 || r.right > box.right + 2 || r.top < box.top - 2 || r.bottom > box.bottom + 2)
        out.clipped.push({chart: title, text: text.slice(0, 60), text_box: rect(r), chart_box: rect(box)});
    });
    const types = (plot.data || []).map(t => t.type || 'scatter');
    if (types.length && types.every(t => ['scatter', 'bar', 'histogram'].includes(t))) {
      // an x-axis title always; a y-axis title where the y ticks are numbers (category
      // labels such as parameter names speak for themselves)
      const said = sel => Array.from(plot.querySelectorAll(sel))
        .some(t => (t.textContent || '').trim());
      const yNumeric = Array.from(plot.querySelectorAll('.ytick text'))
        .some(t => /^[-−]?[0-9.,]+[%kM]?$/.test((t.textContent || '').trim()));
      if (!said('[class^="g-x"][class$="title"] text') ||
          (yNumeric && !said('[class^="g-y"][class$="title"] text')))
        out.missingAxisTitles.push(title);
    }
    if ((plot.textContent || '').includes('Objective Value')) out.generic.push(title);
  });
  const clippedByParent = e => {  // inside a scroll box or clip that itself fits the window
    for (let a = e.parentElement; a; a = a.parentElement) {
      const o = getComputedStyle(a).overflowX;
      if (o !== 'visible' && a.getBoundingClientRect().right <= window.innerWidth + 1) return true;
    }
    return false;
  };
  document.querySelectorAll('[data-testid="stMain"] *').forEach(e => {
    const r = e.getBoundingClientRect();
    if (r.width > 0 && r.right > window.innerWidth + 1 && !clippedByParent(e)) {
      const id = e.getAttribute('data-testid') || e.className || e.tagName;
      if (out.wide.length < 5) out.wide.push({element: String(id).slice(0, 60), box: rect(r)});
    }
  });
  document.querySelectorAll('[data-testid="stDataFrame"]').forEach((df, i) => {
    const s = df.querySelector('.dvn-scroller');
    if (s && s.scrollWidth > s.clientWidth + 2)
      out.scrolledTables.push({table: i, content: s.scrollWidth, shown: s.clientWidth});
  });
  return out;
})())""".replace("%(text)s", json.dumps(CHART_TEXT))

PAGE_STATE = """JSON.stringify({
  title: (document.querySelector('h1') || {}).innerText || '',
  plots: Array.from(document.querySelectorAll('.js-plotly-plot'))
    .filter(e => e.querySelector('.main-svg')).length,
  exceptions: document.querySelectorAll('[data-testid="stException"]').length,
  notFound: document.body.innerText.includes('Page not found'),
  errors: Array.from(document.querySelectorAll('[data-testid="stAlertContentError"]')).map(e => e.innerText),
  running: !!document.querySelector('[data-testid="stStatusWidget"] button, [data-testid="stStatusWidget"] img')
})"""


@contextlib.contextmanager
def serve(store: Path, journal: Path, log_name: str) -> Iterator[str]:
    """The dashboard over `store` served on a free port (the command line `aimo dashboard`
    runs); yields its base URL; the server log is kept with the screenshots."""
    from aimo.dashboard import build_command

    port = free_port()
    cmd = build_command(store, str(journal), port, True, study="multi")
    SHOTS.mkdir(parents=True, exist_ok=True)
    with open(SHOTS / log_name, "w") as out:
        proc = subprocess.Popen(
            cmd,
            cwd=ROOT,
            stdout=out,
            stderr=subprocess.STDOUT,
            env={**os.environ, "PYTHONUNBUFFERED": "1"},
        )
        try:
            assert wait_for(f"http://127.0.0.1:{port}/_stcore/health", 120, proc).strip() == "ok"
            yield f"http://127.0.0.1:{port}"
        finally:
            proc.terminate()
            try:
                proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


@pytest.fixture(scope="module")
def server(store: Path, study_journal: Path) -> Iterator[str]:
    """The dashboard over the `store` fixture; yields its base URL."""
    _warm_fast_simulator(store)
    with serve(store, study_journal, "server.log") as url:
        yield url


def _warm_fast_simulator(store: Path) -> None:
    """Compile (or load from numba's disk cache) the fast simulator once, so that the server
    process loads it from the cache instead of compiling while the browser waits."""
    try:
        from aimo.simulator.fast import FastSimulator
    except Exception:  # noqa: BLE001 - no fast path: the app uses the reference path
        return
    from aimo.core.hardware import load_profile
    from aimo.core.policy import load_policy
    from aimo.core.store import load_problem_traces

    traces = load_problem_traces(store, "synthetic-r1-14b-s1")
    FastSimulator(traces, load_profile("l4x4-14b-w4kv8")).bootstrap(
        load_policy("seed-2nd-place"), replicates=2, seed=0
    )


@pytest.fixture(scope="module")
def browser(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Browser]:
    if CHROMIUM is None:
        pytest.fail("CI=true but Chromium is not installed (run scripts/ci-chromium.sh)")
    b = Browser(CHROMIUM, tmp_path_factory.mktemp("chromium-profile"))
    try:
        yield b
    finally:
        b.close()


def visit(
    browser: Browser, server: str, name: str, path: str, title: str, min_plots: int
) -> tuple[dict[str, Any], dict[str, Any]]:
    """Open /path, wait until it settled, save test-output/screenshots/NAME.png and assert what
    every page must show: no exception or error, its title, its charts drawn, no chart text
    outside its chart, axis titles, no generic Optuna title, nothing past the window's edge, no
    Deploy button. Returns the page state and what was seen (for page-specific checks)."""
    browser.call("Page.navigate", url=f"{server}/{path}")
    deadline = time.monotonic() + PAGE_TIMEOUT_S
    state: dict[str, Any] = {}
    stable = 0
    while time.monotonic() < deadline:
        state = json.loads(browser.evaluate(PAGE_STATE) or "{}")
        done = state.get("title") == title and state.get("plots", 0) >= min_plots
        stable = stable + 1 if done and not state.get("running") else 0
        if state.get("exceptions") or stable >= 3:  # settled for ~1.5 s
            break
        time.sleep(0.5)
    time.sleep(1.0)  # Plotly's automargin redraw after the first paint
    shot = SHOTS / f"{name}.png"
    browser.screenshot(shot)
    print(f"screenshot /{path}: {shot}")
    seen = json.loads(browser.evaluate(SEEN) or "{}")
    assert not state.get("exceptions"), f"/{path}: exception shown: {state}"
    assert not state.get("notFound"), f"/{path}: not addressable by URL: {state}"
    assert not state.get("errors"), f"/{path}: error shown: {state}"
    assert state.get("title") == title, f"/{path}: {state}"
    assert state.get("plots", 0) >= min_plots, f"/{path}: charts not drawn: {state}"
    assert shot.stat().st_size > 10_000
    # what a person sees
    assert not seen["clipped"], f"/{path}: chart text drawn outside its chart: {seen['clipped']}"
    assert not seen["missingAxisTitles"], f"/{path}: a chart without axis titles: {seen}"
    assert not seen["generic"], f"/{path}: 'Objective Value' instead of the metric: {seen}"
    assert seen["pageWidth"] <= seen["window"] + 1, f"/{path}: wider than the window: {seen}"
    assert not seen["wide"], f"/{path}: elements past the right edge: {seen['wide']}"
    assert not seen["deploy"], f"/{path}: Streamlit's Deploy button is shown"
    return state, seen


@pytest.mark.timeout(900)
def test_every_page_renders_charts_in_a_real_browser(server: str, browser: Browser) -> None:
    SHOTS.mkdir(parents=True, exist_ok=True)
    report = {}
    for name, (path, title, min_plots) in PAGES.items():
        state, seen = visit(browser, server, name, path, title, min_plots)
        report[name] = {**state, "seen": seen}
        if name == "runs":
            assert not seen["scrolledTables"], f"/runs: the runs table is cut off: {seen}"
        if name == "traces":
            legend = browser.evaluate(
                "Array.from(document.querySelectorAll('.legendtext')).map(e => e.textContent)"
            )
            assert sum(t.startswith("sample ") for t in legend) == 4, legend  # one per sample
        if name == "tune-importances":
            assert any(c.startswith("Importance for score") for c in seen["charts"]), seen
        if name == "compare":
            assert "Score difference B − A on the same draws" in seen["charts"], seen
        if name == "validate":
            _check_validate(browser, seen)
    (SHOTS / "pages.json").write_text(json.dumps(report, indent=2))
    print("screenshots:", *(str(SHOTS / f"{name}.png") for name in PAGES), sep="\n  ")


def _check_validate(browser: Browser, seen: dict[str, Any]) -> None:
    """The Validate page on its defaults: the summary numbers as a person reads them, both
    charts drawn with their points and the y = x line, the per-question table."""
    metrics = browser.evaluate(
        "Array.from(document.querySelectorAll('[data-testid=\"stMetric\"]'))"
        ".map(e => e.innerText.replace(/\\s+/g, ' ').trim())"
    )
    shown = " | ".join(metrics)
    assert len(metrics) == 11, shown  # 8 headline numbers, the stalls, the errors without, the spread
    for number in VALIDATE_NUMBERS:
        assert number in shown, (number, shown)
    assert {"Simulated vs live time per question", "Cumulative question time"} <= set(
        seen["charts"]
    ), seen
    drawn = json.loads(browser.evaluate("""JSON.stringify(Array.from(
      document.querySelectorAll('.js-plotly-plot')).map(p => ({
        title: ((p.querySelector('.gtitle') || {}).textContent || '').trim(),
        points: p.querySelectorAll('.scatterlayer .point').length,
        lines: p.querySelectorAll('.scatterlayer .js-line').length})))"""))
    scatter = next(d for d in drawn if d["title"].startswith("Simulated vs live"))
    assert scatter["points"] == 10 and scatter["lines"] >= 1, drawn  # 10 questions, y = x
    cumulative = next(d for d in drawn if d["title"] == "Cumulative question time")
    assert cumulative["lines"] == 2, drawn  # live and simulated
    text = browser.evaluate("document.body.innerText")
    assert "policy seed-2nd-place" in text and "draw seed 0" in text, text[:2000]
    tables = "document.querySelectorAll('[data-testid=\"stDataFrame\"]').length"
    assert browser.evaluate(tables) == 1  # the per-question table


@pytest.fixture(scope="module")
def live_store(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A store with a finished live solve (`done`, 6 questions) and a newer one cut short."""
    from aimo.solver.solve import Problem, run_solve
    from aimo.core.store import TraceWriter
    from aimo.core.store.writer import write_connection
    from aimo.core.traces import RunInfo

    path = tmp_path_factory.mktemp("live") / "live.duckdb"
    problems = [Problem(f"q{i}", f"question {i}", i) for i in range(6)]
    run_solve(problems, "fast-8", "synthetic", record=path, echo=None, record_run_id="done")
    TraceWriter(path).start_run(RunInfo("dead", "solve"))
    with write_connection(path) as con:
        con.execute("UPDATE runs SET writer_pid = 0 WHERE run_id = 'dead'")
    return path


@pytest.mark.timeout(600)
def test_a_live_run_in_a_real_browser(
    live_store: Path, study_journal: Path, browser: Browser
) -> None:
    """Issue 16: a live solve's own score, time and burn-down; the finished run is the default,
    the interrupted one is told apart."""
    with serve(live_store, study_journal, "server-live.log") as url:
        _, seen = visit(browser, url, "runs-live", "runs", "Runs", 2)
        text = browser.evaluate("document.body.innerText")
        assert "Run done" in text and "Live solver right" in text, text[:2000]
        assert "state: finished" in text  # the sidebar says which state the run is in
        assert "Time used against the budget" in seen["charts"], seen
        assert not any(t["table"] == 0 for t in seen["scrolledTables"]), seen  # the runs table
        visit(browser, url, "runs-interrupted", "runs?run=dead", "Runs", 1)
        text = browser.evaluate("document.body.innerText")
        assert "was interrupted" in text and "state: interrupted" in text, text[:2000]
