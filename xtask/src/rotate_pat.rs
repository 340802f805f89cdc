//! `cargo xtask rotate-pat`: the how-to's manual PAT rotation as one command that
//! proves the new PAT works before the secret is replaced. A PAT it created is guarded
//! ([`UnstoredPat`]) until stored, so no live token is left behind that nobody knows.

use std::io::{IsTerminal, Read};

use anyhow::{Context, anyhow, bail};

use crate::access::check_feeds;
use crate::az::{self, AZURE_DEVOPS_RESOURCE, Az};
use crate::feeds::{self, Registry};
use crate::gh::{self, Gh};
use crate::secret::{PatToken, Secret};
use crate::{gha, json};

/// The version of Azure DevOps' PAT lifecycle API (`_apis/tokens/pats`).
const PAT_API_VERSION: &str = "7.1-preview.1";

/// Create a new Azure DevOps PAT and store it in the repository's GitHub secret.
///
/// Creates the PAT through the Azure CLI (`az rest` against Azure DevOps' PAT API,
/// scope Packaging read or read & write), checks it against every feed with a real
/// authenticated request through cargo, and only then stores it with
/// `gh secret set`, the PAT on gh's stdin. The PAT is never printed; under GitHub
/// Actions it is masked first. If anything fails once the PAT exists, the secret is
/// left alone and the new PAT is revoked (or, when that fails, the error says it is
/// live and how to revoke it). Needs `az login` and `gh auth login` done.
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
    /// Take the PAT from stdin instead of creating one (for a PAT made by hand in the
    /// Azure DevOps web page). From a terminal it is read without echo. Its read access
    /// is checked; write access cannot be without publishing, so a warning says so.
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

/// The access a PAT grants, and so its scope and the secret it goes to.
#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum PatAccess {
    /// Install crates from the feeds.
    Read,
    /// Also publish to them.
    Write,
}

impl PatAccess {
    /// The Azure DevOps scope requested for a PAT with this access.
    fn scope(self) -> &'static str {
        match self {
            PatAccess::Read => "vso.packaging",
            PatAccess::Write => "vso.packaging_write",
        }
    }

    /// Whether a PAT of these scopes (space-separated, as the PAT API reports them)
    /// has this access. Each packaging scope includes the ones before it.
    fn granted_by(self, scopes: &str) -> bool {
        let enough: &[&str] = match self {
            PatAccess::Read => &["vso.packaging", "vso.packaging_write", "vso.packaging_manage"],
            PatAccess::Write => &["vso.packaging_write", "vso.packaging_manage"],
        };
        scopes.split_whitespace().any(|scope| enough.contains(&scope))
    }

    /// The secret Hyperlight's workflows read the PAT from.
    fn default_secret(self) -> &'static str {
        match self {
            PatAccess::Read => "ADO_CARGO_RO_PAT",
            PatAccess::Write => "ADO_CARGO_RW_PAT",
        }
    }

    fn word(self) -> &'static str {
        match self {
            PatAccess::Read => "read",
            PatAccess::Write => "write",
        }
    }
}

impl RotatePat {
    pub fn run(self) -> anyhow::Result<()> {
        // Every input is checked before anything is created or stored.
        let secret_name = self.secret.clone().unwrap_or_else(|| self.access.default_secret().to_owned());
        gh::check_secret_name(&secret_name)?;
        let repo = match &self.repo {
            Some(repo) => {
                gh::check_repo(repo)?;
                repo.clone()
            }
            None => gh::default_repo()?,
        };
        let feeds = feeds::select(&self.registries)?;
        let gh = Gh::find()?;

        if self.pat_stdin {
            return self.store_pat_from_stdin(&gh, &feeds, &secret_name, &repo);
        }
        let organization = organization(&feeds, self.organization.as_deref())?;
        let display_name = self
            .name
            .clone()
            .unwrap_or_else(|| format!("hyperlight-cargo-{}-{}", self.access.word(), date(now_secs())));
        check_display_name(&display_name)?;
        let az = Az::find()?;
        let (pat, valid_to, unstored) =
            create_pat(&az, &organization, &display_name, self.access, self.days)?;
        // From here on every way out goes through `unstored`: stored, or revoked (or
        // said to be live) on failure; a `?` added later still revokes on drop.
        if let Err(err) = check_and_store(&gh, &feeds, &pat, &secret_name, &repo) {
            return Err(unstored.fail(err));
        }
        unstored.stored();
        eprintln!(
            "rotate-pat: {secret_name} of {repo} now holds the new PAT \"{display_name}\" ({} access, \
             valid to {valid_to}); revoke the old one at {}",
            self.access.word(),
            tokens_page(&organization)
        );
        Ok(())
    }

