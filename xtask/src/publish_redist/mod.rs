//! `cargo xtask publish-redist`: republish the rust-vmm mshv crates Hyperlight pins
//! to the redist feed, in one command that is safe to run again.
//!
//! Stages: fetch the one rev into a temporary work dir; read the source workspace
//! and plan (which crates, which order); rewrite the path dependencies between them
//! to `version = "=X"` + `registry = "<feed>"` and commit that under a fixed
//! identity; ask the feed, through cargo, which versions it already has; package
//! and verify every crate against an empty local index (the dependents against the
//! just-packaged dependencies: no feed involved, so `--dry-run` needs no
//! credentials); then `cargo publish` each missing crate in order, cargo waiting
//! for the index to show it before the next.

mod git;
mod manifest;
mod workspace;

use std::io::{BufRead, BufReader, Read};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use camino::{Utf8Path, Utf8PathBuf};
use toml_edit::Item;
use xshell::{Shell, cmd};

use crate::feeds::{self, Registry};
use crate::{gha, toml_file, tool};
use git::Git;
use workspace::Workspace;

/// Republish the pinned rust-vmm mshv crates to the redist feed.
///
/// Fetches only the wanted rev of the source into a temporary work dir, rewrites
/// every path dependency between the crates to `version = "=<version>"` and
/// `registry = "<feed>"` (features, other keys, comments and spacing kept), commits
/// that under a fixed identity, packages and verifies every crate, then publishes
/// them in dependency order, waiting for the index before each dependent. A version
/// the feed already has is skipped, so a run that stopped part-way completes when
/// run again. The defaults are `[workspace.metadata.publish-redist]` in xtask/Cargo.toml.
#[derive(clap::Args)]
#[command(
    after_help = "Examples:\n  cargo xtask publish-redist --dry-run\n  cargo xtask publish-redist\n  cargo xtask publish-redist --rev 52edcf4 --dry-run\n  cargo xtask publish-redist --rev <newer SHA or tag> --version 0.1.2-20240416\n  cargo xtask publish-redist --repo ../mshv --dry-run --keep\n  cargo xtask publish-redist --crate mshv-bindings"
)]
pub struct PublishRedist {
    /// The source: a git URL or the path of a local clone [default: `repo` of
    /// `[workspace.metadata.publish-redist]`, https://github.com/rust-vmm/mshv].
    #[arg(long, value_name = "URL|PATH")]
    pub repo: Option<String>,
    /// The commit to publish: a full or abbreviated SHA, or a tag [default: the
    /// pinned rev of the metadata].
    #[arg(long, value_name = "SHA|TAG")]
    pub rev: Option<String>,
    /// The feed to publish to, by its name in `.cargo/config.toml` [default:
    /// hyperlight_redist].
    #[arg(long, value_name = "NAME")]
    pub registry: Option<String>,
    /// A crate to publish (repeatable; replaces the default list). The order comes
    /// from their dependencies, not from this list.
    #[arg(long = "crate", value_name = "NAME")]
    pub crates: Vec<String>,
    /// Publish every crate under this version instead of its own, the requirements
    /// between them following. Feed versions are immutable: a newer rev needs a new
    /// version, such as 0.1.2-20240321.
    #[arg(long, value_name = "VERSION")]
    pub version: Option<String>,
    /// Do everything except upload: fetch, rewrite, package and verify every crate,
    /// print the plan and the manifest diff. Needs no credentials and no access to
    /// the feed.
    #[arg(long)]
    pub dry_run: bool,
    /// Keep the work dir (the fetched source with the rewrite committed) and print
    /// its path.
    #[arg(long)]
    pub keep: bool,
}

/// `[workspace.metadata.publish-redist]` of the xtask's own `xtask/Cargo.toml`
/// (not the host's: adopting the xtask leaves the host's manifest untouched).
struct Defaults {
    repo: String,
    rev: String,
    crates: Vec<String>,
    registry: String,
}

