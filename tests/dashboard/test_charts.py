"""The figure builders of `dashboard.charts`: pure functions, checked without streamlit or a browser."""

from __future__ import annotations

import math
import subprocess
import sys

import numpy as np
import pandas as pd
import plotly.graph_objects as go
import pytest

from aimo.dashboard import charts
from aimo.simulator.replay.results import (
    BootstrapSummary,
    CompetitionResult,
    QuestionResult,
    SampleOutcome,
)

SVG_TYPES = {"scatter", "bar", "histogram"}  # never WebGL: headless browsers have no GPU


def assert_svg(fig: go.Figure) -> None:
    assert isinstance(fig, go.Figure)
    assert {t.type for t in fig.data} <= SVG_TYPES
    fig.to_json()  # serialisable as streamlit will send it


def outcome(
    i: int, end: str, start: float = 0.0, stop: float = 100.0, kind: str = "cot"
) -> SampleOutcome:
    return SampleOutcome(
        index=i,
        source_sample=i,
        kind=kind,
        start_s=start,
        end_s=stop,
        tokens=0 if math.isnan(stop) else int(stop * 30),
        end=end,
        boxed=7 if end == "sample_stop" else None,
        code=-1 if kind == "code" else None,
    )


def question(
    order: int, *, correct: bool, level: int, start_s: float, time_s: float
) -> QuestionResult:
    samples = (
        outcome(0, "sample_stop", stop=time_s * 0.6),
        outcome(1, "question_stop", stop=time_s, kind="code"),
        outcome(2, "finished", stop=time_s * 0.8),
        outcome(3, "queued", start=math.nan, stop=math.nan),
    )
    return QuestionResult(
        problem_id=f"p{order}",
        order=order,
        level=level,
        answer=7 if correct else 8,
        truth=7,
        start_s=start_s,
        time_s=time_s,
        stop_reason="rule1",
        samples=samples,
    )


def competition(n: int = 5, *, correct_every: int = 2, time_s: float = 300.0) -> CompetitionResult:
    qs, clock = [], 150.0
    for i in range(n):
        qs.append(
            question(
                i,
                correct=i % correct_every == 0,
                level=3 if i < 3 else 2,
                start_s=clock,
                time_s=time_s,
            )
        )
        clock += time_s
    return CompetitionResult(
        questions=tuple(qs), startup_s=150.0, budget_s=18000.0, cutoff_s=17820.0
    )


