"""The policy language: presets, YAML validation, and the pure decision functions."""

from __future__ import annotations

import dataclasses
import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from rule_strategies import sample_stop_rules

from aimo.core.errors import InputError
from aimo.core.policy import (
    Answer,
    Check,
    ConsistencyRule,
    EarlyTimeout,
    KindWeights,
    QuestionStop,
    QuestionTracker,
    SampleFinal,
    SampleMix,
    SampleStopRule,
    SampleView,
    SpeedLevel,
    ValidAnswer,
    Vote,
    check_token,
    consistency_stop,
    dump_policy,
    list_presets,
    load_policy,
    past_cutoff,
    pick_level,
    policy_from_dict,
    policy_from_yaml,
    policy_hash,
    policy_to_dict,
    policy_to_yaml,
    sample_kinds,
    sample_should_stop,
    stop_condition_token,
    timeout_stop,
    valid_answer,
    vote,
)

PRESETS = ["seed-2nd-place", "majority-n", "first-answer", "fast-8"]
SEED = load_policy("seed-2nd-place")


def B(token: int, value: int | None) -> Answer:
    return Answer(token, value, "boxed")


def C(token: int, value: int | None) -> Answer:
    return Answer(token, value, "code")


def F(
    boxed: int | None = None, code: int | None = None, kind: str = "cot", n_tokens: int = 1000
) -> SampleFinal:
    return SampleFinal(kind, n_tokens, boxed, code)


def seed_dict() -> dict:
    return policy_to_dict(SEED)


def error_of(data: dict) -> InputError:
    with pytest.raises(InputError) as info:
        policy_from_dict(data, "p.yaml")
    return info.value


# --------------------------------------------------------------------------- presets and YAML


def test_presets_are_listed() -> None:
    assert set(PRESETS) <= set(list_presets())


@pytest.mark.parametrize("name", PRESETS)
def test_preset_round_trips(name: str, tmp_path) -> None:
    p = load_policy(name)
    assert p.name == name
    assert policy_from_yaml(policy_to_yaml(p)) == p
    assert policy_from_dict(json.loads(json.dumps(policy_to_dict(p)))) == p
    out = dump_policy(p, tmp_path / f"{name}.yaml")
    again = load_policy(out)
    assert again == p
    assert policy_hash(again) == policy_hash(p)


def test_hash_ignores_name_and_int_vs_float() -> None:
    d = seed_dict()
    d["name"] = "renamed"
    d["schedule"]["cutoff_s"] = 17820  # int where a float is expected
    assert policy_hash(policy_from_dict(d)) == policy_hash(SEED)
    d["vote"]["fallback"] = 48
    assert policy_hash(policy_from_dict(d)) != policy_hash(SEED)
    assert len({policy_hash(load_policy(n)) for n in PRESETS}) == len(PRESETS)


