//! The crates of a run and what became of them, and the [`Engine`] that runs cargo
//! for every stage, with its progress lines and the words for cargo's failures.

use std::cell::{Cell, RefCell};
use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use anyhow::Context;
use camino::{Utf8Path, Utf8PathBuf};

use crate::cargo::Need;
use crate::feeds::Registry;
use crate::git::Git;
use crate::json::{self, Value};
use crate::run::{self, Program};

/// One crate to publish, and what became of it.
#[derive(Default)]
pub struct CratePlan {
    pub name: String,
    pub version: String,
    /// Its directory in the work copy of the source.
    pub dir: Utf8PathBuf,
    /// Another crate of this run depends on it: it is verified apart from its dependents.
    pub is_dependency: bool,
    /// What `cargo package` unpacked and verified; set by the package stage.
    pub packaged: Utf8PathBuf,
    /// The files `cargo package --list` gives for it, which the package must hold; `None`: unchecked.
    pub listed: Option<BTreeSet<String>>,
    pub outcome: Outcome,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum Outcome {
    #[default]
    Planned,
    Missing,
    /// In the feed, its sources still to be compared.
    InFeed,
    Identical,
    Differs,
    Published,
    /// Stopped before cargo said it was uploaded: the feed may have it or not.
    Stopped,
    /// A dry run's, the feed asked (crates.io) or not.
    WouldPublish {
        asked: bool,
    },
}

impl Outcome {
    pub(super) fn text(self) -> &'static str {
        match self {
            Outcome::Planned => "not checked (the run stopped before)",
            Outcome::Missing => "not published",
            Outcome::InFeed => "in the registry (not compared)",
            Outcome::Identical => "already there (identical)",
            Outcome::Differs => "in the registry with other sources",
            Outcome::Published => "published",
            Outcome::Stopped => "stopped while uploading: a run again compares what the registry has",
            Outcome::WouldPublish { asked: true } => "would publish",
            Outcome::WouldPublish { asked: false } => "would publish (the registry not asked)",
        }
    }
}

/// The task (for the progress lines), the feed, git, the work dir, and the time spent in cargo.
pub struct Engine<'a> {
    pub(super) task: &'static str,
    pub registry: &'a Registry,
    pub git: &'a Git,
    pub work: &'a Utf8Path,
    pub(super) dry_run: bool,
    pub(super) cargo_time: Cell<Duration>,
    /// Every form of the tokens cargo may send, redacted from every cargo command.
    forms: RefCell<Vec<String>>,
}

/// One cargo command that ran to its end: it succeeded, or failed with this stderr.
pub type Ran = Result<CargoOutput, String>;

pub struct CargoOutput {
    pub stdout: String,
    pub stderr: String,
    pub took: Duration,
    /// When cargo said `Uploaded`: the rest of a publish is the wait for the index.
    pub(super) uploaded_after: Option<Duration>,
}

impl<'a> Engine<'a> {
    pub(super) fn new(
        task: &'static str,
        registry: &'a Registry,
        dry_run: bool,
        git: &'a Git,
        work: &'a Utf8Path,
    ) -> Self {
        let (cargo_time, forms) = (Cell::default(), RefCell::default());
        Engine { task, registry, git, work, dry_run, cargo_time, forms }
    }

    /// Every form of the tokens cargo may send in `dir`, whose configs may hold more (a
    /// repository's own), the new ones masked first: a feed or proxy may echo one bare.
    pub(super) fn secrets_in(&self, dir: &Utf8Path) -> anyhow::Result<Vec<String>> {
        let mut forms = self.forms.borrow_mut();
        let mut new = crate::cargo::token_forms(dir)?;
        new.retain(|form| !forms.contains(form));
        // A short value (`true`) masked would be hidden everywhere in the job's log.
        crate::gha::mask(&new.iter().filter(|f| f.len() >= 8).cloned().collect::<Vec<_>>());
        forms.extend(new);
        Ok(forms.clone())
    }

    /// Every form of the tokens found so far.
    pub(super) fn forms(&self) -> Vec<String> {
        self.forms.borrow().clone()
    }

