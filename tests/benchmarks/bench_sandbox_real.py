"""Benchmark: the warm sandbox cycle on the real SWE-bench instance images.

For every instance image of ``../shared/data/instances`` that is built, side by side in
one run, on the same work (a one-line patch to the repository's ``setup.py``, then
``python -c 'print(1)'`` under the image's conda env, then ``reset()``):

- **cycle**: apply + run + reset on one warm sandbox, p50 and p95, with each part's p50;
- **floor**, in the same container, each cycle followed by one (load drifts): the agent
  round trip of the same script (``run``) plus a bare ``git reset --hard`` of an unchanged
  tree (as root, through the same channel);
- **bare run**, in the same container, each cycle: the script alone, as root, through the
  agent with no wrapper (no unprivileged user, walk, apply or reset): no warm-container
  design can run it faster, so fresh / bare is the most any of them can gain here
  (``bound_speedup_vs_fresh_container``);
- **fresh**: a fresh ``docker run --rm`` per run with the patch applied (``git apply`` then
  the script), as the original research design ran every script;
- **first open**: ``open_sandbox`` to a ready sandbox. For the new code both the first open
  of an image ever (which prepares the image's sandbox layer once) and a later open (every
  pool after the first) are timed; the prepared layer is removed before the run so its cost
  is measured here, not assumed.

The OLD code (``--old``, default: a ``git worktree`` of c71d4d8 at /tmp/old-sandbox,
created if absent) runs the same work in a subprocess importing that tree, on the same
images, in the same run, in rounds alternating with the new code's (``--rounds``, each a new
sandbox: load drifts on a shared machine, so both sides see the same). Last line: one JSON object.

    uv run python tests/benchmarks/bench_sandbox_real.py [--cycles 20] [--fresh-runs 10]
"""

from __future__ import annotations

import argparse
import contextlib
import difflib
import json
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
INSTANCES = ROOT.parent / "shared" / "data" / "instances"
OLD_COMMIT = "c71d4d8"
SCRIPT = "python -c 'print(1)'"
TOUCHED = ("setup.py", "pyproject.toml", "README.rst", "README.md")


def pct(values: list[float], q: float) -> float:
    s = sorted(values)
    return s[min(len(s) - 1, max(0, round(q * (len(s) - 1))))]


def ms(values: list[float], q: float = 0.5) -> float:
    return round(pct(values, q) * 1000, 1)


def one_line_patch(path: str, original: str) -> str:
    lines = original.splitlines(keepends=True)
    changed = [*lines, "# codemonkeys benchmark: a one-line change\n"]
    return "".join(difflib.unified_diff(lines, changed, f"a/{path}", f"b/{path}", n=3))


def touched_file(sb) -> tuple[str, str]:  # noqa: ANN001
    """The first of TOUCHED the repository has, and its text."""
    from codemonkeys.sandbox import SandboxError

    for path in TOUCHED:
        try:
            return path, sb.read_file(path).decode()
        except SandboxError:
            continue
    raise RuntimeError(f"none of {TOUCHED} in the repository")


# -- worker: runs inside a subprocess that imports one tree (old or new) ------------------
def timed(fn, *args):  # noqa: ANN001, ANN202
    start = time.monotonic()
    out = fn(*args)
    return time.monotonic() - start, out