def test_importing_charts_and_the_package_does_not_import_streamlit() -> None:
    code = (
        "import sys, dashboard, dashboard.charts; "
        "assert 'streamlit' not in sys.modules, 'streamlit imported'"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


def test_token_curves_one_line_per_sample_and_marked_answers() -> None:
    curves = pd.DataFrame(
        {
            "sample_idx": [0, 0, 0, 1, 1, 2, 2],
            "kind": ["cot", "cot", "cot", "code", "code", "cot", "cot"],
            "x": [0.0, 5.0, 10.0, 0.0, 8.0, 0.0, 3.0],
            "tokens": [0, 100, 200, 0, 150, 0, 40],
        }
    )
    events = pd.DataFrame(
        {
            "sample_idx": [0, 1, 1],
            "x": [5.0, 4.0, 8.0],
            "tokens": [100, 70, 150],
            "value": [7, None, 8],
            "source": ["boxed", "code", "code"],
            "outcome": ["right", "code failed", "wrong"],
        }
    )
    fig = charts.token_curves(curves, events, x_title="seconds", title="q")
    assert_svg(fig)
    lines = [t for t in fig.data if t.mode == "lines"]
    # one line per sample (not one per kind), each its own colour, named in legend and hover
    assert [t.name for t in lines] == ["sample 0 (cot)", "sample 1 (code)", "sample 2 (cot)"]
    assert len({t.line.color for t in lines}) == 3
    assert list(lines[0].x) == [0.0, 5.0, 10.0] and list(lines[2].y) == [0, 40]
    assert "sample 1 (code)" in lines[1].hovertemplate
    assert lines[1].line.dash == "dot" and lines[0].line.dash == "solid"
    markers = {t.name: t for t in fig.data if t.mode == "markers"}
    assert set(markers) == {"boxed · right", "code · code failed", "code · wrong"}
    assert markers["boxed · right"].marker.color == charts.OUTCOME_COLORS["right"]
    assert markers["code · wrong"].marker.symbol == "square"


def test_first_vs_end_skips_samples_without_answer() -> None:
    samples = pd.DataFrame(
        {
            "first_x": [10.0, np.nan, 30.0],
            "end_x": [50.0, 40.0, 30.0],
            "first_outcome": ["right", "no answer", "wrong"],
            "problem_id": ["a", "a", "b"],
            "sample_idx": [0, 1, 0],
        }
    )
    fig = charts.first_vs_end(samples, unit="tokens")
    assert_svg(fig)
    points = [t for t in fig.data if t.mode == "markers"]
    assert sum(len(t.x) for t in points) == 2
    assert fig.data[0].y[-1] == 50.0  # the diagonal spans the data


def test_length_histogram_one_panel_per_kind() -> None:
    samples = pd.DataFrame(
        {
            "n_tokens": [100, 200, 300, 400],
            "kind": ["cot", "cot", "code", "code"],
            "outcome": ["right", "wrong", "right", "no answer"],
        }
    )
    fig = charts.length_histogram(samples)
    assert_svg(fig)
    assert {t.yaxis for t in fig.data} == {"y", "y2"}
    assert fig.layout.yaxis.domain[0] >= 0 and fig.layout.yaxis2.domain[1] <= 1
    assert sum(1 for t in fig.data if t.showlegend) == 2  # legend once per outcome (first panel)


def test_pass_rate_chart_keeps_problem_order() -> None:
    problems = pd.DataFrame(
        {
            "problem_id": ["p1", "p2", "p3"],
            "pass_rate": [0.2, 0.9, np.nan],
            "majority_outcome": ["wrong", "right", "unknown truth"],
            "majority": [5, 7, None],
        }
    )
    fig = charts.pass_rate_chart(problems)
    assert_svg(fig)
    assert list(fig.layout.xaxis.categoryarray) == ["p1", "p2", "p3"]


def test_runs_chart() -> None:
    runs = pd.DataFrame(
        {"run_id": ["a", "b"], "sample_accuracy": [0.5, np.nan], "majority_accuracy": [0.7, np.nan]}
    )
    fig = charts.runs_chart(runs)
    assert_svg(fig)
    assert len(fig.data) == 2


def test_gantt_bars_from_start_to_end_with_stops_marked() -> None:
    q = question(0, correct=True, level=3, start_s=0.0, time_s=200.0)
    fig = charts.question_gantt(q)
    assert_svg(fig)
    bars = {t.name: t for t in fig.data if t.type == "bar"}
    assert set(bars) == {"finished", "sample_stop", "question_stop", "queued"}
    assert bars["sample_stop"].base[0] == 0.0 and bars["sample_stop"].x[0] == pytest.approx(120.0)
    stops = next(t for t in fig.data if t.name == "stopped")
    assert sorted(stops.x) == [120.0, 200.0]
    assert "rule1" in fig.layout.title.text


def test_burn_down_time_left_and_levels() -> None:
    result = competition()
    fig = charts.burn_down(result, level_names=["very fast", "fast", "normal"])
    assert_svg(fig)
    left = next(t for t in fig.data if t.name == "time left")
    assert left.y[0] == pytest.approx((18000 - 150) / 60)
    assert left.y[-1] == pytest.approx((18000 - 150 - 5 * 300) / 60)
    level = next(t for t in fig.data if t.name == "speed level")
    assert list(level.y) == [3, 3, 3, 2, 2] and level.yaxis == "y2"
    assert fig.layout.yaxis2.overlaying == "y"


def test_score_histogram_marks_interval() -> None:
    summary = BootstrapSummary(
        replicates=4,
        n_questions=50,
        mean_score=30.5,
        score_lo=29.0,
        score_hi=32.0,
        mean_time_s=17000.0,
        p_overtime=0.25,
        scores=(29, 30, 31, 32),
        times_s=(1.0, 2.0, 3.0, 4.0),
    )
    fig = charts.score_histogram(summary)
    assert_svg(fig)
    assert sorted(s.x0 for s in fig.layout.shapes) == [29.0, 30.5, 32.0]


def test_compare_charts() -> None:
    a, b = competition(correct_every=2), competition(correct_every=1, time_s=250.0)
    table = pd.DataFrame(
        {
            "order": [q.order for q in a.questions],
            "problem_id": [q.problem_id for q in a.questions],
            "time_a": [q.time_s for q in a.questions],
            "time_b": [q.time_s for q in b.questions],
            "correct_a": [q.correct for q in a.questions],
            "correct_b": [q.correct for q in b.questions],
        }
    )
    fig = charts.compare_times(table, ("A", "B"))
    assert_svg(fig)
    assert [t.name for t in fig.data] == ["A", "B"]
    assert [row[1] for row in fig.data[0].customdata[:2]] == ["right", "wrong"]
    # short x labels (question numbers; the problem id is in the hover), axes grow margins
    assert list(fig.data[0].x) == ["1", "2", "3", "4", "5"]
    assert fig.data[0].customdata[0][0] == "p0"
    assert fig.layout.xaxis.automargin is True
    assert fig.layout.legend.y > 1  # above the plot, never over the x labels
    fig = charts.compare_cumulative((a, b), ("A", "B"))
    assert_svg(fig)
    assert list(fig.data[0].y) == [0, 1, 1, 2, 2, 3] and list(fig.data[1].y) == [0, 1, 2, 3, 4, 5]


def test_compare_cumulative_axis_follows_the_data() -> None:
    """A 25-minute competition is drawn in minutes on a 25-minute axis, not on 5 hours; the
    5-hour budget line is then left out (named in a note); a long one shows the budget."""
    short = competition()  # 150 s start-up + 5 x 300 s = 1650 s
    fig = charts.compare_cumulative((short, short), ("A", "B"))
    assert fig.layout.xaxis.title.text == "competition clock (minutes)"
    assert fig.layout.xaxis.range[1] == pytest.approx(1650 * 1.03 / 60)
    assert not fig.layout.shapes
    assert "off this axis" in fig.layout.annotations[0].text
    long = competition(time_s=2000.0)  # 150 + 10000 s: within 2x of the 5 h budget
    fig = charts.compare_cumulative((long, long), ("A", "B"))
    assert fig.layout.xaxis.title.text == "competition clock (hours)"
    assert fig.layout.shapes[0].x0 == pytest.approx(5.0)
    assert charts.time_unit(100) == ("seconds", 1.0)


def test_delta_histogram_marks_mean_and_interval() -> None:
    fig = charts.delta_histogram([-1.0, 0.0, 2.0, 3.0], 1.0, 0.2, 1.8)
    assert_svg(fig)
    assert sorted(s.x0 for s in fig.layout.shapes) == [0.0, 0.2, 1.0, 1.8]
    fig = charts.delta_histogram([0.0], 0.0, float("-inf"), float("inf"))
    assert sorted(s.x0 for s in fig.layout.shapes) == [0.0, 0.0]


def test_importance_bars_top_n_with_full_labels() -> None:
    names = [f"question_stop.rule{i}.min_answers" for i in range(53)]
    importances = {n: (53 - i) / 1000 for i, n in enumerate(names)}
    fig = charts.importance_bars(importances, objective="score", top=10)
    assert_svg(fig)
    bar = fig.data[0]
    assert bar.orientation == "h"
    # the 10 largest, the largest on top (drawn last), every label the full name
    assert list(bar.y)[::-1] == names[:10]
    assert fig.layout.height == 140 + 26 * 10
    assert "score" in fig.layout.title.text and "top 10 of 53" in fig.layout.title.text
    taller = charts.importance_bars(importances, objective="score", top=30)
    assert taller.layout.height > fig.layout.height


def test_short_labels_and_tidy_optuna_titles() -> None:
    assert charts.short_label("question_stop.rule1.min_answers") == "qs.r1.min_answers"
    assert charts.short_label("sample_stop.cot.grace_tokens") == "ss.cot.grace_tokens"
    assert len(charts.short_label("a_b." + "x" * 40)) == 22
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=0))
    long = ["question_stop.rule1.min_answers", "question_stop.rule1.min_equal", "b"]
    study.optimize(lambda t: sum(t.suggest_int(n, 1, 9) for n in long), n_trials=6)
    fig = optuna.visualization.plot_parallel_coordinate(study, target_name="score")
    assert "question_stop.rul..." in fig.layout.xaxis.ticktext  # Optuna's cut: ambiguous
    fig = charts.tidy_study_figure(fig, kind="parallel", objective="score", params=long)
    assert list(fig.layout.xaxis.ticktext) == [
        "score", "b", "qs.r1.min_answers", "qs.r1.min_equal"
    ]
    assert fig.layout.meta["axes"]["qs.r1.min_equal"] == "question_stop.rule1.min_equal"
    assert "b" not in fig.layout.meta["axes"]  # only shortened labels are listed
    lines = [t for t in fig.data if t.mode == "lines"]
    assert [row[0] for row in lines[0].customdata] == ["score", "b", *long[:2]]  # full in hover
    assert fig.layout.xaxis.automargin and fig.layout.xaxis.title.text == "parameter"
    assert "score" in fig.layout.title.text and "Objective Value" not in fig.to_json()
    hist = go.Figure(
        go.Scatter(x=[0, 1], y=[1, 2], name="Objective Value"),
        layout={"yaxis": {"title": {"text": "Objective Value"}}},
    )
    hist = charts.tidy_study_figure(hist, kind="history", objective="score")
    assert hist.layout.yaxis.title.text == "score" and hist.data[0].name == "score"
    assert "Objective Value" not in hist.to_json()


