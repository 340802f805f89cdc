//! What the tasks ask of cargo (login, logout, version), and [`classify`], the one reader of feed messages.

use std::fmt;
use std::time::Duration;

use anyhow::{Context, bail};

use crate::feeds::Registry;
use crate::run::{self, RunError};
use crate::secret::{AuthHeader, PatToken, SecretEnv};
use crate::{cargo_home, toml_file};

/// Stores `header` as the token of each of `feeds`, saying `stored for NAME`: `cargo login`
/// reads it from stdin, never argv, where other users of the machine could see it.
pub fn login(feeds: &[Registry], header: &AuthHeader, stored: &str) -> anyhow::Result<()> {
    token_forms(&crate::tool::project_root())?;
    for feed in feeds {
        let out = run::cargo(&crate::tool::project_root(), &["login", "--registry", &feed.name])
            .stdin_secret(header.secret())
            .redact(&header.forms())
            .output();
        // Cargo's message names the command, whose arguments may be a secret.
        if out.as_ref().err().and_then(RunError::stderr).is_some_and(|e| e.contains(NOT_SUPPORTED)) {
            bail!(
                "cargo cannot store a token for {}: its credential provider is a command (`cargo xtask \
                 doctor` shows it), which hands cargo the tokens itself; remove it to log in here",
                feed.name
            );
        }
        out?;
        eprintln!("{stored} for {}", feed.name);
    }
    Ok(())
}

/// Removes the stored token of `registry`; fine when none is stored.
pub fn logout(registry: &Registry) -> anyhow::Result<()> {
    token_forms(&crate::tool::project_root())?;
    let out = run::cargo(&crate::tool::project_root(), &["logout", "--registry", &registry.name]).output();
    // A provider that is a command (`cargo:token-from-stdout`) holds nothing to remove.
    if let Err(err) = out
        && !err.stderr().is_some_and(|stderr| stderr.contains(NOT_SUPPORTED))
    {
        return Err(err.into());
    }
    // Cargo clears only the first provider's token, in the one credentials file it reads:
    // one left in the other file or the global config would still be used.
    let home = cargo_home::cargo_home()?;
    for path in [home.join("credentials"), home.join("credentials.toml"), cargo_home::global_config()?.path] {
        toml_file::update(&path, &mut |doc| {
            let entry = doc.get_mut("registries").and_then(|r| r.get_mut(&registry.name));
            entry.and_then(toml_edit::Item::as_table_like_mut).map(|entry| entry.remove("token"));
            Ok(())
        })?;
    }
    Ok(())
}

/// The configs of the repository, where the user is and above, still holding a token for
/// `registry`: cargo uses it there, and no logout removes it.
pub fn tokens_left(registry: &Registry) -> anyhow::Result<Vec<camino::Utf8PathBuf>> {
    let home = cargo_home::cargo_home()?;
    let mut paths = cargo_home::dir_configs(&crate::tool::project_root(), &home);
    paths.extend(cargo_home::dir_configs(&crate::tool::invocation_dir()?, &home));
    paths.sort();
    paths.dedup();
    let mut left = Vec::new();
    for path in paths {
        let doc = toml_file::read_if_exists(&path)?;
        if doc.as_ref().and_then(|doc| doc.get("registries")?.get(&registry.name)?.get("token")).is_some() {
            left.push(path);
        }
    }
    Ok(left)
}

/// Cargo's word for a `login` or `logout` that a feed's provider cannot do.
const NOT_SUPPORTED: &str = "requested operation not supported";

/// Every form of each token cargo may send in `dir`, to redact; read first: cargo's TOML errors quote lines.
pub fn token_forms(dir: &camino::Utf8Path) -> anyhow::Result<Vec<String>> {
    let home = cargo_home::cargo_home()?;
    let files = [home.join("credentials"), home.join("credentials.toml"), cargo_home::global_config()?.path];
    let paths = files.into_iter().chain(cargo_home::dir_configs(dir, &home));
    let docs = paths.map(|path| toml_file::read_if_exists(&path)).collect::<anyhow::Result<Vec<_>>>()?;
    Ok(cargo_home::token_forms(&docs.iter().flatten().collect::<Vec<_>>()))
}

/// The environment handing `pat`'s header to cargo for each of `feeds`, as Microsoft's pipeline task does.
pub fn token_env(feeds: &[Registry], pat: &PatToken) -> SecretEnv {
    let header = pat.header();
    feeds.iter().fold(SecretEnv::hiding(pat.forms()), |env, feed| {
        env.secret(feed.env_var("token"), header.secret())
            .plain(feed.env_var("credential-provider"), "cargo:token")
    })
}

