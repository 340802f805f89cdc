//! git for publishing. Everything that matters for the result is on the command
//! line, so the user's git config changes nothing that ends up in the feed but its
//! filters (git LFS), which make the copy's files those of the user's checkout.

use anyhow::{Context, bail};
use camino::{Utf8Path, Utf8PathBuf};

use crate::run::{self, Program};

const NETWORK_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(600);

/// Fixed, so the same source gives the same commit (cargo records it in `.cargo_vcs_info.json`).
const IDENTITY: [(&str, &str); 6] = [
    ("GIT_AUTHOR_NAME", "hyperlight-xtask"),
    ("GIT_AUTHOR_EMAIL", "hyperlight-xtask@users.noreply.github.com"),
    ("GIT_AUTHOR_DATE", "2024-01-01T00:00:00Z"),
    ("GIT_COMMITTER_NAME", "hyperlight-xtask"),
    ("GIT_COMMITTER_EMAIL", "hyperlight-xtask@users.noreply.github.com"),
    ("GIT_COMMITTER_DATE", "2024-01-01T00:00:00Z"),
];

/// Set for a git hook or by hand, these would make a call in a copy move the user's HEAD.
const REPOSITORY_VARS: [&str; 6] = [
    "GIT_DIR",
    "GIT_WORK_TREE",
    "GIT_INDEX_FILE",
    "GIT_OBJECT_DIRECTORY",
    "GIT_ALTERNATE_OBJECT_DIRECTORIES",
    "GIT_COMMON_DIR",
];

pub struct Git(Utf8PathBuf);

pub struct Fetched {
    pub commit: String,
    /// The size of the object store: what came over the wire.
    pub bytes: u64,
    /// How an abbreviated SHA was resolved.
    pub note: Option<String>,
}

impl Git {
    pub fn find() -> anyhow::Result<Git> {
        Ok(Git(crate::tool::GIT.find()?))
    }

    /// git in `dir` (and no other repository) with a hooks dir that does not exist: no
    /// hook of the user's runs (a global `core.hooksPath` would reach every repository made here).
    fn git(&self, dir: &Utf8Path, args: &[&str]) -> Program {
        let no_hooks = format!("core.hooksPath={}", dir.join(".git/no-hooks"));
        let program = run::program(&self.0, dir, &[&["-c", no_hooks.as_str()], args].concat());
        let program = REPOSITORY_VARS.iter().fold(program, |program, var| program.env_remove(var));
        program.label(format!("git {}", args.join(" ")))
    }

    fn run(&self, dir: &Utf8Path, args: &[&str]) -> anyhow::Result<String> {
        Ok(self.git(dir, args).output()?.stdout)
    }

    /// A new repository at `dir`, without the user's templates (hooks).
    fn init(&self, dir: &Utf8Path) -> anyhow::Result<()> {
        std::fs::create_dir_all(dir).with_context(|| format!("cannot create {dir}"))?;
        self.run(dir, &["init", "-q", "--template="]).map(drop)
    }

