//! `cargo xtask doctor`: why can (or can't) cargo use the feeds? What cargo reads
//! explains the setup; the verdict is a real authenticated request through cargo.
//! Tokens are read only to redact them: a proxy may echo the `Authorization` header.

use anyhow::bail;
use camino::{Utf8Path, Utf8PathBuf};
use toml_edit::{DocumentMut, Item};

use crate::az::Az;
use crate::cargo::{FeedError, Need};
use crate::cargo_home::{credentials_path, global_config};
use crate::feeds::{self, Registry};
use crate::gh::Gh;
use crate::run::{RunError, RunErrorKind};
use crate::secret::{SecretEnv, token_forms};
use crate::{provider, toml_file};

/// Check, per feed, whether cargo can use it, and say why not.
///
/// Per feed: its global config entry, credential provider, token source and a real request's
/// verdict; also cargo's version and az's and gh's logins. Never prints a token.
#[derive(clap::Args)]
#[command(after_help = "Examples:\n  cargo xtask doctor\n  cargo xtask doctor --registry hyperlight_redist")]
pub struct Doctor {
    /// Check this feed only (repeatable); default: every feed in `.cargo/config.toml`.
    #[arg(long = "registry", value_name = "NAME")]
    pub registries: Vec<String>,
}

/// The files cargo merges (`None`: missing, or unreadable and said so).
struct Configs {
    global_path: Utf8PathBuf,
    global: Option<DocumentMut>,
    repo: Option<DocumentMut>,
    credentials_path: Utf8PathBuf,
    credentials: Option<DocumentMut>,
}

impl Doctor {
    pub fn run(self) -> anyhow::Result<()> {
        let feeds = feeds::select(&self.registries)?;
        println!("cargo: {}", crate::cargo::checked_version().unwrap_or_else(|why| why));
        let global = global_config()?;
        println!("global config: {}", global.path);
        if let Some(warning) = global.ignored_warning() {
            println!("global config: warning: {warning}");
        }
        let credentials_path = credentials_path()?;
        let configs = Configs {
            global: read_optional("global config", &global.path),
            repo: read_optional("repo config", &crate::project_root().join(feeds::CONFIG_PATH)),
            credentials: read_optional("credentials file", &credentials_path),
            global_path: global.path,
            credentials_path,
        };
        let show = |feed: &Registry, verdict: Option<&FeedError>| {
            let provider = configs.effective_provider(feed);
            println!("{}:\n  index:               {}", feed.name, feed.index);
            println!("  in global config:    {}", configs.in_global(feed));
            println!("  credential provider: {}", shown_providers(&provider));
            println!("  token from:          {}", configs.token_source(feed, provider));
            match verdict {
                None => println!("  access:              ok"),
                Some(err) => {
                    println!("  access:              {err}\n  fix:                 {}", err.hint(Need::Read))
                }
            }
        };
        let failed = crate::access::check_feeds(&feeds, &SecretEnv::hiding(configs.secrets(&feeds)), &show)?;
        let az = Az::find().map(|az| (az.path.clone(), az.account_show()));
        println!("az: {}", cli_status(az, "run `az login`", ""));
        let gh = Gh::find().map(|gh| (gh.path.clone(), gh.auth_status()));
        println!("gh: {}", cli_status(gh, "run `gh auth login`", "; needed by rotate-pat only"));
        if !failed.is_empty() {
            bail!("{} of {} feed(s) failed: {}", failed.len(), feeds.len(), failed.join(", "));
        }
        println!("doctor: every feed is ok");
        Ok(())
    }
}

impl Configs {
    fn in_global(&self, feed: &Registry) -> String {
        let index = self.global.as_ref().and_then(|doc| doc.get("registries")?.get(&feed.name)?.get("index"));
        match index.and_then(Item::as_str) {
            Some(index) if index == feed.index => format!("yes ({})", self.global_path),
            Some(other) => format!(
                "with another index ({other}) in {}: run `cargo xtask setup --force` to align it",
                self.global_path
            ),
            None => format!("no ({}): run `cargo xtask setup`", self.global_path),
        }
    }

