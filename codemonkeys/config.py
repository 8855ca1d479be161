"""Configuration: one pydantic model per stage, loaded (``config_loading.load_config``)
from a TOML file, environment variables and CLI overrides (in that order of precedence,
lowest first).

- File: ``codemonkeys.toml`` in the working directory, or ``--config PATH``.
- Environment: ``CODEMONKEYS_<SECTION>__<KEY>=value`` (e.g. ``CODEMONKEYS_GENERATION__SAMPLES=4``).
  Only names whose ``<SECTION>`` is a config section are config; any other ``CODEMONKEYS_*``
  variable (a test suite's, a wrapper script's) is ignored.
- CLI: ``--set generation.samples=4`` (dotted keys, values parsed as TOML scalars/arrays).

Each stage has a *fingerprint*: a hash of the config section(s) and prompt templates the
stage depends on. Records carry it, and a record whose fingerprint differs from the current
one is never reused silently (see ``store.py``).

"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

if TYPE_CHECKING:
    from codemonkeys.prompts import PromptTemplates


class Section(BaseModel):
    model_config = ConfigDict(extra="forbid", validate_assignment=True)


class Price(Section):
    """USD per million tokens."""

    input: float
    output: float
    cache_write: float | None = None  # defaults to input when unknown
    cache_read: float | None = None  # defaults to input when unknown


class ModelCapabilities(Section):
    """What a model accepts; looked up next to its price (see llm/pricing.py)."""

    temperature: bool = True  # False: only the default temperature is accepted
    max_tokens_param: Literal["max_tokens", "max_completion_tokens"] = "max_tokens"
    thinking_budget: int | None = None  # Anthropic extended thinking budget, tokens
    reasoning_effort: str | None = None  # OpenAI reasoning models
    max_output_tokens: int | None = None  # clamp requests to this
    context_window: int | None = None
    """Tokens the model takes in one request (prompt + max output). A conversation that
    would not fit is never sent: it ends in the state ``context_length_exceeded``."""


class EndpointConfig(Section):
    """A model endpoint: ``anthropic/<name>``, ``openai/<name>`` (+ base_url for any
    OpenAI-compatible server), ``scripted:<policy.py>`` or ``replay:<calls.jsonl>``."""

    model: str = ""
    base_url: str | None = None
    api_key_env: str | None = None  # default: ANTHROPIC_API_KEY / OPENAI_API_KEY
    max_concurrency: int = Field(default=8, ge=1)
    timeout_s: float = Field(default=600.0, gt=0)
    max_retries: int = Field(default=8, ge=0)
    backoff_initial_s: float = Field(default=2.0, ge=0)
    backoff_max_s: float = Field(default=120.0, ge=0)
    cache_ttl: Literal["5m", "1h"] = "5m"
    """Anthropic prompt-cache lifetime of the marked prefixes. ``1h`` keeps a problem's
    shared context cached while trajectories wait on sandbox runs for more than 5 minutes
    in total; its cache writes cost 2x input instead of 1.25x (reads are the same)."""


SMALL_MODELS: dict[str, str] = {
    "anthropic": "claude-haiku-4-5",
    "openai": "gpt-5-mini",
}
"""The provider's small model, which reads every file when no relevance model is set."""


class ModelsConfig(Section):
    primary: EndpointConfig = Field(default_factory=EndpointConfig)
    """Ranking, test and edit generation, selection."""
    relevance: EndpointConfig | None = None
    """The cheap model that reads every file. Unset: the primary provider's small model
    (``SMALL_MODELS``: Anthropic -> Haiku, OpenAI -> a mini model) on the primary's
    endpoint settings; the primary model itself for custom servers (``base_url``) and
    stand-ins. Set ``relevance.model`` to the primary's to read with the primary."""
    prices: dict[str, Price] = Field(default_factory=dict)
    """Overrides/additions to the built-in price table, keyed by model name."""
    allow_unpriced: bool = False
    """With a cost cap set, a model without a known price is refused at start (its calls
    would count as $0 and the cap would not limit them) unless this is true."""
    capabilities: dict[str, ModelCapabilities] = Field(default_factory=dict)

    def relevance_endpoint(self) -> EndpointConfig:
        if self.relevance is not None:
            return self.relevance
        provider, sep, _ = self.primary.model.partition("/")
        small = SMALL_MODELS.get(provider) if sep and not self.primary.base_url else None
        if small is None:
            return self.primary
        # the scan's prompts are read once per file: no 1-hour cache for them
        return self.primary.model_copy(update={"model": f"{provider}/{small}", "cache_ttl": "5m"})

    def relevance_is_default_small(self) -> bool:
        """The relevance model is the provider's small model chosen by default."""
        return self.relevance is None and self.relevance_endpoint().model != self.primary.model


