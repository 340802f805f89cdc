//! Reading and rewriting manifests; [`rewrite`] is text to text: every shape is tested without git or cargo.

use anyhow::{bail, ensure};
use camino::{Utf8Path, Utf8PathBuf};
use toml_edit::{DocumentMut, InlineTable, Item, Key, RawString, TableLike, Value};

use crate::toml_file;

/// The kind of a dependency table.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Kind {
    #[default]
    Normal,
    Build,
    Dev,
    /// `[workspace.dependencies]` of the root manifest: what members inherit.
    Workspace,
}

/// A dependency as a manifest writes it or `cargo metadata` reads it.
#[derive(Clone, Default)]
pub struct Dep {
    pub kind: Kind,
    /// `rename`, else the package.
    pub key: String,
    pub package: String,
    /// Relative to the workspace root when inside it (`cargo metadata`).
    pub path: Option<String>,
    pub requirement: Option<String>,
    /// `workspace = true`: inherited from `[workspace.dependencies]` (the manifest only).
    pub inherited: bool,
    /// The `cfg` of a `[target]` table (`cargo metadata` only, as the two below).
    pub target: Option<String>,
    /// The index URL; None for crates.io or a path-only dependency.
    pub registry: Option<String>,
    pub source: Option<String>,
}

impl Dep {
    /// Whether `cargo publish` keeps it: it drops path dev-dependencies with no version.
    pub fn published(&self) -> bool {
        self.kind != Kind::Dev || self.requirement.is_some() || self.path.is_none()
    }

    pub fn table(&self) -> String {
        // The first spelling of the kind's table; `[workspace.dependencies]` reads as `dependencies`.
        let table = DEPENDENCY_TABLES.iter().find(|t| t.1 == self.kind).map_or("dependencies", |t| t.0);
        self.target.as_ref().map_or(table.to_owned(), |cfg| format!("target.'{cfg}'.{table}"))
    }

    /// Where a dependency without a `path` comes from (`cargo metadata`'s fields).
    pub fn origin(&self) -> String {
        match (&self.registry, &self.source) {
            (Some(r), _) => format!("the registry at {r}"),
            (None, Some(git)) if git.starts_with("git+") => format!("the git repository {git}"),
            _ => "crates.io".to_owned(),
        }
    }
}

const DEPENDENCY_TABLES: [(&str, Kind); 5] = [
    ("dependencies", Kind::Normal),
    ("build-dependencies", Kind::Build),
    // The legacy spellings cargo still reads.
    ("build_dependencies", Kind::Build),
    ("dev-dependencies", Kind::Dev),
    ("dev_dependencies", Kind::Dev),
];

/// Calls `f` for every dependency table, with its name for messages.
fn for_each_table(doc: &mut DocumentMut, f: Visit) -> anyhow::Result<()> {
    let root = doc.as_table_mut();
    tables(root, "", &DEPENDENCY_TABLES, f)?;
    if let Some(targets) = root.get_mut("target").and_then(Item::as_table_like_mut) {
        for (cfg, target) in targets.iter_mut() {
            let Some(target) = target.as_table_like_mut() else { continue };
            tables(target, &format!("target.'{}'.", cfg.get()), &DEPENDENCY_TABLES, f)?;
        }
    }
    match root.get_mut("workspace").and_then(Item::as_table_like_mut) {
        Some(workspace) => tables(workspace, "workspace.", &[("dependencies", Kind::Workspace)], f),
        None => Ok(()),
    }
}

type Visit<'f> = &'f mut dyn FnMut(&str, Kind, &mut dyn TableLike) -> anyhow::Result<()>;

fn tables(parent: &mut dyn TableLike, prefix: &str, names: &[(&str, Kind)], f: Visit) -> anyhow::Result<()> {
    for &(name, kind) in names {
        if let Some(table) = parent.get_mut(name).and_then(Item::as_table_like_mut) {
            f(&format!("{prefix}{name}"), kind, table)?;
        }
    }
    Ok(())
}

