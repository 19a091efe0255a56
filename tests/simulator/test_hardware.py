"""The hardware time model: profiles and their YAML, closed-form timing, calibration, fitting."""

from __future__ import annotations

import math
from dataclasses import replace
from pathlib import Path

import duckdb
import numpy as np
import pandas as pd
import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from aimo.data import HARDWARE_DIR
from aimo.core.hardware import (
    CalibrationPoint,
    HardwareProfile,
    Provenance,
    StepObservations,
    dump_profile,
    fit_profile,
    list_profiles,
    load_profile,
    observations_from_chunks,
    pace_batch,
    predict_point,
    prefill_duration,
    read_chunks,
    save_profile,
    steps_duration,
    steps_duration_array,
    steps_within,
    steps_within_array,
)
from aimo.core.store import init_store
from aimo.core.hardware.calibrate import calibration_report, derive_published_profiles, main
from aimo.core.errors import InputError

SHIPPED = list_profiles()
TRUE = HardwareProfile(
    name="truth", a=0.020, beta=4.0e-4, gamma=1.0e-7, prefill_s_per_token=2e-4, startup_s=60.0,
    max_batch=32, provenance=Provenance("test", "2026-01-01", "made up"),
)


def _profile(**kw: object) -> HardwareProfile:
    return replace(TRUE, **kw)  # type: ignore[arg-type]


# ---------------------------------------------------------------------------------- profiles


def test_ships_the_three_published_profiles() -> None:
    assert {"l4x4-14b-w4kv8", "l4x4-14b-w4kv16", "l4x4-14b-fp16"} <= set(SHIPPED)


@pytest.mark.parametrize("name", SHIPPED)
def test_shipped_profile_round_trips_and_has_provenance(name: str, tmp_path: Path) -> None:
    p = load_profile(name)
    assert p.name == name
    assert p.provenance.source and p.provenance.date and p.provenance.method
    assert p.calibration, "a shipped profile carries the points it was checked against"
    again = load_profile(save_profile(p, tmp_path / "x.yaml"))
    assert again == p
    assert HardwareProfile.from_dict(yaml.safe_load(dump_profile(p))) == p


@pytest.mark.parametrize("name", SHIPPED)
def test_shipped_yaml_report_matches_the_model(name: str) -> None:
    p = load_profile(name)
    raw = yaml.safe_load((HARDWARE_DIR / f"{name}.yaml").read_text())
    for pt, row in zip(p.calibration, raw["calibration"]):
        pred = predict_point(p, pt)
        assert row["predicted"] == pytest.approx(pred, rel=1e-4)
        assert row["rel_error"] == pytest.approx(pred / pt.observed - 1, abs=1e-4)


def test_shipped_published_profiles_equal_their_derivation() -> None:
    for name, derived in derive_published_profiles().items():
        assert load_profile(name) == derived, "run: python -m aimo.core.hardware.calibrate --write"


@pytest.mark.parametrize("name", ["l4x4-14b-w4kv8", "l4x4-14b-w4kv16", "l4x4-14b-fp16"])
def test_published_hard_timings_are_met_within_one_percent(name: str) -> None:
    rows = [r for r in calibration_report(load_profile(name)) if r.weight >= 100]
    assert rows and all(abs(r.rel_error) < 0.01 for r in rows)


def test_quantisation_ordering_is_physical() -> None:
    kv8, kv16, fp16 = (load_profile(f"l4x4-14b-{q}") for q in ("w4kv8", "w4kv16", "fp16"))
    assert kv16.a == kv8.a and kv16.beta == kv8.beta and kv16.gamma > kv8.gamma
    assert fp16.gamma == kv16.gamma and fp16.a > kv16.a
    for b, c in [(1, 200), (15, 15 * 8000), (32, 32 * 16000)]:
        assert kv8.step_s(b, c) < kv16.step_s(b, c) < fp16.step_s(b, c)


def test_load_profile_unknown_name_lists_shipped() -> None:
    with pytest.raises(InputError) as exc:
        load_profile("no-such-gpu")
    assert "l4x4-14b-w4kv8" in str(exc.value)


def _write(tmp_path: Path, data: dict) -> Path:
    path = tmp_path / "p.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


