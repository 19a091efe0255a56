"""Policies, hardware profiles and traces as flat numpy arrays for the compiled kernel.

Why: numba kernels cannot read dataclasses, and the tuner scores thousands of policies against
one trace store, so traces are encoded once (`encode_traces`) and each policy is reduced to two
small arrays (`encode_policy`, cached per policy). Every code and offset the kernel reads is a
module constant below; `kernel.py` imports them (numba freezes them at compile time).

Layouts
-------
Traces (`EncodedTraces`), one row per recorded sample / answer, problems in store order:
  samp[i] (int64, N_SAMP_COLS): SA_NTOK n_tokens, SA_PROMPT prompt_tokens, SA_KIND (KIND_COT |
      KIND_CODE), SA_LENGTH (1 if finish_reason == "length"), SA_ANS0 first answer row,
      SA_NANS answer count, SA_ID the store's sample index (for reports).
  ans_i[j] (int64, N_ANS_COLS): AN_TOK token position, AN_VAL value, AN_CODE (1 = code source).
      AN_VAL is the value the reference's `Answer` carries: 0..999, VAL_FAIL (−1: a code run
      that failed, CODE_FAILURE) or VAL_NONE (nothing parsed: `Answer.value is None`).
  ans_exec_s[j] (float64): execution seconds, float(exec_ms) / 1000.0, 0.0 where not finite
      (exactly what the reference computes).
  prob[p] (int64, N_PROB_COLS): PR_COT0 / PR_NCOT and PR_CODE0 / PR_NCODE locate the problem's
      CoT and code samples (recorded order) in `pool`, which holds global sample rows;
      PR_TRUTH the answer (TRUTH_NONE when unknown).
Profile (float64, N_PROF): PF_A, PF_BETA, PF_GAMMA, PF_PREFILL, PF_STARTUP, PF_MAX_BATCH,
  PF_SERIAL (1.0 for code_overlap "serial"), PF_OVERHEAD, PF_WORKERS (code_workers, 0 = no limit),
  PF_KNEE, PF_BETA_ABOVE (the step's knee term, `core.hardware.timing.step_seconds`),
  PF_ABORT_STEPS (abort_latency_steps),
  PF_PREFILL_REQ (prefill_s_per_request, `core.hardware.timing.prefill_seconds`).
Policy ints `pi` (int64): header P_* below, then sections at the offsets the header stores:
  rules at pi[P_OFF_RULES]: per question-stop rule RULE_STRIDE values: RU_WINDOW (its window,
      −1 for none) and RU_TABLE, the offset in pi of its step's table (`rule_table`):
      (P_MAX_SLOTS + 1)² values 0/1, row n (valid answers), column m (most frequent count);
  levels at pi[P_OFF_LEVELS]: per level pi[P_LEVEL_STRIDE] values: LV_SAMPLES, LV_MIN_ANSWERS,
      LV_N_EARLY, then the early timeouts' min_answers (P_MAX_EARLY slots) from LV_EARLY, then
      the slot kinds (P_MAX_SLOTS slots, `sample_kinds` of the level) from
      LV_EARLY + pi[P_MAX_EARLY].
  The sample-stop rule of kind k (KIND_COT, KIND_CODE) starts at P_RULE_COT + k * RS_STRIDE:
      RS_SRC (the SRC_* answers it counts, SRC_NONE: it never holds), RS_READS (what its
      step reads, `sample_table`: READS_SEEN: only how many answers counted, so the verdict is
      seen ≥ RS_TABLE, one compare; READS_RUN: seen and run, so the kernel tracks the run and
      passes it as `same` too; READS_SAME: also how often this value counted, which the kernel
      then counts), RS_GRACE, RS_POS_ONLY, RS_TABLE (READS_SEEN: the smallest seen that holds;
      else the offset in pi of the step's table: the cap c, then (c + 1)³ values 0/1 indexed
      by min(count, c) of seen, same, run).
Policy floats `pf` (float64): F_W_COT, F_W_CODE, F_SMALL_ROUND_W, F_LENGTH_W, F_CUTOFF_S,
  F_TIE_TOL (vote.tie_tolerance), then per
  level pi[P_LEVEL_STRIDE_F] values from pi[P_OFF_LEVELS_F]: timeout_s then early after_s
  (P_MAX_EARLY slots); the schedule thresholds (n_levels − 1) at pi[P_OFF_THRESH_F].
Confidence (issue 17): header P_CONF_STOP / P_CONF_WARMUP / P_VOTE_CONF / P_UNCATCH / P_BUDGET,
  floats F_CONF_THRESH, F_CONF_PCT, F_VOTE_KEEP, F_BUD_*; and, for a policy that reads
  confidence, `encode_confidence`'s table: every sample's `decisions.confidence_grid` rows
  (float64[rows, N_CONF]) stacked in sample-row order with each sample's first row, built per
  (check grid, token cap, vote window, stop window) — the kernel only looks rows up.
Stop reasons are small ints (STOP_CODE_*; RULE_BASE + rule number; EARLY_BASE + early index),
turned back into the reference's labels by `stop_label`.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache

import numpy as np

from aimo.core.hardware import HardwareProfile
from aimo.core.hardware.timing import decode_coefficients
from aimo.core.policy import Policy, SampleStopRule, confidence_grid, sample_kinds, uses_confidence
from aimo.core.policy.rules import QuestionRule
from aimo.core.policy.sample_rules import SAMPLE_REGISTRY, counted_sources, step_args
from aimo.core.policy.decisions import (  # noqa: F401  (the kernel reads them from here)
    CONF_ENTROPY,
    CONF_LOW_STOP,
    CONF_LOW_VOTE,
    CONF_MEAN,
    CONF_TAIL,
    MIN_ENTROPY,
    N_CONF,
)
from aimo.core.traces import SOURCE_CODE, ProblemTrace, require_confidence

# --------------------------------------------------------------------------- traces
KIND_COT = 0
KIND_CODE = 1
KIND_CODES: dict[str, int] = {"cot": KIND_COT, "code": KIND_CODE}
KIND_NAMES = ("cot", "code")

SA_NTOK, SA_PROMPT, SA_KIND, SA_LENGTH, SA_ANS0, SA_NANS, SA_ID = range(7)
N_SAMP_COLS = 7
AN_TOK, AN_VAL, AN_CODE = range(3)
N_ANS_COLS = 3
VAL_FAIL = -1  # CODE_FAILURE
VAL_NONE = -2  # Answer.value is None
PR_COT0, PR_NCOT, PR_CODE0, PR_NCODE, PR_TRUTH = range(5)
N_PROB_COLS = 5
TRUTH_NONE = -1_000_000

# --------------------------------------------------------------------------- profile
PF_A, PF_BETA, PF_GAMMA, PF_PREFILL, PF_STARTUP, PF_MAX_BATCH, PF_SERIAL, PF_OVERHEAD = range(8)
PF_WORKERS = 8  # code_workers, 0 = no limit
PF_KNEE, PF_BETA_ABOVE = 9, 10  # the step's optional knee term (beta_above 0: none)
PF_ABORT_STEPS = 11  # abort_latency_steps: a question stop lands this many steps later
PF_PREFILL_REQ = 12  # prefill_s_per_request (0: the per-token prefill alone)
N_PROF = 13

# --------------------------------------------------------------------------- policy ints
SRC_NONE = -1  # the sample-stop rule counts no answer (or can never hold)
SRC_ANY, SRC_BOXED, SRC_CODE = range(3)
_SOURCES = {"any": SRC_ANY, "boxed": SRC_BOXED, "code": SRC_CODE}
ORDER_ARRIVAL, ORDER_INDEX = range(2)
TIE_LARGER, TIE_SMALLER, TIE_FIRST = range(3)
_TIES = {"larger": TIE_LARGER, "smaller": TIE_SMALLER, "first": TIE_FIRST}

RS_SRC, RS_READS, RS_GRACE, RS_POS_ONLY, RS_TABLE = range(5)
READS_SEEN, READS_RUN, READS_SAME = range(3)  # what a sample-stop rule's step reads
RS_STRIDE = 5
P_EVERY = 0
P_MAX_TOKENS = 1
P_RULE_COT = 2  # sample-stop rule of KIND_COT; KIND_CODE's follows at + RS_STRIDE
P_Q_ORDER = P_RULE_COT + 2 * RS_STRIDE  # 12
P_VALID_PREFER_CODE = 13
P_VALID_POS_ONLY = 14
P_N_RULES = 15
P_VOTE_CODE_OVER_BOXED = 16
P_VOTE_HAS_SMALL = 17
P_VOTE_SMALL_MAX = 18
P_VOTE_ROUND = 19  # 0: no round_multiple
P_VOTE_TIE = 20
P_VOTE_FALLBACK = 21
P_VOTE_DROP_NEG = 22
P_N_LEVELS = 23
P_START_LEVEL = 24  # 1-based, as in the schedule
P_REEVAL_AFTER = 25
P_REEVAL_EVERY = 26
P_CUTOFF_ANSWER = 27
P_MAX_EARLY = 28
P_MAX_SLOTS = 29
P_OFF_RULES = 30
P_OFF_LEVELS = 31
P_LEVEL_STRIDE = 32
P_OFF_LEVELS_F = 33
P_LEVEL_STRIDE_F = 34
P_OFF_THRESH_F = 35
P_BOXES_LAST = 36  # check.boxes == "last"
P_BOXED_ZERO_IGNORE = 37  # check.boxed_zero == "ignore" (applied to the workspace's answer table)
P_CODE_MODE = 38  # check.code_overlap: CODE_PROFILE (the profile's PF_SERIAL decides) or CODE_*
P_EARLY_HIST = 39  # schedule.early_timeout_count == "history_if_none"
P_FINAL_READ = 40  # vote.final_read
CODE_PROFILE, CODE_PARALLEL, CODE_SERIAL, CODE_INLINE = -1, 0, 1, 2
_CODE_MODES = {"profile": CODE_PROFILE, "parallel": CODE_PARALLEL, "serial": CODE_SERIAL,
               "inline": CODE_INLINE}
P_CONF_STOP = 41  # CSTOP_*: the confidence sample stop
P_CONF_WARMUP = 42  # its warm-up sample count (CSTOP_ONLINE)
P_VOTE_CONF = 43  # VCONF_*: the vote's confidence metric
P_UNCATCH = 44  # 1: question stop when the leader cannot be caught
P_BUDGET = 45  # 1: per-question budget (schedule.budget)
N_P_HEADER = 46
CSTOP_NONE, CSTOP_FIXED, CSTOP_ONLINE = range(3)
VCONF_NONE, VCONF_INV_ENTROPY, VCONF_MEAN, VCONF_TAIL, VCONF_LOWEST = range(5)
_VCONF = {"none": VCONF_NONE, "inv_entropy": VCONF_INV_ENTROPY, "mean": VCONF_MEAN,
          "tail": VCONF_TAIL, "lowest_group": VCONF_LOWEST}

RU_WINDOW, RU_TABLE = range(2)
RULE_STRIDE = 2
LV_SAMPLES, LV_MIN_ANSWERS, LV_N_EARLY, LV_EARLY = range(4)

# --------------------------------------------------------------------------- policy floats
F_W_COT, F_W_CODE, F_SMALL_ROUND_W, F_LENGTH_W, F_CUTOFF_S, F_TIE_TOL = range(6)
F_CONF_THRESH, F_CONF_PCT, F_VOTE_KEEP, F_BUD_RESERVE, F_BUD_MIN, F_BUD_MAX = range(6, 12)
N_F_HEADER = 12

# --------------------------------------------------------------------------- stop reasons
STOP_CODE_NONE = 0  # internal: the question runs on
STOP_CODE_ALL_DONE = 1
STOP_CODE_MIN_ANSWERS = 2
STOP_CODE_TIMEOUT = 3
STOP_CODE_CUTOFF = 4
STOP_CODE_AFTER_CUTOFF = 5
STOP_CODE_STUCK = 6  # internal: the kernel's loop made no progress (a bug; the API raises)
STOP_CODE_UNCATCHABLE = 7
RULE_BASE = 100  # + rule number (1-based)
EARLY_BASE = 200  # + index of the level's early timeout

# sample ends (SampleOutcome.end)
END_QUEUED, END_FINISHED, END_LENGTH, END_SAMPLE_STOP, END_QUESTION_STOP = range(5)
END_NAMES = ("queued", "finished", "length", "sample_stop", "question_stop")


@dataclass(frozen=True, eq=False)
class EncodedTraces:
    """A trace store's problems as flat arrays (layout in the module doc); immutable by contract."""

    samp: np.ndarray
    ans_i: np.ndarray
    ans_exec_s: np.ndarray
    prob: np.ndarray
    pool: np.ndarray
    max_answers: int  # most answers of any one sample (≥ 1, sizes kernel scratch)
    max_pool: int  # most samples of one kind in one problem (≥ 1)
    value_span: int  # 1 + the largest answer value (≥ 1000; sizes the kernel's value counts)
    sample_row: dict[int, int]  # id(SampleTrace) -> its row in `samp`


