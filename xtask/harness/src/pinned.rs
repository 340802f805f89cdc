//! The tools the tests drive, pinned, and where they are installed: one file read
//! by both the xtask (`cargo xtask test` installs them) and the harness (the tests
//! find them), through `#[path]`, so the two can never disagree. Std only.

use std::path::PathBuf;

/// kellnr, the registry the tests publish to. Newer versions limit failed logins
/// and fail `cargo install --locked` on the package mirror used here.
pub const KELLNR: &str = "6.5.0";
/// just, which runs the recipe shims in the tidy tests.
pub const JUST: &str = "1.59.0";
/// The workflow schema validator (npm `@action-validator/cli`).
pub const ACTION_VALIDATOR: &str = "0.6.0";

/// `$XTASK_CACHE`, else the platform's cache directory plus `hyperlight-xtask`:
/// `$XDG_CACHE_HOME`, `%LOCALAPPDATA%`, then `$HOME/.cache`. Outside any
/// repository, so the ~11 minute kellnr build happens once per machine.
pub fn cache_dir() -> Option<PathBuf> {
    let from = |var: &str| std::env::var_os(var).filter(|v| !v.is_empty()).map(PathBuf::from);
    if let Some(dir) = from("XTASK_CACHE") {
        return Some(dir);
    }
    let base = from("XDG_CACHE_HOME")
        .or_else(|| from("LOCALAPPDATA"))
        .or_else(|| from("HOME").map(|h| h.join(".cache")))?;
    Some(base.join("hyperlight-xtask"))
}

/// Where `cargo install --root` puts a pinned crate's binary in the cache.
pub fn installed_bin(cache: &std::path::Path, krate: &str, version: &str) -> PathBuf {
    cache
        .join(format!("{krate}-{version}"))
        .join("bin")
        .join(format!("{krate}{}", std::env::consts::EXE_SUFFIX))
}

/// Where `npm install --prefix` puts the validator's command in the cache.
pub fn action_validator_bin(cache: &std::path::Path) -> PathBuf {
    let exe = if cfg!(windows) { "action-validator.cmd" } else { "action-validator" };
    cache.join(format!("action-validator-{ACTION_VALIDATOR}")).join("node_modules").join(".bin").join(exe)
}
