"""Environment detection and the cached environment image: the example's test suite passes
in a container built from it, with the repository copied in at the base commit."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from codemonkeys.localrepo import export_tree, open_repo
from codemonkeys.sandbox.environment import (
    EnvironmentBuildError,
    build_environment_image,
    build_from_dockerfile,
    default_test_language,
    detect_environment,
    dockerfile_text,
    image_tag,
)
from tests.conftest import FIXTURES, ROOT, make_git_repo

EXAMPLE = ROOT / "examples" / "inventory"


def write(root: Path, files: dict[str, str]) -> Path:
    for rel, text in files.items():
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_text(text)
    return root


# ---------------------------------------------------------------------------- detection


def test_detects_the_example_as_python():
    plan = detect_environment(EXAMPLE)
    assert plan.kind == "python"
    assert plan.detected == ["pyproject.toml"]
    assert plan.copy_whole_tree
    assert any("pip install -e" in c for c in plan.commands)
    assert "pyproject.toml" in plan.describe()
    assert default_test_language(plan.kind) == "python"


def test_python_variants(tmp_path: Path):
    reqs = write(
        tmp_path / "reqs",
        {"requirements.txt": "attrs\n", "requirements-dev.txt": "pytest\n", "app.py": ""},
    )
    plan = detect_environment(reqs)
    assert plan.kind == "python"
    assert plan.commands[:2] == [
        "pip install -r requirements-dev.txt",
        "pip install -r requirements.txt",
    ]
    assert not plan.copy_whole_tree  # nothing to install from source
    assert "(python -c 'import pytest' 2>/dev/null || pip install pytest)" in plan.commands

    extras = write(
        tmp_path / "extras",
        {
            "pyproject.toml": '[project]\nname="x"\nversion="1"\n'
            '[project.optional-dependencies]\ntest=["pytest"]\ndocs=["sphinx"]\n'
        },
    )
    assert any("-e '.[test]'" in c for c in detect_environment(extras).commands)

    legacy = write(tmp_path / "legacy", {"setup.py": "from setuptools import setup\nsetup()\n"})
    assert detect_environment(legacy).kind == "python"

    # a pyproject holding only tool settings is not an installable package
    tools = write(tmp_path / "tools", {"pyproject.toml": "[tool.ruff]\nline-length = 100\n"})
    plan = detect_environment(tools)
    assert plan.kind == "python" and not plan.needs_build

    # Python packaging wins over a package.json (e.g. docs tooling)
    both = write(tmp_path / "both", {"setup.py": "", "package.json": "{}"})
    assert detect_environment(both).kind == "python"


def test_node_go_and_generic(tmp_path: Path):
    node = FIXTURES / "node_project"
    plan = detect_environment(node)
    assert plan.kind == "node"
    # no dependencies declared: the runtime only (Debian's npm is ~250 packages)
    assert plan.apt_packages == ["nodejs"] and plan.commands == []
    assert default_test_language(plan.kind) == "shell"

    deps = '{"dependencies": {"left-pad": "^1.3.0"}}'
    unlocked = write(tmp_path / "unlocked", {"package.json": deps})
    plan = detect_environment(unlocked)
    assert plan.apt_packages == ["nodejs", "npm"]
    assert "npm install" in " ".join(plan.commands)

    locked = write(tmp_path / "locked", {"package.json": deps, "package-lock.json": "{}"})
    plan = detect_environment(locked)
    assert "npm ci" in " ".join(plan.commands)
    assert plan.dependency_files == ["package.json", "package-lock.json"]

    go = write(tmp_path / "go", {"go.mod": "module example.com/x\n\ngo 1.19\n", "main.go": ""})
    plan = detect_environment(go)
    assert plan.kind == "go" and "go mod download" in " ".join(plan.commands)
    assert default_test_language("go") == "shell"

    generic = write(tmp_path / "generic", {"Makefile": "all:\n", "tool.sh": "echo hi\n"})
    plan = detect_environment(generic)
    assert plan.kind == "generic" and not plan.needs_build
    assert "generic sandbox image as is" in plan.describe()


def test_dockerfiles_install_dependencies_and_trust_the_host_ca(tmp_path: Path):
    node_dir = write(tmp_path / "node", {"package.json": '{"devDependencies": {"tap": "1"}}'})
    node = dockerfile_text(detect_environment(node_dir), "base:1")
    assert node.startswith("FROM base:1\n")
    assert "apt-get install" in node and "nodejs npm" in node
    assert "NODE_EXTRA_CA_CERTS=" in node and "PIP_CERT=" in node and "SSL_CERT_FILE=" in node
    assert "mv /opt/codemonkeys-deps/node_modules /node_modules" in node
    assert "PATH=/node_modules/.bin:" in node

    go_dir = write(tmp_path / "go", {"go.mod": "module x\n", "go.sum": ""})
    go = dockerfile_text(detect_environment(go_dir), "base:1")
    assert "golang-go" in go and "go mod download" in go and "GOTOOLCHAIN=local" in go

    # the repository itself never stays in the image: the sandbox copies it in
    py = dockerfile_text(detect_environment(EXAMPLE), "base:1")
    assert py.index("pip install -e") < py.index("RUN find /repo -mindepth 1 -delete")


def test_image_tag_follows_dependency_files_not_source(tmp_path: Path):
    proj = write(tmp_path / "p", {"requirements.txt": "attrs\n", "app.py": "x = 1\n"})
    plan = detect_environment(proj)
    tag = image_tag(plan, proj, "sha256:base", "FROM b\n")
    assert tag.startswith("codemonkeys-env:python-")
    (proj / "app.py").write_text("x = 2\n")
    assert image_tag(plan, proj, "sha256:base", "FROM b\n") == tag
    assert image_tag(plan, proj, "sha256:other", "FROM b\n") != tag
    (proj / "requirements.txt").write_text("attrs\nrich\n")
    assert image_tag(plan, proj, "sha256:base", "FROM b\n") != tag


# ---------------------------------------------------------------------------- Docker


@pytest.fixture(scope="module")
def example_repo(tmp_path_factory) -> tuple[Path, str]:
    """The example as its own git checkout (as a user would have it)."""
    repo = tmp_path_factory.mktemp("example") / "inventory"
    shutil.copytree(EXAMPLE, repo, ignore=shutil.ignore_patterns("__pycache__", "*.egg-info"))
    files = {p.relative_to(repo).as_posix(): p.read_bytes() for p in repo.rglob("*") if p.is_file()}
    sha = make_git_repo(repo, files)
    return repo, sha


@pytest.mark.docker
@pytest.mark.slow
def test_python_env_image_runs_the_example_suite_and_is_cached(
    docker_client, sandbox_image, example_repo, tmp_path: Path
):
    from codemonkeys.sandbox import DockerSandbox, SandboxSpec

    repo_path, sha = example_repo
    local = open_repo(repo_path)
    tree = tmp_path / "tree"
    export_tree(local, sha, tree)
    plan = detect_environment(tree)
    assert plan.kind == "python"

    tag = image_tag(
        plan, tree, docker_client.images.get(sandbox_image).id, dockerfile_text(plan, sandbox_image)
    )
    if any(tag in (img.tags or []) for img in docker_client.images.list(name="codemonkeys-env")):
        docker_client.images.remove(tag, force=True)  # measure a real first build

    first = build_environment_image(tree, plan, base_image=sandbox_image, client=docker_client)
    assert first.tag == tag and not first.cached and first.seconds > 0
    assert "built in" in first.describe(plan)
    again = build_environment_image(tree, plan, base_image=sandbox_image, client=docker_client)
    assert again.tag == first.tag and again.cached and "cached" in again.describe(plan)
    labels = docker_client.images.get(first.tag).labels
    assert labels["org.codemonkeys.managed"] == "1" and labels["org.codemonkeys.kind"] == "python"

    spec = SandboxSpec(image=first.tag, repo_path=repo_path, base_commit=sha)
    with DockerSandbox(spec, docker_client) as box:
        suite = box.run("python -m unittest discover -s tests", timeout=120)
        assert suite.exit_code == 0, suite.output
        assert "OK" in suite.output
        # the package is installed (editable into /repo), not merely importable from cwd
        where = box.run("cd /tmp && python -c 'import inventory; print(inventory.__file__)'")
        assert where.exit_code == 0 and where.output.strip() == "/repo/inventory/__init__.py"
        # and the bug of ISSUE.md is present at the base commit
        repro = box.run(
            'python -c "import io; from inventory.catalog import load_catalog; '
            "from inventory.orders import quote; c = load_catalog(io.StringIO("
            "'sku,name,unit_price,reorder_level,discounts\\nWID-1,W,2.50,20,10:5;50:10;100:15\\n'));"
            " q = quote(c, {'WID-1': 120}); print(q.lines[0].discount_percent, q.total)\""
        )
        assert repro.output.strip() == "5 285.00", repro.output


@pytest.mark.docker
def test_generic_project_uses_the_sandbox_image(docker_client, sandbox_image, tmp_path: Path):
    proj = write(tmp_path / "g", {"run.sh": "echo hi\n"})
    built = build_environment_image(
        proj, detect_environment(proj), base_image=sandbox_image, client=docker_client
    )
    assert built.tag == sandbox_image and built.cached


@pytest.mark.docker
def test_missing_base_image_is_a_clear_error(docker_client, tmp_path: Path):
    proj = write(tmp_path / "p", {"requirements.txt": "-r does-not-exist.txt\n"})
    plan = detect_environment(proj)
    with pytest.raises(EnvironmentBuildError, match="base image nope:missing not found"):
        build_environment_image(proj, plan, base_image="nope:missing", client=docker_client)


@pytest.mark.docker
def test_failing_install_reports_log_and_alternatives(docker_client, sandbox_image, tmp_path: Path):
    proj = write(tmp_path / "p", {"requirements.txt": "-r does-not-exist.txt\n"})
    with pytest.raises(EnvironmentBuildError) as err:
        build_environment_image(
            proj, detect_environment(proj), base_image=sandbox_image, client=docker_client
        )
    msg = str(err.value)
    assert "does-not-exist.txt" in msg
    assert "--image" in msg and "--dockerfile" in msg and "--sandbox local" in msg


@pytest.mark.docker
def test_build_from_users_dockerfile(docker_client, sandbox_image, tmp_path: Path):
    ctx = write(tmp_path / "ctx", {"marker.txt": "from the context\n"})
    dockerfile = (
        write(
            tmp_path / "docker",
            {"Dockerfile": f"FROM {sandbox_image}\nCOPY marker.txt /opt/marker.txt\n"},
        )
        / "Dockerfile"
    )
    tag = build_from_dockerfile(dockerfile, docker_client, context=ctx)
    try:
        assert tag.startswith("codemonkeys-env:dockerfile-")
        out = docker_client.containers.run(tag, ["cat", "/opt/marker.txt"], remove=True)
        assert out.decode() == "from the context\n"
        labels = docker_client.images.get(tag).labels
        assert labels["org.codemonkeys.managed"] == "1"
    finally:
        docker_client.images.remove(tag, force=True)  # the tag hashes the tmp context path
    with pytest.raises(EnvironmentBuildError, match="not found"):
        build_from_dockerfile(tmp_path / "nope" / "Dockerfile", docker_client)


@pytest.mark.docker
@pytest.mark.slow
def test_node_env_image_runs_the_fixture_suite(docker_client, sandbox_image, tmp_path: Path):
    """Node from Debian on top of the sandbox image (the fixture declares no dependencies,
    so npm, ~250 Debian packages and minutes of apt, is not installed)."""
    from codemonkeys.sandbox import DockerSandbox, SandboxSpec

    repo = tmp_path / "node"
    shutil.copytree(FIXTURES / "node_project", repo)
    sha = make_git_repo(repo, {})
    plan = detect_environment(repo)
    built = build_environment_image(repo, plan, base_image=sandbox_image, client=docker_client)
    assert built.tag.startswith("codemonkeys-env:node-")
    spec = SandboxSpec(image=built.tag, repo_path=repo, base_commit=sha)
    with DockerSandbox(spec, docker_client) as box:
        suite = box.run("node --test test/", timeout=120)
        assert suite.exit_code == 0, suite.output
        assert "# pass 4" in suite.output
