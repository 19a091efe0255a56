"""A test double of the slice of lmdeploy 0.18 the engine adapter uses (`sys.modules['lmdeploy']`).

Why a double: real lmdeploy needs a GPU. This one mimics the behaviours the adapter depends on,
as read in lmdeploy 0.18's `pipeline.py` and `serve/managers/session_manager.py`:
- `stream_infer(prompts, sessions=..., gen_config=[...], do_preprocess=...)` returns one blocking
  iterator of `Response`s for the whole batch, produced on another thread; `Response.text` is the
  delta, `generate_token_len` cumulative, `index` the prompt's position, the last response of a
  prompt has `finish_reason` set ('stop' | 'length' | 'abort');
- at most `max_batch_size` requests run; the others wait for a request handle, and
  `session.abort()` on a waiting session is a no-op (its handle is None);
- with a `TurbomindEngineConfig` and TurboMind not available, the pipeline silently runs the
  PyTorch engine (`pipe.async_engine.backend == 'pytorch'`);
- logprobs: a request with `GenerationConfig(logprobs=k)` gets `Response.logprobs`, one
  `{token_id: logprob}` dict per new token, on the PyTorch engine only when it was built with
  `PytorchEngineConfig(logprobs_mode=...)` (else None, as lmdeploy 0.18 does), on TurboMind
  always. PyTorch's dicts put the sampled token first, then the top k (k + 1 entries when the
  sampled token is not among them); the values come from `module.logprob_script`.
"""

from __future__ import annotations

import contextlib
import importlib.machinery
import queue
import threading
import time
import types
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

Script = Callable[[int, Any], Sequence[str]]
# (prompt index, token position from 0, k) -> that token's {token_id: logprob}
LogprobScript = Callable[[int, int, int], dict]


class _Words(Sequence[str]):
    """Endless token texts 'w0 ', 'w1 ', ... (cut by max_new_tokens)."""

    def __len__(self) -> int:
        return 10**9

    def __getitem__(self, k: Any) -> Any:
        return f"w{k} "


def default_script(index: int, prompt: Any) -> Sequence[str]:
    return _Words()


def default_logprob_script(index: int, pos: int, k: int) -> dict:
    """Sampled token 10_000 + pos first, then the top k: candidates 0..k-1 at −(j + 1)·scale.
    The sampled token is among them (as candidate 0's value) on even positions and below them on
    odd ones; `scale` varies with prompt and position so that confidence varies."""
    scale = 0.5 + 0.25 * ((index + pos) % 4)
    top = {j: -(j + 1) * scale for j in range(k)}
    chosen = 10_000 + pos
    if pos % 2 == 0:
        value = top.pop(0)
        return {chosen: value, **top}
    return {chosen: -(k + 2) * scale, **top}


@dataclass
class GenerationConfig:
    max_new_tokens: int = 512
    do_sample: bool = False
    top_p: float = 1.0
    top_k: int = 50
    min_p: float = 0.0
    temperature: float = 0.8
    repetition_penalty: float = 1.0
    random_seed: int | None = None
    ignore_eos: bool = False
    logprobs: int | None = None


class _EngineConfig:
    def __init__(self, **kwargs: Any) -> None:
        self.kwargs = kwargs
        for k, v in kwargs.items():
            setattr(self, k, v)


class TurbomindEngineConfig(_EngineConfig):
    pass


class PytorchEngineConfig(_EngineConfig):
    pass


@dataclass
class Response:
    text: str
    generate_token_len: int
    input_token_len: int
    finish_reason: str | None = None
    index: int = 0
    logprobs: list | None = None


@dataclass
class FakeSession:
    session_id: int
    handle: bool = False  # admitted (running)
    aborted: bool = False
    abort_calls: int = 0
    noop_aborts: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)
    gate: threading.Event | None = None  # abort() returns only once set (lmdeploy's round trip)

    def abort(self) -> None:
        if self.gate is not None:
            self.gate.wait()
        with self.lock:
            self.abort_calls += 1
            if self.handle:
                self.aborted = True
            else:
                self.noop_aborts += 1  # as lmdeploy: no request handle yet, nothing to cancel


class FakeTokenizer:
    """Stands in for the HF tokenizer lmdeploy loads (`pipe.async_engine.tokenizer.model.model`)."""

    chat_template = (
        "{% for m in messages %}<|{{ m.role }}|>{{ m.content }}{% endfor %}<|assistant|>"
    )

    def apply_chat_template(
        self, messages: list[dict], tokenize: bool = False, add_generation_prompt: bool = False
    ) -> str:
        body = "".join(f"<|{m['role']}|>{m['content']}" for m in messages)
        return body + ("<|assistant|>" if add_generation_prompt else "")