def test_seed_preset_matches_the_spec() -> None:
    p = SEED
    assert p.samples == SampleMix("interleave", "cot", 0.5)
    assert p.sample_stop.cot == SampleStopRule("first_answer", sources="boxed")
    assert p.sample_stop.code == SampleStopRule("first_code_success", positive_only=True)
    assert p.sample_stop.max_tokens == p.generation.max_new_tokens == 16384
    assert p.question_stop.order == "index"  # the original's "last 5" (issue 13, item 2)
    assert load_policy("seed-2nd-place-arrival").question_stop.order == "arrival"
    assert p.question_stop.rules == (
        ConsistencyRule(4, max_answers=4),
        ConsistencyRule(4, last_k=5, min_answers=5),
        ConsistencyRule(5, max_answers=7),
        ConsistencyRule(6, max_answers=9),
    )
    assert p.question_stop.valid == ValidAnswer(prefer_code=True, positive_only=True)
    v = p.vote
    assert v.code_over_boxed and v.drop_negative
    assert v.kind_weights == KindWeights(1.0, 1.0)
    assert (v.small_max, v.round_multiple, v.small_or_round_weight) == (20, 100, 0.6)
    assert (v.length_weight, v.tie_break, v.fallback) == (0.0, "larger", 49)
    assert (v.tie_tolerance, v.final_read) == (0.0, True)  # the original's quirks (issue 13)
    s = p.schedule
    table = [
        ("very fast", 10, 6, 9.5, [(7, 5), (8, 4), (9, 3)]),
        ("fast", 12, 7, 9.5, [(7, 5), (8, 4), (9, 3)]),
        ("normal", 15, 8, 11, [(8, 6), (9, 5), (10, 3)]),
        ("slow", 16, 9, 12, [(10, 5), (11, 4)]),
        ("very slow", 17, 10, 12, [(10, 5), (11, 4)]),
    ]
    assert len(s.levels) == 5
    for number, (name, samples, min_answers, minutes, early) in enumerate(table, 1):
        level = s.level(number)
        assert (level.name, level.samples, level.min_answers) == (name, samples, min_answers)
        assert level.timeout_s == minutes * 60
        assert level.early_timeouts == tuple(EarlyTimeout(m * 60, k) for m, k in early)
    assert s.start_level == 3 and s.level(3).name == "normal"
    assert (s.reeval_after, s.reeval_every, s.questions) == (30, 2, 50)
    assert s.thresholds_s == (300, 345, 370, 420)
    assert (s.cutoff_s, s.cutoff_answer) == (4 * 3600 + 57 * 60, 210)
    assert p.check.every_tokens == 20 and p.extraction == "exact"
    assert (p.check.boxes, p.check.boxed_zero, p.check.code_overlap) == ("last", "ignore", "inline")
    assert s.early_timeout_count == "history_if_none"
    g = p.generation
    assert (g.temperature, g.top_p, g.min_p, g.repetition_penalty) == (0.9, 0.95, 0.1, 1.05)
    assert g.prompts.cot.system == (
        "You are a helpful math assistant. "
        r"Please reason step by step to put the answer in \boxed{}."
    )
    assert g.prompts.cot.user_suffix == (
        "\nYou excel at reasoning.\nYou must put the final answer in \\boxed{}.\n"
        "If the final answer is greater than 1000, then take the modulo of 1000.\n"
        "Think carefully and thoroughly, avoid duplication."
    )
    assert g.prompts.code.system == (
        "You are a helpful math assistant. Please provide the python code to solve the math "
        "problem and also put the final answer in \\boxed{}."
    )
    assert g.prompts.code.user_suffix == (
        "\nYou excel at coding\nYou must provide the python code, avoid redundant analysis.\n"
        "If the final answer is greater than 1000, then take the modulo of 1000.\n"
        "The answer must be integer.\nThere is only one answer for each question.\n"
        "Import necessary libraries."
    )
    # the seed's 15 samples: 8 CoT + 7 code, interleaved from CoT
    assert sample_kinds(p.samples, 15) == ("cot", "code") * 7 + ("cot",)


def test_baseline_presets() -> None:
    m = load_policy("majority-n")
    assert m.sample_stop.cot.rule == m.sample_stop.code.rule == "never"
    assert m.question_stop.rules == () and len(m.schedule.levels) == 1
    level = m.schedule.level(1)
    assert level.samples == 15 and level.min_answers > level.samples
    assert not m.vote.code_over_boxed and m.vote.small_or_round_weight == 1.0
    f = load_policy("first-answer")
    assert f.sample_stop.cot == f.sample_stop.code == SampleStopRule("first_answer", sources="any")
    assert f.question_stop == m.question_stop and f.vote == m.vote
    assert load_policy("fast-8").schedule.level(1).samples == 8


def test_order_index_switch_reproduces_the_quirk() -> None:
    d = seed_dict()
    d["question_stop"]["order"] = "index"
    p = policy_from_dict(d)
    assert p.question_stop.order == "index"
    assert dataclasses.replace(p, question_stop=SEED.question_stop) == SEED


_DROP = object()


def _set(d: dict, path: str, value: object) -> None:
    """Set (or, with _DROP, remove) the value at a dotted path like "a.b[2].c" in plain data."""
    *parents, last = path.replace("[", ".").replace("]", "").split(".")
    for key in parents:
        d = d[int(key)] if key.isdigit() else d[key]
    if value is _DROP:
        del d[last]
    else:
        d[last] = value


