//! The one publish engine, shared by `publish` and `publish-redist`. A [`Task`]
//! makes its work copy and plan; [`run`] then rewrites and commits the manifests and
//! runs the stages: check what the feed has, package and verify every crate
//! together against an empty index of this run, build the consumers (redist),
//! compare what the feed has with what was packaged, publish what is missing, report.
//! Feed versions are immutable, so every check that can stop a bad upload runs
//! before the first upload.
//!
//! Layers: this module calls the stage modules (`package`, `consumer`, `compare`),
//! which use [`engine`] (cargo and the crates of a run); `workspace` uses
//! `manifest`, which uses neither.

pub mod compare;
pub mod consumer;
mod engine;
pub mod manifest;
mod package;
pub mod workspace;

pub use engine::{CratePlan, Engine, Outcome, feed_error};

use std::collections::{BTreeMap, BTreeSet};
use std::time::Instant;

use anyhow::{Context, bail};
use camino::{Utf8Path, Utf8PathBuf};
use xshell::Shell;

use crate::cargo::Need;
use crate::feeds::Registry;
use crate::git::Git;
use crate::workdir::WorkDir;
use crate::{gha, interrupt};

/// What a publish task settled from its options before the engine runs it.
pub struct Settings<'a> {
    pub task: &'static str,
    pub registry: &'a Registry,
    pub git: &'a Git,
    /// `--version`: every crate published under it.
    pub version: Option<&'a str>,
    pub keep: bool,
    pub dry_run: bool,
    /// The host whose members are built against the crates (see [`consumer`]).
    pub consumers: Option<&'a Utf8Path>,
    pub allow_unchecked_consumers: bool,
}

/// A task's work copy, made in the engine's work dir, and the plan for it.
pub struct Prepared {
    /// The workspace in the work copy.
    pub src: Utf8PathBuf,
    pub ws: workspace::Workspace,
    pub plan: workspace::Plan,
    /// When planning began, for the plan's progress line.
    pub planned_at: Instant,
    /// Per crate, the files it must hold (see [`CratePlan::listed`]).
    pub listed: BTreeMap<String, BTreeSet<String>>,
    pub requirement: manifest::Requirement,
    /// The message of the rewrite's commit.
    pub message: String,
    /// Where the crates come from, for the report.
    pub source: String,
}

/// What a publish task does that the other does not.
pub trait Task {
    /// Makes the work copy in `engine.work()` and plans the crates, with progress lines.
    fn prepare(&mut self, engine: &Engine) -> anyhow::Result<Prepared>;
    /// The rewrite's progress line, given whether anything `changed`, and a note to follow it.
    fn rewritten(
        &self,
        engine: &Engine,
        changed: bool,
        plan: &workspace::Plan,
    ) -> anyhow::Result<(String, Option<String>)>;
}

/// Runs a publish task from its work dir to its closing line, so that both tasks
/// keep the same stages in the same order.
pub fn run(sh: &Shell, settings: &Settings, task: &mut impl Task) -> anyhow::Result<()> {
    let started = Instant::now();
    let name = settings.task;
    let work_dir = WorkDir::create(name, settings.keep)?;
    let work = work_dir.path().to_owned();
    if settings.keep {
        eprintln!("{name}: work dir {work} (kept: --keep)");
    }
    let mut engine = Engine::new(sh, name, settings.registry, &work, settings.dry_run);
    engine.allow_unchecked_consumers = settings.allow_unchecked_consumers;
    let mut prepared = task.prepare(&engine)?;
    let mut crates = crate_plans(&engine, &prepared.ws, &prepared.plan, &prepared.src, prepared.planned_at)?;
    for krate in &mut crates {
        krate.listed = prepared.listed.remove(&krate.name);
    }
    let t = Instant::now();
    let changed = commit_rewrite(&engine, settings, &prepared)?;
    let (line, note) = task.rewritten(&engine, changed, &prepared.plan)?;
    engine.stage("rewrite", &line, t);
    if let Some(note) = note {
        eprintln!("{name}: {note}");
    }
    run_stages(&mut engine, &prepared.src, &mut crates, settings.consumers, &prepared.source)?;
    if settings.keep {
        eprintln!("{name}: kept the work dir {work}");
    }
    engine.done(started);
    Ok(())
}

