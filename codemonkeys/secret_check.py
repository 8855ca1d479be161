"""Which files and strings of a repository are secrets, and removing them from text.

One check for the two places a repository's text leaves the host for a model: the context
stage (a secret file is never read into a prompt) and the copy of a user's repository put
into a sandbox (``sandbox/secret_copy.py``: secrets replaced before any script can print
them, and redacted from whatever a script still prints).

A file is a secret *as a whole* when its name matches ``context.secret_globs`` (``.env``,
``*.pem``, ``id_rsa*``, ``.git-credentials``, an AWS ``credentials`` file, ``.pgpass``, ...)
or it is a package-manager rc file (``.npmrc``, ``.netrc``, ...) holding a token or
password. Any other text file is searched for secret *values* with the plugins of
``detect-secrets`` (Yelp, v1.5): the fixed-format token detectors (AWS, GitHub, GitLab,
Slack, Stripe, OpenAI, npm, PyPI, SendGrid, Twilio, JWT, Discord, Telegram, Mailchimp,
Square, Azure storage, private keys), the URL password detector and the keyword detector
(``api_key: ...``, ``password = "..."``), with its heuristic filters. Deliberately not used:
the high-entropy string plugins (they flag hashes and test data in ordinary source: 11 hits
in 2 files of sphinx alone), the public-IP plugin, and the IBM/Cloudant/Softlayer/
Artifactory/Telegram plugins (0.5-2 s per 12 MB of text each on a loaded 2-core machine, for
formats rarely seen; their patterns have no literal to gate on). A value the
keyword or URL detector finds must also look like a secret (8+ characters, no space, two
kinds of character: letters and digits, or cases, or symbols), which keeps documentation
examples (``https://user:pass@example.com``) and test strings (``"open sesami"``) out.
The plugins are called directly (``analyze_string``), never through detect-secrets'
process-wide settings, so concurrent scans do not interfere and nothing is verified online.
"""

from __future__ import annotations

import fnmatch
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import PurePosixPath

from detect_secrets.filters import heuristic
from detect_secrets.plugins.aws import AWSKeyDetector
from detect_secrets.plugins.azure_storage_key import AzureStorageKeyDetector
from detect_secrets.plugins.base import RegexBasedDetector
from detect_secrets.plugins.basic_auth import BasicAuthDetector
from detect_secrets.plugins.discord import DiscordBotTokenDetector
from detect_secrets.plugins.github_token import GitHubTokenDetector
from detect_secrets.plugins.gitlab_token import GitLabTokenDetector
from detect_secrets.plugins.jwt import JwtTokenDetector
from detect_secrets.plugins.keyword import (
    DENYLIST_REGEX,
    QUOTES_REQUIRED_DENYLIST_REGEX_TO_GROUP,
    REGEX_BY_FILETYPE,
    KeywordDetector,
)
from detect_secrets.plugins.mailchimp import MailchimpDetector
from detect_secrets.plugins.npm import NpmDetector
from detect_secrets.plugins.openai import OpenAIDetector
from detect_secrets.plugins.private_key import PrivateKeyDetector
from detect_secrets.plugins.pypi_token import PypiTokenDetector
from detect_secrets.plugins.sendgrid import SendGridDetector
from detect_secrets.plugins.slack import SlackDetector
from detect_secrets.plugins.square_oauth import SquareOAuthDetector
from detect_secrets.plugins.stripe import StripeDetector
from detect_secrets.plugins.twilio import TwilioKeyDetector
from detect_secrets.util.filetype import determine_file_type

