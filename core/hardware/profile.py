"""Hardware profiles: the time model's parameters as plain data with a YAML round-trip.

A profile says how long a decode step takes for a batch, what prefill and engine start-up cost,
how many sequences run at once and how code execution overlaps decoding. It is fitted per
hardware x model x quantisation and carries its provenance, so a number in a simulation can be
traced back to the measurement it came from.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Literal, Mapping

import yaml

from aimo.data import HARDWARE_DIR
from aimo.core.errors import InputError

CodeOverlap = Literal["parallel", "serial"]
CODE_OVERLAPS: tuple[str, ...] = ("parallel", "serial")
PointKind = Literal["elapsed", "rate"]
POINT_KINDS: tuple[str, ...] = ("elapsed", "rate")

_NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*$")


@dataclass(frozen=True)
class Provenance:
    """Where a profile's numbers come from: `source` (who measured what), `date` (ISO day it was
    measured on), `method` (how the parameters were obtained) and free `notes` (assumptions,
    caveats); and under which conditions they hold: `engine` (e.g. 'lmdeploy pytorch'),
    `engine_version`, `gpu` (e.g. '1xNVIDIA H100 80GB HBM3'), `quantization` (e.g. 'awq-w4/kv8')
    and `sampling` (the sampling settings, as (name, value) pairs). Empty = not stated."""

    source: str
    date: str
    method: str
    notes: str = ""
    engine: str = ""
    engine_version: str = ""
    gpu: str = ""
    quantization: str = ""
    sampling: tuple[tuple[str, float], ...] = ()

    def conditions(self) -> str:
        """One line: under which engine, GPU, quantisation and sampling the profile holds."""
        parts = [
            f"engine {self.engine}{' ' + self.engine_version if self.engine_version else ''}"
            if self.engine else "engine not stated",
            f"GPU {self.gpu}" if self.gpu else "GPU not stated",
            f"quantization {self.quantization}" if self.quantization else "quantization not stated",
            ("sampling " + ", ".join(f"{k} {v:g}" for k, v in self.sampling)) if self.sampling
            else "sampling not stated",
            f"measured on {self.date}" if self.date else "measurement date not stated",
        ]
        return "; ".join(parts)


@dataclass(frozen=True)
class CalibrationPoint:
    """One published or measured figure a profile is checked against.

    `kind="elapsed"`: with `batch` sequences of `prompt_tokens` each decoding together from the
    start, one sequence reaches `n_tokens` generated tokens after `observed` seconds (prefill
    included). `kind="rate"`: at `n_tokens` generated tokens per sequence, each sequence gets
    `observed` tokens per second. `weight` is its weight in the calibration fit (0 = shown in the
    report for reference, not fitted).
    """

    label: str
    kind: PointKind
    batch: int
    prompt_tokens: int
    n_tokens: int
    observed: float
    weight: float = 1.0


@dataclass(frozen=True)
class HardwareProfile:
    """Time model of one hardware x model x quantisation; all times in seconds.

    Decode: a step over `b` active sequences holding `C` context tokens in all (prompt plus
    generated, summed over the batch) takes `a + beta*b + beta_above*max(0, b - knee_batch) +
    gamma*C` seconds (`core.hardware.timing.step_seconds`) and gives every active sequence one
    token. The knee term is optional (`beta_above = 0`: the linear model `a + beta*b + gamma*C`);
    a fit adds it only where it lowers the held-out error (`core.hardware.fit`). Prefill costs `prefill_s_per_token` per prompt token; the engine start-up
    `startup_s` is paid once per competition; at most `max_batch` sequences decode at once (more
    wait in a queue and start when a slot frees); `question_overhead_s` is paid once per question.
    `host_per_step` (optional, 0 by default): the live control loop's host seconds per decode
    step (its work on the streamed chunks), which the engine's measurement does not see; the
    clocks decode with `a + host_per_step` (`core.hardware.timing.decode_coefficients`),
    `step_s` and the calibration points stay the engine's. `prefill_s_per_request` (optional, 0
    by default): the engine's admission of each request before it decodes, on top of the
    per-token prefill (small prompts: a live question's requests each take about a step to
    join the batch; `core.hardware.timing.prefill_seconds`).
    `code_overlap`: "parallel" = generated code runs on the CPU while the batch keeps decoding at
    full speed, only the sample's code answer waits for the execution; "serial" = execution stalls
    the whole batch (its wall time is added to the question clock). `code_workers` (parallel
    only): code runs execute at most that many at a time, first dispatched first served (the live
    solver's sandbox pool); None = no limit. `abort_latency_steps`: a question stop lands that many
    decode steps after the loop decided it (the engine finishes the step in flight before it
    processes the aborts): the running samples decode those whole steps (each up to its cap),
    their time counts in the question's, and a final read (`vote.final_read`) reads their tokens
    (0, the default: the stop lands at once, as profiles without the field assume).
    Instances are immutable and safe to share between threads and simulations.
    """

    name: str
    a: float
    beta: float
    gamma: float
    prefill_s_per_token: float
    startup_s: float
    max_batch: int
    provenance: Provenance
    code_overlap: CodeOverlap = "parallel"
    question_overhead_s: float = 0.0
    description: str = ""
    code_workers: int | None = None
    calibration: tuple[CalibrationPoint, ...] = field(default=())
    knee_batch: int = 0
    beta_above: float = 0.0
    abort_latency_steps: int = 0
    host_per_step: float = 0.0
    prefill_s_per_request: float = 0.0

    def __post_init__(self) -> None:
        errors = _check_profile(self)
        if errors:
            field_path, message = errors[0]
            raise InputError(f"hardware profile {self.name!r}", field_path, message)

    def step_s(self, b: int, c: float) -> float:
        """Latency of one decode step with `b` active sequences and `c` context tokens in all."""
        from aimo.core.hardware.timing import step_seconds

        return float(step_seconds(self.a, self.beta, self.gamma, self.knee_batch,
                                  self.beta_above, b, c))

    @property
    def has_knee(self) -> bool:
        """Whether the step has the optional term above `knee_batch`."""
        return self.beta_above > 0.0

    def with_decode(self, a: float, beta: float, gamma: float, *, knee_batch: int = 0,
                    beta_above: float = 0.0) -> HardwareProfile:
        """A copy with other decode coefficients (everything else kept; no knee unless given)."""
        return replace(self, a=a, beta=beta, gamma=gamma, knee_batch=knee_batch,
                       beta_above=beta_above)

    def to_dict(self, *, report: bool = True) -> dict[str, Any]:
        """Plain mapping in the YAML layout. With `report`, each calibration point also carries
        the model's `predicted` value and `rel_error` (derived; ignored when loading)."""
        from aimo.core.hardware.timing import predict_point

        out: dict[str, Any] = {"name": self.name}
        if self.description:
            out["description"] = self.description
        out["decode"] = {"a": self.a, "beta": self.beta, "gamma": self.gamma}
        if self.has_knee or self.knee_batch:
            out["decode"].update(knee_batch=self.knee_batch, beta_above=self.beta_above)
        if self.host_per_step:
            out["decode"]["host_per_step"] = self.host_per_step
        out["prefill_s_per_token"] = self.prefill_s_per_token
        if self.prefill_s_per_request:
            out["prefill_s_per_request"] = self.prefill_s_per_request
        out["startup_s"] = self.startup_s
        out["max_batch"] = self.max_batch
        out["code_overlap"] = self.code_overlap
        if self.code_workers is not None:
            out["code_workers"] = self.code_workers
        out["question_overhead_s"] = self.question_overhead_s
        if self.abort_latency_steps:
            out["abort_latency_steps"] = self.abort_latency_steps
        prov: dict[str, Any] = {
            "source": self.provenance.source,
            "date": self.provenance.date,
            "method": self.provenance.method,
        }
        if self.provenance.notes:
            prov["notes"] = self.provenance.notes
        for key in PROVENANCE_CONDITIONS:
            value = getattr(self.provenance, key)
            if value:
                prov[key] = dict(value) if key == "sampling" else value
        out["provenance"] = prov
        if self.calibration:
            points = []
            for pt in self.calibration:
                d: dict[str, Any] = {
                    "label": pt.label,
                    "kind": pt.kind,
                    "batch": pt.batch,
                    "prompt_tokens": pt.prompt_tokens,
                    "n_tokens": pt.n_tokens,
                    "observed": pt.observed,
                    "weight": pt.weight,
                }
                if report:
                    pred = predict_point(self, pt)
                    d["predicted"] = _round_sig(pred, 5)
                    d["rel_error"] = round(pred / pt.observed - 1.0, 4)
                points.append(d)
            out["calibration"] = points
        return out

    @classmethod
    def from_dict(cls, data: Any, *, source: str = "<dict>") -> HardwareProfile:
        """Build and validate a profile from the YAML layout; errors name `source` and the field."""
        return _parse_profile(data, source)


# ---------------------------------------------------------------------------------------------
# validation


def _check_profile(p: HardwareProfile) -> list[tuple[str, str]]:
    errs: list[tuple[str, str]] = []
    if not isinstance(p.name, str) or not _NAME_RE.match(p.name):
        errs.append(("name", "must be a non-empty name of letters, digits, '.', '_' or '-', "
                             f"got {p.name!r}"))
    checks: list[tuple[str, Any, bool, str]] = [
        ("decode.a", p.a, True, "must be a finite number > 0 (seconds per step)"),
        ("decode.beta", p.beta, False,
         "must be a finite number >= 0 (seconds per step per sequence)"),
        ("decode.gamma", p.gamma, False,
         "must be a finite number >= 0 (seconds per step per context token)"),
        ("decode.beta_above", p.beta_above, False,
         "must be a finite number >= 0 (seconds per step per sequence above knee_batch)"),
        ("decode.host_per_step", p.host_per_step, False,
         "must be a finite number >= 0 (the live loop's host seconds per step)"),
        ("prefill_s_per_token", p.prefill_s_per_token, False, "must be a finite number >= 0"),
        ("prefill_s_per_request", p.prefill_s_per_request, False, "must be a finite number >= 0"),
        ("startup_s", p.startup_s, False, "must be a finite number >= 0"),
        ("question_overhead_s", p.question_overhead_s, False, "must be a finite number >= 0"),
    ]
    for path, value, strict, msg in checks:
        bad = not _is_number(value) or not math.isfinite(value) or value < 0
        if bad or (strict and value == 0):
            errs.append((path, f"{msg}, got {value!r}"))
    if not isinstance(p.knee_batch, int) or isinstance(p.knee_batch, bool) or p.knee_batch < 0:
        errs.append(("decode.knee_batch", f"must be an integer >= 0, got {p.knee_batch!r}"))
    if not isinstance(p.max_batch, int) or isinstance(p.max_batch, bool) or p.max_batch < 1:
        errs.append(("max_batch", f"must be an integer >= 1, got {p.max_batch!r}"))
    if (not isinstance(p.abort_latency_steps, int) or isinstance(p.abort_latency_steps, bool)
            or p.abort_latency_steps < 0):
        errs.append(("abort_latency_steps",
                     f"must be an integer >= 0, got {p.abort_latency_steps!r}"))
    if p.code_overlap not in CODE_OVERLAPS:
        errs.append(("code_overlap",
                     f"must be one of {list(CODE_OVERLAPS)}, got {p.code_overlap!r}"))
    if p.code_workers is not None and (not isinstance(p.code_workers, int)
                                       or isinstance(p.code_workers, bool) or p.code_workers < 1):
        errs.append(("code_workers", f"must be an integer >= 1 or absent, got {p.code_workers!r}"))
    if not isinstance(p.provenance, Provenance):
        errs.append(("provenance", "must be a Provenance"))
    for i, pt in enumerate(p.calibration):
        errs.extend((f"calibration[{i}].{f}", m) for f, m in _check_point(pt))
    return errs


def _check_point(pt: CalibrationPoint) -> list[tuple[str, str]]:
    errs: list[tuple[str, str]] = []
    if pt.kind not in POINT_KINDS:
        errs.append(("kind", f"must be one of {list(POINT_KINDS)}, got {pt.kind!r}"))
    for f, lo in (("batch", 1), ("prompt_tokens", 0), ("n_tokens", 1)):
        v = getattr(pt, f)
        if not isinstance(v, int) or isinstance(v, bool) or v < lo:
            errs.append((f, f"must be an integer >= {lo}, got {v!r}"))
    if not _is_number(pt.observed) or not math.isfinite(pt.observed) or pt.observed <= 0:
        errs.append(("observed", f"must be a finite number > 0, got {pt.observed!r}"))
    if not _is_number(pt.weight) or not math.isfinite(pt.weight) or pt.weight < 0:
        errs.append(("weight", f"must be a finite number >= 0, got {pt.weight!r}"))
    return errs


def _is_number(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool)


def _round_sig(x: float, digits: int) -> float:
    if x == 0 or not math.isfinite(x):
        return x
    return round(x, digits - 1 - int(math.floor(math.log10(abs(x)))))


# ---------------------------------------------------------------------------------------------
# parsing

_TOP_KEYS = {
    "name", "description", "decode", "prefill_s_per_token", "prefill_s_per_request", "startup_s",
    "max_batch", "code_overlap", "code_workers", "question_overhead_s", "abort_latency_steps",
    "provenance", "calibration",
}
_REQUIRED_TOP = ("name", "decode", "prefill_s_per_token", "startup_s", "max_batch", "provenance")
_DECODE_KEYS = ("a", "beta", "gamma")
_DECODE_OPTIONAL = ("knee_batch", "beta_above", "host_per_step")
PROVENANCE_CONDITIONS = ("engine", "engine_version", "gpu", "quantization", "sampling")
_PROV_KEYS = {"source", "date", "method", "notes", *PROVENANCE_CONDITIONS}
_POINT_KEYS = {"label", "kind", "batch", "prompt_tokens", "n_tokens", "observed", "weight",
               "predicted", "rel_error"}
_POINT_REQUIRED = ("label", "kind", "batch", "prompt_tokens", "n_tokens", "observed")


def _mapping(value: Any, source: str, path: str) -> Mapping[str, Any]:
    if not isinstance(value, Mapping):
        raise InputError(source, path or None, f"must be a mapping, got {type(value).__name__}")
    for key in value:
        if not isinstance(key, str):
            raise InputError(source, path or None, f"keys must be strings, got {key!r}")
    return value


def _no_unknown(m: Mapping[str, Any], allowed: set[str] | tuple[str, ...], source: str,
                path: str) -> None:
    for key in m:
        if key not in allowed:
            where = f"{path}.{key}" if path else key
            raise InputError(source, where, f"unknown key (allowed: {', '.join(sorted(allowed))})")


def _required(m: Mapping[str, Any], keys: tuple[str, ...], source: str, path: str) -> None:
    for key in keys:
        if key not in m:
            raise InputError(source, f"{path}.{key}" if path else key, "required key is missing")


def _num(value: Any, source: str, path: str) -> float:
    if not _is_number(value):
        raise InputError(source, path, f"must be a number, got {value!r}")
    return float(value)


def _int(value: Any, source: str, path: str) -> int:
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    if not isinstance(value, int) or isinstance(value, bool):
        raise InputError(source, path, f"must be an integer, got {value!r}")
    return value


def _str(value: Any, source: str, path: str) -> str:
    if hasattr(value, "isoformat") and not isinstance(value, str):  # YAML reads 2025-01-31 as date
        return str(value.isoformat())
    if not isinstance(value, str):
        raise InputError(source, path, f"must be a string, got {value!r}")
    return value


def _sampling(value: Any, source: str) -> tuple[tuple[str, float], ...]:
    """`provenance.sampling`: a mapping of setting name to number (absent: not stated)."""
    if value is None:
        return ()
    m = _mapping(value, source, "provenance.sampling")
    out = []
    for key, v in m.items():
        x = _num(v, source, f"provenance.sampling.{key}")
        if not math.isfinite(x):
            raise InputError(source, f"provenance.sampling.{key}", f"must be a finite number, got {v!r}")
        out.append((key, x))
    return tuple(out)


def _parse_profile(data: Any, source: str) -> HardwareProfile:
    top = _mapping(data, source, "")
    _no_unknown(top, _TOP_KEYS, source, "")
    _required(top, _REQUIRED_TOP, source, "")
    dec = _mapping(top["decode"], source, "decode")
    _no_unknown(dec, (*_DECODE_KEYS, *_DECODE_OPTIONAL), source, "decode")
    _required(dec, _DECODE_KEYS, source, "decode")
    prov_m = _mapping(top["provenance"], source, "provenance")
    _no_unknown(prov_m, _PROV_KEYS, source, "provenance")
    _required(prov_m, ("source", "date", "method"), source, "provenance")
    prov = Provenance(
        source=_str(prov_m["source"], source, "provenance.source"),
        date=_str(prov_m["date"], source, "provenance.date"),
        method=_str(prov_m["method"], source, "provenance.method"),
        notes=_str(prov_m.get("notes", ""), source, "provenance.notes"),
        **{k: _str(prov_m.get(k, ""), source, f"provenance.{k}")
           for k in PROVENANCE_CONDITIONS if k != "sampling"},
        sampling=_sampling(prov_m.get("sampling"), source),
    )
    raw_points = top.get("calibration") or []
    if not isinstance(raw_points, list):
        raise InputError(source, "calibration", "must be a list of points")
    points = []
    for i, raw in enumerate(raw_points):
        path = f"calibration[{i}]"
        m = _mapping(raw, source, path)
        _no_unknown(m, _POINT_KEYS, source, path)
        _required(m, _POINT_REQUIRED, source, path)
        for derived in ("predicted", "rel_error"):  # written on save; recomputed, never trusted
            if derived in m and m[derived] is not None:
                _num(m[derived], source, f"{path}.{derived}")
        pt = CalibrationPoint(
            label=_str(m["label"], source, f"{path}.label"),
            kind=_str(m["kind"], source, f"{path}.kind"),  # type: ignore[arg-type]
            batch=_int(m["batch"], source, f"{path}.batch"),
            prompt_tokens=_int(m["prompt_tokens"], source, f"{path}.prompt_tokens"),
            n_tokens=_int(m["n_tokens"], source, f"{path}.n_tokens"),
            observed=_num(m["observed"], source, f"{path}.observed"),
            weight=_num(m.get("weight", 1.0), source, f"{path}.weight"),
        )
        errs = _check_point(pt)
        if errs:
            raise InputError(source, f"{path}.{errs[0][0]}", errs[0][1])
        points.append(pt)
    code_overlap = _str(top.get("code_overlap", "parallel"), source, "code_overlap")
    kwargs: dict[str, Any] = dict(
        name=_str(top["name"], source, "name"),
        description=_str(top.get("description", ""), source, "description"),
        a=_num(dec["a"], source, "decode.a"),
        beta=_num(dec["beta"], source, "decode.beta"),
        gamma=_num(dec["gamma"], source, "decode.gamma"),
        knee_batch=_int(dec.get("knee_batch", 0), source, "decode.knee_batch"),
        beta_above=_num(dec.get("beta_above", 0.0), source, "decode.beta_above"),
        host_per_step=_num(dec.get("host_per_step", 0.0), source, "decode.host_per_step"),
        prefill_s_per_token=_num(top["prefill_s_per_token"], source, "prefill_s_per_token"),
        prefill_s_per_request=_num(top.get("prefill_s_per_request", 0.0), source,
                                   "prefill_s_per_request"),
        startup_s=_num(top["startup_s"], source, "startup_s"),
        max_batch=_int(top["max_batch"], source, "max_batch"),
        code_overlap=code_overlap,
        code_workers=(None if top.get("code_workers") is None
                      else _int(top["code_workers"], source, "code_workers")),
        question_overhead_s=_num(top.get("question_overhead_s", 0.0), source,
                                 "question_overhead_s"),
        abort_latency_steps=_int(top.get("abort_latency_steps", 0), source,
                                 "abort_latency_steps"),
        provenance=prov,
        calibration=tuple(points),
    )
    try:
        return HardwareProfile(**kwargs)
    except InputError as exc:  # re-attribute the dataclass check to the file
        raise InputError(source, exc.field, exc.message) from None


# ---------------------------------------------------------------------------------------------
# files


def list_profiles() -> list[str]:
    """Names of the profiles shipped in `data/hardware/`, sorted."""
    return sorted(p.stem for p in HARDWARE_DIR.glob("*.yaml"))


def load_profile(name_or_path: str | Path) -> HardwareProfile:
    """Load a shipped profile by name, else a YAML file by path.

    Raises:
        InputError: no such profile (the message lists the shipped names), unreadable YAML, or
            an invalid field (named in the error).
    """
    text = str(name_or_path)
    shipped = HARDWARE_DIR / f"{text}.yaml"
    path = Path(text)
    if _NAME_RE.match(text) and shipped.is_file():
        path = shipped
    elif not path.is_file():
        names = ", ".join(list_profiles()) or "(none)"
        raise InputError(text, None, f"no such hardware profile or file; shipped profiles: {names}")
    try:
        # the C parser when PyYAML has it (same results, ~10x faster: matters for CLI start-up)
        data = yaml.load(path.read_text(encoding="utf-8"),
                         Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader))  # noqa: S506
    except (OSError, UnicodeDecodeError) as exc:
        raise InputError(str(path), None, f"cannot read: {exc}") from None
    except yaml.YAMLError as exc:
        raise InputError(str(path), None, f"invalid YAML: {exc}") from None
    return _parse_profile(data, str(path))


def dump_profile(p: HardwareProfile) -> str:
    """YAML text of a profile (with its calibration report), as `save_profile` writes it."""
    header = (
        f"# Hardware profile {p.name}: decode step = a + beta*b + gamma*C seconds "
        "(b active sequences, C context tokens in all)"
        + (", plus beta_above*max(0, b - knee_batch).\n" if p.has_knee else ".\n") +
        "# calibration[].predicted / rel_error are derived by the model and rewritten on save.\n"
    )
    return header + yaml.safe_dump(p.to_dict(), sort_keys=False, allow_unicode=True, width=100)


def save_profile(p: HardwareProfile, path: str | Path) -> Path:
    """Write a profile as YAML (atomically: a temporary file renamed over `path`)."""
    path = Path(path)
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(dump_profile(p), encoding="utf-8")
    tmp.replace(path)
    return path