/// The crates of `plan` in publish order, their directories in the work copy
/// at `src`, each version checked; the plan's progress line.
fn crate_plans(
    engine: &Engine,
    ws: &workspace::Workspace,
    plan: &workspace::Plan,
    src: &Utf8Path,
    started: Instant,
) -> anyhow::Result<Vec<CratePlan>> {
    let mut crates = Vec::new();
    for &i in &plan.order {
        let member = &ws.members[i];
        let version = plan.pins[&member.name].clone();
        check_version(&version, &format!("the version of {}", member.name))?;
        crates.push(CratePlan {
            name: member.name.clone(),
            version,
            dir: if member.dir.is_empty() { src.to_owned() } else { src.join(&member.dir) },
            is_dependency: plan.edges.iter().any(|(_, dependency)| *dependency == member.name),
            packaged: Utf8PathBuf::new(),
            listed: None,
            outcome: Outcome::Planned,
        });
    }
    let list: Vec<String> = crates.iter().map(|c| format!("{} {}", c.name, c.version)).collect();
    engine.stage("plan", &format!("{} to {}", list.join(", then "), engine.registry.name), started);
    Ok(crates)
}

/// Rewrites the manifests of the work copy for the plan, shows the change (`git
/// diff`, in a log group) and commits it. Returns whether anything changed.
fn commit_rewrite(engine: &Engine, settings: &Settings, prepared: &Prepared) -> anyhow::Result<bool> {
    let (git, src, registry) = (settings.git, &prepared.src, settings.registry);
    let rewrite = manifest::Rewrite {
        registry: (!registry.is_crates_io()).then_some(registry.name.as_str()),
        pins: &prepared.plan.pins,
        package_version: settings.version,
        requirement: prepared.requirement,
    };
    let changed = prepared.ws.rewrite(&prepared.plan, &rewrite)?;
    if changed {
        let diff = git.diff(engine.sh, src)?;
        git.commit_all(engine.sh, src, &prepared.message)?;
        if !diff.is_empty() {
            gha::group(&format!("{}: the manifest diff", engine.task), || print!("{diff}"));
        }
    }
    Ok(changed)
}

/// The stages every publish runs once its work copy is ready: check, package,
/// the consumer check (when `consumers` names a host), compare, publish (unless a
/// dry run), then the report, which is printed whatever happened.
fn run_stages(
    engine: &mut Engine,
    src: &Utf8Path,
    crates: &mut [CratePlan],
    consumers: Option<&Utf8Path>,
    source: &str,
) -> anyhow::Result<()> {
    let result = (|| {
        probe(engine, crates)?;
        package(engine, src, crates)?;
        if let Some(host) = consumers {
            check_consumers(engine, host, crates)?;
        }
        compare(engine, crates)?;
        if engine.dry_run {
            for krate in crates.iter_mut() {
                krate.outcome = Outcome::WouldPublish;
            }
        } else {
            publish(engine, crates)?;
        }
        anyhow::Ok(())
    })();
    report(engine, crates, source);
    result
}

/// Stage 1: marks each crate [`Outcome::InFeed`] or [`Outcome::Missing`]; a
/// dry run asks the feed nothing (they stay [`Outcome::Planned`]).
fn probe(engine: &mut Engine, crates: &mut [CratePlan]) -> anyhow::Result<()> {
    if engine.dry_run {
        return Ok(());
    }
    for krate in crates.iter_mut() {
        let t = Instant::now();
        let present = in_feed(engine, &krate.name, &krate.version)?;
        krate.outcome = if present { Outcome::InFeed } else { Outcome::Missing };
        let verdict = if present { "is in" } else { "is not yet in" };
        engine.stage(
            "check",
            &format!("{} {} {verdict} {}", krate.name, krate.version, engine.registry.name),
            t,
        );
    }
    Ok(())
}

/// Stage 2: packages and verifies every crate (see the `package` module).
fn package(engine: &mut Engine, src: &Utf8Path, crates: &mut [CratePlan]) -> anyhow::Result<()> {
    let t = Instant::now();
    package::package_all(engine, src, crates)?;
    let names: Vec<&str> = crates.iter().map(|c| c.name.as_str()).collect();
    engine.stage("package", &format!("packaged and verified {}", names.join(", ")), t);
    Ok(())
}

/// After packaging (publish-redist): warns about requirements of the packaged
/// crates with no upper bound, and builds the host's members that depend on the
/// crates against them (see [`consumer`]).
fn check_consumers(engine: &mut Engine, host: &Utf8Path, crates: &[CratePlan]) -> anyhow::Result<()> {
    consumer::warn_unbounded(crates)?;
    consumer::check(engine, host, crates)
}

