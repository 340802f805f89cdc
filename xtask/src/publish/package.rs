//! The package stage: `cargo package` of every crate to publish, against an empty
//! local index in this run's work dir, so no feed and no credentials are involved.
//!
//! Cargo verifies each dependent against the packages it has just built (an
//! overlay of the index, cargo 1.90 and newer). One `cargo package` verifies its
//! packages one after the other, and a dependency twice over: once as itself (a
//! path source) and once as what its dependents build against (a registry
//! source). A crate such as mshv-bindings, one generated file compiled by one
//! rustc, leaves the other cores idle both times. So when some crates of the run
//! depend on others, the run packages everything without verifying first (cargo
//! writes the `.crate` files and a local registry of them), then verifies at the
//! same time, in two cargo commands with target dirs of their own:
//! - the dependencies, as `cargo package` of them all;
//! - the dependents, the feed replaced by that local registry, so that they
//!   build against the dependencies' `.crate` files.
//!
//! Every package is still verified by cargo from its `.crate`, and each `.crate`
//! verified must equal, byte for byte, the one its dependents built against.
//!
//! Cargo keeps what it extracts for an overlay or a local registry in
//! `$CARGO_HOME/registry` under a name derived from its URL or path, and reuses it
//! when that comes back: a verification against a stale copy would pass a broken
//! crate. So the index URL and the local registry are unique to the run (in its
//! unique work dir), and the registry dirs it made are removed afterwards, so
//! runs do not pile up in the cargo home.

use std::collections::BTreeSet;

use anyhow::{Context, bail};
use camino::{Utf8Path, Utf8PathBuf};
use toml_edit::Value;

use super::{CargoOutput, CratePlan, Engine, strs, tail};
use crate::git::{self, Git};

/// Packages and verifies `crates` from the workspace at `src`, and sets where
/// each one's verified contents are.
pub fn package_all(engine: &mut Engine, src: &Utf8Path, crates: &mut [CratePlan]) -> anyhow::Result<()> {
    let _cleanup = RegistryDirs::snapshot()?;
    let feed = engine.registry().name.clone();
    let names = |only: fn(&CratePlan) -> bool| -> Vec<String> {
        crates.iter().filter(|c| only(c)).map(|c| c.name.clone()).collect()
    };
    let (dependencies, dependents) = (names(|c| c.is_dependency), names(|c| !c.is_dependency));
    // crates.io's index cannot be replaced (its dependencies come from it too): cargo
    // overlays the just-packaged crates on it; their extracted copies from earlier
    // runs are removed first, and this run's afterwards, so none is reused.
    if engine.registry().is_crates_io() {
        let forget =
            |crates: &[CratePlan]| crates.iter().try_for_each(|c| forget_extracted(&c.name, &c.version));
        forget(crates)?;
        let result = package_together(engine, src, &[], crates);
        forget(crates)?;
        return result;
    }
    let index = engine.work().join("empty-index");
    Git::find()?.empty_index(engine.sh, &index)?;
    let index_url = git::file_url(&index);
    let index_config = vec![format!("registries.{feed}.index={}", Value::from(index_url.as_str()))];
    if dependencies.is_empty() || dependents.is_empty() {
        return package_together(engine, src, &index_config, crates);
    }

    let listed = engine.work().join("packaged");
    let mut args = package_args(&feed, &index_config, &listed, &names(|_| true));
    args.push("--no-verify".into());
    check(vec![engine.cargo(src, &strs(&args), true)])?;
    let local = listed.join("package").join("tmp-registry");
    if !local.join("index").is_dir() {
        bail!("`cargo package` left no local registry at {local}: cannot verify the dependents against it");
    }
    let mut replaced = index_config.clone();
    replaced.extend([
        format!("source.xtask-feed.registry={}", Value::from(index_url.as_str())),
        "source.xtask-feed.replace-with=\"xtask-packaged\"".into(),
        format!("source.xtask-packaged.local-registry={}", Value::from(local.as_str())),
    ]);
    let (first, second) =
        (engine.work().join("verify-dependencies"), engine.work().join("verify-dependents"));
    let commands = [
        ("dependencies".to_owned(), package_args(&feed, &index_config, &first, &dependencies)),
        ("dependents".to_owned(), package_args(&feed, &replaced, &second, &dependents)),
    ];
    check(engine.cargo_at_once(src, &commands))?;
    for krate in crates.iter() {
        let file = format!("{}-{}.crate", krate.name, krate.version);
        let target = if krate.is_dependency { &first } else { &second };
        let (verified, built_against) =
            (target.join("package").join(&file), listed.join("package").join(&file));
        let same = std::fs::read(&verified).with_context(|| format!("cannot read {verified}"))?
            == std::fs::read(&built_against).with_context(|| format!("cannot read {built_against}"))?;
        if !same {
            bail!(
                "cargo packaged {} {} twice with different contents ({verified}, {built_against}): \
                 nothing was published",
                krate.name,
                krate.version
            );
        }
    }
    set_packaged(crates, &first, &second)
}

