//! Data-parallel training under `mpirun` (the build with `--features mpi`, made here into `target/mpi` so that the
//! default binary the other tests run stays MPI-free): N ranks with batch B train the model one process trains with
//! batch N·B, runs are reproducible bit for bit, ranks with different data stop before training, and a rank that
//! dies ends the job instead of leaving the others waiting.
//!
//! Skipped where `mpirun` is missing, except under CI (`CI=true`), where `.ci/run` has installed OpenMPI and a
//! missing `mpirun` fails the test.

mod common;

use common::{crest, temp_dir, text};
use crest::Tensor;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

/// The `--features mpi` binary, built once for this file's tests; `None` (the tests skip) without `mpirun`.
fn mpi_crest() -> Option<&'static Path> {
    static BUILT: OnceLock<Option<PathBuf>> = OnceLock::new();
    BUILT
        .get_or_init(|| {
            let has_mpirun = Command::new("mpirun").arg("--version").output().is_ok_and(|o| o.status.success());
            if !has_mpirun {
                assert_ne!(std::env::var("CI").as_deref(), Ok("true"), "CI must run the MPI tests: install OpenMPI");
                eprintln!("skipped: no mpirun (install libopenmpi-dev openmpi-bin clang to run it)");
                return None;
            }
            let root = Path::new(env!("CARGO_MANIFEST_DIR"));
            let target = root.join("target/mpi");
            let status = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()))
                .args(["build", "--release", "--features", "mpi", "--bin", "crest", "--target-dir"])
                .arg(&target)
                .current_dir(root)
                .status()
                .expect("run cargo");
            assert!(status.success(), "cargo build --features mpi failed");
            Some(target.join("release/crest"))
        })
        .as_deref()
}

/// `mpirun` with the options a container and a small machine need: root allowed, more ranks than cores, one
/// kernel thread per rank. `ranks` is a list of (rank count, arguments), run as MPMD parts of one job.
fn mpirun(crest: &Path, parts: &[(usize, Vec<String>)]) -> Command {
    let mut c = Command::new("mpirun");
    c.current_dir(env!("CARGO_MANIFEST_DIR"))
        .env("OMPI_ALLOW_RUN_AS_ROOT", "1")
        .env("OMPI_ALLOW_RUN_AS_ROOT_CONFIRM", "1")
        .env("RAYON_NUM_THREADS", "1")
        .arg("--oversubscribe");
    for (i, (n, args)) in parts.iter().enumerate() {
        if i > 0 {
            c.arg(":");
        }
        c.args(["-np", &n.to_string()]);
        match args.first().map(String::as_str) {
            Some("sh") => c.args(args),
            _ => c.arg(crest).args(args),
        };
    }
    c
}

