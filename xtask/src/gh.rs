//! The GitHub CLI: its login, an Actions secret set with the value on stdin (never argv,
//! which other users can read), and the default repository, the git remote `origin`'s.

use std::time::Duration;

use anyhow::{Context, bail, ensure};
use camino::Utf8PathBuf;

use crate::run::{self, Program, RunError};
use crate::secret::Secret;
use crate::tool;

/// How long one gh or git call may take (`XTASK_TIMEOUT_SECS` overrides it).
const GH_TIMEOUT: Duration = Duration::from_secs(60);

pub struct Gh {
    pub path: Utf8PathBuf,
}

impl Gh {
    pub fn find() -> anyhow::Result<Gh> {
        Ok(Gh { path: tool::GH.find()? })
    }

    /// Whether `gh auth status` is happy with github.com; else gh's own words, or that it
    /// did not answer. Without `--hostname`, gh fails for a stale login on any other host.
    pub fn auth_status(&self) -> Result<(), RunError> {
        call(&self.path, &["auth", "status", "--hostname", "github.com"]).output().map(drop)
    }

    /// What gh can tell without changing anything, asked before a PAT exists: its github.com
    /// login, then whether it may read the secrets of `repo` (`gh secret list`).
    pub fn check_access(&self, repo: &str) -> anyhow::Result<()> {
        if let Err(err) = self.auth_status() {
            let Some(why) = err.stderr() else { return Err(err.into()) };
            bail!("the GitHub CLI is not logged in: {} and try again\n{}", login_fix(), why.trim_end())
        }
        match call(&self.path, &["secret", "list", "--repo", &format!("github.com/{repo}")]).output() {
            Err(err) if err.stderr().is_some() => Err(anyhow::Error::from(err).context(format!(
                "the GitHub CLI cannot read the secrets of {repo}: check the repository's name and that you may \
                 edit its secrets (admin or a fine-grained token with Secrets write)"
            ))),
            out => Ok(out.map(drop)?),
        }
    }

    /// `gh secret set NAME --repo OWNER/NAME` after `check_access`, the value on stdin (gh
    /// reads it there when `--body` is absent and stdin is not a terminal).
    pub fn secret_set(&self, name: &str, repo: &str, value: &Secret) -> anyhow::Result<()> {
        // The host named: gh puts a bare OWNER/NAME on GH_HOST's host, or a sole login's.
        let target = format!("github.com/{repo}");
        let out = call(&self.path, &["secret", "set", name, "--repo", &target]).stdin_secret(value).output();
        let Err(err) = out else { return Ok(()) };
        let why = match err.stderr() {
            // Stopped (Ctrl-C, the time limit): GitHub may have taken it all the same.
            None => format!(
                "`gh secret set` was stopped before it answered, so {name} of {repo} may hold the new PAT: \
                 run rotate-pat again, which stores another"
            ),
            Some(_) => format!(
                "storing the secret {name} of {repo} failed; check that you may edit the secrets of {repo} \
                 (admin or a fine-grained token with Secrets write)"
            ),
        };
        Err(anyhow::Error::from(err).context(why))
    }
}

/// The fix for gh without a github.com login: a GH_TOKEN or GITHUB_TOKEN wins, and blocks `gh auth login`.
pub fn login_fix() -> String {
    let set = |var: &&str| std::env::var_os(var).is_some_and(|token| !token.is_empty());
    match ["GH_TOKEN", "GITHUB_TOKEN"].into_iter().find(set) {
        Some(var) => format!("set a valid token in {var}, or unset it and run `gh auth login`"),
        None => "run `gh auth login`".to_owned(),
    }
}

pub fn default_repo() -> anyhow::Result<String> {
    let url = match call(&tool::GIT.find()?, &["remote", "get-url", "origin"]).output() {
        Ok(out) => out.stdout.trim().to_owned(),
        Err(err) if err.stderr().is_some() => {
            bail!("this clone has no git remote `origin` to take the repository from: pass --repo OWNER/NAME")
        }
        Err(err) => return Err(err.into()),
    };
    // Shown without the credentials a URL can carry (`https://user:token@host/...`).
    let shown = without_userinfo(&url);
    repo_from_url(&url).context(format!(
        "the git remote `origin` ({shown}) is not a GitHub repository: pass --repo OWNER/NAME"
    ))
}

