"""Plotly figure builders for the dashboard: pure functions of data frames and result objects.

Why a module of its own: the pages only arrange widgets, and every figure here can be built and
checked in a plain unit test, without streamlit or a browser. All figures use SVG traces
(`go.Scatter`, `go.Bar`), never WebGL, so they render in a headless browser without a GPU.

Frame layouts are the ones `dashboard.frames` builds (documented there); times are seconds,
token positions are cumulative generated tokens.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd
import plotly.colors as px_colors
import plotly.graph_objects as go

from aimo.simulator.replay.results import BootstrapSummary, CompetitionResult, QuestionResult

# Answer outcome -> colour; shared by every figure so "right" always reads the same.
OUTCOME_COLORS: dict[str, str] = {
    "right": "#2ca02c",
    "wrong": "#d62728",
    "code failed": "#7f7f7f",
    "no answer": "#bcbd22",
    "unknown truth": "#1f77b4",
}
SOURCE_SYMBOLS: dict[str, str] = {"boxed": "circle", "code": "square"}
KIND_COLORS: dict[str, str] = {"cot": "#9467bd", "code": "#ff7f0e"}
END_COLORS: dict[str, str] = {
    "finished": "#2ca02c",
    "length": "#8c564b",
    "sample_stop": "#1f77b4",
    "question_stop": "#d62728",
    "queued": "#c7c7c7",
}
# The legend sits above the plot (right-aligned) so it never collides with the x-axis tick
# labels and title; axes grow their margins to fit their labels (`automargin`).
_LAYOUT = {
    "margin": {"l": 60, "r": 20, "t": 80, "b": 50},
    "legend": {"orientation": "h", "yanchor": "bottom", "y": 1.02, "xanchor": "right", "x": 1},
}
# Distinct colours for one line per sample (cycled beyond 24 samples).
SAMPLE_PALETTE: tuple[str, ...] = tuple(px_colors.qualitative.Dark24)


def _figure(title: str, **layout: object) -> go.Figure:
    fig = go.Figure(layout={"title": {"text": title}, **_LAYOUT, **_titled(layout)})
    fig.update_xaxes(automargin=True)
    fig.update_yaxes(automargin=True)
    return fig


def _titled(layout: dict[str, object]) -> dict[str, object]:
    """Axis `title` strings as {"text": ...} (the form plotly validates fastest and keeps)."""
    out: dict[str, object] = {}
    for key, value in layout.items():
        if isinstance(value, dict) and isinstance(value.get("title"), str):
            value = {**value, "title": {"text": value["title"]}}
        out[key] = value
    return out


# --------------------------------------------------------------------------- Runs


def runs_chart(runs: pd.DataFrame) -> go.Figure:
    """Sample accuracy and majority-vote accuracy per run (columns `run_id`, `sample_accuracy`,
    `majority_accuracy`; NaN where no problem has a known answer)."""
    fig = _figure(
        "Accuracy per run",
        xaxis={"title": "run"},
        yaxis={"title": "accuracy", "range": [0, 1]},
        barmode="group",
    )
    for column, label in (
        ("sample_accuracy", "samples right"),
        ("majority_accuracy", "majority vote right"),
    ):
        fig.add_trace(
            go.Bar(x=runs["run_id"].to_numpy(), y=runs[column].to_numpy(dtype=float), name=label)
        )
    return fig


# --------------------------------------------------------------------------- Traces


def token_curves(
    curves: pd.DataFrame,
    events: pd.DataFrame,
    *,
    x_title: str,
    title: str,
    y_title: str = "generated tokens",
) -> go.Figure:
    """Every sample of a question as a line of tokens over `x`, with its answer events marked.

    Args:
        curves: columns `sample_idx`, `kind`, `x`, `tokens`, ordered by sample then x.
        events: columns `sample_idx`, `x`, `tokens`, `value`, `source` ('boxed' | 'code'),
            `outcome` (a key of OUTCOME_COLORS).
        x_title: what `x` is (recorded time, profile-derived time or token index).
        y_title: what `tokens` is (generated tokens, or the sample for token-index lanes).
    """
    n_samples = int(curves["sample_idx"].nunique())
    fig = _figure(
        title,
        xaxis={"title": x_title},
        yaxis={"title": y_title},
        # one legend entry per sample: a column on the right, the figure tall enough for it
        legend={"orientation": "v", "x": 1.02, "xanchor": "left", "y": 1, "yanchor": "top"},
        margin={"l": 60, "r": 20, "t": 60, "b": 50},
        height=max(450, 140 + 19 * (n_samples + 4)),
    )
    for i, (sample, group) in enumerate(curves.groupby("sample_idx", sort=True)):
        kind = str(group["kind"].iloc[0])
        fig.add_trace(
            go.Scatter(
                x=group["x"].to_numpy(dtype=float),
                y=group["tokens"].to_numpy(dtype=float),
                mode="lines",
                name=f"sample {sample} ({kind})",
                legendgroup=f"sample {sample}",
                line={
                    "color": SAMPLE_PALETTE[i % len(SAMPLE_PALETTE)],
                    "width": 1.5,
                    "dash": "solid" if kind == "cot" else "dot",
                },
                opacity=0.8,
                hovertemplate=f"sample {sample} ({kind})<br>(%{{x:.0f}}, %{{y}})<extra></extra>",
            )
        )
    for (outcome, source), group in events.groupby(["outcome", "source"], sort=True):
        fig.add_trace(
            go.Scatter(
                x=group["x"].to_numpy(dtype=float),
                y=group["tokens"].to_numpy(dtype=float),
                mode="markers",
                name=f"{source} · {outcome}",
                marker={
                    "color": OUTCOME_COLORS.get(str(outcome), "#333"),
                    "symbol": SOURCE_SYMBOLS.get(str(source), "diamond"),
                    "size": 8,
                    "line": {"width": 1, "color": "white"},
                },
                customdata=np.stack(
                    [
                        group["sample_idx"].to_numpy(dtype=object),
                        group["value"].to_numpy(dtype=object),
                    ],
                    axis=-1,
                ),
                hovertemplate="sample %{customdata[0]}: answer %{customdata[1]}<br>"
                "(%{x:.0f}, %{y})<extra></extra>",
            )
        )
    return fig


def first_vs_end(samples: pd.DataFrame, *, unit: str) -> go.Figure:
    """Where each sample's first answer came against where the sample ended.

    Args:
        samples: columns `first_x`, `end_x`, `first_outcome`, `problem_id`, `sample_idx`
            (rows without an answer are skipped).
        unit: the axis unit ("tokens" or "s").
    """
    rows = samples.dropna(subset=["first_x", "end_x"])
    fig = _figure(
        "First answer vs sample end",
        xaxis={"title": f"first answer ({unit})"},
        yaxis={"title": f"sample end ({unit})"},
    )
    top = float(max(rows["end_x"].max(), rows["first_x"].max())) if len(rows) else 1.0
    fig.add_trace(
        go.Scatter(
            x=[0, top],
            y=[0, top],
            mode="lines",
            name="ended at first answer",
            line={"dash": "dot", "color": "#999"},
            hoverinfo="skip",
        )
    )
    for outcome, group in rows.groupby("first_outcome", sort=True):
        fig.add_trace(
            go.Scatter(
                x=group["first_x"].to_numpy(dtype=float),
                y=group["end_x"].to_numpy(dtype=float),
                mode="markers",
                name=f"first answer {outcome}",
                marker={
                    "color": OUTCOME_COLORS.get(str(outcome), "#333"),
                    "size": 5,
                    "opacity": 0.6,
                },
                customdata=np.stack(
                    [
                        group["problem_id"].to_numpy(dtype=object),
                        group["sample_idx"].to_numpy(dtype=object),
                    ],
                    axis=-1,
                ),
                hovertemplate="%{customdata[0]} sample %{customdata[1]}<extra></extra>",
            )
        )
    return fig


def length_histogram(samples: pd.DataFrame) -> go.Figure:
    """Distribution of sample lengths (`n_tokens`) by prompt `kind` (one panel each, stacked) and
    final-answer `outcome` (colour)."""
    kinds = sorted(samples["kind"].unique()) or ["cot"]
    n = len(kinds)
    gap = 0.08
    height = (1.0 - gap * (n - 1)) / n
    layout: dict[str, object] = {
        "title": "Sample length by kind and final answer",
        "barmode": "overlay",
        **_LAYOUT,
    }
    fig = go.Figure()
    for row, kind in enumerate(kinds):
        suffix = "" if row == 0 else str(row + 1)
        top = 1.0 - row * (height + gap)
        domain = [max(0.0, round(top - height, 6)), min(1.0, round(top, 6))]
        layout[f"yaxis{suffix}"] = {"domain": domain, "title": {"text": f"{kind} samples"}}
        layout[f"xaxis{suffix}"] = {
            "anchor": f"y{suffix}",
            "matches": "x" if row else None,
            "title": {"text": "generated tokens" if row == n - 1 else ""},
        }
        part = samples[samples["kind"] == kind]
        for outcome, group in part.groupby("outcome", sort=True):
            fig.add_trace(
                go.Histogram(
                    x=group["n_tokens"].to_numpy(),
                    name=str(outcome),
                    legendgroup=str(outcome),
                    showlegend=row == 0,
                    opacity=0.65,
                    nbinsx=40,
                    xaxis=f"x{suffix}",
                    yaxis=f"y{suffix}",
                    marker={"color": OUTCOME_COLORS.get(str(outcome), "#333")},
                )
            )
    fig.update_layout(**layout)
    return fig


def pass_rate_chart(problems: pd.DataFrame) -> go.Figure:
    """Per-problem share of samples whose final answer is right, coloured by the majority vote's
    outcome (columns `problem_id`, `pass_rate`, `majority_outcome`, `majority`)."""
    fig = _figure(
        "Pass rate per problem",
        yaxis={"title": "samples right", "range": [0, 1]},
        xaxis={
            "title": "problem",
            "type": "category",
            "categoryorder": "array",
            "categoryarray": problems["problem_id"].to_numpy(),
        },
    )
    for outcome, group in problems.groupby("majority_outcome", sort=True):
        fig.add_trace(
            go.Bar(
                x=group["problem_id"].to_numpy(),
                y=group["pass_rate"].to_numpy(dtype=float),
                name=f"majority {outcome}",
                marker={"color": OUTCOME_COLORS.get(str(outcome), "#333")},
                customdata=group["majority"].astype(object).to_numpy(),
                hovertemplate="%{x}: %{y:.0%} right, majority %{customdata}<extra></extra>",
            )
        )
    return fig


# --------------------------------------------------------------------------- Simulate


def question_gantt(question: QuestionResult) -> go.Figure:
    """One simulated question: a bar per sample slot from its start to its end, coloured by how
    it ended; stopped samples carry a cross at the moment they were stopped."""
    title = (
        f"Question {question.order + 1} ({question.problem_id}): answer {question.answer}"
        f" · {question.stop_reason} after {question.time_s:.0f} s"
    )
    samples = question.samples
    slots = [f"#{s.index} {s.kind}" for s in samples]
    fig = _figure(
        title,
        xaxis={"title": "seconds since the question started"},
        yaxis={
            "title": "sample slot",
            "autorange": "reversed",
            "type": "category",
            "categoryorder": "array",
            "categoryarray": slots,
        },
        barmode="overlay",
        height=max(320, 60 + 24 * len(slots)),
    )
    for end, color in END_COLORS.items():
        chosen = [s for s in samples if s.end == end]
        if not chosen:
            continue
        fig.add_trace(
            go.Bar(
                y=[f"#{s.index} {s.kind}" for s in chosen],
                x=[max(s.end_s - s.start_s, 0.0) for s in chosen],
                base=[s.start_s for s in chosen],
                orientation="h",
                name=end,
                marker={"color": color},
                customdata=[
                    [s.source_sample, s.tokens, _answer_text(s.boxed, s.code)] for s in chosen
                ],
                hovertemplate="recorded sample %{customdata[0]}: %{customdata[1]} tokens<br>"
                "answers %{customdata[2]}<extra></extra>",
            )
        )
    stopped = [s for s in samples if s.end in ("sample_stop", "question_stop")]
    if stopped:
        fig.add_trace(
            go.Scatter(
                x=[s.end_s for s in stopped],
                y=[f"#{s.index} {s.kind}" for s in stopped],
                mode="markers",
                name="stopped",
                marker={"symbol": "x", "size": 9, "color": "black"},
                hoverinfo="skip",
            )
        )
    fig.add_vline(x=question.time_s, line={"dash": "dash", "color": "#555"})
    return fig


def _answer_text(boxed: int | None, code: int | None) -> str:
    parts = []
    if boxed is not None:
        parts.append(f"boxed {boxed}")
    if code is not None:
        parts.append("code failed" if code < 0 else f"code {code}")
    return ", ".join(parts) or "none"


def burn_down(result: CompetitionResult, *, level_names: Sequence[str] = ()) -> go.Figure:
    """Time left in the budget after each question, against an even pace, with the speed level
    the schedule picked for each question on a second axis."""
    questions = result.questions
    n = len(questions)
    order = [q.order + 1 for q in questions]
    left = [(result.budget_s - (q.start_s + q.time_s)) / 60.0 for q in questions]
    fig = go.Figure()
    start_left = (result.budget_s - result.startup_s) / 60.0
    fig.add_trace(
        go.Scatter(
            x=[0] + order,
            y=[start_left] + left,
            mode="lines+markers",
            name="time left",
            line={"color": "#1f77b4"},
            hovertemplate="after question %{x}: %{y:.0f} min left<extra></extra>",
        ),
    )
    fig.add_trace(
        go.Scatter(
            x=[0, n],
            y=[start_left, 0.0],
            mode="lines",
            name="even pace",
            line={"dash": "dot", "color": "#999"},
            hoverinfo="skip",
        ),
    )
    margin = (result.budget_s - result.cutoff_s) / 60.0
    fig.add_trace(
        go.Scatter(
            x=[0, n],
            y=[margin, margin],
            mode="lines",
            name="cutoff",
            line={"dash": "dash", "color": "#d62728"},
            hoverinfo="skip",
        ),
    )
    levels = [q.level for q in questions]
    names = [level_names[lv - 1] if 0 < lv <= len(level_names) else str(lv) for lv in levels]
    fig.add_trace(
        go.Scatter(
            x=order,
            y=levels,
            mode="lines",
            name="speed level",
            line={"shape": "hv", "color": "#ff7f0e"},
            customdata=names,
            yaxis="y2",
            hovertemplate="question %{x}: level %{y} (%{customdata})<extra></extra>",
        ),
    )
    top = max(levels + [len(level_names), 1])
    fig.update_layout(
        title="Budget burn-down and speed level",
        **_LAYOUT,
        xaxis={"title": {"text": "questions done"}},
        yaxis={"title": {"text": "minutes left"}},
        yaxis2={
            "title": {"text": "speed level"},
            "overlaying": "y",
            "side": "right",
            "range": [0.5, top + 0.5],
            "dtick": 1,
            "showgrid": False,
        },
    )
    return fig


def score_histogram(summary: BootstrapSummary) -> go.Figure:
    """Bootstrap scores with the mean and the 90% interval marked."""
    fig = _figure(
        f"Score over {summary.replicates} bootstrap competitions",
        xaxis={"title": f"score (of {summary.n_questions})"},
        yaxis={"title": "competitions"},
    )
    fig.add_trace(go.Histogram(x=list(summary.scores), name="score", marker={"color": "#1f77b4"}))
    fig.add_vline(x=summary.mean_score, line={"color": "black"})
    for x in (summary.score_lo, summary.score_hi):
        fig.add_vline(x=x, line={"dash": "dot", "color": "#555"})
    return fig


# --------------------------------------------------------------------------- Compare


def compare_times(table: pd.DataFrame, names: tuple[str, str]) -> go.Figure:
    """Per-question time of two policies side by side; marker colour says right or wrong.

    The x labels are the question numbers only (short, never clipped); the problem id is in
    the hover text.

    Args:
        table: one row per question with `order`, `problem_id`, `time_a`, `time_b`,
            `correct_a`, `correct_b` (bool or None).
        names: display names of policy A and B.
    """
    x = [str(int(o) + 1) for o in table["order"]]
    fig = _figure(
        "Time per question",
        barmode="group",
        xaxis={
            "title": "question (competition order)",
            "type": "category",
            "categoryorder": "array",
            "categoryarray": x,
        },
        yaxis={"title": "seconds"},
    )
    problems = table["problem_id"].astype(str).to_numpy()
    for suffix, name, color in (("a", names[0], "#1f77b4"), ("b", names[1], "#ff7f0e")):
        outcome = [_outcome(c) for c in table[f"correct_{suffix}"]]
        fig.add_trace(
            go.Bar(
                x=x,
                y=table[f"time_{suffix}"].to_numpy(dtype=float),
                name=name,
                marker={"color": color},
                customdata=np.stack([problems, np.asarray(outcome, dtype=object)], axis=-1)
                if len(x)
                else None,
                hovertemplate="question %{x} (%{customdata[0]}): %{y:.0f} s, "
                "%{customdata[1]}<extra></extra>",
            )
        )
    return fig


def delta_histogram(diffs: Sequence[float], mean: float, lo: float, hi: float) -> go.Figure:
    """Paired score differences (B minus A) over the shared bootstrap draws, with the mean and
    its 90% interval marked."""
    fig = _figure(
        "Score difference B − A on the same draws",
        xaxis={"title": "B − A (questions right, per competition)"},
        yaxis={"title": "competitions"},
        showlegend=False,
    )
    fig.add_trace(go.Histogram(x=np.asarray(diffs, dtype=float), marker={"color": "#9467bd"}))
    fig.add_vline(x=0.0, line={"color": "#999"})
    fig.add_vline(x=mean, line={"color": "black"})
    for x in (lo, hi):
        if np.isfinite(x):
            fig.add_vline(x=x, line={"dash": "dot", "color": "#555"})
    return fig


def time_unit(seconds: float) -> tuple[str, float]:
    """The unit a time axis reads best in for spans up to `seconds`: (name, seconds per unit)."""
    if seconds < 180:
        return "seconds", 1.0
    if seconds < 3 * 3600:
        return "minutes", 60.0
    return "hours", 3600.0


def compare_cumulative(
    results: Sequence[CompetitionResult], names: tuple[str, str]
) -> go.Figure:
    """Cumulative score against the competition clock for two policies.

    The time axis spans the data (a 3-minute competition is not drawn on a 5-hour axis) in the
    unit that reads best; the budget line is drawn when it is within 2x of the longest run.
    """
    end = max(
        [r.startup_s for r in results]
        + [q.start_s + q.time_s for r in results for q in r.questions]
        + [1.0]
    )
    budget_s = results[0].budget_s
    show_budget = budget_s <= 2.0 * end
    span = max(end, budget_s) if show_budget else end
    unit, per = time_unit(span)
    fig = _figure(
        "Score over the competition clock",
        xaxis={"title": f"competition clock ({unit})", "range": [0, span * 1.03 / per]},
        yaxis={"title": "questions right"},
    )
    for result, name in zip(results, names):
        clock = [result.startup_s / per] + [
            (q.start_s + q.time_s) / per for q in result.questions
        ]
        score = np.concatenate([[0], np.cumsum([1 if q.correct else 0 for q in result.questions])])
        fig.add_trace(
            go.Scatter(
                x=clock,
                y=score,
                mode="lines",
                name=name,
                line={"shape": "hv"},
                hovertemplate=f"%{{x:.1f}} {unit}: %{{y}} right<extra>{name}</extra>",
            )
        )
    if show_budget:
        fig.add_vline(
            x=budget_s / per,
            line={"dash": "dash", "color": "#d62728"},
            annotation_text="budget",
            annotation_position="top left",
        )
    else:
        fig.add_annotation(
            text=f"budget {budget_s / 3600:.2f} h: off this axis",
            xref="paper", yref="paper", x=1, y=0, xanchor="right", yanchor="bottom",
            showarrow=False, font={"color": "#d62728"},
        )
    return fig


def _outcome(correct: object) -> str:
    if correct is None or (isinstance(correct, float) and np.isnan(correct)):
        return "unknown truth"
    return "right" if bool(correct) else "wrong"


# --------------------------------------------------------------------------- Tune

GENERIC_TITLES = ("Objective Value", "Objective value")


def short_label(name: str, limit: int = 22) -> str:
    """A short axis label for a dotted parameter name: every part but the last shortened to its
    initials ("question_stop.rule1.min_answers" -> "qs.r1.min_answers"), the result cut at
    `limit` characters with an ellipsis."""
    parts = name.split(".")
    head = [
        p if len(p) <= 4 else "".join(w[0] for w in p.split("_") if w) + "".join(
            c for c in p if c.isdigit()
        )
        for p in parts[:-1]
    ]
    text = ".".join([*head, parts[-1]])
    return text if len(text) <= limit else text[: limit - 1] + "…"


def importance_bars(
    importances: dict[str, float], *, objective: str, top: int, method: str = "PED-ANOVA"
) -> go.Figure:
    """The `top` most important parameters as horizontal bars, the most important first, with
    their full names; the figure grows 26 px per bar so every label is drawn."""
    ranked = sorted(importances.items(), key=lambda kv: kv[1], reverse=True)[: max(top, 1)]
    names = [k for k, _ in ranked][::-1]  # plotly draws the first category at the bottom
    values = [v for _, v in ranked][::-1]
    fig = _figure(
        f"Importance for {objective}: top {len(ranked)} of {len(importances)} parameters",
        xaxis={"title": f"importance ({method}, share of the total)"},
        yaxis={"title": "", "type": "category", "categoryorder": "array", "categoryarray": names},
        height=140 + 26 * len(ranked),
        margin={"l": 20, "r": 20, "t": 60, "b": 50},
        showlegend=False,
    )
    fig.add_trace(
        go.Bar(
            x=values,
            y=names,
            orientation="h",
            marker={"color": "#1f77b4"},
            text=[f"{v:.2f}" for v in values],
            textposition="outside",
            cliponaxis=False,
            hovertemplate="%{y}: %{x:.3f}<extra></extra>",
        )
    )
    fig.update_xaxes(range=[0, max(values + [1e-9]) * 1.15])
    return fig


def optuna_label(name: str) -> str:
    """How Optuna's parallel-coordinates plot labels a parameter (cut at 20 characters)."""
    return name if len(name) <= 20 else name[:17] + "..."