def test_gantt_lists_slots_in_index_order() -> None:
    q = question(0, correct=True, level=3, start_s=0.0, time_s=200.0)
    fig = charts.question_gantt(q)
    assert list(fig.layout.yaxis.categoryarray) == ["#0 cot", "#1 code", "#2 cot", "#3 cot"]


def test_live_burn_down_time_used_against_budget() -> None:
    frame = pd.DataFrame(
        {
            "problem_id": ["a", "b", "c"],
            "start_s": [10.0, 70.0, 100.0],
            "wall_s": [60.0, 30.0, 50.0],
            "correct": [True, False, None],
        }
    )
    fig = charts.live_burn_down(frame, 300.0)
    assert_svg(fig)
    used = next(t for t in fig.data if t.name == "time used")
    assert list(used.x) == [0, 1, 2, 3]
    assert list(used.y * 60) == pytest.approx([0.0, 70.0, 100.0, 150.0])  # the stored clock
    names = {t.name for t in fig.data if t.mode == "markers"}
    assert names == {"answer right", "answer wrong", "answer unknown truth"}
    assert fig.layout.shapes[0].y0 == pytest.approx(5.0)  # the budget: 300 s in minutes
    assert fig.layout.yaxis.title.text == "competition clock (minutes)"
    long = charts.live_burn_down(frame.assign(start_s=None), 18000.0)  # no start stored
    used = next(t for t in long.data if t.name == "time used")
    assert list(used.y) == pytest.approx([0.0, 60.0, 90.0, 140.0])  # seconds: 140 s of data
    assert not long.layout.shapes  # a 5-hour budget is off a 140 s axis: a note instead
    assert "0.8% used" in long.layout.annotations[0].text
    assert not charts.live_burn_down(frame, None).layout.shapes


