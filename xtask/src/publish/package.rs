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
//! Two target dirs would compile every dependency from another registry twice
//! (the real mshv: libc, vmm-sys-util, zerocopy and its proc macro over syn), so
//! while the crates are packaged, one `cargo build` compiles those into the first
//! target dir, which is then copied to the second ([`package_unverified`]): cargo
//! finds them up to date in both and compiles only the run's crates. That is a
//! warm cache, not a verification: cargo still decides, by its fingerprints, what
//! it rebuilds.
//!
//! Cargo keeps what it extracts for an overlay or a local registry in
//! `$CARGO_HOME/registry` under a name derived from its URL or path, and reuses it
//! when that comes back: a verification against a stale copy would pass a broken
//! crate. So the index URL and the local registry are unique to the run (in its
//! unique work dir), and the registry dirs it made are removed afterwards, so
//! runs do not pile up in the cargo home; runs sharing a cargo home take turns
//! at this stage, so that none removes another's ([`RegistryDirs`]).
//!
//! Last, every `.crate` is checked against the feed's size limit: an upload the
//! feed refuses for its size must not come after others that it took.

use std::collections::BTreeSet;
use std::fs::File;
use std::time::Duration;

use anyhow::{Context, bail};
use camino::{Utf8Path, Utf8PathBuf};
use toml_edit::Value;

use super::engine::{CratePlan, Engine, Ran, strs, tail};
use crate::feeds::Registry;
use crate::git::{self, Git};
use crate::{json, run};

/// Packages and verifies `crates` from the workspace at `src`, sets where each
/// one's verified contents are, and checks every `.crate` against the feed's size
/// limit, so that no upload starts a run that a later crate would stop.
pub fn package_all(engine: &mut Engine, src: &Utf8Path, crates: &mut [CratePlan]) -> anyhow::Result<()> {
    package_and_verify(engine, src, crates)?;
    check_sizes(engine.registry(), crates)
}

fn package_and_verify(engine: &mut Engine, src: &Utf8Path, crates: &mut [CratePlan]) -> anyhow::Result<()> {
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
    Git::find()?.empty_index(&index)?;
    let index_url = git::file_url(&index);
    let index_config = vec![format!("registries.{feed}.index={}", Value::from(index_url.as_str()))];
    if dependencies.is_empty() || dependents.is_empty() {
        return package_together(engine, src, &index_config, crates);
    }

    let listed = engine.work().join("packaged");
    let (first, second) =
        (engine.work().join("verify-dependencies"), engine.work().join("verify-dependents"));
    if package_unverified(engine, src, &index_config, crates, &listed, &first)? {
        copy_dir(&first, &second)?;
    }
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
    let commands = [
        ("dependencies", package_args(&feed, &index_config, &first, &dependencies)),
        ("dependents", package_args(&feed, &replaced, &second, &dependents)),
    ]
    .map(|(tag, args)| (tag.to_owned(), format!("verifying the {tag}"), args));
    check(engine.cargo_at_once(src, &commands))?;
    check_same(crates, &listed, &first, &second)?;
    set_packaged(crates, &first, &second)
}

