"""Benchmark: how much of the relevance scan the prefilter saves, and which gold files it loses.

For real SWE-bench Verified instances, at their base commits: enumerate the files exactly as
the context stage does (``codemonkeys.context.files.enumerate_files``), rank them against
the problem statement with the product's prefilter (``codemonkeys.context.prefilter``), and
measure, for each kept share (5% .. 100%), the recall of the files the gold patch edits and
the share of scan tokens saved. The gold patch only scores; it never ranks.

Baseline, in the same run: a random order of the same files (seeded per instance) kept at
the same share, which is what a cut without the lexical ranking would keep.

Also reported, per file kind (source, docs, data, templates, other): the kind's share of the
scan's tokens and the share of enumerated gold files of that kind, i.e. the tokens saved and
the gold-file recall lost if the scan skipped that kind.

Trees: ``/work/.mirror/<owner>+<name>/repo`` bare git snapshots (the ``fetch`` tool; an
instance whose base commit the snapshot lacks is skipped and counted), or ``--mirrors DIR``;
without any, the source tarballs of ``../shared/data/instances`` (``--instances DIR``).

Recall is counted per gold file over the gold files the scan enumerates (files the patch
creates, or that enumeration leaves out, such as tests, cannot be kept by any prefilter;
their number is reported separately). The default share is the smallest with recall >= 99%.
Last line: one JSON object.
"""

from __future__ import annotations

import argparse
import json
import random
import subprocess
import sys
import tarfile
import tempfile
import threading
import time
from collections import Counter, defaultdict
from pathlib import Path, PurePosixPath

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from codemonkeys.config import ContextConfig  # noqa: E402
from codemonkeys.context.files import Enumeration, SourceFile, enumerate_files, read_text  # noqa: E402
from codemonkeys.context.prefilter import file_terms, kept_count, rank_files  # noqa: E402
from codemonkeys.diffs import touched_files  # noqa: E402

DATA = ROOT.parent / "shared" / "data"
SHARES = [0.05, 0.1, 0.15, 0.2, 0.25, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 1.0]
TARGET_RECALL = 0.99

KINDS = {
    "docs": {"rst", "md", "txt", "rest", "adoc", "tex", "texi", "man", "1", "3"},
    "data": {"json", "yaml", "yml", "toml", "cfg", "ini", "xml", "in", "conf", "properties"},
    "templates": {"html", "htm", "jinja", "j2", "jinja2", "tmpl", "tpl", "mako", "css", "scss"},
    "source": {
        "py", "pyi", "pyx", "pxd", "c", "h", "cc", "cpp", "hpp", "cxx", "js", "ts", "mjs",
        "java", "go", "rs", "rb", "pl", "sh", "bash", "f", "f90", "m", "jl", "r", "lua",
    },
}  # fmt: skip


def file_kind(path: str) -> str:
    name = PurePosixPath(path).name.lower()
    ext = name.rsplit(".", 1)[-1] if "." in name else ""
    for kind, exts in KINDS.items():
        if ext in exts:
            return kind
    return "other"


