"""The fast path's public face: encode a trace store once, then score many policies quickly.

`FastSimulator` makes the same decisions, answers and times as the reference path
(`simulator.replay`) — `tests/simulator/test_fast_path.py` checks this on randomised policies,
traces and profiles — and `bootstrap` consumes the same random numbers as
`bootstrap_competitions` for a seed, so both give the same summary.
"""

from __future__ import annotations

import math
import threading
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from aimo.simulator.fast import kernel
from aimo.simulator.fast.encode import (
    AN_TOK,
    END_NAMES,
    KIND_NAMES,
    PR_CODE0,
    PR_COT0,
    PR_NCODE,
    PR_NCOT,
    PF_STARTUP,
    SA_ID,
    SA_KIND,
    SA_NTOK,
    SA_PROMPT,
    VAL_NONE,
    N_CONF,
    EncodedPolicy,
    confidence_key,
    encode_confidence,
    encode_policy,
    encode_profile,
    encode_traces,
    stop_label,
)
from aimo.core.hardware import HardwareProfile
from aimo.simulator.replay.competition import DEFAULT_BUDGET_S
from aimo.simulator.replay.results import (
    BootstrapSummary,
    CompetitionResult,
    QuestionResult,
    SampleOutcome,
)
from aimo.core.draws import NoRecordedSamples, SampleDraw
from aimo.core.budget import within_budget
from aimo.core.scoring import check_overtime_rule, rule_score
from aimo.core.policy import Policy
from aimo.core.traces import ProblemTrace, require_confidence

DrawSpec = SampleDraw | tuple[Sequence[int], Sequence[int]]
# the kernel's random state when it draws nothing (a single competition)
_UNUSED_RS = kernel.pcg64_state(np.random.default_rng(0))
_CONF_TABLES_KEPT = 4
# the confidence tables of a policy that reads no confidence
_NO_CONF = (np.zeros((0, N_CONF), np.float64), np.zeros(0, np.int64))


@dataclass(frozen=True, eq=False)
class FastCompetition:
    """One competition as arrays, one entry per served question (axis 0) and per slot (axis 1).

    Per question: `problem` (index into the simulator's problems), `answer`, `time_s`, `level`
    (1-based), `stop_code` (kernel code; `stop_reasons` holds the reference's labels),
    `samples_started`, `samples_stopped`, `tokens`, `n_slots`. Per slot (padded to the widest
    level; entries past `n_slots` are meaningless): `slot_sample` (the store's sample index),
    `slot_kind` (0 cot, 1 code), `slot_tokens`, `slot_end` (index into END_NAMES),
    `slot_start_s` / `slot_end_s` (NaN when not started / not ended), `slot_boxed` /
    `slot_code` (VAL_NONE when none). Totals as in `CompetitionResult`.
    """

    problem: np.ndarray
    problem_ids: tuple[str, ...]
    truth: tuple[int | None, ...]
    answer: np.ndarray
    time_s: np.ndarray
    start_s: np.ndarray
    level: np.ndarray
    stop_code: np.ndarray
    stop_reasons: tuple[str, ...]
    samples_started: np.ndarray
    samples_stopped: np.ndarray
    tokens: np.ndarray
    n_slots: np.ndarray
    slot_sample: np.ndarray
    slot_kind: np.ndarray
    slot_tokens: np.ndarray
    slot_end: np.ndarray
    slot_start_s: np.ndarray
    slot_end_s: np.ndarray
    slot_boxed: np.ndarray
    slot_code: np.ndarray
    score: int
    total_time_s: float
    overtime: bool
    startup_s: float
    budget_s: float
    cutoff_s: float
    overtime_rule: str = "zero"

    def to_result(self) -> CompetitionResult:
        """The same competition as the reference's result object (for reports and plots)."""
        questions = []
        for q in range(len(self.problem)):
            samples = tuple(
                SampleOutcome(
                    index=i, source_sample=int(self.slot_sample[q, i]),
                    kind=KIND_NAMES[int(self.slot_kind[q, i])],
                    start_s=float(self.slot_start_s[q, i]), end_s=float(self.slot_end_s[q, i]),
                    tokens=int(self.slot_tokens[q, i]),
                    end=END_NAMES[int(self.slot_end[q, i])],  # type: ignore[arg-type]
                    boxed=_value(self.slot_boxed[q, i]), code=_value(self.slot_code[q, i]),
                )
                for i in range(int(self.n_slots[q]))
            )
            questions.append(
                QuestionResult(
                    problem_id=self.problem_ids[q], order=q, level=int(self.level[q]),
                    answer=int(self.answer[q]), truth=self.truth[q],
                    start_s=float(self.start_s[q]), time_s=float(self.time_s[q]),
                    stop_reason=self.stop_reasons[q], samples=samples,
                )
            )
        return CompetitionResult(
            questions=tuple(questions), startup_s=self.startup_s, budget_s=self.budget_s,
            cutoff_s=self.cutoff_s, overtime_rule=self.overtime_rule,
        )