class ContextConfig(Section):
    max_file_bytes: int = Field(default=1_000_000, ge=1)
    test_dirs: list[str] = Field(default_factory=lambda: ["test", "tests", "testing"])
    """Directory names treated as tests at any depth."""
    include_tests: bool = False
    exclude_globs: list[str] = Field(default_factory=list)
    relevance_max_file_tokens: int = Field(default=100_000, ge=1)
    relevance_max_output_tokens: int = Field(default=512, ge=1)
    """A relevance answer is a short summary and a decision: a few hundred tokens. An
    answer cut at this limit is never read as a decision (it gets a correction turn), and
    a model that never stops costs this much per file, not more."""
    relevance_temperature: float = 0.0
    relevance_retries: int = Field(default=1, ge=0)
    rankings: int = Field(default=3, ge=1)
    ranking_temperature: float = 0.0
    ranking_max_output_tokens: int = Field(default=4096, ge=1)
    """A ranking is a JSON list of paths (about 15 tokens each)."""
    ranking_retries: int = Field(default=2, ge=0)
    token_budget: int = Field(default=128_000, ge=1)
    shrink_large_files: bool = True
    vendor_dirs: list[str] = Field(
        default_factory=lambda: [
            "vendor",
            "vendored",
            "_vendor",
            "node_modules",
            "third_party",
            "thirdparty",
            "3rdparty",
            "bower_components",
            "site-packages",
            ".git",
            "__pycache__",
        ]
    )
    """Directory names whose contents are vendored/generated code, at any depth."""
    exclude_generated: bool = True
    """Skip files whose first lines carry a generated-code marker (@generated, DO NOT EDIT)."""
    max_line_chars: int = Field(default=5_000, ge=80)
    """A file with a longer line is treated as minified/generated data and skipped."""
    token_margin: float = Field(default=0.05, ge=0.0, lt=1.0)
    """Fraction of token_budget held back because token counts are estimates."""
    relevance_cache: bool = True
    """Reuse relevance decisions across runs from ``relevance_cache_dir`` (provider models
    only; see codemonkeys/context/decision_cache.py)."""
    relevance_cache_dir: Path | None = None
    """Default: $XDG_CACHE_HOME/codemonkeys/relevance, else ~/.cache/codemonkeys/relevance."""
    relevance_cache_max_mb: float = Field(default=200.0, gt=0)
    """Least recently used decisions are removed beyond this size."""
    relevance_batch: bool = False
    """Send the relevance scan through the provider's batch API (Anthropic Message Batches,
    OpenAI Batch: half price, answers within hours); see context/relevance_batch.py."""
    relevance_batch_poll_s: float = Field(default=60.0, gt=0)
    """Seconds between two looks at a pending batch."""
    prefilter: bool = False
    """Rank files lexically against the issue (BM25 + named paths/identifiers) and let the
    relevance model read only the top ``prefilter_share``; the rest are recorded as skipped
    (reason ``prefilter``). See codemonkeys/context/prefilter.py and docs/benchmarks.md."""
    prefilter_share: float = Field(default=0.6, gt=0.0, le=1.0)
    """Share of the enumerated files the prefilter keeps: the smallest share with >= 99%
    recall of gold-patch files in tests/benchmarks/bench_prefilter.py (203 SWE-bench
    Verified instances, 9 repositories: 99.6% recall, 16.6% of scan tokens saved)."""
    prefilter_min_files: int = Field(default=50, ge=1)
    """The prefilter keeps at least this many files (small repositories are read whole)."""
    allow_missing_decisions: bool = False
    """Start generation although the relevance scan failed on some files (a provider
    outage) or every ranking failed. Default: the problem stops with status ``error`` and
    the next run asks those files again."""
    secret_globs: list[str] = Field(
        default_factory=lambda: [
            ".env",
            ".env.*",
            "*.env",
            "*.pem",
            "*.key",
            "*.p12",
            "*.pfx",
            "*.jks",
            "*.keystore",
            "id_rsa*",
            "id_dsa*",
            "id_ecdsa*",
            "id_ed25519*",
            "credentials*.json",
            "*credentials*.json",
            "service-account*.json",
            "secrets.*",
            ".htpasswd",
            "*.kdbx",
            ".git-credentials",
            "credentials",
            ".pgpass",
            "*.ppk",
            ".s3cfg",
            ".boto",
            ".vault-token",
            "*.tfstate",
            "*.tfstate.backup",
        ]
    )
    """Files that look like secrets: never read, never sent to a model, never in a prompt
    log; recorded as excluded with reason ``secret``. ``.npmrc``/``.pypirc``/``.netrc``
    holding a token or password, and any file in which detect-secrets finds a private key,
    a token or an assigned password (``codemonkeys/secret_check.py``), are excluded too. In
    a sandbox's copy of a local repository these files are replaced by a placeholder
    (``sandbox.copy_secret_files``)."""