    /// A PAT made by hand: checked for reading like a created one, but its write
    /// access cannot be checked (see [`warn_write_unverified`]).
    fn store_pat_from_stdin(
        &self,
        gh: &Gh,
        feeds: &[Registry],
        secret_name: &str,
        repo: &str,
    ) -> anyhow::Result<()> {
        let pat = read_pat_from_stdin()?;
        // Before anything else is printed: from here on the runner hides every form.
        gha::mask(&pat.forms());
        check_pat_reads_every_feed(feeds, &pat, secret_name, repo)?;
        let unverified = self.access == PatAccess::Write;
        if unverified {
            warn_write_unverified(secret_name);
        }
        store(gh, &pat, secret_name, repo)?;
        eprintln!(
            "rotate-pat: {secret_name} of {repo} now holds the PAT from stdin{}",
            if unverified { " (write access not verified)" } else { "" }
        );
        Ok(())
    }
}

/// The check through cargo, then gh: on any failure the secret is untouched.
fn check_and_store(
    gh: &Gh,
    feeds: &[Registry],
    pat: &PatToken,
    secret_name: &str,
    repo: &str,
) -> anyhow::Result<()> {
    check_pat_reads_every_feed(feeds, pat, secret_name, repo)?;
    store(gh, pat, secret_name, repo)
}

/// A real authenticated request per feed through cargo.
fn check_pat_reads_every_feed(
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
    let failed = check_feeds(feeds, &env, &pat.forms())?;
    if !failed.is_empty() {
        bail!(
            "the new PAT does not work for {}: {secret_name} of {repo} was left unchanged",
            failed.join(", ")
        );
    }
    Ok(())
}

fn store(gh: &Gh, pat: &PatToken, secret_name: &str, repo: &str) -> anyhow::Result<()> {
    gh.ensure_logged_in()?;
    gh.secret_set(secret_name, repo, pat.secret())
}

/// Said before a PAT from stdin goes into a write secret: only publishing proves
/// write access, and a published version can never be published again, so no run can
/// check it.
fn warn_write_unverified(secret_name: &str) {
    let message = format!(
        "write access was NOT verified: the feed check only reads, and only publishing \
         proves write access. Make sure this PAT has the scope Packaging (Read & write) \
         before a release relies on {secret_name}"
    );
    gha::warning(&message);
    eprintln!("warning: {message}");
}

/// What is known of whether the PAT asked for exists.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Existence {
    /// az returned, but the answer is not read yet or could not be read: Azure DevOps
    /// may have created the PAT.
    Possible,
    /// The answer carried the PAT.
    Certain,
    /// The answer said why no PAT was created (`patTokenError`).
    Refused,
}

/// A PAT this run asked Azure DevOps for, from the moment the request returned until
/// the PAT is in the secret. It cannot be forgotten: [`UnstoredPat::stored`] and
/// [`UnstoredPat::fail`] consume it, and dropping it any other way (a `?`, a panic)
/// does what `fail` does. Failing revokes the PAT, or, when that is impossible (no
/// authorization id) or fails, says plainly that it is live and how to revoke it.
struct UnstoredPat<'a> {
    az: &'a Az,
    organization: String,
    display_name: String,
    /// What revoking takes; known once the answer is read.
    authorization_id: Option<String>,
    existence: Existence,
    /// Stored, or already revoked or reported: nothing left to do on drop.
    settled: bool,
}