def encode_traces(problems: Sequence[ProblemTrace]) -> EncodedTraces:
    """Flatten `problems` (store order) into the arrays the kernel reads."""
    samp_rows: list[list[int]] = []
    ans_tok: list[np.ndarray] = []
    ans_val: list[np.ndarray] = []
    ans_code: list[np.ndarray] = []
    ans_exec: list[np.ndarray] = []
    prob = np.zeros((len(problems), N_PROB_COLS), np.int64)
    pool: list[int] = []
    sample_row: dict[int, int] = {}
    n_ans = 0
    max_answers = 1
    max_pool = 1
    for p_idx, problem in enumerate(problems):
        rows: dict[str, list[int]] = {"cot": [], "code": []}
        for s in problem.samples:
            if s.kind not in KIND_CODES:
                raise ValueError(f"problem {problem.problem_id!r}: unknown sample kind {s.kind!r}")
            row = len(samp_rows)
            sample_row[id(s)] = row
            rows[s.kind].append(row)
            k = s.n_answers
            samp_rows.append([
                int(s.n_tokens), int(s.prompt_tokens), KIND_CODES[s.kind],
                int(s.finish_reason == "length"), n_ans, k, int(s.sample),
            ])
            n_ans += k
            max_answers = max(max_answers, k)
            code = np.asarray(s.ans_source).astype(np.int64) == SOURCE_CODE
            value = np.asarray(s.ans_value).astype(np.int64)
            ok = np.asarray(s.ans_code_ok).astype(bool)
            val = np.where(value >= 0, value, VAL_NONE)
            val = np.where(code & ~ok, VAL_FAIL, val)
            exec_s = np.asarray(s.ans_exec_ms).astype(np.float64) / 1000.0
            exec_s = np.where(np.isfinite(exec_s), exec_s, 0.0)
            ans_tok.append(np.asarray(s.ans_token).astype(np.int64))
            ans_val.append(val.astype(np.int64))
            ans_code.append(code.astype(np.int64))
            ans_exec.append(exec_s.astype(np.float64))
        prob[p_idx, PR_COT0] = len(pool)
        prob[p_idx, PR_NCOT] = len(rows["cot"])
        pool.extend(rows["cot"])
        prob[p_idx, PR_CODE0] = len(pool)
        prob[p_idx, PR_NCODE] = len(rows["code"])
        pool.extend(rows["code"])
        prob[p_idx, PR_TRUTH] = TRUTH_NONE if problem.answer is None else int(problem.answer)
        max_pool = max(max_pool, len(rows["cot"]), len(rows["code"]))
    samp = np.asarray(samp_rows, np.int64).reshape(-1, N_SAMP_COLS)
    ans_i = np.zeros((n_ans, N_ANS_COLS), np.int64)
    if n_ans:
        ans_i[:, AN_TOK] = np.concatenate(ans_tok)
        ans_i[:, AN_VAL] = np.concatenate(ans_val)
        ans_i[:, AN_CODE] = np.concatenate(ans_code)
    exec_all = np.concatenate(ans_exec) if n_ans else np.zeros(0, np.float64)
    value_span = max(1000, int(ans_i[:, AN_VAL].max()) + 1 if n_ans else 0)
    return EncodedTraces(
        samp=samp, ans_i=ans_i, ans_exec_s=np.ascontiguousarray(exec_all, np.float64), prob=prob,
        pool=np.asarray(pool, np.int64), max_answers=max_answers, max_pool=max_pool,
        value_span=value_span, sample_row=sample_row,
    )


