"""`crest train ... --out X --csv Y` where writing is the hard part: paths that are devices, FIFOs, links, folders
or on a full or read-only disk, and runs killed while they train or save."""

import errno
import os
import re
import stat
import subprocess
import time

from fixtures import digits, loads, train_args
from harness import TEMP_FILE, Case

MODEL = "model.safetensors"
# A model big enough (33 MB) that its save takes long enough to be caught in the act.
SLOW_SAVE = ("--arch", "mlp:2048", "--size", "64")
# Epochs of a few milliseconds each, so many that the run is still training when the signal comes.
LONG_TRAINING = ("--arch", "mlp:512", "--size", "64", "--epochs", "1000")


def train_to(out, *extra):
    return train_args("data", "--out", out, *extra)


def write_case(id, title, args, prepare=None, expect="either", outputs=(MODEL,), **kw) -> Case:
    """Training on the digits, with prepare(ctx) making the target paths."""

    def setup(ctx):
        digits(ctx)
        if prepare:
            prepare(ctx)

    return Case(id, "write", title, args, setup, expect, outputs=outputs, **kw)


def can(action, why):
    """skip: why, unless action(ctx) works here (a probe in the case's log folder, removed again)."""

    def skip(ctx):
        try:
            action(ctx)
            return None
        except OSError as e:
            return f"{why} ({e.strerror})"

    return skip


def probe_mknod(ctx):
    """Device nodes can be made here, or this user can't replace the real ones (char_device links to them)."""
    if os.geteuid() != 0:
        return
    os.mknod(ctx.logs / "probe", stat.S_IFCHR | 0o666, os.makedev(1, 3))
    os.unlink(ctx.logs / "probe")


def probe_mount(ctx):
    probe = ctx.logs / "probe"
    probe.mkdir()
    mount(probe)
    subprocess.run(["umount", probe], check=True)
    probe.rmdir()


def mount(path, *options):
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", ",".join(["size=64k", *options]), "tmpfs", path],
                          capture_output=True, text=True)
    if done.returncode != 0:
        raise OSError(errno.EPERM, (done.stderr.strip() or "mount failed").splitlines()[0])


def unmount(rel):
    return lambda ctx: subprocess.run(["umount", ctx.path(rel)], capture_output=True)


def char_device(rel, major, minor, real):
    """A device node of our own (a copy of /dev/null or /dev/full), so the real one stays out of harm's way; where
    nodes can't be made, a link to the real one, but only for a user who can't replace it."""

    def prepare(ctx):
        try:
            os.mknod(ctx.path(rel), stat.S_IFCHR | 0o666, os.makedev(major, minor))
        except PermissionError:
            if os.geteuid() == 0:
                raise
            os.symlink(real, ctx.path(rel))

    return prepare


def still_device(rel, major, minor):
    def check(ctx):
        st = os.stat(ctx.path(rel)) if os.path.exists(ctx.path(rel)) else None
        if st is None or not stat.S_ISCHR(st.st_mode) or st.st_rdev != os.makedev(major, minor):
            return [("WRONG", f"{rel} is no longer the device node")]
        return []

    return check


def still_fifo(ctx):
    p = ctx.path("pipe")
    return [] if stat.S_ISFIFO(os.lstat(p).st_mode) else [("WRONG", "the FIFO was replaced")]


def full_disk(existing_model=False):
    """A 64 KB tmpfs at full/, optionally holding a model, then filled to the last byte."""

    def prepare(ctx):
        ctx.path("full").mkdir()
        mount(ctx.path("full"))
        if existing_model:
            copy(ctx.shared / "linear.safetensors", ctx.path(f"full/{MODEL}"))
        with open(ctx.path("full/filler"), "wb", buffering=0) as f:
            try:
                while True:
                    f.write(b"\0" * 512)
            except OSError as e:
                if e.errno != errno.ENOSPC:
                    raise

    return prepare


def copy(src, dst):
    """A copy, not a link: crest may rewrite it, and the shared original must stay as it is."""
    dst.write_bytes(src.read_bytes())


def read_only_disk(ctx):
    ctx.path("ro").mkdir()
    mount(ctx.path("ro"), "ro")


def before_training(ctx):
    """A check: the run stopped before its first epoch (a bad --out or --csv is found at once)."""
    run = ctx.runs[-1]
    if run.exit != 0 and re.search(r"^epoch\s", run.stdout, re.M):
        return [("WRONG", "failed only after training")]
    return []


