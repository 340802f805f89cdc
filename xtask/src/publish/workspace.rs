//! The source workspace: its members, and the publish plan for the crates asked for
//! (checked, and in dependency order).

use std::collections::BTreeMap;

use anyhow::{Context, bail};
use camino::{Utf8Path, Utf8PathBuf};
use toml_edit::Item;

use super::manifest::{self, Dep, Kind};
use crate::toml_file;

/// One package of the source workspace.
pub struct Member {
    pub name: String,
    pub version: String,
    /// Its directory relative to the workspace root, `/`-separated; empty for a
    /// package at the root.
    pub dir: String,
    /// Whether `package.publish` allows publishing to `registry` (checked by [`plan`]).
    publish: Publish,
    pub deps: Vec<Dep>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Publish {
    Anywhere,
    Nowhere,
    Only(Vec<String>),
}

impl Publish {
    fn allows(&self, registry: &str) -> bool {
        match self {
            Publish::Anywhere => true,
            Publish::Nowhere => false,
            Publish::Only(list) => list.iter().any(|r| r == registry),
        }
    }
}

/// As the manifest writes it: `publish = false`, `publish = ["crates-io"]`.
impl std::fmt::Display for Publish {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Publish::Anywhere => write!(f, "publish = true"),
            Publish::Nowhere => write!(f, "publish = false"),
            Publish::Only(list) => {
                let quoted: Vec<String> = list.iter().map(|r| format!("{r:?}")).collect();
                write!(f, "publish = [{}]", quoted.join(", "))
            }
        }
    }
}

pub struct Workspace {
    pub root: Utf8PathBuf,
    pub members: Vec<Member>,
    /// `[workspace.dependencies]`, which members inherit with `workspace = true`.
    inherited: Vec<Dep>,
}

impl Workspace {
    /// Reads the workspace at `root`: the members of `[workspace] members` (globs
    /// such as `crates/*` too, less `exclude`), and a package at the root itself.
    pub fn read(root: &Utf8Path) -> anyhow::Result<Workspace> {
        let root_path = root.join("Cargo.toml");
        let root_text = std::fs::read_to_string(&root_path)
            .with_context(|| format!("the source has no Cargo.toml at its root ({root_path})"))?;
        let doc = toml_file::parse(&root_path, &root_text)?;
        let workspace = doc.get("workspace");
        let list = |key: &str| -> Vec<String> {
            workspace
                .and_then(|w| w.get(key))
                .and_then(Item::as_array)
                .map(|a| a.iter().filter_map(|v| v.as_str().map(str::to_owned)).collect())
                .unwrap_or_default()
        };
        let exclude: Vec<String> = list("exclude").iter().map(|e| normalize(e)).collect();
        let mut dirs = Vec::new();
        if doc.get("package").is_some() {
            dirs.push(String::new());
        }
        for pattern in list("members") {
            for dir in expand(root, &pattern) {
                if !exclude.contains(&dir) && !dirs.contains(&dir) {
                    dirs.push(dir);
                }
            }
        }
        let mut members = Vec::new();
        for dir in dirs {
            let path = if dir.is_empty() { root_path.clone() } else { root.join(&dir).join("Cargo.toml") };
            let text = std::fs::read_to_string(&path).with_context(|| format!("cannot read {path}"))?;
            let (name, version) = manifest::name_and_version(&path, &text, Some(&root_text))?;
            let member_doc = toml_file::parse(&path, &text)?;
            let publish = publish_setting(member_doc.get("package").and_then(|p| p.get("publish")), &doc);
            let deps = manifest::dependencies(&path, &text)?;
            members.push(Member { name, version, dir, publish, deps });
        }
        let inherited = manifest::dependencies(&root_path, &root_text)?
            .into_iter()
            .filter(|d| d.kind == Kind::Workspace)
            .collect();
        Ok(Workspace { root: root.to_owned(), members, inherited })
    }

    /// The same workspace in a copy at `root`: member dirs are relative, so a plan
    /// made on the original holds for the copy.
    pub fn moved_to(self, root: &Utf8Path) -> Workspace {
        Workspace { root: root.to_owned(), ..self }
    }

    /// The members whose `package.publish` allows publishing to `registry`, in the
    /// order of the workspace.
    pub fn publishable(&self, registry: &str) -> Vec<&Member> {
        self.members.iter().filter(|m| m.publish.allows(registry)).collect()
    }

