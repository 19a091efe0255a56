"""The lmdeploy engine adapter (TurboMind or PyTorch backend): the GPU side of `Engine`.

Why an adapter: lmdeploy's `Pipeline.stream_infer` is a blocking iterator fed from lmdeploy's own
event-loop thread; the control loop is asyncio. A reader thread stamps every response with a
monotonic time as it arrives and hands batches of them to the caller's loop, so the loop is never
blocked and timestamps do not depend on how quickly the loop drains them.

Cancelling one sample goes through its lmdeploy session (`session.abort()`). lmdeploy ignores an
abort for a request that has not yet been admitted (more prompts than `max_batch`: it waits for a
request handle and `abort()` is then a no-op), so a cancel is re-issued at once when a cancelled
sample produces its first output, every `reissue_s` while it still produces output, and, while it
produces none, at intervals that double from `reissue_s` up to `MAX_REISSUE_S` until its stream
has ended.

lmdeploy falls back from TurboMind to PyTorch with only a log warning (TurboMind not built, model
not supported); `LmdeployEngine.backend` is the backend that actually runs, read from the built
pipeline, and `fell_back` says whether it differs from the one asked for.

Per-token logprobs (`logprobs=k`, 0 = off): on lmdeploy's PyTorch engine they come back only
when the engine is built with `PytorchEngineConfig(logprobs_mode='raw_logprobs')` *and* the request
asks `GenerationConfig(logprobs=k)` (seen on lmdeploy 0.18; `logprobs=k` alone returns None);
each response then carries one `{token_id: logprob}` dict per new token (log-softmax of the raw
logits: before temperature, penalties, top-p/min-p). TurboMind has no mode: it returns the log of
its *processed* distribution (after temperature, top-k/top-p/min-p filtering, renormalised over
the kept candidates), so with the seed's min_p 0.1 often a single candidate near 0; see
docs/gpu-notes.md. The dicts are passed through on `Chunk.logprobs`.

lmdeploy is imported inside this module's functions only, so `import solver` works without it.
"""

from __future__ import annotations

import asyncio
import collections
import concurrent.futures
import dataclasses
import logging
import threading
import time
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from dataclasses import dataclass
from types import ModuleType
from typing import Any, Literal

from aimo.core.errors import AimoError
from aimo.solver.engines.base import Chunk, FinishReason, PromptSpec, SamplingSettings
from aimo.core.traces import LogprobSetting

logger = logging.getLogger(__name__)

Backend = Literal["turbomind", "pytorch"]
BACKENDS: tuple[str, ...] = ("turbomind", "pytorch")
GPU_EXTRA_INSTALL = "pip install 'aimo-policy-lab[gpu]'"
DEFAULT_SESSION_LEN = 32768 + 8192 + 128
MAX_REISSUE_S = 1.0
PYTORCH_LOGPROBS_MODE = "raw_logprobs"  # log-softmax of the raw logits (DeepConf's definition)
TURBOMIND_LOGPROBS_MODE = "processed"  # TurboMind: after sampling filters, renormalised
_FINISH_REASONS = frozenset({"stop", "length", "abort", "error"})


class LmdeployUnavailableError(AimoError, ImportError):
    """lmdeploy (the `[gpu]` extra) is not installed, or does not import."""


def import_lmdeploy() -> ModuleType:
    """Import lmdeploy, or raise LmdeployUnavailableError naming the `[gpu]` extra to install."""
    try:
        import lmdeploy
    except ImportError as exc:
        raise LmdeployUnavailableError(
            "the lmdeploy engine needs lmdeploy, which is not installed here "
            f"({exc}); install the GPU extra: {GPU_EXTRA_INSTALL}"
        ) from exc
    return lmdeploy


