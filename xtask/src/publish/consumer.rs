//! Builds the host's dependents against the packages before an upload: verified crates can still break them.

use std::collections::BTreeMap;
use std::time::Instant;

use anyhow::{Context, bail, ensure};
use camino::Utf8Path;

use super::engine::{CratePlan, Engine, feed_error, items, nodes, package, repeated, tail, text};
use super::manifest::{self, Dep, Kind};
use super::workspace::{Workspace, deps_on};
use crate::cargo::Need;
use crate::git;
use crate::json::Value;

/// A member of the host, a packaged crate it depends on, and its requirement.
type Want<'a> = (String, &'a CratePlan, String);

/// `member/feature`, and the member's dependency (its key, the crate) that the feature turns on.
type Feature<'a> = (String, String, String, &'a CratePlan);

/// The members taking a packaged crate from the feed, their features, and the others'
/// sources of one (` (member takes crate from crates.io)`, or nothing).
type Wants<'a> = (Vec<Want<'a>>, Vec<Feature<'a>>, String);

/// Warns of the packages' requirements with no upper bound.
pub fn warn_unbounded(crates: &[CratePlan]) -> anyhow::Result<()> {
    let mut found = Vec::new();
    for krate in crates {
        let path = krate.packaged.join("Cargo.toml");
        let text = std::fs::read_to_string(&path).with_context(|| format!("cannot read {path}"))?;
        let unbounded: Vec<String> = (manifest::dependencies(&path, &text)?.into_iter())
            .filter(|dep| dep.kind != Kind::Dev && dep.requirement.as_deref().is_some_and(is_unbounded))
            .map(|dep| format!("{} `{}`", dep.package, dep.requirement.unwrap_or_default()))
            .collect();
        if !unbounded.is_empty() {
            found.push(format!("{} {} requires {}", krate.name, krate.version, unbounded.join(", ")));
        }
    }
    if !found.is_empty() {
        crate::gha::warning(&format!(
            "requirements with no upper bound: {}. A fresh resolution takes the newest versions, which a \
             consumer may not build with; consumers should pin them in their Cargo.lock",
            found.join("; ")
        ));
    }
    Ok(())
}

fn is_unbounded(requirement: &str) -> bool {
    requirement.split(',').map(str::trim).all(|c| c == "*" || c.starts_with('>'))
}

/// An error when a member of `host` excludes or does not build against a package.
pub fn check(engine: &Engine, host: &Utf8Path, crates: &[CratePlan], allow: bool) -> anyhow::Result<()> {
    let t = Instant::now();
    let (wants, features, elsewhere) = wants(host, engine, crates)?;
    let names = crates.iter().map(|c| c.name.as_str()).collect::<Vec<_>>().join(", ");
    if wants.is_empty() {
        let what = format!("no member of {host} depends on {names} from {}{elsewhere}", engine.registry.name);
        engine.stage("consumer", &what, t.elapsed());
        return Ok(());
    }
    // A copy, uncommitted changes included: cargo writes its lock file and target dir.
    let (git, copy) = (engine.git, engine.work.join("consumer"));
    let (top, prefix) = git.toplevel(host)?;
    let copied = git.copy_repository(&top, &copy, true);
    copied.context("copying the host for the consumer check (`--no-consumer-check` skips it)")?;
    let copy = copy.join(prefix);
    let patches = patches(engine, crates);
    let more = [repeated("--config", &patches), flags(&features, |_| true)].concat();
    let resolved = engine.metadata(&copy, None, false, &more)?;
    let (consumers, not_checked) = unchecked(&resolved, &wants, allow)?;
    if let Err(stderr) = &resolved
        && not_checked.is_empty()
    {
        return unreadable(engine, host, &consumers.join(", "), stderr);
    }
    // Without a resolution (cargo refused it for a requirement), nothing can build.
    let (Ok(graph), false) = (resolved, consumers.is_empty()) else {
        engine.stage("consumer", &format!("nothing built{not_checked}"), t.elapsed());
        return Ok(());
    };
    // Only the consumers' features (cargo refuses others) whose dependency took the packaged crate.
    let on = flags(&features, |(_, m, k, c)| consumers.contains(m) && took_packaged(&graph, m, c, k));
    let args = [vec!["check"], repeated("-p", &consumers), repeated("--config", &patches), on].concat();
    let (who, one) = (format!("{} of {host}", consumers.join(", ")), consumers.len() == 1);
    let mut built = format!("{who} built against the packaged {names}{not_checked}");
    if let Err(stderr) = engine.cargo(&copy, &args, true)? {
        let mut twice = twice(&graph, crates);
        unify(engine, &copy, &mut twice, &more, &patches)?;
        let commands: Vec<&str> = twice.iter().filter_map(|t| t.2.as_deref()).collect();
        // The check's copy can take them now; the host only once the crates are on the feed.
        let again = if commands.is_empty() { Err(stderr) } else { engine.cargo(&copy, &args, true)? };
        let (does, it) = if one { ("does", "it builds") } else { ("do", "they build") };
        if let Err(stderr) = again {
            bail!(
                "{who} {does} not build against the packaged {names}; nothing was uploaded:\n{}{}\n\
                 Publish a rev {it} with, or skip this check with --no-consumer-check",
                tail(&stderr),
                twice.iter().map(described).collect::<String>()
            )
        }
        let commands = commands.join("` and `");
        crate::gha::warning(&format!(
            "{who} {} against the packaged {names} only after `{commands}`, which the check ran in its \
             copy: after publishing, run the same in {host} and keep the Cargo.lock it writes",
            if one { "builds" } else { "build" }
        ));
        built.push_str(&format!(" after `{commands}`"));
    }
    engine.stage("consumer", &built, t.elapsed());
    Ok(())
}

