//! "The feed has NAME@VERSION" is not "the feed has what this run would publish":
//! the same version may have come from other sources. So what the feed has is
//! fetched through cargo (`cargo vendor`: its own download, auth and checksums) and
//! compared with what was packaged, file by file and the normalized `Cargo.toml` as
//! data. What a cargo release changes for the same sources is left out (generated
//! files, layout, keys newer cargo spells out), so a newer cargo is no false alarm.
//! It also checks each package holds exactly cargo's `package --list` ([`cargo_lists`]).

use std::collections::{BTreeMap, BTreeSet};

use anyhow::{Context, bail};
use camino::{Utf8Path, Utf8PathBuf};
use toml_edit::{DocumentMut, Item, Table, Value};

use super::engine::{CratePlan, Engine, tail};
use crate::run;

const GENERATED: [&str; 4] = ["Cargo.lock", ".cargo_vcs_info.json", ".cargo-checksum.json", ".cargo-ok"];

/// The feed's sources of `crates` (name, version), each in `<dir>/<name>-<version>`.
pub fn feed_sources(engine: &mut Engine, crates: &[(&str, &str)]) -> anyhow::Result<Utf8PathBuf> {
    let probe = engine.work().join("feed-sources");
    let vendor = probe.join("vendor");
    scratch(engine, &probe, crates)?;
    let feed = engine.registry().name.clone();
    if let Err(failed) = engine.cargo(&probe, &["vendor", "--versioned-dirs", vendor.as_str()], false)? {
        bail!(
            "cannot fetch what {feed} has for {} to compare it with this run's packages; nothing was \
             uploaded:\n{}",
            crates.iter().map(|(n, v)| format!("{n} {v}")).collect::<Vec<_>>().join(", "),
            tail(&failed.stderr)
        );
    }
    Ok(vendor)
}

/// Whether the feed has `name` at `version` yanked, asked when `cargo info` did not
/// find it (cargo shows no yanked version): cargo resolves a scratch package that
/// requires exactly that version, and says when it is yanked. `None`: cargo
/// failed for another reason, its stderr given.
pub fn yanked(engine: &mut Engine, name: &str, version: &str) -> anyhow::Result<Result<bool, String>> {
    let probe = engine.work().join(format!("yanked-{name}"));
    scratch(engine, &probe, &[(name, version)])?;
    let ran = engine.cargo(&probe, &["generate-lockfile"], false)?;
    let _ = std::fs::remove_dir_all(&probe);
    let stderr = match &ran {
        Ok(out) => &out.stderr,
        Err(failed) => &failed.stderr,
    };
    if stderr.contains(&format!("version {version} is yanked")) {
        return Ok(Ok(true));
    }
    // Resolved (then it is in the feed after all), or not found.
    let absent = ["failed to select a version", "no matching package named"];
    if ran.is_ok() || absent.iter().any(|a| stderr.contains(a)) {
        return Ok(Ok(false));
    }
    Ok(Err(stderr.clone()))
}

/// A package at `dir`, its own workspace, depending on each of `crates` (name,
/// version) at exactly that version from the engine's feed.
fn scratch(engine: &Engine, dir: &Utf8Path, crates: &[(&str, &str)]) -> anyhow::Result<()> {
    std::fs::create_dir_all(dir.join("src")).with_context(|| format!("cannot create {dir}"))?;
    let feed = &engine.registry().name;
    let registry =
        if engine.registry().is_crates_io() { String::new() } else { format!(", registry = \"{feed}\"") };
    let mut manifest = String::from(
        "[package]\nname = \"hyperlight-xtask-feed-sources\"\nversion = \"0.0.0\"\nedition = \"2021\"\n\
         publish = false\n\n[dependencies]\n",
    );
    for (name, version) in crates {
        manifest.push_str(&format!("{name} = {{ version = \"={version}\"{registry} }}\n"));
    }
    manifest.push_str("\n# Its own workspace, never part of one further up.\n[workspace]\n");
    std::fs::write(dir.join("Cargo.toml"), manifest)
        .with_context(|| format!("cannot write {dir}/Cargo.toml"))?;
    std::fs::write(dir.join("src").join("lib.rs"), "").with_context(|| format!("cannot write {dir}/src"))
}

