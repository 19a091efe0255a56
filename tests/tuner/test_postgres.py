"""A tuning run on a real PostgreSQL server: two worker processes, and two independent runs
("machines") joining the same studies.

Needs a server: `scripts/ci-postgres.sh` starts one and prints its URL. The URL comes from
AIMO_PG_URL; without it the test is skipped, except under CI (CI=true), where it uses the
script's URL and fails if the server or the driver (psycopg) is missing.
"""

from __future__ import annotations

import os
import subprocess
import sys
import uuid
from pathlib import Path

import optuna
import pytest

from aimo.recorder.synth import synthesize_store
from aimo.core.policy import load_policy
from aimo.tuner.cli_impl import run_tune
from aimo.tuner.study import finished_trials, open_storage

CI_URL = "postgresql://aimo:aimo@127.0.0.1:55432/aimo_tune"  # what scripts/ci-postgres.sh sets up
IN_CI = os.environ.get("CI", "").strip().lower() in ("1", "true", "yes")
URL = os.environ.get("AIMO_PG_URL") or (CI_URL if IN_CI else None)

pytestmark = [pytest.mark.postgres, pytest.mark.skipif(
    URL is None, reason="no PostgreSQL: set AIMO_PG_URL (scripts/ci-postgres.sh starts one)"
)]
optuna.logging.set_verbosity(optuna.logging.WARNING)

JOIN = """
import sys
from aimo.tuner.cli_impl import run_tune
run_tune(sys.argv[1], 3, sys.argv[2], storage=sys.argv[3], study=sys.argv[4], folds=2,
         bootstrap=4, seed=0, echo=lambda line: None, progress_bar=False)
"""


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("pg") / "small.duckdb"
    synthesize_store(path, n_problems=10, n_samples=8, seed=2, progress=False)
    return path


@pytest.fixture()
def study_name() -> object:
    name = f"test-{uuid.uuid4().hex[:10]}"
    yield name
    storage = open_storage(URL)  # type: ignore[arg-type]
    for s in optuna.get_all_study_summaries(storage, include_best_trial=False):
        if s.study_name == name or s.study_name.startswith(f"{name}:"):
            optuna.delete_study(study_name=s.study_name, storage=storage)


def _studies(name: str) -> list[optuna.Study]:
    storage = open_storage(URL)  # type: ignore[arg-type]
    return [optuna.load_study(study_name=n, storage=storage)
            for n in (f"{name}:fold1of2", f"{name}:fold2of2", name)]


def test_two_worker_processes_share_one_study(store: Path, tmp_path: Path, study_name: str) -> None:
    # both workers start together (spawned at once, same start-up work), so with 6 trials per
    # study each runs some: proof that they share the studies, not a split of them
    result = run_tune(store, 6, tmp_path / "best.yaml", storage=URL, study=study_name, folds=2,
                      bootstrap=4, workers=2, echo=lambda line: None, progress_bar=False)
    assert load_policy(result.out).name == f"tuned-{study_name}"
    workers = set()
    for study in _studies(study_name):
        assert 6 <= finished_trials(study) <= 7
        assert len({t.number for t in study.get_trials()}) == len(study.get_trials())
        workers |= {t.user_attrs.get("worker") for t in study.get_trials()}
    assert len(workers - {None}) == 2  # both processes ran trials


def test_independent_runs_join_the_same_studies(store: Path, tmp_path: Path, study_name: str) -> None:
    procs = [
        subprocess.Popen([sys.executable, "-c", JOIN, str(store), str(tmp_path / f"best{i}.yaml"),
                          str(URL), study_name], stderr=subprocess.PIPE, text=True)
        for i in range(2)
    ]
    for p in procs:
        _, err = p.communicate(timeout=240)
        assert p.returncode == 0, err[-2000:]
    for study in _studies(study_name):
        assert 3 <= finished_trials(study) <= 4
        assert sum(1 for t in study.get_trials() if t.user_attrs.get("base")) >= 1
    # either run's export loads
    assert load_policy(tmp_path / "best0.yaml").name == f"tuned-{study_name}"


def test_server_takes_password_logins_only() -> None:
    """scripts/ci-postgres.sh: no login by being local (issue 14: a snippet got a shell as postgres
    through a trusting socket); the socket lives in a folder only `postgres` may enter."""
    import psycopg
    from urllib.parse import urlsplit

    parts = urlsplit(str(URL))
    for user in ("postgres", parts.username):
        with pytest.raises(psycopg.OperationalError, match="password"):
            psycopg.connect(host=parts.hostname, port=parts.port, user=user, dbname="postgres",
                            password="", connect_timeout=10).close()
    data = Path(os.environ.get("AIMO_PG_DATA", "/tmp/aimo-pg"))
    if (data / "socket").exists():
        assert (data / "socket").stat().st_mode & 0o077 == 0
        with pytest.raises(psycopg.OperationalError, match="password"):  # the socket asks too
            psycopg.connect(host=str(data / "socket"), port=parts.port, user="postgres",
                            dbname="postgres", password="", connect_timeout=10).close()
        hba = (data / "db" / "pg_hba.conf").read_text() if os.access(data, os.R_OK) else ""
        rules = [line.split() for line in hba.splitlines() if line.strip() and not line.startswith("#")]
        assert all(r[-1] == "scram-sha-256" for r in rules)
