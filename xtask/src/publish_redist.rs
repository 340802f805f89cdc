//! `cargo xtask publish-redist`: the rust-vmm mshv crates Hyperlight pins, to the
//! redist feed. Its own part: fetching the one rev, the crates named, and the
//! consumers built against them, since those crates break their host, not themselves.

use std::time::Instant;

use anyhow::{Context, bail};
use toml_edit::Item;
use xshell::Shell;

use crate::feeds;
use crate::git::Git;
use crate::publish::workspace::{self, Workspace};
use crate::publish::{self, Engine, Prepared, check_version, manifest};
use crate::toml_file;

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
    after_help = "Examples:\n  cargo xtask publish-redist --dry-run\n  cargo xtask publish-redist\n  cargo xtask publish-redist --rev 52edcf4 --dry-run\n  cargo xtask publish-redist --rev <newer SHA or tag> --version 0.1.2-20240416\n  cargo xtask publish-redist --repo ../mshv --dry-run --keep\n  cargo xtask publish-redist --crate mshv-bindings\n  cargo xtask publish-redist --dry-run --consumers ../hyperlight/Cargo.toml"
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
    /// Skip building the host's members that depend on the crates against the
    /// packaged crates (done by default, dry run or not, before any upload).
    #[arg(long)]
    pub no_consumer_check: bool,
    /// Publish even when a consumer's requirement excludes the version packaged (such
    /// as `=0.1.1` with `--version 0.1.2`): that consumer is reported "not checked"
    /// instead of stopping the run.
    #[arg(long, conflicts_with = "no_consumer_check")]
    pub allow_unchecked_consumers: bool,
    /// The workspace whose members that depend on the crates are built against them
    /// [default: the repository's root Cargo.toml, when there is one].
    #[arg(long, value_name = "PATH", conflicts_with = "no_consumer_check")]
    pub consumers: Option<camino::Utf8PathBuf>,
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
    fn read() -> anyhow::Result<Defaults> {
        let path = crate::project_root().join("xtask").join("Cargo.toml");
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

impl PublishRedist {
    pub fn run(self, sh: &Shell) -> anyhow::Result<()> {
        let defaults = Defaults::read()?;
        let repo = source_location(self.repo.as_deref().unwrap_or(&defaults.repo))?;
        let rev = self.rev.clone().unwrap_or(defaults.rev);
        if rev.is_empty() || rev.starts_with('-') || rev.contains(char::is_whitespace) {
            bail!("`--rev {rev}` is not a commit SHA or a tag");
        }
        if let Some(version) = &self.version {
            check_version(version, "--version")?;
        }
        let crates = if self.crates.is_empty() { defaults.crates } else { self.crates.clone() };
        let registry_name = self.registry.clone().unwrap_or(defaults.registry);
        let registry = feeds::select(std::slice::from_ref(&registry_name))?.remove(0);
        let consumers = match (&self.consumers, self.no_consumer_check) {
            (_, true) => None,
            (Some(manifest), false) => Some(consumer_root(manifest)?),
            (None, false) => Some(crate::project_root()),
        };
        let git = Git::find()?;
        let settings = publish::Settings {
            task: "publish-redist",
            registry: &registry,
            git: &git,
            version: self.version.as_deref(),
            keep: self.keep,
            dry_run: self.dry_run,
            consumers: consumers.as_deref(),
            allow_unchecked_consumers: self.allow_unchecked_consumers,
        };
        let mut fetch = Fetch { options: &self, git: &git, repo, rev, crates };
        publish::run(sh, &settings, &mut fetch)
    }
}

/// publish-redist's own part: fetch the one rev, plan the crates named.
struct Fetch<'a> {
    options: &'a PublishRedist,
    git: &'a Git,
    repo: String,
    rev: String,
    crates: Vec<String>,
}

impl publish::Task for Fetch<'_> {
    fn prepare(&mut self, engine: &Engine) -> anyhow::Result<Prepared> {
        let (repo, rev, registry) = (&self.repo, &self.rev, engine.registry);
        // The one stage that may take long before it can say anything.
        let t = Instant::now();
        let src = engine.work.join("src");
        eprintln!("publish-redist: fetching {repo} at {rev}");
        let fetched = self.git.fetch(engine.sh, repo, rev, &src)?;
        let note = fetched.note.as_deref().map(|n| format!(" ({n})")).unwrap_or_default();
        let (commit, size) = (short(&fetched.commit), human(fetched.bytes));
        engine.stage("fetch", &format!("{repo} at {rev}{note}: commit {commit}, {size} fetched"), t);

        let planned_at = Instant::now();
        let ws = Workspace::read(&src, registry)
            .with_context(|| format!("reading the workspace of {repo} at {rev}"))?;
        let version = self.options.version.as_deref();
        let plan = workspace::plan(&ws, &self.crates, &registry.name, version, workspace::Linked::Required)
            .with_context(|| format!("{repo} at {rev}"))?;
        Ok(Prepared {
            src,
            ws,
            plan,
            planned_at,
            listed: Default::default(),
            requirement: manifest::Requirement::Exact,
            message: format!(
                "Publish to {} (cargo xtask publish-redist)\n\nSource: {repo} {}",
                registry.name, fetched.commit
            ),
            source: format!("{repo} at `{commit}`"),
        })
    }

    fn rewritten(
        &self,
        _: &Engine,
        _changed: bool,
        plan: &workspace::Plan,
    ) -> anyhow::Result<(String, Option<String>)> {
        let dependents = plan.edges.iter().map(|(a, b)| format!("{a} -> {b}")).collect::<Vec<_>>();
        let line = if dependents.is_empty() {
            "no path dependencies between the crates".to_owned()
        } else {
            format!("pinned {} and committed", dependents.join(", "))
        };
        Ok((line, None))
    }
}

/// The workspace root of `--consumers PATH/Cargo.toml`, the path meant from where
/// the user is.
fn consumer_root(manifest: &camino::Utf8Path) -> anyhow::Result<camino::Utf8PathBuf> {
    let path =
        if manifest.is_absolute() { manifest.to_owned() } else { crate::invocation_dir()?.join(manifest) };
    if path.file_name() != Some("Cargo.toml") || !path.is_file() {
        bail!("--consumers {manifest}: not a Cargo.toml that exists");
    }
    Ok(path.parent().context("a manifest has a directory")?.to_owned())
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_read_well() {
        assert_eq!(human(512), "512 bytes");
        assert_eq!(human(83_409), "81.5 KiB");
        assert_eq!(human(3 << 20), "3.0 MiB");
    }
}
