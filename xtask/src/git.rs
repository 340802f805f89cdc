//! The git side of publishing: fetch one rev of a source into a work dir, commit
//! the rewrite there, show its diff, and make the empty index the package stage
//! packages against.
//!
//! git is run by full path ([`tool::GIT`]) with everything that matters for the
//! result given on the command line, so the user's git config changes nothing that
//! ends up in the feed. Every call goes through the runner ([`crate::run`](mod@crate::run)): a
//! failure names the git command and carries git's stderr.

use std::time::Duration;

use anyhow::{Context, bail};
use camino::{Utf8Path, Utf8PathBuf};
use xshell::{Shell, cmd};

use crate::run::{Output, Program, RunError};
use crate::tool;

/// How long a git command that talks to the source repository may take
/// (`XTASK_TIMEOUT_SECS` overrides it): a fetch over a slow network is slow.
const NETWORK_TIMEOUT: Duration = Duration::from_secs(600);

/// The identity and date of the rewrite commit: fixed, so the same source and flags
/// give the same commit (cargo records its SHA in `.cargo_vcs_info.json`).
const IDENTITY: [(&str, &str); 6] = [
    ("GIT_AUTHOR_NAME", "hyperlight-xtask"),
    ("GIT_AUTHOR_EMAIL", "hyperlight-xtask@users.noreply.github.com"),
    ("GIT_AUTHOR_DATE", "2024-01-01T00:00:00Z"),
    ("GIT_COMMITTER_NAME", "hyperlight-xtask"),
    ("GIT_COMMITTER_EMAIL", "hyperlight-xtask@users.noreply.github.com"),
    ("GIT_COMMITTER_DATE", "2024-01-01T00:00:00Z"),
];

#[derive(Clone)]
pub struct Git {
    exe: Utf8PathBuf,
}

/// What a fetch brought: the commit checked out, and how much came over the wire.
pub struct Fetched {
    pub commit: String,
    /// Size of the object store after the fetch: the packs git received.
    pub bytes: u64,
    /// How the rev was found, when it took more than one fetch (an abbreviated SHA).
    pub note: Option<String>,
}

impl Git {
    pub fn find() -> anyhow::Result<Git> {
        Ok(Git { exe: tool::GIT.find()? })
    }

    /// A new repository at `dir` (no templates: no hooks or other files from the
    /// user's template dir).
    fn init(&self, sh: &Shell, dir: &Utf8Path, bare: bool) -> anyhow::Result<()> {
        let git = &self.exe;
        let bare = bare.then_some("--bare");
        Program::cmd(cmd!(sh, "{git} init -q --template= {bare...} {dir}"))
            .label(format!("git init {dir}"))
            .output()?;
        Ok(())
    }

    /// Fetches just `rev` of `repo` (depth 1) into a new repository at `dir` and checks
    /// it out. `rev` is a full SHA, a tag or a branch; an abbreviated SHA is resolved
    /// first from the commit history of the repo's branches and tags (commits only,
    /// no trees or files, where the server allows that filter).
    pub fn fetch(&self, sh: &Shell, repo: &str, rev: &str, dir: &Utf8Path) -> anyhow::Result<Fetched> {
        let git = &self.exe;
        self.init(sh, dir, false)?;
        let mut note = None;
        if let Err(err) = self.fetch_depth_1(sh, dir, repo, rev) {
            let Some(stderr) = err.stderr() else { return Err(err.into()) };
            let why = first_fatal_line(stderr);
            // Tell an unreachable repository from a rev it does not have.
            let probe = Program::cmd(cmd!(sh, "{git} -C {dir} ls-remote --end-of-options {repo} HEAD"))
                .label(format!("git ls-remote {repo} HEAD"))
                .timeout(NETWORK_TIMEOUT)
                .output();
            if let Err(probe) = probe {
                let Some(stderr) = probe.stderr() else { return Err(probe.into()) };
                bail!(
                    "cannot reach the repository {repo}: {}\nCheck the URL or path and the network; without \
                     network access to it, clone it where you can and pass `--repo <path of the clone>`",
                    first_fatal_line(stderr)
                );
            }
            if !looks_like_abbreviated_sha(rev) {
                bail!(
                    "{repo} has no tag, branch or commit `{rev}` ({why}): pass `--rev` a commit SHA \
                     (full or abbreviated) or a tag of that repository"
                );
            }
            let full = self.resolve_abbreviated(sh, repo, rev, &dir.with_extension("resolve.git"))?;
            note = Some(format!("{rev} is {full}"));
            self.fetch_depth_1(sh, dir, repo, &full)?;
        }
        Program::cmd(cmd!(sh, "{git} -C {dir} -c advice.detachedHead=false -c core.autocrlf=false checkout -q --detach FETCH_HEAD"))
            .label("git checkout FETCH_HEAD")
            .output()?;
        // A detached HEAD holds the commit itself, even when the rev was an annotated tag.
        let head = std::fs::read_to_string(dir.join(".git/HEAD")).context("cannot read .git/HEAD")?;
        let commit = head.trim().to_owned();
        if commit.len() < 40 || !commit.chars().all(|c| c.is_ascii_hexdigit()) {
            bail!("git checked out `{commit}` instead of a commit");
        }
        Ok(Fetched { commit, bytes: dir_size(&dir.join(".git/objects")), note })
    }

