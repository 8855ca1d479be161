"""Benchmark: how well selection picks a right candidate on real SWE-bench Verified instances.

For each real instance in ``../shared/data/instances`` (default: the three sphinx ones, whose
tests are fast), the candidates are:

- the dataset's gold patch,
- the two leaderboard systems' real predictions (``verify/preds_{gemini,haiku}.jsonl``,
  the non-empty ones),
- decoys written here by hand against the issue: a no-op (a comment line in the file the
  issue is about), a plausible wrong fix that breaks an existing test, and (where one
  exists) a partial fix. Decoys are (path, search, replace) edits turned into diffs
  against the instance's source tarball, so they always apply.

Every candidate is graded by the official harness (``grade_candidates``, swebench 5.x on
the locally built images): those labels only *score*; nothing ranks by them, and the gold
patch is just one candidate among the others.

The regression verifier (``codemonkeys.selection.regression.run_regression``) runs the
repository's own tests related to the edited files, on the original code and on every
candidate, in the instance's image. Accuracies (share of problems whose chosen candidate
the harness resolves; a tie counts as the expectation over the tied candidates):

- ``random``: the expectation over all graded candidates (the baseline, same run);
- ``votes_only``: the product's strict vote rule with ONE reproduction test per instance,
  written here from the issue text alone (8595's is the real-instance policy's), standing in
  for a model's tests (no model is reachable here); the candidates with the most votes,
  ties averaged (``fuse(..., rule="votes")``);
- ``regression_only``: the candidates with the fewest regressions, ties averaged;
- ``fused``: the product's rule (``fusion.fuse``, ``regressions-then-votes``) with those
  votes and the regression evidence.

Regression true / false positives: a candidate the verifier flags (>= 1 regression) that
the harness says is wrong / right.

Run: ``uv run python tests/benchmarks/bench_selection.py [--instances ID ...]``.
Last output line: one JSON object.
"""

from __future__ import annotations

import argparse
import difflib
import json
import sys
import tarfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from codemonkeys.candidates import Candidate  # noqa: E402
from codemonkeys.config import Config  # noqa: E402
from codemonkeys.execution import ExecutionCache, Script  # noqa: E402
from codemonkeys.selection.fusion import fuse  # noqa: E402
from codemonkeys.selection.regression import RegressionRecord, run_regression  # noqa: E402
from codemonkeys.swebench.dataset import to_problem  # noqa: E402
from codemonkeys.swebench.evaluate import grade_candidates  # noqa: E402
from tests.fixtures.policies.real_instances import REPRO_8595  # noqa: E402

DATA = ROOT.parent / "shared" / "data" / "instances"
DEFAULT_INSTANCES = [
    "sphinx-doc__sphinx-8595",
    "sphinx-doc__sphinx-8721",
    "sphinx-doc__sphinx-11445",
]
SYSTEMS = ("gemini", "haiku")