impl Defaults {
    fn read(sh: &Shell) -> anyhow::Result<Defaults> {
        let path = crate::sh_dir(sh)?.join("xtask").join("Cargo.toml");
        let doc = toml_file::read(&path)?;
        let table = doc
            .get("workspace")
            .and_then(|w| w.get("metadata"))
            .and_then(|m| m.get("publish-redist"))
            .with_context(|| format!("{path} has no [workspace.metadata.publish-redist] table"))?;
        let string = |key: &str| {
            table.get(key).and_then(Item::as_str).map(str::to_owned).with_context(|| {
                format!("[workspace.metadata.publish-redist] in {path} has no `{key}` string")
            })
        };
        let crates = table
            .get("crates")
            .and_then(Item::as_array)
            .and_then(|a| a.iter().map(|v| v.as_str().map(str::to_owned)).collect::<Option<Vec<_>>>())
            .with_context(|| {
                format!("[workspace.metadata.publish-redist] in {path} has no `crates` list of strings")
            })?;
        Ok(Defaults { repo: string("repo")?, rev: string("rev")?, crates, registry: string("registry")? })
    }
}

/// What happened to one crate.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Outcome {
    Published,
    AlreadyThere,
    WouldPublish,
    /// A real run stopped before this crate (an earlier error).
    NotPublished,
}

impl Outcome {
    fn text(self) -> &'static str {
        match self {
            Outcome::Published => "published",
            Outcome::AlreadyThere => "already there",
            Outcome::WouldPublish => "would publish",
            Outcome::NotPublished => "not published",
        }
    }
}

impl PublishRedist {
    pub fn run(self, sh: &Shell) -> anyhow::Result<()> {
        let started = Instant::now();
        let defaults = Defaults::read(sh)?;
        let repo = source_location(self.repo.as_deref().unwrap_or(&defaults.repo))?;
        let rev = self.rev.clone().unwrap_or(defaults.rev);
        if rev.is_empty() || rev.starts_with('-') || rev.contains(char::is_whitespace) {
            bail!("`--rev {rev}` is not a commit SHA or a tag");
        }
        if let Some(version) = &self.version {
            check_version(version)?;
        }
        let crates = if self.crates.is_empty() { defaults.crates } else { self.crates.clone() };
        let registry_name = self.registry.clone().unwrap_or(defaults.registry);
        let registry = feeds::select(sh, std::slice::from_ref(&registry_name))?.remove(0);
        let git = Git::find()?;

        let temp = sh.create_temp_dir()?;
        let work = Utf8PathBuf::try_from(temp.path().to_owned()).context("the temp dir path is not UTF-8")?;
        if self.keep {
            // Forgetting the guard is what keeps the directory.
            std::mem::forget(temp);
            eprintln!("publish-redist: work dir {work} (kept: --keep)");
        }
        // The empty index for the package stage takes a few git commands that need
        // nothing else: build it while the source is fetched.
        let index = work.join("empty-index");
        let building_index = Background::spawn({
            let (git, index) = (git.clone(), index.clone());
            move || git.empty_index(&Shell::new()?, &index)
        });
        let mut run = Run { sh, registry: &registry, work: &work, cargo_time: Duration::ZERO };

        // Fetch.
        let t = Instant::now();
        let src = work.join("src");
        // The one stage that may take long before it can say anything.
        eprintln!("publish-redist: fetching {repo} at {rev}");
        let fetched = git.fetch(sh, &repo, &rev, &src)?;
        let note = fetched.note.as_deref().map(|n| format!(" ({n})")).unwrap_or_default();
        stage(
            "fetch",
            &format!(
                "{repo} at {rev}{note}: commit {}, {} fetched",
                short(&fetched.commit),
                human(fetched.bytes)
            ),
            t,
        );

        // Plan.
        let t = Instant::now();
        let ws =
            Workspace::read(&src).with_context(|| format!("reading the workspace of {repo} at {rev}"))?;
        let plan = workspace::plan(&ws, &crates, &registry.name, self.version.as_deref())
            .with_context(|| format!("{repo} at {rev}"))?;
        let planned: Vec<(String, String, String)> = plan
            .order
            .iter()
            .map(|&i| {
                let m = &ws.members[i];
                (m.name.clone(), plan.pins[&m.name].clone(), m.dir.clone())
            })
            .collect();
        let list: Vec<String> = planned.iter().map(|(n, v, _)| format!("{n} {v}")).collect();
        stage("plan", &format!("{} to {}", list.join(", then "), registry.name), t);

        // Rewrite and commit.
        let t = Instant::now();
        let diff = rewrite_workspace(&ws, &plan, &registry.name, self.version.as_deref())?;
        if !diff.is_empty() {
            git.commit_all(
                sh,
                &src,
                &format!(
                    "Publish to {} (cargo xtask publish-redist)\n\nSource: {repo} {}",
                    registry.name, fetched.commit
                ),
            )?;
        }
        let dependents = plan.edges.iter().map(|(a, b)| format!("{a} -> {b}")).collect::<Vec<_>>();
        stage(
            "rewrite",
            &if dependents.is_empty() {
                "no path dependencies between the crates".to_owned()
            } else {
                format!("pinned {} and committed", dependents.join(", "))
            },
            t,
        );
        if !diff.is_empty() {
            gha::group("publish-redist: the manifest diff", || print!("{diff}"));
        }

        // Which versions the feed already has.
        let mut outcomes = Vec::new();
        for (name, version, _) in &planned {
            let outcome = if self.dry_run {
                Outcome::WouldPublish
            } else {
                let t = Instant::now();
                let present = run.in_feed(name, version)?;
                stage(
                    "check",
                    &format!(
                        "{name} {version} {} {}",
                        if present { "is already in" } else { "is not yet in" },
                        registry.name
                    ),
                    t,
                );
                if present { Outcome::AlreadyThere } else { Outcome::NotPublished }
            };
            outcomes.push(outcome);
        }

        // Package and verify, unless there is nothing to publish.
        if outcomes.iter().any(|o| *o != Outcome::AlreadyThere) {
            let t = Instant::now();
            let names: Vec<&str> = planned.iter().map(|(n, _, _)| n.as_str()).collect();
            building_index.wait()?;
            run.package(&index, &src, &names)?;
            stage("package", &format!("packaged and verified {}", names.join(", ")), t);
        }

        // Publish.
        if !self.dry_run {
            for (i, (name, version, dir)) in planned.iter().enumerate() {
                if outcomes[i] == Outcome::AlreadyThere {
                    continue;
                }
                let manifest = src.join(dir).join("Cargo.toml");
                if let Err(err) = run.publish(name, version, &manifest) {
                    print_table(&planned, &outcomes, &repo, &fetched.commit, &registry.name, self.dry_run);
                    return Err(err);
                }
                outcomes[i] = Outcome::Published;
            }
        }

        print_table(&planned, &outcomes, &repo, &fetched.commit, &registry.name, self.dry_run);
        if self.keep {
            eprintln!("publish-redist: kept the work dir {work}");
        }
        eprintln!(
            "publish-redist: done in {:.2} s, {:.2} s of it in cargo",
            started.elapsed().as_secs_f64(),
            run.cargo_time.as_secs_f64()
        );
        Ok(())
    }
}

