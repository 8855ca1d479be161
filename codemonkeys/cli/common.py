"""What every command shares: the console, logging, the effective config built from typed
option values, the job entry (signals + prompt templates) and the error report."""

from __future__ import annotations

import logging
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.markup import escape

from codemonkeys.config import Config
from codemonkeys.config_loading import load_config
from codemonkeys.errors import CodemonkeysError, UsageError
from codemonkeys.interrupts import JobSignals

console = Console(stderr=True)
"""Messages, progress and errors go to stderr; stdout carries only machine-readable output."""


class OneLineFormatter(logging.Formatter):
    """``LEVEL name: message`` on one line (a traceback or a multi-line message joined
    with " | "), for logs that are read line by line (quiet mode, CI)."""

    def format(self, record: logging.LogRecord) -> str:
        text = super().format(record)
        return " | ".join(line.strip() for line in text.splitlines() if line.strip())


def setup_logging(verbose: bool, quiet: bool = False) -> None:
    """Our log lines (``codemonkeys.*``) on the console at INFO; with ``quiet`` only warnings
    and errors, one line each; ``--verbose`` shows ours at DEBUG. Other libraries' loggers
    (the HTTP client's ``HTTP Request: POST ...`` per call, Docker, the SDKs), whatever
    their names, only reach the console at WARNING, or at INFO with ``--verbose``."""
    from rich.logging import RichHandler

    handler: logging.Handler
    if quiet and not verbose:
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(OneLineFormatter("%(levelname)s %(name)s: %(message)s"))
    else:
        handler = RichHandler(console=console, show_path=False, show_time=False)
    logging.basicConfig(
        level=logging.INFO if verbose else logging.WARNING,
        format="%(message)s",
        handlers=[handler],
        force=True,
    )
    ours = logging.DEBUG if verbose else (logging.WARNING if quiet else logging.INFO)
    logging.getLogger("codemonkeys").setLevel(ours)


def print_error(error: CodemonkeysError) -> None:
    """``error: <message>`` and, when the error knows one, ``fix: <what to do>``."""
    console.print(f"[bold red]error:[/] {escape(error.message)}", highlight=False, soft_wrap=True)
    if error.fix:
        console.print(f"  [bold]fix:[/] {escape(error.fix)}", highlight=False, soft_wrap=True)


@contextmanager
def user_errors_from(*types: type[Exception]) -> Iterator[None]:
    """Turn the built-in exceptions a job raises for bad input (a missing run directory,
    an unknown problem id) into ``UsageError``s; the CLI reports those like any
    ``CodemonkeysError``. Our own errors pass through unchanged."""
    try:
        yield
    except CodemonkeysError:
        raise
    except types as e:
        raise UsageError(str(e)) from e


@dataclass(kw_only=True)
class ConfigInputs:
    """Where a command's config comes from: the file, ``--set`` texts, and the typed values
    of the model options. The options become config values as they are (a quote or a
    backslash in a model name or URL stays what it is)."""

    path: Path | None = None
    overrides: list[str] = field(default_factory=list)
    model: str | None = None
    relevance_model: str | None = None
    base_url: str | None = None
    max_cost: float | None = None

    def values(self) -> dict[str, Any]:
        """The dotted config keys the options set (after ``--set``: an option wins)."""
        values: dict[str, Any] = {}
        if self.model:
            values["models.primary.model"] = self.model
        if self.base_url:
            values["models.primary.base_url"] = self.base_url
        if self.relevance_model:
            values["models.relevance.model"] = self.relevance_model
            if self.base_url and self.relevance_model.startswith("openai/"):
                values["models.relevance.base_url"] = self.base_url
        if self.max_cost is not None:
            values["run.max_cost_usd"] = self.max_cost
        return values

    def load(self) -> Config:
        """The effective config (defaults < file < environment < --set < options);
        ``ConfigError`` says what is wrong."""
        return load_config(self.path, self.overrides, values=self.values())


def job_config(inputs: ConfigInputs, *, verbose: bool, quiet: bool = False) -> Config:
    """Logging plus the effective config of a job that calls models; stops at once with
    the how-to when no usable model is configured, before anything slow starts."""
    from codemonkeys.llm import check_models, check_prices

    setup_logging(verbose, quiet)
    cfg = inputs.load()
    check_models(cfg.models)
    check_prices(cfg)
    return cfg


@contextmanager
def job_entry() -> Iterator[JobSignals]:
    """What a long job installs at its entry, in the main thread, until it returns:
    Ctrl-C/SIGTERM set its stop flag (``JobSignals``). Nothing else is process-wide: the
    stages render the prompt templates of the config they are given."""
    with JobSignals(console) as signals:
        yield signals