def worker(image: str, base: str, cycles: int, label: str, later_open: bool) -> dict:
    from codemonkeys.sandbox import SandboxSpec, open_sandbox
    from codemonkeys.swebench.dataset import CONDA_ENV_SETUP, TESTBED

    spec = SandboxSpec(
        image=image,
        workdir=TESTBED,
        base_commit=base,
        env_setup=CONDA_ENV_SETUP,
        labels={"org.codemonkeys.problem": f"bench-real-{label}"},
    )
    opens: list[float] = []
    t, sb = timed(open_sandbox, spec)
    opens.append(t)
    try:
        patch = one_line_patch(*touched_file(sb))
        apply_s, run_s, reset_s, cycle_s, floor_run, floor_reset = [], [], [], [], [], []
        bare_run = []  # the script alone, as root, no wrapper: what no warm design beats
        script_alone = f"cd {TESTBED}\n{CONDA_ENV_SETUP}\n{SCRIPT}"
        for _ in range(cycles):
            ta, res = timed(sb.apply_patch, patch)
            assert res.ok, res.error
            tr, out = timed(sb.run, SCRIPT)
            assert out.output == "1\n", out.output
            tz, _ = timed(sb.reset)
            apply_s.append(ta)
            run_s.append(tr)
            reset_s.append(tz)
            cycle_s.append(ta + tr + tz)
            assert sb.diff() == ""
            # the floor right after, on the clean tree (interleaved: load drifts)
            tr, _ = timed(sb.run, SCRIPT)
            bare = f"git reset -q --hard {base}"
            # ours, writing nothing: it keeps the new code's list of changes valid
            with getattr(sb, "_trusted_calls", contextlib.nullcontext)():
                sb._git_ok(bare, "bare reset")  # the stat cache fresh again (old code's chown)
                tz, _ = timed(sb._git_ok, bare, "bare reset")
            floor_run.append(tr)
            floor_reset.append(tz)
            with getattr(sb, "_trusted_calls", contextlib.nullcontext)():
                tb, (code, out_b, err_b) = timed(sb._sh, script_alone)
            assert code == 0 and out_b == b"1\n", (code, out_b, err_b)
            bare_run.append(tb)
    finally:
        sb.close()
    if later_open:  # a later open of the same image (the old code prepares nothing once)
        t, second = timed(open_sandbox, spec)
        second.close()
        opens.append(t)
    return {
        "open_s": [round(x, 3) for x in opens],
        "cycle": cycle_s,
        "apply": apply_s,
        "run": run_s,
        "reset": reset_s,
        "floor_run": floor_run,
        "floor_reset": floor_reset,
        "bare_run": bare_run,
        "patch": patch,
    }


def run_worker(tree: Path, image: str, base: str, cycles: int, label: str) -> dict:
    """``worker`` in a subprocess that imports the codemonkeys of ``tree`` (old or new)."""
    code = (
        f"import sys, json, runpy; sys.path.insert(0, {str(tree)!r})\n"
        f"worker = runpy.run_path({__file__!r})['worker']\n"
        f"result = worker({image!r}, {base!r}, {cycles}, {label!r}, {label == 'new'})\n"
        "print('@@RESULT', json.dumps(result))\n"
    )
    proc = subprocess.run(
        [sys.executable, "-c", code], cwd=tree, capture_output=True, text=True, timeout=1800
    )
    for line in proc.stdout.splitlines():
        if line.startswith("@@RESULT "):
            return json.loads(line[len("@@RESULT ") :])
    raise RuntimeError(f"{label} worker failed on {image}:\n{proc.stderr[-3000:]}")


# -- the fresh-container baseline ------------------------------------------------------------
def fresh_runs(image: str, patch: str, runs: int) -> list[float]:
    from codemonkeys.swebench.dataset import CONDA_ENV_SETUP, TESTBED

    script = f"cd {TESTBED} && git apply - && {CONDA_ENV_SETUP}\n{SCRIPT}"
    times = []
    for _ in range(runs):
        start = time.monotonic()
        out = subprocess.run(
            ["docker", "run", "--rm", "-i", "--network", "none", image, "bash", "-c", script],
            input=patch,
            capture_output=True,
            text=True,
            timeout=300,
        )
        times.append(time.monotonic() - start)
        assert out.returncode == 0 and out.stdout == "1\n", (out.stdout, out.stderr)
    return times


def summarise(w: dict) -> dict:
    floor = ms(w["floor_run"]) + ms(w["floor_reset"])
    return {
        "cycle_p50_ms": ms(w["cycle"]),
        "cycle_p95_ms": ms(w["cycle"], 0.95),
        "apply_p50_ms": ms(w["apply"]),
        "run_p50_ms": ms(w["run"]),
        "reset_p50_ms": ms(w["reset"]),
        "reset_p95_ms": ms(w["reset"], 0.95),
        "floor_run_p50_ms": ms(w["floor_run"]),
        "floor_reset_p50_ms": ms(w["floor_reset"]),
        "floor_p50_ms": round(floor, 1),
        "cycle_over_floor_p50": round(ms(w["cycle"]) / floor, 2),
        "bare_run_p50_ms": ms(w["bare_run"]) if w.get("bare_run") else None,
        "first_open_s": w["open_s"][0],
        "later_open_s": w["open_s"][-1],
    }


