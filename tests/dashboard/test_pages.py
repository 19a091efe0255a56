"""AppTest of every dashboard page on a small store built in the test: no exception, the key
elements present, one interaction per page; bad input shown as a message; a store being
written by another process read without a lock error and marked as in progress."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import pytest

from aimo.core.store import init_store

REPO = Path(__file__).resolve().parents[2]
APP = REPO / "dashboard" / "app.py"
HIL_LIVE = REPO / "data/traces/hil-h100-live.duckdb"
HIL_TRACES = REPO / "data/traces/hil-h100-traces.duckdb"
PAGES = ("runs", "traces", "simulate", "tune", "compare")
SYNTH_RUN = "synthetic-r1-14b-s1"  # the `store` fixture's runs (see conftest.py)
LIVE_RUN = "live"

# A recorder stand-in: writes questions of run `live` one by one, like `aimo record` does.
WRITER_SCRIPT = """
import dataclasses, sys, time
from aimo.recorder.synth import run_info, synthesize_questions
from aimo.recorder.synth_profiles import DEFAULT_PROFILE, get_profile
from aimo.core.store import ProblemRow, TraceWriter

path, n, delay, finish = sys.argv[1], int(sys.argv[2]), float(sys.argv[3]), sys.argv[4] == "1"
prof = get_profile(DEFAULT_PROFILE)
info = dataclasses.replace(run_info(prof, n, 4, 7), run_id="live", kind="record")
writer = TraceWriter(path)
writer.start_run(info)
print("started", flush=True)
for q in synthesize_questions(n, 4, 7, prof):
    problem = ProblemRow(q.spec.problem_id, q.spec.position, q.question, q.spec.answer)
    writer.write_question(info.run_id, problem, q.samples, q.chunks, q.answers, wall_s=q.wall_s)
    print("question", q.spec.problem_id, flush=True)
    time.sleep(delay)
if finish:
    writer.finish_run(info.run_id)
