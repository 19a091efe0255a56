"""Olympiad-flavoured problems with integer answers 0–999 and worked solutions in two styles.

Why: the tiny reasoning model (recorder/olympiad/train.py) learns from these solutions, and the
bundled real problem set (data/problems/olympiad-50.csv) comes from the same generator. The
two styles mirror the seed's prompt kinds:
- `cot`: step-by-step lines ending in `\\boxed{N}`; sometimes a re-check line before the box,
  rarely a first (wrong) box followed by a re-check that revises it;
- `code`: a one-line plan, a fenced Python block printing the answer, then a boxed answer.

Every solution is computed, never typed: `answer` is what the Python block prints (a test
runs each block). Pure Python and `random.Random` only, so problems are a function of the seed.
"""

from __future__ import annotations

import math
import random
from collections.abc import Callable, Container, Iterator
from dataclasses import dataclass

FAMILIES = ("arith", "modpow", "multiples", "divisor_sum", "pairs", "series", "lcm")
RECHECK_P = 0.25  # a re-check line before the box
REVISE_P = 0.06  # a wrong first box, then a re-check that revises it


@dataclass(frozen=True)
class Worked:
    """One problem and its reasoning: the lines of a CoT solution, a Python program, a re-check."""

    family: str
    question: str
    answer: int
    steps: tuple[str, ...]
    code: str
    recheck: str  # a line that re-derives the last step


@dataclass(frozen=True)
class Problem:
    """A problem of the bundled set (no solution): id, family, text, answer."""

    problem_id: str
    family: str
    question: str
    answer: int


def _mod1000(value: int, steps: list[str]) -> int:
    if 0 <= value < 1000:
        return value
    reduced = value % 1000
    steps.append(f"{value} mod 1000 = {reduced}.")
    return reduced


# --------------------------------------------------------------------------- families


def _arith(rng: random.Random) -> Worked:
    n_terms = rng.randint(3, 5)
    terms = [rng.randint(2, 99) for _ in range(n_terms)]
    ops = [rng.choice("+-*") for _ in range(n_terms - 1)]
    for i, op in enumerate(ops):  # keep products at 2 digits × 1 digit
        if op == "*" and terms[i + 1] >= 10:
            terms[i + 1] = rng.randint(2, 9)
    expr = " ".join(f"{t} {op}" for t, op in zip(terms, ops)) + f" {terms[-1]}"
    steps: list[str] = []
    # products first, then left to right
    values: list[int] = [terms[0]]
    signs: list[str] = []
    for op, t in zip(ops, terms[1:]):
        if op == "*":
            prod = values[-1] * t
            steps.append(f"{values[-1]} * {t} = {prod}.")
            values[-1] = prod
        else:
            signs.append(op)
            values.append(t)
    acc = values[0]
    for op, v in zip(signs, values[1:]):
        new = acc + v if op == "+" else acc - v
        steps.append(f"{acc} {op} {v} = {new}.")
        acc = new
    last = steps[-1] if steps else f"The value is {acc}."
    if acc < 0:
        steps.append(f"The value is {acc}, which is negative; modulo 1000 it is {acc % 1000}.")
        acc %= 1000
    answer = _mod1000(acc, steps)
    question = rng.choice([
        f"Compute {expr}.",
        f"What is the value of {expr}?",
        f"Evaluate {expr}. Give the result modulo 1000.",
    ])
    return Worked("arith", question, answer, tuple(steps), f"print(({expr}) % 1000)",
                  f"Check: {last}")


def _modpow(rng: random.Random) -> Worked:
    base, exp, mod = rng.randint(2, 9), rng.randint(3, 20), rng.randint(7, 61)
    steps = [f"{base}^1 = {base % mod} (mod {mod})."]
    r = base % mod
    for k in range(2, exp + 1):
        prod = r * base
        new = prod % mod
        steps.append(f"{base}^{k} = {r} * {base} = {prod} = {new} (mod {mod}).")
        r = new
    question = rng.choice([
        f"What is the remainder when {base}^{exp} is divided by {mod}?",
        f"Find {base}^{exp} mod {mod}.",
        f"Let N = {base}^{exp}. Find the remainder of N upon division by {mod}.",
    ])
    return Worked("modpow", question, r, tuple(steps), f"print(pow({base}, {exp}, {mod}))",
                  f"Check: {steps[-1]}")


