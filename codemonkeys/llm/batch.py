"""Provider batch APIs (half price, answers within hours) through the official SDKs.

- Anthropic Message Batches: ``messages.batches.create`` with one ``{custom_id, params}``
  per request (``params`` = what ``messages.create`` would get), ``retrieve`` until
  ``processing_status == "ended"``, ``results`` (JSONL: ``succeeded`` / ``errored`` /
  ``expired`` / ``canceled`` per request), ``cancel``.
- OpenAI Batch: a JSONL file of ``{custom_id, method, url, body}`` uploaded with
  ``purpose="batch"``, ``batches.create(endpoint="/v1/chat/completions",
  completion_window="24h")``, ``retrieve`` until completed/failed/expired/cancelled, then
  the output file (answers) and the error file (failed requests); a request in neither
  (the batch expired or was cancelled first) is missing from the results, and the caller
  counts it as not answered.

Requests are built by the provider's own ``build_request`` and answers parsed by its
``_parse``, so a batch answer is read exactly like an interactive one.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any, Literal, Protocol

from pydantic import BaseModel, Field

from codemonkeys.llm.base import Message, Model, ModelError, Usage

if TYPE_CHECKING:
    from codemonkeys.llm.anthropic_model import AnthropicModel
    from codemonkeys.llm.openai_model import OpenAIModel
    from codemonkeys.llm.sdk_model import SDKModel

BATCH_PRICE_FACTOR = 0.5
"""Both providers bill batch requests at half the list price."""

ItemStatus = Literal["succeeded", "errored", "expired", "canceled"]


class BatchRequest(BaseModel):
    custom_id: str
    messages: list[Message]
    temperature: float
    max_tokens: int


class BatchItem(BaseModel):
    custom_id: str
    status: ItemStatus
    text: str = ""
    usage: Usage = Field(default_factory=Usage)
    error: str = ""
    cut: bool = False
    """The answer stopped at the output token limit (``Completion.cut``)."""


class BatchAPI(Protocol):
    provider: str

    def submit(self, requests: list[BatchRequest]) -> str: ...

    def ended(self, batch_id: str) -> bool: ...

    def results(self, batch_id: str) -> list[BatchItem]: ...

    def cancel(self, batch_id: str) -> None: ...


def _sdk_error(model: SDKModel, e: Exception) -> ModelError:
    return ModelError(f"{model.name}: batch API: {type(e).__name__}: {e}")


class AnthropicBatches:
    provider = "anthropic"

    def __init__(self, model: AnthropicModel):
        self.model = model
        self.client = model._client.messages.batches

    def _params(self, r: BatchRequest) -> dict[str, Any]:
        kwargs = self.model.build_request(
            r.messages, temperature=r.temperature, max_tokens=r.max_tokens, stop=None
        )
        return {**kwargs, **kwargs.pop("extra_body", {})}

    def submit(self, requests: list[BatchRequest]) -> str:
        try:
            batch = self.client.create(
                requests=[{"custom_id": r.custom_id, "params": self._params(r)} for r in requests]
            )
        except self.model.sdk_error as e:
            raise _sdk_error(self.model, e) from None
        return batch.id

    def ended(self, batch_id: str) -> bool:
        try:
            return self.client.retrieve(batch_id).processing_status == "ended"
        except self.model.sdk_error as e:
            raise _sdk_error(self.model, e) from None

    def results(self, batch_id: str) -> list[BatchItem]:
        out: list[BatchItem] = []
        try:
            for line in self.client.results(batch_id):
                result = line.result
                if result.type == "succeeded":
                    text, usage, cut = self.model._parse(result.message)
                    out.append(
                        BatchItem(
                            custom_id=line.custom_id,
                            status="succeeded",
                            text=text,
                            usage=usage,
                            cut=cut,
                        )
                    )
                else:
                    error = getattr(getattr(result, "error", None), "error", None)
                    out.append(
                        BatchItem(
                            custom_id=line.custom_id,
                            status=result.type,
                            error=str(getattr(error, "message", "") or result.type),
                        )
                    )
        except self.model.sdk_error as e:
            raise _sdk_error(self.model, e) from None
        return out

    def cancel(self, batch_id: str) -> None:
        try:
            self.client.cancel(batch_id)
        except self.model.sdk_error as e:
            raise _sdk_error(self.model, e) from None


class OpenAIBatches:
    provider = "openai"
    ENDPOINT = "/v1/chat/completions"
    DONE = ("completed", "failed", "expired", "cancelled")

    def __init__(self, model: OpenAIModel):
        self.model = model
        self.client = model._client

    def submit(self, requests: list[BatchRequest]) -> str:
        lines = []
        for r in requests:
            body = self.model.build_request(
                r.messages, temperature=r.temperature, max_tokens=r.max_tokens, stop=None
            )
            lines.append(
                json.dumps(
                    {"custom_id": r.custom_id, "method": "POST", "url": self.ENDPOINT, "body": body}
                )
            )
        data = ("\n".join(lines) + "\n").encode()
        try:
            upload = self.client.files.create(file=("relevance.jsonl", data), purpose="batch")
            batch = self.client.batches.create(
                input_file_id=upload.id, endpoint=self.ENDPOINT, completion_window="24h"
            )
        except self.model.sdk_error as e:
            raise _sdk_error(self.model, e) from None
        return batch.id

    def ended(self, batch_id: str) -> bool:
        try:
            return self.client.batches.retrieve(batch_id).status in self.DONE
        except self.model.sdk_error as e:
            raise _sdk_error(self.model, e) from None

    def _lines(self, file_id: str | None) -> list[dict]:
        if not file_id:
            return []
        text = self.client.files.content(file_id).text
        return [json.loads(line) for line in text.splitlines() if line.strip()]

    def results(self, batch_id: str) -> list[BatchItem]:
        from openai.types.chat import ChatCompletion

        try:
            batch = self.client.batches.retrieve(batch_id)
            lines = self._lines(batch.output_file_id) + self._lines(batch.error_file_id)
        except self.model.sdk_error as e:
            raise _sdk_error(self.model, e) from None
        out: list[BatchItem] = []
        for line in lines:
            cid = line.get("custom_id", "")
            response = line.get("response") or {}
            if response.get("status_code") == 200 and not line.get("error"):
                try:
                    completion = ChatCompletion.model_validate(response.get("body"))
                    text, usage, cut = self.model._parse(completion)
                except (ValueError, ModelError) as e:
                    out.append(BatchItem(custom_id=cid, status="errored", error=str(e)[:500]))
                    continue
                out.append(
                    BatchItem(custom_id=cid, status="succeeded", text=text, usage=usage, cut=cut)
                )
            else:
                err = line.get("error") or (response.get("body") or {}).get("error") or {}
                message = err.get("message", "") if isinstance(err, dict) else str(err)
                out.append(BatchItem(custom_id=cid, status="errored", error=message or "error"))
        return out

    def cancel(self, batch_id: str) -> None:
        try:
            self.client.batches.cancel(batch_id)
        except self.model.sdk_error as e:
            raise _sdk_error(self.model, e) from None


def batch_api(provider_model: Model) -> BatchAPI | None:
    """The batch API of a provider model (None: stand-ins have none)."""
    from codemonkeys.llm.anthropic_model import AnthropicModel
    from codemonkeys.llm.openai_model import OpenAIModel

    if isinstance(provider_model, AnthropicModel):
        return AnthropicBatches(provider_model)
    if isinstance(provider_model, OpenAIModel):
        return OpenAIBatches(provider_model)
    return None
