"""Synthetic trace stores calibrated to a 14B R1-distill model on AIME-level problems.

Why: the simulator, tuner and dashboard need realistic traces on a fresh machine without a GPU.
The generator is a pure function of (profile, seed, sizes): `synthesize_questions` yields the
tables of each question; `synthesize_store` writes them through `core.store.TraceWriter`.
The statistical model and its calibration targets are described in docs/synthetic.md.
"""

from __future__ import annotations

import math
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pyarrow as pa

from aimo.recorder.synth_profiles import (
    DEFAULT_PROFILE,
    ConfidenceModel,
    SynthProfile,
    Tier,
    get_profile,
)
from aimo.core.errors import InputError
from aimo.core.store.records import SampleConfidence
from aimo.core.traces import LogprobSetting, RunInfo

if TYPE_CHECKING:
    from rich.progress import Progress

GENERATOR_VERSION = 1
SOURCE = "synthesize_store"

# Short filler text per chunk (one chunk stands for `chunk_tokens` tokens).
_FILLER = (
    "Let me think. ",
    "So we have ",
    "which gives ",
    "Check: ",
    "Then ",
    "Wait, ",
    "Hence ",
    "Now consider ",
)
_THINK_OPEN = "<think>\n"
# Code that reproduces its recorded outcome when run: (snippet, error text) for exec errors.
_EXEC_ERRORS = (
    ("x = solve()\nprint(x)", "NameError: name 'solve' is not defined"),
    ("print(1 // 0)", "ZeroDivisionError: integer division or modulo by zero"),
    ("vals = [1, 2, 3]\nprint(vals[3])", "IndexError: list index out of range"),
    ("from math import comb\nprint(comb(5))", "TypeError: comb expected 2 arguments, got 1"),
    ("print(int('12a'))", "ValueError: invalid literal for int() with base 10: '12a'"),
)
_TIMEOUT_CODE = "import itertools\nprint(sum(1 for _ in itertools.count()))"
_FAIL_PARSE_CODE = "print('no solution found')"
_SMALL_OR_ROUND = tuple(range(21)) + tuple(range(100, 1000, 100))


@dataclass(frozen=True)
class ProblemSpec:
    """Latent parameters of one synthetic problem (the generator's ground truth)."""

    problem_id: str
    position: int
    tier: str
    answer: int
    p_right: float
    median_tokens: float
    attractors: tuple[int, ...]
    attractor_weights: tuple[float, ...]
    attractor_share: float
    prompt_tokens: int


@dataclass(frozen=True)
class Mention:
    """One answer event inside a sample: a boxed answer or a code block's result."""

    token_pos: int
    source: str  # 'boxed' | 'code'
    value: int | None
    code: str | None = None
    code_ok: bool | None = None
    exec_ms: float | None = None
    error: str | None = None


@dataclass(frozen=True)
class SampleSpec:
    """One synthetic sample: its length, how it ended, and its answer events in token order."""

    sample_idx: int
    kind: str
    n_tokens: int
    finish_reason: str
    mentions: tuple[Mention, ...]
    right: bool = False  # the latent draw: its final answer would be the truth


@dataclass(frozen=True)
class QuestionTables:
    """Everything `TraceWriter.write_question` takes for one question (Arrow tables)."""

    spec: ProblemSpec
    question: str
    samples: pa.Table
    chunks: pa.Table
    answers: pa.Table
    wall_s: float
    confidence: dict[int, SampleConfidence] | None = None


@dataclass(frozen=True)
class SynthSummary:
    """What `synthesize_store` wrote, for the CLI."""

    path: Path
    run_id: str
    profile: str
    seed: int
    n_problems: int
    n_samples: int
    n_chunks: int
    n_answers: int
    mean_tokens: float
    sample_accuracy: float
    elapsed_s: float
    size_bytes: int

    def render(self) -> str:
        return "\n".join(
            [
                f"synthetic store {self.path} (run {self.run_id}, profile {self.profile}, seed {self.seed})",
                f"  {self.n_problems} problems x {self.n_samples} samples, {self.n_chunks} chunks, "
                f"{self.n_answers} answers",
                f"  mean output {self.mean_tokens:,.0f} tokens, {self.sample_accuracy:.1%} of samples right",
                f"  written in {self.elapsed_s:.1f} s, {self.size_bytes / 1e6:.1f} MB on disk",
            ]
        )


