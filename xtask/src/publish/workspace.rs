//! The source workspace as `cargo metadata` reads it, and the publish plan.

use std::time::Duration;

use anyhow::{Context, bail, ensure};
use camino::{Utf8Path, Utf8PathBuf};

use super::engine::{CratePlan, items, text};
use super::manifest::{self, Dep, Kind};
use crate::feeds::Registry;
use crate::json::{self, Value};
use crate::{run, toml_file};

const CRATES_IO_GIT_INDEX: &str = "https://github.com/rust-lang/crates.io-index";

pub struct Member {
    pub name: String,
    pub version: String,
    /// Relative to the workspace root, `/`-separated; empty for the root package.
    pub dir: String,
    /// Why cargo would not publish it to the feed the workspace was read for.
    refusal: Option<String>,
    /// What crates.io refuses in it at the upload that cargo packages.
    crates_io: Vec<String>,
    pub deps: Vec<Dep>,
    /// (feature, dependency key) for each optional dependency a feature turns on (`dep:key`).
    pub enables: Vec<(String, String)>,
}

pub struct Workspace {
    pub root: Utf8PathBuf,
    /// Where it was read: messages name the manifests there, also for a work copy.
    pub origin: Utf8PathBuf,
    pub members: Vec<Member>,
}

impl Workspace {
    /// The workspace at `root`, with `feed`'s index set so `depends_on` can compare URLs.
    pub fn read(root: &Utf8Path, feed: &Registry) -> anyhow::Result<Workspace> {
        let manifest = root.join("Cargo.toml");
        let args = ["metadata", "--format-version", "1", "--no-deps", "--manifest-path", manifest.as_str()];
        let mut program = run::cargo(root, &args).label("cargo metadata").timeout(Duration::from_secs(300));
        if !feed.is_crates_io() {
            program = program.env(&feed.env_var("index"), &feed.index);
        }
        let out = program.output().context(format!("cargo cannot read the workspace at {root}"))?;
        let metadata = json::parse(&out.stdout).context("reading the answer of `cargo metadata`")?;
        let workspace_root = Utf8Path::new(text(&metadata, "workspace_root"));
        ensure!(
            workspace_root.canonicalize_utf8().ok() == root.canonicalize_utf8().ok(),
            "{root}/Cargo.toml is not the root of its workspace: cargo's workspace root is {workspace_root}; \
             name its Cargo.toml instead"
        );
        // With `--no-deps`, its packages are the workspace's members.
        let members = (items(metadata.get("packages")).iter())
            .map(|package| member(package, workspace_root, &feed.name))
            .collect::<anyhow::Result<_>>()?;
        Ok(Workspace { root: root.to_owned(), origin: root.to_owned(), members })
    }

    /// Rewrites the manifests (the root's first, a member or not, for `root_needs`) and
    /// a committed lock for `rewrite`; whether any changed.
    pub fn rewrite(&self, rewrite: &manifest::Rewrite) -> anyhow::Result<bool> {
        let pin = |m: &Member| manifest::pinned(rewrite.pins, &m.name);
        let dirs =
            std::iter::once("").chain(self.members.iter().map(|m| m.dir.as_str()).filter(|d| !d.is_empty()));
        let mut files = Vec::new();
        for dir in dirs {
            let path = self.root.join(dir).join("Cargo.toml");
            let text = std::fs::read_to_string(&path).context(format!("cannot read {path}"))?;
            let selected = self.members.iter().any(|m| m.dir == dir && pin(m).is_some());
            files.push((path, self.origin.join(dir).join("Cargo.toml"), selected, text));
        }
        let root_needs = manifest::root_needs(&files)?;
        let mut changed = false;
        let mut write = |path: &Utf8Path, before: &str, after: String| {
            changed |= after != before;
            if after != before { toml_file::write_atomic(path, &after) } else { Ok(()) }
        };
        for (path, shown, selected, before) in &files {
            let version = if *selected { rewrite.package_version } else { None };
            let this = manifest::Rewrite { package_version: version, ..*rewrite };
            write(path, before, manifest::rewrite(shown, before, &this, &root_needs)?)?;
        }
        // Cargo would rewrite a stale lock while packaging, and a lock that is a file of
        // a package then counts as an uncommitted change, which `cargo package` refuses.
        let moved: Vec<(&str, &str, &str)> = (self.members.iter())
            .filter_map(|m| {
                Some((m.name.as_str(), m.version.as_str(), pin(m).filter(|new| *new != m.version)?))
            })
            .collect();
        let lock = self.root.join("Cargo.lock");
        if !moved.is_empty() && lock.is_file() {
            let before = std::fs::read_to_string(&lock).context(format!("cannot read {lock}"))?;
            write(&lock, &before, manifest::rewrite_lock(&lock, &before, &moved)?)?;
        }
        Ok(changed)
    }

    /// Whether one of `crates` takes a crate from `feed` (a feed, not crates.io) other than by path.
    pub fn takes_from_feed(&self, crates: &[CratePlan], feed: &Registry) -> bool {
        let mut members = self.members.iter().filter(|m| crates.iter().any(|c| c.name == m.name));
        !feed.is_crates_io()
            && members
                .any(|m| m.deps.iter().any(|d| d.path.is_none() && self.depends_on(m, &d.package, feed)))
    }

    /// Whether `member` depends (in any table) on `package` from `feed`.
    pub fn depends_on(&self, member: &Member, package: &str, feed: &Registry) -> bool {
        deps_on(member, package, feed).next().is_some()
    }
}

