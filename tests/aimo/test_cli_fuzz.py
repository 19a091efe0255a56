"""Property-based fuzzing of the CLI's arguments: random options and values (missing, garbage,
extreme numbers, wrong kinds of files, unwritable paths) for the commands that read or write
stores and policies. The property: no traceback, no exception escaping, exit code 0 or 2
(1 for a command that ran and reported a failure), and on 2 an `error:` line or a usage message.

Work-size options (--bootstrap, --trials, --problems/--samples of synth) are drawn from small or
refused ranges so that one example stays short."""

from __future__ import annotations

import json

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from aimo.cli import app
from aimo.recorder.synth import synthesize_store

runner = CliRunner()


@pytest.fixture(scope="module")
def world(tmp_path_factory) -> dict[str, str]:  # type: ignore[no-untyped-def]
    """Files a user might pass: a small store, a CSV, a JSONL, a policy, a folder, a text file."""
    tmp = tmp_path_factory.mktemp("world")
    store = tmp / "store.duckdb"
    synthesize_store(store, n_problems=3, n_samples=4, seed=1)
    (tmp / "p.csv").write_text("id,question,answer\np1,q,1\n")
    (tmp / "s.jsonl").write_text(json.dumps({"problem_id": "p1", "sample": 0, "kind": "cot",
                                             "n_tokens": 5, "answer": 1}) + "\n")
    (tmp / "pol.yaml").write_text("base: fast-8\n")
    (tmp / "notes.txt").write_text("hello\n")
    (tmp / "sub").mkdir()
    return {"store": str(store), "csv": str(tmp / "p.csv"), "jsonl": str(tmp / "s.jsonl"),
            "policy": str(tmp / "pol.yaml"), "dir": str(tmp / "sub"), "text": str(tmp / "notes.txt"),
            "new": str(tmp / "sub" / "new.duckdb"), "newyaml": str(tmp / "sub" / "new.yaml"),
            "tmp": str(tmp)}


# The hostile paths come twice: they are the ones that found bugs (unwritable outputs, wrong files).
PATH_KINDS = ["store", "csv", "jsonl", "policy", "dir", "text", "new", "missing", "empty",
              "proc", "under-file", "proc", "under-file", "text", "dir"]
VALUES = st.sampled_from(["0", "-1", "1", "2", "3", "nan", "inf", "-inf", "1e9", "1e400", "2147483648",
                          "99999999999999999999", "", " ", "abc", "seed-2nd-place", "fast-8",
                          "l4x4-14b-w4kv8", "synthetic", "replay", "\x00", "é", "--", "-x"])
SMALL = st.sampled_from(["0", "1", "2", "-1", "abc", "nan"])
# Each command with a valid value per option ("" key: a positional argument): the fuzz starts from
# a command line that works and breaks one or two options, so that every option's checks are
# reached (random whole lines mostly stop at the first missing option).
COMMANDS: dict[str, dict[str, tuple[str, str]]] = {  # option -> (kind, valid value key or literal)
    "simulate": {"--traces": ("path", "@store"), "--policy": ("value|path", "fast-8"),
                 "--budget-s": ("value", "18000"), "--bootstrap": ("small", "2"),
                 "--seed": ("value", "0"), "--json": ("flag", ""), "--allow-incomplete": ("flag", "")},
    "import": {"--problems": ("path", "@csv"), "--samples": ("path", "@jsonl"), "--out": ("path", "@new"),
               "--run-id": ("value", "r"), "--resume": ("flag", "")},
    "synth": {"--out": ("path", "@new"), "--problems": ("small", "2"), "--samples": ("small", "2"),
              "--seed": ("value", "0"), "--profile": ("value", "r1-14b"), "--resume": ("flag", "")},
    "solve": {"--problems": ("path", "@csv"), "--policy": ("value|path", "fast-8"),
              "--backend": ("value", "synthetic"), "--record": ("path", "@new"),
              "--budget-s": ("value", "18000"), "--max-new-tokens": ("value", "64"),
              "--resume": ("flag", ""), "--record-run": ("value", "r"), "--json": ("flag", "")},
    "runs list": {"": ("path", "@store"), "--json": ("flag", "")},
    "runs show": {"": ("path", "@store"), " ": ("value", "synthetic-r1-14b-s1"), "--json": ("flag", "")},
    "runs mark-failed": {"": ("path", "@store"), " ": ("value", "nope")},
    "runs delete": {"": ("path", "@store"), " ": ("value", "nope"), "--yes": ("flag", "")},
    "runs flush": {"": ("path", "@store")},
    "profile show": {"": ("value|path", "l4x4-14b-w4kv8")},
    "profile fit": {"--traces": ("path", "@store"), "--name": ("value", "x"), "--out": ("path", "@newyaml"),
                    "--window-tokens": ("value", "16"), "--force": ("flag", "")},
}


