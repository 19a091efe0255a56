"""Simulate page: a policy and a hardware profile replayed over the run's traces.

Shows one competition (score, time, overtime; per-question table; a Gantt of one question's
samples with the moments they were stopped; the budget burn-down with the speed level) and a
bootstrap over question orders and sample draws (score interval, time, P(overtime) with an
interval). The bootstrap uses the compiled simulator when it is importable.
"""

from __future__ import annotations

import math

import numpy as np
import streamlit as st

from aimo.dashboard import charts, frames, simulation, ui
from aimo.simulator.replay import DEFAULT_BUDGET_S
from aimo.simulator.replay.results import BootstrapSummary, CompetitionResult
from aimo.core.scoring import OVERTIME_RULES
from aimo.core.policy import Policy


def render() -> None:
    """Draw the page."""
    st.title("Simulate")
    ctx = ui.run_context()
    traces = ui.problem_traces(ctx)
    left, right = st.columns([3, 2])
    with left:
        edited = ui.policy_editor("sim", label="Policy")
    with right:
        profile_name = ui.profile_picker("sim_profile", ctx=ctx)
        settings = _settings(len(traces), edited[0] if edited else None)
    if edited is None:
        st.stop()
    policy, policy_yaml = edited
    st.download_button(
        "Download this policy (YAML)",
        policy_yaml,
        file_name=f"{ui.file_name(policy.name)}.yaml",
        mime="application/x-yaml",
        key="sim_download",
    )
    n_questions, seed, replicates, budget_s, rule = settings
    try:
        fast = simulation.fast_available()
        result = simulation.competition(
            ctx.path,
            ctx.run_id,
            ctx.version,
            policy_yaml,
            profile_name,
            n_questions,
            seed,
            budget_s,
            fast,
            rule,
        )
        summary = simulation.bootstrap(
            ctx.path,
            ctx.run_id,
            ctx.version,
            policy_yaml,
            profile_name,
            n_questions,
            replicates,
            0 if seed is None else seed,
            budget_s,
            fast,
            rule,
        )
    except Exception as exc:  # noqa: BLE001 - bad combination of inputs: message, not traceback
        ui.show_error(exc)
        st.stop()
    _totals(result, summary, fast)
    st.plotly_chart(
        charts.burn_down(result, level_names=[lv.name for lv in policy.schedule.levels]),
        key="burn_down",
    )
    st.plotly_chart(charts.score_histogram(summary), key="score_histogram")
    _questions(result)


def _settings(n_problems: int, policy: Policy | None) -> tuple[int, int | None, int, float, str]:
    default_n = policy.schedule.questions if policy is not None else 50
    n_questions = int(
        st.number_input(
            "Questions per competition",
            1,
            500,
            default_n,
            key="sim_questions",
            help="The policy's schedule assumes this many questions.",
        )
    )
    order = st.radio(
        "Question order of the single competition",
        ["store order", "random draw"],
        horizontal=True,
        key="sim_order",
        help="Store order reuses problems cyclically when the store has fewer; a random "
        "draw is one bootstrap replicate (with replacement unless all problems are used).",
    )
    seed = int(st.number_input("Seed", 0, 2**31 - 1, 0, key="sim_seed"))
    fast = simulation.fast_available()
    default_reps = simulation.FAST_DEFAULT_REPLICATES if fast else 10
    limit = 5000 if fast else simulation.REFERENCE_MAX_REPLICATES
    replicates = int(
        st.number_input(
            "Bootstrap replicates", 1, limit, min(default_reps, limit), key="sim_replicates"
        )
    )
    hours = float(
        st.number_input(
            "Budget (hours)", 0.5, 24.0, DEFAULT_BUDGET_S / 3600.0, 0.25, key="sim_budget"
        )
    )
    rule = st.radio(
        "Overtime scores",
        list(OVERTIME_RULES),
        horizontal=True,
        key="sim_overtime_rule",
        help="zero: a run past the budget scores nothing (the competition kills the notebook); "
        "answered: the answers given before the budget count.",
    )
    if n_questions != n_problems:
        st.caption(f"The run holds {n_problems} problems; competitions draw {n_questions}.")
    assert rule is not None  # a widget with options always returns one
    return n_questions, (None if order == "store order" else seed), replicates, hours * 3600.0, rule