def encode_profile(profile: HardwareProfile) -> np.ndarray:
    """The profile's numbers the replay uses, as float64[N_PROF]."""
    out = np.zeros(N_PROF, np.float64)
    out[PF_A], out[PF_BETA], out[PF_GAMMA], out[PF_KNEE], out[PF_BETA_ABOVE] = (
        decode_coefficients(profile))
    out[PF_PREFILL] = profile.prefill_s_per_token
    out[PF_PREFILL_REQ] = profile.prefill_s_per_request
    out[PF_STARTUP] = profile.startup_s
    out[PF_MAX_BATCH] = profile.max_batch
    out[PF_SERIAL] = 1.0 if profile.code_overlap == "serial" else 0.0
    out[PF_OVERHEAD] = profile.question_overhead_s
    out[PF_WORKERS] = profile.code_workers or 0
    out[PF_ABORT_STEPS] = profile.abort_latency_steps
    return out


@dataclass(frozen=True, eq=False)
class EncodedPolicy:
    """A policy as the kernel's two arrays, plus what decoding results needs."""

    pi: np.ndarray
    pf: np.ndarray
    max_slots: int
    stop_labels: tuple[dict[int, str], ...]  # per level: stop code -> the reference's label


def rule_table(rule: QuestionRule, max_slots: int) -> list[int]:
    """The rule's registered step at every (n valid answers, m = most frequent count) a
    question of at most `max_slots` samples reaches, row-major, 1 where it holds: the kernel
    looks its verdicts up here (core.policy.rules: one step for every path)."""
    step, args = rule.kind().step, rule.step_args()
    return [int(bool(step(n, m, *args)))
            for n in range(max_slots + 1) for m in range(max_slots + 1)]