@pytest.mark.parametrize(
    ("path", "value", "field", "message"),
    [
        ("colour", "red", None, "unknown key"),
        ("question_stop.rules[1].foo", 1, None, "unknown key"),
        ("schedule.levels[0].samples", -1, None, "≥ 1"),
        ("samples.cot_fraction", 1.5, None, "[0.0, 1.0]"),
        ("sample_stop.cot.rule", "first_box", None, "one of"),
        ("question_stop.rules[2].min_equal", 0, None, "≥ 1"),
        ("question_stop.rules[0].max_answers", 3, None, "≥ 4"),
        ("question_stop.rules[0].min_equal", None, None, "integer"),
        ("schedule.levels[1].samples", "ten", None, "integer"),
        ("vote.code_over_boxed", 1, None, "true or false"),
        ("check.every_tokens", True, None, "integer"),
        ("vote.fallback", 1000, None, "[0, 999]"),
        ("vote.kind_weights.code", -1, None, "≥ 0"),
        ("vote.tie_break", "random", None, "one of"),
        ("sample_stop.code.rule", "repeated_answer", "sample_stop.code.k", "≥ 2"),
        ("schedule.levels[4].early_timeouts[1].after_s", 0, None, "> 0"),
        ("schedule.thresholds_s", [300, 345], None, "len(levels) - 1"),
        ("schedule.thresholds_s", [300, 345, 330, 420], "schedule.thresholds_s[2]", "previous"),
        ("schedule.start_level", 6, None, "[1, 5]"),
        ("schedule.levels", [], None, "at least one"),
        ("schedule.cutoff_s", float("nan"), None, "finite"),
        ("sample_stop.max_tokens", 20000, None, "max_new_tokens"),
        ("question_stop.rules", {"min_equal": 4}, None, "list"),
        ("vote", [1], None, "mapping"),
        ("sample_stop.cot", _DROP, None, "missing"),
        ("generation.prompts.code.system", None, None, "string"),
        ("extraction", "fuzzy", None, "one of"),
    ],
)
def test_bad_input_names_the_field(
    path: str, value: object, field: str | None, message: str
) -> None:
    d = seed_dict()
    _set(d, path, value)
    err = error_of(d)
    field = field or path
    assert err.source == "p.yaml"
    assert err.field == field
    assert message in err.message
    assert str(err).startswith(f"p.yaml: {field}: ")


def test_defaults_fill_omitted_keys() -> None:
    d = seed_dict()
    d["sample_stop"]["cot"] = {"rule": "first_answer", "sources": "boxed"}
    for key in ("extraction", "generation"):
        del d[key]
    d["check"] = {"boxes": "last", "boxed_zero": "ignore", "code_overlap": "inline"}
    assert policy_from_dict(d) == SEED
    del d["check"]
    assert policy_from_dict(d).check == Check()


def test_yaml_errors_name_the_file(tmp_path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("name: x\nsamples: [\n")
    with pytest.raises(InputError, match="invalid YAML") as info:
        load_policy(bad)
    assert info.value.source == str(bad)
    dup = tmp_path / "dup.yaml"
    dup.write_text("base: seed-2nd-place\nvote: {fallback: 1}\nvote: {fallback: 2}\n")
    with pytest.raises(InputError, match="duplicate key"):
        load_policy(dup)
    wrong = tmp_path / "wrong.yaml"
    wrong.write_text("base: seed-2nd-place\nquestion_stop: {rules: [{min_equal: 4, last_k: 2}]}\n")
    with pytest.raises(InputError) as info:
        load_policy(wrong)
    assert (info.value.source, info.value.field) == (str(wrong), "question_stop.rules[0].last_k")
    empty = tmp_path / "empty.yaml"
    empty.write_text("")
    with pytest.raises(InputError, match="empty"):
        load_policy(empty)
    with pytest.raises(InputError, match="not found"):
        load_policy(tmp_path / "missing.yaml")
    with pytest.raises(InputError, match="unknown policy preset"):
        load_policy("no-such-preset")


def test_base_overrides_and_default_name(tmp_path) -> None:
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "mine.yaml").write_text("base: ../parent.yaml\nvote: {fallback: 7}\n")
    parent = "base: seed-2nd-place\nname: parent\ncheck: {every_tokens: 1}\n"
    (tmp_path / "parent.yaml").write_text(parent)
    p = load_policy(tmp_path / "sub" / "mine.yaml")
    assert p.name == "mine"
    assert p.vote == dataclasses.replace(SEED.vote, fallback=7)
    assert p.check == dataclasses.replace(SEED.check, every_tokens=1)
    assert dataclasses.replace(p, name=SEED.name, vote=SEED.vote, check=SEED.check) == SEED
    loop = tmp_path / "loop.yaml"
    loop.write_text(f"base: {loop}\n")
    with pytest.raises(InputError, match="deeper"):
        load_policy(loop)


def test_dump_refuses_to_overwrite(tmp_path) -> None:
    path = tmp_path / "p.yaml"
    path.write_text("keep me")
    with pytest.raises(InputError, match="exists"):
        dump_policy(SEED, path)
    assert path.read_text() == "keep me"
    dump_policy(SEED, path, overwrite=True)
    assert load_policy(path) == SEED
    assert [f.name for f in tmp_path.iterdir()] == ["p.yaml"]


