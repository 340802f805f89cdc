//! What the feed has (NAME@VERSION, and its sources compared file by file, `Cargo.toml` as
//! data), and whether each package holds exactly cargo's `package --list`.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Instant;

use anyhow::{Context, anyhow, bail, ensure};
use camino::Utf8Path;
use toml_edit::{Item, Value};

use super::engine::{CratePlan, Engine, Outcome, feed_error, items, nodes, package, tail, text};
use crate::cargo::Need;

/// Compares each crate the feed has with its package: identical is skipped, different stops all uploads.
pub fn stage(engine: &Engine, crates: &mut [CratePlan]) -> anyhow::Result<()> {
    check_file_sets(crates)?;
    let t = Instant::now();
    let in_feed: Vec<&mut CratePlan> = crates.iter_mut().filter(|c| c.outcome == Outcome::InFeed).collect();
    if in_feed.is_empty() {
        return Ok(());
    }
    let (feed, probe) = (&engine.registry.name, engine.work.join("feed-sources"));
    let wanted: Vec<(&str, &str)> = in_feed.iter().map(|c| (c.name.as_str(), c.version.as_str())).collect();
    scratch(engine, &probe, &wanted)?;
    let listed = wanted.iter().map(|(n, v)| format!("{n} {v}")).collect::<Vec<_>>().join(", ");
    // The feed's copies as cargo unpacks them, in the host's graph only: every platform's is hundreds of MB.
    let metadata = engine.metadata(&probe, None, true, &[])?.map_err(|stderr| {
        let why = tail(&stderr);
        anyhow!(
            "cannot fetch what {feed} has for {listed} to compare it with this run's packages; nothing was \
             uploaded:\n{why}"
        )
    })?;
    // Packaged against the run's empty index, which stands for the feed.
    let empty_index = crate::git::file_url(&engine.work.join("empty-index"));
    let index =
        (!engine.registry.is_crates_io()).then_some((empty_index.as_str(), engine.registry.index.as_str()));
    let (mut problems, mut offer) = (Vec::new(), String::new());
    // The probe's own dependencies: the graph may hold that version from another source too.
    let root = metadata.get("resolve").map_or("", |resolve| text(resolve, "root"));
    let probe = nodes(&metadata).iter().find(|node| text(node, "id") == root);
    let deps = probe.map_or(&[][..], |node| items(node.get("deps")));
    for krate in in_feed {
        let (name, version) = (&krate.name, &krate.version);
        let theirs = (deps.iter().filter_map(|dep| package(&metadata, text(dep, "pkg"))))
            .find(|p| text(p, "name") == name && text(p, "version") == version)
            .and_then(|p| Utf8Path::new(text(p, "manifest_path")).parent())
            .context(format!(
                "cargo fetched no {name} {version} from {feed} to compare; nothing was uploaded"
            ))?;
        let differs = differences(&krate.packaged, theirs, index)?;
        krate.outcome = if differs.is_empty() { Outcome::Identical } else { Outcome::Differs };
        if !differs.is_empty() {
            offer = next_version(version);
            let shown = crate::tool::first(&differs, 10, ", ");
            problems
                .push(format!("{name} {version} is in {feed} with other sources than this run's: {shown}"));
        }
    }
    ensure!(
        problems.is_empty(),
        "{}\nPublished versions are immutable: publish these sources under a new version (`--version`, \
             such as {offer}). Nothing was uploaded.",
        problems.join("\n")
    );
    engine.stage("compare", &format!("{listed} already in {feed}, identical"), t.elapsed());
    Ok(())
}

/// A version after `version`, for the hints: `0.1.2-20240416.1`, `0.1.3`.
fn next_version(version: &str) -> String {
    let version = version.split('+').next().unwrap_or(version);
    let patch = version.rsplit_once('.').and_then(|(head, patch)| Some((head, patch.parse::<u64>().ok()?)));
    match patch {
        Some((head, patch)) if !version.contains('-') => format!("{head}.{}", patch + 1),
        _ => format!("{version}.1"),
    }
}

