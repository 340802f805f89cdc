//! `cargo xtask rotate-pat`: the how-to's manual PAT rotation (make a token in the
//! Azure DevOps web page, paste it into a GitHub secret) as one command that also
//! proves the new PAT works before anything is replaced.
//!
//! Order matters: create (or read) the PAT, mask it, check it against every feed
//! through cargo, and only then hand it to `gh secret set` on stdin. A PAT this task
//! created and could not store is revoked again, so no usable token is left behind
//! that nobody knows.

use std::io::{IsTerminal, Read};

use anyhow::{Context, bail};
use xshell::Shell;

use crate::az::{Az, json_string};
use crate::feeds::{self, Registry};
use crate::gh::{self, Gh};
use crate::gha;
use crate::login::check_feeds;
use crate::secret::PatToken;

/// The version of Azure DevOps' PAT lifecycle API (`_apis/tokens/pats`).
const PAT_API_VERSION: &str = "7.1-preview.1";

/// Create a new Azure DevOps PAT and store it in the repository's GitHub secret.
///
/// Creates the PAT through the Azure CLI (`az rest` against Azure DevOps' PAT API,
/// scope Packaging read or read & write), checks it against every feed with a real
/// authenticated request through cargo, and only then stores it with
/// `gh secret set`, the PAT on gh's stdin. The PAT is never printed; under GitHub
/// Actions it is masked first. If a feed rejects it, the secret is left alone and
/// the new PAT is revoked. Needs `az login` and `gh auth login` done.
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
    pub access: Access,
    /// Take the PAT from stdin instead of creating one (for a PAT made by hand in the
    /// Azure DevOps web page). From a terminal it is read without echo.
    #[arg(long, conflicts_with_all = ["name", "days", "organization"])]
    pub pat_stdin: bool,
    /// Display name of the new PAT [default: hyperlight-cargo-<access>-<today>].
    #[arg(long, value_name = "TEXT")]
    pub name: Option<String>,
    /// Lifetime of the new PAT in days (Azure DevOps allows at most a year, and your
    /// organisation's policy may allow less).
    #[arg(long, value_name = "N", default_value_t = 90, value_parser = clap::value_parser!(u32).range(1..=365))]
    pub days: u32,
    /// The Azure DevOps organisation that issues the PAT [default: the one in the
    /// feeds' index URLs].
    #[arg(long, value_name = "ORG")]
    pub organization: Option<String>,
    /// The GitHub secret to store the PAT in [default: ADO_CARGO_RO_PAT for read,
    /// ADO_CARGO_RW_PAT for write].
    #[arg(long, value_name = "NAME")]
    pub secret: Option<String>,
    /// The GitHub repository of the secret, as OWNER/NAME [default: the one of the git
    /// remote `origin`].
    #[arg(long, value_name = "OWNER/NAME")]
    pub repo: Option<String>,
    /// Check the PAT against this feed only (repeatable); default: every feed in
    /// `.cargo/config.toml`.
    #[arg(long = "registry", value_name = "NAME")]
    pub registries: Vec<String>,
}

/// The access a PAT grants.
#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum Access {
    /// Install crates from the feeds.
    Read,
    /// Also publish to them.
    Write,
}

impl Access {
    /// The Azure DevOps scope of a PAT with this access.
    fn scope(self) -> &'static str {
        match self {
            Access::Read => "vso.packaging",
            Access::Write => "vso.packaging_write",
        }
    }

    /// The secret Hyperlight's workflows read the PAT from.
    fn default_secret(self) -> &'static str {
        match self {
            Access::Read => "ADO_CARGO_RO_PAT",
            Access::Write => "ADO_CARGO_RW_PAT",
        }
    }

    fn word(self) -> &'static str {
        match self {
            Access::Read => "read",
            Access::Write => "write",
        }
    }
}

/// A PAT this run created, with what revoking or reporting it takes.
struct Created {
    az: Az,
    organization: String,
    authorization_id: String,
    display_name: String,
    valid_to: String,
}