/// When resolving `members` needs a feed cargo could not read: an error, or in a dry run a warning.
fn unreadable(engine: &Engine, host: &Utf8Path, members: &str, stderr: &str) -> anyhow::Result<()> {
    // A feed's problem, by the one classifier of cargo's messages; a dry run goes on.
    let feed = &engine.registry.name;
    if !engine.dry_run {
        let why = feed_error(feed, stderr, Need::Read);
        return Err(why.context(format!("cannot resolve {members} of {host} for the consumer check")));
    }
    // Not feed_error's words, which offer `--dry-run` as the way round.
    let (verdict, feed) =
        (crate::cargo::classify(stderr), crate::cargo::registry_named(stderr).unwrap_or(feed));
    crate::gha::warning(&format!(
        "skipped the consumer check: resolving {members} needs a feed this dry run cannot read: \
         `{feed}`: {verdict}: {}",
        verdict.hint(Need::Read)
    ));
    Ok(())
}

/// `--features` for each of `features` that `keep` keeps, once each (a feature may turn on two crates).
fn flags<'a>(features: &'a [Feature], keep: impl Fn(&&Feature) -> bool) -> Vec<&'a str> {
    let mut names: Vec<&str> = features.iter().filter(keep).map(|f| f.0.as_str()).collect();
    names.sort_unstable();
    names.dedup();
    names.into_iter().flat_map(|name| ["--features", name]).collect()
}

/// The consumers that took a packaged crate; the requirements that excluded one are
/// an error, or with `allow` a warning and a note for the progress line.
fn unchecked(
    graph: &Result<Value, String>,
    wants: &[Want],
    allow: bool,
) -> anyhow::Result<(Vec<String>, String)> {
    let (mut unchecked, mut consumers, mut excluded) = (Vec::new(), Vec::new(), Vec::new());
    for (consumer, krate, req) in wants {
        let taken = match graph {
            Ok(graph) => took_packaged(graph, consumer, krate, &krate.name),
            Err(stderr) => !excluded_by_resolution(stderr, &krate.name),
        };
        if !taken {
            let (name, version) = (&krate.name, &krate.version);
            unchecked
                .push(format!("{consumer} requires {name} `{req}`, which excludes the packaged {version}"));
            excluded.push(consumer);
        } else if !consumers.contains(consumer) {
            consumers.push(consumer.clone());
        }
    }
    if unchecked.is_empty() {
        return Ok((consumers, String::new()));
    }
    let unchecked = unchecked.join("; ");
    excluded.dedup();
    let (it, accepts, its) =
        if excluded.len() == 1 { ("it", "it accepts", "its") } else { ("them", "they accept", "their") };
    ensure!(
        allow,
        "{unchecked}: cargo would not build {it} against the crates to publish, so nothing vouches \
             for {it}; nothing was uploaded. Publish under a version {accepts}, change {its} \
             requirement, or pass --allow-unchecked-consumers to publish without checking {it}"
    );
    crate::gha::warning(&format!("not checked (--allow-unchecked-consumers): {unchecked}"));
    Ok((consumers, format!("; not checked: {unchecked}")))
}