def decode_time_table(profile: SynthProfile) -> np.ndarray:
    """Seconds to decode the first n tokens of a sequence, for n = 0..max_new_tokens (placeholder curve)."""
    rc = profile.rate
    n = np.arange(profile.max_new_tokens + 1, dtype=np.float64)
    rate = rc.start_tok_s - (rc.start_tok_s - rc.end_tok_s) * (n / rc.at_tokens) ** rc.power
    rate = np.maximum(rate, rc.min_tok_s)
    return np.concatenate([[0.0], np.cumsum(1.0 / rate[:-1])])


def _tier_counts(tiers: tuple[Tier, ...], n: int) -> list[int]:
    """Problems per tier by largest remainder, so small stores keep the profile's mix."""
    total = sum(t.weight for t in tiers)
    exact = [t.weight / total * n for t in tiers]
    counts = [int(math.floor(x)) for x in exact]
    order = sorted(range(len(tiers)), key=lambda i: exact[i] - counts[i], reverse=True)
    for i in order[: n - sum(counts)]:
        counts[i] += 1
    return counts


def _truth_answers(rng: np.random.Generator, n: int, small_share: float) -> list[int]:
    """Ground-truth answers: mostly uniform over 21..999 (not x00), a share small or round."""
    n_small = int(round(small_share * n))
    is_small = np.zeros(n, bool)
    is_small[rng.permutation(n)[:n_small]] = True
    out: list[int] = []
    for small in is_small:
        if small:
            out.append(int(rng.choice(_SMALL_OR_ROUND)))
        else:
            while True:
                v = int(rng.integers(21, 1000))
                if v % 100:
                    break
            out.append(v)
    return out


def _attractors(rng: np.random.Generator, truth: int, k: int) -> tuple[int, ...]:
    """`k` distinct wrong values that wrong samples gravitate to: near misses, small values or random."""
    near = [truth + 1, truth - 1, truth + 2, (2 * truth) % 1000, 999 - truth, (truth + 500) % 1000]
    picked: list[int] = []
    while len(picked) < k:
        u = rng.random()
        if u < 0.35:
            v = int(near[rng.integers(len(near))]) % 1000
        elif u < 0.5:
            v = int(rng.integers(0, 4))
        else:
            v = int(rng.integers(0, 1000))
        if v != truth and v not in picked:
            picked.append(v)
    return tuple(picked)


def problem_specs(profile: SynthProfile, n_problems: int, seed: int) -> list[ProblemSpec]:
    """Latent parameters of every problem; a pure function of (profile, n_problems, seed)."""
    rng = np.random.default_rng([seed, 0])
    counts = _tier_counts(profile.tiers, n_problems)
    tiers = [t for t, c in zip(profile.tiers, counts) for _ in range(c)]
    tiers = [tiers[i] for i in rng.permutation(n_problems)]
    truths = _truth_answers(rng, n_problems, profile.small_answer_share)
    width = max(3, len(str(n_problems)))
    specs = []
    for i, (tier, truth) in enumerate(zip(tiers, truths)):
        prng = np.random.default_rng([seed, 1, i])
        k = int(prng.integers(tier.n_attractors[0], tier.n_attractors[1] + 1))
        attractors = _attractors(prng, truth, k)
        weights = np.sort(prng.dirichlet(np.ones(k)))[::-1]
        specs.append(
            ProblemSpec(
                problem_id=f"syn-{i + 1:0{width}d}",
                position=i,
                tier=tier.name,
                answer=truth,
                p_right=float(prng.uniform(*tier.p_right)),
                median_tokens=float(prng.uniform(*tier.median_tokens)),
                attractors=attractors,
                attractor_weights=tuple(float(w) for w in weights),
                attractor_share=tier.attractor_share,
                prompt_tokens=int(prng.integers(90, 260)),
            )
        )
    return specs