    /// Fetches just `rev` of `repo` (a SHA, maybe abbreviated, a tag or a branch) into
    /// a new repository at `dir` and checks it out.
    pub fn fetch(&self, repo: &str, rev: &str, dir: &Utf8Path) -> anyhow::Result<Fetched> {
        self.init(dir)?;
        let fetch = |rev: &str| {
            let args = ["fetch", "-q", "--depth", "1", "--no-tags", "--end-of-options", repo, rev];
            self.git(dir, &[file_transport(repo), &args].concat()).timeout(NETWORK_TIMEOUT).output()
        };
        let mut note = None;
        if let Err(err) = fetch(rev) {
            let Some(stderr) = err.stderr() else { return Err(err.into()) };
            // Tell an unreachable repository from a rev it does not have.
            let probe = [file_transport(repo), &["ls-remote", "--end-of-options", repo, "HEAD"]].concat();
            if let Err(probe) = self.git(dir, &probe).timeout(NETWORK_TIMEOUT).output() {
                let Some(why) = probe.stderr().map(first_fatal_line) else { return Err(probe.into()) };
                bail!(
                    "cannot reach the repository {repo}: {why}\nCheck the URL or path and the network; without \
                     network access to it, clone it where you can and pass `--repo <path of the clone>`"
                );
            }
            if !looks_like_abbreviated_sha(rev) {
                bail!(
                    "{repo} has no tag, branch or commit `{rev}` ({}): pass `--rev` a commit SHA \
                     (full or abbreviated) or a tag of that repository",
                    first_fatal_line(stderr)
                );
            }
            let full = self.resolve_abbreviated(repo, rev, &dir.with_extension("resolve"))?;
            note = Some(format!("{rev} is {full}"));
            fetch(&full)?;
        }
        self.run(dir, &["-c", "core.autocrlf=false", "-c", "core.eol=lf", "checkout", "-q", "FETCH_HEAD"])?;
        let counts = self.run(dir, &["count-objects", "-v"])?;
        let kib = counts.lines().filter_map(|l| l.strip_prefix("size: ").or(l.strip_prefix("size-pack: ")));
        let bytes = kib.filter_map(|n| n.parse::<u64>().ok()).sum::<u64>() * 1024;
        Ok(Fetched { commit: self.head(dir)?, bytes, note })
    }