impl RotatePat {
    pub fn run(self, sh: &Shell) -> anyhow::Result<()> {
        // Every input is checked before anything is created or stored.
        let secret_name = self.secret.clone().unwrap_or_else(|| self.access.default_secret().to_owned());
        gh::check_secret_name(&secret_name)?;
        let repo = match &self.repo {
            Some(repo) => {
                gh::check_repo(repo)?;
                repo.clone()
            }
            None => gh::default_repo(sh)?,
        };
        let feeds = feeds::select(sh, &self.registries)?;
        let gh = Gh::find()?;

        let (pat, created) = if self.pat_stdin {
            (read_pat_from_stdin()?, None)
        } else {
            let organization = organization(&feeds, self.organization.as_deref())?;
            let display_name = self
                .name
                .clone()
                .unwrap_or_else(|| format!("hyperlight-cargo-{}-{}", self.access.word(), date(now_secs())));
            check_display_name(&display_name)?;
            let az = Az::find()?;
            let (pat, created) = create_pat(sh, az, organization, display_name, self.access, self.days)?;
            (pat, Some(created))
        };
        // Before anything else is printed: from here on the runner hides every form.
        gha::mask(&pat.forms());

        let outcome = self.check_and_store(sh, &gh, &feeds, &pat, &secret_name, &repo);
        match (&outcome, &created) {
            (Ok(()), Some(c)) => eprintln!(
                "rotate-pat: {secret_name} of {repo} now holds the new PAT \"{}\" ({} access, valid to {}); \
                 revoke the old one at https://dev.azure.com/{}/_usersSettings/tokens",
                c.display_name,
                self.access.word(),
                c.valid_to,
                c.organization
            ),
            (Ok(()), None) => eprintln!("rotate-pat: {secret_name} of {repo} now holds the PAT from stdin"),
            (Err(_), Some(c)) => c.revoke(sh),
            (Err(_), None) => {}
        }
        outcome
    }

    /// The check through cargo, then gh: on any failure the secret is untouched.
    fn check_and_store(
        &self,
        sh: &Shell,
        gh: &Gh,
        feeds: &[Registry],
        pat: &PatToken,
        secret_name: &str,
        repo: &str,
    ) -> anyhow::Result<()> {
        // The PAT reaches cargo the way Microsoft's pipeline task hands it over: as
        // `CARGO_REGISTRIES_<NAME>_TOKEN` with the `cargo:token` provider, in the
        // child's environment only, so nothing is written to any credentials file and
        // whatever the user has configured is not consulted.
        let env = crate::cargo::token_env(feeds, &pat.header(), &pat.forms());
        let failed = check_feeds(sh, feeds, &env, &pat.forms())?;
        if !failed.is_empty() {
            bail!(
                "the new PAT does not work for {}: {secret_name} of {repo} was left unchanged",
                failed.join(", ")
            );
        }
        gh.ensure_logged_in(sh)?;
        gh.secret_set(sh, secret_name, repo, pat.secret())
    }
}

impl Created {
    /// Revokes a PAT this run made but did not store: nobody could use it, so it
    /// should not stay valid. Best effort: a failure is reported, not fatal.
    fn revoke(&self, sh: &Shell) {
        let uri = format!(
            "https://vssps.dev.azure.com/{}/_apis/tokens/pats?authorizationId={}&api-version={PAT_API_VERSION}",
            self.organization, self.authorization_id
        );
        match self.az.rest(sh, "delete", &uri, None) {
            Ok(_) => eprintln!(
                "rotate-pat: revoked the new PAT \"{}\" again, as it was not stored",
                self.display_name
            ),
            Err(err) => eprintln!(
                "warning: could not revoke the unused new PAT \"{}\" ({err:#}); revoke it at \
                 https://dev.azure.com/{}/_usersSettings/tokens",
                self.display_name, self.organization
            ),
        }
    }
}

