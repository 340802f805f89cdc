//! `cargo xtask rotate-pat`: a new PAT, proven to work before it replaces the secret.
//! A PAT this run created is revoked, or reported as live, on every failure after it.

use std::io::{ErrorKind, IsTerminal, Read};
use std::time::{SystemTime, UNIX_EPOCH};

use anyhow::{Context, Result, anyhow, bail, ensure};

use crate::az::{self, AZURE_DEVOPS_RESOURCE, Az};
use crate::feeds::{self, Registry};
use crate::gh::{self, Gh};
use crate::secret::PatToken;
use crate::{access, cargo, gha, json};

/// Create a new Azure DevOps PAT and store it in the repository's GitHub secret.
///
/// The PAT is checked against every feed through cargo before `gh secret set` stores it, and
/// never printed. On failure the secret is left alone and the PAT revoked (or the error says
/// how to). Needs `az login` and `gh auth login`.
#[derive(clap::Args)]
#[command(after_help = "Examples:
  cargo xtask rotate-pat --access read
  cargo xtask rotate-pat --access write --days 30
  cargo xtask rotate-pat --access read --repo hyperlight-dev/hyperlight
  cargo xtask rotate-pat --access read --pat-stdin < pat.txt")]
pub struct RotatePat {
    /// What the PAT may do: `read` (scope Packaging read, secret ADO_CARGO_RO_PAT) or
    /// `write` (Packaging read & write, for publishing; secret ADO_CARGO_RW_PAT).
    #[arg(long, value_enum)]
    pub access: PatAccess,
    /// Take the PAT from stdin (without echo from a terminal) instead of creating one;
    /// only publishing could check write access, so a warning says it is unchecked.
    #[arg(long, conflicts_with_all = ["name", "days", "organization"])]
    pub pat_stdin: bool,
    /// Display name of the new PAT [default: hyperlight-cargo-ACCESS-YYYY-MM-DD].
    #[arg(long, value_name = "TEXT")]
    pub name: Option<String>,
    /// Lifetime of the new PAT in days (at most a year; your organisation may allow less).
    #[arg(long, value_name = "N", default_value_t = 90, value_parser = clap::value_parser!(u32).range(1..=365))]
    pub days: u32,
    /// The Azure DevOps organisation of the PAT [default: the one in the feeds' index URLs].
    #[arg(long, value_name = "ORG")]
    pub organization: Option<String>,
    /// The GitHub secret to store the PAT in [default: ADO_CARGO_RO_PAT or ADO_CARGO_RW_PAT].
    #[arg(long, value_name = "NAME")]
    pub secret: Option<String>,
    /// The GitHub repository of the secret, as OWNER/NAME [default: the git remote `origin`'s].
    #[arg(long, value_name = "OWNER/NAME")]
    pub repo: Option<String>,
    /// Check the PAT against this feed only (repeatable); default: every feed.
    #[arg(long = "registry", value_name = "NAME")]
    pub registries: Vec<String>,
}

#[derive(clap::ValueEnum, Clone, Copy, PartialEq, Eq)]
pub enum PatAccess {
    /// Install crates from the feeds.
    Read,
    /// Also publish to them.
    Write,
}

/// Azure DevOps' packaging scopes, each including the ones before it.
const SCOPES: [&str; 3] = ["vso.packaging", "vso.packaging_write", "vso.packaging_manage"];

impl PatAccess {
    /// Whether a PAT of these scopes (space-separated, as the PAT API says) has this access.
    fn granted_by(self, scopes: &str) -> bool {
        scopes.split_whitespace().any(|scope| SCOPES[self as usize..].contains(&scope))
    }

    fn word(self) -> &'static str {
        ["read", "write"][self as usize]
    }
}

impl RotatePat {
    /// Every input is checked before anything is created or stored.
    pub fn run(self) -> Result<()> {
        let default_secret = ["ADO_CARGO_RO_PAT", "ADO_CARGO_RW_PAT"][self.access as usize];
        let secret = gh::check_secret_name(self.secret.as_deref().unwrap_or(default_secret))?;
        let repo = self.repo.as_deref().map_or_else(gh::default_repo, gh::check_repo)?;
        let (feeds, gh) = (feeds::select(&self.registries)?, Gh::find()?);
        gh.check_access(&repo)?;
        let unverified = self.pat_stdin && self.access == PatAccess::Write;
        let store = |pat: &PatToken| {
            let failed = access::check_feeds(&feeds, &cargo::token_env(&feeds, pat), &access::show_line)?;
            let failed = failed.join(", ");
            ensure!(
                failed.is_empty(),
                "the new PAT does not work for {failed}: {secret} of {repo} was left unchanged"
            );
            if unverified {
                // Only publishing proves write access, and a published version is final.
                gha::warning(&format!(
                    "write access was NOT verified (only publishing proves it): make sure this PAT has the scope \
                     Packaging (Read & write) before a release relies on {secret}"
                ));
            }
            gh.secret_set(&secret, &repo, pat.secret())
        };
        let what = if self.pat_stdin {
            let pat = read_pat_from_stdin()?;
            // Before anything else is printed: from here on the runner hides every form.
            gha::mask(&pat.forms());
            store(&pat)?;
            format!("the PAT from stdin{}", if unverified { " (write access not verified)" } else { "" })
        } else {
            self.create_and_store(&organization(&feeds, self.organization.as_deref())?, &store)?
        };
        eprintln!("rotate-pat: {secret} of {repo} now holds {what}");
        Ok(())
    }