class FakePipeline:
    def __init__(
        self, module: types.ModuleType, model_path: str, backend_config: Any, log_level: str
    ) -> None:
        self.module = module
        self.model_path = model_path
        self.backend_config = backend_config
        self.log_level = log_level
        backend = "pytorch" if isinstance(backend_config, PytorchEngineConfig) else "turbomind"
        if backend == "turbomind" and not module.turbomind_available:
            backend = "pytorch"  # lmdeploy's silent fallback (a log warning only)
        tokenizer = types.SimpleNamespace(model=types.SimpleNamespace(model=module.tokenizer))
        self.async_engine = types.SimpleNamespace(
            backend=backend, backend_config=backend_config, tokenizer=tokenizer
        )
        self.max_batch = int(getattr(backend_config, "max_batch_size", 32) or 32)
        self.sessions: list[FakeSession] = []
        self.calls: list[dict[str, Any]] = []
        self.closed = False
        self._ids = 0

    def session(self) -> FakeSession:
        self._ids += 1
        s = FakeSession(self._ids, gate=getattr(self.module, "abort_gate", None))
        self.sessions.append(s)
        return s

    def stream_infer(
        self,
        prompts: list[Any],
        sessions: list[FakeSession],
        gen_config: list[GenerationConfig],
        do_preprocess: bool = True,
        **kwargs: Any,
    ) -> Any:
        self.calls.append(
            dict(
                prompts=prompts,
                sessions=sessions,
                gen_config=gen_config,
                do_preprocess=do_preprocess,
            )
        )
        out: queue.Queue = queue.Queue()
        worker = threading.Thread(
            target=self._run, args=(prompts, sessions, gen_config, out), daemon=True
        )
        worker.start()
        return iter(out.get, None)

    def _run(
        self,
        prompts: list[Any],
        sessions: list[FakeSession],
        configs: list[GenerationConfig],
        out: queue.Queue,
    ) -> None:
        m = self.module
        scripts = [m.script(i, p) for i, p in enumerate(prompts)]
        waiting = list(range(len(prompts)))
        running: list[int] = []
        done_tokens = [0] * len(prompts)
        prompt_len = [len(str(p)) for p in prompts]
        raw = getattr(self.backend_config, "logprobs_mode", None) is not None
        gives = self.async_engine.backend == "turbomind" or raw
        ks = [int(c.logprobs or 0) if gives else 0 for c in configs]
        while waiting or running:
            while waiting and len(running) < self.max_batch:
                i = waiting.pop(0)
                with sessions[i].lock:
                    sessions[i].handle = True
                running.append(i)
            time.sleep(m.step_s)
            for i in list(running):
                s = sessions[i]
                with s.lock:
                    aborted = s.aborted
                n = done_tokens[i]
                if aborted:
                    reason, text = "abort", ""
                elif n >= len(scripts[i]) and not configs[i].ignore_eos:
                    reason, text = "stop", ""
                else:  # with ignore_eos, decoding goes on past the script's end (its EOS)
                    text = scripts[i][n] if n < len(scripts[i]) else f"w{n} "
                    done_tokens[i] = n = n + 1
                    steps = [m.logprob_script(i, n - 1, ks[i])] if ks[i] else None
                    reason = "length" if n >= configs[i].max_new_tokens else None
                    if reason is None:
                        out.put(Response(text, n, prompt_len[i], None, i, steps))
                        continue
                    out.put(Response(text, n, prompt_len[i], reason, i, steps))
                    running.remove(i)
                    with s.lock:
                        s.handle = False
                    continue
                out.put(Response(text, done_tokens[i], prompt_len[i], reason, i))
                running.remove(i)
                with s.lock:
                    s.handle = False
        out.put(None)

    def close(self) -> None:
        self.closed = True


def make_fake_lmdeploy(
    *,
    turbomind_available: bool = True,
    script: Script = default_script,
    step_s: float = 0.001,
    tokenizer: Any | None = None,
    logprob_script: LogprobScript = default_logprob_script,
) -> types.ModuleType:
    """A fresh fake `lmdeploy` module; `module.built` lists the pipelines it made."""
    m = types.ModuleType("lmdeploy")
    m.__spec__ = importlib.machinery.ModuleSpec(
        "lmdeploy", None
    )  # so importlib.util.find_spec sees it
    m.__version__ = "0.18.0-fake"
    m.turbomind_available = turbomind_available
    m.script = script
    m.step_s = step_s
    m.tokenizer = tokenizer
    m.logprob_script = logprob_script
    m.built = []
    m.GenerationConfig = GenerationConfig
    m.TurbomindEngineConfig = TurbomindEngineConfig
    m.PytorchEngineConfig = PytorchEngineConfig

    def pipeline(
        model_path: str, backend_config: Any = None, log_level: str = "WARNING", **kw: Any
    ) -> FakePipeline:
        pipe = FakePipeline(m, model_path, backend_config, log_level)
        m.built.append(pipe)
        return pipe

    m.pipeline = pipeline
    return m


@contextlib.contextmanager
def installed_fake_lmdeploy(step_s: float = 0.002, **options: Any) -> Iterator[types.ModuleType]:
    """Install the double (a fixed `step_s` per decode step, no TurboMind; `options` go to
    `make_fake_lmdeploy`, e.g. `script`, `tokenizer`) as `lmdeploy` for the block; the previous
    module (or none) is put back after. For tests and the device scripts' `--fake` CPU dry runs
    (product code never installs it)."""
    import sys

    missing = object()
    previous = sys.modules.get("lmdeploy", missing)
    module = make_fake_lmdeploy(turbomind_available=False, step_s=step_s, **options)
    sys.modules["lmdeploy"] = module
    try:
        yield module
    finally:
        if previous is missing:
            sys.modules.pop("lmdeploy", None)
        else:
            sys.modules["lmdeploy"] = previous  # type: ignore[assignment]