/// Rewrites every manifest of the workspace that needs it (the crates to publish
/// and any member or `[workspace.dependencies]` entry pointing at them, so the
/// workspace still resolves) and returns the diff of all of them.
fn rewrite_workspace(
    ws: &Workspace,
    plan: &workspace::Plan,
    registry: &str,
    version: Option<&str>,
) -> anyhow::Result<String> {
    let mut dirs: Vec<(String, bool)> =
        ws.members.iter().map(|m| (m.dir.clone(), plan.pins.contains_key(&m.name))).collect();
    if !dirs.iter().any(|(d, _)| d.is_empty()) {
        dirs.insert(0, (String::new(), false));
    }
    let mut diff = String::new();
    for (dir, selected) in dirs {
        let relative = if dir.is_empty() { "Cargo.toml".to_owned() } else { format!("{dir}/Cargo.toml") };
        let path = ws.root.join(&relative);
        let before = std::fs::read_to_string(&path).with_context(|| format!("cannot read {path}"))?;
        let rewrite = manifest::Rewrite {
            registry,
            pins: &plan.pins,
            package_version: if selected { version } else { None },
        };
        let after = manifest::rewrite(&path, &before, &rewrite)?;
        if after != before {
            toml_file::write_atomic(&path, &after)?;
            diff.push_str(&unified_diff(&relative, &before, &after));
        }
    }
    Ok(diff)
}

/// The cargo side of a run: every cargo command goes through here, timed.
struct Run<'a> {
    sh: &'a Shell,
    registry: &'a Registry,
    work: &'a Utf8Path,
    cargo_time: Duration,
}