def test_direct_construction_validates() -> None:
    with pytest.raises(InputError) as info:
        SampleMix(cot_fraction=-0.1)
    assert info.value.field == "cot_fraction"
    with pytest.raises(InputError):
        SampleStopRule("sometimes")  # type: ignore[arg-type]
    with pytest.raises(InputError):
        ConsistencyRule(3, last_k=2)


# --------------------------------------------------------------------------- sample mix


def test_sample_kinds_examples() -> None:
    mix = SEED.samples
    assert sample_kinds(mix, 17).count("cot") == 9
    assert sample_kinds(mix, 0) == ()
    third = SampleMix("interleave", "cot", 1 / 3)
    assert sample_kinds(third, 6) == ("cot", "code", "code", "cot", "code", "code")
    code_first = SampleMix("interleave", "code", 0.5)
    assert sample_kinds(code_first, 3) == ("code", "cot", "code")
    assert sample_kinds(SampleMix("cot_first", "cot", 0.5), 5) == ("cot",) * 3 + ("code",) * 2
    assert sample_kinds(SampleMix("code_first", "cot", 0.5), 5) == ("code",) * 2 + ("cot",) * 3
    assert sample_kinds(SampleMix("interleave", "cot", 0.0), 3) == ("code",) * 3
    assert sample_kinds(SampleMix("interleave", "code", 1.0), 3) == ("cot",) * 3
    assert sample_kinds(SampleMix("interleave", "cot", 0.7), 10).count("cot") == 7


@given(
    st.sampled_from(["cot", "code"]),
    st.integers(0, 20).map(lambda i: i / 20) | st.floats(0, 1),
    st.integers(0, 40),
)
def test_sample_kinds_properties(first: str, fraction: float, n: int) -> None:
    mix = SampleMix("interleave", first, fraction)  # type: ignore[arg-type]
    kinds = sample_kinds(mix, n)
    assert len(kinds) == n and set(kinds) <= {"cot", "code"}
    assert sample_kinds(mix, n + 1)[:n] == kinds  # "the first N of the pool"
    if n and (fraction if first == "cot" else 1 - fraction) > 1e-6:
        assert kinds[0] == first
    assert abs(kinds.count("cot") - n * fraction) < 1 + 1e-6
    for order in ("cot_first", "code_first"):
        other = sample_kinds(dataclasses.replace(mix, order=order), n)
        assert sorted(other) == sorted(kinds)


# --------------------------------------------------------------------------- sample stop


def test_seed_code_rule_needs_a_positive_latest_code_answer() -> None:
    rule = SEED.sample_stop.code
    # a code answer of 0 never stops a code sample
    assert stop_condition_token(rule, [C(100, 0), C(200, -1), C(250, None)]) is None
    assert stop_condition_token(rule, [B(50, 5), C(100, 0), C(300, 7)]) == 300  # boxed ignored
    assert stop_condition_token(rule, [C(120, 7), C(400, -1)]) == 120


def test_seed_cot_rule_stops_at_any_parsed_boxed_answer() -> None:
    rule = SEED.sample_stop.cot
    # a box whose content doesn't parse is no answer; 0 is one
    assert stop_condition_token(rule, [B(10, None), B(30, 0)]) == 30
    assert stop_condition_token(rule, [C(10, 5), B(40, 3)]) == 40  # code answers don't count
    assert stop_condition_token(rule, []) is None


def test_other_sample_rules() -> None:
    answers = [B(10, 5), B(20, None), C(30, -1), C(40, 6), B(50, 5)]
    assert stop_condition_token(SampleStopRule("kth_answer", k=2), answers) == 40
    assert stop_condition_token(SampleStopRule("kth_answer", k=2, sources="boxed"), answers) == 50
    assert stop_condition_token(SampleStopRule("kth_answer", k=4), answers) is None
    assert stop_condition_token(SampleStopRule("repeated_answer", k=2), answers) == 50
    assert stop_condition_token(SampleStopRule("repeated_answer", k=2), [B(10, 0), B(20, 0)]) == 20
    zeros = [B(10, 0), B(20, 0)]
    positive_twice = SampleStopRule("repeated_answer", k=2, positive_only=True)
    assert stop_condition_token(positive_twice, zeros) is None
    assert stop_condition_token(SampleStopRule("first_answer"), answers) == 10
    assert stop_condition_token(SampleStopRule("first_answer", sources="code"), answers) == 40
    assert stop_condition_token(SampleStopRule("never"), answers) is None
    # tokens that go backwards: the condition holds at the furthest token seen
    first_code = SampleStopRule("first_answer", sources="code")
    assert stop_condition_token(first_code, [B(90, 1), C(60, 2)]) == 90