REDACTED = "<secret-removed-by-codemonkeys>"
"""What replaces a secret value in a sandbox copy and in recorded text (a templated-looking
value: detect-secrets' own filters do not flag it again)."""
PLACEHOLDER_TEXT = (
    "# codemonkeys: this file looks like a secret; its content was not copied into the\n"
    "# sandbox (sandbox.copy_secret_files lists files to copy as they are).\n"
)
MAX_SCAN_BYTES = 4_000_000
"""Larger files are not searched for values (data, not configuration)."""
CREDENTIAL_RC_FILES = frozenset(
    [".npmrc", ".pypirc", ".netrc", "_netrc", ".yarnrc", ".yarnrc.yml", ".dockercfg"]
)
_CREDENTIAL_LINE = re.compile(
    r"(?im)(_authtoken|_auth|password|passwd|token|secret|machine\s+\S+\s+login)\s*[=:\s]\s*\S"
)
_KEY_BLOCK_END = re.compile(r"-----END [A-Z0-9 ]*PRIVATE KEY( BLOCK)?-----")
_TOKEN_PLUGINS: tuple[RegexBasedDetector, ...] = (
    AWSKeyDetector(),
    AzureStorageKeyDetector(),
    DiscordBotTokenDetector(),
    GitHubTokenDetector(),
    GitLabTokenDetector(),
    JwtTokenDetector(),
    MailchimpDetector(),
    NpmDetector(),
    OpenAIDetector(),
    PypiTokenDetector(),
    SendGridDetector(),
    SlackDetector(),
    SquareOAuthDetector(),
    StripeDetector(),
    TwilioKeyDetector(),
)
_GATES: dict[str, tuple[str, ...]] = {
    "(?:A3T[A-Z0-9]|ABIA|ACCA|AKIA|ASIA)[0-9A-Z]{16}": ("A3T", "ABIA", "ACCA", "AKIA", "ASIA"),
    AWSKeyDetector.denylist[1].pattern: ("aws",),
    "[0-9a-z]{32}-us[0-9]{1,2}": ("-us",),
    SlackDetector.denylist[0].pattern: ("xox",),
    SlackDetector.denylist[1].pattern: ("hooks.slack.com",),
    "(?:r|s)k_live_[0-9a-zA-Z]{24}": ("k_live_",),
    GitLabTokenDetector.denylist[0].pattern: ("glpat-", "gldt-", "glft-", "glsoat-", "glrt-"),
}
"""Literals every match of a slow detector pattern contains (in the lower-cased text when
the pattern ignores case): a file without any is not searched with it (C-speed substring
tests instead of a regex over the file; a pattern not listed here is always run).
tests/unit/test_secret_check.py checks every key is still a live pattern."""
_PRIVATE_KEY = PrivateKeyDetector()
_BASIC_AUTH = BasicAuthDetector()
_KEYWORD = KeywordDetector()
_KEYWORD_GATE = re.compile(DENYLIST_REGEX)
"""Run on the lower-cased text: ten times faster than the same pattern with IGNORECASE."""
_MIN_VALUE = 8
_MIN_CUT = 6
_CUT = re.compile(
    r"(?P<before>[^\n]{0,512})(?P<marker>\n\.\.\. \[\d+ characters omitted\] \.\.\.\n)"
    r"(?P<after>[^\n]{0,512})"
)
"""The output cap's marker (``sandbox/output.omitted_marker``) with the text around it."""


@dataclass(frozen=True)
class SecretFile:
    path: str
    whole: bool
    """The file itself is a secret (its name, or an rc file holding credentials)."""
    values: tuple[str, ...] = ()
    """The secret strings found in it (the lines and assigned values of a whole file)."""


def matches_glob(path: str, globs: Iterable[str]) -> bool:
    name = PurePosixPath(path).name
    for g in globs:
        if fnmatch.fnmatchcase(path, g) or ("/" not in g and fnmatch.fnmatchcase(name, g)):
            return True
        if g.endswith("/") and (path.startswith(g) or f"/{g}" in f"/{path}"):
            return True
    return False


def _kinds(value: str) -> int:
    return sum(
        (
            any(c.islower() for c in value),
            any(c.isupper() for c in value),
            any(c.isdigit() for c in value),
            any(not c.isalnum() for c in value),
        )
    )


def secretish(value: str) -> bool:
    """A value a keyword or URL detector found looks like a real secret: long enough, one
    word, and at least two kinds of character."""
    if len(value) < _MIN_VALUE or any(c.isspace() for c in value):
        return False
    return _kinds(value) >= 2


