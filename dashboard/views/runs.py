"""Runs page: every run of the trace store with its identity, size and accuracy; pick one.

Counts and accuracy cover completed questions only (a run being recorded grows as it commits).
"""

from __future__ import annotations

import json
import math

import streamlit as st

from aimo.dashboard import charts, loaders, ui

# The table fits the page's width (~900 px beside the sidebar; the browser test checks it has
# no horizontal scrollbar): hardware, backend, quantization, mean length and the creation time
# are in the run's details below it.
TABLE_COLUMNS = [
    "run_id",
    "kind",
    "state",
    "model",
    "problems",
    "samples",
    "tokens",
    "sample_accuracy",
    "majority_accuracy",
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
        accuracy = loaders.runs_accuracy(ctx.path, keys, ctx.version)
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
        width="stretch",
        column_config={
            "run_id": st.column_config.TextColumn("run", width=170, pinned=True),
            "kind": st.column_config.TextColumn("kind", width=70),
            "state": st.column_config.TextColumn(
                "state", width=80, help="finished, failed, interrupted (writer gone) or running"
            ),
            "model": st.column_config.TextColumn("model", width=150),
            "problems": st.column_config.NumberColumn("problems", width=70),
            "samples": st.column_config.NumberColumn("samples", width=70),
            "tokens": st.column_config.NumberColumn("tokens", format="localized", width=90),
            "sample_accuracy": st.column_config.NumberColumn(
                "samples right", format="percent", width=100
            ),
            "majority_accuracy": st.column_config.NumberColumn(
                "majority right", format="percent", width=100
            ),
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
    st.caption(
        f"hardware {run['hardware']} · backend {run['backend']} · quantization "
        f"{run['quantization']} · created {run['created_at']} · mean length "
        f"{_num(run['mean_tokens'])} tokens · {run['tokens']:,} tokens in all"
    )
    if run["kind"] == "solve":
        _live(ctx, run)
    if run["notes"]:
        st.write(run["notes"])
    with st.expander("Generation config"):
        st.json(json.loads(run["gen_config"]))
    if isinstance(run["policy"], str):  # None (NaN after the merge with accuracy) = no policy
        with st.expander("Policy of this run"):
            st.json(json.loads(run["policy"]))


def _live(ctx: ui.RunContext, run) -> None:  # type: ignore[no-untyped-def]
    """A live solve's own result: the final answers it submitted against the known answers (not
    a majority vote re-computed from its samples), its time and the budget burn-down."""
    score = loaders.live_score(ctx.path, ctx.run_id, ctx.version)
    st.subheader("Live solver")
    if not score.answered:
        st.info(f"Run {ctx.run_id} ({score.state}) has no answered question yet.")
        return
    live = st.columns(4)
    live[0].metric(
        "Live solver right",
        f"{score.correct}/{score.with_truth}",
        help="Final answers the solver submitted that match the known answer.",
    )
    live[1].metric("Answered", f"{score.answered}", help=f"run state: {score.state}")
    used = "–" if score.time_used_s is None else f"{score.time_used_s:,.0f} s"
    live[2].metric("Time used", used)
    left = score.budget_left_s
    live[3].metric("Budget left", "–" if left is None else f"{left:,.0f} s")
    questions = loaders.live_questions(ctx.path, ctx.run_id, ctx.version)
    st.plotly_chart(
        charts.live_burn_down(questions, score.budget_s), key="live_burn_down"
    )
    st.dataframe(
        questions,
        hide_index=True,
        key="live_questions_table",
        column_config={
            "start_s": st.column_config.NumberColumn("start", format="%.0f s"),
            "wall_s": st.column_config.NumberColumn("time", format="%.1f s"),
        },
    )


def _num(value: object) -> str:
    try:
        number = float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return "–"
    return "–" if math.isnan(number) else f"{number:,.0f}"


def _pct(value: object) -> str:
    try:
        number = float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return "–"
    return "–" if math.isnan(number) else f"{number:.1%}"


if __name__ == "__main__":
    render()
