"""The figure builders of `dashboard.charts`: pure functions, checked without streamlit or a browser."""

from __future__ import annotations

import math
import subprocess
import sys

import numpy as np
import pandas as pd
import plotly.graph_objects as go
import pytest

from dashboard import charts
from simulator.replay.results import (
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
    assert [t.name for t in lines] == ["code samples", "cot samples"]
    cot = next(t for t in lines if t.name == "cot samples")
    # samples 0 and 2 in one trace, separated by a NaN gap
    assert len(cot.x) == 3 + 1 + 2 and np.isnan(cot.x[3])
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
    assert list(fig.data[0].customdata[:2]) == ["right", "wrong"]
    fig = charts.compare_cumulative((a, b), ("A", "B"))
    assert_svg(fig)
    assert list(fig.data[0].y) == [0, 1, 1, 2, 2, 3] and list(fig.data[1].y) == [0, 1, 2, 3, 4, 5]


def test_gantt_lists_slots_in_index_order() -> None:
    q = question(0, correct=True, level=3, start_s=0.0, time_s=200.0)
    fig = charts.question_gantt(q)
    assert list(fig.layout.yaxis.categoryarray) == ["#0 cot", "#1 code", "#2 cot", "#3 cot"]