/// Stage 3: checks each package holds the files cargo listed for it (see
/// [`CratePlan::listed`]), then compares what the feed has for each crate
/// [`Outcome::InFeed`] with what was just packaged. Identical: [`Outcome::Identical`]. Different: an
/// error naming the crate, the files and the fix, before anything is uploaded.
fn compare(engine: &mut Engine, crates: &mut [CratePlan]) -> anyhow::Result<()> {
    compare::check_file_sets(crates)?;
    let in_feed: Vec<usize> = (0..crates.len()).filter(|&i| crates[i].outcome == Outcome::InFeed).collect();
    if in_feed.is_empty() {
        return Ok(());
    }
    let t = Instant::now();
    let wanted: Vec<(&str, &str)> =
        in_feed.iter().map(|&i| (crates[i].name.as_str(), crates[i].version.as_str())).collect();
    let feed_dir = compare::feed_sources(engine, &wanted)?;
    // Packaged against the run's empty index, which stands for the feed (crates.io
    // is packaged against itself).
    let empty_index = crate::git::file_url(&engine.work.join("empty-index"));
    let index =
        (!engine.registry.is_crates_io()).then_some((empty_index.as_str(), engine.registry.index.as_str()));
    let mut problems = Vec::new();
    for &i in &in_feed {
        let packaged = &crates[i].packaged;
        let theirs = feed_dir.join(format!("{}-{}", crates[i].name, crates[i].version));
        let differences = compare::differences(packaged, &theirs, index)?;
        if differences.is_empty() {
            crates[i].outcome = Outcome::Identical;
            continue;
        }
        crates[i].outcome = Outcome::Differs;
        let krate = &crates[i];
        let shown: Vec<&str> = differences.iter().take(10).map(String::as_str).collect();
        let more = differences.len().saturating_sub(shown.len());
        problems.push(format!(
            "{} {} is in {} with other sources than this run's: {}{}",
            krate.name,
            krate.version,
            engine.registry.name,
            shown.join(", "),
            if more > 0 { format!(" and {more} more") } else { String::new() }
        ));
    }
    if !problems.is_empty() {
        bail!(
            "{}\nFeed versions are immutable: publish these sources under a new version (`--version`, \
             such as 0.1.2-20240416). Nothing was uploaded.",
            problems.join("\n")
        );
    }
    let names: Vec<String> =
        in_feed.iter().map(|&i| format!("{} {}", crates[i].name, crates[i].version)).collect();
    engine.stage(
        "compare",
        &format!("{} already in {}, identical", names.join(", "), engine.registry.name),
        t,
    );
    Ok(())
}

/// Stage 4: publishes every crate still [`Outcome::Missing`], in order. On a
/// failure the crates after it stay missing; the error says whether running
/// again can help (see [`publish_one`]).
fn publish(engine: &mut Engine, crates: &mut [CratePlan]) -> anyhow::Result<()> {
    for krate in crates.iter_mut().filter(|c| c.outcome == Outcome::Missing) {
        interrupt::check()?;
        publish_one(engine, &krate.name, &krate.version, &krate.dir.join("Cargo.toml"))?;
        krate.outcome = Outcome::Published;
    }
    Ok(())
}

/// Stage 5: the table of outcomes, on stdout and in the step summary.
fn report(engine: &Engine, crates: &[CratePlan], source: &str) {
    let name_w = crates.iter().map(|c| c.name.len()).max().unwrap_or(0).max("crate".len());
    let version_w = crates.iter().map(|c| c.version.len()).max().unwrap_or(0).max("version".len());
    println!("{:<name_w$}  {:<version_w$}  outcome", "crate", "version");
    for c in crates {
        println!("{:<name_w$}  {:<version_w$}  {}", c.name, c.version, c.outcome.text());
    }
    let mut markdown = format!(
        "### {}{}\n\n{source} to `{}`\n\n| crate | version | outcome |\n|---|---|---|\n",
        engine.task,
        if engine.dry_run { " (dry run)" } else { "" },
        engine.registry.name
    );
    for c in crates {
        markdown.push_str(&format!("| {} | {} | {} |\n", c.name, c.version, c.outcome.text()));
    }
    if let Err(err) = gha::summary(&markdown) {
        eprintln!("warning: {err:#}");
    }
}

/// Whether the feed has `name` at `version`, by `cargo info` from the work dir (out
/// of any workspace). Only cargo's "could not find" is "absent"; a yanked version
/// can never be published again, so it is an error asking for a new version.
fn in_feed(engine: &mut Engine, name: &str, version: &str) -> anyhow::Result<bool> {
    let spec = format!("{name}@{version}");
    let feed = engine.registry.name.clone();
    let work = engine.work.to_owned();
    let stderr = match engine.cargo(&work, &["info", &spec, "--registry", &feed], false)? {
        Ok(_) => return Ok(true),
        Err(failed) => failed.stderr,
    };
    let stderr = if stderr.contains(&format!("could not find `{spec}`")) {
        match compare::yanked(engine, name, version)? {
            Ok(false) => return Ok(false),
            Ok(true) => bail!(
                "{name} {version} is yanked in {feed}: a yanked version stays in the feed and can never \
                 be published again. Publish under a new version (`--version`, such as \
                 0.1.2-20240416). Nothing was uploaded."
            ),
            Err(stderr) => stderr,
        }
    } else {
        stderr
    };
    Err(feed_error(&feed, &stderr, Need::Read)
        .context(format!("cannot tell whether {feed} has {name} {version}")))
}