    pub fn stage(&self, name: &str, what: &str, took: Duration) {
        eprintln!("{}: {name:<8} {what} ({:.2} s)", self.task, took.as_secs_f64());
    }

    /// `cargo metadata` in `dir` (of `manifest`, else of the workspace there), with `more`; `Err`: cargo's
    /// stderr. `host_only`: by the host's triple, as cargo 1.90 takes `host-tuple` for a target's name.
    pub fn metadata(
        &self,
        dir: &Utf8Path,
        manifest: Option<&Utf8Path>,
        host_only: bool,
        more: &[&str],
    ) -> anyhow::Result<Result<Value, String>> {
        let host = if host_only { Some(crate::cargo::host()?) } else { None };
        let mut args = vec!["metadata", "--format-version", "1"];
        args.extend(manifest.iter().flat_map(|manifest| ["--manifest-path", manifest.as_str()]));
        args.extend(host.iter().flat_map(|host| ["--filter-platform", host]));
        args.extend(more);
        Ok(match self.cargo(dir, &args, false)? {
            Ok(out) => Ok(json::parse(&out.stdout).context("reading the answer of `cargo metadata`")?),
            Err(stderr) => Err(stderr),
        })
    }

    pub fn cargo(&self, dir: &Utf8Path, args: &[&str], echo: bool) -> anyhow::Result<Ran> {
        self.cargo_step(dir, &format!("cargo {}", args[0]), args, echo)
    }

    pub fn cargo_step(&self, dir: &Utf8Path, step: &str, args: &[&str], echo: bool) -> anyhow::Result<Ran> {
        self.cargo_all(dir, &[("", step, args.to_vec())], echo)?.pop().expect("one command")
    }

    /// Runs cargo commands `(tag, step, args)` in `dir` at the same time; with `echo`,
    /// their stderr (the echoed commands print nothing on stdout) in one log group,
    /// behind `[tag]` when there are several.
    pub fn cargo_all(
        &self,
        dir: &Utf8Path,
        commands: &[(&str, &str, Vec<&str>)],
        echo: bool,
    ) -> anyhow::Result<Vec<anyhow::Result<Ran>>> {
        let (started, forms) = (Instant::now(), self.secrets_in(dir)?);
        let several = commands.len() > 1;
        let (mut programs, mut titles) = (Vec::new(), Vec::new());
        for (tag, step, args) in commands {
            // A packaging builds every crate, and a publish waits for the index.
            let program = run::cargo(dir, args).label(*step).timeout(Duration::from_secs(3600));
            let mut program = program.redact(&forms);
            if !self.registry.is_crates_io() {
                // The work dir is outside the repo whose config names the feed.
                program = program.env(&self.registry.env_var("index"), &self.registry.index);
            }
            let prefix = if several { format!("[{tag}] ") } else { String::new() };
            titles.push(format!("{prefix}cargo {}", args.join(" ")));
            programs.push((program, echo.then_some(prefix)));
        }
        let run = || {
            std::thread::scope(|scope| {
                let running: Vec<_> = programs
                    .into_iter()
                    .map(|(program, echo)| scope.spawn(move || run_cargo(program, echo, started)))
                    .collect();
                running.into_iter().map(|thread| thread.join().expect("a cargo thread panicked")).collect()
            })
        };
        let title = format!("$ {}{}", if several { "at once: " } else { "" }, titles.join(" & "));
        let results = if echo { crate::gha::group(&title, run) } else { run() };
        self.cargo_time.set(self.cargo_time.get() + started.elapsed());
        Ok(results)
    }
}

fn run_cargo(program: Program, echo: Option<String>, started: Instant) -> anyhow::Result<Ran> {
    let mut uploaded_after = None;
    let result = program.stream(|line| {
        if let Some(prefix) = &echo {
            // stdout, with the group markers, so the log keeps the lines in their group.
            println!("{prefix}{line}");
        }
        if line.trim_start().starts_with("Uploaded ") {
            uploaded_after = Some(started.elapsed());
        }
    });
    let took = started.elapsed();
    let err = match result {
        Ok(out) => {
            return Ok(Ok(CargoOutput { stdout: out.stdout, stderr: out.stderr, took, uploaded_after }));
        }
        Err(err) => err,
    };
    match err.stderr() {
        Some(stderr) => Ok(Err(stderr.to_owned())),
        None if uploaded_after.is_some() => Err(anyhow::Error::from(err).context(StoppedAfterUpload)),
        None => Err(err.into()),
    }
}