def _wilson(p: float, n: int, z: float = 1.645) -> tuple[float, float]:
    """90% Wilson interval of a proportion observed as `p` over `n` trials."""
    if n <= 0:
        return 0.0, 1.0
    den = 1.0 + z * z / n
    centre = (p + z * z / (2 * n)) / den
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / den
    return max(0.0, centre - half), min(1.0, centre + half)


def _hms(seconds: float) -> str:
    if not math.isfinite(seconds):
        return "–"
    s = round(seconds)
    return f"{s // 3600}:{s % 3600 // 60:02d}:{s % 60:02d}"


def _totals(result: CompetitionResult, summary: BootstrapSummary, fast: bool) -> None:
    known = sum(1 for q in result.questions if q.truth is not None)
    st.subheader("Competition result")
    cols = st.columns(4)
    cols[0].metric("Score (this competition)", f"{result.score} / {known}",
                   help=f"overtime scores: {result.overtime_rule}; {result.n_correct} correct in all")
    cols[1].metric("Total time", _hms(result.total_time_s), help=f"budget {_hms(result.budget_s)}")
    cols[2].metric(
        "Overtime",
        "yes" if result.overtime else "no",
        help=f"past the budget (reaching the cutoff in time is not overtime); "
        f"{result.n_after_cutoff} question(s) reached after the cutoff",
    )
    cols[3].metric(
        "Questions stopped by a rule",
        sum(1 for q in result.questions if q.stop_reason.startswith("rule")),
    )
    lo, hi = _wilson(summary.p_overtime, summary.replicates)
    # 5th-95th percentile, as the score interval
    t_lo, t_hi = np.percentile(summary.times_s, [5, 95]) if summary.times_s else (math.nan,) * 2
    row = st.columns(3)
    row[0].metric(
        "Mean score (bootstrap)", f"{summary.mean_score:.2f}",
        help=f"90% interval over replicates; overtime scores: {result.overtime_rule}",
    )
    row[0].caption(f"90% interval {summary.score_lo:.0f} – {summary.score_hi:.0f} · "
                   f"P(overtime) {summary.p_overtime:.1%}")
    row[1].metric("Mean time", _hms(summary.mean_time_s))
    row[1].caption(f"90% interval {_hms(t_lo)} – {_hms(t_hi)}")
    row[2].metric("P(overtime)", f"{summary.p_overtime:.1%}")
    row[2].caption(f"90% Wilson interval {lo:.1%} – {hi:.1%}")
    engine = "compiled fast path" if fast else "reference path (fast path not available)"
    st.caption(
        f"Bootstrap: {summary.replicates} competitions of {summary.n_questions} questions "
        f"({engine}); each draws a question order and which recorded samples fill the slots."
    )


def _questions(result: CompetitionResult) -> None:
    st.subheader("Per question")
    table = frames.question_frame(result)
    seconds = st.column_config.NumberColumn(format="%.0f s")
    st.dataframe(
        table,
        hide_index=True,
        key="sim_questions_table",
        column_config={"start_s": seconds, "time_s": seconds},
    )
    played = [q for q in result.questions if q.samples]
    if not played:
        st.info("No question was played before the cutoff.")
        return
    labels = {
        q.order: f"{q.order + 1}: {q.problem_id} ({q.stop_reason}, {q.time_s:.0f} s)"
        for q in played
    }
    order = st.selectbox(
        "Question for the Gantt view",
        list(labels),
        format_func=labels.__getitem__,
        key="sim_gantt_question",
    )
    assert order is not None  # a widget with options always returns one
    st.plotly_chart(charts.question_gantt(result.questions[order]), key="gantt")


if __name__ == "__main__":
    render()
