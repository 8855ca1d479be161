"""What the relevance scan will send and cost, before anything is spent.

For the enumerated files of one problem: prompt tokens (per file, the system prompt with the
issue plus the file prompt, each file capped at ``relevance_max_file_tokens``) and the price
per model, read interactively or through the provider's batch API (half price at Anthropic
and OpenAI), for all files and for the files the prefilter would keep. Printed by
``solve --estimate`` and ``swebench run --estimate``.
"""

from __future__ import annotations

from pathlib import Path

from pydantic import BaseModel, Field

from codemonkeys.config import Config
from codemonkeys.context.files import Enumeration
from codemonkeys.context.prefilter import apply_prefilter
from codemonkeys.llm.pricing import Pricing
from codemonkeys.llm.tokens import count_tokens

BATCH_DISCOUNT: dict[str, float] = {"anthropic": 0.5, "openai": 0.5}
"""Share of the list price a batch request costs, per provider (both publish 50% off)."""
OUTPUT_TOKENS_PER_FILE = 120
"""A summary and a decision line: about what a relevance answer takes."""


class ScanCost(BaseModel):
    model: str
    files: int
    prompt_tokens: int
    output_tokens: int
    usd: float
    batch_usd: float | None = None
    """None: the provider offers no batch API (custom servers, stand-ins)."""


class ScanEstimate(BaseModel):
    relevance_model: str
    small_by_default: bool = False
    prefilter_on: bool = False
    prefilter_share: float = 1.0
    batch_on: bool = False
    full: list[ScanCost] = Field(default_factory=list)
    """Per model (the relevance model first, then the primary if different): all files."""
    prefiltered: list[ScanCost] = Field(default_factory=list)
    """The same for the files the prefilter keeps."""

    def describe(self) -> str:
        how = (
            " (the provider's small model, by default; --relevance-model to change)"
            if self.small_by_default
            else ""
        )
        lines = [f"relevance scan with {self.relevance_model}{how}:"]
        for label, rows, active in (
            ("every file", self.full, not self.prefilter_on),
            (f"prefilter {self.prefilter_share:.0%}", self.prefiltered, self.prefilter_on),
        ):
            for i, c in enumerate(rows):
                batch = f", {_usd(c.batch_usd)} batch" if c.batch_usd is not None else ""
                model = "" if i == 0 else f" with {c.model}"
                mark = " <- this run" if active and i == 0 else ""
                if mark and self.batch_on:
                    mark += " (batch)"
                lines.append(
                    f"  {label}{model}: {c.files:,} files, {c.prompt_tokens:,} prompt tokens, "
                    f"{_usd(c.usd)}{batch}{mark}"
                )
        return "\n".join(lines)


def _usd(x: float) -> str:
    return f"${x:.2f}" if x >= 1 else f"${x:.4f}"


def _provider(model: str) -> str:
    return model.split("/", 1)[0] if "/" in model else ""


def scan_cost(
    pricing: Pricing,
    model: str,
    n_files: int,
    prompt_tokens: int,
    *,
    base_url: str | None,
) -> ScanCost:
    out = n_files * OUTPUT_TOKENS_PER_FILE
    p = pricing.price(model)
    usd = 0.0 if p is None else (prompt_tokens * p.input + out * p.output) / 1e6
    discount = None if base_url else BATCH_DISCOUNT.get(_provider(model))
    return ScanCost(
        model=model,
        files=n_files,
        prompt_tokens=prompt_tokens,
        output_tokens=out,
        usd=round(usd, 4),
        batch_usd=None if discount is None else round(usd * discount, 4),
    )


def scan_prompt_tokens(enum: Enumeration, issue: str, config: Config) -> int:
    """Prompt tokens of one relevance call per distinct file content."""
    templates = config.prompt_templates()
    per_call = count_tokens(templates.render("relevance/system", issue=issue)) + count_tokens(
        templates.render("relevance/user", path="x", content="", note="")
    )
    seen: set[str] = set()
    total = 0
    for f in enum.files:
        if f.sha256 in seen:
            continue
        seen.add(f.sha256)
        total += per_call + min(f.tokens, config.context.relevance_max_file_tokens)
    return total


def estimate_scan(config: Config, enum: Enumeration, issue: str, repo_dir: Path) -> ScanEstimate:
    """The scan's tokens and price per model, with and without the prefilter and batch."""
    models = config.models
    pricing = Pricing(models)
    rel = models.relevance_endpoint()
    endpoints = [rel] if rel.model == models.primary.model else [rel, models.primary]
    kept = apply_prefilter(issue, repo_dir, enum, config.context)
    rows: dict[str, list[ScanCost]] = {"full": [], "prefiltered": []}
    for name, e in (("full", enum), ("prefiltered", kept)):
        tokens = scan_prompt_tokens(e, issue, config)
        n = len({f.sha256 for f in e.files})
        for ep in endpoints:
            rows[name].append(scan_cost(pricing, ep.model, n, tokens, base_url=ep.base_url))
    return ScanEstimate(
        relevance_model=rel.model,
        small_by_default=models.relevance_is_default_small(),
        prefilter_on=config.context.prefilter,
        prefilter_share=config.context.prefilter_share,
        batch_on=config.context.relevance_batch,
        full=rows["full"],
        prefiltered=rows["prefiltered"],
    )
