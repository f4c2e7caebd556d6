//! 1,000 seeded mutations of a real model file (a CNN with conv, pooling, BatchNorm and Dropout), each given to the
//! `crest predict` binary: a model and one line per image, or one clean `error:` line and exit status 1 — never a
//! panic, an abort (which no in-process test can catch), a hang or NaN probabilities.
//!
//! Most mutations are sealed again with the checksum the format defines, as a crafted file would be, so that they
//! reach the checks behind it; the rest keep the old checksum, as damage would.

use crest::rng::Rng;
use safetensors::SafeTensors;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const FIXTURE: &str = "tests/fixtures/models/cnn.safetensors";
const IMAGE: &str = "data/mnist_sample/7/00000.png";
const MUTATIONS: u64 = 1000;

/// `file` with its checksum recomputed (CRC-32 of the crest metadata JSON, then the tensors' bytes in the order of
/// their names) and written over the old one, when the file still parses and has one.
fn reseal(file: &mut [u8]) {
    let Ok((header_len, header)) = SafeTensors::read_metadata(file) else { return };
    let Some(info) = header.metadata() else { return };
    let (Some(json), Some(stored)) = (info.get("crest"), info.get("crest_crc32")) else { return };
    let data = &file[8 + header_len..];
    let mut tensors: Vec<_> = header.tensors().into_iter().collect();
    tensors.sort_by(|a, b| a.0.cmp(&b.0));
    let mut crc = crc32fast::Hasher::new();
    crc.update(json.as_bytes());
    tensors.iter().for_each(|(_, t)| crc.update(&data[t.data_offsets.0..t.data_offsets.1]));
    let sum = format!("{:08x}", crc.finalize());
    let pattern = format!("\"crest_crc32\":\"{stored}\"");
    let Some(at) = file.windows(pattern.len()).position(|w| w == pattern.as_bytes()) else { return };
    if stored.len() == 8 {
        file[at + 15..at + 23].copy_from_slice(sum.as_bytes());
    }
}

/// One mutation of `good`, by kind: a bit flipped anywhere (checksum kept), a byte changed anywhere, a digit of the
/// header changed, a byte of the header changed, or a byte of the weights changed (each sealed again).
fn mutate(good: &[u8], rng: &mut Rng) -> (String, Vec<u8>) {
    let mut file = good.to_vec();
    let header_end = 8 + u64::from_le_bytes(good[..8].try_into().unwrap()) as usize;
    let kind = rng.below(5);
    let what = match kind {
        0 => {
            let at = rng.below(file.len());
            file[at] ^= 1 << rng.below(8);
            format!("bit flip at {at}")
        }
        1 => {
            let at = rng.below(file.len());
            file[at] = rng.below(256) as u8;
            format!("byte at {at} set to {}", file[at])
        }
        2 => {
            let digits: Vec<usize> = (8..header_end).filter(|&i| file[i].is_ascii_digit()).collect();
            let at = digits[rng.below(digits.len())];
            file[at] = b'0' + rng.below(10) as u8;
            format!("header digit at {at} set to {}", file[at] as char)
        }
        3 => {
            let at = 8 + rng.below(header_end - 8);
            file[at] ^= 1 << rng.below(8);
            format!("header bit flip at {at}")
        }
        _ => {
            let at = header_end + rng.below(file.len() - header_end);
            file[at] = rng.below(256) as u8;
            format!("weight byte at {at} set to {}", file[at])
        }
    };
    if kind != 0 {
        reseal(&mut file);
    }
    (what, file)
}

/// Runs `crest predict model IMAGE`, killed after 10 s; `None` if it had to be.
fn predict(model: &Path) -> Option<std::process::Output> {
    let mut child = Command::new(env!("CARGO_BIN_EXE_crest"))
        .args(["predict", model.to_str().unwrap(), IMAGE])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let start = Instant::now();
    while child.try_wait().unwrap().is_none() {
        if start.elapsed() > Duration::from_secs(10) {
            child.kill().unwrap();
            child.wait().unwrap();
            return None;
        }
        std::thread::sleep(Duration::from_millis(2));
    }
    Some(child.wait_with_output().unwrap())
}

/// What is wrong with how `crest predict` ended on a model, if anything.
fn judge(out: Option<std::process::Output>) -> Option<String> {
    let Some(out) = out else { return Some("still running after 10 s".into()) };
    let (stdout, stderr) = (String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    let warnings_then = |last: &str| {
        let lines: Vec<&str> = stderr.lines().collect();
        lines
            .split_last()
            .is_some_and(|(l, rest)| l.starts_with(last) && rest.iter().all(|w| w.starts_with("warning: ")))
    };
    let fine = match out.status.code() {
        Some(0) => {
            stdout.lines().count() == 1 && !stdout.contains("NaN") && stderr.lines().all(|l| l.starts_with("warning: "))
        }
        Some(1) => stdout.is_empty() && warnings_then("error: ") && !stderr.contains("bug in crest"),
        _ => false,
    };
    (!fine).then(|| format!("exit {:?}, stdout {stdout:?}, stderr {stderr:?}", out.status))
}

#[test]
fn a_thousand_mutations_of_a_model_file_each_load_or_fail_cleanly() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let good = std::fs::read(root.join(FIXTURE)).unwrap();
    let dir: PathBuf = std::env::temp_dir().join(format!("crest-mutations-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    assert_eq!(judge(predict(&root.join(FIXTURE))), None, "the fixture itself");
    // Mutations are drawn in order from one seed, then shared among a few workers.
    let mut rng = Rng::new(2026);
    let mutations: Vec<(String, Vec<u8>)> = (0..MUTATIONS).map(|_| mutate(&good, &mut rng)).collect();
    let workers = 4;
    let failures: Vec<String> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..workers)
            .map(|w| {
                let (mutations, dir) = (&mutations, &dir);
                s.spawn(move || {
                    let path = dir.join(format!("m{w}.safetensors"));
                    let mut failures = Vec::new();
                    for (i, (what, bytes)) in mutations.iter().enumerate().skip(w).step_by(workers) {
                        std::fs::write(&path, bytes).unwrap();
                        if let Some(why) = judge(predict(&path)) {
                            failures.push(format!("mutation {i} ({what}): {why}"));
                        }
                    }
                    failures
                })
            })
            .collect();
        handles.into_iter().flat_map(|h| h.join().unwrap()).collect()
    });
    let _ = std::fs::remove_dir_all(&dir);
    assert!(failures.is_empty(), "{} of {MUTATIONS} mutations:\n{}", failures.len(), failures.join("\n"));
}