def _multiples(rng: random.Random) -> Worked:
    n = rng.randint(30, 999)
    a, b = rng.sample(range(2, 13), 2)
    lcm = a * b // math.gcd(a, b)
    qa, qb, ql = n // a, n // b, n // lcm
    answer = qa + qb - ql
    steps = (
        f"Multiples of {a} up to {n}: {n} // {a} = {qa}.",
        f"Multiples of {b} up to {n}: {n} // {b} = {qb}.",
        f"lcm({a}, {b}) = {lcm}, and {n} // {lcm} = {ql}.",
        f"By inclusion-exclusion: {qa} + {qb} - {ql} = {answer}.",
    )
    question = rng.choice([
        f"How many integers from 1 to {n} are divisible by {a} or {b}?",
        f"Let N be the number of integers k with 1 <= k <= {n} such that k is divisible by "
        f"{a} or by {b}. Find N.",
    ])
    code = f"print(sum(1 for k in range(1, {n} + 1) if k % {a} == 0 or k % {b} == 0))"
    return Worked("multiples", question, answer, steps, code, f"Check: {steps[-1]}")


def _divisor_sum(rng: random.Random) -> Worked:
    n = rng.randint(6, 240)
    divisors = [d for d in range(1, n + 1) if n % d == 0]
    steps = [f"The divisors of {n} are {', '.join(map(str, divisors))}."]
    acc = divisors[0]
    for d in divisors[1:]:
        steps.append(f"{acc} + {d} = {acc + d}.")
        acc += d
    answer = _mod1000(acc, steps)
    question = rng.choice([
        f"What is the sum of the positive divisors of {n}?",
        f"Let S be the sum of all positive integers d such that d divides {n}. Find S.",
    ])
    code = f"print(sum(d for d in range(1, {n} + 1) if {n} % d == 0) % 1000)"
    return Worked("divisor_sum", question, answer, tuple(steps), code, f"Check: {steps[-1]}")


def _pairs(rng: random.Random) -> Worked:
    n = rng.randint(4, 45)
    prod = n * (n - 1)
    answer = prod // 2
    steps = (
        f"Each pair is an unordered choice of 2 out of {n}.",
        f"{n} * {n - 1} = {prod}.",
        f"{prod} / 2 = {answer}.",
    )
    question = rng.choice([
        f"In a tournament with {n} players, every two players meet exactly once. "
        "How many games are played?",
        f"At a party of {n} people, everyone shakes hands with everyone else once. "
        "How many handshakes are there?",
        f"In how many ways can 2 people be chosen from a group of {n}?",
    ])
    return Worked("pairs", question, answer, steps, f"import math\nprint(math.comb({n}, 2))",
                  f"Check: {steps[-1]}")


def _series(rng: random.Random) -> Worked:
    a, d, n = rng.randint(1, 20), rng.randint(1, 9), rng.randint(4, 20)
    last = a + (n - 1) * d
    total = n * (a + last) // 2
    steps = [
        f"The last term is {a} + {n - 1} * {d} = {last}.",
        f"{a} + {last} = {a + last}.",
        f"{n} * {a + last} = {n * (a + last)}.",
        f"{n * (a + last)} / 2 = {total}.",
    ]
    answer = _mod1000(total, steps)
    question = rng.choice([
        f"An arithmetic sequence starts at {a} and has common difference {d}. "
        f"What is the sum of its first {n} terms?",
        f"Find the sum {a} + {a + d} + {a + 2 * d} + ... with {n} terms in all, "
        f"each term {d} more than the previous one.",
    ])
    code = f"print(sum({a} + {d} * k for k in range({n})) % 1000)"
    return Worked("series", question, answer, tuple(steps), code, f"Check: {steps[-1]}")


def _lcm(rng: random.Random) -> Worked:
    a, b = rng.randint(6, 60), rng.randint(6, 60)
    while a == b:
        b = rng.randint(6, 60)
    x, y = max(a, b), min(a, b)
    steps = []
    while y:
        q, r = divmod(x, y)
        steps.append(f"{x} = {q} * {y} + {r}.")
        x, y = y, r
    g = x
    steps.append(f"So gcd({a}, {b}) = {g}.")
    prod = a * b
    lcm = prod // g
    steps.append(f"{a} * {b} = {prod}.")
    steps.append(f"{prod} / {g} = {lcm}.")
    answer = _mod1000(lcm, steps)
    question = rng.choice([
        f"What is the least common multiple of {a} and {b}?",
        f"Find the smallest positive integer that is a multiple of both {a} and {b}.",
    ])
    code = f"import math\nprint(math.lcm({a}, {b}) % 1000)"
    return Worked("lcm", question, answer, tuple(steps), code, f"Check: {steps[-1]}")