fn describe(kind: Kind, key: &str, item: &Item) -> Dep {
    let get = |k: &str| item.as_table_like().and_then(|t| t.get(k));
    Dep {
        kind,
        key: key.to_owned(),
        package: get("package").and_then(Item::as_str).unwrap_or(key).to_owned(),
        path: get("path").and_then(Item::as_str).map(str::to_owned),
        // A bare string is a version requirement.
        requirement: item.as_str().or_else(|| get("version").and_then(Item::as_str)).map(str::to_owned),
        inherited: get("workspace").and_then(Item::as_bool) == Some(true),
        ..Dep::default()
    }
}

pub fn dependencies(path: &Utf8Path, text: &str) -> anyhow::Result<Vec<Dep>> {
    let mut deps = Vec::new();
    for_each_table(&mut toml_file::parse(path, text)?, &mut |_, kind, entries| {
        deps.extend(entries.iter().map(|(key, item)| describe(kind, key, item)));
        Ok(())
    })?;
    Ok(deps)
}

#[derive(Clone, Copy)]
pub struct Rewrite<'a> {
    /// `registry = "…"` on each pinned entry (None for crates.io, cargo's default).
    pub registry: Option<&'a str>,
    /// Package name → version published.
    pub pins: &'a [(String, String)],
    /// A new `package.version` (`--version`).
    pub package_version: Option<&'a str>,
    pub requirement: Requirement,
}

pub fn pinned<'a>(pins: &'a [(String, String)], name: &str) -> Option<&'a str> {
    pins.iter().find(|(n, _)| n == name).map(|(_, version)| version.as_str())
}

/// The requirement a rewritten dependency gets.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Requirement {
    /// `=X` (publish-redist, whose crates must not mix with other versions in the feed).
    Exact,
    /// The entry's own operator with the new version (publish `--version`).
    KeepOperator,
    /// The entry's requirement as it is (publish: cargo checks it takes the version).
    Keep,
}

impl Requirement {
    fn apply(self, old: Option<&str>, version: &str, place: &str) -> anyhow::Result<String> {
        let old = match (self, old.map(str::trim)) {
            (Requirement::Exact, _) => return Ok(format!("={version}")),
            (_, None) => return Ok(version.to_owned()),
            (Requirement::Keep, Some(old)) => return Ok(old.to_owned()),
            (Requirement::KeepOperator, Some(old)) => old,
        };
        ensure!(
            !old.contains([',', '*']),
            "{place} requires `{old}`, which has no one operator to keep: write it as a single \
                 requirement such as `0.1.0` or `=0.1.0`"
        );
        let operator_len = old.find(|c: char| c.is_ascii_digit()).unwrap_or(old.len());
        Ok(format!("{}{version}", old[..operator_len].trim()))
    }
}

/// `text` with each path dependency on a pinned crate given its version and feed; the root's
/// entries only for `root_needs`, lest cargo publish path-only dev-dependencies.
pub fn rewrite(
    path: &Utf8Path,
    text: &str,
    rewrite: &Rewrite,
    root_needs: &[String],
) -> anyhow::Result<String> {
    let mut doc = toml_file::parse(path, text)?;
    // Selected crates have a `package.version`: cargo reads none as 0.0.0, which is refused.
    if let Some(version) = rewrite.package_version
        && let Some(old) = doc.get_mut("package").and_then(|package| package.get_mut("version"))
    {
        // Keeping a comment, over `version.workspace = true` (a dotted table) the one of its `true`.
        let mut new = Value::from(version);
        if let Some(value) = old.as_value().or_else(|| old.get("workspace").and_then(Item::as_value)) {
            *new.decor_mut() = value.decor().clone();
        }
        *old = Item::Value(new);
    }
    for_each_table(&mut doc, &mut |table, kind, entries| {
        for (key, item) in entries.iter_mut() {
            let dep = describe(kind, key.get(), item);
            let Some(version) = pinned(rewrite.pins, &dep.package) else { continue };
            let root_needs_it =
                kind != Kind::Workspace || dep.requirement.is_some() || root_needs.contains(&dep.key);
            if dep.path.is_none() || dep.inherited || !dep.published() || !root_needs_it {
                continue;
            }
            let place = format!("{table}.{} in {path}", dep.key);
            let requirement = rewrite.requirement.apply(dep.requirement.as_deref(), version, &place)?;
            pin(item, &requirement, rewrite.registry);
        }
        Ok(())
    })?;
    let mut out = doc.to_string();
    // toml_edit ends the last line with a newline even when the file did not.
    if !text.ends_with('\n') && out.ends_with('\n') {
        out.pop();
    }
    Ok(out)
}

