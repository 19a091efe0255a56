"""Check that a trace store meets a synthetic profile's calibration targets.

`check_calibration(path)` measures every metric of the run's profile (read from the run's
`gen_config.profile`; `r1-14b` for runs of other kinds, so a real 14B recording can be compared
with the seed's figures too) and returns a report whose `render()` is a target/measured/pass table.
Run it as `python -m aimo.recorder.calibration STORE [--run RUN] [--profile NAME] [--confidence-only]`;
it exits 1 on a miss. A run that stores per-token confidence is also checked against the
confidence targets (DeepConf's published behaviour, docs/synthetic.md).
Metric definitions are in docs/synthetic.md; sample-level definitions follow `recorder.summary`.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import duckdb
import numpy as np
import pandas as pd

from aimo.core.store.queries import (
    answer_rows, chunk_texts, confidence_rows, final_first_positions, has_chunk_text,
    has_confidence_rows, run_configs, sample_stats, times_at_token,
)
from aimo.recorder.summary import majority_votes
from aimo.recorder.synth_profiles import (
    CONFIDENCE_TARGETS,
    DEFAULT_PROFILE,
    SynthProfile,
    Target,
    get_profile,
)
from aimo.core.errors import InputError

# DeepConf's group confidence: the mean token confidence over a sliding window of tokens.
GROUP_WINDOW = 2048


@dataclass(frozen=True)
class RunData:
    """What the metrics read from one run: per-sample stats, per-problem votes, chunk timing/text."""

    stats: pd.DataFrame
    votes: pd.DataFrame
    con: duckdb.DuckDBPyConnection
    run_id: str
    cache: dict = field(default_factory=dict)  # per-run intermediate frames shared by metrics


Metric = Callable[[RunData], "float | None"]


def _share(mask: pd.Series) -> float | None:
    return float(mask.mean()) if len(mask) else None


def _right(stats: pd.DataFrame) -> pd.Series:
    known = stats[stats["truth"].notna()]
    return (known["final_value"] == known["truth"]).fillna(False).astype(bool)


def _per_problem_accuracy(stats: pd.DataFrame) -> pd.Series:
    known = stats[stats["truth"].notna()].copy()
    known["right"] = (known["final_value"] == known["truth"]).fillna(False).astype(bool)
    return known.groupby("problem_id")["right"].mean()


def _code(stats: pd.DataFrame) -> pd.DataFrame:
    return stats[stats["kind"] == "code"]


def mean_tokens(d: RunData) -> float | None:
    return float(d.stats["n_tokens"].mean()) if len(d.stats) else None


def sample_accuracy(d: RunData) -> float | None:
    return _share(_right(d.stats))


def majority_accuracy(d: RunData) -> float | None:
    v = d.votes[d.votes["truth"].notna()]
    return _share(v["vote"] == v["truth"])


def code_no_code(d: RunData) -> float | None:
    return _share(_code(d.stats)["n_code"] == 0)


def code_exec_error(d: RunData) -> float | None:
    c = _code(d.stats)
    return _share((c["n_code"] > 0) & (c["code_ok"] == False))  # noqa: E712 (nullable)


def code_fail_parse(d: RunData) -> float | None:
    c = _code(d.stats)
    return _share(((c["n_code"] > 0) & (c["code_ok"] == True) & c["code_value"].isna()).astype(bool))  # noqa: E712


def code_wrong_number(d: RunData) -> float | None:
    c = _code(d.stats)
    c = c[c["truth"].notna()]
    return _share((c["code_value"].notna() & (c["code_value"] != c["truth"])).astype(bool))


def no_answer(d: RunData) -> float | None:
    return _share(d.stats["n_values"] == 0)


def capped(d: RunData) -> float | None:
    return _share(d.stats["finish_reason"] == "length")


def flip_rate(d: RunData) -> float | None:
    a = d.stats[d.stats["n_values"] > 0]
    return _share(a["first_value"] != a["final_value"])


def restate_1_3(d: RunData) -> float | None:
    a = d.stats[d.stats["n_values"] > 0]
    return _share(a["n_values"].between(2, 4))


def first_answer_pos(d: RunData) -> float | None:
    a = d.stats[(d.stats["n_values"] > 0) & (d.stats["finish_reason"] == "stop")]
    return float((a["first_pos"] / a["n_tokens"]).median()) if len(a) else None


def _median_tokens_where(d: RunData, keep: Callable[[pd.Series], pd.Series]) -> float | None:
    acc = _per_problem_accuracy(d.stats)
    chosen = acc[keep(acc)].index
    rows = d.stats[d.stats["problem_id"].isin(chosen)]
    return float(rows["n_tokens"].median()) if len(rows) else None


def easy_median_tokens(d: RunData) -> float | None:
    """Median sample length on problems with at least 90% of samples right."""
    return _median_tokens_where(d, lambda a: a >= 0.9)


def hard_median_tokens(d: RunData) -> float | None:
    """Median sample length on problems with at most 20% of samples right."""
    return _median_tokens_where(d, lambda a: a <= 0.2)


def attractor_share(d: RunData) -> float | None:
    """Median, over problems at most half right with >= 5 wrong finals, of the top wrong value's share."""
    shares = []
    acc = _per_problem_accuracy(d.stats)
    for _, group in d.stats[d.stats["problem_id"].isin(acc[acc <= 0.5].index)].groupby("problem_id"):
        finals = group["final_value"].dropna()
        wrong = finals[finals != group["truth"].iloc[0]]
        if len(wrong) >= 5:
            shares.append(wrong.value_counts().iloc[0] / len(wrong))
    return float(np.median(shares)) if shares else None