/// One finished cargo command.
struct CargoOutput {
    success: bool,
    stderr: String,
    took: Duration,
    /// When cargo said `Uploaded`: the rest of a publish is the wait for the index.
    uploaded_after: Option<Duration>,
}

impl Run<'_> {
    /// Runs cargo with `args` in `dir`, the feed's index given through cargo's own
    /// environment variable (the work dir is outside this repo, whose config names
    /// the feeds). With `echo`, cargo's output is shown as it comes, in a log group
    /// under GitHub Actions.
    fn cargo(&mut self, dir: &Utf8Path, args: &[&str], echo: bool) -> anyhow::Result<CargoOutput> {
        let cargo = tool::cargo();
        let command =
            cmd!(self.sh, "{cargo} {args...}").env(self.registry.env_var("index"), &self.registry.index);
        let mut command = Command::from(command);
        command.current_dir(dir).stdin(Stdio::null()).stdout(Stdio::piped()).stderr(Stdio::piped());
        let title = format!("$ cargo {}", args.join(" "));
        let mut run = || -> anyhow::Result<CargoOutput> {
            let started = Instant::now();
            let mut child = command.spawn().with_context(|| format!("cannot run `{cargo}`"))?;
            let mut stdout = child.stdout.take().expect("piped");
            let stdout = std::thread::spawn(move || {
                let mut text = String::new();
                let _ = stdout.read_to_string(&mut text);
                text
            });
            let mut stderr = String::new();
            let mut uploaded_after = None;
            for line in BufReader::new(child.stderr.take().expect("piped")).lines() {
                let line = line.unwrap_or_default();
                if echo {
                    // stdout, with the group markers, so that the runner's log keeps
                    // the lines inside their group.
                    println!("{line}");
                }
                if line.trim_start().starts_with("Uploaded ") {
                    uploaded_after = Some(started.elapsed());
                }
                stderr.push_str(&line);
                stderr.push('\n');
            }
            let status = child.wait()?;
            let stdout = stdout.join().unwrap_or_default();
            if echo && !stdout.is_empty() {
                print!("{stdout}");
            }
            Ok(CargoOutput { success: status.success(), stderr, took: started.elapsed(), uploaded_after })
        };
        let out = if echo { gha::group(&title, run)? } else { run()? };
        self.cargo_time += out.took;
        Ok(out)
    }

    /// Whether the feed has `name` at `version`, asked through `cargo info` (from the
    /// work dir, outside any workspace, so cargo looks at the feed only).
    fn in_feed(&mut self, name: &str, version: &str) -> anyhow::Result<bool> {
        let spec = format!("{name}@{version}");
        let feed = &self.registry.name;
        let work = self.work.to_owned();
        let out = self.cargo(&work, &["info", &spec, "--registry", feed], false)?;
        if out.success {
            return Ok(true);
        }
        if out.stderr.contains(&format!("could not find `{spec}`")) {
            return Ok(false);
        }
        Err(feed_error(feed, &out.stderr))
    }

    /// `cargo package` of every crate at once, with the feed's index replaced by an
    /// empty local one: cargo verifies each dependent against the packages it just
    /// built, and never contacts the feed.
    fn package(&mut self, index: &Utf8Path, src: &Utf8Path, names: &[&str]) -> anyhow::Result<()> {
        let feed = self.registry.name.clone();
        let config = format!("registries.{feed}.index={}", toml_edit::Value::from(git::file_url(index)));
        let mut args = vec!["package", "--registry", &feed, "--config", &config];
        for name in names {
            args.extend(["-p", name]);
        }
        let out = self.cargo(src, &args, true)?;
        if !out.success {
            let mut message =
                format!("`cargo package` failed, nothing was published:\n{}", tail(&out.stderr));
            if matches!(crate::cargo::version(self.sh), Ok(v) if v < (1, 90)) {
                message.push_str(
                    "\nThis needs cargo 1.90 or newer (packaging dependents against just-packaged crates): \
                     `rustup update`",
                );
            }
            bail!(message);
        }
        Ok(())
    }

    /// `cargo publish` of one crate, already verified by [`Run::package`]; cargo waits
    /// until the index shows it.
    fn publish(&mut self, name: &str, version: &str, manifest: &Utf8Path) -> anyhow::Result<()> {
        let feed = self.registry.name.clone();
        let src = manifest.parent().expect("a manifest has a directory").to_owned();
        let args = ["publish", "--registry", &feed, "--manifest-path", manifest.as_str(), "--no-verify"];
        let out = self.cargo(&src, &args, true)?;
        if !out.success {
            return Err(feed_error(&feed, &out.stderr)
                .context(format!("publishing {name} {version} to {feed} failed; run again to resume")));
        }
        match out.uploaded_after {
            Some(upload) => {
                eprintln!(
                    "publish-redist: {:<8} {name} {version} uploaded ({:.2} s)",
                    "publish",
                    upload.as_secs_f64()
                );
                eprintln!(
                    "publish-redist: {:<8} until {feed}'s index shows {name} {version} ({:.2} s)",
                    "wait",
                    (out.took - upload).as_secs_f64()
                );
            }
            None => eprintln!(
                "publish-redist: {:<8} {name} {version} ({:.2} s)",
                "publish",
                out.took.as_secs_f64()
            ),
        }
        Ok(())
    }
}

