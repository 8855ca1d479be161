"""An image to run a local project's tests in, for ``solve`` without ``--image``.

We detect the project kind from its dependency files and build an image *on top of* the
generic sandbox image with the dependencies installed. The repository itself is not baked
in: the sandbox copies it into /repo at the base commit, so one image serves every commit
whose dependency files are the same. That is also the cache key: the tag is
``codemonkeys-env:<kind>-<hash of the dependency files, the recipe and the base image id>``,
so a second ``solve`` on the same project reuses the image without building.

Installs need the network, the sandbox later runs without it; so images are built with
host networking, and pip/npm/go are pointed at the host's CA bundle (machines behind a
TLS-inspecting proxy otherwise fail every download).

Where dependencies go, so that the sandbox's copy of the repo into /repo finds them:
- Python: ``pip install -e .`` from a copy at /repo (the editable finder points at /repo,
  where the sandbox puts the code), then the copy is removed; requirements files are
  installed as-is.
- Node: ``npm ci`` (or ``npm install``) in a scratch directory, then node_modules is moved to
  ``/node_modules``: Node resolves modules by walking up from /repo, so it finds them
  whatever the sandbox does with /repo itself.
- Go: ``go mod download`` fills the module cache (/root/go/pkg/mod), independent of /repo.
"""

from __future__ import annotations

import hashlib
import json
import logging
import re
import shutil
import subprocess
import time
import tomllib
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Literal, NamedTuple

from pydantic import BaseModel, Field

from codemonkeys.errors import CodemonkeysError
from codemonkeys.sandbox.images import image_exists
from codemonkeys.tempdirs import temp_dir

if TYPE_CHECKING:
    from docker import DockerClient

log = logging.getLogger(__name__)

CONTAINERS = Path(__file__).resolve().parents[2] / "containers"
"""The generic sandbox image's Dockerfile and offline build script."""

ProjectKind = Literal["python", "node", "go", "generic"]

DEFAULT_BASE_IMAGE = "codemonkeys-sandbox:latest"
ENV_REPOSITORY = "codemonkeys-env"
HOST_CA_BUNDLE = Path("/etc/ssl/certs/ca-certificates.crt")
CA_IN_IMAGE = "/usr/local/share/codemonkeys/host-ca.crt"
MANAGED_LABELS = {"org.codemonkeys.managed": "1", "org.codemonkeys.image": "env"}
TEST_EXTRAS = ("test", "tests", "testing", "dev")
_PYTHON_MARKERS = ("pyproject.toml", "setup.py", "setup.cfg")


class EnvironmentBuildError(CodemonkeysError, RuntimeError):
    """The environment image could not be built; the message carries the build log's tail
    and what to try instead (--image, --dockerfile, --sandbox local)."""


class EnvironmentPlan(BaseModel):
    kind: ProjectKind
    detected: list[str] = Field(default_factory=list)
    """The marker files that decided the kind (all of them, also other kinds' markers)."""
    dependency_files: list[str] = Field(default_factory=list)
    """Files whose content determines the image; they are hashed into the tag."""
    copy_whole_tree: bool = False
    """The install needs the project's source (``pip install -e .``)."""
    apt_packages: list[str] = Field(default_factory=list)
    commands: list[str] = Field(default_factory=list)
    """Shell commands run at build time, in order."""
    steps: list[str] = Field(default_factory=list)
    """The commands as the user reads them (``commands`` carry fallbacks and plumbing)."""
    env: dict[str, str] = Field(default_factory=dict)
    """Extra environment of the image (PATH for node binaries, ...)."""
    notes: list[str] = Field(default_factory=list)

    @property
    def needs_build(self) -> bool:
        return bool(self.commands or self.apt_packages)

    def describe(self) -> str:
        """One or two lines for the user: what was detected and what will be installed."""
        found = ", ".join(self.detected) if self.detected else "no dependency files"
        if not self.needs_build:
            line = f"project kind: {self.kind} ({found}); using the generic sandbox image as is"
        else:
            steps = [f"apt-get install {' '.join(self.apt_packages)}"] if self.apt_packages else []
            steps += self.steps or self.commands
            line = (
                f"project kind: {self.kind} ({found}); building an environment image: "
                + "; ".join(steps)
            )
        return "\n".join([line, *self.notes])


class BuiltImage(NamedTuple):
    tag: str
    seconds: float
    cached: bool

    def describe(self, plan: EnvironmentPlan | None = None) -> str:
        what = f"{plan.kind} environment" if plan else "environment"
        if self.cached:
            return f"{what} image {self.tag} (cached, no build)"
        return f"{what} image {self.tag} built in {self.seconds:.0f}s"


def default_test_language(kind: str) -> Literal["python", "shell"]:
    """The language model-written tests use: Python projects get Python scripts, every
    other kind a shell script (which can call node/go/make)."""
    return "python" if kind == "python" else "shell"


