//! The report pages of `crest train` and `crest evaluate` in headless Chromium: `tests/report/check_in_chromium.sh`
//! with this build's binary (it skips without Chromium, except under `CI=true`).

use std::process::Command;

#[test]
fn train_and_evaluate_reports_open_in_chromium_without_console_messages() {
    let out = Command::new("bash")
        .arg("tests/report/check_in_chromium.sh")
        .env("CREST_BIN", env!("CARGO_BIN_EXE_crest"))
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .expect("run bash");
    let (stdout, stderr) = (String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert!(out.status.success(), "check_in_chromium failed:\n{stdout}\n{stderr}");
    assert!(
        stdout.contains("check_in_chromium: ok") || stdout.contains("skipped"),
        "unexpected output:\n{stdout}\n{stderr}"
    );
}