    fn fetch_depth_1(&self, sh: &Shell, dir: &Utf8Path, repo: &str, rev: &str) -> Result<Output, RunError> {
        let git = &self.exe;
        Program::cmd(cmd!(sh, "{git} -C {dir} fetch -q --depth 1 --no-tags --end-of-options {repo} {rev}"))
            .label(format!("git fetch {repo} {rev}"))
            .timeout(NETWORK_TIMEOUT)
            .output()
    }

    /// The full SHA of abbreviated `rev`, from a bare repository holding the commits
    /// (only) of every branch and tag of `repo`.
    fn resolve_abbreviated(
        &self,
        sh: &Shell,
        repo: &str,
        rev: &str,
        dir: &Utf8Path,
    ) -> anyhow::Result<String> {
        let git = &self.exe;
        self.init(sh, dir, true)?;
        Program::cmd(cmd!(sh, "{git} -C {dir} remote add origin {repo}")).label("git remote add").output()?;
        // A server without filter support sends everything, with a warning: still right.
        Program::cmd(cmd!(
            sh,
            "{git} -C {dir} fetch -q --no-tags --filter=tree:0 origin +refs/heads/*:refs/heads/* +refs/tags/*:refs/tags/*"
        ))
        .label(format!("git fetch (commits of every branch and tag of {repo})"))
        .timeout(NETWORK_TIMEOUT)
        .output()?;
        let spec = format!("{rev}^{{commit}}");
        let resolved =
            Program::cmd(cmd!(sh, "{git} -C {dir} rev-parse --verify --quiet --end-of-options {spec}"))
                .label(format!("git rev-parse {spec}"))
                .output();
        let _ = std::fs::remove_dir_all(dir);
        match resolved {
            Ok(out) => Ok(out.stdout.trim().to_owned()),
            Err(err) if err.stderr().is_some() => bail!(
                "{repo} has no commit `{rev}` on any branch or tag (or more than one commit starts with it): \
                 pass `--rev` the full SHA or a tag"
            ),
            Err(err) => Err(err.into()),
        }
    }

    /// A new git work tree at `dest` holding the files of the work tree at `repo`
    /// that cargo would package from it (tracked, and untracked but not ignored),
    /// as they are now (uncommitted changes included), committed once under the
    /// fixed identity. Returns how many files it copied. The user's tree is never
    /// written to.
    pub fn snapshot(&self, sh: &Shell, repo: &Utf8Path, dest: &Utf8Path) -> anyhow::Result<usize> {
        let git = &self.exe;
        let listed =
            Program::cmd(cmd!(sh, "{git} -C {repo} ls-files -z --cached --others --exclude-standard"))
                .label(format!("git ls-files (in {repo})"))
                .output()
                .with_context(|| {
                    format!("cannot list the files of {repo} with git: publishing works from a git checkout")
                })?;
        self.init(sh, dest, false)?;
        let mut copied = 0;
        for relative in listed.stdout.split('\0').filter(|p| !p.is_empty()) {
            let from = repo.join(relative);
            // Listed but deleted in the work tree: not part of what is packaged.
            if !from.is_file() {
                continue;
            }
            let to = dest.join(relative);
            if let Some(parent) = to.parent() {
                std::fs::create_dir_all(parent).with_context(|| format!("cannot create {parent}"))?;
            }
            std::fs::copy(&from, &to).with_context(|| format!("cannot copy {from} to {to}"))?;
            copied += 1;
        }
        Program::cmd(cmd!(sh, "{git} -C {dest} add -A"))
            .label("git add (the copy of the workspace)")
            .output()?;
        self.commit_all(sh, dest, "The workspace as it was (cargo xtask publish)")?;
        Ok(copied)
    }