def existing_model(ctx):
    copy(ctx.shared / "linear.safetensors", ctx.path(MODEL))


def still_link(rel, target):
    """A check: rel is still a link; after a success its target holds a model crest reads."""

    def check(ctx):
        if not os.path.islink(ctx.path(rel)):
            return [("WRONG", f"the link {rel} was replaced")]
        if ctx.runs[-1].exit == 0 and not loads(ctx, target):
            return [("WRONG", f"the link's target {target} holds no model")]
        return []

    return check


def model_loads(ctx):
    return [] if loads(ctx, MODEL) else [("WRONG", f"{MODEL} no longer loads")]


def temp_files(ctx) -> list:
    return [p.name for p in ctx.dir.iterdir() if TEMP_FILE.match(p.name)]


def kill_when(sig, ready, delay=0.0, before=lambda pid: None):
    """during: send sig once ready(out) holds (polled every millisecond), after delay seconds; before(pid) runs just
    before the signal goes."""

    def during(pid, out, send, done):
        deadline = time.monotonic() + 15
        while not done.is_set() and time.monotonic() < deadline:
            if ready(out):
                time.sleep(delay)
                before(pid)
                send(sig)
                return
            time.sleep(0.001)

    return during


def training(out) -> bool:
    return "epoch" in out.read_text(errors="replace")


def killed_while_training(sig):
    def drive(ctx):
        for delay in (0.0, 0.05, 0.2):
            run = ctx.crest_run(train_to(MODEL, *LONG_TRAINING), during=kill_when(sig, training, delay))
            if run.sent is None:
                ctx.notes.append("a run ended before the signal")

    return drive


def kill_during_save(ctx, sig):
    """Trains the slow-saving model and kills it once its temp file exists; tries three times to catch a save.
    Returns whether it did."""
    for _ in range(3):
        run = ctx.crest_run(train_to(MODEL, *SLOW_SAVE), during=kill_when(sig, lambda out: temp_files(ctx)))
        if run.sent is not None and (run.signal == sig or run.exit == 128 + sig):
            return True
    return False


def killed_while_saving(sig, then_save):
    def drive(ctx):
        if not kill_during_save(ctx, sig):
            ctx.notes.append("never caught a save in progress")
        if then_save:
            ctx.crest_run(train_to(MODEL))

    return drive


def save_starts(ctx) -> tuple:
    """(seconds until the temp file appears, seconds of the whole run) of one undisturbed slow-saving run."""
    seen = []

    def watch(pid, out, send, done):
        start = time.monotonic()
        while not done.is_set() and not seen:
            if temp_files(ctx):
                seen.append(time.monotonic() - start)
            time.sleep(0.001)

    whole = ctx.crest_run(train_to(MODEL, *SLOW_SAVE), during=watch, judged=False).seconds
    return (seen[0] if seen else whole), whole


def kills_then_save(ctx):
    """Ten kills, TERM and KILL in turn: five spread over training, five over saving (as timed on one undisturbed
    run), then one save that finishes (and should clean what the kills left). The note says how many kills really
    came mid-save: the timing is only as good as the first run's."""
    saving, whole = save_starts(ctx)
    moments = [saving * k / 5 for k in range(5)] + [saving + (whole - saving) * k / 5 for k in range(5)]
    mid_save = []
    for k, moment in enumerate(moments):
        during = kill_when(15 if k % 2 else 9, lambda out: True, moment,
                           before=lambda pid: mid_save.append(ctx.path(f".{MODEL}.crest-tmp-{pid}").exists()))
        ctx.crest_run(train_to(MODEL, *SLOW_SAVE), during=during)
    ctx.notes.append(f"{sum(mid_save)} of {len(moments)} kills came while the run's temp file existed")
    ctx.crest_run(train_to(MODEL))


# Linux never gives a process this PID (PID_MAX_LIMIT): the temp file of a crest that is surely gone.
DEAD_TEMP = f".{MODEL}.crest-tmp-4194304"


def stale_temps(ctx):
    """Temp files of crest's naming: one of a process that can't be alive, one of a process that is (this suite)."""
    ctx.path(DEAD_TEMP).write_bytes(b"half a model")
    ctx.path(f".{MODEL}.crest-tmp-{os.getpid()}").write_bytes(b"another crest's model in the making")


