"""Tune page: an Optuna study of policies — history, Pareto front (multi-objective), parameter
importances, parallel coordinates (Optuna's own Plotly figures), the best trials with their
scores, the held-out (nested cross-validation) report of an `aimo tune` run, and the export of a
trial's policy as YAML.

Storage: an Optuna journal file path or an RDB URL (sqlite:///…, postgresql://…).
"""

from __future__ import annotations

from typing import Any

import pandas as pd
import streamlit as st

from aimo.dashboard import studies, ui
from aimo.core.policy import policy_to_yaml

PLOT_TABS = {
    "History": "history",
    "Pareto front": "pareto",
    "Importances": "importances",
    "Parallel coordinates": "parallel",
}


def render() -> None:
    """Draw the page."""
    st.title("Tune")
    cols = st.columns([3, 2])
    url = cols[0].text_input("Optuna storage (journal file or RDB URL)", key=ui.K_STORAGE)
    if not url:
        st.info(
            "No study storage given: start with `aimo dashboard --storage URL` or enter a "
            "journal file path / RDB URL above."
        )
        st.stop()
    version = studies.storage_version(url)
    try:
        names = studies.study_names(url, version)
    except Exception as exc:  # noqa: BLE001 - any bad storage becomes a message
        ui.show_error(exc)
        st.stop()
    if not names:
        st.error(f"{url}: the storage holds no study.")
        st.stop()
    # Final studies first: `aimo tune` also writes one study per cross-validation fold.
    names = sorted(names, key=lambda n: (":fold" in n, n))
    wanted = st.session_state.get(ui.K_STUDY)
    index = names.index(wanted) if wanted in names else 0
    name = cols[1].selectbox("Study", names, index=index, key="tune_study")
    assert name is not None  # a widget with options always returns one
    try:
        study = studies.load_study(url, name, version)
    except Exception as exc:  # noqa: BLE001
        ui.show_error(exc)
        st.stop()
    trials = studies.trials_frame(study)
    metric_names = studies.metric_names(study)
    directions = [d.name.lower() for d in study.directions]
    st.caption(
        f"{len(study.trials)} trial(s), {len(trials)} complete · "
        + ", ".join(f"{m} ({d})" for m, d in zip(metric_names, directions))
    )
    if trials.empty:
        st.info("The study has no completed trial yet.")
        st.stop()
    objective = 0
    if len(metric_names) > 1:
        picked = st.selectbox(
            "Objective for the single-target plots", metric_names, key="tune_objective"
        )
        assert picked is not None  # a widget with options always returns one
        objective = metric_names.index(picked)
    refresh = int(st.session_state.get(ui.K_REFRESH, 0))
    # Only the open tab's figure is built (importances take seconds on a large space); the
    # choice is kept in the URL (?plot=Importances).
    tabs = st.tabs(list(PLOT_TABS), key="plot", on_change="rerun", bind="query-params")
    for tab, (label, kind) in zip(tabs, PLOT_TABS.items()):
        if not tab.open:
            continue
        with tab:
            top = studies.IMPORTANCE_TOP
            if kind == "importances":
                top = int(
                    st.slider("Parameters shown", 3, 60, studies.IMPORTANCE_TOP, key="tune_top")
                )
            with st.spinner(f"Building the {label.lower()} plot…"):
                fig = studies.study_figure(url, name, version, refresh, objective, kind, top)
            if isinstance(fig, str):
                st.info(fig)
                continue
            st.plotly_chart(fig, key=f"tune_{kind}")
            if kind == "parallel":
                _axis_legend(fig)
    _heldout(study)
    _best(study, trials, metric_names)


def _axis_legend(fig: Any) -> None:
    """The full parameter name behind each shortened parallel-coordinates axis label."""
    axes = (fig.layout.meta or {}).get("axes") if isinstance(fig.layout.meta, dict) else None
    if axes:
        st.caption(
            "Axes: " + " · ".join(f"**{short}** = `{full}`" for short, full in axes.items())
        )


def _heldout(study: Any) -> None:
    report = studies.heldout_report(study)
    if report is None:
        return
    rows, folds = report
    st.subheader("Held-out scores (nested cross-validation)")
    st.caption(
        "From `aimo tune`: each fold's study tuned on the other folds only and its chosen policy "
        "scored on the fold's problems; 'tuned' is that procedure, the others are untuned "
        "presets on the same draws (Δ is paired)."
    )
    st.dataframe(rows, hide_index=True, key="tune_heldout_table")
    if not folds.empty:
        st.dataframe(folds, hide_index=True, key="tune_folds_table")


def _best(study: Any, trials: pd.DataFrame, metric_names: list[str]) -> None:
    st.subheader("Best trials" if len(metric_names) == 1 else "Pareto-optimal trials")
    best = studies.best_trials(study)
    numbers = [t.number for t in best]
    exported = studies.exported_trial(study)
    if exported is not None and exported in trials["trial"].tolist():
        numbers = [exported] + [n for n in numbers if n != exported]
    shown = trials[trials["trial"].isin(numbers)].set_index("trial").loc[numbers].reset_index()
    st.caption(
        "`attr:` columns are the trial's user attributes (for `aimo tune`: bootstrap score mean, "
        "90% interval, LCB, mean time, P(overtime); per-fold held-out scores are in the report above)."
    )
    st.dataframe(shown, hide_index=True, key="tune_best_table")
    all_numbers = numbers + [n for n in trials["trial"].tolist() if n not in numbers]

    def label(n: int) -> str:
        if n == exported:
            return f"trial {n} (exported by aimo tune)"
        return f"trial {n}" + (" (best)" if n in numbers else "")

    number = st.selectbox("Trial", all_numbers, key="tune_trial", format_func=label)
    trial = study.trials[number]
    cols = st.columns(2)
    params, scores = studies.trial_tables(trial, metric_names)
    with cols[0]:
        st.markdown("**Parameters**")
        st.dataframe(params, hide_index=True, key="tune_params_table")
    with cols[1]:
        st.markdown("**Values and scores**")
        st.dataframe(scores, hide_index=True, key="tune_scores_table")
    space_file = None
    if studies.tuner_settings(study) is not None:
        space_file = st.text_input(
            "Search space file (only if the study was tuned with --space)", key="tune_space"
        )
    try:
        policy, origin = studies.trial_policy(trial, study, space_file or None)
    except Exception as exc:  # noqa: BLE001
        ui.show_error(exc)
        return
    text = policy_to_yaml(policy)
    st.download_button(
        f"Export trial {number}'s policy (YAML)",
        text,
        file_name=f"{ui.file_name(policy.name)}.yaml",
        mime="application/x-yaml",
        key="tune_download",
    )
    st.caption(f"Policy {policy.name}: {origin}.")
    with st.expander("Policy YAML"):
        st.code(text, language="yaml")


if __name__ == "__main__":
    render()