def _path(world: dict[str, str], kind: str) -> str:
    special = {"missing": world["tmp"] + "/absent.duckdb", "proc": "/proc/x/y", "empty": "",
               "under-file": world["text"] + "/x.duckdb"}
    return special[kind] if kind in special else world[kind]


@st.composite
def command_lines(draw, world: dict[str, str]) -> list[str]:  # type: ignore[no-untyped-def]
    """A working command line of a random command with one to three options broken or dropped."""
    name = draw(st.sampled_from(sorted(COMMANDS)))
    options = COMMANDS[name]
    broken = set(draw(st.lists(st.sampled_from(sorted(options)), unique=True, min_size=1, max_size=3)))
    args = name.split()
    for option, (kind, valid) in options.items():
        if option not in broken:
            value = world[valid[1:]] if valid.startswith("@") else valid
        elif kind == "flag" or draw(st.integers(0, 4)) == 0:
            continue  # a flag toggled off, or an option left out
        elif kind == "small":
            value = draw(SMALL)
        elif kind == "path" or (kind == "value|path" and draw(st.booleans())):
            value = _path(world, draw(st.sampled_from(PATH_KINDS)))
        else:
            value = draw(VALUES)
        args += ([option] if option.strip() else []) + ([value] if kind != "flag" else [])
    return args


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture,
                                                                  HealthCheck.too_slow])
@given(data=st.data())
def test_random_command_lines_never_crash(world: dict[str, str], data, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.chdir(world["tmp"])  # default outputs (profile fit's NAME.yaml) land there
    args = data.draw(command_lines(world))
    if "--backend" in args and args[args.index("--backend") + 1] not in ("synthetic", "replay"):
        args[args.index("--backend") + 1] = "synthetic"  # lmdeploy backends need a GPU
    result = runner.invoke(app, args)
    assert result.exception is None or isinstance(result.exception, SystemExit), (args, result.exception)
    assert "Traceback" not in result.output, (args, result.output)
    assert result.exit_code in (0, 1, 2), (args, result.exit_code, result.output)
    if result.exit_code == 2:
        assert "error" in result.output.lower() or "usage" in result.output.lower(), (args, result.output)


def _one_broken(world: dict[str, str], name: str, broken: str, value: str) -> list[str]:
    """The working command line of `name` with option `broken` set to `value`."""
    args = name.split()
    for option, (kind, valid) in COMMANDS[name].items():
        if kind == "flag":
            continue
        chosen = value if option == broken else (world[valid[1:]] if valid.startswith("@") else valid)
        args += ([option] if option.strip() else []) + [chosen]
    return args


PATH_OPTIONS = [(name, option) for name, options in sorted(COMMANDS.items())
                for option, (kind, _) in options.items() if "path" in kind]


@pytest.mark.parametrize("name, option", PATH_OPTIONS)
def test_every_path_option_with_every_hostile_path(world: dict[str, str], name: str, option: str,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    """Exhaustive where the random walk is thin: each path option of each command gets each kind of
    wrong path (a folder, a text file, a CSV for a store, a missing file, /proc, a file as parent)."""
    monkeypatch.chdir(world["tmp"])
    for kind in sorted(set(PATH_KINDS)):
        args = _one_broken(world, name, option, _path(world, kind))
        result = runner.invoke(app, args)
        assert result.exception is None or isinstance(result.exception, SystemExit), (args, result.exception)
        assert "Traceback" not in result.output, (args, result.output)
        assert result.exit_code in (0, 1, 2), (args, result.exit_code, result.output)