    /// The full SHA of abbreviated `rev`, from the commits of every branch and tag of `repo`.
    fn resolve_abbreviated(&self, repo: &str, rev: &str, dir: &Utf8Path) -> anyhow::Result<String> {
        self.init(dir)?;
        self.run(dir, &["remote", "add", "origin", repo])?;
        let fetch = [file_transport(repo), &["fetch", "-q", "--tags", "--filter=tree:0", "origin"]].concat();
        self.git(dir, &fetch).timeout(NETWORK_TIMEOUT).output()?;
        let spec = format!("{rev}^{{commit}}");
        let resolved =
            self.git(dir, &["rev-parse", "--verify", "--quiet", "--end-of-options", &spec]).output();
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

    /// The top level of the repository holding `dir`, and `dir` relative to it.
    pub fn toplevel(&self, dir: &Utf8Path) -> anyhow::Result<(Utf8PathBuf, String)> {
        let out = self.run(dir, &["rev-parse", "--show-toplevel", "--show-prefix"]).with_context(|| {
            format!("git cannot use {dir} (publishing works from a git checkout, as cargo does)")
        })?;
        let mut lines = out.lines();
        let top = lines.next().filter(|l| !l.is_empty()).context("git named no top level")?;
        Ok((Utf8PathBuf::from(top), lines.next().unwrap_or("").trim_end_matches('/').to_owned()))
    }

    pub fn head(&self, dir: &Utf8Path) -> anyhow::Result<String> {
        let out = self.run(dir, &["rev-parse", "--verify", "HEAD"]).with_context(|| {
            format!("the git repository at {dir} has no commit yet: commit the workspace first")
        })?;
        Ok(out.trim().to_owned())
    }

    /// What is uncommitted in the work tree at `top` and its checked-out submodules,
    /// recursively (submodules at another commit than the one recorded too).
    pub fn uncommitted(&self, top: &Utf8Path) -> anyhow::Result<Vec<String>> {
        let mut found = self.changed_paths(top)?;
        for (path, recorded) in self.submodules(top)? {
            let sub = top.join(&path);
            let head = self.head(&sub)?;
            if head != recorded {
                found.push(format!("{path} (checked out at {head}, the commit records {recorded})"));
            }
            found.extend(self.uncommitted(&sub)?.into_iter().map(|p| format!("{path}/{p}")));
        }
        Ok(found)
    }

    /// The paths `git status` shows in `dir` (not its submodules'), a rename as its two paths.
    fn changed_paths(&self, dir: &Utf8Path) -> anyhow::Result<Vec<String>> {
        let args = ["status", "--porcelain=v1", "-z", "--no-renames", "-uall", "--ignore-submodules=all"];
        let out = self.run(dir, &args)?;
        Ok(out.split_terminator('\0').filter_map(|entry| entry.get(3..)).map(String::from).collect())
    }

    /// The checked-out submodules at `dir`: (path, recorded commit).
    fn submodules(&self, dir: &Utf8Path) -> anyhow::Result<Vec<(String, String)>> {
        let out = self.run(dir, &["ls-tree", "-r", "-z", "--full-tree", "HEAD"])?;
        let gitlink = |entry: &str| {
            let (meta, path) = entry.split_once('\t')?;
            let commit = meta.strip_prefix("160000 commit ")?;
            dir.join(path).join(".git").exists().then(|| (path.to_owned(), commit.to_owned()))
        };
        Ok(out.split('\0').filter_map(gitlink).collect())
    }

    /// What the index at `dir` (and its checked-out submodules') has that the work tree
    /// lacks, each with what to run: submodules not checked out, files a sparse checkout
    /// leaves out, symlinks checked out as plain files.
    pub fn not_checked_out(&self, dir: &Utf8Path) -> anyhow::Result<Vec<(String, &'static str)>> {
        let mut found = Vec::new();
        for entry in self.run(dir, &["ls-files", "-t", "-s", "-z"])?.split_terminator('\0') {
            let Some((meta, path)) = entry.split_once('\t') else { continue };
            let (tag, mode, on_disk) = (&meta[..1], &meta[2..8], std::fs::symlink_metadata(dir.join(path)));
            if mode == "160000" && dir.join(path).join(".git").exists() {
                let inside = self.not_checked_out(&dir.join(path))?.into_iter();
                found.extend(inside.map(|(p, why)| (format!("{path}/{p}"), why)));
            } else if mode == "160000" {
                found.push((path.to_owned(), SUBMODULE));
            } else if tag == "S" && on_disk.is_err() {
                found.push((path.to_owned(), "left out by a sparse checkout: `git sparse-checkout disable`"));
            } else if mode == "120000" && on_disk.is_ok_and(|meta| !meta.is_symlink()) {
                found.push((path.to_owned(), SYMLINK_AS_FILE));
            }
        }
        Ok(found)
    }

    /// A copy of the repository at `top` and its submodules in `dest`, with `changes` the
    /// uncommitted ones committed; returns the commit `dest` has checked out.
    pub fn copy_repository(&self, top: &Utf8Path, dest: &Utf8Path, changes: bool) -> anyhow::Result<String> {
        let commit = self.head(top)?;
        // The commit's bytes, whatever the user's `core.autocrlf` or `core.eol` (CRLF on Windows).
        let eol = ["--config", "core.autocrlf=false", "--config", "core.eol=lf"];
        // The user's own checkout, whatever their `protocol.file.allow` says of local repositories.
        let clone = ["-c", "protocol.file.allow=always", "clone", "-q", "--shared", "--no-checkout"];
        // Filters of the repository's own config (`git lfs install --local`) smudge the copy's
        // files as the user's; none set makes git exit 1; a key alone (`required`) is true.
        let filters = self.run(top, &["config", "-z", "--get-regexp", r"^filter\."]).unwrap_or_default();
        let filters =
            filters.split_terminator('\0').map(|entry| entry.split_once('\n').unwrap_or((entry, "true")));
        let filters: Vec<String> =
            filters.flat_map(|(key, value)| ["--config".into(), format!("{key}={value}")]).collect();
        let filters: Vec<&str> = filters.iter().map(String::as_str).collect();
        let clone =
            [&clone[..], &eol, &filters, &["--template=", "--", top.as_str(), dest.as_str()]].concat();
        self.run(top, &clone)?;
        // The repository's own attributes (`.git/info/attributes`) choose filters as a `.gitattributes` does.
        let info =
            |dir| self.run(dir, &["rev-parse", "--path-format=absolute", "--git-path", "info/attributes"]);
        let (mine, copy) = (info(top)?, info(dest)?);
        let (mine, copy) = (Utf8Path::new(mine.trim()), Utf8Path::new(copy.trim()));
        if mine.is_file() {
            std::fs::create_dir_all(copy.parent().unwrap_or(dest))
                .with_context(|| format!("cannot create {copy}"))?;
            std::fs::copy(mine, copy).with_context(|| format!("cannot copy {mine} to {copy}"))?;
        }
        self.run(dest, &["checkout", "-q", "--detach", &commit])?;
        for (path, _) in self.submodules(top)? {
            self.copy_repository(&top.join(&path), &dest.join(&path), changes)?;
        }
        if !changes {
            return Ok(commit);
        }
        for path in self.changed_paths(top)? {
            sync_path(&top.join(&path), &dest.join(&path))?;
        }
        self.run(dest, &["add", "-A"])?;
        // Changed files, and the submodules whose copies moved.
        if !self.run(dest, &["status", "--porcelain", "-z", "--untracked-files=no"])?.is_empty() {
            self.commit_all(dest, "Uncommitted changes")?;
        }
        self.head(dest)
    }

    /// Commits every change to tracked files under the fixed identity, unsigned.
    pub fn commit_all(&self, dir: &Utf8Path, message: &str) -> anyhow::Result<()> {
        let args = ["-c", "commit.gpgsign=false", "commit", "-q", "-a", "--no-verify", "-m", message];
        IDENTITY.iter().fold(self.git(dir, &args), |git, (key, value)| git.env(key, value)).output()?;
        Ok(())
    }

    /// `git diff` of the work tree at `dir`, without the user's colours or diff tool.
    pub fn diff(&self, dir: &Utf8Path) -> anyhow::Result<String> {
        self.run(dir, &["diff", "--no-color", "--no-ext-diff"])
    }

    /// An empty cargo registry index at `dir`, for packaging with no feed at all.
    pub fn empty_index(&self, dir: &Utf8Path) -> anyhow::Result<()> {
        self.init(dir)?;
        let config = "{\"dl\": \"file:///nonexistent/{crate}/{version}.crate\"}\n";
        std::fs::write(dir.join("config.json"), config)
            .with_context(|| format!("cannot write {dir}/config.json"))?;
        self.run(dir, &["add", "config.json"])?;
        self.commit_all(dir, "index")
    }
}

/// Why [`Git::not_checked_out`] names a path, with the fix in the user's checkout.
pub const SUBMODULE: &str = "a submodule: `git submodule update --init --recursive`";
pub const SYMLINK_AS_FILE: &str = "a symlink checked out as a file: `git config core.symlinks true` (Windows: \
                                   with Developer Mode on), then check it out again";

/// Allows git's file transport for a repository the user named by path or `file://` URL:
/// a global `protocol.file.allow = never` guards against submodules' URLs, not that.
fn file_transport(repo: &str) -> &'static [&'static str] {
    let local = repo.starts_with("file://") || (!repo.contains("://") && Utf8Path::new(repo).is_absolute());
    if local { &["-c", "protocol.file.allow=always"] } else { &[] }
}