/// Sets `version` and `registry` on one entry, in place keeping comments, or appended styled as its keys.
fn pin(item: &mut Item, version: &str, registry: Option<&str>) {
    // `registry-index` and `registry` exclude each other; crates.io is neither, and
    // refuses (at the upload) a dependency from a feed that a manifest laid out for it names.
    let entry = item.as_table_like_mut().expect("an entry with a path is a table");
    entry.remove("registry-index");
    if registry.is_none() {
        entry.remove("registry");
    }
    let pairs = std::iter::once(("version", version)).chain(registry.map(|r| ("registry", r)));
    for (key, value) in pairs {
        match item.as_inline_table_mut() {
            Some(table) if !table.contains_key(key) => append_inline(table, key, value),
            _ => {
                let table = item.as_table_like_mut().expect("an entry with a path is a table");
                toml_file::set_keeping_decor(table, key, value.into());
            }
        }
    }
}

/// Appends `key = "value"` to an inline table, one-line or spread over lines: the
/// new key is spaced as the last, whose spacing before `}` moves to the end.
fn append_inline(table: &mut InlineTable, key: &str, value: &str) {
    let (mut new_key, mut new_value) = (Key::new(key), Value::from(value));
    if let Some((last_key, last)) = table.iter_mut().last() {
        let text = |s: Option<&RawString>, default: &str| {
            s.and_then(RawString::as_str).unwrap_or(default).to_owned()
        };
        // Only a newline is copied from before the last key: the first has none after `{`.
        let prefix = last_key.leaf_decor().prefix().and_then(RawString::as_str).filter(|p| p.contains('\n'));
        new_key.leaf_decor_mut().set_prefix(prefix.unwrap_or(" ").to_owned());
        new_key.leaf_decor_mut().set_suffix(text(last_key.leaf_decor().suffix(), " "));
        new_value.decor_mut().set_prefix(text(last.decor().prefix(), " "));
        new_value.decor_mut().set_suffix(text(last.decor().suffix(), ""));
        last.decor_mut().set_suffix("");
    }
    table.insert_formatted(&new_key, new_value);
}

/// The keys of `[workspace.dependencies]` a crate to publish inherits as a normal or build
/// dependency; an error when one is also inherited as a dev-dependency, which cargo would
/// then publish. `files`: (path, shown path, selected, text), the root's first.
pub fn root_needs(files: &[(Utf8PathBuf, Utf8PathBuf, bool, String)]) -> anyhow::Result<Vec<String>> {
    let (mut needs, mut dev) = (Vec::new(), Vec::new());
    for (_, shown, _, text) in files.iter().filter(|f| f.2) {
        for dep in dependencies(shown, text)?.into_iter().filter(|d| d.inherited) {
            match dep.kind {
                Kind::Dev => dev.push((shown, dep.key)),
                _ => needs.push(dep.key),
            }
        }
    }
    let (_, root, _, text) = &files[0];
    let versionless: Vec<String> = dependencies(root, text)?
        .into_iter()
        .filter(|d| d.kind == Kind::Workspace && d.requirement.is_none())
        .map(|d| d.key)
        .collect();
    if let Some((member, key)) = dev.iter().find(|(_, k)| needs.contains(k) && versionless.contains(k)) {
        bail!(
            "`[workspace.dependencies] {key}` in {root} has no `version`: publishing gives it one, because a \
             crate to publish depends on it, and cargo would then publish the dev-dependency of {member} \
             on it too. Give that dev-dependency its own `path` (no `version`), or the root entry a `version`"
        );
    }
    Ok(needs)
}