    /// Whether `member` depends (in any table, inherited or not) on `package` from
    /// the registry `registry`.
    pub fn depends_on(&self, member: &Member, package: &str, registry: &str) -> bool {
        member.deps.iter().any(|dep| {
            let resolved = self.resolve(dep);
            resolved.package == package && resolved.registry.as_deref() == Some(registry)
        })
    }

    fn index_of(&self, name: &str) -> Option<usize> {
        self.members.iter().position(|m| m.name == name)
    }

    /// The member directory a path dependency of `member` points at.
    fn target_dir(&self, member: &Member, dep: &Dep) -> Option<String> {
        if dep.inherited {
            let root = self.inherited.iter().find(|d| d.key == dep.key)?;
            return root.path.as_deref().map(normalize);
        }
        dep.path.as_deref().map(|p| normalize(&format!("{}/{p}", member.dir)))
    }

    /// The root entry an inherited dependency stands for (its package, path, version).
    fn resolve<'a>(&'a self, dep: &'a Dep) -> &'a Dep {
        if dep.inherited
            && let Some(root) = self.inherited.iter().find(|d| d.key == dep.key)
        {
            return root;
        }
        dep
    }
}

/// `package.publish`, following `publish.workspace = true` to `[workspace.package]`.
fn publish_setting(item: Option<&Item>, root: &toml_edit::DocumentMut) -> Publish {
    let item = match item {
        Some(i) if i.get("workspace").and_then(Item::as_bool) == Some(true) => {
            root.get("workspace").and_then(|w| w.get("package")).and_then(|p| p.get("publish"))
        }
        other => other,
    };
    match item {
        Some(i) if i.as_bool() == Some(false) => Publish::Nowhere,
        Some(i) => match i.as_array() {
            Some(list) => Publish::Only(list.iter().filter_map(|v| v.as_str().map(str::to_owned)).collect()),
            None => Publish::Anywhere,
        },
        None => Publish::Anywhere,
    }
}

/// The crates to publish, in an order where every crate comes after the crates it
/// depends on, and the versions they are published under.
pub struct Plan {
    /// Indices into [`Workspace::members`], in publish order.
    pub order: Vec<usize>,
    /// Package name → version published, for the rewrite.
    pub pins: BTreeMap<String, String>,
    /// (dependent, dependency) pairs among the crates to publish, by name.
    pub edges: Vec<(String, String)>,
}

/// Whether the crates of one run must depend on each other.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Linked {
    /// publish-redist: its crates come as a set, so one that neither depends on the
    /// others nor is depended on is a dependent that lost its dependency.
    Required,
    /// publish: a workspace's crates may well be unrelated.
    NotRequired,
}

/// Checks that the crates `wanted` can be published together to `registry` and
/// orders them by their dependencies. `version` replaces every crate's version.
/// A crate left out is to be added with `--crate`, publish-redist's flag; see
/// [`plan_for`].
pub fn plan(
    ws: &Workspace,
    wanted: &[String],
    registry: &str,
    version: Option<&str>,
    linked: Linked,
) -> anyhow::Result<Plan> {
    plan_for(ws, wanted, registry, version, linked, &|name| format!("add `--crate {name}`"))
}

