//! The package stage: `cargo package` of every crate against the run's own empty index
//! (no feed, no credentials), so no stale extracted copy can pass a broken crate.

use std::collections::BTreeSet;
use std::fs::File;
use std::time::Duration;

use anyhow::{Context, bail, ensure};
use camino::{Utf8Path, Utf8PathBuf};
use toml_edit::{Item, Value};

use super::engine::{CratePlan, Engine, Ran, items, nodes, package, repeated, tail, text};
use super::workspace::Workspace;
use crate::{git, json, run};

/// `err`, with what to do when it says the cargo home cannot be written.
fn home_not_writable(err: anyhow::Error, home: &Utf8Path) -> anyhow::Error {
    use std::io::ErrorKind::{PermissionDenied, ReadOnlyFilesystem};
    match err.downcast_ref::<std::io::Error>().map(std::io::Error::kind) {
        Some(PermissionDenied | ReadOnlyFilesystem) => err.context(format!(
            "publishing writes in the cargo home {home}, as cargo does: make it writable, or set CARGO_HOME \
             to a writable directory (a new one holds none of your cargo config and credentials: log in again \
             with it set)"
        )),
        _ => err,
    }
}

/// Packages and (with `verify`) verifies `crates` of `ws` within the feed's size limit, against the feed's
/// own index when one takes crates from it (crates.io's cannot be replaced), else an empty one.
pub fn package_all(
    engine: &Engine,
    ws: &Workspace,
    crates: &mut [CratePlan],
    verify: bool,
) -> anyhow::Result<()> {
    let (src, home) = (&ws.root, crate::cargo_home::cargo_home()?);
    let feed_index = engine.registry.is_crates_io() || ws.takes_from_feed(crates, engine.registry);
    if verify {
        refuse_overrides(engine, src, &home)?;
    }
    // Runs sharing a cargo home take turns, so the `file://` registry dirs made
    // meanwhile (`$CARGO_HOME/registry/*/-<hash>`) are this run's to remove.
    let waiting = format!("waiting for another run's package stage to end: it shares the cargo home {home}");
    let lock = home.join(".hyperlight-xtask-package.lock");
    let turn = crate::toml_file::lock_file(&lock, None, Duration::ZERO, &waiting);
    let _turn = turn.map_err(|err| home_not_writable(err, &home))?;
    let registry = home.join("registry");
    let before = local_entries(&registry);
    let result = package_verified(engine, src, crates, feed_index, verify);
    for entry in local_entries(&registry).difference(&before) {
        // Best effort: what is left is a cache cargo can remove (`cargo clean gc`).
        let _ = crate::workdir::remove_dir_all(&registry.join(entry));
    }
    result
}

/// Cargo applies a `[patch]` or `paths` of its configs to the verification too: the
/// crates would be verified against sources their consumers never get.
fn refuse_overrides(engine: &Engine, src: &Utf8Path, home: &Utf8Path) -> anyhow::Result<()> {
    let global = crate::cargo_home::global_config()?.path;
    for path in [global].into_iter().chain(crate::cargo_home::dir_configs(src, home)) {
        let Some(doc) = crate::toml_file::read_if_exists(&path)? else { continue };
        let patch = doc.get("patch").and_then(Item::as_table_like).into_iter().flat_map(|p| p.iter());
        let patched = patch.filter_map(|(_, t)| t.as_table_like()).any(|t| !t.is_empty());
        if !patched && doc.get("paths").and_then(Item::as_array).is_none_or(|p| p.is_empty()) {
            continue;
        }
        // The repository's own config is copied from the commit: only a commit changes it.
        let (shown, fix) = match path.strip_prefix(engine.work.join("src")) {
            Ok(inner) if engine.task == "publish" => (
                format!("{inner} of the repository to publish"),
                "Comment it out and commit that (or pass --allow-dirty to publish it uncommitted)",
            ),
            Ok(inner) => (format!("{inner} of the repository at that rev"), "Publish a rev without it"),
            Err(_) => (path.to_string(), "Comment it out while you publish, then run again"),
        };
        bail!(
            "{shown} has a `[patch]` or `paths`, which cargo applies to the verification too: the crates \
             would be verified against sources their consumers never get. {fix}; nothing was uploaded"
        );
    }
    Ok(())
}