    /// Every form of every token cargo could send and every hidden provider argument.
    fn secrets(&self, feeds: &[Registry]) -> Vec<String> {
        let is_token = |key: &str| {
            key == "CARGO_REGISTRY_TOKEN" || (key.starts_with("CARGO_REGISTRIES_") && key.ends_with("_TOKEN"))
        };
        // `vars` would panic on a value that is not UTF-8, printing it.
        let vars = std::env::vars_os().filter_map(|(key, value)| Some((key.into_string().ok()?, value)));
        let tokens = vars.filter(|(key, _)| is_token(key)).filter_map(|(_, value)| value.into_string().ok());
        let mut tokens: Vec<String> = tokens.collect();
        // Cargo reads a token from its config files too.
        for doc in [&self.credentials, &self.global, &self.repo].into_iter().flatten() {
            let registries = doc.get("registries").and_then(Item::as_table_like);
            let entries = registries.into_iter().flat_map(|r| r.iter().map(|(_, entry)| entry));
            let entries = entries.chain(doc.get("registry"));
            tokens.extend(entries.filter_map(|entry| entry.get("token")?.as_str().map(str::to_owned)));
        }
        let mut forms: Vec<String> = tokens.iter().flat_map(|token| token_forms(token)).collect();
        // Cargo names a provider that failed by its command line: its arguments too.
        for feed in feeds {
            for words in self.effective_provider(feed).map(|(entries, _)| entries).unwrap_or_default() {
                let shown = shown_provider(&words);
                forms
                    .extend(words.into_iter().filter(|w| !w.starts_with('-') && !shown.contains(w.as_str())));
            }
        }
        forms
    }

    /// The providers cargo will use for `feed`, each as its words, and where that is set.
    fn effective_provider(&self, feed: &Registry) -> Option<(Vec<Vec<String>>, String)> {
        let words = |text: &str| text.split_whitespace().map(str::to_owned).collect::<Vec<_>>();
        let var = feed.env_var("credential-provider");
        if let Some(value) = std::env::var(&var).ok().filter(|v| !v.is_empty()) {
            return Some((vec![words(&value)], var));
        }
        // Cargo reads the repo's config over the global one, but joins two lists, the
        // global one first (a string and a list do not load at all).
        let docs = [(&self.global, self.global_path.as_str()), (&self.repo, feeds::CONFIG_PATH)];
        let mut found: Vec<(&Item, &str)> = Vec::new();
        for (doc, place) in docs {
            let item =
                doc.as_ref().and_then(|d| d.get("registries")?.get(&feed.name)?.get("credential-provider"));
            found.extend(item.map(|item| (item, place)));
        }
        match found.as_slice() {
            [(global, at), (repo, _)] if global.is_array() && repo.is_array() => {
                let words = [provider::provider_words(global), provider::provider_words(repo)].concat();
                return Some((vec![words], format!("{at} and {}, joined", feeds::CONFIG_PATH)));
            }
            [.., (item, place)] => return Some((vec![provider::provider_words(item)], place.to_string())),
            [] => {}
        }
        // In the environment, cargo reads a list as words: each word is an entry.
        let var = "CARGO_REGISTRY_GLOBAL_CREDENTIAL_PROVIDERS";
        if let Ok(list) = std::env::var(var) {
            return Some((list.split_whitespace().map(|w| vec![w.to_owned()]).collect(), var.to_owned()));
        }
        let (mut entries, mut places) = (Vec::new(), Vec::new());
        for (doc, place) in docs {
            let list = doc.as_ref().and_then(|d| d.get("registry")?.get("global-credential-providers"));
            if let Some(list) = list.and_then(Item::as_array) {
                entries.extend(list.iter().filter_map(|v| v.as_str()).map(words));
                places.push(place);
            }
        }
        let place = format!("registry.global-credential-providers in {}", places.join(" and "));
        (!places.is_empty()).then_some((entries, place))
    }

    fn token_source(&self, feed: &Registry, provider: Option<(Vec<Vec<String>>, String)>) -> String {
        let words = provider.map(|(entries, _)| entries.concat()).unwrap_or_default();
        if words.first().map(String::as_str) == Some(provider::TOKEN_FROM_STDOUT) {
            let program = words.get(1).map(String::as_str).unwrap_or("(none given)");
            return format!("provider command {program} (asked on each use; nothing stored)");
        }
        let var = feed.env_var("token");
        let uses_token = words.is_empty() || words.iter().any(|w| w == "cargo:token");
        if uses_token && std::env::var_os(&var).is_some_and(|v| !v.is_empty()) {
            return format!("environment ({var})");
        }
        let files = [
            (&self.credentials, format!("credentials file ({})", self.credentials_path)),
            (&self.global, format!("global config ({})", self.global_path)),
            (&self.repo, format!("repo config ({})", feeds::CONFIG_PATH)),
        ];
        let stored = |doc: &Option<DocumentMut>| {
            doc.as_ref().and_then(|doc| doc.get("registries")?.get(&feed.name)?.get("token")).is_some()
        };
        if let Some((_, file)) = files.into_iter().find(|(doc, _)| uses_token && stored(doc)) {
            return file;
        }
        let keychains = ["cargo:libsecret", "cargo:wincred", "cargo:macos-keychain"];
        match words.iter().find(|w| keychains.contains(&w.as_str())) {
            Some(keychain) => format!("the OS keychain ({keychain}), if a token is stored there"),
            None => "none".into(),
        }
    }
}

