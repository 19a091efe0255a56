"""Step-latency measurement (recorder/profiling, `aimo profile measure`) and its fit
(core.hardware.fit): the fit recovers known coefficients, the decode window, grids and prompts,
and the command end to end on CPU against the lmdeploy test double (installed by the tests)."""

from __future__ import annotations

import asyncio
import sys
import time

import numpy as np
import pytest
from typer.testing import CliRunner

from aimo.cli import app
from fake_lmdeploy import installed_fake_lmdeploy

from aimo.recorder import profiling as sl
from aimo.core.hardware import load_profile

runner = CliRunner()

A, BETA, GAMMA = 0.011, 4.5e-5, 7.2e-8


def synthetic_rows(noise: float = 0.0, seed: int = 0, a: float = A, beta: float = BETA,
                   gamma: float = GAMMA) -> list[sl.StepRow]:
    rng = np.random.default_rng(seed)
    rows = []
    for cell in sl.GRIDS["full"]:
        for k in range(4):
            ctx = cell.batch * (cell.prompt_tokens + 16 + 32 * k)
            step = (a + beta * cell.batch + gamma * ctx) * (1 + noise * rng.standard_normal())
            rows.append(sl.StepRow(8, cell.batch, float(ctx), step, cell.prompt_tokens, 31.0, "g"))
    return rows


# ------------------------------------------------------------------------------------------- fit


def test_fit_recovers_known_coefficients() -> None:
    exact = sl.fit_step_model(synthetic_rows())
    assert (exact.a, exact.beta, exact.gamma) == pytest.approx((A, BETA, GAMMA), rel=1e-3)
    assert exact.rel_error.p90 < 1e-3 and exact.n_rows == 72 and exact.zeroed == ()
    noisy = sl.fit_step_model(synthetic_rows(noise=0.005, seed=1))
    assert noisy.a == pytest.approx(A, rel=0.01)
    assert noisy.gamma == pytest.approx(GAMMA, rel=0.02)
    assert noisy.beta == pytest.approx(BETA, rel=0.15)  # beta is ~0.4%..13% of a step here
    assert 0.001 < noisy.rel_error.median < 0.01
    assert set(noisy.alternatives) >= {sl.LINEAR, "+delta*b*C", "a_b per batch size+gamma*C"}
    text = noisy.render()
    assert "median" in text and "p90" in text and "gamma=" in text


def test_fit_pins_a_negative_coefficient_to_zero() -> None:
    rows = synthetic_rows(beta=-2e-5)  # step falls with b: no profile can say so
    fit = sl.fit_step_model(rows)
    assert fit.zeroed == ("beta",) and fit.beta == 0.0 and fit.a > 0 and fit.gamma > 0


def test_fit_needs_rows() -> None:
    with pytest.raises(ValueError, match="at least 3"):
        sl.fit_step_model(synthetic_rows()[:2])


def test_lsq_relative_weights_and_errors() -> None:
    y = np.array([1.0, 2.0, 4.0])
    coef, pred = sl.lsq(y, {"k": np.array([1.0, 2.0, 4.0])})
    assert coef["k"] == pytest.approx(1.0) and pred == pytest.approx(y)
    err = sl.rel_errors(np.array([1.0, 1.0]), np.array([1.1, 0.8]))
    assert (err.max, err.median) == pytest.approx((0.2, 0.15))


def test_csv_round_trip(tmp_path) -> None:
    rows = synthetic_rows()[:5]
    path = sl.write_rows_csv(tmp_path / "s.csv", rows)
    sl.write_rows_csv(path, rows[:2], append=True)
    back = sl.read_rows_csv(path)
    assert len(back) == 7 and back[0].batch == rows[0].batch
    assert back[0].step_s == pytest.approx(rows[0].step_s, abs=1e-6)
    assert path.read_text().splitlines()[0] == ",".join(sl.CSV_COLUMNS)


# ---------------------------------------------------------------------------------------- window


def chunks(start: float, step: float, n: int, per_chunk: int = 1) -> list[tuple[float, int]]:
    return [(start + step * k, k) for k in range(per_chunk, n + 1, per_chunk)]


