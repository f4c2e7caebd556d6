//! A run killed after a checkpoint and resumed ends as the run never killed does: the same table (but the time
//! column) and the same model file, bit for bit. And a checkpoint of another run, or a damaged one, is refused.

mod common;

use common::{command, crest, temp_dir, text};
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

const EPOCHS: &str = "5";

/// The run: an MLP on the MNIST sample, a checkpoint after every epoch.
fn train_args<'a>(out: &'a str, extra: &[&'a str]) -> Vec<&'a str> {
    let mut args = vec!["train", "data/mnist_sample", "--arch", "mlp", "--epochs", EPOCHS, "--checkpoint-every", "1"];
    args.extend(["--out", out]);
    args.extend(extra);
    args
}

/// The table's rows without their time column.
fn rows(stdout: &str) -> Vec<String> {
    let starts_row = |l: &&str| l.split_whitespace().next().is_some_and(|w| w.parse::<usize>().is_ok());
    stdout.lines().filter(starts_row).map(|l| l.rsplit_once("  ").unwrap().0.trim_end().to_string()).collect()
}

/// The number of epochs the checkpoint at `path` was written after, if it is there.
fn checkpoint_epochs(path: &Path) -> Option<u64> {
    let bytes = std::fs::read(path).ok()?;
    let len = u64::from_le_bytes(bytes[..8].try_into().ok()?) as usize;
    let header: serde_json::Value = serde_json::from_slice(&bytes[8..8 + len]).ok()?;
    let contents: serde_json::Value =
        serde_json::from_str(header["__metadata__"]["crest_checkpoint"].as_str()?).ok()?;
    contents["fit"]["done"].as_u64()
}

fn path_str(p: &Path) -> &str {
    p.to_str().unwrap()
}

#[test]
fn a_killed_run_resumed_ends_bit_for_bit_as_one_never_killed() {
    let dir = temp_dir("resume");
    let (whole, cut) = (dir.join("whole.safetensors"), dir.join("cut.safetensors"));
    let out = crest(&train_args(path_str(&whole), &[]));
    let (whole_stdout, stderr) = text(&out);
    assert!(out.status.success(), "{stderr}");
    let expected = rows(&whole_stdout);
    assert_eq!(expected.len(), 5, "{whole_stdout}");

    // The same run, killed (SIGKILL: nothing of its own runs after) as soon as a checkpoint is there.
    let checkpoint = PathBuf::from(format!("{}.ckpt", cut.display()));
    let mut child =
        command(&train_args(path_str(&cut), &[])).stdout(Stdio::null()).stderr(Stdio::null()).spawn().unwrap();
    let started = Instant::now();
    let done = loop {
        if let Some(done) = checkpoint_epochs(&checkpoint) {
            child.kill().unwrap();
            break done;
        }
        assert!(started.elapsed() < Duration::from_secs(120), "no checkpoint appeared");
        std::thread::sleep(Duration::from_millis(1));
    };
    let status = child.wait().unwrap();
    assert!(status.code().is_none(), "the run ended before it was killed ({status})");
    assert!(done < 5 && !cut.exists(), "killed after {done} epochs, the model saved: {}", cut.exists());

    let out = crest(&train_args(path_str(&cut), &["--resume", path_str(&checkpoint)]));
    let (stdout, stderr) = text(&out);
    assert!(out.status.success(), "{stderr}");
    assert!(stdout.contains(&format!("resuming from {}: {done} of 5 epochs done", checkpoint.display())), "{stdout}");
    assert_eq!(rows(&stdout), expected, "{stdout}");
    let (a, b) = (std::fs::read(&whole).unwrap(), std::fs::read(&cut).unwrap());
    assert!(a == b, "the resumed run's model file differs from the uninterrupted run's");
    let _ = std::fs::remove_dir_all(&dir);
}

/// `crest train DIR --arch ARCH --epochs EPOCHS --resume CHECKPOINT` refuses the checkpoint with one line that
/// contains `why`, and saves no model.
fn refused(dir: &Path, arch: &str, epochs: &str, checkpoint: &Path, why: &str) {
    let model = checkpoint.with_extension("refused.safetensors");
    let args = ["train", path_str(dir), "--arch", arch, "--epochs", epochs, "--out", path_str(&model)];
    let out = crest(&[&args[..], &["--resume", path_str(checkpoint)]].concat());
    let (_, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert!(stderr.starts_with("error: cannot resume from ") && stderr.contains(why), "{stderr}");
    assert!(!model.exists());
}

#[test]
fn a_checkpoint_of_another_run_or_a_damaged_one_is_refused_in_one_line() {
    let dir = temp_dir("resume-refused");
    let model = dir.join("m.safetensors");
    let out = crest(&["train", "--arch", "mlp", "--epochs", "1", "--checkpoint-every", "1", "--out", path_str(&model)]);
    assert!(out.status.success(), "{}", text(&out).1);
    let checkpoint = dir.join("m.safetensors.ckpt");
    let sample = Path::new("data/mnist_sample");
    let refused_here = |arch, epochs, why| refused(sample, arch, epochs, &checkpoint, why);

    refused_here("mlp", "5", "it is from another run: its --epochs is 1, this run's is 5");
    refused_here("linear", "1", "it is from another run: its --arch is mlp:256, this run's is linear");

    // Another folder: the MNIST sample's first 30 images of each digit.
    let other = dir.join("digits");
    for class in ["3", "7"] {
        std::fs::create_dir_all(other.join(class)).unwrap();
        let mut files: Vec<_> = std::fs::read_dir(sample.join(class)).unwrap().map(|e| e.unwrap().path()).collect();
        files.sort();
        for f in &files[..30] {
            std::fs::copy(f, other.join(class).join(f.file_name().unwrap())).unwrap();
        }
    }
    refused(&other, "mlp", "1", &checkpoint, "it is from another run: its training images' fingerprint is ");

    // One byte flipped in the middle (in the weights), and one digit of the metadata changed.
    let bytes = std::fs::read(&checkpoint).unwrap();
    let damaged = dir.join("damaged.ckpt");
    let mut flipped = bytes.clone();
    flipped[bytes.len() / 2] ^= 0x10;
    std::fs::write(&damaged, &flipped).unwrap();
    refused(sample, "mlp", "1", &damaged, "does not match its contents");
    let key = "\\\"epochs_done\\\":";
    let at = bytes.windows(key.len()).position(|w| w == key.as_bytes()).expect("epochs_done in the header") + key.len();
    let mut edited = bytes.clone();
    edited[at] = b'2';
    std::fs::write(&damaged, &edited).unwrap();
    refused(sample, "mlp", "1", &damaged, "does not match its contents");
    // A model file is not a checkpoint.
    refused(sample, "mlp", "1", &model, "it is not a crest checkpoint: it has no crest_checkpoint metadata");
    let missing = dir.join("missing.ckpt");
    let out = crest(&["train", "--epochs", "1", "--resume", path_str(&missing), "--out", path_str(&dir.join("x"))]);
    let (_, stderr) = text(&out);
    assert_eq!(
        stderr,
        format!("error: cannot read checkpoint {}: No such file or directory (os error 2)\n", missing.display())
    );
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn checkpoints_beside_save_best_patience_or_runs_are_refused_before_loading() {
    for (flags, message) in [
        (&["--checkpoint-every", "1", "--save-best"][..], "--checkpoint-every can't be combined with --save-best yet"),
        (
            &["--checkpoint-every", "1", "--patience", "2"][..],
            "--checkpoint-every can't be combined with --patience yet",
        ),
        (&["--resume", "x.ckpt", "--runs", "2"][..], "--resume can't be combined with --runs yet"),
    ] {
        let out = crest(&[&["train", "--no-report"][..], flags].concat());
        let (stdout, stderr) = text(&out);
        assert_eq!(out.status.code(), Some(1), "{flags:?}: {stderr}");
        assert_eq!(stderr, format!("error: {message}\n"), "{flags:?}");
        assert!(stdout.is_empty(), "{flags:?} loaded before refusing: {stdout}");
    }
}
