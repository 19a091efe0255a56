"""Traces page: what the model did, per problem and over the run.

Per problem: every sample as a line of tokens over time with its answer events marked, the pass
rate and the majority answer, and the raw text of a sample on demand. Over the run: where the
first answer came against the sample's end (the seed's "first vs last answer" view) and the
length distributions by prompt kind and correctness.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import streamlit as st

from aimo.dashboard import charts, frames, loaders, ui

X_RECORDED = "recorded time"
X_PROFILE = "time from a hardware profile"
X_TOKENS = "token index"
K_PROBLEM = "problem"


def render() -> None:
    """Draw the page."""
    st.title("Traces")
    ctx = ui.run_context()
    traces = ui.problem_traces(ctx)
    samples = loaders.samples_frame(ctx.path, ctx.run_id, ctx.version)
    problems = loaders.problems_frame(ctx.path, ctx.run_id, ctx.version)
    timestamps = frames.has_timestamps(traces)
    _overview(samples, problems)
    _question(ctx, traces, problems, timestamps)
    _first_vs_end(samples, timestamps)
    st.subheader("Length distributions")
    st.plotly_chart(charts.length_histogram(samples), key="length_histogram")


def _overview(samples, problems) -> None:
    st.subheader("Problems")
    known = samples[samples["outcome"] != "unknown truth"]
    answered = samples[samples["n_values"] > 0]
    voted = problems[problems["majority_outcome"].isin(["right", "wrong"])]
    cols = st.columns(4)
    cols[0].metric("Problems", len(problems))
    cols[1].metric(
        "Samples right", f"{(known['outcome'] == 'right').mean():.1%}" if len(known) else "–"
    )
    cols[2].metric(
        "Majority vote right",
        f"{(voted['majority_outcome'] == 'right').mean():.1%}" if len(voted) else "–",
    )
    cols[3].metric(
        "First answer = final", f"{answered['first_is_final'].mean():.1%}" if len(answered) else "–"
    )
    st.dataframe(
        problems,
        hide_index=True,
        key="problems_table",
        column_config={
            "pass_rate": st.column_config.ProgressColumn(
                "pass rate", format="percent", min_value=0.0, max_value=1.0
            ),
            "mean_tokens": st.column_config.NumberColumn("mean tokens", format="%.0f"),
        },
    )
    st.plotly_chart(charts.pass_rate_chart(problems), key="pass_rate_chart")


def _question(ctx: ui.RunContext, traces: list, problems, timestamps: bool) -> None:
    st.subheader("One question")
    by_id = {p.problem_id: p for p in traces}
    rows = {r.problem_id: r for r in problems.itertuples()}
    ids = [pid for pid in problems["problem_id"] if pid in by_id]

    # Plain ids as labels: the bound widget writes its label into the URL (?problem=...).
    problem_id = st.selectbox("Problem", ids, key=K_PROBLEM, bind="query-params")
    problem = by_id[problem_id]
    r = rows[problem_id]
    st.markdown(
        f"**{problem_id}** · answer **{_fmt(r.truth)}** · majority **{_fmt(r.majority)}** "
        f"({_fmt(r.votes)} votes, {r.majority_outcome}) · {r.samples} samples · "
        f"pass rate {'–' if r.pass_rate != r.pass_rate else f'{r.pass_rate:.0%}'}"
    )
    modes = [X_RECORDED, X_PROFILE, X_TOKENS] if timestamps else [X_PROFILE, X_TOKENS]
    if not timestamps:
        st.info(
            "This run has no timestamps (e.g. an import without times): the time axis is "
            "derived from a hardware profile (the question's samples decoding together), "
            "or the samples are drawn against their token index."
        )
    cols = st.columns([2, 2])
    mode = cols[0].radio("x axis", modes, horizontal=True, key="x_mode")
    assert mode is not None  # a widget with options always returns one
    profile = None
    if mode == X_PROFILE:
        with cols[1]:
            name = ui.profile_picker("traces_profile")
        profile = loaders.profile(name)
        st.caption(
            f"Times predicted by profile {name}: all samples of the question start "
            "together and decode as one batch (at most max_batch at once); nothing is stopped."
        )
    chunks = None
    if mode == X_RECORDED:
        try:
            chunks = loaders.recorded_curves(ctx.path, ctx.run_id, problem_id, ctx.version)
        except Exception as exc:  # noqa: BLE001
            ui.show_error(exc)
            return
    key = {X_RECORDED: "recorded", X_PROFILE: "profile", X_TOKENS: "tokens"}[mode]
    curves, events = frames.question_view(problem, key, chunks=chunks, profile=profile)
    if key == "tokens":
        fig = charts.token_curves(
            curves,
            events,
            x_title="token index",
            y_title="sample",
            title=f"{problem_id}: samples against token index",
        )
    else:
        fig = charts.token_curves(
            curves, events, x_title=f"seconds ({mode})", title=f"{problem_id}: tokens over time"
        )
    st.plotly_chart(fig, key="token_curves")
    st.caption(
        "Markers: circle = boxed answer, square = code answer; green right, red wrong, "
        "grey a failed code run, blue when the problem's answer is unknown."
    )
    _raw_text(ctx, problem)


def _raw_text(ctx: ui.RunContext, problem) -> None:
    ids = [s.sample for s in problem.samples]
    kinds = {
        s.sample: f"{s.sample} ({s.kind}, {s.n_tokens} tokens, {s.finish_reason})"
        for s in problem.samples
    }
    cols = st.columns([3, 1])
    sample_idx = cols[0].selectbox("Sample", ids, format_func=kinds.__getitem__, key="text_sample")
    show = cols[1].toggle("Show raw text", key="show_text")
    if show:
        try:
            text = loaders.sample_text(
                ctx.path, ctx.run_id, problem.problem_id, int(sample_idx), ctx.version
            )
        except Exception as exc:  # noqa: BLE001
            ui.show_error(exc)
            return
        st.caption(f"{len(text):,} characters")
        st.code(text or "(empty)", language=None, wrap_lines=True, height=400)


def _first_vs_end(samples, timestamps: bool) -> None:
    st.subheader("First answer vs sample end")
    unit: str | None = "tokens"
    if timestamps:
        unit = st.radio("Measure in", ["tokens", "seconds"], horizontal=True, key="first_unit")
    frame = samples.copy()
    if unit == "tokens":
        frame["first_x"] = frame["first_token"].astype("float")
        frame["end_x"] = frame["n_tokens"].astype("float")
    else:
        frame["first_x"] = frame["first_time"]
        frame["end_x"] = frame["end_s"]
    answered = frame.dropna(subset=["first_x", "end_x"])
    after = (answered["end_x"] - answered["first_x"]).to_numpy(dtype=float)
    cols = st.columns(3)
    cols[0].metric("Samples with an answer", f"{len(answered)} of {len(frame)}")
    cols[1].metric(
        f"Median {unit} after the first answer", f"{np.median(after):,.0f}" if len(after) else "–"
    )
    cols[2].metric(
        "Share of the sample after it",
        f"{after.sum() / max(answered['end_x'].sum(), 1e-9):.0%}" if len(after) else "–",
    )
    st.plotly_chart(
        charts.first_vs_end(frame, unit="s" if unit == "seconds" else "tokens"), key="first_vs_end"
    )


def _fmt(value: object) -> str:
    if value is None or pd.isna(value):  # type: ignore[arg-type]
        return "–"
    try:
        return str(int(value))  # type: ignore[call-overload]
    except (TypeError, ValueError):
        return str(value)


if __name__ == "__main__":
    render()