/// `member`'s dependencies (in any table) on `package` from `feed`.
pub fn deps_on<'m>(member: &'m Member, package: &str, feed: &Registry) -> impl Iterator<Item = &'m Dep> {
    let url = |u: &str| u.trim_end_matches('/').to_owned();
    let (package, index, to_crates_io) = (package.to_owned(), url(&feed.index), feed.is_crates_io());
    member.deps.iter().filter(move |dep| {
        // Cargo names crates.io by its git index, also for `registry = "crates-io"`.
        let crates_io = dep.registry.as_deref().is_none_or(|r| r == CRATES_IO_GIT_INDEX)
            && dep.source.as_deref().is_some_and(|s| s.starts_with("registry+"));
        dep.package == package
            && match to_crates_io {
                true => crates_io,
                false => dep.registry.as_deref().is_some_and(|r| url(r) == index),
            }
    })
}

fn member(package: &Value, root: &Utf8Path, registry: &str) -> anyhow::Result<Member> {
    let (name, version) = (text(package, "name"), text(package, "version"));
    let manifest = Utf8Path::new(text(package, "manifest_path"));
    let allowed: Vec<&str> = items(package.get("publish")).iter().filter_map(Value::as_str).collect();
    // Cargo reads a missing `package.version` (own or inherited) as 0.0.0.
    let refusal = if version == "0.0.0"
        && toml_file::read(manifest)?.get("package").and_then(|p| p.get("version")).is_none()
    {
        Some(format!(
            "crate `{name}` cannot be published: its manifest has no `version` (cargo reads 0.0.0 and \
             publishes it nowhere)"
        ))
    } else if matches!(package.get("publish"), Some(Value::Array(_))) && !allowed.contains(&registry) {
        let says = if allowed.is_empty() { "false".to_owned() } else { format!("{allowed:?}") };
        let add = if allowed.is_empty() { String::new() } else { format!(": add `{registry}` to allow it") };
        Some(format!(
            "crate `{name}` does not allow publishing to `{registry}` (its manifest says `publish = {says}`{add})"
        ))
    } else {
        None
    };
    let enables = match package.get("features") {
        Some(Value::Object(features)) => (features.iter())
            .flat_map(|(feature, turns_on)| items(Some(turns_on)).iter().map(move |d| (feature, d)))
            .filter_map(|(feature, d)| Some((feature.clone(), d.as_str()?.strip_prefix("dep:")?.to_owned())))
            .collect(),
        _ => Vec::new(),
    };
    Ok(Member {
        name: name.to_owned(),
        version: version.to_owned(),
        dir: manifest.parent().map(|d| relative(root, d)).unwrap_or_default(),
        refusal,
        crates_io: crates_io_refusals(package),
        deps: items(package.get("dependencies")).iter().map(|d| dependency(d, root)).collect(),
        enables,
    })
}

/// What crates.io's `controllers/krate/publish.rs` refuses in `package` that cargo 1.95 lets through, but
/// for what needs crates.io's list of category slugs or an SPDX parser of the license.
fn crates_io_refusals(package: &Value) -> Vec<String> {
    let blank = |key: &str| text(package, key).trim().is_empty();
    let list = |key: &str| items(package.get(key)).iter().filter_map(Value::as_str).collect::<Vec<_>>();
    let (keywords, categories) = (list("keywords"), list("categories"));
    let mut found: Vec<String> = [
        (blank("description"), "no description".to_owned()),
        (blank("license") && blank("license_file"), "no license or license-file".to_owned()),
        (text(package, "description").len() > 1000, "a description over 1000 bytes".to_owned()),
        (keywords.len() > 5, format!("{} keywords (at most 5)", keywords.len())),
        (categories.len() > 5, format!("{} categories (at most 5)", categories.len())),
    ]
    .into_iter()
    .filter_map(|(refused, what)| refused.then_some(what))
    .collect();
    // crates.io's `Keyword::valid_name`, and at most 20 bytes.
    let keyword = |k: &&&str| {
        k.len() <= 20
            && k.starts_with(|c: char| c.is_ascii_alphanumeric())
            && k.chars().all(|c| c.is_ascii_alphanumeric() || "_-+".contains(c))
    };
    found.extend(keywords.iter().filter(|k| !keyword(k)).map(|k| {
        format!("a keyword `{k}` (up to 20 ASCII letters, digits, `_`, `-` or `+`, from a letter or digit)")
    }));
    let urls = ["homepage", "documentation", "repository"].map(|key| (key, text(package, key)));
    found.extend(
        urls.iter()
            .filter(|(_, url)| !url.is_empty() && !url.starts_with("http://") && !url.starts_with("https://"))
            .map(|(key, url)| format!("a {key} `{url}` (not http:// or https://)")),
    );
    // Cargo says `*` for none too: a path dependency gets one in the rewrite, a git one cargo refuses.
    let wildcard = |d: &&Value| {
        text(d, "req") == "*" && d.get("path").is_none() && !text(d, "source").starts_with("git+")
    };
    found.extend(items(package.get("dependencies")).iter().filter(wildcard).map(|d| {
        format!(
            "a dependency `{}` = \"*\" (no wildcard: give the oldest version that works)",
            text(d, "name")
        )
    }));
    found
}

