"""``--github-issue`` against a local HTTP server speaking the GitHub issues API."""

from __future__ import annotations

import json
import socket
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from codemonkeys.github import GitHubError, fetch_issue, parse_issue_ref

TOKEN = "ghp_secretTOKEN1234567890"
ISSUE = {
    "number": 7,
    "title": "Volume discount stuck at the first tier",
    "body": "Ordering 120 widgets gives 5% off, expected 15%.",
    "html_url": "https://github.com/acme/inventory/issues/7",
    "comments": 2,
    "state": "open",
}
COMMENTS = [{"body": "Same with 60 widgets."}, {"body": "Single-tier items are fine."}]


class FakeGitHub(BaseHTTPRequestHandler):
    """Answers /repos/acme/inventory/issues/7 (+ /comments); a mode switches failures."""

    mode = "ok"
    requests: list[tuple[str, str | None]] = []

    def log_message(self, *args):  # keep test output quiet
        pass

    def _send(self, status: int, payload, headers: dict[str, str] | None = None):
        body = json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        for k, v in (headers or {}).items():
            self.send_header(k, v)
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self):
        type(self).requests.append((self.path, self.headers.get("Authorization")))
        mode = type(self).mode
        if mode == "unauthorized":
            return self._send(401, {"message": "Bad credentials"})
        if mode == "rate-limited":
            return self._send(
                403,
                {"message": "API rate limit exceeded for 1.2.3.4."},
                {"X-RateLimit-Remaining": "0", "X-RateLimit-Reset": "9999999999"},
            )
        path = self.path.split("?")[0]
        if path == "/repos/acme/inventory/issues/7":
            return self._send(200, ISSUE)
        if path == "/repos/acme/inventory/issues/7/comments":
            return self._send(200, COMMENTS)
        return self._send(404, {"message": "Not Found"})


@pytest.fixture
def server():
    FakeGitHub.mode = "ok"
    FakeGitHub.requests = []
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), FakeGitHub)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()
    httpd.server_close()


def test_parse_issue_references():
    ref = parse_issue_ref("https://github.com/acme/inventory/issues/7")
    assert (ref.owner, ref.repo, ref.number) == ("acme", "inventory", 7)
    assert parse_issue_ref("acme/inventory#7") == ref
    assert parse_issue_ref("github.com/acme/inventory/issues/7#issuecomment-1") == ref
    with pytest.raises(GitHubError, match="not a GitHub issue reference"):
        parse_issue_ref("https://gitlab.com/acme/inventory/-/issues/7")


def test_fetch_issue_title_body_and_comments(server):
    issue = fetch_issue("https://github.com/acme/inventory/issues/7", token=TOKEN, api_base=server)
    assert issue.title == ISSUE["title"]
    assert issue.comments == ["Same with 60 widgets.", "Single-tier items are fine."]
    text = issue.text
    assert text.startswith("# Volume discount stuck at the first tier\n")
    assert "Ordering 120 widgets" in text and "Single-tier items are fine." in text
    assert text.index("Ordering 120") < text.index("Same with 60")
    assert FakeGitHub.requests[0] == ("/repos/acme/inventory/issues/7", f"Bearer {TOKEN}")


def test_token_from_environment_and_anonymous(server, monkeypatch):
    monkeypatch.setenv("GITHUB_TOKEN", TOKEN)
    fetch_issue("acme/inventory#7", api_base=server, include_comments=False)
    monkeypatch.delenv("GITHUB_TOKEN")
    fetch_issue("acme/inventory#7", api_base=server, include_comments=False)
    assert [auth for _, auth in FakeGitHub.requests] == [f"Bearer {TOKEN}", None]


def test_not_found(server):
    with pytest.raises(GitHubError, match=r"acme/inventory#8 not found \(404\)") as err:
        fetch_issue("acme/inventory#8", token=TOKEN, api_base=server)
    assert TOKEN not in str(err.value)


def test_bad_token(server):
    FakeGitHub.mode = "unauthorized"
    with pytest.raises(GitHubError, match="rejected the token") as err:
        fetch_issue("acme/inventory#7", token=TOKEN, api_base=server)
    assert TOKEN not in str(err.value) and "GITHUB_TOKEN" in str(err.value)


def test_rate_limit(server):
    FakeGitHub.mode = "rate-limited"
    with pytest.raises(GitHubError, match="rate limit exceeded") as err:
        fetch_issue("acme/inventory#7", token=None, api_base=server)
    assert "GITHUB_TOKEN" in str(err.value) and "--issue-file" in str(err.value)


def test_offline_says_unreachable_and_suggests_issue_file():
    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    with pytest.raises(GitHubError, match="unreachable") as err:
        fetch_issue("acme/inventory#7", token=TOKEN, api_base=f"http://127.0.0.1:{port}")
    assert "--issue-file" in str(err.value) and TOKEN not in str(err.value)