/// One `cargo package` that packages and verifies every crate, one after the other.
fn package_together(
    engine: &mut Engine,
    src: &Utf8Path,
    configs: &[String],
    crates: &mut [CratePlan],
) -> anyhow::Result<()> {
    let target = engine.work().join("package");
    let names: Vec<String> = crates.iter().map(|c| c.name.clone()).collect();
    let args = package_args(&engine.registry().name, configs, &target, &names);
    check(vec![engine.cargo(src, &strs(&args), true)])?;
    set_packaged(crates, &target, &target)
}

/// `cargo package` of `packages` for `feed`, with `configs` and its own target dir.
fn package_args(feed: &str, configs: &[String], target: &Utf8Path, packages: &[String]) -> Vec<String> {
    let mut args: Vec<String> =
        ["package", "--registry", feed, "--target-dir", target.as_str()].map(String::from).into();
    for config in configs {
        args.extend(["--config".into(), config.clone()]);
    }
    for package in packages {
        args.extend(["-p".into(), package.clone()]);
    }
    args
}

/// Every `cargo package` of the stage succeeded; else the first error of each that
/// failed.
fn check(outputs: Vec<anyhow::Result<CargoOutput>>) -> anyhow::Result<()> {
    let mut failed = Vec::new();
    for out in outputs {
        let out = out?;
        if !out.success {
            failed.push(tail(&out.stderr));
        }
    }
    if failed.is_empty() {
        return Ok(());
    }
    let mut message = format!("`cargo package` failed, nothing was published:\n{}", failed.join("\n"));
    if matches!(crate::cargo::version(), Ok(v) if v < (1, 90)) {
        message.push_str(
            "\nThis needs cargo 1.90 or newer (packaging dependents against just-packaged crates): \
             `rustup update`",
        );
    }
    bail!(message)
}

/// Records where cargo unpacked each crate it verified: in the target dir
/// `dependencies` for a dependency of another crate of the run, else in
/// `dependents` (the same dir when one cargo command verified them all).
fn set_packaged(
    crates: &mut [CratePlan],
    dependencies: &Utf8Path,
    dependents: &Utf8Path,
) -> anyhow::Result<()> {
    for krate in crates.iter_mut() {
        let target = if krate.is_dependency { dependencies } else { dependents };
        let dir = target.join("package").join(format!("{}-{}", krate.name, krate.version));
        if !dir.is_dir() {
            bail!("`cargo package` left no {dir}: cannot compare {} with the feed", krate.name);
        }
        krate.packaged = dir;
    }
    Ok(())
}

/// Removes every extracted `name-version` under `$CARGO_HOME/registry/src`: cargo
/// extracts again what it needs from its download cache, and no overlay copy of an
/// unpublished version survives into a later run or build.
fn forget_extracted(name: &str, version: &str) -> anyhow::Result<()> {
    let src = crate::cargo_home::cargo_home()?.join("registry").join("src");
    let Ok(entries) = std::fs::read_dir(&src) else { return Ok(()) };
    for entry in entries.flatten() {
        let dir = Utf8PathBuf::try_from(entry.path().join(format!("{name}-{version}")))?;
        if dir.is_dir() {
            crate::workdir::remove_dir_all(&dir).with_context(|| format!("cannot remove the stale {dir}"))?;
        }
    }
    Ok(())
}

/// The entries of `$CARGO_HOME/registry/{index,src,cache}` that belong to local
/// (`file://`) registries, whose names start with `-` (no host): taken before the
/// package stage, and on drop every such entry that appeared since is removed.
struct RegistryDirs {
    registry: Utf8PathBuf,
    before: BTreeSet<String>,
}

const REGISTRY_PARTS: [&str; 3] = ["index", "src", "cache"];

impl RegistryDirs {
    fn snapshot() -> anyhow::Result<RegistryDirs> {
        let registry = crate::cargo_home::cargo_home()?.join("registry");
        let before = local_entries(&registry);
        Ok(RegistryDirs { registry, before })
    }
}

impl Drop for RegistryDirs {
    fn drop(&mut self) {
        for entry in local_entries(&self.registry).difference(&self.before) {
            let path = self.registry.join(entry);
            // Best effort: what is left is a cache cargo can remove (`cargo clean gc`).
            let _ = crate::workdir::remove_dir_all(&path);
        }
    }
}

/// `part/name` of every local-registry entry under `registry`.
fn local_entries(registry: &Utf8Path) -> BTreeSet<String> {
    let mut found = BTreeSet::new();
    for part in REGISTRY_PARTS {
        let Ok(entries) = std::fs::read_dir(registry.join(part)) else { continue };
        for entry in entries.flatten() {
            if let Some(name) = entry.file_name().to_str().filter(|n| n.starts_with('-')) {
                found.insert(format!("{part}/{name}"));
            }
        }
    }
    found
}
