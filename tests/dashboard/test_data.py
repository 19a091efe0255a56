"""The dashboard's data layer (`dashboard.loaders`, `.frames`, `.simulation`, `.studies`, the config
and `dashboard.launch`), without pages: frames agree with `recorder.summary`, one question's views,
store versions, studies, launch."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest

from aimo import dashboard
from aimo.dashboard import frames, loaders, simulation, studies, ui
from aimo.recorder.summary import majority_votes, run_stats
from aimo.core.errors import InputError
from aimo.core.store import load_chunks, load_problem_traces, read_connection
from aimo.core.store.queries import sample_stats

RUN = "synthetic-r1-14b-s1"


@pytest.fixture(scope="module")
def traces(store: Path) -> list:
    return load_problem_traces(store, RUN)


def test_sample_and_problem_frames_agree_with_recorder_summary(store: Path, traces: list) -> None:
    samples = frames.sample_rows(traces)
    with read_connection(store) as con:
        stats = sample_stats(con, RUN)
    assert len(samples) == len(stats) == 12
    merged = samples.merge(stats, on=["problem_id", "sample_idx"], suffixes=("", "_ref"))
    assert (merged["final_value"].fillna(-9) == merged["final_value_ref"].fillna(-9)).all()
    assert (merged["first_value"].fillna(-9) == merged["first_value_ref"].fillna(-9)).all()
    assert (merged["first_token"].fillna(-9) == merged["first_pos"].fillna(-9)).all()

    problems = frames.problem_rows(samples)
    votes = majority_votes(samples).set_index("problem_id")
    assert list(problems["majority"].fillna(-9)) == list(
        votes.loc[problems["problem_id"], "vote"].fillna(-9)
    )
    ref = run_stats(RUN, "synthetic", "complete", stats)
    right = (samples["outcome"] == "right").mean()
    assert right == pytest.approx(ref.sample_accuracy)
    assert (problems["majority_outcome"] == "right").mean() == pytest.approx(ref.majority_accuracy)


def test_majority_ties_go_to_the_larger_value() -> None:
    """The dashboard's majority column is `recorder.summary.majority_votes` (one definition)."""
    import pandas as pd

    frame = pd.DataFrame(
        {
            "problem_id": ["a"] * 4 + ["b"],
            "position": [0] * 4 + [1],
            "final_value": pd.array([5, 9, 5, 9, None], dtype="Int64"),
            "truth": [9] * 5,
        }
    )
    votes = majority_votes(frame).set_index("problem_id")
    assert votes.loc["a", "vote"] == 9 and votes.loc["a", "votes"] == 2
    assert pd.isna(votes.loc["b", "vote"]) and votes.loc["b", "votes"] == 0


def test_recorded_curves_are_thinned_and_keep_each_sample_end(store: Path, traces: list) -> None:
    problem = traces[0]
    version = loaders.store_version(store)
    full = load_chunks(store, RUN, problem.problem_id)
    thin = loaders.recorded_curves(str(store), RUN, problem.problem_id, version, points=10)
    assert set(thin["sample_idx"]) == {s.sample for s in problem.samples}
    for s in problem.samples:
        part = thin[thin["sample_idx"] == s.sample]
        whole = full[full["sample_idx"] == s.sample]
        assert len(part) <= 10 + 1 < len(whole)
        assert part["tokens"].iloc[-1] == s.n_tokens  # the last chunk is always there
        assert part["t_s"].is_monotonic_increasing


@pytest.mark.parametrize("mode", ["recorded", "profile", "tokens"])
def test_question_view_modes(store: Path, traces: list, mode: str) -> None:
    problem = traces[1]
    chunks = loaders.recorded_curves(str(store), RUN, problem.problem_id, loaders.store_version(store))
    profile = loaders.profile("l4x4-14b-w4kv8") if mode == "profile" else None
    curves, events = frames.question_view(
        problem, mode, chunks=chunks if mode == "recorded" else None, profile=profile
    )
    assert set(curves["sample_idx"]) == {s.sample for s in problem.samples}
    assert set(curves["kind"]) <= {"cot", "code"}
    assert len(events) == sum(s.n_answers for s in problem.samples)
    assert set(events["outcome"]) <= set(ui_outcomes())
    if mode == "tokens":
        assert (events["tokens"] == events["sample_idx"]).all()  # lanes: y is the sample
    else:
        for s in problem.samples:  # time grows with tokens along each curve
            part = curves[curves["sample_idx"] == s.sample].sort_values("tokens")
            assert part["x"].is_monotonic_increasing
            assert part["tokens"].iloc[-1] == s.n_tokens