/// What a feed holds of a crate.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Held {
    Version,
    OtherVersions,
    /// No version at all: the upload creates the crate.
    Nothing,
}

/// What the feed holds of `name` at `version`: only cargo's "could not find" is "absent";
/// a yanked version (which `cargo info` does not tell) is an error.
pub fn in_feed(engine: &Engine, name: &str, version: &str) -> anyhow::Result<Held> {
    let (spec, feed) = (format!("{name}@{version}"), &engine.registry.name);
    let ran = engine.cargo(engine.work, &["info", &spec, "--registry", feed], false)?;
    if let Some(other) = spelled_otherwise(ran.as_ref().map_or_else(String::as_str, |o| &o.stderr), name) {
        bail!(
            "{feed} holds a crate named {other}, which cargo takes for {name} (`-` and `_` are one name \
             to it), so it cannot tell whether {feed} has {name} {version}; a registry refuses such a \
             name (crates.io) or keeps both. Rename {name}, or publish to another feed. Nothing was uploaded."
        );
    }
    let Err(mut stderr) = ran else { return Ok(Held::Version) };
    if stderr.contains(&format!("could not find `{spec}`")) {
        let probe = engine.work.join(format!("yanked-{name}"));
        scratch(engine, &probe, &[(name, version)])?;
        let ran = engine.cargo(&probe, &["generate-lockfile"], false)?;
        let _ = std::fs::remove_dir_all(&probe);
        stderr = ran.as_ref().map_or_else(String::clone, |out| out.stderr.clone());
        ensure!(
            !stderr.contains(&format!("version {version} is yanked")),
            "{name} {version} is yanked in {feed}: a yanked version stays in the feed and can never be \
             published again. Publish under a new version (`--version`, such as {}). Nothing was uploaded.",
            next_version(version)
        );
        // Resolved: in the feed after all (the compare then fetches it), else not found.
        let absent = [
            ("failed to select a version", Held::OtherVersions),
            ("no matching package named", Held::Nothing),
        ];
        if ran.is_ok() {
            return Ok(Held::Version);
        } else if let Some(&(_, held)) = absent.iter().find(|(says, _)| stderr.contains(says)) {
            return Ok(held);
        }
    }
    // Asked only before an upload, so the token must write too.
    Err(feed_error(feed, &stderr, Need::Publish)
        .context(format!("cannot tell whether {feed} has {name} {version}")))
}

/// The name cargo 1.95's `info` took for `name` (`translating`, or `could not find` it).
fn spelled_otherwise<'a>(stderr: &'a str, name: &str) -> Option<&'a str> {
    let after = |mark: &str| stderr.split_once(mark).map(|(_, rest)| rest.split(['`', '@']).next());
    let found = after(&format!("translating `{name}` to `")).or_else(|| after("could not find `"));
    found.flatten().filter(|found| *found != name && found.replace('-', "_") == name.replace('-', "_"))
}

/// A package at `dir` depending on exactly each of `crates` from the engine's feed.
fn scratch(engine: &Engine, dir: &Utf8Path, crates: &[(&str, &str)]) -> anyhow::Result<()> {
    let feed = &engine.registry.name;
    let registry =
        if engine.registry.is_crates_io() { String::new() } else { format!(", registry = {feed:?}") };
    let deps: String =
        crates.iter().map(|(name, v)| format!("{name} = {{ version = \"={v}\"{registry} }}\n")).collect();
    scratch_package(dir, "hyperlight-xtask-feed-sources", &deps)
}