@dataclass(frozen=True)
class LmdeployConfig:
    """How the pipeline is built (the seed's engine settings are the defaults).

    `tp=None` means every visible GPU; `model_format` ('awq' for AutoAWQ checkpoints) is given to
    TurboMind only, since the PyTorch engine reads the quantisation from config.json;
    `quant_policy` 8 is the int8 KV cache, 0 the 16-bit one; `logprobs` k > 0 asks for the top-k
    logprobs of every generated token (0: none, the default and the faster engine).
    """

    model_path: str
    backend: Backend = "turbomind"
    tp: int | None = None
    quant_policy: int = 8
    model_format: str | None = "awq"
    max_batch: int = 32
    session_len: int = DEFAULT_SESSION_LEN
    cache_max_entry_count: float = 0.95
    max_prefill_token_num: int = 8192
    enable_prefix_caching: bool = True
    log_level: str = "WARNING"
    logprobs: int = 0

    def __post_init__(self) -> None:
        if self.backend not in BACKENDS:
            raise ValueError(f"backend: must be one of {BACKENDS}, got {self.backend!r}")
        if self.tp is not None and self.tp < 1:
            raise ValueError(f"tp: must be >= 1 or None (all GPUs), got {self.tp}")
        if self.quant_policy not in (0, 4, 8):
            raise ValueError(f"quant_policy: must be 0, 4 or 8, got {self.quant_policy}")
        if self.max_batch < 1:
            raise ValueError(f"max_batch: must be >= 1, got {self.max_batch}")
        if not 0 <= self.logprobs <= 1024:
            raise ValueError(f"logprobs: must be 0 (off) .. 1024, got {self.logprobs}")
        if not 0.0 < self.cache_max_entry_count < 1.0:
            raise ValueError(
                f"cache_max_entry_count: must be in (0, 1), got {self.cache_max_entry_count}"
            )

    def logprob_setting(self, backend: str) -> LogprobSetting | None:
        """What the store's `runs.logprobs` says for this config on `backend` (None: off)."""
        if self.logprobs <= 0:
            return None
        mode = PYTORCH_LOGPROBS_MODE if backend == "pytorch" else TURBOMIND_LOGPROBS_MODE
        return LogprobSetting(top_k=self.logprobs, mode=mode, backend=backend)

    @property
    def quantization(self) -> str:
        """Short label for the trace store, e.g. 'awq-w4/kv8' or 'fp16/kv16'."""
        weights = "awq-w4" if self.model_format == "awq" else (self.model_format or "auto")
        kv = {0: "kv16", 4: "kv4", 8: "kv8"}[self.quant_policy]
        return f"{weights}/{kv}"


def visible_gpus() -> int:
    """Number of CUDA devices torch sees (1 when torch is missing or sees none)."""
    try:
        import torch
    except ImportError:
        return 1
    return max(1, int(torch.cuda.device_count()))


def backend_config(lmdeploy: ModuleType, cfg: LmdeployConfig, tp: int) -> Any:
    """The `TurbomindEngineConfig` or `PytorchEngineConfig` for `cfg`."""
    common: dict[str, Any] = {
        "tp": tp,
        "quant_policy": cfg.quant_policy,
        "max_batch_size": cfg.max_batch,
        "session_len": cfg.session_len,
        "cache_max_entry_count": cfg.cache_max_entry_count,
        "max_prefill_token_num": cfg.max_prefill_token_num,
        "enable_prefix_caching": cfg.enable_prefix_caching,
    }
    if cfg.backend == "turbomind":
        return lmdeploy.TurbomindEngineConfig(model_format=cfg.model_format, **common)
    if cfg.logprobs > 0:  # without it the PyTorch engine returns no logprobs at all
        common["logprobs_mode"] = PYTORCH_LOGPROBS_MODE
    return lmdeploy.PytorchEngineConfig(**common)


def actual_backend(pipe: Any) -> str:
    """The backend a built pipeline runs: its engine's `backend`, else its config's class."""
    engine = getattr(pipe, "async_engine", None)
    name = getattr(engine, "backend", None)
    if name in BACKENDS:
        return str(name)
    config = getattr(engine, "backend_config", None) or getattr(pipe, "backend_config", None)
    kind = type(config).__name__.lower()
    if "pytorch" in kind:
        return "pytorch"
    if "turbomind" in kind:
        return "turbomind"
    return "unknown"


