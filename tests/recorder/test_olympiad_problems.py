"""The olympiad problem generator: computed answers, both solution styles, the bundled set."""

from __future__ import annotations

import itertools
import random
import subprocess
import sys
from pathlib import Path

import pytest

from aimo.recorder.olympiad.problems import (
    FAMILIES,
    code_solution,
    cot_solution,
    problem_set,
    solution,
    training_examples,
    worked_problem,
    worked_set,
    write_problems_csv,
)
from aimo.recorder.record import load_problems
from aimo.solver.extraction import StreamingExtractor, box_value, boxed_contents

REPO = Path(__file__).resolve().parents[2]


def _run(code: str) -> str:
    """Our own generated programs (not model output), run with the test's interpreter."""
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=30, check=True).stdout.strip()


def test_every_family_prints_its_answer_and_stays_in_range() -> None:
    rng = random.Random(5)
    worked = [worked_problem(rng, f) for f in FAMILIES for _ in range(6)]
    program = "\n".join(f"exec({w.code!r})" for w in worked)
    printed = _run(program).splitlines()
    assert [int(x) for x in printed] == [w.answer for w in worked]
    assert all(0 <= w.answer <= 999 for w in worked)


def test_cot_solution_ends_in_the_answer_and_revisions_box_a_wrong_value_first() -> None:
    rng = random.Random(0)
    revised = 0
    for _ in range(400):
        w = worked_problem(rng)
        text = cot_solution(w, rng)
        boxes = [box_value(c) for c in boxed_contents(text)]
        assert boxes[-1] == w.answer, text
        if len(boxes) > 1:
            revised += 1
            assert boxes[0] != w.answer and "recheck" in text
    assert 5 <= revised <= 60  # "rarely": REVISE_P = 6% of 400


def test_code_solution_block_is_found_by_the_streaming_extractor_and_prints_the_answer() -> None:
    rng = random.Random(1)
    w = worked_problem(rng, "multiples")
    text = code_solution(w, rng)
    found = StreamingExtractor("exact").feed(text, 100)
    assert [b.code.strip() for b in found.code_blocks] == [w.code]
    assert int(_run(found.code_blocks[0].code)) == w.answer
    with pytest.raises(ValueError, match="kind"):
        solution(w, "essay", rng)


def test_problem_set_is_deterministic_distinct_positive_and_covers_every_family() -> None:
    a, b = problem_set(50, 2026), problem_set(50, 2026)
    assert a == b
    assert len({p.question for p in a}) == 50
    assert all(1 <= p.answer <= 999 for p in a)
    assert {p.family for p in a} == set(FAMILIES)
    assert problem_set(50, 7) != a


def test_bundled_csv_is_the_generated_set_and_loads_for_recording(tmp_path: Path) -> None:
    bundled = REPO / "data" / "problems" / "olympiad-50.csv"
    fresh = tmp_path / "p.csv"
    write_problems_csv(str(fresh), problem_set(50, 2026))
    assert fresh.read_text() == bundled.read_text()
    loaded = load_problems(bundled)
    assert [(p.problem_id, p.answer) for p in loaded] == [
        (f"oly-{i + 1:03d}", w.answer) for i, w in enumerate(worked_set(50, 2026))]


def test_training_examples_never_contain_an_excluded_question() -> None:
    held = {p.question for p in problem_set(50, 2026)}
    # a small problem space per family makes collisions likely if the filter were missing
    questions = [q for _, q, _ in itertools.islice(training_examples(0, held), 20_000)]
    assert not held & set(questions)
    kinds = [k for k, _, _ in itertools.islice(training_examples(0), 1000)]
    assert 400 < kinds.count("cot") < 600