def _wrong_value(rng: np.random.Generator, spec: ProblemSpec, avoid: int | None = None) -> int:
    """A wrong answer: an attractor with probability `attractor_share`, else uniform on 0..999."""
    while True:
        if spec.attractors and rng.random() < spec.attractor_share:
            v = int(spec.attractors[rng.choice(len(spec.attractors), p=spec.attractor_weights)])
        else:
            v = int(rng.integers(0, 1000))
        if v != spec.answer and v != avoid:
            return v


def _shift(p: float, logit: float) -> float:
    """Move a probability by `logit` on the logit scale (clipped away from 0 and 1)."""
    p = min(max(p, 1e-4), 1 - 1e-4)
    return 1.0 / (1.0 + math.exp(-(math.log(p / (1 - p)) + logit)))


@dataclass(frozen=True)
class CodeOutcome:
    """How a sample's code block ran: `ok` prints the value; otherwise `code` reproduces the failure."""

    ok: bool
    code_ok: bool
    exec_ms: float
    code: str | None = None
    error: str | None = None

    def mention(self, token_pos: int, value: int) -> Mention:
        """The code answer row at `token_pos`; a successful run prints `value`."""
        if self.ok:
            return Mention(token_pos, "code", value, f"result = {value}\nprint(result)", True, self.exec_ms)
        return Mention(token_pos, "code", None, self.code, self.code_ok, self.exec_ms, self.error)


def _code_outcome(rng: np.random.Generator, profile: SynthProfile) -> CodeOutcome:
    """Draw a code block's result: ok, exec error, 30 s timeout, or no integer in the output."""
    cm = profile.code
    u = rng.random()
    ms = round(float(cm.exec_ms_median * math.exp(cm.exec_ms_sigma * rng.standard_normal())), 1)
    if u < cm.exec_error:
        if rng.random() < cm.timeout_share:
            err = f"TimeoutError: code ran longer than {cm.timeout_s:g} s"
            return CodeOutcome(False, False, cm.timeout_s * 1000.0, _TIMEOUT_CODE, err)
        code, err = _EXEC_ERRORS[rng.integers(len(_EXEC_ERRORS))]
        return CodeOutcome(False, False, ms, code, err)
    if u < cm.exec_error + cm.fail_parse:
        return CodeOutcome(False, True, ms, _FAIL_PARSE_CODE)
    return CodeOutcome(True, True, ms)


def _would_be_length(rng: np.random.Generator, profile: SynthProfile, spec: ProblemSpec, kind: str,
                     right: bool) -> int:
    """Tokens the model would write without a cap: lognormal around the problem's median."""
    median = spec.median_tokens * (1.0 if right else profile.wrong_length_factor)
    if kind == "code":
        median *= profile.code_length_factor
    return max(profile.min_tokens, int(round(median * math.exp(profile.length_sigma * rng.standard_normal()))))


def _mention_fracs(rng: np.random.Generator, profile: SynthProfile, k: int, capped: bool) -> list[float]:
    """Positions of the first answer and its `k` re-statements, as fractions of the would-be length."""
    am = profile.answers
    if k == 0:
        return [float(rng.uniform(*am.last_frac))]
    first = float(rng.uniform(*(am.first_frac_long if capped else am.first_frac)))
    last = float(rng.uniform(*am.last_frac))
    return [first, *np.sort(rng.uniform(first, last, size=k - 1)).tolist(), last]


def _mention_values(
    rng: np.random.Generator, profile: SynthProfile, spec: ProblemSpec, final: int, right: bool, n: int
) -> list[int]:
    """The value of each mention: the final answer, except before a (rare) flip."""
    values = [final] * n
    am = profile.answers
    if n >= 2 and rng.random() < am.flip_rate:
        j = int(rng.integers(1, n))
        if right or rng.random() >= am.flip_from_right:
            earlier = _wrong_value(rng, spec, avoid=final)
        else:
            earlier = spec.answer
        values[:j] = [earlier] * j
    return values