def generation_config(
    lmdeploy: ModuleType,
    sampling: SamplingSettings,
    sample: int,
    overrides: Mapping[str, Any] | None = None,
    logprobs: int = 0,
) -> Any:
    """lmdeploy's GenerationConfig for one sample (do_sample on; a set seed is offset per sample
    so that samples of one question differ). top_k is left at lmdeploy's default, as the seed did.
    `overrides` are extra GenerationConfig fields (e.g. ignore_eos=True for fixed-length timing);
    `logprobs` k > 0 asks for the top-k logprobs of every token."""
    seed = None if sampling.seed is None else sampling.seed + sample
    fields: dict[str, Any] = {
        "max_new_tokens": sampling.max_new_tokens,
        "do_sample": True,
        "temperature": sampling.temperature,
        "top_p": sampling.top_p,
        "min_p": sampling.min_p,
        "repetition_penalty": sampling.repetition_penalty,
        "random_seed": seed,
    }
    if logprobs > 0:
        fields["logprobs"] = logprobs
    return lmdeploy.GenerationConfig(**{**fields, **(overrides or {})})


def chat_messages(spec: PromptSpec) -> list[dict[str, str]]:
    """The prompt as OpenAI-style chat messages (no system message when it is empty)."""
    messages = [{"role": "system", "content": spec.system}] if spec.system else []
    messages.append({"role": "user", "content": spec.user})
    return messages


def render_prompt(
    spec: PromptSpec, tokenizer: Any | None
) -> tuple[str | list[dict[str, str]], bool]:
    """What to give `stream_infer` for one prompt, and its `do_preprocess` flag.

    With a tokenizer that has a chat template, the text it renders (generation prompt added) and
    False; otherwise the chat messages and True, so lmdeploy applies its own template for the model.
    """
    messages = chat_messages(spec)
    if tokenizer is not None and getattr(tokenizer, "chat_template", None):
        text = tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
        return str(text), False
    return messages, True


def pipeline_tokenizer(pipe: Any) -> Any | None:
    """The Hugging Face tokenizer lmdeploy loaded for the model, if it can be reached."""
    wrapper = getattr(getattr(pipe, "async_engine", None), "tokenizer", None)
    hf = getattr(getattr(wrapper, "model", None), "model", None)
    return hf if hf is not None and hasattr(hf, "apply_chat_template") else None


@dataclass
class _SampleState:
    """Mutable bookkeeping of one sample of a running batch (owned by the caller's loop)."""

    sample: int
    session: Any
    prompt_tokens: int | None = None
    n_tokens: int = 0
    finished: bool = False
    cancel_at: float | None = None  # stream time of the first cancel request
    last_abort: float = -1.0  # stream time of the latest abort issued
    aborts: int = 0
    in_flight: concurrent.futures.Future[None] | None = None  # the abort call not yet returned


_END = object()


