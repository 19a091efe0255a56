"""Compiled replay: the reference event loop (`simulator.replay.question`) over flat arrays.

Why: the tuner scores thousands of policies, each over hundreds of bootstrap competitions; the
reference path spends its time in Python objects. This module transcribes `replay_question`,
`replay_competition` and `bootstrap_competitions` onto the arrays of `encode.py` (layouts
there), with the same floating-point operations in the same order, so times agree bit for bit
and every decision is the same. What it keeps incrementally instead of recomputing (same values,
less work):
- per sample: the latest boxed / code / any answer, the valid answer, and the stop rule's
  condition token (`stop_condition_token` is prefix-stable, so it is updated per added answer:
  the counting answers seen and — only for a rule whose step reads them — the current run and
  how often this value counted; the verdict is one compare for a threshold on seen, else a
  look-up in the rule's table, `_sample_holds`);
- per sample: the next token at which a check could change something, which only that sample's
  own check can move; the batch's tokens advance together, so the loop keeps a question step
  count and each sample's tokens are `steps - g0`;
- per question: how often each valid value occurs (question-stop rules without a window need only
  the largest count) and the consistency verdict, recomputed only when a valid answer changed;
  the thresholds already passed and the next one (the clock never goes back);
- per call: the check-grid point of every recorded answer, the vote's small-or-round flag of
  every value, and each sample's per-slot constants (a policy and a store fix them all).

Contract: `run` is the entry point (`api.py` calls it); everything else is a helper, inlined
into it. All functions are pure in their inputs except for the output and scratch arrays they
are handed (and the random generator `run` advances).

Speed notes (measured with bench/bench_simulator.py, and by instruction and branch-miss counts
under valgrind, which unlike wall time on a shared machine are exact): helpers never allocate
and are compiled without numba's reference counting (`_nrt=False`: passing arrays then costs no
atomic operations) and force-inlined (numba otherwise calls them through pointers, marshalling
every array); per-slot state is one row per slot (`sl[slot, field]`), so a slot's fields share
cache lines; the slot, sample and answer tables are int32 (see TOKEN_LIMIT), an answer's token,
value, source and check-grid point share one row; indices that cannot be negative are unsigned
(the uint32 scratch arrival / gp_s / gp_a, `np.uint32(...)` casts), so numba emits no
negative-index wraparound for them; one entry point means one compiled body (the first call
compiles ~30 s, cached on disk).
The active slots are a uint64 bit set walked in slot order with trailing-zero counts: the next
check is found by two plain passes over the started slots (a minimum, then the due slots as a bit
set; ended slots hold BIG, so the loops have no data-dependent branches), a check visits only the
due slots, and no list of active slots is kept or compacted (together ~8% fewer instructions and
a quarter fewer branch misses; hence at most MAX_SLOTS slots a question). The question-stop
rules' verdict for (#valid answers, largest count of one value) is a table (`_verdicts`, from
each rule's table of its registered step), so only windows are counted per check. The
bootstrap's random numbers are numpy's PCG64 stepped in the kernel (one 128-bit multiply, no
call into numpy per draw); the time thresholds end in a +inf sentinel. Hard-to-predict scans
use selects instead of branches; slots that started together share one grid division; the
question-stop rules are skipped while no value is frequent enough, the timeouts while the clock
is before the smallest one; a slot is made fresh in the pass that draws it, and one pass ends a
question (vote, counts, zeroing).
The sample stops are two slot fields, S_STOPAT (a check at or past it ends the sample) and S_TGT
(the check it needs), into which the stop rule and the confidence stop fold as each becomes
known (`_stop_at`): a check costs one compare for both, and a policy without confidence reads
no confidence state at all; a replicate's tokens are summed only when the caller asks.
"""

from __future__ import annotations

import math

import numpy as np
from llvmlite import ir
from numba import njit, types
from numba.cpython.unsafe.numbers import trailing_zeros
from numba.extending import intrinsic, register_jitable

from aimo.core.hardware import timing

from aimo.simulator.fast import encode as E

EPS = 1e-9  # question._EPS
BIG = 1 << 62
ITERATION_LIMIT = 1 << 26  # loop iterations of one question before giving up (see STOP_CODE_STUCK)
# allocation-free helpers: no reference counting; the numpy error model (no ZeroDivisionError
# branches: every divisor is validated ≥ 1 by the policy model)
_HELPER = {"cache": True, "_nrt": False, "error_model": "numpy", "forceinline": True}

# slot states
ST_QUEUED, ST_ACTIVE, ST_DONE = 0, 1, 2
# columns of the per-slot int table `sl` (one row per slot)
S_ROW = 0  # sample row in `samp`
S_KIND = 1
S_CAP = 2  # min(n_tokens, max_tokens)
S_ENDLEN = 3  # ends as "length" (else "finished")
S_STATE = 4
S_G = 5  # tokens generated, once the slot is no longer active
S_G0 = 6  # question step count when the slot started (while active, g = steps - g0)
S_BASE = 7  # next check (question steps) from cap, next answer and stop rule
S_NEXT = 8  # next recorded answer not yet seen by a check (0-based within the sample)
S_ENDR = 9  # END_* code
S_PDN = 10  # pending code results
S_TRN = 11  # answers known to the tracker
S_LB = 12  # latest boxed value (VAL_NONE: none)
S_LC = 13  # latest code value (VAL_FAIL included)
S_LA = 14  # latest value of either source
S_VALID = 15  # valid answer (VNONE: none)
S_REACHED = 16  # max token over known answers
S_SEEN = 17  # counting answers seen by the stop rule
S_HOLD = 18  # token at which the stop rule's condition held (-1: not yet)
S_TGT = 19  # the sample stops' next check: min(check-grid point of S_HOLD + grace, the
#             confidence stop token); I32_MAX while neither is known
S_A0 = 20  # first answer row
S_NANS = 21  # recorded answers
S_PROMPT = 22  # prompt tokens
S_GRACE = 23  # the kind's grace tokens
S_STOPAT = 24  # a check at this token or later stops the sample: min(S_HOLD + grace, the
#                confidence stop token), I32_MAX while neither is known (one compare a check)
S_RUN = 25  # the stop rule's run: how many of the last counting answers had S_RUNV
S_RUNV = 26  # the value of the last counting answer (VAL_NONE: none yet)
N_S = 27
# columns of the per-slot float table `slf`
SF_START, SF_END, SF_PMIN = 0, 1, 2  # PMIN: earliest pending code result (inf: none)
N_SF = 3
# question scalars `qi`
QI_NARR = 0  # samples with a valid answer (arrival[:QI_NARR] in arrival order)
QI_DIRTY = 1  # a valid answer changed since the last consistency verdict
QI_QCACHE = 2  # that verdict
QI_NPEND = 3  # pending code results (gp_*[:QI_NPEND], in dispatch order)
QI_MAXC = 4  # largest count of one valid value
QI_MAXC_STALE = 5  # QI_MAXC may be too large (a count at the maximum went down)
QI_HIST = 6  # QuestionTracker.n_history (kept only with P_EARLY_HIST)
N_QI = 7
VNONE = -1
# per-question outputs `out_i` columns
O_PROBLEM, O_ANSWER, O_LEVEL, O_STOP, O_STARTED, O_STOPPED, O_TOKENS, O_NSLOTS = range(8)
N_OUT = 8
# per-slot details `det_i` (last axis); `det_f` uses SF_START, SF_END
D_ROW, D_TOKENS, D_END, D_BOXED, D_CODE = range(5)
N_DET = 5
AN_GRID = 3  # the workspace's answer table: ans_i's columns (AN_*), then the check-grid point
# The slot, sample and answer tables are int32 (half the cache lines). Token counts of the traces
# are below TOKEN_LIMIT (api.py checks), so a slot's cap, steps and answer tokens fit; the policy's
# grace tokens are stored clamped to TOKEN_LIMIT (a grace that large never ends a sample, like the
# real one) and check-grid points to I32_MAX (they only enter min() with the cap).
TOKEN_LIMIT = 1 << 30
I32_MAX = (1 << 31) - 1
MAX_SLOTS = 64  # the active slots are one uint64 bit set (api.py checks)
ZERO = np.uint64(0)
ONE = np.uint64(1)


# --------------------------------------------------------------------------- time model


# The one step-time model (core.hardware.timing), compiled: no copy of the formula here.
# register_jitable lets the compiled functions call each other through timing's globals.
# (numba's on-disk cache is keyed on this file: after editing timing.py, clear __pycache__.)
register_jitable(timing.step_seconds)
register_jitable(timing.steps_seconds)
_steps_duration = njit(**_HELPER)(timing.steps_seconds)
_steps_within = njit(**_HELPER)(timing.steps_fitting)
_prefill_seconds = njit(**_HELPER)(timing.prefill_seconds)