/// [`plan`], with `add(name)` saying how to bring a crate left out into the crates
/// to publish with the task's own flags (publish: `-p`, or no `--exclude`).
pub fn plan_for(
    ws: &Workspace,
    wanted: &[String],
    registry: &str,
    version: Option<&str>,
    linked: Linked,
    add: &dyn Fn(&str) -> String,
) -> anyhow::Result<Plan> {
    let mut selected = Vec::new();
    for name in wanted {
        let index = ws.index_of(name).with_context(|| {
            let names: Vec<&str> = ws.members.iter().map(|m| m.name.as_str()).collect();
            format!(
                "crate `{name}` is not in the source workspace, whose crates are: {}; \
                 check `--crate` (or `--rev`: the crate may not exist at this rev)",
                if names.is_empty() { "none".to_owned() } else { names.join(", ") }
            )
        })?;
        if !selected.contains(&index) {
            selected.push(index);
        }
    }
    for &i in &selected {
        let member = &ws.members[i];
        if !member.publish.allows(registry) {
            bail!(
                "crate `{}` does not allow publishing to `{registry}` (its manifest says `{}`): \
                 cargo would refuse it",
                member.name,
                member.publish
            );
        }
    }

    let mut edges: Vec<(usize, usize)> = Vec::new();
    for &i in &selected {
        let member = &ws.members[i];
        for dep in &member.deps {
            let resolved = ws.resolve(dep);
            let package = &resolved.package;
            let target = ws.index_of(package);
            let is_selected = target.is_some_and(|t| selected.contains(&t));
            let published = Dep { kind: dep.kind, ..resolved.clone() }.published();
            if is_selected && published {
                let t = target.expect("selected");
                let dependency = &ws.members[t];
                let Some(dir) = ws.target_dir(member, dep) else {
                    let source = match &resolved.registry {
                        Some(r) => format!("registry `{r}`"),
                        None => "crates.io".to_owned(),
                    };
                    bail!(
                        "`{}` does not depend on the workspace's `{package}`: its dependency `{}` in \
                         [{}] has no `path`, so the published crate would take `{package}` from {source}, \
                         not from `{registry}`. Pick a rev where it depends on `{package}` by path",
                        member.name,
                        dep.key,
                        dep.table
                    );
                };
                if dir != dependency.dir {
                    bail!(
                        "`{}` does not depend on the workspace's `{package}`: its dependency `{}` in [{}] \
                         points at `{dir}`, but `{package}` is in `{}`",
                        member.name,
                        dep.key,
                        dep.table,
                        display_dir(&dependency.dir)
                    );
                }
                if t != i && !edges.contains(&(i, t)) {
                    edges.push((i, t));
                }
            } else if published && target.is_some() && ws.target_dir(member, dep).is_some() {
                bail!(
                    "`{}` depends on `{package}` of the same workspace by path, but `{package}` is not among \
                     the crates to publish: {} (a crate already in the feed is skipped)",
                    member.name,
                    add(package)
                );
            }
        }
    }

    // Crates published together must be linked: one that neither depends on the
    // others nor is depended on by them is most likely a dependent that lost the
    // dependency it should have (and would then not use what is published with it).
    if linked == Linked::Required && selected.len() > 1 {
        for &i in &selected {
            if !edges.iter().any(|&(a, b)| a == i || b == i) {
                let others: Vec<&str> =
                    selected.iter().filter(|&&o| o != i).map(|&o| ws.members[o].name.as_str()).collect();
                bail!(
                    "`{}` and the other crates to publish ({}) do not depend on each other at this rev: \
                     a dependent has lost the dependency it should have. Check `--rev`, or publish \
                     unrelated crates in separate runs (`--crate {}`)",
                    ws.members[i].name,
                    others.join(", "),
                    ws.members[i].name
                );
            }
        }
    }

    let order = topological(&selected, &edges).map_err(|cycle| {
        let names: Vec<&str> = cycle.iter().map(|&i| ws.members[i].name.as_str()).collect();
        anyhow::anyhow!(
            "the crates to publish depend on each other in a cycle ({}): cargo cannot publish them",
            names.join(", ")
        )
    })?;
    let pins = selected
        .iter()
        .map(|&i| {
            let m = &ws.members[i];
            (m.name.clone(), version.unwrap_or(&m.version).to_owned())
        })
        .collect();
    let edges =
        edges.iter().map(|&(a, b)| (ws.members[a].name.clone(), ws.members[b].name.clone())).collect();
    Ok(Plan { order, pins, edges })
}

/// `nodes` ordered so that each comes after every node it has an edge to
/// (`(dependent, dependency)`), keeping the given order where the edges leave it
/// free. Err holds the nodes on a cycle.
fn topological(nodes: &[usize], edges: &[(usize, usize)]) -> Result<Vec<usize>, Vec<usize>> {
    let mut order = Vec::new();
    let mut left: Vec<usize> = nodes.to_vec();
    while !left.is_empty() {
        let ready = left
            .iter()
            .position(|&n| edges.iter().all(|&(a, b)| a != n || order.contains(&b) || !nodes.contains(&b)));
        match ready {
            Some(pos) => order.push(left.remove(pos)),
            None => return Err(left),
        }
    }
    Ok(order)
}

