//! The one publish engine, shared by `publish` (Hyperlight's own crates) and
//! `publish-redist` (the rust-vmm crates). A task prepares a source tree in its work
//! dir (a git work tree with the manifests rewritten and committed) and a
//! [`CratePlan`] per crate in publish order; the engine then runs the stages every
//! publish needs, each with a progress line:
//!
//! 1. **check**: which versions the feed has already ([`Engine::probe`]);
//! 2. **package**: `cargo package` of every crate, against an empty local index
//!    unique to this run, so that dependents are verified against the dependencies
//!    just packaged, with no feed and no credentials, and never against sources an
//!    earlier run extracted; dependencies and dependents are verified at the same
//!    time ([`Engine::package`]);
//! 3. **compare**: a version the feed has counts as "already there" only if its
//!    sources equal what this run packaged; otherwise the run stops before any
//!    upload ([`Engine::compare`]);
//! 4. **publish**: `cargo publish` of each crate still missing, in order, cargo
//!    waiting for the index before the next ([`Engine::publish`]);
//! 5. **report**: a table, and the GitHub Actions step summary ([`Engine::report`]).
//!
//! Feed versions are immutable: every check that can stop a bad upload runs before
//! the first upload.

pub mod compare;
pub mod consumer;
pub mod manifest;
mod package;
pub mod workspace;

use std::cell::Cell;
use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use camino::{Utf8Path, Utf8PathBuf};
use xshell::Shell;

use crate::cargo::{FeedError, Need};
use crate::feeds::Registry;
use crate::git::Git;
use crate::run::{self, Program};
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
    /// The host whose members are built against the crates (see [`consumer`]).
    pub consumers: Option<Utf8PathBuf>,
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
    let mut crates = engine.crate_plans(&prepared.ws, &prepared.plan, &prepared.src, prepared.planned_at)?;
    for krate in &mut crates {
        krate.listed = prepared.listed.remove(&krate.name);
    }
    let t = Instant::now();
    let rewrite = manifest::Rewrite {
        registry: (!settings.registry.is_crates_io()).then_some(settings.registry.name.as_str()),
        pins: &prepared.plan.pins,
        package_version: settings.version,
        requirement: prepared.requirement,
    };
    let changed = engine.rewrite(
        settings.git,
        &prepared.ws,
        &prepared.plan,
        &rewrite,
        &prepared.src,
        &prepared.message,
    )?;
    let (line, note) = task.rewritten(&engine, changed, &prepared.plan)?;
    engine.stage("rewrite", &line, t);
    if let Some(note) = note {
        eprintln!("{name}: {note}");
    }
    engine.run_stages(&prepared.src, &mut crates, prepared.consumers.as_deref(), &prepared.source)?;
    if settings.keep {
        eprintln!("{name}: kept the work dir {work}");
    }
    engine.done(started);
    Ok(())
}

/// One crate to publish, and what became of it.
pub struct CratePlan {
    pub name: String,
    pub version: String,
    /// Its directory in the work copy of the source.
    pub dir: Utf8PathBuf,
    /// Whether another crate of this run depends on it: it is verified apart
    /// from its dependents, and at the same time (see [`package`]).
    pub is_dependency: bool,
    /// What `cargo package` unpacked and verified (the contents of its `.crate`);
    /// set by the package stage.
    pub packaged: Utf8PathBuf,
    /// The files `cargo package --list` gives for it in the user's tree, which the
    /// package must hold exactly (checked in the compare stage); `None`: unchecked.
    pub listed: Option<std::collections::BTreeSet<String>>,
    pub outcome: Outcome,
}

/// What happened, or will happen, to one crate.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// Nothing known yet: the run stopped before it learned more (a dry run asks
    /// the feed nothing).
    Planned,
    /// Not in the feed: to be published.
    Missing,
    /// The feed has this version; its sources are still to be compared.
    InFeed,
    /// The feed has this version, built from the same sources: skipped.
    Identical,
    /// The feed has this version, built from other sources: the run stops.
    Differs,
    Published,
    /// A dry run that passed every stage: packaged and verified, nothing uploaded.
    WouldPublish,
}

impl Outcome {
    fn text(self) -> &'static str {
        match self {
            Outcome::Planned => "not checked (the run stopped before)",
            Outcome::Missing => "not published",
            Outcome::InFeed => "in the feed (not compared)",
            Outcome::Identical => "already there (identical)",
            Outcome::Differs => "in the feed with other sources",
            Outcome::Published => "published",
            Outcome::WouldPublish => "would publish",
        }
    }
}

