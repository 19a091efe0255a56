"""Calibrate the shipped 4xL4 profiles to the published figures, and print their fit errors.

`python -m aimo.core.hardware.calibrate` prints, for every shipped profile (or the names/paths
given), its calibration points against the model's prediction with the relative error.
`--write` re-derives the published profiles and rewrites their YAML files in data/hardware/.

How the published profiles are derived (all at batch 15, prompts of ~150 tokens):
- W4KV8: only batch 15 was measured, so `a` and `beta` cannot be told apart from the data; we fit
  the base step `A = a + 15*beta` and `gamma` by weighted least squares on relative errors over
  three figures (13,007 tokens at 423 s, weight 100; ~36 tok/s early and ~20 tok/s at 13-17k
  context, weight 1 each), then split `A` with an assumed share of 20% for the per-sequence
  term (decode of a W4A16 14B model at small batch is memory-bound, so the fixed part dominates).
- W4KV16: same weights, so the same `a` and `beta`; a 16-bit KV cache doubles the bytes read per
  context token, so only `gamma` changes: solved from 12,993 tokens at 553 s.
- FP16: KV is 16-bit as in W4KV16, so `gamma` is W4KV16's; 16-bit weights raise the fixed part:
  `A` solved from 12,997 tokens at 981 s, split with the same 20% share.
"""

from __future__ import annotations

import argparse
import math
import sys
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Sequence

import numpy as np

from aimo.data import HARDWARE_DIR
from aimo.core.hardware.profile import (
    CalibrationPoint,
    HardwareProfile,
    Provenance,
    list_profiles,
    load_profile,
    save_profile,
)
from aimo.core.hardware.lsq import lsq
from aimo.core.hardware.timing import predict_point
from aimo.core.errors import InputError

B_REF = 15  # batch of the published 4xL4 measurements
PROMPT_TOKENS = 150  # per-sequence prompt, as in the seed policy's prompts plus a typical question
BETA_SHARE = 0.2  # assumed share of the per-sequence term in the base step at batch 15
PREFILL_S_PER_TOKEN = 2.0e-4  # estimate, see notes
CALIBRATION_DATE = "2026-11-28"
SEED_SAMPLING = (("temperature", 0.9), ("top_p", 0.95), ("min_p", 0.1), ("repetition_penalty", 1.05))


def _published(quantization: str) -> dict:
    """The conditions of the write-up's figures (docs/seed-policy.md): TurboMind on 4×L4, the
    seed's sampling; lmdeploy's version is not stated there."""
    return {"engine": "lmdeploy turbomind", "gpu": "4xNVIDIA L4 (TP4)", "quantization": quantization,
            "sampling": SEED_SAMPLING}


WRITEUP = ("AIMO-2 2nd-place write-up (imagination-research), 'Some efficiency results' and its "
           "output-speed figure; via docs/seed-policy.md 'Published figures to calibrate against'")

W4KV8_POINTS = (
    CalibrationPoint("one sequence reaches 13,007 tokens (measured)", "elapsed", B_REF,
                     PROMPT_TOKENS, 13007, 423.0, 100.0),
    CalibrationPoint("early rate ~36 tok/s (read at 500 tokens)", "rate", B_REF, PROMPT_TOKENS,
                     500, 36.0, 1.0),
    CalibrationPoint("late rate ~20 tok/s (read at 15k context)", "rate", B_REF, PROMPT_TOKENS,
                     15000 - PROMPT_TOKENS, 20.0, 1.0),
)
W4KV16_POINTS = (
    CalibrationPoint("one sequence reaches 12,993 tokens (measured)", "elapsed", B_REF,
                     PROMPT_TOKENS, 12993, 553.0, 100.0),
    CalibrationPoint("write-up: W4KV8 ~20% less time/token -> 13,007 tok in 423/0.8 s", "elapsed",
                     B_REF, PROMPT_TOKENS, 13007, 423.0 / 0.8, 0.0),
)
FP16_POINTS = (
    CalibrationPoint("one sequence reaches 12,997 tokens (measured)", "elapsed", B_REF,
                     PROMPT_TOKENS, 12997, 981.0, 100.0),
    CalibrationPoint("write-up: W4KV8 ~55% less time/token -> 13,007 tok in 423/0.45 s", "elapsed",
                     B_REF, PROMPT_TOKENS, 13007, 423.0 / 0.45, 0.0),
)