class GenerationConfig(Section):
    samples: int = Field(default=10, ge=1)
    test_attempts: int = Field(default=8, ge=1)
    edit_attempts: int = Field(default=8, ge=1)
    temperatures: list[float] = Field(default_factory=lambda: [0.5])
    """Temperature ladder: trajectory i uses temperatures[i % len]."""
    test_max_output_tokens: int = Field(default=2048, ge=1)
    """A testing answer: one reproduction script (or ``<done>``)."""
    edit_max_output_tokens: int = Field(default=4096, ge=1)
    """An editing answer: search/replace blocks, perhaps a rewritten test. An answer cut at
    either limit is never parsed: it costs an attempt and gets a correction."""
    test_language: Literal["python", "shell"] = "python"
    warm_cache: bool = True
    """The first call for each shared prompt prefix completes before the other trajectories
    of the problem send theirs, so they read the provider's prompt cache."""
    warm_cache_min_chars: int = Field(default=4000, ge=0)
    """Prefixes shorter than this are too small for providers to cache (about 1024
    tokens): no warm-up wait for them."""
    adaptive: bool = False
    """Start trajectories in waves of ``adaptive_wave``; after each wave a stop rule
    (``generation/stopping.py``) decides to stop, continue, or widen the temperature ladder
    (the first wave uses the first temperature), up to ``samples`` (``generation/adaptive.py``)."""
    adaptive_wave: int = Field(default=3, ge=1)
    adaptive_agreement: float = Field(default=0.6, gt=0, le=1)
    """Stop when one behaviour cluster holds this share of the trajectories with a patch..."""
    adaptive_min_cluster: int = Field(default=2, ge=1)
    """...and at least this many of them..."""
    adaptive_min_votes: int = Field(default=1, ge=0)
    """...and a reproducing test votes for it (more votes than any candidate outside it)."""

    @model_validator(mode="before")
    @classmethod
    def _renamed(cls, data: Any) -> Any:
        if isinstance(data, dict) and "max_output_tokens" in data:
            raise ValueError(
                "generation.max_output_tokens is now two settings, one per conversation: "
                "generation.test_max_output_tokens (default 2048) and "
                "generation.edit_max_output_tokens (default 4096)"
            )
        return data

    @field_validator("temperatures")
    @classmethod
    def _non_empty(cls, v: list[float]) -> list[float]:
        if not v:
            raise ValueError("temperatures needs at least one value")
        return v


