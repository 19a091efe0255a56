"""Live solver: policy (decisions), answer extraction, sandboxed code, engines, trace store."""
