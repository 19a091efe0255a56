"""A small hand-made trace store for hardware-in-the-loop tests: short samples (tens of tokens),
boxed and code answers at known tokens, code runs of 60–150 ms (so live waits stay short)."""

from __future__ import annotations

from pathlib import Path

import pyarrow as pa

from aimo.core.store import ProblemRow, TraceWriter
from aimo.core.traces import RunInfo

RUN_ID = "hil-test"

# problem id -> truth, samples: (kind, n_tokens, finish, [(token, source, value, exec_ms)])
PROBLEMS: dict[str, tuple[int, list[tuple[str, int, str, list[tuple[int, str, int | None, float | None]]]]]] = {
    "p1": (42, [
        ("cot", 60, "stop", [(25, "boxed", 42, None)]),
        ("code", 80, "stop", [(30, "code", 42, 120.0), (70, "boxed", 42, None)]),
        ("cot", 90, "stop", [(50, "boxed", 17, None), (85, "boxed", 42, None)]),
        ("code", 45, "stop", [(20, "code", None, 60.0)]),
        ("cot", 120, "length", []),
        ("code", 70, "stop", [(40, "code", 42, 150.0)]),
    ]),
    "p2": (7, [
        ("cot", 50, "stop", [(22, "boxed", 7, None)]),
        ("code", 66, "stop", [(21, "code", 8, 90.0), (60, "boxed", 7, None)]),
        ("cot", 33, "stop", [(31, "boxed", 9, None)]),
        ("code", 100, "length", [(41, "code", 7, 70.0)]),
    ]),
}


def write_hil_store(path: Path) -> Path:
    """Write the store (one `import` run, RUN_ID) and return its path."""
    writer = TraceWriter(path)
    writer.start_run(RunInfo(RUN_ID, "import", model="hand-made", gen_config={"max_new_tokens": 16384}))
    for position, (pid, (truth, samples)) in enumerate(PROBLEMS.items()):
        s_cols: dict[str, list] = {k: [] for k in ("sample_idx", "kind", "prompt_tokens", "start_s", "end_s",
                                                   "n_tokens", "finish_reason")}
        a_cols: dict[str, list] = {k: [] for k in ("sample_idx", "token_pos", "t_s", "source", "value",
                                                   "code_ok", "exec_ms", "error")}
        for i, (kind, n, finish, answers) in enumerate(samples):
            for k, v in zip(s_cols, (i, kind, 30, 0.0, n * 0.01, n, finish)):
                s_cols[k].append(v)
            for token, source, value, exec_ms in answers:
                code = source == "code"
                row = (i, token, token * 0.01 + (exec_ms or 0) / 1000, source, value,
                       (value is not None) if code else None, exec_ms,
                       None if not code or value is not None else "recorded failure")
                for k, v in zip(a_cols, row):
                    a_cols[k].append(v)
        samples_t = pa.table({
            "sample_idx": pa.array(s_cols["sample_idx"], pa.int32()), "kind": pa.array(s_cols["kind"]),
            "prompt_tokens": pa.array(s_cols["prompt_tokens"], pa.int32()),
            "start_s": pa.array(s_cols["start_s"], pa.float64()), "end_s": pa.array(s_cols["end_s"], pa.float64()),
            "n_tokens": pa.array(s_cols["n_tokens"], pa.int32()), "finish_reason": pa.array(s_cols["finish_reason"]),
        })
        chunks_t = pa.table({"sample_idx": pa.array([], pa.int32()), "seq": pa.array([], pa.int32()),
                             "t_s": pa.array([], pa.float64()), "n_tokens": pa.array([], pa.int32()),
                             "text": pa.array([], pa.string())})
        answers_t = pa.table({
            "sample_idx": pa.array(a_cols["sample_idx"], pa.int32()),
            "token_pos": pa.array(a_cols["token_pos"], pa.int32()), "t_s": pa.array(a_cols["t_s"], pa.float64()),
            "source": pa.array(a_cols["source"]), "value": pa.array(a_cols["value"], pa.int32()),
            "code_ok": pa.array(a_cols["code_ok"], pa.bool_()), "exec_ms": pa.array(a_cols["exec_ms"], pa.float64()),
            "error": pa.array(a_cols["error"], pa.string()),
        })
        writer.write_question(RUN_ID, ProblemRow(pid, position, f"Problem {pid}: what is it?", truth),
                              samples_t, chunks_t, answers_t, wall_s=1.0)
    writer.finish_run(RUN_ID)
    return path
