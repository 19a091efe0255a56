"""The competition inference server's `predict` forms around `solver.kaggle.predict`.

Both AIMO-2 (`kaggle_evaluation.aimo_2_inference_server.AIMO2InferenceServer(predict)`) and
AIMO-3 (`kaggle_evaluation.aimo_3_inference_server.AIMO3InferenceServer(predict)`) call
`predict(id_, question)` once per problem with one-row polars Series/DataFrames (the AIMO-3 test
CSV names the text column `problem`) and expect a DataFrame with columns `id` and `answer` back.
`solver.kaggle.predict` returns the bare integer; `predict_frame` wraps it for the server. See
docs/solver.md ("The competition server").
"""

from __future__ import annotations

from typing import Any

from aimo.solver import kaggle


def answer_frame(id_value: Any, answer: int) -> Any:
    """A one-row DataFrame {id, answer}: polars when installed (the server's own type), else pandas."""
    try:
        import polars as pl
    except ImportError:
        import pandas as pd

        return pd.DataFrame({"id": [id_value], "answer": [int(answer)]})
    return pl.DataFrame({"id": [id_value], "answer": [int(answer)]})


def one_value(value: Any) -> Any:
    """The single cell of a one-row Series or DataFrame (polars or pandas), or the value itself."""
    if getattr(value, "ndim", 1) == 2 and hasattr(value, "iloc"):  # pandas DataFrame: no .item()
        return value.iloc[0, 0]
    return kaggle._scalar(value)


def predict_frame(id_: Any, question: Any) -> Any:
    """The server's `predict`: the solver's answer to one problem as a DataFrame {id, answer}."""
    id_value = one_value(id_)
    return answer_frame(id_value, kaggle.predict(id_value, one_value(question)))


__all__ = ["answer_frame", "one_value", "predict_frame"]