/// The members' wants, and the `member/feature`s that turn on the optional ones (none without a workspace).
fn wants<'a>(host: &Utf8Path, engine: &Engine, crates: &'a [CratePlan]) -> anyhow::Result<Wants<'a>> {
    if !host.join("Cargo.toml").is_file() {
        return Ok(Default::default());
    }
    let feed = engine.registry;
    let ws = Workspace::read(host, feed).with_context(|| format!("reading the host workspace at {host}"))?;
    let (mut wants, mut features, mut elsewhere) = (Vec::new(), Vec::new(), Vec::new());
    for member in &ws.members {
        for krate in crates {
            let deps: Vec<_> = deps_on(member, &krate.name, feed).collect();
            let Some(first) = deps.first() else {
                let other = member.deps.iter().find(|d| d.package == krate.name && d.source.is_some());
                let took = |d: &Dep| format!("{} takes {} from {}", member.name, krate.name, d.origin());
                elsewhere.extend(other.map(took));
                continue;
            };
            for dep in &deps {
                let turns_on = member.enables.iter().find(|(_, key)| *key == dep.key);
                let name = &member.name;
                features.extend(
                    turns_on.map(|(f, key)| (format!("{name}/{f}"), name.clone(), key.clone(), krate)),
                );
            }
            wants.push((member.name.clone(), krate, first.requirement.clone().unwrap_or_default()));
        }
    }
    let elsewhere = if elsewhere.is_empty() { String::new() } else { format!(" ({})", elsewhere.join(", ")) };
    Ok((wants, features, elsewhere))
}

/// The `--config` patches that put the packages in the feed's place, by its name and
/// by the empty index's URL (the packaged dependents name that).
fn patches(engine: &Engine, crates: &[CratePlan]) -> Vec<String> {
    let feed = &engine.registry.name;
    let index = toml_edit::Value::from(git::file_url(&engine.work.join("empty-index")));
    let patches = crates.iter().flat_map(|krate| {
        let (name, path) = (&krate.name, toml_edit::Value::from(krate.packaged.as_str()));
        [format!("patch.{feed}.{name}.path={path}"), format!("patch.{index}.{name}.path={path}")]
    });
    patches.collect()
}

/// Whether `consumer` took the packaged `krate`, through its dependency `key` when that is a rename.
fn took_packaged(graph: &Value, consumer: &str, krate: &CratePlan, key: &str) -> bool {
    let manifest = krate.packaged.join("Cargo.toml");
    let is_member =
        |id| package(graph, id).is_some_and(|p| text(p, "name") == consumer && text(p, "source").is_empty());
    let Some(node) = nodes(graph).iter().find(|n| is_member(text(n, "id"))) else { return false };
    // Cargo names a dependency by its library, `-` as `_`: a rename's own name.
    let named = |dep: &Value| key == krate.name || text(dep, "name") == key.replace('-', "_");
    items(node.get("deps")).iter().filter(|dep| named(dep)).any(|dep| {
        package(graph, text(dep, "pkg")).is_some_and(|p| {
            text(p, "name") == krate.name && Utf8Path::new(text(p, "manifest_path")) == manifest
        })
    })
}

/// Whether cargo failed to resolve because no version of `name` meets a requirement.
fn excluded_by_resolution(stderr: &str, name: &str) -> bool {
    stderr.contains(&format!("failed to select a version for the requirement `{name} = "))
        || stderr.contains(&format!("no matching package named `{name}` found"))
}