@njit(**_HELPER)
def _grid(token: int, every: int) -> int:
    """decisions.check_token: the first check point at or after `token` (never 0)."""
    return max(every, -(-token // every) * every)


# --------------------------------------------------------------------------- the tracker


@njit(**_HELPER)
def _stop_at(s: int, sl: np.ndarray, stop: int, target: int) -> None:
    """A sample stop of slot `s` became known: a check at token ≥ `stop` ends the sample, and
    its next check is due by `target` (the rule's: its grid point; the confidence stop's: the
    token itself). The earliest of the slot's stops wins (S_STOPAT, S_TGT)."""
    if stop < sl[s, S_STOPAT]:
        sl[s, S_STOPAT] = stop
    if target < sl[s, S_TGT]:
        sl[s, S_TGT] = target


@njit(**_HELPER)
def _rule_counts(pi: np.ndarray, base: int, src: int, is_code: bool, val: int) -> bool:
    """Whether an answer counts for the sample-stop rule at pi[base:] whose counted sources are
    `src` (stop_condition_token: the encoder resolved the rule's sources)."""
    if src == E.SRC_CODE and not is_code:
        return False
    if src == E.SRC_BOXED and is_code:
        return False
    if pi[base + E.RS_POS_ONLY] != 0:
        return val > 0
    return val >= 0


@njit(**_HELPER)
def _sample_holds(pi: np.ndarray, t: int, seen: int, same: int, run: int) -> bool:
    """The sample-stop rule's registered step at (seen, same, run), from its table at pi[t]
    (encode.sample_table: the cap c, then the clamped verdicts)."""
    c = pi[t]
    w = c + 1
    return pi[t + 1 + (min(seen, c) * w + min(same, c)) * w + min(run, c)] != 0


@njit(**_HELPER)
def _add_answer(s: int, j: int, every: int, sl: np.ndarray, tr_a: np.ndarray,
                arrival: np.ndarray, qi: np.ndarray, vcnt: np.ndarray, ans_i: np.ndarray,
                pi: np.ndarray) -> None:
    """QuestionTracker.add_answer for answer row `j` of slot `s`, plus the stop-rule state and
    the valid-value counts."""
    tok = ans_i[j, E.AN_TOK]
    val = ans_i[j, E.AN_VAL]
    is_code = ans_i[j, E.AN_CODE] == 1
    n = sl[s, S_TRN]
    tr_a[s, n] = j
    sl[s, S_TRN] = n + 1
    if val != E.VAL_NONE:
        if val > 0 and pi[E.P_EARLY_HIST] != 0 and val != sl[s, S_LC if is_code else S_LB]:
            qi[QI_HIST] += 1  # a new entry of the seed's answer history
        sl[s, S_LA] = val
        if is_code:
            sl[s, S_LC] = val
        else:
            sl[s, S_LB] = val
    reached = max(sl[s, S_REACHED], tok)
    sl[s, S_REACHED] = reached
    if sl[s, S_HOLD] < 0:
        base = E.P_RULE_COT + sl[s, S_KIND] * E.RS_STRIDE
        src = pi[base + E.RS_SRC]
        if src != E.SRC_NONE and _rule_counts(pi, base, src, is_code, val):
            seen = sl[s, S_SEEN] + 1
            sl[s, S_SEEN] = seen
            reads = pi[base + E.RS_READS]
            if reads == E.READS_SEEN:  # a threshold on seen (encode.sample_table)
                held = seen >= pi[base + E.RS_TABLE]
            else:
                run = sl[s, S_RUN] + 1 if val == sl[s, S_RUNV] else 1
                sl[s, S_RUN] = run
                sl[s, S_RUNV] = val
                same = run
                if reads == E.READS_SAME:
                    same = 1
                    for i in range(n):
                        jj = tr_a[s, i]
                        if ans_i[jj, E.AN_VAL] == val and _rule_counts(
                            pi, base, src, ans_i[jj, E.AN_CODE] == 1, val
                        ):
                            same += 1
                held = _sample_holds(pi, pi[base + E.RS_TABLE], seen, same, run)
            if held:
                sl[s, S_HOLD] = reached
                _stop_at(s, sl, min(reached + sl[s, S_GRACE], I32_MAX),
                         min(_grid(reached + sl[s, S_GRACE], every), I32_MAX))
    if pi[E.P_VALID_PREFER_CODE] != 0:
        value = sl[s, S_LC]
        if value == E.VAL_NONE:
            value = sl[s, S_LB]
    else:
        value = sl[s, S_LA]
    ok = value > 0 if pi[E.P_VALID_POS_ONLY] != 0 else value >= 0
    new = value if ok else VNONE
    old = sl[s, S_VALID]
    if new != old:
        sl[s, S_VALID] = new
        qi[QI_DIRTY] = 1
        if old != VNONE:
            c = vcnt[np.uint32(old)]  # (valid values are ≥ 0: unsigned, no wraparound)
            vcnt[np.uint32(old)] = c - 1
            if c == qi[QI_MAXC]:
                qi[QI_MAXC_STALE] = 1
        if new != VNONE:
            c = vcnt[np.uint32(new)] + 1
            vcnt[np.uint32(new)] = c
            if c > qi[QI_MAXC]:
                qi[QI_MAXC] = c
        if old == VNONE:
            arrival[np.uint32(qi[QI_NARR])] = s
            qi[QI_NARR] += 1
        elif new == VNONE:
            narr = qi[QI_NARR]
            k = 0
            for i in range(narr):
                if arrival[i] != s:
                    arrival[k] = arrival[i]
                    k += 1
            qi[QI_NARR] = k


@njit(**_HELPER)
def _absorb(s: int, upto: float, every: int, sl: np.ndarray, slf: np.ndarray,
            gp_t: np.ndarray, gp_a: np.ndarray, gp_s: np.ndarray, tr_a: np.ndarray,
            arrival: np.ndarray, qi: np.ndarray, vcnt: np.ndarray, ans_i: np.ndarray,
            pi: np.ndarray) -> None:
    """absorb_ready_code: code results of slot `s` ready by `upto` reach the tracker, in the
    order they were dispatched."""
    if sl[s, S_PDN] == 0:
        return
    n = qi[QI_NPEND]
    keep = 0
    pmin = math.inf
    for i in range(n):
        t = gp_t[i]
        if gp_s[i] == s:
            if t <= upto:
                _add_answer(s, gp_a[i], every, sl, tr_a, arrival, qi, vcnt, ans_i, pi)
                sl[s, S_PDN] -= 1
                continue
            if t < pmin:
                pmin = t
        gp_t[keep] = t
        gp_a[keep] = gp_a[i]
        gp_s[keep] = gp_s[i]
        keep += 1
    qi[QI_NPEND] = keep
    slf[s, SF_PMIN] = pmin


@njit(**_HELPER)
def _detect(s: int, g: int, now: float, busy: float, noticed: float, mode: int, every: int,
            sl: np.ndarray, slf: np.ndarray, gp_t: np.ndarray, gp_a: np.ndarray,
            gp_s: np.ndarray, tr_a: np.ndarray, arrival: np.ndarray, qi: np.ndarray,
            vcnt: np.ndarray, ans_i: np.ndarray, ans_exec_s: np.ndarray,
            pi: np.ndarray, wfree: np.ndarray, nworkers: int) -> tuple[float, float]:
    """detect(): answers up to token `g` of slot `s`; the newest new code block is dispatched
    (with `nworkers` > 0 it runs on the worker that frees first, `wfree` = when each frees);
    `mode` E.CODE_PARALLEL / CODE_SERIAL / CODE_INLINE; with pi[P_BOXES_LAST] only the last new
    box is recorded (read_boxes). Returns the batch clock (serial code execution advances it)
    and when the loop is free (an inline run keeps it busy from max(now, busy) on)."""
    a0 = sl[s, S_A0]
    na = sl[s, S_NANS]
    nxt = sl[s, S_NEXT]
    newest = -1
    exec_s = 0.0
    last_only = pi[E.P_BOXES_LAST] != 0
    lastbox = -1
    while nxt < na and ans_i[np.uint32(a0 + nxt), E.AN_TOK] <= g:
        j = np.uint32(a0 + nxt)  # unsigned indices: no negative-index wraparound
        if ans_i[j, E.AN_CODE] == 1:
            newest = j
            exec_s = ans_exec_s[j]
        elif last_only:
            lastbox = j
        else:
            _add_answer(s, j, every, sl, tr_a, arrival, qi, vcnt, ans_i, pi)
        nxt += 1
    sl[s, S_NEXT] = nxt
    if lastbox >= 0:
        _add_answer(s, lastbox, every, sl, tr_a, arrival, qi, vcnt, ans_i, pi)
    if newest >= 0:
        if mode != E.CODE_PARALLEL:
            if mode == E.CODE_SERIAL:
                now += exec_s
            else:
                busy = (now if now > busy else busy) + exec_s
            _add_answer(s, newest, every, sl, tr_a, arrival, qi, vcnt, ans_i, pi)
        else:
            if nworkers > 0:  # first dispatched, first served on the earliest free worker
                w = 0
                for k in range(1, nworkers):
                    if wfree[k] < wfree[w]:
                        w = k
                ready = (now if now > wfree[w] else wfree[w]) + exec_s
                wfree[w] = ready
            else:
                ready = now + exec_s
            n = qi[QI_NPEND]
            gp_t[n] = ready
            gp_a[n] = newest
            gp_s[n] = s
            qi[QI_NPEND] = n + 1
            sl[s, S_PDN] += 1
            if ready < slf[s, SF_PMIN]:
                slf[s, SF_PMIN] = ready
    _absorb(s, max(now, noticed) + EPS, every, sl, slf, gp_t, gp_a, gp_s, tr_a, arrival, qi,
            vcnt, ans_i, pi)
    return now, busy


@njit(**_HELPER)
def _any_ready(lim: float, qi: np.ndarray, gp_t: np.ndarray, gp_s: np.ndarray,
               sl: np.ndarray) -> bool:
    """Whether an active slot has a code result ready by `lim`."""
    for i in range(qi[QI_NPEND]):
        if gp_t[i] <= lim and sl[gp_s[i], S_STATE] == ST_ACTIVE:
            return True
    return False


@njit(**_HELPER)
def _base_target(s: int, sl: np.ndarray, agrid: np.ndarray) -> int:
    """next_check_token without the armed / ready-code term, in the slot's own tokens."""
    nxt = min(sl[s, S_CAP], sl[s, S_TGT])
    k = sl[s, S_NEXT]
    if k < sl[s, S_NANS]:
        nxt = min(nxt, agrid[np.uint32(sl[s, S_A0] + k), AN_GRID])
    return nxt


@njit(**_HELPER)
def _fresh_slot(s: int, row: int, sl: np.ndarray, slf: np.ndarray, sstat: np.ndarray) -> None:
    """Slot `s` as a fresh (queued) slot of sample row `row`: constants, then the fields it
    takes from its sample (sstat[row])."""
    sl[s, S_ROW] = row
    sl[s, S_KIND] = sstat[row, 0]
    sl[s, S_CAP] = sstat[row, 1]
    sl[s, S_ENDLEN] = sstat[row, 2]
    sl[s, S_STATE] = ST_QUEUED
    sl[s, S_G] = 0
    sl[s, S_G0] = 0
    sl[s, S_BASE] = 0
    sl[s, S_NEXT] = 0
    sl[s, S_ENDR] = E.END_QUEUED
    sl[s, S_PDN] = 0
    sl[s, S_TRN] = 0
    sl[s, S_LB] = E.VAL_NONE
    sl[s, S_LC] = E.VAL_NONE
    sl[s, S_LA] = E.VAL_NONE
    sl[s, S_VALID] = VNONE
    sl[s, S_REACHED] = 0
    sl[s, S_SEEN] = 0
    sl[s, S_HOLD] = -1
    sl[s, S_RUN] = 0
    sl[s, S_RUNV] = E.VAL_NONE
    sl[s, S_TGT] = I32_MAX
    sl[s, S_STOPAT] = I32_MAX
    sl[s, S_A0] = sstat[row, 3]
    sl[s, S_NANS] = sstat[row, 4]
    sl[s, S_PROMPT] = sstat[row, 5]
    sl[s, S_GRACE] = sstat[row, 6]
    slf[s, SF_START] = math.nan
    slf[s, SF_END] = math.nan
    slf[s, SF_PMIN] = math.inf


@njit(**_HELPER)
def _start_queued(now: float, steps: int, nstarted: int, nrun: int, nslots: int, max_batch: int,
                  prefill: float, prefill_req: float, sl: np.ndarray, slf: np.ndarray,
                  agrid: np.ndarray) -> tuple[float, int]:
    """start_queued(): the first queued slots (always slots nstarted, nstarted + 1, ...) fill
    the free batch places after their prefill. Returns (clock, slots started so far)."""
    end = min(nslots, nstarted + max(0, max_batch - nrun))
    if end <= nstarted:
        return now, nstarted
    total = 0
    for s in range(nstarted, end):
        total += sl[s, S_PROMPT]
    now += _prefill_seconds(prefill, prefill_req, total, end - nstarted)
    for s in range(nstarted, end):
        sl[s, S_STATE] = ST_ACTIVE
        slf[s, SF_START] = now
        sl[s, S_G0] = steps
        sl[s, S_BASE] = steps + _base_target(s, sl, agrid)
    return now, end


# --------------------------------------------------------------------------- question decisions


RULE_OFF, RULE_ON_COUNT, RULE_WINDOW = 0, 1, 2


@njit(**_HELPER)
def _rule_holds(pi: np.ndarray, r: int, n: int, m: int) -> bool:
    """Question-stop rule r's registered step at (n valid answers, most frequent count m),
    looked up in its table (`encode.rule_table`)."""
    base = pi[E.P_OFF_RULES] + r * E.RULE_STRIDE
    return pi[pi[base + E.RU_TABLE] + n * (pi[E.P_MAX_SLOTS] + 1) + m] != 0


@njit(**_HELPER)
def _rule_applies(pi: np.ndarray, r: int, n: int, m: int) -> int:
    """Question-stop rule r with n valid answers, the most frequent value m times: RULE_OFF (it
    cannot hold: steps do not decrease in m and a window's count is at most m), RULE_ON_COUNT
    (it holds: no window, or a window over all n answers) or RULE_WINDOW (its window has to be
    counted)."""
    if not _rule_holds(pi, r, n, m):
        return RULE_OFF
    window = pi[pi[E.P_OFF_RULES] + r * E.RULE_STRIDE + E.RU_WINDOW]
    return RULE_ON_COUNT if window < 0 or window >= n else RULE_WINDOW


@njit(**_HELPER)
def _qcheck(nslots: int, min_answers: int, sl: np.ndarray, arrival: np.ndarray, qi: np.ndarray,
            vals: np.ndarray, vcnt: np.ndarray, wcnt: np.ndarray, pi: np.ndarray,
            qtab: np.ndarray) -> int:
    """consistency_stop on the tracker's valid answers (cached until a valid answer changes).
    Rules without a window (or with one ≥ #valid) need only the largest count of one value, so
    their verdict for (#valid, largest count) is read from `qtab` (`_verdicts`); only a window
    counts values, in `wcnt`, a zeroed scratch left zeroed, and its rule's table decides."""
    if qi[QI_DIRTY] == 0:
        return qi[QI_QCACHE]
    n = qi[QI_NARR]
    if qi[QI_MAXC_STALE] != 0:
        maxc = 0
        for s in range(nslots):
            v = sl[s, S_VALID]
            if v != VNONE and vcnt[np.uint32(v)] > maxc:
                maxc = vcnt[np.uint32(v)]
        qi[QI_MAXC] = maxc
        qi[QI_MAXC_STALE] = 0
    result = qtab[np.uint32(n), np.uint32(qi[QI_MAXC])]
    if result < 0:  # a last_k window decides, from rule −result − 1 on
        result = E.STOP_CODE_NONE
        built = False
        off = pi[E.P_OFF_RULES]
        for r in range(-qtab[np.uint32(n), np.uint32(qi[QI_MAXC])] - 1, pi[E.P_N_RULES]):
            applies = _rule_applies(pi, r, n, qi[QI_MAXC])
            if applies == RULE_OFF:
                continue
            last_k = pi[off + r * E.RULE_STRIDE + E.RU_WINDOW]
            if applies == RULE_ON_COUNT:
                best = qi[QI_MAXC]
            else:
                if not built:  # valid answers in the question's order
                    if pi[E.P_Q_ORDER] == E.ORDER_INDEX:
                        k = 0
                        for s in range(nslots):
                            v = sl[s, S_VALID]
                            if v != VNONE:
                                vals[k] = v
                                k += 1
                    else:
                        for i in range(n):
                            vals[i] = sl[arrival[i], S_VALID]
                    built = True
                best = 0
                for i in range(n - last_k, n):
                    c = wcnt[vals[i]] + 1
                    wcnt[vals[i]] = c
                    if c > best:
                        best = c
                for i in range(n - last_k, n):
                    wcnt[vals[i]] = 0
            if applies == RULE_ON_COUNT or _rule_holds(pi, r, n, best):
                result = E.RULE_BASE + r + 1
                break
    if result == E.STOP_CODE_NONE and n >= min_answers:
        result = E.STOP_CODE_MIN_ANSWERS
    qi[QI_QCACHE] = result
    qi[QI_DIRTY] = 0
    return result


@njit(cache=True)
def _verdicts(pi: np.ndarray) -> np.ndarray:
    """qtab[n, m]: the question-stop rules' verdict with n valid answers whose most frequent
    value occurs m times — a stop code, STOP_CODE_NONE, or −(r + 1) when rule r is the first
    that could hold and needs its window counted (then the rules from r on decide)."""
    ms = pi[E.P_MAX_SLOTS]
    qtab = np.zeros((ms + 1, ms + 1), np.int64)
    for n in range(ms + 1):
        for m in range(ms + 1):
            result = E.STOP_CODE_NONE
            for r in range(pi[E.P_N_RULES]):
                applies = _rule_applies(pi, r, n, m)
                if applies == RULE_OFF:
                    continue
                result = E.RULE_BASE + r + 1 if applies == RULE_ON_COUNT else -(r + 1)
                break
            qtab[n, m] = result
    return qtab


@njit(**_HELPER)
def _uncatch(nslots: int, sl: np.ndarray, pf: np.ndarray) -> int:
    """decisions.leader_uncatchable over the slots (secure: ended with no code pending; open:
    the rest), kind weights summed in slot order: STOP_CODE_UNCATCHABLE or STOP_CODE_NONE."""
    open_w = 0.0
    for s in range(nslots):
        if sl[s, S_STATE] != ST_DONE or sl[s, S_PDN] > 0:
            open_w += pf[E.F_W_CODE] if sl[s, S_KIND] != E.KIND_COT else pf[E.F_W_COT]
    best = -math.inf
    second = -math.inf
    n = 0
    for s in range(nslots):
        v = sl[s, S_VALID]
        if sl[s, S_STATE] != ST_DONE or sl[s, S_PDN] > 0 or v == VNONE:
            continue
        first = True
        for s2 in range(s):
            if sl[s2, S_STATE] == ST_DONE and sl[s2, S_PDN] == 0 and sl[s2, S_VALID] == v:
                first = False
                break
        if not first:
            continue
        total = 0.0
        for s2 in range(s, nslots):
            if sl[s2, S_STATE] == ST_DONE and sl[s2, S_PDN] == 0 and sl[s2, S_VALID] == v:
                total += pf[E.F_W_CODE] if sl[s2, S_KIND] != E.KIND_COT else pf[E.F_W_COT]
        n += 1
        if total > best:
            second = best
            best = total
        elif total > second:
            second = total
    if n == 0:
        return E.STOP_CODE_NONE
    if n == 1:
        second = 0.0
    return E.STOP_CODE_UNCATCHABLE if best > second + open_w else E.STOP_CODE_NONE


@njit(**_HELPER)
def _qstop(nslots: int, min_answers: int, sl: np.ndarray, arrival: np.ndarray, qi: np.ndarray,
           vals: np.ndarray, vcnt: np.ndarray, wcnt: np.ndarray, pi: np.ndarray,
           pf: np.ndarray, qtab: np.ndarray, unc: bool) -> int:
    """The reference's question_check: consistency (`_qcheck`), then (with `unc`, the policy's
    question_stop.uncatchable, read once a question) the uncatchable leader."""
    r = _qcheck(nslots, min_answers, sl, arrival, qi, vals, vcnt, wcnt, pi, qtab)
    if unc and r == E.STOP_CODE_NONE:
        r = _uncatch(nslots, sl, pf)
    return r


@njit(**_HELPER)
def _conf_row(cap: int, every: int, g: int) -> int:
    """decisions.confidence_row: the grid row a sample of g tokens shows."""
    return -(-cap // every) if g >= cap else g // every


@njit(**_HELPER)
def _conf_tok(cg: np.ndarray, off: int, cap: int, every: int, thr: float) -> int:
    """decisions.confidence_stop_token (BIG for None) by bisection: the lowest group confidence
    never rises along the rows."""
    lo = 0
    hi = -(-cap // every)  # rows 0..hi-1 are check points before cap
    while lo < hi:
        mid = (lo + hi) // 2
        if cg[off + mid, E.CONF_LOW_STOP] < thr:
            hi = mid
        else:
            lo = mid + 1
    if lo >= -(-cap // every):
        return BIG
    return lo * every


@njit(**_HELPER)
def _conf_feature(metric: int, cg: np.ndarray, r: int) -> float:
    """decisions.confidence_feature of grid row r."""
    if metric == E.VCONF_INV_ENTROPY:
        return 1.0 / max(cg[r, E.CONF_ENTROPY], E.MIN_ENTROPY)
    if metric == E.VCONF_MEAN:
        return cg[r, E.CONF_MEAN]
    if metric == E.VCONF_TAIL:
        return cg[r, E.CONF_TAIL]
    low = cg[r, E.CONF_LOW_VOTE]
    return low if low < math.inf else cg[r, E.CONF_MEAN]


@njit(**_HELPER)
def _percentile(x: np.ndarray, n: int, p: float) -> float:
    """decisions.percentile_linear of x[:n] (sorted in place)."""
    for i in range(1, n):
        v = x[i]
        j = i
        while j > 0 and x[j - 1] > v:
            x[j] = x[j - 1]
            j -= 1
        x[j] = v
    h = (n - 1) * p / 100.0
    lo = int(math.floor(h))
    hi = min(lo + 1, n - 1)
    return x[lo] + (h - lo) * (x[hi] - x[lo])


@njit(**_HELPER)
def _tcount(qi: np.ndarray, hist: bool) -> int:
    """decisions.early_timeout_count: the valid answers, or the history when none is valid."""
    n = qi[QI_NARR]
    return qi[QI_HIST] if hist and n == 0 else n


@njit(**_HELPER)
def _timeout(now: float, n_valid: int, cutoff_in: float, lv_off: int, tmo: float,
             pi: np.ndarray, pf: np.ndarray, lvf_off: int) -> int:
    """timeout_stop(level, now, n_valid, now > cutoff_in), the level's timeout being `tmo`."""
    for j in range(pi[lv_off + E.LV_N_EARLY]):
        if now > pf[lvf_off + 1 + j] and n_valid >= pi[lv_off + E.LV_EARLY + j]:
            return E.EARLY_BASE + j
    if now > tmo:
        return E.STOP_CODE_TIMEOUT
    if now > cutoff_in:
        return E.STOP_CODE_CUTOFF
    return E.STOP_CODE_NONE


@njit(**_HELPER)
def _finish_vote(nslots: int, steps: int, now: float, sl: np.ndarray, slf: np.ndarray,
                 vcnt: np.ndarray, pi: np.ndarray, pf: np.ndarray, cand_v: np.ndarray,
                 vacc: np.ndarray, vpos: np.ndarray,
                 srw: np.ndarray, cg: np.ndarray, coff: np.ndarray, every: int,
                 cfeat: np.ndarray) -> tuple[int, int, int, int]:
    """The end of a question in one pass over its slots: slots still active end as stopped by
    the question (at `steps` / `now`), the valid-value counts are zeroed for the next question,
    the slots started / stopped and the tokens are counted, and decisions.vote runs over the
    slots' final answers (tokens = tokens generated). Returns (answer, started, stopped,
    tokens). Vote totals are accumulated per value in `vacc` (value −1 at the last index),
    candidates kept in first-seen order; `vacc` / `vpos` are zeroed scratch, left zeroed;
    srw[value]: the small-or-round flag; vcnt[VNONE] (its last entry) is a spare."""
    span = vacc.shape[0] - 1
    nc = 0
    cob = pi[E.P_VOTE_CODE_OVER_BOXED] != 0
    drop_neg = pi[E.P_VOTE_DROP_NEG] != 0
    sorw = pf[E.F_SMALL_ROUND_W]
    lw = pf[E.F_LENGTH_W]
    started = 0
    stopped = 0
    tokens = 0
    vconf = pi[E.P_VOTE_CONF]
    if vconf != E.VCONF_NONE:  # each slot's confidence metric; −inf: not voting / filtered out
        _vote_confidence(nslots, steps, sl, pi, pf, cg, coff, every, cfeat, vconf, cob, drop_neg)
    for s in range(nslots):
        if sl[s, S_STATE] == ST_ACTIVE:
            sl[s, S_STATE] = ST_DONE
            sl[s, S_G] = steps - sl[s, S_G0]
            slf[s, SF_END] = now
            sl[s, S_ENDR] = E.END_QUESTION_STOP
        vcnt[sl[s, S_VALID]] = 0  # VNONE: the spare last entry
        endr = sl[s, S_ENDR]
        started += endr != E.END_QUEUED
        stopped += (endr == E.END_SAMPLE_STOP) | (endr == E.END_QUESTION_STOP)
        tokens += sl[s, S_G]
        code = sl[s, S_LC]
        boxed = sl[s, S_LB]
        if vconf != E.VCONF_NONE and cfeat[s] == -math.inf:
            continue
        for which in range(2):
            if which == 1 and cob and code != E.VAL_NONE and boxed != E.VAL_NONE:
                break
            v = code if which == 0 else boxed
            if v == E.VAL_NONE or (drop_neg and v < 0):
                continue
            idx = np.uint32(v if v >= 0 else span)
            w = pf[E.F_W_CODE] if sl[s, S_KIND] != E.KIND_COT else pf[E.F_W_COT]
            if srw[idx] != 0:
                w *= sorw
            if lw != 0.0:
                w *= math.exp(-lw * sl[s, S_G] / 10000.0)
            if vconf != E.VCONF_NONE:
                w *= cfeat[s]
            if vpos[idx] == 0:
                cand_v[nc] = v
                nc += 1
                vpos[idx] = nc
                vacc[idx] = 0.0 + w
            else:
                vacc[idx] = vacc[idx] + w
    if nc == 0:
        return pi[E.P_VOTE_FALLBACK] % 1000, started, stopped, tokens
    best = -math.inf
    for i in range(nc):
        v = cand_v[i]
        t = vacc[v if v >= 0 else span]
        if t > best:
            best = t
    floor = best - pf[E.F_TIE_TOL] * max(1.0, best)
    tie = pi[E.P_VOTE_TIE]
    winner = 0
    have = False
    for i in range(nc):
        v = cand_v[i]
        idx = np.uint32(v if v >= 0 else span)
        if vacc[idx] >= floor:
            if not have:
                winner = v
                have = True
            elif tie == E.TIE_LARGER and v > winner:
                winner = v
            elif tie == E.TIE_SMALLER and v < winner:
                winner = v
        vacc[idx] = 0.0
        vpos[idx] = 0
    return winner % 1000, started, stopped, tokens


@njit(**_HELPER)
def _casts(code: int, boxed: int, cob: bool, drop_neg: bool) -> bool:
    """Whether a sample with these latest answers casts a vote (decisions._cast non-empty)."""
    for which in range(2):
        if which == 1 and cob and code != E.VAL_NONE and boxed != E.VAL_NONE:
            break
        v = code if which == 0 else boxed
        if v == E.VAL_NONE or (drop_neg and v < 0):
            continue
        return True
    return False


@njit(**_HELPER)
def _vote_confidence(nslots: int, steps: int, sl: np.ndarray, pi: np.ndarray, pf: np.ndarray,
                     cg: np.ndarray, coff: np.ndarray, every: int, cfeat: np.ndarray,
                     vconf: int, cob: bool, drop_neg: bool) -> None:
    """cfeat[s]: slot s's confidence metric at the question's end if it votes and survives
    kept_by_confidence (keep_top), else −inf."""
    nv = 0
    for s in range(nslots):
        cut = sl[s, S_STATE] == ST_ACTIVE  # cut by the question stop: its end was not checked
        g = steps - sl[s, S_G0] if cut else sl[s, S_G]
        if _casts(sl[s, S_LC], sl[s, S_LB], cob, drop_neg):
            row = g // every if cut else _conf_row(sl[s, S_CAP], every, g)
            cfeat[s] = _conf_feature(vconf, cg, coff[sl[s, S_ROW]] + row)
            nv += 1
        else:
            cfeat[s] = -math.inf
    keep_top = pf[E.F_VOTE_KEEP]
    if keep_top < 1.0:
        keep = int(math.ceil(keep_top * nv - 1e-9))
        for s in range(nslots):  # ranks first, then filter (cfeat is read by later ranks)
            if cfeat[s] == -math.inf:
                sl[s, S_SEEN] = -1
                continue
            rank = 0
            for s2 in range(nslots):
                if cfeat[s2] == -math.inf:
                    continue
                if cfeat[s2] > cfeat[s] or (cfeat[s2] == cfeat[s] and s2 < s):
                    rank += 1
            sl[s, S_SEEN] = rank
        for s in range(nslots):
            if sl[s, S_SEEN] >= keep or sl[s, S_SEEN] < 0:
                cfeat[s] = -math.inf


@njit(**_HELPER)
def _warm_up(s: int, nwarm: int, nslots: int, steps: int, every: int, sl: np.ndarray,
             tact: np.ndarray, cwarm: np.ndarray, cg: np.ndarray,
             coff: np.ndarray, pi: np.ndarray, pf: np.ndarray) -> int:
    """Slot s ended on its own during DeepConf's warm-up: its lowest group confidence joins
    cwarm; with the last warm-up sample the threshold is set and every slot gets its stop
    token, an active slot its next check at max(token, next grid point) if earlier.
    Returns the new warm-up count."""
    r = coff[sl[s, S_ROW]] + _conf_row(sl[s, S_CAP], every, sl[s, S_CAP])
    low = cg[r, E.CONF_LOW_STOP]
    cwarm[nwarm] = low if low < math.inf else cg[r, E.CONF_MEAN]
    nwarm += 1
    if nwarm == pi[E.P_CONF_WARMUP]:
        thr = _percentile(cwarm, nwarm, pf[E.F_CONF_PCT])
        for s2 in range(nslots):
            c = _conf_tok(cg, coff[sl[s2, S_ROW]], sl[s2, S_CAP], every, thr)
            _stop_at(s2, sl, c, c)
            if c < BIG and sl[s2, S_STATE] == ST_ACTIVE:
                g02 = sl[s2, S_G0]
                t2 = g02 + max(c, _grid(steps - g02 + 1, every))
                if t2 < sl[s2, S_BASE]:
                    sl[s2, S_BASE] = t2
                    tact[s2] = t2
    return nwarm


# --------------------------------------------------------------------------- one question


@njit(**_HELPER)
def _uncapped(active: np.uint64, sl: np.ndarray, steps: int) -> tuple[int, int, int]:
    """The active slots still below their cap after `steps` question steps: how many (the
    batch), their context tokens, and the fewest steps until one of them reaches its cap."""
    b = 0
    c = 0
    n = BIG
    m = active
    while m != ZERO:
        s = np.uint32(trailing_zeros(m))
        m &= m - ONE
        g = steps - sl[s, S_G0]
        if g < sl[s, S_CAP]:
            b += 1
            c += sl[s, S_PROMPT] + g
            n = min(n, sl[s, S_CAP] - g)
    return b, c, n


@njit(**_HELPER)
def _hold_capped(active: np.uint64, sl: np.ndarray, steps: int, k: int) -> None:
    """`k` more question steps pass: a capped active slot's S_G0 moves with them, so its tokens
    stay at its cap."""
    m = active
    while m != ZERO:
        s = np.uint32(trailing_zeros(m))
        m &= m - ONE
        if steps - sl[s, S_G0] >= sl[s, S_CAP]:
            sl[s, S_G0] += k


@njit(**_HELPER)
def _decode_until(t_end: float, now: float, steps: int, active: np.uint64, sl: np.ndarray,
                  a: float, beta: float, gamma: float, knee: float,
                  above: float) -> tuple[float, int]:
    """decode_until: the active slots gain the whole steps that end by `t_end`, each up to its
    cap (a capped slot's S_G0 moves with the steps, so its tokens stay). Returns (now, steps)."""
    while True:
        b, c, n = _uncapped(active, sl, steps)
        if b == 0:
            break
        cf = float(c)
        k = min(_steps_within(a, beta, gamma, knee, above, b, cf, t_end - now), n)
        now += _steps_duration(a, beta, gamma, knee, above, b, cf, k)
        _hold_capped(active, sl, steps, k)
        steps += k
        if k < n:
            break
    return max(now, t_end), steps


@njit(**_HELPER)
def _decode_steps(n_steps: int, now: float, steps: int, active: np.uint64, sl: np.ndarray,
                  a: float, beta: float, gamma: float, knee: float,
                  above: float) -> tuple[float, int]:
    """decode_steps: the question stop lands `n_steps` steps after the decision; the active
    slots gain those whole steps, each up to its cap (as `_decode_until`). Returns (now, steps)."""
    while n_steps > 0:
        b, c, n = _uncapped(active, sl, steps)
        if b == 0:
            break
        k = min(n_steps, n)
        now += _steps_duration(a, beta, gamma, knee, above, b, float(c), k)
        _hold_capped(active, sl, steps, k)
        steps += k
        n_steps -= k
    return now, steps


@njit(**_HELPER)
def _replay_question(nslots: int, lv: int, cutoff_in: float, ans_i: np.ndarray,
                     ans_exec_s: np.ndarray, pi: np.ndarray, pf: np.ndarray, prof: np.ndarray,
                     ws: tuple, cg: np.ndarray, coff: np.ndarray,  # type: ignore[type-arg]
                     tmo: float) -> tuple[int, float, int, int, int, int]:
    """replay_question for the fresh slots sl[:nslots] (`_fresh_slot`) at 0-based level `lv`,
    whose timeout is `tmo` (the level's, or the per-question budget); cg / coff: the
    confidence tables (`encode_confidence`; read only by policies that use confidence).
    Returns (answer, time_s, stop code, slots started, slots stopped, tokens); per-slot state
    is left in `sl` / `slf`."""
    (sl, slf, tr_a, gp_t, gp_a, gp_s, arrival, qi, vals, vcnt, wcnt, tact, targets, thr,
     cand_v, vacc, vpos, ansx, srw, sstat, wfree, qtab, cwarm, cfeat) = ws
    # ansx: the workspace's copy of ans_i (int32, plus each answer's grid point), read instead
    every = pi[E.P_EVERY]
    a = prof[E.PF_A]
    beta = prof[E.PF_BETA]
    gamma = prof[E.PF_GAMMA]
    knee = prof[E.PF_KNEE]
    above = prof[E.PF_BETA_ABOVE]
    prefill = prof[E.PF_PREFILL]
    prefill_req = prof[E.PF_PREFILL_REQ]
    max_batch = int(prof[E.PF_MAX_BATCH])
    mode = pi[E.P_CODE_MODE]  # check.code_overlap, else the profile's
    if mode == E.CODE_PROFILE:
        mode = E.CODE_SERIAL if prof[E.PF_SERIAL] != 0.0 else E.CODE_PARALLEL
    hist = pi[E.P_EARLY_HIST] != 0
    # code workers: more than the runs a question can hold never wait, so cap at wfree's size
    nworkers = min(int(prof[E.PF_WORKERS]), wfree.shape[0])
    for k in range(nworkers):
        wfree[k] = 0.0  # every code worker free at the question's start
    lv_off = pi[E.P_OFF_LEVELS] + lv * pi[E.P_LEVEL_STRIDE]
    lvf_off = pi[E.P_OFF_LEVELS_F] + lv * pi[E.P_LEVEL_STRIDE_F]
    min_answers = pi[lv_off + E.LV_MIN_ANSWERS]

    qi[QI_NARR] = 0
    qi[QI_DIRTY] = 1
    qi[QI_QCACHE] = E.STOP_CODE_NONE
    qi[QI_NPEND] = 0
    qi[QI_MAXC] = 0
    qi[QI_MAXC_STALE] = 0
    qi[QI_HIST] = 0

    # sorted distinct positive time thresholds: level timeout, cutoff, early timeouts
    nthr = 0
    tmin = math.inf  # _timeout can stop only once the clock is past the smallest threshold
    for c in range(2 + pi[lv_off + E.LV_N_EARLY]):
        if c == 0:
            x = tmo
        elif c == 1:
            x = cutoff_in
        else:
            x = pf[lvf_off + 1 + (c - 2)]
        if x < tmin:
            tmin = x
        if not x > 0:
            continue
        dup = False
        for i in range(nthr):
            if thr[i] == x:
                dup = True
        if dup:
            continue
        i = nthr
        while i > 0 and thr[i - 1] > x:
            thr[i] = thr[i - 1]
            i -= 1
        thr[i] = x
        nthr += 1

    thr[nthr] = math.inf  # sentinel: the scans below stop there
    now = 0.0  # the batch's clock
    busy = 0.0  # inline code: the loop is busy until then (decisions at max(now, busy))
    noticed = 0.0  # latest time event already noticed (code result ready, threshold passed)
    armed = False  # a time threshold passed: the next check of any sample must run
    ti = 0  # thresholds thr[:ti] have armed a check already (the reference's armed_upto)
    tj = 0  # thr[tj:] are the thresholds after the horizon
    npd = 0  # pending code results of ended slots
    stop = E.STOP_CODE_NONE
    steps = 0  # decode steps since the question started
    # the confidence stop: a fixed threshold gives each slot its token now (`_stop_at`), an
    # online one once the warm-up samples ended (`_warm_up`)
    cmode = pi[E.P_CONF_STOP]
    unc = pi[E.P_UNCATCH] != 0
    nwarm = 0  # samples that ended on their own, their lowest group confidence in cwarm
    if cmode == E.CSTOP_FIXED:
        for s in range(nslots):
            c = _conf_tok(cg, coff[sl[s, S_ROW]], sl[s, S_CAP], every, pf[E.F_CONF_THRESH])
            _stop_at(s, sl, c, c)
    now, nstarted = _start_queued(now, 0, 0, 0, nslots, max_batch, prefill, prefill_req, sl, slf,
                                  ansx)
    nrun = nstarted  # active slots
    # bit s of `active`: slot s is active (iterated in slot order); tact[s]: its S_BASE between
    # checks (BIG once it ended); context tokens of the batch = ctx_off + nrun * steps
    active = np.uint64(0)
    ctx_off = 0
    for s in range(nstarted):
        active |= ONE << np.uint64(s)
        tact[s] = sl[s, S_BASE]
        ctx_off += sl[s, S_PROMPT]
    # A question whose samples all produced nothing still takes its prefill time.
    iterations = 0
    while stop == E.STOP_CODE_NONE:
        iterations += 1
        if iterations > ITERATION_LIMIT:  # a broken invariant, never a policy's doing
            return 0, now, E.STOP_CODE_STUCK, 0, 0, 0
        # events inside a jump of the clock (a prefill, a serial code run) are noticed now
        lim = max(now, busy) + EPS
        if thr[ti] <= lim:
            while thr[ti] <= lim:
                ti += 1
            armed = True
        if npd > 0:  # absorb_ended_code()
            upto = max(now, noticed) + EPS
            for s in range(nslots):
                if sl[s, S_STATE] == ST_DONE and sl[s, S_PDN] > 0:
                    before = sl[s, S_PDN]
                    _absorb(s, upto, every, sl, slf, gp_t, gp_a, gp_s, tr_a, arrival, qi, vcnt,
                            ansx, pi)
                    if sl[s, S_PDN] < before:
                        npd -= before - sl[s, S_PDN]
                        if stop == E.STOP_CODE_NONE:
                            stop = _qstop(nslots, min_answers, sl, arrival, qi, vals, vcnt,
                                          wcnt, pi, pf, qtab, unc)
                        armed = True
            if stop != E.STOP_CODE_NONE:
                break
        if nrun == 0:
            if qi[QI_NPEND] == 0:
                break
            # only code runs remain: wait for the next result, then apply it
            min_pend = math.inf
            for i in range(qi[QI_NPEND]):
                if gp_t[i] < min_pend:
                    min_pend = gp_t[i]
            now = max(now, min_pend)
            upto = max(now, noticed) + EPS
            for s in range(nslots):
                _absorb(s, upto, every, sl, slf, gp_t, gp_a, gp_s, tr_a, arrival, qi, vcnt,
                        ansx, pi)
            npd = qi[QI_NPEND]  # every slot has ended
            stop = _qstop(nslots, min_answers, sl, arrival, qi, vals, vcnt, wcnt, pi, pf, qtab,
                          unc)
            dn = max(now, busy)
            if stop == E.STOP_CODE_NONE and dn > tmin:
                stop = _timeout(dn, _tcount(qi, hist), cutoff_in, lv_off, tmo, pi, pf, lvf_off)
            continue
        horizon = max(now, noticed) + EPS
        # next_check_token of every active slot: its S_BASE, unless a threshold passed (armed)
        # or a code result of the slot is ready, which bring its check to the next grid point
        slow = armed or _any_ready(horizon, qi, gp_t, gp_s, sl)
        low = BIG
        due = ZERO  # the slots due at the next check (at `low`)
        if not slow:  # two plain passes over the started slots (ended ones hold BIG): vectorised
            for s in range(nstarted):
                low = min(low, tact[s])
            for s in range(nstarted):
                due |= np.uint64(tact[s] == low) << np.uint64(s)
            slow = low < steps  # never: S_BASE >= steps (kept for the reference's clamp)
        if slow:
            low = BIG
            due = ZERO
            cg0 = -1  # the grid point is the same for slots that started together: one division
            ct2 = 0
            m = active
            while m != ZERO:
                bit = m & (~m + ONE)
                s = np.uint32(trailing_zeros(m))
                m &= m - ONE
                t = tact[s]
                if armed or slf[s, SF_PMIN] <= horizon:
                    g0 = sl[s, S_G0]
                    if g0 != cg0:
                        cg0 = g0
                        ct2 = g0 + _grid(steps - g0 + 1, every)
                    t = min(t, ct2)
                t = max(t, steps)
                targets[s] = t
                lt = t < low
                due = (ZERO if lt else due) | (bit if t <= low else ZERO)
                low = t if lt else low
        n_steps = low - steps
        # thresholds are sorted and the horizon never goes back: thr[tj] is the next one
        while thr[tj] <= horizon:
            tj += 1
        t_event = thr[tj]  # (+inf: the sentinel)
        for i in range(qi[QI_NPEND]):
            if gp_t[i] > horizon and gp_t[i] < t_event:
                t_event = gp_t[i]
        cf = float(ctx_off + nrun * steps)
        dt = _steps_duration(a, beta, gamma, knee, above, nrun, cf, n_steps)
        if now + dt > t_event + EPS:
            k = min(_steps_within(a, beta, gamma, knee, above, nrun, cf, t_event - now), n_steps)
            now += _steps_duration(a, beta, gamma, knee, above, nrun, cf, k)
            steps += k
            # the clock stays on the step boundary; the event is seen at the next check after it
            noticed = t_event
            if thr[tj] == t_event:  # the only threshold that can equal t_event
                armed = True
                while thr[ti] <= t_event:
                    ti += 1
            if npd > 0:  # absorb_ended_code()
                upto = max(now, noticed) + EPS
                for s in range(nslots):
                    if sl[s, S_STATE] == ST_DONE and sl[s, S_PDN] > 0:
                        before = sl[s, S_PDN]
                        _absorb(s, upto, every, sl, slf, gp_t, gp_a, gp_s, tr_a, arrival, qi,
                                vcnt, ansx, pi)
                        if sl[s, S_PDN] < before:
                            npd -= before - sl[s, S_PDN]
                            if stop == E.STOP_CODE_NONE:
                                stop = _qstop(nslots, min_answers, sl, arrival, qi, vals, vcnt,
                                              wcnt, pi, pf, qtab, unc)
                            armed = True
            if stop != E.STOP_CODE_NONE:
                now = t_event
            continue
        now += dt
        steps += n_steps
        # The reference looks for thresholds crossed by clock jumps (prefill, serial code) before
        # each slot of this loop; the clock moves only in checks, so looking once here and
        # after each check sees the same crossings in the same order.
        lim = now + EPS
        lt = max(now, busy) + EPS
        if thr[ti] <= lt:
            while thr[ti] <= lt:
                ti += 1
            armed = True
        # extra: some slot off its target may still be due (armed, or a code result ready)
        extra = armed or _any_ready(lim, qi, gp_t, gp_s, sl)
        tt = targets if slow else tact  # next checks, in question steps
        cg0 = -1  # (steps - g0) % every, cached per start step g0 (slots start together)
        crem = 0
        # the slots active now, in slot order (slots started during the loop wait for the next
        # check); without `extra` only the due ones
        rest = active
        # a DeepConf threshold set by a slot that ended in this step: the later slots' grid
        # checks count (the reference's conf_due)
        cset = False
        while stop == E.STOP_CODE_NONE:
            cand = rest if extra or cset else rest & due
            if cand == ZERO:
                break
            bit = cand & (~cand + ONE)
            s = np.uint32(trailing_zeros(cand))
            rest &= ~((bit << ONE) - ONE)
            if sl[s, S_STATE] != ST_ACTIVE:
                continue
            g0 = sl[s, S_G0]
            g = steps - g0
            if steps != tt[s]:
                if not (armed or slf[s, SF_PMIN] <= lim or g >= sl[s, S_STOPAT]):
                    continue
                if g0 != cg0:
                    cg0 = g0
                    crem = g % every
                if crem != 0:
                    continue
            # check(s, ended)
            ended = g >= sl[s, S_CAP]
            now, busy = _detect(s, g, now, busy, noticed, mode, every, sl, slf, gp_t, gp_a,
                                gp_s, tr_a, arrival, qi, vcnt, ansx, ans_exec_s, pi, wfree,
                                nworkers)
            dn = max(now, busy)  # the check's decisions are taken once the loop is free
            if ended:
                sl[s, S_STATE] = ST_DONE
                active &= ~bit
                tact[s] = BIG
                sl[s, S_G] = g
                slf[s, SF_END] = dn
                nrun -= 1
                npd += sl[s, S_PDN]
                ctx_off -= sl[s, S_PROMPT] - g0
                if cmode == E.CSTOP_ONLINE and nwarm < pi[E.P_CONF_WARMUP]:
                    nwarm = _warm_up(s, nwarm, nslots, steps, every, sl, tact, cwarm, cg,
                                     coff, pi, pf)
                    cset = nwarm == pi[E.P_CONF_WARMUP]
                if sl[s, S_ENDLEN] != 0:
                    sl[s, S_ENDR] = E.END_LENGTH
                else:
                    sl[s, S_ENDR] = E.END_FINISHED
                    stop = _qstop(nslots, min_answers, sl, arrival, qi, vals, vcnt, wcnt, pi, pf,
                                  qtab, unc)
                lim = now + EPS
                lt = max(now, busy) + EPS
                if thr[ti] <= lt:
                    while thr[ti] <= lt:
                        ti += 1
                    armed = True
                extra = armed or _any_ready(lim, qi, gp_t, gp_s, sl)
                continue
            if g >= sl[s, S_STOPAT]:  # the stop rule held + grace, or the confidence stop
                sl[s, S_STATE] = ST_DONE
                active &= ~bit
                tact[s] = BIG
                sl[s, S_G] = g
                slf[s, SF_END] = dn
                sl[s, S_ENDR] = E.END_SAMPLE_STOP
                nrun -= 1
                npd += sl[s, S_PDN]
                ctx_off -= sl[s, S_PROMPT] - g0
                before = nstarted
                now, nstarted = _start_queued(now, steps, nstarted, nrun, nslots, max_batch,
                                              prefill, prefill_req, sl, slf, ansx)
                nrun += nstarted - before
                for s2 in range(before, nstarted):
                    ctx_off += sl[s2, S_PROMPT] - steps
                    active |= ONE << np.uint64(s2)
                    tact[s2] = sl[s2, S_BASE]
            else:
                base = g0 + _base_target(s, sl, ansx)
                sl[s, S_BASE] = base
                tact[s] = base
            stop = _qstop(nslots, min_answers, sl, arrival, qi, vals, vcnt, wcnt, pi, pf, qtab,
                          unc)
            dn = max(now, busy)  # (a prefill of queued slots may have moved the batch's clock)
            if stop == E.STOP_CODE_NONE and dn > tmin:
                stop = _timeout(dn, _tcount(qi, hist), cutoff_in, lv_off, tmo, pi, pf, lvf_off)
            armed = False  # an armed check is used up only by a check that ran the timeouts
            lim = now + EPS
            lt = dn + EPS
            if thr[ti] <= lt:
                while thr[ti] <= lt:
                    ti += 1
                armed = True
            extra = armed or _any_ready(lim, qi, gp_t, gp_s, sl)
        if stop == E.STOP_CODE_NONE and nstarted < nslots and nrun < max_batch:
            before = nstarted
            now, nstarted = _start_queued(now, steps, nstarted, nrun, nslots, max_batch, prefill,
                                          prefill_req, sl, slf, ansx)
            nrun += nstarted - before
            for s in range(before, nstarted):
                ctx_off += sl[s, S_PROMPT] - steps
                active |= ONE << np.uint64(s)
                tact[s] = sl[s, S_BASE]
    if stop == E.STOP_CODE_NONE:  # (then no slot is active)
        now = max(now, busy)
        stop = E.STOP_CODE_ALL_DONE
    else:
        if busy > now:  # decode_until: the batch decodes on until the loop decided the stop
            now, steps = _decode_until(busy, now, steps, active, sl, a, beta, gamma, knee,
                                        above)
        if prof[E.PF_ABORT_STEPS] > 0.0:  # the stop lands abort_latency_steps steps later
            now, steps = _decode_steps(int(prof[E.PF_ABORT_STEPS]), now, steps, active, sl, a,
                                        beta, gamma, knee, above)
        if pi[E.P_FINAL_READ] != 0:  # vote.final_read: the cancelled slots' last read
            for s in range(nstarted):
                if sl[s, S_STATE] == ST_ACTIVE:
                    now, busy = _detect(s, steps - sl[s, S_G0], now, busy, noticed, E.CODE_SERIAL,
                                        every, sl, slf, gp_t, gp_a, gp_s, tr_a, arrival, qi, vcnt,
                                        ansx, ans_exec_s, pi, wfree, nworkers)
    answer, started, stopped, tokens = _finish_vote(nslots, steps, now, sl, slf, vcnt, pi, pf,
                                                    cand_v, vacc, vpos, srw, cg, coff, every,
                                                    cfeat)
    return answer, now, stop, started, stopped, tokens


# --------------------------------------------------------------------------- a competition


@njit(**_HELPER)
def _competition(order: np.ndarray, dcot: np.ndarray, dncot: np.ndarray, dcode: np.ndarray,
                 dncode: np.ndarray, ans_i: np.ndarray, ans_exec_s: np.ndarray,
                 prob: np.ndarray, pi: np.ndarray, pf: np.ndarray, prof: np.ndarray,
                 budget_s: float, ws: tuple, out_i: np.ndarray,  # type: ignore[type-arg]
                 out_t: np.ndarray, detail: bool, det_i: np.ndarray,
                 det_f: np.ndarray, cg: np.ndarray,
                 coff: np.ndarray) -> tuple[int, int, float, bool, bool]:
    """replay_competition over problems `order` with per-question draws (rows of `samp`).
    Returns (correct, correct_in_budget, total_time_s, overtime, ok): correct answers in all
    and of questions that ended by `budget_s` (the scoring rule is applied outside, by
    core.scoring.rule_score); ok is False when a served problem has no
    recorded sample (the reference raises) or a replay stopped making progress (STOP_CODE_STUCK,
    a bug). Per-question results go to out_i / out_t."""
    sl = ws[0]
    slf = ws[1]
    sstat = ws[19]
    nq = order.shape[0]
    n_levels = pi[E.P_N_LEVELS]
    reeval_after = pi[E.P_REEVAL_AFTER]
    reeval_every = pi[E.P_REEVAL_EVERY]
    cutoff_s = pf[E.F_CUTOFF_S]
    th_off = pi[E.P_OFF_THRESH_F]
    kinds_off = E.LV_EARLY + pi[E.P_MAX_EARLY]
    overhead = prof[E.PF_OVERHEAD]
    clock = prof[E.PF_STARTUP]
    level = pi[E.P_START_LEVEL]
    score = 0
    in_budget = 0
    tsum = 0.0
    for q in range(nq):
        p = order[q]
        done = q
        if not (done < reeval_after or (done - reeval_after) % reeval_every != 0 or done >= nq):
            avg = (cutoff_s - clock) / (nq - done)
            new_level = n_levels
            for i in range(n_levels - 1):
                if avg < pf[th_off + i]:
                    new_level = i + 1
                    break
            level = new_level
        out_i[q, O_PROBLEM] = p
        out_i[q, O_LEVEL] = level
        if clock > cutoff_s:
            answer = pi[E.P_CUTOFF_ANSWER]
            time_s = 0.0
            out_i[q, O_STOP] = E.STOP_CODE_AFTER_CUTOFF
            out_i[q, O_STARTED] = 0
            out_i[q, O_STOPPED] = 0
            out_i[q, O_TOKENS] = 0
            out_i[q, O_NSLOTS] = 0
        else:
            lv = level - 1
            lv_off = pi[E.P_OFF_LEVELS] + lv * pi[E.P_LEVEL_STRIDE]
            nslots = pi[lv_off + E.LV_SAMPLES]
            # SampleDraw.take: per slot kind a cyclic pool (the other kind's when empty)
            ncot = dncot[q]
            ncode = dncode[q]
            if ncot + ncode == 0:
                return score, in_budget, 0.0, False, False
            cot_pool = dcot if ncot > 0 else dcode
            cot_n = ncot if ncot > 0 else ncode
            code_pool = dcode if ncode > 0 else dcot
            code_n = ncode if ncode > 0 else ncot
            uc = 0  # used_cot % cot_n
            uk = 0  # used_code % code_n
            for i in range(nslots):
                if pi[lv_off + kinds_off + i] == E.KIND_COT:
                    row = cot_pool[q, uc]
                    uc += 1
                    if uc == cot_n:
                        uc = 0
                else:
                    row = code_pool[q, uk]
                    uk += 1
                    if uk == code_n:
                        uk = 0
                _fresh_slot(i, row, sl, slf, sstat)
            # the question's timeout: the level's, or decisions.question_budget_s
            tmo = pf[pi[E.P_OFF_LEVELS_F] + lv * pi[E.P_LEVEL_STRIDE_F]]
            if pi[E.P_BUDGET] != 0:
                x = (cutoff_s - clock) - (nq - q - 1) * pf[E.F_BUD_RESERVE]
                x = min(pf[E.F_BUD_MAX], x)
                x = max(pf[E.F_BUD_MIN], x)
                tmo = min(tmo, x)
            answer, qtime, stop, started, stopped, tokens = _replay_question(
                nslots, lv, cutoff_s - clock, ans_i, ans_exec_s, pi, pf, prof, ws, cg, coff, tmo
            )
            if stop == E.STOP_CODE_STUCK:
                return score, in_budget, 0.0, False, False
            time_s = qtime + overhead
            clock += time_s
            if detail:
                for s in range(nslots):
                    det_i[q, s, D_ROW] = sl[s, S_ROW]
                    det_i[q, s, D_TOKENS] = sl[s, S_G]
                    det_i[q, s, D_END] = sl[s, S_ENDR]
                    det_i[q, s, D_BOXED] = sl[s, S_LB]
                    det_i[q, s, D_CODE] = sl[s, S_LC]
                    det_f[q, s, SF_START] = slf[s, SF_START]
                    det_f[q, s, SF_END] = slf[s, SF_END]
            out_i[q, O_STOP] = stop
            out_i[q, O_STARTED] = started
            out_i[q, O_STOPPED] = stopped
            out_i[q, O_TOKENS] = tokens
            out_i[q, O_NSLOTS] = nslots
        out_i[q, O_ANSWER] = answer
        out_t[q] = time_s
        if answer == prob[p, E.PR_TRUTH]:
            score += 1
            if clock <= budget_s:  # the question's end, summed as the reference's start_s + time_s
                in_budget += 1
        tsum += time_s
    total = prof[E.PF_STARTUP] + tsum
    return score, in_budget, total, total > budget_s, True


@njit(cache=True)
def _workspace(pi: np.ndarray, max_answers: int, value_span: int, ans_i: np.ndarray,
               samp: np.ndarray) -> tuple:  # type: ignore[type-arg]
    """Scratch of one question replay sized for the policy and the store, plus the per-call
    tables: sl, slf, tr_a, gp_t, gp_a, gp_s, arrival, qi, vals, vcnt, wcnt, tact, targets (per
    slot: its next check), thr (the time thresholds, +inf after the last), cand_v, vacc, vpos,
    agrid (per answer: ans_i's columns, then AN_GRID, its check-grid point; int32), srw
    (small-or-round flag of every value, −1 last), sstat (per sample row, the fields a slot
    takes from its sample), wfree (when each code worker frees up) and qtab (`_verdicts`).
    vcnt has a spare last entry (index VNONE), so it can be zeroed unconditionally; the
    value-indexed tables are int32 / uint8 to stay in the first-level cache."""
    ms = pi[E.P_MAX_SLOTS]
    n_pend = ms * max_answers
    every = pi[E.P_EVERY]
    # per answer, one row of int32: token, value, code flag (ans_i's columns), check-grid point
    agrid = np.empty((ans_i.shape[0], 4), np.int32)
    zero_none = pi[E.P_BOXED_ZERO_IGNORE] != 0
    for j in range(ans_i.shape[0]):
        agrid[j, E.AN_TOK] = ans_i[j, E.AN_TOK]
        agrid[j, E.AN_VAL] = ans_i[j, E.AN_VAL]
        if zero_none and ans_i[j, E.AN_CODE] == 0 and ans_i[j, E.AN_VAL] == 0:
            agrid[j, E.AN_VAL] = E.VAL_NONE  # check.boxed_zero: ignore (read_boxes)
        agrid[j, E.AN_CODE] = ans_i[j, E.AN_CODE]
        agrid[j, AN_GRID] = min(_grid(ans_i[j, E.AN_TOK], every), I32_MAX)
    max_tokens = pi[E.P_MAX_TOKENS]
    # per sample row (one cache line): kind, cap, ends-as-length, first answer, answers, prompt
    # tokens, grace tokens
    sstat = np.zeros((samp.shape[0], 8), np.int32)
    for row in range(samp.shape[0]):
        ntok = samp[row, E.SA_NTOK]
        kind = samp[row, E.SA_KIND]
        sstat[row, 0] = kind
        sstat[row, 1] = min(ntok, max_tokens)
        sstat[row, 2] = 1 if (ntok > max_tokens or samp[row, E.SA_LENGTH] == 1) else 0
        sstat[row, 3] = samp[row, E.SA_ANS0]
        sstat[row, 4] = samp[row, E.SA_NANS]
        sstat[row, 5] = samp[row, E.SA_PROMPT]
        sstat[row, 6] = min(pi[E.P_RULE_COT + kind * E.RS_STRIDE + E.RS_GRACE], TOKEN_LIMIT)
    srw = np.zeros(value_span + 1, np.uint8)
    has_small = pi[E.P_VOTE_HAS_SMALL] != 0
    small_max = pi[E.P_VOTE_SMALL_MAX]
    rm = pi[E.P_VOTE_ROUND]
    for idx in range(value_span + 1):
        v = idx if idx < value_span else -1
        if (has_small and v <= small_max) or (rm != 0 and v % rm == 0):
            srw[idx] = 1
    return (
        np.zeros((ms, N_S), np.int32), np.zeros((ms, N_SF), np.float64),
        np.zeros((ms, max_answers), np.int64), np.zeros(n_pend, np.float64),
        np.zeros(n_pend, np.uint32), np.zeros(n_pend, np.uint32), np.zeros(ms, np.uint32),
        np.zeros(N_QI, np.int64), np.zeros(ms, np.uint32), np.zeros(value_span + 1, np.int32),
        np.zeros(value_span, np.int32), np.zeros(ms, np.int64), np.zeros(ms, np.int64),
        np.zeros(3 + pi[E.P_MAX_EARLY], np.float64), np.zeros(2 * ms, np.int64),
        np.zeros(value_span + 1, np.float64), np.zeros(value_span + 1, np.int32), agrid, srw,
        sstat, np.zeros(n_pend, np.float64), _verdicts(pi), np.zeros(ms, np.float64),
        np.zeros(ms, np.float64),
    )


# numpy's PCG64 (XSL-RR 128/64) as numpy steps it; state in a uint64 array `rs`
RS_HI, RS_LO, RS_INC_HI, RS_INC_LO, RS_HAS32, RS_U32 = range(6)
_PCG_MULT = (2549297995355413924 << 64) | 4865540595714422341


def pcg64_state(rng: np.random.Generator) -> np.ndarray:
    """The state of `rng` (a PCG64 Generator, as np.random.default_rng makes) as the kernel's
    `rs` array; the kernel then draws exactly the numbers `rng` would."""
    st = rng.bit_generator.state
    if st["bit_generator"] != "PCG64":
        raise ValueError(f"the fast path draws as PCG64, not {st['bit_generator']}")
    m64 = (1 << 64) - 1
    state, inc = st["state"]["state"], st["state"]["inc"]
    return np.array([state >> 64, state & m64, inc >> 64, inc & m64, st["has_uint32"],
                     st["uinteger"]], np.uint64)


@intrinsic
def _pcg_step(typingctx, s_hi, s_lo, i_hi, i_lo):  # type: ignore[no-untyped-def]
    """(state * multiplier + inc) mod 2**128 on (high, low) uint64 halves, as one i128 op."""
    sig = types.UniTuple(types.uint64, 2)(types.uint64, types.uint64, types.uint64, types.uint64)

    def codegen(context, builder, signature, args):  # type: ignore[no-untyped-def]
        i128, i64 = ir.IntType(128), ir.IntType(64)
        c64 = ir.Constant(i128, 64)

        def join(hi, lo):  # type: ignore[no-untyped-def]
            return builder.or_(builder.shl(builder.zext(hi, i128), c64), builder.zext(lo, i128))

        new = builder.add(builder.mul(join(args[0], args[1]), ir.Constant(i128, _PCG_MULT)),
                          join(args[2], args[3]))
        hi = builder.trunc(builder.lshr(new, c64), i64)
        lo = builder.trunc(new, i64)
        return context.make_tuple(builder, signature.return_type, [hi, lo])

    return sig, codegen


@njit(**_HELPER)
def _next_uint32(rs: np.ndarray) -> np.uint64:
    """numpy's pcg64_next32: half of a 64-bit output, the other half buffered."""
    if rs[RS_HAS32] != 0:
        rs[RS_HAS32] = 0
        return rs[RS_U32]
    hi, lo = _pcg_step(rs[RS_HI], rs[RS_LO], rs[RS_INC_HI], rs[RS_INC_LO])
    rs[RS_HI] = hi
    rs[RS_LO] = lo
    x = hi ^ lo
    rot = hi >> np.uint64(58)
    out = (x >> rot) | (x << ((np.uint64(64) - rot) & np.uint64(63)))
    rs[RS_HAS32] = 1
    rs[RS_U32] = out >> np.uint64(32)
    return out & np.uint64(0xFFFFFFFF)


@njit(**_HELPER)
def _mask_of(max_val: int) -> int:
    """The smallest all-ones bit mask ≥ max_val (numpy's random_interval)."""
    mask = max_val
    mask |= mask >> 1
    mask |= mask >> 2
    mask |= mask >> 4
    mask |= mask >> 8
    mask |= mask >> 16
    return mask


@njit(**_HELPER)
def _interval(rs: np.ndarray, max_val: int, mask: int) -> int:
    """numpy's random_interval(bitgen, max_val) for 0 < max_val < 2**32 with its mask
    (`_mask_of`): a masked uint32 draw, redrawn until it is at most max_val."""
    while True:
        v = np.int64(_next_uint32(rs)) & mask
        if v <= max_val:
            return v


@njit(**_HELPER)
def _bounded(rs: np.ndarray, rng: int) -> int:
    """numpy's integers(0, rng + 1) for one int64 with 0 < rng < 2**32 − 1: Lemire's method on
    uint32 draws (buffered_bounded_lemire_uint32, same draws, same result)."""
    rng_excl = np.uint64(rng + 1)
    m = _next_uint32(rs) * rng_excl
    leftover = m & np.uint64(0xFFFFFFFF)
    if leftover < rng_excl:
        threshold = (np.uint64(0xFFFFFFFF) - np.uint64(rng)) % rng_excl
        while leftover < threshold:
            m = _next_uint32(rs) * rng_excl
            leftover = m & np.uint64(0xFFFFFFFF)
    return np.int64(m >> np.uint64(32))


@njit(**_HELPER)
def _shuffle(rs: np.ndarray, out: np.ndarray, n: int) -> None:  # type: ignore[no-untyped-def]
    """Shuffle out[:n] in place exactly as numpy's Generator.shuffle of a 1-d array does
    (Fisher-Yates from the end with random_interval), so Generator.permutation(n) equals
    shuffling 0..n-1, and shuffling mapped values equals mapping the permutation."""
    mask = _mask_of(n - 1)
    for i in range(n - 1, 0, -1):
        if i <= mask >> 1:  # i fell below a power of two (one at a time)
            mask >>= 1
        j = _interval(rs, i, mask)
        if j != i:
            tmp = out[i]
            out[i] = out[j]
            out[j] = tmp


@njit(**_HELPER)
def _draw_pool(rs: np.ndarray, pool: np.ndarray, c0: int, n: int, out: np.ndarray) -> int:
    """One kind's samples of a problem (pool[c0:c0 + n]) in a shuffled order in out[:n], as
    the reference draws them (SampleDraw); returns n."""
    for i in range(n):
        out[i] = pool[c0 + i]
    _shuffle(rs, out, n)
    return n


# --------------------------------------------------------------------------- entry points


@njit(cache=True)
def run(rs: np.ndarray, replicates: int, draw: bool, subset: np.ndarray,
        order: np.ndarray, dcot: np.ndarray, dncot: np.ndarray, dcode: np.ndarray,
        dncode: np.ndarray, samp: np.ndarray, ans_i: np.ndarray, ans_exec_s: np.ndarray,
        prob: np.ndarray, pool: np.ndarray, pi: np.ndarray, pf: np.ndarray, prof: np.ndarray,
        budget_s: float, max_answers: int, value_span: int, scores: np.ndarray,
        totals: np.ndarray, overtime: np.ndarray, answered: np.ndarray, out_i: np.ndarray,
        out_t: np.ndarray, detail: bool, det_i: np.ndarray, det_f: np.ndarray, cg: np.ndarray,
        coff: np.ndarray, paired: bool, ntok: np.ndarray) -> bool:
    """The one entry point (one compiled body, so the first call compiles once).

    With `draw`, `replicates` bootstrap competitions as `bootstrap_competitions` makes them:
    per replicate the reference's draws from the PCG64 state `rs` (`pcg64_state`, advanced in
    place; a question order over `subset` — a
    permutation, or `integers` with replacement when len(order) differs — then per served
    problem a shuffle of its CoT and of its code samples; order and dcot/dncot/dcode/dncode are
    scratch). Without `draw`, one competition over the given order and draws (rows of `samp` per
    question and kind; `rs` unused). Per replicate, correct answers / total time / overtime /
    correct answers given by the budget go to scores / totals / overtime / answered; per question of the last one, results go to out_i / out_t (and
    the per-slot details to det_i / det_f with `detail`); with a non-empty `ntok`, each
    replicate's generated tokens to ntok (an empty one: not summed). Returns False when a served
    problem has no recorded sample (the reference raises) or a replay stopped making progress
    (a bug).
    """
    ws = _workspace(pi, max_answers, value_span, ans_i, samp)
    nq = order.shape[0]
    n_sub = subset.shape[0]
    idx = np.zeros(max(nq, n_sub), np.int64)
    for r in range(replicates):
        if draw:
            if paired and r % 2 == 1:
                pass  # the second run of a pair serves the same questions (idx kept)
            elif nq == n_sub:
                for i in range(n_sub):
                    idx[i] = i
                _shuffle(rs, idx, n_sub)
            else:
                for q in range(nq):
                    idx[q] = 0 if n_sub == 1 else _bounded(rs, n_sub - 1)
            for q in range(nq):
                p = subset[idx[q]]
                order[q] = p
                dncot[q] = _draw_pool(rs, pool, prob[p, E.PR_COT0], prob[p, E.PR_NCOT], dcot[q])
                dncode[q] = _draw_pool(rs, pool, prob[p, E.PR_CODE0], prob[p, E.PR_NCODE],
                                       dcode[q])
        score, good, total, over, ok = _competition(
            order, dcot, dncot, dcode, dncode, ans_i, ans_exec_s, prob, pi, pf, prof,
            budget_s, ws, out_i, out_t, detail, det_i, det_f, cg, coff,
        )
        if not ok:
            return False
        scores[r] = score
        totals[r] = total
        overtime[r] = over
        answered[r] = good
        if ntok.shape[0] > 0:  # tokens generated in the replicate, when a caller asked
            t = 0
            for q in range(nq):
                t += out_i[q, O_TOKENS]
            ntok[r] = t
    return True