def _line_at(text: str, start: int, end: int) -> str:
    s = text.rfind("\n", 0, start) + 1
    e = text.find("\n", end)
    return text[s : len(text) if e < 0 else e]


def _filtered(value: str, line: str, weak: bool) -> bool:
    """detect-secrets' heuristic filters (the defaults of its scanner), plus ours for the
    detectors that match on a keyword or URL shape alone."""
    if heuristic.is_templated_secret(value) or heuristic.is_prefixed_with_dollar_sign(value):
        return True
    if heuristic.is_sequential_string(value) or heuristic.is_potential_uuid(value):
        return True
    if weak:
        return (
            heuristic.is_indirect_reference(line)
            or heuristic.is_likely_id_string(value, line, _KEYWORD)
            or heuristic.is_not_alphanumeric_string(value)
            or not secretish(value)
            or REDACTED in value
        )
    return False


def _private_keys(text: str) -> list[str]:
    """Whole private-key blocks (BEGIN to END, or to the end of the text)."""
    out: list[str] = []
    for rx in _PRIVATE_KEY.denylist:
        for m in rx.finditer(text):
            start = (
                m.start() - 5 if text[max(0, m.start() - 5) : m.start()] == "-----" else m.start()
            )
            end = _KEY_BLOCK_END.search(text, m.end())
            out.append(text[start : end.end() if end else len(text)])
    return out


def _matched_value(m: re.Match[str]) -> str:
    """The secret in a detector's match: its longest group when that is a value of its own
    (AWS: the quoted 40 characters after ``aws...key``), else the whole match (GitHub's
    group is only the ``ghp`` prefix)."""
    groups = [g for g in m.groups() if g]
    best = max(groups, key=len) if groups else ""
    return best if len(best) >= _MIN_VALUE else m.group(0)


def find_values(path: str, text: str) -> list[str]:
    """The secret values in ``text`` (a file at ``path``), longest first."""
    found: set[str] = set(_private_keys(text))
    lowered = text.lower()
    for plugin in _TOKEN_PLUGINS:
        for rx in plugin.denylist:
            gate = _GATES.get(rx.pattern)
            if gate and not any(g in (lowered if rx.flags & re.I else text) for g in gate):
                continue
            for m in rx.finditer(text):
                line = _line_at(text, m.start(), m.end())
                value = _matched_value(m)
                if any(True for _ in plugin.analyze_string(line)) and not _filtered(
                    value, line, False
                ):
                    found.add(value)
    if "@" in text:
        for rx in _BASIC_AUTH.denylist:
            for m in rx.finditer(text):
                line = _line_at(text, m.start(), m.end())
                found.update(
                    v for v in _BASIC_AUTH.analyze_string(line) if not _filtered(v, line, True)
                )
    found.update(_keyword_values(path, text, lowered))
    return sorted({v.strip() for v in found if v.strip()}, key=lambda v: (-len(v), v))


def _strong(value: str) -> bool:
    """A token of a secret file worth redacting wherever it shows up: one word of 8+
    characters with letters and digits, or three kinds of character (not ``[default]``,
    ``production`` or a host name)."""
    if len(value) < _MIN_VALUE or any(c.isspace() for c in value):
        return False
    letters = any(c.isalpha() for c in value)
    digits = any(c.isdigit() for c in value)
    return (letters and digits) or (secretish(value) and _kinds(value) >= 3)


def _keyword_values(path: str, text: str, lowered: str) -> set[str]:
    """Values assigned to secret-sounding names, on the lines the keyword gate finds."""
    numbers = {lowered.count("\n", 0, m.start()) for m in _KEYWORD_GATE.finditer(lowered)}
    if not numbers:
        return set()
    lines = text.split("\n")
    regexes = REGEX_BY_FILETYPE.get(
        determine_file_type(path), QUOTES_REQUIRED_DENYLIST_REGEX_TO_GROUP
    )
    out: set[str] = set()
    for n in sorted(numbers):
        line = lines[n] if n < len(lines) else ""
        for v in _KEYWORD.analyze_string(line, denylist_regex_to_group=regexes):
            if v and not _filtered(v.strip(), line, True):
                out.add(v)
    return out