print("done", flush=True)
"""


def texts(elements) -> str:
    return "\n".join(str(e.value) for e in elements)


def charts(at) -> int:
    return len(at.get("plotly_chart"))


def chart_json(at, i: int) -> str:
    """The i-th Plotly figure of the page as Plotly JSON text."""
    return at.get("plotly_chart")[i].proto.spec


def plotly_values(value: object) -> list[float]:
    """A Plotly JSON array: a list, or numpy data as {"dtype", "bdata"} (base64)."""
    import base64

    import numpy as np

    if isinstance(value, dict):
        return np.frombuffer(base64.b64decode(value["bdata"]), dtype=value["dtype"]).tolist()
    return list(value)  # type: ignore[call-overload]


def assert_clean(at) -> None:
    assert not at.exception, [e.value for e in at.exception]
    assert not at.error, [e.value for e in at.error]


# --------------------------------------------------------------------------- Runs


def test_runs_page_lists_runs_and_switches_run(store: Path, env, page) -> None:
    env(traces=store)
    at = page("runs")
    assert_clean(at)
    assert at.title[0].value == "Runs"
    assert len(at.dataframe) == 1 and charts(at) == 1
    table = at.dataframe[0].value
    assert set(table["run_id"]) == {SYNTH_RUN, LIVE_RUN}
    assert {
        "kind",
        "state",
        "model",
        "problems",
        "samples",
        "tokens",
        "sample_accuracy",
        "majority_accuracy",
    } <= set(table.columns)
    # a table that fits the page: at most 9 columns, the rest in the run's details
    assert len(table.columns) <= 9
    assert "hardware" in texts(at.caption) and "backend" in texts(at.caption)
    # the newest *finished* run by default: a run being written (or cut short) is not (issue 16)
    assert f"Run {SYNTH_RUN}" in texts(at.subheader)
    assert "in progress" not in texts(at.info)
    assert set(table["state"]) == {"finished", "running"}

    at.selectbox(key="run").select(LIVE_RUN).run()  # interaction: pick the other run
    assert_clean(at)
    assert f"Run {LIVE_RUN}" in texts(at.subheader)
    assert "in progress" in texts(at.info)  # its writer (this process) is alive: 'running'


def test_run_and_problem_come_from_the_url(store: Path, env) -> None:
    """Pages are addressable: /traces?run=...&problem=... opens that run and problem."""
    from streamlit.testing.v1 import AppTest

    env(traces=store)
    at = AppTest.from_file(str(APP), default_timeout=300)
    at.query_params["run"] = SYNTH_RUN
    at.query_params["problem"] = "syn-002"
    at.switch_page("views/traces.py").run()
    assert_clean(at)
    assert at.selectbox(key="run").value == SYNTH_RUN
    assert at.selectbox(key="problem").value == "syn-002"


# --------------------------------------------------------------------------- Traces


def test_traces_page_problem_views_and_raw_text(store: Path, env, page) -> None:
    env(traces=store)
    at = page("traces", run=SYNTH_RUN)
    assert_clean(at)
    assert at.title[0].value == "Traces"
    assert charts(at) == 4  # pass rate, token curves, first vs end, length histogram
    problems = at.dataframe[0].value
    assert {"pass_rate", "majority", "votes", "truth"} <= set(problems.columns)
    assert len(problems) == 3

    second = problems["problem_id"].iloc[1]
    at.selectbox(key="problem").select(second).run()  # interaction: pick a problem
    assert_clean(at)
    assert f"**{second}**" in texts(at.markdown)

    at.toggle(key="show_text").set_value(True).run()
    assert_clean(at)
    assert len(at.code) == 1 and len(at.code[0].value) > 100

    at.radio(key="x_mode").set_value("token index").run()
    assert_clean(at)
    assert charts(at) == 4


def test_traces_page_without_timestamps_derives_time(store: Path, env, page, monkeypatch) -> None:
    from aimo.dashboard import frames

    monkeypatch.setattr(frames, "has_timestamps", lambda traces: False)
    env(traces=store)
    at = page("traces", run=SYNTH_RUN)
    assert_clean(at)
    assert "no timestamps" in texts(at.info)
    assert at.radio(key="x_mode").value == "time from a hardware profile"
    assert charts(at) == 4


# --------------------------------------------------------------------------- Simulate


def test_simulate_page_result_gantt_and_policy_edit(store: Path, env, page) -> None:
    env(traces=store)
    at = page("simulate", run=SYNTH_RUN)
    assert_clean(at)
    labels = {m.label: m.value for m in at.metric}
    assert {
        "Score (this competition)",
        "Total time",
        "Overtime",
        "Mean score (bootstrap)",
        "P(overtime)",
    } <= set(labels)
    assert charts(at) == 3  # burn-down, score histogram, Gantt
    table = at.dataframe[0].value
    assert len(table) == 50 and set(table["level"]) >= {3}
    assert len(at.get("download_button")) == 1

    text = at.text_area(key="sim_yaml").value
    assert "start_level: 3" in text
    at.text_area(key="sim_yaml").input(text.replace("start_level: 3", "start_level: 1")).run()
    assert_clean(at)  # interaction: change a policy value
    assert at.dataframe[0].value["level"].iloc[0] == 1

    at.selectbox(key="sim_gantt_question").select(4).run()
    assert_clean(at)
    assert charts(at) == 3


def test_simulate_page_reports_a_bad_policy(store: Path, env, page) -> None:
    env(traces=store)
    at = page("simulate", run=SYNTH_RUN)
    text = at.text_area(key="sim_yaml").value
    at.text_area(key="sim_yaml").input(text + "\nsurprise_knob: 3\n").run()
    assert not at.exception
    message = texts(at.error)
    assert "surprise_knob" in message and "unknown key" in message
    assert charts(at) == 0


# --------------------------------------------------------------------------- Tune


@pytest.mark.parametrize("study", ["multi", "single"])
def test_tune_page_plots_and_exports_a_trial(
    study_journal: Path, store: Path, env, page, study: str
) -> None:
    env(traces=store, storage=study_journal, study=study)
    at = page("tune")
    assert_clean(at)
    assert at.selectbox(key="tune_study").value == study
    assert [t.label for t in at.tabs] == [
        "History",
        "Pareto front",
        "Importances",
        "Parallel coordinates",
    ]
    assert charts(at) == 1  # only the open tab is built: the history
    history = chart_json(at, 0)
    assert "Objective Value" not in history  # says what the value is
    assert ('"score' if study == "multi" else '"objective 0') in history  # its metric name
    at.session_state["plot"] = "Pareto front"
    at.run()
    assert_clean(at)
    if study == "multi":
        assert charts(at) == 1
    else:
        assert charts(at) == 0 and "no Pareto front" in texts(at.info)
    for plot in ("Importances", "Parallel coordinates"):
        at.session_state["plot"] = plot
        at.run()
        assert_clean(at)
        assert charts(at) == 1, plot
        assert "Objective Value" not in chart_json(at, 0), plot
    at.session_state["plot"] = "Importances"
    at.run()
    bars = json.loads(chart_json(at, 0))["data"][0]
    assert bars["orientation"] == "h" and set(bars["y"]) == {"start_level", "check_every"}
    best = at.dataframe[0].value
    assert "attr:fold_scores" in best.columns and "attr:heldout_mean" in best.columns
    # lists as "a · b · c" with floats to 5 significant digits, never raw JSON with float noise
    folds = str(best["attr:fold_scores"].iloc[0])
    assert " · " in folds and "[" not in folds
    assert all(len(x.strip().lstrip("-").replace(".", "")) <= 6 for x in folds.split("·"))

    options = at.selectbox(key="tune_trial").options
    other = options[-1]
    at.selectbox(key="tune_trial").select(int(other.split()[1])).run()  # interaction: pick a trial
    assert_clean(at)
    buttons = at.get("download_button")
    assert len(buttons) == 1
    number = int(other.split()[1])
    yaml_text = at.code[0].value
    assert f"name: trial-{number}" in yaml_text
    scores = next(d.value for d in at.dataframe if list(d.value.columns) == ["name", "value"])
    # its objective values, then its 2 user attributes
    assert len(scores) == (4 if study == "multi" else 3) and "fold_scores" in set(scores["name"])
    params = next(d.value for d in at.dataframe if list(d.value.columns) == ["parameter", "value"])
    assert set(params["parameter"]) == {"start_level", "check_every"}
    assert not at.json  # formatted tables, not raw JSON


def test_tune_page_on_an_aimo_tune_study(tuner_journal: Path, store: Path, env, page) -> None:
    env(traces=store, storage=tuner_journal)
    at = page("tune")
    assert_clean(at)
    assert at.selectbox(key="tune_study").value == "demo"  # the final study before the folds
    assert "Held-out scores (nested cross-validation)" in texts(at.subheader)
    heldout = next(d.value for d in at.dataframe if "policy" in d.value.columns)
    assert {"tuned", "seed-2nd-place"} <= set(heldout["policy"])
    trial = at.selectbox(key="tune_trial")
    assert "exported by aimo tune" in trial.format_func(trial.value)
    assert len(at.get("download_button")) == 1
    assert "hash matches" in texts(at.caption)
    at.selectbox(key="tune_study").select("demo:fold1of2").run()  # a fold's study
    assert_clean(at)
    assert len(at.get("download_button")) == 1


def test_tune_page_without_storage_and_with_a_bad_one(
    tmp_path: Path, store: Path, env, page
) -> None:
    env(traces=store)
    at = page("tune")
    assert not at.exception
    assert "No study storage" in texts(at.info)
    bogus = tmp_path / "nope.journal"
    env(traces=store, storage=bogus)
    at = page("tune")
    assert not at.exception
    assert "no such Optuna journal file" in texts(at.error)


# --------------------------------------------------------------------------- Compare


def test_compare_page_two_policies(store: Path, env, page) -> None:
    env(traces=store)
    at = page("compare", run=SYNTH_RUN)
    assert_clean(at)
    assert charts(at) == 3  # paired Δ histogram, score over the clock, time per question
    labels = [m.label for m in at.metric]
    assert "Δ score (B − A), paired" in labels
    assert "90% interval" in texts(at.caption) and "batches" in texts(at.caption)
    clock = json.loads(chart_json(at, 1))["layout"]
    assert clock["xaxis"]["title"]["text"].startswith("competition clock (")
    table = at.dataframe[0].value
    assert len(table) == 50
    assert {"answer_a", "answer_b", "correct_a", "correct_b", "time_a", "time_b"} <= set(
        table.columns
    )
    labels = [m.label for m in at.metric]
    assert labels.count("Score") == 2

    at.selectbox(key="cmp_b_preset").select("seed-2nd-place").run()  # interaction: same policy
    assert_clean(at)
    table = at.dataframe[0].value
    assert (table["answer_a"] == table["answer_b"]).all()
    assert (table["time_a"] == table["time_b"]).all()
    delta = next(m for m in at.metric if m.label.startswith("Δ score"))
    assert delta.value == "+0.00"  # same policy, same draws: no difference


# --------------------------------------------------------------------------- Validate

HIL_TRACES_RUN = "synthetic-r1-14b-s0-x0.06"  # the run the bundled hil runs replayed
HIL_TUNED = "solve-tuned-olympiad-hil-20261207T213134597023Z"


def metric_values(at) -> dict[str, str]:
    return {m.label: m.value for m in at.metric}


def test_validate_page_on_the_bundled_hil_stores(store: Path, env, page) -> None:
    """Issue 15: out of the box, the bundled H100 hil stores with h100-14b-w4kv8 give the
    numbers `aimo validate` prints for them (docs/hil.md's table)."""
    env(traces=store)  # the sidebar's store plays no part
    at = page("validate")
    assert_clean(at)
    assert at.title[0].value == "Validate"
    assert at.selectbox(key="val_profile").value == "h100-14b-w4kv8"
    traces_run = next(s for s in at.selectbox if s.label == "Trace run")
    assert traces_run.value == HIL_TRACES_RUN  # the run the hil run replayed
    values = metric_values(at)
    assert values["Same answer"] == "10/10" and values["Same stop reason"] == "10/10"
    assert values["Time error |median|"] == "0.6%" and values["Time error p90"] == "0.9%"
    assert values["Signed median"] == "-0.5%" and values["Total error"] == "-0.5%"
    assert values["Σ question time live / sim"] == "80.6 / 80.2 s"
    assert values["Start-up live / profile"] == "61.1 s / 63.7 s"
    assert values["Engine stalls"] == "3 · 0.38 s"  # aimo validate's engine-stall line
    assert values["Without stalls: |median| / p90 / total"] == "0.6% / 1.8% / -0.1%"
    assert values["Live step spread"] == "2.7% (p90 6.3%)"
    assert "prompt lengths replayed as the live engine prefilled them" in texts(at.info)
    assert "policy seed-2nd-place" in texts(at.markdown)
    assert "trace store lengths scaled by 0.06" in texts(at.info)
    assert charts(at) == 2
    scatter = json.loads(chart_json(at, 0))
    line = scatter["data"][0]
    assert plotly_values(line["x"]) == plotly_values(line["y"])  # the y = x line
    assert scatter["layout"]["xaxis"]["title"]["text"] == "live question time (s)"
    table = at.dataframe[0].value
    assert len(table) == 10 and not table["differs"].any()
    assert table["problem_id"].iloc[0] == "syn-001"

    at.checkbox(key="val_skip_first").check().run()  # interaction: leave the first out
    assert_clean(at)
    values = metric_values(at)
    assert values["Time error p90"] == "1.0%" and values["Total error"] == "-0.6%"
    assert "syn-001" in texts(at.caption)
    live_run = next(s for s in at.selectbox if s.label == "Live run")
    live_run.select(HIL_TUNED).run()  # another policy of the same store
    assert_clean(at)
    assert "policy tuned-olympiad" in texts(at.markdown)
    # as `aimo validate --live-run HIL_TUNED --skip-first` prints (the box stays ticked)
    assert metric_values(at)["Σ question time live / sim"] == "84.7 / 85.3 s"
    at.checkbox(key="val_skip_first").uncheck().run()
    assert metric_values(at)["Σ question time live / sim"] == "95.3 / 95.7 s"  # docs/hil.md


def test_validate_page_bad_input_is_a_message_naming_the_file(
    store: Path, tmp_path: Path, env, page
) -> None:
    env(traces=store)
    at = page("validate")
    at.text_input(key="val_live").set_value(str(tmp_path / "absent.duckdb")).run()
    assert not at.exception
    assert "absent.duckdb" in texts(at.error) and "no such trace store" in texts(at.error)

    at.text_input(key="val_live").set_value(str(store)).run()  # a store without a live run
    assert not at.exception
    assert f"{store}: run: no live (solve) run" in texts(at.error)

    at.text_input(key="val_live").set_value(str(HIL_LIVE)).run()
    at.text_input(key="val_traces").set_value(str(store)).run()  # other questions
    assert not at.exception
    errors = texts(at.error)
    assert f"{store}: problem_id:" in errors and "not in the trace store" in errors

    at.text_input(key="val_traces").set_value(str(HIL_TRACES)).run()
    at.selectbox(key="val_profile").select("a YAML file…").run()
    assert not at.exception and "profile YAML" in texts(at.info)
    bad = tmp_path / "prof.yaml"
    bad.write_text("name: x\nmax_batch: many\n")
    at.text_input(key="val_profile_yaml").set_value(str(tmp_path / "nope.yaml")).run()
    assert not at.exception and "nope.yaml: no such hardware profile" in texts(at.error)
    at.text_input(key="val_profile_yaml").set_value(str(bad)).run()
    assert not at.exception and "prof.yaml" in texts(at.error)
    assert_clean(at.text_input(key="val_profile_yaml").set_value(
        str(REPO / "data/hardware/h100-14b-w4kv8.yaml")).run())  # a YAML path works too
    assert metric_values(at)["Total error"] == "-0.5%"


# --------------------------------------------------------------------------- bad input


@pytest.mark.parametrize("name", [p for p in PAGES if p != "tune"])
@pytest.mark.parametrize("case", ["missing", "not a store", "empty store", "no path"])
def test_bad_store_is_a_message_not_a_traceback(
    tmp_path: Path, env, page, name: str, case: str
) -> None:
    path: Path | None
    if case == "missing":
        path, expected = tmp_path / "absent.duckdb", "no such trace store"
    elif case == "not a store":
        path, expected = tmp_path / "notes.duckdb", "notes.duckdb"
        path.write_text("these are not traces\n")
    elif case == "empty store":
        path, expected = tmp_path / "empty.duckdb", "holds no runs"
        init_store(path)
    else:
        path, expected = None, "No trace store given"
    env(traces=path)
    at = page(name)
    assert not at.exception, [e.value for e in at.exception]
    assert expected in texts(at.error)
    assert charts(at) == 0


def test_run_without_completed_questions(tmp_path: Path, env, page) -> None:
    from aimo.recorder.synth import run_info
    from aimo.recorder.synth_profiles import DEFAULT_PROFILE, get_profile
    from aimo.core.store import TraceWriter

    path = tmp_path / "fresh.duckdb"
    writer = TraceWriter(path)
    writer.start_run(run_info(get_profile(DEFAULT_PROFILE), 5, 4, 0))
    env(traces=path)
    for name in ("runs", "traces", "simulate"):
        at = page(name)
        assert not at.exception and not at.error
        assert "in progress" in texts(at.info)
        if name != "runs":
            assert "no completed question yet" in texts(at.info)


# --------------------------------------------------------------------------- live writer


def test_pages_read_a_store_while_a_recorder_writes_it(tmp_path: Path, env, page) -> None:
    """A writer process commits questions while the pages render again and again: no lock error
    on either side, the run shows as in progress and grows."""
    from aimo.recorder.synth import synthesize_store

    path = tmp_path / "busy.duckdb"
    synthesize_store(path, n_problems=2, n_samples=4, seed=3)
    writer = subprocess.Popen(
        [sys.executable, "-c", WRITER_SCRIPT, str(path), "12", "0.05", "1"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert writer.stdout is not None
        assert writer.stdout.readline().strip() == "started"
        env(traces=path)
        seen_progress = False
        counts = []
        deadline = time.monotonic() + 120
        while writer.poll() is None and time.monotonic() < deadline:
            for name in ("runs", "traces"):
                at = page(name, run=LIVE_RUN)
                assert not at.exception, [e.value for e in at.exception]
                assert not at.error, [e.value for e in at.error]
                info = texts(at.info)
                seen_progress |= "in progress" in info
                if name == "runs":
                    table = at.dataframe[0].value
                    counts.append(int(table.loc[table["run_id"] == LIVE_RUN, "problems"].iloc[0]))
        out, err = writer.communicate(timeout=120)
    finally:
        if writer.poll() is None:
            writer.kill()
            writer.wait()
    assert writer.returncode == 0, err
    assert "done" in out and "lock" not in err.lower()
    assert seen_progress
    assert counts == sorted(counts)
    at = page("runs", run=LIVE_RUN)  # finished: no longer in progress, all questions there
    assert "in progress" not in texts(at.info)
    table = at.dataframe[0].value
    assert int(table.loc[table["run_id"] == LIVE_RUN, "problems"].iloc[0]) == 12


# --------------------------------------------------------------------------- live runs


def test_runs_page_shows_a_live_solve_its_score_time_and_burn_down(
    tmp_path: Path, env, page
) -> None:
    """Issue 16: a live run's real score (its submitted answers vs the known ones), its time and
    budget burn-down; finished, interrupted and running runs told apart, a finished one the
    default selection."""
    from aimo.solver.solve import Problem, run_solve
    from aimo.core.store import TraceWriter
    from aimo.core.store.writer import write_connection
    from aimo.core.traces import RunInfo

    store = tmp_path / "live.duckdb"
    problems = [Problem(f"q{i}", f"question {i}", i) for i in range(4)]
    report = run_solve(
        problems, "fast-8", "synthetic", record=store, echo=None, record_run_id="done"
    )
    TraceWriter(store).start_run(RunInfo("dead", "solve"))  # newer, but cut short
    with write_connection(store) as con:
        con.execute("UPDATE runs SET writer_pid = 0 WHERE run_id = 'dead'")
    env(traces=store)
    at = page("runs")
    assert_clean(at)
    table = at.dataframe[0].value
    assert dict(zip(table["run_id"], table["state"])) == {"done": "finished", "dead": "interrupted"}
    assert "Run done" in texts(at.subheader)  # the finished run, not the newer interrupted one
    right = sum(q.answer == q.truth for q in report.result.questions)
    metrics = {m.label: m.value for m in at.metric}
    assert metrics["Live solver right"] == f"{right}/4"
    assert metrics["Answered"] == "4"
    last = report.result.questions[-1]
    assert metrics["Time used"] == f"{last.start_s + last.time_s:,.0f} s"
    spec = next(c.proto.spec for c in at.get("plotly_chart") if "Time used" in c.proto.spec)
    burn = json.loads(spec)
    used = next(t for t in burn["data"] if t["name"] == "time used")
    ys = plotly_values(used["y"])
    assert len(ys) == 5 and ys[0] == 0.0 and all(a <= b for a, b in zip(ys, ys[1:]))
    live = next(d.value for d in at.dataframe if "final_answer" in d.value.columns)
    assert list(live["final_answer"]) == [q.answer for q in report.result.questions]

    at.selectbox(key="run").select("dead").run()
    assert_clean(at)
    assert "interrupted" in texts(at.warning)
