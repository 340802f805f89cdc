//! Builds the host's members that depend on the crates against the packaged
//! crates (cargo's `[patch]` in a copy of the host), before an upload that cannot be
//! taken back: the crates verify on their own, it is the consumer that breaks, as
//! mshv's unbounded `vmm-sys-util` requirement broke `hyperlight_host`.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use camino::Utf8Path;

use super::engine::{CratePlan, Engine, feed_error, tail};
use super::manifest::{self, Kind};
use super::workspace::Workspace;
use crate::feeds::Registry;
use crate::git::{self, Git};
use crate::json::{self, Value};
use crate::{gha, run};

/// One grouped warning for the requirements of the packaged crates with no upper
/// bound (`>=X`, `>X`, `*`): a fresh resolution takes the newest version, which a
/// consumer may not build with. Returns the warning, also printed.
pub fn warn_unbounded(crates: &[CratePlan]) -> anyhow::Result<Option<String>> {
    let mut found = Vec::new();
    for krate in crates {
        let path = krate.packaged.join("Cargo.toml");
        let text = std::fs::read_to_string(&path).with_context(|| format!("cannot read {path}"))?;
        let unbounded: Vec<String> = manifest::dependencies(&path, &text)?
            .into_iter()
            .filter_map(|dep| {
                let req = dep.requirement.as_deref().filter(|r| dep.kind != Kind::Dev && is_unbounded(r))?;
                Some(format!("{} `{req}`", dep.package))
            })
            .collect();
        if !unbounded.is_empty() {
            found.push(format!("{} {} requires {}", krate.name, krate.version, unbounded.join(", ")));
        }
    }
    if found.is_empty() {
        return Ok(None);
    }
    let warning = format!(
        "requirements with no upper bound: {}. A fresh resolution takes the newest versions, which a \
         consumer may not build with; consumers should pin them in their Cargo.lock",
        found.join("; ")
    );
    eprintln!("warning: {warning}");
    gha::warning(&warning);
    Ok(Some(warning))
}

/// Whether no version is too new for `requirement`: every comparator is `>`,
/// `>=` or `*`.
fn is_unbounded(requirement: &str) -> bool {
    requirement.split(',').map(str::trim).all(|c| c == "*" || c.starts_with('>'))
}

/// A consumer's requirement on a packaged crate that cargo did not satisfy with it.
struct Unchecked {
    consumer: String,
    krate: String,
    req: String,
    version: String,
}

/// The unchecked requirements in one line.
fn one_line(unchecked: &[Unchecked]) -> String {
    unchecked.iter().map(|u| u.to_string()).collect::<Vec<_>>().join("; ")
}

impl std::fmt::Display for Unchecked {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} requires {} `{}`, which excludes the packaged {}",
            self.consumer, self.krate, self.req, self.version
        )
    }
}

/// Builds the members of `host` that depend on `crates` against the packaged
/// crates: an error before any upload when a requirement excludes a packaged
/// version (unless `allow_unchecked`) or a consumer does not compile. A dry run that
/// cannot read a feed the host needs skips the check with a warning.
pub fn check(
    engine: &mut Engine,
    host: &Utf8Path,
    crates: &[CratePlan],
    dry_run: bool,
    allow_unchecked: bool,
) -> anyhow::Result<()> {
    let t = Instant::now();
    if !host.join("Cargo.toml").is_file() {
        engine.stage("consumer", &format!("no workspace at {host}: nothing to build against the crates"), t);
        return Ok(());
    }
    let feed = engine.registry().clone();
    let wants = wants(host, &feed, crates)?;
    let names: Vec<&str> = crates.iter().map(|c| c.name.as_str()).collect();
    if wants.is_empty() {
        let what = format!("no member of {host} depends on {} from {}", names.join(", "), feed.name);
        engine.stage("consumer", &what, t);
        return Ok(());
    }

    let copy = engine.work().join("consumer");
    Git::find()?.snapshot(host, &copy)?;
    let patches = patches(engine, crates);
    let (graph, stderr) = match resolve(&feed, &copy, &patches)? {
        Ok(stdout) => {
            (Some(json::parse(&stdout).context("reading the answer of `cargo metadata`")?), String::new())
        }
        Err(stderr) => (None, stderr),
    };
    let unchecked = unchecked(&wants, graph.as_ref(), &stderr);
    if graph.is_none() && unchecked.is_empty() {
        return unresolved(&feed.name, host, &wants, &stderr, dry_run);
    }
    report_unchecked(&unchecked, allow_unchecked)?;
    // Without a resolution (cargo refused it for a requirement), nothing can build.
    let consumers = if graph.is_some() { to_build(&wants, &unchecked) } else { Vec::new() };
    let not_checked =
        if unchecked.is_empty() { String::new() } else { format!("; not checked: {}", one_line(&unchecked)) };
    if consumers.is_empty() {
        engine.stage("consumer", &format!("nothing built{not_checked}"), t);
        return Ok(());
    }
    build(engine, host, &copy, &consumers, &patches, graph.as_ref(), crates)?;
    engine.stage(
        "consumer",
        &format!(
            "{} of {host} built against the packaged {}{not_checked}",
            consumers.join(", "),
            names.join(", ")
        ),
        t,
    );
    Ok(())
}