def fit_published(points: Sequence[CalibrationPoint], *, prefill_s_per_token: float,
                  beta_share: float = BETA_SHARE, b_ref: int = B_REF,
                  base_step_s: float | None = None, gamma: float | None = None
                  ) -> tuple[float, float, float]:
    """(a, beta, gamma) minimising sum(weight * relative_error**2) over the points.

    Free unknowns are the base step `A = a + beta*b_ref` (unless `base_step_s` is given) and
    `gamma` (unless given); `A` is split as `beta*b_ref = beta_share*A`. Rate points are fitted
    as step times (1/rate). Points of weight 0 are not fitted.
    """
    u_a, u_b = 1.0 - beta_share, beta_share / b_ref  # a = u_a*A, beta = u_b*A
    rows, ys, ws = [], [], []
    for pt in points:
        if pt.weight <= 0:
            continue
        b = pt.batch
        if pt.kind == "elapsed":
            n = pt.n_tokens
            c0 = b * pt.prompt_tokens
            x_base = n * (u_a + u_b * b)  # coefficient of A
            x_gamma = n * c0 + b * n * (n - 1) / 2.0
            y = pt.observed - prefill_s_per_token * b * pt.prompt_tokens
        else:
            x_base = u_a + u_b * b
            x_gamma = float(b * (pt.prompt_tokens + pt.n_tokens))
            y = 1.0 / pt.observed
        rows.append((x_base, x_gamma))
        ys.append(y)
        ws.append(pt.weight)
    if not rows:
        raise ValueError("fit_published: no point with weight > 0")
    X = np.array(rows, dtype=np.float64)
    observed = np.array(ys, dtype=np.float64)
    cols = {"A": X[:, 0], "gamma": X[:, 1]}
    fixed = {k: v for k, v in (("A", base_step_s), ("gamma", gamma)) if v is not None}
    offset = sum((v * cols[k] for k, v in fixed.items()), np.zeros_like(observed))
    free = {k: v for k, v in cols.items() if k not in fixed}
    theta = dict(fixed)
    if free:  # relative residuals, weighted: the one least-squares solver (core.hardware.lsq)
        coef, _ = lsq(observed, free, rel=True, weight=np.array(ws), offset=offset)
        theta.update(coef)
    base, g = float(theta["A"]), float(theta["gamma"])
    return u_a * base, u_b * base, g


def _sig(x: float, digits: int = 4) -> float:
    return float(f"{x:.{digits - 1}e}")


