"""A measured profile: the fitted decode coefficients (`core.hardware.fit`), the measured
prefill rate, and the provenance of a measurement run."""

from __future__ import annotations

import datetime as _dt
from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Any

import numpy as np

from aimo.core.hardware.fit import StepFit
from aimo.core.hardware.profile import HardwareProfile, Provenance
from aimo.core.hardware.rows import StepRow, calibration_points
from aimo.recorder.profiling.measure import CellResult, MeasureContext

PREFILL_MIN_TOKENS = 16384
DEFAULT_BASE = "l4x4-14b-w4kv8"


@dataclass(frozen=True)
class PrefillEstimate:
    """Seconds of prefill per prompt token: median over `cells` cells of >= `min_tokens` prompt
    tokens in all of (time to the batch's last first token) / (prompt tokens in all)."""

    s_per_token: float
    cells: int
    min_tokens: int


def measured_prefill(results: Sequence[CellResult],
                     min_tokens: int = PREFILL_MIN_TOKENS) -> PrefillEstimate | None:
    """The prefill rate from the measured cells (warm-up excluded); None when no cell holds
    `min_tokens` prompt tokens in all (shorter prompts measure overheads, not prefill)."""
    rates = [r.first_chunk_s[1] / r.prefill_tokens for r in results
             if r.kind == "cell" and r.first_chunk_s and r.prefill_tokens >= min_tokens]
    if not rates:
        return None
    return PrefillEstimate(_sig4(float(np.median(rates))), len(rates), min_tokens)



def _kv_label(qp: int) -> str:
    return {0: "16-bit", 4: "int4", 8: "int8"}.get(qp, f"quant_policy {qp}")


def measured_conditions(ctx: MeasureContext) -> dict[str, Any]:
    """The provenance's conditions of a measurement: engine, version, GPU, quantisation and the
    sampling settings every cell ran with (the policy defaults, `SamplingSettings()`)."""
    from aimo.solver.engines.base import SamplingSettings

    s = SamplingSettings()
    weights = "awq-w4" if "AWQ" in ctx.model_summary else "fp16"
    return {"engine": f"lmdeploy {ctx.backend}", "engine_version": ctx.lmdeploy_version or "",
            "gpu": ctx.gpu, "quantization": f"{weights}/kv{ {0: 16, 4: 4, 8: 8}.get(ctx.quant_policy, ctx.quant_policy)}",
            "sampling": (("temperature", s.temperature), ("top_p", s.top_p), ("min_p", s.min_p),
                         ("repetition_penalty", s.repetition_penalty))}


def measured_profile(fit: StepFit, rows: Sequence[StepRow], results: Sequence[CellResult], *,
                     name: str, base: HardwareProfile, ctx: MeasureContext,
                     date: str | None = None) -> HardwareProfile:
    """A profile whose decode coefficients are `fit`, with the calibration points of `rows`.

    Prefill per token: measured (`measured_prefill`) when a cell holds >= 16k prompt tokens in
    all, else `base`'s; start-up, max_batch, code_overlap and question overhead: `base`'s. The
    provenance says which, and carries the fit error and the alternatives."""
    batches = sorted({r.batch for r in rows})
    prompts = sorted({r.prompt_tokens for r in rows})
    contexts = [r.context_total for r in rows]
    n_cells = len({(r.batch, r.prompt_tokens) for r in rows})
    pre = measured_prefill(results)
    alt = fit.alternatives
    notes = (f"Fit error of {fit.model.form} over {fit.n_rows} sub-window rows ({n_cells} "
             f"cells): relative {fit.rel_error.render()}.")
    if fit.choice is not None:
        notes += " " + fit.choice.render().replace("\n", ";") + "."
    if fit.zeroed:
        notes += (f" {', '.join(fit.zeroed)} came out negative in the free fit and was pinned "
                  "to 0.")
    for key in ("+delta*b*C", "+beta2*b^2", "a_b per batch size+gamma*C"):
        if key in alt:
            notes += f" Alternative {key}: {alt[key].rel_error.render()}."
    if pre is not None:
        prefill = pre.s_per_token
        notes += (f" prefill_s_per_token = {prefill:g}: measured, median over {pre.cells} cell(s) "
                  f"of >= {pre.min_tokens} prompt tokens in all of the time to the batch's last "
                  "first token over its prompt tokens (includes one decode step and queueing).")
    else:
        prefill = base.prefill_s_per_token
        notes += (f" prefill_s_per_token = {prefill:g} from base profile {base.name}: no cell "
                  f"held >= {PREFILL_MIN_TOKENS} prompt tokens in all.")
    notes += (f" startup_s, max_batch, code_overlap and question_overhead_s from base profile "
              f"{base.name}")
    if ctx.startup_s is not None:
        notes += (f" (this engine's start-up here: {ctx.startup_s:.1f} s of pipeline build and "
                  "warm-up, not used: it depends on where the weights are read from)")
    notes += "."
    if ctx.skipped:
        notes += f" Skipped for the deadline: {', '.join(ctx.skipped)}."
    if ctx.failed:
        notes += f" Failed (grid stopped): {', '.join(ctx.failed)}."
    versions = ", ".join(v for v in (
        f"lmdeploy {ctx.lmdeploy_version}" if ctx.lmdeploy_version else "",
        f"torch {ctx.torch_version}" if ctx.torch_version else "") if v)
    source = (f"measured on {ctx.gpu} with `aimo profile measure` (lmdeploy {ctx.backend} engine"
              f"{', ' + versions if versions else ''}): model {ctx.model} ({ctx.model_summary}), "
              f"quant_policy {ctx.quant_policy}"
              + (f"; rows in {ctx.csv_path}" if ctx.csv_path else ""))
    method = (f"per cell (b sequences of equal-length random prompts: {ctx.prompts or 'random'}; "
              f"ignore_eos, {ctx.new_tokens} new tokens): step = time / tokens over the window in "
              "which all b sequences decode, from the LmdeployEngine adapter's chunk timestamps, "
              f"in up to 4 sub-windows (C at each midpoint); {n_cells} cells, b in "
              f"{{{', '.join(map(str, batches))}}}, prompts {prompts[0]}-{prompts[-1]} tokens, "
              f"C {min(contexts) / 1e3:.1f}k-{max(contexts) / 1e3:.1f}k; least squares on "
              f"relative error (core.hardware.fit) of {fit.model.form} (the knee term only where "
              "it lowers the leave-one-cell-out error), coefficients rounded to 4 digits")
    return replace(
        base, name=name,
        description=(f"{ctx.gpu}, {ctx.model_summary}, lmdeploy {ctx.backend} engine, "
                     f"{_kv_label(ctx.quant_policy)} KV cache (measured)"),
        a=fit.a, beta=fit.beta, gamma=fit.gamma, knee_batch=fit.knee_batch,
        beta_above=fit.beta_above, prefill_s_per_token=prefill,
        provenance=Provenance(source=source, date=date or _dt.date.today().isoformat(),
                              method=method, notes=notes, **measured_conditions(ctx)),
        calibration=calibration_points(rows),
    )



def _sig4(x: float) -> float:
    return float(f"{x:.4g}")