def test_grace_and_check_grid() -> None:
    rule = SampleStopRule("first_answer", grace_tokens=100)
    answers = (B(30, 5),)
    assert not sample_should_stop(rule, SampleView(0, "cot", 129, answers))
    assert sample_should_stop(rule, SampleView(0, "cot", 130, answers))
    assert not sample_should_stop(rule, SampleView(0, "cot", 10_000, (B(30, None),)))
    grid = Check(20)
    # the grid is 20, 40, …: nothing is checked at token 0 (an answer there waits for token 20)
    assert [check_token(grid, t) for t in (0, 1, 20, 21, 130)] == [20, 20, 20, 40, 140]
    held = stop_condition_token(rule, answers)
    assert held is not None and check_token(grid, held + rule.grace_tokens) == 140


def test_check_grid_is_one_definition() -> None:
    """The kernel's grid and the reference's are `check_token` (token 0 included)."""
    from aimo.simulator.fast.kernel import _grid

    for every in (1, 7, 20):
        for token in range(0, 3 * every + 2):
            assert _grid(token, every) == check_token(Check(every), token)


answers_st = st.lists(
    st.builds(
        Answer,
        st.integers(0, 2000),
        st.none() | st.integers(-1, 12),
        st.sampled_from(["boxed", "code"]),
    ),
    max_size=12,
)
@given(sample_stop_rules(), answers_st)
def test_stop_token_is_the_same_from_any_prefix(
    rule: SampleStopRule, answers: list[Answer]
) -> None:
    full = stop_condition_token(rule, answers)
    tokens = [stop_condition_token(rule, answers[:j]) for j in range(len(answers) + 1)]
    assert all(t is None or t == full for t in tokens)
    seen_hit = [t is not None for t in tokens]
    assert seen_hit == sorted(seen_hit)  # once it holds it keeps holding
    assert (full is None) == (not any(seen_hit))


# --------------------------------------------------------------------------- valid answers


def test_valid_answer_seed_quirks() -> None:
    va = SEED.question_stop.valid
    assert valid_answer(va, [B(10, 5)]) == 5
    assert valid_answer(va, [B(10, 0)]) is None  # 0 is never valid
    # latest code answer 0: skipped, and the boxed answer is not used instead
    assert valid_answer(va, [C(10, 0), B(20, 9)]) is None
    assert valid_answer(va, [B(10, 5), C(20, -1)]) is None  # -1 hides the boxed answer
    assert valid_answer(va, [C(20, -1), B(30, 5)]) is None
    assert valid_answer(va, [C(10, 7), B(20, 9)]) == 7
    assert valid_answer(va, [C(10, 7), C(20, -1)]) is None
    assert valid_answer(va, [C(10, -1), C(20, 7)]) == 7
    assert valid_answer(va, [C(10, None), B(20, 4)]) == 4  # nothing parsed is no code answer
    assert valid_answer(va, [B(10, 4), B(20, None)]) == 4
    assert valid_answer(va, []) is None
    assert valid_answer(ValidAnswer(positive_only=False), [B(10, 0)]) == 0
    assert valid_answer(ValidAnswer(positive_only=False), [C(10, -1)]) is None
    assert valid_answer(ValidAnswer(prefer_code=False), [C(10, 7), B(20, 9)]) == 9
    assert valid_answer(ValidAnswer(prefer_code=False), [B(10, 9), C(20, -1)]) is None