    /// The git repository holding `dir`: its top level, and `dir` relative to it
    /// (`/`-separated, empty at the top).
    pub fn toplevel(&self, sh: &Shell, dir: &Utf8Path) -> anyhow::Result<(Utf8PathBuf, String)> {
        let git = &self.exe;
        let out = Program::cmd(cmd!(sh, "{git} -C {dir} rev-parse --show-toplevel --show-prefix"))
            .label(format!("git rev-parse --show-toplevel (in {dir})"))
            .output()
            .with_context(|| {
                format!(
                    "{dir} is not in a git repository: publishing works from a git checkout, as cargo does"
                )
            })?;
        let mut lines = out.stdout.lines();
        let top = lines.next().filter(|l| !l.is_empty()).context("git named no top level")?;
        let prefix = lines.next().unwrap_or("").trim_end_matches('/');
        Ok((Utf8PathBuf::from(top), prefix.to_owned()))
    }

    /// The commit checked out in the work tree at `dir`.
    pub fn head(&self, sh: &Shell, dir: &Utf8Path) -> anyhow::Result<String> {
        let git = &self.exe;
        let out = Program::cmd(cmd!(sh, "{git} -C {dir} rev-parse --verify HEAD"))
            .label(format!("git rev-parse HEAD (in {dir})"))
            .output()
            .with_context(|| {
                format!("the git repository at {dir} has no commit yet: commit the workspace first")
            })?;
        Ok(out.stdout.trim().to_owned())
    }

    /// What is uncommitted in the work tree at `top` and in its checked-out
    /// submodules, recursively: changed, deleted and untracked (not ignored) files,
    /// and submodules checked out at another commit than the one recorded. Paths
    /// relative to `top`.
    pub fn uncommitted(&self, sh: &Shell, top: &Utf8Path) -> anyhow::Result<Vec<String>> {
        let mut found = Vec::new();
        for path in self.changed_paths(sh, top)? {
            found.push(path);
        }
        for (path, recorded) in self.submodules(sh, top)? {
            let sub = top.join(&path);
            if !sub.join(".git").exists() {
                continue;
            }
            let head = self.head(sh, &sub)?;
            if head != recorded {
                found.push(format!("{path} (checked out at {head}, the commit records {recorded})"));
            }
            found.extend(self.uncommitted(sh, &sub)?.into_iter().map(|p| format!("{path}/{p}")));
        }
        Ok(found)
    }

    /// The paths `git status` shows in the repository at `dir` (its own files, not
    /// its submodules'), a rename's both paths.
    fn changed_paths(&self, sh: &Shell, dir: &Utf8Path) -> anyhow::Result<Vec<String>> {
        let git = &self.exe;
        let out = Program::cmd(cmd!(
            sh,
            "{git} -C {dir} status --porcelain=v1 -z --untracked-files=all --ignore-submodules=all"
        ))
        .label(format!("git status (in {dir})"))
        .output()?;
        Ok(status_paths(&out.stdout))
    }

    /// The submodules of the commit checked out at `dir`: (path, recorded commit).
    fn submodules(&self, sh: &Shell, dir: &Utf8Path) -> anyhow::Result<Vec<(String, String)>> {
        let git = &self.exe;
        let out = Program::cmd(cmd!(sh, "{git} -C {dir} ls-tree -r -z --full-tree HEAD"))
            .label(format!("git ls-tree HEAD (in {dir})"))
            .output()?;
        Ok(out
            .stdout
            .split('\0')
            .filter_map(|entry| {
                let (meta, path) = entry.split_once('\t')?;
                let mut meta = meta.split(' ');
                (meta.next()? == "160000").then_some(())?;
                Some((path.to_owned(), meta.nth(1)?.to_owned()))
            })
            .collect())
    }

