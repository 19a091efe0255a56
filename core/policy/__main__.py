"""`python -m aimo.core.policy`: rewrite docs/policy.md's question-stop rule section from the rule
registry (core/policy/rules.py); tests/solver/test_rules.py fails while it is stale."""

from __future__ import annotations

from pathlib import Path

from aimo.core.policy.rules import write_docs

DOCS = Path(__file__).resolve().parents[2] / "docs" / "policy.md"

if __name__ == "__main__":
    print(f"{DOCS}: {'rewritten' if write_docs(DOCS) else 'up to date'}")