def ui_outcomes() -> list[str]:
    from aimo.dashboard.charts import OUTCOME_COLORS

    return list(OUTCOME_COLORS)


def test_question_view_without_chunks_uses_answer_times(traces: list) -> None:
    curves, events = frames.question_view(traces[0], "recorded", chunks=None)
    ends = curves.groupby("sample_idx")["tokens"].max()
    assert all(ends[s.sample] == s.n_tokens for s in traces[0].samples)
    assert np.isfinite(events["x"]).all()


def test_store_version_changes_when_a_question_commits(tmp_path: Path, live_writer) -> None:
    from aimo.recorder.synth import synthesize_store

    path = tmp_path / "v.duckdb"
    synthesize_store(path, n_problems=1, n_samples=2, seed=0)
    before = loaders.store_version(path)
    live_writer(path, 1)
    assert loaders.store_version(path) != before
    assert loaders.store_version(tmp_path / "absent.duckdb") == (0, 0, 0, 0)


def test_competition_problems_store_order_and_draws(traces: list) -> None:
    order, draws = simulation.competition_problems(traces, 7, None)
    assert order == [i % 3 for i in range(7)] and draws is None
    order_a, draws_a = simulation.competition_problems(traces, 3, 5)
    order_b, _ = simulation.competition_problems(traces, 3, 5)
    assert order_a == order_b and sorted(order_a) == [0, 1, 2]  # a permutation, seeded
    assert draws_a is not None and len(draws_a) == 3
    order, _ = simulation.competition_problems(traces, 10, 5)
    assert len(order) == 10  # more questions than problems: drawn with replacement


def test_trials_frame_best_trials_and_exported_policy(study_journal: Path) -> None:
    url = str(study_journal)
    version = studies.storage_version(url)
    assert studies.study_names(url, version) == ["multi", "single"]
    study = studies.load_study(url, "multi", version)
    frame = studies.trials_frame(study)
    assert {"trial", "score", "p_overtime", "param:start_level", "attr:fold_scores"} <= set(
        frame.columns
    )
    assert "attr:policy" not in frame.columns
    best = studies.best_trials(study)
    assert best and all(t in study.best_trials for t in best)
    policy, origin = studies.trial_policy(best[0], study)
    assert policy.schedule.start_level == best[0].params["start_level"]
    assert "stored policy" in origin
    assert studies.heldout_report(study) is None
    single = studies.load_study(url, "single", version)
    values = [t.value for t in studies.best_trials(single)]
    assert values == sorted(values, reverse=True)
    with pytest.raises(InputError, match="no study named"):
        studies.load_study(url, "nope", version)
    with pytest.raises(InputError, match="no such Optuna journal file"):
        studies.storage(str(study_journal) + ".missing", ())


def test_read_config_arguments_win_over_environment() -> None:
    env = {
        ui.ENV_TRACES: "/env/t.duckdb",
        ui.ENV_STORAGE: "/env/s.journal",
        ui.ENV_STUDY: "envstudy",
    }
    assert ui.read_config([], env) == ui.Config("/env/t.duckdb", "/env/s.journal", "envstudy")
    cfg = ui.read_config(["--traces", "a.duckdb", "--study", "x", "--unrelated"], env)
    assert cfg == ui.Config("a.duckdb", "/env/s.journal", "x")


