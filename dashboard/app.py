"""Entry script of the Streamlit dashboard: `streamlit run dashboard/app.py -- --traces FILE
[--storage URL] [--study NAME]` (or `aimo dashboard`, through `dashboard.launch`).

`run()` reads the configuration, builds the page router with `st.navigation` (every page has a
URL path: /runs, /traces, /simulate, /tune, /compare, /validate), draws the shared sidebar and runs the
selected page. Pages are files under `views/` so that each is addressable by URL and by
`AppTest.switch_page`.
"""

from __future__ import annotations

import sys
from pathlib import Path

import streamlit as st

PAGES_DIR = Path(__file__).resolve().parent / "views"

# (file, title, url path, icon); "/" forwards to the first.
PAGES: tuple[tuple[str, str, str, str], ...] = (
    ("runs.py", "Runs", "runs", ":material/table_rows:"),
    ("traces.py", "Traces", "traces", ":material/show_chart:"),
    ("simulate.py", "Simulate", "simulate", ":material/play_circle:"),
    ("tune.py", "Tune", "tune", ":material/tune:"),
    ("compare.py", "Compare", "compare", ":material/compare_arrows:"),
    ("validate.py", "Validate", "validate", ":material/fact_check:"),
)


def _script_args() -> list[str]:
    """The options after `--` when streamlit runs this file; none under AppTest or pytest."""
    if sys.argv and Path(sys.argv[0]).name == "app.py":
        return sys.argv[1:]
    return []


def run() -> None:
    """Configure the page, route to the selected page and draw the shared sidebar."""
    from aimo.dashboard import ui

    st.set_page_config(
        page_title="AIMO policy lab",
        page_icon=":material/functions:",
        layout="wide",
        initial_sidebar_state="expanded",
    )
    ui.init_state(ui.read_config(_script_args()))
    pages = [
        st.Page(PAGES_DIR / name, title=title, url_path=url, icon=icon)
        for name, title, url, icon in PAGES
    ]
    # Streamlit serves the default page at "/" only; a hidden default that forwards to the first
    # page keeps every visible page at its own URL (/runs as well as /traces, ...).
    home = st.Page(
        lambda: st.switch_page(pages[0]),
        title="Home",
        url_path="home",
        default=True,
        visibility="hidden",
    )
    page = st.navigation([home, *pages])
    with st.sidebar:
        ui.store_sidebar()
    page.run()


if __name__ == "__main__":
    run()