def vote_fooled(d: RunData) -> float | None:
    """Share of problems whose plurality answer is wrong and holds at least 3 votes."""
    v = d.votes[d.votes["truth"].notna()]
    return _share((v["vote"].notna() & (v["vote"] != v["truth"]) & (v["votes"] >= 3)).astype(bool))


def truth_small_round(d: RunData) -> float | None:
    t = d.votes["truth"].dropna().astype(int)
    return _share((t <= 20) | (t % 100 == 0))


def truth_median(d: RunData) -> float | None:
    t = d.votes["truth"].dropna()
    return float(t.median()) if len(t) else None


def kind_interleave(d: RunData) -> float | None:
    expected = np.where(d.stats["sample_idx"] % 2 == 0, "cot", "code")
    return _share(pd.Series(d.stats["kind"].to_numpy() == expected))


def _times_at(d: RunData, token: int) -> pd.Series:
    """Per sample (indexed by problem_id, sample_idx): the time its `token`-th token arrived,
    interpolated linearly between chunks ((0, start_s) is the first point); samples that are
    shorter or untimed are absent."""
    df = times_at_token(d.con, d.run_id, token)
    return df.set_index(["problem_id", "sample_idx"])["t"].dropna()


def _rate(d: RunData, lo: int, hi: int) -> float | None:
    """Median per-sample decode rate (tok/s) between token counts `lo` and `hi` (0 = sample start)."""
    t_lo, t_hi = _times_at(d, lo), _times_at(d, hi)
    dt = (t_hi - t_lo.reindex(t_hi.index)).dropna()
    dt = dt[dt > 0]
    return float(((hi - lo) / dt).median()) if len(dt) else None


def rate_start(d: RunData) -> float | None:
    return _rate(d, 0, 1024)


def rate_16k(d: RunData) -> float | None:
    return _rate(d, 15360, 16384)


def time_13007(d: RunData) -> float | None:
    r = _rate(d, 0, 13007)
    return None if r is None else 13007 / r


