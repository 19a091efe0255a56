"""Runs page: every run of the trace store with its identity, size and accuracy; pick one.

Counts and accuracy cover completed questions only (a run being recorded grows as it commits).
"""

from __future__ import annotations

import json
import math

import streamlit as st

from dashboard import charts, data, ui

TABLE_COLUMNS = [
    "run_id",
    "kind",
    "state",
    "model",
    "backend",
    "quantization",
    "hardware",
    "problems",
    "samples",
    "tokens",
    "mean_tokens",
    "sample_accuracy",
    "majority_accuracy",
    "created_at",
]


def render() -> None:
    """Draw the page."""
    st.title("Runs")
    ctx = ui.run_context(need_questions=False)
    st.caption(
        f"Store `{ctx.path}` · {len(ctx.runs)} run(s). Pick the run the other pages use "
        "in the sidebar (or click a row)."
    )
    keys = tuple(ctx.runs[["run_id", "kind", "status"]].itertuples(index=False, name=None))
    try:
        accuracy = data.runs_accuracy(ctx.path, keys, ctx.version)
    except Exception as exc:  # noqa: BLE001
        ui.show_error(exc)
        st.stop()
    runs = ctx.runs.merge(accuracy, on="run_id", how="left")
    run_ids = runs["run_id"].tolist()

    def pick() -> None:  # a callback runs before the sidebar's run picker is drawn again
        rows = st.session_state["runs_table"].selection.rows
        if rows:
            st.session_state[ui.K_RUN] = run_ids[rows[0]]

    st.dataframe(
        runs[TABLE_COLUMNS],
        hide_index=True,
        key="runs_table",
        on_select=pick,
        selection_mode="single-row",
        column_config={
            "sample_accuracy": st.column_config.NumberColumn("samples right", format="percent"),
            "majority_accuracy": st.column_config.NumberColumn("majority right", format="percent"),
            "mean_tokens": st.column_config.NumberColumn("mean tokens", format="%.0f"),
            "tokens": st.column_config.NumberColumn("tokens", format="localized"),
        },
    )
    st.plotly_chart(charts.runs_chart(runs), key="runs_chart")

    run = runs[runs["run_id"] == ctx.run_id].iloc[0]
    st.subheader(f"Run {ctx.run_id}")
    cols = st.columns(4)
    cols[0].metric("Problems", int(run["problems"]))
    cols[1].metric("Samples", int(run["samples"]))
    cols[2].metric("Samples right", _pct(run["sample_accuracy"]))
    cols[3].metric("Majority vote right", _pct(run["majority_accuracy"]))
    if run["kind"] == "solve":
        score = data.live_score(ctx.path, ctx.run_id, ctx.version)
        if score.answered:
            live = st.columns(3)
            live[0].metric("Live solver right", f"{score.correct}/{score.with_truth}",
                           help="Final answers the solver submitted that match the known answer.")
            used = "–" if score.time_used_s is None else f"{score.time_used_s:,.0f} s"
            live[1].metric("Time used", used)
            left = score.budget_left_s
            live[2].metric("Budget left", "–" if left is None else f"{left:,.0f} s")
    if run["notes"]:
        st.write(run["notes"])
    with st.expander("Generation config"):
        st.json(json.loads(run["gen_config"]))
    if run["policy"]:
        with st.expander("Policy of this run"):
            st.json(json.loads(run["policy"]))


def _pct(value: object) -> str:
    try:
        number = float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return "–"
    return "–" if math.isnan(number) else f"{number:.1%}"


if __name__ == "__main__":
    render()
