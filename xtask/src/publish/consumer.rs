//! Builds the host's dependents against the packages before an upload: verified crates can still break them.

use std::collections::BTreeMap;
use std::time::Instant;

use anyhow::{Context, bail, ensure};
use camino::Utf8Path;

use super::engine::{CratePlan, Engine, feed_error, items, nodes, package, repeated, tail, text};
use super::manifest::{self, Kind};
use super::workspace::Workspace;
use crate::cargo::Need;
use crate::git;
use crate::json::Value;

/// A member of the host, a packaged crate it depends on, and its requirement.
type Want<'a> = (String, &'a CratePlan, String);

/// `member/feature`, and the member's dependency (its key, the crate) that the feature turns on.
type Feature<'a> = (String, String, String, &'a CratePlan);

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
    let (wants, features) = wants(host, engine, crates)?;
    let names = crates.iter().map(|c| c.name.as_str()).collect::<Vec<_>>().join(", ");
    if wants.is_empty() {
        let what = format!("no member of {host} depends on {names} from {}", engine.registry.name);
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
        // A feed's problem, by the one classifier of cargo's messages; a dry run goes on.
        let (members, feed) = (consumers.join(", "), &engine.registry.name);
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
        return Ok(());
    }
    // Without a resolution (cargo refused it for a requirement), nothing can build.
    let (Ok(graph), false) = (resolved, consumers.is_empty()) else {
        engine.stage("consumer", &format!("nothing built{not_checked}"), t.elapsed());
        return Ok(());
    };
    // Only the consumers' features (cargo refuses others) whose dependency took the packaged crate.
    let on = flags(&features, |(_, m, k, c)| consumers.contains(m) && took_packaged(&graph, m, c, k));
    let args = [vec!["check"], repeated("-p", &consumers), repeated("--config", &patches), on].concat();
    let consumers = consumers.join(", ");
    if let Err(stderr) = engine.cargo(&copy, &args, true)? {
        bail!(
            "{consumers} of {host} do not build against the packaged {names}; nothing was uploaded:\n{}{}\n\
             Publish a rev they build with, or skip this check with --no-consumer-check",
            tail(&stderr),
            duplicates(engine, &copy, &graph, crates, &patches)?
        )
    }
    let built = format!("{consumers} of {host} built against the packaged {names}{not_checked}");
    engine.stage("consumer", &built, t.elapsed());
    Ok(())
}

/// `--features` for each of `features` that `keep` keeps.
fn flags<'a>(features: &'a [Feature], keep: impl Fn(&&Feature) -> bool) -> Vec<&'a str> {
    features.iter().filter(keep).flat_map(|f| ["--features", &f.0]).collect()
}

/// The consumers that took a packaged crate; the requirements that excluded one are
/// an error, or with `allow` a warning and a note for the progress line.
fn unchecked(
    graph: &Result<Value, String>,
    wants: &[Want],
    allow: bool,
) -> anyhow::Result<(Vec<String>, String)> {
    let (mut unchecked, mut consumers) = (Vec::new(), Vec::new());
    for (consumer, krate, req) in wants {
        let taken = match graph {
            Ok(graph) => took_packaged(graph, consumer, krate, &krate.name),
            Err(stderr) => !excluded_by_resolution(stderr, &krate.name),
        };
        if !taken {
            let (name, version) = (&krate.name, &krate.version);
            unchecked
                .push(format!("{consumer} requires {name} `{req}`, which excludes the packaged {version}"));
        } else if !consumers.contains(consumer) {
            consumers.push(consumer.clone());
        }
    }
    if unchecked.is_empty() {
        return Ok((consumers, String::new()));
    }
    let unchecked = unchecked.join("; ");
    ensure!(
        allow,
        "{unchecked}: cargo would not build them against the crates to publish, so nothing vouches \
             for them; nothing was uploaded. Publish under a version they accept, change their \
             requirement, or pass --allow-unchecked-consumers to publish without checking them"
    );
    crate::gha::warning(&format!("not checked (--allow-unchecked-consumers): {unchecked}"));
    Ok((consumers, format!("; not checked: {unchecked}")))
}