def derive_published_profiles(*, date: str = CALIBRATION_DATE) -> dict[str, HardwareProfile]:
    """The three 4xL4 14B profiles derived from the published figures (pure; rounded to 4
    significant digits, the reports are computed from the rounded values)."""
    pf = PREFILL_S_PER_TOKEN
    a8, b8, g8 = fit_published(W4KV8_POINTS, prefill_s_per_token=pf)
    a8, b8, g8 = _sig(a8), _sig(b8), _sig(g8)
    base8 = a8 + b8 * B_REF
    _, _, g16 = fit_published(W4KV16_POINTS, prefill_s_per_token=pf, base_step_s=base8)
    g16 = _sig(g16)
    a_fp, b_fp, _ = fit_published(FP16_POINTS, prefill_s_per_token=pf, gamma=g16)
    a_fp, b_fp = _sig(a_fp), _sig(b_fp)

    tmp8 = HardwareProfile(name="tmp", a=a8, beta=b8, gamma=g8, prefill_s_per_token=pf,
                           startup_s=0.0, max_batch=32, provenance=Provenance("", "", ""))
    errs = [predict_point(tmp8, pt) / pt.observed - 1.0 for pt in W4KV8_POINTS]
    rates_only = [replace(pt, weight=1.0 if pt.kind == "rate" else 0.0) for pt in W4KV8_POINTS]
    ra, rb, rg = fit_published(rates_only, prefill_s_per_token=pf)
    rates_only_s = predict_point(tmp8.with_decode(ra, rb, rg), W4KV8_POINTS[0])
    local = CalibrationPoint("local 2xA800 workload", "elapsed", 32, PROMPT_TOKENS, 10119, 1.0)
    local_s = predict_point(tmp8, local)  # not fitted: different hardware
    common_notes = (
        "Assumptions: batch 15 held constant up to the measured token (all 15 sequences still "
        "decoding); prompts ~150 tokens; a and beta are not separable at one batch size, so "
        f"beta*15 = {BETA_SHARE:.0%} of the base step is assumed. prefill_s_per_token = "
        f"{pf:g} s is an estimate (14B at ~28 GFLOP/token on 4xL4 at ~30% of ~480 dense TFLOPS, "
        "~5k tok/s), not measured. max_batch = 32 as in the seed policy's engine config.")
    w4kv8 = HardwareProfile(
        name="l4x4-14b-w4kv8",
        description="4xL4 (TP4), 14B DeepSeek-R1-Distill-Qwen fine-tune, lmdeploy TurboMind, "
                    "AWQ 4-bit weights, int8 KV cache",
        a=a8, beta=b8, gamma=g8,
        prefill_s_per_token=pf, startup_s=90.0, max_batch=32,
        provenance=Provenance(
            source=WRITEUP, date=date, **_published('awq-w4/kv8'),
            method="weighted least squares on relative errors over the published points "
                   "(hard timing 423 s weight 100, rates read off the figure weight 1); "
                   "fit A = a + 15*beta and gamma, then split A",
            notes=(
                "The published figures are in tension with a linear step model: 13,007 tokens in "
                f"423 s averages {13007 / 423:.1f} tok/s, while a step time linear in context "
                f"through the two read-off rates alone would take {rates_only_s:.0f} s. The fit "
                f"keeps the measured 423 s (error {errs[0]:+.1%}) and overstates the read-off rates "
                f"by {errs[1]:+.1%} and {errs[2]:+.1%} (see calibration). " + common_notes +
                " startup_s = 90 s is an estimate of lmdeploy TurboMind init of a 14B AWQ model on "
                "4xL4 (60-120 s), not measured. Not fitted, for reference: the local run (30 AIME "
                "questions x 32 samples, 6,845 s, mean output 10,119 tokens; 11,838 s at 16-bit "
                "KV) was on 2xA800 at batch 32, a different machine; this profile predicts "
                f"{local_s:.0f} s per such question (32 x 10,119 tokens at batch 32) on 4xL4."),
        ),
        calibration=W4KV8_POINTS,
    )
    w4kv16 = HardwareProfile(
        name="l4x4-14b-w4kv16",
        description="4xL4 (TP4), 14B R1-Distill-Qwen, lmdeploy TurboMind, AWQ 4-bit weights, "
                    "16-bit KV cache",
        a=a8, beta=b8, gamma=g16,
        prefill_s_per_token=pf, startup_s=90.0, max_batch=32,
        provenance=Provenance(
            source=WRITEUP, date=date, **_published('awq-w4/kv16'),
            method="a and beta taken from l4x4-14b-w4kv8 (same 4-bit weights); gamma solved from "
                   "the measured 12,993 tokens at 553 s",
            notes=(f"gamma is {g16 / g8:.2f}x W4KV8's (16-bit KV reads twice the bytes per context "
                   "token; the rest of the excess is the published timing). The write-up's "
                   "'W4KV8 ~20% less time per output token' is shown as a reference point, not "
                   "fitted. " + common_notes + " startup_s = 90 s estimated as for W4KV8."),
        ),
        calibration=W4KV16_POINTS,
    )
    fp16 = HardwareProfile(
        name="l4x4-14b-fp16",
        description="4xL4 (TP4), 14B R1-Distill-Qwen, lmdeploy TurboMind, 16-bit weights and "
                    "KV cache",
        a=a_fp, beta=b_fp, gamma=g16,
        prefill_s_per_token=pf, startup_s=150.0, max_batch=32,
        provenance=Provenance(
            source=WRITEUP, date=date, **_published('fp16/kv16'),
            method="gamma taken from l4x4-14b-w4kv16 (same 16-bit KV); base step A = a + 15*beta "
                   "solved from the measured 12,997 tokens at 981 s and split like W4KV8",
            notes=(f"The base step is {(a_fp + b_fp * B_REF) / base8:.2f}x W4KV8's (16-bit weights "
                   "read 4x the bytes; launch and all-reduce costs do not scale). The write-up's "
                   "'W4KV8 ~55% less time per output token' is shown as a reference point, not "
                   "fitted. " + common_notes + " startup_s = 150 s is an estimate (28 GB of "
                   "weights to load instead of ~8 GB)."),
        ),
        calibration=FP16_POINTS,
    )
    return {p.name: p for p in (w4kv8, w4kv16, fp16)}


