"""Import traces produced elsewhere: a problems CSV plus a samples JSONL, into a trace store run.

Why: teams already hold generations from their own harnesses; importing them lets the simulator
and tuner run on those without re-recording. Both files are validated completely first (every bad
line is collected and reported with its line number and field, in one InputError); only then is
anything written, so a bad file never half-imports and never touches the store's existing runs.
The format is specified in docs/import-format.md.
"""

from __future__ import annotations

import csv
import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa

from aimo.core.errors import AimoError, InputError
from aimo.core.store.confidence import FLOAT16_MAX
from aimo.core.store.records import SampleConfidence
from aimo.core.traces import LogprobSetting, RunInfo
from aimo.core.store.out_path import open_writer

KINDS = ("cot", "code")
FINISH_REASONS = ("stop", "length", "abort", "error")
SOURCES = ("boxed", "code")
SAMPLE_KEYS = frozenset(
    {"problem_id", "sample", "kind", "n_tokens", "answer", "answer_token", "answers", "text",
     "finish_reason", "times", "prompt_tokens", "start_s", "end_s", "confidence"}
)
CONFIDENCE_KEYS = frozenset({"token_conf", "token_entropy", "top_k"})
ANSWER_KEYS = frozenset({"token", "value", "source", "code_ok", "exec_ms", "error"})
QUESTION_ALIASES = ("question", "problem")
MAX_LISTED_ERRORS = 50
INT32_MAX = 2**31 - 1  # the store's INTEGER columns
# utf-8-sig: a byte-order mark (Excel's "CSV UTF-8") is skipped instead of becoming part of the
# first column's name.
ENCODING = "utf-8-sig"


class DuplicateKeyError(AimoError, ValueError):
    """A JSON object gives the same key twice (json keeps the last one silently)."""


def _no_duplicate_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in pairs:
        if key in out:
            raise DuplicateKeyError(key)
        out[key] = value
    return out


@dataclass(frozen=True)
class LineError:
    """One problem found in an input file: where (file, 1-based line), which field, what."""

    file: str
    line: int | None
    field: str | None
    message: str

    def __str__(self) -> str:
        where = f"{self.file}:{self.line}" if self.line is not None else self.file
        return f"{where}: field {self.field!r}: {self.message}" if self.field else f"{where}: {self.message}"


class TraceImportError(InputError):
    """All problems found in the import files; `errors` lists every one of them."""

    def __init__(self, errors: list[LineError]) -> None:
        self.errors = tuple(errors)
        files = list(dict.fromkeys(e.file for e in errors))
        shown = "\n".join(f"  {e}" for e in errors[:MAX_LISTED_ERRORS])
        more = len(errors) - MAX_LISTED_ERRORS
        if more > 0:
            shown += f"\n  ... and {more} more"
        n = len(errors)
        super().__init__(", ".join(files), None, f"{n} error{'s' if n > 1 else ''}, nothing imported:\n{shown}")
        self.field = errors[0].field  # the first error's field; each listed error names its own


@dataclass(frozen=True)
class ProblemIn:
    """One row of the problems CSV."""

    line: int
    problem_id: str
    question: str | None
    answer: int | None


@dataclass(frozen=True)
class AnswerIn:
    token: int
    value: int | None
    source: str
    t_s: float | None = None
    code_ok: bool | None = None
    exec_ms: float | None = None
    error: str | None = None


@dataclass(frozen=True)
class SampleIn:
    """One validated line of the samples JSONL; chunks are (cumulative tokens, time, text)."""

    line: int
    problem_id: str
    sample: int
    kind: str
    n_tokens: int
    finish_reason: str
    prompt_tokens: int
    start_s: float | None
    end_s: float | None
    answers: tuple[AnswerIn, ...]
    chunks: tuple[tuple[int, float | None, str | None], ...]
    confidence: SampleConfidence | None = None
    top_k: int | None = None  # of the confidence, when the line says