def _value(v: int) -> int | None:
    return None if int(v) == VAL_NONE else int(v)


class FastSimulator:
    """Compiled replay over one trace store and one hardware profile.

    Build it once per (problems, profile) — encoding walks every sample — and call
    `competition` / `bootstrap` with as many policies as needed; policies are encoded once each
    (cached). Instances are not mutated after construction, so one can serve many threads.
    The first call in a fresh environment compiles the kernel (numba, cached on disk).
    Limits (a clear ValueError otherwise; `simulator.replay` has neither): token counts below
    2**30 and at most 64 samples a question (the kernel's active slots are one 64-bit set).
    """

    def __init__(self, problems: Sequence[ProblemTrace], profile: HardwareProfile) -> None:
        self.problems = tuple(problems)
        self.profile = profile
        self._traces = encode_traces(self.problems)
        self._prof = encode_profile(profile)
        tr = self._traces
        if max(int(tr.samp[:, SA_NTOK].max(initial=0)), int(tr.samp[:, SA_PROMPT].max(initial=0)),
               int(tr.ans_i[:, AN_TOK].max(initial=0))) >= kernel.TOKEN_LIMIT:
            raise ValueError(f"fast path: token counts must be below {kernel.TOKEN_LIMIT} "
                             "(its slot tables are int32); use simulator.replay")
        # confidence tables by what they depend on; least recently used first (a few kept:
        # one table of a 50 × 32 × 10k-token store is ~30 MB)
        self._conf: OrderedDict[tuple[int, int, int, int], tuple[np.ndarray, np.ndarray]] = (
            OrderedDict())
        self._conf_lock = threading.Lock()

    def _confidence(self, policy: Policy) -> tuple[np.ndarray, np.ndarray]:
        """The confidence tables the policy reads (`encode_confidence`, cached per what they
        depend on); empty for a policy that reads no confidence."""
        key = confidence_key(policy)
        if key is None:
            return _NO_CONF
        with self._conf_lock:
            if key in self._conf:
                self._conf.move_to_end(key)
                return self._conf[key]
        require_confidence(self.problems, policy.name)  # the reference's words, naming the policy
        tables = encode_confidence(self.problems, key)
        with self._conf_lock:
            self._conf[key] = tables
            while len(self._conf) > _CONF_TABLES_KEPT:
                self._conf.popitem(last=False)
        return tables

    # ------------------------------------------------------------------ one competition

    def competition(
        self,
        policy: Policy,
        *,
        order: np.ndarray | Sequence[int] | None = None,
        draws: Sequence[DrawSpec] | None = None,
        budget_s: float = DEFAULT_BUDGET_S,
        overtime_rule: str = "zero",
    ) -> FastCompetition:
        """One competition, like `replay_competition([problems[i] for i in order], draws=...)`.

        Args:
            policy: the policy under test.
            order: indices into `problems` in serving order (default: all, in store order);
                repeats allowed.
            draws: aligned with `order`, the samples filling each question's slots: a
                `SampleDraw` of this store's traces, or a pair (cot, code) of index arrays into
                `problem.of_kind("cot")` / `of_kind("code")` in the order they are used.
                Default: recorded order.
            budget_s: the whole budget: it caps the cutoff (`effective_cutoff`); overtime when
                exceeded.
            overtime_rule: how an overtime run scores (`core.scoring`).
        """
        check_overtime_rule(overtime_rule)
        policy = within_budget(policy, budget_s)
        tr = self._traces
        enc = _encoded(policy, tr.max_answers)
        order_arr = (np.arange(len(self.problems), dtype=np.int64) if order is None
                     else np.asarray(order, dtype=np.int64).reshape(-1))
        if order_arr.size and (order_arr.min() < 0 or order_arr.max() >= len(self.problems)):
            raise ValueError(f"order: indices must be in 0..{len(self.problems) - 1}")
        nq = int(order_arr.size)
        if draws is not None and len(draws) != nq:
            raise ValueError(
                f"draws: expected {nq} entries (one per served question), got {len(draws)}"
            )
        width = max([tr.max_pool] + ([_draw_width(d) for d in draws] if draws is not None else []))
        dcot = np.zeros((nq, width), np.int64)
        dcode = np.zeros((nq, width), np.int64)
        dncot = np.zeros(nq, np.int64)
        dncode = np.zeros(nq, np.int64)
        for q, p in enumerate(order_arr):
            cot, code = self._draw_rows(int(p), None if draws is None else draws[q])
            dcot[q, : len(cot)] = cot
            dcode[q, : len(code)] = code
            dncot[q], dncode[q] = len(cot), len(code)
        out_i = np.zeros((nq, kernel.N_OUT), np.int64)
        out_t = np.zeros(nq, np.float64)
        det_i = np.zeros((nq, enc.max_slots, kernel.N_DET), np.int64)
        det_f = np.full((nq, enc.max_slots, kernel.N_SF), math.nan)
        scores = np.zeros(1, np.int64)
        totals = np.zeros(1, np.float64)
        overtime = np.zeros(1, np.bool_)
        answered = np.zeros(1, np.int64)
        cg, coff = self._confidence(policy)
        ok = kernel.run(
            _UNUSED_RS.copy(), 1, False, order_arr, order_arr.copy(), dcot, dncot, dcode, dncode,
            tr.samp, tr.ans_i, tr.ans_exec_s, tr.prob, tr.pool, enc.pi, enc.pf, self._prof,
            float(budget_s), tr.max_answers, tr.value_span, scores, totals, overtime, answered,
            out_i, out_t, True, det_i, det_f, cg, coff, False, np.zeros(0, np.int64),
        )
        if not ok:
            self._raise_failed(order_arr)
        score = rule_score(int(scores[0]), int(answered[0]), bool(overtime[0]), overtime_rule)
        return self._package(enc, order_arr, out_i, out_t, det_i, det_f, score,
                             float(totals[0]), bool(overtime[0]), float(budget_s), policy,
                             overtime_rule)

    def _draw_rows(self, p: int, spec: DrawSpec | None) -> tuple[list[int], list[int]]:
        """Rows of `samp` for a problem's CoT and code pools, in the order they are used."""
        tr = self._traces
        problem = self.problems[p]
        cot0, code0 = int(tr.prob[p, PR_COT0]), int(tr.prob[p, PR_CODE0])
        ncot, ncode = int(tr.prob[p, PR_NCOT]), int(tr.prob[p, PR_NCODE])
        if spec is None:
            return list(tr.pool[cot0:cot0 + ncot]), list(tr.pool[code0:code0 + ncode])
        if isinstance(spec, SampleDraw):
            try:
                return ([tr.sample_row[id(s)] for s in spec.cot],
                        [tr.sample_row[id(s)] for s in spec.code])
            except KeyError:
                raise ValueError(
                    f"draws: a SampleDraw for problem {problem.problem_id!r} holds a trace that is "
                    "not in this simulator's problems"
                ) from None
        cot_idx, code_idx = (np.asarray(x, dtype=np.int64).reshape(-1) for x in spec)
        for name, idx, n in (("cot", cot_idx, ncot), ("code", code_idx, ncode)):
            if idx.size and (idx.min() < 0 or idx.max() >= n):
                raise ValueError(f"draws: {name} index out of range for problem "
                                 f"{problem.problem_id!r} ({n} samples)")
        return list(tr.pool[cot0 + cot_idx]), list(tr.pool[code0 + code_idx])

    def _package(self, enc: EncodedPolicy, order: np.ndarray, out_i: np.ndarray,
                 out_t: np.ndarray, det_i: np.ndarray, det_f: np.ndarray, score: int,
                 total: float, overtime: bool, budget_s: float, policy: Policy,
                 overtime_rule: str) -> FastCompetition:
        tr = self._traces
        k = kernel
        startup = float(self._prof[PF_STARTUP])
        clock = np.empty(len(order), np.float64)
        t = startup
        for q in range(len(order)):  # the competition clock, summed as the reference does
            clock[q] = t
            t += float(out_t[q])
        level = out_i[:, k.O_LEVEL].copy()
        stop = out_i[:, k.O_STOP].copy()
        rows = det_i[:, :, k.D_ROW]
        return FastCompetition(
            problem=order.copy(),
            problem_ids=tuple(self.problems[int(p)].problem_id for p in order),
            truth=tuple(self.problems[int(p)].answer for p in order),
            answer=out_i[:, k.O_ANSWER].copy(), time_s=out_t, start_s=clock, level=level,
            stop_code=stop,
            stop_reasons=tuple(stop_label(enc, int(lv), int(c)) for lv, c in zip(level, stop)),
            samples_started=out_i[:, k.O_STARTED].copy(),
            samples_stopped=out_i[:, k.O_STOPPED].copy(), tokens=out_i[:, k.O_TOKENS].copy(),
            n_slots=out_i[:, k.O_NSLOTS].copy(),
            slot_sample=tr.samp[rows, SA_ID], slot_kind=tr.samp[rows, SA_KIND],
            slot_tokens=det_i[:, :, k.D_TOKENS].copy(), slot_end=det_i[:, :, k.D_END].copy(),
            slot_start_s=det_f[:, :, k.SF_START].copy(), slot_end_s=det_f[:, :, k.SF_END].copy(),
            slot_boxed=det_i[:, :, k.D_BOXED].copy(), slot_code=det_i[:, :, k.D_CODE].copy(),
            score=score, total_time_s=total, overtime=overtime, startup_s=startup,
            budget_s=budget_s, cutoff_s=float(policy.schedule.cutoff_s),
            overtime_rule=overtime_rule,
        )

    # ------------------------------------------------------------------ bootstrap

    def bootstrap_arrays(
        self,
        policy: Policy,
        *,
        replicates: int,
        seed: int,
        n_questions: int | None = None,
        budget_s: float = DEFAULT_BUDGET_S,
        problem_subset: Sequence[int] | np.ndarray | None = None,
        overtime_rule: str = "zero",
        paired: bool = False,
        tokens_out: np.ndarray | None = None,
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Per replicate: score under `overtime_rule` (int64), total time (float64), overtime
        (bool); see `bootstrap`. `tokens_out` (int64[replicates]), when given, receives each
        replicate's generated tokens."""
        check_overtime_rule(overtime_rule)
        policy = within_budget(policy, budget_s)
        if replicates < 0:
            raise ValueError("replicates must be ≥ 0")
        if tokens_out is not None and (tokens_out.dtype != np.int64
                                       or tokens_out.shape != (replicates,)):
            raise ValueError("tokens_out must be int64[replicates]")
        subset = (np.arange(len(self.problems), dtype=np.int64) if problem_subset is None
                  else np.asarray(problem_subset, dtype=np.int64).reshape(-1))
        if subset.size == 0:
            raise ValueError("problem_subset: no problems to draw from")
        if subset.min() < 0 or subset.max() >= len(self.problems):
            raise ValueError(f"problem_subset: indices must be in 0..{len(self.problems) - 1}")
        nq = int(subset.size) if n_questions is None else int(n_questions)
        if nq < 0:
            raise ValueError("n_questions must be ≥ 0")
        tr = self._traces
        enc = _encoded(policy, tr.max_answers)
        scores = np.zeros(replicates, np.int64)
        totals = np.zeros(replicates, np.float64)
        overtime = np.zeros(replicates, np.bool_)
        answered = np.zeros(replicates, np.int64)
        # numpy's PCG64 for the seed, stepped in the kernel: the same draws as
        # bootstrap_competitions makes from np.random.default_rng(seed)
        rs = kernel.pcg64_state(np.random.default_rng(seed))
        width = tr.max_pool
        cg, coff = self._confidence(policy)
        ok = kernel.run(
            rs, int(replicates), True, subset, np.zeros(nq, np.int64),
            np.zeros((nq, width), np.int64), np.zeros(nq, np.int64),
            np.zeros((nq, width), np.int64), np.zeros(nq, np.int64), tr.samp, tr.ans_i,
            tr.ans_exec_s, tr.prob, tr.pool, enc.pi, enc.pf, self._prof, float(budget_s),
            tr.max_answers, tr.value_span, scores, totals, overtime, answered,
            np.zeros((nq, kernel.N_OUT), np.int64), np.zeros(nq, np.float64), False,
            np.zeros((1, 1, kernel.N_DET), np.int64), np.zeros((1, 1, kernel.N_SF), np.float64),
            cg, coff, bool(paired),
            tokens_out if tokens_out is not None else np.zeros(0, np.int64),  # none: not summed
        )
        if not ok:
            self._raise_failed(subset)
        return rule_score(scores, answered, overtime, overtime_rule), totals, overtime

    def _raise_failed(self, served: np.ndarray) -> None:
        """The kernel gave up: a served problem without samples (as the reference raises), or a
        replay that stopped making progress (a bug in the fast path)."""
        for p in served:
            if not self.problems[int(p)].samples:
                raise NoRecordedSamples(self.problems[int(p)])
        raise RuntimeError("fast path: a question replay stopped making progress (a bug; "
                           "use simulator.replay for this case and report it)")

    def bootstrap(
        self,
        policy: Policy,
        *,
        replicates: int,
        seed: int,
        n_questions: int | None = None,
        budget_s: float = DEFAULT_BUDGET_S,
        problem_subset: Sequence[int] | np.ndarray | None = None,
        overtime_rule: str = "zero",
        paired: bool = False,
    ) -> BootstrapSummary:
        """`summarize(bootstrap_competitions(...))` with the same draws per seed.

        Args:
            policy: the policy under test.
            replicates: number of competitions (≥ 1).
            seed: seeds `np.random.default_rng`, consumed exactly as the reference does.
            n_questions: questions per competition (default: every problem of the subset once,
                in a random order; otherwise drawn with replacement).
            budget_s: the whole budget.
            problem_subset: indices into `problems` to draw from (e.g. a cross-validation fold);
                the reference equivalent is passing `[problems[i] for i in problem_subset]`.
            overtime_rule: how an overtime run scores (`core.scoring`; default `zero`).
            paired: replicates 2i and 2i + 1 serve the same questions (AIMO-3 scoring).
        """
        if replicates < 1:
            raise ValueError("replicates must be ≥ 1")
        scores, totals, overtime = self.bootstrap_arrays(
            policy, replicates=replicates, seed=seed, n_questions=n_questions, budget_s=budget_s,
            problem_subset=problem_subset, overtime_rule=overtime_rule, paired=paired,
        )
        n_sub = len(self.problems) if problem_subset is None else len(problem_subset)
        nq = n_sub if n_questions is None else int(n_questions)
        return summarize_arrays(scores, totals, overtime, nq)


def summarize_arrays(scores: np.ndarray, totals: np.ndarray, overtime: np.ndarray,
                     n_questions: int) -> BootstrapSummary:
    """`simulator.replay.summarize` on arrays (same numpy reductions, so identical numbers)."""
    s = np.asarray(scores, dtype=float)
    t = np.asarray(totals, dtype=float)
    return BootstrapSummary(
        replicates=len(s),
        n_questions=n_questions if len(s) else 0,
        mean_score=float(s.mean()),
        score_lo=float(np.percentile(s, 5)),
        score_hi=float(np.percentile(s, 95)),
        mean_time_s=float(t.mean()),
        p_overtime=float(np.mean([bool(o) for o in overtime])),
        scores=tuple(int(x) for x in s),
        times_s=tuple(float(x) for x in t),
    )


def _encoded(policy: Policy, max_answers: int) -> EncodedPolicy:
    """The policy's arrays for a store of at most `max_answers` answers a sample (the sample-stop
    tables' size), refused when a level has more slots than the kernel's bit set."""
    enc = encode_policy(policy, max_answers)
    if enc.max_slots > kernel.MAX_SLOTS:
        raise ValueError(
            f"schedule.levels: the fast path runs at most {kernel.MAX_SLOTS} samples a question "
            f"(this policy has {enc.max_slots}); use simulator.replay for it"
        )
    return enc


def _draw_width(spec: DrawSpec) -> int:
    if isinstance(spec, SampleDraw):
        return max(len(spec.cot), len(spec.code), 1)
    return max(len(spec[0]), len(spec[1]), 1)


__all__ = ["DrawSpec", "FastCompetition", "FastSimulator", "summarize_arrays"]