def _whole_file_values(text: str) -> list[str]:
    """What to redact of a file that is a secret as a whole: of each line, its words, the
    value after the first ``=``/``:`` and the last ``:`` field (``.pgpass``), when strong."""
    out: set[str] = set()
    for raw in text.splitlines():
        line = raw.strip()
        candidates = [w.strip("\"'") for w in line.split()]
        m = re.match(r"[^=:]*[=:]\s*(.+)", line)
        if m:
            candidates.append(m.group(1).strip("\"' "))
        candidates.append(line.rsplit(":", 1)[-1].strip("\"' "))
        out.update(c for c in candidates if _strong(c))
    return sorted(out, key=lambda v: (-len(v), v))


@dataclass
class SecretCheck:
    """The check for one repository: ``globs`` are ``context.secret_globs``."""

    globs: Sequence[str]
    _lowered: list[str] = field(init=False)

    def __post_init__(self) -> None:
        self._lowered = [g.lower() for g in self.globs]

    def by_name(self, path: str) -> bool:
        return bool(self._lowered) and matches_glob(path.lower(), self._lowered)

    def inspect(self, path: str, data: bytes) -> SecretFile | None:
        """The file's verdict (None: no secret in it). A binary file is judged by name only."""
        binary = b"\0" in data[:8192]
        text = "" if binary else data.decode("utf-8", errors="replace")
        name = PurePosixPath(path).name.lower()
        if self.by_name(path) or (name in CREDENTIAL_RC_FILES and _CREDENTIAL_LINE.search(text)):
            whole = set(_whole_file_values(text)) | set(find_values(path, text)) if text else set()
            return SecretFile(path, True, tuple(sorted(whole, key=lambda v: (-len(v), v))))
        if binary or len(data) > MAX_SCAN_BYTES:
            return None
        values = find_values(path, text)
        return SecretFile(path, False, tuple(values)) if values else None


class Redactor:
    """Replaces every known secret value in a text by ``REDACTED`` (one compiled
    alternation, longest value first; a key block's lines are redacted one by one too)."""

    def __init__(self, values: Iterable[str]):
        parts: set[str] = set()
        for v in values:
            parts.add(v)
            parts.update(line.strip() for line in v.splitlines() if len(line.strip()) >= 16)
        self.values = sorted((p for p in parts if p), key=lambda v: (-len(v), v))
        self._encoded = [v.encode("utf-8", "surrogateescape") for v in self.values]
        alternation = "|".join(re.escape(v) for v in self.values)
        self._text = re.compile(alternation) if self.values else None
        self._bytes = (
            re.compile(alternation.encode("utf-8", "surrogateescape")) if self.values else None
        )

    def __bool__(self) -> bool:
        return bool(self.values)

    def text(self, text: str) -> str:
        if self._text is not None and any(v in text for v in self.values):
            text = self._text.sub(REDACTED, text)  # substring tests first: a miss is cheap
        if self.values and _CUT.search(text):
            text = _CUT.sub(self._cut_ends, text)
        return text

    def _cut_ends(self, m: re.Match[str]) -> str:
        """Where an output cap cut the middle out (``sandbox/output.py``), a secret may
        straddle the cut: its head ends the first part, its tail starts the second."""
        before, marker, after = m.group("before"), m.group("marker"), m.group("after")
        for v in self.values:
            for k in range(len(v) - 1, _MIN_CUT - 1, -1):
                if before.endswith(v[:k]):
                    before = before[:-k] + REDACTED
                    break
            for k in range(len(v) - 1, _MIN_CUT - 1, -1):
                if after.startswith(v[-k:]):
                    after = REDACTED + after[k:]
                    break
        return before + marker + after

    def data(self, data: bytes) -> bytes:
        if self._bytes is None or not any(v in data for v in self._encoded):
            return data
        return self._bytes.sub(REDACTED.encode(), data)