/// The consumers' requirements cargo did not satisfy with the packaged crates: as
/// the resolved `graph` says, or, when cargo refused to resolve, as its `stderr` says.
fn unchecked(wants: &[(String, &CratePlan, String)], graph: Option<&Value>, stderr: &str) -> Vec<Unchecked> {
    wants
        .iter()
        .filter(|(consumer, krate, _)| match graph {
            Some(graph) => !took_packaged(graph, consumer, krate),
            None => excluded_by_resolution(stderr, &krate.name),
        })
        .map(|(consumer, krate, req)| Unchecked {
            consumer: consumer.clone(),
            krate: krate.name.clone(),
            req: req.clone(),
            version: krate.version.clone(),
        })
        .collect()
}

/// (consumer, crate, requirement) for each dependency of a member of the host at
/// `host` on a packaged crate from `feed`, the host read by cargo.
fn wants<'a>(
    host: &Utf8Path,
    feed: &Registry,
    crates: &'a [CratePlan],
) -> anyhow::Result<Vec<(String, &'a CratePlan, String)>> {
    let ws = Workspace::read(host, feed).with_context(|| format!("reading the host workspace at {host}"))?;
    let mut wants = Vec::new();
    for member in &ws.members {
        for krate in crates.iter().filter(|c| ws.depends_on(member, &c.name, feed)) {
            let req = member.deps.iter().find(|d| d.package == krate.name).map(|d| d.req.clone());
            wants.push((member.name.clone(), krate, req.unwrap_or_default()));
        }
    }
    Ok(wants)
}

/// The consumers with at least one packaged crate cargo resolved to the packaged copy.
fn to_build<'a>(wants: &'a [(String, &CratePlan, String)], unchecked: &[Unchecked]) -> Vec<&'a str> {
    let mut consumers: Vec<&str> = Vec::new();
    for (consumer, krate, _) in wants {
        let checked = !unchecked.iter().any(|u| u.consumer == *consumer && u.krate == krate.name);
        if checked && !consumers.contains(&consumer.as_str()) {
            consumers.push(consumer);
        }
    }
    consumers
}

/// The host's copy resolved by cargo with the packaged crates patched in: the
/// answer of `cargo metadata`, or cargo's stderr when it cannot resolve.
fn resolve(feed: &Registry, copy: &Utf8Path, patches: &[String]) -> anyhow::Result<Result<String, String>> {
    let mut args = vec!["metadata", "--format-version", "1"];
    args.extend(patches.iter().flat_map(|p| ["--config", p.as_str()]));
    let mut program = run::cargo(copy, &args).label("cargo metadata").timeout(Duration::from_secs(1800));
    if !feed.is_crates_io() {
        program = program.env(&feed.env_var("index"), &feed.index);
    }
    match program.output() {
        Ok(out) => Ok(Ok(out.stdout)),
        Err(err) => match err.stderr() {
            Some(stderr) => Ok(Err(stderr.to_owned())),
            None => Err(err.into()),
        },
    }
}