@pytest.mark.parametrize(
    ("mutate", "field"),
    [
        (lambda d: d["decode"].update(beta=-1.0), "decode.beta"),
        (lambda d: d["decode"].update(a=0), "decode.a"),
        (lambda d: d["decode"].update(gamma="fast"), "decode.gamma"),
        (lambda d: d["decode"].update(delta=1.0), "decode.delta"),
        (lambda d: d["decode"].pop("gamma"), "decode.gamma"),
        (lambda d: d.update(speed=3), "speed"),
        (lambda d: d.update(max_batch=True), "max_batch"),
        (lambda d: d.update(max_batch=0), "max_batch"),
        (lambda d: d.update(code_overlap="sometimes"), "code_overlap"),
        (lambda d: d.update(startup_s=float("nan")), "startup_s"),
        (lambda d: d["provenance"].pop("source"), "provenance.source"),
        (lambda d: d["provenance"].update(url="x"), "provenance.url"),
        (lambda d: d["calibration"][0].update(kind="guess"), "calibration[0].kind"),
        (lambda d: d["calibration"][1].update(batch=0), "calibration[1].batch"),
        (lambda d: d.update(name="bad name/"), "name"),
    ],
)
def test_bad_profile_names_file_and_field(tmp_path: Path, mutate, field: str) -> None:
    data = load_profile("l4x4-14b-w4kv8").to_dict()
    mutate(data)
    path = _write(tmp_path, data)
    with pytest.raises(InputError) as exc:
        load_profile(path)
    assert exc.value.field == field
    assert exc.value.source == str(path)


def test_bad_yaml_and_non_mapping(tmp_path: Path) -> None:
    path = tmp_path / "p.yaml"
    path.write_text("decode: [1, 2\n")
    with pytest.raises(InputError, match="invalid YAML"):
        load_profile(path)
    path.write_text("- 1\n- 2\n")
    with pytest.raises(InputError, match="mapping"):
        load_profile(path)


# ---------------------------------------------------------------------------------- timing

profiles_st = st.builds(
    lambda a, beta, gamma: _profile(a=a, beta=beta, gamma=gamma),
    st.floats(1e-4, 1.0), st.floats(0, 1e-2), st.floats(0, 1e-5),
)


def test_steps_duration_is_the_sum_of_steps() -> None:
    p, b, c0 = TRUE, 15, 2250.0
    for n in (0, 1, 2, 7, 1000):
        total = sum(p.step_s(b, c0 + b * k) for k in range(n))
        assert steps_duration(p, b, c0, n) == pytest.approx(total, rel=1e-12)


@settings(max_examples=300, deadline=None)
@given(p=profiles_st, b=st.integers(1, 64), c0=st.floats(0, 2e6), t=st.floats(0, 1e5))
def test_steps_within_is_exact(p: HardwareProfile, b: int, c0: float, t: float) -> None:
    n = steps_within(p, b, c0, t)
    assert n >= 0
    assert steps_duration(p, b, c0, n) <= t < steps_duration(p, b, c0, n + 1)


@settings(max_examples=100, deadline=None)
@given(p=profiles_st, b=st.integers(1, 64), c0=st.floats(0, 2e6), n=st.integers(0, 50_000))
def test_steps_within_inverts_steps_duration(p: HardwareProfile, b: int, c0: float, n: int) -> None:
    assert steps_within(p, b, c0, steps_duration(p, b, c0, n)) == n


def test_steps_within_edges() -> None:
    assert steps_within(TRUE, 4, 100.0, -1.0) == 0
    assert steps_within(TRUE, 4, 100.0, float("nan")) == 0
    assert steps_within(TRUE, 4, 100.0, 0.0) == 0
    with pytest.raises(ValueError):
        steps_within(TRUE, 4, 100.0, math.inf)
    flat = _profile(gamma=0.0)
    assert steps_within(flat, 4, 0.0, 10 * flat.step_s(4, 0) + 1e-9) == 10


def test_array_versions_match_scalar() -> None:
    rng = np.random.default_rng(0)
    b = rng.integers(1, 33, 500)
    c0 = rng.uniform(0, 5e5, 500)
    t = rng.uniform(0, 3000, 500)
    n = rng.integers(0, 20000, 500)
    got_n = steps_within_array(TRUE, b, c0, t)
    got_t = steps_duration_array(TRUE, b, c0, n)
    for i in range(500):
        assert got_n[i] == steps_within(TRUE, int(b[i]), float(c0[i]), float(t[i]))
        want = steps_duration(TRUE, int(b[i]), float(c0[i]), int(n[i]))
        assert got_t[i] == pytest.approx(want, rel=1e-12)