impl UnstoredPat<'_> {
    /// The PAT is in the secret: it stays.
    fn stored(mut self) {
        self.settled = true;
    }

    /// Revokes the PAT after `err`, and returns `err`, followed by what the user must
    /// do when the PAT may be left live.
    fn fail(mut self, err: anyhow::Error) -> anyhow::Error {
        self.settled = true;
        match self.revoke() {
            None => err,
            Some(left_live) => anyhow!("{err:#}\n{left_live}"),
        }
    }

    /// Revokes the PAT if it may exist. `None` when it was revoked or never created
    /// (revoking prints a line); else what to tell the user.
    fn revoke(&self) -> Option<String> {
        let (name, org) = (&self.display_name, &self.organization);
        let page = tokens_page(org);
        if self.existence == Existence::Refused {
            return None;
        }
        let Some(id) = &self.authorization_id else {
            return Some(match self.existence {
                Existence::Certain => format!(
                    "the new PAT \"{name}\" of {org} is LIVE and stored nowhere, and this run cannot \
                     revoke it (the answer held no authorizationId): revoke it at {page}"
                ),
                _ => format!(
                    "Azure DevOps may have created the PAT \"{name}\" of {org} all the same: look \
                     for it at {page} and revoke it"
                ),
            });
        };
        let uri = revoke_uri(org, id);
        match self.az.rest("delete", &uri, None, None) {
            Ok(_) => {
                eprintln!("rotate-pat: revoked the new PAT \"{name}\" again, as it was not stored");
                None
            }
            Err(err) => Some(format!(
                "the new PAT \"{name}\" of {org} is LIVE and stored nowhere, and revoking it failed \
                 ({err:#}).\nRevoke it at {page}, or run:\n  az rest --method delete --uri \"{uri}\" \
                 --resource {AZURE_DEVOPS_RESOURCE}"
            )),
        }
    }
}

impl Drop for UnstoredPat<'_> {
    fn drop(&mut self) {
        if self.settled {
            return;
        }
        // A way out that skipped `fail`: still no PAT left behind in silence.
        if let Some(left_live) = self.revoke() {
            gha::error(&left_live);
            eprintln!("error: {left_live}");
        }
    }
}

fn tokens_page(organization: &str) -> String {
    format!("https://dev.azure.com/{organization}/_usersSettings/tokens")
}

fn revoke_uri(organization: &str, authorization_id: &str) -> String {
    format!(
        "https://vssps.dev.azure.com/{organization}/_apis/tokens/pats?authorizationId={authorization_id}\
         &api-version={PAT_API_VERSION}"
    )
}

/// Creates a PAT through the PAT lifecycle API. The request holds no secret; the
/// answer does (`patToken.token`), so it stays a [`Secret`] until the PAT is taken
/// out of it. Returns the PAT, its expiry, and the guard that revokes it unless it
/// is stored.
fn create_pat<'a>(
    az: &'a Az,
    organization: &str,
    display_name: &str,
    access: PatAccess,
    days: u32,
) -> anyhow::Result<(PatToken, String, UnstoredPat<'a>)> {
    let valid_to = timestamp(now_secs() + u64::from(days) * 86_400);
    let body = format!(
        "{{\"displayName\": {}, \"scope\": {}, \"validTo\": {}, \"allOrgs\": false}}",
        json::quote(display_name),
        json::quote(access.scope()),
        json::quote(&valid_to),
    );
    let uri =
        format!("https://vssps.dev.azure.com/{organization}/_apis/tokens/pats?api-version={PAT_API_VERSION}");
    eprintln!(
        "rotate-pat: creating PAT \"{display_name}\" in {organization} (scope {}, valid to {valid_to})",
        access.scope()
    );
    let answer = az.rest("post", &uri, Some(&body), Some(ANSWER_QUERY))?;
    let mut unstored = UnstoredPat {
        az,
        organization: organization.to_owned(),
        display_name: display_name.to_owned(),
        authorization_id: None,
        existence: Existence::Possible,
        settled: false,
    };
    match read_answer(&answer, access, &mut unstored) {
        Ok((pat, answered_valid_to)) => Ok((pat, answered_valid_to.unwrap_or(valid_to), unstored)),
        Err(err) => Err(unstored.fail(err)),
    }
}