/// Each `.crate` verified (in the target dir `dependencies` or `dependents`) equals,
/// byte for byte, the one in `listed` that its dependents built against.
fn check_same(
    crates: &[CratePlan],
    listed: &Utf8Path,
    dependencies: &Utf8Path,
    dependents: &Utf8Path,
) -> anyhow::Result<()> {
    for krate in crates {
        let file = format!("{}-{}.crate", krate.name, krate.version);
        let target = if krate.is_dependency { dependencies } else { dependents };
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
    Ok(())
}

/// `cargo package --no-verify` of every crate into `listed` (the `.crate` files
/// and a local registry of them) and, at the same time, one `cargo build` that
/// compiles into the target dir `first` the dependencies from other registries
/// that the run's crates build with; whether that build ran and succeeded (a
/// failure is left for the verifications to report, in their context).
fn package_unverified(
    engine: &mut Engine,
    src: &Utf8Path,
    configs: &[String],
    crates: &[CratePlan],
    listed: &Utf8Path,
    first: &Utf8Path,
) -> anyhow::Result<bool> {
    let names: Vec<String> = crates.iter().map(|c| c.name.clone()).collect();
    let mut package = package_args(&engine.registry().name, configs, listed, &names);
    package.push("--no-verify".into());
    let specs = registry_dependencies(engine.registry(), src, configs, crates)?;
    if specs.is_empty() {
        check(vec![engine.cargo_step(src, "packaging", &strs(&package), true)])?;
        return Ok(false);
    }
    let mut build: Vec<String> = ["build", "--target-dir", first.as_str()].map(String::from).into();
    build.extend(configs.iter().flat_map(|c| ["--config".to_owned(), c.clone()]));
    build.extend(specs.into_iter().flat_map(|spec| ["-p".to_owned(), spec]));
    let commands =
        [("packaging", "packaging", package), ("shared", "compiling the shared dependencies", build)]
            .map(|(tag, step, args)| (tag.to_owned(), step.to_owned(), args));
    let mut outputs = engine.cargo_at_once(src, &commands);
    let built = outputs.pop().expect("two commands")?.is_ok();
    check(outputs)?;
    Ok(built)
}

/// The package ID specs of what `crates` depend on from other registries, as
/// normal or build dependencies on every platform, in cargo's resolve of `src`;
/// none when cargo cannot resolve it.
fn registry_dependencies(
    registry: &Registry,
    src: &Utf8Path,
    configs: &[String],
    crates: &[CratePlan],
) -> anyhow::Result<Vec<String>> {
    let mut args = vec!["metadata", "--format-version", "1"];
    args.extend(configs.iter().flat_map(|c| ["--config", c.as_str()]));
    let mut program = run::cargo(src, &args).label("cargo metadata").timeout(Duration::from_secs(1800));
    if !registry.is_crates_io() {
        program = program.env(&registry.env_var("index"), &registry.index);
    }
    // Cargo failing to resolve is the packaging's to report, in its context.
    let out = match program.output() {
        Err(err) if err.stderr().is_some() => return Ok(Vec::new()),
        out => out.with_context(|| format!("cargo cannot resolve the workspace at {src}"))?,
    };
    let metadata = json::parse(&out.stdout).context("reading the answer of `cargo metadata`")?;
    let list = |v: Option<&json::Value>| match v {
        Some(json::Value::Array(items)) => items.clone(),
        _ => Vec::new(),
    };
    let field = |v: &json::Value, key: &str| v.get(key).and_then(json::Value::as_str).map(str::to_owned);
    // Path packages (no `source`) by id; the run's crates are among them.
    let local: Vec<(String, String)> = list(metadata.get("packages"))
        .iter()
        .filter(|p| matches!(p.get("source"), Some(json::Value::Null)))
        .filter_map(|p| Some((field(p, "id")?, field(p, "name")?)))
        .collect();
    let of_run = |id: &str| local.iter().any(|(i, n)| i == id && crates.iter().any(|c| &c.name == n));
    let is_local = |id: &str| local.iter().any(|(i, _)| i == id);
    let mut specs = BTreeSet::new();
    for node in list(metadata.get("resolve").and_then(|r| r.get("nodes"))) {
        if !field(&node, "id").is_some_and(|id| of_run(&id)) {
            continue;
        }
        for dep in list(node.get("deps")) {
            let built = list(dep.get("dep_kinds")).iter().any(|k| {
                field(k, "kind").as_deref() != Some("dev")
                    && matches!(k.get("target"), Some(json::Value::Null))
            });
            match field(&dep, "pkg") {
                Some(pkg) if built && !is_local(&pkg) => specs.insert(pkg),
                _ => false,
            };
        }
    }
    Ok(specs.into_iter().collect())
}

/// Copies the directory `from` to `to`, keeping each file's modification time,
/// which cargo compares with the times its fingerprints recorded.
fn copy_dir(from: &Utf8Path, to: &Utf8Path) -> anyhow::Result<()> {
    std::fs::create_dir_all(to).with_context(|| format!("cannot create {to}"))?;
    for entry in from.read_dir_utf8().with_context(|| format!("cannot read {from}"))? {
        let entry = entry.with_context(|| format!("cannot read {from}"))?;
        let (source, copy) = (entry.path(), to.join(entry.file_name()));
        if source.is_dir() {
            copy_dir(source, &copy)?;
            continue;
        }
        std::fs::copy(source, &copy).with_context(|| format!("cannot copy {source} to {copy}"))?;
        let modified = std::fs::metadata(source).and_then(|m| m.modified());
        modified
            .and_then(|time| File::options().write(true).open(&copy)?.set_modified(time))
            .with_context(|| format!("cannot keep the modification time of {source} in {copy}"))?;
    }
    Ok(())
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
    check(vec![engine.cargo_step(src, "packaging and verifying", &strs(&args), true)])?;
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
fn check(outputs: Vec<anyhow::Result<Ran>>) -> anyhow::Result<()> {
    let mut failed = Vec::new();
    for out in outputs {
        if let Err(cargo) = out? {
            failed.push(tail(&cargo.stderr));
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

/// The largest `.crate` a feed takes, and where that figure comes from, by the
/// feed's index URL; `None` for a feed whose limit is not known here.
fn size_limit(registry: &Registry) -> Option<(u64, &'static str)> {
    const MIB: u64 = 1024 * 1024;
    let index = registry.index.as_str();
    if registry.is_crates_io() || index.contains("://index.crates.io") {
        // crates.io's answer to a larger upload: "max upload size is: 10485760".
        Some((10 * MIB, "crates.io's upload limit"))
    } else if index.contains("pkgs.dev.azure.com") || index.contains(".pkgs.visualstudio.com") {
        // learn.microsoft.com/azure/devops/artifacts/reference/limits: Cargo, 500 MiB per file.
        Some((500 * MIB, "Azure Artifacts' limit for Cargo"))
    } else if index.contains("/api/v1/crates/") {
        // kellnr's `registry.max_crate_size` defaults to 10 * 1000 MB (kellnr-settings,
        // src/registry.rs); a feed's admin may set less.
        Some((10_000 * 1000 * 1000, "kellnr's default limit"))
    } else {
        None
    }
}

/// Every `.crate` of the run within the feed's size limit, or an error naming
/// each one over it, before anything is uploaded.
fn check_sizes(registry: &Registry, crates: &[CratePlan]) -> anyhow::Result<()> {
    let Some((limit, source)) = size_limit(registry) else { return Ok(()) };
    let mut over = Vec::new();
    for krate in crates {
        let file = Utf8PathBuf::from(format!("{}.crate", krate.packaged));
        let size = std::fs::metadata(&file).with_context(|| format!("cannot read {file}"))?.len();
        if size > limit {
            over.push(format!("{} {} is {} bytes", krate.name, krate.version, size));
        }
    }
    if over.is_empty() {
        return Ok(());
    }
    bail!(
        "{} packaged, over {}'s limit of {limit} bytes ({source}); nothing was uploaded. Leave out what \
         the crate does not need to build (`exclude` or `include` in its manifest; `cargo package --list` \
         shows what goes in)",
        over.join(", "),
        registry.name
    )
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
///
/// Cargo names those entries by a hash of the URL, so another run's are told
/// apart from this run's only by when they appeared: runs sharing a cargo home
/// take turns at the package stage, under a lock file in it, so that what appears
/// during it is this run's own and the other run's are never removed under it.
struct RegistryDirs {
    registry: Utf8PathBuf,
    before: BTreeSet<String>,
    _turn: crate::toml_file::FileLock,
}

const REGISTRY_PARTS: [&str; 3] = ["index", "src", "cache"];

/// The lock file of the package stage in a cargo home.
const TURN_FILE: &str = ".hyperlight-xtask-package.lock";

impl RegistryDirs {
    fn snapshot() -> anyhow::Result<RegistryDirs> {
        let home = crate::cargo_home::cargo_home()?;
        let waiting =
            format!("waiting for another run's package stage to end: it shares the cargo home {home}");
        let turn = crate::toml_file::lock_file(&home.join(TURN_FILE), None, Duration::ZERO, &waiting)?;
        let registry = home.join("registry");
        let before = local_entries(&registry);
        Ok(RegistryDirs { registry, before, _turn: turn })
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

#[cfg(test)]
mod tests {
    use super::*;

    /// Cargo compares the copied files' times with those its fingerprints recorded:
    /// a copy with fresh times would make every shared dependency look stale.
    #[test]
    fn the_copied_target_dir_keeps_contents_and_modification_times() {
        let base = Utf8PathBuf::try_from(std::env::temp_dir())
            .unwrap()
            .join(format!("xtask-package-copy-{}", std::process::id()));
        let (from, to) = (base.join("from"), base.join("to"));
        let file = Utf8PathBuf::from("debug/.fingerprint/libc-0123/lib-libc");
        std::fs::create_dir_all(from.join(&file).parent().unwrap()).unwrap();
        std::fs::write(from.join(&file), "fingerprint").unwrap();
        let old = std::time::SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_000);
        File::options().write(true).open(from.join(&file)).unwrap().set_modified(old).unwrap();

        copy_dir(&from, &to).unwrap();
        assert_eq!(std::fs::read_to_string(to.join(&file)).unwrap(), "fingerprint");
        assert_eq!(std::fs::metadata(to.join(&file)).unwrap().modified().unwrap(), old);
        std::fs::remove_dir_all(&base).unwrap();
    }
}
