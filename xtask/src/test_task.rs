//! `cargo xtask test`: the xtask's own suite as CI runs it, its pinned tools cached once per machine.

use std::time::Duration;

use anyhow::{Context, ensure};
use camino::{Utf8Path, Utf8PathBuf};

use crate::run::{self, Program};

/// Test the xtask itself: format check, clippy and every test of its workspace.
///
/// Never the host repository's crates. The registry suite (`tests/it/`) starts a
/// real kellnr registry (authentication required) on 127.0.0.1, runs the real
/// `just` and validates the workflows: those tools are installed, pinned, under
/// `$XTASK_CACHE` (default `~/.cache/hyperlight-xtask`) the first time; kellnr
/// builds from source in about 11 minutes on 2 cores.
#[derive(clap::Args)]
#[command(after_help = "Examples:\n  cargo xtask test\n  cargo xtask test -- publish_redist")]
pub struct Test {
    /// Skip `cargo fmt --check` and clippy.
    #[arg(long)]
    pub no_lint: bool,
    /// Arguments for `cargo test` after `--`, such as a test name filter.
    #[arg(last = true)]
    pub cargo_test_args: Vec<String>,
}

/// One file shared with the test harness.
#[path = "../harness/src/pinned.rs"]
mod pinned;
use pinned::{ACTION_VALIDATOR, JUST, KELLNR};

const WINDOWS_TARGET: &str = "x86_64-pc-windows-gnu";

impl Test {
    pub fn run(self) -> anyhow::Result<()> {
        let cache = pinned::cache_dir().context("no cache directory for the test tools: set XTASK_CACHE")?;
        let cache = Utf8PathBuf::try_from(cache).context("the cache path is not UTF-8: set XTASK_CACHE")?;
        // Runs started at once would each build kellnr: one installs, the others wait.
        let waiting = format!("test: waiting for another cargo xtask test installing the tools into {cache}");
        let lock = crate::toml_file::lock_file(&cache.join(".install.lock"), None, Duration::ZERO, &waiting)?;
        cargo_install(&cache, "kellnr", KELLNR, "about 11 minutes on 2 cores")?;
        cargo_install(&cache, "just", JUST, "about 2 minutes")?;
        npm_install(&cache)?;
        drop(lock);
        if !self.no_lint {
            let fix = "formatting differs: run `cargo fmt --manifest-path xtask/Cargo.toml --all`";
            cargo("fmt --all --check", &[]).status().context(fix)?;
            // clippy lints the Windows code paths with that target's standard library alone.
            let mut platforms: Vec<&[&str]> = vec![&[]];
            match which::which("rustup") {
                Ok(rustup) => {
                    terminal(rustup, &["target", "add", WINDOWS_TARGET])?;
                    platforms.push(&["--target", WINDOWS_TARGET]);
                }
                Err(_) => eprintln!(
                    "test: no rustup, so no clippy for {WINDOWS_TARGET}: the Windows code paths are not linted"
                ),
            }
            // Warnings denied on every target: `--all-targets` leaves out the `test = false`
            // registry suite (and wins over `--test` given with it), so a second run names it.
            for platform in platforms {
                for targets in ["--all-targets", "--test=*"] {
                    let args = [platform, &["--", "-D", "warnings"]].concat();
                    cargo(&format!("clippy --workspace {targets} --locked"), &args).status()?;
                }
            }
        }
        let args: Vec<&str> =
            ["--"].into_iter().chain(self.cargo_test_args.iter().map(String::as_str)).collect();
        // `--test=*` takes the registry suite (`test = false`, which `--tests` leaves out) too;
        // each target runs to the end, so one failing target hides no other.
        Ok(cargo("test --workspace --locked --no-fail-fast --lib --bins --test=*", &args).status()?)
    }
}

/// The nested cargo running `command`, then `more`, for the xtask's manifest: from the
/// host's root, a bare `cargo fmt --all` or `clippy --workspace` would check the host.
fn cargo(command: &str, more: &[&str]) -> Program {
    let manifest = crate::tool::project_root().join("xtask/Cargo.toml");
    let mut args: Vec<&str> = command.split(' ').collect();
    args.extend([&["--manifest-path", manifest.as_str()], more].concat());
    run::cargo(&crate::tool::project_root(), &args)
}

fn terminal(program: impl AsRef<std::ffi::OsStr>, args: &[&str]) -> Result<(), run::RunError> {
    run::program(program, &crate::tool::project_root(), args).status()
}

/// A crate's binary, installed once into its own versioned root in the cache.
fn cargo_install(cache: &Utf8Path, krate: &str, version: &str, takes: &str) -> anyhow::Result<()> {
    let bin = pinned::installed_bin(cache.as_std_path(), krate, version);
    if !bin.is_file() {
        let root = cache.join(format!("{krate}-{version}"));
        eprintln!("test: installing {krate} {version} into {root} (once per machine; {takes})");
        let args = ["install", krate, "--locked", "--version", version, "--root", root.as_str()];
        terminal(crate::tool::cargo(), &args).with_context(|| format!("cannot install {krate} {version}"))?;
    }
    Ok(())
}

/// The workflow validator, installed once with npm into its own prefix in the cache.
fn npm_install(cache: &Utf8Path) -> anyhow::Result<()> {
    let bin = pinned::action_validator_bin(cache.as_std_path());
    if bin.is_file() {
        return Ok(());
    }
    let npm = which::which("npm").map_err(|_| {
        anyhow::anyhow!("`npm` was not found: install Node.js and npm (Debian: `apt-get install npm`) to validate the workflows")
    })?;
    let prefix = cache.join(format!("action-validator-{ACTION_VALIDATOR}"));
    let spec = format!("@action-validator/cli@{ACTION_VALIDATOR}");
    eprintln!("test: installing {spec} into {prefix} (once per machine)");
    std::fs::create_dir_all(&prefix).with_context(|| format!("cannot create {prefix}"))?;
    terminal(npm, &["install", "--prefix", prefix.as_str(), "--no-audit", "--no-fund", &spec])?;
    ensure!(bin.is_file(), "npm installed {spec} but {} is missing", bin.display());
    Ok(())
}