/// The files (relative, `/`-separated) that differ between two unpacked packages,
/// or exist in one only, and the keys of the normalized manifests that differ.
/// Generated files are left out. `index`: the URL our packages name the feed by
/// (the run's empty index, packaged against) and the feed's own, which cargo
/// writes into a published manifest as a dependency's `registry-index`.
pub fn differences(
    ours: &Utf8Path,
    theirs: &Utf8Path,
    index: Option<(&str, &str)>,
) -> anyhow::Result<Vec<String>> {
    let (a, b) = (files(ours)?, files(theirs)?);
    let mut differ = Vec::new();
    for path in a.union(&b) {
        let same = match (a.contains(path), b.contains(path)) {
            (true, true) => {
                let read = |root: &Utf8Path| {
                    std::fs::read(root.join(path)).with_context(|| format!("cannot read {root}/{path}"))
                };
                if path == "Cargo.toml" {
                    let keys = manifest_differences(ours, theirs, index)?;
                    differ.extend(keys.into_iter().map(|k| format!("Cargo.toml: {k}")));
                    continue;
                }
                read(ours)? == read(theirs)?
            }
            _ => false,
        };
        if !same {
            let note = match (a.contains(path), b.contains(path)) {
                (true, false) => " (only in this run's package)",
                (false, true) => " (only in the feed's)",
                _ => "",
            };
            differ.push(format!("{path}{note}"));
        }
    }
    Ok(differ)
}

/// A table, array or value of a manifest as data: no layout, no comments, no order
/// of keys, inline and standard tables alike.
#[derive(Clone, Debug, PartialEq)]
enum Data {
    Table(BTreeMap<String, Data>),
    Array(Vec<Data>),
    Scalar(String),
}

impl Data {
    /// Every value equal to `from` becomes `to`.
    fn replace(&mut self, from: &Data, to: &Data) {
        match self {
            Data::Table(table) => table.values_mut().for_each(|d| d.replace(from, to)),
            Data::Array(items) => items.iter_mut().for_each(|d| d.replace(from, to)),
            scalar if scalar == from => *scalar = to.clone(),
            Data::Scalar(_) => {}
        }
    }
}

fn item_data(item: &Item) -> Option<Data> {
    match item {
        Item::None => None,
        Item::Value(value) => Some(value_data(value)),
        Item::Table(table) => Some(table_data(table)),
        Item::ArrayOfTables(array) => Some(Data::Array(array.iter().map(table_data).collect())),
    }
}

fn table_data(table: &Table) -> Data {
    Data::Table(table.iter().filter_map(|(k, item)| Some((k.to_owned(), item_data(item)?))).collect())
}

fn value_data(value: &Value) -> Data {
    match value {
        Value::Array(array) => Data::Array(array.iter().map(value_data).collect()),
        Value::InlineTable(table) => {
            Data::Table(table.iter().map(|(k, v)| (k.to_owned(), value_data(v))).collect())
        }
        Value::String(s) => Data::Scalar(format!("{:?}", s.value())),
        Value::Integer(i) => Data::Scalar(i.value().to_string()),
        Value::Float(f) => Data::Scalar(f.value().to_string()),
        Value::Boolean(b) => Data::Scalar(b.value().to_string()),
        Value::Datetime(d) => Data::Scalar(d.value().to_string()),
    }
}

/// The normalized `Cargo.toml` of the unpacked package at `dir` as data, less what
/// a cargo release changes for the same sources (see the module's comment).
fn manifest_data(dir: &Utf8Path) -> anyhow::Result<BTreeMap<String, Data>> {
    let path = dir.join("Cargo.toml");
    let text = std::fs::read_to_string(&path).with_context(|| format!("cannot read {path}"))?;
    let doc: DocumentMut = text.parse().with_context(|| format!("{path} is not TOML"))?;
    let Data::Table(mut data) = table_data(doc.as_table()) else { unreachable!("a table") };
    for target in ["example", "test", "bench"] {
        data.remove(target);
    }
    let mut name = String::new();
    if let Some(Data::Table(package)) = data.get_mut("package") {
        package.retain(|key, _| !key.starts_with("auto"));
        let discovered = if dir.join("build.rs").is_file() { "\"build.rs\"" } else { "false" };
        package.entry("build".into()).or_insert_with(|| Data::Scalar(discovered.into()));
        if let Some(Data::Scalar(n)) = package.get("name") {
            name = n.trim_matches('"').replace('-', "_");
        }
    }
    if let Some(Data::Table(lib)) = data.get_mut("lib") {
        lib.retain(|key, value| {
            let default = match key.as_str() {
                "name" => format!("{name:?}"),
                "path" => "\"src/lib.rs\"".into(),
                _ => return true,
            };
            *value != Data::Scalar(default)
        });
        if lib.is_empty() {
            data.remove("lib");
        }
    }
    Ok(data)
}