def _parallel_axes(fig: go.Figure, objective: str, params: Sequence[str]) -> None:
    """Optuna's (scatter-drawn) parallel coordinates with readable axes: each parameter's tick
    label shortened by `short_label` instead of Optuna's cut ("question_stop.rul..."), the full
    name in every line's hover text and in `layout.meta["axes"]` (the page lists them), the
    labels angled with room to fit."""
    ticks = [str(t) for t in fig.layout.xaxis.ticktext or ()]
    names = iter(sorted(params))
    full = [objective]  # the first axis is the objective, the rest the sorted parameters
    for label in ticks[1:]:
        full.append(next((n for n in names if optuna_label(n) == label), label))
    fig.update_xaxes(
        ticktext=[objective] + [short_label(n) for n in full[1:]],
        tickangle=-30,
        automargin=True,
        title={"text": "parameter"},
    )
    for trace in fig.data:
        if trace.customdata is not None and trace.mode == "lines":
            trace.customdata = [
                [full[i] if i < len(full) else row[0], row[1]]
                for i, row in enumerate(trace.customdata)
            ]
    axes = {short_label(n): n for n in full[1:] if short_label(n) != n}
    fig.update_layout(meta={"axes": axes}, margin={"l": 40, "r": 40, "t": 80, "b": 40})


