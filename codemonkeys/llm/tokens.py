"""Offline token counting: a calibrated estimate, no tokenizer download at run time.

No BPE vocabulary ships with our dependencies (``tiktoken`` is absent and would download its
vocabulary; Anthropic publishes no tokenizer for current models). So we estimate: the text is
split into the same character classes a GPT-style pre-tokeniser uses (letter runs, digit
runs, punctuation runs, whitespace runs, non-ASCII characters) and each class is charged a
weight fitted against real BPE counts (cl100k/o200k, see docs/context-tokens.md).

Every count is a C-level ``re.findall`` per class, so counting stays fast on large trees.
The result is multiplied by ``PROVIDER_FACTOR`` because Claude's tokenisers produce more
tokens for code than OpenAI's; the packer also keeps a safety margin of the budget
(``ContextConfig.token_margin``). The estimate is meant to err high, never low.
"""

from __future__ import annotations

import re

# Letter runs split into chunks of at most 6 letters: short words are one token, long
# identifiers several (BPE splits ``getattribute`` into ~3 pieces). camelCase humps count
# as separate runs because an upper-case letter after lower-case starts a new chunk.
# (The leading lookahead only makes the engine skip non-letters fast: same matches, 2x speed.)
_WORD_CHUNKS = re.compile(r"(?=[A-Za-z])(?:[A-Z]?[a-z]{1,6}|[A-Z]{1,4}(?![a-z])|[A-Z])")
_DIGIT_CHUNKS = re.compile(r"[0-9]{1,3}")
# Punctuation: BPE merges frequent pairs ("):", "==", "->", "()"), rarely longer runs.
_PUNCT_CHUNKS = re.compile(r"[!-/:-@\[-`{-~]{1,2}")
# A newline (plus the indentation after it) is about one token; long space runs add more.
_NEWLINES = re.compile(r"\n[ \t]*")
_LONG_SPACES = re.compile(r"[ \t]{8}")
_NON_ASCII = re.compile(r"[^\x00-\x7f]")
_CJK = re.compile(r"[\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uac00-\ud7af]")

# Fitted weights (least squares on a mixed corpus of Python, JS, C, Go, Rust, Markdown
# and reST against cl100k_base; see docs/context-tokens.md for the figures).
W_WORD = 0.70
W_DIGIT = 1.38
W_PUNCT = 0.67
W_NEWLINE = 1.47
W_LONG_SPACES = 0.68
W_NON_ASCII = 1.0  # set by hand: too few non-ASCII files in the corpus to fit it
W_CJK = 0.2  # on top of W_NON_ASCII: one CJK character is about 1.2 tokens

PROVIDER_FACTOR = 1.15
"""Claude tokenisers count roughly 10-20% more tokens than cl100k on source code; we cannot
measure that offline, so the estimate is scaled up by the middle of that range."""


def bpe_estimate(text: str) -> float:
    """Estimated cl100k_base token count of ``text`` (unscaled)."""
    if not text:
        return 0.0
    est = (
        W_WORD * _WORD_CHUNKS.subn("", text)[1]  # subn counts without building a list
        + W_DIGIT * _DIGIT_CHUNKS.subn("", text)[1]
        + W_PUNCT * len(_PUNCT_CHUNKS.findall(text))
        + W_NEWLINE * len(_NEWLINES.findall(text))
        + W_LONG_SPACES * len(_LONG_SPACES.findall(text))
    )
    if not text.isascii():
        est += W_NON_ASCII * len(_NON_ASCII.findall(text)) + W_CJK * len(_CJK.findall(text))
    return est


def count_tokens(text: str) -> int:
    """Conservative provider-token estimate of ``text`` (at least 1 for non-empty text)."""
    if not text:
        return 0
    return max(1, int(bpe_estimate(text) * PROVIDER_FACTOR + 0.999))