/// A library package `name` at `dir` with `[dependencies]` lines `deps`, in a workspace of its own.
pub fn scratch_package(dir: &Utf8Path, name: &str, deps: &str) -> anyhow::Result<()> {
    std::fs::create_dir_all(dir.join("src")).with_context(|| format!("cannot create {dir}"))?;
    let manifest = format!(
        "[package]\nname = \"{name}\"\nversion = \"0.0.0\"\nedition = \"2021\"\npublish = false\n\n\
         [workspace]\n\n[dependencies]\n{deps}"
    );
    std::fs::write(dir.join("Cargo.toml"), manifest)
        .with_context(|| format!("cannot write {dir}/Cargo.toml"))?;
    std::fs::write(dir.join("src").join("lib.rs"), "")
        .with_context(|| format!("cannot write {dir}/src/lib.rs"))
}

/// The files and manifest keys that differ; `index`: the feed's URL in ours, and theirs.
pub fn differences(
    ours: &Utf8Path,
    theirs: &Utf8Path,
    index: Option<(&str, &str)>,
) -> anyhow::Result<Vec<String>> {
    let generated = ["Cargo.lock", ".cargo_vcs_info.json", ".cargo-ok"];
    let (a, b) = (all_files(ours)?, all_files(theirs)?);
    let mut differ = Vec::new();
    for path in a.union(&b).filter(|path| !generated.contains(&path.as_str())) {
        let read = |root: &Utf8Path| {
            std::fs::read(root.join(path)).with_context(|| format!("cannot read {root}/{path}"))
        };
        match (a.contains(path), b.contains(path)) {
            (true, false) => differ.push(format!("{path} (only in this run's package)")),
            (false, true) => differ.push(format!("{path} (only in the registry's)")),
            _ if path == "Cargo.toml" => {
                let (mut a, b) = (manifest_data(ours)?, manifest_data(theirs)?);
                if let Some((packaged, feed)) = index {
                    let (from, to) = (format!("{packaged:?}"), format!("{feed:?}"));
                    a.values_mut().filter(|value| **value == from).for_each(|value| value.clone_from(&to));
                }
                let keys: BTreeSet<&String> = a.keys().chain(b.keys()).collect();
                for key in keys.into_iter().filter(|key| a.get(*key) != b.get(*key)) {
                    let [here, there] = [&a, &b].map(|data| data.get(key).map_or("absent", String::as_str));
                    differ.push(format!("Cargo.toml: {key} ({here} here, {there} in the registry's)"));
                }
            }
            _ if read(ours)? != read(theirs)? => differ.push(path.clone()),
            _ => {}
        }
    }
    Ok(differ)
}

/// `dir`'s normalized `Cargo.toml` by dotted key, less what cargo releases change (docs/publish-redist.md).
fn manifest_data(dir: &Utf8Path) -> anyhow::Result<BTreeMap<String, String>> {
    let doc = crate::toml_file::read(&dir.join("Cargo.toml"))?;
    let mut data = BTreeMap::new();
    flatten("", doc.as_item(), &mut data);
    data.retain(|key, _| {
        let top = key.split('.').next().unwrap_or_default();
        !key.starts_with("package.auto") && !["example", "test", "bench"].contains(&top)
    });
    // What cargo reads where a key is absent, so that spelling it out changes nothing.
    let build = if dir.join("build.rs").is_file() { "\"build.rs\"" } else { "false" };
    let name = data.get("package.name").map(|n| n.replace('-', "_")).unwrap_or_default();
    for (key, value) in
        [("package.build", build.into()), ("lib.name", name), ("lib.path", "\"src/lib.rs\"".into())]
    {
        data.entry(key.into()).or_insert(value);
    }
    Ok(data)
}

fn flatten(key: &str, item: &Item, data: &mut BTreeMap<String, String>) {
    let at = |k: &str| if key.is_empty() { k.to_owned() } else { format!("{key}.{k}") };
    if let Some(table) = item.as_table_like() {
        table.iter().for_each(|(k, item)| flatten(&at(k), item, data));
    } else if let Some(tables) = item.as_array_of_tables() {
        for (i, table) in tables.iter().enumerate() {
            table.iter().for_each(|(k, item)| flatten(&format!("{key}.{i}.{k}"), item, data));
        }
    } else if let Some(value) = item.as_value() {
        data.insert(key.to_owned(), shown(value));
    }
}

