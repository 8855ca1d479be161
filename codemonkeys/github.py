"""Fetch a GitHub issue's text for ``solve --github-issue``.

Only the REST issues API is used (issue + first page of comments), through httpx. Every
failure becomes a ``GitHubError`` whose message says what to do next; the token is sent
in a header and never appears in an error message or a log line.
"""

from __future__ import annotations

import os
import re
import time

import httpx
from pydantic import BaseModel

from codemonkeys.errors import CodemonkeysError

DEFAULT_API = "https://api.github.com"
_URL_RE = re.compile(
    r"^(?:https?://)?(?:www\.)?github\.com/(?P<owner>[\w.-]+)/(?P<repo>[\w.-]+)/(?:issues|pull)/(?P<n>\d+)(?:[/?#].*)?$"
)
_SHORT_RE = re.compile(r"^(?P<owner>[\w.-]+)/(?P<repo>[\w.-]+)#(?P<n>\d+)$")


class GitHubError(CodemonkeysError, RuntimeError):
    """The issue could not be fetched; the message says why and what to try."""


class IssueRef(BaseModel):
    owner: str
    repo: str
    number: int

    @property
    def slug(self) -> str:
        return f"{self.owner}/{self.repo}#{self.number}"


class IssueText(BaseModel):
    ref: IssueRef
    title: str
    body: str
    url: str = ""
    comments: list[str] = []

    @property
    def text(self) -> str:
        """The issue as the model reads it: title, body, then the comments."""
        parts = [f"# {self.title}".rstrip(), self.body.strip()]
        for i, comment in enumerate(self.comments, 1):
            parts.append(f"## Comment {i}\n\n{comment.strip()}")
        return "\n\n".join(p for p in parts if p) + "\n"


def parse_issue_ref(url: str) -> IssueRef:
    """Accepts https://github.com/<owner>/<repo>/issues/<n> (pull/<n> too) and owner/repo#n."""
    text = url.strip()
    m = _URL_RE.match(text) or _SHORT_RE.match(text)
    if not m:
        raise GitHubError(
            f"not a GitHub issue reference: {text!r}; expected "
            "https://github.com/<owner>/<repo>/issues/<number> or <owner>/<repo>#<number>"
        )
    repo = m.group("repo")
    if repo.endswith(".git"):
        repo = repo[:-4]
    return IssueRef(owner=m.group("owner"), repo=repo, number=int(m.group("n")))


def fetch_issue(
    url: str,
    *,
    token: str | None = None,
    api_base: str = DEFAULT_API,
    timeout: float = 20,
    include_comments: bool = True,
) -> IssueText:
    """Title, body and (first page of) comments of a GitHub issue.

    ``token`` defaults to $GITHUB_TOKEN; without one, public issues still work within
    GitHub's anonymous rate limit."""
    ref = parse_issue_ref(url)
    if token is None:
        token = os.environ.get("GITHUB_TOKEN") or None
    headers = {
        "Accept": "application/vnd.github+json",
        "X-GitHub-Api-Version": "2022-11-28",
        "User-Agent": "codemonkeys",
    }
    if token:
        headers["Authorization"] = f"Bearer {token}"
    base = api_base.rstrip("/")
    path = f"/repos/{ref.owner}/{ref.repo}/issues/{ref.number}"
    try:
        with httpx.Client(base_url=base, headers=headers, timeout=timeout) as client:
            issue = _get(client, path, ref, authenticated=bool(token))
            comments: list[str] = []
            if include_comments and issue.get("comments", 0):
                data = _get(
                    client,
                    f"{path}/comments",
                    ref,
                    authenticated=bool(token),
                    params={"per_page": 100},
                )
                comments = [c.get("body") or "" for c in data if isinstance(c, dict)]
    except httpx.TransportError as e:
        raise GitHubError(
            f"GitHub is unreachable at {base} ({type(e).__name__}); check your network, "
            "or save the issue text to a file and pass --issue-file FILE instead"
        ) from None
    return IssueText(
        ref=ref,
        title=str(issue.get("title") or ""),
        body=str(issue.get("body") or ""),
        url=str(
            issue.get("html_url")
            or f"https://github.com/{ref.owner}/{ref.repo}/issues/{ref.number}"
        ),
        comments=comments,
    )


def _get(
    client: httpx.Client,
    path: str,
    ref: IssueRef,
    *,
    authenticated: bool,
    params: dict | None = None,
):
    resp = client.get(path, params=params)
    if resp.status_code == 200:
        try:
            return resp.json()
        except ValueError:
            raise GitHubError(
                f"GitHub answered {ref.slug} with something that is not JSON"
            ) from None
    raise GitHubError(_explain(resp, ref, authenticated))


def _explain(resp: httpx.Response, ref: IssueRef, authenticated: bool) -> str:
    status = resp.status_code
    remaining = resp.headers.get("X-RateLimit-Remaining")
    api_message = _api_message(resp)
    if status in (403, 429) and (remaining == "0" or "rate limit" in api_message.lower()):
        reset = resp.headers.get("X-RateLimit-Reset")
        when = ""
        if reset and reset.isdigit():
            minutes = max(0, int(reset) - int(time.time())) // 60 + 1
            when = f" (resets in about {minutes} min)"
        hint = (
            "wait for the reset"
            if authenticated
            else "set GITHUB_TOKEN to a personal access token for a higher limit"
        )
        return f"GitHub API rate limit exceeded{when}; {hint}, or use --issue-file"
    if status == 404:
        hint = (
            "check the URL; for a private repository the token needs read access to issues"
            if authenticated
            else "check the URL; for a private repository set GITHUB_TOKEN"
        )
        return f"GitHub issue {ref.slug} not found (404); {hint}"
    if status == 401:
        return (
            "GitHub rejected the token (401 Unauthorized); check GITHUB_TOKEN "
            "(expired or mistyped?), or unset it for public issues"
        )
    if status == 403:
        return (
            f"GitHub refused access to {ref.slug} (403: {api_message or 'forbidden'}); "
            "the token may lack permission for this repository"
        )
    if status == 410:
        return f"GitHub issue {ref.slug} was deleted (410)"
    return f"GitHub answered {status} for {ref.slug}: {api_message or resp.reason_phrase}"


def _api_message(resp: httpx.Response) -> str:
    try:
        data = resp.json()
    except ValueError:
        return ""
    return str(data.get("message", "")) if isinstance(data, dict) else ""