/// The `--config` patches that put each packaged crate in the feed's place, under
/// the feed's name and under the empty index's URL, which the packaged dependents
/// name their dependencies by.
fn patches(engine: &Engine, crates: &[CratePlan]) -> Vec<String> {
    let feed = &engine.registry().name;
    let index = git::file_url(&engine.work().join("empty-index"));
    let mut patches = Vec::new();
    for krate in crates {
        let path = toml_edit::Value::from(krate.packaged.as_str());
        patches.push(format!("patch.{feed}.{}.path={path}", krate.name));
        patches.push(format!("patch.{}.{}.path={path}", toml_edit::Value::from(index.as_str()), krate.name));
    }
    patches
}

/// The consumers' requirements cargo did not meet with the packaged crates: an
/// error naming each, or with `allow` a warning that they were not checked.
fn report_unchecked(unchecked: &[Unchecked], allow: bool) -> anyhow::Result<()> {
    if unchecked.is_empty() {
        return Ok(());
    }
    let list = one_line(unchecked);
    if allow {
        let warning = format!("not checked (--allow-unchecked-consumers): {list}");
        eprintln!("warning: {warning}");
        gha::warning(&warning);
        return Ok(());
    }
    bail!(
        "{list}: cargo would not build them against the crates to publish, so nothing vouches for them; \
         nothing was uploaded. Publish under a version they accept, change their requirement, or \
         pass --allow-unchecked-consumers to publish without checking them"
    )
}

/// Whether, in the resolved `graph`, the member `consumer` takes `krate` from
/// the packaged copy.
fn took_packaged(graph: &Value, consumer: &str, krate: &CratePlan) -> bool {
    let packages = packages(graph);
    let manifest = krate.packaged.join("Cargo.toml");
    let Some(node) = nodes(graph).iter().find(|n| {
        let id = n.get("id").and_then(Value::as_str).unwrap_or_default();
        packages.get(id).is_some_and(|p| p.name == consumer && p.source.is_none())
    }) else {
        return false;
    };
    list(node.get("deps")).iter().any(|dep| {
        let id = dep.get("pkg").and_then(Value::as_str).unwrap_or_default();
        packages.get(id).is_some_and(|p| p.name == krate.name && Utf8Path::new(&p.manifest) == manifest)
    })
}

/// Whether cargo failed to resolve because no version it may take for `name`,
/// the packaged one included, meets a requirement.
fn excluded_by_resolution(stderr: &str, name: &str) -> bool {
    stderr.contains(&format!("failed to select a version for the requirement `{name} = "))
        || stderr.contains(&format!("no matching package named `{name}` found"))
}

/// The consumer check could not resolve the host: a feed's problem, read by the one
/// classifier of cargo's messages; in a dry run, a warning and no check.
fn unresolved(
    feed: &str,
    host: &Utf8Path,
    wants: &[(String, &CratePlan, String)],
    stderr: &str,
    dry_run: bool,
) -> anyhow::Result<()> {
    let mut consumers: Vec<&str> = wants.iter().map(|(c, ..)| c.as_str()).collect();
    consumers.dedup();
    let why = feed_error(feed, stderr, crate::cargo::Need::Read);
    if dry_run {
        let warning = format!(
            "skipped the consumer check: resolving {} needs a feed this dry run cannot read: {why:#}",
            consumers.join(", ")
        );
        eprintln!("warning: {warning}");
        gha::warning(&warning);
        return Ok(());
    }
    let what = format!("cannot resolve {} of {host} for the consumer check", consumers.join(", "));
    Err(why.context(what))
}