/// Why a cargo command failed without its stderr (Ctrl-C, a time-out), once it had said `Uploaded`.
#[derive(Debug)]
pub struct StoppedAfterUpload;

impl std::fmt::Display for StoppedAfterUpload {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("stopped after the upload, while cargo waited for the index")
    }
}

/// `flag` before each of `values`, as cargo takes it again (`--config A --config B`).
pub fn repeated<'a>(flag: &'a str, values: &'a [impl AsRef<str>]) -> Vec<&'a str> {
    values.iter().flat_map(|value| [flag, value.as_ref()]).collect()
}

/// The items of a JSON array of `cargo metadata`; none for anything else.
pub fn items(value: Option<&Value>) -> &[Value] {
    if let Some(Value::Array(items)) = value { items } else { &[] }
}

/// The string `key` of a JSON object; empty when there is none.
pub fn text<'v>(value: &'v Value, key: &str) -> &'v str {
    value.get(key).and_then(Value::as_str).unwrap_or_default()
}

pub fn package<'m>(metadata: &'m Value, id: &str) -> Option<&'m Value> {
    items(metadata.get("packages")).iter().find(|p| text(p, "id") == id)
}

pub fn nodes(metadata: &Value) -> &[Value] {
    items(metadata.get("resolve").and_then(|r| r.get("nodes")))
}

/// A feed error in words that say what to do, by the one classifier of cargo's messages.
pub fn feed_error(feed: &str, stderr: &str, need: Need) -> anyhow::Error {
    let (verdict, feed) =
        (crate::cargo::classify(stderr), crate::cargo::registry_named(stderr).unwrap_or(feed));
    let hint = verdict.hint(need);
    let credentials = verdict.is_login();
    if credentials && feed == crate::feeds::CRATES_IO {
        anyhow::anyhow!(
            "`{feed}`: {verdict}: set CARGO_REGISTRY_TOKEN to a crates.io token that may publish these crates \
             (in GitHub Actions the one rust-lang/crates-io-auth-action gives, valid 30 minutes), then run again"
        )
    } else if credentials {
        let dry_run = if need == Need::Upload {
            ""
        } else {
            "; or check everything but the upload with `--dry-run`, which needs no credentials"
        };
        anyhow::anyhow!("`{feed}`: {verdict}: {hint}{dry_run}")
    } else {
        anyhow::anyhow!("cargo failed on `{feed}` ({verdict}): {hint}\n{}", tail(stderr))
    }
}

/// cargo's error lines, without the progress before them.
pub fn tail(stderr: &str) -> String {
    let lines: Vec<&str> = stderr.lines().collect();
    // A credential provider's own `ERROR:` (az's "Please run 'az login'") comes first.
    let error = |l: &&str| l.get(..5).is_some_and(|start| start.eq_ignore_ascii_case("error"));
    let start = lines.iter().position(error).unwrap_or(lines.len().saturating_sub(20));
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
        assert_eq!(msg.matches("cargo-login`").count(), 1, "each login task named once: {msg}");
        let msg = format!("{:#}", feed_error("r", "error: token rejected for `r`", Need::Publish));
        assert!(msg.contains("token rejected") && msg.contains("Packaging read & write"), "{msg}");
        assert_eq!(msg.matches("cargo-login`").count(), 1, "each login task named once: {msg}");
        let forbidden = "error: failed to publish to registry at http://x\n\nCaused by:\n  the remote server \
                         responded with an error (status 403 Forbidden): You lack Packaging write";
        let msg = format!("{:#}", feed_error("r", forbidden, Need::Publish));
        assert!(msg.contains("insufficient permissions") && msg.contains("read & write"), "{msg}");
    }
}
