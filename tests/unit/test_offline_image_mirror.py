"""containers/build-offline-image.sh takes the Debian mirror from the host's apt
configuration (one-line and deb822 formats) or a flag, not a host name written in it."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

from tests.conftest import ROOT

SCRIPT = ROOT / "containers" / "build-offline-image.sh"


def _mirror(apt: Path, *args: str, **env: str) -> subprocess.CompletedProcess:
    environ = {k: v for k, v in os.environ.items() if k != "DEBIAN_MIRROR"}
    environ.update(APT_ETC_DIR=str(apt), **env)
    return subprocess.run(
        ["bash", str(SCRIPT), "--print-mirror", *args],
        capture_output=True,
        text=True,
        env=environ,
        timeout=60,
    )


def test_the_mirror_comes_from_deb822_sources_skipping_other_repositories(tmp_path):
    apt = tmp_path / "apt"
    (apt / "sources.list.d").mkdir(parents=True)
    (apt / "sources.list").write_text(
        "# docker's repository: a release suite but no 'main'\n"
        "deb [arch=amd64 signed-by=/etc/apt/keyrings/docker.gpg] "
        "https://download.docker.com/linux/debian bookworm stable\n"
    )
    (apt / "sources.list.d" / "a-security.sources").write_text(
        "Types: deb\nURIs: http://security.example/debian-security\n"
        "Suites: bookworm-security\nComponents: main\n"
    )
    (apt / "sources.list.d" / "b-off.sources").write_text(
        "Types: deb\nURIs: http://disabled.example/debian\nSuites: bookworm\n"
        "Components: main\nEnabled: no\n"
    )
    (apt / "sources.list.d" / "c-old.sources.disabled").write_text(
        "Types: deb\nURIs: http://not-a-source-file.example/debian\nSuites: bookworm\n"
        "Components: main\n"
    )
    (apt / "sources.list.d" / "debian.sources").write_text(
        "Types: deb\n# http://snapshot.debian.org/archive/debian/20250520T000000Z\n"
        "URIs: http://mirror.internal.example/debian/\nSuites: bookworm bookworm-updates\n"
        "Components: main contrib\nSigned-By: /usr/share/keyrings/debian-archive-keyring.gpg\n"
    )
    proc = _mirror(apt)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "http://mirror.internal.example/debian"


def test_one_line_sources_a_flag_and_the_environment(tmp_path):
    apt = tmp_path / "apt"
    apt.mkdir()
    (apt / "sources.list").write_text(
        "deb-src http://src.example/debian bookworm main\n"
        "deb http://ftp.example.org/debian bookworm main contrib  # the mirror\n"
    )
    assert _mirror(apt).stdout.strip() == "http://ftp.example.org/debian"
    flagged = _mirror(apt, "--mirror", "http://flag.example/debian")
    assert flagged.stdout.strip() == "http://flag.example/debian"
    env = _mirror(apt, DEBIAN_MIRROR="http://env.example/debian")
    assert env.stdout.strip() == "http://env.example/debian"


def test_no_debian_mirror_in_apt_is_a_clear_error(tmp_path):
    proc = _mirror(tmp_path / "empty")
    assert proc.returncode == 2
    assert "no Debian mirror found" in proc.stderr and "--mirror URL" in proc.stderr
