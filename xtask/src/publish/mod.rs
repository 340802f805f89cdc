//! The engine of both publish tasks. Feed versions are immutable: every check runs before the first upload.

pub mod compare;
pub mod consumer;
mod engine;
pub mod manifest;
mod package;
pub mod workspace;

pub use engine::{CratePlan, Engine, Outcome, feed_error};

use std::time::{Duration, Instant};

use anyhow::{Context, bail, ensure};
use camino::{Utf8Path, Utf8PathBuf};

use crate::cargo::{FeedError, Need};
use crate::feeds::Registry;
use crate::git::Git;
use crate::run::{RunError, RunErrorKind};
use crate::workdir::WorkDir;
use crate::{gha, interrupt};

/// The flags both publish tasks take.
#[derive(clap::Args)]
pub struct Common {
    /// Publish every crate under this version, such as 0.1.2-20240321; the requirements
    /// between them follow.
    #[arg(long, value_name = "VERSION")]
    pub version: Option<String>,
    /// Do everything except upload; needs no credentials and no feed, unless a crate to
    /// publish takes crates from a feed (then read access to it). crates.io, which is
    /// public, is asked which versions it has.
    #[arg(long)]
    pub dry_run: bool,
    /// Keep the work dir (the source with the rewrite committed) and print its path.
    #[arg(long)]
    pub keep: bool,
}

pub struct Settings<'a> {
    pub task: &'static str,
    pub registry: &'a Registry,
    pub common: &'a Common,
    /// The host whose members are built against the crates, and whether a member whose
    /// requirement excludes a crate may go unchecked (`--allow-unchecked-consumers`).
    pub consumers: Option<(&'a Utf8Path, bool)>,
}

/// A task's work copy (`ws.root`, in the engine's work dir) and the plan for it.
pub struct Prepared {
    pub ws: workspace::Workspace,
    /// Its crates' `listed` set by the task.
    pub plan: workspace::Plan,
    pub requirement: manifest::Requirement,
    /// Where the crates come from, for the report and the rewrite's commit.
    pub source: String,
    /// publish: the user's commit and the copy's, to say when the packages name another.
    pub commits: Option<(String, String)>,
}

/// Runs a publish task: `prepare` makes the work copy in `engine.work` and plans.
pub fn run(settings: &Settings, prepare: &dyn Fn(&Engine) -> anyhow::Result<Prepared>) -> anyhow::Result<()> {
    let started = Instant::now();
    let name = settings.task;
    if let Some(version) = &settings.common.version {
        check_version(version, "--version")?;
    }
    let keep = settings.common.keep;
    let (git, work_dir) = (Git::find()?, WorkDir::create(name, keep)?);
    let engine = Engine::new(name, settings.registry, settings.common.dry_run, &git, work_dir.path());
    engine.secrets_in(&crate::tool::project_root())?;
    if keep {
        eprintln!("{name}: work dir {} (kept: --keep)", engine.work);
    }
    let mut prepared = prepare(&engine)?;
    for krate in &mut prepared.plan.crates {
        check_version(&krate.version, &format!("the version of {}", krate.name))?;
        krate.dir = prepared.ws.root.join(&krate.dir);
    }
    commit_rewrite(&engine, settings, &prepared)?;
    run_stages(&engine, settings, &mut prepared)?;
    if keep {
        eprintln!("{name}: kept the work dir {}", engine.work);
    }
    let (wall, cargo) = (started.elapsed().as_secs_f64(), engine.cargo_time.get().as_secs_f64());
    eprintln!("{name}: done in {wall:.2} s, {cargo:.2} s of it in cargo");
    Ok(())
}

/// The plan's stage line, which `prepare` prints as soon as the plan stands (publish copies after).
pub fn show_plan(engine: &Engine, plan: &workspace::Plan, planning: Duration) {
    let list: Vec<String> = plan.crates.iter().map(|c| format!("{} {}", c.name, c.version)).collect();
    engine.stage("plan", &format!("{} to {}", list.join(", then "), engine.registry.name), planning);
}

