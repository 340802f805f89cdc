//! The Azure CLI: interactive `az login` and Entra access tokens for Azure DevOps.

use anyhow::{Context, bail};
use camino::Utf8PathBuf;
use xshell::{Shell, cmd};

use crate::secret::{AuthHeader, Secret, redact};
use crate::tool;

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
    /// to pick a subscription, which xshell's null stdin would break.
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
        let out = cmd!(sh, "{az} account get-access-token --resource {AZURE_DEVOPS_RESOURCE} --output json")
            .quiet()
            .ignore_status()
            .output()?;
        let stdout = String::from_utf8_lossy(&out.stdout);
        let token = json_string(&stdout, "accessToken").filter(|t| !t.is_empty());
        let forms: Vec<&str> = token.as_deref().into_iter().collect();
        if !out.status.success() || token.is_none() {
            let stderr = redact(&String::from_utf8_lossy(&out.stderr), &forms);
            if stderr.contains("az login") {
                bail!(
                    "the Azure CLI is not logged in: run `az login` (or pass --az-login) and try again\n{}",
                    stderr.trim_end()
                );
            }
            bail!("`az account get-access-token` gave no token:\n{}", stderr.trim_end());
        }
        let token = token.unwrap_or_default();
        Ok(AccessToken {
            header: AuthHeader::bearer(&token)?,
            expires_on: json_string(&stdout, "expiresOn").unwrap_or_else(|| "an unknown time".into()),
        })
    }

    /// Whether az is logged in (`az account show` succeeds); otherwise az's own words.
    pub fn account_show(&self, sh: &Shell) -> Result<(), String> {
        let az = &self.path;
        match cmd!(sh, "{az} account show --output json").quiet().ignore_status().output() {
            Ok(out) if out.status.success() => Ok(()),
            Ok(out) => Err(String::from_utf8_lossy(&out.stderr).trim_end().to_owned()),
            Err(err) => Err(format!("cannot run {az}: {err}")),
        }
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
        let out = cmd!(
            sh,
            "{az} rest --method {method} --uri {uri} --resource {AZURE_DEVOPS_RESOURCE} {body_flag...} {body_arg...}"
        )
        .quiet()
        .ignore_status()
        .output()?;
        let stdout = Secret::new(String::from_utf8_lossy(&out.stdout).into_owned());
        if !out.status.success() {
            let stderr = redact(&String::from_utf8_lossy(&out.stderr), &[stdout.expose()]);
            if stderr.contains("az login") {
                bail!("the Azure CLI is not logged in: run `az login` and try again\n{}", stderr.trim_end());
            }
            bail!("`az rest --method {method} --uri {uri}` failed:\n{}", stderr.trim_end());
        }
        Ok(stdout)
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
