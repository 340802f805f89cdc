//! `cargo xtask test`: the whole test suite, as CI runs it. Installs the pinned
//! tools the tests drive (a kellnr registry, `just`, a workflow validator) into a
//! cache outside the repo, once per machine, then runs format check, clippy and
//! every test with them.

use anyhow::{Context, bail};
use camino::{Utf8Path, Utf8PathBuf};
use xshell::{Shell, cmd};

use crate::tool;

/// Run format check, clippy and every test, installing what the tests need.
///
/// The tests start a real kellnr registry (with authentication required) on
/// 127.0.0.1, run the real `just` on the justfile and validate the workflows. Those
/// tools are installed, pinned, under `$XTASK_CACHE` (default
/// `~/.cache/hyperlight-xtask`) the first time: kellnr builds from source in about
/// 11 minutes on 2 cores.
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

/// The tools the tests drive, pinned: (name, version).
const KELLNR: &str = "6.5.0";
const JUST: &str = "1.59.0";
const ACTION_VALIDATOR: &str = "0.6.0";

impl Test {
    pub fn run(self, sh: &Shell) -> anyhow::Result<()> {
        let cache = cache_dir()?;
        let kellnr = cargo_install(sh, &cache, "kellnr", KELLNR, "about 11 minutes on 2 cores")?;
        let just = cargo_install(sh, &cache, "just", JUST, "about 2 minutes")?;
        let validator =
            npm_install(sh, &cache, "@action-validator/cli", ACTION_VALIDATOR, "action-validator")?;

        let cargo = tool::cargo();
        if !self.no_lint {
            cmd!(sh, "{cargo} fmt --all --check")
                .run()
                .context("formatting differs: run `cargo fmt --all`")?;
            cmd!(sh, "{cargo} clippy --workspace --all-targets --locked -- -D warnings").run()?;
        }
        let path = prepend_path(&[just.parent().unwrap(), validator.parent().unwrap()])?;
        let args = &self.cargo_test_args;
        cmd!(sh, "{cargo} test --workspace --locked -- {args...}")
            .env("XTASK_KELLNR", &kellnr)
            .env("XTASK_JUST", &just)
            .env("XTASK_ACTION_VALIDATOR", &validator)
            .env("PATH", path)
            .run()?;
        Ok(())
    }
}

/// `$XTASK_CACHE`, else the platform's cache directory plus `hyperlight-xtask`.
fn cache_dir() -> anyhow::Result<Utf8PathBuf> {
    let from = |var: &str| std::env::var(var).ok().filter(|v| !v.is_empty()).map(Utf8PathBuf::from);
    if let Some(dir) = from("XTASK_CACHE") {
        return Ok(dir);
    }
    let base = from("XDG_CACHE_HOME")
        .or_else(|| from("LOCALAPPDATA"))
        .or_else(|| from("HOME").map(|h| h.join(".cache")))
        .context("no cache directory: set XTASK_CACHE")?;
    Ok(base.join("hyperlight-xtask"))
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
    let bin = root.join("bin").join(format!("{krate}{}", std::env::consts::EXE_SUFFIX));
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
    let bin_dir = prefix.join("node_modules").join(".bin");
    let bin = bin_dir.join(if cfg!(windows) { format!("{command}.cmd") } else { command.to_owned() });
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