@dataclass(frozen=True)
class SampleTable:
    """A sample-stop rule as the kernel reads it: `reads` (READS_SEEN / READS_RUN /
    READS_SAME: the counts its step depends on), `seen_min` (READS_SEEN: the verdict is
    seen ≥ seen_min), `table` (otherwise: the cap c, then the clamped verdicts); `holds` False:
    the rule holds at no count a sample reaches."""

    reads: int
    seen_min: int
    table: tuple[int, ...]
    holds: bool


@lru_cache(maxsize=256)
def _sample_table(name: str, args: tuple[float, ...], max_answers: int) -> SampleTable:
    """`sample_table` of the rule `name` with parameter values `args` (cached: the tuner's
    trials share a few of them)."""
    step = SAMPLE_REGISTRY[name].step
    a = max(1, max_answers)
    full = np.zeros((a + 1, a + 1, a + 1), bool)
    reach = [(s, j, r) for s in range(1, a + 1) for j in range(1, s + 1) for r in range(1, j + 1)]
    for s, j, r in reach:
        full[s, j, r] = bool(step(s, j, r, *args))
    idx = np.asarray(reach, np.int64).T
    verdict = full[idx[0], idx[1], idx[2]]
    if not verdict.any():
        return SampleTable(READS_SEEN, 0, (), False)
    seen_min = int(idx[0][verdict].min())
    if (verdict == (idx[0] >= seen_min)).all():  # a threshold on seen: no table, no run kept
        return SampleTable(READS_SEEN, seen_min, (), True)
    reads_same = bool((verdict != full[idx[0], idx[2], idx[2]]).any())
    cap = next(c for c in range(1, a + 1) if (verdict == full[
        np.minimum(idx[0], c), np.minimum(idx[1], c), np.minimum(idx[2], c)]).all())
    table = (cap, *full[:cap + 1, :cap + 1, :cap + 1].ravel().astype(int).tolist())
    return SampleTable(READS_SAME if reads_same else READS_RUN, 0, table, True)


