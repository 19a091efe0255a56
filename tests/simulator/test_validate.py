"""`aimo validate`, `aimo scale-store` and `aimo profile fit --from-live`: a live run (here a
hardware-in-the-loop run over the lmdeploy test double, and the bundled olympiad live runs)
against the simulator; bad inputs refused with the file and field named."""

from __future__ import annotations

import json
import math
import sys
from pathlib import Path

import pytest
from fake_lmdeploy import FakeTokenizer, make_fake_lmdeploy
from hil_store import PROBLEMS, RUN_ID, write_hil_store
from typer.testing import CliRunner

from aimo.cli import app
from aimo.recorder.scale import scale_store, scaled_position, scaled_tokens
from aimo.core.hardware import load_profile
from aimo.simulator.validate import decided_by_time, read_live_run, validate
from aimo.core.errors import InputError
from aimo.solver.solve import EngineSpec, run_solve
from aimo.core.store import list_runs, load_problem_traces

REPO = Path(__file__).resolve().parents[2]
OLY_LIVE = REPO / "data/traces/olympiad-live.duckdb"
OLY_TRACES = REPO / "data/traces/olympiad-tiny.duckdb"
TUNED_RUN = "solve-tuned-olympiad-pytorch-20261128T083905162636Z"


@pytest.fixture
def hil_run(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> tuple[Path, Path]:
    """A majority-n hil run (draw seed 3) of the hand-made store over the lmdeploy double."""
    monkeypatch.setitem(sys.modules, "lmdeploy", make_fake_lmdeploy(tokenizer=FakeTokenizer(), step_s=0.002))
    store = write_hil_store(tmp_path / "traces.duckdb")
    live = tmp_path / "live.duckdb"
    run_solve(None, "majority-n", EngineSpec("hil", model="/m", tp=1, seed=3, options={"draw_seed": 3}),
              traces=store, record=live, echo=None)
    return store, live


def test_hil_run_and_its_prediction_agree_on_answers_and_stops(hil_run) -> None:
    store, live = hil_run
    run = read_live_run(live)
    assert run.draw_seed == 3 and run.policy.name == "majority-n" and run.hil["run_id"] == RUN_ID
    v = validate(run, load_problem_traces(store), load_profile("h200-14b-w4kv8"))
    assert [r.problem_id for r in v.rows] == list(PROBLEMS)
    assert v.same_answer == (2, 2) and v.same_stop == (2, 2)
    assert all(r.sim_stop == "all_done" and math.isfinite(r.rel_error) for r in v.rows)
    s = v.summary()
    assert s["questions"] == 2 and s["live_total_s"] > 0 and s["sim_total_s"] > 0
    # the prediction uses the run's draw: another seed would pick other samples
    other = validate(run.__class__(**{**run.__dict__, "draw_seed": None}), load_problem_traces(store),
                     load_profile("h200-14b-w4kv8"))
    assert [r.sim_s for r in other.rows] != [r.sim_s for r in v.rows]


def test_validate_cli_prints_table_plot_json_and_markdown(hil_run, tmp_path) -> None:
    store, live = hil_run
    png, md = tmp_path / "v.png", tmp_path / "v.md"
    res = CliRunner().invoke(app, ["validate", "--live", str(live), "--traces", str(store), "--hardware",
                                   "h200-14b-w4kv8", "--plot", str(png), "--markdown", str(md)])
    assert res.exit_code == 0, res.output
    assert "same answer (questions not decided by a timeout): 2/2" in res.output
    # start-up is counted as profiles count it, and the output says how; the abort latency too
    assert "start-up (engine build + first-batch stall, as profiles count it): live" in res.output
    assert "abort latency, question stops" in res.output and "profile abort_latency_steps: 0" in res.output
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert md.read_text().count("\n") == 3  # header (2 lines) + one row
    res = CliRunner().invoke(app, ["validate", "--live", str(live), "--traces", str(store), "--hardware",
                                   "h200-14b-w4kv8", "--json"])
    data = json.loads(res.stdout)
    assert data["same_answer"] == [2, 2] and len(data["rows"]) == 2
    stall = data["first_batch_stall_s"]
    assert stall is not None and stall >= 0.0
    assert data["live_startup_s"] == pytest.approx(data["live_build_s"] + stall, abs=0.002)


def test_olympiad_live_runs_re_predicted() -> None:
    """The bundled live runs, as docs/olympiad-loop.md reports them (tuned: answers derived)."""
    tuned = read_live_run(OLY_LIVE, TUNED_RUN)
    v = validate(tuned, load_problem_traces(OLY_TRACES), load_profile("h200-olympiad-tiny-w4kv8"), skip_first=True)
    s = v.summary()
    assert s["questions"] == 25 and s["answers_from"] == "derived"
    assert s["same_answer"] == [26, 26]
    assert 0.05 < s["time_error_median"] < 0.15  # 10.1% (docs/olympiad-loop.md: 10%)
    seed = read_live_run(OLY_LIVE, "solve-seed-2nd-place-pytorch-20261128T083708237918Z",
                         json_report=REPO / "data/measurements/olympiad-loop/live-seed-2nd-place.json")
    assert seed.answers_from == "json" and seed.startup_s == pytest.approx(69.8, abs=0.1)


def test_bad_inputs_name_the_file_and_field(hil_run, tmp_path) -> None:
    store, live = hil_run
    runner = CliRunner()

    def run(*args: str) -> tuple[int, str]:
        res = runner.invoke(app, ["validate", *args])
        return res.exit_code, res.output

    code, out = run("--live", str(store), "--traces", str(store), "--hardware", "h200-14b-w4kv8")
    assert code == 2 and "0 live (solve) runs" in out and "Traceback" not in out
    code, out = run("--live", str(tmp_path / "nope.duckdb"), "--traces", str(store), "--hardware", "h200-14b-w4kv8")
    assert code == 2 and "nope.duckdb" in out
    code, out = run("--live", str(live), "--live-run", "x", "--traces", str(store), "--hardware", "h200-14b-w4kv8")
    assert code == 2 and "no live (solve) run 'x'" in out
    code, out = run("--live", str(live), "--traces", str(OLY_TRACES), "--hardware", "h200-14b-w4kv8")
    assert code == 2 and "not in the trace store" in out
    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    code, out = run("--live", str(live), "--traces", str(store), "--hardware", "h200-14b-w4kv8",
                    "--live-json", str(bad))
    assert code == 2 and "bad.json" in out
    code, out = run("--live", str(live), "--traces", str(store), "--hardware", "nosuch")
    assert code == 2 and "nosuch" in out
    code, out = run("--live", str(live), "--traces", str(store), "--hardware", "h200-14b-w4kv8",
                    "--plot", str(tmp_path / "no/dir/x.png"))
    assert code == 2 and "--plot" in out


def test_timeouts_are_clock_decisions() -> None:
    assert decided_by_time("timeout") and decided_by_time("early:480s/≥6") and decided_by_time("cutoff")
    assert not decided_by_time("all_done") and not decided_by_time("rule1:4/≤4") and not decided_by_time(None)


def test_scaled_store_scales_lengths_and_positions_and_records_the_scale(tmp_path) -> None:
    src = write_hil_store(tmp_path / "a.duckdb")
    summary = scale_store(src, tmp_path / "b.duckdb", 0.5)
    assert summary.questions == 2 and summary.run_id == f"{RUN_ID}-x0.5"
    before, after = load_problem_traces(src), load_problem_traces(tmp_path / "b.duckdb")
    for p, q in zip(before, after):
        assert p.problem_id == q.problem_id and p.answer == q.answer
        for s, t in zip(p.samples, q.samples):
            assert t.n_tokens == scaled_tokens(s.n_tokens, 0.5) and t.finish_reason == s.finish_reason
            assert list(t.ans_token) == [scaled_position(int(x), 0.5, t.n_tokens) for x in s.ans_token]
            assert list(t.ans_value) == list(s.ans_value) and list(t.ans_source) == list(s.ans_source)
            assert all(0 < x <= t.n_tokens for x in t.ans_token)
    scale_store(tmp_path / "b.duckdb", tmp_path / "c.duckdb", 0.5)
    (run,) = list_runs(tmp_path / "c.duckdb")
    assert run.gen_config["length_scale"] == 0.25 and run.gen_config["scaled_from"]["scale"] == 0.5
    with pytest.raises(InputError, match="already exists"):
        scale_store(src, tmp_path / "b.duckdb", 0.5)
    for bad in (0, -1, 1.5, float("nan")):
        with pytest.raises(InputError, match="length_scale"):
            scale_store(src, tmp_path / f"x{bad}.duckdb", bad)
    res = CliRunner().invoke(app, ["scale-store", "--traces", str(src), "--length-scale", "0.25",
                                   "--out", str(tmp_path / "d.duckdb")])
    assert res.exit_code == 0 and "length scale 0.25" in res.output


def test_hil_run_on_a_scaled_store_records_the_scale(monkeypatch, tmp_path) -> None:
    monkeypatch.setitem(sys.modules, "lmdeploy", make_fake_lmdeploy(tokenizer=FakeTokenizer(), step_s=0.001))
    src = write_hil_store(tmp_path / "a.duckdb")
    scale_store(src, tmp_path / "b.duckdb", 0.5)
    live = tmp_path / "live.duckdb"
    run_solve(None, "majority-n", EngineSpec("hil", model="/m", tp=1), traces=tmp_path / "b.duckdb",
              record=live, echo=None)
    run = read_live_run(live)
    assert run.hil["length_scale"] == 0.5
    v = validate(run, load_problem_traces(tmp_path / "b.duckdb"), load_profile("h200-14b-w4kv8"))
    assert any("scaled by 0.5" in n for n in v.notes)


def test_profile_fit_from_live_reports_before_and_after(hil_run, tmp_path) -> None:
    store, live = hil_run
    out = tmp_path / "refit.yaml"
    res = CliRunner().invoke(app, ["profile", "fit", "--from-live", str(live), "--name", "refit",
                                   "--base", "h200-14b-w4kv8", "--out", str(out), "--traces", str(store)])
    assert res.exit_code == 0, res.output
    assert "before (h200-14b-w4kv8)" in res.output and "after (refit)" in res.output
    assert "question times before" in res.output and "question times after" in res.output
    refit = load_profile(out)
    assert refit.a < load_profile("h200-14b-w4kv8").a  # the double decodes a step in ~2 ms, not 11
    res = CliRunner().invoke(app, ["profile", "fit", "--from-live", str(live), "--name", "refit",
                                   "--base", "h200-14b-w4kv8", "--out", str(out)])
    assert res.exit_code == 2 and "exists" in res.output
    res = CliRunner().invoke(app, ["profile", "fit", "--name", "x"])
    assert res.exit_code == 2 and "--traces" in res.output


def test_stored_per_question_results_win_when_the_store_has_them(hil_run) -> None:
    """Stores with per-question results (questions_done.final_answer / stop_reason / start_s, the
    live-results migration) are read as they are, not derived."""
    import duckdb

    store, live = hil_run
    assert read_live_run(live).answers_from == "store"  # the live solver records its answers
    with duckdb.connect(str(live)) as con:
        con.execute("UPDATE questions_done SET final_answer = NULL, stop_reason = NULL")
    assert read_live_run(live).answers_from == "derived"  # a store without them (before v2)
    with duckdb.connect(str(live)) as con:
        con.execute("UPDATE questions_done SET final_answer = 111, stop_reason = 'timeout', start_s = 3.5")
    stored = read_live_run(live)
    assert stored.answers_from == "store"
    assert [(q.answer, q.stop_reason) for q in stored.questions] == [(111, "timeout")] * 2
    v = validate(stored, load_problem_traces(store), load_profile("h200-14b-w4kv8"))
    assert v.same_answer == (0, 0)  # both decided by a (live) timeout: not compared


def test_the_prediction_prefills_the_prompts_the_live_engine_did(tmp_path: Path) -> None:
    """A hil run prefills the policy's real prompts (~263/325 tokens on the H100 set 4), not the
    scaled store's made-up lengths: `predict` replays each sample with its question's live length
    per kind, and the notes say how many changed; a self-replay changes none."""
    from dataclasses import replace as dc_replace

    from aimo.simulator.validate import predict, prompts_changed, with_live_prompts

    live_path = tmp_path / "live.duckdb"
    live_path.write_bytes((REPO / "data/traces/hil-h100-seed3-live.duckdb").read_bytes())
    run = read_live_run(live_path, "solve-majority-n-hil-20261208T014041523427Z")
    assert run.prompt_tokens[("syn-002", "cot")] == 263 and run.prompt_tokens[("syn-002", "code")] == 325
    traces = load_problem_traces(REPO / "data/traces/hil-h100-seed3-traces.duckdb")
    replayed = {p.problem_id: p for p in with_live_prompts(traces, run)}
    stored = {p.problem_id: p for p in traces}
    assert {s.prompt_tokens for s in replayed["syn-002"].samples} == {263, 325}
    assert {s.prompt_tokens for s in stored["syn-002"].samples} != {263, 325}
    assert prompts_changed(traces, run) > 0
    profile = load_profile("h100-14b-w4kv8")
    v = validate(run, traces, profile)
    assert any(n.startswith("prompt lengths replayed as the live engine prefilled them") for n in v.notes)
    # the longer prompts cost the simulated question its prefill: slower than the store's lengths
    plain = predict(dc_replace(run, prompt_tokens={}), traces, profile)
    assert sum(q.time_s for q in predict(run, traces, profile).questions) > sum(q.time_s for q in plain.questions)
    # the live run replayed on its own samples already has the live lengths
    own = load_problem_traces(live_path, "solve-majority-n-hil-20261208T014041523427Z")
    assert prompts_changed(own, run) == 0
