//! `cargo xtask publish-redist`: the rust-vmm mshv crates Hyperlight pins, at one rev, to the redist feed.

use std::time::Instant;

use anyhow::{Context, ensure};
use toml_edit::Item;

use crate::feeds;
use crate::publish::workspace::{self, Workspace};
use crate::publish::{self, Engine, Prepared, manifest};
use crate::toml_file;

/// Republish the pinned rust-vmm mshv crates to the redist feed.
///
/// Fetches the rev, pins the path dependencies between the crates to
/// `version = "=<version>"` in the feed, packages and verifies every crate, then
/// publishes them in dependency order, skipping what the feed has. The defaults are
/// `[workspace.metadata.publish-redist]` in xtask/Cargo.toml.
#[derive(clap::Args)]
#[command(
    after_help = "Examples:\n  cargo xtask publish-redist --dry-run\n  cargo xtask publish-redist\n  cargo xtask publish-redist --rev 52edcf4 --dry-run\n  cargo xtask publish-redist --rev <newer SHA or tag> --version 0.1.2-20240416\n  cargo xtask publish-redist --repo ../mshv --dry-run --keep\n  cargo xtask publish-redist --crate mshv-bindings\n  cargo xtask publish-redist --dry-run --consumers ../hyperlight/Cargo.toml"
)]
pub struct PublishRedist {
    /// The source: a git URL or the path of a local clone [default: `repo` of
    /// `[workspace.metadata.publish-redist]`, `https://github.com/rust-vmm/mshv`].
    #[arg(long, value_name = "URL|PATH")]
    pub repo: Option<String>,
    /// The commit to publish: a full or abbreviated SHA, or a tag [default: the metadata's rev].
    #[arg(long, value_name = "SHA|TAG")]
    pub rev: Option<String>,
    /// The feed to publish to, by its name in `.cargo/config.toml` [default: hyperlight_redist].
    #[arg(long, value_name = "NAME")]
    pub registry: Option<String>,
    /// A crate to publish (repeatable; replaces the default list).
    #[arg(long = "crate", value_name = "NAME")]
    pub crates: Vec<String>,
    #[command(flatten)]
    pub common: publish::Common,
    /// Skip building the host's members that depend on the crates against them.
    #[arg(long)]
    pub no_consumer_check: bool,
    /// Publish even when a consumer's requirement excludes the version packaged (such
    /// as `=0.1.1` with `--version 0.1.2`): that consumer is reported "not checked".
    #[arg(long, conflicts_with = "no_consumer_check")]
    pub allow_unchecked_consumers: bool,
    /// The workspace whose members that depend on the crates are built against them
    /// [default: the repository's root Cargo.toml, when there is one].
    #[arg(long, value_name = "PATH", conflicts_with = "no_consumer_check")]
    pub consumers: Option<camino::Utf8PathBuf>,
}

impl PublishRedist {
    pub fn run(self) -> anyhow::Result<()> {
        let path = crate::tool::project_root().join("xtask").join("Cargo.toml");
        let doc = toml_file::read(&path)?;
        let defaults =
            doc.get("workspace").and_then(|w| w.get("metadata")).and_then(|m| m.get("publish-redist"));
        let default = |key: &str| defaults.and_then(|d| d.get(key));
        let missing = |what: &str| format!("[workspace.metadata.publish-redist] in {path} has no {what}");
        let or_default = |flag: &Option<String>, key: &str| {
            let value = default(key).and_then(Item::as_str).map(str::to_owned);
            flag.clone().or(value).context(missing(&format!("`{key}` string")))
        };
        let repo = source_location(&or_default(&self.repo, "repo")?)?;
        let rev = or_default(&self.rev, "rev")?;
        let sha_or_tag = !rev.is_empty() && !rev.starts_with('-') && !rev.contains(char::is_whitespace);
        ensure!(sha_or_tag, "`--rev {rev}` is not a commit SHA or a tag");
        let crates = match self.crates.is_empty() {
            false => Some(self.crates.clone()),
            true => default("crates")
                .and_then(Item::as_array)
                .and_then(|a| a.iter().map(|v| v.as_str().map(str::to_owned)).collect()),
        };
        let crates = crates.context(missing("`crates` list of strings"))?;
        let registry = feeds::select(&[or_default(&self.registry, "registry")?])?.remove(0);
        let consumers = (!self.no_consumer_check)
            .then(|| publish::manifest_dir("--consumers", self.consumers.as_deref()));
        let consumers = consumers.transpose()?;
        let settings = publish::Settings {
            task: "publish-redist",
            registry: &registry,
            common: &self.common,
            consumers: consumers.as_deref().map(|host| (host, self.allow_unchecked_consumers)),
        };
        publish::run(&settings, &|engine| self.prepare(engine, &repo, &rev, &crates))
    }