def test_build_command_and_launch_checks(tmp_path: Path, store: Path) -> None:
    cmd = dashboard.build_command(store, "sqlite:///s.db", 8123, True, study="multi")
    assert cmd[:4] == [sys.executable, "-m", "streamlit", "run"]
    assert cmd[4] == str(dashboard.APP_PATH)
    assert cmd[cmd.index("--server.port") + 1] == "8123"
    assert cmd[cmd.index("--server.headless") + 1] == "true"
    # no Deploy button (the browser test checks the page too)
    assert cmd[cmd.index("--client.toolbarMode") + 1] == "minimal"
    assert cmd.index("--client.toolbarMode") < cmd.index("--")  # a streamlit flag, not the app's
    tail = cmd[cmd.index("--") + 1 :]
    assert tail == [
        "--traces",
        str(store.resolve()),
        "--storage",
        "sqlite:///s.db",
        "--study",
        "multi",
    ]
    journal = dashboard.build_command(None, "rel.journal", 1, False)
    assert journal[journal.index("--storage") + 1] == str(Path("rel.journal").resolve())
    with pytest.raises(InputError, match="no such trace store"):
        dashboard.launch(tmp_path / "absent.duckdb", None, 8501, True)
    with pytest.raises(InputError, match="no such Optuna journal file"):
        dashboard.launch(store, str(tmp_path / "absent.journal"), 8501, True)
    with pytest.raises(InputError, match="port"):
        dashboard.launch(store, None, 0, True)


@pytest.mark.parametrize("seed", [None, 3])
def test_fast_competition_matches_the_reference(store: Path, seed: int | None) -> None:
    """The Simulate page's one competition is the same on both simulator paths."""
    if not simulation.fast_available():
        pytest.skip("aimo.simulator.fast not importable")
    from aimo.core.policy import load_policy, policy_to_yaml

    text = policy_to_yaml(load_policy("seed-2nd-place"))
    version = loaders.store_version(store)
    args = (str(store), RUN, version, text, "l4x4-14b-w4kv8", 7, seed, 18000.0)
    ref = simulation.competition(*args, False)
    fast = simulation.competition(*args, True)
    assert [q.problem_id for q in fast.questions] == [q.problem_id for q in ref.questions]
    assert [q.answer for q in fast.questions] == [q.answer for q in ref.questions]
    assert [q.stop_reason for q in fast.questions] == [q.stop_reason for q in ref.questions]
    assert [q.time_s for q in fast.questions] == pytest.approx([q.time_s for q in ref.questions])
    assert [[s.end for s in q.samples] for q in fast.questions] == [
        [s.end for s in q.samples] for q in ref.questions
    ]


def test_tuner_study_policy_is_rebuilt_like_the_tuner_exports_it(tuner_journal: Path) -> None:
    from aimo.core.policy import load_policy, policy_hash

    url = str(tuner_journal)
    version = studies.storage_version(url)
    assert set(studies.study_names(url, version)) == {"demo", "demo:fold1of2", "demo:fold2of2"}
    study = studies.load_study(url, "demo", version)
    assert studies.metric_names(study) == ["score"]
    assert "score" in studies.trials_frame(study).columns
    exported = study.trials[studies.exported_trial(study)]
    policy, origin = studies.trial_policy(exported, study)
    assert "hash matches" in origin
    written = load_policy(tuner_journal.parent / "best.yaml")
    assert policy_hash(policy) == policy_hash(written)  # the same policy `aimo tune` wrote
    rows, folds = studies.heldout_report(study)
    assert {"seed-2nd-place", "tuned"} <= set(rows["policy"])
    assert list(folds["fold study"]) == ["demo:fold1of2", "demo:fold2of2"]
    with pytest.raises(InputError, match="another search space"):
        other = tuner_journal.parent / "narrow.yaml"
        other.write_text("fix:\n  check.every_tokens: 40\n")
        studies.trial_policy(exported, study, str(other))


