"""Which tests are `slow`, in one place: `make test-fast` (`-m "not (slow or ...)"`) leaves them
out, `make test` runs them. A test is slow when it runs a real part (a sandboxed interpreter,
a subprocess, a streamlit app, a numba compile, torch, an optuna study, hypothesis over many
examples) and takes seconds; a module whose every test does is listed whole, otherwise the test.
Listed here rather than in each file, so the list is reviewed as one (and stays out of the files
other changes edit)."""

from __future__ import annotations

import pytest

SLOW: dict[str, str] = {
    # whole modules
    "tests/aimo/test_cli_fuzz.py": "hypothesis over command lines, each a CLI run",
    "tests/aimo/test_commands.py": "the demo and tune end to end",
    "tests/aimo/test_json_output.py": "solve through subprocesses",
    "tests/aimo/test_lean_imports.py": "fresh interpreters",
    "tests/aimo/test_runs_cmd.py": "a live solve killed and resumed",
    "tests/dashboard/test_launch.py": "starts streamlit servers",
    "tests/dashboard/test_pages.py": "streamlit AppTest renders every page",
    "tests/dashboard/test_profile_preselect.py": "streamlit AppTest pages",
    "tests/recorder/test_importer_fuzz.py": "hypothesis over malformed files",
    "tests/recorder/test_olympiad_model.py": "torch training",
    "tests/recorder/test_record.py": "sandboxed code runs while recording",
    "tests/recorder/test_resume.py": "a recording subprocess killed mid-run",
    "tests/recorder/test_shards.py": "recorder subprocesses",
    "tests/scripts/test_device_hil.py": "the whole HIL driver on the lmdeploy double",
    "tests/simulator/test_aimo3_cli.py": "replicated competitions through the CLI",
    "tests/simulator/test_fast_path.py": "numba compiles, compared with the reference replay",
    "tests/simulator/test_validate.py": "hil runs on the lmdeploy double",
    "tests/solver/test_hil.py": "hil runs on the lmdeploy double with a sandbox pool",
    "tests/solver/test_policy_fuzz.py": "hypothesis over policies",
    "tests/solver/test_sandbox.py": "real sandboxes",
    "tests/solver/test_sandbox_attacks.py": "real sandboxes",
    "tests/store/test_spool.py": "writer subprocesses killed and locked out",
    "tests/test_bundle.py": "builds and installs the bundle",
    "tests/test_fidelity.py": "the live solver against the simulator, one run on the wall clock",
    "tests/tuner/test_tpe.py": "optuna studies",
    "tests/tuner/test_tune.py": "optuna studies, worker processes",
    "tests/test_gpu_suite.py": "the GPU suite in a subprocess",
    # single tests
    "tests/dashboard/test_charts.py::test_importing_charts_and_the_package_does_not_import_streamlit":
        "a fresh interpreter",
    "tests/dashboard/test_charts.py::test_short_labels_and_tidy_optuna_titles": "optuna study",
    "tests/dashboard/test_data.py::test_runs_frame_tells_states_apart_and_live_score_comes_from_the_store":
        "a live solve recorded",
    "tests/recorder/test_importer.py::test_parser_never_crashes_and_accepts_or_names_a_field":
        "hypothesis",
    "tests/simulator/test_livecheck.py::test_committed_loop_report_is_what_the_bundled_data_gives":
        "replays the bundled stores",
    "tests/solver/test_extraction.py::test_robust_streaming_equals_batch_for_any_chunking":
        "hypothesis",
    "tests/solver/test_extraction.py::test_exact_streaming_equals_batch_for_any_chunking":
        "hypothesis",
    "tests/solver/test_extraction.py::test_streaming_equals_batch_exhaustively_on_small_texts":
        "every text over small alphabets",
    "tests/solver/test_loop.py::test_the_live_solver_imports_neither_simulator_nor_recorder":
        "a fresh interpreter",
    "tests/solver/test_loop.py::test_code_runs_without_blocking_the_stream": "sandboxed code runs",
    "tests/store/test_store.py::test_writer_and_reader_processes_run_concurrently":
        "writer and reader processes",
    "tests/store/test_store.py::test_killed_writer_resumes_without_duplicates": "a killed writer",
    "tests/store/test_store.py::test_small_tables_are_compacted_without_changing_what_loads":
        "compacts a store",
    "tests/store/test_store.py::test_lock_timeout_raises_store_busy_naming_the_file":
        "waits out a lock held by another process",
    "tests/store/test_store.py::test_reader_waits_for_a_writer_lock_then_reads":
        "waits out a lock held by another process",
    "tests/recorder/test_profiling.py::test_measure_fake_end_to_end_writes_a_loadable_profile":
        "a measured grid on the lmdeploy double",
    "tests/recorder/test_summary.py::test_synthetic_store_summary_matches_an_independent_count":
        "a full-size synthetic store",
    "tests/recorder/test_synth.py::test_default_store_meets_every_calibration_target":
        "a full-size synthetic store",
    "tests/recorder/test_synth.py::test_default_store_is_one_complete_synthetic_run":
        "a full-size synthetic store",
    "tests/recorder/test_synth.py::test_default_store_has_no_confidence":
        "a full-size synthetic store",
    "tests/tuner/test_space.py::test_every_suggested_point_builds_a_valid_policy":
        "optuna samplers over the whole space",
    "tests/recorder/test_synth.py::test_other_profiles_meet_their_own_targets": "full-size stores",
    "tests/recorder/test_synth.py::test_long_reasoning_store_with_confidence_meets_every_target":
        "a full-size store with confidences",
    "tests/recorder/test_synth.py::test_same_seed_gives_identical_stores": "two stores compared",
    "tests/recorder/test_synth.py::test_calibration_cli_exit_codes": "calibration CLI runs",
    "tests/dashboard/test_data.py::test_fast_competition_matches_the_reference":
        "the first use of the fast path compiles it (numba, ~40 s after a kernel change)",
    "tests/test_fidelity_confidence.py::test_live_loop_makes_the_simulators_confidence_decisions":
        "the live solver against the simulator over a synthetic store, 8 cases",
    "tests/scripts/test_typecheck.py::test_wrong_argument_type_across_modules_is_reported":
        "mypy in a subprocess",
}


def _slow_reason(nodeid: str) -> str | None:
    for key, reason in SLOW.items():
        if nodeid == key or nodeid.startswith(key + "::") or (
                "::" in key and nodeid.startswith(key + "[")):
            return reason
    return None


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    for item in items:
        if _slow_reason(item.nodeid) is not None:
            item.add_marker(pytest.mark.slow)