def tidy_study_figure(
    fig: go.Figure, *, kind: str, objective: str, params: Sequence[str] = ()
) -> go.Figure:
    """Optuna's figures made readable: its generic "Objective Value" titles say what the value
    is, titles say what the plot shows, parallel coordinates get short readable axis labels
    (`_parallel_axes`)."""
    for key in list(fig.layout.to_plotly_json()):
        if key.startswith(("xaxis", "yaxis")):
            axis = fig.layout[key]
            if axis.title and axis.title.text in GENERIC_TITLES:
                axis.title.text = objective
    for trace in fig.data:
        if getattr(trace, "name", None) in GENERIC_TITLES:
            trace.name = objective
    titles = {
        "history": f"{objective} of each trial, and the best so far",
        "pareto": "Pareto front: trials no other trial beats on every objective",
        "parallel": f"Parallel coordinates, coloured by {objective}",
    }
    if kind == "parallel":
        _parallel_axes(fig, objective, params)
    current = fig.layout.title.text or ""
    if kind == "parallel" and current and "Plot" not in current:  # our own "top N of M" title
        fig.update_layout(title={"text": f"{current}, coloured by {objective}"})
    elif kind in titles:
        fig.update_layout(title={"text": titles[kind]})
    return fig


# --------------------------------------------------------------------------- Live runs


