//! `cargo xtask test`: the xtask's own suite, as CI runs it, with the pinned tools the
//! tests drive installed once per machine into a cache outside the repo.

use std::path::{Path, PathBuf};

use anyhow::{Context, bail};
use xshell::{Shell, cmd};

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
        let sh = &Shell::new()?;
        sh.change_dir(crate::project_root());
        let cache = pinned::cache_dir().context("no cache directory for the test tools: set XTASK_CACHE")?;
        let kellnr = cargo_install(sh, &cache, "kellnr", KELLNR, "about 11 minutes on 2 cores")?;
        let just = cargo_install(sh, &cache, "just", JUST, "about 2 minutes")?;
        let validator = npm_install(sh, &cache)?;
        let cargo = crate::tool::cargo();
        // Every command names the xtask's manifest: from the host's root, a bare
        // `cargo fmt --all` or `clippy --workspace` would check the host.
        let manifest = crate::project_root().join("xtask/Cargo.toml");
        if !self.no_lint {
            cmd!(sh, "{cargo} fmt --manifest-path {manifest} --all --check").run().with_context(|| {
                format!("formatting differs: run `cargo fmt --manifest-path {manifest} --all`")
            })?;
            clippy(sh, &cargo, &manifest, &[])?;
            // The Windows code paths cannot run here, but clippy type-checks and
            // lints them with the target's standard library alone.
            match which::which("rustup") {
                Ok(rustup) => {
                    cmd!(sh, "{rustup} target add {WINDOWS_TARGET}").run()?;
                    clippy(sh, &cargo, &manifest, &["--target", WINDOWS_TARGET])?;
                }
                Err(_) => eprintln!(
                    "test: no rustup, so no clippy for {WINDOWS_TARGET}: the Windows code paths are not linted"
                ),
            }
        }
        let tools = [just.parent(), validator.parent()].into_iter().flatten().map(Path::to_owned);
        let path = std::env::join_paths(
            tools.chain(std::env::split_paths(&std::env::var_os("PATH").unwrap_or_default())),
        )?;
        let args = &self.cargo_test_args;
        // Every target, the registry suite too (`test = false`, which `--tests` would
        // leave out), each to the end so that one failing target hides no other.
        cmd!(sh, "{cargo} test --manifest-path {manifest} --workspace --locked --no-fail-fast --lib --bins --test=* -- {args...}")
            .env("XTASK_CACHE", &cache)
            .env("XTASK_KELLNR", &kellnr)
            .env("XTASK_JUST", &just)
            .env("XTASK_ACTION_VALIDATOR", &validator)
            .env("PATH", path)
            .run()?;
        Ok(())
    }
}

/// Clippy with warnings denied on every target: `--all-targets` leaves out the
/// `test = false` registry suite (and wins over `--test` given with it), so a
/// second run names the test targets.
fn clippy(sh: &Shell, cargo: &str, manifest: &camino::Utf8Path, extra: &[&str]) -> anyhow::Result<()> {
    for targets in ["--all-targets", "--test=*"] {
        cmd!(sh, "{cargo} clippy --manifest-path {manifest} --workspace {targets} {extra...} --locked -- -D warnings")
            .run()?;
    }
    Ok(())
}

/// A crate's binary, installed once into its own versioned root in the cache.
fn cargo_install(
    sh: &Shell,
    cache: &Path,
    krate: &str,
    version: &str,
    takes: &str,
) -> anyhow::Result<PathBuf> {
    let bin = pinned::installed_bin(cache, krate, version);
    if !bin.is_file() {
        let (root, cargo) = (cache.join(format!("{krate}-{version}")), crate::tool::cargo());
        eprintln!("test: installing {krate} {version} into {} (once per machine; {takes})", root.display());
        cmd!(sh, "{cargo} install {krate} --locked --version {version} --root {root}")
            .run()
            .with_context(|| format!("cannot install {krate} {version}"))?;
    }
    Ok(bin)
}

/// The workflow validator, installed once with npm into its own prefix in the cache.
fn npm_install(sh: &Shell, cache: &Path) -> anyhow::Result<PathBuf> {
    let bin = pinned::action_validator_bin(cache);
    if bin.is_file() {
        return Ok(bin);
    }
    let npm = which::which("npm").map_err(|_| {
        anyhow::anyhow!("`npm` was not found: install Node.js and npm (Debian: `apt-get install npm`) to validate the workflows")
    })?;
    let (prefix, spec) = (
        cache.join(format!("action-validator-{ACTION_VALIDATOR}")),
        format!("@action-validator/cli@{ACTION_VALIDATOR}"),
    );
    eprintln!("test: installing {spec} into {} (once per machine)", prefix.display());
    sh.create_dir(&prefix)?;
    cmd!(sh, "{npm} install --prefix {prefix} --no-audit --no-fund {spec}").run()?;
    if !bin.is_file() {
        bail!("npm installed {spec} but {} is missing", bin.display());
    }
    Ok(bin)
}
