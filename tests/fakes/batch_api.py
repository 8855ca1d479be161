"""The providers' batch endpoints on the local wire-format server (``LLMServer``), as
documented: Anthropic Message Batches (create, retrieve, results JSONL, cancel) and OpenAI
Batch (file upload, create, retrieve, file content, cancel).

``answer(custom_id, body) -> str`` decides each request: a text is a succeeded answer;
the strings ``ERRORED`` and ``EXPIRED`` make that item errored or expired. A batch stays
in progress for ``polls`` retrieves, then ends. Every request is recorded by the server.
"""

from __future__ import annotations

import itertools
import json
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from tests.fakes.llm_server import LLMServer, Reply, anthropic_message, openai_chat_completion

ERRORED = "ERRORED"
EXPIRED = "EXPIRED"
Answer = Callable[[str, dict], str]


def _now() -> str:
    return datetime.now(UTC).isoformat().replace("+00:00", "Z")


class FakeBatches:
    def __init__(self, server: LLMServer, answer: Answer, *, polls: int = 1):
        self.server = server
        self.answer = answer
        self.polls = polls
        self.ids = itertools.count(1)
        self.anthropic: dict[str, dict] = {}
        self.openai: dict[str, dict] = {}
        self.files: dict[str, str] = {}
        server.set_default("/v1/messages/batches", self._anthropic_create)
        server.set_default("/v1/files", self._openai_upload)
        server.set_default("/v1/batches", self._openai_create)

    # -- Anthropic -------------------------------------------------------------------
    def _anthropic_body(self, b: dict) -> dict[str, Any]:
        ended = b["state"] == "ended"
        return {
            "id": b["id"],
            "type": "message_batch",
            "processing_status": "ended" if ended else b["state"],
            "request_counts": {"processing": 0 if ended else len(b["requests"]),
                               "succeeded": 0, "errored": 0, "canceled": 0, "expired": 0},
            "created_at": b["created"], "expires_at": b["created"],
            "ended_at": _now() if ended else None,
            "cancel_initiated_at": None, "archived_at": None,
            "results_url": f"{self.server.url}/v1/messages/batches/{b['id']}/results" if ended else None,
        }  # fmt: skip

    def _anthropic_create(self, req) -> Reply:
        bid = f"msgbatch_{next(self.ids)}"
        b = {"id": bid, "requests": req.json["requests"], "state": "in_progress",
             "polls": 0, "created": _now(), "canceled": False}  # fmt: skip
        self.anthropic[bid] = b
        base = f"/v1/messages/batches/{bid}"
        self.server.set_default(base, lambda r: self._anthropic_retrieve(bid))
        self.server.set_default(base + "/results", lambda r: self._anthropic_results(bid))
        self.server.set_default(base + "/cancel", lambda r: self._anthropic_cancel(bid))
        return Reply(200, self._anthropic_body(b))

    def _anthropic_retrieve(self, bid: str) -> Reply:
        b = self.anthropic[bid]
        b["polls"] += 1
        if b["polls"] > self.polls or b["state"] == "canceling":
            b["state"] = "ended"
        return Reply(200, self._anthropic_body(b))

    def _anthropic_cancel(self, bid: str) -> Reply:
        b = self.anthropic[bid]
        b["state"], b["canceled"] = "canceling", True
        return Reply(200, self._anthropic_body(b))

    def _anthropic_results(self, bid: str) -> Reply:
        lines = []
        for r in self.anthropic[bid]["requests"]:
            cid = r["custom_id"]
            text = None if self.anthropic[bid]["canceled"] else self.answer(cid, r["params"])
            if text is None:
                result: dict[str, Any] = {"type": "canceled"}
            elif text == ERRORED:
                result = {"type": "errored", "error": {"type": "error",
                          "error": {"type": "api_error", "message": "internal error"}}}  # fmt: skip
            elif text == EXPIRED:
                result = {"type": "expired"}
            else:
                result = {"type": "succeeded",
                          "message": anthropic_message(text, input_tokens=1000, output_tokens=100)}  # fmt: skip
            lines.append(json.dumps({"custom_id": cid, "result": result}))
        return Reply(200, "\n".join(lines) + "\n", content_type="application/binary")

    # -- OpenAI ----------------------------------------------------------------------
    def _openai_upload(self, req) -> Reply:
        fid = f"file-{next(self.ids)}"
        lines = [
            line for line in req.raw.decode().replace("\r\n", "\n").split("\n")
            if line.startswith('{"custom_id"')
        ]  # fmt: skip
        self.files[fid] = "\n".join(lines) + "\n"
        self._serve_file(fid)
        return Reply(200, {"id": fid, "object": "file", "bytes": len(req.raw),
                           "created_at": 0, "filename": "relevance.jsonl",
                           "purpose": "batch", "status": "processed"})  # fmt: skip

    def _serve_file(self, fid: str) -> None:
        self.server.set_default(
            f"/v1/files/{fid}/content",
            lambda r: Reply(200, self.files[fid], content_type="application/octet-stream"),
        )

    def _openai_body(self, b: dict) -> dict[str, Any]:
        return {"id": b["id"], "object": "batch", "endpoint": "/v1/chat/completions",
                "input_file_id": b["input"], "completion_window": "24h", "status": b["state"],
                "created_at": 0, "output_file_id": b.get("output"), "error_file_id": b.get("errors")}  # fmt: skip

    def _openai_create(self, req) -> Reply:
        bid = f"batch_{next(self.ids)}"
        b = {"id": bid, "input": req.json["input_file_id"], "state": "validating", "polls": 0,
             "canceled": False}  # fmt: skip
        self.openai[bid] = b
        self.server.set_default(f"/v1/batches/{bid}", lambda r: self._openai_retrieve(bid))
        self.server.set_default(f"/v1/batches/{bid}/cancel", lambda r: self._openai_cancel(bid))
        return Reply(200, self._openai_body(b))

    def _openai_cancel(self, bid: str) -> Reply:
        b = self.openai[bid]
        b["state"], b["canceled"] = "cancelling", True
        return Reply(200, self._openai_body(b))

    def _openai_retrieve(self, bid: str) -> Reply:
        b = self.openai[bid]
        b["polls"] += 1
        if b["state"] in ("validating", "in_progress"):
            b["state"] = "in_progress" if b["polls"] <= self.polls else "done"
        if b["state"] in ("done", "cancelling"):
            self._openai_finish(b)
        return Reply(200, self._openai_body(b))

    def _openai_finish(self, b: dict) -> None:
        out, errors, expired = [], [], False
        for line in self.files[b["input"]].splitlines():
            r = json.loads(line)
            text = None if b["canceled"] else self.answer(r["custom_id"], r["body"])
            if text is None or text == EXPIRED:
                expired = True  # neither file lists it
            elif text == ERRORED:
                errors.append({"id": "r", "custom_id": r["custom_id"], "response": {
                    "status_code": 500, "body": {"error": {"message": "internal error"}}},
                    "error": None})  # fmt: skip
            else:
                body = openai_chat_completion(text, prompt_tokens=1000, completion_tokens=100)
                out.append({"id": "r", "custom_id": r["custom_id"],
                            "response": {"status_code": 200, "body": body}, "error": None})  # fmt: skip
        for name, rows in (("output", out), ("errors", errors)):
            if rows:
                fid = f"file-{name}-{b['id']}"
                self.files[fid] = "".join(json.dumps(x) + "\n" for x in rows)
                self._serve_file(fid)
                b[name] = fid
        b["state"] = "cancelled" if b["canceled"] else ("expired" if expired else "completed")
