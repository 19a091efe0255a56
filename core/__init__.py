"""The neutral core: policy language, trace and result types, the store, the time model, draws, errors.

Every other part imports it; it imports nothing of theirs (tests/test_architecture.py).
"""
