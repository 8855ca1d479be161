"""Calibrate codemonkeys.context.tokens against real BPE vocabularies (cl100k, o200k).

Not part of the product or CI: it needs ``bpe-openai`` (ships the OpenAI vocabularies inside
its wheel, so it works offline) and ``numpy``, which the project does not depend on. Run it
from a throwaway virtualenv:

    python3 -m venv /tmp/tokcal && /tmp/tokcal/bin/pip install bpe-openai numpy
    /tmp/tokcal/bin/python tests/benchmarks/calibrate_tokens.py

It prints the least-squares weights and the estimate/true ratio per language (see
docs/context-tokens.md for the figures of the last run).
"""

import glob
import os
import random
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))
import importlib.util  # noqa: E402

import bpe_openai as b
import numpy as np

# load tokens.py alone: the package itself needs the project's dependencies
_spec = importlib.util.spec_from_file_location(
    "cm_tokens", os.path.join(sys.path[0], "codemonkeys", "context", "tokens.py")
)
T = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(T)

random.seed(0)
SITE = os.path.join(sys.path[0], ".venv/lib/python3.11/site-packages")
groups = {
    "python": glob.glob(SITE + "/**/*.py", recursive=True),
    "c": glob.glob("/usr/include/**/*.h", recursive=True),
    "js": glob.glob("/usr/lib/node_modules/npm/**/*.js", recursive=True),
    "rust": glob.glob(
        "/root/.rustup/toolchains/*/lib/rustlib/src/rust/library/**/*.rs", recursive=True
    ),
    "go": glob.glob("/usr/share/doc/**/*.go", recursive=True)
    + glob.glob("/usr/lib/go*/src/**/*.go", recursive=True),
    "markdown": glob.glob("/usr/lib/node_modules/npm/**/*.md", recursive=True)
    + glob.glob(SITE + "/**/*.md", recursive=True),
    "rst": glob.glob(SITE + "/**/*.rst", recursive=True)
    + glob.glob(SITE + "/**/*.txt", recursive=True),
}
enc = {n: b.get_encoding(n) for n in ("cl100k_base", "o200k_base")}
rows = []
for g, files in groups.items():
    files = [f for f in files if os.path.getsize(f) < 300_000 and os.path.getsize(f) > 200]
    random.shuffle(files)
    for f in files[:150]:
        with open(f, encoding="utf-8", errors="replace") as fh:
            t = fh.read()
        feats = [
            len(T._WORD_CHUNKS.findall(t)),
            len(T._DIGIT_CHUNKS.findall(t)),
            len(T._PUNCT_CHUNKS.findall(t)),
            len(T._NEWLINES.findall(t)),
            len(T._LONG_SPACES.findall(t)),
            len(T._NON_ASCII.findall(t)),
            len(T._CJK.findall(t)),
        ]
        rows.append(
            (
                g,
                f,
                feats,
                len(enc["cl100k_base"].encode(t)),
                len(enc["o200k_base"].encode(t)),
                T.bpe_estimate(t),
                len(t),
            )
        )
print({g: sum(1 for r in rows if r[0] == g) for g in groups})
X = np.array([r[2] for r in rows], float)
y = np.array([r[3] for r in rows], float)
# fit on ratio-weighted least squares (relative error)
w = 1 / np.maximum(y, 1)
coef, *_ = np.linalg.lstsq(X * w[:, None], y * w, rcond=None)
print("fitted cl100k weights", np.round(coef, 3).tolist())


def report(est_fn, label):
    print(label)
    for g in list(groups) + ["ALL"]:
        rs = [r for r in rows if g == "ALL" or r[0] == g]
        if not rs:
            continue
        for k, idx in (("cl100k", 3), ("o200k", 4)):
            ratios = np.array([est_fn(r) / max(r[idx], 1) for r in rs])
            tot = sum(est_fn(r) for r in rs) / sum(r[idx] for r in rs)
            print(
                f"  {g:9s} {k:7s} n={len(rs):4d} total_ratio={tot:.3f} median={np.median(ratios):.3f} p5={np.percentile(ratios, 5):.3f} p95={np.percentile(ratios, 95):.3f} chars/tok={sum(r[6] for r in rs) / sum(r[idx] for r in rs):.2f}"
            )


report(lambda r: r[5], "current weights (unscaled bpe_estimate):")
report(lambda r: float(np.dot(coef, r[2])), "fitted weights:")
report(lambda r: r[6] / 4, "naive chars/4:")