fn dependency(dep: &Value, root: &Utf8Path) -> Dep {
    let optional = |key: &str| dep.get(key).and_then(Value::as_str).map(str::to_owned);
    let package = text(dep, "name").to_owned();
    Dep {
        kind: match text(dep, "kind") {
            "dev" => Kind::Dev,
            "build" => Kind::Build,
            _ => Kind::Normal,
        },
        key: optional("rename").unwrap_or_else(|| package.clone()),
        package,
        path: optional("path").map(|p| relative(root, Utf8Path::new(&p))),
        // Cargo says `*` for no version.
        requirement: optional("req").filter(|r| r != "*"),
        target: optional("target"),
        registry: optional("registry"),
        source: optional("source"),
        inherited: false,
    }
}

/// `path` relative to `root`, `/`-separated, when inside it.
fn relative(root: &Utf8Path, path: &Utf8Path) -> String {
    let inside = path.strip_prefix(root).map(|inside| inside.components().map(|c| c.as_str()));
    inside.map_or_else(|_| path.to_string(), |parts| parts.collect::<Vec<_>>().join("/"))
}

/// The crates to publish, each after the crates it depends on (`dir` relative to the
/// workspace root), and the edges (dependent, dependency) among them.
pub struct Plan {
    pub crates: Vec<CratePlan>,
    pub edges: Vec<(String, String)>,
}

impl Plan {
    /// Package name → version published, for [`manifest::Rewrite`].
    pub fn pins(&self) -> Vec<(String, String)> {
        self.crates.iter().map(|c| (c.name.clone(), c.version.clone())).collect()
    }
}

/// Checks that the crates `wanted` can be published together to `registry` and orders them;
/// `exclude` is None for publish-redist, `version` replaces every crate's version.
pub fn plan(
    ws: &Workspace,
    wanted: &[String],
    registry: &str,
    version: Option<&str>,
    exclude: Option<&[String]>,
) -> anyhow::Result<Plan> {
    let selected = select(ws, wanted, registry, exclude)?;
    if registry == crate::feeds::CRATES_IO {
        check_one_registry(ws, &selected)?;
    }
    let edges = left_out(ws, &selected, wanted, exclude)?;
    if exclude.is_none() {
        check_linked(ws, &selected, &edges)?;
    }
    // Each after the crates it depends on, else in the workspace's order.
    let (mut order, mut left) = (Vec::new(), selected);
    while !left.is_empty() {
        let ready = left.iter().position(|&n| edges.iter().all(|&(a, b, _)| a != n || order.contains(&b)));
        let Some(pos) = ready else { return Err(cycle_error(ws, &left, &edges)) };
        order.push(left.remove(pos));
    }
    let name = |i: usize| ws.members[i].name.clone();
    let crates = (order.iter())
        .map(|&i| CratePlan {
            name: name(i),
            version: version.unwrap_or(&ws.members[i].version).to_owned(),
            dir: ws.members[i].dir.clone().into(),
            is_dependency: edges.iter().any(|&(_, b, _)| b == i),
            ..CratePlan::default()
        })
        .collect();
    Ok(Plan { crates, edges: edges.iter().map(|&(a, b, _)| (name(a), name(b))).collect() })
}

/// The members named by `wanted` (publish: else every member cargo would publish to
/// `registry`), less `--exclude`, in the workspace's order.
fn select(
    ws: &Workspace,
    wanted: &[String],
    registry: &str,
    redist_or_exclude: Option<&[String]>,
) -> anyhow::Result<Vec<usize>> {
    let exclude = redist_or_exclude.unwrap_or_default();
    let names: Vec<&str> = ws.members.iter().map(|m| m.name.as_str()).collect();
    let mut unknown: Vec<String> =
        wanted.iter().chain(exclude).filter(|n| !names.contains(&&n[..])).map(|n| format!("`{n}`")).collect();
    unknown.dedup();
    let check = redist_or_exclude
        .map_or("; check `--crate` (or `--rev`: the crate may not exist at this rev)", |_| "");
    ensure!(
        unknown.is_empty(),
        "{} {} of the workspace, whose crates are: {}{check}",
        unknown.join(", "),
        if unknown.len() == 1 { "is not a crate" } else { "are not crates" },
        if names.is_empty() { "none".to_owned() } else { names.join(", ") }
    );
    let every = wanted.is_empty() && redist_or_exclude.is_some();
    let selected: Vec<usize> = (0..ws.members.len())
        .filter(|&i| {
            let m = &ws.members[i];
            !exclude.contains(&m.name) && if every { m.refusal.is_none() } else { wanted.contains(&m.name) }
        })
        .collect();
    ensure!(
        !selected.is_empty(),
        "no crate to publish to `{registry}`: none has a version and allows it in `package.publish`, or all \
         are excluded"
    );
    let (refused, why): (Vec<&str>, Vec<&str>) = selected
        .iter()
        .filter_map(|&i| Some((&ws.members[i].name[..], ws.members[i].refusal.as_deref()?)))
        .unzip();
    let fix = match redist_or_exclude {
        Some(_) => format!("drop `-p {}`", refused.join(" -p ")),
        None => format!("leave `{}` out of `--crate`", refused.join("`, `")),
    };
    ensure!(why.is_empty(), "{}: cargo would refuse it; {fix}", why.join("; "));
    Ok(selected)
}