def sample_table(rule: SampleStopRule, max_answers: int) -> SampleTable:
    """The sample-stop rule's registered step (core.policy.sample_rules) at every (seen, same,
    run) a sample of at most `max_answers` answers reaches (1 ≤ run ≤ same ≤ seen), as the kernel
    reads it: when the verdict is a threshold on `seen` alone (first_answer, kth_answer, …, told
    from the step's verdicts, not from the rule's name), that threshold, so a counting answer
    costs the kernel one compare; else whether the step reads `same` (else the kernel skips
    counting it and passes run, which the step cannot tell apart) and the table it looks verdicts
    up in — the smallest cap c such that clamping every count to c changes no verdict, then the
    step at every clamped (seen, same, run), row-major over (c + 1)³."""
    return _sample_table(rule.rule, step_args(rule), int(max_answers))


def _sample_ints(rule: SampleStopRule, table_at: int, st: SampleTable) -> list[int]:
    sources = counted_sources(rule)
    src = SRC_NONE if sources is None or not st.holds else _SOURCES[sources]
    where = st.seen_min if st.reads == READS_SEEN else table_at
    return [src, st.reads, rule.grace_tokens, int(rule.positive_only), where]


@lru_cache(maxsize=512)
def encode_policy(policy: Policy, max_answers: int) -> EncodedPolicy:
    """Reduce `policy` to the kernel's arrays for a store whose samples have at most
    `max_answers` answers (cached: policies are hashable and immutable)."""
    sched = policy.schedule
    levels = sched.levels
    max_early = max(1, max(len(lv.early_timeouts) for lv in levels))
    max_slots = max(lv.samples for lv in levels)
    rules = policy.question_stop.rules
    v = policy.vote
    head = [0] * N_P_HEADER
    head[P_EVERY] = policy.check.every_tokens
    head[P_MAX_TOKENS] = policy.sample_stop.max_tokens
    head[P_Q_ORDER] = ORDER_INDEX if policy.question_stop.order == "index" else ORDER_ARRIVAL
    head[P_VALID_PREFER_CODE] = int(policy.question_stop.valid.prefer_code)
    head[P_VALID_POS_ONLY] = int(policy.question_stop.valid.positive_only)
    head[P_N_RULES] = len(rules)
    head[P_VOTE_CODE_OVER_BOXED] = int(v.code_over_boxed)
    head[P_VOTE_HAS_SMALL] = int(v.small_max is not None)
    head[P_VOTE_SMALL_MAX] = 0 if v.small_max is None else v.small_max
    head[P_VOTE_ROUND] = 0 if v.round_multiple is None else v.round_multiple
    head[P_VOTE_TIE] = _TIES[v.tie_break]
    head[P_VOTE_FALLBACK] = v.fallback
    head[P_VOTE_DROP_NEG] = int(v.drop_negative)
    head[P_N_LEVELS] = len(levels)
    head[P_START_LEVEL] = sched.start_level
    head[P_REEVAL_AFTER] = sched.reeval_after
    head[P_REEVAL_EVERY] = sched.reeval_every
    head[P_CUTOFF_ANSWER] = sched.cutoff_answer
    head[P_MAX_EARLY] = max_early
    head[P_MAX_SLOTS] = max_slots
    level_stride = LV_EARLY + max_early + max_slots
    level_stride_f = 1 + max_early
    head[P_OFF_RULES] = N_P_HEADER
    head[P_OFF_LEVELS] = N_P_HEADER + RULE_STRIDE * len(rules)
    head[P_LEVEL_STRIDE] = level_stride
    head[P_OFF_LEVELS_F] = N_F_HEADER
    head[P_LEVEL_STRIDE_F] = level_stride_f
    head[P_OFF_THRESH_F] = N_F_HEADER + level_stride_f * len(levels)
    head[P_BOXES_LAST] = int(policy.check.boxes == "last")
    head[P_BOXED_ZERO_IGNORE] = int(policy.check.boxed_zero == "ignore")
    head[P_CODE_MODE] = _CODE_MODES[policy.check.code_overlap]
    head[P_EARLY_HIST] = int(sched.early_timeout_count == "history_if_none")
    head[P_FINAL_READ] = int(v.final_read)
    cstop = policy.sample_stop.confidence
    if cstop is not None:
        head[P_CONF_STOP] = CSTOP_FIXED if cstop.threshold is not None else CSTOP_ONLINE
        head[P_CONF_WARMUP] = cstop.warmup
    head[P_VOTE_CONF] = _VCONF[v.confidence]
    head[P_UNCATCH] = int(policy.question_stop.uncatchable)
    head[P_BUDGET] = int(sched.budget is not None)

    body: list[int] = []
    tables: list[int] = []
    n_fixed = N_P_HEADER + RULE_STRIDE * len(rules) + level_stride * len(levels)
    for r in rules:
        window = r.window()
        body += [-1 if window is None else window, n_fixed + len(tables)]
        tables += rule_table(r, max_slots)
    for kind in ("cot", "code"):
        rule = policy.sample_stop.rule_for(kind)
        st = sample_table(rule, max_answers)
        start = P_RULE_COT + KIND_CODES[kind] * RS_STRIDE
        head[start:start + RS_STRIDE] = _sample_ints(rule, n_fixed + len(tables), st)
        tables += st.table
    floats = [0.0] * N_F_HEADER
    floats[F_W_COT] = v.kind_weights.cot
    floats[F_W_CODE] = v.kind_weights.code
    floats[F_SMALL_ROUND_W] = v.small_or_round_weight
    floats[F_LENGTH_W] = v.length_weight
    floats[F_CUTOFF_S] = sched.cutoff_s
    floats[F_TIE_TOL] = v.tie_tolerance
    if cstop is not None:
        floats[F_CONF_THRESH] = cstop.threshold if cstop.threshold is not None else math.inf
        floats[F_CONF_PCT] = cstop.percentile
    floats[F_VOTE_KEEP] = v.keep_top
    if sched.budget is not None:
        floats[F_BUD_RESERVE] = sched.budget.reserve_s
        floats[F_BUD_MIN] = sched.budget.min_s
        floats[F_BUD_MAX] = sched.budget.max_s
    labels: list[dict[int, str]] = []
    rule_labels = {RULE_BASE + i: r.label(i) for i, r in enumerate(rules, 1)}
    for lv in levels:
        kinds = [KIND_CODES[k] for k in sample_kinds(policy.samples, lv.samples)]
        early_min = [e.min_answers for e in lv.early_timeouts]
        early_after = [e.after_s for e in lv.early_timeouts]
        pad = max_early - len(early_min)
        body += [lv.samples, lv.min_answers, len(early_min)]
        body += early_min + [0] * pad + kinds + [0] * (max_slots - len(kinds))
        floats += [lv.timeout_s] + early_after + [math.inf] * pad
        lab = {
            STOP_CODE_ALL_DONE: "all_done", STOP_CODE_MIN_ANSWERS: "min_answers",
            STOP_CODE_TIMEOUT: "timeout", STOP_CODE_CUTOFF: "cutoff",
            STOP_CODE_AFTER_CUTOFF: "after_cutoff", STOP_CODE_UNCATCHABLE: "uncatchable",
            **rule_labels,
        }
        for j, e in enumerate(lv.early_timeouts):
            lab[EARLY_BASE + j] = f"early:{e.after_s:g}s/≥{e.min_answers}"
        labels.append(lab)
    floats += list(sched.thresholds_s)
    if len(head) + len(body) != n_fixed:
        raise AssertionError("encode_policy: the rule tables' offsets are wrong")
    pi = np.asarray(head + body + tables, np.int64)
    pf = np.asarray(floats, np.float64)
    return EncodedPolicy(pi=pi, pf=pf, max_slots=max_slots, stop_labels=tuple(labels))


