"""`python -m aimo.core.policy`: rewrite docs/policy.md's rule sections from the rule registries
(question stop: core/policy/rules.py; sample stop: core/policy/sample_rules.py);
tests/solver/test_rules.py and tests/solver/test_sample_rules.py fail while they are stale."""

from __future__ import annotations

from pathlib import Path

from aimo.core.policy.rules import write_docs
from aimo.core.policy.sample_rules import with_sample_rules_markdown

DOCS = Path(__file__).resolve().parents[2] / "docs" / "policy.md"

if __name__ == "__main__":
    changed = write_docs(DOCS)
    text = DOCS.read_text(encoding="utf-8")
    new = with_sample_rules_markdown(text)
    if new != text:
        DOCS.write_text(new, encoding="utf-8")
    print(f"{DOCS}: {'rewritten' if changed or new != text else 'up to date'}")