/// Rewrites the manifests for the plan, shows the diff and commits it.
fn commit_rewrite(engine: &Engine, settings: &Settings, prepared: &Prepared) -> anyhow::Result<()> {
    let (t, git, src, registry, task) =
        (Instant::now(), engine.git, &prepared.ws.root, engine.registry, engine.task);
    let rewrite = manifest::Rewrite {
        registry: (!registry.is_crates_io()).then_some(registry.name.as_str()),
        pins: &prepared.plan.pins(),
        package_version: settings.common.version.as_deref(),
        requirement: prepared.requirement,
    };
    let changed = prepared.ws.rewrite(&rewrite)?;
    if changed {
        let diff = git.diff(src)?;
        let message =
            format!("Publish to {} (cargo xtask {task})\n\nSource: {}", registry.name, prepared.source);
        // Not empty: `git commit -a` fails when nothing changed.
        git.commit_all(src, &message)?;
        gha::group(&format!("{task}: the manifest diff"), || println!("{}", diff.trim_end_matches('\n')));
    }
    let edges: Vec<String> = prepared.plan.edges.iter().map(|(a, b)| format!("{a} -> {b}")).collect();
    let line = match (changed, edges.is_empty()) {
        (false, _) => "nothing to change".to_owned(),
        (true, true) => match &settings.common.version {
            Some(version) => format!("version {version} set and committed"),
            None => format!("dependencies set to come from {} and committed", registry.name),
        },
        (true, false) => format!("pinned {} and committed", edges.join(", ")),
    };
    engine.stage("rewrite", &line, t.elapsed());
    let Some((commit, copied)) = &prepared.commits else { return Ok(()) };
    let named = git.head(src)?;
    let on_top = match (copied != commit, named != *copied) {
        (false, false) => return Ok(()),
        (true, true) => "your uncommitted changes and the rewrite",
        (true, false) => "your uncommitted changes",
        (false, true) => "the rewrite",
    };
    eprintln!(
        "{task}: the packages name commit {named} (`.cargo_vcs_info.json`): your commit {commit} with \
         {on_top} committed on top in the work dir; that commit exists nowhere else"
    );
    Ok(())
}

/// The stages after the rewrite, then the report, printed whatever happened.
fn run_stages(engine: &Engine, settings: &Settings, prepared: &mut Prepared) -> anyhow::Result<()> {
    let (dry_run, crates) = (engine.dry_run, &mut prepared.plan.crates);
    let result = (|| {
        // A dry run asks no feed (reading one takes credentials) but crates.io, which is public.
        let (ask, mut new) = (!dry_run || engine.registry.is_crates_io(), Vec::new());
        for krate in crates.iter_mut().filter(|_| ask) {
            let t = Instant::now();
            let held = compare::in_feed(engine, &krate.name, &krate.version)?;
            new.extend((held == compare::Held::Nothing).then(|| krate.name.clone()));
            let present = held == compare::Held::Version;
            krate.outcome = if present { Outcome::InFeed } else { Outcome::Missing };
            let verdict = if present { "is in" } else { "is not yet in" };
            let what = format!("{} {} {verdict} {}", krate.name, krate.version, engine.registry.name);
            engine.stage("check", &what, t.elapsed());
        }
        creates_no_crate(engine.registry.is_crates_io(), &engine.forms(), &new)?;
        // A crate the feed has cannot change: verifying it, or building the host against
        // it, checks nothing that could still be uploaded; the compare below still runs.
        let to_upload = |c: &CratePlan| matches!(c.outcome, Outcome::Missing | Outcome::Planned);
        let verify = crates.iter().any(to_upload);
        let t = Instant::now();
        package::package_all(engine, &prepared.ws, crates, verify)?;
        let names = crates.iter().map(|c| c.name.as_str()).collect::<Vec<_>>().join(", ");
        let done = if verify { "packaged and verified" } else { "packaged (every one is in the registry)" };
        engine.stage("package", &format!("{done} {names}"), t.elapsed());
        if let Some((host, allow_unchecked)) = settings.consumers.filter(|_| verify) {
            consumer::warn_unbounded(crates)?;
            consumer::check(engine, host, crates, allow_unchecked)?;
        }
        compare::stage(engine, crates)?;
        let mut published = Vec::new();
        for krate in crates.iter_mut().filter(|c| to_upload(c)) {
            if dry_run {
                krate.outcome = Outcome::WouldPublish { asked: ask };
                continue;
            }
            publish_one(engine, krate, &published)?;
            published.push(krate.name.clone());
            krate.outcome = Outcome::Published;
        }
        anyhow::Ok(())
    })();
    report(engine, crates, &prepared.source);
    result
}

/// crates.io takes a trusted publishing token (`cio_tp_…`, among the token `forms`) only for a crate it
/// has: the upload of a `new` one is refused (403) after the crates before it.
fn creates_no_crate(crates_io: bool, forms: &[String], new: &[String]) -> anyhow::Result<()> {
    let trusted = crates_io && forms.iter().any(|form| form.starts_with("cio_tp_"));
    ensure!(
        !trusted || new.is_empty(),
        "crates.io does not have {} yet, and takes no trusted publishing token (CARGO_REGISTRY_TOKEN here) \
         for a new crate; nothing was uploaded. Run this once with an API token that may publish new crates \
         (crates.io, Account Settings, API Tokens: scope publish-new) in CARGO_REGISTRY_TOKEN, then add a \
         trusted publisher to each new crate on crates.io; or leave them out with --exclude",
        new.join(", ")
    );
    Ok(())
}

