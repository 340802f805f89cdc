//! `cargo xtask doctor`: why can (or can't) cargo use the feeds? It reads what cargo
//! reads to explain the setup, but the verdict comes from a real authenticated request
//! through cargo. It reads tokens only to redact them: a proxy may echo the
//! `Authorization` header into its error page.

use anyhow::bail;
use camino::Utf8PathBuf;
use toml_edit::DocumentMut;

use crate::az::Az;
use crate::cargo::{self, Access};
use crate::cargo_home::{credentials_path, global_config};
use crate::feeds::{self, Registry};
use crate::gh::Gh;
use crate::gha;
use crate::provider;
use crate::run::{RunError, RunErrorKind};
use crate::secret::{SecretEnv, token_forms};
use crate::toml_file;
use crate::tool;

/// Check, per feed, whether cargo can use it, and say why not.
///
/// For each feed: whether your global cargo config defines it, which credential
/// provider cargo will use, where the token comes from (credentials file,
/// environment, provider command, none), and the verdict of a real authenticated
/// request through cargo: ok, token rejected, or unreachable. Also cargo's version
/// and whether az and gh are present and logged in. Exits non-zero when any feed
/// fails; under GitHub Actions each failure is also an error annotation. Never
/// prints a token.
#[derive(clap::Args)]
#[command(after_help = "Examples:\n  cargo xtask doctor\n  cargo xtask doctor --registry hyperlight_redist")]
pub struct Doctor {
    /// Check this feed only (repeatable); default: every feed in `.cargo/config.toml`.
    #[arg(long = "registry", value_name = "NAME")]
    pub registries: Vec<String>,
}

/// The configuration files cargo merges, as far as the feeds are concerned.
struct Configs {
    /// The global config cargo reads.
    global_path: Utf8PathBuf,
    /// Why a file beside it is ignored by cargo, if one is.
    ignored_global: Option<String>,
    global: Result<Option<DocumentMut>, String>,
    repo: Result<Option<DocumentMut>, String>,
    credentials_path: Utf8PathBuf,
    credentials: Result<Option<DocumentMut>, String>,
}

impl Doctor {
    pub fn run(self) -> anyhow::Result<()> {
        let feeds = feeds::select(&self.registries)?;
        match cargo::version() {
            Ok((major, minor)) if (major, minor) < (1, 74) => println!(
                "cargo: {major}.{minor}, older than 1.74 (the first with stable registry authentication): \
                 run `rustup update stable`"
            ),
            Ok((major, minor)) => println!("cargo: {major}.{minor}"),
            Err(err) => println!("cargo: {err:#}"),
        }
        let configs = Configs::load()?;
        println!("global config: {}", configs.global_path);
        if let Some(warning) = &configs.ignored_global {
            println!("global config: warning: {warning}");
        }
        if let Err(err) = &configs.global {
            println!("global config: {err}");
        }
        if let Err(err) = &configs.repo {
            println!("repo config: {err}");
        }
        if let Err(err) = &configs.credentials {
            println!("credentials file: {err}");
        }

        let mut failed = Vec::new();
        let checks = crate::access::check_all(
            &crate::project_root(),
            &feeds,
            &SecretEnv::default(),
            &configs.secrets(&feeds),
        );
        for (feed, access) in feeds.iter().zip(checks) {
            let access = access?;
            let (verdict, hint) = (access.to_string(), access.hint());
            println!("{}:", feed.name);
            println!("  index:               {}", feed.index);
            println!("  in global config:    {}", configs.in_global(feed));
            println!("  credential provider: {}", configs.provider(feed));
            println!("  token from:          {}", configs.token_source(feed));
            println!("  access:              {verdict}");
            if access != Access::Ok {
                println!("  fix:                 {hint}");
                gha::error_titled(&format!("feed {}", feed.name), &format!("{verdict}: {hint}"));
                failed.push(format!("{} ({verdict})", feed.name));
            }
        }

        println!("az: {}", az_status());
        println!("gh: {}", gh_status());
        if !failed.is_empty() {
            bail!("{} of {} feed(s) failed: {}", failed.len(), feeds.len(), failed.join(", "));
        }
        println!("doctor: every feed is ok");
        Ok(())
    }
}

impl Configs {
    fn load() -> anyhow::Result<Configs> {
        let global = global_config()?;
        let credentials_path = credentials_path()?;
        let repo = read_optional(&crate::project_root().join(feeds::CONFIG_PATH));
        Ok(Configs {
            global: read_optional(&global.path),
            ignored_global: global.ignored_warning(),
            global_path: global.path,
            repo,
            credentials: read_optional(&credentials_path),
            credentials_path,
        })
    }