fn publish_one(engine: &mut Engine, name: &str, version: &str, manifest: &Utf8Path) -> anyhow::Result<()> {
    let feed = engine.registry.name.clone();
    let dir = manifest.parent().context("a manifest has a directory")?.to_owned();
    let args = ["publish", "--registry", &feed, "--manifest-path", manifest.as_str(), "--no-verify"];
    let out = match engine.cargo_step(&dir, &format!("publishing {name} {version}"), &args, true)? {
        Ok(out) => out,
        Err(failed) => {
            let next = if crate::cargo::classify(&failed.stderr).is_transient() {
                "run again to resume: what is published already is skipped"
            } else {
                "running again will fail the same way until that is changed"
            };
            return Err(feed_error(&feed, &failed.stderr, Need::Publish)
                .context(format!("publishing {name} {version} to {feed} failed; {next}")));
        }
    };
    let task = engine.task;
    match out.uploaded_after {
        Some(upload) => {
            eprintln!("{task}: {:<8} {name} {version} uploaded ({:.2} s)", "publish", upload.as_secs_f64());
            eprintln!(
                "{task}: {:<8} until {feed}'s index shows {name} {version} ({:.2} s)",
                "wait",
                (out.took - upload).as_secs_f64()
            );
        }
        None => eprintln!("{task}: {:<8} {name} {version} ({:.2} s)", "publish", out.took.as_secs_f64()),
    }
    Ok(())
}

/// A semver version cargo publishes as a new version: `MAJOR.MINOR.PATCH` with an
/// optional `-pre.release`. Build metadata (`+build`) is refused: cargo and the
/// feeds ignore it when comparing versions, so `0.4.0+b` after `0.4.0+a` is the
/// same version again and could never be published.
pub fn check_version(version: &str, what: &str) -> anyhow::Result<()> {
    if let Some((base, _)) = version.split_once('+') {
        bail!(
            "{what} `{version}` has build metadata (`+…`), which does not make a new version: the feed \
             would take it for {base}. Use a pre-release suffix instead, such as {base}-1"
        );
    }
    let (core, pre) = match version.split_once('-') {
        Some((core, pre)) => (core, Some(pre)),
        None => (version, None),
    };
    let numbers: Vec<&str> = core.split('.').collect();
    let number_ok = |n: &&str| {
        !n.is_empty() && n.chars().all(|c| c.is_ascii_digit()) && (n.len() == 1 || !n.starts_with('0'))
    };
    // A numeric identifier has no leading zero (semver 2.0, rule 9): `1.0.0-01` is none.
    let pre_ok = pre.is_none_or(|pre| {
        pre.split('.').all(|part| {
            let numeric = part.chars().all(|c| c.is_ascii_digit());
            !part.is_empty()
                && part.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
                && !(numeric && part.len() > 1 && part.starts_with('0'))
        })
    });
    if numbers.len() != 3 || !numbers.iter().all(number_ok) || !pre_ok {
        bail!(
            "{what} `{version}` is not a version cargo takes: use MAJOR.MINOR.PATCH with an optional \
             -suffix, such as 0.1.2-20240321"
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions_are_checked_before_anything_runs() {
        for good in
            ["0.1.1", "0.1.2-20240321", "1.0.0-rc.1", "10.20.30", "0.2.0-preview.1", "1.0.0-0", "1.0.0-0a"]
        {
            assert!(check_version(good, "--version").is_ok(), "{good}");
        }
        for bad in ["0.1", "01.1.1", "0.1.1-", "0.1.1-a..b", "v0.1.1", "1.0.0-01", "1.0.0-rc.01"] {
            let err = check_version(bad, "--version").unwrap_err();
            assert!(format!("{err:#}").contains("0.1.2-20240321"), "{bad}");
        }
        for metadata in ["0.4.0+b", "1.0.0-rc.1+build.5", "0.1.1+"] {
            let msg = format!("{:#}", check_version(metadata, "--version").unwrap_err());
            assert!(msg.contains("build metadata") && msg.contains("does not make a new version"), "{msg}");
        }
    }
}
