"""Running one adversarial case and judging what it did.

A case runs crest in a folder of its own. Every run is watched for panics, aborts and hangs; a failed run must end in
exactly one readable `error:` line; the case's folder is compared before and after, so a file lost or left behind
shows whatever the case was about."""

import hashlib
import os
import re
import signal
import stat
import subprocess
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Optional

TIMEOUT_S = 20
# Worst first: a case's verdict is the worst of its findings.
VERDICTS = ["PANIC", "ABORT", "HANG", "LOST", "LEFT", "WRONG", "UNCLEAR"]
DEBUG_SYNTAX = ["{ ", "Error(", "Some(", "InvalidOffset", "MetadataIncompleteBuffer", "Os { code"]
TEMP_FILE = re.compile(r"^\..*\.(crest-)?tmp-")
# What clap prints around its one-line message (exit 2); the message itself is judged like crest's own.
CLAP_TRAILER = re.compile(
    r"^(For more information, try '--help'\.|Usage: .*|\s+tip: .*|\s+\[possible values: .*\]|\s*)$"
)
# safetensors' error variants by name: a user can't act on them.
RAW_CODES = re.compile(
    r"\b(InvalidHeader\w*|HeaderToo\w+|TensorNotFound|TensorInvalidInfo|InvalidOffset|IoError|JsonError|"
    r"InvalidTensorView|MetadataIncompleteBuffer|ValidationOverflow|MisalignedSlice)\b"
)


@dataclass
class Run:
    exit: Optional[int]  # None when the timeout killed it
    signal: Optional[int]  # the signal that ended it, if one did
    sent: Optional[int]  # the signal the case sent it, if any
    seconds: float
    stdout: str
    stderr: str
    peak_rss_mb: float

    @property
    def timed_out(self) -> bool:
        return self.exit is None and self.signal is None

    @property
    def failed(self) -> bool:
        return self.exit not in (0, None)

    def exit_text(self) -> str:
        if self.timed_out:
            return "timeout"
        if self.signal is not None:
            return f"sig {self.signal}"
        return str(self.exit)


@dataclass
class Ctx:
    """What a case's setup, driver and check get: its folder, the crest binary and the shared inputs."""

    crest: str
    dir: Path
    shared: Path
    logs: Path
    runs: list = field(default_factory=list)
    started: int = 0  # runs started, judged or not: numbers their logs
    notes: list = field(default_factory=list)  # what the case could not arrange (information, not a verdict)

    def path(self, rel: str) -> Path:
        return self.dir / rel

    def crest_run(self, args, during: Callable = None, judged: bool = True) -> Run:
        """Runs crest in the case's folder; `during(pid, stdout_path, send, done)` runs beside it in a thread, and
        signals it only through send(sig), which does nothing once the run is over (done is set). Judged runs are the
        ones the case is about; others (a check's predict) only inform."""
        self.started += 1
        out, err = self.logs / f"{self.started}.out", self.logs / f"{self.started}.err"
        with open(out, "wb") as o, open(err, "wb") as e:
            start = time.monotonic()
            proc = subprocess.Popen(
                [self.crest, *map(str, args)], cwd=self.dir, stdin=subprocess.DEVNULL, stdout=o, stderr=e,
                start_new_session=True,
            )
            sent = []
            done = threading.Event()
            helper = None
            if during:
                def send_once(sig):
                    if not done.is_set():
                        sent.append(sig)
                        os.kill(proc.pid, sig)

                helper = threading.Thread(target=during, args=(proc.pid, out, send_once, done), daemon=True)
                helper.start()
            status, usage, timed_out = wait_with_timeout(proc, TIMEOUT_S)
            done.set()
            seconds = time.monotonic() - start
        if helper:
            helper.join()
        code = None if timed_out else os.waitstatus_to_exitcode(status)
        run = Run(
            exit=code if code is not None and code >= 0 else None,
            signal=-code if code is not None and code < 0 else None,
            sent=sent[-1] if sent else None,
            seconds=seconds,
            stdout=out.read_text(errors="replace"),
            stderr=err.read_text(errors="replace"),
            peak_rss_mb=usage.ru_maxrss / 1024 if usage else 0.0,
        )
        if judged:
            self.runs.append(run)
        return run


def wait_with_timeout(proc: subprocess.Popen, timeout: float):
    """(wait status, resource usage of this child alone, timed out). wait4 gives the child's own peak RSS, which
    a shell's `time` or getrusage(CHILDREN) would mix with every other case's."""
    deadline = time.monotonic() + timeout
    while True:
        pid, status, usage = os.wait4(proc.pid, os.WNOHANG)
        if pid:
            proc.returncode = os.waitstatus_to_exitcode(status)
            return status, usage, False
        if time.monotonic() > deadline:
            os.killpg(proc.pid, signal.SIGKILL)
            _, status, usage = os.wait4(proc.pid, 0)
            proc.returncode = -signal.SIGKILL
            return status, usage, True
        time.sleep(0.005)


def snapshot(root: Path) -> dict:
    """Every entry under root, without following links: (kind, content digest / link target / device number)."""
    entries = {}
    for dirpath, dirnames, filenames in os.walk(root):
        for name in dirnames + filenames:
            p = Path(dirpath, name)
            st = os.lstat(p)
            kind = stat.S_IFMT(st.st_mode)
            if stat.S_ISLNK(st.st_mode):
                detail = os.readlink(p)
            elif stat.S_ISREG(st.st_mode) and os.access(p, os.R_OK):
                detail = hashlib.sha256(p.read_bytes()).hexdigest()
            elif stat.S_ISREG(st.st_mode):
                detail = (st.st_size, st.st_mtime_ns)
            elif stat.S_ISCHR(st.st_mode) or stat.S_ISBLK(st.st_mode):
                detail = st.st_rdev
            else:
                detail = None
            entries[str(p.relative_to(root))] = (kind, detail)
    return entries