@dataclass(frozen=True)
class PointReport:
    """One calibration point against the model: `observed` and `predicted` in `unit`."""

    label: str
    unit: str
    observed: float
    predicted: float
    weight: float

    @property
    def rel_error(self) -> float:
        return self.predicted / self.observed - 1.0


def calibration_report(p: HardwareProfile) -> list[PointReport]:
    """The profile's calibration points with the model's predictions (pure)."""
    return [PointReport(pt.label, "s" if pt.kind == "elapsed" else "tok/s", pt.observed,
                        predict_point(p, pt), pt.weight) for pt in p.calibration]


def format_report(p: HardwareProfile) -> str:
    """A plain-text table of `calibration_report`, headed by the profile's coefficients."""
    lines = [
        f"{p.name}: a={p.a:.4g} s  beta={p.beta:.4g} s/seq  gamma={p.gamma:.4g} s/token  "
        f"prefill={p.prefill_s_per_token:.3g} s/token  startup={p.startup_s:g} s  "
        f"max_batch={p.max_batch}",
        f"  holds for: {p.provenance.conditions()}",
        f"  source: {p.provenance.source}",
    ]
    if p.host_per_step or p.prefill_s_per_request:  # the live loop's terms (clocks only)
        lines.insert(1, f"  live loop: host_per_step={p.host_per_step:.3g} s  "
                        f"prefill_s_per_request={p.prefill_s_per_request:.3g} s "
                        "(in every simulated clock, not in the calibration points below)")
    rows = calibration_report(p)
    if not rows:
        lines.append("  (no calibration points)")
        return "\n".join(lines)
    width = max(len(r.label) for r in rows)
    lines.append(f"  {'point':<{width}}  {'weight':>6}  {'observed':>14}  {'model':>14}  "
                 f"{'error':>7}")
    for r in rows:
        w = f"{r.weight:g}" if r.weight > 0 else "ref"
        lines.append(f"  {r.label:<{width}}  {w:>6}  {r.observed:>8.1f} {r.unit:<5}  "
                     f"{r.predicted:>8.1f} {r.unit:<5}  {r.rel_error:>+7.1%}")
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    """Print the calibration table of each profile; `--write` regenerates the shipped YAMLs."""
    ap = argparse.ArgumentParser(prog="python -m aimo.core.hardware.calibrate",
                                 description=(__doc__ or "").split("\n")[0])
    ap.add_argument("profiles", nargs="*",
                    help="profile names or YAML paths (default: all shipped)")
    ap.add_argument("--write", action="store_true",
                    help=f"re-derive the published profiles and rewrite them in {HARDWARE_DIR}")
    args = ap.parse_args(argv)
    try:
        if args.write:
            for p in derive_published_profiles().values():
                path = save_profile(p, HARDWARE_DIR / f"{p.name}.yaml")
                print(f"wrote {path}")
        names = args.profiles or list_profiles()
        for i, name in enumerate(names):
            if i:
                print()
            print(format_report(load_profile(name)))
    except InputError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())


@dataclass(frozen=True)
class CalibrationError:
    """|relative error| of a profile over its weighted calibration points (reference rows out)."""

    points: int
    median: float
    max: float


def calibration_error(p: HardwareProfile) -> CalibrationError:
    """Median and max |relative error| of `calibration_report` over points with weight > 0."""
    errs = sorted(abs(r.rel_error) for r in calibration_report(p) if r.weight > 0)
    if not errs:
        return CalibrationError(0, math.nan, math.nan)
    mid = len(errs) // 2
    median = errs[mid] if len(errs) % 2 else (errs[mid - 1] + errs[mid]) / 2
    return CalibrationError(len(errs), median, errs[-1])