/// Work on a thread of its own, joined at the latest when dropped (so it never
/// outlives the work dir it writes in).
struct Background(Option<std::thread::JoinHandle<anyhow::Result<()>>>);

impl Background {
    fn spawn(f: impl FnOnce() -> anyhow::Result<()> + Send + 'static) -> Background {
        Background(Some(std::thread::spawn(f)))
    }

    fn wait(mut self) -> anyhow::Result<()> {
        self.join()
    }

    fn join(&mut self) -> anyhow::Result<()> {
        match self.0.take() {
            Some(handle) => handle.join().unwrap_or_else(|_| bail!("the background thread panicked")),
            None => Ok(()),
        }
    }
}

impl Drop for Background {
    fn drop(&mut self) {
        let _ = self.join();
    }
}

/// A feed error in words that say what to do.
fn feed_error(feed: &str, stderr: &str) -> anyhow::Error {
    let login = "log in first: `cargo xtask cargo-login` (your Azure account) or, in CI, `cargo xtask \
                 cargo-login-ci` (a PAT with Packaging read & write in $PAT); or check everything but the \
                 upload with `cargo xtask publish-redist --dry-run`, which needs no credentials";
    if stderr.contains("no token found") || stderr.contains("credential-provider") {
        anyhow::anyhow!("cargo has no credentials for `{feed}`: {login}")
    } else if stderr.contains("token rejected") || stderr.contains("401") || stderr.contains("403") {
        anyhow::anyhow!("`{feed}` rejected cargo's token (expired, or without write access?): {login}")
    } else {
        anyhow::anyhow!("cargo failed on `{feed}`:\n{}", tail(stderr))
    }
}

/// cargo's error lines, without the progress before them.
fn tail(stderr: &str) -> String {
    let lines: Vec<&str> = stderr.lines().collect();
    let start = lines.iter().position(|l| l.starts_with("error")).unwrap_or(lines.len().saturating_sub(20));
    lines[start..].join("\n").trim_end().to_owned()
}

fn stage(name: &str, what: &str, started: Instant) {
    eprintln!("publish-redist: {name:<8} {what} ({:.2} s)", started.elapsed().as_secs_f64());
}

fn print_table(
    planned: &[(String, String, String)],
    outcomes: &[Outcome],
    repo: &str,
    commit: &str,
    feed: &str,
    dry_run: bool,
) {
    let width =
        |f: &dyn Fn(usize) -> usize, min: usize| (0..planned.len()).map(f).max().unwrap_or(0).max(min);
    let name_w = width(&|i| planned[i].0.len(), "crate".len());
    let version_w = width(&|i| planned[i].1.len(), "version".len());
    println!("{:<name_w$}  {:<version_w$}  outcome", "crate", "version");
    for ((name, version, _), outcome) in planned.iter().zip(outcomes) {
        println!("{name:<name_w$}  {version:<version_w$}  {}", outcome.text());
    }
    let mut markdown = format!(
        "### publish-redist{}\n\n{repo} at `{}` to `{feed}`\n\n| crate | version | outcome |\n|---|---|---|\n",
        if dry_run { " (dry run)" } else { "" },
        short(commit)
    );
    for ((name, version, _), outcome) in planned.iter().zip(outcomes) {
        markdown.push_str(&format!("| {name} | {version} | {} |\n", outcome.text()));
    }
    if let Err(err) = gha::summary(&markdown) {
        eprintln!("warning: {err:#}");
    }
}

