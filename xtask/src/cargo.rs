//! What the tasks ask of cargo: log in and out of a feed, check access to one, and
//! its version. Always the cargo that runs the xtask ([`tool::cargo`]).

use std::fmt;

use anyhow::bail;
use xshell::{Shell, cmd};

use crate::feeds::Registry;
use crate::secret::{AuthHeader, redact};
use crate::tool;

/// Stores `header` as the token of `registry` through `cargo login`, which reads it
/// from stdin: never from argv, where other users of the machine could see it.
pub fn login(sh: &Shell, registry: &Registry, header: &AuthHeader) -> anyhow::Result<()> {
    let cargo = tool::cargo();
    let name = &registry.name;
    let out = cmd!(sh, "{cargo} login --registry {name}")
        .stdin(header.secret().expose())
        .quiet()
        .ignore_status()
        .output()?;
    if !out.status.success() {
        let stderr = redact(&String::from_utf8_lossy(&out.stderr), &header.forms());
        bail!("`cargo login --registry {name}` failed:\n{}", stderr.trim_end());
    }
    Ok(())
}

/// Removes the stored token of `registry`; fine when none is stored.
pub fn logout(sh: &Shell, registry: &Registry) -> anyhow::Result<()> {
    let cargo = tool::cargo();
    let name = &registry.name;
    let out = cmd!(sh, "{cargo} logout --registry {name}").quiet().ignore_status().output()?;
    if !out.status.success() {
        bail!(
            "`cargo logout --registry {name}` failed:\n{}",
            String::from_utf8_lossy(&out.stderr).trim_end()
        );
    }
    Ok(())
}

/// What a real authenticated request to a feed said.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Access {
    Ok,
    /// Cargo refused before asking: no credential provider is configured, which an
    /// authenticated feed needs.
    NoProvider,
    /// Cargo has no token for the feed (nothing stored, no provider answered).
    NoToken,
    /// The feed answered 401/403 to the token cargo sent.
    Rejected,
    /// No answer, or an answer that is not the feed's: cargo's message says which.
    Unreachable(String),
}

impl fmt::Display for Access {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Access::Ok => f.write_str("ok"),
            Access::NoProvider => f.write_str("refused by cargo: no credential provider is configured"),
            Access::NoToken => f.write_str("no token"),
            Access::Rejected => f.write_str("token rejected"),
            Access::Unreachable(why) => write!(f, "unreachable ({why})"),
        }
    }
}

impl Access {
    /// What to do about a verdict.
    pub fn hint(&self) -> &'static str {
        match self {
            Access::Ok => "",
            Access::NoProvider => "run `cargo xtask setup` (cargo-login and cargo-login-ci run it too)",
            Access::NoToken => {
                "cargo has no token for it: run `cargo xtask cargo-login` (or `cargo-login --provider`)"
            }
            Access::Rejected => {
                "the feed refused the token (wrong, expired or without the Packaging scope): run \
                 `cargo xtask cargo-login` again, or `cargo-login-ci` with a current PAT"
            }
            Access::Unreachable(_) => "check the network and the feed's index URL",
        }
    }
}

/// A crate name no feed holds: asking for it makes cargo fetch the feed's
/// `config.json` and one index file with its token, and the feed's "not found"
/// then proves the token was accepted.
const PROBE_CRATE: &str = "hyperlight-xtask-access-probe";

/// Asks cargo for a crate of `registry` and classifies the answer. `env` is extra
/// environment for cargo (the token variables of `cargo-login-ci --github-env`).
pub fn check_access(sh: &Shell, registry: &Registry, env: &[(String, &str)]) -> anyhow::Result<Access> {
    let cargo = tool::cargo();
    let name = &registry.name;
    let mut command = cmd!(sh, "{cargo} info --registry {name} {PROBE_CRATE}").quiet().ignore_status();
    for (key, value) in env {
        command = command.env(key, value);
    }
    let out = command.output()?;
    let stderr = String::from_utf8_lossy(&out.stderr);
    Ok(classify(out.status.success(), &stderr))
}

fn classify(success: bool, stderr: &str) -> Access {
    if success || stderr.contains(&format!("could not find `{PROBE_CRATE}`")) {
        return Access::Ok;
    }
    if stderr.contains("token rejected") {
        return Access::Rejected;
    }
    if stderr.contains("no token found") {
        return Access::NoToken;
    }
    if stderr.contains("require a credential-provider to be configured") {
        return Access::NoProvider;
    }
    let reason = stderr
        .lines()
        .map(str::trim)
        .rfind(|l| !l.is_empty() && !l.starts_with("Caused by") && !l.starts_with("warning"))
        .unwrap_or("cargo failed without a message")
        .trim_start_matches("error: ")
        .to_owned();
    Access::Unreachable(reason)
}

/// Cargo's `(major, minor)` version.
pub fn version(sh: &Shell) -> anyhow::Result<(u32, u32)> {
    let cargo = tool::cargo();
    let text = cmd!(sh, "{cargo} --version").quiet().read()?;
    parse_version(&text).ok_or_else(|| anyhow::anyhow!("cannot read cargo's version from `{text}`"))
}

fn parse_version(text: &str) -> Option<(u32, u32)> {
    let number = text.split_whitespace().nth(1)?;
    let mut parts = number.split(['.', '-']);
    Some((parts.next()?.parse().ok()?, parts.next()?.parse().ok()?))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classifies_cargo_messages() {
        // Messages as cargo 1.95 prints them against kellnr 6.5.0.
        let not_found =
            format!("error: could not find `{PROBE_CRATE}` in registry `sparse+http://127.0.0.1:1/`");
        assert_eq!(classify(false, &not_found), Access::Ok);
        assert_eq!(
            classify(false, "error: token rejected for `f`, please run `cargo login --registry f`"),
            Access::Rejected
        );
        assert_eq!(
            classify(false, "error: no token found for `f`, please run `cargo login --registry f`"),
            Access::NoToken
        );
        let no_provider = "Caused by:\n  authenticated registries require a credential-provider to be configured\n  \
                           see https://doc.rust-lang.org/cargo/reference/registry-authentication.html for details";
        assert_eq!(classify(false, no_provider), Access::NoProvider);
        let unreachable =
            "error: download of config.json failed\n\nCaused by:\n  [7] Could not connect to server";
        assert_eq!(
            classify(false, unreachable),
            Access::Unreachable("[7] Could not connect to server".into())
        );
    }

    #[test]
    fn reads_cargo_versions() {
        assert_eq!(parse_version("cargo 1.95.0 (f2d3ce0bd 2026-03-21)"), Some((1, 95)));
        assert_eq!(parse_version("cargo 1.73.0-nightly (abc 2023-08-01)"), Some((1, 73)));
        assert_eq!(parse_version("garbage"), None);
    }
}