class SelectionConfig(Section):
    top_k: int = Field(default=3, ge=1)
    attempts: int = Field(default=10, ge=1)
    temperature: float = 0.0
    max_output_tokens: int = Field(default=2048, ge=1)
    """A selector reply: one test script or a ``<choice>``; one cut at this limit is never
    parsed (it gets a correction)."""
    voting: Literal["strict", "original"] = "strict"
    """strict: a test votes for a candidate only if it fails on the original code and passes
    on the candidate, identical tests counted once. original: exit 0 on the candidate."""
    allow_test_file_edits: bool = False
    """False: hunks of test files are stripped from every candidate before the matrix (a
    candidate left empty is dropped), so the chosen patch never touches test files."""
    max_file_chars: int = Field(default=60_000, ge=0)
    """Budget for the original contents of the files the top candidates touch, in the
    selector's prompt (files beyond it are listed by name only)."""
    max_output_chars_shown: int = Field(default=3000, ge=200)
    """Per run, how much of a selector-written test's output the model sees back."""
    ensemble_test_trajectories: int = Field(default=3, ge=0)
    """Ensembling: testing state machines run for a problem that has no tests."""
    ensemble_top_k: int = Field(default=5, ge=1)
    """Ensembling: how many distinct candidates the selector sees (the paper sent every
    system's patch, up to 5); replaces ``top_k`` for the ``ensemble`` job."""
    regression: bool = True
    """Run the repository's own tests related to the edited files on the original code and
    on every candidate (``selection/regression.py``); candidates that break a test that
    passed before lose to ones that do not (see ``fusion``)."""
    regression_tests: list[str] = Field(default_factory=list)
    """Test files (or runner ids) to run instead of the discovered ones."""
    regression_command: str | None = None
    """Shell command (from the repo root) instead of the detected runner; ``{tests}`` is
    replaced by the test files, ``{junit}`` by a path the command writes JUnit XML to."""
    regression_max_test_files: int = Field(default=8, ge=1)
    regression_impact: bool = True
    """Run the discovered pytest files once on the original code with probes in the edited
    files and keep only the tests that execute the edited lines or functions (single test ids); the
    whole files when none does (``selection/regression_impact.py``)."""
    regression_timeout_s: float = Field(default=300.0, gt=0)
    """Per run of the related tests."""
    regression_budget_s: float = Field(default=900.0, gt=0)
    """Per problem, for all regression runs (two on the original code, one per candidate);
    candidates not reached in time have no regression evidence."""
    fusion: Literal["regressions-then-votes", "votes"] = "regressions-then-votes"
    """How the verifiers' evidence ranks candidates before the selector (see
    ``selection/fusion.py``): drop voted-for candidates that break tests unless all do, then
    votes; or votes only (the paper's rule)."""


SandboxKindName = Literal["docker", "local", "podman"]
"""The sandbox kinds a user may pick; what each one is: ``sandbox/kinds.py``."""


class SandboxConfig(Section):
    kind: SandboxKindName = "docker"
    image: str = "codemonkeys-sandbox:latest"
    script_timeout_s: float = Field(default=100.0, gt=0)
    max_output_chars: int = Field(default=8192, ge=256)
    memory: str = "4g"
    cpus: float = Field(default=1.0, gt=0)
    pids_limit: int = Field(default=512, ge=16)
    network: bool = False
    scratch_size: str = "1g"
    """tmpfs on /tmp and /var/tmp in each container (counts towards memory)."""
    disk_limit: str = "1g"
    """What one script run may write to the work tree (and the largest file it may write);
    past it the run is killed and recorded as the script's failure."""
    pass_env: list[str] = Field(default_factory=list)
    """Extra host environment variables scripts may see (default: only PATH, LANG, LC_*,
    TZ, TERM, USER, LOGNAME and a scratch HOME; never API keys or tokens)."""
    pool_size: int = Field(default=4, ge=1)
    """Warm containers per problem."""
    max_containers: int = Field(default=16, ge=1)
    """Containers alive at once across the whole run."""
    agent: bool = True
    """Send commands through the in-container command server (docs/sandbox.md); false:
    one ``docker exec`` per command."""
    python_agent: bool = True
    """That server in the image's own python3 where it has a safe one (inotify, patches and
    resets in process: docs/sandbox.md); false: the bash server everywhere."""
    copy_secret_files: list[str] = Field(default_factory=list)
    """Globs of files copied into the sandbox as they are although they look like secrets
    (``context.secret_globs`` or a secret found in them), for tests that need the real
    file (``["tests/certs/*.pem"]``; ``["*"]``: all). By default such files of a local
    repository are replaced by a placeholder of the same name and secret values in other
    files by ``<secret-removed-by-codemonkeys>`` (``codemonkeys/sandbox/secret_copy.py``);
    either way what scripts print is redacted. A SWE-bench image's repository is used as
    it is."""