/// A crate twice in a graph: its name, each version (oldest first) with who takes it, and the
/// `cargo update` that unified it in the check's copy.
type Twice<'g> = (&'g str, Vec<(&'g str, Vec<String>)>, Option<String>);

/// The crates twice in `graph` whose copies meet: one taken by a packaged crate, another by a crate
/// that reaches a packaged one (a consumer, or one between) or by a dependency of such a crate.
fn twice<'g>(graph: &'g Value, crates: &[CratePlan]) -> Vec<Twice<'g>> {
    let (id, shown) =
        (|n: &'g Value| text(n, "id"), |p: &Value| format!("{} {}", text(p, "name"), text(p, "version")));
    let deps = |node: &'g Value| items(node.get("deps")).iter().map(|dep| text(dep, "pkg"));
    let manifests: Vec<_> = crates.iter().map(|c| c.packaged.join("Cargo.toml")).collect();
    let packaged =
        |i: &str| package(graph, i).is_some_and(|p| manifests.iter().any(|m| m == text(p, "manifest_path")));
    let mut reach: Vec<&str> = nodes(graph).iter().map(id).filter(|i| packaged(i)).collect();
    while let Some(node) =
        nodes(graph).iter().find(|n| !reach.contains(&id(n)) && deps(n).any(|d| reach.contains(&d)))
    {
        reach.push(id(node));
    }
    // The types a crate between handles: its own and its dependencies'.
    let between = nodes(graph).iter().filter(|n| reach.contains(&id(n)) && !packaged(id(n)));
    let meets: Vec<&str> = between.flat_map(|n| deps(n).chain([id(n)])).filter(|i| !packaged(i)).collect();
    let mut takers: BTreeMap<(&str, Vec<u64>, &str), Vec<&str>> = BTreeMap::new();
    for node in nodes(graph) {
        for p in deps(node).filter_map(|dep| package(graph, dep)) {
            let (name, version) = (text(p, "name"), text(p, "version"));
            takers.entry((name, version_key(version), version)).or_default().push(id(node));
        }
    }
    let takers: Vec<_> = takers.into_iter().map(|((name, _, version), by)| (name, version, by)).collect();
    let meet = |a: &(_, &str, Vec<&str>), b: &(_, &str, Vec<&str>)| {
        a.1 != b.1 && a.2.iter().any(|i| packaged(i)) && b.2.iter().any(|i| meets.contains(i))
    };
    let groups =
        takers.chunk_by(|a, b| a.0 == b.0).filter(|g| g.iter().any(|a| g.iter().any(|b| meet(a, b))));
    let by = |ids: &[&str]| ids.iter().filter_map(|i| package(graph, i)).map(shown).collect();
    groups.map(|g| (g[0].0, g.iter().map(|(_, v, ids)| (*v, by(ids))).collect(), None)).collect()
}

/// Unifies each of `twice` in `copy` by the first `cargo update --precise` (the newer moved to the older
/// first: an unbounded requirement is the usual cause) after which the graph holds it once.
fn unify(
    engine: &Engine,
    copy: &Utf8Path,
    twice: &mut [Twice],
    more: &[&str],
    patches: &[String],
) -> anyhow::Result<()> {
    let lock = copy.join("Cargo.lock");
    for (name, versions, command) in twice {
        // Each try from this lock: the advice names one command, and cargo also takes one that moves
        // other entries but keeps both versions.
        let before = std::fs::read(&lock).with_context(|| format!("cannot read {lock}"))?;
        let pairs =
            versions.iter().rev().flat_map(|(from, _)| versions.iter().map(move |(to, _)| (*from, *to)));
        for (from, to) in pairs.filter(|(from, to)| from != to) {
            let spec = format!("{name}@{from}");
            let args = [vec!["update", "-p", &spec, "--precise", to], repeated("--config", patches)].concat();
            let once =
                |g: &Value| items(g.get("packages")).iter().filter(|p| text(p, "name") == *name).count() == 1;
            if engine.cargo(copy, &args, false)?.is_ok()
                && engine.metadata(copy, None, false, more)?.is_ok_and(|g| once(&g))
            {
                *command = Some(format!("cargo update -p {spec} --precise {to}"));
                break;
            }
            std::fs::write(&lock, &before).with_context(|| format!("cannot write {lock}"))?;
        }
    }
    Ok(())
}