fn display_dir(dir: &str) -> &str {
    if dir.is_empty() { "the workspace root" } else { dir }
}

/// `a/./b/../c/` as `a/c`: paths compared as text, the way the manifests write them.
fn normalize(path: &str) -> String {
    let mut parts: Vec<&str> = Vec::new();
    for part in path.split(['/', '\\']) {
        match part {
            "" | "." => {}
            ".." if parts.last().is_some_and(|p| *p != "..") => {
                parts.pop();
            }
            other => parts.push(other),
        }
    }
    parts.join("/")
}

/// The member directories a `members` entry names: a path, or a glob with `*` and
/// `?` in its components (cargo's own matching also has `[…]`, unused upstream).
fn expand(root: &Utf8Path, pattern: &str) -> Vec<String> {
    let mut found = vec![String::new()];
    for part in normalize(pattern).split('/') {
        let mut next = Vec::new();
        for base in &found {
            let join = |name: &str| if base.is_empty() { name.to_owned() } else { format!("{base}/{name}") };
            if !part.contains(['*', '?']) {
                next.push(join(part));
                continue;
            }
            let Ok(entries) = std::fs::read_dir(root.join(base)) else { continue };
            let mut names: Vec<String> = entries
                .flatten()
                .filter(|e| e.file_type().is_ok_and(|t| t.is_dir()))
                .filter_map(|e| e.file_name().into_string().ok())
                .filter(|name| wildcard(part, name))
                .collect();
            names.sort();
            next.extend(names.iter().map(|n| join(n)));
        }
        found = next;
    }
    found.retain(|dir| root.join(dir).join("Cargo.toml").is_file() || !pattern.contains(['*', '?']));
    found
}

