//! What `crest train` does to the files it is pointed at: special files, directories and missing folders are
//! refused before anything loads; links are followed; a stop by a signal or a failed run leaves every existing file
//! as it was and no temporary file behind.

mod common;

use common::{command, crest, listing, temp_dir, text};
use std::io::BufRead;
use std::os::unix::fs::{FileTypeExt, PermissionsExt};
use std::path::Path;
use std::process::Stdio;
use std::time::{Duration, Instant};

fn assert_refused(args: &[&str], line: &str) {
    let out = crest(args);
    let (stdout, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(1), "{args:?}: {stderr}");
    assert_eq!(stderr, format!("error: {line}\n"), "{args:?}");
    assert_eq!(stdout, "", "{args:?}: refused only after loading the data");
}

#[test]
fn devices_fifos_directories_and_missing_folders_are_refused_before_loading() {
    let dir = temp_dir("refuse");
    let d = dir.display();
    assert_refused(
        &["train", "--out", "/dev/null"],
        "cannot write the model to /dev/null: it is a character device, not a regular file",
    );
    assert!(std::fs::metadata("/dev/null").unwrap().file_type().is_char_device());

    let out = dir.join("model");
    std::fs::create_dir(&out).unwrap();
    assert_refused(
        &["train", "--out", out.to_str().unwrap()],
        &format!("cannot write the model to {d}/model: it is a directory, not a regular file"),
    );
    assert_refused(
        &["train", "--out", &format!("{d}/missing/m.safetensors")],
        &format!("cannot write the model to {d}/missing/m.safetensors: the directory {d}/missing does not exist"),
    );

    let link = dir.join("link.safetensors");
    std::os::unix::fs::symlink("/dev/null", &link).unwrap();
    assert_refused(
        &["train", "--out", link.to_str().unwrap()],
        &format!(
            "cannot write the model to {d}/link.safetensors: it leads to /dev/null, which is a character device, not \
             a regular file"
        ),
    );

    let fifo = dir.join("log.csv");
    assert!(std::process::Command::new("mkfifo").arg(&fifo).status().unwrap().success());
    assert_refused(
        &["train", "--csv", fifo.to_str().unwrap()],
        &format!("cannot write the training log to {d}/log.csv: it is a FIFO, not a regular file"),
    );
    assert!(std::fs::symlink_metadata(&fifo).unwrap().file_type().is_fifo());
    assert_eq!(listing(&dir), ["link.safetensors", "log.csv", "model"]);
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn a_link_is_followed_and_stays_a_link_and_the_file_keeps_its_permissions() {
    let dir = temp_dir("link");
    let real = dir.join("real.safetensors");
    std::fs::write(&real, b"previous model").unwrap();
    std::fs::set_permissions(&real, std::fs::Permissions::from_mode(0o600)).unwrap();
    let link = dir.join("link.safetensors");
    std::os::unix::fs::symlink("real.safetensors", &link).unwrap();
    let out = crest(&["train", "--epochs", "1", "--out", link.to_str().unwrap()]);
    assert!(out.status.success(), "{}", text(&out).1);
    assert_eq!(std::fs::read_link(&link).unwrap(), Path::new("real.safetensors"));
    let model = std::fs::read(&real).unwrap();
    assert!(model.len() > 1000 && model[8] == b'{', "not a safetensors file: {:?}", &model[..20.min(model.len())]);
    assert_eq!(std::fs::metadata(&real).unwrap().permissions().mode() & 0o777, 0o600);
    assert_eq!(listing(&dir), ["link.safetensors", "real.safetensors", "report.html"]);
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn temporary_files_of_processes_that_are_gone_are_removed_at_the_next_save() {
    let dir = temp_dir("stale");
    // Linux never gives out process ids above 2^22; this test's own process is alive.
    let alive = format!(".m.safetensors.crest-tmp-{}", std::process::id());
    for name in [".m.safetensors.crest-tmp-4194305", ".log.csv.crest-tmp-4194306", &alive, "notes.crest-tmp-1"] {
        std::fs::write(dir.join(name), b"partial").unwrap();
    }
    let out = crest(&["train", "--epochs", "1", "--out", dir.join("m.safetensors").to_str().unwrap()]);
    assert!(out.status.success(), "{}", text(&out).1);
    assert_eq!(listing(&dir), [alive.as_str(), "m.safetensors", "notes.crest-tmp-1", "report.html"]);
    let _ = std::fs::remove_dir_all(dir);
}

/// Starts a long training run, sends `signal` once the first epoch's row is printed, and returns the exit code and
/// stderr.
fn stop_during_training(signal: &str, model: &Path, csv: &Path) -> (Option<i32>, String) {
    let mut child = command(&["train", "--epochs", "100000", "--out", model.to_str().unwrap()])
        .args(["--csv", csv.to_str().unwrap()])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // Read on a thread that drains all of stdout: a closed pipe would end crest at its next line.
    let stdout = std::io::BufReader::new(child.stdout.take().unwrap());
    let (rows, row) = std::sync::mpsc::channel();
    let reader = std::thread::spawn(move || {
        for line in stdout.lines().map_while(Result::ok) {
            let _ = rows.send(line);
        }
    });
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        match row.recv_timeout(deadline.saturating_duration_since(Instant::now())) {
            Ok(line) if line.starts_with("0 ") => break,
            Ok(_) => {}
            Err(e) => {
                let _ = child.kill();
                panic!("no epoch row ({e}): {}", text(&child.wait_with_output().unwrap()).1);
            }
        }
    }
    let kill = std::process::Command::new("kill").args([&format!("-{signal}"), &child.id().to_string()]).status();
    assert!(kill.unwrap().success());
    let start = Instant::now();
    while child.try_wait().unwrap().is_none() {
        if start.elapsed() > Duration::from_secs(60) {
            let _ = child.kill();
            panic!("crest did not stop within a minute of SIG{signal}");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    reader.join().unwrap();
    let out = child.wait_with_output().unwrap();
    (out.status.code(), text(&out).1)
}

#[test]
fn sigterm_and_sigint_stop_training_and_leave_the_old_files_alone() {
    let dir = temp_dir("signal");
    let (model, csv) = (dir.join("m.safetensors"), dir.join("log.csv"));
    std::fs::write(&model, b"previous model").unwrap();
    std::fs::write(&csv, b"previous log").unwrap();
    for (signal, code) in [("TERM", 143), ("INT", 130)] {
        let (status, stderr) = stop_during_training(signal, &model, &csv);
        assert_eq!(status, Some(code), "{stderr}");
        assert_eq!(stderr, format!("error: interrupted by SIG{signal}; the model was not saved\n"));
        assert_eq!(std::fs::read(&model).unwrap(), b"previous model");
        assert_eq!(std::fs::read(&csv).unwrap(), b"previous log");
        assert_eq!(listing(&dir), ["log.csv", "m.safetensors"]);
    }
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn a_failed_run_writes_no_log_and_one_that_stops_early_writes_all_of_it() {
    let dir = temp_dir("csv");
    let (model, csv) = (dir.join("m.safetensors"), dir.join("log.csv"));
    let (model, csv) = (model.to_str().unwrap(), csv.to_str().unwrap());
    let out = crest(&["train", "--lr", "1e30", "--out", model, "--csv", csv]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out).1);
    assert_eq!(listing(&dir), Vec::<String>::new());

    let out = crest(&["train", "--stop-at", "0.5", "--epochs", "50", "--out", model, "--csv", csv]);
    assert!(out.status.success(), "{}", text(&out).1);
    let log = std::fs::read_to_string(csv).unwrap();
    let lines: Vec<&str> = log.lines().collect();
    assert_eq!(lines.len(), 2, "{log}");
    assert_eq!(lines[0], "epoch,train_loss,valid_loss,batch_accuracy,time");
    assert!(lines[1].starts_with("0,"), "{log}");
    assert_eq!(listing(&dir), ["log.csv", "m.safetensors", "report.html"]);
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn a_report_in_a_missing_folder_is_refused_before_training_and_no_report_writes_none() {
    let dir = temp_dir("report");
    let model = dir.join("m.safetensors");
    let page = dir.join("missing/r.html");
    let out = crest(&["train", "--epochs", "1", "--out", model.to_str().unwrap(), "--report", page.to_str().unwrap()]);
    let (stdout, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert!(stderr.starts_with("error: cannot write the report to ") && stderr.contains("missing"), "{stderr}");
    assert!(!stdout.contains("epoch"), "trained before refusing: {stdout}");
    assert!(listing(&dir).is_empty());
    let out = crest(&["train", "--epochs", "1", "--out", model.to_str().unwrap(), "--no-report"]);
    assert!(out.status.success(), "{}", text(&out).1);
    assert_eq!(listing(&dir), ["m.safetensors"]);
    let _ = std::fs::remove_dir_all(dir);
}