/// The keys whose values differ between the normalized manifests of two unpacked
/// packages, dotted, with both values where they are plain values.
fn manifest_differences(
    ours: &Utf8Path,
    theirs: &Utf8Path,
    index: Option<(&str, &str)>,
) -> anyhow::Result<Vec<String>> {
    let mut found = Vec::new();
    let (mut a, b) = (manifest_data(ours)?, manifest_data(theirs)?);
    if let Some((packaged, feed)) = index {
        let (from, to) = (Data::Scalar(format!("{packaged:?}")), Data::Scalar(format!("{feed:?}")));
        a.values_mut().for_each(|data| data.replace(&from, &to));
    }
    diff_tables("", &a, &b, &mut found);
    Ok(found)
}

fn diff_tables(at: &str, a: &BTreeMap<String, Data>, b: &BTreeMap<String, Data>, found: &mut Vec<String>) {
    let keys: BTreeSet<&String> = a.keys().chain(b.keys()).collect();
    for key in keys {
        let path = if at.is_empty() { key.clone() } else { format!("{at}.{key}") };
        match (a.get(key), b.get(key)) {
            (Some(Data::Table(x)), Some(Data::Table(y))) => diff_tables(&path, x, y, found),
            (Some(x), Some(y)) if x == y => {}
            (x, y) => found.push(format!("{path} ({} here, {} in the feed's)", shown(x), shown(y))),
        }
    }
}

fn shown(data: Option<&Data>) -> String {
    match data {
        None => "absent".into(),
        Some(Data::Scalar(s)) => s.clone(),
        Some(Data::Array(items)) => {
            let all: Option<Vec<&str>> =
                items.iter().map(|i| if let Data::Scalar(s) = i { Some(s.as_str()) } else { None }).collect();
            all.map_or_else(|| "a list".into(), |all| format!("[{}]", all.join(", ")))
        }
        Some(Data::Table(_)) => "a table".into(),
    }
}

/// The files `cargo package --list -p NAME` gives for each of `names` in the
/// workspace at `root` (the user's tree, read only: cargo's target dir goes to
/// `target`). Without `allow_dirty`, cargo refuses uncommitted files of a package,
/// naming them. Needs no feed and no credentials.
pub fn cargo_lists(
    engine: &Engine,
    root: &Utf8Path,
    names: &[&str],
    allow_dirty: bool,
) -> anyhow::Result<BTreeMap<String, BTreeSet<String>>> {
    let target = engine.work().join("list-target");
    let mut lists = BTreeMap::new();
    for name in names {
        let mut args = vec!["package", "--list", "-p", name, "--target-dir", target.as_str()];
        if allow_dirty {
            args.push("--allow-dirty");
        }
        let mut program = run::cargo(root, &args).label(format!("cargo package --list -p {name}"));
        if !engine.registry().is_crates_io() {
            program = program.env(&engine.registry().env_var("index"), &engine.registry().index);
        }
        let out = match program.output() {
            Ok(out) => out,
            Err(err) if err.stderr().is_some() => bail!(
                "cargo cannot list the files of {name} in {root}, nothing was uploaded:\n{}",
                tail(err.stderr().unwrap_or_default())
            ),
            Err(err) => return Err(err.into()),
        };
        let files = out.stdout.lines().map(|l| l.replace('\\', "/")).filter(|l| !l.is_empty()).collect();
        lists.insert(name.to_string(), files);
    }
    Ok(lists)
}

/// Each crate of `crates` holds exactly the files cargo listed for it in the
/// user's tree ([`CratePlan::listed`], where set); else an error naming each
/// file in one and not the other, before anything is uploaded.
pub fn check_file_sets(crates: &[CratePlan]) -> anyhow::Result<()> {
    let mut problems = Vec::new();
    for krate in crates {
        let Some(listed) = &krate.listed else { continue };
        let packaged = all_files(&krate.packaged)?;
        let only = |a: &BTreeSet<String>, b: &BTreeSet<String>| -> Vec<String> {
            a.difference(b).take(10).cloned().collect()
        };
        let (extra, missing) = (only(&packaged, listed), only(listed, &packaged));
        if !extra.is_empty() || !missing.is_empty() {
            problems.push(format!(
                "{} {}: packaged but not in `cargo package --list`: [{}]; listed but not packaged: [{}]",
                krate.name,
                krate.version,
                extra.join(", "),
                missing.join(", ")
            ));
        }
    }
    if problems.is_empty() {
        return Ok(());
    }
    bail!(
        "the packages differ from what `cargo package --list` gives in your tree, nothing was uploaded:\n{}\n\
         This is a defect of the xtask's copy of the repository: please report it with this message",
        problems.join("\n")
    )
}

