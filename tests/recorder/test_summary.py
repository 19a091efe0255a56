"""Store summary: the figures per run follow the documented definitions (checked on hand-made
traces and against an independent computation on a synthetic store) and render as plain text."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import pytest

from aimo.recorder.importer import import_traces
from aimo.recorder.summary import summarize_store
from aimo.recorder.synth import synthesize_store
from aimo.core.errors import InputError
from aimo.core.store import load_problem_traces
from aimo.core.traces import NO_VALUE


def sample(pid: str, idx: int, answers: list[tuple[int, int | None, str]], n_tokens: int = 100) -> dict:
    return {"problem_id": pid, "sample": idx, "kind": "cot" if idx % 2 == 0 else "code", "n_tokens": n_tokens,
            "answers": [{"token": t, "value": v, "source": s} for t, v, s in answers]}


@pytest.fixture()
def handmade(tmp_path: Path) -> Path:
    """Three problems with known votes:
    q1 (answer 5): finals 5, 5, 7 -> vote 5 right; one sample flips 7 -> 5.
    q2 (answer 9): finals 3, 4 (tie) -> larger value 4 wins, wrong; a failed code run has no value.
    q3 (no answer): one sample without any answer.
    """
    problems = tmp_path / "p.csv"
    problems.write_text("id,question,answer\nq1,A,5\nq2,B,9\nq3,C,\n")
    rows = [
        sample("q1", 0, [(10, 5, "boxed"), (90, 5, "boxed")], n_tokens=100),
        sample("q1", 1, [(20, 7, "code"), (80, 5, "boxed")], n_tokens=300),
        sample("q1", 2, [(50, 7, "boxed")], n_tokens=200),
        sample("q2", 0, [(40, 3, "boxed")]),
        sample("q2", 1, [(30, None, "code"), (60, 4, "boxed")]),
        sample("q3", 0, [], n_tokens=400),
    ]
    samples = tmp_path / "s.jsonl"
    samples.write_text("\n".join(json.dumps(r) for r in rows) + "\n")
    out = tmp_path / "hand.duckdb"
    import_traces(problems, samples, out, run_id="hand")
    return out


def test_figures_follow_the_definitions(handmade: Path) -> None:
    (run,) = summarize_store(handmade).runs
    assert (run.run_id, run.kind, run.status) == ("hand", "import", "complete")
    assert (run.n_problems, run.n_samples) == (3, 6)
    assert run.mean_tokens == pytest.approx((100 + 300 + 200 + 100 + 100 + 400) / 6)
    assert run.sample_accuracy == pytest.approx(2 / 5)  # q3 has no known answer
    assert run.majority_accuracy == pytest.approx(1 / 2)  # q1 right, q2 wrong by the tie-break
    assert run.first_final == pytest.approx(4 / 5)  # of the 5 answered samples, one flipped
    assert run.no_answer == 1


def test_render_is_a_plain_text_table(handmade: Path) -> None:
    text = summarize_store(handmade).render()
    lines = text.splitlines()
    assert lines[0] == f"trace store {handmade}: 1 run(s)"
    assert lines[1].split() == ["run", "kind", "status", "problems", "samples", "mean", "tok", "right", "maj",
                                "vote", "1st=final", "no", "answer"]
    assert set(lines[2]) <= {"-", " "}
    assert lines[3].split() == ["hand", "import", "complete", "3", "6", "200", "40.0%", "50.0%", "80.0%", "1"]
    assert "\x1b" not in text  # no terminal escapes: it is printed by `aimo demo`


def test_unknown_answers_everywhere_render_as_na(tmp_path: Path) -> None:
    problems = tmp_path / "p.csv"
    problems.write_text("id,question,answer\nq1,A,\n")
    samples = tmp_path / "s.jsonl"
    samples.write_text(json.dumps(sample("q1", 0, [(5, 1, "boxed")])) + "\n")
    out = tmp_path / "u.duckdb"
    import_traces(problems, samples, out)
    (run,) = summarize_store(out).runs
    assert run.sample_accuracy is None and run.majority_accuracy is None
    assert summarize_store(out).render().splitlines()[3].split()[6:8] == ["n/a", "n/a"]


def test_synthetic_store_summary_matches_an_independent_count(tmp_path: Path, handmade: Path) -> None:
    path = tmp_path / "syn.duckdb"
    synth = synthesize_store(path, n_problems=8, n_samples=12, seed=3)
    (run,) = summarize_store(path).runs
    right = total = first_final = answered = no_answer = voted_right = 0
    for trace in load_problem_traces(path):
        finals = []
        for s in trace.samples:
            values = [int(v) for v in s.ans_value if v != NO_VALUE]
            total += 1
            if not values:
                no_answer += 1
                continue
            answered += 1
            finals.append(values[-1])
            right += values[-1] == trace.answer
            first_final += values[0] == values[-1]
        counts = Counter(finals)
        top = max(counts.values())
        voted_right += max(v for v, c in counts.items() if c == top) == trace.answer
    assert run.n_samples == total == 96
    assert run.sample_accuracy == pytest.approx(right / total)
    assert run.sample_accuracy == pytest.approx(synth.sample_accuracy)
    assert run.first_final == pytest.approx(first_final / answered)
    assert run.no_answer == no_answer
    assert run.majority_accuracy == pytest.approx(voted_right / 8)
    assert run.mean_tokens == pytest.approx(synth.mean_tokens)


def test_every_run_of_a_store_is_listed(handmade: Path) -> None:
    import_traces(Path(__file__).parents[1] / "data" / "import" / "problems.csv",
                  Path(__file__).parents[1] / "data" / "import" / "samples.jsonl", handmade)
    summary = summarize_store(handmade)
    assert [r.run_id for r in summary.runs] == ["hand", "import-samples"]
    assert summary.render().splitlines()[0].endswith("2 run(s)")


def test_missing_or_foreign_files_are_input_errors(tmp_path: Path) -> None:
    with pytest.raises(InputError) as info:
        summarize_store(tmp_path / "missing.duckdb")
    assert "missing.duckdb" in str(info.value)
    junk = tmp_path / "junk.duckdb"
    junk.write_text("not a database")
    with pytest.raises(InputError):
        summarize_store(junk)