# (path, search, replace) per decoy; written from the issue text, not from the gold patch.
DECOYS: dict[str, dict[str, tuple[str, str, str]]] = {
    "sphinx-doc__sphinx-8595": {
        # "empty __all__ exports nothing", applied to every falsy __all__: also hides every
        # member of modules that have no __all__ at all (None), which existing tests document
        "wrong": (
            "sphinx/ext/autodoc/__init__.py",
            """            if not self.__all__:
                # for implicit module members, check __module__ to avoid
                # documenting imported objects
                return True, list(members.values())
""",
            """            if not self.__all__:
                # an empty __all__ exports nothing
                for member in members.values():
                    member.skipped = True
                return False, list(members.values())
""",
        ),
    },
    "sphinx-doc__sphinx-8721": {
        # the option decides for every builder: no epub pages (the issue), but HTML loses
        # its module pages too (the decoy of tests/integration/test_regression_real.py)
        "wrong": (
            "sphinx/ext/viewcode.py",
            '    if app.builder.name.startswith("epub") and not env.config.viewcode_enable_epub:\n'
            "        return\n",
            "    if not env.config.viewcode_enable_epub:  # epub or not, the option decides\n"
            "        return\n",
        ),
        # skips page collection for singlehtml only: half a fix, epub still gets pages
        "partial": (
            "sphinx/ext/viewcode.py",
            """    if not hasattr(env, '_viewcode_modules'):
        return
    highlighter = app.builder.highlighter  # type: ignore
""",
            """    if not hasattr(env, '_viewcode_modules'):
        return
    if app.builder.name == "singlehtml":
        return
    highlighter = app.builder.highlighter  # type: ignore
""",
        ),
    },
    "sphinx-doc__sphinx-11445": {
        # "docinfo detection misfires on :mod: headings, so drop it": the prolog now goes
        # before a document's docinfo fields, which existing tests check
        "wrong": (
            "sphinx/util/rst.py",
            """        for line in content:
            if docinfo_re.match(line):
                pos += 1
            else:
                break
""",
            """        # docinfo detection misfires on headings such as :mod:`x`; always
        # insert the prolog at the top
""",
        ),
        # a field marker must be followed by a space: fixes `:mod:`x`` headings but no
        # longer sees a field that ends its line (``:orphan:``)
        "partial": (
            "sphinx/util/rst.py",
            "docinfo_re = re.compile(':\\\\w+:.*?')\n",
            "docinfo_re = re.compile(':\\\\w+: .*?')\n",
        ),
    },
}


# Reproduction tests written from each issue's text alone (what a prompt-honest test writer
# could write: no gold tests, no gold patch): exit 0 when the issue is fixed, 2 when it is
# not, anything else when the script itself fails. 8595's is the real-instance policy's.
REPRO_8721 = r"""import subprocess
import sys
import tempfile
from pathlib import Path

# the issue: `make html epub` creates viewcode module pages for epub although
# viewcode_enable_epub is False (its default)
src = Path(tempfile.mkdtemp())
(src / "example.py").write_text('def foo():\n    "docstring"\n')
(src / "conf.py").write_text(
    "import os, sys\nsys.path.insert(0, os.path.abspath('.'))\n"
    "extensions = ['sphinx.ext.autodoc', 'sphinx.ext.viewcode']\n"
)
(src / "index.rst").write_text(".. automodule:: example\n   :members:\n")
build = src / "_build"
for builder in ("html", "epub"):  # what `make html epub` runs, sharing the doctrees
    proc = subprocess.run(
        [sys.executable, "-m", "sphinx", "-b", builder, "-q", "-d", str(build / "doctrees"),
         str(src), str(build / builder)],
        capture_output=True,
        text=True,
    )
    print(proc.stdout[-2000:], proc.stderr[-2000:])
    if proc.returncode != 0:
        sys.exit(1)
pages = sorted(str(p) for p in (build / "epub").rglob("_modules/*"))
print(f"epub module pages: {pages} (expected none)")
sys.exit(2 if pages else 0)
"""

REPRO_11445 = r"""import subprocess
import sys
import tempfile
from pathlib import Path

# the issue: with rst_prolog set, a first heading made of a domain role (:mod:`x`) is not
# rendered as a heading nor listed in the toctree
src = Path(tempfile.mkdtemp())
(src / "conf.py").write_text(
    "rst_prolog = '''\n.. |psf| replace:: Python Software Foundation\n'''\n"
)
(src / "index.rst").write_text("Welcome\n=======\n\n.. toctree::\n\n   mypackage\n")
(src / "mypackage.rst").write_text(
    ":mod:`mypackage2`\n=================\n\nContent\n\nSubheading\n----------\n"
)
out = src / "_build"
proc = subprocess.run(
    [sys.executable, "-m", "sphinx", "-b", "html", "-q", str(src), str(out)],
    capture_output=True,
    text=True,
)
print(proc.stdout[-2000:], proc.stderr[-2000:])
if proc.returncode != 0:
    sys.exit(1)
index = (out / "index.html").read_text()
print("mypackage2 in the index's toctree:", "mypackage2" in index)
sys.exit(0 if "mypackage2" in index else 2)
"""