def text_consistency(d: RunData) -> float | None:
    """Share of samples whose answer rows re-extract from their chunk text.

    Each sample's chunks are fed to the live solver's exact-mode `StreamingExtractor`; the
    multiset of (token, 'boxed', value) and (token, 'code') events must equal the answer rows
    (code values need a run, so only their positions are compared).
    """
    from aimo.solver.extraction import StreamingExtractor

    if not has_chunk_text(d.con, d.run_id):
        return None
    found: dict[tuple[str, int], list] = {}
    current, extractor = None, StreamingExtractor()
    for pid, idx, tok, text in chunk_texts(d.con, d.run_id):
        if (pid, idx) != current:
            current, extractor = (pid, idx), StreamingExtractor()
        got = extractor.feed(text or "", tok)
        if got:
            events = found.setdefault((pid, idx), [])
            events.extend((a.token, "boxed", a.value) for a in got.answers)
            events.extend((c.token, "code", None) for c in got.code_blocks)
    stored: dict[tuple[str, int], list] = {}
    for pid, idx, tok, src, value in answer_rows(d.con, d.run_id):
        stored.setdefault((pid, idx), []).append((tok, src, value if src == "boxed" else None))
    keys = list(zip(d.stats["problem_id"], d.stats["sample_idx"]))
    same = [_sorted(found.get(k, [])) == _sorted(stored.get(k, [])) for k in keys]
    return _share(pd.Series(same, dtype=bool))


def _sorted(events: list) -> list:
    return sorted(events, key=lambda e: (e[0], e[1], -1 if e[2] is None else e[2]))


def median_tokens(d: RunData) -> float | None:
    return float(d.stats["n_tokens"].median()) if len(d.stats) else None


def p90_tokens(d: RunData) -> float | None:
    return float(d.stats["n_tokens"].quantile(0.9)) if len(d.stats) else None


def share_over_16k(d: RunData) -> float | None:
    """Share of samples longer than 16,384 tokens (the r1-14b profiles' cap)."""
    return _share(d.stats["n_tokens"] > 16384)


def _lowest_group(conf: np.ndarray, window: int = GROUP_WINDOW) -> tuple[float, int]:
    """Lowest mean over windows of `window` tokens (the whole sample when shorter) and the end
    position (exclusive) of that window."""
    w = min(window, conf.size)
    sums = np.concatenate([[0.0], np.cumsum(conf, dtype=np.float64)])
    means = (sums[w:] - sums[:-w]) / w
    j = int(np.argmin(means))
    return float(means[j]), j + w


def confidence_frame(d: RunData) -> pd.DataFrame | None:
    """Per answered sample with confidence and a known truth: right, mean confidence, lowest group
    confidence (window GROUP_WINDOW), where that window ends, mean entropy, and the token where
    the final answer first appeared. None when the run has no confidence."""
    if "confidence" in d.cache:
        return d.cache["confidence"]
    from aimo.core.store.confidence import decode_column
    from aimo.core.store.migrations import has_confidence

    frame = None
    if has_confidence(d.con):
        table = confidence_rows(d.con, d.run_id)
        if table.num_rows:
            n = table.column("n_tokens").to_pylist()
            conf = decode_column(table.column("token_conf"), n, "store", "token_conf")
            ent = decode_column(table.column("token_entropy"), n, "store", "token_entropy")
            rows = []
            for pid, idx, c, e in zip(
                table.column("problem_id").to_pylist(), table.column("sample_idx").to_pylist(),
                conf, ent,
            ):
                if c is None or c.size == 0:
                    continue
                low, end = _lowest_group(c)
                rows.append((pid, idx, float(c.mean()), low, end,
                             float(e.mean()) if e is not None and e.size else np.nan))
            cols = ["problem_id", "sample_idx", "mean_conf", "lowest_group", "lowest_end",
                    "mean_entropy"]
            per = pd.DataFrame(rows, columns=cols)
            pos = final_first_positions(d.con, d.run_id)
            st = d.stats[d.stats["truth"].notna() & d.stats["final_value"].notna()]
            st = st.assign(right=(st["final_value"] == st["truth"]).astype(bool))
            keep = ["problem_id", "sample_idx", "n_tokens", "right"]
            frame = st[keep].merge(per, on=["problem_id", "sample_idx"])
            frame = frame.merge(pos, on=["problem_id", "sample_idx"], how="left")
    d.cache["confidence"] = frame
    return frame