/// The table of outcomes, on stdout and in the step summary.
fn report(engine: &Engine, crates: &[CratePlan], source: &str) {
    let name_w = crates.iter().map(|c| c.name.len()).max().unwrap_or(0).max("crate".len());
    let version_w = crates.iter().map(|c| c.version.len()).max().unwrap_or(0).max("version".len());
    println!("{:<name_w$}  {:<version_w$}  outcome", "crate", "version");
    let dry_run = if engine.dry_run { " (dry run)" } else { "" };
    let mut markdown = format!(
        "### {}{dry_run}\n\n{source} to `{}`\n\n| crate | version | outcome |\n|---|---|---|\n",
        engine.task, engine.registry.name
    );
    for c in crates {
        println!("{:<name_w$}  {:<version_w$}  {}", c.name, c.version, c.outcome.text());
        markdown.push_str(&format!("| {} | {} | {} |\n", c.name, c.version, c.outcome.text()));
    }
    if let Err(err) = gha::summary(&markdown) {
        eprintln!("warning: {err:#}");
    }
}

/// `cargo publish` of `krate`, after the crates `published` by this run.
fn publish_one(engine: &Engine, krate: &mut CratePlan, published: &[String]) -> anyhow::Result<()> {
    let feed = &engine.registry.name;
    let (name, version, dir) = (&krate.name, &krate.version, &krate.dir);
    // Its package in the work dir, not in a CARGO_TARGET_DIR the user shares.
    let (manifest, target) = (dir.join("Cargo.toml"), engine.work.join("publish"));
    let (manifest, target) = (manifest.as_str(), target.as_str());
    let args =
        ["publish", "--registry", feed, "--manifest-path", manifest, "--no-verify", "--target-dir", target];
    let ran = interrupt::check()
        .and_then(|()| engine.cargo_step(dir, &format!("publishing {name} {version}"), &args, true));
    let err = match ran {
        Ok(Ok(out)) => {
            let Some(upload) = out.uploaded_after else {
                engine.stage("publish", &format!("{name} {version}"), out.took);
                return Ok(());
            };
            engine.stage("publish", &format!("{name} {version} uploaded"), upload);
            engine.stage("wait", &format!("until {feed}'s index shows {name} {version}"), out.took - upload);
            return Ok(());
        }
        Ok(Err(stderr)) => return Err(failed(krate, feed, &stderr, published)),
        Err(err) => err,
    };
    // Stopped after the upload (waiting for the index), the feed has it; before, it may or not.
    let what = if err.is::<engine::StoppedAfterUpload>() {
        krate.outcome = Outcome::Published;
        format!("{name} {version} was uploaded to {feed}, then cargo was stopped")
    } else if interrupt::requested()
        || err.downcast_ref().is_some_and(|e: &RunError| matches!(e.kind, RunErrorKind::TimedOut { .. }))
    {
        krate.outcome = Outcome::Stopped;
        format!("publishing {name} {version} to {feed} was stopped before cargo said it was uploaded")
    } else {
        return Err(err);
    };
    Err(err.context(format!("{what}; run again to publish the rest: {SKIPPED}")))
}

const SKIPPED: &str = "what is published already is skipped";

/// The error of `krate`'s `cargo publish` that failed with `stderr`; whether a run again can succeed.
fn failed(krate: &mut CratePlan, feed: &str, stderr: &str, published: &[String]) -> anyhow::Error {
    let (err, verdict) = (feed_error(feed, stderr, Need::Upload), crate::cargo::classify(stderr));
    let krate_version = format!("{} {}", krate.name, krate.version);
    // Failed after the upload (waiting for the index): the feed has it.
    if stderr.lines().any(|line| line.trim_start().starts_with("Uploaded ")) {
        krate.outcome = Outcome::Published;
        let what = format!("{krate_version} was uploaded to {feed}, then cargo failed");
        return err.context(format!("{what}; run again to publish the rest: {SKIPPED}"));
    }
    // Cargo waits a minute for the index to show a crate, then goes on.
    let named = |p: &&String| ["`", " = "].iter().any(|end| stderr.contains(&format!("`{p}{end}")));
    let next = match published.iter().find(named) {
        Some(p) => {
            format!(": {p}, published by this run, is not in {feed}'s index yet: run again once it is")
        }
        None if verdict.is_transient() => "; run again to resume".to_owned(),
        None if verdict.is_login() => ": log in as below, then run again".to_owned(),
        // Published since the check: a run again compares it, as any version the feed has.
        None if matches!(verdict, FeedError::AlreadyExists(_)) => format!(
            ": {feed} has it since this run checked it, so run again to compare it with these sources"
        ),
        None => {
            let what = format!("publishing {krate_version} to {feed} failed");
            return err
                .context(format!("{what}; running again will fail the same way until that is changed"));
        }
    };
    if matches!(verdict, FeedError::AlreadyExists(_)) {
        krate.outcome = Outcome::InFeed;
    }
    err.context(format!("publishing {krate_version} to {feed} failed{next}: {SKIPPED}"))
}