    /// Creates the PAT in `org` and hands it to `store`; returns what the secret now holds.
    fn create_and_store(&self, org: &str, store: &dyn Fn(&PatToken) -> Result<()>) -> Result<String> {
        let now = SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs());
        let today = &timestamp(now)[..10];
        let name =
            self.name.clone().unwrap_or_else(|| format!("hyperlight-cargo-{}-{today}", self.access.word()));
        let line = !name.trim().is_empty() && !name.chars().any(char::is_control) && name.len() <= 256;
        ensure!(line, "--name must be a line of text (at most 256 bytes)");
        let az = Az::find()?;
        let valid_to = timestamp(now + u64::from(self.days) * 86_400);
        let (quoted_name, scope, until) =
            (json::quote(&name), SCOPES[self.access as usize], json::quote(&valid_to));
        let body = format!(
            r#"{{"displayName": {quoted_name}, "scope": "{scope}", "validTo": {until}, "allOrgs": false}}"#
        );
        eprintln!("rotate-pat: creating PAT \"{name}\" in {org} (scope {scope}, valid to {valid_to})");
        let answer = az.rest("post", &pats_api(org, ""), Some(&body), Some(ANSWER_QUERY));
        // From here on every failure revokes the PAT or says it is live; an az stopped
        // (time limit, Ctrl-C) may have sent the request and lost the answer.
        let mut made = Made::Maybe;
        let answer =
            answer.map_err(|err| if sent(&err) { revoke(&az, org, &name, &made, err) } else { err })?;
        let stored = read_answer(answer.expose(), self.access, &mut made)
            .and_then(|(pat, answered)| store(&pat).map(|()| answered));
        let valid_to = stored.map_err(|err| revoke(&az, org, &name, &made, err))?.unwrap_or(valid_to);
        let (access, page) = (self.access.word(), tokens_page(org));
        Ok(format!(
            "the new PAT \"{name}\" ({access} access, valid to {valid_to}); revoke the old one at {page}"
        ))
    }
}

/// What this run knows of the PAT it asked for: whether it exists (`Maybe` while the
/// answer is unread or unreadable), and its authorizationId, which revoking it takes.
enum Made {
    No,
    Maybe,
    Yes(Option<String>),
}

/// `err`, after revoking the PAT if it was made, else followed by what the user must do.
fn revoke(az: &Az, org: &str, name: &str, made: &Made, err: anyhow::Error) -> anyhow::Error {
    let (page, live) =
        (tokens_page(org), format!("the new PAT \"{name}\" of {org} is LIVE and stored nowhere"));
    let left_live = match made {
        Made::No => return err,
        Made::Yes(Some(id)) => {
            let uri = pats_api(org, &format!("authorizationId={id}&"));
            let Err(why) = crate::interrupt::despite(|| az.rest("delete", &uri, None, None)) else {
                eprintln!("rotate-pat: revoked the new PAT \"{name}\" again, as this run failed");
                return err;
            };
            format!(
                "{live}, and revoking it failed ({why:#}).\nRevoke it at {page}, or run:\n  az rest --method \
                 delete --uri \"{uri}\" --resource {AZURE_DEVOPS_RESOURCE}"
            )
        }
        Made::Yes(None) => format!(
            "{live}, and this run cannot revoke it (the answer held no authorizationId): revoke it at {page}"
        ),
        Made::Maybe => format!(
            "Azure DevOps may have created the PAT \"{name}\" of {org} all the same: look for it at {page} \
             and revoke it"
        ),
    };
    anyhow!("{err:#}\n{left_live}")
}

/// Whether a failed az call may have sent its request: stopped, or its output lost, not failing by itself.
fn sent(err: &anyhow::Error) -> bool {
    use crate::run::{RunError, RunErrorKind::*};
    err.downcast_ref::<RunError>().is_some_and(|e| matches!(e.kind, TimedOut { .. } | Interrupted | Read(_)))
}

fn pats_api(org: &str, query: &str) -> String {
    format!("https://vssps.dev.azure.com/{org}/_apis/tokens/pats?{query}api-version=7.1-preview.1")
}

