"""The console carries our messages, not other libraries' chatter: the HTTP client logs
one ``HTTP Request: POST ...`` line per model call at INFO (under whatever logger name its
version uses), which a default run must not show; ``--verbose`` shows it."""

from __future__ import annotations

import subprocess
import sys
import textwrap

from tests.conftest import ROOT

CHILD = textwrap.dedent(
    """
    import logging, sys
    from codemonkeys.cli.common import setup_logging
    from codemonkeys.config import EndpointConfig, ModelsConfig
    from codemonkeys.llm import build_provider
    from codemonkeys.llm.base import Message
    from codemonkeys.llm.pricing import Pricing
    from tests.fakes.llm_server import LLMServer

    setup_logging(verbose=sys.argv[1] == "verbose")
    with LLMServer() as server:
        endpoint = EndpointConfig(model="openai/local-model", base_url=server.openai_url)
        models = ModelsConfig(primary=endpoint, allow_unpriced=True)
        model = build_provider(endpoint, Pricing(models))
        model.complete([Message(role="user", content="hi")], temperature=0, max_tokens=5)
    logging.getLogger("codemonkeys.job").info("our own progress line")
    logging.getLogger("some.library").info("a library's chatter")
    """
)


def _stderr(mode: str) -> str:
    proc = subprocess.run(
        [sys.executable, "-c", CHILD, mode],
        capture_output=True,
        text=True,
        cwd=ROOT,
        env={"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin", "COLUMNS": "200"},
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr
    return proc.stderr


def test_a_default_run_shows_our_info_lines_and_no_http_client_lines():
    err = _stderr("default")
    assert "our own progress line" in err
    assert "HTTP Request" not in err, err
    assert "a library's chatter" not in err


def test_verbose_shows_the_http_requests():
    err = _stderr("verbose")
    assert "HTTP Request: POST" in err and "our own progress line" in err
