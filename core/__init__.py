"""The neutral core: policy language, trace and result types, the store, the time model, draws,
errors and the shared `AIMO_*` settings.

Every other part imports it; it imports nothing of theirs (tests/test_architecture.py; the
layers are drawn in docs/architecture.md).
"""