/// What went wrong between cargo and a feed. A reason is one line of the feed's answer
/// (an HTML page's title); `Refused` is another 4xx to an upload.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FeedError {
    NoProvider,
    NoToken,
    Rejected,
    Forbidden { reason: String },
    Http { status: u16, reason: String },
    TimedOut { after: Duration },
    Unreachable(String),
    AlreadyExists(String),
    NoMatchingPackage(String),
    TooLarge(String),
    Refused { status: u16, reason: String },
    Other(String),
}

/// What an access is needed for: the permission a 403 says the token lacks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Need {
    Read,
    Publish,
    /// Publishing, every check done: a dry run would check nothing new.
    Upload,
}

impl fmt::Display for FeedError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::NoProvider => f.write_str("refused by cargo: no credential provider is configured"),
            Self::NoToken => f.write_str("no token"),
            Self::Rejected => f.write_str("token rejected"),
            Self::Forbidden { reason } => {
                write!(f, "insufficient permissions: the token lacks a scope (HTTP 403: {reason})")
            }
            Self::Http { status, reason } => write!(f, "the feed failed (HTTP {status}: {reason})"),
            Self::TimedOut { after } => write!(f, "no answer within {} s", after.as_secs()),
            Self::Unreachable(why) => write!(f, "unreachable ({why})"),
            Self::AlreadyExists(why) => write!(f, "the version exists ({why})"),
            Self::NoMatchingPackage(why) => write!(f, "a dependency is missing ({why})"),
            Self::TooLarge(why) => write!(f, "the crate is too large ({why})"),
            Self::Refused { status, reason } => write!(f, "refused by the feed (HTTP {status}: {reason})"),
            Self::Other(why) => write!(f, "cargo failed ({why})"),
        }
    }
}

impl std::error::Error for FeedError {}

impl FeedError {
    /// Whether a login (or a token with more scope) is what it takes.
    pub fn is_login(&self) -> bool {
        matches!(self, Self::NoProvider | Self::NoToken | Self::Rejected | Self::Forbidden { .. })
    }

    /// Whether running again can help: a network failure, a time-out, a 5xx or 429.
    pub fn is_transient(&self) -> bool {
        match self {
            Self::Http { status, .. } => *status >= 500 || *status == 429,
            Self::TimedOut { .. } | Self::Unreachable(_) => true,
            _ => false,
        }
    }

    /// What to do about it, when the access was needed for `need`.
    pub fn hint(&self, need: Need) -> String {
        let (scope, access) =
            if need == Need::Read { ("Packaging read", "read") } else { ("Packaging read & write", "write") };
        let fix = match self {
            Self::NoProvider => {
                &format!("run `cargo xtask setup`, or log in with {LOGIN}, which runs it too")
            }
            Self::NoToken => &format!("run {LOGIN}"),
            Self::Rejected => "wrong or expired: run `cargo xtask cargo-login`, or `cargo-login-ci`",
            Self::Forbidden { .. } => "the feed knows the token but it may not do this",
            Self::Http { .. } if self.is_transient() => "try again later; check the feed's index URL",
            Self::Http { .. } => "check the feed's index URL",
            Self::TimedOut { .. } | Self::Unreachable(_) => "check the network and the feed's index URL",
            Self::AlreadyExists(_) => {
                "a run again skips it if the feed's copy is identical to these sources; else publish these \
                 sources under a new version (`--version`)"
            }
            Self::NoMatchingPackage(_) => "publish it to the feed first, or set its `registry = \"..\"`",
            Self::TooLarge(_) => "trim it with `exclude` or `include` (see `cargo package --list`)",
            Self::Refused { .. } => "fix what the feed names (in the manifest or the feed's settings)",
            Self::Other(_) => "see cargo's message",
        };
        match self {
            Self::Rejected => format!("{fix} with a current PAT with the {scope} scope"),
            Self::Forbidden { .. } => format!(
                "{fix}: use a PAT with the {scope} scope (`cargo xtask rotate-pat --access {access}`), \
                 or ask for {scope} on the feed"
            ),
            Self::TimedOut { .. } => {
                format!("{fix}; on a slow network allow more time with {}=<seconds>", run::TIMEOUT_VAR)
            }
            _ => fix.into(),
        }
    }
}