def test_window_over_the_stretch_where_all_decode() -> None:
    # sample 1 starts 5 steps late and ends 5 steps late: the window runs from its first chunk
    # (token 1) + 2 tokens to the last chunk of sample 0
    per = {0: chunks(0.1, 0.01, 100), 1: chunks(0.15, 0.01, 100)}
    w = sl.window_rows(per, {0: 500, 1: 700})
    assert w.t0 == pytest.approx(0.15 + 0.03) and w.t1 == pytest.approx(0.1 + 1.0)
    assert w.step_s_all == pytest.approx(0.01) and w.steps == pytest.approx(92)
    assert len(w.rows) == 3  # 92 steps: 3 sub-windows of >= 24
    for row in w.rows:
        assert row.step_s == pytest.approx(0.01)
        mid = 0.5 * (row.t_lo + row.t_hi)
        assert row.context_total == pytest.approx(1200 + (mid - 0.1) / 0.01 + (mid - 0.15) / 0.01)


def test_window_interpolates_multi_token_chunks() -> None:
    per = {i: chunks(0.02 * i, 0.004, 128, per_chunk=4) for i in range(4)}
    w = sl.window_rows(per, dict.fromkeys(range(4), 100))
    assert len(w.rows) == 4
    assert [r.step_s for r in w.rows] == pytest.approx([0.004] * 4, rel=1e-6)


def test_window_too_short_or_empty_gives_no_rows() -> None:
    short = sl.window_rows({0: chunks(0, 0.01, 10)}, {0: 10})
    assert short.rows == () and short.steps < 12
    assert sl.window_rows({0: [], 1: chunks(0, 0.01, 50)}, {0: 1, 1: 1}) == sl.Window()
    # the late sample starts after the early one ended: no common stretch
    apart = sl.window_rows({0: chunks(0, 0.01, 50), 1: chunks(1.0, 0.01, 50)}, {0: 1, 1: 1})
    assert apart.rows == ()


# ---------------------------------------------------------------------------- grid and prompts


def test_cells_and_grids() -> None:
    assert sl.parse_cells("1x512, 8X4096,") == (sl.Cell(1, 512), sl.Cell(8, 4096))
    for bad in ("", "8", "8x", "ax512", "0x512", "8x-1"):
        with pytest.raises(ValueError):
            sl.parse_cells(bad)
    assert len(sl.grid_cells("quick")) == 8 and len(sl.grid_cells("full")) == 18
    with pytest.raises(ValueError, match="quick"):
        sl.grid_cells("huge")
    for cell in sl.GRIDS["quick"] + sl.GRIDS["full"]:  # prefill ends before decode starts
        assert cell.batch < 16 or cell.batch * cell.prompt_tokens % 8192 == 0


class GreedyTokenizer:
    """A toy subword tokenizer: longest match over a vocabulary of letters, ' ', some pairs
    (so drawn pieces merge across their joins) and special tokens."""

    def __init__(self) -> None:
        self.vocab = list("abcdefgh ") + ["ab", "ba", "ca", " a", "<|im_end|>", "\x00"]
        self.ids = {t: i for i, t in enumerate(self.vocab)}

    def encode(self, s: str) -> list[int]:
        out, i = [], 0
        while i < len(s):
            for n in (10, 2, 1):
                if s[i:i + n] in self.ids:
                    out.append(self.ids[s[i:i + n]])
                    i += n
                    break
            else:
                raise ValueError(s[i])
        return out

    def decode(self, ids: list[int]) -> str:
        return "".join(self.vocab[i] for i in ids)


def test_tokenizer_prompts_have_exact_length_and_no_specials() -> None:
    g = GreedyTokenizer()
    tok = sl.TextTokenizer(g.encode, g.decode, len(g.vocab), frozenset({13}))
    source = sl.TokenizerPrompts.from_tokenizer(tok)
    assert "<|im_end|>" not in source.pieces and "\x00" not in source.pieces  # special, unprintable
    rng = np.random.default_rng(0)
    for n in (1, 7, 300, 2048):
        text = source.make(n, rng)
        assert len(g.encode(text)) == n and "<|" not in text
    letters = sl.LetterPrompts().make(500, rng)
    assert len(letters) == 500 and letters.isascii() and letters[0] != " "