/// The members' wants, and the `member/feature`s that turn on the optional ones (none without a workspace).
fn wants<'a>(
    host: &Utf8Path,
    engine: &Engine,
    crates: &'a [CratePlan],
) -> anyhow::Result<(Vec<Want<'a>>, Vec<Feature<'a>>)> {
    if !host.join("Cargo.toml").is_file() {
        return Ok(Default::default());
    }
    let feed = engine.registry;
    let ws = Workspace::read(host, feed).with_context(|| format!("reading the host workspace at {host}"))?;
    let (mut wants, mut features) = (Vec::new(), Vec::new());
    for member in &ws.members {
        for krate in crates.iter().filter(|c| ws.depends_on(member, &c.name, feed)) {
            let deps: Vec<_> =
                member.deps.iter().filter(|d| d.package == krate.name && d.registry.is_some()).collect();
            for dep in &deps {
                let turns_on = member.enables.iter().find(|(_, key)| *key == dep.key);
                let name = &member.name;
                features.extend(
                    turns_on.map(|(f, key)| (format!("{name}/{f}"), name.clone(), key.clone(), krate)),
                );
            }
            let req = deps.first().and_then(|d| d.requirement.clone());
            wants.push((member.name.clone(), krate, req.unwrap_or_default()));
        }
    }
    Ok((wants, features))
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

/// Crates twice in `graph`, one pulled by a package: who pulls each, and a `cargo update` that unifies them.
fn duplicates(
    engine: &Engine,
    copy: &Utf8Path,
    graph: &Value,
    crates: &[CratePlan],
    patches: &[String],
) -> anyhow::Result<String> {
    let mut pulled_by: BTreeMap<(&str, Vec<u64>, &str), Vec<String>> = BTreeMap::new();
    let name_version = |p: &Value| format!("{} {}", text(p, "name"), text(p, "version"));
    for node in nodes(graph) {
        let Some(from) = package(graph, text(node, "id")) else { continue };
        for to in items(node.get("deps")).iter().filter_map(|dep| package(graph, text(dep, "pkg"))) {
            let (name, version) = (text(to, "name"), text(to, "version"));
            pulled_by.entry((name, version_key(version), version)).or_default().push(name_version(from));
        }
    }
    let packaged: Vec<String> = crates.iter().map(|c| format!("{} {}", c.name, c.version)).collect();
    let pulled_by: Vec<_> = pulled_by.into_iter().collect();
    let mut lines = Vec::new();
    for group in pulled_by.chunk_by(|a, b| a.0.0 == b.0.0) {
        if group.len() < 2 || !group.iter().any(|(_, by)| by.iter().any(|who| packaged.contains(who))) {
            continue;
        }
        let name = group[0].0.0;
        let shown: Vec<String> =
            group.iter().map(|((_, _, v), by)| format!("{v} (for {})", by.join(", "))).collect();
        // The newer moved to the older first: an unbounded requirement is the usual cause.
        let mut fix =
            String::from("no `cargo update --precise` unifies them: change a packaged crate's requirement");
        'found: for ((_, _, from), _) in group.iter().rev() {
            for ((_, _, to), _) in group.iter().filter(|((_, _, to), _)| to != from) {
                let spec = format!("{name}@{from}");
                let mut args = vec!["update", "--dry-run", "-p", &spec, "--precise", to];
                args.extend(repeated("--config", patches));
                if engine.cargo(copy, &args, false)?.is_ok() {
                    fix = format!("`cargo update -p {spec} --precise {to}` in the host unifies them");
                    break 'found;
                }
            }
        }
        lines.push(format!("{name} at {}: {fix}", shown.join(" and ")));
    }
    if lines.is_empty() {
        return Ok(String::new());
    }
    Ok(format!("\nThe graph holds these crates twice, and their types do not mix:\n  {}", lines.join("\n  ")))
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