/// A line on a crate twice: who takes each version, and what unified it or could.
fn described((name, versions, command): &Twice) -> String {
    let versions: Vec<String> =
        versions.iter().map(|(v, by)| format!("{v} (for {})", by.join(", "))).collect();
    let fix = match command {
        Some(command) => format!("`{command}` unified it in the check's copy, and it failed again (above)"),
        None => {
            "no `cargo update --precise` unifies them: change the host's requirement or a packaged crate's"
                .into()
        }
    };
    format!("\n{name} at {}, whose types do not mix: {fix}", versions.join(" and "))
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
        let graph = crate::json::parse(
            r#"{"packages":[
              {"id":"path+file:///h#host@0.1.0","name":"host","version":"0.1.0","manifest_path":"/h/Cargo.toml","source":null},
              {"id":"path+file:///w/ioctls#mshv-ioctls@0.1.2","name":"mshv-ioctls","version":"0.1.2","manifest_path":"/w/ioctls/Cargo.toml","source":null},
              {"id":"sparse+http://f/#mshv-ioctls@0.1.1","name":"mshv-ioctls","version":"0.1.1","manifest_path":"/i/Cargo.toml","source":"sparse+http://f/"},
              {"id":"sparse+http://f/#mshv-bindings@0.1.1","name":"mshv-bindings","version":"0.1.1","manifest_path":"/r/Cargo.toml","source":"sparse+http://f/"}],
             "resolve":{"nodes":[{"id":"path+file:///h#host@0.1.0","deps":[
               {"name":"mshv_ioctls2","pkg":"sparse+http://f/#mshv-ioctls@0.1.1"},
               {"name":"mshv_ioctls3","pkg":"path+file:///w/ioctls#mshv-ioctls@0.1.2"},
               {"name":"mshv_bindings","pkg":"sparse+http://f/#mshv-bindings@0.1.1"}]}]}}"#,
        )
        .unwrap();
        let ioctls = packaged("mshv-ioctls", "0.1.2", "/w/ioctls");
        assert!(took_packaged(&graph, "host", &ioctls, "mshv-ioctls"));
        // Of two renames, the one whose requirement the packaged version meets.
        assert!(took_packaged(&graph, "host", &ioctls, "mshv-ioctls3"));
        assert!(!took_packaged(&graph, "host", &ioctls, "mshv-ioctls2"));
        assert!(!took_packaged(
            &graph,
            "host",
            &packaged("mshv-bindings", "0.1.2", "/w/bindings"),
            "mshv-bindings"
        ));
        assert!(!took_packaged(&graph, "other", &ioctls, "mshv-ioctls"));
        let stderr = "error: failed to select a version for the requirement `mshv-ioctls = \"=0.1.1\"`\n\
                      candidate versions found which didn't match: 0.1.2";
        assert!(excluded_by_resolution(stderr, "mshv-ioctls"));
        assert!(!excluded_by_resolution(stderr, "mshv-bindings"));
        assert!(version_key("0.15.0") > version_key("0.11.2"));
    }

    /// The shape of Hyperlight's graph with mshv 0.2.1: the host and kvm-ioctls take sysutil
    /// 0.11, the packaged crates 0.15; zc 0.7 (mshv-bindings) and 0.8 (ppv, under rng) and
    /// thiserror 1 and 2 (redox, under dirs) are twice too, but where no consumer meets them.
    #[test]
    fn only_the_copies_a_consumer_meets_are_twice() {
        let node = |id: &str, deps: &[&str]| {
            let deps: Vec<String> = deps.iter().map(|d| format!(r#"{{"pkg":"{d}"}}"#)).collect();
            format!(r#"{{"id":"{id}","deps":[{}]}}"#, deps.join(","))
        };
        let mut packages = Vec::new();
        for id in ["host 0.1.0", "kvm 0.1.0", "rng 0.1.0", "ppv 0.1.0", "dirs 0.1.0", "redox 0.1.0"]
            .into_iter()
            .chain(["sysutil 0.11.0", "sysutil 0.15.0", "zc 0.7.0", "zc 0.8.0", "thiserror 1.0.0"])
            .chain(["thiserror 2.0.0", "ioctls 0.2.1", "bindings 0.2.1"])
        {
            let (name, version) = id.split_once(' ').unwrap();
            let dir = if version == "0.2.1" { format!("/w/{name}") } else { format!("/r/{name}-{version}") };
            packages.push(format!(
                r#"{{"id":"{id}","name":"{name}","version":"{version}","manifest_path":"{dir}/Cargo.toml"}}"#
            ));
        }
        let nodes = [
            node("host 0.1.0", &["sysutil 0.11.0", "kvm 0.1.0", "rng 0.1.0", "dirs 0.1.0", "ioctls 0.2.1"]),
            node("kvm 0.1.0", &["sysutil 0.11.0"]),
            node("rng 0.1.0", &["ppv 0.1.0"]),
            node("ppv 0.1.0", &["zc 0.8.0"]),
            node("dirs 0.1.0", &["redox 0.1.0"]),
            node("redox 0.1.0", &["thiserror 2.0.0"]),
            node("ioctls 0.2.1", &["sysutil 0.15.0", "thiserror 1.0.0", "bindings 0.2.1"]),
            node("bindings 0.2.1", &["sysutil 0.15.0", "zc 0.7.0"]),
        ];
        let graph = crate::json::parse(&format!(
            r#"{{"packages":[{}],"resolve":{{"nodes":[{}]}}}}"#,
            packages.join(","),
            nodes.join(",")
        ))
        .unwrap();
        let crates = [packaged("ioctls", "0.2.1", "/w/ioctls"), packaged("bindings", "0.2.1", "/w/bindings")];
        let twice = twice(&graph, &crates);
        assert_eq!(twice.len(), 1, "{twice:?}");
        assert_eq!(
            described(&twice[0]),
            "\nsysutil at 0.11.0 (for host 0.1.0, kvm 0.1.0) and 0.15.0 (for ioctls 0.2.1, bindings 0.2.1), \
             whose types do not mix: no `cargo update --precise` unifies them: change the host's \
             requirement or a packaged crate's"
        );
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