/// The engine's view of a run: which task (for the progress lines), which feed,
/// the work dir, and the time spent in cargo.
pub struct Engine<'a> {
    pub(super) sh: &'a Shell,
    task: &'static str,
    registry: &'a Registry,
    work: &'a Utf8Path,
    dry_run: bool,
    cargo_time: Duration,
    /// publish-redist's `--allow-unchecked-consumers`.
    pub allow_unchecked_consumers: bool,
}

/// One cargo command that ran to its end: it succeeded, or cargo said why not.
pub type Ran = Result<CargoOutput, CargoFailed>;

/// A cargo command that succeeded.
pub struct CargoOutput {
    pub stderr: String,
    pub took: Duration,
    /// When cargo said `Uploaded`: the rest of a publish is the wait for the index.
    uploaded_after: Option<Duration>,
}

/// A cargo command that failed, with its (redacted) stderr.
pub struct CargoFailed {
    pub stderr: String,
}

impl<'a> Engine<'a> {
    pub fn new(
        sh: &'a Shell,
        task: &'static str,
        registry: &'a Registry,
        work: &'a Utf8Path,
        dry_run: bool,
    ) -> Self {
        Engine {
            sh,
            task,
            registry,
            work,
            dry_run,
            cargo_time: Duration::ZERO,
            allow_unchecked_consumers: false,
        }
    }

