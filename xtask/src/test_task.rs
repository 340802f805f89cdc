//! `cargo xtask test`: the xtask's own test suite, as CI runs it. Installs the
//! pinned tools the tests drive (a kellnr registry, `just`, a workflow validator)
//! into a cache outside the repo, once per machine, then runs format check, clippy
//! and every test of the xtask's workspace with them: never the host repository's
//! crates, which have their own checks, settings and toolchain.

use anyhow::{Context, bail};
use camino::{Utf8Path, Utf8PathBuf};
use xshell::{Shell, cmd};

use crate::tool;

/// Test the xtask itself: format check, clippy and every test of its workspace.
///
/// Only the xtask's workspace (`xtask/`) is checked, never the host repository's
/// crates. Every test runs: those a plain `cargo test` runs, and the registry suite
/// (`tests/it/`, which needs the tools below). The tests start a real kellnr
/// registry (with authentication required) on 127.0.0.1, run the real `just` on the
/// justfile and validate the workflows. Those tools are installed, pinned, under
/// `$XTASK_CACHE` (default `~/.cache/hyperlight-xtask`) the first time: kellnr
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

/// The pinned tools and their cache, one file shared with the test harness.
#[path = "../harness/src/pinned.rs"]
mod pinned;
use pinned::{ACTION_VALIDATOR, JUST, KELLNR};

/// The target whose clippy run checks the Windows code paths.
const WINDOWS_TARGET: &str = "x86_64-pc-windows-gnu";

impl Test {
    pub fn run(self, sh: &Shell) -> anyhow::Result<()> {
        let cache = cache_dir()?;
        let kellnr = cargo_install(sh, &cache, "kellnr", KELLNR, "about 11 minutes on 2 cores")?;
        let just = cargo_install(sh, &cache, "just", JUST, "about 2 minutes")?;
        let validator =
            npm_install(sh, &cache, "@action-validator/cli", ACTION_VALIDATOR, "action-validator")?;

        let cargo = tool::cargo();
        // Every command names the xtask's own manifest: run from the host's root,
        // a bare `cargo fmt --all` or `clippy --workspace` would check the host.
        let manifest = crate::project_root().join("xtask").join("Cargo.toml");
        if !self.no_lint {
            cmd!(sh, "{cargo} fmt --manifest-path {manifest} --all --check").run().with_context(|| {
                format!("formatting differs: run `cargo fmt --manifest-path {manifest} --all`")
            })?;
            clippy(sh, &manifest, &[])?;
            // The Windows code paths (no-echo input, console Ctrl-C, az.cmd) cannot
            // run here, but they can be type-checked and linted: clippy needs the
            // target's standard library only, no linker.
            match which::which("rustup") {
                Ok(rustup) => {
                    cmd!(sh, "{rustup} target add {WINDOWS_TARGET}").run()?;
                    clippy(sh, &manifest, &["--target", WINDOWS_TARGET])?;
                }
                Err(_) => eprintln!(
                    "test: no rustup, so no clippy for {WINDOWS_TARGET}: the Windows code paths are not linted"
                ),
            }
        }
        let path = prepend_path(&[&parent(&just)?, &parent(&validator)?])?;
        let args = &self.cargo_test_args;
        // Every target, the registry suite too (`test = false`: a plain `cargo test`
        // leaves it out; `--tests` would leave it out again), each run to the end so
        // that one failing target does not hide the others.
        cmd!(
            sh,
            "{cargo} test --manifest-path {manifest} --workspace --locked --no-fail-fast --lib --bins --test=* -- {args...}"
        )
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
fn clippy(sh: &Shell, manifest: &Utf8Path, extra: &[&str]) -> anyhow::Result<()> {
    let cargo = tool::cargo();
    for targets in [["--all-targets"], ["--test=*"]] {
        cmd!(sh, "{cargo} clippy --manifest-path {manifest} --workspace {targets...} {extra...} --locked -- -D warnings")
            .run()?;
    }
    Ok(())
}

/// The tools' cache ([`pinned::cache_dir`]) as a UTF-8 path.
fn cache_dir() -> anyhow::Result<Utf8PathBuf> {
    let dir = pinned::cache_dir().context("no cache directory for the test tools: set XTASK_CACHE")?;
    Utf8PathBuf::try_from(dir).context("the cache directory is not UTF-8: set XTASK_CACHE")
}

fn parent(path: &Utf8Path) -> anyhow::Result<Utf8PathBuf> {
    path.parent().map(Utf8Path::to_owned).with_context(|| format!("{path} has no parent directory"))
}

/// A crate's binary from `cargo install --locked`, built once into its own
/// versioned root in the cache.
fn cargo_install(
    sh: &Shell,
    cache: &Utf8Path,
    krate: &str,
    version: &str,
    takes: &str,
) -> anyhow::Result<Utf8PathBuf> {
    let root = cache.join(format!("{krate}-{version}"));
    let bin = Utf8PathBuf::try_from(pinned::installed_bin(cache.as_std_path(), krate, version))?;
    if bin.is_file() {
        return Ok(bin);
    }
    eprintln!("test: installing {krate} {version} into {root} (once per machine; {takes})");
    let cargo = tool::cargo();
    cmd!(sh, "{cargo} install {krate} --locked --version {version} --root {root}")
        .run()
        .with_context(|| format!("cannot install {krate} {version}"))?;
    Ok(bin)
}

/// An npm package's command, installed once into its own prefix in the cache.
fn npm_install(
    sh: &Shell,
    cache: &Utf8Path,
    package: &str,
    version: &str,
    command: &str,
) -> anyhow::Result<Utf8PathBuf> {
    let prefix = cache.join(format!("{command}-{version}"));
    let bin = Utf8PathBuf::try_from(pinned::action_validator_bin(cache.as_std_path()))?;
    if bin.is_file() {
        return Ok(bin);
    }
    let npm = which::which("npm").map_err(|_| {
        anyhow::anyhow!("`npm` was not found: install Node.js and npm (Debian: `apt-get install npm`) to validate the workflows")
    })?;
    eprintln!("test: installing {package}@{version} into {prefix} (once per machine)");
    sh.create_dir(&prefix)?;
    let spec = format!("{package}@{version}");
    cmd!(sh, "{npm} install --prefix {prefix} --no-audit --no-fund {spec}").run()?;
    if !bin.is_file() {
        bail!("npm installed {spec} but {bin} is missing");
    }
    Ok(bin)
}

fn prepend_path(dirs: &[&Utf8Path]) -> anyhow::Result<std::ffi::OsString> {
    let old = std::env::var_os("PATH").unwrap_or_default();
    let paths = dirs.iter().map(|d| d.as_std_path().to_owned()).chain(std::env::split_paths(&old));
    std::env::join_paths(paths).context("cannot build PATH")
}
