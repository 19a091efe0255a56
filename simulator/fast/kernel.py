"""Compiled replay: the reference event loop (`simulator.replay.question`) over flat arrays.

Why: the tuner scores thousands of policies, each over hundreds of bootstrap competitions; the
reference path spends its time in Python objects. This module transcribes `replay_question`,
`replay_competition` and `bootstrap_competitions` onto the arrays of `encode.py` (layouts
there), with the same floating-point operations in the same order, so times agree bit for bit
and every decision is the same. What it keeps incrementally instead of recomputing (same values,
less work):
- per sample: the latest boxed / code / any answer, the valid answer, and the stop rule's
  condition token (`stop_condition_token` is prefix-stable, so it is updated per added answer);
- per sample: the next token at which a check could change something, which only that sample's
  own check can move; the batch's tokens advance together, so the loop keeps a question step
  count and each sample's tokens are `steps - g0`;
- per question: how often each valid value occurs (consistency rules without `last_k` need only
  the largest count) and the consistency verdict, recomputed only when a valid answer changed;
  the thresholds already passed and the next one (the clock never goes back);
- per call: the check-grid point of every recorded answer, the vote's small-or-round flag of
  every value, and each sample's per-slot constants (a policy and a store fix them all).

Contract: `run` is the entry point (`api.py` calls it); everything else is a helper, inlined
into it. All functions are pure in their inputs except for the output and scratch arrays they
are handed (and the random generator `run` advances).

Speed notes (measured; see bench/bench_simulator.py): helpers never allocate and are compiled
without numba's reference counting (`_nrt=False`: passing arrays then costs no atomic
operations) and force-inlined (numba otherwise calls them through pointers, marshalling every
array); per-slot state is one row per slot (`sl[slot, field]`), so a slot's fields share cache
lines; the slot, sample and answer tables are int32 (see TOKEN_LIMIT), an answer's token, value,
source and check-grid point share one row; indices that cannot be negative are unsigned (the
uint32 scratch act / arrival / gp_s / gp_a, `np.uint32(...)` casts), so numba emits no
negative-index wraparound for them (together ~10% on the seed preset); one entry point means
one compiled body (the first call compiles ~30 s, cached on disk).
Hard-to-predict scans (the next check, dropping ended slots) use selects instead of branches;
slots that started together share one grid division; the consistency rules are skipped while
no value is frequent enough, the timeouts while the clock is before the smallest one; a slot is
made fresh in the pass that draws it, and one pass ends a question (vote, counts, zeroing).
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit
from numba.np.random.generator_core import next_uint32

from simulator.fast import encode as E

EPS = 1e-9  # question._EPS
TIE_TOLERANCE = 1e-9  # decisions._TIE_TOLERANCE
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
S_HOLDT = 19  # check-grid point of S_HOLD + grace
S_A0 = 20  # first answer row
S_NANS = 21  # recorded answers
S_PROMPT = 22  # prompt tokens
S_GRACE = 23  # the kind's grace tokens
N_S = 24
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
N_QI = 6
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


# --------------------------------------------------------------------------- time model


@njit(**_HELPER)
def _steps_duration(a: float, beta: float, gamma: float, b: int, c0: float, n: int) -> float:
    """timing.steps_duration, same operations."""
    if n <= 0:
        return 0.0
    first = a + beta * b + gamma * c0
    return n * first + gamma * b * (n * (n - 1) / 2.0)


@njit(**_HELPER)
def _steps_within(a: float, beta: float, gamma: float, b: int, c0: float, t: float) -> int:
    """timing.steps_within, same operations (t is finite here)."""
    if not t >= 0.0:
        return 0
    first = a + beta * b + gamma * c0
    g = gamma * b
    h = first - g / 2.0
    disc = h * h + 2.0 * g * t
    den = h + math.sqrt(disc)
    n = 0
    if den > 0.0:
        n = int(math.floor(2.0 * t / den))
    if n < 0:
        n = 0
    while _steps_duration(a, beta, gamma, b, c0, n + 1) <= t:
        n += 1
    while n > 0 and _steps_duration(a, beta, gamma, b, c0, n) > t:
        n -= 1
    return n


@njit(**_HELPER)
def _grid(token: int, every: int) -> int:
    """question._grid_at_or_after: the first check point at or after `token`."""
    return max(every, -(-token // every) * every)


# --------------------------------------------------------------------------- the tracker


@njit(**_HELPER)
def _rule_counts(pi: np.ndarray, base: int, rule: int, is_code: bool, val: int) -> bool:
    """Whether an answer counts for the sample-stop rule at pi[base:] (stop_condition_token)."""
    src = pi[base + E.RS_SOURCES]
    if (rule == E.STOP_FIRST_CODE_SUCCESS or src == E.SRC_CODE) and not is_code:
        return False
    if rule != E.STOP_FIRST_CODE_SUCCESS and src == E.SRC_BOXED and is_code:
        return False
    if pi[base + E.RS_POS_ONLY] != 0:
        return val > 0
    return val >= 0


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
        sl[s, S_LA] = val
        if is_code:
            sl[s, S_LC] = val
        else:
            sl[s, S_LB] = val
    reached = max(sl[s, S_REACHED], tok)
    sl[s, S_REACHED] = reached
    if sl[s, S_HOLD] < 0:
        base = E.P_RULE_COT + sl[s, S_KIND] * E.RS_STRIDE
        rule = pi[base + E.RS_RULE]
        if rule != E.STOP_NEVER and _rule_counts(pi, base, rule, is_code, val):
            held = False
            if rule == E.STOP_REPEATED:
                count = 1
                for i in range(n):
                    jj = tr_a[s, i]
                    if ans_i[jj, E.AN_VAL] == val and _rule_counts(
                        pi, base, rule, ans_i[jj, E.AN_CODE] == 1, val
                    ):
                        count += 1
                held = count >= pi[base + E.RS_K]
            else:
                seen = sl[s, S_SEEN] + 1
                sl[s, S_SEEN] = seen
                held = seen >= (pi[base + E.RS_K] if rule == E.STOP_KTH else 1)
            if held:
                sl[s, S_HOLD] = reached
                sl[s, S_HOLDT] = min(_grid(reached + sl[s, S_GRACE], every), I32_MAX)
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
def _detect(s: int, g: int, now: float, noticed: float, serial: bool, every: int,
            sl: np.ndarray, slf: np.ndarray, gp_t: np.ndarray, gp_a: np.ndarray,
            gp_s: np.ndarray, tr_a: np.ndarray, arrival: np.ndarray, qi: np.ndarray,
            vcnt: np.ndarray, ans_i: np.ndarray, ans_exec_s: np.ndarray,
            pi: np.ndarray, wfree: np.ndarray, nworkers: int) -> float:
    """detect(): answers up to token `g` of slot `s`; the newest new code block is dispatched
    (with `nworkers` > 0 it runs on the worker that frees first, `wfree` = when each frees).
    Returns the clock (serial code execution advances it)."""
    a0 = sl[s, S_A0]
    na = sl[s, S_NANS]
    nxt = sl[s, S_NEXT]
    newest = -1
    exec_s = 0.0
    while nxt < na and ans_i[np.uint32(a0 + nxt), E.AN_TOK] <= g:
        j = np.uint32(a0 + nxt)  # unsigned indices: no negative-index wraparound
        if ans_i[j, E.AN_CODE] == 1:
            newest = j
            exec_s = ans_exec_s[j]
        else:
            _add_answer(s, j, every, sl, tr_a, arrival, qi, vcnt, ans_i, pi)
        nxt += 1
    sl[s, S_NEXT] = nxt
    if newest >= 0:
        if serial:
            now += exec_s
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
    return now


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
    nxt = sl[s, S_CAP]
    k = sl[s, S_NEXT]
    if k < sl[s, S_NANS]:
        nxt = min(nxt, agrid[np.uint32(sl[s, S_A0] + k), AN_GRID])
    if sl[s, S_HOLD] >= 0:
        nxt = min(nxt, sl[s, S_HOLDT])
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
    sl[s, S_HOLDT] = 0
    sl[s, S_A0] = sstat[row, 3]
    sl[s, S_NANS] = sstat[row, 4]
    sl[s, S_PROMPT] = sstat[row, 5]
    sl[s, S_GRACE] = sstat[row, 6]
    slf[s, SF_START] = math.nan
    slf[s, SF_END] = math.nan
    slf[s, SF_PMIN] = math.inf


@njit(**_HELPER)
def _start_queued(now: float, steps: int, nstarted: int, nrun: int, nslots: int, max_batch: int,
                  prefill: float, sl: np.ndarray, slf: np.ndarray,
                  agrid: np.ndarray) -> tuple[float, int]:
    """start_queued(): the first queued slots (always slots nstarted, nstarted + 1, ...) fill
    the free batch places after their prefill. Returns (clock, slots started so far)."""
    end = min(nslots, nstarted + max(0, max_batch - nrun))
    if end <= nstarted:
        return now, nstarted
    total = 0
    for s in range(nstarted, end):
        total += sl[s, S_PROMPT]
    if total > 0:
        now += prefill * total
    for s in range(nstarted, end):
        sl[s, S_STATE] = ST_ACTIVE
        slf[s, SF_START] = now
        sl[s, S_G0] = steps
        sl[s, S_BASE] = steps + _base_target(s, sl, agrid)
    return now, end


# --------------------------------------------------------------------------- question decisions


@njit(**_HELPER)
def _qcheck(nslots: int, min_answers: int, sl: np.ndarray, arrival: np.ndarray, qi: np.ndarray,
            vals: np.ndarray, vcnt: np.ndarray, wcnt: np.ndarray, pi: np.ndarray) -> int:
    """consistency_stop on the tracker's valid answers (cached until a valid answer changes).
    Rules without last_k (or with last_k ≥ #valid) need only the largest count of one value;
    `last_k` windows are counted in `wcnt`, a zeroed scratch left zeroed."""
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
    result = E.STOP_CODE_NONE
    built = False
    off = pi[E.P_OFF_RULES]
    for r in range(pi[E.P_N_RULES]):
        base = off + r * E.RULE_STRIDE
        min_equal = pi[base]
        max_answers = pi[base + 1]
        last_k = pi[base + 2]
        if (max_answers >= 0 and n > max_answers) or n < pi[base + 3] or n < min_equal:
            continue
        if qi[QI_MAXC] < min_equal:  # no value (nor any window of values) is frequent enough
            continue
        if last_k < 0 or last_k >= n:
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
        if best >= min_equal:
            result = E.RULE_BASE + r + 1
            break
    if result == E.STOP_CODE_NONE and n >= min_answers:
        result = E.STOP_CODE_MIN_ANSWERS
    qi[QI_QCACHE] = result
    qi[QI_DIRTY] = 0
    return result


@njit(**_HELPER)
def _timeout(now: float, n_valid: int, cutoff_in: float, lv_off: int, lvf_off: int,
             pi: np.ndarray, pf: np.ndarray) -> int:
    """timeout_stop(level, now, n_valid, now > cutoff_in)."""
    for j in range(pi[lv_off + E.LV_N_EARLY]):
        if now > pf[lvf_off + 1 + j] and n_valid >= pi[lv_off + E.LV_EARLY + j]:
            return E.EARLY_BASE + j
    if now > pf[lvf_off]:
        return E.STOP_CODE_TIMEOUT
    if now > cutoff_in:
        return E.STOP_CODE_CUTOFF
    return E.STOP_CODE_NONE


@njit(**_HELPER)
def _finish_vote(nslots: int, steps: int, now: float, sl: np.ndarray, slf: np.ndarray,
                 vcnt: np.ndarray, pi: np.ndarray, pf: np.ndarray, cand_v: np.ndarray,
                 vacc: np.ndarray, vpos: np.ndarray,
                 srw: np.ndarray) -> tuple[int, int, int, int]:
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
    floor = best - TIE_TOLERANCE * max(1.0, best)
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


# --------------------------------------------------------------------------- one question


@njit(**_HELPER)
def _replay_question(nslots: int, lv: int, cutoff_in: float, ans_i: np.ndarray,
                     ans_exec_s: np.ndarray, pi: np.ndarray, pf: np.ndarray, prof: np.ndarray,
                     ws: tuple) -> tuple[int, float, int, int, int, int]:  # type: ignore[type-arg]
    """replay_question for the fresh slots sl[:nslots] (`_fresh_slot`) at 0-based level `lv`.
    Returns (answer, time_s, stop code, slots started, slots stopped, tokens); per-slot state
    is left in `sl` / `slf`."""
    (sl, slf, tr_a, gp_t, gp_a, gp_s, arrival, qi, vals, vcnt, wcnt, act, tact, targets, thr,
     cand_v, vacc, vpos, ansx, srw, sstat, wfree) = ws
    # ansx: the workspace's copy of ans_i (int32, plus each answer's grid point), read instead
    every = pi[E.P_EVERY]
    a = prof[E.PF_A]
    beta = prof[E.PF_BETA]
    gamma = prof[E.PF_GAMMA]
    prefill = prof[E.PF_PREFILL]
    max_batch = int(prof[E.PF_MAX_BATCH])
    serial = prof[E.PF_SERIAL] != 0.0
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

    # sorted distinct positive time thresholds: level timeout, cutoff, early timeouts
    nthr = 0
    tmin = math.inf  # _timeout can stop only once the clock is past the smallest threshold
    for c in range(2 + pi[lv_off + E.LV_N_EARLY]):
        if c == 0:
            x = pf[lvf_off]
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

    now = 0.0
    noticed = 0.0  # latest time event already noticed (code result ready, threshold passed)
    armed = False  # a time threshold passed: the next check of any sample must run
    ti = 0  # thresholds thr[:ti] have armed a check already (the reference's armed_upto)
    tj = 0  # thr[tj:] are the thresholds after the horizon
    npd = 0  # pending code results of ended slots
    stop = E.STOP_CODE_NONE
    steps = 0  # decode steps since the question started
    now, nstarted = _start_queued(now, 0, 0, 0, nslots, max_batch, prefill, sl, slf, ansx)
    nrun = nstarted  # active slots
    # act[:nact]: the active slots in slot order, tact[:nact] their S_BASE (between checks);
    # context tokens of the batch = ctx_off + nact * steps
    nact = nstarted
    ctx_off = 0
    for s in range(nstarted):
        act[s] = s
        tact[s] = sl[s, S_BASE]
        ctx_off += sl[s, S_PROMPT]
    # A question whose samples all produced nothing still takes its prefill time.
    iterations = 0
    while stop == E.STOP_CODE_NONE:
        iterations += 1
        if iterations > ITERATION_LIMIT:  # a broken invariant, never a policy's doing
            return 0, now, E.STOP_CODE_STUCK, 0, 0, 0
        # events inside a jump of the clock (a prefill, a serial code run) are noticed now
        lim = now + EPS
        if ti < nthr and thr[ti] <= lim:
            while ti < nthr and thr[ti] <= lim:
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
                            stop = _qcheck(nslots, min_answers, sl, arrival, qi, vals, vcnt,
                                           wcnt, pi)
                        armed = True
            if stop != E.STOP_CODE_NONE:
                break
        if nact == 0:
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
            stop = _qcheck(nslots, min_answers, sl, arrival, qi, vals, vcnt, wcnt, pi)
            if stop == E.STOP_CODE_NONE and now > tmin:
                stop = _timeout(now, qi[QI_NARR], cutoff_in, lv_off, lvf_off, pi, pf)
            continue
        horizon = max(now, noticed) + EPS
        # next_check_token of every active slot: its S_BASE, unless a threshold passed (armed)
        # or a code result of the slot is ready, which bring its check to the next grid point
        slow = armed or _any_ready(horizon, qi, gp_t, gp_s, sl)
        low = BIG
        first = 0  # act[first:last + 1] holds every slot due at the next check
        last = 0
        if not slow:
            for i in range(nact):  # branch-free (selects)
                t = tact[i]
                lt = t < low
                first = i if lt else first
                last = i if t <= low else last
                low = t if lt else low
            slow = low < steps  # never: S_BASE >= steps (kept for the reference's clamp)
        if slow:
            low = BIG
            cg0 = -1  # the grid point is the same for slots that started together: one division
            ct2 = 0
            for i in range(nact):
                s = act[i]
                t = tact[i]
                if armed or slf[s, SF_PMIN] <= horizon:
                    g0 = sl[s, S_G0]
                    if g0 != cg0:
                        cg0 = g0
                        ct2 = g0 + _grid(steps - g0 + 1, every)
                    t = min(t, ct2)
                t = max(t, steps)
                targets[i] = t
                lt = t < low
                first = i if lt else first
                last = i if t <= low else last
                low = t if lt else low
        n_steps = low - steps
        # thresholds are sorted and the horizon never goes back: thr[tj] is the next one
        while tj < nthr and thr[tj] <= horizon:
            tj += 1
        t_event = thr[tj] if tj < nthr else math.inf
        for i in range(qi[QI_NPEND]):
            if gp_t[i] > horizon and gp_t[i] < t_event:
                t_event = gp_t[i]
        cf = float(ctx_off + nact * steps)
        dt = _steps_duration(a, beta, gamma, nact, cf, n_steps)
        if now + dt > t_event + EPS:
            k = min(_steps_within(a, beta, gamma, nact, cf, t_event - now), n_steps)
            now += _steps_duration(a, beta, gamma, nact, cf, k)
            steps += k
            # the clock stays on the step boundary; the event is seen at the next check after it
            noticed = t_event
            if tj < nthr and thr[tj] == t_event:  # the only threshold that can equal t_event
                armed = True
                while ti < nthr and thr[ti] <= t_event:
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
                                stop = _qcheck(nslots, min_answers, sl, arrival, qi, vals, vcnt,
                                               wcnt, pi)
                            armed = True
            if stop != E.STOP_CODE_NONE:
                now = t_event
            continue
        now += dt
        steps += n_steps
        first_new = nstarted
        changed = False
        # The reference looks for thresholds crossed by clock jumps (prefill, serial code) before
        # each slot of this loop; the clock moves only in checks, so looking once here and
        # after each check sees the same crossings in the same order.
        lim = now + EPS
        if ti < nthr and thr[ti] <= lim:
            while ti < nthr and thr[ti] <= lim:
                ti += 1
            armed = True
        # extra: some slot off its target may still be due (armed, or a code result ready)
        extra = armed or _any_ready(lim, qi, gp_t, gp_s, sl)
        tt = targets if slow else tact  # next checks, in question steps
        cg0 = -1  # (steps - g0) % every, cached per start step g0 (slots start together)
        crem = 0
        for i in range(0 if extra else first, nact):
            if stop != E.STOP_CODE_NONE or (i > last and not extra):
                break
            if steps != tt[i] and not extra:
                continue
            s = act[i]
            if sl[s, S_STATE] != ST_ACTIVE:
                continue
            g0 = sl[s, S_G0]
            g = steps - g0
            if steps != tt[i]:
                if not (armed or slf[s, SF_PMIN] <= lim):
                    continue
                if g0 != cg0:
                    cg0 = g0
                    crem = g % every
                if crem != 0:
                    continue
            # check(s, ended)
            ended = g >= sl[s, S_CAP]
            now = _detect(s, g, now, noticed, serial, every, sl, slf, gp_t, gp_a, gp_s, tr_a,
                          arrival, qi, vcnt, ansx, ans_exec_s, pi, wfree, nworkers)
            if ended:
                sl[s, S_STATE] = ST_DONE
                sl[s, S_G] = g
                slf[s, SF_END] = now
                nrun -= 1
                npd += sl[s, S_PDN]
                ctx_off -= sl[s, S_PROMPT] - g0
                changed = True
                if sl[s, S_ENDLEN] != 0:
                    sl[s, S_ENDR] = E.END_LENGTH
                else:
                    sl[s, S_ENDR] = E.END_FINISHED
                    stop = _qcheck(nslots, min_answers, sl, arrival, qi, vals, vcnt, wcnt, pi)
                lim = now + EPS
                if ti < nthr and thr[ti] <= lim:
                    while ti < nthr and thr[ti] <= lim:
                        ti += 1
                    armed = True
                extra = armed or _any_ready(lim, qi, gp_t, gp_s, sl)
                continue
            if sl[s, S_HOLD] >= 0 and g >= sl[s, S_HOLD] + sl[s, S_GRACE]:
                sl[s, S_STATE] = ST_DONE
                sl[s, S_G] = g
                slf[s, SF_END] = now
                sl[s, S_ENDR] = E.END_SAMPLE_STOP
                nrun -= 1
                npd += sl[s, S_PDN]
                ctx_off -= sl[s, S_PROMPT] - g0
                changed = True
                before = nstarted
                now, nstarted = _start_queued(now, steps, nstarted, nrun, nslots, max_batch,
                                              prefill, sl, slf, ansx)
                nrun += nstarted - before
                for s2 in range(before, nstarted):
                    ctx_off += sl[s2, S_PROMPT] - steps
            else:
                base = g0 + _base_target(s, sl, ansx)
                sl[s, S_BASE] = base
                tact[i] = base
            stop = _qcheck(nslots, min_answers, sl, arrival, qi, vals, vcnt, wcnt, pi)
            if stop == E.STOP_CODE_NONE and now > tmin:
                stop = _timeout(now, qi[QI_NARR], cutoff_in, lv_off, lvf_off, pi, pf)
            armed = False  # an armed check is used up only by a check that ran the timeouts
            lim = now + EPS
            if ti < nthr and thr[ti] <= lim:
                while ti < nthr and thr[ti] <= lim:
                    ti += 1
                armed = True
            extra = armed or _any_ready(lim, qi, gp_t, gp_s, sl)
        if changed:
            k = 0
            for i in range(nact):  # branch-free: ends are hard to predict
                s = act[i]
                act[k] = s
                tact[k] = tact[i]
                k += sl[s, S_STATE] == ST_ACTIVE
            for s in range(first_new, nstarted):
                act[k] = s
                tact[k] = sl[s, S_BASE]
                k += 1
            nact = k
        if stop == E.STOP_CODE_NONE and nstarted < nslots and nrun < max_batch:
            before = nstarted
            now, nstarted = _start_queued(now, steps, nstarted, nrun, nslots, max_batch, prefill,
                                          sl, slf, ansx)
            nrun += nstarted - before
            for s in range(before, nstarted):
                ctx_off += sl[s, S_PROMPT] - steps
                act[nact] = s
                tact[nact] = sl[s, S_BASE]
                nact += 1
    if stop == E.STOP_CODE_NONE:  # (then no slot is active)
        stop = E.STOP_CODE_ALL_DONE
    answer, started, stopped, tokens = _finish_vote(nslots, steps, now, sl, slf, vcnt, pi, pf,
                                                    cand_v, vacc, vpos, srw)
    return answer, now, stop, started, stopped, tokens


# --------------------------------------------------------------------------- a competition


@njit(**_HELPER)
def _competition(order: np.ndarray, dcot: np.ndarray, dncot: np.ndarray, dcode: np.ndarray,
                 dncode: np.ndarray, ans_i: np.ndarray, ans_exec_s: np.ndarray,
                 prob: np.ndarray, pi: np.ndarray, pf: np.ndarray, prof: np.ndarray,
                 budget_s: float, ws: tuple, out_i: np.ndarray,  # type: ignore[type-arg]
                 out_t: np.ndarray, detail: bool, det_i: np.ndarray,
                 det_f: np.ndarray) -> tuple[int, float, bool, bool]:
    """replay_competition over problems `order` with per-question draws (rows of `samp`).
    Returns (score, total_time_s, overtime, ok); ok is False when a served problem has no
    recorded sample (the reference raises) or a replay stopped making progress (STOP_CODE_STUCK,
    a bug). Per-question results go to out_i / out_t."""
    sl = ws[0]
    slf = ws[1]
    sstat = ws[20]
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
    n_after = 0
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
            n_after += 1
        else:
            lv = level - 1
            lv_off = pi[E.P_OFF_LEVELS] + lv * pi[E.P_LEVEL_STRIDE]
            nslots = pi[lv_off + E.LV_SAMPLES]
            # SampleDraw.take: per slot kind a cyclic pool (the other kind's when empty)
            ncot = dncot[q]
            ncode = dncode[q]
            if ncot + ncode == 0:
                return score, 0.0, False, False
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
            answer, qtime, stop, started, stopped, tokens = _replay_question(
                nslots, lv, cutoff_s - clock, ans_i, ans_exec_s, pi, pf, prof, ws
            )
            if stop == E.STOP_CODE_STUCK:
                return score, 0.0, False, False
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
        tsum += time_s
    total = prof[E.PF_STARTUP] + tsum
    return score, total, (n_after > 0 or total > budget_s), True


@njit(cache=True)
def _workspace(pi: np.ndarray, max_answers: int, value_span: int, ans_i: np.ndarray,
               samp: np.ndarray) -> tuple:  # type: ignore[type-arg]
    """Scratch of one question replay sized for the policy and the store, plus the per-call
    tables: sl, slf, tr_a, gp_t, gp_a, gp_s, arrival, qi, vals, vcnt, wcnt, act, tact, targets,
    thr, cand_v, vacc, vpos, agrid (per answer: ans_i's columns, then AN_GRID, its check-grid
    point; int32), srw (small-or-round flag
    of every value, −1 last), sstat (per sample row, the fields a slot takes from its
    sample) and wfree (when each code worker frees up). vcnt has a spare last entry (index VNONE), so it can be zeroed unconditionally."""
    ms = pi[E.P_MAX_SLOTS]
    n_pend = ms * max_answers
    every = pi[E.P_EVERY]
    # per answer, one row of int32: token, value, code flag (ans_i's columns), check-grid point
    agrid = np.empty((ans_i.shape[0], 4), np.int32)
    for j in range(ans_i.shape[0]):
        agrid[j, E.AN_TOK] = ans_i[j, E.AN_TOK]
        agrid[j, E.AN_VAL] = ans_i[j, E.AN_VAL]
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
    srw = np.zeros(value_span + 1, np.int64)
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
        np.zeros(N_QI, np.int64), np.zeros(ms, np.uint32), np.zeros(value_span + 1, np.int64),
        np.zeros(value_span, np.int64), np.zeros(ms, np.uint32), np.zeros(ms, np.int64),
        np.zeros(ms, np.int64), np.zeros(2 + pi[E.P_MAX_EARLY], np.float64),
        np.zeros(2 * ms, np.int64), np.zeros(value_span + 1, np.float64),
        np.zeros(value_span + 1, np.int64), agrid, srw, sstat, np.zeros(n_pend, np.float64),
    )


@njit(**_HELPER)
def _interval(bitgen, max_val: int) -> int:  # type: ignore[no-untyped-def]
    """numpy's random_interval(bitgen, max_val) for 0 < max_val < 2**32: a masked uint32 draw,
    redrawn until it is at most max_val (same draws, same result)."""
    mask = max_val
    mask |= mask >> 1
    mask |= mask >> 2
    mask |= mask >> 4
    mask |= mask >> 8
    mask |= mask >> 16
    while True:
        v = np.int64(next_uint32(bitgen)) & mask
        if v <= max_val:
            return v


@njit(**_HELPER)
def _shuffle(bitgen, out: np.ndarray, n: int) -> None:  # type: ignore[no-untyped-def]
    """Shuffle out[:n] in place exactly as numpy's Generator.shuffle of a 1-d array does
    (Fisher-Yates from the end with random_interval), so Generator.permutation(n) equals
    shuffling 0..n-1, and shuffling mapped values equals mapping the permutation."""
    for i in range(n - 1, 0, -1):
        j = _interval(bitgen, i)
        if j != i:
            tmp = out[i]
            out[i] = out[j]
            out[j] = tmp


# --------------------------------------------------------------------------- entry points


@njit(cache=True)
def run(rng: np.random.Generator, replicates: int, draw: bool, subset: np.ndarray,
        order: np.ndarray, dcot: np.ndarray, dncot: np.ndarray, dcode: np.ndarray,
        dncode: np.ndarray, samp: np.ndarray, ans_i: np.ndarray, ans_exec_s: np.ndarray,
        prob: np.ndarray, pool: np.ndarray, pi: np.ndarray, pf: np.ndarray, prof: np.ndarray,
        budget_s: float, max_answers: int, value_span: int, scores: np.ndarray,
        totals: np.ndarray, overtime: np.ndarray, out_i: np.ndarray, out_t: np.ndarray,
        detail: bool, det_i: np.ndarray, det_f: np.ndarray) -> bool:
    """The one entry point (one compiled body, so the first call compiles once).

    With `draw`, `replicates` bootstrap competitions as `bootstrap_competitions` makes them:
    per replicate the reference's draws from `rng` (a question order over `subset` — a
    permutation, or `integers` with replacement when len(order) differs — then per served
    problem a shuffle of its CoT and of its code samples; order and dcot/dncot/dcode/dncode are
    scratch). Without `draw`, one competition over the given order and draws (rows of `samp` per
    question and kind; `rng` unused). Per replicate, score / total time / overtime go to
    scores / totals / overtime; per question of the last one, results go to out_i / out_t (and
    the per-slot details to det_i / det_f with `detail`). Returns False when a served problem
    has no recorded sample (the reference raises) or a replay stopped making progress (a bug).
    """
    ws = _workspace(pi, max_answers, value_span, ans_i, samp)
    bitgen = rng.bit_generator
    nq = order.shape[0]
    n_sub = subset.shape[0]
    idx = np.zeros(max(nq, n_sub), np.int64)
    for r in range(replicates):
        if draw:
            if nq == n_sub:
                for i in range(n_sub):
                    idx[i] = i
                _shuffle(bitgen, idx, n_sub)
            else:
                idx[:nq] = rng.integers(0, n_sub, size=nq)
            for q in range(nq):
                p = subset[idx[q]]
                order[q] = p
                n = prob[p, E.PR_NCOT]
                c0 = prob[p, E.PR_COT0]
                for i in range(n):
                    dcot[q, i] = pool[c0 + i]
                _shuffle(bitgen, dcot[q], n)
                dncot[q] = n
                n = prob[p, E.PR_NCODE]
                c0 = prob[p, E.PR_CODE0]
                for i in range(n):
                    dcode[q, i] = pool[c0 + i]
                _shuffle(bitgen, dcode[q], n)
                dncode[q] = n
        score, total, over, ok = _competition(
            order, dcot, dncot, dcode, dncode, ans_i, ans_exec_s, prob, pi, pf, prof,
            budget_s, ws, out_i, out_t, detail, det_i, det_f,
        )
        if not ok:
            return False
        scores[r] = score
        totals[r] = total
        overtime[r] = over
    return True