@dataclass(frozen=True)
class ImportSummary:
    """What `import_traces` wrote."""

    path: Path
    run_id: str
    n_problems: int
    n_samples: int
    n_answers: int
    skipped_problems: tuple[str, ...] = field(default_factory=tuple)
    samples_without_times: int = 0
    samples_with_confidence: int = 0

    def render(self) -> str:
        lines = [
            f"imported run {self.run_id} into {self.path}: {self.n_problems} problems, "
            f"{self.n_samples} samples, {self.n_answers} answers"
        ]
        if self.skipped_problems:
            shown = ", ".join(self.skipped_problems[:10]) + (" ..." if len(self.skipped_problems) > 10 else "")
            lines.append(f"  {len(self.skipped_problems)} problem(s) without samples not imported: {shown}")
        if self.samples_without_times:
            lines.append(f"  {self.samples_without_times} sample(s) without timestamps (NULL times)")
        if self.samples_with_confidence:
            lines.append(f"  {self.samples_with_confidence} sample(s) with per-token confidence")
        return "\n".join(lines)


# ---------------------------------------------------------------------------------------------
# problems CSV


def _parse_answer(raw: str) -> int:
    value = int(raw.strip())
    if not 0 <= value <= 999:
        raise ValueError
    return value


def read_problems(path: Path, errors: list[LineError]) -> list[ProblemIn]:
    """Parse the problems CSV (`id,question,answer`; `problem` is accepted for `question`, other
    columns are ignored), appending every problem found to `errors`."""
    src = str(path)
    out: list[ProblemIn] = []
    try:
        handle = path.open(newline="", encoding=ENCODING)
    except OSError as exc:
        errors.append(LineError(src, None, None, f"cannot read: {exc.strerror or exc}"))
        return out
    with handle:
        # strict: an unclosed quote is an error at the end of the file instead of one field
        # silently swallowing every line after it
        reader = csv.DictReader(handle, strict=True)
        try:
            header = reader.fieldnames or []
        except (csv.Error, UnicodeDecodeError) as exc:
            errors.append(LineError(src, 1, None, f"unreadable header: {exc}"))
            return out
        if "id" not in header:
            errors.append(LineError(src, 1, "id", f"missing column (header: {', '.join(header) or 'empty'})"))
            return out
        if "answer" not in header:
            errors.append(LineError(src, 1, "answer", "missing column (it may be empty per row)"))
        qcol = next((c for c in QUESTION_ALIASES if c in header), None)
        seen: dict[str, int] = {}
        start = 2
        try:
            for row in reader:
                line = start
                start = reader.line_num + 1
                if None in row:
                    errors.append(LineError(src, line, None, "more values than header columns"))
                    continue
                pid = (row.get("id") or "").strip()
                if not pid:
                    errors.append(LineError(src, line, "id", "empty"))
                    continue
                if pid in seen:
                    errors.append(LineError(src, line, "id", f"duplicate id {pid!r} (first on line {seen[pid]})"))
                    continue
                seen[pid] = line
                raw = (row.get("answer") or "").strip()
                answer = None
                if raw:
                    try:
                        answer = _parse_answer(raw)
                    except ValueError:
                        errors.append(LineError(src, line, "answer", f"expected an integer 0..999 or empty, got {raw!r}"))
                        continue
                question = row.get(qcol) if qcol else None
                out.append(ProblemIn(line, pid, question or None, answer))
        except csv.Error as exc:
            hint = (" (an unclosed quote: the quoted field that starts on this line runs to the "
                    "end of the file)" if "end of data" in str(exc) else "")
            errors.append(LineError(src, start, None, f"malformed CSV: {exc}{hint}"))
        except UnicodeDecodeError as exc:
            errors.append(LineError(src, start, None, f"not UTF-8 text: {exc}"))
    if not out and not errors:
        errors.append(LineError(src, None, None, "no problems"))
    return out


# ---------------------------------------------------------------------------------------------
# samples JSONL