class RunConfig(Section):
    runs_dir: Path = Path("runs")
    max_cost_usd: float | None = None
    max_cost_per_problem_usd: float | None = None
    max_problems_in_flight: int = Field(default=4, ge=1)
    record_prompts: bool = True
    remove_images_after: bool = False
    executor: Literal["local", "ray"] = "local"  # "ray": as --ray (docs/distributed.md)
    ray_address: str = "auto"
    ray_resource: str = "docker_slots"


class PromptsConfig(Section):
    dir: Path | None = None
    """Your own prompt templates, laid out like the packaged ``prompts/`` (``<stage>/<name>.j2``):
    each replaces the packaged template of its name (``codemonkeys/prompts.py``); fingerprints
    hash the templates used. Made absolute when read (later cwd changes, Ray workers)."""

    _absolute = field_validator("dir")(lambda v: v.resolve() if v is not None else None)


class Config(Section):
    models: ModelsConfig = Field(default_factory=ModelsConfig)
    context: ContextConfig = Field(default_factory=ContextConfig)
    generation: GenerationConfig = Field(default_factory=GenerationConfig)
    selection: SelectionConfig = Field(default_factory=SelectionConfig)
    sandbox: SandboxConfig = Field(default_factory=SandboxConfig)
    run: RunConfig = Field(default_factory=RunConfig)
    prompts: PromptsConfig = Field(default_factory=PromptsConfig)

    def prompt_templates(self) -> PromptTemplates:
        """The templates this config's stages render (packaged, or ``prompts.dir``'s
        overrides); ``PromptOverrideError`` when the directory is unusable."""
        from codemonkeys.prompts import templates_for

        return templates_for(self.prompts.dir)

    def fingerprint(self, stage: str) -> str:
        """Hash of everything that changes a stage's output: its config sections, the
        models it calls and its prompt templates."""
        parts: dict[str, Any] = {"stage": stage}
        if stage == "relevance":
            parts["model"] = self.models.relevance_endpoint().model
            if self.models.relevance_endpoint().base_url:  # another server, other weights
                parts["base_url"] = self.models.relevance_endpoint().base_url
            parts["cfg"] = self.context.model_dump(
                include={
                    "max_file_bytes",
                    "test_dirs",
                    "include_tests",
                    "exclude_globs",
                    "relevance_max_file_tokens",
                    "relevance_temperature",
                    "vendor_dirs",
                    "exclude_generated",
                    "max_line_chars",
                    "prefilter",
                    "prefilter_share",
                    "prefilter_min_files",
                    "secret_globs",
                },
                mode="json",
            )
        elif stage in ("ranking", "context"):
            parts["model"] = self.models.primary.model
            parts["relevance"] = self.fingerprint("relevance")
            parts["cfg"] = self.context.model_dump(mode="json", exclude={"allow_missing_decisions"})
        elif stage == "generation":
            parts["model"] = self.models.primary.model
            parts["context"] = self.fingerprint("context")
            gen = self.generation
            parts["cfg"] = gen.model_dump(
                mode="json",  # fixed-N runs keep their fingerprint: no adaptive fields in it
                exclude=None
                if gen.adaptive
                else {f for f in type(gen).model_fields if f.startswith("adaptive")},
            )
            parts["sandbox"] = self.sandbox.model_dump(
                include={"script_timeout_s", "max_output_chars"}, mode="json"
            )
        elif stage == "selection":
            parts["model"] = self.models.primary.model
            parts["generation"] = self.fingerprint("generation")
            parts["cfg"] = self.selection.model_dump(mode="json")
        else:
            raise ValueError(f"unknown stage {stage!r}")
        parts["prompts"] = self.prompt_templates().stage_hash(stage)
        blob = json.dumps(parts, sort_keys=True, default=str).encode()
        return hashlib.sha256(blob).hexdigest()[:16]