/// crates.io refuses, at the upload, a crate depending on another registry's crate,
/// or with metadata it does not take (cargo only warns, or says nothing).
fn check_one_registry(ws: &Workspace, selected: &[usize]) -> anyhow::Result<()> {
    let members = || selected.iter().map(|&i| &ws.members[i]);
    let refused: Vec<String> = (members().filter(|m| !m.crates_io.is_empty()))
        .map(|m| format!("`{}` has {}", m.name, m.crates_io.join(", ")))
        .collect();
    let foreign: Vec<String> = members()
        .flat_map(|m| m.deps.iter().filter(|d| d.published() && d.path.is_none()).map(move |d| (m, d)))
        .filter_map(|(m, d)| Some(format!("`{}` on `{}` (from {})", m.name, d.package, d.registry.as_ref()?)))
        .collect();
    ensure!(
        refused.is_empty(),
        "crates.io would refuse at the upload what cargo lets through: {}; nothing was uploaded. Change \
         those keys of [package] or [dependencies], or leave those crates out (`--exclude`)",
        refused.join("; ")
    );
    ensure!(
        foreign.is_empty(),
        "crates.io refuses a crate with a dependency from another registry: {}; nothing was uploaded. \
         Publish such a crate to its feed instead (`--registry`), or leave it out (`--exclude`)",
        foreign.join(", ")
    );
    Ok(())
}

/// Member `i`'s published dependencies on members; an error if one is not by a path.
fn local_deps(ws: &Workspace, i: usize) -> anyhow::Result<Vec<(Kind, usize)>> {
    let member = &ws.members[i];
    let mut found = Vec::new();
    for dep in member.deps.iter().filter(|d| d.published()) {
        let Some(t) = ws.members.iter().position(|m| m.name == dep.package) else { continue };
        if dep.path.is_some() {
            found.push((dep.kind, t));
            continue;
        } else if dep.kind == Kind::Dev {
            continue;
        }
        let (package, key, table, source) = (&dep.package, &dep.key, dep.table(), dep.origin());
        bail!(
            "`{}` does not depend on the workspace's `{package}`: its dependency `{key}` in [{table}] has no \
             `path`, so the published crate would take `{package}` from {source}. Pick a rev where it \
             depends on `{package}` by path",
            member.name
        );
    }
    Ok(found)
}

/// The edges (dependent, dependency, kind) among the selected crates; an error names
/// every member they need by path that is not selected, with the advice that works.
fn left_out(
    ws: &Workspace,
    selected: &[usize],
    wanted: &[String],
    exclude: Option<&[String]>,
) -> anyhow::Result<Vec<(usize, usize, Kind)>> {
    // (missing member, its dependent, the selected crate that pulled it in)
    let mut missing: Vec<(usize, usize, usize)> = Vec::new();
    let mut edges: Vec<(usize, usize, Kind)> = Vec::new();
    let mut queue: Vec<(usize, usize)> = selected.iter().map(|&i| (i, i)).collect();
    while let Some((i, origin)) = queue.pop() {
        for (kind, t) in local_deps(ws, i)? {
            if selected.contains(&t) {
                if t != i && !edges.iter().any(|&(a, b, _)| (a, b) == (i, t)) {
                    edges.push((i, t, kind));
                }
            } else if !missing.iter().any(|&(m, _, _)| m == t) {
                missing.push((t, i, origin));
                queue.push((t, origin));
            }
        }
    }
    let name = |i: usize| ws.members[i].name.as_str();
    for &(m, d, origin) in &missing {
        if let Some(why) = &ws.members[m].refusal {
            let (d, m, o) = (name(d), name(m), name(origin));
            let leave = match (exclude, wanted) {
                (None, _) => format!("leave `{o}` out of `--crate`"),
                (Some(_), []) => format!("`--exclude {o}`"),
                _ => format!("drop `-p {o}`"),
            };
            bail!(
                "`{d}` depends on `{m}` of the same workspace by path, and {why}: `{o}` cannot be published \
                 without it. Leave `{o}` out ({leave}), or make `{m}` publishable"
            );
        }
    }
    if missing.is_empty() {
        edges.sort_by_key(|e| e.0); // `selected` is in the workspace's order
        return Ok(edges);
    }
    let needs = needing_excluded(ws, selected, &edges, exclude)?;
    Err(not_selected(ws, &mut missing, exclude, &needs))
}

/// The selected crates that need an excluded one by path, also through each other.
fn needing_excluded(
    ws: &Workspace,
    selected: &[usize],
    edges: &[(usize, usize, Kind)],
    exclude: Option<&[String]>,
) -> anyhow::Result<Vec<usize>> {
    let excluded = |t: usize| exclude.is_some_and(|e| e.contains(&ws.members[t].name));
    let mut needs = Vec::new();
    for &i in selected {
        if local_deps(ws, i)?.iter().any(|&(_, t)| excluded(t)) {
            needs.push(i);
        }
    }
    while let Some(&(a, _, _)) = edges.iter().find(|(a, b, _)| needs.contains(b) && !needs.contains(a)) {
        needs.push(a);
    }
    needs.sort_unstable();
    Ok(needs)
}