/// A local path as an absolute path (the task runs at the repo root, but a path
/// is meant from where the user is); anything else is given to git as it is.
fn source_location(repo: &str) -> anyhow::Result<String> {
    if repo.starts_with('-') {
        bail!("`--repo {repo}` is not a URL or a path");
    }
    let path = std::path::Path::new(repo);
    if !repo.contains("://") && path.exists() {
        let absolute = std::path::absolute(path).with_context(|| format!("cannot make {repo} absolute"))?;
        // `absolute` keeps `..` on Unix; drop it so messages show a plain path.
        let mut plain = std::path::PathBuf::new();
        for part in absolute.components() {
            match part {
                std::path::Component::ParentDir => {
                    plain.pop();
                }
                other => plain.push(other),
            }
        }
        return Ok(plain.to_string_lossy().into_owned());
    }
    Ok(repo.to_owned())
}

/// A semver version: `MAJOR.MINOR.PATCH`, optionally `-pre.release` and `+build`.
fn check_version(version: &str) -> anyhow::Result<()> {
    let (core, rest) = match version.find(['-', '+']) {
        Some(i) => version.split_at(i),
        None => (version, ""),
    };
    let numbers: Vec<&str> = core.split('.').collect();
    let number_ok = |n: &&str| {
        !n.is_empty() && n.chars().all(|c| c.is_ascii_digit()) && (n.len() == 1 || !n.starts_with('0'))
    };
    let ident_ok = |s: &str| {
        s.split('.')
            .all(|part| !part.is_empty() && part.chars().all(|c| c.is_ascii_alphanumeric() || c == '-'))
    };
    let (pre, build) = match rest.split_once('+') {
        Some((pre, build)) => (pre, Some(build)),
        None => (rest, None),
    };
    let pre_ok = pre.is_empty() || (pre.starts_with('-') && ident_ok(&pre[1..]));
    if numbers.len() != 3 || !numbers.iter().all(number_ok) || !pre_ok || !build.is_none_or(ident_ok) {
        bail!(
            "`--version {version}` is not a version cargo takes: use MAJOR.MINOR.PATCH with an optional \
             -suffix, such as 0.1.2-20240321"
        );
    }
    Ok(())
}

fn short(commit: &str) -> &str {
    &commit[..commit.len().min(12)]
}

fn human(bytes: u64) -> String {
    match bytes {
        b if b >= 1 << 20 => format!("{:.1} MiB", b as f64 / f64::from(1 << 20)),
        b if b >= 1 << 10 => format!("{:.1} KiB", b as f64 / 1024.0),
        b => format!("{b} bytes"),
    }
}