/// Runs `c` to its end, failing the test if it takes longer than `limit` (a hang).
fn within(mut c: Command, limit: Duration) -> Output {
    let mut child = c.stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().expect("run mpirun");
    let start = Instant::now();
    while child.try_wait().expect("wait for mpirun").is_none() {
        if start.elapsed() > limit {
            child.kill().expect("stop mpirun");
            panic!("mpirun still running after {limit:?}: the ranks hang");
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    child.wait_with_output().expect("mpirun's output")
}

fn args(list: &[&str]) -> Vec<String> {
    list.iter().map(|s| s.to_string()).collect()
}

/// `crest train` of the linear model on the sample, writing `{tag}.csv` and `{tag}.safetensors` into `dir`.
fn train_args(dir: &Path, tag: &str, bs: usize) -> Vec<String> {
    let out = |ext: &str| dir.join(format!("{tag}.{ext}")).display().to_string();
    let bs = bs.to_string();
    args(&["train", "data/mnist_sample", "--epochs", "3", "--bs", &bs, "--no-report", "--csv", &out("csv"), "--out"])
        .into_iter()
        .chain([out("safetensors")])
        .collect()
}

/// The CSV's train and valid losses, epoch by epoch.
fn losses(csv: &Path) -> Vec<[f64; 2]> {
    let text = std::fs::read_to_string(csv).unwrap();
    text.lines()
        .skip(1)
        .map(|l| l.split(',').collect::<Vec<_>>())
        .map(|f| [f[1], f[2]].map(|v| v.parse().unwrap()))
        .collect()
}

fn weights(model: &Path) -> Vec<(String, Tensor)> {
    crest::model_io::load(model).unwrap().0.named_parameters()
}

fn succeeded(o: &Output) {
    let (out, err) = text(o);
    assert!(o.status.success(), "mpirun failed:\n{out}\n{err}");
}

/// Losses within 1.5e-6: the CSV prints six decimals, and two runs whose losses differ by float rounding
/// (~1e-7) can still print one unit apart in the last place. Weights within 1e-6: the ranks' gradient is
/// Σ_r (n_r/n)·∇mean_r where one process computes ∇(Σ/n), the same sum in another order, so each step's gradient
/// differs by a few f32 roundings (relative ~1e-6 at most); Adam's step is ~lr·g/|g| per weight, so the
/// difference it makes is ~1e-6·lr per step: 81 steps at lr ≤ 3e-3 give ~2.4e-7, and 1e-6 leaves room for the
/// feedback through the loss. (Seen: 2.2e-8 for 2 ranks.)
fn assert_same_training(parallel: &Path, single: &Path, tag: &str) {
    let (a, b) = (losses(&parallel.with_extension("csv")), losses(&single.with_extension("csv")));
    assert_eq!(a.len(), b.len());
    for (epoch, (x, y)) in a.iter().zip(&b).enumerate() {
        for (what, (x, y)) in ["train_loss", "valid_loss"].iter().zip(x.iter().zip(y)) {
            assert!((x - y).abs() <= 1.5e-6, "{tag}: epoch {epoch} {what} {x} against one process's {y}");
        }
    }
    for ((name, p), (_, q)) in weights(parallel).iter().zip(weights(single)) {
        let worst = p.to_vec().iter().zip(q.to_vec()).map(|(a, b)| (a - b).abs()).fold(0.0f32, f32::max);
        assert!(worst <= 1e-6, "{tag}: {name} differs from one process's by up to {worst}");
    }
}

#[test]
fn ranks_train_the_model_one_process_trains_on_their_batches_together() {
    let Some(mpi) = mpi_crest() else { return };
    let dir = temp_dir("data-parallel");
    let limit = Duration::from_secs(300);
    // Two ranks of 32, twice: the same bytes. 1682 training images make 26 batches of 64 and one of 18 (9 + 9).
    for run in ["np2-a", "np2-b"] {
        succeeded(&within(mpirun(mpi, &[(2, train_args(&dir, run, 32))]), limit));
    }
    let file = |tag: &str, ext: &str| dir.join(format!("{tag}.{ext}"));
    let model = |tag: &str| std::fs::read(file(tag, "safetensors")).unwrap();
    assert!(model("np2-a") == model("np2-b"), "two runs on 2 ranks saved different models");
    // The logs differ in their time column only.
    assert_eq!(losses(&file("np2-a", "csv")), losses(&file("np2-b", "csv")));
    // Three ranks of 20: the last batch of 2 leaves rank 2 without images, and validation's batches of 256 and
    // 164 split unevenly.
    succeeded(&within(mpirun(mpi, &[(3, train_args(&dir, "np3", 20))]), limit));
    for (tag, bs) in [("one64", 64), ("one60", 60)] {
        let o = crest(&train_args(&dir, tag, bs).iter().map(String::as_str).collect::<Vec<_>>());
        assert!(o.status.success(), "{}", text(&o).1);
    }
    let model = |tag: &str| dir.join(format!("{tag}.safetensors"));
    assert_same_training(&model("np2-a"), &model("one64"), "2 ranks of 32");
    assert_same_training(&model("np3"), &model("one60"), "3 ranks of 20");
    let (out, _) = text(&within(mpirun(mpi, &[(2, train_args(&dir, "np2-a", 32))]), limit));
    assert_eq!(out.matches("saved model to").count(), 1, "only rank 0 prints:\n{out}");
    assert!(out.contains("batch 32 per rank on 2 ranks"), "{out}");
}

#[test]
fn ranks_with_different_data_all_stop_before_training_and_name_the_difference() {
    let Some(mpi) = mpi_crest() else { return };
    let dir = temp_dir("data-parallel-short");
    let short = dir.join("short");
    for class in ["3", "7"] {
        std::fs::create_dir_all(short.join(class)).unwrap();
        for file in std::fs::read_dir(Path::new("data/mnist_sample").join(class)).unwrap() {
            let file = file.unwrap();
            if file.file_name() != "00005.png" || class != "7" {
                std::fs::copy(file.path(), short.join(class).join(file.file_name())).unwrap();
            }
        }
    }
    let train = |folder: &str| args(&["train", folder, "--epochs", "1", "--no-report", "--out"]);
    let out = |tag: &str| dir.join(tag).display().to_string();
    let mut full = train("data/mnist_sample");
    full.push(out("a.safetensors"));
    let mut missing = train(&short.display().to_string());
    missing.push(out("b.safetensors"));
    let o = within(mpirun(mpi, &[(1, full), (1, missing)]), Duration::from_secs(120));
    let (stdout, stderr) = text(&o);
    assert!(!o.status.success());
    let line = "error: rank 1's data differs from rank 0's: 1681 training images against 1682 (is a file missing or \
                changed on one node?)\n";
    assert_eq!(stderr.matches(line).count(), 2, "each rank stops with the line:\n{stderr}");
    assert!(!stdout.contains("epoch"), "nothing trained:\n{stdout}");
    // A rank that can't load its data at all stops with its own error, and the others with it instead of waiting.
    let mut absent = train(&dir.join("absent").display().to_string());
    absent.push(out("c.safetensors"));
    let mut full = train("data/mnist_sample");
    full.push(out("a.safetensors"));
    let o = within(mpirun(mpi, &[(1, full), (1, absent)]), Duration::from_secs(120));
    let (_, stderr) = text(&o);
    assert!(!o.status.success());
    assert!(stderr.contains("error: rank 1 stopped before training (its own line says why)\n"), "{stderr}");
    assert!(
        stderr.contains(&format!("error: data folder {} does not exist\n", dir.join("absent").display())),
        "{stderr}"
    );
}

#[test]
fn a_rank_killed_mid_run_ends_the_job_instead_of_leaving_the_others_waiting() {
    let Some(mpi) = mpi_crest() else { return };
    let dir = temp_dir("data-parallel-kill");
    let out = dir.join("m.safetensors").display().to_string();
    let run = args(&["train", "data/mnist_sample", "--arch", "cnn", "--epochs", "100", "--no-report", "--out", &out]);
    // Rank 1 is crest itself (`exec`), killed with SIGKILL three seconds in: no error handler of its own runs.
    let killed = format!("(sleep 3; kill -9 $$) & exec {} {}", mpi.display(), run.join(" "));
    let o = within(mpirun(mpi, &[(1, run.clone()), (1, args(&["sh", "-c", &killed]))]), Duration::from_secs(120));
    let (stdout, stderr) = text(&o);
    assert!(!o.status.success(), "{stdout}\n{stderr}");
    assert!(!stdout.contains("saved model"), "{stdout}");
    assert!(stderr.contains("signal 9"), "mpirun names the killed rank:\n{stderr}");
}