/// A value as data: strings quoted alike, no layout or comments.
fn shown(value: &Value) -> String {
    match value {
        Value::String(s) => format!("{:?}", s.value()),
        Value::Array(items) => format!("[{}]", items.iter().map(shown).collect::<Vec<_>>().join(", ")),
        Value::InlineTable(table) => format!(
            "{{{}}}",
            table.iter().map(|(k, v)| format!("{k} = {}", shown(v))).collect::<Vec<_>>().join(", ")
        ),
        other => other.clone().decorated("", "").to_string(),
    }
}

const IGNORED_FIX: &str = "\nThe copy holds what git tracks (with --allow-dirty, your changes too): a listed \
    file git ignores (a generated one) is not in it, so commit it (`git add -f`) or leave it out";

/// Sets each crate's `listed` to what `cargo package --list` gives in the user's tree at
/// `root`; without `allow_dirty`, cargo refuses (and names) uncommitted files.
pub fn list(engine: &Engine, root: &Utf8Path, crates: &mut [CratePlan], allow: bool) -> anyhow::Result<()> {
    let target = engine.work.join("list-target");
    for krate in crates {
        let name = &krate.name;
        // `--locked`: cargo would otherwise rewrite a stale lock in the user's tree.
        let mut args = vec!["package", "--list", "--locked", "-p", name, "--target-dir", target.as_str()];
        args.extend(allow.then_some("--allow-dirty"));
        let step = format!("cargo package --list -p {name}");
        let out = engine.cargo_step(root, &step, &args, false)?.map_err(|stderr| {
            if stderr.contains("because --locked was passed") {
                let lock = root.join("Cargo.lock");
                return anyhow::anyhow!(
                    "{lock} is out of date: update it (any cargo build does) and commit it; nothing was uploaded"
                );
            }
            // `git status` showed nothing, so these are files git ignores: no --allow-dirty brings them.
            let ignored = stderr.contains("not yet committed");
            let why = tail(&stderr);
            let why: Vec<&str> = why.lines().filter(|l| !(ignored && l.contains("`--allow-dirty`"))).collect();
            let (why, fix) = (why.join("\n"), if ignored { IGNORED_FIX } else { "" });
            anyhow::anyhow!("cargo cannot list the files of {name} in {root}, nothing was uploaded:\n{why}{fix}")
        })?;
        let files = out.stdout.lines().map(|l| l.replace('\\', "/")).filter(|l| !l.is_empty()).collect();
        krate.listed = Some(files);
    }
    Ok(())
}

/// Each crate holds exactly its [`CratePlan::listed`] files, where set.
pub fn check_file_sets(crates: &[CratePlan]) -> anyhow::Result<()> {
    let mut problems = Vec::new();
    for krate in crates {
        let Some(listed) = &krate.listed else { continue };
        let packaged = all_files(&krate.packaged)?;
        let only = |a: &BTreeSet<String>, b| a.difference(b).take(10).cloned().collect::<Vec<_>>().join(", ");
        let (extra, missing) = (only(&packaged, listed), only(listed, &packaged));
        if !extra.is_empty() || !missing.is_empty() {
            problems.push(format!(
                "{} {}: packaged but not in `cargo package --list`: [{extra}]; listed but not packaged: \
                 [{missing}]",
                krate.name, krate.version
            ));
        }
    }
    let problems = problems.join("\n");
    ensure!(
        problems.is_empty(),
        "the packages differ from `cargo package --list` in your tree, nothing was uploaded:\n\
         {problems}{IGNORED_FIX}"
    );
    Ok(())
}