fn package_verified(
    engine: &Engine,
    src: &Utf8Path,
    crates: &mut [CratePlan],
    feed_index: bool,
    verify: bool,
) -> anyhow::Result<()> {
    // Without a verification, tar unpacks the packages for the compare, as cargo would.
    let tar = if verify { None } else { crate::tool::TAR.find().ok() };
    let verify = tar.is_none();
    let mut configs = Vec::new();
    if !feed_index {
        let index = engine.work.join("empty-index");
        engine.git.empty_index(&index)?;
        let url = Value::from(git::file_url(&index)).to_string();
        configs.push(format!("registries.{}.index={url}", engine.registry.name));
        if verify && crates.iter().any(|c| c.is_dependency) {
            return package_apart(engine, src, &configs, &url, crates);
        }
    }
    let target = engine.work.join("package");
    let names: Vec<&str> = crates.iter().map(|c| c.name.as_str()).collect();
    let mut args = cargo_args(&["package", "--registry", &engine.registry.name], &target, &configs, &names);
    args.extend((!verify).then_some("--no-verify"));
    let doing = if verify { "packaging and verifying" } else { "packaging" };
    check(engine.cargo_all(src, &[("", doing, args)], true)?)?;
    for file in crates.iter().map(|c| format!("{}-{}.crate", c.name, c.version)) {
        let Some(tar) = &tar else { break };
        run::program(tar, &target.join("package"), &["-xzf", &file])
            .label(format!("tar -xzf {file}"))
            .output()?;
    }
    set_packaged(engine, crates, &target, &target, None)
}

/// Packages unverified while compiling what the crates share (a failure is left for
/// the verifications), then verifies the dependencies, and the dependents against them.
fn package_apart(
    engine: &Engine,
    src: &Utf8Path,
    configs: &[String],
    index_url: &str,
    crates: &mut [CratePlan],
) -> anyhow::Result<()> {
    let work = engine.work;
    let (listed, first, second) =
        (work.join("packaged"), work.join("verify-dependencies"), work.join("verify-dependents"));
    let package = ["package", "--registry", engine.registry.name.as_str()];
    let names = |only: fn(&CratePlan) -> bool| -> Vec<&str> {
        crates.iter().filter(|c| only(c)).map(|c| c.name.as_str()).collect()
    };
    let (all, dependencies, dependents) =
        (names(|_| true), names(|c| c.is_dependency), names(|c| !c.is_dependency));
    let mut packaging = cargo_args(&package, &listed, configs, &all);
    packaging.push("--no-verify");
    let mut commands = vec![("packaging", "packaging", packaging)];
    let shared = shared_workspace(work, src, crates)?;
    let specs = registry_dependencies(engine, src, &shared, configs, crates)?;
    if !specs.is_empty() {
        let mut build = cargo_args(&["build"], &first, configs, &specs);
        build.extend(["--manifest-path", shared.as_str()]);
        commands.push(("shared", "compiling the shared dependencies", build));
    }
    let mut outputs = engine.cargo_all(src, &commands, true)?;
    let built = outputs.len() > 1 && outputs.pop().expect("two commands")?.is_ok();
    check(outputs)?;
    if built {
        copy_dir(&first, &second)?;
    }
    let local = listed.join("package").join("tmp-registry");
    let mut replaced = configs.to_vec();
    replaced.extend([
        format!("source.xtask-feed.registry={index_url}"),
        "source.xtask-feed.replace-with=\"xtask-packaged\"".into(),
        format!("source.xtask-packaged.local-registry={}", Value::from(local.as_str())),
    ]);
    let dependencies = cargo_args(&package, &first, configs, &dependencies);
    let dependents = cargo_args(&package, &second, &replaced, &dependents);
    let commands = [
        ("dependencies", "verifying the dependencies", dependencies),
        ("dependents", "verifying the dependents", dependents),
    ];
    check(engine.cargo_all(src, &commands, true)?)?;
    set_packaged(engine, crates, &first, &second, Some(&listed))
}