    fn prepare(&self, engine: &Engine, repo: &str, rev: &str, crates: &[String]) -> anyhow::Result<Prepared> {
        let (registry, t) = (engine.registry, Instant::now());
        let src = engine.work.join("src");
        eprintln!("publish-redist: fetching {repo} at {rev}");
        let fetched = engine.git.fetch(repo, rev, &src)?;
        let note = fetched.note.as_deref().map(|n| format!(" ({n})")).unwrap_or_default();
        let (commit, size) = (&fetched.commit[..fetched.commit.len().min(12)], human(fetched.bytes));
        let what = format!("{repo} at {rev}{note}: commit {commit}, {size} fetched");
        engine.stage("fetch", &what, t.elapsed());
        let t = Instant::now();
        let ws =
            Workspace::read(&src, registry).context(format!("reading the workspace of {repo} at {rev}"))?;
        let plan = workspace::plan(&ws, crates, &registry.name, self.common.version.as_deref(), None)
            .context(format!("{repo} at {rev}"))?;
        let missing = publish::not_checked_out(engine.git, &src, "", &plan.crates)?;
        let missing: Vec<String> =
            missing.iter().map(|(path, why, _)| checkout_fix(path, why, registry)).collect();
        ensure!(
            missing.is_empty(),
            "files of {repo} at {rev} in the crates to publish are not in publish-redist's checkout, so the \
             packages would lack them: {}",
            missing.join(", ")
        );
        publish::show_plan(engine, &plan, t.elapsed());
        Ok(Prepared {
            ws,
            plan,
            requirement: manifest::Requirement::Exact,
            source: format!("{repo} at `{commit}`"),
            commits: None,
        })
    }
}

/// A local path made absolute (it is meant from where the user is); a URL as it is.
fn source_location(repo: &str) -> anyhow::Result<String> {
    ensure!(!repo.is_empty() && !repo.starts_with('-'), "`--repo {repo}` is not a URL or a path");
    // `user:password@` would be printed in every progress line and the report, and be in
    // git's arguments; so is any `:` before an `@`, as a password may hold `/` or `@`.
    let userinfo = repo.split_once("://").and_then(|(_, rest)| rest.rsplit_once('@'));
    ensure!(
        userinfo.is_none_or(|(info, _)| !info.contains(':')),
        "`--repo` is a URL with a password (`user:password@`), which would show in the log and in \
             git's arguments: let a git credential helper supply it, or clone the repository first (as \
             actions/checkout does) and pass `--repo <path of the clone>`"
    );
    let path = crate::tool::invocation_dir()?.join(repo);
    if repo.contains("://") || !path.exists() {
        return Ok(repo.to_owned());
    }
    let absolute = std::fs::canonicalize(path).context(format!("cannot make {repo} absolute"))?;
    Ok(without_verbatim_prefix(&absolute.to_string_lossy()))
}

/// `path` without the `\\?\` that `canonicalize` puts before a Windows path: git takes
/// `\\?\C:\x` for the ssh host `\\?\C` (its `url_is_local_not_ssh`).
fn without_verbatim_prefix(path: &str) -> String {
    let Some(rest) = path.strip_prefix(r"\\?\") else { return path.to_owned() };
    match rest.strip_prefix(r"UNC\") {
        Some(share) => format!(r"\\{share}"),
        None if rest.get(1..3) == Some(r":\") => rest.to_owned(),
        None => path.to_owned(),
    }
}

/// `path` with what makes publish-redist's own checkout hold it: git's advice is for the user's.
fn checkout_fix(path: &str, why: &str, registry: &feeds::Registry) -> String {
    match why {
        crate::git::SUBMODULE => format!(
            "{path} (a submodule, which publish-redist does not fetch: publish the crate from a clone made \
             with `--recurse-submodules`, `cargo xtask publish --manifest-path <clone>/Cargo.toml --registry \
             {} -p <crate>`)",
            registry.name
        ),
        crate::git::SYMLINK_AS_FILE => format!(
            "{path} (a symlink git checks out as a file: `git config --global core.symlinks true` (Windows: \
             with Developer Mode on), then run again)"
        ),
        _ => format!("{path} ({why})"),
    }
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
    fn an_empty_repo_is_refused_not_taken_for_the_current_directory() {
        assert!(source_location("").is_err());
    }

    /// Not shown at all: a password may hold `/` or `@`, which end the part before the host.
    #[test]
    fn a_url_with_a_password_is_refused_unshown() {
        for url in ["https://me:p@ss/w0rd@host:8/a/b", "https://me:pa/ss@host/a", "http://u:s3cr3t@h/x"] {
            let msg = format!("{:#}", source_location(url).unwrap_err());
            assert!(msg.contains("is a URL with a password"), "{msg}");
            assert!(["w0rd", "pa/ss", "s3cr3t", "host"].iter().all(|part| !msg.contains(part)), "{msg}");
        }
        assert!(source_location("https://me@host/a/b").is_ok());
        assert!(source_location("ssh://git@github.com:22/rust-vmm/mshv").is_ok());
    }

    #[test]
    fn a_windows_path_reaches_git_without_its_verbatim_prefix() {
        assert_eq!(without_verbatim_prefix(r"\\?\C:\Users\me\mshv"), r"C:\Users\me\mshv");
        assert_eq!(without_verbatim_prefix(r"\\?\UNC\server\share\mshv"), r"\\server\share\mshv");
        // A volume without a drive letter has no other form.
        let volume = r"\\?\Volume{01234567-89ab-cdef-0123-456789abcdef}\mshv";
        assert_eq!(without_verbatim_prefix(volume), volume);
        assert_eq!(without_verbatim_prefix("/home/me/mshv"), "/home/me/mshv");
    }

    #[test]
    fn sizes_read_well() {
        assert_eq!(human(512), "512 bytes");
        assert_eq!(human(83_409), "81.5 KiB");
        assert_eq!(human(3 << 20), "3.0 MiB");
    }
}