/// `Cargo.lock` with `moved`'s workspace packages, and references to them, at new versions; the rest as is.
pub fn rewrite_lock(path: &Utf8Path, text: &str, moved: &[(&str, &str, &str)]) -> anyhow::Result<String> {
    let mut doc = toml_file::parse(path, text)?;
    let Some(packages) = doc.get_mut("package").and_then(Item::as_array_of_tables_mut) else {
        return Ok(text.to_owned());
    };
    for package in packages.iter_mut() {
        let [name, version] = ["name", "version"].map(|key| package.get(key).and_then(Item::as_str));
        if package.get("source").is_none()
            && let Some((_, _, new)) = moved.iter().find(|m| (Some(m.0), Some(m.1)) == (name, version))
        {
            toml_file::set_keeping_decor(package, "version", (*new).into());
        }
        let Some(deps) = package.get_mut("dependencies").and_then(Item::as_array_mut) else { continue };
        for i in 0..deps.len() {
            let reference = deps.get(i).and_then(Value::as_str).and_then(|r| r.split_once(' '));
            if let Some((name, _, new)) = moved.iter().find(|m| Some((m.0, m.1)) == reference) {
                deps.replace(i, format!("{name} {new}"));
            }
        }
    }
    Ok(doc.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pins(list: &[(&str, &str)]) -> Vec<(String, String)> {
        list.iter().map(|(n, v)| (n.to_string(), v.to_string())).collect()
    }

    fn run(text: &str, version: Option<&str>) -> String {
        let pins = pins(&[("mshv-bindings", "0.1.1"), ("mshv-ioctls", "0.1.1")]);
        let rw = Rewrite {
            registry: Some("hyperlight_redist"),
            pins: &pins,
            package_version: version,
            requirement: Requirement::Exact,
        };
        rewrite(Utf8Path::new("mshv-ioctls/Cargo.toml"), text, &rw, &[]).unwrap()
    }

    /// The manifest at the pin `52edcf4`: a one-line inline table, no newline at the
    /// end of the file.
    const AT_THE_PIN: &str = r#"[package]
name = "mshv-ioctls"
version = "0.1.1"
authors = ["Microsoft Authors"]
edition = "2018"
license = "Apache-2.0 OR BSD-3-Clause"

[dependencies]
libc = ">=0.2.39"
vmm-sys-util = ">=0.8.0"
serde = { version = ">=1.0.27", optional = true }
mshv-bindings = {path = "../mshv-bindings", features = ["fam-wrappers"]}"#;

    #[test]
    fn the_shape_at_the_pin() {
        let expected = AT_THE_PIN.replace(
            r#"features = ["fam-wrappers"]}"#,
            r#"features = ["fam-wrappers"], version = "=0.1.1", registry = "hyperlight_redist"}"#,
        );
        assert_eq!(run(AT_THE_PIN, None), expected);
        assert!(!expected.ends_with('\n'));
    }

    #[test]
    fn spaces_inside_the_braces_and_a_comment_after() {
        let text = "[dependencies]\nmshv-bindings = { path = \"../mshv-bindings\", features = [\"fam-wrappers\"] } # bindings\nlibc = \"0.2\"\n";
        let expected = "[dependencies]\nmshv-bindings = { path = \"../mshv-bindings\", features = [\"fam-wrappers\"], version = \"=0.1.1\", registry = \"hyperlight_redist\" } # bindings\nlibc = \"0.2\"\n";
        assert_eq!(run(text, None), expected);
    }

    /// Newer upstream revs: the table over several lines, a version already there,
    /// keys in another order, a trailing comma.
    #[test]
    fn a_multi_line_inline_table_with_a_version_already() {
        let text = r#"[dependencies]
libc = ">=0.2.39"
mshv-bindings = {
    version = "=0.3.1", # kept in step by scripts/tag_release.py
    features = ["fam-wrappers"],
    path = "../mshv-bindings",
}
thiserror = "2.0"
"#;
        let expected = r#"[dependencies]
libc = ">=0.2.39"
mshv-bindings = {
    version = "=0.1.1", # kept in step by scripts/tag_release.py
    features = ["fam-wrappers"],
    path = "../mshv-bindings",
    registry = "hyperlight_redist",
}
thiserror = "2.0"
"#;
        assert_eq!(run(text, None), expected);
    }

    #[test]
    fn a_multi_line_inline_table_without_a_trailing_comma() {
        let text = "[dependencies]\nmshv-bindings = {\n  features = [\"fam-wrappers\"],\n  path = \"../mshv-bindings\"\n}";
        let expected = "[dependencies]\nmshv-bindings = {\n  features = [\"fam-wrappers\"],\n  path = \"../mshv-bindings\",\n  version = \"=0.1.1\",\n  registry = \"hyperlight_redist\"\n}";
        assert_eq!(run(text, None), expected);
    }

    #[test]
    fn version_first_on_one_line() {
        let text = "[dependencies]\nmshv-bindings = {version = \"=0.3.1\", path = \"../mshv-bindings\", features = [\"fam-wrappers\"]}\n";
        let expected = "[dependencies]\nmshv-bindings = {version = \"=0.1.1\", path = \"../mshv-bindings\", features = [\"fam-wrappers\"], registry = \"hyperlight_redist\"}\n";
        assert_eq!(run(text, None), expected);
    }

    #[test]
    fn a_dependency_table_of_its_own() {
        let text = r#"[package]
name = "mshv-ioctls"
version = "0.1.1"

[dependencies.mshv-bindings]
# The bindings of this workspace.
path = "../mshv-bindings"
features = ["fam-wrappers"]

[dependencies]
libc = "0.2"
"#;
        let expected = r#"[package]
name = "mshv-ioctls"
version = "0.1.1"

[dependencies.mshv-bindings]
# The bindings of this workspace.
path = "../mshv-bindings"
features = ["fam-wrappers"]
version = "=0.1.1"
registry = "hyperlight_redist"

[dependencies]
libc = "0.2"
"#;
        assert_eq!(run(text, None), expected);
    }

    #[test]
    fn a_registry_index_gives_way_to_the_registry() {
        let text = "[dependencies]\nmshv-bindings = { path = \"../mshv-bindings\", registry-index = \"sparse+https://x/\", version = \"0.1\" }\n";
        let expected = "[dependencies]\nmshv-bindings = { path = \"../mshv-bindings\", version = \"=0.1.1\", registry = \"hyperlight_redist\" }\n";
        assert_eq!(run(text, None), expected);
    }

    /// Cargo drops path-only dev-dependencies when it publishes, so they stay as they
    /// are (pinning one that points back would make a cycle); a dev-dependency with a
    /// version is published, so it is pinned like any other.
    #[test]
    fn path_only_dev_dependencies_stay_as_they_are() {
        let text = "[package]\nname = \"mshv-bindings\"\nversion = \"0.1.1\"\n\n[dev-dependencies]\nmshv-ioctls = { path = \"../mshv-ioctls\" }\n";
        assert_eq!(run(text, None), text);
        let versioned =
            "[dev-dependencies]\nmshv-ioctls = { path = \"../mshv-ioctls\", version = \"0.1\" }\n";
        let expected = "[dev-dependencies]\nmshv-ioctls = { path = \"../mshv-ioctls\", version = \"=0.1.1\", registry = \"hyperlight_redist\" }\n";
        assert_eq!(run(versioned, None), expected);
    }

    #[test]
    fn build_target_and_renamed_dependencies() {
        let text = "[build-dependencies]\nmshv-bindings = { path = \"../mshv-bindings\" }\n\n[target.'cfg(unix)'.dependencies]\nbindings = { package = \"mshv-bindings\", path = \"../mshv-bindings\" }\n";
        let expected = "[build-dependencies]\nmshv-bindings = { path = \"../mshv-bindings\", version = \"=0.1.1\", registry = \"hyperlight_redist\" }\n\n[target.'cfg(unix)'.dependencies]\nbindings = { package = \"mshv-bindings\", path = \"../mshv-bindings\", version = \"=0.1.1\", registry = \"hyperlight_redist\" }\n";
        assert_eq!(run(text, None), expected);
    }

    #[test]
    fn other_dependencies_and_untouched_files_stay_byte_for_byte() {
        // `mshv-bindings` from crates.io: only a path dependency is the workspace's.
        let text = "[package]\nname = \"x\"\n\n[dependencies]\nlibc = {version=\"0.2\"}  # c\nother = { path = \"../other\" }\nmshv-bindings = { version = \"0.3\" }";
        assert_eq!(run(text, None), text);
    }

    #[test]
    fn workspace_dependencies_are_pinned_in_the_root_and_inherited_entries_left() {
        let root = "[workspace]\nmembers = [\"mshv-bindings\", \"mshv-ioctls\"]\n\n[workspace.dependencies]\nmshv-bindings = { path = \"mshv-bindings\", version = \"0.3\" }\n";
        let expected = "[workspace]\nmembers = [\"mshv-bindings\", \"mshv-ioctls\"]\n\n[workspace.dependencies]\nmshv-bindings = { path = \"mshv-bindings\", version = \"=0.1.1\", registry = \"hyperlight_redist\" }\n";
        assert_eq!(run(root, None), expected);
        let member = "[dependencies]\nmshv-bindings = { workspace = true, features = [\"fam-wrappers\"] }\n";
        assert_eq!(run(member, None), member);
    }

    #[test]
    fn a_new_version_replaces_the_package_version() {
        let pins = pins(&[("mshv-bindings", "0.1.2-20240321")]);
        let rw = Rewrite {
            registry: Some("hyperlight_redist"),
            pins: &pins,
            package_version: Some("0.1.2-20240321"),
            requirement: Requirement::Exact,
        };
        let out = rewrite(Utf8Path::new("Cargo.toml"), AT_THE_PIN, &rw, &[]).unwrap();
        let expected = AT_THE_PIN.replace("version = \"0.1.1\"", "version = \"0.1.2-20240321\"").replace(
            r#"features = ["fam-wrappers"]}"#,
            r#"features = ["fam-wrappers"], version = "=0.1.2-20240321", registry = "hyperlight_redist"}"#,
        );
        assert_eq!(out, expected);

        let inherited =
            "[package]\nname = \"a\"\nversion.workspace = true # from the root\nedition = \"2018\"\n";
        let out = rewrite(Utf8Path::new("Cargo.toml"), inherited, &rw, &[]).unwrap();
        assert_eq!(
            out,
            "[package]\nname = \"a\"\nversion = \"0.1.2-20240321\" # from the root\nedition = \"2018\"\n"
        );
    }

    /// Issue 14, 4: a path-only `[workspace.dependencies]` entry gets a version only
    /// when a crate to publish needs it as a dependency; one that only dev-dependents
    /// inherit stays path-only, so cargo still drops those dev-dependencies.
    #[test]
    fn a_path_only_root_entry_gets_a_version_only_when_a_dependency_needs_it() {
        let root = "[workspace.dependencies]\nmshv-bindings = { path = \"mshv-bindings\" }\n";
        let pins = pins(&[("mshv-bindings", "0.1.1")]);
        let rw = Rewrite {
            registry: Some("r"),
            pins: &pins,
            package_version: None,
            requirement: Requirement::Keep,
        };
        let path = Utf8Path::new("Cargo.toml");
        assert_eq!(rewrite(path, root, &rw, &[]).unwrap(), root);
        let needs = ["mshv-bindings".to_owned()];
        assert_eq!(
            rewrite(path, root, &rw, &needs).unwrap(),
            "[workspace.dependencies]\nmshv-bindings = { path = \"mshv-bindings\", version = \"0.1.1\", registry = \"r\" }\n"
        );
    }

    /// Refused only when one root entry is path-only, needed and a dev-dependency (the
    /// workspace test shows the refusal): a versioned entry or one only dev-dependents use is fine.
    #[test]
    fn root_needs_refuses_nothing_else() {
        let file = |name: &str, text: &str| (name.into(), name.into(), true, text.to_owned());
        let root = file(
            "Cargo.toml",
            "[workspace.dependencies]\nx = { path = \"x\" }\ny = { path = \"y\", version = \"0.1\" }\n",
        );
        let a = file(
            "a/Cargo.toml",
            "[dependencies]\ny = { workspace = true }\n[dev-dependencies]\nx = { workspace = true }\ny = { workspace = true }\n",
        );
        assert_eq!(root_needs(&[root, a]).unwrap(), ["y"]);
    }

    /// Without `--version` a requirement between members needs no rewrite (cargo
    /// already takes the version published), compound or not: only the registry.
    /// With it, a compound one is refused naming the file given, the user's.
    #[test]
    fn compound_requirements_are_kept_without_a_new_version() {
        let text =
            "[dependencies]\nmshv-bindings = { path = \"../mshv-bindings\", version = \">=0.1, <0.3\" }\n";
        let pins = pins(&[("mshv-bindings", "0.1.1")]);
        let mut rw = Rewrite {
            registry: Some("r"),
            pins: &pins,
            package_version: None,
            requirement: Requirement::Keep,
        };
        let path = Utf8Path::new("/home/me/hyperlight/src/a/Cargo.toml");
        let out = rewrite(path, text, &rw, &[]).unwrap();
        assert_eq!(out, text.replace("<0.3\" }", "<0.3\", registry = \"r\" }"));
        rw.requirement = Requirement::KeepOperator;
        let msg = format!("{:#}", rewrite(path, text, &rw, &[]).unwrap_err());
        assert!(msg.contains("in /home/me/hyperlight/src/a/Cargo.toml requires `>=0.1, <0.3`"), "{msg}");
    }

    #[test]
    fn dependencies_are_listed_with_what_publishing_needs() {
        let deps = dependencies(Utf8Path::new("Cargo.toml"), AT_THE_PIN).unwrap();
        let bindings = deps.iter().find(|d| d.package == "mshv-bindings").unwrap();
        assert_eq!(bindings.path.as_deref(), Some("../mshv-bindings"));
        assert!(bindings.requirement.is_none() && bindings.published() && bindings.kind == Kind::Normal);
        let libc = deps.iter().find(|d| d.key == "libc").unwrap();
        assert!(libc.requirement.is_some() && libc.path.is_none());
        let dev = Dep { kind: Kind::Dev, ..bindings.clone() };
        assert!(!dev.published());
    }

    #[test]
    fn the_lock_follows_the_new_versions_of_workspace_packages_only() {
        let lock = r#"# This file is automatically @generated by Cargo.
# It is not intended for manual editing.
version = 4

[[package]]
name = "a"
version = "0.1.0"
dependencies = [
 "b 0.1.0",
 "b 0.3.0",
 "c",
]

[[package]]
name = "b"
version = "0.1.0"

[[package]]
name = "b"
version = "0.3.0"
source = "registry+https://github.com/rust-lang/crates.io-index"
checksum = "0000000000000000000000000000000000000000000000000000000000000000"

[[package]]
name = "c"
version = "0.1.0"
"#;
        let moved = [("a", "0.1.0", "0.2.0-rc.1"), ("b", "0.1.0", "0.2.0-rc.1")];
        let out = rewrite_lock(Utf8Path::new("Cargo.lock"), lock, &moved).unwrap();
        let expected = lock
            .replacen("name = \"a\"\nversion = \"0.1.0\"", "name = \"a\"\nversion = \"0.2.0-rc.1\"", 1)
            .replacen("\"b 0.1.0\"", "\"b 0.2.0-rc.1\"", 1)
            .replacen("name = \"b\"\nversion = \"0.1.0\"", "name = \"b\"\nversion = \"0.2.0-rc.1\"", 1);
        assert_eq!(out, expected);
        assert_eq!(rewrite_lock(Utf8Path::new("Cargo.lock"), lock, &[]).unwrap(), lock);
    }
}
