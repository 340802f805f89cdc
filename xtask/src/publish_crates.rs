//! `cargo xtask publish`: the host workspace's own crates, from a copy of the
//! user's commit (so `.cargo_vcs_info.json` names it), to a feed or crates.io.

use std::time::Instant;

use anyhow::{Context, ensure};
use camino::{Utf8Path, Utf8PathBuf};

use crate::feeds::{self, Registry};
use crate::git::Git;
use crate::publish::manifest::Requirement;
use crate::publish::workspace::{self, Plan, Workspace};
use crate::publish::{self, Engine, Prepared, compare};

/// Publish the host workspace's crates, in dependency order, skipping only what the
/// feed has with identical sources.
///
/// Works on a copy of your commit (your tree is never changed); packages and
/// verifies every crate, and stops before any upload if the feed has a version with
/// other sources. A run that stopped part-way completes when run again.
#[derive(clap::Args)]
#[command(after_help = "Examples:
  cargo xtask publish --dry-run
  cargo xtask publish --version 0.2.0-preview.1
  cargo xtask publish -p hyperlight-common --dry-run
  cargo xtask publish --exclude hyperlight_guest_capi
  cargo xtask publish --dry-run --allow-dirty
  CARGO_REGISTRY_TOKEN=... cargo xtask publish --registry crates-io")]
pub struct Publish {
    /// The registry: a feed of `.cargo/config.toml`, or `crates-io` (the token from
    /// `CARGO_REGISTRY_TOKEN`, as trusted publishing hands it over).
    #[arg(long, value_name = "NAME", default_value = "hyperlight_packages")]
    pub registry: String,
    /// A crate to publish (repeatable) [default: every crate with a version whose
    /// `package.publish` allows the registry].
    #[arg(short = 'p', long = "package", value_name = "NAME")]
    pub packages: Vec<String>,
    /// Leave this crate out (repeatable).
    #[arg(long, value_name = "NAME")]
    pub exclude: Vec<String>,
    #[command(flatten)]
    pub common: publish::Common,
    /// Publish uncommitted changes too (as `cargo publish --allow-dirty`).
    #[arg(long)]
    pub allow_dirty: bool,
    /// The root manifest of the workspace to publish [default: the repository's].
    #[arg(long, value_name = "PATH")]
    pub manifest_path: Option<camino::Utf8PathBuf>,
}

impl Publish {
    pub fn run(self) -> anyhow::Result<()> {
        let (name, config, crates_io) = (&self.registry, feeds::CONFIG_PATH, feeds::CRATES_IO);
        let hint = format!("`--registry {name}`: name a feed of {config}, or `{crates_io}` for crates.io");
        let registry = match name.as_str() {
            feeds::CRATES_IO => Registry::crates_io(),
            _ => feeds::select(std::slice::from_ref(name)).context(hint)?.remove(0),
        };
        let root = publish::manifest_dir("--manifest-path", self.manifest_path.as_deref())?;
        let settings =
            publish::Settings { task: "publish", registry: &registry, common: &self.common, consumers: None };
        publish::run(&settings, &|engine| self.prepare(engine, &root))
    }