/// `cargo check` of `consumers` in the host's copy; on a failure, the error names
/// the crates the graph holds twice (one copy pulled by a packaged crate), with the
/// command that unifies them, as cargo accepts it.
fn build(
    engine: &mut Engine,
    host: &Utf8Path,
    copy: &Utf8Path,
    consumers: &[&str],
    patches: &[String],
    graph: Option<&Value>,
    crates: &[CratePlan],
) -> anyhow::Result<()> {
    let mut args = vec!["check"];
    args.extend(consumers.iter().flat_map(|c| ["-p", *c]));
    args.extend(patches.iter().flat_map(|p| ["--config", p.as_str()]));
    let Err(failed) = engine.cargo(copy, &args, true)? else {
        return Ok(());
    };
    let names: Vec<&str> = crates.iter().map(|c| c.name.as_str()).collect();
    let twice = match graph {
        Some(graph) => duplicates(engine, copy, graph, crates, patches)?,
        None => String::new(),
    };
    bail!(
        "{} of {host} do not build against the packaged {}; nothing was uploaded:\n{}{twice}\n\
         Publish a rev they build with, or skip this check with --no-consumer-check",
        consumers.join(", "),
        names.join(", "),
        tail(&failed.stderr)
    )
}

struct Package {
    name: String,
    version: String,
    manifest: String,
    /// None for a path package (a member, or a packaged crate patched in).
    source: Option<String>,
}

fn packages(graph: &Value) -> BTreeMap<String, Package> {
    let text = |p: &Value, key: &str| p.get(key).and_then(Value::as_str).unwrap_or_default().to_owned();
    list(graph.get("packages"))
        .iter()
        .map(|p| {
            let package = Package {
                name: text(p, "name"),
                version: text(p, "version"),
                manifest: text(p, "manifest_path"),
                source: p.get("source").and_then(Value::as_str).map(str::to_owned),
            };
            (text(p, "id"), package)
        })
        .collect()
}

fn nodes(graph: &Value) -> &[Value] {
    list(graph.get("resolve").and_then(|r| r.get("nodes")))
}

fn list(value: Option<&Value>) -> &[Value] {
    match value {
        Some(Value::Array(items)) => items,
        _ => &[],
    }
}

/// Each crate resolved at two versions in `graph` where a packaged crate pulls one
/// of them: both versions, who pulls each, and the `cargo update` that cargo
/// accepts to unify them (asked with `--dry-run` in the host's copy).
fn duplicates(
    engine: &mut Engine,
    copy: &Utf8Path,
    graph: &Value,
    crates: &[CratePlan],
    patches: &[String],
) -> anyhow::Result<String> {
    let packages = packages(graph);
    // id → the names and versions of the packages that depend on it.
    let mut pulled_by: BTreeMap<&str, Vec<String>> = BTreeMap::new();
    for node in nodes(graph) {
        let Some(from) = node.get("id").and_then(Value::as_str).and_then(|id| packages.get(id)) else {
            continue;
        };
        for dep in list(node.get("deps")) {
            if let Some(id) = dep.get("pkg").and_then(Value::as_str) {
                pulled_by.entry(id).or_default().push(format!("{} {}", from.name, from.version));
            }
        }
    }
    let is_packaged = |who: &str| crates.iter().any(|c| who == format!("{} {}", c.name, c.version));
    let mut by_name: BTreeMap<&str, Vec<(&str, &Package)>> = BTreeMap::new();
    for (id, package) in &packages {
        if pulled_by.contains_key(id.as_str()) {
            by_name.entry(&package.name).or_default().push((id, package));
        }
    }
    let mut lines = Vec::new();
    for (name, versions) in by_name.iter().filter(|(_, v)| v.len() > 1) {
        if !versions.iter().any(|(id, _)| pulled_by[id].iter().any(|w| is_packaged(w))) {
            continue;
        }
        let shown: Vec<String> = versions
            .iter()
            .map(|(id, p)| format!("{} (for {})", p.version, pulled_by[id].join(", ")))
            .collect();
        let fix = unifying_update(engine, copy, name, versions, patches)?;
        lines.push(format!("{name} at {}: {fix}", shown.join(" and ")));
    }
    if lines.is_empty() {
        return Ok(String::new());
    }
    Ok(format!("\nThe graph holds these crates twice, and their types do not mix:\n  {}", lines.join("\n  ")))
}