/// The error for members the selected crates need by path that are not selected, with the
/// flags that add them, or that leave out what needs an excluded one.
fn not_selected(
    ws: &Workspace,
    missing: &mut [(usize, usize, usize)],
    exclude: Option<&[String]>,
    needs: &[usize],
) -> anyhow::Error {
    let name = |i: usize| ws.members[i].name.as_str();
    missing.sort_unstable_by(|a, b| name(a.0).cmp(name(b.0)));
    let (mut lines, mut add, mut drop) = (Vec::new(), Vec::new(), Vec::new());
    for &(m, d, _) in missing.iter() {
        lines.push(format!("`{}` depends on `{}`", name(d), name(m)));
        match exclude {
            Some(excluded) if excluded.iter().any(|e| e == name(m)) => {
                drop.push(format!("--exclude {}", name(m)))
            }
            Some(_) => add.push(format!("-p {}", name(m))),
            None => add.push(format!("--crate {}", name(m))),
        }
    }
    let advice: Vec<String> = [("add", add), ("drop", drop)]
        .into_iter()
        .filter(|(_, flags)| !flags.is_empty())
        .map(|(verb, flags)| format!("{verb} `{}`", flags.join(" ")))
        .collect();
    let (it, is) = if missing.len() == 1 { ("it", "it is") } else { ("them", "they are") };
    let too = needs.iter().map(|&i| format!("--exclude {}", name(i))).collect::<Vec<_>>().join(" ");
    let too =
        if too.is_empty() { String::new() } else { format!(", or leave out what needs {it} too: `{too}`") };
    anyhow::anyhow!(
        "{} of the same workspace by path, but {is} not among the crates to publish: {} (a crate already \
         in the feed is skipped){too}",
        lines.join(", "),
        advice.join(" and "),
    )
}

/// A crate linked to none of the others is most likely a dependent that lost its dependency.
fn check_linked(ws: &Workspace, selected: &[usize], edges: &[(usize, usize, Kind)]) -> anyhow::Result<()> {
    let lone = selected.iter().find(|&&i| !edges.iter().any(|&(a, b, _)| a == i || b == i));
    let (Some(&i), true) = (lone, selected.len() > 1) else { return Ok(()) };
    let name = &ws.members[i].name;
    let others: Vec<&str> =
        selected.iter().filter(|&&o| o != i).map(|&o| ws.members[o].name.as_str()).collect();
    bail!(
        "`{name}` and the other crates to publish ({}) do not depend on each other at this rev: a \
         dependent has lost the dependency it should have. Check `--rev`, or publish unrelated \
         crates in separate runs (`--crate {name}`)",
        others.join(", ")
    )
}