def built_images() -> list[tuple[str, str, str]]:
    out = subprocess.run(
        ["docker", "images", "--format", "{{.Repository}}:{{.Tag}}"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split()
    rows = [json.loads(line) for line in (INSTANCES / "rows.jsonl").read_text().splitlines()]
    found = [(r["instance_id"], r["image"], r["base_commit"]) for r in rows if r["image"] in out]
    return sorted(found, key=lambda i: not i[0].startswith("sphinx"))  # CI's images first


def ensure_old_tree(path: Path) -> None:
    if not (path / "codemonkeys").is_dir():
        subprocess.run(
            ["git", "-C", str(ROOT), "worktree", "add", "--detach", str(path), OLD_COMMIT],
            check=True,
        )


def merged(chunks: list[dict]) -> dict:
    """One worker's figures from its rounds: samples pooled; the first open is the first
    round's, a later open the last round's (a new sandbox of an image already opened)."""
    out = {
        k: [x for c in chunks for x in c[k]]
        for k, v in chunks[0].items()
        if k != "open_s" and isinstance(v, list)
    }
    out["open_s"] = [chunks[0]["open_s"][0], chunks[-1]["open_s"][-1]]
    out["patch"] = chunks[0]["patch"]
    return out


def interleaved(
    old_tree: Path, image: str, base: str, cycles: int, rounds: int
) -> tuple[dict, dict]:
    """The new and the old code's cycles in alternating rounds (load drifts on a shared
    machine: both sides see the same load), each round a new sandbox."""
    per_round = max(1, cycles // rounds)
    new_chunks, old_chunks = [], []
    for _ in range(rounds):
        new_chunks.append(run_worker(ROOT, image, base, per_round, "new"))
        old_chunks.append(run_worker(old_tree, image, base, per_round, "old"))
    return merged(new_chunks), merged(old_chunks)


def forget_prepared(image: str) -> None:
    """Remove the prepared sandbox layer of ``image`` (if any), so its cost is measured."""
    from codemonkeys.sandbox.prepared import remove_prepared_images

    remove_prepared_images(source=image)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--cycles", type=int, default=20)
    ap.add_argument("--fresh-runs", type=int, default=10)
    ap.add_argument("--rounds", type=int, default=4, help="alternating new/old rounds")
    ap.add_argument("--old", type=Path, default=Path("/tmp/old-sandbox"))
    ap.add_argument("--only", default="", help="instance ids, comma-separated")
    args = ap.parse_args()
    sys.path.insert(0, str(ROOT))
    ensure_old_tree(args.old)
    images = built_images()
    if args.only:
        images = [i for i in images if i[0] in args.only.split(",")]
    if not images:
        sys.exit("no instance image is built (see ../shared/data/instances/README.md)")
    per_image: dict[str, dict] = {}
    for iid, image, base in images:
        forget_prepared(image)
        new_raw, old_raw = interleaved(args.old, image, base, args.cycles, args.rounds)
        new, old = summarise(new_raw), summarise(old_raw)
        fresh = fresh_runs(image, new_raw["patch"], args.fresh_runs)
        fresh_p50 = ms(fresh)
        entry = {
            "new": new,
            "old": old,
            "fresh_container_p50_ms": fresh_p50,
            "fresh_container_p95_ms": ms(fresh, 0.95),
            "speedup_vs_fresh_container": round(fresh_p50 / new["cycle_p50_ms"], 2),
            "old_speedup_vs_fresh_container": round(fresh_p50 / old["cycle_p50_ms"], 2),
            "cycle_speedup_vs_old": round(old["cycle_p50_ms"] / new["cycle_p50_ms"], 2),
            # the script alone as root in the warm container (no apply, no reset, no
            # wrapper): the most any warm-container design can gain over a fresh one here
            "bound_speedup_vs_fresh_container": round(fresh_p50 / new["bare_run_p50_ms"], 2),
        }
        per_image[iid] = entry
        print(f"{iid}: {json.dumps(entry)}", flush=True)
    summary = {
        "real_cycle_over_floor_p50": max(
            e["new"]["cycle_over_floor_p50"] for e in per_image.values()
        ),
        "real_speedup_vs_fresh_container": min(
            e["speedup_vs_fresh_container"] for e in per_image.values()
        ),
        "real_bound_speedup_vs_fresh_container": min(
            e["bound_speedup_vs_fresh_container"] for e in per_image.values()
        ),
        "real_first_open_s": max(e["new"]["later_open_s"] for e in per_image.values()),
        "real_first_prepare_s": max(e["new"]["first_open_s"] for e in per_image.values()),
        "old_real_cycle_over_floor_p50": max(
            e["old"]["cycle_over_floor_p50"] for e in per_image.values()
        ),
        "old_real_speedup_vs_fresh_container": min(
            e["old_speedup_vs_fresh_container"] for e in per_image.values()
        ),
        "old_real_first_open_s": max(e["old"]["later_open_s"] for e in per_image.values()),
        "cycles": args.cycles,
        "fresh_runs": args.fresh_runs,
        "images": per_image,
    }
    print(json.dumps(summary))


if __name__ == "__main__":
    main()