/// The package ID specs of the normal dependencies `crates` build with on every
/// platform from other registries, in the `shared` workspace; none when cargo cannot
/// resolve it (the packaging says why).
fn registry_dependencies(
    engine: &Engine,
    src: &Utf8Path,
    shared: &Utf8Path,
    configs: &[String],
    crates: &[CratePlan],
) -> anyhow::Result<Vec<String>> {
    let Ok(metadata) = engine.metadata(src, Some(shared), true, &repeated("--config", configs))? else {
        return Ok(Vec::new());
    };
    // A path package has no `source`; the run's crates are among them.
    let local = |id: &str| package(&metadata, id).filter(|p| text(p, "source").is_empty());
    let proc_macro = |p: &json::Value| {
        items(p.get("targets"))
            .iter()
            .any(|t| items(t.get("kind")).iter().any(|k| k.as_str() == Some("proc-macro")))
    };
    // Normal ones only, and none of a proc macro (built for the host): `cargo build
    // -p` of either can panic (cargo 1.95, "did not find features for ... NormalOrDev").
    let ours = |node: &&json::Value| {
        let run_crate = |p: &json::Value| crates.iter().any(|c| c.name == text(p, "name"));
        local(text(node, "id")).is_some_and(|p| run_crate(p) && !proc_macro(p))
    };
    let normal = |kind: &json::Value| {
        text(kind, "kind").is_empty() && kind.get("target") == Some(&json::Value::Scalar)
    };
    let specs: BTreeSet<&str> = (nodes(&metadata).iter().filter(ours))
        .flat_map(|node| items(node.get("deps")))
        .filter(|dep| items(dep.get("dep_kinds")).iter().any(normal))
        .map(|dep| text(dep, "pkg"))
        .filter(|pkg| local(pkg).is_none())
        .collect();
    Ok(specs.into_iter().map(str::to_owned).collect())
}

/// A workspace of one package depending on `crates` by path, with `src`'s lock. In `src`,
/// the dependencies and their features are those every member asks for (Hyperlight's 13):
/// more than the verifications build, which then compiled much of it again.
fn shared_workspace(work: &Utf8Path, src: &Utf8Path, crates: &[CratePlan]) -> anyhow::Result<Utf8PathBuf> {
    let dir = work.join("shared-dependencies");
    let deps: String = crates
        .iter()
        .map(|c| format!("{} = {{ path = {} }}\n", c.name, Value::from(c.dir.as_str())))
        .collect();
    super::compare::scratch_package(&dir, "hyperlight-xtask-shared", &deps)?;
    if src.join("Cargo.lock").is_file() {
        std::fs::copy(src.join("Cargo.lock"), dir.join("Cargo.lock")).context("cannot copy Cargo.lock")?;
    }
    Ok(dir.join("Cargo.toml"))
}

/// Copies `from` to `to` with the modification times cargo's fingerprints compare.
fn copy_dir(from: &Utf8Path, to: &Utf8Path) -> anyhow::Result<()> {
    for path in super::compare::all_files(from)? {
        let (source, copy) = (from.join(&path), to.join(&path));
        std::fs::create_dir_all(copy.parent().unwrap_or(to))
            .and_then(|_| std::fs::copy(&source, &copy))
            .and_then(|_| {
                File::options().write(true).open(&copy)?.set_modified(source.metadata()?.modified()?)
            })
            .with_context(|| format!("cannot copy {source} to {copy} with its modification time"))?;
    }
    Ok(())
}

/// `cargo <command> --target-dir <target>` with `configs`, for `packages`.
fn cargo_args<'a>(
    command: &[&'a str],
    target: &'a Utf8Path,
    configs: &'a [String],
    packages: &'a [impl AsRef<str>],
) -> Vec<&'a str> {
    [command, &["--target-dir", target.as_str()], &repeated("--config", configs), &repeated("-p", packages)]
        .concat()
}

fn check(outputs: Vec<anyhow::Result<Ran>>) -> anyhow::Result<()> {
    let mut failed = Vec::new();
    for out in outputs {
        if let Err(stderr) = out? {
            failed.push(tail(&stderr));
        }
    }
    if failed.is_empty() {
        return Ok(());
    }
    // The copy is a commit: what cargo finds uncommitted there, it wrote itself.
    ensure!(
        !failed.iter().any(|f| f.contains("not yet committed") && f.contains("Cargo.lock")),
        "the committed Cargo.lock is out of date: update it (any cargo build does) and commit it; nothing \
         was uploaded"
    );
    let mut message = format!("`cargo package` failed, nothing was published:\n{}", failed.join("\n"));
    if matches!(crate::cargo::version(), Ok(v) if v < (1, 90)) {
        message.push_str(
            "\nThis needs cargo 1.90 or newer (packaging dependents against just-packaged crates): \
             `rustup update`, or `cargo +stable xtask ...` where the repository pins an older toolchain",
        );
    }
    bail!(message)
}