def git(git_dir: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(["git", f"--git-dir={git_dir}", *args], capture_output=True)


def extract_tarball(tarball: Path, dest: Path) -> list[str]:
    with tarfile.open(tarball) as tar:
        tar.extractall(dest, filter="data")
    return sorted(
        str(p.relative_to(dest)) for p in dest.rglob("*") if p.is_file() or p.is_symlink()
    )


class RepoTree:
    """One repository's working files on disk, moved from base commit to base commit by
    writing only the blobs that changed, with the enumeration and BM25 terms of each
    (path, blob) kept: a file's enumeration depends only on its path and content, so the
    result equals ``enumerate_files`` over the whole tree at every commit."""

    def __init__(self, repo: str) -> None:
        self.repo = repo
        self._tmp = tempfile.TemporaryDirectory(prefix="bench-prefilter-")
        self.dir = Path(self._tmp.name)
        self.state: dict[str, str] = {}  # path -> blob sha on disk
        self.enumerated: dict[tuple[str, str], SourceFile | str] = {}
        self.terms: dict[str, list[str]] = {}

    def close(self) -> None:
        self._tmp.cleanup()

    def checkout(self, git_dir: Path, commit: str) -> dict[str, str] | None:
        """Move to ``commit``; returns path -> object id of every tracked path."""
        if git(git_dir, "cat-file", "-e", f"{commit}^{{commit}}").returncode != 0:
            return None
        listing = git(git_dir, "ls-tree", "-r", "-z", commit).stdout.decode()
        tree: dict[str, str] = {}
        regular: dict[str, str] = {}
        for item in filter(None, listing.split("\0")):
            meta, path = item.split("\t", 1)
            mode, kind, sha = meta.split()
            tree[path] = f"{mode}:{sha}"
            if kind == "blob" and mode in ("100644", "100755"):
                regular[path] = sha  # symlinks and submodules are not written
        for path in [p for p in self.state if regular.get(p) != self.state[p]]:
            (self.dir / path).unlink(missing_ok=True)
            del self.state[path]
        todo = [(sha, p) for p, sha in regular.items() if p not in self.state]
        for path in write_blobs(git_dir, todo, self.dir):
            self.state[path] = regular[path]
        return tree

    def enumerate(self, tree: dict[str, str], cfg: ContextConfig) -> Enumeration:
        new = [p for p in tree if (p, tree[p]) not in self.enumerated]
        fresh = enumerate_files(self.dir, new, cfg)
        for f in fresh.files:
            self.enumerated[(f.path, tree[f.path])] = f
        for path, reason in fresh.excluded.items():
            self.enumerated[(path, tree[path])] = reason
        out = Enumeration()
        for path in sorted(tree):
            got = self.enumerated[(path, tree[path])]
            if isinstance(got, str):
                out.excluded[path] = got
            else:
                out.files.append(got)
        return out

    def terms_of(self, f: SourceFile, text: str) -> list[str]:
        if f.sha256 not in self.terms:
            self.terms[f.sha256] = file_terms(f.path, text)
        return self.terms[f.sha256]


def write_blobs(git_dir: Path, entries: list[tuple[str, str]], dest: Path) -> list[str]:
    """Write each blob under ``dest`` (one ``git cat-file --batch``); returns the paths
    written. Snapshots may lack their largest blobs: those files are left out, and
    enumeration records them missing."""
    proc = subprocess.Popen(
        ["git", f"--git-dir={git_dir}", "cat-file", "--batch"],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
    )
    feeder = threading.Thread(
        target=lambda: (
            proc.stdin.write("".join(f"{sha}\n" for sha, _ in entries).encode()),
            proc.stdin.close(),
        )
    )
    feeder.start()
    out = proc.stdout
    written = []
    for _, path in entries:
        header = out.readline().split()
        if len(header) != 3:  # "<sha> missing"
            continue
        data = out.read(int(header[2]))
        out.read(1)
        target = dest / path
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(data)
        written.append(path)
    feeder.join()
    proc.wait()
    return written


def instances(args) -> tuple[list[tuple[dict, tuple[str, Path, str]]], str]:
    """(row, tree source) pairs and which data they came from."""
    rows = [json.loads(line) for line in Path(args.data).read_text().splitlines()]
    mirrors = Path(args.mirrors)
    out = []
    per_repo: Counter = Counter()
    for row in rows:
        git_dir = mirrors / row["repo"].replace("/", "+") / "repo"
        if not git_dir.is_dir() or (args.repos and row["repo"] not in args.repos):
            continue
        if args.max_per_repo and per_repo[row["repo"]] >= args.max_per_repo:
            continue
        per_repo[row["repo"]] += 1
        out.append((row, ("git", git_dir, row["base_commit"])))
    if out:
        out.sort(key=lambda item: (item[0]["repo"], item[0]["instance_id"]))
        return out, f"{mirrors} snapshots"
    inst = Path(args.instances)
    for line in (inst / "rows.jsonl").read_text().splitlines():
        row = json.loads(line)
        tarball = inst / f"{row['instance_id']}.tar.gz"
        if tarball.is_file():
            out.append((row, ("tarball", tarball, row["base_commit"])))
    return out, f"{inst} tarballs"


def measure(row: dict, source, cfg: ContextConfig, trees: dict[str, RepoTree]) -> dict | None:
    kind, where, commit = source
    t_enum = time.perf_counter()
    if kind == "tarball":
        with tempfile.TemporaryDirectory(prefix="bench-prefilter-") as tmp:
            paths = extract_tarball(where, Path(tmp))
            enum = enumerate_files(Path(tmp), paths, cfg)
            t0 = time.perf_counter()
            ranked = rank_files(
                row["problem_statement"], enum.files, lambda f: read_text(Path(tmp), f.path)
            )
    else:
        for repo in [r for r in trees if r != row["repo"]]:
            trees.pop(repo).close()  # instances come grouped by repository
        repo_tree = trees.setdefault(row["repo"], RepoTree(row["repo"]))
        tree = repo_tree.checkout(where, commit)
        if tree is None:
            return None
        paths = list(tree)
        enum = repo_tree.enumerate(tree, cfg)
        t0 = time.perf_counter()
        ranked = rank_files(
            row["problem_statement"],
            enum.files,
            lambda f: read_text(repo_tree.dir, f.path),
            terms_of=repo_tree.terms_of,
        )
    rank_s = time.perf_counter() - t0
    enum_s = t0 - t_enum
    files: dict[str, SourceFile] = {f.path: f for f in enum.files}
    gold = touched_files(row["patch"])
    at_base = set(paths)
    gold_enum = [g for g in gold if g in files]
    order = [r.path for r in ranked]
    rnd = sorted(files)
    random.Random(row["instance_id"]).shuffle(rnd)
    total_tokens = sum(f.tokens for f in enum.files) or 1
    curve = []
    for share in SHARES:
        n = kept_count(len(order), share, cfg.prefilter_min_files)
        kept, kept_random = set(order[:n]), set(rnd[:n])
        curve.append(
            {
                "share": share,
                "kept_files": n,
                "kept_tokens": sum(files[p].tokens for p in kept),
                "gold_kept": sum(1 for g in gold_enum if g in kept),
                "gold_kept_random": sum(1 for g in gold_enum if g in kept_random),
            }
        )
    kind_tokens: Counter = Counter()
    for f in enum.files:
        kind_tokens[file_kind(f.path)] += f.tokens
    return {
        "instance_id": row["instance_id"],
        "repo": row["repo"],
        "files": len(files),
        "tokens": total_tokens,
        "gold_files": len(gold),
        "gold_at_base": sum(1 for g in gold if g in at_base),
        "gold_enumerated": len(gold_enum),
        "gold_excluded_reasons": {g: enum.excluded[g] for g in gold if g in enum.excluded},
        "gold_kinds": [file_kind(g) for g in gold_enum],
        "kind_tokens": dict(kind_tokens),
        "gold_rank": {g: order.index(g) + 1 for g in gold_enum},
        "ranked_tokens": [files[p].tokens for p in order],
        "curve": curve,
        "rank_s": rank_s,
        "enumerate_s": enum_s,
    }


def summarise(results: list[dict]) -> dict:
    """Pooled figures per share, over all instances and per repository."""
    by_repo: dict[str, list[dict]] = defaultdict(list)
    for r in results:
        by_repo[r["repo"]].append(r)

    def pool(rs: list[dict], i: int) -> dict:
        gold = sum(r["gold_enumerated"] for r in rs) or 1
        files = sum(r["files"] for r in rs) or 1
        tokens = sum(r["tokens"] for r in rs) or 1
        return {
            "share": SHARES[i],
            "kept_share": sum(r["curve"][i]["kept_files"] for r in rs) / files,
            "gold_file_recall": sum(r["curve"][i]["gold_kept"] for r in rs) / gold,
            "random_recall": sum(r["curve"][i]["gold_kept_random"] for r in rs) / gold,
            "tokens_saved_share": 1 - sum(r["curve"][i]["kept_tokens"] for r in rs) / tokens,
            "instances_all_gold_kept": sum(
                1 for r in rs if r["curve"][i]["gold_kept"] == r["gold_enumerated"]
            )
            / max(1, len(rs)),
        }

    overall = [pool(results, i) for i in range(len(SHARES))]
    per_repo = {repo: [pool(rs, i) for i in range(len(SHARES))] for repo, rs in by_repo.items()}
    chosen = next((c for c in overall if c["gold_file_recall"] >= TARGET_RECALL), overall[-1])
    kinds: dict[str, dict] = {}
    all_tokens = sum(r["tokens"] for r in results) or 1
    all_gold = sum(r["gold_enumerated"] for r in results) or 1
    kind_gold = Counter(k for r in results for k in r["gold_kinds"])
    for kind in [*KINDS, "other"]:
        kinds[kind] = {
            "tokens_share": sum(r["kind_tokens"].get(kind, 0) for r in results) / all_tokens,
            "gold_files": kind_gold[kind],
            "recall_lost_if_skipped": kind_gold[kind] / all_gold,
        }
    return {
        "overall": overall,
        "per_repo": per_repo,
        "chosen": chosen,
        "kinds": kinds,
        "by_tokens": token_cut_curve(results) if all("ranked_tokens" in r for r in results) else [],
    }


def token_cut_curve(results: list[dict]) -> list[dict]:
    """The other way to cut the same ranking: keep files in rank order while their tokens
    fit in a share of the scan's tokens (measured only; the product cuts by files)."""
    out = []
    for share in SHARES:
        gold = kept_gold = kept_tokens = total = 0
        for r in results:
            budget, used, n = share * r["tokens"], 0, 0
            for t in r["ranked_tokens"]:
                if used + t > budget and n > 0:
                    break
                used, n = used + t, n + 1
            gold += r["gold_enumerated"]
            kept_gold += sum(1 for rank in r["gold_rank"].values() if rank <= n)
            kept_tokens, total = kept_tokens + used, total + r["tokens"]
        out.append(
            {
                "token_share": share,
                "tokens_saved_share": 1 - kept_tokens / max(1, total),
                "gold_file_recall": kept_gold / max(1, gold),
            }
        )
    return out


def table(rows: list[dict]) -> str:
    out = [
        "| share | files kept | tokens saved | gold-file recall | random order recall | all gold kept |",
        "| --- | --- | --- | --- | --- | --- |",
    ]
    for c in rows:
        out.append(
            f"| {c['share']:.0%} | {c['kept_share']:.1%} | {c['tokens_saved_share']:.1%} "
            f"| {c['gold_file_recall']:.1%} | {c['random_recall']:.1%} "
            f"| {c['instances_all_gold_kept']:.1%} |"
        )
    return "\n".join(out)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", default=str(DATA / "swe-bench-verified.partial.jsonl"))
    ap.add_argument("--mirrors", default="/work/.mirror")
    ap.add_argument("--instances", default=str(DATA / "instances"))
    ap.add_argument("--repos", nargs="*", help="only these owner/name repositories")
    ap.add_argument("--max-per-repo", type=int, default=0, help="0: all")
    ap.add_argument("--details", help="write per-instance results (JSON lines) here")
    ap.add_argument(
        "--report-only", action="store_true", help="summarise an earlier --details file"
    )
    args = ap.parse_args()
    if args.report_only:
        lines = Path(args.details).read_text().splitlines()
        report([json.loads(line) for line in lines], Counter())
        return
    results, skipped = measure_all(args)
    report(results, skipped)


def measure_all(args) -> tuple[list[dict], Counter]:
    cfg = ContextConfig()
    todo, origin = instances(args)
    print(f"{len(todo)} instances from {origin}", flush=True)
    results, skipped = [], Counter()
    trees: dict[str, RepoTree] = {}
    t0 = time.perf_counter()
    details = Path(args.details) if args.details else None
    if details:
        details.write_text("")
    for i, (row, source) in enumerate(todo, 1):
        r = measure(row, source, cfg, trees)
        if r is None:
            skipped[row["repo"]] += 1
            continue
        results.append(r)
        if details:
            with details.open("a") as out:
                out.write(json.dumps(r) + "\n")
        if i % 10 == 0:
            print(f"  {i}/{len(todo)} ({time.perf_counter() - t0:.0f} s)", flush=True)
    for tree in trees.values():
        tree.close()
    return results, skipped


def report(results: list[dict], skipped: Counter) -> None:
    if not results:
        sys.exit("no instance could be measured")
    s = summarise(results)
    repos = Counter(r["repo"] for r in results)
    gold = sum(r["gold_files"] for r in results)
    at_base = sum(r["gold_at_base"] for r in results)
    enumerated = sum(r["gold_enumerated"] for r in results)
    print(f"\n{len(results)} instances, {len(repos)} repositories: {dict(repos)}")
    print(f"skipped (base commit missing from the snapshot): {dict(skipped) or 0}")
    print(f"gold files: {gold}; at base: {at_base}; enumerated by the scan: {enumerated}")
    reasons = Counter(v for r in results for v in r["gold_excluded_reasons"].values())
    print(f"gold files enumeration leaves out, by reason: {dict(reasons)}")
    print("\nall repositories:\n" + table(s["overall"]))
    for repo, rows in sorted(s["per_repo"].items()):
        print(f"\n{repo} ({repos[repo]} instances):\n" + table(rows))
    if all("ranked_tokens" in r for r in results):
        print("\nthe same ranking cut by a share of tokens instead of files:")
        print("| token share | tokens saved | gold-file recall |\n| --- | --- | --- |")
        for c in s["by_tokens"]:
            print(
                f"| {c['token_share']:.0%} | {c['tokens_saved_share']:.1%} "
                f"| {c['gold_file_recall']:.1%} |"
            )
    print("\nper file kind: tokens saved vs gold-file recall lost if the scan skipped it")
    print("| kind | share of scan tokens | gold files | recall lost |\n| --- | --- | --- | --- |")
    for kind, k in s["kinds"].items():
        print(
            f"| {kind} | {k['tokens_share']:.1%} | {k['gold_files']} "
            f"| {k['recall_lost_if_skipped']:.1%} |"
        )
    c = s["chosen"]
    print(
        f"\nchosen default: share {c['share']:.0%} (smallest with gold-file recall >= "
        f"{TARGET_RECALL:.0%}): recall {c['gold_file_recall']:.1%}, "
        f"tokens saved {c['tokens_saved_share']:.1%}"
    )
    print(f"ranking time: mean {sum(r['rank_s'] for r in results) / len(results):.2f} s/instance")
    print(
        json.dumps(
            {
                "instances": len(results),
                "repositories": len(repos),
                "skipped_missing_commit": sum(skipped.values()),
                "kept_share": c["share"],
                "kept_files_share": round(c["kept_share"], 4),
                "gold_file_recall": round(c["gold_file_recall"], 4),
                "random_order_recall": round(c["random_recall"], 4),
                "tokens_saved_share": round(c["tokens_saved_share"], 4),
            }
        )
    )


if __name__ == "__main__":
    main()