    fn global(&self) -> Option<&DocumentMut> {
        self.global.as_ref().ok().and_then(Option::as_ref)
    }

    fn repo(&self) -> Option<&DocumentMut> {
        self.repo.as_ref().ok().and_then(Option::as_ref)
    }

    fn in_global(&self, feed: &Registry) -> String {
        let index = self.global().and_then(|doc| {
            doc.get("registries")?.get(&feed.name)?.get("index")?.as_str().map(str::to_owned)
        });
        match index {
            Some(index) if index == feed.index => format!("yes ({})", self.global_path),
            Some(other) => format!(
                "with another index ({other}) in {}: run `cargo xtask setup --force` to align it",
                self.global_path
            ),
            None => format!("no ({}): run `cargo xtask setup`", self.global_path),
        }
    }

    /// Every form of every token cargo could send to `feeds` (the credentials file,
    /// the environment) and every hidden provider argument, to redact from what
    /// cargo and the feeds say. Never printed.
    fn secrets(&self, feeds: &[Registry]) -> Vec<String> {
        let mut tokens: Vec<String> = std::env::vars()
            .filter(|(key, _)| {
                key == "CARGO_REGISTRY_TOKEN"
                    || (key.starts_with("CARGO_REGISTRIES_") && key.ends_with("_TOKEN"))
            })
            .map(|(_, value)| value)
            .collect();
        if let Some(doc) = self.credentials.as_ref().ok().and_then(Option::as_ref) {
            let registries = doc.get("registries").and_then(|r| r.as_table_like());
            for (_, registry) in registries.into_iter().flat_map(|r| r.iter()) {
                tokens.extend(registry.get("token").and_then(|t| t.as_str()).map(str::to_owned));
            }
            tokens.extend(doc.get("registry").and_then(|r| r.get("token")?.as_str()).map(str::to_owned));
        }
        let mut forms: Vec<String> = tokens.iter().flat_map(|token| token_forms(token)).collect();
        // The arguments of command providers are never shown, in cargo's messages
        // either (cargo names a provider that failed with its command line).
        for feed in feeds {
            for words in self.effective_provider(feed).map(|(entries, _)| entries).unwrap_or_default() {
                let shown = shown_provider(&words);
                forms
                    .extend(words.into_iter().filter(|w| !w.starts_with('-') && !shown.contains(w.as_str())));
            }
        }
        forms
    }

    /// The providers cargo will use for `feed`, each as its words, and where that
    /// setting is. Cargo takes the feed's own `credential-provider` (environment
    /// first), else the global list, whose last entry is tried first.
    fn effective_provider(&self, feed: &Registry) -> Option<(Vec<Vec<String>>, String)> {
        let var = feed.env_var("credential-provider");
        if let Some(value) = std::env::var(&var).ok().filter(|v| !v.is_empty()) {
            return Some((vec![value.split_whitespace().map(str::to_owned).collect()], var));
        }
        let docs = [(self.global(), self.global_path.to_string()), (self.repo(), feeds::CONFIG_PATH.into())];
        for (doc, place) in &docs {
            if let Some(item) =
                doc.and_then(|d| d.get("registries")?.get(&feed.name)?.get("credential-provider"))
            {
                return Some((vec![provider::provider_words(item)], place.clone()));
            }
        }
        // In the environment, cargo reads a list as words: each word is an entry.
        if let Ok(list) = std::env::var("CARGO_REGISTRY_GLOBAL_CREDENTIAL_PROVIDERS") {
            let entries = list.split_whitespace().map(|w| vec![w.to_owned()]).collect();
            return Some((entries, "CARGO_REGISTRY_GLOBAL_CREDENTIAL_PROVIDERS".into()));
        }
        for (doc, place) in &docs {
            let list = doc.and_then(|d| d.get("registry")?.get("global-credential-providers")?.as_array());
            if let Some(list) = list {
                let entries = list
                    .iter()
                    .filter_map(|v| v.as_str())
                    .map(|entry| entry.split_whitespace().map(str::to_owned).collect())
                    .collect();
                return Some((entries, format!("registry.global-credential-providers in {place}")));
            }
        }
        None
    }

    fn provider(&self, feed: &Registry) -> String {
        match self.effective_provider(feed) {
            Some((entries, place)) => {
                let shown: Vec<String> = entries.iter().map(|words| shown_provider(words)).collect();
                format!("{} ({place})", shown.join(" "))
            }
            None => "none: cargo refuses authenticated feeds without one; run `cargo xtask setup`".into(),
        }
    }