def _auroc(score: pd.Series, right: pd.Series) -> float | None:
    """P(a right sample scores higher than a wrong one), ties half (Mann-Whitney)."""
    n_right, n_wrong = int(right.sum()), int((~right).sum())
    if n_right == 0 or n_wrong == 0:
        return None
    ranks = score.rank(method="average")
    return float((ranks[right].sum() - n_right * (n_right + 1) / 2) / (n_right * n_wrong))


def conf_auroc_mean(d: RunData) -> float | None:
    """How well a sample's mean token confidence separates right from wrong answers (AUROC)."""
    f = confidence_frame(d)
    return None if f is None else _auroc(f["mean_conf"], f["right"])


def conf_auroc_lowest(d: RunData) -> float | None:
    """The same for the lowest group confidence (DeepConf's local measure)."""
    f = confidence_frame(d)
    return None if f is None else _auroc(f["lowest_group"], f["right"])


def conf_lowest_gain(d: RunData) -> float | None:
    """AUROC of the lowest group confidence minus that of the mean: local dips carry signal."""
    a, b = conf_auroc_lowest(d), conf_auroc_mean(d)
    return None if a is None or b is None else a - b


def _dip_near_answer(d: RunData, right: bool) -> float | None:
    """Over samples of at least 4 windows (shorter ones put every window near the answer)."""
    f = confidence_frame(d)
    if f is None:
        return None
    f = f[(f["right"] == right) & f["final_pos"].notna() & (f["n_tokens"] >= 4 * GROUP_WINDOW)]
    near = (f["lowest_end"] - f["final_pos"]).abs() <= GROUP_WINDOW // 2
    return _share(near.astype(bool))


def conf_dip_near_wrong(d: RunData) -> float | None:
    """Share of wrong samples (of >= 4 windows) whose lowest-confidence window ends within half
    a window of where their final answer first appears."""
    return _dip_near_answer(d, False)


def conf_dip_near_right(d: RunData) -> float | None:
    """The same share for right samples."""
    return _dip_near_answer(d, True)


def conf_entropy_corr(d: RunData) -> float | None:
    """Spearman correlation of per-sample mean confidence and mean top-k entropy (negative)."""
    f = confidence_frame(d)
    if f is None or f["mean_entropy"].isna().all() or len(f) < 3:
        return None
    ranks = f[["mean_conf", "mean_entropy"]].dropna().rank()  # Spearman = Pearson of the ranks
    return float(ranks["mean_conf"].corr(ranks["mean_entropy"]))


METRICS: dict[str, Metric] = {
    f.__name__: f
    for f in (
        mean_tokens, sample_accuracy, majority_accuracy, code_no_code, code_exec_error,
        code_fail_parse, code_wrong_number, no_answer, capped, flip_rate, restate_1_3,
        first_answer_pos, easy_median_tokens, hard_median_tokens, attractor_share, vote_fooled,
        truth_small_round, truth_median, kind_interleave, rate_start, rate_16k, time_13007,
        text_consistency, median_tokens, p90_tokens, share_over_16k, conf_auroc_mean,
        conf_auroc_lowest, conf_lowest_gain, conf_dip_near_wrong, conf_dip_near_right,
        conf_entropy_corr,
    )
}


@dataclass(frozen=True)
class CalibrationRow:
    """One target checked: measured is None when the store lacks what the metric needs."""

    target: Target
    measured: float | None

    @property
    def status(self) -> str:
        if self.measured is None or np.isnan(self.measured):
            return "n/a"
        return "pass" if self.target.lo <= self.measured <= self.target.hi else "FAIL"


@dataclass(frozen=True)
class CalibrationReport:
    """The calibration check of one run against one profile; `passed` needs every row to pass."""

    path: Path
    run_id: str
    profile: str
    rows: tuple[CalibrationRow, ...]

    @property
    def passed(self) -> bool:
        return all(r.status == "pass" for r in self.rows)

    def render(self) -> str:
        table = [("metric", "target", "band", "measured", "result", "source")]
        for r in self.rows:
            t = r.target
            table.append((t.metric, _fmt(t.value), f"{_fmt(t.lo)}..{_fmt(t.hi)}",
                          "-" if r.measured is None else _fmt(r.measured), r.status, t.source))
        widths = [max(len(row[i]) for row in table) for i in range(len(table[0]))]
        lines = [f"calibration of {self.path} run {self.run_id} against profile {self.profile}"]
        for j, row in enumerate(table):
            lines.append("  ".join(c.ljust(w) for c, w in zip(row, widths)).rstrip())
            if j == 0:
                lines.append("  ".join("-" * w for w in widths))
        n_pass = sum(r.status == "pass" for r in self.rows)
        lines.append(f"{n_pass}/{len(self.rows)} targets met: {'PASS' if self.passed else 'FAIL'}")
        return "\n".join(lines)


