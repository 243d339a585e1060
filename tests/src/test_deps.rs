//! The tools a test needs beyond Rust and PostgreSQL (poppler, chromium and chromedriver,
//! axe-core), installed by the project's own `.ci/test-deps` the first time a test finds one
//! missing: `cargo test --workspace` on a fresh machine needs no other command.

use std::path::PathBuf;
use std::process::Command;
use std::sync::Once;

static INSTALLED: Once = Once::new();

/// Runs `.ci/test-deps` once per test process, if `present` says something is missing.
pub fn ensure(present: impl Fn() -> bool) {
    if present() {
        return;
    }
    INSTALLED.call_once(|| {
        let script = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../.ci/test-deps");
        let status = Command::new("bash").arg(&script).status();
        if !matches!(status, Ok(status) if status.success()) {
            eprintln!("{} failed: {status:?}", script.display());
        }
    });
}

/// Whether `program` runs from the PATH.
pub fn on_path(program: &str) -> bool {
    Command::new("sh")
        .args(["-c", &format!("command -v {program}")])
        .output()
        .is_ok_and(|output| output.status.success())
}