const LOGIN: &str =
    "`cargo xtask cargo-login` (your Azure account) or, in CI, `cargo xtask cargo-login-ci` (a PAT in $PAT)";

/// What cargo's stderr says went wrong with a feed; pass it redacted, as it keeps lines of the feed's answer.
pub fn classify(stderr: &str) -> FeedError {
    let status = http_status(stderr);
    let reason = || body_reason(stderr).unwrap_or_else(|| "no reason given".into());
    let line_with = |words: &str| stderr.lines().find(|l| l.contains(words)).map(error_line);
    if stderr.contains("require a credential-provider to be configured") {
        FeedError::NoProvider
    } else if stderr.contains("no token found") {
        FeedError::NoToken
    } else if let Some(line) = line_with("already exists").or_else(|| line_with("already contains")) {
        FeedError::AlreadyExists(line)
    } else if let Some(line) = line_with("no matching package named") {
        FeedError::NoMatchingPackage(line)
    } else if status == Some(413) || stderr.contains("max upload size") {
        let why = body_reason(stderr).or_else(|| line_with("max upload size"));
        FeedError::TooLarge(why.unwrap_or_else(|| "HTTP 413".into()))
    } else if stderr.contains("token rejected") || status == Some(401) {
        FeedError::Rejected
    } else if status == Some(403) {
        FeedError::Forbidden { reason: reason() }
    } else if let Some(status) = status {
        // The publish API's answer (`(status 400 Bad Request)`): the feed saw the upload.
        match status {
            400..500 if stderr.contains("(status ") => FeedError::Refused { status, reason: reason() },
            _ => FeedError::Http { status, reason: reason() },
        }
    } else {
        let noise = |l: &&str| l.is_empty() || l.starts_with("warning");
        let last = stderr.lines().map(str::trim).rfind(|l| !noise(l));
        let why = error_line(last.unwrap_or("cargo failed without a message"));
        if is_network_error(stderr) { FeedError::Unreachable(why) } else { FeedError::Other(why) }
    }
}

/// The registry cargo's credential error names (`no token found for `x``): maybe a dependency's.
pub fn registry_named(stderr: &str) -> Option<&str> {
    let line =
        stderr.lines().find(|l| l.contains("no token found for") || l.contains("token rejected for"))?;
    line.split('`').nth(1)
}

/// Whether cargo's message is of a failed connection: curl's `[N] …`, or cargo's words.
fn is_network_error(stderr: &str) -> bool {
    let code = |n: &str| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit());
    let curl_code = stderr.split('[').skip(1).any(|rest| rest.split_once("] ").is_some_and(|(n, _)| code(n)));
    let words =
        ["spurious network error", "failed to connect", "Connection refused", "timed out", "resolve host"];
    curl_code || words.iter().any(|words| stderr.contains(words))
}

/// Cargo's own line, with room for the two paths of a config error.
fn error_line(line: &str) -> String {
    one_line(line.trim().trim_start_matches("error: "), 400)
}

/// The HTTP status of cargo's `… got 403` (index) or `(status 403 Forbidden)` (publish).
fn http_status(stderr: &str) -> Option<u16> {
    let after = |marker| stderr.split(marker).skip(1);
    let mut statuses =
        after(", got ").chain(after("(status ")).filter_map(|rest| rest.get(..3)?.parse().ok());
    statuses.find(|status| (100..600).contains(status))
}

/// One line saying why, from the body cargo quotes after `body:` (index) or the status
/// (publish): an HTML page's `<title>` (or first heading), else its first line.
fn body_reason(stderr: &str) -> Option<String> {
    let publish = || stderr.split_once("(status ")?.1.split_once("):").map(|(_, body)| body);
    let body = stderr.split_once("body:").map(|(_, body)| body).or_else(publish)?;
    let lower = body.to_ascii_lowercase();
    if !(lower.contains("<html") || lower.contains("<!doctype") || lower.contains("</")) {
        return body.lines().map(str::trim).find(|l| !l.is_empty()).map(|l| one_line(l, 160));
    }
    let text = |html: &str| Some(one_line(&strip_tags(html), 160)).filter(|text| !text.is_empty());
    let element = |tag: &str| {
        let start = lower.find(&format!("<{tag}"))?;
        text(&body[start..start + lower[start..].find(&format!("</{tag}"))?])
    };
    element("title").or_else(|| element("h1")).or_else(|| element("h2")).or_else(|| text(body))
}