def test_runs_frame_tells_states_apart_and_live_score_comes_from_the_store(tmp_path: Path) -> None:
    """Issue 16: a live solve's final answers are in the store; finished, failed, interrupted and
    running runs are told apart; an interrupted run's committed questions still load here."""
    from aimo.solver.solve import Problem, run_solve
    from aimo.core.store import TraceWriter
    from aimo.core.traces import RunInfo

    store = tmp_path / "live.duckdb"
    problems = [Problem(f"q{i}", f"question {i}", i) for i in range(3)]
    report = run_solve(problems, "fast-8", "synthetic", record=store, echo=None, record_run_id="done")
    writer = TraceWriter(store)
    writer.start_run(RunInfo("alive", "solve"))  # this process: alive, so 'running'
    writer.start_run(RunInfo("dead", "solve"))
    from aimo.core.store.writer import write_connection
    with write_connection(store) as con:
        con.execute("UPDATE runs SET writer_pid = 0 WHERE run_id = 'dead'")
    frame = loaders.runs_frame(str(store), loaders.store_version(str(store)))
    assert dict(zip(frame["run_id"], frame["state"])) == {
        "done": "finished", "alive": "running", "dead": "interrupted"}
    score = loaders.live_score(str(store), "done", loaders.store_version(str(store)))
    right = sum(q.answer == q.truth for q in report.result.questions)
    assert (score.answered, score.with_truth, score.correct) == (3, 3, right)
    assert score.time_used_s == pytest.approx(report.result.questions[-1].start_s
                                              + report.result.questions[-1].time_s)
    assert loaders.problem_traces(str(store), "dead", loaders.store_version(str(store))) == []


# --------------------------------------------------------------------------- validation (issue 15)

HIL_LIVE = Path(__file__).resolve().parents[2] / "data/traces/hil-h100-live.duckdb"
HIL_TRACES = Path(__file__).resolve().parents[2] / "data/traces/hil-h100-traces.duckdb"
HIL_SEED = "solve-seed-2nd-place-hil-20261207T213008905290Z"


def hand_validation(skip: tuple[str, ...] = ()):  # type: ignore[no-untyped-def]
    """A `Validation` of three questions built by hand: q1 agrees, q2's answers differ, q3 timed
    out live (decided by the clock) with an unknown live answer."""
    from aimo.core.policy import load_policy
    from aimo.simulator.livecheck import LiveCheck, QuestionPair
    from aimo.simulator.validate import LiveQuestion, LiveRun, QuestionRow, Validation

    rows = (
        QuestionRow("q1", 5, 5, 5, "min_answers", "min_answers", 10.0, 9.0),
        QuestionRow("q2", 7, 3, 4, "all_done", "all_done", 4.0, 5.0),
        QuestionRow("q3", None, None, 8, "timeout", "min_answers", 2.0, 2.0),
    )
    live = LiveRun("live.duckdb", "solve-x", load_policy("seed-2nd-place"), 0, 30.0,
                   tuple(LiveQuestion(r.problem_id, i, r.truth, r.live_answer, r.live_stop,
                                      r.live_s) for i, r in enumerate(rows)), "store")
    pairs = tuple(QuestionPair(r.problem_id, r.truth, r.sim_s, r.live_s, r.sim_answer,
                               r.live_answer) for r in rows if r.problem_id not in skip)
    check = LiveCheck("seed-2nd-place", pairs, sum(p.predicted_s for p in pairs),
                      sum(p.live_s for p in pairs), 40.0, 30.0)
    return Validation(live, "prof", rows, check, skip, 40.0, ("a note",))


def test_validation_rows_mark_differing_answers_clock_stops_and_skips() -> None:
    table = frames.validation_rows(hand_validation(skip=("q1",)))
    assert list(table.columns) == frames.VALIDATION_COLUMNS
    assert table["order"].tolist() == [1, 2, 3]
    assert table["differs"].tolist() == [False, True, False]  # unknown live answer: not marked
    assert table["by_time"].tolist() == [False, False, True]
    assert table["skipped"].tolist() == [True, False, False]
    assert np.isnan(table["error"].iloc[0])  # left out of the time errors: no error shown
    assert table["error"].iloc[1] == pytest.approx(0.25)
    assert table["live_answer"].isna().tolist() == [False, False, True]