/// Creates a PAT through the PAT lifecycle API. The request holds no secret; the
/// answer does (`patToken.token`), so it is read from az's stdout and kept as a
/// secret only.
fn create_pat(
    sh: &Shell,
    az: Az,
    organization: String,
    display_name: String,
    access: Access,
    days: u32,
) -> anyhow::Result<(PatToken, Created)> {
    let valid_to = timestamp(now_secs() + u64::from(days) * 86_400);
    let body = format!(
        "{{\"displayName\": {}, \"scope\": \"{}\", \"validTo\": \"{valid_to}\", \"allOrgs\": false}}",
        json_quote(&display_name),
        access.scope()
    );
    let uri =
        format!("https://vssps.dev.azure.com/{organization}/_apis/tokens/pats?api-version={PAT_API_VERSION}");
    eprintln!(
        "rotate-pat: creating PAT \"{display_name}\" in {organization} (scope {}, valid to {valid_to})",
        access.scope()
    );
    let answer = az.rest(sh, "post", &uri, Some(&body))?;
    let answer = answer.expose();
    match json_string(answer, "patTokenError").as_deref() {
        None | Some("none") => {}
        Some(error) => bail!("Azure DevOps refused to create the PAT: {error}{}", pat_error_hint(error)),
    }
    let token = json_string(answer, "token")
        .filter(|t| !t.is_empty())
        .context("Azure DevOps' answer to the PAT request holds no patToken.token")?;
    let pat = PatToken::parse(token, "the PAT Azure DevOps created")?;
    let created = Created {
        authorization_id: json_string(answer, "authorizationId").unwrap_or_default(),
        valid_to: json_string(answer, "validTo").unwrap_or(valid_to),
        az,
        organization,
        display_name,
    };
    Ok((pat, created))
}

fn pat_error_hint(error: &str) -> &'static str {
    match error {
        "patLifespanPolicyViolation" => {
            " (your organisation limits how long a PAT may live: pass a smaller --days)"
        }
        "duplicateDisplayName" => " (a PAT of that name exists: pass another --name)",
        "invalidScope" | "fullScopePatPolicyViolation" => " (your organisation does not allow this scope)",
        "userNotAuthorized" | "accessDenied" => " (your account may not create PATs in this organisation)",
        _ => "",
    }
}

/// The organisation of the feeds, or the one given: a PAT belongs to one organisation,
/// so the feeds must agree.
fn organization(feeds: &[Registry], given: Option<&str>) -> anyhow::Result<String> {
    if let Some(org) = given {
        let valid = !org.is_empty() && org.chars().all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c));
        if !valid {
            bail!("`{org}` is not an Azure DevOps organisation name: use letters, digits, `-`, `_` and `.`");
        }
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

fn check_display_name(name: &str) -> anyhow::Result<()> {
    if name.trim().is_empty() || name.chars().any(char::is_control) || name.len() > 256 {
        bail!("--name must be a line of text (at most 256 bytes)");
    }
    Ok(())
}

/// Reads the PAT from stdin: without echo from a terminal, else everything piped in.
fn read_pat_from_stdin() -> anyhow::Result<PatToken> {
    let stdin = std::io::stdin();
    if stdin.is_terminal() {
        let line = no_echo::read_line("Paste the PAT and press Enter (it is not shown): ");
        eprintln!();
        return PatToken::parse(line?, "the PAT typed in");
    }
    let mut text = String::new();
    stdin.lock().read_to_string(&mut text).context("cannot read the PAT from stdin")?;
    PatToken::parse(text, "the PAT on stdin (--pat-stdin)")
}

/// Reading a line with the terminal's echo off, without a dependency: `stty` on Unix
/// (POSIX, acts on the terminal it gets as stdin), the console mode on Windows.
/// When echo cannot be turned off, the PAT is not read at all: better to ask for it
/// to be piped in than to show it on screen. The prompt comes only once echo is off,
/// so nothing typed in answer to it can be echoed.
mod no_echo {
    use anyhow::{Context, bail};