/// Whether `name` matches `pattern` with `*` (any run) and `?` (one character).
fn wildcard(pattern: &str, name: &str) -> bool {
    let (p, n): (Vec<char>, Vec<char>) = (pattern.chars().collect(), name.chars().collect());
    let (mut pi, mut ni, mut star, mut mark) = (0, 0, None, 0);
    while ni < n.len() {
        if pi < p.len() && (p[pi] == '?' || p[pi] == n[ni]) {
            pi += 1;
            ni += 1;
        } else if pi < p.len() && p[pi] == '*' {
            star = Some(pi);
            mark = ni;
            pi += 1;
        } else if let Some(s) = star {
            pi = s + 1;
            mark += 1;
            ni = mark;
        } else {
            return false;
        }
    }
    p[pi..].iter().all(|&c| c == '*')
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A workspace on disk from (path, manifest) pairs.
    fn workspace(files: &[(&str, &str)]) -> (tempdir::Dir, Workspace) {
        let dir = tempdir::Dir::new();
        for (path, text) in files {
            let path = dir.path().join(path);
            std::fs::create_dir_all(path.parent().unwrap()).unwrap();
            std::fs::write(&path, text).unwrap();
        }
        let ws = Workspace::read(dir.path()).unwrap();
        (dir, ws)
    }

    /// A std-only temp dir for these tests (the xtask has no tempfile dependency).
    mod tempdir {
        use camino::{Utf8Path, Utf8PathBuf};
        pub struct Dir(Utf8PathBuf);
        impl Dir {
            pub fn new() -> Dir {
                use std::sync::atomic::{AtomicU32, Ordering};
                static N: AtomicU32 = AtomicU32::new(0);
                let base = Utf8PathBuf::try_from(std::env::temp_dir()).unwrap();
                let dir = base.join(format!(
                    "xtask-ws-test-{}-{}",
                    std::process::id(),
                    N.fetch_add(1, Ordering::Relaxed)
                ));
                let _ = std::fs::remove_dir_all(&dir);
                std::fs::create_dir_all(&dir).unwrap();
                Dir(dir)
            }
            pub fn path(&self) -> &Utf8Path {
                &self.0
            }
        }
        impl Drop for Dir {
            fn drop(&mut self) {
                let _ = std::fs::remove_dir_all(&self.0);
            }
        }
    }

    const ROOT: &str = "[workspace]\nmembers = [\"mshv-bindings\", \"mshv-ioctls\"]";
    const BINDINGS: &str = "[package]\nname = \"mshv-bindings\"\nversion = \"0.1.1\"\nedition = \"2018\"";
    const IOCTLS: &str = "[package]\nname = \"mshv-ioctls\"\nversion = \"0.1.1\"\nedition = \"2018\"\n\n[dependencies]\nmshv-bindings = {path = \"../mshv-bindings\", features = [\"fam-wrappers\"]}";

    fn names(ws: &Workspace, plan: &Plan) -> Vec<String> {
        plan.order.iter().map(|&i| ws.members[i].name.clone()).collect()
    }

    fn wanted(list: &[&str]) -> Vec<String> {
        list.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn the_order_comes_from_the_dependencies_not_the_list() {
        let (_d, ws) = workspace(&[
            ("Cargo.toml", ROOT),
            ("mshv-bindings/Cargo.toml", BINDINGS),
            ("mshv-ioctls/Cargo.toml", IOCTLS),
        ]);
        let plan =
            plan(&ws, &wanted(&["mshv-ioctls", "mshv-bindings"]), "r", None, Linked::Required).unwrap();
        assert_eq!(names(&ws, &plan), ["mshv-bindings", "mshv-ioctls"]);
        assert_eq!(plan.edges, [("mshv-ioctls".to_owned(), "mshv-bindings".to_owned())]);
        assert_eq!(plan.pins["mshv-ioctls"], "0.1.1");
        let plan = super::plan(
            &ws,
            &wanted(&["mshv-bindings", "mshv-ioctls"]),
            "r",
            Some("0.2.0"),
            Linked::Required,
        )
        .unwrap();
        assert_eq!(plan.pins["mshv-bindings"], "0.2.0");
    }

    #[test]
    fn globs_and_inherited_versions_and_dependencies() {
        let (_d, ws) = workspace(&[
            (
                "Cargo.toml",
                "[workspace]\nmembers = [\"crates/*\"]\nexclude = [\"crates/skip\"]\n\n[workspace.package]\nversion = \"0.3.1\"\n\n[workspace.dependencies]\nmshv-bindings = { path = \"crates/mshv-bindings\", version = \"0.3.1\" }\n",
            ),
            (
                "crates/mshv-bindings/Cargo.toml",
                "[package]\nname = \"mshv-bindings\"\nversion.workspace = true\n",
            ),
            (
                "crates/mshv-ioctls/Cargo.toml",
                "[package]\nname = \"mshv-ioctls\"\nversion.workspace = true\n[dependencies]\nmshv-bindings = { workspace = true }\n",
            ),
            ("crates/skip/Cargo.toml", "[package]\nname = \"skip\"\nversion = \"1.0.0\"\n"),
        ]);
        let names_found: Vec<&str> = ws.members.iter().map(|m| m.name.as_str()).collect();
        assert_eq!(names_found, ["mshv-bindings", "mshv-ioctls"]);
        let plan =
            plan(&ws, &wanted(&["mshv-ioctls", "mshv-bindings"]), "r", None, Linked::Required).unwrap();
        assert_eq!(names(&ws, &plan), ["mshv-bindings", "mshv-ioctls"]);
        assert_eq!(plan.pins["mshv-bindings"], "0.3.1");
    }

    fn plan_error(files: &[(&str, &str)], list: &[&str]) -> String {
        let (_d, ws) = workspace(files);
        format!(
            "{:#}",
            plan(&ws, &wanted(list), "hyperlight_redist", None, Linked::Required).err().expect("an error")
        )
    }

    #[test]
    fn a_crate_missing_from_the_workspace() {
        let msg = plan_error(
            &[
                ("Cargo.toml", ROOT),
                ("mshv-bindings/Cargo.toml", BINDINGS),
                ("mshv-ioctls/Cargo.toml", IOCTLS),
            ],
            &["mshv-bindings", "mshv-vfio"],
        );
        assert!(msg.contains("crate `mshv-vfio` is not in the source workspace"), "{msg}");
        assert!(msg.contains("mshv-bindings, mshv-ioctls"), "{msg}");
    }

    #[test]
    fn a_dependent_without_its_dependency() {
        let lost = "[package]\nname = \"mshv-ioctls\"\nversion = \"0.1.1\"\n[dependencies]\nlibc = \"0.2\"\n";
        let msg = plan_error(
            &[("Cargo.toml", ROOT), ("mshv-bindings/Cargo.toml", BINDINGS), ("mshv-ioctls/Cargo.toml", lost)],
            &["mshv-bindings", "mshv-ioctls"],
        );
        assert!(msg.contains("do not depend on each other"), "{msg}");

        let from_crates_io = "[package]\nname = \"mshv-ioctls\"\nversion = \"0.1.1\"\n[dependencies]\nmshv-bindings = \"0.1.1\"\n";
        let msg = plan_error(
            &[
                ("Cargo.toml", ROOT),
                ("mshv-bindings/Cargo.toml", BINDINGS),
                ("mshv-ioctls/Cargo.toml", from_crates_io),
            ],
            &["mshv-bindings", "mshv-ioctls"],
        );
        assert!(msg.contains("`mshv-ioctls` does not depend on the workspace's `mshv-bindings`"), "{msg}");
        assert!(msg.contains("from crates.io"), "{msg}");
    }

    #[test]
    fn a_path_dependency_left_out_of_the_crates_to_publish() {
        let msg = plan_error(
            &[
                ("Cargo.toml", ROOT),
                ("mshv-bindings/Cargo.toml", BINDINGS),
                ("mshv-ioctls/Cargo.toml", IOCTLS),
            ],
            &["mshv-ioctls"],
        );
        assert!(msg.contains("add `--crate mshv-bindings`"), "{msg}");
    }

    #[test]
    fn path_only_dev_dependencies_make_no_edge_and_no_cycle() {
        let bindings =
            format!("{BINDINGS}\n[dev-dependencies]\nmshv-ioctls = {{ path = \"../mshv-ioctls\" }}\n");
        let (_d, ws) = workspace(&[
            ("Cargo.toml", ROOT),
            ("mshv-bindings/Cargo.toml", &bindings),
            ("mshv-ioctls/Cargo.toml", IOCTLS),
        ]);
        let plan =
            plan(&ws, &wanted(&["mshv-ioctls", "mshv-bindings"]), "r", None, Linked::Required).unwrap();
        assert_eq!(names(&ws, &plan), ["mshv-bindings", "mshv-ioctls"]);
        // Alone, the bindings crate does not need the ioctls one either.
        assert!(super::plan(&ws, &wanted(&["mshv-bindings"]), "r", None, Linked::Required).is_ok());

        let versioned = format!(
            "{BINDINGS}\n[dev-dependencies]\nmshv-ioctls = {{ path = \"../mshv-ioctls\", version = \"0.1\" }}\n"
        );
        let msg = plan_error(
            &[
                ("Cargo.toml", ROOT),
                ("mshv-bindings/Cargo.toml", &versioned),
                ("mshv-ioctls/Cargo.toml", IOCTLS),
            ],
            &["mshv-bindings", "mshv-ioctls"],
        );
        assert!(msg.contains("cycle"), "{msg}");
    }

    #[test]
    fn publish_false_is_refused_up_front() {
        let closed = format!("{BINDINGS}\npublish = false\n");
        let msg = plan_error(
            &[
                ("Cargo.toml", ROOT),
                ("mshv-bindings/Cargo.toml", &closed),
                ("mshv-ioctls/Cargo.toml", IOCTLS),
            ],
            &["mshv-bindings"],
        );
        assert!(msg.contains("does not allow publishing to `hyperlight_redist`"), "{msg}");
        assert!(msg.contains("its manifest says `publish = false`"), "{msg}");

        let elsewhere = format!("{BINDINGS}\npublish = [\"crates-io\"]\n");
        let msg = plan_error(
            &[
                ("Cargo.toml", ROOT),
                ("mshv-bindings/Cargo.toml", &elsewhere),
                ("mshv-ioctls/Cargo.toml", IOCTLS),
            ],
            &["mshv-bindings"],
        );
        assert!(msg.contains("its manifest says `publish = [\"crates-io\"]`"), "{msg}");
    }

    #[test]
    fn paths_and_globs() {
        assert_eq!(normalize("mshv-ioctls/../mshv-bindings/"), "mshv-bindings");
        assert_eq!(normalize("./a\\b"), "a/b");
        assert!(wildcard("mshv-*", "mshv-ioctls"));
        assert!(wildcard("a?c*", "abcdef"));
        assert!(!wildcard("mshv-*", "fuzz"));
    }
}