/// The text outside the tags, a space for each tag's end.
fn strip_tags(html: &str) -> String {
    let (text, tags) = html.split_once('<').unwrap_or((html, ""));
    let after_tags = tags.split('<').filter_map(|part| part.split_once('>').map(|(_, after)| after));
    after_tags.fold(text.to_owned(), |text, after| text + " " + after)
}

/// Whitespace collapsed, at most `max` characters: a reason fits a verdict line.
fn one_line(text: &str, max: usize) -> String {
    let words = text.split_whitespace().collect::<Vec<_>>().join(" ");
    match words.char_indices().nth(max) {
        Some((at, _)) => format!("{}…", &words[..at]),
        None => words,
    }
}

pub fn version() -> anyhow::Result<(u32, u32)> {
    let text = run::cargo(&crate::tool::project_root(), &["--version"]).output()?.stdout;
    parse_version(&text).context(format!("cannot read cargo's version from `{}`", text.trim()))
}

/// The target cargo builds for when given none (`host:` of `cargo -vV`).
pub fn host() -> anyhow::Result<String> {
    let text = run::cargo(&crate::tool::project_root(), &["-vV"]).output()?.stdout;
    let host = text.lines().find_map(|line| line.strip_prefix("host: ")).map(str::to_owned);
    host.context("cannot read cargo's host target from `cargo -vV`")
}

