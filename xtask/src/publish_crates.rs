//! `cargo xtask publish`: the host workspace's own crates, to a feed or crates.io.
//! Its own part: the selection, cargo's file list of each crate in the user's tree,
//! and a `git clone --shared` of the user's commit, so the user's tree is never
//! touched and `.cargo_vcs_info.json` names the user's commit.

use std::time::Instant;

use anyhow::{Context, bail};
use camino::{Utf8Path, Utf8PathBuf};
use xshell::Shell;

use crate::feeds::{self, Registry};
use crate::git::Git;
use crate::publish::workspace::{self, Workspace};
use crate::publish::{self, Engine, Prepared, check_version, compare, manifest};

/// Publish the host workspace's crates, in dependency order, skipping only what the
/// feed has with identical sources.
///
/// Selects the workspace's crates that cargo would publish to the registry (as
/// `cargo metadata` reads them: each with a `version` and a `package.publish` that
/// allows the registry; narrow with `-p`, `--exclude`), works on a copy of your git
/// repository at your commit, submodules included (your tree is never changed;
/// uncommitted changes stop the run unless `--allow-dirty`), packages and verifies
/// all of them together (each dependent
/// against the dependencies just packaged: `--dry-run` needs no credentials and no
/// feed), then per crate: skip it if the feed has that version with the same
/// sources, stop before any upload if the feed has it with other sources, else
/// publish it and wait for the index. A run that stopped part-way completes when
/// run again.
#[derive(clap::Args)]
#[command(after_help = "Examples:
  cargo xtask publish --dry-run
  cargo xtask publish --version 0.2.0-preview.1
  cargo xtask publish -p hyperlight-common -p hyperlight-host --dry-run
  cargo xtask publish --exclude hyperlight-capi
  cargo xtask publish --dry-run --allow-dirty
  CARGO_REGISTRY_TOKEN=... cargo xtask publish --registry crates-io")]
pub struct Publish {
    /// The registry: a feed of `.cargo/config.toml`, or `crates-io` (the token from
    /// `CARGO_REGISTRY_TOKEN`, as trusted publishing hands it over).
    #[arg(long, value_name = "NAME", default_value = "hyperlight_packages")]
    pub registry: String,
    /// A crate to publish (repeatable) [default: every crate with a version whose
    /// `package.publish` allows the registry]. The order comes from their dependencies.
    #[arg(short = 'p', long = "package", value_name = "NAME")]
    pub packages: Vec<String>,
    /// Leave this crate out (repeatable).
    #[arg(long, value_name = "NAME")]
    pub exclude: Vec<String>,
    /// Publish every selected crate under this version; the requirements between
    /// them follow, each keeping its operator. Feed versions are immutable.
    #[arg(long, value_name = "VERSION")]
    pub version: Option<String>,
    /// Do everything except upload: copy, rewrite, package and verify every crate,
    /// print the plan and the manifest diff. Needs no credentials and no feed.
    #[arg(long)]
    pub dry_run: bool,
    /// Publish uncommitted changes too (as `cargo publish --allow-dirty`): without
    /// it, a change git has not committed in the repository or its submodules stops
    /// the run, named.
    #[arg(long)]
    pub allow_dirty: bool,
    /// Keep the work dir (the copy with the rewrite committed) and print its path.
    #[arg(long)]
    pub keep: bool,
    /// The root manifest of the workspace to publish [default: the repository's
    /// root `Cargo.toml`].
    #[arg(long, value_name = "PATH")]
    pub manifest_path: Option<camino::Utf8PathBuf>,
}

impl Publish {
    pub fn run(self, sh: &Shell) -> anyhow::Result<()> {
        if let Some(version) = &self.version {
            check_version(version, "--version")?;
        }
        let registry = self.registry()?;
        let root = match &self.manifest_path {
            Some(path) => {
                let path =
                    if path.is_absolute() { path.clone() } else { crate::invocation_dir()?.join(path) };
                if path.file_name() != Some("Cargo.toml") || !path.is_file() {
                    bail!("--manifest-path {path}: not a Cargo.toml that exists");
                }
                path.parent().context("a manifest has a directory")?.to_owned()
            }
            None => crate::project_root(),
        };
        if !root.join("Cargo.toml").is_file() {
            bail!(
                "{root} has no Cargo.toml, so there is no workspace to publish there: pass \
                 `--manifest-path PATH/Cargo.toml` of the workspace whose crates to publish"
            );
        }
        let git = Git::find()?;
        let (top, prefix, commit) = self.repository(sh, &git, &root)?;
        let settings = publish::Settings {
            task: "publish",
            registry: &registry,
            git: &git,
            version: self.version.as_deref(),
            keep: self.keep,
            dry_run: self.dry_run,
            consumers: None,
            allow_unchecked_consumers: false,
        };
        let mut copy =
            RepoCopy { options: &self, git: &git, root, top, prefix, commit, copied: String::new() };
        publish::run(sh, &settings, &mut copy)
    }

