"""Validate page: a recorded live run against what the simulator predicts for it (`aimo validate`).

The page calls the comparison `aimo validate` runs (`simulator.validate.compare_stores`, through
the cached `loaders.validation`) and shows its one result: the headline numbers, the per-question
table and the two charts of the CLI's PNG. It has its own store pickers (a live store and the
trace store the simulator replays), independent of the sidebar's store; the defaults are the
bundled H100 hardware-in-the-loop stores with the `h100-14b-w4kv8` profile (docs/hil.md).
"""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import streamlit as st

from aimo.dashboard import charts, frames, loaders, ui
from aimo.data import TRACES_DIR

DEFAULT_LIVE = TRACES_DIR / "hil-h100-live.duckdb"
DEFAULT_TRACES = TRACES_DIR / "hil-h100-traces.duckdb"
DEFAULT_PROFILE = "h100-14b-w4kv8"
YAML_CHOICE = "a YAML file…"


def _runs(path: str, label: str) -> tuple[loaders.StoreVersion, pd.DataFrame]:
    """The runs of a store the page names (`label`), or an error naming the file and `st.stop()`."""
    if not path:
        st.error(f"{label}: no path given.")
        st.stop()
    try:
        version = loaders.store_version(path)
        return version, loaders.runs_frame(path, version)
    except Exception as exc:  # noqa: BLE001 - any bad input becomes a message
        ui.show_error(exc)
        st.stop()


def _hardware() -> tuple[str, loaders.StoreVersion]:
    """A bundled profile name or a YAML path, with the file's version (a cache key)."""
    names = loaders.profile_names()
    options = [*names, YAML_CHOICE]
    index = names.index(DEFAULT_PROFILE) if DEFAULT_PROFILE in names else 0
    choice = st.selectbox("Hardware profile", options, index=index, key="val_profile",
                          help="A bundled profile, or a profile YAML of your own "
                          "(`aimo profile fit` / `aimo profile measure` write one).")
    if choice != YAML_CHOICE:
        return str(choice), (0, 0, 0, 0)
    path = st.text_input("Profile YAML path", key="val_profile_yaml").strip()
    if not path:
        st.info("Enter the path of a hardware profile YAML.")
        st.stop()
    return path, loaders.store_version(path)


def render() -> None:
    """Draw the page."""
    st.title("Validate")
    st.caption(
        "A live run recorded with `aimo solve --record` against the simulator's replay of a trace "
        "store under the live run's own policy, question order and sample draw — the comparison "
        "`aimo validate` prints (docs/hil.md)."
    )
    store_cols = st.columns(2)
    live_path = store_cols[0].text_input(
        "Live store (the solve run)", value=str(DEFAULT_LIVE), key="val_live",
        help="A trace store holding a live run (`aimo solve --record`, kind solve).",
    ).strip()
    traces_path = store_cols[1].text_input(
        "Trace store (what the simulator replays)", value=str(DEFAULT_TRACES), key="val_traces",
        help="For a hardware-in-the-loop run: the store it replayed.",
    ).strip()

    live_version, live_runs = _runs(live_path, "Live store")
    solves = live_runs[live_runs["kind"] == "solve"].reset_index(drop=True)
    if solves.empty:
        st.error(f"{live_path}: run: no live (solve) run in this store; record one with "
                 "`aimo solve --record`.")
        st.stop()
    traces_version, trace_runs = _runs(traces_path, "Trace store")
    if trace_runs.empty:
        st.error(f"{traces_path}: run: the trace store holds no runs.")
        st.stop()

    run_cols = st.columns(2)
    live_run = str(run_cols[0].selectbox(
        "Live run", solves["run_id"].tolist(), key=f"val_live_run:{live_path}"))
    gen_config = solves.loc[solves["run_id"] == live_run, "gen_config"].iloc[0]
    trace_ids = trace_runs["run_id"].tolist()
    traces_run = str(run_cols[1].selectbox(
        "Trace run", trace_ids, index=frames.default_trace_run(trace_runs, gen_config),
        key=f"val_traces_run:{traces_path}:{live_run}",
        help="Preselected: the run a hil live run replayed, else the newest finished recording.",
    ))
    option_cols = st.columns([2, 1, 2])
    with option_cols[0]:
        hardware, hardware_version = _hardware()
    skip_first = option_cols[1].checkbox(
        "Skip the first question", key="val_skip_first",
        help="Leave it out of the time errors: it carries lmdeploy's first-batch stall, which "
        "profiles count in startup_s (`--skip-first`).",
    )
    report = option_cols[2].text_input(
        "Live answers from a JSON report (optional)", key="val_live_json",
        help="An `aimo solve --json` report, for stores without per-question results "
        "(`--live-json`).",
    ).strip()

    try:
        with st.spinner("Replaying the trace store…"):
            v = loaders.validation(
                live_path, live_run, live_version, traces_path, traces_run, traces_version,
                hardware, hardware_version, report or None, skip_first,
            )
    except Exception as exc:  # noqa: BLE001 - any bad input becomes a message
        ui.show_error(exc)
        st.stop()

    from aimo.simulator.validate import headline

    st.markdown(headline(v))
    metrics = frames.validation_metrics(v)
    for start in range(0, len(metrics), 4):
        row = st.columns(4)
        for col, m in zip(row, metrics[start:start + 4]):
            col.metric(m.label, m.value, help=m.help)
    if v.skipped:
        st.caption(f"Left out of the time errors: {', '.join(v.skipped)}.")
    for note in v.notes:
        st.info(f"Note: {note}")

    pairs = frames.validation_pairs(v)
    st.plotly_chart(charts.validation_scatter(pairs), key="validate_scatter")
    st.plotly_chart(charts.validation_cumulative(pairs), key="validate_cumulative")

    st.subheader("Per question")
    table = frames.validation_rows(v)
    differ = int(table["differs"].sum())
    st.caption(
        f"{differ} question(s) where the live and simulated answers differ (ticked under "
        "*answers differ*); *by time*: a stop decided by the clock on either side, so its answer "
        "is not compared. Error = (simulated − live) / live."
    )
    st.dataframe(
        table,
        hide_index=True,
        key="validate_table",
        column_config={
            "order": st.column_config.NumberColumn("#", width=40),
            "problem_id": st.column_config.TextColumn("question", pinned=True),
            "live_answer": st.column_config.NumberColumn("live answer", format="%d"),
            "sim_answer": st.column_config.NumberColumn("sim answer", format="%d"),
            "truth": st.column_config.NumberColumn("truth", format="%d"),
            "differs": st.column_config.CheckboxColumn("answers differ"),
            "live_stop": st.column_config.TextColumn("live stop"),
            "sim_stop": st.column_config.TextColumn("sim stop"),
            "by_time": st.column_config.CheckboxColumn("by time"),
            "live_s": st.column_config.NumberColumn("live time", format="%.2f s", width=75),
            "sim_s": st.column_config.NumberColumn("sim time", format="%.2f s", width=75),
            "error": st.column_config.NumberColumn("error", format="percent", width=70),
            "skipped": st.column_config.CheckboxColumn("skipped"),
            "stall_s": st.column_config.NumberColumn(
                "live stalls", format="%.2f s", width=75,
                help="Seconds of the live time the engine stalled (aimo validate's engine stalls)."),
        },
    )
    st.download_button(
        "Download the comparison (JSON, as `aimo validate --json`)",
        json.dumps(v.as_json(), indent=2),
        file_name=f"validate-{ui.file_name(Path(live_path).stem)}-{ui.file_name(live_run)}.json",
        mime="application/json",
        key="validate_json",
    )


if __name__ == "__main__":
    render()