def sample_spec(
    rng: np.random.Generator, profile: SynthProfile, spec: ProblemSpec, sample_idx: int
) -> SampleSpec:
    """Draw one sample: kind by index parity, right or wrong, length, and its answer events.

    Events are placed at chunk ends (where a streaming extractor sees them), one per chunk;
    those beyond the token cap are dropped.
    """
    kind = "cot" if sample_idx % 2 == 0 else "code"
    writes_code = kind == "code" and rng.random() >= profile.code.no_code
    p = _shift(spec.p_right, profile.code.logit_shift) if writes_code else spec.p_right
    right = bool(rng.random() < p)
    final = spec.answer if right else _wrong_value(rng, spec)
    would = _would_be_length(rng, profile, spec, kind, right)
    n_tokens = min(would, profile.max_new_tokens)
    finish = "length" if would > profile.max_new_tokens else "stop"

    code = _code_outcome(rng, profile) if writes_code else None
    k = int(rng.choice(len(profile.answers.repeat_probs), p=profile.answers.repeat_probs))
    if k == 0 and code is not None and not code.ok:
        k = 1  # a failed code run is followed by a boxed answer
    fracs = _mention_fracs(rng, profile, k, capped=finish == "length")
    values = _mention_values(rng, profile, spec, final, right, len(fracs))

    mentions: list[Mention] = []
    ct, prev = profile.chunk_tokens, 0
    for i, (frac, value) in enumerate(zip(fracs, values)):
        pos = int(math.ceil(frac * would))
        q = max(min(int(math.ceil(pos / ct)) * ct, n_tokens), prev + ct)
        if pos > n_tokens or q > n_tokens:
            break  # the cap cut the sample before this answer
        prev = q
        mentions.append(code.mention(q, value) if i == 0 and code is not None else Mention(q, "boxed", value))
    return SampleSpec(sample_idx, kind, n_tokens, finish, tuple(mentions), right)


def _dip(values: np.ndarray, end: int, length: int, depth: float) -> None:
    """Lower `values[end - length:end]` by `depth` (in place), clipped to the array."""
    values[max(0, end - length) : max(0, min(end, values.size))] -= depth


