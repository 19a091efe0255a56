"""Compare page: two policies side by side on the same traces, questions and sample draws.

Both policies see the same competition (same question order and samples), so every difference
per question comes from the policies alone; the bootstrap uses the same seed for both.
"""

from __future__ import annotations

import numpy as np
import streamlit as st

from aimo.dashboard import charts, frames, simulation, ui
from aimo.simulator.replay import DEFAULT_BUDGET_S


def render() -> None:
    """Draw the page."""
    st.title("Compare policies")
    ctx = ui.run_context()
    ui.problem_traces(ctx)
    editors = st.columns(2)
    with editors[0]:
        a = ui.policy_editor("cmp_a", label="Policy A", default="seed-2nd-place")
    with editors[1]:
        b = ui.policy_editor("cmp_b", label="Policy B", default="fast-8")
    cols = st.columns(4)
    with cols[0]:
        profile_name = ui.profile_picker("cmp_profile", ctx=ctx)
    n_questions = int(cols[1].number_input("Questions", 1, 500, 50, key="cmp_questions"))
    order = cols[2].radio("Question order", ["store order", "random draw"], key="cmp_order")
    seed = int(cols[3].number_input("Seed", 0, 2**31 - 1, 0, key="cmp_seed"))
    if a is None or b is None:
        st.stop()
    (pa, ya), (pb, yb) = a, b
    names = (f"A: {pa.name}", f"B: {pb.name}")
    draw_seed = None if order == "store order" else seed
    fast = simulation.fast_available()
    replicates = simulation.FAST_DEFAULT_REPLICATES if fast else 10
    try:
        results = tuple(
            simulation.competition(
                ctx.path,
                ctx.run_id,
                ctx.version,
                y,
                profile_name,
                n_questions,
                draw_seed,
                DEFAULT_BUDGET_S,
                fast,
            )
            for y in (ya, yb)
        )
        summaries = tuple(
            simulation.bootstrap(
                ctx.path,
                ctx.run_id,
                ctx.version,
                y,
                profile_name,
                n_questions,
                replicates,
                seed,
                DEFAULT_BUDGET_S,
                fast,
            )
            for y in (ya, yb)
        )
    except Exception as exc:  # noqa: BLE001
        ui.show_error(exc)
        st.stop()

    st.subheader("In total")
    table = frames.compare_frame(*results)
    halves = st.columns(2)
    for col, name, result, summary in zip(halves, names, results, summaries):
        known = sum(1 for q in result.questions if q.truth is not None)
        col.markdown(f"**{name}**")
        inner = col.columns(3)
        inner[0].metric("Score", f"{result.score} / {known}",
                        help="an overtime run scores 0 (the competition's rule)")
        inner[1].metric("Time", f"{result.total_time_s / 3600:.2f} h")
        inner[2].metric("Overtime", "yes" if result.overtime else "no")
        col.caption(
            f"Bootstrap ({summary.replicates}×): mean score {summary.mean_score:.2f} "
            f"(90% {summary.score_lo:.0f}–{summary.score_hi:.0f}), mean time "
            f"{summary.mean_time_s / 3600:.2f} h, P(overtime) {summary.p_overtime:.1%}"
        )
    only_a = int(((table["correct_a"] == True) & (table["correct_b"] != True)).sum())
    only_b = int(((table["correct_b"] == True) & (table["correct_a"] != True)).sum())
    st.markdown(
        f"Right only under A: **{only_a}** · right only under B: **{only_b}** · "
        f"B minus A time: **{(results[1].total_time_s - results[0].total_time_s) / 60:+.1f} min**"
    )
    _paired(summaries)
    st.plotly_chart(charts.compare_cumulative(results, names), key="compare_cumulative")
    st.subheader("Per question")
    st.plotly_chart(charts.compare_times(table, names), key="compare_times")
    show = table.assign(order=table["order"] + 1)
    seconds = st.column_config.NumberColumn(format="%.0f s")
    st.dataframe(
        show,
        hide_index=True,
        key="compare_table",
        column_config={"time_a": seconds, "time_b": seconds, "time_diff": seconds},
    )


def _paired(summaries: tuple) -> None:
    """B minus A on the same bootstrap draws, with a 90% interval (the tuner's paired Δ)."""
    try:
        d = simulation.paired_delta(*summaries)
    except ValueError as exc:
        st.warning(f"No paired difference: {exc}")
        return
    cols = st.columns([1, 2])
    interval = (
        f"90% interval {d.lo:+.2f} to {d.hi:+.2f}" if np.isfinite(d.hi) else "too few replicates"
    )
    cols[0].metric("Δ score (B − A), paired", f"{d.mean:+.2f}", help=interval)
    cols[0].caption(
        f"{interval} (of the mean over {len(d.diffs)} shared draws, t-interval over "
        f"{d.batches} batches, as `aimo tune` does over folds). In one competition B − A lies "
        f"in {d.p5:+.0f} … {d.p95:+.0f} 90% of the time. Both re-draw this run's problems: "
        "new problems can differ (the Tune page's held-out Δ covers that)."
    )
    with cols[1]:
        st.plotly_chart(
            charts.delta_histogram(d.diffs, d.mean, d.lo, d.hi), key="compare_delta"
        )


if __name__ == "__main__":
    render()
