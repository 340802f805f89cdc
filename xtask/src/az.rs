//! The Azure CLI: `az login`, Entra tokens for Azure DevOps, `az rest`. Every call but
//! `az login` has a time limit: an az waiting on a network must not hang the task.

use std::time::Duration;

use anyhow::{Context, Result, bail, ensure};
use camino::Utf8PathBuf;

use crate::run::{self, Program, RunError};
use crate::secret::{AuthHeader, Secret};
use crate::tool;

/// az answers in seconds, slower when it refreshes a token (`XTASK_TIMEOUT_SECS` overrides).
pub const AZ_TIMEOUT: Duration = Duration::from_secs(60);

/// The Entra resource id of Azure DevOps (and so of Azure Artifacts feeds).
pub const AZURE_DEVOPS_RESOURCE: &str = "499b84ac-1321-427f-aa17-267ca6975798";

pub struct Az {
    pub path: Utf8PathBuf,
}

impl Az {
    pub fn find() -> Result<Az> {
        Ok(Az { path: tool::AZ.find()? })
    }

    fn call(&self, label: String, args: &[&str]) -> Program {
        let program =
            run::program(&self.path, &crate::tool::project_root(), args).timeout(AZ_TIMEOUT).label(label);
        // A user's `logging.enable_log_file` would put `az rest`'s answer, a new PAT, in az's log.
        program.env("AZURE_LOGGING_ENABLE_LOG_FILE", "false")
    }

    /// `az login` on the user's terminal: it may open a browser or ask for a subscription.
    pub fn login_interactive(&self) -> Result<()> {
        Ok(run::program(&self.path, &crate::tool::project_root(), &["login"]).status()?)
    }

    /// One access token for every feed of the organisation, as the `Bearer` header cargo
    /// sends, and when it expires as az says it (local time).
    pub fn access_token(&self) -> Result<(AuthHeader, String)> {
        let args = ["account", "get-access-token", "--resource", AZURE_DEVOPS_RESOURCE];
        let args = [&args[..], &["--query", "[accessToken, expiresOn]", "--output", "tsv"]].concat();
        let out = self.call("az account get-access-token".into(), &args).stdout_is_secret().output();
        let out = out.map_err(|err| not_logged_in_or(err, "run `az login` (or pass --az-login)"))?;
        let fields = tsv_fields(&out.stdout);
        let Some(token) = fields.first().copied().flatten() else {
            bail!(
                "`az account get-access-token` answered without a token: run it yourself to see why\n{}",
                out.stderr.trim_end()
            );
        };
        let expires_on = fields.get(1).copied().flatten().unwrap_or("an unknown time").to_owned();
        let header = AuthHeader::bearer(token)?;
        crate::gha::mask(&header.forms());
        Ok((header, expires_on))
    }

    /// Runs provider mode's command (`args`, after az's path) once, as cargo will for each token:
    /// cargo before 1.98 keeps a `\r` of its line (az on Windows ends it with `\r\n`) in the header.
    pub fn check_provider_command(&self, args: &[String]) -> anyhow::Result<()> {
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let out = self.call("az account get-access-token".into(), &args).stdout_is_secret().output();
        let out = out.map_err(|err| not_logged_in_or(err, "run `az login` (or pass --az-login)"))?;
        // Masked as `access_token` masks its header: the access check's feed may echo it.
        let token = out.stdout.trim_end().strip_prefix("Bearer ").unwrap_or_default();
        crate::gha::mask(&AuthHeader::bearer(token)?.forms());
        // Cargo 1.98 strips it (rust-lang/cargo#17072).
        let (major, minor) = if out.stdout.contains('\r') { crate::cargo::version()? } else { (1, 98) };
        ensure!(
            (major, minor) >= (1, 98),
            "az ends its output with CRLF (as on Windows, Azure/azure-cli#33385), and cargo {major}.{minor} \
             would send the CR as part of the token, which no feed accepts, so nothing was changed. Update \
             cargo to 1.98 or later (`rustup update`), or log in with `cargo xtask cargo-login` instead (a \
             token for about an hour)"
        );
        Ok(())
    }

    /// Whether az is logged in; otherwise az's own words, or that it did not answer.
    pub fn account_show(&self) -> Result<(), RunError> {
        self.call("az account show".into(), &["account", "show", "--output", "none"]).output().map(drop)
    }

    /// `az rest` against Azure DevOps, the answer (a [`Secret`]) reduced by `query` to one field
    /// per line. The body goes through a file: JSON in argv breaks `az.cmd`'s quoting.
    pub fn rest(&self, method: &str, uri: &str, body: Option<&str>, query: Option<&str>) -> Result<Secret> {
        let temp = crate::workdir::WorkDir::create("az-rest", false)?;
        let body_path = temp.path().join("body.json");
        let body_arg = format!("@{body_path}");
        let mut args = vec!["rest", "--method", method, "--uri", uri, "--resource", AZURE_DEVOPS_RESOURCE];
        if let Some(text) = body {
            std::fs::write(&body_path, text).with_context(|| format!("cannot write {body_path}"))?;
            args.extend(["--body", &body_arg]);
        }
        if let Some(query) = query {
            args.extend(["--query", query, "--output", "tsv"]);
        }
        let out =
            self.call(format!("az rest --method {method} --uri {uri}"), &args).stdout_is_secret().output();
        Ok(Secret::new(out.map_err(|err| not_logged_in_or(err, "run `az login`"))?.stdout))
    }
}

/// The rows of az's `--output tsv` for a list of plain values; `None` for null or missing (az prints `None`).
pub fn tsv_fields(stdout: &str) -> Vec<Option<&str>> {
    stdout
        .lines()
        .map(|line| Some(line.trim_end_matches('\r')).filter(|v| *v != "None" && !v.is_empty()))
        .collect()
}

/// "Not logged in" and `fix` when az says so, else the runner's own error.
fn not_logged_in_or(err: RunError, fix: &str) -> anyhow::Error {
    match err.stderr() {
        Some(stderr) if stderr.contains("az login") => {
            anyhow::anyhow!("the Azure CLI is not logged in: {fix} and try again\n{}", stderr.trim_end())
        }
        _ => err.into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tsv_rows_are_fields_and_none_is_null() {
        let out = "eyJ0.a/b\r\nNone\n2026-11-24 08:00:00.000000\n\n";
        assert_eq!(tsv_fields(out), [Some("eyJ0.a/b"), None, Some("2026-11-24 08:00:00.000000"), None]);
        assert!(tsv_fields("").is_empty());
    }
}