def test_validation_pairs_and_metrics_read_the_comparison() -> None:
    v = hand_validation(skip=("q1",))
    pairs = frames.validation_pairs(v)
    assert pairs["problem_id"].tolist() == ["q2", "q3"]  # the skipped question is not drawn
    assert pairs["live_cum_s"].tolist() == [4.0, 6.0] and pairs["sim_cum_s"].tolist() == [5.0, 7.0]
    metrics = {m.label: m.value for m in frames.validation_metrics(v)}
    assert metrics["Same answer"] == "1/2"  # q3 is decided by the clock: not compared
    assert metrics["Same stop reason"] == "2/3"
    assert metrics["Time error |median|"] == "12.5%"  # |+25%| and 0%
    assert metrics["Signed median"] == "+12.5%"
    assert metrics["Σ question time live / sim"] == "6.0 / 7.0 s"
    assert metrics["Total error"] == "+16.7%"
    assert metrics["Start-up live / profile"] == "30.0 s / 40.0 s"


def test_validation_frames_show_what_aimo_validate_prints() -> None:
    """The page's numbers and rows are the CLI's (`--json`): one comparison, two renderers."""
    import json

    from typer.testing import CliRunner

    from aimo.cli import app
    from aimo.simulator.validate import compare_stores

    res = CliRunner().invoke(app, ["validate", "--live", str(HIL_LIVE), "--live-run", HIL_SEED,
                                   "--traces", str(HIL_TRACES), "--hardware", "h100-14b-w4kv8",
                                   "--json"])
    assert res.exit_code == 0, res.output
    cli = json.loads(res.output)
    v = compare_stores(HIL_LIVE, HIL_TRACES, "h100-14b-w4kv8", live_run=HIL_SEED)
    table = frames.validation_rows(v)
    assert table["problem_id"].tolist() == [r["problem_id"] for r in cli["rows"]]
    assert table["live_s"].round(4).tolist() == [r["live_s"] for r in cli["rows"]]
    assert table["sim_s"].round(4).tolist() == [r["sim_s"] for r in cli["rows"]]
    assert table["sim_answer"].tolist() == [r["sim_answer"] for r in cli["rows"]]
    metrics = {m.label: m.value for m in frames.validation_metrics(v)}
    assert metrics["Same answer"] == "{}/{}".format(*cli["same_answer"]) == "10/10"
    assert metrics["Time error p90"] == f"{100 * cli['time_error_p90']:.1f}%" == "0.9%"
    assert metrics["Σ question time live / sim"] == (
        f"{cli['live_total_s']:.1f} / {cli['sim_total_s']:.1f} s") == "80.6 / 80.2 s"


def test_default_trace_run_is_the_one_a_hil_run_replayed() -> None:
    import json

    import pandas as pd

    runs = pd.DataFrame({"run_id": ["rec-a", "rec-b", "solve-1", "rec-c"],
                         "kind": ["record", "synthetic", "solve", "record"],
                         "state": ["finished", "finished", "finished", "running"]})
    hil = json.dumps({"hil": {"run_id": "rec-a"}})
    assert frames.default_trace_run(runs, hil) == 0
    # not a hil run, or it replayed another store: the newest finished recording
    assert frames.default_trace_run(runs, json.dumps({"engine": {}})) == 1
    assert frames.default_trace_run(runs, json.dumps({"hil": {"run_id": "elsewhere"}})) == 1
    assert frames.default_trace_run(runs, None) == 1
    only_solves = runs[runs["kind"] == "solve"].reset_index(drop=True)
    assert frames.default_trace_run(only_solves, None) == 0


def test_validation_loader_names_the_file_of_bad_input(store: Path, tmp_path: Path) -> None:
    def load(live: Path, traces: Path = HIL_TRACES, hardware: str = "h100-14b-w4kv8") -> None:
        loaders.validation(str(live), HIL_SEED, loaders.store_version(live), str(traces), None,
                           loaders.store_version(traces), hardware, (0,))

    with pytest.raises(InputError, match="absent.duckdb"):
        load(tmp_path / "absent.duckdb")
    with pytest.raises(InputError, match="no live \\(solve\\) run"):
        load(store)
    with pytest.raises(InputError, match="nosuch"):
        load(HIL_LIVE, hardware="nosuch")
    with pytest.raises(InputError, match=f"{store.name}: .*not in the trace store"):
        loaders.validation(str(HIL_LIVE), HIL_SEED, (0,), str(store), RUN, (0,),
                           "h100-14b-w4kv8", (0,))