fn call(program: &Utf8PathBuf, args: &[&str]) -> Program {
    run::program(program, &crate::tool::project_root(), args).timeout(GH_TIMEOUT)
}

/// `OWNER/NAME` from an https, scp-like or ssh URL of github.com, with or without `.git`, userinfo, port.
pub fn repo_from_url(url: &str) -> Option<String> {
    let (authority, path) = match url.split_once("://") {
        Some((_, rest)) => rest.split_once('/')?,
        None => url.split_once(':')?,
    };
    let host = authority.rsplit('@').next()?.split(':').next()?;
    if !host.eq_ignore_ascii_case("github.com") && !host.eq_ignore_ascii_case("www.github.com") {
        return None;
    }
    let path = path.trim_end_matches('/');
    let repo = path.strip_suffix(".git").unwrap_or(path);
    check_repo(repo).ok()
}

/// `repo` if it has the `OWNER/NAME` form GitHub allows, so a typo fails here rather than in gh.
pub fn check_repo(repo: &str) -> anyhow::Result<String> {
    let ok = |s: &str| {
        !["", ".", ".."].contains(&s) && s.chars().all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c))
    };
    ensure!(
        repo.split_once('/').is_some_and(|(owner, name)| ok(owner) && ok(name)),
        "`{repo}` is not a GitHub repository: write it as OWNER/NAME, e.g. hyperlight-dev/hyperlight"
    );
    Ok(repo.to_owned())
}

/// `name` if GitHub takes it for an Actions secret: letters, digits, `_`; no leading digit or `GITHUB_`.
pub fn check_secret_name(name: &str) -> anyhow::Result<String> {
    let ok = name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
        && !name.starts_with(|c: char| c.is_ascii_digit())
        && !name.to_ascii_uppercase().starts_with("GITHUB_");
    ensure!(
        ok && !name.is_empty(),
        "`{name}` is not a valid GitHub secret name: use letters, digits and `_`, not starting with a digit or \
         GITHUB_"
    );
    Ok(name.to_owned())
}

fn without_userinfo(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else { return url.to_owned() };
    let authority = rest.find('/').map_or(rest, |end| &rest[..end]);
    let start = authority.rfind('@').map_or(0, |at| at + 1);
    format!("{scheme}://{}", &rest[start..])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn repo_from_the_remote_url_forms() {
        for url in [
            "https://github.com/hyperlight-dev/hyperlight.git",
            "https://github.com/hyperlight-dev/hyperlight",
            "https://github.com/hyperlight-dev/hyperlight/",
            "https://x-access-token:ghs_abc@github.com/hyperlight-dev/hyperlight.git",
            "git@github.com:hyperlight-dev/hyperlight.git",
            "ssh://git@github.com/hyperlight-dev/hyperlight.git",
            "ssh://git@github.com:22/hyperlight-dev/hyperlight",
        ] {
            assert_eq!(repo_from_url(url).as_deref(), Some("hyperlight-dev/hyperlight"), "{url}");
        }
        for url in
            ["https://gitlab.com/a/b.git", "git@example.com:a/b", "/srv/git/a/b", "https://github.com/a"]
        {
            assert_eq!(repo_from_url(url), None, "{url}");
        }
    }

    #[test]
    fn credentials_in_a_remote_url_are_not_shown() {
        assert_eq!(without_userinfo("https://u:ghs_secret@gitlab.com/a/b"), "https://gitlab.com/a/b");
        assert_eq!(without_userinfo("git@example.com:a/b"), "git@example.com:a/b");
    }

    #[test]
    fn repo_and_secret_names_are_checked() {
        assert!(check_repo("hyperlight-dev/hyperlight").is_ok());
        for bad in ["hyperlight", "a/b/c", "/b", "a/", "a b/c", "a/.."] {
            assert!(check_repo(bad).is_err(), "{bad}");
        }
        assert!(check_secret_name("ADO_CARGO_RO_PAT").is_ok());
        for bad in ["", "1ABC", "GITHUB_TOKEN", "A-B", "A B"] {
            assert!(check_secret_name(bad).is_err(), "{bad}");
        }
    }
}