def test_prompt_source_without_tokenizer_falls_back_to_letters(tmp_path) -> None:
    assert isinstance(sl.prompt_source(tmp_path), sl.LetterPrompts)


# ------------------------------------------------------------------------- prefill, calibration


def result(cell: sl.Cell, first_last: float, kind: sl.CellKind = "cell") -> sl.CellResult:
    return sl.CellResult(cell, kind, 128, 1.0, (cell.prompt_tokens,) * cell.batch,
                         (0.01, first_last), ("length",), (128,) * cell.batch, 128,
                         sl.Window())


def test_measured_prefill_uses_large_prompts_only() -> None:
    rs = [result(sl.Cell(1, 512), 5.0), result(sl.Cell(32, 4096), 13.1072),
          result(sl.Cell(1, 16384), 1.6384), result(sl.Cell(32, 1024), 100.0, kind="warmup")]
    pre = sl.measured_prefill(rs)
    assert pre is not None and pre.cells == 2
    assert pre.s_per_token == pytest.approx(1e-4)
    assert sl.measured_prefill(rs[:1]) is None


def test_calibration_points_one_per_cell() -> None:
    points = sl.calibration_points(synthetic_rows())
    assert len(points) == 18 and all(p.kind == "rate" for p in points)
    p = points[0]
    assert (p.batch, p.prompt_tokens) == (1, 512)
    assert p.observed == pytest.approx(1 / (A + BETA + GAMMA * (512 + 64)), rel=1e-3)


# ---------------------------------------------------------------------------------- measure loop


class FailingEngine:
    """Fails every question of more than one sequence; records what it was asked."""

    def __init__(self) -> None:
        self.asked: list[str] = []

    async def start_question(self, qid, question, specs, sampling):  # noqa: ANN001, ANN201
        self.asked.append(qid)
        raise RuntimeError("engine broke")


def test_measure_grid_skips_what_does_not_fit_and_stops_on_failure() -> None:
    engine = FailingEngine()
    seen: list[sl.CellEvent] = []
    events = asyncio.run(sl.measure_grid(
        engine, [sl.Cell(32, 100_000), sl.Cell(1, 512), sl.Cell(2, 512)], new_tokens=64,
        prompts=sl.LetterPrompts(), until=time.time() + 60, warmup=(), on_event=seen.append))
    assert [e.status for e in events] == ["skipped", "error"]  # the third cell is not tried
    assert events[0].est_s > events[0].left_s and "engine broke" in events[1].error
    assert engine.asked == ["b1-c512"] and seen == list(events)
    assert "skipped" in sl.describe_event(events[0]) and "FAILED" in sl.describe_event(events[1])
    assert sl.default_warmups(sl.GRIDS["quick"]) == (
        sl.Cell(1, 256), sl.Cell(8, 256), sl.Cell(32, 256), sl.Cell(1, 16384))


# ------------------------------------------------------------------------------------------- CLI


def test_measure_missing_model_dir_names_the_option(tmp_path) -> None:
    missing = tmp_path / "no-model"
    res = runner.invoke(app, ["profile", "measure", "--model", str(missing), "--name", "x",
                              "--out", str(tmp_path / "x.yaml"), "--fake"])
    assert res.exit_code == 2
    assert "--model" in res.output and str(missing) in res.output
    assert not (tmp_path / "x.yaml").exists()