/// git's first `fatal:` or `error:` line (later ones tend to be generic), else its
/// last line, without the prefix; with what ssh said before it (git does not repeat it).
fn first_fatal_line(stderr: &str) -> String {
    let lines: Vec<&str> = stderr.lines().map(str::trim).filter(|l| !l.is_empty()).collect();
    let Some(at) = lines.iter().position(|l| l.starts_with("fatal:") || l.starts_with("error:")) else {
        return lines.last().unwrap_or(&"git failed without a message").to_string();
    };
    let line = lines[at].trim_start_matches("fatal: ").trim_start_matches("error: ");
    let noise = |l: &&&str| l.starts_with("hint:") || l.to_lowercase().starts_with("warning:");
    let ssh: Vec<&str> = lines[..at].iter().filter(|l| !noise(l)).copied().collect();
    if ssh.is_empty() { line.to_owned() } else { format!("{line} ({})", ssh.join(" ")) }
}

/// Makes `to` what `from` is: the same file, the same symlink (on Windows, where
/// symlinks need privileges, a copy of its target), or gone.
fn sync_path(from: &Utf8Path, to: &Utf8Path) -> anyhow::Result<()> {
    if std::fs::symlink_metadata(to).is_ok() {
        std::fs::remove_file(to).with_context(|| format!("cannot replace {to}"))?;
    }
    let Ok(meta) = std::fs::symlink_metadata(from) else { return Ok(()) };
    let parent = to.parent().unwrap_or(to);
    std::fs::create_dir_all(parent).with_context(|| format!("cannot create {parent}"))?;
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
    std::fs::copy(from, to).map(drop).with_context(|| format!("cannot copy {from} to {to}"))
}

