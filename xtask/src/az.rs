//! The Azure CLI: interactive `az login` and Entra access tokens for Azure DevOps.
//! Every call but `az login` goes through the runner ([`crate::run`](mod@crate::run)), with
//! [`AZ_TIMEOUT`]: an az that waits on a network or a token cache must not hang
//! the task silently.

use std::time::Duration;

use anyhow::{Context, bail};
use camino::Utf8PathBuf;

use crate::run::{self, Program, RunError};
use crate::secret::{AuthHeader, Secret};
use crate::tool;

/// How long one az call may take (`XTASK_TIMEOUT_SECS` overrides it): az answers
/// in a few seconds, slower only when it refreshes a token over the network.
pub const AZ_TIMEOUT: Duration = Duration::from_secs(60);

/// The Entra resource id of Azure DevOps (and so of Azure Artifacts feeds).
pub const AZURE_DEVOPS_RESOURCE: &str = "499b84ac-1321-427f-aa17-267ca6975798";

/// An access token for Azure DevOps, as the `Bearer` header cargo sends.
pub struct AccessToken {
    pub header: AuthHeader,
    /// When it expires, as az reports it (local time).
    pub expires_on: String,
}

pub struct Az {
    path: Utf8PathBuf,
}

impl Az {
    pub fn find() -> anyhow::Result<Az> {
        Ok(Az { path: tool::AZ.find()? })
    }

    pub fn path(&self) -> &Utf8PathBuf {
        &self.path
    }

    fn call(&self, args: &[&str]) -> Program {
        run::program(&self.path, &crate::project_root(), args).timeout(AZ_TIMEOUT)
    }

    /// Runs `az login` attached to the user's terminal: it may open a browser or ask
    /// to pick a subscription, which a captured, time-limited call would break.
    pub fn login_interactive(&self) -> anyhow::Result<()> {
        eprintln!("$ az login");
        let status = std::process::Command::new(&self.path).arg("login").status();
        let status = status.context("cannot start `az login`")?;
        if !status.success() {
            bail!("`az login` failed ({status}); run it yourself to see why");
        }
        Ok(())
    }

    /// One access token for Azure DevOps: enough for every feed of the organisation.
    /// az prints the two fields asked for one per line (`--output tsv` of a list).
    pub fn access_token(&self) -> anyhow::Result<AccessToken> {
        let args = ["account", "get-access-token", "--resource", AZURE_DEVOPS_RESOURCE];
        let out = self
            .call(&[&args[..], &["--query", "[accessToken, expiresOn]", "--output", "tsv"]].concat())
            .label("az account get-access-token")
            .stdout_is_secret()
            .output()
            .map_err(|err| not_logged_in_or(err, "run `az login` (or pass --az-login)"))?;
        let fields = tsv_fields(&out.stdout);
        let Some(token) = fields.first().copied().flatten() else {
            bail!(
                "`az account get-access-token` answered without a token: run it yourself to see why\n{}",
                out.stderr.trim_end()
            );
        };
        Ok(AccessToken {
            header: AuthHeader::bearer(token)?,
            expires_on: fields.get(1).copied().flatten().unwrap_or("an unknown time").to_owned(),
        })
    }

    /// Whether az is logged in (`az account show` succeeds); otherwise why not: az's
    /// own words ([`RunError::stderr`]), or that it did not answer.
    pub fn account_show(&self) -> Result<(), RunError> {
        self.call(&["account", "show", "--output", "none"]).label("az account show").output().map(drop)
    }

    /// `az rest` against an Azure DevOps URL, with a token for Azure DevOps (az adds
    /// one by itself only for Azure Resource Manager URLs), its answer reduced by a
    /// `query` that selects a list of fields to one field per line ([`tsv_fields`]). A body goes through a temporary
    /// file: JSON in argv breaks on the quoting of `az.cmd` on Windows. The answer is
    /// a [`Secret`]: answers of the PAT API carry one.
    pub fn rest(
        &self,
        method: &str,
        uri: &str,
        body: Option<&str>,
        query: Option<&str>,
    ) -> anyhow::Result<Secret> {
        let sh = xshell::Shell::new()?;
        // Removed when it drops, after az has read the body.
        let temp = sh.create_temp_dir()?;
        let mut args = vec!["rest", "--method", method, "--uri", uri, "--resource", AZURE_DEVOPS_RESOURCE];
        let body_arg;
        if let Some(text) = body {
            let path = temp.path().join("body.json");
            sh.write_file(&path, text)?;
            body_arg = format!("@{}", path.display());
            args.extend(["--body", &body_arg]);
        }
        if let Some(query) = query {
            args.extend(["--query", query, "--output", "tsv"]);
        }
        let out = self
            .call(&args)
            .label(format!("az rest --method {method} --uri {uri}"))
            .stdout_is_secret()
            .output()
            .map_err(|err| not_logged_in_or(err, "run `az login`"))?;
        Ok(Secret::new(out.stdout))
    }
}

/// The rows of az's `--output tsv` for a query that selects a list of plain values:
/// one per line, `None` for a null or missing field (as knack's TSV writer prints it).
pub fn tsv_fields(stdout: &str) -> Vec<Option<&str>> {
    stdout
        .lines()
        .map(|line| line.trim_end_matches('\r'))
        .map(|v| (v != "None" && !v.is_empty()).then_some(v))
        .collect()
}

/// A failed az call as an error: "not logged in" and `fix` (what to run) when az
/// says so, else the runner's own error.
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
