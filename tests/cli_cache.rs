//! `crest train`'s decoded-image cache from the command line: the second run reads it and trains to the same
//! numbers, `--no-cache` writes nothing, and a full disk costs one warning and leaves no cache file.

mod common;

use common::{crest, listing, temp_dir, text};
use std::path::{Path, PathBuf};

/// The first `n` images of each class of the shipped sample, in a folder of the test's own.
fn sample(tag: &str, n: usize) -> PathBuf {
    let dir = temp_dir(tag).join("data");
    for class in ["3", "7"] {
        std::fs::create_dir_all(dir.join(class)).unwrap();
        for file in listing(&Path::new("data/mnist_sample").join(class)).iter().take(n) {
            std::fs::copy(Path::new("data/mnist_sample").join(class).join(file), dir.join(class).join(file)).unwrap();
        }
    }
    dir
}

fn train(dir: &Path, extra: &[&str]) -> (String, String) {
    let out_file = dir.with_file_name("model.safetensors");
    let mut args =
        vec!["train", dir.to_str().unwrap(), "--epochs", "2", "--no-report", "--out", out_file.to_str().unwrap()];
    args.extend(extra);
    let out = crest(&args);
    let (stdout, stderr) = text(&out);
    assert!(out.status.success(), "{stderr}");
    (stdout, stderr)
}

#[test]
fn the_second_run_reads_the_cache_and_trains_to_the_same_numbers() {
    let dir = sample("cache-twice", 60);
    assert!(!dir.join(".crest-cache").exists());
    let (first, _) = train(&dir, &[]);
    let names = listing(&dir.join(".crest-cache"));
    assert_eq!(names.len(), 1, "{names:?}");
    let file = dir.join(".crest-cache").join(&names[0]);
    assert!(first.contains(&format!("note: cache: decoded images written to {}\n", file.display())), "{first}");
    let (second, stderr) = train(&dir, &[]);
    assert!(second.contains(&format!("note: cache: decoded images read from {}\n", file.display())), "{second}");
    assert!(!stderr.contains("warning"), "{stderr}");
    let without_cache_note =
        |s: &str| s.lines().filter(|l| !l.starts_with("note: cache:")).collect::<Vec<_>>().join("\n");
    assert_eq!(without_cache_note(&second), without_cache_note(&first));
    assert!(first.contains("epoch     train_loss"), "{first}");
}

#[test]
fn no_cache_writes_nothing_and_cache_dir_puts_it_elsewhere() {
    let dir = sample("cache-off", 10);
    let (stdout, _) = train(&dir, &["--no-cache"]);
    assert!(!stdout.contains("note: cache:"), "{stdout}");
    assert!(!dir.join(".crest-cache").exists());
    let elsewhere = dir.with_file_name("elsewhere");
    let (stdout, _) = train(&dir, &["--cache-dir", elsewhere.to_str().unwrap()]);
    assert!(stdout.contains(&format!("note: cache: decoded images written to {}/", elsewhere.display())), "{stdout}");
    assert_eq!(listing(&elsewhere).len(), 1);
    assert!(!dir.join(".crest-cache").exists());
    let out = crest(&["train", dir.to_str().unwrap(), "--no-cache", "--cache-dir", "x"]);
    assert!(!out.status.success());
}

/// A real full disk: a 16 KiB tmpfs mounted in a user and mount namespace of the test's own (skipped where the
/// system allows none), too small for the sample's pixels. Training goes on with one warning, and the cache folder
/// is left empty: no part-written file for a later run to find.
#[test]
fn a_full_disk_costs_one_warning_and_leaves_no_cache_file() {
    let dir = sample("cache-full", 60);
    let mount = dir.with_file_name("small-disk");
    std::fs::create_dir_all(&mount).unwrap();
    let can_mount = std::process::Command::new("unshare")
        .args(["-rm", "sh", "-c", "mount -t tmpfs -o size=16k tmpfs \"$0\"", mount.to_str().unwrap()])
        .output()
        .is_ok_and(|o| o.status.success());
    if !can_mount {
        eprintln!("skipped: this system lets no unprivileged user mount a tmpfs (unshare -rm)");
        return;
    }
    let crest_bin = env!("CARGO_BIN_EXE_crest");
    let model = dir.with_file_name("model.safetensors");
    let script = "mount -t tmpfs -o size=16k tmpfs \"$0\" || exit 99
\"$1\" train \"$2\" --epochs 1 --no-report --out \"$3\" --cache-dir \"$0\"; rc=$?
echo \"left: [$(ls -A \"$0\")]\"; exit $rc";
    let out = std::process::Command::new("unshare")
        .args(["-rm", "sh", "-c", script])
        .args([mount.to_str().unwrap(), crest_bin, dir.to_str().unwrap(), model.to_str().unwrap()])
        .output()
        .unwrap();
    let (stdout, stderr) = text(&out);
    assert!(out.status.success(), "{stdout}\n{stderr}");
    let warnings: Vec<&str> = stderr.lines().filter(|l| l.starts_with("warning:")).collect();
    assert_eq!(warnings.len(), 1, "{stderr}");
    assert!(
        warnings[0].starts_with(&format!("warning: cannot write the image cache to {}/", mount.display())),
        "{stderr}"
    );
    assert!(
        warnings[0].ends_with(": No space left on device (os error 28); the images stay in memory, uncached"),
        "{stderr}"
    );
    assert!(stdout.contains("valid accuracy:"), "{stdout}");
    assert!(stdout.ends_with("left: []\n"), "{stdout}");
}