class LmdeployQuestionStream:
    """One question's batch on lmdeploy: chunks tagged with sample index, cumulative tokens, time.

    Iterate it once. `cancel` and `cancel_all` are safe to call while iterating (they are
    coroutines on the same loop). Times are seconds since submission on the monotonic clock,
    stamped by the reader thread when lmdeploy hands over each response.
    """

    def __init__(
        self,
        pipe: Any,
        specs: Sequence[PromptSpec],
        inputs: Sequence[str | list[dict[str, str]]],
        gen_configs: Sequence[Any],
        do_preprocess: bool,
        aborter: concurrent.futures.Executor,
        *,
        reissue_s: float = 0.05,
        logprobs: bool = False,
    ) -> None:
        self._pipe = pipe
        self._logprobs = logprobs
        self._specs = tuple(specs)
        self._inputs = list(inputs)
        self._gen_configs = list(gen_configs)
        self._do_preprocess = do_preprocess
        self._aborter = aborter
        self.reissue_s = reissue_s
        self._by_index: list[_SampleState] = []
        self._states: dict[int, _SampleState] = {}
        self._queue: collections.deque[tuple[float, Any]] = collections.deque()
        self._wake = asyncio.Event()
        self._wake_pending = False
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._t0 = 0.0
        self._iterated = False
        self._done = False
        self.reader_error: BaseException | None = None

    # ---------------------------------------------------------------- lifecycle

    def start(self) -> None:
        """Open one lmdeploy session per prompt, submit the batch and start the reader thread."""
        self._loop = asyncio.get_running_loop()
        sessions = [self._pipe.session() for _ in self._specs]
        for spec, session in zip(self._specs, sessions):
            state = _SampleState(spec.sample, session)
            self._by_index.append(state)
            self._states[spec.sample] = state
        self._t0 = time.monotonic()
        responses = self._pipe.stream_infer(
            self._inputs,
            sessions=sessions,
            gen_config=self._gen_configs,
            do_preprocess=self._do_preprocess,
        )
        self._thread = threading.Thread(
            target=self._read, args=(responses,), name="lmdeploy-reader", daemon=True
        )
        self._thread.start()

    def _read(self, responses: Any) -> None:
        """Reader thread: stamp each response, hand it to the caller's loop (batched wake-ups)."""
        try:
            for response in responses:
                self._push((time.monotonic() - self._t0, response))
        except BaseException as exc:  # noqa: BLE001 - surfaced to the consumer
            self.reader_error = exc
        finally:
            self._push((time.monotonic() - self._t0, _END))

    def _push(self, item: tuple[float, Any]) -> None:
        self._queue.append(item)
        if not self._wake_pending:
            self._wake_pending = True
            assert self._loop is not None
            try:
                self._loop.call_soon_threadsafe(self._wake.set)
            except RuntimeError:  # the caller's loop is closed: nobody is listening any more
                pass

    @property
    def finished(self) -> bool:
        """True once lmdeploy's stream has ended (every sample finished or aborted)."""
        return self._done or (self._thread is not None and not self._thread.is_alive())

    async def shutdown(self) -> None:
        """Cancel every sample and wait until lmdeploy's stream has ended.

        For a batch nobody iterates any more (call it only then): drains the remaining responses
        itself and keeps re-issuing aborts (queued requests ignore the first ones) until the
        stream ends.
        """
        for state in self._by_index:
            if not state.finished and state.cancel_at is None:
                state.cancel_at = self.now()
        while not self._done:
            await self._wait()
            self._wake.clear()
            self._wake_pending = False
            while self._queue:
                t, response = self._queue.popleft()
                if response is _END:
                    self._done = True
                    break
                self._to_chunk(t, response)
            self._reissue_due()
        if self._thread is not None:
            await asyncio.to_thread(self._thread.join)

    # ---------------------------------------------------------------- QuestionStream

    def now(self) -> float:
        return time.monotonic() - self._t0

    def prompt_tokens(self, sample: int) -> int | None:
        """Prompt length of `sample` in tokens, once lmdeploy reported it (None before)."""
        return self._states[sample].prompt_tokens

    def __aiter__(self) -> AsyncIterator[Chunk]:
        if self._iterated:
            raise RuntimeError("an lmdeploy question stream can be iterated only once")
        self._iterated = True
        return self._chunks()

    async def _chunks(self) -> AsyncIterator[Chunk]:
        while True:
            await self._wait()
            self._wake.clear()
            self._wake_pending = False
            while self._queue:
                t, response = self._queue.popleft()
                if response is _END:
                    self._done = True
                    for chunk in self._close_unfinished(t):
                        yield chunk
                    if self.reader_error is not None:
                        raise RuntimeError("lmdeploy stream failed") from self.reader_error
                    return
                converted = self._to_chunk(t, response)
                if converted is not None:
                    yield converted
            self._reissue_due()

    async def _wait(self) -> None:
        """Wait for responses; while cancels are outstanding, wake when a re-issue is due."""
        if self._queue:
            return
        waiting = [s for s in self._by_index if s.cancel_at is not None and not s.finished]
        if not waiting:
            await self._wake.wait()
            return
        now = self.now()
        due = min(self._next_abort_at(s) for s in waiting)
        try:
            await asyncio.wait_for(self._wake.wait(), timeout=max(due - now, 0.001))
        except asyncio.TimeoutError:
            pass

    def _to_chunk(self, t: float, response: Any) -> Chunk | None:
        index = int(getattr(response, "index", 0))
        if not 0 <= index < len(self._by_index):
            logger.warning("lmdeploy response for unknown prompt index %s ignored", index)
            return None
        state = self._by_index[index]
        if state.finished:
            return None
        first = state.prompt_tokens is None
        if first:
            state.prompt_tokens = int(getattr(response, "input_token_len", 0) or 0)
        state.n_tokens = max(state.n_tokens, int(response.generate_token_len or 0))
        reason = response.finish_reason
        finish: FinishReason | None = None
        if reason is not None:
            state.finished = True
            finish = reason if reason in _FINISH_REASONS else "error"
            if state.cancel_at is not None:
                finish = "abort"  # the contract: a cancelled sample ends with 'abort'
            if finish == "error":
                logger.warning(
                    "sample %s ended with an error: %s %s",
                    state.sample,
                    getattr(response, "error_code", None),
                    getattr(response, "error_message", None),
                )
        elif state.cancel_at is not None and (first or t - state.last_abort >= self.reissue_s):
            # output after a cancel: it was queued (first output: re-issue at once, even behind an
            # abort still in flight, which lmdeploy may be ignoring as a no-op), or it raced
            self._issue_abort(state, t, force=first)
        steps = getattr(response, "logprobs", None) if self._logprobs else None
        return Chunk(state.sample, response.text or "", state.n_tokens, t, finish, steps)

    def _close_unfinished(self, t: float) -> list[Chunk]:
        """End-of-stream without a final response (should not happen): close those samples."""
        out = []
        for state in self._by_index:
            if not state.finished:
                state.finished = True
                reason: FinishReason = "abort" if state.cancel_at is not None else "error"
                out.append(Chunk(state.sample, "", state.n_tokens, t, reason))
        return out

    def _next_abort_at(self, state: _SampleState) -> float:
        """When a silent cancelled sample gets its next abort: intervals double up to the cap."""
        # the exponent is capped: a hung engine can see thousands of aborts (2**1024 overflows)
        backoff = self.reissue_s * 2.0 ** min(max(state.aborts - 1, 0), 60)
        return state.last_abort + min(backoff, MAX_REISSUE_S)

    def _reissue_due(self) -> None:
        """Re-issue aborts of cancelled samples that show no output (backing off while queued)."""
        t = self.now()
        for state in self._by_index:
            if (
                state.cancel_at is not None
                and not state.finished
                and t >= self._next_abort_at(state)
            ):
                self._issue_abort(state, t)

    def _issue_abort(self, state: _SampleState, t: float, *, force: bool = False) -> None:
        """Hand `session.abort()` to an abort thread, unless the sample's last one has not
        returned yet (a re-issue would only queue behind it and hold a thread) and not `force`d
        (the sample's first output: its earlier aborts met no request)."""
        state.last_abort = t  # also when skipped: the back-off goes on (no 1-ms wake-ups)
        if not force and state.in_flight is not None and not state.in_flight.done():
            return
        state.aborts += 1
        state.in_flight = self._aborter.submit(_abort_session, state.session, state.sample)

    async def cancel(self, sample: int) -> None:
        """Abort one sample; its stream ends with finish_reason 'abort'. Idempotent.

        Returns once the abort is issued, not once lmdeploy has handled it: `session.abort()`
        blocks its thread for a round trip through lmdeploy's engine loop (10-30 ms on the H100
        runs, more under load), and a control loop that waited for each would decide its next
        stop that much later while the batch decodes on (docs/hil.md, "Sample stops that held the
        loop"). The stream still ends the sample with 'abort'; aborts lmdeploy ignored are
        re-issued as before.

        Raises:
            KeyError: `sample` is not part of this batch.
        """
        state = self._states[sample]
        if state.finished:
            return
        t = self.now()
        if state.cancel_at is None:
            state.cancel_at = t
        self._issue_abort(state, t)

    async def cancel_all(self) -> None:
        await asyncio.gather(*(self.cancel(s.sample) for s in self._by_index if not s.finished))

    def abort_counts(self) -> dict[int, int]:
        """How many aborts were issued per cancelled sample (for logs and tests)."""
        return {s.sample: s.aborts for s in self._by_index if s.aborts}