/// A unified diff of one file (two lines of context), from a longest common
/// subsequence of lines: manifests are short, so the quadratic table is tiny.
fn unified_diff(path: &str, before: &str, after: &str) -> String {
    let a: Vec<&str> = before.lines().collect();
    let b: Vec<&str> = after.lines().collect();
    // lcs[i][j]: the LCS length of a[i..] and b[j..].
    let mut lcs = vec![vec![0u32; b.len() + 1]; a.len() + 1];
    for i in (0..a.len()).rev() {
        for j in (0..b.len()).rev() {
            lcs[i][j] = if a[i] == b[j] { lcs[i + 1][j + 1] + 1 } else { lcs[i + 1][j].max(lcs[i][j + 1]) };
        }
    }
    // Each op: (kind, line index in a, line index in b).
    let mut ops = Vec::new();
    let (mut i, mut j) = (0, 0);
    while i < a.len() || j < b.len() {
        if i < a.len() && j < b.len() && a[i] == b[j] {
            ops.push((' ', i, j));
            i += 1;
            j += 1;
        } else if i < a.len() && (j == b.len() || lcs[i + 1][j] >= lcs[i][j + 1]) {
            ops.push(('-', i, j));
            i += 1;
        } else {
            ops.push(('+', i, j));
            j += 1;
        }
    }
    const CONTEXT: usize = 2;
    let changed: Vec<usize> = (0..ops.len()).filter(|&k| ops[k].0 != ' ').collect();
    let mut out = String::new();
    if changed.is_empty() {
        return out;
    }
    out.push_str(&format!("--- a/{path}\n+++ b/{path}\n"));
    let mut k = 0;
    while k < changed.len() {
        let first = changed[k];
        let mut last = first;
        while k + 1 < changed.len() && changed[k + 1] - last <= 2 * CONTEXT + 1 {
            k += 1;
            last = changed[k];
        }
        k += 1;
        let (from, to) = (first.saturating_sub(CONTEXT), (last + CONTEXT + 1).min(ops.len()));
        let hunk = &ops[from..to];
        let a_len = hunk.iter().filter(|op| op.0 != '+').count();
        let b_len = hunk.iter().filter(|op| op.0 != '-').count();
        out.push_str(&format!("@@ -{},{a_len} +{},{b_len} @@\n", hunk[0].1 + 1, hunk[0].2 + 1));
        for &(kind, i, j) in hunk {
            let line = if kind == '+' { b[j] } else { a[i] };
            out.push_str(&format!("{kind}{line}\n"));
            let last_of = |text: &str, n: usize, index: usize| index + 1 == n && !text.ends_with('\n');
            if (kind != '+' && last_of(before, a.len(), i)) || (kind == '+' && last_of(after, b.len(), j)) {
                out.push_str("\\ No newline at end of file\n");
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions_are_checked_before_anything_runs() {
        for good in ["0.1.1", "0.1.2-20240321", "1.0.0-rc.1+build.5", "10.20.30"] {
            assert!(check_version(good).is_ok(), "{good}");
        }
        for bad in ["0.1", "01.1.1", "0.1.1-", "0.1.1-a..b", "v0.1.1", "0.1.1+"] {
            let err = check_version(bad).unwrap_err();
            assert!(format!("{err:#}").contains("0.1.2-20240321"), "{bad}");
        }
    }

    #[test]
    fn the_diff_shows_the_changed_line_with_context() {
        let before = "[package]\nname = \"a\"\n\n[dependencies]\nb = {path = \"../b\"}";
        let after = "[package]\nname = \"a\"\n\n[dependencies]\nb = {path = \"../b\", version = \"=1.0.0\", registry = \"r\"}";
        let diff = unified_diff("a/Cargo.toml", before, after);
        assert_eq!(
            diff,
            "--- a/a/Cargo.toml\n+++ b/a/Cargo.toml\n@@ -3,3 +3,3 @@\n \n [dependencies]\n-b = {path = \"../b\"}\n\\ No newline at end of file\n+b = {path = \"../b\", version = \"=1.0.0\", registry = \"r\"}\n\\ No newline at end of file\n"
        );
        let before = "a\nb\nc\nd\ne\nf\n";
        let after = "a\nb\nc\nX\ne\nf\n";
        assert_eq!(
            unified_diff("f", before, after),
            "--- a/f\n+++ b/f\n@@ -2,5 +2,5 @@\n b\n c\n-d\n+X\n e\n f\n"
        );
        // Two changes far apart make two hunks.
        let before = "1\n2\n3\n4\n5\n6\n7\n8\n9\n";
        let after = "1\nA\n3\n4\n5\n6\n7\nB\n9\n";
        assert_eq!(
            unified_diff("f", before, after),
            "--- a/f\n+++ b/f\n@@ -1,4 +1,4 @@\n 1\n-2\n+A\n 3\n 4\n@@ -6,4 +6,4 @@\n 6\n 7\n-8\n+B\n 9\n"
        );
        assert_eq!(unified_diff("f", "same\n", "same\n"), "");
    }

    #[test]
    fn feed_errors_say_which_login_task_to_run() {
        let msg = format!(
            "{:#}",
            feed_error(
                "hyperlight_redist",
                "error: no token found for `hyperlight_redist`, please run `cargo login`"
            )
        );
        assert!(msg.contains("cargo xtask cargo-login") && msg.contains("cargo-login-ci"), "{msg}");
        let msg = format!("{:#}", feed_error("r", "error: token rejected for `r`"));
        assert!(msg.contains("rejected"), "{msg}");
    }

    #[test]
    fn sizes_read_well() {
        assert_eq!(human(512), "512 bytes");
        assert_eq!(human(83_409), "81.5 KiB");
        assert_eq!(human(3 << 20), "3.0 MiB");
    }
}