# ---------------------------------------------------------------------------- detection


def detect_environment(repo_dir: Path) -> EnvironmentPlan:
    """Decide the project kind from marker files at the top of ``repo_dir``.

    Priority: Python packaging files, then package.json, then go.mod, then plain
    requirements files; anything else is "generic" (the sandbox image as is)."""
    repo_dir = Path(repo_dir)
    if not repo_dir.is_dir():
        raise FileNotFoundError(f"{repo_dir} is not a directory")
    requirements = sorted(p.name for p in repo_dir.glob("requirements*.txt") if p.is_file())
    detected = [m for m in _PYTHON_MARKERS if (repo_dir / m).is_file()] + requirements
    for m in ("package.json", "package-lock.json", "go.mod", "go.sum"):
        if (repo_dir / m).is_file():
            detected.append(m)
    names = set(detected)
    if names & set(_PYTHON_MARKERS):
        return _python_plan(repo_dir, detected, requirements)
    if "package.json" in names:
        return _node_plan(repo_dir, detected)
    if "go.mod" in names:
        return _go_plan(detected)
    if requirements:
        return _python_plan(repo_dir, detected, requirements)
    return EnvironmentPlan(kind="generic", detected=detected)


def _python_plan(repo_dir: Path, detected: list[str], requirements: list[str]) -> EnvironmentPlan:
    notes: list[str] = []
    commands = [f"pip install -r {r}" for r in requirements]
    steps = list(commands)
    installable = (repo_dir / "setup.py").is_file()
    extras: list[str] = []
    pyproject = repo_dir / "pyproject.toml"
    if pyproject.is_file():
        try:
            data = tomllib.loads(pyproject.read_text(errors="replace"))
        except tomllib.TOMLDecodeError as e:
            data = {}
            notes.append(f"pyproject.toml does not parse ({e}); installing it may fail")
        installable = installable or "build-system" in data or "project" in data
        optional = (data.get("project") or {}).get("optional-dependencies") or {}
        extras = [e for e in TEST_EXTRAS if e in optional]
    if (repo_dir / "setup.cfg").is_file() and not installable:
        installable = "[metadata]" in (repo_dir / "setup.cfg").read_text(errors="replace")
    if installable:
        target = f".[{','.join(extras)}]" if extras else "."
        # Build isolation downloads the build backend; Debian's setuptools is the fallback
        # for offline-ish machines.
        commands.append(
            f"(pip install -e '{target}' || pip install --no-build-isolation -e '{target}')"
        )
        steps.append(f"pip install -e {target}")
    if _mentions_pytest(repo_dir, detected):
        commands.append("(python -c 'import pytest' 2>/dev/null || pip install pytest)")
        steps.append("pip install pytest (when missing)")
    deps = list(detected)
    return EnvironmentPlan(
        kind="python",
        detected=detected,
        dependency_files=[d for d in deps if not d.startswith(("package", "go."))],
        copy_whole_tree=installable,
        commands=commands,
        steps=steps,
        notes=notes,
    )


def _mentions_pytest(repo_dir: Path, detected: list[str]) -> bool:
    if any((repo_dir / f).is_file() for f in ("pytest.ini", "conftest.py", "tox.ini")):
        return True
    for name in detected:
        if name.startswith(("package", "go.")):
            continue
        text = (repo_dir / name).read_text(errors="replace")
        if re.search(r"\bpytest\b", text):
            return True
    return False


def _node_plan(repo_dir: Path, detected: list[str]) -> EnvironmentPlan:
    has_lock = (repo_dir / "package-lock.json").is_file()
    files = ["package.json"] + (["package-lock.json"] if has_lock else [])
    notes = []
    if (repo_dir / "yarn.lock").is_file() or (repo_dir / "pnpm-lock.yaml").is_file():
        notes.append("a yarn/pnpm lock file is present; installing with npm anyway")
    if not _node_has_dependencies(repo_dir / "package.json"):
        # Debian's npm drags in ~250 packages (minutes of apt); a project without
        # dependencies only needs the runtime.
        return EnvironmentPlan(
            kind="node",
            detected=detected,
            dependency_files=files,
            apt_packages=["nodejs"],
            notes=[*notes, "package.json declares no dependencies: installing Node only"],
        )
    install = "npm ci" if has_lock else "npm install"
    return EnvironmentPlan(
        kind="node",
        detected=detected,
        dependency_files=files,
        apt_packages=["nodejs", "npm"],
        commands=[
            "mkdir -p /opt/codemonkeys-deps && cp package*.json /opt/codemonkeys-deps/",
            f"cd /opt/codemonkeys-deps && {install} --no-audit --no-fund && mkdir -p node_modules",
            # Node looks for node_modules in every parent of /repo, so / works whatever
            # the sandbox does with /repo.
            "mv /opt/codemonkeys-deps/node_modules /node_modules && rm -rf /opt/codemonkeys-deps",
        ],
        steps=[f"{install} (node_modules in /node_modules)"],
        env={
            "PATH": "/node_modules/.bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
        },
        notes=notes,
    )


