"""Bundled data: problem sets, hardware profiles, policy presets and demo traces."""

from __future__ import annotations

from pathlib import Path

DATA_DIR = Path(__file__).resolve().parent
POLICIES_DIR = DATA_DIR / "policies"
HARDWARE_DIR = DATA_DIR / "hardware"
PROBLEMS_DIR = DATA_DIR / "problems"
TRACES_DIR = DATA_DIR / "traces"

__all__ = ["DATA_DIR", "POLICIES_DIR", "HARDWARE_DIR", "PROBLEMS_DIR", "TRACES_DIR"]
