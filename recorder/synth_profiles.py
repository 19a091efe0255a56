"""Calibration profiles of the synthetic trace generator, and the targets each profile must meet.

A profile is plain data: a mix of difficulty tiers (per-problem accuracy and length ranges), the
within-sample answer model (first-answer position, repeats, flips), the code-prompt outcome rates,
the placeholder decode-rate curve, and the calibration targets `recorder.calibration` checks.
`r1-14b` is calibrated to the AIMO-2 2nd-place write-up (14B R1-distill, AWQ W4KV8, AIME 2025);
`easy-mix` and `hard-mix` shift the difficulty mix so the tuner can be checked off-distribution.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from aimo.core.errors import InputError


@dataclass(frozen=True)
class Tier:
    """One difficulty tier; each problem draws its parameters uniformly from these ranges.

    `p_right` is the chance a sample's final answer is right; `median_tokens` is the median
    length the model *would* write (before the token cap); wrong answers land on one of
    `n_attractors` repeated wrong values with probability `attractor_share`, else anywhere.
    """

    name: str
    weight: float
    p_right: tuple[float, float]
    median_tokens: tuple[float, float]
    n_attractors: tuple[int, int]
    attractor_share: float


@dataclass(frozen=True)
class CodeModel:
    """Outcomes of code prompts (rates per code prompt unless said otherwise).

    `no_code`: the sample writes no code block at all; `exec_error` / `fail_parse`: given a
    code block, it fails to run / prints no integer; `timeout_share`: share of exec errors that
    are 30 s timeouts; `logit_shift`: accuracy bonus (in logits) of samples that write code.
    """

    no_code: float = 0.17
    exec_error: float = 0.19
    fail_parse: float = 0.026
    timeout_share: float = 0.1
    logit_shift: float = 0.45
    exec_ms_median: float = 900.0
    exec_ms_sigma: float = 0.5
    timeout_s: float = 30.0


@dataclass(frozen=True)
class AnswerModel:
    """Where answers appear inside a sample, as fractions of the length it would write.

    With `repeat_probs[k]` the sample re-states its answer k times after the first; with k = 0
    the only answer sits near the end (`last_frac`), else the first one sits in `first_frac`
    (`first_frac_long` for samples that would run past the token cap: those mostly loop on
    self-verification after an early answer) and the last repeat just before the end. `flip_rate`: share of samples with at least two
    mentions whose answer changes once (earlier mentions carry another value); of the flips to a
    wrong final answer, `flip_from_right` started from the right one.
    """

    first_frac: tuple[float, float] = (0.40, 0.85)
    first_frac_long: tuple[float, float] = (0.20, 0.60)
    last_frac: tuple[float, float] = (0.90, 0.995)
    repeat_probs: tuple[float, ...] = (0.10, 0.35, 0.35, 0.20)
    flip_rate: float = 0.035
    flip_from_right: float = 0.3


@dataclass(frozen=True)
class RateCurve:
    """Placeholder per-sequence decode rate r(n) = start − (start − end)·(n/at_tokens)^power tok/s.

    The default reproduces the published 4×L4 batch-15 figures (≈36 tok/s at the start, ≈20 tok/s
    near 16k tokens, 13,007 tokens after ≈423 s). The simulator uses its own hardware profiles.
    """

    start_tok_s: float = 36.0
    end_tok_s: float = 20.0
    at_tokens: int = 16384
    power: float = 1.4
    prefill_tok_s: float = 4000.0
    min_tok_s: float = 1.0  # the curve's floor (long profiles: the rate it levels off at)


@dataclass(frozen=True)
class ConfidenceModel:
    """Per-token confidence of synthetic samples (`aimo synth --confidence`): DeepConf's token
    confidence C_i for top-`top_k` logprobs and the entropy of that top-k, per generated token.

    C_i = level + drift_i + noise_i − dips_i, clipped to [`floor`, `ceil`]: `level` per sample,
    Normal(`mean_right` or `mean_wrong`, `sd_between`) by whether its answer is right (overlapping
    distributions); `drift` an AR(1) over blocks of `drift_block` tokens; `noise` iid per token;
    `dips` low-confidence stretches (`dip_tokens` long, `dip_depth` deep) at a Poisson rate per
    10k tokens, higher for wrong samples, plus, with probability `answer_dip_right/_wrong`, one that
    ends where the final answer first appears (confidence falls before/in wrong answers). The
    entropy is ln(k)·exp(−C_i/`entropy_scale`)·LogNormal(0, `entropy_sd`) per token ·
    LogNormal(0, `entropy_sample_sd`) per sample, clipped to [0, ln k].
    """

    top_k: int = 8
    mean_right: float = 13.0
    mean_wrong: float = 12.4
    sd_between: float = 0.9
    sd_token: float = 2.5
    floor: float = 0.05
    ceil: float = 40.0
    drift_block: int = 256
    drift_sd: float = 0.3
    drift_phi: float = 0.9
    dips_per_10k_right: float = 0.5
    dips_per_10k_wrong: float = 1.0
    dip_tokens: tuple[int, int] = (400, 1600)
    dip_depth: tuple[float, float] = (0.8, 2.0)
    answer_dip_right: float = 0.15
    answer_dip_wrong: float = 0.8
    answer_dip_depth: tuple[float, float] = (2.0, 4.0)
    entropy_scale: float = 4.0
    entropy_sd: float = 0.35
    entropy_sample_sd: float = 0.15


@dataclass(frozen=True)
class Target:
    """One calibration target: the metric (see `recorder.calibration.METRICS`), the published or
    design value, the accepted band [lo, hi], and where the value comes from."""

    metric: str
    value: float
    lo: float
    hi: float
    source: str


@dataclass(frozen=True)
class SynthProfile:
    """Everything the synthetic generator needs, plus the targets a generated store must meet."""

    name: str
    description: str
    tiers: tuple[Tier, ...]
    targets: tuple[Target, ...]
    max_new_tokens: int = 16384
    chunk_tokens: int = 64
    min_tokens: int = 600
    length_sigma: float = 0.30
    wrong_length_factor: float = 1.15
    code_length_factor: float = 0.9
    small_answer_share: float = 0.12
    code: CodeModel = CodeModel()
    answers: AnswerModel = AnswerModel()
    rate: RateCurve = RateCurve()
    confidence: ConfidenceModel = ConfidenceModel()


SEED = "AIMO-2 2nd-place write-up"
DESIGN = "design (docs/synthetic.md)"


def _shared_targets() -> tuple[Target, ...]:
    """Targets every profile meets: the within-sample answer model, code outcomes and the time curve."""
    return (
        Target("code_exec_error", 2.53 / 16, 0.11, 0.21, f"{SEED}: exec error 2.53/16 (AWQ row)"),
        Target("code_fail_parse", 0.33 / 16, 0.0, 0.05, f"{SEED}: fail parseint 0.33/16"),
        Target("flip_rate", 0.025, 0.01, 0.06, f"{DESIGN}: flips rare (a few %)"),
        Target("restate_1_3", 0.75, 0.60, 0.90, f"{DESIGN}: most re-state 1-3 times"),
        Target("first_answer_pos", 0.68, 0.55, 0.80, f"{DESIGN}: first answer at 40-85% of length"),
        Target("truth_small_round", 0.12, 0.04, 0.25, f"{DESIGN}: some answers <=20 or x00"),
        Target("truth_median", 500.0, 250.0, 750.0, f"{DESIGN}: answers spread over 0..999"),
        Target("rate_start", 36.0, 33.0, 39.0, "seed-policy.md: ~36 tok/s early"),
        Target("rate_16k", 20.0, 18.0, 23.0, "seed-policy.md: ~20 tok/s near 16k"),
        Target("time_13007", 423.0, 402.0, 444.0, "seed-policy.md: 13,007 tok in 423 s"),
        Target("kind_interleave", 1.0, 1.0, 1.0, f"{SEED}: even index cot, odd code"),
        Target("text_consistency", 1.0, 1.0, 1.0, f"{DESIGN}: chunk text re-extracts answers"),
    )


DEEPCONF = "DeepConf (Fu et al. 2025)"
# Checked on every run that stores confidence (`aimo synth --confidence`, `aimo record
# --logprobs`): DeepConf's qualitative findings, with bands of our choosing (docs/synthetic.md).
CONFIDENCE_TARGETS: tuple[Target, ...] = (
    Target("conf_auroc_mean", 0.70, 0.58, 0.80,
           f"{DEEPCONF}: right traces more confident on average, distributions overlap"),
    Target("conf_auroc_lowest", 0.80, 0.68, 0.90,
           f"{DEEPCONF}: lowest group confidence separates better than the mean"),
    Target("conf_lowest_gain", 0.10, 0.02, 0.20,
           f"{DEEPCONF}: local (window) measures beat the global mean"),
    Target("conf_dip_near_wrong", 0.55, 0.45, 0.85,
           f"{DEEPCONF}: confidence dips before/in wrong answers"),
    Target("conf_dip_near_right", 0.25, 0.05, 0.40, f"{DESIGN}: fewer dips at right answers"),
    Target("conf_entropy_corr", -0.9, -1.0, -0.6,
           f"{DEEPCONF}: low entropy goes with high token confidence"),
)


# The three tiers the profiles mix (weights set per profile with `dataclasses.replace`).
EASY = Tier("easy", 0.30, (0.70, 1.00), (2000.0, 4000.0), (1, 1), 0.3)
MEDIUM = Tier("medium", 0.42, (0.25, 0.60), (8000.0, 13000.0), (1, 3), 0.4)
HARD = Tier("hard", 0.28, (0.00, 0.10), (15000.0, 30000.0), (2, 3), 0.7)


def _mix(easy: float, medium: float, hard: float) -> tuple[Tier, ...]:
    return (replace(EASY, weight=easy), replace(MEDIUM, weight=medium), replace(HARD, weight=hard))


R1_14B = SynthProfile(
    name="r1-14b",
    description="14B R1-distill, AWQ W4KV8, on AIME-2025-level problems (the seed's local run)",
    tiers=_mix(0.30, 0.42, 0.28),
    targets=(
        Target("mean_tokens", 10119.0, 9100.0, 11100.0, f"{SEED}: mean outlen 10,119 (AWQ row)"),
        Target("sample_accuracy", 14.40 / 32, 0.40, 0.50, f"{SEED}: 14.40/32 samples right"),
        Target("majority_accuracy", 21 / 30, 0.58, 0.82, f"{SEED}: 21/30 aggregated"),
        Target("code_no_code", 3.30 / 16, 0.15, 0.26, f"{SEED}: no code 3.30/16"),
        Target("code_wrong_number", 4.57 / 16, 0.22, 0.35, f"{SEED}: wrong number 4.57/16"),
        Target("no_answer", 0.065, 0.03, 0.10, f"{DESIGN}: a few samples without answer"),
        Target("capped", 0.28, 0.18, 0.38, f"{DESIGN}: hard problems hit 16,384"),
        Target("easy_median_tokens", 3000.0, 2000.0, 4000.0, f"{DESIGN}: easy problems 2-4k"),
        Target("hard_median_tokens", 16384.0, 15000.0, 16384.0, f"{DESIGN}: hard 15-30k, capped"),
        Target("attractor_share", 0.39, 0.25, 0.60, f"{DESIGN}: wrong answers cluster"),
        Target("vote_fooled", 0.30, 0.15, 0.45, f"{DESIGN}: plurality wrong with >=3 votes"),
        *_shared_targets(),
    ),
)

EASY_MIX = SynthProfile(
    name="easy-mix",
    description="the r1-14b model on an easier problem mix: more easy problems, shorter outputs",
    tiers=_mix(0.55, 0.35, 0.10),
    targets=(
        Target("mean_tokens", 7000.0, 6300.0, 7700.0, f"{DESIGN}: tier mix 55/35/10"),
        Target("sample_accuracy", 0.65, 0.60, 0.70, f"{DESIGN}: tier mix 55/35/10"),
        Target("majority_accuracy", 0.88, 0.78, 0.96, f"{DESIGN}: tier mix 55/35/10"),
        Target("code_no_code", 0.17, 0.12, 0.23, f"{DESIGN}: fewer capped code samples"),
        Target("code_wrong_number", 0.21, 0.15, 0.27, f"{DESIGN}: tier mix 55/35/10"),
        Target("no_answer", 0.024, 0.005, 0.05, f"{DESIGN}: tier mix 55/35/10"),
        Target("capped", 0.12, 0.07, 0.17, f"{DESIGN}: tier mix 55/35/10"),
        Target("easy_median_tokens", 3000.0, 2000.0, 4000.0, f"{DESIGN}: easy problems 2-4k"),
        *_shared_targets(),
    ),
)

HARD_MIX = SynthProfile(
    name="hard-mix",
    description="the r1-14b model on a harder problem mix: more hard problems, more truncation",
    tiers=_mix(0.15, 0.40, 0.45),
    targets=(
        Target("mean_tokens", 11850.0, 11000.0, 12700.0, f"{DESIGN}: tier mix 15/40/45"),
        Target("sample_accuracy", 0.35, 0.30, 0.40, f"{DESIGN}: tier mix 15/40/45"),
        Target("majority_accuracy", 0.54, 0.40, 0.66, f"{DESIGN}: tier mix 15/40/45"),
        Target("code_no_code", 0.21, 0.15, 0.27, f"{DESIGN}: more capped code samples"),
        Target("code_wrong_number", 0.36, 0.29, 0.43, f"{DESIGN}: tier mix 15/40/45"),
        Target("no_answer", 0.10, 0.06, 0.14, f"{DESIGN}: tier mix 15/40/45"),
        Target("capped", 0.41, 0.33, 0.49, f"{DESIGN}: tier mix 15/40/45"),
        Target("hard_median_tokens", 16384.0, 15000.0, 16384.0, f"{DESIGN}: hard 15-30k, capped"),
        Target("attractor_share", 0.41, 0.25, 0.60, f"{DESIGN}: wrong answers cluster"),
        Target("vote_fooled", 0.46, 0.30, 0.60, f"{DESIGN}: plurality wrong with >=3 votes"),
        *_shared_targets(),
    ),
)

LONG = "long-reasoning traces of a public 8B model (issue 17)"
LONG_REASONING = SynthProfile(
    name="long-reasoning",
    description=(
        "an 8B long-reasoning model on AIME-level problems: samples as long as real ones (median "
        "11-16k tokens, p90 ~30k, a third to a half past 16k), max_new_tokens 32768"
    ),
    tiers=(
        Tier("easy", 0.30, (0.70, 1.00), (4500.0, 8000.0), (1, 1), 0.3),
        Tier("medium", 0.40, (0.30, 0.65), (10000.0, 18000.0), (1, 3), 0.4),
        Tier("hard", 0.30, (0.00, 0.15), (19000.0, 30000.0), (2, 3), 0.7),
    ),
    targets=(
        Target("median_tokens", 13500.0, 11000.0, 16000.0, f"{LONG}: median 11-16k tokens"),
        Target("p90_tokens", 30000.0, 26000.0, 32000.0, f"{LONG}: p90 ~30k"),
        Target("share_over_16k", 0.42, 0.33, 0.50, f"{LONG}: a third to a half past 16k"),
        Target("capped", 0.07, 0.03, 0.10, f"{DESIGN}: p90 below the 32,768 cap"),
        Target("sample_accuracy", 0.50, 0.42, 0.58, f"{DESIGN}: tier mix 30/40/30"),
        Target("majority_accuracy", 0.66, 0.50, 0.80, f"{DESIGN}: ~31/50 under the budget"),
        Target("code_no_code", 0.17, 0.12, 0.26, f"{DESIGN}: as r1-14b, fewer capped"),
        Target("attractor_share", 0.40, 0.25, 0.60, f"{DESIGN}: wrong answers cluster"),
        *_shared_targets(),
    ),
    max_new_tokens=32768,
    length_sigma=0.35,
    rate=RateCurve(min_tok_s=12.0),
)

PROFILES: dict[str, SynthProfile] = {
    p.name: p for p in (R1_14B, EASY_MIX, HARD_MIX, LONG_REASONING)
}
DEFAULT_PROFILE = R1_14B.name


def get_profile(name: str, *, source: str = "synthesize_store") -> SynthProfile:
    """Look a profile up by name.

    Raises:
        InputError: naming the field `profile` when the name is unknown.
    """
    try:
        return PROFILES[name]
    except KeyError:
        known = ", ".join(sorted(PROFILES))
        raise InputError(source, "profile", f"unknown profile {name!r} (known: {known})") from None