def _node_has_dependencies(package_json: Path) -> bool:
    """True unless package.json parses and lists no (dev/optional/peer) dependencies."""
    try:
        data = json.loads(package_json.read_text(errors="replace"))
    except (OSError, ValueError):
        return True  # let npm report what is wrong with it
    if not isinstance(data, dict):
        return True
    keys = ("dependencies", "devDependencies", "optionalDependencies", "peerDependencies")
    return any(data.get(k) for k in keys)


def _go_plan(detected: list[str]) -> EnvironmentPlan:
    files: list[str] = [f for f in ("go.mod", "go.sum") if f in detected]
    return EnvironmentPlan(
        kind="go",
        detected=detected,
        dependency_files=files,
        apt_packages=["golang-go"],
        steps=["go mod download"],
        commands=[
            "mkdir -p /opt/codemonkeys-deps && cp go.mod go.sum* /opt/codemonkeys-deps/",
            "cd /opt/codemonkeys-deps && go mod download && rm -rf /opt/codemonkeys-deps",
        ],
        # Never fetch a newer toolchain at test time: the sandbox has no network.
        env={"GOTOOLCHAIN": "local", "GOFLAGS": "-mod=mod"},
        notes=["Go comes from Debian (golang-go); a go.mod needing a newer Go may not build"],
    )


# ---------------------------------------------------------------------------- Dockerfile


def dockerfile_text(plan: EnvironmentPlan, base_image: str, *, with_ca: bool = True) -> str:
    """The Dockerfile for ``plan``. The build context holds the dependency files under
    ``project/`` (the whole tree when the install needs the source) and ``host-ca.crt``."""
    lines = [f"FROM {base_image}"]
    if with_ca:
        lines += [
            f"COPY host-ca.crt {CA_IN_IMAGE}",
            f"ENV PIP_CERT={CA_IN_IMAGE} REQUESTS_CA_BUNDLE={CA_IN_IMAGE} "
            f"NODE_EXTRA_CA_CERTS={CA_IN_IMAGE} SSL_CERT_FILE={CA_IN_IMAGE} "
            f"npm_config_cafile={CA_IN_IMAGE}",
        ]
    if plan.apt_packages:
        lines.append(
            "RUN apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "
            f"--no-install-recommends {' '.join(plan.apt_packages)} "
            "&& rm -rf /var/lib/apt/lists/*"
        )
    if plan.env:
        lines.append("ENV " + " ".join(f"{k}={v}" for k, v in sorted(plan.env.items())))
    if plan.commands:
        lines += ["COPY project/ /repo/", "WORKDIR /repo"]
        lines.append("RUN " + " \\\n && ".join(plan.commands))
        # The repository is not part of the image: the sandbox copies it in at the base
        # commit. Keep /repo itself (editable installs point into it).
        lines.append("RUN find /repo -mindepth 1 -delete")
    lines += [
        "WORKDIR /repo",
        # org.codemonkeys.managed/image come from the build's labels (also for --dockerfile)
        f'LABEL org.codemonkeys.kind="{plan.kind}"',
    ]
    return "\n".join(lines) + "\n"


def image_tag(plan: EnvironmentPlan, repo_dir: Path, base_image_id: str, dockerfile: str) -> str:
    """``codemonkeys-env:<kind>-<hash>``; the hash covers what decides the image's content."""
    h = hashlib.sha256()
    h.update(base_image_id.encode() + b"\0" + dockerfile.encode() + b"\0")
    for name in sorted(plan.dependency_files):
        path = Path(repo_dir) / name
        h.update(name.encode() + b"\0")
        h.update(path.read_bytes() if path.is_file() else b"<missing>")
        h.update(b"\0")
    return f"{ENV_REPOSITORY}:{plan.kind}-{h.hexdigest()[:16]}"


# ---------------------------------------------------------------------------- building


