//! The package stage: one `cargo package` of every crate to publish, against an
//! empty local index in this run's work dir.
//!
//! Cargo verifies each dependent against the packages it has just built (an
//! overlay of the index, cargo 1.90 and newer), so no feed and no credentials are
//! involved. Cargo keeps what it extracts for that overlay in `$CARGO_HOME/registry`
//! under a name derived from the index URL, and reuses it when the URL comes back:
//! a verification against a stale copy would pass a broken crate. So the index URL
//! is unique to the run (it is in the run's unique work dir), and the registry dirs
//! it made are removed afterwards, so runs do not pile up in the cargo home.

use std::collections::BTreeSet;

use anyhow::{Context, bail};
use camino::{Utf8Path, Utf8PathBuf};

use super::{CratePlan, Engine, tail};
use crate::git::{self, Git};

/// Packages and verifies `crates` from the workspace at `src` together.
pub fn package_all(engine: &mut Engine, src: &Utf8Path, crates: &[CratePlan]) -> anyhow::Result<()> {
    let _cleanup = RegistryDirs::snapshot()?;
    let feed = engine.registry().name.clone();
    let mut args = vec!["package", "--registry", feed.as_str()];
    // crates.io's index cannot be replaced (its dependencies come from it too): cargo
    // overlays the just-packaged crates on it; their extracted copies from earlier
    // runs are removed first, so none is reused.
    let config;
    if engine.registry().is_crates_io() {
        for krate in crates {
            forget_extracted(&krate.name, &krate.version)?;
        }
    } else {
        let index = engine.work().join("empty-index");
        Git::find()?.empty_index(engine.sh, &index)?;
        config = format!("registries.{feed}.index={}", toml_edit::Value::from(git::file_url(&index)));
        args.extend(["--config", config.as_str()]);
    }
    for krate in crates {
        args.extend(["-p", krate.name.as_str()]);
    }
    let out = engine.cargo(src, &args, true);
    if engine.registry().is_crates_io() {
        // Nor does this run's unpublished copy stay in crates.io's cache.
        for krate in crates {
            forget_extracted(&krate.name, &krate.version)?;
        }
    }
    let out = out?;
    if !out.success {
        let mut message = format!("`cargo package` failed, nothing was published:\n{}", tail(&out.stderr));
        if matches!(crate::cargo::version(), Ok(v) if v < (1, 90)) {
            message.push_str(
                "\nThis needs cargo 1.90 or newer (packaging dependents against just-packaged crates): \
                 `rustup update`",
            );
        }
        bail!(message);
    }
    for krate in crates {
        let dir = packaged_dir(src, &krate.name, &krate.version);
        if !dir.is_dir() {
            bail!("`cargo package` left no {dir}: cannot compare {} with the feed", krate.name);
        }
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

/// Where `cargo package` left the unpacked contents of a crate (what it verified,
/// and what the `.crate` holds).
pub fn packaged_dir(src: &Utf8Path, name: &str, version: &str) -> Utf8PathBuf {
    src.join("target").join("package").join(format!("{name}-{version}"))
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