def live_burn_down(questions: pd.DataFrame, budget_s: float | None) -> go.Figure:
    """A live run's competition clock after each question against its budget: the cumulative
    time used (start of the question plus its time), markers coloured by the solver's answer
    being right, wrong or unknown, and the budget as a line when it is within 2x of the time
    used (else a note with the share used: a 3-minute run is not drawn on a 5-hour axis).

    Args:
        questions: one row per committed question in serving order with `problem_id`,
            `start_s`, `wall_s` and `correct` (True / False / None), as
            `core.store.live.question_results` returns them.
        budget_s: the run's budget (None: unknown, no budget line).
    """
    done = questions.dropna(subset=["wall_s"]).reset_index(drop=True)
    start = done["start_s"].astype(float)
    wall = done["wall_s"].astype(float)
    # the stored competition clock; questions back to back where a start is missing
    ends = (start + wall).where(start.notna(), wall.cumsum())
    n = len(done)
    used = float(ends.max()) if n else 0.0
    show_budget = bool(budget_s and budget_s <= 2.0 * max(used, 1.0))  # as compare_cumulative
    span = max(used, float(budget_s) if show_budget and budget_s else 0.0, 1.0)
    unit, per = time_unit(span)
    fig = _figure(
        "Time used against the budget",
        xaxis={"title": "questions answered", "range": [0, max(n, 1) + 0.5]},
        yaxis={"title": f"competition clock ({unit})", "range": [0, span * 1.05 / per]},
    )
    outcome = [_outcome(c) for c in done["correct"]]
    fig.add_trace(
        go.Scatter(
            x=np.arange(n + 1),
            y=np.concatenate([[0.0], ends.to_numpy(dtype=float) / per]),
            mode="lines",
            name="time used",
            line={"color": "#1f77b4", "shape": "linear"},
            hoverinfo="skip",
        )
    )
    for name in sorted(set(outcome)):
        pick = [i for i, o in enumerate(outcome) if o == name]
        fig.add_trace(
            go.Scatter(
                x=np.asarray(pick) + 1,
                y=ends.to_numpy(dtype=float)[pick] / per,
                mode="markers",
                name=f"answer {name}",
                marker={"color": OUTCOME_COLORS.get(name, "#333"), "size": 8},
                customdata=done["problem_id"].astype(str).to_numpy()[pick],
                hovertemplate=f"question %{{x}} (%{{customdata}}): %{{y:.1f}} {unit}, {name}"
                "<extra></extra>",
            )
        )
    if show_budget and budget_s:
        fig.add_hline(
            y=budget_s / per,
            line={"dash": "dash", "color": "#d62728"},
            annotation_text=f"budget {budget_s / per:,.1f} {unit}",
            annotation_position="top left",
        )
    elif budget_s:
        fig.add_annotation(
            text=f"budget {budget_s / 3600:.2f} h: {100 * used / budget_s:.1f}% used, "
            "off this axis",  # bottom right: the rising line is high there
            xref="paper", yref="paper", x=1, y=0, xanchor="right", yanchor="bottom",
            showarrow=False, font={"color": "#d62728"},
        )
    return fig