GENERATORS: dict[str, Callable[[random.Random], Worked]] = {
    "arith": _arith,
    "modpow": _modpow,
    "multiples": _multiples,
    "divisor_sum": _divisor_sum,
    "pairs": _pairs,
    "series": _series,
    "lcm": _lcm,
}


def worked_problem(rng: random.Random, family: str | None = None) -> Worked:
    """One problem of `family` (default: a family drawn uniformly)."""
    return GENERATORS[family or rng.choice(FAMILIES)](rng)


# --------------------------------------------------------------------------- solution texts


def _wrong(answer: int, rng: random.Random) -> int:
    delta = rng.choice([-10, -2, -1, 1, 2, 10])
    return (answer + delta) % 1000


def cot_solution(w: Worked, rng: random.Random) -> str:
    """Step-by-step lines ending in a box; sometimes a re-check, rarely a revised first box."""
    lines = ["Let me solve this step by step.", *w.steps]
    roll = rng.random()
    if roll < REVISE_P:
        lines.append(f"So the answer is \\boxed{{{_wrong(w.answer, rng)}}}.")
        lines.append("Wait, let me recheck the last step.")
        lines.append(w.recheck)
        lines.append(f"I made a mistake. The answer is \\boxed{{{w.answer}}}.")
    else:
        if roll < REVISE_P + RECHECK_P:
            lines.append(w.recheck + " Correct.")
        lines.append(f"So the answer is \\boxed{{{w.answer}}}.")
    return "\n".join(lines)


def code_solution(w: Worked, rng: random.Random) -> str:
    """A plan line, a fenced Python block that prints the answer, then the boxed answer."""
    plan = rng.choice(["I will compute it with Python.", "Let me write code for this.",
                       "We can compute this directly."])
    return f"{plan}\n```python\n{w.code}\n```\nThe answer is \\boxed{{{w.answer}}}."


def solution(w: Worked, kind: str, rng: random.Random) -> str:
    """The solution text of `w` in the style of prompt kind `kind` ('cot' or 'code')."""
    if kind == "cot":
        return cot_solution(w, rng)
    if kind == "code":
        return code_solution(w, rng)
    raise ValueError(f"kind must be 'cot' or 'code', got {kind!r}")


# --------------------------------------------------------------------------- problem sets


def worked_set(n: int, seed: int) -> list[Worked]:
    """`n` distinct worked problems with positive answers, families in rotation."""
    rng = random.Random(seed)
    seen: set[str] = set()
    out: list[Worked] = []
    while len(out) < n:
        w = worked_problem(rng, FAMILIES[len(out) % len(FAMILIES)])
        if w.question in seen or w.answer == 0:  # positive answers, as in the competition
            continue
        seen.add(w.question)
        out.append(w)
    return out


def problem_set(n: int, seed: int) -> list[Problem]:
    """The problems of `worked_set(n, seed)`, with ids oly-001, oly-002, ..."""
    return [Problem(f"oly-{i + 1:03d}", w.family, w.question, w.answer)
            for i, w in enumerate(worked_set(n, seed))]


def training_examples(seed: int,
                      exclude: Container[str] = frozenset()) -> Iterator[tuple[str, str, str]]:
    """Endless (kind, question, solution) triples; questions in `exclude` are never produced."""
    rng = random.Random(seed)
    while True:
        w = worked_problem(rng)
        if w.question in exclude:
            continue
        kind = "cot" if rng.random() < 0.5 else "code"
        yield kind, w.question, solution(w, kind, rng)


def write_problems_csv(path: str, problems: list[Problem]) -> None:
    """Write `id,question,answer` (the format `aimo record`/`aimo solve` read) plus the family."""
    import csv

    with open(path, "w", newline="", encoding="utf-8") as fh:
        out = csv.writer(fh)
        out.writerow(["id", "question", "answer", "family"])
        for p in problems:
            out.writerow([p.problem_id, p.question, p.answer, p.family])


__all__ = [
    "FAMILIES",
    "Problem",
    "Worked",
    "code_solution",
    "cot_solution",
    "problem_set",
    "solution",
    "training_examples",
    "worked_problem",
    "worked_set",
    "write_problems_csv",
]


def main(argv: list[str] | None = None) -> int:
    """`python -m aimo.recorder.olympiad.problems --out FILE [--n 50] [--seed 2026]`."""
    import argparse

    ap = argparse.ArgumentParser(description="Write a generated problem set as CSV.")
    ap.add_argument("--out", required=True)
    ap.add_argument("--n", type=int, default=50)
    ap.add_argument("--seed", type=int, default=2026)
    a = ap.parse_args(argv)
    write_problems_csv(a.out, problem_set(a.n, a.seed))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
