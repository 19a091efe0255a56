"""The inference server's predict form: one-row Series or 1x1 DataFrames in (AIMO-2 `question`,
AIMO-3 `problem` columns), a DataFrame {id, answer} out, the solver's integer inside."""

from __future__ import annotations

import pandas as pd
import pytest

from aimo.solver import kaggle, kaggle_server


@pytest.fixture
def answers(monkeypatch: pytest.MonkeyPatch) -> list[tuple[object, object]]:
    seen: list[tuple[object, object]] = []

    def fake(id_: object, question: object) -> int:
        seen.append((kaggle._scalar(id_), kaggle._scalar(question)))
        return 277

    monkeypatch.setattr(kaggle, "predict", fake)
    return seen


@pytest.mark.parametrize("form", ["series", "frame"])
def test_predict_frame_takes_both_server_forms(answers, form: str) -> None:
    if form == "series":
        id_, text = pd.Series(["a1b2c3"], name="id"), pd.Series(["What is 2+2?"], name="problem")
    else:
        id_, text = pd.DataFrame({"id": ["a1b2c3"]}), pd.DataFrame({"question": ["What is 2+2?"]})
    out = kaggle_server.predict_frame(id_, text)
    assert list(out.columns) == ["id", "answer"] and len(out) == 1
    assert out["id"][0] == "a1b2c3" and int(out["answer"][0]) == 277
    assert answers == [("a1b2c3", "What is 2+2?")]


def test_plain_values_work_too(answers) -> None:
    out = kaggle_server.predict_frame("x", "q")
    assert out["id"][0] == "x" and int(out["answer"][0]) == 277