def _fmt(x: float) -> str:
    if abs(x) >= 100:
        return f"{x:,.0f}"
    return f"{x:.3f}"


def _pick_run(con: duckdb.DuckDBPyConnection, run_id: str | None, source: str) -> tuple[str, dict]:
    runs = run_configs(con)
    if run_id is None:
        if len(runs) != 1:
            raise InputError(source, "run_id", f"the store holds {len(runs)} runs; pick one of: "
                             f"{', '.join(runs) or 'none'}")
        run_id = next(iter(runs))
    if run_id not in runs:
        raise InputError(source, "run_id", f"unknown run {run_id!r}; runs: {', '.join(runs) or 'none'}")
    return run_id, runs[run_id]


def measure(con: duckdb.DuckDBPyConnection, run_id: str, metrics: list[str]) -> dict[str, float | None]:
    """Measure the named metrics of one run over an open store connection."""
    stats = sample_stats(con, run_id)
    data = RunData(stats, majority_votes(stats), con, run_id)
    return {name: METRICS[name](data) for name in metrics}



def _run_has_confidence(con: duckdb.DuckDBPyConnection, run_id: str) -> bool:
    from aimo.core.store.migrations import has_confidence

    return has_confidence(con) and has_confidence_rows(con, run_id)


def check_calibration(
    path: str | Path,
    run_id: str | None = None,
    profile: str | SynthProfile | None = None,
    *,
    confidence_only: bool = False,
) -> CalibrationReport:
    """Measure a run of the store at `path` against a profile's targets.

    The confidence targets (`CONFIDENCE_TARGETS`) are added when the run stores confidence;
    `confidence_only` checks just those (e.g. on a real recording with logprobs).

    Args:
        run_id: the run to check; None picks the only run.
        profile: a profile (name); None takes the run's `gen_config.profile`, else `r1-14b`.

    Raises:
        InputError: not a store, an ambiguous/unknown run, or an unknown profile.
    """
    from aimo.core.store import read_connection

    with read_connection(path) as con:
        run_id, config = _pick_run(con, run_id, str(path))
        if profile is None:
            profile = config.get("profile", DEFAULT_PROFILE)
        prof = get_profile(profile, source=str(path)) if isinstance(profile, str) else profile
        targets = () if confidence_only else prof.targets
        if confidence_only or _run_has_confidence(con, run_id):
            targets = (*targets, *CONFIDENCE_TARGETS)
        measured = measure(con, run_id, [t.metric for t in targets])
    rows = tuple(CalibrationRow(t, measured[t.metric]) for t in targets)
    return CalibrationReport(Path(path), run_id, prof.name, rows)


def main(argv: list[str] | None = None) -> int:
    """`python -m aimo.recorder.calibration STORE [--run RUN] [--profile NAME]`; exit 0 pass, 1 miss, 2 bad input."""
    parser = argparse.ArgumentParser(prog="python -m aimo.recorder.calibration", description=__doc__.split("\n")[0])
    parser.add_argument("store", type=Path)
    parser.add_argument("--run", default=None, help="run id (default: the only run)")
    parser.add_argument("--profile", default=None, help="profile (default: the run's own, else r1-14b)")
    parser.add_argument("--confidence-only", action="store_true",
                        help="check only the confidence targets (a real recording with logprobs)")
    args = parser.parse_args(argv)
    try:
        report = check_calibration(args.store, args.run, args.profile,
                                   confidence_only=args.confidence_only)
    except InputError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(report.render())
    return 0 if report.passed else 1


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
