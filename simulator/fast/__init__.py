"""Fast path of the simulator: a numba-compiled replay proven identical to `simulator.replay`.

`FastSimulator(problems, profile)` encodes a trace store once; `competition(policy, ...)` and
`bootstrap(policy, ...)` then run in the compiled kernel. Layouts of the encoded arrays are
documented in `encode.py`; the kernel in `kernel.py` transcribes the reference event loop.
"""

from __future__ import annotations

from aimo.simulator.fast.api import DrawSpec, FastCompetition, FastSimulator, summarize_arrays

__all__ = ["DrawSpec", "FastCompetition", "FastSimulator", "summarize_arrays"]