class _LineCheck:
    """Field checks of one JSONL line; each failed check appends a LineError and returns None."""

    def __init__(self, src: str, line: int, errors: list[LineError]) -> None:
        self.src, self.line, self.errors = src, line, errors
        self.ok = True

    def fail(self, field_name: str | None, message: str) -> None:
        self.ok = False
        self.errors.append(LineError(self.src, self.line, field_name, message))

    def int_(self, value: Any, name: str, lo: int = 0, hi: int = INT32_MAX) -> int | None:
        if isinstance(value, bool) or not isinstance(value, (int, float)) or (
            isinstance(value, float) and not value.is_integer()
        ):
            self.fail(name, f"expected an integer, got {value!r}")
            return None
        if value < lo or value > hi:
            if hi != INT32_MAX:
                bounds = f"{lo}..{hi}"
            elif value < lo:
                bounds = f">= {lo}"
            else:
                bounds = f"<= {INT32_MAX} (the store's 32-bit integers)"
            self.fail(name, f"expected an integer {bounds}, got {value:g}" if isinstance(value, float)
                      else f"expected an integer {bounds}, got {value}")
            return None
        return int(value)

    def time(self, value: Any, name: str) -> float | None:
        if value is None:
            return None
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) or value < 0:
            self.fail(name, f"expected seconds >= 0 or null, got {value!r}")
            return None
        return float(value)

    def choice(self, value: Any, name: str, allowed: tuple[str, ...]) -> str | None:
        if value not in allowed:
            expected = " or ".join(repr(a) for a in allowed)
            self.fail(name, f"expected {expected}, got {value!r}")
            return None
        return value


def _answers(chk: _LineCheck, obj: dict, n_tokens: int) -> list[AnswerIn]:
    """The sample's answers from `answer`/`answer_token` or from `answers` (times added later)."""
    has_one, has_list = "answer" in obj, "answers" in obj
    if has_one == has_list:
        chk.fail("answers" if has_list else "answer", "give exactly one of 'answer' or 'answers'")
        return []
    if has_one:
        if "answer_token" in obj and obj["answer"] is None:
            chk.fail("answer_token", "given without an answer")
        if obj["answer"] is None:
            return []
        value = chk.int_(obj["answer"], "answer", 0, 999)
        token = chk.int_(obj.get("answer_token", n_tokens), "answer_token", 0, n_tokens)
        return [] if value is None or token is None else [AnswerIn(token, value, "boxed")]
    if "answer_token" in obj:
        chk.fail("answer_token", "only with 'answer'; 'answers' items carry their own 'token'")
    items = obj["answers"]
    if not isinstance(items, list):
        chk.fail("answers", f"expected a list, got {type(items).__name__}")
        return []
    out = []
    for i, item in enumerate(items):
        name = f"answers[{i}]"
        if not isinstance(item, dict):
            chk.fail(name, f"expected an object with token, value, source, got {item!r}")
            continue
        unknown = sorted(set(item) - ANSWER_KEYS)
        if unknown:
            chk.fail(f"{name}.{unknown[0]}", f"unknown key; allowed: {', '.join(sorted(ANSWER_KEYS))}")
        missing = [k for k in ("token", "value", "source") if k not in item]
        if missing:
            chk.fail(f"{name}.{missing[0]}", "missing")
            continue
        token = chk.int_(item["token"], f"{name}.token", 0, n_tokens)
        value = None if item["value"] is None else chk.int_(item["value"], f"{name}.value", 0, 999)
        source = chk.choice(item["source"], f"{name}.source", SOURCES)
        code_ok, exec_ms, error = item.get("code_ok"), item.get("exec_ms"), item.get("error")
        if source == "boxed" and any(item.get(k) is not None for k in ("code_ok", "exec_ms", "error")):
            chk.fail(name, "code_ok/exec_ms/error are for code answers only")
        if code_ok is not None and not isinstance(code_ok, bool):
            chk.fail(f"{name}.code_ok", f"expected true, false or null, got {code_ok!r}")
        if exec_ms is not None:
            exec_ms = chk.time(exec_ms, f"{name}.exec_ms")
        if error is not None and not isinstance(error, str):
            chk.fail(f"{name}.error", f"expected a string or null, got {error!r}")
        if token is None or source is None or (item["value"] is not None and value is None):
            continue
        if source == "code" and code_ok is None:
            code_ok = value is not None
        out.append(AnswerIn(token, value, source, None, code_ok, exec_ms, error))
    return out