def validation_pairs() -> pd.DataFrame:
    live, sim = np.array([10.0, 4.0, 2.0]), np.array([9.0, 5.0, 2.5])
    return pd.DataFrame({"order": [1, 2, 3], "problem_id": ["q1", "q2", "q3"],
                         "live_s": live, "sim_s": sim,
                         "live_cum_s": np.cumsum(live), "sim_cum_s": np.cumsum(sim)})


def test_validation_scatter_has_the_identity_line_over_both_axes() -> None:
    fig = charts.validation_scatter(validation_pairs())
    assert_svg(fig)
    line, points = fig.data
    top = 11.0  # 10 s, the longest time, and 10% room
    assert list(line.x) == list(line.y) == pytest.approx([0.0, top])  # y = x
    assert list(fig.layout.xaxis.range) == list(fig.layout.yaxis.range) == pytest.approx([0, top])
    assert list(points.x) == [10.0, 4.0, 2.0] and list(points.y) == [9.0, 5.0, 2.5]
    assert fig.layout.xaxis.title.text.startswith("live") and fig.layout.yaxis.title.text
    assert "+25.0%" in [str(c[2]) for c in points.customdata]
    assert_svg(charts.validation_scatter(validation_pairs().iloc[0:0]))  # no question


def test_validation_cumulative_ends_at_the_totals() -> None:
    fig = charts.validation_cumulative(validation_pairs())
    assert_svg(fig)
    live, sim = fig.data
    assert (live.name, sim.name) == ("live", "simulated")
    assert list(live.x) == [0, 1, 2, 3]
    assert list(live.y) == [0.0, 10.0, 14.0, 16.0] and list(sim.y)[-1] == pytest.approx(16.5)
    assert "seconds" in fig.layout.yaxis.title.text
    assert_svg(charts.validation_cumulative(validation_pairs().iloc[0:0]))