def build_environment_image(
    repo_dir: Path,
    plan: EnvironmentPlan,
    *,
    base_image: str = DEFAULT_BASE_IMAGE,
    client,
    timeout: float = 1800,
    on_log: Callable[[str], None] | None = None,
) -> BuiltImage:
    """Build (or reuse) the environment image for the project at ``repo_dir`` (a checkout
    or an exported tree at the base commit). Returns (tag, seconds, cached)."""
    import docker.errors

    try:
        base = client.images.get(base_image)
    except docker.errors.ImageNotFound:
        raise EnvironmentBuildError(
            f"base image {base_image} not found; build it with "
            "`bash containers/build-offline-image.sh` (or docker build -f containers/Dockerfile)"
        ) from None
    if not plan.needs_build:
        return BuiltImage(base_image, 0.0, True)
    with_ca = HOST_CA_BUNDLE.is_file()
    dockerfile = dockerfile_text(plan, base_image, with_ca=with_ca)
    tag = image_tag(plan, repo_dir, base.id, dockerfile)
    try:
        client.images.get(tag)
        return BuiltImage(tag, 0.0, True)
    except docker.errors.ImageNotFound:
        pass

    start = time.monotonic()
    with temp_dir("envbuild") as ctx:
        (ctx / "Dockerfile").write_text(dockerfile)
        if with_ca:
            shutil.copyfile(HOST_CA_BUNDLE, ctx / "host-ca.crt")
        project = ctx / "project"
        if plan.copy_whole_tree:
            shutil.copytree(repo_dir, project, symlinks=True, ignore=shutil.ignore_patterns(".git"))
        else:
            project.mkdir()
            for name in plan.dependency_files:
                src = Path(repo_dir) / name
                if src.is_file():
                    shutil.copyfile(src, project / name)
        log = _run_build(client, ctx, tag, timeout, on_log)
    try:
        client.images.get(tag)
    except docker.errors.ImageNotFound:
        raise EnvironmentBuildError(_failure(plan, log, "the build produced no image")) from None
    return BuiltImage(tag, time.monotonic() - start, False)


def _run_build(
    client, ctx: Path, tag: str, timeout: float, on_log, dockerfile: str | None = None
) -> list[str]:
    """Stream a build through the low-level API (its own HTTP timeout: quiet apt/pip steps
    can exceed a short client timeout). Raises on a failed step with the log's tail."""
    log: list[str] = []
    for chunk in client.api.build(
        path=str(ctx),
        dockerfile=dockerfile,
        tag=tag,
        rm=True,
        forcerm=True,
        network_mode="host",
        labels=dict(MANAGED_LABELS),
        decode=True,
        timeout=int(timeout),
    ):
        if "stream" in chunk:
            for line in chunk["stream"].splitlines():
                if line.strip():
                    log.append(line)
                    if on_log:
                        on_log(line)
        if "error" in chunk:
            log.append(chunk["error"].strip())
            raise EnvironmentBuildError(_failure(None, log, chunk["error"].strip()))
    return log


def _failure(plan: EnvironmentPlan | None, log: list[str], reason: str) -> str:
    tail = "\n".join(f"  {line}" for line in log[-25:])
    kind = f"{plan.kind} " if plan else ""
    return (
        f"building the {kind}environment image failed: {reason}\n{tail}\n"
        "Alternatives: --image IMG (an image with your dependencies), --dockerfile FILE, "
        "or --sandbox local (runs on this machine, no isolation)."
    )


def build_from_dockerfile(
    path: Path,
    client,
    *,
    context: Path | None = None,
    tag: str | None = None,
    timeout: float = 1800,
    on_log: Callable[[str], None] | None = None,
) -> str:
    """Build the user's own Dockerfile (context: its directory unless given) with host
    networking; returns the tag. Docker's layer cache makes a rebuild cheap."""
    path = Path(path)
    if not path.is_file():
        raise EnvironmentBuildError(f"Dockerfile {path} not found")
    context = Path(context) if context else path.parent
    if tag is None:
        digest = hashlib.sha256(path.read_bytes() + str(context.resolve()).encode()).hexdigest()
        tag = f"{ENV_REPOSITORY}:dockerfile-{digest[:16]}"
    _run_build(client, context.resolve(), tag, timeout, on_log, dockerfile=str(path.resolve()))
    return tag


def ensure_sandbox_image(image: str, client: DockerClient, say: Callable[[str], None]) -> None:
    """Build the generic sandbox image when absent: from a registry base when one is
    reachable, else offline from Debian packages."""
    if image_exists(image, client):
        return
    say(f"building the generic sandbox image {image} (once) ...")
    t0 = time.monotonic()
    try:
        client.images.build(
            path=str(CONTAINERS), dockerfile="Dockerfile", tag=image, rm=True, pull=True
        )
    except Exception as e:
        log.info("registry build failed (%s); building offline from Debian packages", e)
        proc = subprocess.run(
            ["bash", str(CONTAINERS / "build-offline-image.sh"), image],
            capture_output=True,
            text=True,
        )
        if proc.returncode != 0:
            raise EnvironmentBuildError(
                f"could not build the sandbox image {image}:\n{proc.stdout[-2000:]}{proc.stderr[-2000:]}"
            ) from None
    say(f"sandbox image built in {time.monotonic() - t0:.0f}s")