def _times(
    chk: _LineCheck, obj: dict, n_tokens: int, answers: list[AnswerIn], start_s: float | None
) -> tuple[list[AnswerIn], list[tuple[int, float | None]] | None]:
    """Apply `times`: a list gives answer times; {"tokens", "t"} gives chunk times (answers are
    then timed by linear interpolation from (0, start_s) through the chunks, code answers plus
    their exec_ms; without start_s, t(0) is extrapolated from the first two chunks)."""
    times = obj.get("times")
    if times is None:
        return answers, None
    if isinstance(times, list):
        if len(times) != len(answers):
            chk.fail("times", f"a list must have one time per answer ({len(answers)}), got {len(times)}")
            return answers, None
        ts = [chk.time(t, f"times[{i}]") for i, t in enumerate(times)]
        return [AnswerIn(a.token, a.value, a.source, t, a.code_ok, a.exec_ms, a.error)
                for a, t in zip(answers, ts)], None
    if not isinstance(times, dict) or set(times) != {"tokens", "t"}:
        chk.fail("times", 'expected a list of answer times or {"tokens": [...], "t": [...]}')
        return answers, None
    toks, ts = times["tokens"], times["t"]
    if not isinstance(toks, list) or not isinstance(ts, list) or len(toks) != len(ts) or not toks:
        chk.fail("times", "'tokens' and 't' must be non-empty lists of the same length")
        return answers, None
    tok_in = [chk.int_(v, f"times.tokens[{i}]", 1, n_tokens) for i, v in enumerate(toks)]
    t_in = [chk.time(v, f"times.t[{i}]") for i, v in enumerate(ts)]
    if None in tok_in or None in t_in:
        return answers, None
    tok_ok = [v for v in tok_in if v is not None]  # all of them: the same lists, narrowed
    t_ok = [v for v in t_in if v is not None]
    if any(b <= a for a, b in zip(tok_ok, tok_ok[1:])):
        chk.fail("times.tokens", "must be strictly increasing")
    if any(b < a for a, b in zip(t_ok, t_ok[1:])):
        chk.fail("times.t", "must be non-decreasing")
    if tok_ok[-1] != n_tokens:
        chk.fail("times.tokens", f"the last entry must equal n_tokens ({n_tokens}), got {tok_ok[-1]}")
    if not chk.ok:
        return answers, None
    if start_s is not None:
        t0 = min(start_s, t_ok[0])
    elif len(t_ok) > 1:
        t0 = max(0.0, t_ok[0] - (t_ok[1] - t_ok[0]) / (tok_ok[1] - tok_ok[0]) * tok_ok[0])
    else:
        t0 = t_ok[0]
    x = np.array([0, *tok_ok], np.float64)
    y = np.array([t0, *t_ok], np.float64)
    timed = [
        AnswerIn(a.token, a.value, a.source,
                 round(float(np.interp(a.token, x, y)) + ((a.exec_ms or 0.0) / 1000.0 if a.source == "code" else 0.0), 6),
                 a.code_ok, a.exec_ms, a.error)
        for a in answers
    ]
    return timed, list(zip(tok_ok, t_ok))


def _token_array(chk: _LineCheck, value: Any, name: str, n_tokens: int) -> np.ndarray | None:
    """A per-token array of `n_tokens` finite numbers in 0..65504 (float16), or None (failed)."""
    if not isinstance(value, list):
        got = type(value).__name__
        chk.fail(name, f"expected a list of {n_tokens} numbers (one per token), got {got}")
        return None
    if len(value) != n_tokens:
        chk.fail(name, f"expected {n_tokens} values (one per token, n_tokens), got {len(value)}")
        return None
    bad = next(
        (i for i, v in enumerate(value) if isinstance(v, bool) or not isinstance(v, (int, float))),
        None,
    )
    if bad is not None:
        chk.fail(f"{name}[{bad}]", f"expected a number, got {value[bad]!r}")
        return None
    array = np.asarray(value, dtype=np.float64)
    out = ~np.isfinite(array) | (array < 0) | (array > FLOAT16_MAX)
    if out.any():
        i = int(np.flatnonzero(out)[0])
        chk.fail(f"{name}[{i}]", f"expected a finite number in 0..{FLOAT16_MAX:g}, got {value[i]!r}")
        return None
    return array.astype(np.float32)