/// What the commit at `top` has in `crates` (dirs from `prefix`) that its checkout lacks, with
/// git's reason and the crate: cargo packages what is on disk, so the packages would lack it.
pub fn not_checked_out<'a>(
    git: &Git,
    top: &Utf8Path,
    prefix: &str,
    crates: &'a [CratePlan],
) -> anyhow::Result<Vec<(String, &'static str, &'a str)>> {
    let dirs: Vec<_> = crates.iter().map(|c| Utf8Path::new(prefix).join(&c.dir)).collect();
    let lacking = git.not_checked_out(top)?;
    // Cargo leaves out of a package each directory below it with another package's manifest
    // (in the index, checked out or not).
    let manifest = |dir: &Utf8Path| {
        let path = dir.join("Cargo.toml");
        top.join(&path).is_file() || lacking.iter().any(|(lacks, _)| Utf8Path::new(lacks) == path)
    };
    let nested =
        |path: &Utf8Path, dir: &Utf8Path| path.ancestors().skip(1).take_while(|a| *a != dir).any(manifest);
    let holder = |path: &Utf8Path| dirs.iter().position(|dir| path.starts_with(dir) && !nested(path, dir));
    let found = lacking.iter().filter_map(|(path, why)| Some((path.clone(), *why, holder(path.as_ref())?)));
    Ok(found.map(|(path, why, i)| (path, why, crates[i].name.as_str())).collect())
}

/// The directory of the manifest `path` given to `flag`, from where the user is; else the repository's.
pub fn manifest_dir(flag: &str, path: Option<&Utf8Path>) -> anyhow::Result<Utf8PathBuf> {
    let Some(path) = path else { return Ok(crate::tool::project_root()) };
    let path = if path.is_absolute() { path.to_owned() } else { crate::tool::invocation_dir()?.join(path) };
    ensure!(
        path.file_name() == Some("Cargo.toml") && path.is_file(),
        "{flag} {path}: not a Cargo.toml that exists"
    );
    Ok(path.parent().context("a manifest has a directory")?.to_owned())
}

/// A semver version without build metadata, which cargo and the feeds ignore when comparing.
fn check_version(version: &str, what: &str) -> anyhow::Result<()> {
    if let Some((base, _)) = version.split_once('+') {
        bail!(
            "{what} `{version}` has build metadata (`+…`), which does not make a new version: the feed \
             would take it for {base}. Use a pre-release suffix instead, such as {base}-1"
        );
    }
    let (core, pre) = version.split_once('-').map_or((version, None), |(core, pre)| (core, Some(pre)));
    // A numeric identifier has no leading zero (semver 2.0, rule 9).
    let ok = |part: &str, numeric_only: bool| {
        let numeric = part.chars().all(|c| c.is_ascii_digit());
        !part.is_empty()
            && (numeric || !numeric_only && part.chars().all(|c| c.is_ascii_alphanumeric() || c == '-'))
            && !(numeric && part.len() > 1 && part.starts_with('0'))
    };
    let core_ok = core.split('.').count() == 3 && core.split('.').all(|n| ok(n, true));
    ensure!(
        core_ok && pre.is_none_or(|pre| pre.split('.').all(|p| ok(p, false))),
        "{what} `{version}` is not a version cargo takes: use MAJOR.MINOR.PATCH with an optional \
             -suffix, such as 0.1.2-20240321"
    );
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// crates.io refuses a trusted publishing token for a crate it does not have ("Trusted Publishing
    /// tokens do not support creating new crates", 403): the crates before it were uploaded.
    #[test]
    fn a_new_crate_with_a_trusted_publishing_token_stops_before_any_upload() {
        let (trusted, api) = (["cio_tp_0123456789abcdef".to_owned()], ["cio0123456789abcdef".to_owned()]);
        let new = ["hyperlight-new".to_owned(), "hyperlight-newer".to_owned()];
        let msg = format!("{:#}", creates_no_crate(true, &trusted, &new).unwrap_err());
        assert!(
            msg.contains("hyperlight-new, hyperlight-newer") && msg.contains("nothing was uploaded"),
            "{msg}"
        );
        assert!(!msg.contains("cio_tp_"), "{msg}");
        assert!(creates_no_crate(true, &trusted, &[]).is_ok());
        assert!(creates_no_crate(true, &api, &new).is_ok());
        assert!(creates_no_crate(false, &trusted, &new).is_ok());
    }

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