    #[cfg(unix)]
    pub fn read_line(prompt: &str) -> anyhow::Result<String> {
        use std::process::{Command, Stdio};
        let stty = |arg: &str| {
            Command::new("stty").arg(arg).stdin(Stdio::inherit()).status().is_ok_and(|s| s.success())
        };
        if !stty("-echo") {
            bail!("cannot turn off the terminal's echo (`stty -echo` failed): pipe the PAT in instead");
        }
        struct Restore<F: Fn(&str) -> bool>(F);
        impl<F: Fn(&str) -> bool> Drop for Restore<F> {
            fn drop(&mut self) {
                (self.0)("echo");
            }
        }
        let _restore = Restore(stty);
        eprint!("{prompt}");
        let mut line = String::new();
        std::io::stdin().read_line(&mut line).context("cannot read the PAT from the terminal")?;
        Ok(line)
    }

    #[cfg(windows)]
    pub fn read_line(prompt: &str) -> anyhow::Result<String> {
        use std::ffi::c_void;
        use std::os::windows::io::AsRawHandle;

        #[link(name = "kernel32")]
        unsafe extern "system" {
            fn GetConsoleMode(console: *mut c_void, mode: *mut u32) -> i32;
            fn SetConsoleMode(console: *mut c_void, mode: u32) -> i32;
        }
        const ENABLE_ECHO_INPUT: u32 = 0x0004;

        struct Restore(*mut c_void, u32);
        impl Drop for Restore {
            fn drop(&mut self) {
                // SAFETY: the handle is this process's console input, still open.
                unsafe { SetConsoleMode(self.0, self.1) };
            }
        }

        let stdin = std::io::stdin();
        let handle = stdin.as_raw_handle();
        let mut mode = 0u32;
        // SAFETY: a console handle of this process and a valid pointer to a u32.
        if unsafe { GetConsoleMode(handle, &mut mode) } == 0
            || unsafe { SetConsoleMode(handle, mode & !ENABLE_ECHO_INPUT) } == 0
        {
            bail!("cannot turn off the console's echo: pipe the PAT in instead");
        }
        let _restore = Restore(handle, mode);
        eprint!("{prompt}");
        let mut line = String::new();
        stdin.read_line(&mut line).context("cannot read the PAT from the console")?;
        Ok(line)
    }

    #[cfg(not(any(unix, windows)))]
    pub fn read_line(_prompt: &str) -> anyhow::Result<String> {
        bail!("reading without echo is not supported here: pipe the PAT in instead")
    }
}

fn json_quote(text: &str) -> String {
    let mut out = String::from("\"");
    for c in text.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            c if (c as u32) < 0x20 => out.push_str(&format!("\\u{:04x}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

fn now_secs() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or_default()
}

/// `YYYY-MM-DD` (UTC) of a Unix time.
fn date(secs: u64) -> String {
    let (y, m, d) = civil_from_days((secs / 86_400) as i64);
    format!("{y:04}-{m:02}-{d:02}")
}

/// ISO 8601 in UTC, the form the PAT API takes for `validTo`.
fn timestamp(secs: u64) -> String {
    let rem = secs % 86_400;
    format!("{}T{:02}:{:02}:{:02}Z", date(secs), rem / 3600, rem % 3600 / 60, rem % 60)
}

/// Proleptic Gregorian (year, month, day) of a count of days since 1970-01-01
/// (Howard Hinnant's `civil_from_days`): twenty lines instead of a date crate.
fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let month = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let year = yoe + era * 400 + i64::from(month <= 2);
    (year, month, day)
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
        assert_eq!(date(4_102_444_800), "2100-01-01");
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
    fn request_bodies_are_json() {
        assert_eq!(json_quote("a \"b\" \\ \n"), r#""a \"b\" \\ \u000a""#);
    }
}