def _confidence(
    chk: _LineCheck, value: Any, n_tokens: int
) -> tuple[SampleConfidence | None, int | None]:
    """The optional `confidence` object: token_conf (required), token_entropy, top_k."""
    if not isinstance(value, dict):
        got = type(value).__name__
        chk.fail("confidence", f'expected an object {{"token_conf": [...], ...}}, got {got}')
        return None, None
    for key in sorted(set(value) - CONFIDENCE_KEYS):
        chk.fail(f"confidence.{key}", f"unknown key; allowed: {', '.join(sorted(CONFIDENCE_KEYS))}")
    if "token_conf" not in value:
        chk.fail("confidence.token_conf", "missing")
        return None, None
    conf = _token_array(chk, value["token_conf"], "confidence.token_conf", n_tokens)
    entropy = None
    if value.get("token_entropy") is not None:
        entropy = _token_array(chk, value["token_entropy"], "confidence.token_entropy", n_tokens)
    top_k = chk.int_(value["top_k"], "confidence.top_k", 1) if "top_k" in value else None
    if conf is None or not chk.ok:
        return None, None
    return SampleConfidence(conf, entropy), top_k


def _sample(chk: _LineCheck, obj: dict, problem_ids: set[str] | None) -> SampleIn | None:
    unknown = sorted(set(obj) - SAMPLE_KEYS)
    for key in unknown:
        chk.fail(key, f"unknown key; allowed: {', '.join(sorted(SAMPLE_KEYS))}")
    for key in ("problem_id", "sample", "kind", "n_tokens"):
        if key not in obj:
            chk.fail(key, "missing")
    if not chk.ok:
        return None
    pid = obj["problem_id"]
    if isinstance(pid, int) and not isinstance(pid, bool):
        pid = str(pid)
    if not isinstance(pid, str) or not pid.strip():
        chk.fail("problem_id", f"expected a non-empty string, got {obj['problem_id']!r}")
    elif problem_ids is not None and pid.strip() not in problem_ids:
        chk.fail("problem_id", f"unknown problem {pid.strip()!r} (not in the problems CSV)")
    sample = chk.int_(obj["sample"], "sample", 0)
    kind = chk.choice(obj["kind"], "kind", KINDS)
    n_tokens = chk.int_(obj["n_tokens"], "n_tokens", 0)
    finish = chk.choice(obj.get("finish_reason", "stop"), "finish_reason", FINISH_REASONS)
    prompt_tokens = chk.int_(obj.get("prompt_tokens", 0), "prompt_tokens", 0)
    start_s, end_s = chk.time(obj.get("start_s"), "start_s"), chk.time(obj.get("end_s"), "end_s")
    text = obj.get("text")
    if n_tokens is None:
        return None
    answers = _answers(chk, obj, n_tokens)
    confidence, top_k = (
        _confidence(chk, obj["confidence"], n_tokens) if obj.get("confidence") is not None
        else (None, None)
    )
    chunk_times = None
    if chk.ok:  # times are checked against valid answers only
        answers, chunk_times = _times(chk, obj, n_tokens, answers, start_s)
    if text is not None:
        n_chunks = len(chunk_times) if chunk_times else 1
        if isinstance(text, list):
            if not chunk_times or len(text) != n_chunks or not all(isinstance(t, str) for t in text):
                chk.fail("text", "a list of strings needs times.tokens of the same length")
        elif not isinstance(text, str):
            chk.fail("text", f"expected a string (or a list of chunk strings), got {type(text).__name__}")
    if not chk.ok:
        return None
    answers = sorted(answers, key=lambda a: a.token)
    if end_s is not None:  # an answer at the last token appeared when the sample ended
        answers = [a if a.t_s is not None or a.token != n_tokens else
                   AnswerIn(a.token, a.value, a.source, end_s, a.code_ok, a.exec_ms, a.error) for a in answers]
    if chunk_times:
        texts: list[str | None] = (
            list(text) if isinstance(text, list) else [*([None] * (len(chunk_times) - 1)), text]
        )
        chunks = tuple((tok, t, txt) for (tok, t), txt in zip(chunk_times, texts))
        end_s = end_s if end_s is not None else chunk_times[-1][1]
    else:
        chunks = ((n_tokens, end_s, text),)
    return SampleIn(chk.line, pid.strip(), sample, kind, n_tokens, finish, prompt_tokens,  # type: ignore[arg-type]
                    start_s, end_s, tuple(answers), chunks, confidence, top_k)