/// Every file under `root`, relative and `/`-separated.
pub(super) fn all_files(root: &Utf8Path) -> anyhow::Result<BTreeSet<String>> {
    let mut found = BTreeSet::new();
    let mut stack = vec![root.to_owned()];
    while let Some(dir) = stack.pop() {
        for entry in dir.read_dir_utf8().with_context(|| format!("cannot list {dir}"))? {
            let path = entry.with_context(|| format!("cannot list {dir}"))?.into_path();
            if path.is_dir() {
                stack.push(path);
            } else {
                found.insert(path.strip_prefix(root)?.as_str().replace('\\', "/"));
            }
        }
    }
    Ok(found)
}
#[cfg(test)]
mod tests {
    use camino::Utf8PathBuf;

    use super::*;

    #[test]
    fn generated_files_do_not_count_and_real_changes_do() {
        let base = Utf8PathBuf::try_from(std::env::temp_dir())
            .unwrap()
            .join(format!("xtask-compare-{}", std::process::id()));
        let (a, b) = (base.join("a"), base.join("b"));
        for (dir, lib, lock) in [(&a, "fn a() {}", "one"), (&b, "fn a() {}", "two")] {
            std::fs::create_dir_all(dir.join("src")).unwrap();
            std::fs::write(dir.join("src/lib.rs"), lib).unwrap();
            std::fs::write(dir.join("Cargo.lock"), lock).unwrap();
            std::fs::write(dir.join("Cargo.toml"), format!("# normalized {lock}")).unwrap();
            std::fs::write(dir.join("Cargo.toml.orig"), "[package]").unwrap();
        }
        // Cargo's mark on the feed's copy it unpacked.
        std::fs::write(b.join(".cargo-ok"), "{\"v\":1}").unwrap();
        assert_eq!(differences(&a, &b, None).unwrap(), Vec::<String>::new());
        std::fs::write(b.join("src/lib.rs"), "fn b() {}").unwrap();
        std::fs::write(b.join("src/extra.rs"), "").unwrap();
        std::fs::write(a.join("Cargo.toml.orig"), "[package]\nversion = \"1\"").unwrap();
        std::fs::write(a.join("src/ours.rs"), "").unwrap();
        assert_eq!(
            differences(&a, &b, None).unwrap(),
            [
                "Cargo.toml.orig",
                "src/extra.rs (only in the registry's)",
                "src/lib.rs",
                "src/ours.rs (only in this run's package)"
            ]
        );
        std::fs::remove_dir_all(&base).unwrap();
    }

    /// A package that does not hold exactly cargo's list stops the run, naming the
    /// files on each side.
    #[test]
    fn a_package_differing_from_cargo_s_list_is_named() {
        let base = Utf8PathBuf::try_from(std::env::temp_dir())
            .unwrap()
            .join(format!("xtask-listed-{}", std::process::id()));
        std::fs::create_dir_all(base.join("src")).unwrap();
        for file in ["Cargo.toml", "src/lib.rs", "extra.txt"] {
            std::fs::write(base.join(file), "").unwrap();
        }
        let listed = |files: &[&str]| Some(files.iter().map(|f| f.to_string()).collect());
        let mut krate = CratePlan {
            name: "a".into(),
            version: "0.1.0".into(),
            dir: base.clone(),
            is_dependency: false,
            packaged: base.clone(),
            listed: listed(&["Cargo.toml", "extra.txt", "src/lib.rs"]),
            outcome: super::super::Outcome::Missing,
        };
        check_file_sets(std::slice::from_ref(&krate)).unwrap();
        krate.listed = listed(&["Cargo.toml", "extra.txt", "src/lib.rs", "README.md"]);
        assert!(check_file_sets(std::slice::from_ref(&krate)).is_err(), "a listed file missing passed");
        krate.listed = listed(&["Cargo.toml", "src/lib.rs", "README.md"]);
        let msg = format!("{:#}", check_file_sets(std::slice::from_ref(&krate)).unwrap_err());
        assert!(msg.contains("a 0.1.0: packaged but not in `cargo package --list`: [extra.txt]"), "{msg}");
        assert!(
            msg.contains("listed but not packaged: [README.md]") && msg.contains("nothing was uploaded"),
            "{msg}"
        );
        std::fs::remove_dir_all(&base).unwrap();
    }