def sample_confidence(
    rng: np.random.Generator, model: ConfidenceModel, sample: SampleSpec
) -> SampleConfidence:
    """Per-token confidence and top-k entropy of one sample (see `ConfidenceModel`).

    Draws only from `rng` (its own stream), so switching confidence on changes nothing else.
    """
    n = sample.n_tokens
    level = rng.normal(model.mean_right if sample.right else model.mean_wrong, model.sd_between)
    n_blocks = -(-n // model.drift_block) if n else 0
    steps = rng.normal(0.0, model.drift_sd, n_blocks)
    drift = np.zeros(n_blocks)
    for i in range(1, n_blocks):
        drift[i] = model.drift_phi * drift[i - 1] + steps[i]
    conf = level + np.repeat(drift, model.drift_block)[:n] + rng.normal(0.0, model.sd_token, n)
    rate = model.dips_per_10k_right if sample.right else model.dips_per_10k_wrong
    for _ in range(int(rng.poisson(rate * n / 10_000))):
        length = int(rng.integers(model.dip_tokens[0], model.dip_tokens[1] + 1))
        _dip(conf, int(rng.integers(1, n + 1)), length, float(rng.uniform(*model.dip_depth)))
    final = [m for m in sample.mentions if m.value is not None]
    p_answer_dip = model.answer_dip_right if sample.right else model.answer_dip_wrong
    if final and rng.random() < p_answer_dip:
        first = next(m.token_pos for m in final if m.value == final[-1].value)
        length = int(rng.integers(model.dip_tokens[0], model.dip_tokens[1] + 1))
        _dip(conf, first, length, float(rng.uniform(*model.answer_dip_depth)))
    conf = np.clip(conf, model.floor, model.ceil)
    ln_k = math.log(model.top_k)
    spread = np.exp(rng.normal(0.0, model.entropy_sd, n) + rng.normal(0.0, model.entropy_sample_sd))
    entropy = np.clip(ln_k * np.exp(-conf / model.entropy_scale) * spread, 0.0, ln_k)
    return SampleConfidence(conf.astype(np.float32), entropy.astype(np.float32))


def _question_text(spec: ProblemSpec) -> str:
    return f"Synthetic AIME-level problem {spec.position + 1} ({spec.tier}). The answer is an integer 0..999."


def question_tables(
    profile: SynthProfile, spec: ProblemSpec, samples: list[SampleSpec], times: np.ndarray
) -> QuestionTables:
    """Turn sample specs into the samples/chunks/answers tables, with placeholder timestamps.

    Samples are prefilled one after another at `prefill_tok_s`, then decode at the curve of
    `decode_time_table`; a code answer's time is the block's chunk time plus its execution time.
    """
    ct = profile.chunk_tokens
    filler = np.array(_FILLER, dtype=object)
    s_cols: dict[str, list] = {k: [] for k in ("sample_idx", "kind", "prompt_tokens", "start_s", "end_s",
                                               "n_tokens", "finish_reason")}
    a_cols: dict[str, list] = {k: [] for k in ("sample_idx", "token_pos", "t_s", "source", "value",
                                               "code_ok", "exec_ms", "error")}
    c_idx, c_seq, c_t, c_tok, c_text = [], [], [], [], []
    for s in samples:
        start = round((s.sample_idx + 1) * spec.prompt_tokens / profile.rate.prefill_tok_s, 3)
        end = round(start + float(times[s.n_tokens]), 3)
        for key, v in zip(s_cols, (s.sample_idx, s.kind, spec.prompt_tokens, start, end, s.n_tokens,
                                   s.finish_reason)):
            s_cols[key].append(v)
        n_chunks = -(-s.n_tokens // ct)
        seq = np.arange(n_chunks)
        tok = np.minimum((seq + 1) * ct, s.n_tokens)
        text = filler[seq % len(_FILLER)].copy()
        text[0] = _THINK_OPEN + text[0]
        for m in s.mentions:
            i = -(-m.token_pos // ct) - 1
            if m.source == "boxed":
                text[i] = f"{text[i]}so the answer is \\boxed{{{m.value}}}. "
            else:
                text[i] = f"{text[i]}\n```python\n{m.code}\n```\n"
            exec_s = (m.exec_ms or 0.0) / 1000.0 if m.source == "code" else 0.0
            t = round(start + float(times[m.token_pos]) + exec_s, 3)
            for key, v in zip(a_cols, (s.sample_idx, m.token_pos, t, m.source, m.value, m.code_ok,
                                       m.exec_ms, m.error)):
                a_cols[key].append(v)
        c_idx.append(np.full(n_chunks, s.sample_idx, np.int32))
        c_seq.append(seq.astype(np.int32))
        c_tok.append(tok.astype(np.int32))
        c_t.append(np.round(start + times[tok], 3))  # ms precision: compresses well in DuckDB
        c_text.append(text)
    samples_t = pa.table(
        {
            "sample_idx": pa.array(s_cols["sample_idx"], pa.int32()),
            "kind": pa.array(s_cols["kind"], pa.string()),
            "prompt_tokens": pa.array(s_cols["prompt_tokens"], pa.int32()),
            "start_s": pa.array(s_cols["start_s"], pa.float64()),
            "end_s": pa.array(s_cols["end_s"], pa.float64()),
            "n_tokens": pa.array(s_cols["n_tokens"], pa.int32()),
            "finish_reason": pa.array(s_cols["finish_reason"], pa.string()),
        }
    )
    chunks_t = pa.table(
        {
            "sample_idx": pa.array(np.concatenate(c_idx)),
            "seq": pa.array(np.concatenate(c_seq)),
            "t_s": pa.array(np.concatenate(c_t)),
            "n_tokens": pa.array(np.concatenate(c_tok)),
            "text": pa.array(np.concatenate(c_text).tolist(), pa.string()),
        }
    )
    answers_t = pa.table(
        {
            "sample_idx": pa.array(a_cols["sample_idx"], pa.int32()),
            "token_pos": pa.array(a_cols["token_pos"], pa.int32()),
            "t_s": pa.array(a_cols["t_s"], pa.float64()),
            "source": pa.array(a_cols["source"], pa.string()),
            "value": pa.array(a_cols["value"], pa.int32()),
            "code_ok": pa.array(a_cols["code_ok"], pa.bool_()),
            "exec_ms": pa.array(a_cols["exec_ms"], pa.float64()),
            "error": pa.array(a_cols["error"], pa.string()),
        }
    )
    wall = max(max(s_cols["end_s"]), max(a_cols["t_s"], default=0.0))
    return QuestionTables(spec, _question_text(spec), samples_t, chunks_t, answers_t, wall)


def synthesize_questions(
    n_problems: int = 50, n_samples: int = 32, seed: int = 0, profile: str | SynthProfile = DEFAULT_PROFILE,
    *, confidence: bool = False,
) -> Iterator[QuestionTables]:
    """Yield the tables of each synthetic question in position order; pure in its arguments.

    With `confidence`, each question also carries per-token confidence arrays, drawn from their
    own random streams: the other tables are the same with or without it.
    """
    prof = get_profile(profile) if isinstance(profile, str) else profile
    _check_sizes(n_problems, n_samples)
    times = decode_time_table(prof)
    for spec in problem_specs(prof, n_problems, seed):
        rng = np.random.default_rng([seed, 2, spec.position])
        samples = [sample_spec(rng, prof, spec, j) for j in range(n_samples)]
        tables = question_tables(prof, spec, samples, times)
        if confidence:
            conf = {
                s.sample_idx: sample_confidence(
                    np.random.default_rng([seed, 3, spec.position, s.sample_idx]), prof.confidence, s
                )
                for s in samples
            }
            tables = replace(tables, confidence=conf)
        yield tables


# Far beyond any competition, small enough that a typo cannot run for days or fill the disk.
MAX_PROBLEMS = 100_000
MAX_SAMPLES = 1024


def _check_sizes(n_problems: int, n_samples: int) -> None:
    if not isinstance(n_problems, int) or not 1 <= n_problems <= MAX_PROBLEMS:
        raise InputError(SOURCE, "n_problems", f"must be an integer 1..{MAX_PROBLEMS:,}, got {n_problems!r}")
    if not isinstance(n_samples, int) or not 1 <= n_samples <= MAX_SAMPLES:
        raise InputError(SOURCE, "n_samples", f"must be an integer 1..{MAX_SAMPLES:,}, got {n_samples!r}")


def run_info(
    prof: SynthProfile, n_problems: int, n_samples: int, seed: int, confidence: bool = False
) -> RunInfo:
    """The `runs` row of a synthetic store; `gen_config` records how to regenerate it."""
    extra = {"confidence": True} if confidence else {}
    logprobs = LogprobSetting(prof.confidence.top_k, "synthetic", "synthetic") if confidence else None
    return RunInfo(
        run_id=f"synthetic-{prof.name}-s{seed}",
        kind="synthetic",
        model=f"synthetic:{prof.name}",
        backend="synthetic",
        hardware="placeholder rate curve (4xL4 batch 15, 36->20 tok/s)",
        gen_config={
            "generator": "aimo.recorder.synth",
            "generator_version": GENERATOR_VERSION,
            "profile": prof.name,
            "seed": seed,
            "n_problems": n_problems,
            "n_samples": n_samples,
            "max_new_tokens": prof.max_new_tokens,
            "chunk_tokens": prof.chunk_tokens,
            **extra,
        },
        notes=prof.description,
        logprobs=logprobs,
    )


def _want_progress(progress: bool | None) -> bool:
    return sys.stderr.isatty() if progress is None else progress


def synthesize_store(
    out: str | Path,
    n_problems: int = 50,
    n_samples: int = 32,
    seed: int = 0,
    profile: str = DEFAULT_PROFILE,
    *,
    progress: bool | None = None,
    confidence: bool = False,
    resume: bool = False,
) -> SynthSummary:
    """Write a new trace store with one `synthetic` run and return what was written.

    Args:
        out: the DuckDB file to create; it must not exist (nothing of the user's is overwritten),
            unless `resume`.
        progress: show a progress bar on stderr; default only when stderr is a terminal.
        confidence: also store per-token confidence (the rest of the store is unchanged).
        resume: continue an interrupted synthesis of the same settings in `out` (the questions are
            a pure function of the settings, so the result equals an uninterrupted run's).

    Raises:
        InputError: `out` exists (without `resume`) or cannot be written, an unknown `profile`,
            non-positive sizes, or a resume with other settings.
    """
    from aimo.core.store import ProblemRow
    from aimo.core.store.out_path import check_out_path, open_writer

    prof = get_profile(profile)
    _check_sizes(n_problems, n_samples)
    path = Path(out)
    resuming = resume and path.exists()
    if path.exists() and not resuming:
        raise InputError(str(path), "out", "already exists; synthesize writes a new store "
                         "(remove it first, or --resume an interrupted synthesis)")
    check_out_path(path, "--out", overwrite=None)
    info = run_info(prof, n_problems, n_samples, seed, confidence)
    t0 = time.perf_counter()
    n_chunks = n_answers = n_right = n_total = tokens = 0
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        writer = open_writer(path)
        if resuming:
            _check_resumable(path, info)
        writer.start_run(info, resume=resuming)
        done = writer.done_questions(info.run_id) if resuming else set()
        with _progress_bar(_want_progress(progress), n_problems) as advance:
            for q in synthesize_questions(n_problems, n_samples, seed, prof, confidence=confidence):
                problem = ProblemRow(q.spec.problem_id, q.spec.position, q.question, q.spec.answer)
                if problem.problem_id not in done:
                    writer.write_question(info.run_id, problem, q.samples, q.chunks, q.answers,
                                          wall_s=q.wall_s, confidence=q.confidence)
                n_chunks += q.chunks.num_rows
                n_answers += q.answers.num_rows
                tokens += int(np.sum(q.samples.column("n_tokens").to_numpy()))
                n_total += q.samples.num_rows
                n_right += _count_right(q)
                advance()
        writer.finish_run(info.run_id)
    except Exception:
        if not resuming:
            for leftover in (path, path.with_name(path.name + ".wal")):
                leftover.unlink(missing_ok=True)
        raise
    return SynthSummary(
        path=path,
        run_id=info.run_id,
        profile=prof.name,
        seed=seed,
        n_problems=n_problems,
        n_samples=n_samples,
        n_chunks=n_chunks,
        n_answers=n_answers,
        mean_tokens=tokens / n_total,
        sample_accuracy=n_right / n_total,
        elapsed_s=time.perf_counter() - t0,
        size_bytes=path.stat().st_size,
    )


def _check_resumable(path: Path, info: RunInfo) -> None:
    """InputError unless `path` holds this synthetic run, interrupted, with the same settings."""
    from aimo.core.store import list_runs

    runs = {r.run_id: r for r in list_runs(path)}
    run = runs.get(info.run_id)
    if run is None:
        listed = ", ".join(runs) or "none"
        raise InputError(str(path), "run_id", f"no run {info.run_id!r} to resume (runs: {listed})")
    if run.state == "finished":
        raise InputError(str(path), "run_id", f"run {info.run_id!r} is finished; nothing to resume")
    if run.gen_config != info.gen_config:
        changed = sorted(k for k in info.gen_config if run.gen_config.get(k) != info.gen_config[k])
        raise InputError(str(path), f"gen_config.{changed[0]}" if changed else "gen_config",
                         "resume with the settings of the interrupted synthesis: "
                         + ", ".join(f"{k}={run.gen_config.get(k)!r}" for k in changed))


def _count_right(q: QuestionTables) -> int:
    """Samples whose last parsed answer equals the truth."""
    last: dict[int, int] = {}
    a = q.answers.to_pydict()
    for idx, v in zip(a["sample_idx"], a["value"]):  # rows are in token order within a sample
        if v is not None:
            last[idx] = v
    return sum(v == q.spec.answer for v in last.values())


class _progress_bar:
    """Context manager yielding an `advance()` callable; a no-op unless enabled."""

    def __init__(self, enabled: bool, total: int) -> None:
        self.enabled, self.total = enabled, total
        self._progress: Progress | None = None

    def __enter__(self) -> Callable[[], None]:
        if not self.enabled:
            return lambda: None
        from rich.console import Console
        from rich.progress import Progress

        progress = self._progress = Progress(console=Console(stderr=True), transient=True)
        progress.start()
        task = progress.add_task("synthesizing questions", total=self.total)
        return lambda: progress.advance(task)

    def __exit__(self, *exc: object) -> None:
        if self._progress is not None:
            self._progress.stop()