    pub fn sh(&self) -> &'a Shell {
        self.sh
    }

    pub fn registry(&self) -> &Registry {
        self.registry
    }

    pub fn work(&self) -> &Utf8Path {
        self.work
    }

    /// A progress line: `<task>: <stage> <what> (<seconds> s)`.
    pub fn stage(&self, name: &str, what: &str, started: Instant) {
        eprintln!("{}: {name:<8} {what} ({:.2} s)", self.task, started.elapsed().as_secs_f64());
    }

    /// The crates of `plan` in publish order, their directories in the work copy
    /// at `src`, each version checked; the plan's progress line.
    pub fn crate_plans(
        &self,
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
        self.stage("plan", &format!("{} to {}", list.join(", then "), self.registry.name), started);
        Ok(crates)
    }

    /// Rewrites the manifests of the work copy at `src` for `plan`, shows the change
    /// (`git diff`, in a log group) and commits it with `message`. Returns whether
    /// anything changed.
    pub fn rewrite(
        &self,
        git: &Git,
        ws: &workspace::Workspace,
        plan: &workspace::Plan,
        rewrite: &manifest::Rewrite,
        src: &Utf8Path,
        message: &str,
    ) -> anyhow::Result<bool> {
        let changed = ws.rewrite(plan, rewrite)?;
        if changed {
            let diff = git.diff(self.sh, src)?;
            git.commit_all(self.sh, src, message)?;
            if !diff.is_empty() {
                gha::group(&format!("{}: the manifest diff", self.task), || print!("{diff}"));
            }
        }
        Ok(changed)
    }

    /// The stages every publish runs once its work copy is ready: check, package,
    /// the consumer check (when `consumers` names a host), compare, publish (unless a
    /// dry run), then the report, which is printed whatever happened.
    pub fn run_stages(
        &mut self,
        src: &Utf8Path,
        crates: &mut [CratePlan],
        consumers: Option<&Utf8Path>,
        source: &str,
    ) -> anyhow::Result<()> {
        let result = (|| {
            self.probe(crates)?;
            self.package(src, crates)?;
            if let Some(host) = consumers {
                self.check_consumers(host, crates)?;
            }
            self.compare(crates)?;
            if self.dry_run {
                for krate in crates.iter_mut() {
                    krate.outcome = Outcome::WouldPublish;
                }
            } else {
                self.publish(crates)?;
            }
            anyhow::Ok(())
        })();
        self.report(crates, source);
        result
    }

    /// Stage 1: marks each crate [`Outcome::InFeed`] or [`Outcome::Missing`]; a
    /// dry run asks the feed nothing (they stay [`Outcome::Planned`]).
    pub fn probe(&mut self, crates: &mut [CratePlan]) -> anyhow::Result<()> {
        if self.dry_run {
            return Ok(());
        }
        for krate in crates.iter_mut() {
            let t = Instant::now();
            let present = self.in_feed(&krate.name, &krate.version)?;
            krate.outcome = if present { Outcome::InFeed } else { Outcome::Missing };
            let verdict = if present { "is in" } else { "is not yet in" };
            self.stage(
                "check",
                &format!("{} {} {verdict} {}", krate.name, krate.version, self.registry.name),
                t,
            );
        }
        Ok(())
    }

    /// Stage 2: packages and verifies every crate (see [`package`]).
    pub fn package(&mut self, src: &Utf8Path, crates: &mut [CratePlan]) -> anyhow::Result<()> {
        let t = Instant::now();
        package::package_all(self, src, crates)?;
        let names: Vec<&str> = crates.iter().map(|c| c.name.as_str()).collect();
        self.stage("package", &format!("packaged and verified {}", names.join(", ")), t);
        Ok(())
    }

    /// After packaging (publish-redist): warns about requirements of the packaged
    /// crates with no upper bound, and builds the host's members that depend on the
    /// crates against them (see [`consumer`]).
    pub fn check_consumers(&mut self, host: &Utf8Path, crates: &[CratePlan]) -> anyhow::Result<()> {
        consumer::warn_unbounded(crates)?;
        let (dry_run, allow) = (self.dry_run, self.allow_unchecked_consumers);
        consumer::check(self, host, crates, dry_run, allow)
    }

    /// Stage 3: checks each package holds the files cargo listed for it (see
    /// [`CratePlan::listed`]), then compares what the feed has for each crate
    /// [`Outcome::InFeed`] with what was just packaged. Identical: [`Outcome::Identical`]. Different: an
    /// error naming the crate, the files and the fix, before anything is uploaded.
    pub fn compare(&mut self, crates: &mut [CratePlan]) -> anyhow::Result<()> {
        compare::check_file_sets(crates)?;
        let in_feed: Vec<usize> =
            (0..crates.len()).filter(|&i| crates[i].outcome == Outcome::InFeed).collect();
        if in_feed.is_empty() {
            return Ok(());
        }
        let t = Instant::now();
        let wanted: Vec<(&str, &str)> =
            in_feed.iter().map(|&i| (crates[i].name.as_str(), crates[i].version.as_str())).collect();
        let feed_dir = compare::feed_sources(self, &wanted)?;
        // Packaged against the run's empty index, which stands for the feed (crates.io
        // is packaged against itself).
        let empty_index = crate::git::file_url(&self.work.join("empty-index"));
        let index =
            (!self.registry.is_crates_io()).then_some((empty_index.as_str(), self.registry.index.as_str()));
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
                self.registry.name,
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
        self.stage(
            "compare",
            &format!("{} already in {}, identical", names.join(", "), self.registry.name),
            t,
        );
        Ok(())
    }

    /// Stage 4: publishes every crate still [`Outcome::Missing`], in order. On a
    /// failure the crates after it stay missing; the error says whether running
    /// again can help (see [`Engine::publish_one`]).
    pub fn publish(&mut self, crates: &mut [CratePlan]) -> anyhow::Result<()> {
        for krate in crates.iter_mut().filter(|c| c.outcome == Outcome::Missing) {
            interrupt::check()?;
            self.publish_one(&krate.name, &krate.version, &krate.dir.join("Cargo.toml"))?;
            krate.outcome = Outcome::Published;
        }
        Ok(())
    }

    /// Stage 5: the table of outcomes, on stdout and in the step summary.
    pub fn report(&self, crates: &[CratePlan], source: &str) {
        let name_w = crates.iter().map(|c| c.name.len()).max().unwrap_or(0).max("crate".len());
        let version_w = crates.iter().map(|c| c.version.len()).max().unwrap_or(0).max("version".len());
        println!("{:<name_w$}  {:<version_w$}  outcome", "crate", "version");
        for c in crates {
            println!("{:<name_w$}  {:<version_w$}  {}", c.name, c.version, c.outcome.text());
        }
        let mut markdown = format!(
            "### {}{}\n\n{source} to `{}`\n\n| crate | version | outcome |\n|---|---|---|\n",
            self.task,
            if self.dry_run { " (dry run)" } else { "" },
            self.registry.name
        );
        for c in crates {
            markdown.push_str(&format!("| {} | {} | {} |\n", c.name, c.version, c.outcome.text()));
        }
        if let Err(err) = gha::summary(&markdown) {
            eprintln!("warning: {err:#}");
        }
    }

    /// The closing line: wall time and how much of it cargo took.
    pub fn done(&self, started: Instant) {
        eprintln!(
            "{}: done in {:.2} s, {:.2} s of it in cargo",
            self.task,
            started.elapsed().as_secs_f64(),
            self.cargo_time.as_secs_f64()
        );
    }

    /// Whether the feed has `name` at `version`, asked through `cargo info` (from the
    /// work dir, outside any workspace, so cargo looks at the feed only). Anything
    /// but cargo's "could not find" is an error, never "absent". A yanked version
    /// (which `cargo info` does not show) is in the feed and can never be published
    /// again: an error that asks for a new version.
    fn in_feed(&mut self, name: &str, version: &str) -> anyhow::Result<bool> {
        let spec = format!("{name}@{version}");
        let feed = self.registry.name.clone();
        let work = self.work.to_owned();
        let stderr = match self.cargo(&work, &["info", &spec, "--registry", &feed], false)? {
            Ok(_) => return Ok(true),
            Err(failed) => failed.stderr,
        };
        let stderr = if stderr.contains(&format!("could not find `{spec}`")) {
            match compare::yanked(self, name, version)? {
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

    fn publish_one(&mut self, name: &str, version: &str, manifest: &Utf8Path) -> anyhow::Result<()> {
        let feed = self.registry.name.clone();
        let dir = manifest.parent().context("a manifest has a directory")?.to_owned();
        let args = ["publish", "--registry", &feed, "--manifest-path", manifest.as_str(), "--no-verify"];
        let out = match self.cargo_step(&dir, &format!("publishing {name} {version}"), &args, true)? {
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
        let task = self.task;
        match out.uploaded_after {
            Some(upload) => {
                eprintln!(
                    "{task}: {:<8} {name} {version} uploaded ({:.2} s)",
                    "publish",
                    upload.as_secs_f64()
                );
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

    /// Runs cargo with `args` in `dir` through the runner ([`run_cargo`]). With
    /// `echo`, cargo's output is shown as it comes, in a log group under GitHub
    /// Actions. Its waiting lines name it `cargo <subcommand>`.
    pub fn cargo(&mut self, dir: &Utf8Path, args: &[&str], echo: bool) -> anyhow::Result<Ran> {
        let step = format!("cargo {}", args.first().unwrap_or(&""));
        self.cargo_step(dir, &step, args, echo)
    }

    /// [`Engine::cargo`], its waiting lines naming `step` (such as "packaging
    /// mshv-bindings") rather than the command line, which the log group shows.
    pub fn cargo_step(
        &mut self,
        dir: &Utf8Path,
        step: &str,
        args: &[&str],
        echo: bool,
    ) -> anyhow::Result<Ran> {
        let program = self.cargo_program(dir, step, args);
        let started = Instant::now();
        let run = || run_cargo(program, echo.then_some(""), started);
        let result = if echo { gha::group(&format!("$ cargo {}", args.join(" ")), run) } else { run() };
        self.cargo_time += started.elapsed();
        result
    }

    /// Runs cargo commands in `dir` at the same time, each `(tag, step, args)` in
    /// a thread of its own, their output shown as it comes, each line behind its
    /// command's `[tag]`, all in one log group; the waiting lines name the `step`
    /// (such as "verifying the dependencies"). The time in cargo counts once.
    pub fn cargo_at_once(
        &mut self,
        dir: &Utf8Path,
        commands: &[(String, String, Vec<String>)],
    ) -> Vec<anyhow::Result<Ran>> {
        let started = Instant::now();
        let programs: Vec<(String, Program)> = commands
            .iter()
            .map(|(tag, step, args)| (format!("[{tag}] "), self.cargo_program(dir, step, &strs(args))))
            .collect();
        let title: Vec<String> =
            commands.iter().map(|(tag, _, args)| format!("[{tag}] cargo {}", args.join(" "))).collect();
        let results = gha::group(&format!("$ at once: {}", title.join(" & ")), || {
            std::thread::scope(|scope| {
                let running: Vec<_> = programs
                    .into_iter()
                    .map(|(prefix, program)| scope.spawn(move || run_cargo(program, Some(&prefix), started)))
                    .collect();
                running.into_iter().map(|thread| thread.join().expect("a cargo thread panicked")).collect()
            })
        });
        self.cargo_time += started.elapsed();
        results
    }

    /// Cargo with `args` in `dir`, named `step` in waiting lines and errors, the
    /// feed's index given through cargo's own environment variable (the work dir
    /// is outside the repo, whose config names the feeds).
    fn cargo_program(&self, dir: &Utf8Path, step: &str, args: &[&str]) -> Program {
        let mut program = run::cargo(dir, args).label(step).timeout(CARGO_TIMEOUT);
        if !self.registry.is_crates_io() {
            program = program.env(&self.registry.env_var("index"), &self.registry.index);
        }
        program
    }
}

/// Borrows each argument.
pub fn strs(args: &[String]) -> Vec<&str> {
    args.iter().map(String::as_str).collect()
}

/// Runs one cargo command to its end. With `echo` (a prefix for each line, maybe
/// empty), cargo's output is shown as it comes. A failure of cargo itself comes
/// back as [`CargoFailed`]; a time-out or an interrupt is an error.
fn run_cargo(program: Program, echo: Option<&str>, started: Instant) -> anyhow::Result<Ran> {
    let uploaded_after = Cell::new(None);
    let result = program.stream(|line| {
        if let Some(prefix) = echo {
            // stdout, with the group markers, so that the runner's log keeps the
            // lines inside their group.
            println!("{prefix}{line}");
        }
        if line.trim_start().starts_with("Uploaded ") {
            uploaded_after.set(Some(started.elapsed()));
        }
    });
    let took = started.elapsed();
    let uploaded_after = uploaded_after.get();
    match result {
        Ok(out) => {
            if let Some(prefix) = echo {
                for line in out.stdout.lines() {
                    println!("{prefix}{line}");
                }
            }
            Ok(Ok(CargoOutput { stderr: out.stderr, took, uploaded_after }))
        }
        Err(err) => match err.stderr() {
            Some(stderr) => Ok(Err(CargoFailed { stderr: stderr.to_owned() })),
            None => Err(err.into()),
        },
    }
}

/// The time limit of one cargo command of the engine: packaging builds every
/// crate, and a publish waits for the index (`XTASK_TIMEOUT_SECS` overrides it).
const CARGO_TIMEOUT: Duration = Duration::from_secs(3600);

/// A feed error in words that say what to do: the verdict of the one classifier
/// of cargo's messages ([`crate::cargo::classify`]) and its hint for `need`.
pub fn feed_error(feed: &str, stderr: &str, need: Need) -> anyhow::Error {
    let verdict = crate::cargo::classify(stderr);
    let hint = verdict.hint(need);
    match verdict {
        FeedError::NoProvider | FeedError::NoToken | FeedError::Rejected | FeedError::Forbidden { .. } => {
            anyhow::anyhow!(
                "`{feed}`: {verdict}: {hint}. To publish, log in with `cargo xtask cargo-login` (your \
                 Azure account) or, in CI, `cargo xtask cargo-login-ci` (a PAT in $PAT); or check \
                 everything but the upload with `--dry-run`, which needs no credentials"
            )
        }
        _ => anyhow::anyhow!("cargo failed on `{feed}` ({verdict}): {hint}\n{}", tail(stderr)),
    }
}

/// cargo's error lines, without the progress before them.
pub fn tail(stderr: &str) -> String {
    let lines: Vec<&str> = stderr.lines().collect();
    let start = lines.iter().position(|l| l.starts_with("error")).unwrap_or(lines.len().saturating_sub(20));
    lines[start..].join("\n").trim_end().to_owned()
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

    #[test]
    fn feed_errors_say_which_login_task_to_run() {
        let msg = format!(
            "{:#}",
            feed_error(
                "hyperlight_redist",
                "error: no token found for `hyperlight_redist`, please run `cargo login`",
                Need::Publish
            )
        );
        assert!(msg.contains("cargo xtask cargo-login") && msg.contains("cargo-login-ci"), "{msg}");
        let msg = format!("{:#}", feed_error("r", "error: token rejected for `r`", Need::Publish));
        assert!(msg.contains("token rejected") && msg.contains("Packaging read & write"), "{msg}");
        let forbidden = "error: failed to publish to registry at http://x\n\nCaused by:\n  the remote server \
                         responded with an error (status 403 Forbidden): You lack Packaging write";
        let msg = format!("{:#}", feed_error("r", forbidden, Need::Publish));
        assert!(msg.contains("insufficient permissions") && msg.contains("read & write"), "{msg}");
    }
}