def confidence_key(policy: Policy) -> tuple[int, int, int, int] | None:
    """What the confidence tables of a policy depend on (None: it reads no confidence)."""
    if not uses_confidence(policy):
        return None
    cstop = policy.sample_stop.confidence
    return (policy.check.every_tokens, policy.sample_stop.max_tokens,
            policy.vote.confidence_window, cstop.window if cstop is not None else 1)


def encode_confidence(problems: Sequence[ProblemTrace],
                      key: tuple[int, int, int, int]) -> tuple[np.ndarray, np.ndarray]:
    """Every sample's `confidence_grid` (rows of samples in `encode_traces` order) stacked into
    one float64[rows, N_CONF] table, and each sample's first row (int64[samples])."""
    every, max_tokens, vote_window, stop_window = key
    grids: list[np.ndarray] = []
    offsets: list[int] = []
    n = 0
    require_confidence(problems, "the policy")
    for problem in problems:
        for s in problem.samples:
            assert s.token_conf is not None and s.token_entropy is not None
            g = confidence_grid(s.token_conf, s.token_entropy, min(int(s.n_tokens), max_tokens),
                                every, vote_window, stop_window)
            offsets.append(n)
            n += g.shape[0]
            grids.append(g)
    table = np.concatenate(grids) if grids else np.zeros((0, N_CONF), np.float64)
    return np.ascontiguousarray(table, np.float64), np.asarray(offsets, np.int64)


def stop_label(enc: EncodedPolicy, level: int, code: int) -> str:
    """The reference's stop-reason label of kernel stop `code` at 1-based `level`."""
    return enc.stop_labels[level - 1][int(code)]


__all__ = [
    "EncodedPolicy", "EncodedTraces", "confidence_key", "encode_confidence", "encode_policy",
    "encode_profile", "encode_traces", "sample_table", "SampleTable", "stop_label",
]