/// Cargo orders a publish by the dependencies it keeps, dev-dependencies with a
/// version included, so a cycle through them cannot be published.
fn cycle_error(ws: &Workspace, cycle: &[usize], edges: &[(usize, usize, Kind)]) -> anyhow::Error {
    let names: Vec<&str> = cycle.iter().map(|&i| ws.members[i].name.as_str()).collect();
    let dev: Vec<String> = edges
        .iter()
        .filter(|&&(a, b, kind)| kind == Kind::Dev && cycle.contains(&a) && cycle.contains(&b))
        .map(|&(a, b, _)| format!("`{}` on `{}`", ws.members[a].name, ws.members[b].name))
        .collect();
    let fix = if dev.is_empty() {
        String::new()
    } else {
        format!(
            ". The dev-dependency of {} has a `version`, so cargo publishes it and needs it in the \
             registry first: drop its `version` (cargo then leaves it out of the published crate)",
            dev.join(", ")
        )
    };
    anyhow::anyhow!(
        "the crates to publish depend on each other in a cycle ({}): cargo cannot publish them{fix}",
        names.join(", ")
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A workspace on disk from (path, manifest) pairs, each member with an empty
    /// `src/lib.rs`, read by the real cargo.
    fn workspace(files: &[(&str, &str)]) -> (tempdir::Dir, Workspace) {
        let dir = tempdir::Dir::new();
        for (path, text) in files {
            let path = dir.path().join(path);
            std::fs::create_dir_all(path.parent().unwrap().join("src")).unwrap();
            std::fs::write(path.parent().unwrap().join("src/lib.rs"), "").unwrap();
            std::fs::write(&path, text).unwrap();
        }
        let feed = Registry { name: "hyperlight_redist".into(), index: FEED.into() };
        let ws = Workspace::read(dir.path(), &feed).unwrap();
        (dir, ws)
    }

    const PUBLISH: Option<&[String]> = Some(&[]);

    const FEED: &str = "sparse+http://127.0.0.1:9/index/";

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

    fn names(plan: &Plan) -> Vec<String> {
        plan.crates.iter().map(|c| c.name.clone()).collect()
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
        let plan = plan(&ws, &wanted(&["mshv-ioctls", "mshv-bindings"]), "r", None, None).unwrap();
        assert_eq!(names(&plan), ["mshv-bindings", "mshv-ioctls"]);
        assert_eq!(plan.edges, [("mshv-ioctls".to_owned(), "mshv-bindings".to_owned())]);
        assert_eq!(manifest::pinned(&plan.pins(), "mshv-ioctls"), Some("0.1.1"));
        let plan =
            super::plan(&ws, &wanted(&["mshv-bindings", "mshv-ioctls"]), "r", Some("0.2.0"), None).unwrap();
        assert_eq!(manifest::pinned(&plan.pins(), "mshv-bindings"), Some("0.2.0"));
    }

    /// Cargo's facts: globs, `exclude`, inheritance from the root, a renamed and a
    /// target-specific dependency, a dependency from the feed by its URL.
    #[test]
    fn globs_and_inherited_versions_and_dependencies() {
        let (_d, ws) = workspace(&[
            (
                "Cargo.toml",
                "[workspace]\nmembers = [\"crates/*\"]\nexclude = [\"crates/skip\"]\n\n[workspace.package]\nversion = \"0.3.1\"\n\n[workspace.dependencies]\nb = { package = \"mshv-bindings\", path = \"crates/mshv-bindings\", version = \"0.3.1\" }\n",
            ),
            (
                "crates/mshv-bindings/Cargo.toml",
                "[package]\nname = \"mshv-bindings\"\nversion.workspace = true\nlicense = \"MIT\"\n[dependencies]\nlibc = \"0.2\"\nlog = { version = \"0.4\", registry = \"crates-io\" }\n",
            ),
            (
                "crates/mshv-ioctls/Cargo.toml",
                "[package]\nname = \"mshv-ioctls\"\nversion.workspace = true\n[target.'cfg(unix)'.dependencies]\nb = { workspace = true }\nfeedcrate = { version = \"1\", registry = \"hyperlight_redist\" }\nlibc = { version = \"0.2\", optional = true }\n[build-dependencies]\nb = { workspace = true }\n[features]\nx = [\"dep:libc\"]\n",
            ),
            ("crates/skip/Cargo.toml", "[package]\nname = \"skip\"\nversion = \"1.0.0\"\n"),
        ]);
        let names_found: Vec<&str> = ws.members.iter().map(|m| m.name.as_str()).collect();
        assert_eq!(names_found, ["mshv-bindings", "mshv-ioctls"]);
        assert_eq!(ws.members[0].dir, "crates/mshv-bindings");
        let ioctls = &ws.members[1];
        let b = ioctls.deps.iter().find(|d| d.package == "mshv-bindings" && d.target.is_some()).unwrap();
        assert_eq!((b.key.as_str(), b.requirement.as_deref()), ("b", Some("^0.3.1")));
        assert_eq!(b.path.as_deref(), Some("crates/mshv-bindings"));
        assert_eq!(b.table(), "target.'cfg(unix)'.dependencies");
        let kinds: Vec<Kind> = ioctls.deps.iter().filter(|d| d.key == "b").map(|d| d.kind).collect();
        assert!(kinds.len() == 2 && kinds.contains(&Kind::Build), "{kinds:?}");
        assert_eq!(ioctls.enables, [("x".to_owned(), "libc".to_owned())]);
        assert_eq!(ws.members[0].crates_io, ["no description"]);
        assert_eq!(ioctls.crates_io, ["no description", "no license or license-file"]);
        let feed = Registry { name: "hyperlight_redist".into(), index: FEED.into() };
        assert!(ws.depends_on(ioctls, "feedcrate", &feed));
        assert!(!ws.depends_on(ioctls, "mshv-bindings", &feed));
        assert!(ws.depends_on(ioctls, "libc", &Registry::crates_io()));
        assert!(ws.depends_on(&ws.members[0], "log", &Registry::crates_io()), "`registry = \"crates-io\"`");
        // The consumer check reads the requirement and features of a crates.io dependency too.
        let libc: Vec<_> = deps_on(ioctls, "libc", &Registry::crates_io()).map(|d| &d.requirement).collect();
        assert_eq!(libc, [&Some("^0.2".to_owned())]);
        assert!(
            !ws.depends_on(ioctls, "libc", &feed)
                && !ws.depends_on(ioctls, "feedcrate", &Registry::crates_io())
        );
        let ioctls_only = [CratePlan { name: "mshv-ioctls".into(), ..CratePlan::default() }];
        assert!(
            ws.takes_from_feed(&ioctls_only, &feed)
                && !ws.takes_from_feed(&ioctls_only, &Registry::crates_io())
        );
        let plan = plan(&ws, &wanted(&["mshv-ioctls", "mshv-bindings"]), "r", None, None).unwrap();
        assert_eq!(names(&plan), ["mshv-bindings", "mshv-ioctls"]);
        assert!(!ws.takes_from_feed(&plan.crates[..1], &feed));
        // One edge for two tables; the dependency is known as one, and each crate by its dir.
        assert_eq!(plan.edges, [("mshv-ioctls".to_owned(), "mshv-bindings".to_owned())]);
        let shown: Vec<(bool, &str)> =
            plan.crates.iter().map(|c| (c.is_dependency, c.dir.as_str())).collect();
        assert_eq!(shown, [(true, "crates/mshv-bindings"), (false, "crates/mshv-ioctls")]);
        assert_eq!(manifest::pinned(&plan.pins(), "mshv-bindings"), Some("0.3.1"));
    }

    /// Issue 14, 1: a member without a version (today's hyperlight-testing) leaves
    /// the workspace readable; it is not publishable, and asking for it says why.
    /// A crate cargo makes a member because a member depends on it by path is one.
    #[test]
    fn a_versionless_member_and_an_implicit_path_member() {
        let (_d, ws) = workspace(&[
            ("Cargo.toml", "[workspace]\nmembers = [\"app\", \"testing\"]\n"),
            (
                "app/Cargo.toml",
                "[package]\nname = \"app\"\nversion = \"0.1.0\"\n[dependencies]\ncore = { path = \"../core\", version = \"0.0.0\" }\n",
            ),
            // Written out, 0.0.0 is a version.
            ("core/Cargo.toml", "[package]\nname = \"core\"\nversion = \"0.0.0\"\n"),
            ("testing/Cargo.toml", "[package]\nname = \"testing\"\n"),
        ]);
        let publishable: Vec<&str> =
            ws.members.iter().filter(|m| m.refusal.is_none()).map(|m| m.name.as_str()).collect();
        assert_eq!(publishable, ["app", "core"]);
        let plan = plan(&ws, &wanted(&["app", "core"]), "r", None, PUBLISH).unwrap();
        assert_eq!(names(&plan), ["core", "app"]);
        let msg = format!(
            "{:#}",
            super::plan(&ws, &wanted(&["testing"]), "r", None, PUBLISH).err().expect("an error")
        );
        assert!(msg.contains("`testing` cannot be published: its manifest has no `version`"), "{msg}");
        assert!(msg.contains("cargo would refuse it; drop `-p testing`"), "{msg}");
        let msg =
            format!("{:#}", super::plan(&ws, &wanted(&["app"]), "r", None, None).err().expect("an error"));
        assert!(msg.contains("`app` depends on `core`") && msg.contains("add `--crate core`"), "{msg}");
    }

    fn plan_error(files: &[(&str, &str)], list: &[&str]) -> String {
        let (_d, ws) = workspace(files);
        format!("{:#}", plan(&ws, &wanted(list), "hyperlight_redist", None, None).err().expect("an error"))
    }

    #[test]
    fn crates_missing_from_the_workspace_are_named_at_once() {
        let msg = plan_error(
            &[
                ("Cargo.toml", ROOT),
                ("mshv-bindings/Cargo.toml", BINDINGS),
                ("mshv-ioctls/Cargo.toml", IOCTLS),
            ],
            &["mshv-bindings", "mshv-vfio", "mshv-irq"],
        );
        assert!(msg.contains("`mshv-vfio`, `mshv-irq` are not crates of the workspace"), "{msg}");
        assert!(msg.contains("mshv-bindings, mshv-ioctls"), "{msg}");
    }

    #[test]
    fn a_dependent_without_its_dependency() {
        let lost = "[package]\nname = \"mshv-ioctls\"\nversion = \"0.1.1\"\n[dependencies]\n";
        let msg = plan_error(
            &[("Cargo.toml", ROOT), ("mshv-bindings/Cargo.toml", BINDINGS), ("mshv-ioctls/Cargo.toml", lost)],
            &["mshv-bindings", "mshv-ioctls"],
        );
        assert!(msg.contains("do not depend on each other"), "{msg}");
    }

    /// Every crate the selection needs by path, also through each other, in one
    /// error; a need that can never be met names the crate to leave out instead.
    #[test]
    fn path_dependencies_left_out_are_named_at_once() {
        let root = "[workspace]\nmembers = [\"a\", \"b\", \"c\", \"d\"]\n";
        let krate = |name: &str, deps: &str| {
            format!("[package]\nname = \"{name}\"\nversion = \"0.1.0\"\n[dependencies]\n{deps}")
        };
        let a = krate("a", "b = { path = \"../b\" }\nc = { path = \"../c\" }\n");
        let b = krate("b", "d = { path = \"../d\" }\n");
        let (c, d) = (krate("c", ""), krate("d", ""));
        let files = [
            ("Cargo.toml", root),
            ("a/Cargo.toml", &a),
            ("b/Cargo.toml", &b),
            ("c/Cargo.toml", &c),
            ("d/Cargo.toml", &d),
        ];
        let msg = plan_error(&files, &["a"]);
        assert!(msg.contains("add `--crate b --crate c --crate d`"), "{msg}");
        assert!(msg.contains("`b` depends on `d`"), "{msg}");
        // publish: `-p` adds a crate; an `--exclude` that left one out is dropped.
        let (_d, ws) = workspace(&files);
        let exclude = wanted(&["c"]);
        let msg = format!("{:#}", plan(&ws, &[], "r", None, Some(&exclude)).err().expect("an error"));
        assert!(msg.contains("drop `--exclude c` (a crate already in the feed is skipped)"), "{msg}");
        // Or leave out, with `d`, every crate that needs it, also through another (Hyperlight's
        // hyperlight-libc, its submodule not checked out: guest-bin, then the capi).
        let msg = format!("{:#}", plan(&ws, &[], "r", None, Some(&wanted(&["d"]))).err().expect("an error"));
        assert!(msg.ends_with("or leave out what needs it too: `--exclude a --exclude b`"), "{msg}");
        let msg =
            format!("{:#}", plan(&ws, &wanted(&["a", "b"]), "r", None, PUBLISH).err().expect("an error"));
        assert!(msg.contains("add `-p c -p d`"), "{msg}");

        let closed = "[package]\nname = \"d\"\nversion = \"0.1.0\"\npublish = false\n";
        let files = [
            ("Cargo.toml", root),
            ("a/Cargo.toml", &a),
            ("b/Cargo.toml", &b),
            ("c/Cargo.toml", &c),
            ("d/Cargo.toml", closed),
        ];
        let msg = plan_error(&files, &["a", "b", "c"]);
        assert!(msg.contains("`b` depends on `d`") && msg.contains("publish = false"), "{msg}");
        assert!(msg.contains("Leave `b` out (leave `b` out of `--crate`), or make `d` publishable"), "{msg}");
        assert!(!msg.contains("add `--crate d`"), "{msg}");
    }

    #[test]
    fn a_dependency_from_a_registry_instead_of_the_workspace() {
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
        for (spec, from) in [
            (
                "{ version = \"0.1\", registry = \"hyperlight_redist\" }",
                format!("from the registry at {FEED}"),
            ),
            (
                "{ git = \"https://example.invalid/mshv\" }",
                "from the git repository git+https://example.invalid/mshv".into(),
            ),
        ] {
            let ioctls = from_crates_io.replace("bindings = \"0.1.1\"", &format!("bindings = {spec}"));
            let files = [
                ("Cargo.toml", ROOT),
                ("mshv-bindings/Cargo.toml", BINDINGS),
                ("mshv-ioctls/Cargo.toml", &ioctls),
            ];
            let msg = plan_error(&files, &["mshv-bindings", "mshv-ioctls"]);
            assert!(msg.contains(&from), "{msg}");
        }
    }

    /// Issue 14, 4: cargo drops path-only dev-dependencies (also inherited ones), so
    /// a cycle through one is legal; one with a version is published and must be in
    /// the registry first, which a cycle makes impossible (cargo fails, measured).
    #[test]
    fn dev_dependency_cycles_follow_cargo() {
        let root = "[workspace]\nmembers = [\"mshv-bindings\", \"mshv-ioctls\"]\n[workspace.dependencies]\nmshv-ioctls = { path = \"mshv-ioctls\" }\n";
        let bindings = format!("{BINDINGS}\n[dev-dependencies]\nmshv-ioctls = {{ workspace = true }}\n");
        let (_d, ws) = workspace(&[
            ("Cargo.toml", root),
            ("mshv-bindings/Cargo.toml", &bindings),
            ("mshv-ioctls/Cargo.toml", IOCTLS),
        ]);
        let plan = plan(&ws, &wanted(&["mshv-ioctls", "mshv-bindings"]), "r", None, None).unwrap();
        assert_eq!(names(&plan), ["mshv-bindings", "mshv-ioctls"]);
        // Alone, the bindings crate does not need the ioctls one either.
        assert!(super::plan(&ws, &wanted(&["mshv-bindings"]), "r", None, None).is_ok());

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
        assert!(msg.contains("cycle") && msg.contains("`mshv-bindings` on `mshv-ioctls`"), "{msg}");
        assert!(msg.contains("drop its `version`"), "{msg}");
    }

    /// A path-only root entry a crate to publish needs as a dependency gets a version;
    /// when a crate to publish also inherits it as a dev-dependency, cargo would then
    /// publish that dev-dependency: refused, naming the entry and the fix.
    #[test]
    fn a_root_entry_both_needed_and_a_dev_dependency_is_refused() {
        let root =
            "[workspace]\nmembers = [\"a\", \"b\", \"c\"]\n[workspace.dependencies]\nb = { path = \"b\" }\n";
        let krate =
            |name: &str, deps: &str| format!("[package]\nname = \"{name}\"\nversion = \"0.1.0\"\n{deps}");
        let a = krate("a", "[dependencies]\nb = { workspace = true }\n");
        let c = krate("c", "[dev-dependencies]\nb = { workspace = true }\n");
        let b = krate("b", "");
        let files =
            [("Cargo.toml", root), ("a/Cargo.toml", a.as_str()), ("b/Cargo.toml", &b), ("c/Cargo.toml", &c)];
        let (_d, ws) = workspace(&files);
        let rewrite = |list: &[&str]| {
            let plan = plan(&ws, &wanted(list), "r", None, PUBLISH).unwrap();
            use crate::publish::manifest::{Requirement, Rewrite};
            let rw = Rewrite {
                registry: Some("r"),
                pins: &plan.pins(),
                package_version: None,
                requirement: Requirement::Keep,
            };
            ws.rewrite(&rw)
        };
        let msg = format!("{:#}", rewrite(&["a", "b", "c"]).expect_err("an error"));
        assert!(msg.contains("`[workspace.dependencies] b`") && msg.contains("c/Cargo.toml"), "{msg}");
        assert!(rewrite(&["a", "b"]).unwrap());
        assert!(!rewrite(&["a", "b"]).unwrap(), "a second rewrite changed something");
        let root_after = std::fs::read_to_string(ws.root.join("Cargo.toml")).unwrap();
        assert!(
            root_after.contains("b = { path = \"b\", version = \"0.1.0\", registry = \"r\" }"),
            "{root_after}"
        );
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
        assert!(msg.contains("cargo would refuse it; leave `mshv-bindings` out of `--crate`"), "{msg}");

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
        assert!(msg.contains("publish = [\"crates-io\"]`: add `hyperlight_redist` to allow it)"), "{msg}");
    }

    #[test]
    fn a_member_is_not_taken_for_the_root() {
        let (dir, _) = workspace(&[
            ("Cargo.toml", ROOT),
            ("mshv-bindings/Cargo.toml", BINDINGS),
            ("mshv-ioctls/Cargo.toml", IOCTLS),
        ]);
        let feed = Registry { name: "r".into(), index: FEED.into() };
        let member = dir.path().join("mshv-ioctls");
        let msg = format!("{:#}", Workspace::read(&member, &feed).err().expect("an error"));
        assert!(msg.contains("is not the root of its workspace"), "{msg}");
    }

    #[test]
    fn a_workspace_cargo_cannot_read_is_an_error_naming_it() {
        let dir = tempdir::Dir::new();
        std::fs::write(dir.path().join("Cargo.toml"), "[workspace]\nmembers = [\"gone\"]\n").unwrap();
        let feed = Registry { name: "r".into(), index: FEED.into() };
        let msg = format!("{:#}", Workspace::read(dir.path(), &feed).err().expect("an error"));
        assert!(msg.contains("cargo cannot read the workspace at") && msg.contains("gone"), "{msg}");
    }
}