    #[test]
    fn the_next_version_offered_follows_the_one_refused() {
        let cases = [
            ("0.1.2", "0.1.3"),
            ("1.0.0+b.5", "1.0.1"),
            ("0.1.2-rc.1", "0.1.2-rc.1.1"),
            ("0.1.2-20240416", "0.1.2-20240416.1"),
        ];
        for (version, next) in cases {
            assert_eq!(next_version(version), next, "{version}");
        }
    }

    /// Inherited values live only in the normalized manifest: a change of the root
    /// manifest alone shows there, while layout and what newer cargo spells out do not.
    #[test]
    fn the_normalized_manifest_is_compared_as_data() {
        let base = Utf8PathBuf::try_from(std::env::temp_dir())
            .unwrap()
            .join(format!("xtask-manifest-{}", std::process::id()));
        let (a, b) = (base.join("a"), base.join("b"));
        for dir in [&a, &b] {
            std::fs::create_dir_all(dir).unwrap();
            std::fs::write(dir.join("build.rs"), "fn main() {}").unwrap();
        }
        let newer = "# generated by cargo\n[package]\nedition = \"2021\"\nname = \"my-crate\"\nautobins = false\n\
                     build = \"build.rs\"\nlicense = \"MIT\"\n\n[lib]\nname = \"my_crate\"\npath = \"src/lib.rs\"\n\n\
                     [[test]]\nname = \"t\"\npath = \"tests/t.rs\"\n\n\
                     [dependencies.dep]\nversion = \"=0.1.0\"\nfeatures = [\"std\"]\n";
        let older = "[package]\nname = \"my-crate\"\nedition = \"2021\"\nlicense = \"MIT\"\n\
                     [dependencies]\ndep = { features = [\"std\"], version = \"=0.1.0\" }\n";
        std::fs::write(a.join("Cargo.toml"), newer).unwrap();
        std::fs::write(b.join("Cargo.toml"), older).unwrap();
        assert_eq!(differences(&a, &b, None).unwrap(), Vec::<String>::new());
        let changed = older.replace("2021", "2018").replace("\"std\"", "").replace("MIT", "Apache-2.0");
        std::fs::write(b.join("Cargo.toml"), changed).unwrap();
        assert_eq!(
            differences(&a, &b, None).unwrap(),
            [
                "Cargo.toml: dependencies.dep.features ([\"std\"] here, [] in the registry's)",
                "Cargo.toml: package.edition (\"2021\" here, \"2018\" in the registry's)",
                "Cargo.toml: package.license (\"MIT\" here, \"Apache-2.0\" in the registry's)",
            ]
        );
        // A dependency named by the index the run packaged against, which stands for the feed.
        let local =
            "[dependencies.dep]\nversion = \"=0.1.0\"\nregistry-index = \"file:///work/empty-index\"\n";
        let feed = "[dependencies.dep]\nversion = \"=0.1.0\"\nregistry-index = \"sparse+http://feed/\"\n";
        std::fs::write(a.join("Cargo.toml"), local).unwrap();
        std::fs::write(b.join("Cargo.toml"), feed).unwrap();
        assert_eq!(differences(&a, &b, None).unwrap().len(), 1);
        let index = Some(("file:///work/empty-index", "sparse+http://feed/"));
        assert_eq!(differences(&a, &b, index).unwrap(), Vec::<String>::new());
        std::fs::write(a.join("Cargo.toml"), newer).unwrap();
        std::fs::write(b.join("Cargo.toml"), older.replace("license", "build = false\nlicense")).unwrap();
        assert_eq!(
            differences(&a, &b, None).unwrap(),
            ["Cargo.toml: package.build (\"build.rs\" here, false in the registry's)"]
        );
        std::fs::remove_dir_all(&base).unwrap();
    }
}