# --------------------------------------------------------------------------- Validate


def validation_scatter(pairs: pd.DataFrame) -> go.Figure:
    """Simulated against live time per question with the y = x line (on it: a perfect
    prediction; below it: the simulator is too fast), as `aimo validate --plot`'s left panel.

    Args:
        pairs: `frames.validation_pairs` (`order`, `problem_id`, `live_s`, `sim_s`).
    """
    live = pairs["live_s"].to_numpy(dtype=float)
    sim = pairs["sim_s"].to_numpy(dtype=float)
    finite = np.concatenate([live, sim])
    finite = finite[np.isfinite(finite)]
    top = float(finite.max()) * 1.1 if finite.size else 1.0
    fig = _figure(
        "Simulated vs live time per question",
        xaxis={"title": "live question time (s)", "range": [0, top]},
        yaxis={"title": "simulated question time (s)", "range": [0, top]},
    )
    fig.add_trace(
        go.Scatter(
            x=[0.0, top],
            y=[0.0, top],
            mode="lines",
            name="simulated = live",
            line={"color": "#999", "dash": "dash"},
            hoverinfo="skip",
        )
    )
    rel = np.where(live > 0, (sim - live) / np.where(live > 0, live, 1.0), np.nan)
    fig.add_trace(
        go.Scatter(
            x=live,
            y=sim,
            mode="markers",
            name="question",
            marker={"color": "#1f77b4", "size": 9},
            customdata=np.stack(
                [pairs["order"].to_numpy(), pairs["problem_id"].astype(str).to_numpy(),
                 np.char.mod("%+.1f%%", 100 * rel)], axis=-1
            ) if len(pairs) else None,
            hovertemplate="question %{customdata[0]} (%{customdata[1]}): live %{x:.2f} s, "
            "simulated %{y:.2f} s (%{customdata[2]})<extra></extra>",
        )
    )
    return fig