def test_tracker_orders() -> None:
    t = QuestionTracker(sample_kinds(SEED.samples, 6), SEED.question_stop.valid)
    # index order 5,5,5,5,1,2 but answers arrive 1,2,5,5,5,5
    for sample, value in [(4, 1), (5, 2), (0, 5), (1, 5), (2, 5), (3, 5)]:
        assert t.add_answer(sample, B(100 * sample + 10, value))
    assert t.valid_answers_ordered("index") == [5, 5, 5, 5, 1, 2]
    assert t.valid_answers_ordered(SEED.question_stop) == [5, 5, 5, 5, 1, 2]
    qs_arrival = load_policy("seed-2nd-place-arrival").question_stop
    assert t.valid_answers_ordered(qs_arrival) == [1, 2, 5, 5, 5, 5]
    level = SEED.schedule.level(3)
    qs_index = SEED.question_stop
    arrival = t.valid_answers_ordered(qs_arrival)
    assert consistency_stop(qs_arrival, level, arrival) == "rule2:4/last5/≥5"
    assert consistency_stop(qs_index, level, t.valid_answers_ordered(qs_index)) is None
    # a change of value keeps the place; invalid loses it; valid again is a new arrival
    assert t.add_answer(4, B(900, 3))
    assert t.valid_answers_ordered("arrival") == [3, 2, 5, 5, 5, 5]
    assert not t.add_answer(4, B(905, 3))
    assert t.add_answer(4, C(950, -1))
    assert t.valid_answers_ordered("arrival") == [2, 5, 5, 5, 5] and t.n_valid == 5
    assert t.valid_answers_ordered("index") == [5, 5, 5, 5, 2]
    assert not t.add_answer(4, C(990, None))
    assert t.add_answer(4, C(1000, 8))
    assert t.valid_answers_ordered("arrival") == [2, 5, 5, 5, 5, 8]
    assert t.valid_of(4) == 8
    t.set_tokens(4, 1234)
    seen = (B(410, 1), B(900, 3), B(905, 3), C(950, -1), C(990, None), C(1000, 8))
    assert t.view(4) == SampleView(4, "cot", 1234, seen)
    assert t.finals()[4] == SampleFinal("cot", 1234, 3, 8)
    assert t.finals()[1] == SampleFinal("code", 110, 5, None)


@given(
    st.lists(
        st.tuples(
            st.integers(0, 4),
            st.none() | st.integers(-1, 4),
            st.sampled_from(["boxed", "code"]),
        ),
        max_size=25,
    )
)
def test_tracker_views_agree(events: list[tuple[int, int | None, str]]) -> None:
    rule = SEED.question_stop.valid
    t = QuestionTracker(["cot", "code"] * 2 + ["cot"], rule)
    per_sample: list[list[Answer]] = [[] for _ in range(5)]
    for token, (sample, value, source) in enumerate(events):
        answer = Answer(token, value, source)  # type: ignore[arg-type]
        before = valid_answer(rule, per_sample[sample])
        per_sample[sample].append(answer)
        assert t.add_answer(sample, answer) == (valid_answer(rule, per_sample[sample]) != before)
    expected = [valid_answer(rule, a) for a in per_sample]
    assert t.valid_answers_ordered("index") == [v for v in expected if v is not None]
    assert sorted(t.valid_answers_ordered("arrival")) == sorted(t.valid_answers_ordered("index"))
    assert t.n_valid == len(t.valid_answers_ordered("arrival"))


# --------------------------------------------------------------------------- question stop


def test_consistency_examples() -> None:
    qs, level = SEED.question_stop, SEED.schedule.level(3)
    assert consistency_stop(qs, level, []) is None
    assert consistency_stop(qs, level, [5, 5, 5]) is None
    assert consistency_stop(qs, level, [5, 5, 5, 5]) == "rule1:4/≤4"
    assert consistency_stop(qs, level, [5, 5, 5, 1, 5]) == "rule2:4/last5/≥5"
    assert consistency_stop(qs, level, [1, 2, 5, 5, 5, 5]) == "rule2:4/last5/≥5"
    assert consistency_stop(qs, level, [5, 5, 5, 5, 1, 2]) is None
    assert consistency_stop(qs, level, [5, 5, 5, 5, 5, 1, 2]) == "rule3:5/≤7"
    assert consistency_stop(qs, level, [5, 5, 5, 5, 5, 5, 1, 2, 3]) == "rule4:6/≤9"
    assert consistency_stop(qs, level, [1, 2, 3, 4, 5, 6, 7]) is None
    assert consistency_stop(qs, level, [1, 2, 3, 4, 5, 6, 7, 8]) == "min_answers"
    assert consistency_stop(qs, SEED.schedule.level(1), [1, 2, 3, 4, 5, 6]) == "min_answers"
    never = load_policy("majority-n")
    assert consistency_stop(never.question_stop, never.schedule.level(1), [5] * 15) is None