    /// A copy of the git repository whose work tree is at `top`, in `dest`, at the
    /// commit checked out there, and each checked-out submodule at its commit,
    /// recursively: `git clone --shared` (the objects are borrowed, not copied, and
    /// the commit is the same). With `changes`, the uncommitted changes of the work
    /// trees are copied over and committed under the fixed identity. Returns the
    /// commit `dest` has checked out. Nothing is written to `top`.
    pub fn copy_repository(
        &self,
        sh: &Shell,
        top: &Utf8Path,
        dest: &Utf8Path,
        changes: bool,
    ) -> anyhow::Result<String> {
        let git = &self.exe;
        let commit = self.head(sh, top)?;
        Program::cmd(cmd!(sh, "{git} clone -q --shared --no-checkout --template= -- {top} {dest}"))
            .label(format!("git clone --shared {top}"))
            .output()?;
        // A hooks dir that does not exist: no post-checkout hook of the user's runs here.
        let no_hooks = format!("core.hooksPath={}", dest.join(".git/no-hooks"));
        Program::cmd(cmd!(
            sh,
            "{git} -C {dest} -c {no_hooks} -c advice.detachedHead=false checkout -q --detach {commit}"
        ))
        .label(format!("git checkout {commit} (the copy of {top})"))
        .output()?;
        for (path, _) in self.submodules(sh, dest)? {
            if top.join(&path).join(".git").exists() {
                self.copy_repository(sh, &top.join(&path), &dest.join(&path), changes)?;
            }
        }
        if !changes {
            return Ok(commit);
        }
        for path in self.changed_paths(sh, top)? {
            sync_path(&top.join(&path), &dest.join(&path))?;
        }
        Program::cmd(cmd!(sh, "{git} -C {dest} add -A")).label("git add (uncommitted changes)").output()?;
        // Staged now: changed files, and the submodules whose copies moved.
        let staged = Program::cmd(cmd!(sh, "{git} -C {dest} status --porcelain -z --untracked-files=no"))
            .label("git status (the copy)")
            .output()?;
        if !staged.stdout.is_empty() {
            self.commit(sh, dest, None, "Uncommitted changes (--allow-dirty)", "git commit (changes)")?;
        }
        self.head(sh, dest)
    }

    /// Commits every change to tracked files under the fixed identity.
    pub fn commit_all(&self, sh: &Shell, dir: &Utf8Path, message: &str) -> anyhow::Result<()> {
        self.commit(sh, dir, Some("-a"), message, "git commit (the rewrite)")
    }

    /// `git commit` under the fixed identity, with no hook or signing of the user's.
    fn commit(
        &self,
        sh: &Shell,
        dir: &Utf8Path,
        all: Option<&str>,
        message: &str,
        label: &str,
    ) -> anyhow::Result<()> {
        let git = &self.exe;
        // A hooks dir that does not exist: no hook of the user's runs here.
        let no_hooks = format!("core.hooksPath={}", dir.join(".git/no-hooks"));
        Program::cmd(cmd!(
            sh,
            "{git} -C {dir} -c commit.gpgsign=false -c {no_hooks} -c user.name=hyperlight-xtask -c user.email=hyperlight-xtask@users.noreply.github.com commit -q {all...} --no-verify -m {message}"
        )
        .envs(IDENTITY))
        .label(label)
        .output()?;
        Ok(())
    }

    /// The uncommitted changes of the work tree at `dir`, as `git diff` shows them
    /// (no colour, no pager, no external diff tool of the user's).
    pub fn diff(&self, sh: &Shell, dir: &Utf8Path) -> anyhow::Result<String> {
        let git = &self.exe;
        let out = Program::cmd(cmd!(sh, "{git} -C {dir} -c core.pager=cat diff --no-color --no-ext-diff"))
            .label(format!("git diff (in {dir})"))
            .output()?;
        Ok(out.stdout)
    }

    /// An empty cargo registry index at `dir`: a git repository holding only a
    /// `config.json`. Cargo packages and verifies against it with no feed at all.
    pub fn empty_index(&self, sh: &Shell, dir: &Utf8Path) -> anyhow::Result<()> {
        let git = &self.exe;
        self.init(sh, dir, false)?;
        // Nothing is ever downloaded from it: the crates come from cargo's overlay
        // of the packages it just built.
        std::fs::write(
            dir.join("config.json"),
            "{\"dl\": \"file:///nonexistent/{crate}/{version}.crate\"}\n",
        )
        .with_context(|| format!("cannot write {dir}/config.json"))?;
        Program::cmd(cmd!(sh, "{git} -C {dir} add config.json")).label("git add (empty index)").output()?;
        self.commit(sh, dir, None, "index", "git commit (empty index)")
    }
}

/// What git said went wrong: its first `fatal:` or `error:` line (later ones tend to
/// be generic), else its last line, without the prefix.
fn first_fatal_line(stderr: &str) -> String {
    stderr
        .lines()
        .map(str::trim)
        .find(|l| l.starts_with("fatal:") || l.starts_with("error:"))
        .or_else(|| stderr.lines().map(str::trim).rfind(|l| !l.is_empty()))
        .unwrap_or("git failed without a message")
        .trim_start_matches("fatal: ")
        .trim_start_matches("error: ")
        .to_owned()
}