    fn token_source(&self, feed: &Registry) -> String {
        let words = self.effective_provider(feed).map(|(entries, _)| entries.concat()).unwrap_or_default();
        if words.first().map(String::as_str) == Some(provider::TOKEN_FROM_STDOUT) {
            let program = words.get(1).map(String::as_str).unwrap_or("(none given)");
            return format!("provider command {program} (asked on each use; nothing stored)");
        }
        let var = feed.env_var("token");
        let uses_token = words.is_empty() || words.iter().any(|w| w == "cargo:token");
        if uses_token && std::env::var_os(&var).is_some_and(|v| !v.is_empty()) {
            return format!("environment ({var})");
        }
        let stored = self.credentials.as_ref().ok().and_then(Option::as_ref).is_some_and(|doc| {
            doc.get("registries").and_then(|r| r.get(&feed.name)).and_then(|r| r.get("token")).is_some()
        });
        if uses_token && stored {
            return format!("credentials file ({})", self.credentials_path);
        }
        if let Some(keychain) = words
            .iter()
            .find(|w| ["cargo:libsecret", "cargo:wincred", "cargo:macos-keychain"].contains(&w.as_str()))
        {
            return format!("the OS keychain ({keychain}), if a token is stored there");
        }
        "none".into()
    }
}

/// One provider entry as it may be printed: cargo's built-in providers as they
/// are, provider mode's own az command in full (its words are this xtask's, with no
/// secret), and any other command by its program alone: someone else's command line
/// could carry a token (`cargo:token-from-stdout echo Bearer ...`, `/opt/p --key K`).
fn shown_provider(words: &[String]) -> String {
    let Some(first) = words.first() else { return String::new() };
    let ours = first == provider::TOKEN_FROM_STDOUT
        && words.get(1).is_some_and(|az| words == provider::command(camino::Utf8Path::new(az)).as_slice());
    let builtins_only = words.iter().all(|w| w.starts_with("cargo:") && w != provider::TOKEN_FROM_STDOUT);
    if ours || builtins_only {
        return words.join(" ");
    }
    let keep = if first == provider::TOKEN_FROM_STDOUT { 2 } else { 1 };
    let hidden = words.len().saturating_sub(keep);
    let mut shown = words[..keep.min(words.len())].join(" ");
    if hidden > 0 {
        shown.push_str(&format!(" ({hidden} argument(s) not shown)"));
    }
    shown
}

/// A TOML file that may be missing; a parse error is kept as text to report.
fn read_optional(path: &camino::Utf8Path) -> Result<Option<DocumentMut>, String> {
    toml_file::read_if_exists(path).map_err(|err| format!("{err:#}"))
}

fn az_status() -> String {
    if !tool::AZ.is_present() {
        return format!("not found ({})", tool::AZ.install);
    }
    match Az::find() {
        Ok(az) => format!("{} ({})", az.path(), login_state(az.account_show(), "run `az login`")),
        Err(err) => format!("{err:#}"),
    }
}

fn gh_status() -> String {
    if !tool::GH.is_present() {
        return format!("not found ({}; needed by rotate-pat only)", tool::GH.install);
    }
    match Gh::find() {
        Ok(gh) => format!(
            "{} ({}; needed by rotate-pat only)",
            gh.path(),
            login_state(gh.auth_status(), "run `gh auth login`")
        ),
        Err(err) => format!("{err:#}"),
    }
}

/// A CLI's login check in words: logged in, not logged in (and `fix`), or why it
/// could not tell.
fn login_state(result: Result<(), RunError>, fix: &str) -> String {
    match result {
        Ok(()) => "logged in".into(),
        Err(RunError { kind: RunErrorKind::Exit { .. }, .. }) => format!("not logged in: {fix}"),
        Err(err) => format!("cannot tell whether it is logged in: {err}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn provider_commands_are_shown_without_foreign_arguments() {
        let words = |s: &str| s.split(' ').map(str::to_owned).collect::<Vec<_>>();
        assert_eq!(shown_provider(&words("cargo:token cargo:libsecret")), "cargo:token cargo:libsecret");
        assert_eq!(
            shown_provider(&words("cargo:token-from-stdout echo Bearer s3cr3t")),
            "cargo:token-from-stdout echo (2 argument(s) not shown)"
        );
        assert_eq!(
            shown_provider(&words("/opt/my-provider --key s3cr3t")),
            "/opt/my-provider (2 argument(s) not shown)"
        );
        let ours = provider::command(camino::Utf8Path::new("/usr/bin/az"));
        assert_eq!(shown_provider(&ours), ours.join(" "));
        // Look-alikes of provider mode's command are someone else's.
        assert_eq!(
            shown_provider(&words("cargo:token-from-stdout /usr/bin/az get-access-token s3cr3t")),
            "cargo:token-from-stdout /usr/bin/az (2 argument(s) not shown)"
        );
        assert_eq!(shown_provider(&words("cargo:token")), "cargo:token");
    }
}