REPRO_TESTS = {
    "sphinx-doc__sphinx-8595": REPRO_8595,
    "sphinx-doc__sphinx-8721": REPRO_8721,
    "sphinx-doc__sphinx-11445": REPRO_11445,
}


def read_source(iid: str, path: str) -> str:
    with tarfile.open(DATA / f"{iid}.tar.gz") as tar:
        member = tar.extractfile(path)
        assert member is not None, f"{path} not in {iid}'s tarball"
        return member.read().decode("utf-8")


def make_diff(path: str, before: str, after: str) -> str:
    lines = difflib.unified_diff(
        before.splitlines(keepends=True),
        after.splitlines(keepends=True),
        fromfile=f"a/{path}",
        tofile=f"b/{path}",
    )
    return f"diff --git a/{path} b/{path}\n" + "".join(lines)


def decoy_patches(iid: str, gold_patch: str) -> dict[str, str]:
    gold_file = next(
        line[len("+++ b/") :].strip()
        for line in gold_patch.splitlines()
        if line.startswith("+++ b/")
    )
    src = read_source(iid, gold_file)
    noop = src + ("" if src.endswith("\n") else "\n") + "# see the issue tracker\n"
    out = {"noop": make_diff(gold_file, src, noop)}
    for name, (path, search, replace) in DECOYS.get(iid, {}).items():
        text = src if path == gold_file else read_source(iid, path)
        assert text.count(search) == 1, f"{iid} decoy {name}: search text not found once"
        out[name] = make_diff(path, text, text.replace(search, replace))
    return out


def candidates_of(row: dict) -> dict[str, str]:
    iid = row["instance_id"]
    cands = {"gold": row["patch"]}
    for system in SYSTEMS:
        for line in (DATA / "verify" / f"preds_{system}.jsonl").open():
            pred = json.loads(line)
            if pred["instance_id"] == iid and (pred.get("model_patch") or "").strip():
                cands[system] = pred["model_patch"]
    cands.update(decoy_patches(iid, row["patch"]))
    return cands


def strict_votes(cache: ExecutionCache, test: str, cands: dict[str, str]) -> dict[str, int]:
    """The product's strict rule for one reproduction test: a vote for a candidate when the
    test does not pass on the original code and passes (exit 0) with the candidate."""
    script = Script(content=test)
    original = cache.run(None, script)
    print(f"  reproduction test on the original: exit {original.exit_code}", flush=True)
    if original.exit_code == 0:
        return {}
    runs = {cid: cache.run(p, script) for cid, p in cands.items()}
    return {cid: int(r.patch_applied and r.exit_code == 0) for cid, r in runs.items()}


def evidence(
    row: dict, cands: dict[str, str], config: Config
) -> tuple[RegressionRecord, dict[str, int] | None]:
    """The regression record and the reproduction test's votes (None: no test)."""
    from codemonkeys.sandbox import SandboxPool
    from codemonkeys.sandbox.spec import spec_from_config

    problem, _ = to_problem(row)
    pool = SandboxPool(spec_from_config(problem, config), size=2)
    try:
        cache = ExecutionCache(pool.lease, timeout=600)
        rec = run_regression(
            [Candidate(id=cid, patch=p) for cid, p in cands.items()],
            cache,
            config.selection,
            test_dirs=config.context.test_dirs,
            workers=2,
        )
        test = REPRO_TESTS.get(row["instance_id"])
        votes = strict_votes(cache, test, cands) if test else None
        return rec, votes
    finally:
        pool.close()


def mean(xs: list[float]) -> float | None:
    return sum(xs) / len(xs) if xs else None