/// The paths of `git status --porcelain=v1 -z`: each entry `XY path`, a rename or
/// copy followed by its source path.
fn status_paths(out: &str) -> Vec<String> {
    let mut paths = Vec::new();
    let mut entries = out.split('\0').filter(|e| !e.is_empty());
    while let Some(entry) = entries.next() {
        let Some(path) = entry.get(3..) else { continue };
        paths.push(path.to_owned());
        if matches!(entry.as_bytes()[0], b'R' | b'C')
            && let Some(source) = entries.next()
        {
            paths.push(source.to_owned());
        }
    }
    paths
}

/// Makes `to` what `from` is: the same file, the same symlink (a copy of its
/// target's contents where symlinks need privileges, on Windows), or gone.
fn sync_path(from: &Utf8Path, to: &Utf8Path) -> anyhow::Result<()> {
    if std::fs::symlink_metadata(to).is_ok() {
        std::fs::remove_file(to).with_context(|| format!("cannot replace {to}"))?;
    }
    let Ok(meta) = std::fs::symlink_metadata(from) else { return Ok(()) };
    if let Some(parent) = to.parent() {
        std::fs::create_dir_all(parent).with_context(|| format!("cannot create {parent}"))?;
    }
    #[cfg(unix)]
    if meta.is_symlink() {
        let target = std::fs::read_link(from).with_context(|| format!("cannot read the link {from}"))?;
        return std::os::unix::fs::symlink(target, to).with_context(|| format!("cannot create {to}"));
    }
    if meta.is_dir() {
        bail!(
            "{from} is an untracked directory git cannot list (a repository of its own?): commit, ignore or remove it"
        );
    }
    std::fs::copy(from, to).with_context(|| format!("cannot copy {from} to {to}"))?;
    Ok(())
}

/// 4 to 39 hex digits: what `git rev-parse` could expand, and a fetch cannot take.
fn looks_like_abbreviated_sha(rev: &str) -> bool {
    (4..40).contains(&rev.len()) && rev.chars().all(|c| c.is_ascii_hexdigit())
}

/// Total size of the files under `dir`.
fn dir_size(dir: &Utf8Path) -> u64 {
    let mut total = 0;
    let mut stack = vec![dir.as_std_path().to_owned()];
    while let Some(dir) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&dir) else { continue };
        for entry in entries.flatten() {
            match entry.metadata() {
                Ok(meta) if meta.is_dir() => stack.push(entry.path()),
                Ok(meta) => total += meta.len(),
                Err(_) => {}
            }
        }
    }
    total
}

/// A `file://` URL of a local directory, as cargo takes it for an index.
pub fn file_url(dir: &Utf8Path) -> String {
    let path = dir.as_str().replace('\\', "/");
    if path.starts_with('/') { format!("file://{path}") } else { format!("file:///{path}") }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn abbreviated_shas_are_told_from_names() {
        assert!(looks_like_abbreviated_sha("52edcf4"));
        assert!(!looks_like_abbreviated_sha("52edcf423c5c641c5669c0abe345a7e094619cea"));
        assert!(!looks_like_abbreviated_sha("v0.1.1"));
        assert!(!looks_like_abbreviated_sha("abc"));
    }

    #[test]
    fn git_errors_come_down_to_their_fatal_line() {
        let stderr = "hint: x\nfatal: couldn't find remote ref nope\n";
        assert_eq!(first_fatal_line(stderr), "couldn't find remote ref nope");
        let stderr = "fatal: '/x' does not appear to be a git repository\nfatal: Could not read from remote repository.\n\nPlease make sure you have the correct access rights\nand the repository exists.\n";
        assert_eq!(first_fatal_line(stderr), "'/x' does not appear to be a git repository");
    }

    #[test]
    fn status_names_both_paths_of_a_rename() {
        let out = " M src/lib.rs\0R  new.rs\0old.rs\0?? notes.txt\0 D gone.rs\0";
        assert_eq!(status_paths(out), ["src/lib.rs", "new.rs", "old.rs", "notes.txt", "gone.rs"]);
    }

    #[test]
    fn file_urls_work_on_every_platform() {
        assert_eq!(file_url(Utf8Path::new("/tmp/x")), "file:///tmp/x");
        assert_eq!(file_url(Utf8Path::new(r"C:\Users\x\idx")), "file:///C:/Users/x/idx");
    }
}
