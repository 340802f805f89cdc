//! What the test targets share: the xtask binary under test, the xtask's own files
//! (docs, workflows, recipes) and small helpers. Included by each target with
//! `#[path]`, since each target is its own crate.

// Each target uses part of this module.
#![allow(dead_code)]

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use xtask_harness::repo_root;

/// The xtask binary under test.
pub fn xtask_bin() -> &'static Path {
    Path::new(env!("CARGO_BIN_EXE_xtask"))
}

pub fn read(path: &Path) -> String {
    fs::read_to_string(path).unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()))
}

pub fn run(cmd: &mut Command) -> Output {
    let label = format!("{cmd:?}");
    cmd.output().unwrap_or_else(|e| panic!("cannot run {label}: {e}"))
}

pub fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// The workflows the xtask brings (by file name, in `.github/workflows/`).
pub const XTASK_WORKFLOWS: [&str; 4] = ["xtask.yml", "publish-redist.yml", "publish.yml", "oidc-example.yml"];

/// The docs the xtask brings, relative to the repository root.
pub const XTASK_DOCS: [&str; 6] = [
    "xtask/README.md",
    "docs/publishing-to-cargo.md",
    "docs/credentials.md",
    "docs/publish-redist.md",
    "docs/publish.md",
    "docs/adding-the-xtask.md",
];

/// The recipe shims the xtask brings, for the host's Justfile to import or append.
pub fn recipes_file() -> PathBuf {
    repo_root().join("xtask").join("xtask.just")
}

/// The recipes of the old justfile and the task each must call now; `xtask` is the
/// pass-through to any task (`just xtask doctor`).
pub const RECIPES: [(&str, &str); 5] = [
    ("cargo-login", "cargo-login"),
    ("cargo-login-ci", "cargo-login-ci"),
    ("cargo-login-ci-windows", "cargo-login-ci"),
    ("publish-redist", "publish-redist"),
    ("xtask", ""),
];

/// The task names, as `cargo xtask --help` lists them (clap's own `help` left out).
pub fn tasks() -> Vec<String> {
    let out = run(Command::new(xtask_bin()).arg("--help"));
    assert!(out.status.success(), "`cargo xtask --help` failed:\n{}", text(&out.stderr));
    let help = text(&out.stdout);
    let list: Vec<String> = help
        .lines()
        .skip_while(|l| l.trim() != "Commands:")
        .skip(1)
        .take_while(|l| !l.trim().is_empty())
        .filter_map(|l| l.split_whitespace().next())
        .filter(|name| *name != "help")
        .map(str::to_owned)
        .collect();
    assert!(list.len() >= 8, "too few tasks parsed from `cargo xtask --help`:\n{help}");
    list
}