/// The `cargo update -p NAME@X --precise Y` that cargo accepts for two versions of
/// `name`, the newer moved to the older first.
fn unifying_update(
    engine: &mut Engine,
    copy: &Utf8Path,
    name: &str,
    versions: &[(&str, &Package)],
    patches: &[String],
) -> anyhow::Result<String> {
    let mut candidates: Vec<(&str, &str)> = Vec::new();
    for (_, a) in versions {
        for (_, b) in versions {
            if a.version != b.version {
                candidates.push((&a.version, &b.version));
            }
        }
    }
    // Newer to older first: the unbounded requirement is the usual cause.
    candidates.sort_by_key(|(from, _)| std::cmp::Reverse(version_key(from)));
    for (from, to) in candidates {
        let spec = format!("{name}@{from}");
        let mut args = vec!["update", "--dry-run", "-p", &spec, "--precise", to];
        args.extend(patches.iter().flat_map(|p| ["--config", p.as_str()]));
        if engine.cargo(copy, &args, false)?.is_ok() {
            return Ok(format!("`cargo update -p {spec} --precise {to}` in the host unifies them"));
        }
    }
    Ok("no `cargo update --precise` unifies them: a requirement of the packaged crates must change".into())
}

fn version_key(version: &str) -> Vec<u64> {
    version.split(['.', '-', '+']).map(|p| p.parse().unwrap_or(0)).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn packaged(name: &str, version: &str, dir: &str) -> CratePlan {
        CratePlan {
            name: name.into(),
            version: version.into(),
            dir: dir.into(),
            is_dependency: false,
            packaged: dir.into(),
            listed: None,
            outcome: super::super::Outcome::Missing,
        }
    }

    /// Cargo's resolution says which copy a consumer took: the packaged one (a path
    /// package at the packaged dir) or the feed's.
    #[test]
    fn the_resolution_says_whether_the_packaged_crate_was_taken() {
        let graph = json::parse(
            r#"{"packages":[
              {"id":"path+file:///h#host@0.1.0","name":"host","version":"0.1.0","manifest_path":"/h/Cargo.toml","source":null},
              {"id":"path+file:///w/ioctls#mshv-ioctls@0.1.2","name":"mshv-ioctls","version":"0.1.2","manifest_path":"/w/ioctls/Cargo.toml","source":null},
              {"id":"sparse+http://f/#mshv-bindings@0.1.1","name":"mshv-bindings","version":"0.1.1","manifest_path":"/r/Cargo.toml","source":"sparse+http://f/"}],
             "resolve":{"nodes":[{"id":"path+file:///h#host@0.1.0","deps":[
               {"name":"mshv_ioctls","pkg":"path+file:///w/ioctls#mshv-ioctls@0.1.2"},
               {"name":"mshv_bindings","pkg":"sparse+http://f/#mshv-bindings@0.1.1"}]}]}}"#,
        )
        .unwrap();
        assert!(took_packaged(&graph, "host", &packaged("mshv-ioctls", "0.1.2", "/w/ioctls")));
        assert!(!took_packaged(&graph, "host", &packaged("mshv-bindings", "0.1.2", "/w/bindings")));
        assert!(!took_packaged(&graph, "other", &packaged("mshv-ioctls", "0.1.2", "/w/ioctls")));
        let stderr = "error: failed to select a version for the requirement `mshv-ioctls = \"=0.1.1\"`\n\
                      candidate versions found which didn't match: 0.1.2";
        assert!(excluded_by_resolution(stderr, "mshv-ioctls"));
        assert!(!excluded_by_resolution(stderr, "mshv-bindings"));
        assert!(version_key("0.15.0") > version_key("0.11.2"));
    }

    #[test]
    fn requirements_without_an_upper_bound() {
        for unbounded in [">=0.2.1", "> 1", "*", ">=1.0, >1.1"] {
            assert!(is_unbounded(unbounded), "{unbounded}");
        }
        for bounded in ["0.2.1", "^0.2", "~1.2", "=0.1.1", ">=0.2, <0.4", "0.*", "<2"] {
            assert!(!is_unbounded(bounded), "{bounded}");
        }
    }
}