def read_samples(path: Path, problem_ids: set[str] | None, errors: list[LineError]) -> list[SampleIn]:
    """Parse and check the samples JSONL, appending every problem found to `errors`.

    `problem_ids` None skips the unknown-problem check (the CSV itself was unreadable).
    """
    src = str(path)
    out: list[SampleIn] = []
    seen: dict[tuple[str, int], int] = {}
    try:
        handle = path.open(encoding=ENCODING)
    except OSError as exc:
        errors.append(LineError(src, None, None, f"cannot read: {exc.strerror or exc}"))
        return out
    with handle:
        try:
            for lineno, raw in enumerate(handle, start=1):
                if not raw.strip():
                    continue
                chk = _LineCheck(src, lineno, errors)
                try:
                    obj = json.loads(raw, object_pairs_hook=_no_duplicate_keys)
                except json.JSONDecodeError as exc:
                    chk.fail(None, f"not valid JSON: {exc.msg} (column {exc.colno})")
                    continue
                except DuplicateKeyError as exc:
                    chk.fail(str(exc), "key given twice in one object")
                    continue
                except (ValueError, RecursionError) as exc:  # e.g. an integer of 5,000 digits
                    chk.fail(None, f"not valid JSON: {str(exc)[:200]}")
                    continue
                if not isinstance(obj, dict):
                    chk.fail(None, f"expected a JSON object, got {type(obj).__name__}")
                    continue
                s = _sample(chk, obj, problem_ids)
                if s is None:
                    continue
                key = (s.problem_id, s.sample)
                if key in seen:
                    chk.fail("sample", f"duplicate sample {s.sample} of problem {s.problem_id!r} "
                                       f"(first on line {seen[key]})")
                    continue
                seen[key] = lineno
                out.append(s)
        except UnicodeDecodeError as exc:
            errors.append(LineError(src, None, None, f"not UTF-8 text: {exc}"))
    return out


# ---------------------------------------------------------------------------------------------
# frames and writing


def question_frames(samples: list[SampleIn]) -> tuple[pa.Table, pa.Table, pa.Table]:
    """The samples/chunks/answers Arrow tables of one question (columns as TraceWriter expects)."""
    samples = sorted(samples, key=lambda s: s.sample)
    samples_t = pa.table({
        "sample_idx": pa.array([s.sample for s in samples], pa.int32()),
        "kind": pa.array([s.kind for s in samples], pa.string()),
        "prompt_tokens": pa.array([s.prompt_tokens for s in samples], pa.int32()),
        "start_s": pa.array([s.start_s for s in samples], pa.float64()),
        "end_s": pa.array([s.end_s for s in samples], pa.float64()),
        "n_tokens": pa.array([s.n_tokens for s in samples], pa.int32()),
        "finish_reason": pa.array([s.finish_reason for s in samples], pa.string()),
    })
    chunk_rows = [(s.sample, seq, tok, t, txt) for s in samples for seq, (tok, t, txt) in enumerate(s.chunks)]
    chunks_t = pa.table({
        "sample_idx": pa.array([r[0] for r in chunk_rows], pa.int32()),
        "seq": pa.array([r[1] for r in chunk_rows], pa.int32()),
        "t_s": pa.array([r[3] for r in chunk_rows], pa.float64()),
        "n_tokens": pa.array([r[2] for r in chunk_rows], pa.int32()),
        "text": pa.array([r[4] for r in chunk_rows], pa.string()),
    })
    rows = [(s.sample, a) for s in samples for a in s.answers]
    answers_t = pa.table({
        "sample_idx": pa.array([i for i, _ in rows], pa.int32()),
        "token_pos": pa.array([a.token for _, a in rows], pa.int32()),
        "t_s": pa.array([a.t_s for _, a in rows], pa.float64()),
        "source": pa.array([a.source for _, a in rows], pa.string()),
        "value": pa.array([a.value for _, a in rows], pa.int32()),
        "code_ok": pa.array([a.code_ok for _, a in rows], pa.bool_()),
        "exec_ms": pa.array([a.exec_ms for _, a in rows], pa.float64()),
        "error": pa.array([a.error for _, a in rows], pa.string()),
    })
    return samples_t, chunks_t, answers_t


def _wall_s(samples: list[SampleIn]) -> float | None:
    ends = [t for s in samples for t in [s.end_s, *(a.t_s for a in s.answers)] if t is not None]
    return max(ends) if ends else None


def _has_times(s: SampleIn) -> bool:
    return s.end_s is not None or any(a.t_s is not None for a in s.answers)


