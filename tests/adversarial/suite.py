"""The adversarial suite: runs every case against one crest binary and prints one markdown table, a row per case,
and a summary line. Exit status 1 when any case is not ok.

    python3 suite.py CREST [--keep] [ID_PREFIX...]

Everything it makes lives in one temporary folder, removed at the end (kept with --keep, for a look inside)."""

import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import cases_data
import cases_model
import cases_options
import cases_writes
from fixtures import make_shared
from harness import VERDICTS, Result, run_case

CASES = cases_model.CASES + cases_data.CASES + cases_writes.CASES + cases_options.CASES


def cell(text: str, width: int = 90) -> str:
    """Text for a table cell: control characters shown as escapes, pipes escaped, cut to width."""
    shown = "".join(c if c.isprintable() else repr(c)[1:-1] for c in text)
    if len(shown) > width:
        shown = shown[: width - 1] + "…"
    return shown.replace("|", "\\|")


def table(results: list) -> str:
    rows = ["| id | area | case | exit | s | verdict | why | stderr (first line) |", "|---" * 8 + "|"]
    for r in results:
        why = "; ".join(text for kind, text in r.findings)
        rows.append(
            f"| {r.case.id} | {r.case.area} | {cell(r.case.title, 70)} | {r.exit} | {r.seconds:.1f} | {r.verdict} "
            f"| {cell(why, 120)} | {cell(r.stderr)} |"
        )
    return "\n".join(rows)


def summary(results: list) -> str:
    """Counts per verdict; the ones the issue asks to be 0 are shown even when they are."""
    always = ("ok", "PANIC", "ABORT", "HANG", "LOST", "LEFT")
    counts = {v: sum(r.verdict == v for r in results) for v in ["ok", *VERDICTS, "skip", "SUITE"]}
    shown = ", ".join(f"{n} {v}" for v, n in counts.items() if n or v in always)
    return f"{len(results)} cases: {shown}"


def unmount_all(work: Path):
    """Cases mount tmpfs folders and unmount them as they end; this catches any an interrupted run left."""
    mounts = Path("/proc/mounts").read_text().splitlines() if Path("/proc/mounts").exists() else []
    for line in mounts:
        point = line.split()[1]
        if point.startswith(str(work)):
            subprocess.run(["umount", point], capture_output=True)


def main(argv: list) -> int:
    crest, keep = os.path.abspath(argv[0]), "--keep" in argv
    wanted = [a for a in argv[1:] if a != "--keep"]
    cases = [c for c in CASES if not wanted or any(c.id.startswith(w) for w in wanted)]
    work = Path(tempfile.mkdtemp(prefix="crest-adversarial-"))
    start = time.monotonic()
    try:
        shared = work / "shared"
        shared.mkdir()
        make_shared(crest, shared)
        results = []
        for case in cases:
            try:
                results.append(run_case(case, crest, work, shared))
            except Exception as e:  # a bug in the suite: shown in the table, never hidden
                results.append(Result(case, "SUITE", [("SUITE", f"{type(e).__name__}: {e}")], "", 0.0, ""))
            print(f"{case.id} {results[-1].verdict}", file=sys.stderr, flush=True)
    finally:
        unmount_all(work)
        if keep:
            print(f"kept {work}", file=sys.stderr)
        else:
            for p in work.rglob("*"):
                if not p.is_symlink() and p.is_dir():
                    p.chmod(0o755)
            shutil.rmtree(work)
    print(f"crest adversarial suite: {crest}, {time.monotonic() - start:.0f} s\n")
    print(table(results))
    print(f"\n{summary(results)}")
    return 0 if all(r.verdict in ("ok", "skip") for r in results) else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