fn shown_providers(provider: &Option<(Vec<Vec<String>>, String)>) -> String {
    match provider {
        Some((entries, place)) => {
            let shown: Vec<String> = entries.iter().map(|words| shown_provider(words)).collect();
            format!("{} ({place})", shown.join(" "))
        }
        None => "none: cargo refuses authenticated feeds without one; run `cargo xtask setup`".into(),
    }
}

/// A provider as it may be printed: cargo's and provider mode's in full, any other
/// command by its program alone, as its command line could carry a token.
fn shown_provider(words: &[String]) -> String {
    let Some(first) = words.first() else { return String::new() };
    let ours = first == provider::TOKEN_FROM_STDOUT
        && words.get(1).is_some_and(|az| words == provider::command(Utf8Path::new(az)).as_slice());
    if ours || words.iter().all(|w| w.starts_with("cargo:") && w != provider::TOKEN_FROM_STDOUT) {
        return words.join(" ");
    }
    crate::secret::shown_command(&words.iter().map(String::as_str).collect::<Vec<_>>())
}

/// A TOML file that may be missing; one that cannot be read is said and skipped.
fn read_optional(what: &str, path: &Utf8Path) -> Option<DocumentMut> {
    toml_file::read_if_exists(path).unwrap_or_else(|err| {
        println!("{what}: {err:#}");
        None
    })
}

/// A CLI's path and whether it is logged in (else `fix`), or why it was not found.
fn cli_status(found: anyhow::Result<(Utf8PathBuf, Result<(), RunError>)>, fix: &str, note: &str) -> String {
    match found {
        Ok((path, Ok(()))) => format!("{path} (logged in{note})"),
        Ok((path, Err(RunError { kind: RunErrorKind::Exit { .. }, .. }))) => {
            format!("{path} (not logged in: {fix}{note})")
        }
        Ok((path, Err(err))) => format!("{path} (cannot tell whether it is logged in: {err}{note})"),
        Err(err) => format!("{err:#}{note}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// As cargo 1.95 reads them (`cargo logout` names the provider it runs).
    #[test]
    fn the_repo_config_wins_and_lists_are_joined() {
        let configs = |global: &str, repo: &str| Configs {
            global_path: "home/config.toml".into(),
            global: Some(global.parse().unwrap()),
            repo: Some(repo.parse().unwrap()),
            credentials_path: "home/credentials.toml".into(),
            credentials: None,
        };
        let feed = Registry { name: "x".into(), index: "sparse+http://127.0.0.1/".into() };
        let provider =
            |global: &str, repo: &str| shown_providers(&configs(global, repo).effective_provider(&feed));
        let (global, repo) = ("[registries.x]\ncredential-provider", "[registries.x]\ncredential-provider");
        assert_eq!(
            provider(&format!("{global} = \"cargo:libsecret\""), &format!("{repo} = \"cargo:token\"")),
            "cargo:token (.cargo/config.toml)"
        );
        assert_eq!(
            provider(&format!("{global} = [\"cargo:libsecret\"]"), &format!("{repo} = [\"cargo:token\"]")),
            "cargo:libsecret cargo:token (home/config.toml and .cargo/config.toml, joined)"
        );
        assert_eq!(
            provider(&format!("{global} = \"cargo:libsecret\""), ""),
            "cargo:libsecret (home/config.toml)"
        );
        let list = "[registry]\nglobal-credential-providers";
        assert_eq!(
            provider(&format!("{list} = [\"cargo:token\"]"), &format!("{list} = [\"cargo:libsecret\"]")),
            "cargo:token cargo:libsecret (registry.global-credential-providers in home/config.toml and \
             .cargo/config.toml)"
        );
    }

    /// Cargo takes `registries.NAME.token` from a config file as well.
    #[test]
    fn a_token_in_a_config_file_is_its_source_and_redacted() {
        let configs = Configs {
            global_path: "home/config.toml".into(),
            global: Some("[registries.x]\ntoken = \"s3cr3t-token-value\"\n".parse().unwrap()),
            repo: None,
            credentials_path: "home/credentials.toml".into(),
            credentials: None,
        };
        let feed = Registry { name: "x".into(), index: "sparse+http://127.0.0.1/".into() };
        assert_eq!(configs.token_source(&feed, None), "global config (home/config.toml)");
        assert!(configs.secrets(std::slice::from_ref(&feed)).contains(&"s3cr3t-token-value".to_owned()));
    }

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
        // Commands that look like provider mode's are someone else's.
        assert_eq!(
            shown_provider(&words("cargo:token-from-stdout /usr/bin/az get-access-token s3cr3t")),
            "cargo:token-from-stdout /usr/bin/az (2 argument(s) not shown)"
        );
        assert_eq!(shown_provider(&words("cargo:token")), "cargo:token");
    }
}