def _logprob_setting(
    samples: list[SampleIn], src: str, errors: list[LineError]
) -> LogprobSetting | None:
    """The run's logprob setting: mode 'imported' with the lines' `top_k` (one value across the
    file; 0 when none gives it); None when no sample has confidence."""
    with_conf = [s for s in samples if s.confidence is not None]
    if not with_conf:
        return None
    first: SampleIn | None = None
    for s in with_conf:
        if s.top_k is None:
            continue
        if first is None:
            first = s
        elif s.top_k != first.top_k:
            errors.append(LineError(src, s.line, "confidence.top_k",
                                    f"{s.top_k} differs from {first.top_k} on line {first.line}: "
                                    "one run has one top-k"))
            return None
    return LogprobSetting(top_k=first.top_k if first and first.top_k is not None else 0,
                          mode="imported")


def default_run_id(samples_jsonl: str | Path) -> str:
    """`import-<samples file stem>`."""
    return f"import-{Path(samples_jsonl).stem}"


def import_traces(
    problems_csv: str | Path,
    samples_jsonl: str | Path,
    out: str | Path,
    run_id: str | None = None,
    *,
    resume: bool = False,
) -> ImportSummary:
    """Validate both files completely, then write one `import` run into the store `out`.

    Problems are written in CSV order (dense positions over those with samples); problems without
    samples are skipped and listed in the summary. `out` is created when missing. All or nothing:
    an error while writing deletes the run again. With `resume`, an interrupted import of the same
    run id continues after the questions it committed.

    Raises:
        TraceImportError: every malformed line of either file, with line numbers and fields
            (nothing is written).
        InputError: `out` is not a trace store, `run_id` already exists in it (without `resume`),
            or cannot be written.
    """
    from aimo.core.store import ProblemRow

    pcsv, sjsonl = Path(problems_csv), Path(samples_jsonl)
    errors: list[LineError] = []
    problems = read_problems(pcsv, errors)
    # the unknown-problem check needs every problem: skip it when the CSV could not be read whole
    csv_ok = not any(e.file == str(pcsv) and (e.line in (None, 1) or e.message.startswith(("malformed", "not UTF-8")))
                     for e in errors)
    samples = read_samples(sjsonl, {p.problem_id for p in problems} if csv_ok else None, errors)
    if not errors and not samples:
        errors.append(LineError(str(sjsonl), None, None, "no samples"))
    logprobs = _logprob_setting(samples, str(sjsonl), errors)
    if errors:
        raise TraceImportError(errors)

    run_id = run_id or default_run_id(sjsonl)
    by_problem: dict[str, list[SampleIn]] = {}
    for s in samples:
        by_problem.setdefault(s.problem_id, []).append(s)
    kept = [p for p in problems if p.problem_id in by_problem]
    skipped = tuple(p.problem_id for p in problems if p.problem_id not in by_problem)

    info = RunInfo(
        run_id=run_id,
        kind="import",
        gen_config={"problems_csv": str(pcsv), "samples_jsonl": str(sjsonl)},
        notes=f"imported from {pcsv.name} and {sjsonl.name}",
        logprobs=logprobs,
    )
    writer = open_writer(out)
    writer.start_run(info, resume=resume)  # raises before writing anything if the run exists
    done = writer.done_questions(run_id) if resume else set()
    try:
        for position, p in enumerate(kept):
            if p.problem_id in done:
                continue
            s_t, c_t, a_t = question_frames(by_problem[p.problem_id])
            row = ProblemRow(p.problem_id, position, p.question, p.answer)
            group = by_problem[p.problem_id]
            confidence = {s.sample: s.confidence for s in group if s.confidence is not None}
            writer.write_question(run_id, row, s_t, c_t, a_t, wall_s=_wall_s(group),
                                  confidence=confidence)
    except Exception:
        writer.delete_run(run_id)  # all or nothing: no half run, no 'failed' row left behind
        raise
    writer.finish_run(run_id)
    return ImportSummary(
        path=Path(out),
        run_id=run_id,
        n_problems=len(kept),
        n_samples=len(samples),
        n_answers=sum(len(s.answers) for s in samples),
        skipped_problems=skipped,
        samples_without_times=sum(not _has_times(s) for s in samples),
        samples_with_confidence=sum(s.confidence is not None for s in samples),
    )