def test_timeouts() -> None:
    level = SEED.schedule.level(3)
    assert timeout_stop(level, 480.0, 6, False) is None  # strictly after
    assert timeout_stop(level, 480.1, 6, False) == "early:480s/≥6"
    assert timeout_stop(level, 480.1, 5, False) is None
    assert timeout_stop(level, 540.5, 5, False) == "early:540s/≥5"
    assert timeout_stop(level, 600.5, 3, False) == "early:600s/≥3"
    assert timeout_stop(level, 659.0, 2, False) is None
    assert timeout_stop(level, 660.5, 0, False) == "timeout"
    assert timeout_stop(level, 10.0, 0, True) == "cutoff"
    assert not past_cutoff(SEED.schedule, 17820.0) and past_cutoff(SEED.schedule, 17820.5)


monotone_rules_st = st.lists(
    st.builds(ConsistencyRule, st.integers(1, 5), st.none(), st.none(), st.integers(0, 8)),
    max_size=4,
).map(tuple)


@given(
    monotone_rules_st,
    st.integers(1, 20),
    st.lists(st.integers(1, 6), max_size=15),
    st.lists(st.integers(1, 6), max_size=10),
)
def test_consistency_without_windows_is_monotone(rules, min_answers, valid, more) -> None:
    qs = QuestionStop("arrival", rules)
    level = SpeedLevel("l", 10, min_answers, 600.0)
    if consistency_stop(qs, level, valid) is not None:
        for j in range(len(more) + 1):
            assert consistency_stop(qs, level, valid + more[:j]) is not None


# --------------------------------------------------------------------------- vote


def test_vote_seed_examples() -> None:
    v = SEED.vote
    plain = load_policy("majority-n").vote
    assert vote(v, [F(boxed=9, code=7)]) == 7  # code over boxed
    assert vote(plain, [F(boxed=9, code=7)]) == 9  # both count, tie → larger
    assert vote(v, [F(boxed=9, code=-1), F(boxed=8)]) == 8  # a failed run hides the boxed answer
    assert vote(plain, [F(boxed=9, code=-1), F(boxed=8)]) == 9
    assert vote(v, [F(boxed=5), F(boxed=5), F(boxed=77)]) == 5  # 1.2 > 1.0
    assert vote(v, [F(boxed=5), F(boxed=77)]) == 77  # 0.6 < 1.0
    assert vote(v, [F(boxed=300), F(boxed=301)]) == 301
    assert vote(v, [F(boxed=0), F(boxed=0), F(boxed=33)]) == 0
    assert vote(v, [F(boxed=0), F(boxed=33)]) == 33  # 0 is small and round, weighed 0.6 once
    assert vote(v, [F(boxed=3), F(boxed=500)]) == 500  # tie 0.6 : 0.6 → larger
    assert vote(v, [F(boxed=40), F(code=41, kind="code")]) == 41
    assert vote(v, [F(boxed=21)] * 2 + [F(boxed=7)] * 3) == 21  # 2.0 > 1.8
    assert vote(v, []) == 49
    assert vote(v, [F(code=-1), F()]) == 49
    assert vote(v, [F(boxed=1234), F(boxed=1234), F(boxed=56)]) == 234


def test_vote_knobs() -> None:
    base = SEED.vote
    finals = [F(boxed=40), F(boxed=40), F(code=41, kind="code")]
    code2 = dataclasses.replace(base, kind_weights=KindWeights(1.0, 2.0))
    assert vote(code2, finals) == 41  # 2.0 : 2.0, tie → larger
    assert vote(dataclasses.replace(base, kind_weights=KindWeights(1.0, 1.5)), finals) == 40
    assert vote(dataclasses.replace(code2, tie_break="smaller"), finals) == 40
    assert vote(dataclasses.replace(code2, tie_break="first"), finals) == 40
    long_short = [F(boxed=41, n_tokens=10_000), F(boxed=40, n_tokens=2000)]
    assert vote(base, long_short) == 41
    assert vote(dataclasses.replace(base, length_weight=1.0), long_short) == 40
    assert vote(dataclasses.replace(base, fallback=0), []) == 0
    flat = dataclasses.replace(base, small_max=None, round_multiple=None)
    assert vote(flat, [F(boxed=5), F(boxed=77)]) == 77
    assert vote(dataclasses.replace(flat, tie_break="smaller"), [F(boxed=5), F(boxed=77)]) == 5
    assert vote(dataclasses.replace(base, drop_negative=False), [F(code=-1)]) == 999