def dead_temp_removed(ctx):
    return [("LEFT", f"{DEAD_TEMP} of an exited crest not cleaned")] if ctx.path(DEAD_TEMP).exists() else []


MKNOD = can(probe_mknod, "cannot make device nodes here")
MOUNT = can(probe_mount, "cannot mount a tmpfs here")

CASES = [
    write_case("W01", "control: --out a new file", train_args(), expect="ok", check=model_loads),
    write_case("W02", "control: --out over an existing model", train_args(), existing_model, expect="ok",
               check=model_loads),
    write_case("W03", "--out a /dev/null device node", train_to("null"), char_device("null", 1, 3, "/dev/null"),
               outputs=(), check=still_device("null", 1, 3), skip=MKNOD),
    write_case("W04", "--out a FIFO", train_to("pipe"), lambda ctx: os.mkfifo(ctx.path("pipe")), outputs=(),
               check=still_fifo),
    write_case("W05", "--out a symlink to an existing model", train_to("link.safetensors"), lambda ctx: [
        existing_model(ctx), os.symlink(MODEL, ctx.path("link.safetensors"))], outputs=(MODEL,),
        check=still_link("link.safetensors", MODEL)),
    write_case("W06", "--out a dangling symlink", train_to("link.safetensors"),
               lambda ctx: os.symlink(MODEL, ctx.path("link.safetensors")), outputs=(MODEL,),
               check=still_link("link.safetensors", MODEL)),
    write_case("W07", "--out an existing directory", train_to("folder"), lambda ctx: ctx.path("folder").mkdir(),
               expect="error", outputs=(), forbid=("Not a directory",), check=before_training),
    write_case("W08", "--out in a missing folder", train_to("missing/model.safetensors"), expect="error",
               outputs=(), check=before_training),
    write_case("W09", "--out on a read-only filesystem", train_to("ro/model.safetensors"), read_only_disk,
               expect="error", outputs=(), check=before_training, skip=MOUNT, teardown=unmount("ro")),
    write_case("W10", "--out on a full disk over an existing model", train_to(f"full/{MODEL}"), full_disk(True),
               expect="error", outputs=(), skip=MOUNT, teardown=unmount("full")),
    write_case("W11", "--out empty", train_to(""), expect="error", outputs=()),
    write_case("W12", "--csv in a missing folder", train_args("data", "--csv", "missing/log.csv"), expect="error",
               outputs=(MODEL,), check=before_training),
    write_case("W13", "--csv on a full disk", train_args("data", "--csv", "full/log.csv"), full_disk(),
               expect="error", outputs=("full/log.csv",), may_change=(MODEL,), skip=MOUNT,
               teardown=unmount("full")),
    write_case("W14", "--csv a /dev/full device node", train_args("data", "--csv", "devfull"),
               char_device("devfull", 1, 7, "/dev/full"), expect="error", check=still_device("devfull", 1, 7),
               skip=MKNOD),
    write_case("W15", "--csv an existing directory", train_args("data", "--csv", "folder"),
               lambda ctx: ctx.path("folder").mkdir(), expect="error", check=before_training),
    Case("W16", "write", "SIGTERM during training (x3), existing model", setup=lambda ctx: [digits(ctx),
         existing_model(ctx)], expect="either", drive=killed_while_training(15), check=model_loads),
    Case("W17", "write", "SIGKILL during training (x3), existing model", setup=lambda ctx: [digits(ctx),
         existing_model(ctx)], expect="either", drive=killed_while_training(9), check=model_loads),
    Case("W18", "write", "SIGTERM while saving: no temp file left", setup=lambda ctx: [digits(ctx),
         existing_model(ctx)], expect="either", drive=killed_while_saving(15, then_save=False), may_change=(MODEL,),
         check=model_loads),
    Case("W19", "write", "SIGKILL while saving, then a save: its temp cleaned", setup=lambda ctx: [digits(ctx),
         existing_model(ctx)], expect="either", drive=killed_while_saving(9, then_save=True), outputs=(MODEL,),
         check=model_loads),
    Case("W20", "write", "10 kills (TERM, KILL), 5 training, 5 saving, then a save", setup=lambda ctx: [
         digits(ctx), existing_model(ctx)], expect="either", drive=kills_then_save, outputs=(MODEL,),
         check=model_loads),
    write_case("W21", "stale temp file of an exited crest; a live one kept", train_args(), stale_temps,
               expect="ok", check=dead_temp_removed, may_change=(DEAD_TEMP,)),
]
