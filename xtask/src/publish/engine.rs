//! The engine's lower layer: the crates of a run and what became of them, and the
//! [`Engine`] that runs cargo for every stage, with its progress lines and the
//! words for cargo's failures.

use std::cell::Cell;
use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use camino::{Utf8Path, Utf8PathBuf};

use crate::cargo::{FeedError, Need};
use crate::feeds::Registry;
use crate::gha;
use crate::run::{self, Program};

/// One crate to publish, and what became of it.
pub struct CratePlan {
    pub name: String,
    pub version: String,
    /// Its directory in the work copy of the source.
    pub dir: Utf8PathBuf,
    /// Whether another crate of this run depends on it: it is verified apart
    /// from its dependents, and at the same time.
    pub is_dependency: bool,
    /// What `cargo package` unpacked and verified (the contents of its `.crate`);
    /// set by the package stage.
    pub packaged: Utf8PathBuf,
    /// The files `cargo package --list` gives for it in the user's tree, which the
    /// package must hold exactly (checked in the compare stage); `None`: unchecked.
    pub listed: Option<BTreeSet<String>>,
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
    pub(super) fn text(self) -> &'static str {
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
    pub(super) task: &'static str,
    pub(super) registry: &'a Registry,
    pub(super) work: &'a Utf8Path,
    pub(super) dry_run: bool,
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
    pub(super) uploaded_after: Option<Duration>,
}

/// A cargo command that failed, with its (redacted) stderr.
pub struct CargoFailed {
    pub stderr: String,
}

impl<'a> Engine<'a> {
    pub fn new(task: &'static str, registry: &'a Registry, work: &'a Utf8Path, dry_run: bool) -> Self {
        Engine { task, registry, work, dry_run, cargo_time: Duration::ZERO, allow_unchecked_consumers: false }
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

    /// The closing line: wall time and how much of it cargo took.
    pub fn done(&self, started: Instant) {
        eprintln!(
            "{}: done in {:.2} s, {:.2} s of it in cargo",
            self.task,
            started.elapsed().as_secs_f64(),
            self.cargo_time.as_secs_f64()
        );
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

#[cfg(test)]
mod tests {
    use super::*;

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