/// 4 to 39 hex digits: what `git rev-parse` could expand, and a fetch cannot take.
fn looks_like_abbreviated_sha(rev: &str) -> bool {
    (4..40).contains(&rev.len()) && rev.chars().all(|c| c.is_ascii_hexdigit())
}

/// A `file://` URL of a local directory, as cargo takes it for an index and writes it
/// back into a packaged manifest: percent-encoded (a temp dir with a space: `%20`).
pub fn file_url(dir: &Utf8Path) -> String {
    let keep = |b: u8| b.is_ascii_alphanumeric() || b"/-._~:".contains(&b);
    let encode = |b: u8| if keep(b) { char::from(b).to_string() } else { format!("%{b:02X}") };
    let path: String = dir.as_str().replace('\\', "/").bytes().map(encode).collect();
    // A UNC path (`\\server\share`) names its host, which `C:/x` and `/x` leave empty.
    match path.strip_prefix("//") {
        Some(unc) if dir.as_str().starts_with(r"\\") => format!("file://{unc}"),
        _ if path.starts_with('/') => format!("file://{path}"),
        _ => format!("file:///{path}"),
    }
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
        // ssh's own reason comes before git's generic line.
        let stderr = "Warning: Permanently added 'h' (ED25519) to the list of known hosts.\nHost key verification failed.\nfatal: Could not read from remote repository.\n\nPlease make sure you have the correct access rights\nand the repository exists.\n";
        assert_eq!(
            first_fatal_line(stderr),
            "Could not read from remote repository. (Host key verification failed.)"
        );
    }

    #[test]
    fn status_names_both_paths_of_a_rename() {
        let (git, dir) =
            (Git::find().unwrap(), crate::workdir::WorkDir::create("unit-status", false).unwrap());
        let top = dir.path();
        git.init(top).unwrap();
        for file in ["src/lib.rs", "old.rs", "gone.rs"] {
            std::fs::create_dir_all(top.join(file).parent().unwrap()).unwrap();
            std::fs::write(top.join(file), file).unwrap();
        }
        git.run(top, &["add", "-A"]).unwrap();
        git.commit_all(top, "files").unwrap();
        git.run(top, &["mv", "old.rs", "new.rs"]).unwrap();
        std::fs::remove_file(top.join("gone.rs")).unwrap();
        std::fs::write(top.join("src/lib.rs"), "changed").unwrap();
        std::fs::write(top.join("notes.txt"), "new").unwrap();
        let mut paths = git.changed_paths(top).unwrap();
        paths.sort();
        assert_eq!(paths, ["gone.rs", "new.rs", "notes.txt", "old.rs", "src/lib.rs"]);
    }

    #[test]
    fn file_urls_work_on_every_platform() {
        assert_eq!(file_url(Utf8Path::new("/tmp/x")), "file:///tmp/x");
        assert_eq!(file_url(Utf8Path::new(r"C:\Users\x\idx")), "file:///C:/Users/x/idx");
        // A UNC path names its host, as the url crate writes it and cargo reads it back.
        assert_eq!(file_url(Utf8Path::new(r"\\server\share\idx")), "file://server/share/idx");
        assert_eq!(file_url(Utf8Path::new("/tmp/a b/é")), "file:///tmp/a%20b/%C3%A9");
    }
}