fn tokens_page(org: &str) -> String {
    format!("https://dev.azure.com/{org}/_usersSettings/tokens")
}

/// The fields of the PAT API's `PatTokenResult` read here, one per line of az's tsv.
const ANSWER_QUERY: &str =
    "[patTokenError, patToken.authorizationId, patToken.token, patToken.scope, patToken.validTo]";

/// The PAT and its expiry from the PAT API's answer, telling `made` what revoking takes
/// as soon as it is known. Errors name fields, never their values.
fn read_answer(tsv: &str, access: PatAccess, made: &mut Made) -> Result<(PatToken, Option<String>)> {
    let fields = az::tsv_fields(tsv);
    let field = |i: usize| fields.get(i).copied().flatten();
    // az prints an answer that is no JSON as it came (a proxy's HTML page).
    let code = |e: &str| e.chars().all(|c| c.is_ascii_alphanumeric());
    if fields.len() != 5 || !field(0).is_none_or(code) {
        bail!("Azure DevOps' answer to the PAT request is not the PAT API's (not JSON)");
    }
    let (error, id, token) = (field(0), field(1), field(2));
    if token.is_some() || id.is_some() {
        *made = Made::Yes(id.map(str::to_owned));
    }
    match error {
        None | Some("none") => {}
        Some(error) if matches!(made, Made::Maybe) => {
            *made = Made::No;
            bail!("Azure DevOps refused to create the PAT: {error}{}", pat_error_hint(error));
        }
        Some(error) => bail!("Azure DevOps' answer reports the error `{error}` and a PAT all the same"),
    }
    let token = token.context("Azure DevOps' answer to the PAT request holds no patToken.token")?;
    let pat = PatToken::parse(token.to_owned(), "the PAT in Azure DevOps' answer")?;
    // Before anything else is printed: from here on the runner hides every form.
    gha::mask(&pat.forms());
    ensure!(id.is_some(), "Azure DevOps' answer holds no patToken.authorizationId, which revoking it takes");
    match field(3) {
        Some(scopes) if access.granted_by(scopes) => Ok((pat, field(4).map(str::to_owned))),
        Some(scopes) => bail!(
            "Azure DevOps created the PAT with scope `{scopes}`, which lacks {}: it is not stored",
            SCOPES[access as usize]
        ),
        None => bail!("Azure DevOps' answer holds no patToken.scope: the PAT's access is unknown"),
    }
}

/// `SessionTokenError` codes a user can act on; a lifetime over the organisation's limit is cut, not refused.
fn pat_error_hint(error: &str) -> &'static str {
    match error {
        "invalidScope" | "fullScopePatPolicyViolation" => " (your organisation does not allow this scope)",
        "accessDenied" => " (your account may not create PATs in this organisation)",
        "patLifespanPolicyViolation" => " (your organisation allows a shorter life: pass fewer --days)",
        "disablePatCreationPolicyViolation" => " (your organisation restricts new PATs: ask an admin)",
        _ => "",
    }
}

/// The organisation given, or the one of the feeds: a PAT belongs to one.
fn organization(feeds: &[Registry], given: Option<&str>) -> Result<String> {
    if let Some(org) = given {
        let ok = !org.is_empty() && org.chars().all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c));
        ensure!(ok, "`{org}` is not an Azure DevOps organisation name: use letters, digits, - _ .");
        return Ok(org.to_owned());
    }
    let mut orgs: Vec<&str> = feeds.iter().filter_map(Registry::azure_organization).collect();
    orgs.sort_by_key(|o| o.to_ascii_lowercase());
    orgs.dedup_by(|a, b| a.eq_ignore_ascii_case(b));
    match orgs.as_slice() {
        [org] => Ok((*org).to_owned()),
        [] => bail!(
            "no feed's index URL names an Azure DevOps organisation ({}): pass --organization ORG",
            feeds.iter().map(|f| f.index.as_str()).collect::<Vec<_>>().join(", ")
        ),
        many => bail!(
            "the feeds belong to different Azure DevOps organisations ({}), and a PAT to one: pass \
             --organization ORG and --registry for the feeds of that organisation",
            many.join(", ")
        ),
    }
}

/// The PAT from stdin, without echo from a terminal (a Ctrl-C there is `Interrupted`).
fn read_pat_from_stdin() -> Result<PatToken> {
    if std::io::stdin().is_terminal() {
        let prompt = || rpassword::prompt_password("Paste the PAT and press Enter (it is not shown): ");
        // The Windows console echoes typed-ahead input only when a read takes it, with echo off.
        #[cfg(unix)]
        let prompt = || with_echo_off(prompt);
        return match prompt() {
            Ok(line) => PatToken::parse(line, "the PAT typed in"),
            Err(err) if err.kind() == ErrorKind::Interrupted => Err(crate::interrupt::Interrupted.into()),
            Err(err) => Err(err).context("cannot read the PAT from the terminal: pipe it in instead"),
        };
    }
    let mut text = String::new();
    std::io::stdin().lock().read_to_string(&mut text).context("cannot read the PAT from stdin")?;
    PatToken::parse(text, "the PAT on stdin (--pat-stdin)")
}

