"""The HTML report and the show page open in real headless Chromium (Debian package
``chromium``) without console errors, and the screenshot is not blank.

Skips when Chromium is missing, except under CI=true where that is a failure.
"""

from __future__ import annotations

import os
import shutil
import struct
import subprocess
import zlib
from pathlib import Path

import pytest

from codemonkeys.report import write_report
from codemonkeys.show import render_show
from tests.unit.test_report_run import make_synthetic_run

pytestmark = pytest.mark.slow

BLUE = (0x25, 0x63, 0xEB)  # PALETTE[0]: the first curve and the first cost bar


@pytest.fixture(scope="module")
def chromium() -> str:
    path = shutil.which("chromium") or shutil.which("chromium-browser")
    if path is None:
        reason = "headless Chromium not installed (Debian: apt-get install -y chromium)"
        if os.environ.get("CI") == "true":
            pytest.fail(f"CI=true but {reason}")
        pytest.skip(reason)
    return path


def run_chromium(
    chromium: str, page: Path, tmp: Path, *extra: str, window: str = "1280,2000"
) -> subprocess.CompletedProcess:
    args = [
        chromium,
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        f"--user-data-dir={tmp / 'chromium-profile'}",
        "--enable-logging=stderr",
        "--v=0",
        f"--window-size={window}",
        *extra,
        page.resolve().as_uri(),
    ]
    return subprocess.run(args, capture_output=True, text=True, timeout=120)


def console_messages(stderr: str) -> list[str]:
    """Chromium logs every page console message (and uncaught error) as ``:CONSOLE``."""
    return [ln for ln in stderr.splitlines() if ":CONSOLE" in ln]


def decode_png(data: bytes) -> tuple[int, int, list[bytes], int]:
    """(width, height, rows, bytes per pixel) of an 8-bit, non-interlaced PNG."""
    assert data[:8] == b"\x89PNG\r\n\x1a\n", "not a PNG"
    pos, idat, header = 8, [], None
    while pos < len(data):
        length, kind = struct.unpack(">I4s", data[pos : pos + 8])
        chunk = data[pos + 8 : pos + 8 + length]
        if kind == b"IHDR":
            header = struct.unpack(">IIBBBBB", chunk)
        elif kind == b"IDAT":
            idat.append(chunk)
        pos += 12 + length
    assert header is not None
    width, height, depth, ctype, _, _, interlace = header
    assert depth == 8 and interlace == 0 and ctype in (2, 6), f"unsupported PNG {header}"
    bpp = 3 if ctype == 2 else 4
    raw = zlib.decompress(b"".join(idat))
    stride = width * bpp
    prev = bytearray(stride)
    rows: list[bytes] = []
    i = 0
    for _ in range(height):
        kind, line = raw[i], bytearray(raw[i + 1 : i + 1 + stride])
        i += 1 + stride
        if kind == 1:
            for x in range(bpp, stride):
                line[x] = (line[x] + line[x - bpp]) & 255
        elif kind == 2:
            line = bytearray((a + b) & 255 for a, b in zip(line, prev, strict=True))
        elif kind == 3:
            for x in range(stride):
                left = line[x - bpp] if x >= bpp else 0
                line[x] = (line[x] + ((left + prev[x]) >> 1)) & 255
        elif kind == 4:
            for x in range(stride):
                a = line[x - bpp] if x >= bpp else 0
                b, c = prev[x], (prev[x - bpp] if x >= bpp else 0)
                p = a + b - c
                pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
                line[x] = (line[x] + (a if pa <= pb and pa <= pc else b if pb <= pc else c)) & 255
        rows.append(bytes(line))
        prev = line
    return width, height, rows, bpp


def pixel_stats(png: Path) -> dict[str, float]:
    width, height, rows, bpp = decode_png(png.read_bytes())
    non_white = near_blue = sampled = 0
    colours: set[tuple[int, int, int]] = set()
    for row in rows[::2]:  # every other row and column: plenty to tell a page from a blank
        for x in range(0, width * bpp, 2 * bpp):
            sampled += 1
            r, g, b = row[x], row[x + 1], row[x + 2]
            if r < 235 or g < 235 or b < 235:
                non_white += 1
            if abs(r - BLUE[0]) < 24 and abs(g - BLUE[1]) < 24 and abs(b - BLUE[2]) < 24:
                near_blue += 1
            if len(colours) < 5000:
                colours.add((r >> 3, g >> 3, b >> 3))
    return {
        "non_white": non_white / sampled,
        "blue_pixels": near_blue,
        "colours": len(colours),
        "width": width,
        "height": height,
    }


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory) -> Path:
    return make_synthetic_run(tmp_path_factory.mktemp("html"))


def test_console_check_catches_a_broken_page(chromium, tmp_path):
    """Control: the detector used below really sees console errors."""
    page = tmp_path / "broken.html"
    page.write_text("<!DOCTYPE html><p>x</p><script>console.error('boom'); undefinedFn();</script>")
    proc = run_chromium(chromium, page, tmp_path, "--dump-dom", window="400,300")
    messages = console_messages(proc.stderr)
    assert any("boom" in m for m in messages) and any("undefinedFn" in m for m in messages), (
        proc.stderr[-2000:]
    )


def test_report_html_is_self_contained_and_renders(chromium, run_dir, tmp_path):
    _, html_path = write_report(run_dir, tmp_path / "report.html")
    page = html_path.read_text()
    # Self-contained: no scripts, stylesheets, fonts or images fetched from anywhere.
    for needle in ("<script", "<link", "src=", "@import", "url(", "http://", "https://"):
        assert needle not in page, f"report references external content: {needle}"
    assert page.count("<svg") >= 3  # cost bars + two curves

    png = tmp_path / "report.png"
    proc = run_chromium(chromium, html_path, tmp_path, f"--screenshot={png}")
    assert png.is_file() and png.stat().st_size > 10_000, proc.stderr[-2000:]
    assert console_messages(proc.stderr) == []
    stats = pixel_stats(png)
    assert (stats["width"], stats["height"]) == (1280, 2000)
    assert stats["non_white"] > 0.01, stats  # text, tables, cards and plots, not a blank page
    assert stats["blue_pixels"] > 150, stats  # (sampled 1 in 4) the SVG bars and curves were drawn
    assert stats["colours"] > 30, stats


def test_show_page_renders_and_shows_model_text_as_text(chromium, run_dir, tmp_path):
    page = tmp_path / "show.html"
    page.write_text(render_show(run_dir, "demo__lib-2"))
    png = tmp_path / "show.png"
    shot = run_chromium(chromium, page, tmp_path, f"--screenshot={png}", window="1280,1600")
    assert console_messages(shot.stderr) == []
    assert pixel_stats(png)["non_white"] > 0.01
    dom = run_chromium(chromium, page, tmp_path, "--dump-dom").stdout
    # The hostile message is in the document as text, never as markup.
    assert "<script" not in dom
    assert "&lt;script&gt;alert('pwned')&lt;/script&gt;" in dom
    assert "<b>not bold</b>" not in dom
    assert "demo__lib-2" in dom and "Selection transcript" in dom