def _abort_session(session: Any, sample: int) -> None:
    """Ask lmdeploy to stop one session; failures are logged, the re-issue loop retries."""
    try:
        session.abort()
    except Exception as exc:  # noqa: BLE001 - e.g. the session is not known to the engine yet
        logger.debug("abort of sample %s failed (will retry while it runs): %r", sample, exc)


class LmdeployEngine:
    """`Engine` over an lmdeploy pipeline (one question's batch at a time).

    Building it loads the model and warms the engine up (tens of seconds); `startup_s` records how
    long that took. Build it under an `if __name__ == "__main__":` guard: lmdeploy starts worker
    processes.

    Raises (constructor):
        LmdeployUnavailableError: lmdeploy is not installed (the message names the `[gpu]` extra).
    """

    name = "lmdeploy"

    def __init__(
        self,
        model_path: str,
        backend: Backend = "turbomind",
        *,
        tp: int | None = None,
        quant_policy: int = 8,
        model_format: str | None = "awq",
        max_batch: int = 32,
        session_len: int = DEFAULT_SESSION_LEN,
        cache_max_entry_count: float = 0.95,
        max_prefill_token_num: int = 8192,
        enable_prefix_caching: bool = True,
        log_level: str = "WARNING",
        tokenizer: Any | None = None,
        use_chat_template: bool = True,
        generation_overrides: Mapping[str, Any] | None = None,
        reissue_s: float = 0.05,
        logprobs: int = 0,
    ) -> None:
        self.config = LmdeployConfig(
            model_path=str(model_path),
            backend=backend,
            tp=tp,
            quant_policy=quant_policy,
            model_format=model_format,
            max_batch=max_batch,
            session_len=session_len,
            cache_max_entry_count=cache_max_entry_count,
            max_prefill_token_num=max_prefill_token_num,
            enable_prefix_caching=enable_prefix_caching,
            log_level=log_level,
            logprobs=logprobs,
        )
        self._lmdeploy = import_lmdeploy()
        self.tp = tp if tp is not None else visible_gpus()
        self.requested_backend: str = backend
        self.reissue_s = reissue_s
        # extra GenerationConfig fields for every request (e.g. ignore_eos for timing runs);
        # may be reassigned between questions
        self.generation_overrides: dict[str, Any] = dict(generation_overrides or {})
        started = time.monotonic()
        self._pipe = self._build_pipeline()
        self.startup_s = time.monotonic() - started
        self.backend: str = actual_backend(self._pipe)
        self.fell_back = self.backend != backend
        if self.fell_back:
            logger.warning(
                "lmdeploy was asked for the %s backend but runs %s (its fallback); "
                "timings are those of %s",
                backend,
                self.backend,
                self.backend,
            )
            if self.config.logprobs > 0 and self.backend == "pytorch":
                logger.warning(
                    "logprobs were asked for, but the PyTorch fallback engine was built without "
                    "logprobs_mode and returns none: this run records no confidence"
                )
        self._tokenizer = None
        if use_chat_template:
            self._tokenizer = tokenizer if tokenizer is not None else pipeline_tokenizer(self._pipe)
        self._aborter = concurrent.futures.ThreadPoolExecutor(
            4, thread_name_prefix="lmdeploy-abort"
        )
        self._current: LmdeployQuestionStream | None = None
        self._closed = False
        self.restarts = 0

    def _build_pipeline(self) -> Any:
        return self._lmdeploy.pipeline(
            self.config.model_path,
            backend_config=backend_config(self._lmdeploy, self.config, self.tp),
            log_level=self.config.log_level,
        )

    async def restart(self, close_timeout_s: float = 30.0) -> None:
        """After a hang: abandon the current batch, close the pipeline (waiting at most
        `close_timeout_s`: a stuck one is left to its thread) and build a new one (the model is
        loaded again; `restarts` counts them). See `Engine.restart`."""
        self._current = None
        old, old_aborter = self._pipe, self._aborter
        old_aborter.shutdown(wait=False)
        close: Callable[[], Any] | None = getattr(old, "close", None)
        if close is not None:
            closer = threading.Thread(target=close, name="lmdeploy-close", daemon=True)
            closer.start()
            await asyncio.to_thread(closer.join, close_timeout_s)
        self._aborter = concurrent.futures.ThreadPoolExecutor(4, thread_name_prefix="lmdeploy-abort")
        self._pipe = await asyncio.to_thread(self._build_pipeline)
        self.backend = actual_backend(self._pipe)
        self.restarts += 1
        self._closed = False
        logger.warning("lmdeploy pipeline rebuilt after a hang (restart %d)", self.restarts)

    @property
    def quantization(self) -> str:
        return self.config.quantization

    @property
    def logprob_setting(self) -> LogprobSetting | None:
        """The run's `RunInfo.logprobs`: k and the mode of the backend that actually runs.

        None when off, and when TurboMind fell back to PyTorch: that engine was built from a
        TurbomindEngineConfig, without `logprobs_mode`, and returns no logprobs.
        """
        if self.fell_back and self.backend == "pytorch":
            return None
        return self.config.logprob_setting(self.backend)

    @property
    def hardware(self) -> str | None:
        """E.g. '4xNVIDIA L4' (the GPUs the pipeline spans), None when torch cannot tell."""
        try:
            import torch

            return f"{self.tp}x{torch.cuda.get_device_name(0)}"
        except Exception:  # noqa: BLE001 - no torch or no CUDA device: unknown
            return None

    def run_config(self) -> dict[str, Any]:
        """What a trace store's `runs.gen_config` should say about the engine."""
        return {
            **{k: v for k, v in dataclasses.asdict(self.config).items() if k != "log_level"},
            "tp": self.tp,
            "requested_backend": self.requested_backend,
            "backend": self.backend,
            "lmdeploy_version": getattr(self._lmdeploy, "__version__", None),
            "startup_s": round(self.startup_s, 3),
        }

    def render(self, spec: PromptSpec) -> tuple[str | list[dict[str, str]], bool]:
        """The input `stream_infer` gets for `spec` and its `do_preprocess` flag."""
        return render_prompt(spec, self._tokenizer)

    async def start_question(
        self,
        question_id: str,
        question: str,
        prompts: Sequence[PromptSpec],
        sampling: SamplingSettings,
        *,
        sample_overrides: Mapping[int, Mapping[str, Any]] | None = None,
    ) -> LmdeployQuestionStream:
        """Submit every prompt of one question; a batch still running is cancelled first.

        `sample_overrides` adds GenerationConfig fields per sample index (e.g. the hardware-in-
        the-loop engine's per-sample `max_new_tokens`), over the engine-wide overrides."""
        if self._closed:
            raise RuntimeError("LmdeployEngine is closed")
        if not prompts:
            raise ValueError(f"question {question_id!r}: no prompts")
        samples = [p.sample for p in prompts]
        if len(set(samples)) != len(samples):
            raise ValueError(f"question {question_id!r}: duplicate sample indices {samples}")
        await self._finish_current()
        rendered: dict[tuple[str, str], tuple[str | list[dict[str, str]], bool]] = {}
        inputs: list[str | list[dict[str, str]]] = []
        flags = set()
        for spec in prompts:
            key = (spec.system, spec.user)
            if key not in rendered:
                rendered[key] = self.render(spec)
            value, flag = rendered[key]
            inputs.append(value)
            flags.add(flag)
        gen_configs = [
            generation_config(
                self._lmdeploy,
                sampling,
                p.sample,
                {**self.generation_overrides, **(sample_overrides or {}).get(p.sample, {})},
                logprobs=self.config.logprobs,
            )
            for p in prompts
        ]
        stream = LmdeployQuestionStream(
            self._pipe,
            prompts,
            inputs,
            gen_configs,
            flags.pop() if len(flags) == 1 else True,
            self._aborter,
            reissue_s=self.reissue_s,
            logprobs=self.config.logprobs > 0,
        )
        stream.start()
        self._current = stream
        return stream

    async def _finish_current(self) -> None:
        stream, self._current = self._current, None
        if stream is not None and not stream._done:
            await stream.shutdown()

    async def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        await self._finish_current()
        self._aborter.shutdown(wait=True)
        close: Callable[[], Any] | None = getattr(self._pipe, "close", None)
        if close is not None:
            await asyncio.to_thread(close)