@pytest.mark.parametrize("args, option", [
    (["--cells", "8x"], "--cells"),
    (["--grid", "huge"], "--grid"),
    (["--cells", "32x512", "--max-batch", "16"], "--max-batch"),
    (["--backend", "vllm"], "--backend"),
    (["--quant-policy", "3"], "--quant-policy"),
    (["--until", "1000"], "--until"),
    (["--base", "no-such-profile"], "no-such-profile"),
    (["--name", "bad name!"], "name"),
])
def test_measure_bad_input_exits_before_the_engine(tmp_path, args, option) -> None:
    before = sys.modules.get("lmdeploy")
    res = runner.invoke(app, ["profile", "measure", "--model", str(tmp_path), "--name", "x",
                              "--out", str(tmp_path / "x.yaml"), "--fake", *args])
    assert res.exit_code == 2, res.output
    assert option in res.output
    assert sys.modules.get("lmdeploy") is before


def test_measure_fake_end_to_end_writes_a_loadable_profile(tmp_path) -> None:
    out, csv_path = tmp_path / "h-fake.yaml", tmp_path / "steps.csv"
    model = tmp_path / "model"
    model.mkdir()
    (model / "config.json").write_text('{"model_type": "qwen2", "num_hidden_layers": 4, '
                                       '"hidden_size": 256, "vocab_size": 1000, '
                                       '"quantization_config": {"quant_method": "awq", "bits": 4}}')
    before = sys.modules.get("lmdeploy")
    with installed_fake_lmdeploy():
        res = runner.invoke(app, [
            "profile", "measure", "--model", str(model), "--name", "h-fake", "--out", str(out),
            "--cells", "1x512,8x256,4x4096,2x8192", "--new-tokens", "64", "--csv", str(csv_path),
            "--fake"])
    assert res.exit_code == 0, res.output
    assert sys.modules.get("lmdeploy") is before  # the test double is removed again
    assert "fit error (relative): median" in res.output and "wrote" in res.output
    prof = load_profile(out)
    assert prof.name == "h-fake" and 0.0015 < prof.a < 0.02  # the double sleeps 2 ms a step
    base = load_profile("l4x4-14b-w4kv8")
    assert (prof.startup_s, prof.max_batch, prof.code_overlap) == (
        base.startup_s, base.max_batch, base.code_overlap)
    assert "measured, median over 2 cell(s)" in prof.provenance.notes  # 4x4096, 2x8192
    assert "Fit error of a+beta*b+gamma*C" in prof.provenance.notes  # 4 cells: no knee
    assert "qwen2 (4 layers, hidden 256, vocab 1000), AWQ 4-bit weights" in prof.description
    assert str(csv_path) in prof.provenance.source
    assert len(prof.calibration) == 4
    rows = sl.read_rows_csv(csv_path)
    assert {r.batch for r in rows} == {1, 2, 4, 8} and all(r.gpu.startswith("fake") for r in rows)
    shown = runner.invoke(app, ["profile", "show", str(out)])
    assert shown.exit_code == 0 and "h-fake" in shown.output


def test_prompts_from_a_real_small_vocabulary_tokenizer(tmp_path) -> None:
    """The tiny model's byte-level BPE (~1k ids, ChatML specials): random ids of its vocabulary
    re-encode to the exact prompt length."""
    pytest.importorskip("tokenizers")
    from aimo.recorder.tiny_model import train_tokenizer

    vocab = train_tokenizer(tmp_path, 1024)
    tok = sl.load_tokenizer(tmp_path)
    assert tok is not None and tok.vocab_size == vocab and len(tok.special_ids) == 3
    source = sl.prompt_source(tmp_path)
    assert isinstance(source, sl.TokenizerPrompts) and 200 < len(source.pieces) < vocab
    rng = np.random.default_rng(0)
    for n in (16, 512, 4096):
        text = source.make(n, rng)
        assert len(tok.encode(text)) == n and "<|im_" not in text


def test_measure_fake_needs_the_double_installed(tmp_path) -> None:
    """Product code never installs the test double: --fake without it is refused."""
    model = tmp_path / "model"
    model.mkdir()
    res = runner.invoke(app, ["profile", "measure", "--model", str(model), "--name", "x",
                              "--out", str(tmp_path / "x.yaml"), "--fake", "--cells", "1x512"])
    assert res.exit_code == 2 and "test double" in res.output
    assert not (tmp_path / "x.yaml").exists()