fn parse_version(text: &str) -> Option<(u32, u32)> {
    let mut parts = text.split_whitespace().nth(1)?.split(['.', '-']);
    Some((parts.next()?.parse().ok()?, parts.next()?.parse().ok()?))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classifies_cargo_messages() {
        // Messages as cargo 1.95 prints them against kellnr 6.5.0 and the fault
        // servers of the tests.
        let rejected = "error: token rejected for `f`, please run `cargo login --registry f`";
        assert_eq!((classify(rejected), registry_named(rejected)), (FeedError::Rejected, Some("f")));
        let no_token = "error: no token found for `d`, please run `cargo login --registry d`";
        assert_eq!((classify(no_token), registry_named(no_token)), (FeedError::NoToken, Some("d")));
        assert_eq!(registry_named("error: failed to connect to `f`"), None);
        let no_provider = "Caused by:\n  authenticated registries require a credential-provider to be configured\n  \
                           see https://doc.rust-lang.org/cargo/reference/registry-authentication.html for details";
        assert_eq!(classify(no_provider), FeedError::NoProvider);
        let unreachable =
            "error: download of config.json failed\n\nCaused by:\n  [7] Could not connect to server";
        assert_eq!(classify(unreachable), FeedError::Unreachable("[7] Could not connect to server".into()));
    }

    #[test]
    fn a_403_is_a_missing_scope_not_a_network_problem() {
        let stderr = "    Updating `f` index\nerror: download of config.json failed\n\nCaused by:\n  failed to get \
                      successful HTTP response from `http://127.0.0.1:1/index/config.json` (127.0.0.1), got 403\n  \
                      body:\n  You lack Packaging read\n";
        let verdict = classify(stderr);
        assert_eq!(verdict, FeedError::Forbidden { reason: "You lack Packaging read".into() });
        assert!(verdict.to_string().contains("insufficient permissions"), "{verdict}");
        assert!(verdict.hint(Need::Read).contains("Packaging read scope"));
        assert!(verdict.hint(Need::Publish).contains("Packaging read & write"));
        let publish = "error: failed to publish to registry at http://x\n\nCaused by:\n  the remote server \
                       responded with an error (status 403 Forbidden): You lack Packaging write";
        assert_eq!(classify(publish), FeedError::Forbidden { reason: "You lack Packaging write".into() });
    }

    #[test]
    fn an_html_error_page_is_its_status_and_title() {
        let stderr = "error: download of config.json failed\n\nCaused by:\n  failed to get successful HTTP \
                      response from `http://127.0.0.1:1/index/config.json` (127.0.0.1), got 500\n  body:\n  \
                      <!DOCTYPE html>\n  <html><head><title>500 - Internal server error.</title></head>\n  \
                      <body><h1>Server Error</h1>\n  </body>\n  </html>\n";
        let verdict = classify(stderr);
        assert_eq!(verdict, FeedError::Http { status: 500, reason: "500 - Internal server error.".into() });
        assert!(!verdict.to_string().contains('<'), "{verdict}");
        let untitled = "error: x\n  failed to get successful HTTP response from `u`, got 502\n  body:\n  <html><body><p>Bad\n gateway</p></body></html>";
        assert_eq!(classify(untitled), FeedError::Http { status: 502, reason: "Bad gateway".into() });
    }

    #[test]
    fn failures_no_rerun_fixes_are_not_called_network_failures() {
        let exists = "   Uploading a v0.1.0\nerror: crate a@0.1.0 already exists on `f` index";
        let missing = "error: failed to prepare local package for uploading\n\nCaused by:\n  no matching package \
                       named `b` found\n  location searched: crates.io index\n  required by package `a v0.1.0`";
        let too_large = "error: failed to publish to registry at https://crates.io\n\nCaused by:\n  the remote \
                         server responded with an error (status 413 Payload Too Large): max upload size is: 10485760";
        let refused = "error: failed to publish to registry at http://x\n\nCaused by:\n  the remote server \
                       responded with an error (status 400 Bad Request): missing or empty metadata fields: \
                       description, license";
        // Azure Artifacts' words for a version it has (409 for Maven and NuGet, 403 for npm), met
        // when the index does not show it yet: after a killed run's cargo uploaded it, say.
        let azure = |status| {
            format!(
                "error: failed to publish to registry at https://x\n\nCaused by:\n  the remote server responded \
                 with an error (status {status}): The feed 'f' already contains file 'a-0.1.0.crate' in package 'a 0.1.0'."
            )
        };
        let (conflict, forbidden) = (azure("409 Conflict"), azure("403 Forbidden"));
        let build = "error: could not compile `a` (lib) due to 1 previous error";
        // An index's answer; cargo cuts a long body short, closing tags and all.
        let index = |status, body| {
            format!(
                "error: x\n  failed to get successful HTTP response from `u`, got {status}\n  body:\n  {body}"
            )
        };
        let cases = [
            (exists, "the version exists (crate a@0.1.0 already exists on `f` index)", "--version"),
            (&conflict, "the version exists (the remote server", "--version"),
            (&forbidden, "the version exists (the remote server", "--version"),
            (missing, "a dependency is missing (no matching package named `b` found)", "registry = "),
            (too_large, "the crate is too large (max upload size is: 10485760)", "cargo package --list"),
            (refused, "refused by the feed (HTTP 400: missing or empty metadata fields", "manifest"),
            ("error: something new", "cargo failed (something new)", "cargo's message"),
            // A 200 with errors (the registry API allows it): no status, and the body's words.
            (
                &too_large.replace(" (status 413 Payload Too Large)", ""),
                "the crate is too large (the remote",
                "cargo package --list",
            ),
            // A build's last line is this warning: the error is the line before.
            (
                &format!("{build}\nwarning: build failed, waiting for other jobs to finish..."),
                "cargo failed (could not compile",
                "cargo's message",
            ),
            ("error: invalid key in [dependencies] table", "cargo failed (invalid key", "cargo's message"),
            (
                &index(404, "<h1>Not Found</h1>"),
                "the feed failed (HTTP 404: Not Found)",
                "check the feed's index URL",
            ),
            (
                &index(410, "<html><head><title>Gone"),
                "the feed failed (HTTP 410: Gone)",
                "check the feed's index URL",
            ),
        ];
        for (stderr, verdict, hint) in cases {
            let error = classify(stderr);
            assert!(error.to_string().starts_with(verdict), "{error}");
            assert!(error.hint(Need::Publish).contains(hint), "{}", error.hint(Need::Publish));
            assert!(!error.is_transient() && !error.hint(Need::Publish).contains("try again"), "{error}");
        }
        for transient in [
            "error: x\n\nCaused by:\n  [28] Timeout was reached",
            "error: x\n  the remote server responded with an error (status 503 Service Unavailable): busy",
            &index(429, "slow down"),
        ] {
            assert!(classify(transient).is_transient(), "{transient}");
        }
        assert!(classify(&index(502, "")).hint(Need::Read).starts_with("try again later"));
        let timed_out = FeedError::TimedOut { after: Duration::from_secs(30) };
        assert!(timed_out.hint(Need::Read).ends_with("allow more time with XTASK_TIMEOUT_SECS=<seconds>"));
    }

    #[test]
    fn reads_cargo_versions() {
        assert_eq!(parse_version("cargo 1.95.0 (f2d3ce0bd 2026-03-21)"), Some((1, 95)));
        assert_eq!(parse_version("cargo 1.73.0-nightly (abc 2023-08-01)"), Some((1, 73)));
        assert_eq!(parse_version("garbage"), None);
    }
}