    /// Plans on the user's tree (read only), so a bad selection fails before any copy.
    fn prepare(&self, engine: &Engine, root: &Utf8Path) -> anyhow::Result<Prepared> {
        let (t, registry, git) = (Instant::now(), engine.registry, engine.git);
        let (top, prefix) = git.toplevel(root)?;
        let commit = git.head(&top)?;
        let dirty = if self.allow_dirty { Vec::new() } else { git.uncommitted(&top)? };
        let changes =
            if dirty.len() == 1 { "1 change is".to_owned() } else { format!("{} changes are", dirty.len()) };
        ensure!(
            dirty.is_empty(),
            "{changes} uncommitted in the git repository at {top} (what is published is what is committed):\n  \
             {}\nCommit them, or pass --allow-dirty to publish them as they are (as `cargo publish --allow-dirty`)",
            crate::tool::first(&dirty, 20, "\n  ")
        );
        let ws = Workspace::read(root, registry).context("reading the workspace to publish")?;
        let version = self.common.version.as_deref();
        let mut plan = workspace::plan(&ws, &self.packages, &registry.name, version, Some(&self.exclude))?;
        self.all_checked_out(git, &top, &prefix, &plan)?;
        compare::list(engine, root, &mut plan.crates, self.allow_dirty)?;
        publish::show_plan(engine, &plan, t.elapsed());
        let t = Instant::now();
        let repo = engine.work.join("src");
        let copied = git.copy_repository(&top, &repo, self.allow_dirty)?;
        let src = if prefix.is_empty() { repo.clone() } else { repo.join(prefix) };
        warn_unseen_configs(root, &src, &repo)?;
        let what = if copied == commit { "" } else { " with its uncommitted changes (--allow-dirty)" };
        let what = format!("{top} at {commit}{what}, submodules too, into the work dir");
        engine.stage("copy", &what, t.elapsed());
        Ok(Prepared {
            ws: Workspace { root: src, ..ws },
            plan,
            requirement: if version.is_some() { Requirement::KeepOperator } else { Requirement::Keep },
            source: format!("the workspace at {root}"),
            commits: Some((commit, copied)),
        })
    }

    /// An error naming each file of the crates to publish that the checkout lacks, with the
    /// flags that leave out the crates holding them and every crate that needs those.
    fn all_checked_out(&self, git: &Git, top: &Utf8Path, prefix: &str, plan: &Plan) -> anyhow::Result<()> {
        let missing = publish::not_checked_out(git, top, prefix, &plan.crates)?;
        let mut out: Vec<&str> = missing.iter().map(|m| m.2).collect();
        while let Some((a, _)) =
            plan.edges.iter().find(|(a, b)| out.contains(&&b[..]) && !out.contains(&&a[..]))
        {
            out.push(a);
        }
        out.sort_unstable();
        out.dedup();
        let flag = if self.packages.is_empty() { "--exclude" } else { "-p" };
        let flags: Vec<String> = out.iter().map(|name| format!("{flag} {name}")).collect();
        let how = if self.packages.is_empty() { "" } else { "drop " };
        let missing: Vec<String> =
            missing.iter().map(|(path, why, name)| format!("{path} in {name} ({why})")).collect();
        ensure!(
            missing.is_empty(),
            "files of your commit in the crates to publish are not checked out as committed at {top}, so the \
             packages would not hold them as committed:\n  {}\nCheck them out as each says, or leave out \
             those crates and what needs them: {how}`{}`",
            crate::tool::first(&missing, 20, "\n  "),
            flags.join(" ")
        );
        Ok(())
    }
}

/// Warns of each `.cargo/config.toml` cargo reads at `root` and not at `src`, its copy
/// in `repo`: ignored, or above the repository (and not above the copy too).
fn warn_unseen_configs(root: &Utf8Path, src: &Utf8Path, repo: &Utf8Path) -> anyhow::Result<()> {
    let home = crate::cargo_home::cargo_home()?;
    let above_copy = crate::cargo_home::dir_configs(repo, &home);
    let in_copy = |config: &Utf8PathBuf| {
        let up = root.ancestors().position(|dir| config.starts_with(dir.join(".cargo")));
        let dir = up.and_then(|up| src.ancestors().nth(up)).filter(|dir| dir.starts_with(repo));
        let name = config.file_name().unwrap_or_default();
        above_copy.contains(config) || dir.is_some_and(|dir| dir.join(".cargo").join(name).is_file())
    };
    let configs = crate::cargo_home::dir_configs(root, &home);
    let unseen: Vec<String> = configs.into_iter().filter(|c| !in_copy(c)).map(String::from).collect();
    if !unseen.is_empty() {
        crate::gha::warning(&format!(
            "cargo reads {} in your tree, which the work copy does not have (not committed, or outside \
             the repository): the packages are built and verified without them, as consumers build them",
            unseen.join(", ")
        ));
    }
    Ok(())
}