/// Every file under `root`, relative and `/`-separated.
fn all_files(root: &Utf8Path) -> anyhow::Result<BTreeSet<String>> {
    let mut found = BTreeSet::new();
    let mut stack = vec![root.to_owned()];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir).with_context(|| format!("cannot list {dir}"))? {
            let path = Utf8PathBuf::try_from(entry?.path())?;
            if path.is_dir() {
                stack.push(path);
            } else {
                found.insert(path.strip_prefix(root)?.as_str().replace('\\', "/"));
            }
        }
    }
    Ok(found)
}

/// Every file under `root`, relative, less the generated ones at its top.
fn files(root: &Utf8Path) -> anyhow::Result<BTreeSet<String>> {
    if !root.is_dir() {
        bail!("{root} is missing: nothing to compare");
    }
    let mut found = BTreeSet::new();
    let mut stack = vec![String::new()];
    while let Some(dir) = stack.pop() {
        let path = if dir.is_empty() { root.to_owned() } else { root.join(&dir) };
        for entry in std::fs::read_dir(&path).with_context(|| format!("cannot list {path}"))? {
            let entry = entry?;
            let name = entry
                .file_name()
                .into_string()
                .map_err(|n| anyhow::anyhow!("{path}: a name that is not UTF-8: {n:?}"))?;
            let relative = if dir.is_empty() { name.clone() } else { format!("{dir}/{name}") };
            if entry.file_type()?.is_dir() {
                stack.push(relative);
            } else if !(dir.is_empty() && GENERATED.contains(&name.as_str())) {
                found.insert(relative);
            }
        }
    }
    Ok(found)
}

#[cfg(test)]
mod tests {
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
        std::fs::write(b.join(".cargo-checksum.json"), "{}").unwrap();
        assert_eq!(differences(&a, &b, None).unwrap(), Vec::<String>::new());
        std::fs::write(b.join("src/lib.rs"), "fn b() {}").unwrap();
        std::fs::write(b.join("src/extra.rs"), "").unwrap();
        std::fs::write(a.join("Cargo.toml.orig"), "[package]\nversion = \"1\"").unwrap();
        assert_eq!(
            differences(&a, &b, None).unwrap(),
            ["Cargo.toml.orig", "src/extra.rs (only in the feed's)", "src/lib.rs"]
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
        krate.listed = listed(&["Cargo.toml", "src/lib.rs", "README.md"]);
        let msg = format!("{:#}", check_file_sets(std::slice::from_ref(&krate)).unwrap_err());
        assert!(msg.contains("a 0.1.0: packaged but not in `cargo package --list`: [extra.txt]"), "{msg}");
        assert!(
            msg.contains("listed but not packaged: [README.md]") && msg.contains("nothing was uploaded"),
            "{msg}"
        );
        std::fs::remove_dir_all(&base).unwrap();
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
        assert_eq!(manifest_differences(&a, &b, None).unwrap(), Vec::<String>::new());
        let changed = older.replace("2021", "2018").replace("\"std\"", "").replace("MIT", "Apache-2.0");
        std::fs::write(b.join("Cargo.toml"), changed).unwrap();
        assert_eq!(
            manifest_differences(&a, &b, None).unwrap(),
            [
                "dependencies.dep.features ([\"std\"] here, [] in the feed's)",
                "package.edition (\"2021\" here, \"2018\" in the feed's)",
                "package.license (\"MIT\" here, \"Apache-2.0\" in the feed's)",
            ]
        );
        // A dependency named by the index the run packaged against, which stands for the feed.
        let local =
            "[dependencies.dep]\nversion = \"=0.1.0\"\nregistry-index = \"file:///work/empty-index\"\n";
        let feed = "[dependencies.dep]\nversion = \"=0.1.0\"\nregistry-index = \"sparse+http://feed/\"\n";
        std::fs::write(a.join("Cargo.toml"), local).unwrap();
        std::fs::write(b.join("Cargo.toml"), feed).unwrap();
        assert_eq!(manifest_differences(&a, &b, None).unwrap().len(), 1);
        let index = Some(("file:///work/empty-index", "sparse+http://feed/"));
        assert_eq!(manifest_differences(&a, &b, index).unwrap(), Vec::<String>::new());
        std::fs::write(a.join("Cargo.toml"), newer).unwrap();
        std::fs::write(b.join("Cargo.toml"), older.replace("license", "build = false\nlicense")).unwrap();
        assert_eq!(
            differences(&a, &b, None).unwrap(),
            ["Cargo.toml: package.build (\"build.rs\" here, false in the feed's)"]
        );
        std::fs::remove_dir_all(&base).unwrap();
    }
}
