//! The GitHub CLI: whether it is logged in, and storing a repository's Actions secret
//! with the value on stdin (never in argv, where other users of the machine could
//! read it while gh runs). Also the repository the secret goes to by default: the
//! one `git remote get-url origin` names.

use std::time::Duration;

use anyhow::{Context, bail};
use camino::Utf8PathBuf;

use crate::run::{self, Program, RunError};
use crate::secret::Secret;
use crate::tool;

/// How long one gh or git call may take (`XTASK_TIMEOUT_SECS` overrides it).
const GH_TIMEOUT: Duration = Duration::from_secs(60);

pub struct Gh {
    path: Utf8PathBuf,
}

impl Gh {
    /// Finds `gh` on PATH (running nothing), or says how to install it.
    pub fn find() -> anyhow::Result<Gh> {
        Ok(Gh { path: tool::GH.find()? })
    }

    pub fn path(&self) -> &Utf8PathBuf {
        &self.path
    }

    /// Whether `gh auth status` is happy; on failure why not: gh's own words
    /// ([`RunError::stderr`], which name the host and what is wrong), or that it did
    /// not answer. gh masks the token it reports, and its output is not printed on
    /// success anyway.
    pub fn auth_status(&self) -> Result<(), RunError> {
        call(&self.path, &["auth", "status"]).output().map(drop)
    }

    /// Fails with what to run when gh is not logged in.
    pub fn ensure_logged_in(&self) -> anyhow::Result<()> {
        match self.auth_status() {
            Ok(()) => Ok(()),
            Err(err) => match err.stderr() {
                Some(why) => {
                    bail!(
                        "the GitHub CLI is not logged in: run `gh auth login` and try again\n{}",
                        why.trim_end()
                    )
                }
                None => Err(err.into()),
            },
        }
    }

    /// `gh secret set NAME --repo OWNER/NAME` with `value` on stdin: gh reads the body
    /// from stdin when `--body` is absent and stdin is not a terminal.
    pub fn secret_set(&self, name: &str, repo: &str, value: &Secret) -> anyhow::Result<()> {
        call(&self.path, &["secret", "set", name, "--repo", repo])
            .stdin_secret(value)
            .output()
            .with_context(|| {
                format!(
                    "storing the secret {name} of {repo} failed; check that you may edit the secrets of \
                     {repo} (admin or a fine-grained token with Secrets write)"
                )
            })?;
        Ok(())
    }
}

/// The repository of the git remote `origin`, as `OWNER/NAME`.
pub fn default_repo() -> anyhow::Result<String> {
    let out = call(&tool::GIT.find()?, &["remote", "get-url", "origin"]).output();
    let url = match out {
        Ok(out) => out.stdout.trim().to_owned(),
        Err(err) if err.stderr().is_some() => {
            bail!("this clone has no git remote `origin` to take the repository from: pass --repo OWNER/NAME")
        }
        Err(err) => return Err(err.into()),
    };
    repo_from_url(&url).with_context(|| {
        // A remote URL can carry credentials (`https://user:token@host/...`): show it
        // without them.
        format!(
            "the git remote `origin` ({}) is not a GitHub repository: pass --repo OWNER/NAME",
            without_userinfo(&url)
        )
    })
}

/// A gh or git call in the repository's root.
fn call(program: &Utf8PathBuf, args: &[&str]) -> Program {
    run::program(program, &crate::project_root(), args).timeout(GH_TIMEOUT)
}

/// `OWNER/NAME` from the URL forms git accepts for GitHub: `https://github.com/O/N(.git)`,
/// `git@github.com:O/N(.git)`, `ssh://git@github.com/O/N(.git)`, with or without
/// credentials or a port.
pub fn repo_from_url(url: &str) -> Option<String> {
    let rest = match url.split_once("://") {
        Some((_, rest)) => {
            let (authority, path) = rest.split_once('/')?;
            let host = authority.rsplit('@').next()?.split(':').next()?;
            (host.eq_ignore_ascii_case("github.com") || host.eq_ignore_ascii_case("www.github.com"))
                .then_some(path)?
        }
        // scp-like `user@github.com:O/N`.
        None => {
            let (authority, path) = url.split_once(':')?;
            let host = authority.rsplit('@').next()?;
            host.eq_ignore_ascii_case("github.com").then_some(path)?
        }
    };
    let rest = rest.trim_end_matches('/');
    let rest = rest.strip_suffix(".git").unwrap_or(rest);
    let repo = rest.to_owned();
    check_repo(&repo).ok()?;
    Some(repo)
}

/// Checks the `OWNER/NAME` form GitHub allows, so a typo fails here rather than in gh.
pub fn check_repo(repo: &str) -> anyhow::Result<()> {
    let ok_part = |s: &str| {
        !s.is_empty()
            && s.chars().all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c))
            && s != "."
            && s != ".."
    };
    match repo.split_once('/') {
        Some((owner, name)) if ok_part(owner) && ok_part(name) => Ok(()),
        _ => bail!(
            "`{repo}` is not a GitHub repository: write it as OWNER/NAME, e.g. hyperlight-dev/hyperlight"
        ),
    }
}

/// Checks a name GitHub accepts for an Actions secret: letters, digits and `_`, not
/// starting with a digit or `GITHUB_`.
pub fn check_secret_name(name: &str) -> anyhow::Result<()> {
    let valid = !name.is_empty()
        && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
        && !name.starts_with(|c: char| c.is_ascii_digit())
        && !name.to_ascii_uppercase().starts_with("GITHUB_");
    if !valid {
        bail!(
            "`{name}` is not a valid GitHub secret name: use letters, digits and `_`, not starting \
             with a digit or GITHUB_"
        );
    }
    Ok(())
}

fn without_userinfo(url: &str) -> String {
    match url.split_once("://") {
        Some((scheme, rest)) => match rest.split_once('/') {
            Some((authority, path)) => {
                let host = authority.rsplit('@').next().unwrap_or(authority);
                format!("{scheme}://{host}/{path}")
            }
            None => format!("{scheme}://{}", rest.rsplit('@').next().unwrap_or(rest)),
        },
        None => url.to_owned(),
    }
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