def score(ids: list[str], resolved: dict[str, bool]) -> float:
    return sum(resolved[c] for c in ids) / len(ids)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--instances", nargs="*", default=DEFAULT_INSTANCES)
    ap.add_argument("--report-dir", default=str(ROOT / "runs" / "bench-selection"))
    args = ap.parse_args()

    rows = {r["instance_id"]: r for r in map(json.loads, (DATA / "rows.jsonl").open())}
    config = Config()
    all_cands = {iid: candidates_of(rows[iid]) for iid in args.instances}

    t0 = time.monotonic()
    graded = grade_candidates(
        {iid: list(c.items()) for iid, c in all_cands.items()},
        [rows[iid] for iid in args.instances],
        run_id_prefix="bench-selection",
        report_dir=args.report_dir,
        max_workers=2,
    )
    grade_s = time.monotonic() - t0

    acc: dict[str, list[float]] = {"random": [], "votes": [], "regression_only": [], "fused": []}
    tp = fp = fn = tn = 0
    per_problem = {}
    for iid, cands in all_cands.items():
        verdicts = graded[iid]
        ungraded = {c: v.status for c, v in verdicts.items() if not v.graded}
        resolved = {c: bool(v.resolved) for c, v in verdicts.items() if v.graded}
        t1 = time.monotonic()
        try:
            rec, votes = evidence(rows[iid], cands, config)
        except Exception as e:  # one problem's failure never stops the others
            print(f"{iid}: regression verifier failed: {e!r}", flush=True)
            continue
        reg_s = time.monotonic() - t1
        ids = [c for c in cands if c in resolved]
        if not ids:
            print(f"{iid}: no candidate graded ({ungraded})", flush=True)
            continue
        regs = {c: rec.regressions_of(c) for c in ids}
        fewest = min(r or 0 for r in regs.values())
        reg_best = [c for c in ids if (regs[c] or 0) == fewest]
        if votes is not None:
            votes = {c: votes.get(c, 0) for c in ids}
            by_votes = fuse(ids, [{c: {"votes": n} for c, n in votes.items()}], "votes").tied_best()
            acc["votes"].append(score(by_votes, resolved))
        by_vote = {c: {"votes": n} for c, n in (votes or {}).items()}
        fused = fuse(ids, [by_vote, {c: {"regressions": regs[c]} for c in ids}]).tied_best()
        acc["random"].append(score(ids, resolved))
        acc["regression_only"].append(score(reg_best, resolved))
        acc["fused"].append(score(fused, resolved))
        for c in ids:
            flagged = (regs[c] or 0) > 0
            tp += flagged and not resolved[c]
            fp += flagged and resolved[c]
            fn += (not flagged) and not resolved[c]
            tn += (not flagged) and resolved[c]
        per_problem[iid] = {
            "resolved": resolved,
            "ungraded": ungraded,
            "regressions": regs,
            "votes": votes,
            "statuses": {c: rec.candidates[c].status for c in ids if c in rec.candidates},
            "test_files": rec.test_files,
            "baseline_passing": rec.baseline_passing,
            "regression_only_choice": reg_best,
            "fused_choice": fused,
            "regression_seconds": round(reg_s, 1),
        }
        print(f"{iid}: {json.dumps(per_problem[iid])}", flush=True)
        for c in ids:
            broken = rec.candidates[c].regressions if c in rec.candidates else []
            print(
                f"  {c:8} resolved={resolved[c]!s:5} votes={(votes or {}).get(c)} regressions={regs[c]} {broken[:3]}"
            )

    def rnd(x: float | None) -> float | None:
        return None if x is None else round(x, 3)

    print(
        f"graded in {grade_s:.0f}s; regression verifier true negatives (right, not flagged) "
        f"{tn}, false negatives (wrong, not flagged) {fn}"
    )
    print(
        json.dumps(
            {
                "random_accuracy": rnd(mean(acc["random"])),
                "votes_only_accuracy": rnd(mean(acc["votes"])),
                "regression_only_accuracy": rnd(mean(acc["regression_only"])),
                "fused_accuracy": rnd(mean(acc["fused"])),
                "regression_true_positives": tp,
                "regression_false_positives": fp,
                "problems": len(acc["random"]),
            }
        )
    )


if __name__ == "__main__":
    main()