/// Runs `read` with echo off before its prompt: rpassword prints it first, so a PAT typed at once would echo.
#[cfg(unix)]
fn with_echo_off(read: impl FnOnce() -> std::io::Result<String>) -> std::io::Result<String> {
    let tty = std::fs::File::open("/dev/tty")?;
    let fd = std::os::fd::AsRawFd::as_raw_fd(&tty);
    let ok = |rc| if rc == 0 { Ok(()) } else { Err(std::io::Error::last_os_error()) };
    // SAFETY: a termios is plain integers, valid as zeroes; tcgetattr only writes to it.
    let mut saved: libc::termios = unsafe { std::mem::zeroed() };
    ok(unsafe { libc::tcgetattr(fd, &mut saved) })?;
    let quiet = libc::termios { c_lflag: saved.c_lflag & !libc::ECHO, ..saved };
    // SAFETY: tcsetattr only reads the settings passed, here and below.
    ok(unsafe { libc::tcsetattr(fd, libc::TCSANOW, &quiet) })?;
    let read = read();
    unsafe { libc::tcsetattr(fd, libc::TCSANOW, &saved) };
    read
}

/// ISO 8601 in UTC for `validTo`, by Howard Hinnant's `civil_from_days`.
fn timestamp(secs: u64) -> String {
    let z = (secs / 86_400) as i64 + 719_468;
    let (era, doe) = (z.div_euclid(146_097), z.rem_euclid(146_097));
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    let rem = secs % 86_400;
    format!("{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}Z", rem / 3600, rem % 3600 / 60, rem % 60)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates_follow_the_calendar() {
        assert_eq!(timestamp(0), "1970-01-01T00:00:00Z");
        assert_eq!(timestamp(951_782_400), "2000-02-29T00:00:00Z");
        assert_eq!(timestamp(1_709_164_799), "2024-02-28T23:59:59Z");
        assert_eq!(timestamp(1_735_689_600), "2025-01-01T00:00:00Z");
        assert_eq!(&timestamp(4_102_444_800)[..10], "2100-01-01");
    }

    #[test]
    fn the_organisation_comes_from_the_feeds() {
        let feed = |org: &str| Registry {
            name: format!("f_{org}"),
            index: format!("sparse+https://pkgs.dev.azure.com/{org}/p/_packaging/f/Cargo/index/"),
        };
        let local = Registry { name: "local".into(), index: "sparse+http://127.0.0.1:1/api/".into() };
        assert_eq!(organization(&[feed("Org"), feed("org")], None).unwrap(), "Org");
        assert_eq!(organization(std::slice::from_ref(&local), Some("Given")).unwrap(), "Given");
        let msg = format!("{:#}", organization(&[local], None).unwrap_err());
        assert!(msg.contains("--organization"), "{msg}");
        let msg = format!("{:#}", organization(&[feed("A"), feed("B")], None).unwrap_err());
        assert!(msg.contains("A, B"), "{msg}");
        assert!(organization(&[], Some("a/b")).is_err());
    }

    #[test]
    fn the_organisations_pat_policies_say_what_to_do() {
        assert!(pat_error_hint("patLifespanPolicyViolation").contains("--days"));
        assert!(pat_error_hint("disablePatCreationPolicyViolation").contains("admin"));
    }

    /// An error reported beside a PAT leaves the PAT known: the failure revokes it.
    #[test]
    fn a_pat_answered_beside_an_error_is_revoked() {
        let mut made = Made::Maybe;
        let tsv = format!("accessDenied\nid-1\n{}\nvso.packaging\nNone\n", "p".repeat(52));
        assert!(read_answer(&tsv, PatAccess::Read, &mut made).is_err());
        assert!(matches!(made, Made::Yes(Some(ref id)) if id == "id-1"));
    }

    #[test]
    fn write_access_needs_a_write_scope() {
        assert!(PatAccess::Read.granted_by("vso.packaging"));
        assert!(PatAccess::Read.granted_by("vso.code vso.packaging_write"));
        assert!(!PatAccess::Write.granted_by("vso.packaging"));
        assert!(!PatAccess::Write.granted_by("vso.packaging_writer"));
        assert!(PatAccess::Write.granted_by("vso.packaging_write"));
        assert!(PatAccess::Write.granted_by("vso.build vso.packaging_manage"));
        assert!(!PatAccess::Read.granted_by(""));
    }
}