/// The fields of the PAT API's answer (a `PatTokenResult`) that this task reads, in
/// this order, one per line of az's `--output tsv`.
const ANSWER_QUERY: &str =
    "[patTokenError, patToken.authorizationId, patToken.token, patToken.scope, patToken.validTo]";

/// Reads the PAT API's answer, telling `unstored` what revoking takes as soon as it
/// is known. The answer holds the PAT: errors name fields, never their values.
fn read_answer(
    answer: &Secret,
    access: PatAccess,
    unstored: &mut UnstoredPat,
) -> anyhow::Result<(PatToken, Option<String>)> {
    let fields = az::tsv_fields(answer.expose());
    let field = |i: usize| fields.get(i).copied().flatten();
    // az prints an answer that is no JSON as it came (a proxy's HTML page).
    let code = |e: &str| e.chars().all(|c| c.is_ascii_alphanumeric());
    if fields.len() != 5 || !field(0).is_none_or(code) {
        bail!("Azure DevOps' answer to the PAT request is not the PAT API's (not JSON)");
    }
    let (error, token) = (field(0), field(2));
    unstored.authorization_id = field(1).map(str::to_owned);
    if token.is_some() || unstored.authorization_id.is_some() {
        unstored.existence = Existence::Certain;
    }
    match error {
        None | Some("none") => {}
        Some(error) if unstored.existence == Existence::Possible => {
            unstored.existence = Existence::Refused;
            bail!("Azure DevOps refused to create the PAT: {error}{}", pat_error_hint(error));
        }
        Some(error) => bail!("Azure DevOps' answer reports the error `{error}` and a PAT all the same"),
    }
    let token = token.context("Azure DevOps' answer to the PAT request holds no patToken.token")?;
    let pat = PatToken::parse(token.to_owned(), "the PAT in Azure DevOps' answer")?;
    // Before anything else is printed: from here on the runner hides every form.
    gha::mask(&pat.forms());
    if unstored.authorization_id.is_none() {
        bail!(
            "Azure DevOps' answer to the PAT request holds no patToken.authorizationId, which revoking it takes"
        );
    }
    match field(3) {
        Some(scopes) if access.granted_by(scopes) => {}
        Some(scopes) => bail!(
            "Azure DevOps created the PAT with scope `{scopes}`, which lacks {} ({} access): \
             it is not stored",
            access.scope(),
            access.word()
        ),
        None => {
            bail!("Azure DevOps' answer to the PAT request holds no patToken.scope: its access is unknown")
        }
    }
    Ok((pat, field(4).map(str::to_owned)))
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
/// rpassword turns a Ctrl-C at the prompt into SIGINT (so [`crate::interrupt`] sees
/// it) and an `Interrupted` error, after which the terminal's echo is back on.
fn read_pat_from_stdin() -> anyhow::Result<PatToken> {
    let stdin = std::io::stdin();
    if stdin.is_terminal() {
        match rpassword::prompt_password("Paste the PAT and press Enter (it is not shown): ") {
            Ok(line) => return PatToken::parse(line, "the PAT typed in"),
            Err(err) if err.kind() == std::io::ErrorKind::Interrupted => {
                return Err(crate::interrupt::Interrupted.into());
            }
            Err(err) => return Err(err).context("cannot read the PAT from the terminal: pipe it in instead"),
        }
    }
    let mut text = String::new();
    stdin.lock().read_to_string(&mut text).context("cannot read the PAT from stdin")?;
    PatToken::parse(text, "the PAT on stdin (--pat-stdin)")
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