def validation_cumulative(pairs: pd.DataFrame) -> go.Figure:
    """Running sum of live and simulated question times (start-up excluded) over the questions
    in serving order, as `aimo validate --plot`'s right panel.

    Args:
        pairs: `frames.validation_pairs` (`order`, `problem_id`, `live_cum_s`, `sim_cum_s`).
    """
    sums = pairs[["live_cum_s", "sim_cum_s"]].to_numpy(dtype=float)
    end = float(np.nanmax(sums)) if len(pairs) else 1.0
    unit, per = time_unit(end)
    fig = _figure(
        "Cumulative question time",
        xaxis={"title": "questions (serving order)", "range": [0, max(len(pairs), 1) + 0.5]},
        yaxis={"title": f"cumulative time ({unit}, start-up excluded)"},
    )
    x = np.concatenate([[0], pairs["order"].to_numpy(dtype=float)])
    problems = np.concatenate([[""], pairs["problem_id"].astype(str).to_numpy()])
    for column, name, style, color in (("live_cum_s", "live", "solid", "#1f77b4"),
                                       ("sim_cum_s", "simulated", "dash", "#ff7f0e")):
        fig.add_trace(
            go.Scatter(
                x=x,
                y=np.concatenate([[0.0], pairs[column].to_numpy(dtype=float)]) / per,
                mode="lines+markers",
                name=name,
                line={"dash": style, "color": color},
                marker={"color": color},
                customdata=problems,
                hovertemplate=f"after question %{{x}} (%{{customdata}}): %{{y:.1f}} {unit}"
                f"<extra>{name}</extra>",
            )
        )
    return fig