/// The largest `.crate` a feed takes, by a part of its index URL, and the source.
const SIZE_LIMITS: [(&str, u64, &str); 4] = [
    // crates.io's answer to a larger upload: "max upload size is: 10485760".
    ("://index.crates.io", 10 << 20, "crates.io's upload limit"),
    // learn.microsoft.com/azure/devops/artifacts/reference/limits: Cargo, 500 MiB per file.
    ("pkgs.dev.azure.com", 500 << 20, "Azure Artifacts' limit for Cargo"),
    (".pkgs.visualstudio.com", 500 << 20, "Azure Artifacts' limit for Cargo"),
    // kellnr 6.5.0's `registry.max_crate_size`: 10 MB of upload; over it, "400: length limit exceeded".
    ("/api/v1/crates/", 10_000_000, "kellnr's default limit"),
];

/// Records where each crate was verified, its `.crate` equal to the one in `listed` and
/// within the feed's size limit.
fn set_packaged(
    engine: &Engine,
    crates: &mut [CratePlan],
    dependencies: &Utf8Path,
    dependents: &Utf8Path,
    listed: Option<&Utf8Path>,
) -> anyhow::Result<()> {
    let registry = engine.registry;
    let limit = SIZE_LIMITS.iter().find(|(part, ..)| registry.index.contains(part));
    let mut over = Vec::new();
    for krate in crates.iter_mut() {
        let target = if krate.is_dependency { dependencies } else { dependents }.join("package");
        let file = format!("{}-{}", krate.name, krate.version);
        let (dir, verified) = (target.join(&file), target.join(format!("{file}.crate")));
        ensure!(dir.is_dir(), "`cargo package` left no {dir}: cannot compare {} with the feed", krate.name);
        let read = |path: &Utf8Path| std::fs::read(path).with_context(|| format!("cannot read {path}"));
        if let Some(listed) = listed {
            let built_against = listed.join("package").join(format!("{file}.crate"));
            ensure!(
                read(&verified)? == read(&built_against)?,
                "cargo packaged {file} twice with different contents ({verified}, {built_against}): nothing \
                 was published"
            );
        }
        if let Some((_, limit, _)) = limit {
            let size = verified.metadata().with_context(|| format!("cannot read {verified}"))?.len();
            if size > *limit {
                over.push(format!("{} {} is {size} bytes", krate.name, krate.version));
            }
        }
        krate.packaged = dir;
    }
    if let (Some((_, limit, source)), false) = (limit, over.is_empty()) {
        bail!(
            "{} packaged, over {}'s limit of {limit} bytes ({source}); nothing was uploaded. Leave out \
             what the crate does not need to build (`exclude` or `include` in its manifest; `cargo \
             package --list` shows what goes in)",
            over.join(", "),
            registry.name
        );
    }
    Ok(())
}

/// `part/name` of every local-registry entry under `registry`.
fn local_entries(registry: &Utf8Path) -> BTreeSet<String> {
    let mut found = BTreeSet::new();
    for part in ["index", "src", "cache"] {
        let Ok(entries) = registry.join(part).read_dir_utf8() else { continue };
        for entry in entries.flatten().filter(|e| e.file_name().starts_with('-')) {
            found.insert(format!("{part}/{}", entry.file_name()));
        }
    }
    found
}

#[cfg(test)]
mod tests {
    use camino::Utf8PathBuf;

    use super::*;

    /// A read-only cargo home said only "cannot open the lock file ...: Read-only file system".
    #[test]
    fn a_cargo_home_that_cannot_be_written_says_what_to_do() {
        let home = Utf8Path::new("/ro/cargo-home");
        for kind in [std::io::ErrorKind::ReadOnlyFilesystem, std::io::ErrorKind::PermissionDenied] {
            let err = anyhow::Error::new(std::io::Error::from(kind)).context("cannot open the lock file x");
            let shown = format!("{:#}", home_not_writable(err, home));
            assert!(shown.contains("or set CARGO_HOME to a writable directory"), "{shown}");
            assert!(shown.contains("none of your cargo config and credentials: log in again"), "{shown}");
            assert!(shown.contains("cannot open the lock file x"), "{shown}");
        }
        let other = anyhow::Error::new(std::io::Error::from(std::io::ErrorKind::NotFound));
        assert!(!format!("{:#}", home_not_writable(other, home)).contains("CARGO_HOME"));
    }

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