def judge_files(before: dict, after: dict, outputs: set, succeeded: bool, may_change: set) -> list:
    """Files lost (changed or gone when they shouldn't) and left behind (temp files, or outputs of a failed run)."""
    findings = []
    for rel, entry in before.items():
        now = after.get(rel)
        if now == entry or rel in may_change or rel in outputs and succeeded:
            continue
        findings.append(("LOST", f"{rel} {'vanished' if now is None else 'changed'}"))
    new = sorted(after.keys() - before.keys())
    temps = [rel for rel in new if TEMP_FILE.match(Path(rel).name)]
    if temps:
        findings.append(("LEFT", f"{len(temps)} temp file(s) left, e.g. {temps[0]}"))
    for rel in new:
        if rel in temps or rel in may_change:
            continue
        if rel not in outputs:
            findings.append(("LEFT", f"stray file {rel}"))
        elif not succeeded:
            findings.append(("LEFT", f"{rel} left by a failed run"))
    return findings


def judge_run(run: Run, expect: str, forbid: list, rss_limit_mb: Optional[float]) -> list:
    findings = []
    err = run.stderr
    if run.exit == 101 or "panicked" in err or "bug in crest" in err:
        findings.append(("PANIC", "a panic"))
    ended_by_us = run.sent is not None and (run.signal == run.sent or run.exit == 128 + run.sent)
    if run.signal is not None and not ended_by_us:
        findings.append(("ABORT", f"killed by signal {run.signal}"))
    elif run.exit is not None and run.exit >= 128 and not ended_by_us:
        findings.append(("ABORT", f"exit {run.exit}"))
    elif "memory allocation of" in err:
        findings.append(("ABORT", "allocation failure"))
    if run.timed_out:
        findings.append(("HANG", f"still running after {TIMEOUT_S} s"))
    syntax = [s for s in DEBUG_SYNTAX if s in err]
    code = RAW_CODES.search(err)
    if syntax:
        findings.append(("UNCLEAR", f"Rust Debug syntax in stderr ({syntax[0].strip()})"))
    elif code:
        findings.append(("UNCLEAR", f"safetensors' raw error code {code.group(0)}"))
    if run.failed and not (ended_by_us and not err.strip()):
        lines = [l for l in err.splitlines() if not l.startswith("warning: ")]
        if run.exit == 2:
            lines = [l for l in lines if not CLAP_TRAILER.match(l)]
        if len(lines) != 1 or not lines[0].startswith("error: "):
            findings.append(("UNCLEAR", f"stderr has {len(lines)} lines besides warnings, not one `error:` line"))
    said = [p for p in forbid if p.lower() in (run.stdout + err).lower()]
    if said:
        findings.append(("UNCLEAR", f"says {said[0]!r}"))
    if expect == "error" and run.exit == 0:
        findings.append(("WRONG", "exit 0 where an error is required"))
    if expect == "ok" and run.failed and not ended_by_us:
        findings.append(("WRONG", "failed where it should succeed"))
    if rss_limit_mb is not None and run.peak_rss_mb > rss_limit_mb:
        findings.append(("WRONG", f"peak RSS {run.peak_rss_mb:.0f} MB > {rss_limit_mb} MB"))
    return findings


def verdict(findings: list) -> str:
    """The worst finding; findings of other kinds ("note") are information only."""
    return min((f[0] for f in findings if f[0] in VERDICTS), key=VERDICTS.index, default="ok")


@dataclass
class Case:
    id: str
    area: str
    title: str
    args: list = None  # crest's arguments; None when `drive` runs crest itself
    setup: Callable = None  # setup(ctx): make the case's inputs in ctx.dir
    expect: str = "error"  # "error", "ok" or "either"
    outputs: tuple = ()  # paths crest may create or replace when it succeeds
    forbid: tuple = ()  # phrases that must not appear in its output
    check: Callable = None  # check(ctx) -> findings, after the runs
    drive: Callable = None  # drive(ctx): runs crest itself (several runs, signals)
    rss_limit_mb: float = None
    may_change: tuple = ()  # entries that may change or vanish in any run: the case's check judges them
    skip: Callable = None  # skip(ctx) -> why it can't run here, or None
    teardown: Callable = None


@dataclass
class Result:
    case: Case
    verdict: str
    findings: list
    exit: str
    seconds: float
    stderr: str


def run_case(case: Case, crest: str, work: Path, shared: Path) -> Result:
    ctx = Ctx(crest=crest, dir=work / case.id, shared=shared, logs=work / "logs" / case.id)
    ctx.dir.mkdir(parents=True)
    ctx.logs.mkdir(parents=True)
    why_not = case.skip(ctx) if case.skip else None
    if why_not:
        return Result(case, "skip", [("skip", why_not)], "", 0.0, "")
    try:
        if case.setup:
            case.setup(ctx)
        before = snapshot(ctx.dir)
        if case.drive:
            case.drive(ctx)
        else:
            ctx.crest_run(case.args)
        last = ctx.runs[-1]
        findings = [f for run in ctx.runs for f in judge_run(run, case.expect, case.forbid, case.rss_limit_mb)]
        findings += judge_files(before, snapshot(ctx.dir), set(case.outputs), last.exit == 0, set(case.may_change))
        if case.check and not last.timed_out:
            findings += case.check(ctx)
        findings += [("note", n) for n in ctx.notes]
    finally:
        if case.teardown:
            case.teardown(ctx)
    first_line = next((l for l in last.stderr.splitlines() if l.strip()), "")
    seconds = sum(r.seconds for r in ctx.runs)
    return Result(case, verdict(findings), findings, last.exit_text(), seconds, first_line)
