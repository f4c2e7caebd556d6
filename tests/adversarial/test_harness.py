"""The suite's judge on runs and folders made up to show each verdict: python3 -m unittest discover tests/adversarial"""

import os
import stat
import tempfile
import unittest
from pathlib import Path

from harness import Run, judge_files, judge_run, snapshot, verdict


def run(exit=1, stderr="error: no\n", signal=None, sent=None, stdout="", rss=10.0) -> Run:
    return Run(exit, signal, sent, 0.1, stdout, stderr, rss)


def judged(r: Run, expect="error", forbid=(), rss_limit=None) -> str:
    return verdict(judge_run(r, expect, list(forbid), rss_limit))


class JudgeRun(unittest.TestCase):
    def test_one_error_line_is_ok(self):
        self.assertEqual(judged(run()), "ok")
        self.assertEqual(judged(run(stderr="warning: skipped a.png: cut short\nerror: no\n")), "ok")

    def test_clap_usage_lines_are_not_counted(self):
        clap = "error: invalid value '2' for '--channels'\n  [possible values: 1, 3]\n\n"
        clap += "For more information, try '--help'.\n"
        self.assertEqual(judged(run(exit=2, stderr=clap)), "ok")
        self.assertEqual(judged(run(exit=1, stderr=clap)), "UNCLEAR")

    def test_panics(self):
        self.assertEqual(judged(run(exit=101)), "PANIC")
        self.assertEqual(judged(run(stderr="error: internal error: x (this is a bug in crest; please report it)\n")),
                         "PANIC")

    def test_aborts_unless_the_suite_sent_the_signal(self):
        self.assertEqual(judged(run(exit=None, signal=6, stderr="memory allocation of 8 bytes failed\n")), "ABORT")
        self.assertEqual(judged(run(exit=134, stderr="error: no\n")), "ABORT")
        self.assertEqual(judged(run(exit=None, signal=15, sent=15, stderr=""), expect="either"), "ok")
        self.assertEqual(judged(run(exit=143, sent=15, stderr="error: interrupted\n"), expect="either"), "ok")

    def test_hang(self):
        self.assertEqual(judged(run(exit=None, stderr="")), "HANG")

    def test_unclear_messages(self):
        self.assertEqual(judged(run(stderr="error: a\nerror: b\n")), "UNCLEAR")
        self.assertEqual(judged(run(stderr="oops\n")), "UNCLEAR")
        self.assertEqual(judged(run(stderr="error: bad file: InvalidOffset(\"1.weight\")\n")), "UNCLEAR")
        self.assertEqual(judged(run(stderr="error: bad file: HeaderTooLarge\n")), "UNCLEAR")
        self.assertEqual(judged(run(exit=0, stderr="warning: skipped: Chunk { type: IDAT }\n"), "ok"), "UNCLEAR")
        self.assertEqual(judged(run(stderr="error: learning rate too high\n"), forbid=["learning rate"]), "UNCLEAR")

    def test_wrong_outcomes(self):
        self.assertEqual(judged(run(exit=0, stderr="")), "WRONG")
        self.assertEqual(judged(run(), expect="ok"), "WRONG")
        self.assertEqual(judged(run(exit=0, stderr="", rss=600), expect="ok", rss_limit=512), "WRONG")
        self.assertEqual(judged(run(exit=0, stderr=""), expect="either"), "ok")

    def test_worst_verdict_wins_and_notes_do_not_count(self):
        self.assertEqual(verdict([("UNCLEAR", ""), ("PANIC", ""), ("note", "")]), "PANIC")
        self.assertEqual(verdict([("note", "")]), "ok")


class JudgeFiles(unittest.TestCase):
    def setUp(self):
        self.dir = tempfile.TemporaryDirectory()
        self.root = Path(self.dir.name)
        (self.root / "model.safetensors").write_bytes(b"old")
        os.symlink("model.safetensors", self.root / "link")
        self.before = snapshot(self.root)

    def tearDown(self):
        self.dir.cleanup()

    def files(self, succeeded, outputs=("model.safetensors",), may_change=()) -> list:
        return judge_files(self.before, snapshot(self.root), set(outputs), succeeded, set(may_change))

    def test_untouched_folder_is_ok(self):
        self.assertEqual(self.files(False), [])

    def test_output_replaced_only_on_success(self):
        (self.root / "model.safetensors").write_bytes(b"new")
        self.assertEqual(self.files(True), [])
        self.assertEqual(verdict(self.files(False)), "LOST")

    def test_link_replaced_by_a_file_is_lost(self):
        os.unlink(self.root / "link")
        (self.root / "link").write_bytes(b"old")
        self.assertEqual(verdict(self.files(True)), "LOST")

    def test_temp_files_and_failed_outputs_are_left(self):
        (self.root / ".model.safetensors.crest-tmp-42").write_bytes(b"half")
        self.assertEqual(verdict(self.files(True)), "LEFT")
        os.unlink(self.root / ".model.safetensors.crest-tmp-42")
        (self.root / "log.csv").write_bytes(b"")
        self.assertEqual(verdict(self.files(False, outputs=("log.csv",))), "LEFT")
        self.assertEqual(self.files(True, outputs=("log.csv",)), [])

    def test_may_change_entries_are_left_to_the_case(self):
        os.unlink(self.root / "model.safetensors")
        self.assertEqual(self.files(False, may_change=("model.safetensors",)), [])

    def test_a_fifo_replaced_by_a_file_is_lost(self):
        fifo = self.root / "pipe"
        os.mkfifo(fifo)
        before = snapshot(self.root)
        self.assertEqual(before["pipe"], (stat.S_IFIFO, None))
        os.unlink(fifo)
        fifo.write_bytes(b"model")
        self.assertEqual(verdict(judge_files(before, snapshot(self.root), set(), True, set())), "LOST")


if __name__ == "__main__":
    unittest.main()