    /// The git repository holding the workspace at `root`: its top level, `root`
    /// relative to it, and the commit checked out; an error naming what is
    /// uncommitted unless `--allow-dirty`.
    fn repository(
        &self,
        sh: &Shell,
        git: &Git,
        root: &Utf8Path,
    ) -> anyhow::Result<(Utf8PathBuf, String, String)> {
        let (top, prefix) = git.toplevel(sh, root)?;
        let commit = git.head(sh, &top)?;
        if !self.allow_dirty {
            refuse_uncommitted(&git.uncommitted(sh, &top)?, &top)?;
        }
        Ok((top, prefix, commit))
    }

    /// The registry of `--registry`: a feed of the config, or crates.io.
    fn registry(&self) -> anyhow::Result<Registry> {
        if self.registry == feeds::CRATES_IO {
            return Ok(Registry::crates_io());
        }
        let mut found = feeds::select(std::slice::from_ref(&self.registry)).with_context(|| {
            format!(
                "`--registry {}`: name a feed of {}, or `{}` for crates.io",
                self.registry,
                feeds::CONFIG_PATH,
                feeds::CRATES_IO
            )
        })?;
        Ok(found.remove(0))
    }

    /// How to bring the crates `names`, left out, into the crates to publish.
    fn add_advice(&self, names: &[&str]) -> String {
        let (dropped, added): (Vec<&str>, Vec<&str>) =
            names.iter().partition(|n| self.exclude.iter().any(|e| e == *n));
        let flags = |flag: &str, names: &[&str]| {
            names.iter().map(|n| format!("{flag} {n}")).collect::<Vec<_>>().join(" ")
        };
        let mut advice = Vec::new();
        if !added.is_empty() {
            advice.push(format!("add `{}`", flags("-p", &added)));
        }
        if !dropped.is_empty() {
            advice.push(format!("drop `{}`", flags("--exclude", &dropped)));
        }
        advice.join(" and ")
    }

    /// How to leave crate `name` out of the crates to publish.
    fn leave_out(&self, name: &str) -> String {
        if self.packages.is_empty() { format!("`--exclude {name}`") } else { format!("drop `-p {name}`") }
    }

    /// The names to publish: `-p` (each must be a member), else every member cargo
    /// would publish to the registry; less `--exclude`. Names that are not members
    /// are named at once.
    fn selection(&self, ws: &Workspace, registry: &str) -> anyhow::Result<Vec<String>> {
        let names: Vec<&str> = ws.members.iter().map(|m| m.name.as_str()).collect();
        let mut unknown: Vec<String> = Vec::new();
        for name in self.packages.iter().chain(&self.exclude) {
            if !names.contains(&name.as_str()) && !unknown.contains(&format!("`{name}`")) {
                unknown.push(format!("`{name}`"));
            }
        }
        if !unknown.is_empty() {
            bail!(
                "{} {} of the workspace, whose crates are: {}",
                unknown.join(", "),
                if unknown.len() == 1 { "is not a crate" } else { "are not crates" },
                names.join(", ")
            );
        }
        let mut wanted: Vec<String> = if self.packages.is_empty() {
            ws.publishable(registry).iter().map(|m| m.name.clone()).collect()
        } else {
            self.packages.clone()
        };
        wanted.retain(|n| !self.exclude.contains(n));
        if wanted.is_empty() {
            bail!(
                "no crate to publish to `{registry}`: none has a version and allows it in `package.publish`, \
                 or all are excluded"
            );
        }
        Ok(wanted)
    }
}