def test_prefill_duration() -> None:
    assert prefill_duration(TRUE, 0) == 0.0
    assert prefill_duration(TRUE, 1000) == pytest.approx(0.2)


def test_pace_batch_single_request_and_queue() -> None:
    (times,) = pace_batch(TRUE, [100], [50])
    assert len(times) == 50
    want = prefill_duration(TRUE, 100) + steps_duration(TRUE, 1, 100, 50)
    assert times[-1] == pytest.approx(want)
    one = _profile(max_batch=1)
    a, b = pace_batch(one, [100, 100], [30, 20])
    assert b[0] > a[-1], "the second request waits for the first's slot"
    want = prefill_duration(one, 100) + steps_duration(one, 1, 100, 20)
    assert b[-1] - a[-1] == pytest.approx(want)
    x, y = pace_batch(TRUE, [100, 200], [10, 30])
    assert np.array_equal(x, y[:10]), "a batch steps together"
    assert np.all(np.diff(y) > 0)


# ---------------------------------------------------------------------------------- fitting


def _synthetic_chunks(p: HardwareProfile, questions: list[tuple[int, int]], *, jitter_s: float,
                      seed: int) -> pd.DataFrame:
    """Chunk timelines paced by `p`: per question (n_samples, max length), chunks of 1-6 tokens,
    timestamps with Gaussian jitter."""
    rng = np.random.default_rng(seed)
    frames = []
    for q, (n_samples, max_len) in enumerate(questions):
        prompts = rng.integers(100, 400, n_samples)
        lengths = rng.integers(max_len // 8, max_len, n_samples)
        for i, times in enumerate(pace_batch(p, list(prompts), list(lengths))):
            ends = np.cumsum(rng.integers(1, 7, len(times)))
            ends = np.r_[ends[ends < len(times)], len(times)]
            t = times[ends - 1] + rng.normal(0, jitter_s, len(ends))
            frames.append(pd.DataFrame({
                "run_id": "r", "problem_id": f"q{q}", "sample_idx": i, "seq": np.arange(len(ends)),
                "t_s": t, "n_tokens": ends, "prompt_tokens": int(prompts[i]), "start_s": 0.0,
            }))
    return pd.concat(frames, ignore_index=True)


QUESTIONS = [(8, 6000), (16, 9000), (32, 8000), (40, 4000)]  # the last one queues past max_batch


def test_fit_recovers_known_parameters() -> None:
    chunks = _synthetic_chunks(TRUE, QUESTIONS, jitter_s=0.003, seed=1)
    res = fit_profile(chunks, name="fitted", base=load_profile("l4x4-14b-w4kv8"))
    p = res.profile
    assert p.a == pytest.approx(TRUE.a, rel=0.03)
    assert p.beta == pytest.approx(TRUE.beta, rel=0.05)
    assert p.gamma == pytest.approx(TRUE.gamma, rel=0.03)
    assert res.fixed == ()
    assert res.median_rel_error < 0.05 and res.p90_rel_error < 0.15
    assert res.n_points > 1000 and res.rmse_s < 0.005
    assert p.name == "fitted" and p.max_batch == 32 and p.startup_s == 90.0
    assert "least squares" in p.provenance.method
    assert "fitted" in res.render()


def test_fit_from_separate_samples_frame_matches_merged() -> None:
    chunks = _synthetic_chunks(TRUE, QUESTIONS[:2], jitter_s=0.0, seed=2)
    samples = chunks[["run_id", "problem_id", "sample_idx", "prompt_tokens"]].drop_duplicates()
    merged = fit_profile(chunks, name="m", date="2026-01-01").profile
    split = fit_profile(chunks.drop(columns="prompt_tokens"), samples=samples, name="m",
                        date="2026-01-01").profile
    assert split == merged
    assert merged.a == pytest.approx(TRUE.a, rel=0.02)
    assert merged.gamma == pytest.approx(TRUE.gamma, rel=0.02)


def test_fit_with_constant_batch_keeps_beta_from_base() -> None:
    base = _profile(beta=3.0e-4)
    rng = np.random.default_rng(3)
    b = np.full(400, 15.0)
    c = rng.uniform(2e3, 2e5, 400)
    y = TRUE.a + TRUE.beta * 15 - base.beta * 15 + base.beta * b + TRUE.gamma * c
    res = fit_profile(StepObservations(y, b, c, np.ones(400)), name="flat", base=base)
    assert res.fixed == ("beta",)
    assert res.profile.beta == base.beta
    assert res.profile.step_s(15, 1e5) == pytest.approx(TRUE.step_s(15, 1e5), rel=1e-9)


def test_fit_never_returns_negative_coefficients() -> None:
    rng = np.random.default_rng(4)
    b = rng.integers(1, 32, 300).astype(float)
    c = rng.uniform(1e3, 3e5, 300)
    y = 0.03 - 1e-9 * c + rng.normal(0, 1e-4, 300)  # a falling trend the model cannot express
    p = fit_profile(StepObservations(y, b, c, np.ones(300)), name="nn").profile
    assert p.a > 0 and p.beta >= 0 and p.gamma >= 0


def test_fit_input_errors() -> None:
    chunks = _synthetic_chunks(TRUE, QUESTIONS[:1], jitter_s=0.0, seed=5)
    with pytest.raises(InputError) as exc:
        fit_profile(chunks.drop(columns="t_s"), name="x", source="store.duckdb")
    assert exc.value.field == "t_s" and exc.value.source == "store.duckdb"
    with pytest.raises(InputError) as exc:
        fit_profile(chunks.drop(columns="prompt_tokens"), name="x")
    assert exc.value.field == "prompt_tokens"
    with pytest.raises(InputError):
        observations_from_chunks(chunks.assign(t_s=np.nan))


def test_read_chunks_from_a_store(tmp_path: Path) -> None:
    store = tmp_path / "t.duckdb"
    chunks = _synthetic_chunks(TRUE, QUESTIONS[:2], jitter_s=0.0, seed=6)
    samples = chunks.groupby(["run_id", "problem_id", "sample_idx"], as_index=False).agg(
        prompt_tokens=("prompt_tokens", "first"), n_tokens=("n_tokens", "max"))
    init_store(store)  # the store's own schema (read through core.store's reader)
    with duckdb.connect(str(store)) as con:
        con.register("s", samples)
        con.execute("INSERT INTO samples (run_id, problem_id, sample_idx, kind, prompt_tokens, "
                    "start_s, n_tokens, finish_reason) SELECT run_id, problem_id, sample_idx, "
                    "'cot', prompt_tokens, 0.0, n_tokens, 'stop' FROM s")
        con.register("c", chunks)
        con.execute("INSERT INTO chunks (run_id, problem_id, sample_idx, seq, t_s, n_tokens) "
                    "SELECT run_id, problem_id, sample_idx, seq, t_s, n_tokens FROM c")
    got = read_chunks(store, run_id="r")
    assert len(got) == len(chunks)
    assert fit_profile(got, name="s", date="2026-01-01").profile == fit_profile(
        chunks, name="s", date="2026-01-01").profile
    with pytest.raises(InputError, match="no timed chunks"):
        read_chunks(store, run_id="other")
    with pytest.raises(InputError, match="no such trace store"):
        read_chunks(tmp_path / "missing.duckdb")


# ---------------------------------------------------------------------------------- command


def test_calibrate_command_prints_every_shipped_profile(capsys: pytest.CaptureFixture[str]) -> None:
    assert main([]) == 0
    out = capsys.readouterr().out
    for name in SHIPPED:
        assert name in out
    assert "13,007" in out and "error" in out


def test_calibrate_command_unknown_profile(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["nope"]) == 2
    assert "nope" in capsys.readouterr().err


def test_calibration_point_kinds() -> None:
    rate = CalibrationPoint("r", "rate", 15, 150, 1000, 30.0)
    assert predict_point(TRUE, rate) == pytest.approx(1 / TRUE.step_s(15, 15 * 1150))


def test_code_workers_round_trips_and_bad_values_name_the_field(tmp_path) -> None:
    import dataclasses

    from aimo.core.hardware.profile import save_profile

    base = load_profile("h200-olympiad-tiny-w4kv8")
    assert base.code_workers == 4  # the live solver's sandbox pool on the GPU machine
    unlimited = dataclasses.replace(base, name="unlimited", code_workers=None)
    path = save_profile(unlimited, tmp_path / "unlimited.yaml")
    assert "\ncode_workers:" not in path.read_text() and load_profile(path).code_workers is None
    path = save_profile(base, tmp_path / f"{base.name}.yaml")
    assert load_profile(path) == base
    bad = tmp_path / "bad.yaml"
    bad.write_text(path.read_text().replace("code_workers: 4", "code_workers: 0"))
    with pytest.raises(InputError, match="code_workers"):
        load_profile(bad)