votes_st = st.builds(
    Vote,
    st.booleans(),
    st.builds(KindWeights, st.floats(0, 3), st.floats(0, 3)),
    st.none() | st.integers(-5, 100),
    st.none() | st.integers(1, 500),
    st.floats(0, 2),
    st.floats(0, 5),
    st.sampled_from(["larger", "smaller", "first"]),
    st.integers(0, 999),
    st.booleans(),
)
finals_st = st.lists(
    st.builds(
        SampleFinal,
        st.sampled_from(["cot", "code"]),
        st.integers(0, 40_000),
        st.none() | st.integers(-1, 5000),
        st.none() | st.integers(-1, 5000),
    ),
    max_size=20,
)


@given(votes_st, finals_st)
def test_vote_is_always_an_answer(v: Vote, finals: list[SampleFinal]) -> None:
    result = vote(v, finals)
    assert isinstance(result, int) and 0 <= result <= 999
    assert vote(v, finals) == result


# --------------------------------------------------------------------------- schedule


def test_pick_level() -> None:
    s = SEED.schedule
    assert pick_level(s, 3, 29, 1.0) == 3  # not yet re-evaluated
    assert pick_level(s, 3, 30, 20 * 299.0) == 1
    assert pick_level(s, 3, 30, 20 * 300.0) == 2  # not < 300, < 345
    assert pick_level(s, 3, 30, 20 * 369.0) == 3
    assert pick_level(s, 3, 30, 20 * 400.0) == 4
    assert pick_level(s, 3, 30, 20 * 420.0) == 5
    assert pick_level(s, 1, 31, 19 * 1000.0) == 1  # only every 2 more
    assert pick_level(s, 1, 32, 18 * 1000.0) == 5
    assert pick_level(s, 5, 32, 18 * 360.0) == 3
    assert pick_level(s, 4, 50, 0.0) == 4  # nothing left to schedule
    one = load_policy("majority-n").schedule
    assert pick_level(one, 1, 30, 1.0) == 1 and pick_level(one, 1, 30, 1e9) == 1


@settings(max_examples=50)
@given(st.integers(0, 60), st.floats(-1e4, 1e5))
def test_pick_level_stays_in_range(done: int, time_left: float) -> None:
    s = SEED.schedule
    level = pick_level(s, s.start_level, done, time_left)
    assert 1 <= level <= len(s.levels)
    assert s.level(level).samples > 0


# ------------------------------------------------------------------ the original's reading (issue 13)


def test_read_boxes_last_only_and_boxed_zero() -> None:
    from aimo.core.policy import read_boxes

    boxes = [B(3, 7), B(9, 0), B(12, None)]
    assert read_boxes(Check(), boxes) == boxes
    assert read_boxes(Check(boxes="last"), boxes) == [B(12, None)]  # nothing parsed: records nothing
    assert read_boxes(Check(boxed_zero="ignore"), boxes) == [B(3, 7), B(9, None), B(12, None)]
    assert read_boxes(Check(boxes="last", boxed_zero="ignore"), boxes[:2]) == [B(9, None)]
    assert read_boxes(Check(boxes="last"), []) == []


def test_history_count_and_early_timeout_count() -> None:
    from aimo.core.policy import early_timeout_count

    t = QuestionTracker(("code", "cot"), SEED.question_stop.valid)
    for a in [C(10, 5), C(20, -1), C(30, 5), C(40, 5), B(50, 7), B(60, 7), B(70, 0), B(80, 8)]:
        t.add_answer(0, a)
    t.add_answer(1, B(10, None))
    # code 5, −1, 5 (differs from −1), 5 (repeat: not kept); boxed 7, 7 (repeat), 0 (≤ 0), 8
    assert t.n_history == 4 and t.n_valid == 1
    s = SEED.schedule
    assert early_timeout_count(s, 0, 4) == 4 and early_timeout_count(s, 2, 4) == 2
    assert early_timeout_count(dataclasses.replace(s, early_timeout_count="valid"), 0, 4) == 0


@pytest.mark.parametrize("path, value, message", [
    ("check.boxes", "first", "must be one of"),
    ("check.boxed_zero", True, "must be one of"),
    ("check.code_overlap", "async", "must be one of"),
    ("vote.tie_tolerance", -0.1, "must be in"),
    ("vote.tie_tolerance", float("nan"), "finite"),
    ("vote.final_read", "yes", "true or false"),
    ("schedule.early_timeout_count", "history", "must be one of"),
])
def test_new_reading_options_are_validated(path: str, value, message: str) -> None:
    d = seed_dict()
    section, key = path.split(".")
    d[section][key] = value
    with pytest.raises(InputError) as err:
        policy_from_dict(d, source="p.yaml")
    assert path in str(err.value) and message in str(err.value)