/// publish's own part: plan on the user's tree, then copy its repository at its commit.
struct RepoCopy<'a> {
    options: &'a Publish,
    git: &'a Git,
    /// The workspace's root in the user's tree.
    root: Utf8PathBuf,
    /// The repository's top level, the root relative to it, and its commit.
    top: Utf8PathBuf,
    prefix: String,
    commit: String,
    /// The copy's commit before the rewrite (the user's, or theirs with `--allow-dirty` changes).
    copied: String,
}

impl publish::Task for RepoCopy<'_> {
    fn prepare(&mut self, engine: &Engine) -> anyhow::Result<Prepared> {
        let (options, registry) = (self.options, engine.registry);
        // Plan on the user's tree (read only), so a bad selection fails before any copy.
        let t = Instant::now();
        let ws = Workspace::read(&self.root, registry).context("reading the workspace to publish")?;
        let wanted = options.selection(&ws, &registry.name)?;
        let (add, leave_out) =
            (|names: &[&str]| options.add_advice(names), |name: &str| options.leave_out(name));
        let advice = workspace::Advice { add: &add, leave_out: &leave_out };
        let version = options.version.as_deref();
        let plan = workspace::plan_for(
            &ws,
            &wanted,
            &registry.name,
            version,
            workspace::Linked::NotRequired,
            &advice,
        )?;
        let names: Vec<&str> = plan.order.iter().map(|&i| ws.members[i].name.as_str()).collect();
        let listed = compare::cargo_lists(engine, &self.root, &names, options.allow_dirty)?;
        // The whole repository, so that files outside the workspace dir are there.
        let repo = engine.work.join("src");
        self.copied = self.git.copy_repository(engine.sh, &self.top, &repo, options.allow_dirty)?;
        let src = if self.prefix.is_empty() { repo } else { repo.join(&self.prefix) };
        let what =
            if self.copied == self.commit { "" } else { " with its uncommitted changes (--allow-dirty)" };
        let (top, commit) = (&self.top, &self.commit);
        engine.stage("copy", &format!("{top} at {commit}{what}, submodules too, into the work dir"), t);
        Ok(Prepared {
            ws: ws.moved_to(&src),
            src,
            plan,
            planned_at: Instant::now(),
            listed,
            requirement: if version.is_some() {
                manifest::Requirement::KeepOperator
            } else {
                manifest::Requirement::Keep
            },
            message: format!("Publish to {} (cargo xtask publish)", registry.name),
            source: format!("the workspace at {}", self.root),
        })
    }

    fn rewritten(
        &self,
        engine: &Engine,
        changed: bool,
        _: &workspace::Plan,
    ) -> anyhow::Result<(String, Option<String>)> {
        let line = if changed { "versions and requirements set, committed" } else { "nothing to change" };
        let head = self.git.head(engine.sh, &engine.work.join("src"))?;
        Ok((line.to_owned(), named_commit(&head, &self.commit, &self.copied)))
    }
}

/// When the packages will not name the user's `commit` in `.cargo_vcs_info.json`
/// (the work copy's HEAD is `named`; `copied` is the copy before the rewrite): which
/// commit they name, and what it is.
fn named_commit(named: &str, commit: &str, copied: &str) -> Option<String> {
    let on_top = match (copied != commit, named != copied) {
        (false, false) => return None,
        (true, true) => "your uncommitted changes and the rewrite",
        (true, false) => "your uncommitted changes",
        (false, true) => "the rewrite",
    };
    Some(format!(
        "the packages name commit {named} (`.cargo_vcs_info.json`): your commit {commit} with {on_top} \
         committed on top in the work dir; that commit exists nowhere else"
    ))
}

/// The error for a repository with changes git has not committed, naming them:
/// cargo refuses them too, and the copy is made from the commit.
fn refuse_uncommitted(paths: &[String], top: &Utf8Path) -> anyhow::Result<()> {
    if paths.is_empty() {
        return Ok(());
    }
    let shown: Vec<&str> = paths.iter().take(20).map(String::as_str).collect();
    let more = paths.len().saturating_sub(shown.len());
    bail!(
        "{} uncommitted in the git repository at {top} (what is published is what is committed):\n  {}{}\n\
         Commit them, or pass --allow-dirty to publish them as they are (as `cargo publish --allow-dirty`)",
        if paths.len() == 1 { "1 change is".to_owned() } else { format!("{} changes are", paths.len()) },
        shown.join("\n  "),
        if more > 0 { format!("\n  and {more} more") } else { String::new() }
    )
}
