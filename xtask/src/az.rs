//! The Azure CLI: interactive `az login` and Entra access tokens for Azure DevOps.
//! Every call but `az login` goes through the runner ([`crate::run`]), with
//! [`AZ_TIMEOUT`]: an az that waits on a network or a token cache must not hang
//! the task silently.

use std::time::Duration;

use anyhow::{Context, bail};
use camino::Utf8PathBuf;
use xshell::{Shell, cmd};

use crate::run::{Program, RunError};
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

    /// Runs `az login` attached to the user's terminal: it may open a browser or ask
    /// to pick a subscription, which a captured, time-limited call would break. The
    /// one az call outside the runner (see [`crate::run`]).
    pub fn login_interactive(&self, sh: &Shell) -> anyhow::Result<()> {
        let az = &self.path;
        eprintln!("$ az login");
        let status = std::process::Command::from(cmd!(sh, "{az} login"))
            .status()
            .context("cannot start `az login`")?;
        if !status.success() {
            bail!("`az login` failed ({status}); run it yourself to see why");
        }
        Ok(())
    }

    /// One access token for Azure DevOps: enough for every feed of the organisation.
    pub fn access_token(&self, sh: &Shell) -> anyhow::Result<AccessToken> {
        let az = &self.path;
        let out = Program::cmd(cmd!(
            sh,
            "{az} account get-access-token --resource {AZURE_DEVOPS_RESOURCE} --output json"
        ))
        .label("az account get-access-token")
        .timeout(AZ_TIMEOUT)
        .stdout_is_secret()
        .output()
        .map_err(|err| not_logged_in_or(err, "run `az login` (or pass --az-login)"))?;
        let token = json_string(&out.stdout, "accessToken").filter(|t| !t.is_empty());
        let Some(token) = token else {
            bail!(
                "`az account get-access-token` answered without a token: run it yourself to see why\n{}",
                out.stderr.trim_end()
            );
        };
        Ok(AccessToken {
            header: AuthHeader::bearer(&token)?,
            expires_on: json_string(&out.stdout, "expiresOn").unwrap_or_else(|| "an unknown time".into()),
        })
    }

    /// Whether az is logged in (`az account show` succeeds); otherwise why not: az's
    /// own words ([`RunError::stderr`]), or that it did not answer.
    pub fn account_show(&self, sh: &Shell) -> Result<(), RunError> {
        let az = &self.path;
        Program::cmd(cmd!(sh, "{az} account show --output json"))
            .label("az account show")
            .timeout(AZ_TIMEOUT)
            .output()
            .map(drop)
    }

    /// `az rest` against an Azure DevOps URL, with a token for Azure DevOps (az adds
    /// one by itself only for Azure Resource Manager URLs). A body goes through a
    /// temporary file (`--body @FILE`): JSON in argv breaks on the quoting of
    /// `az.cmd` on Windows, and the bodies sent here hold no secret. The answer is
    /// returned as a [`Secret`]: answers of the PAT API carry one.
    pub fn rest(&self, sh: &Shell, method: &str, uri: &str, body: Option<&str>) -> anyhow::Result<Secret> {
        let az = &self.path;
        // Removed when it drops, after az has read the body.
        let temp = sh.create_temp_dir()?;
        let body_arg = match body {
            Some(text) => {
                let path = temp.path().join("body.json");
                sh.write_file(&path, text)?;
                Some(format!("@{}", path.display()))
            }
            None => None,
        };
        let body_flag = body_arg.as_ref().map(|_| "--body");
        let out = Program::cmd(cmd!(
            sh,
            "{az} rest --method {method} --uri {uri} --resource {AZURE_DEVOPS_RESOURCE} {body_flag...} {body_arg...}"
        ))
        .label(format!("az rest --method {method} --uri {uri}"))
        .timeout(AZ_TIMEOUT)
        .stdout_is_secret()
        .output()
        .map_err(|err| not_logged_in_or(err, "run `az login`"))?;
        Ok(Secret::new(out.stdout))
    }
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

/// The string value of `key` in az's JSON output: az prints flat objects with
/// plain string values, so a scan is enough and spares a JSON dependency.
pub fn json_string(json: &str, key: &str) -> Option<String> {
    let after_key = &json[json.find(&format!("\"{key}\""))? + key.len() + 2..];
    let value = after_key.trim_start().strip_prefix(':')?.trim_start().strip_prefix('"')?;
    let mut out = String::new();
    let mut chars = value.chars();
    while let Some(c) = chars.next() {
        match c {
            '"' => return Some(out),
            '\\' => match chars.next()? {
                'n' => out.push('\n'),
                't' => out.push('\t'),
                'u' => {
                    let hex: String = chars.by_ref().take(4).collect();
                    out.push(char::from_u32(u32::from_str_radix(&hex, 16).ok()?)?);
                }
                other => out.push(other),
            },
            c => out.push(c),
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_string_fields_of_az_output() {
        let json = r#"{
  "accessToken": "eyJ0.a\/b",
  "expiresOn": "2026-11-24 08:00:00.000000",
  "expires_on": 1795000000,
  "tokenType": "Bearer",
  "note": "tab\there \u00e9"
}"#;
        assert_eq!(json_string(json, "accessToken").as_deref(), Some("eyJ0.a/b"));
        assert_eq!(json_string(json, "expiresOn").as_deref(), Some("2026-11-24 08:00:00.000000"));
        assert_eq!(json_string(json, "note").as_deref(), Some("tab\there é"));
        assert_eq!(json_string(json, "expires_on"), None);
        assert_eq!(json_string(json, "missing"), None);
    }
}
