//! `cargo xtask doctor`: what cargo reads explains the setup; a real request through cargo
//! gives the verdict. Tokens are read only to redact them: a proxy may echo the header.

use anyhow::bail;
use camino::{Utf8Path, Utf8PathBuf};
use toml_edit::{DocumentMut, Item};

use crate::az::Az;
use crate::cargo::{FeedError, Need};
use crate::cargo_home::{credentials_path, global_config};
use crate::feeds::{self, Registry};
use crate::gh::Gh;
use crate::run::{RunError, RunErrorKind};
use crate::secret::SecretEnv;
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
    /// The repo's config and any cargo reads above it, outermost first, and where each is.
    dirs: Vec<(Option<DocumentMut>, String)>,
    credentials_path: Utf8PathBuf,
    credentials: Option<DocumentMut>,
}

impl Doctor {
    pub fn run(self) -> anyhow::Result<()> {
        let feeds = feeds::select(&self.registries)?;
        let cargo = crate::cargo::version().map(|(major, minor)| format!("{major}.{minor}"));
        println!("cargo: {}", cargo.unwrap_or_else(|err| format!("{err:#}")));
        let global = global_config()?;
        println!("global config: {}", global.path);
        if let Some(warning) = &global.ignored_warning {
            println!("global config: warning: {warning}");
        }
        let credentials_path = credentials_path()?;
        let configs = Configs {
            global: read_optional("global config", &global.path),
            dirs: dir_configs(&crate::tool::project_root(), &crate::cargo_home::cargo_home()?),
            credentials: read_optional("credentials file", &credentials_path),
            global_path: global.path,
            credentials_path,
        };
        // Unreadable (said above): what it sets is unknown, and setup refuses it too.
        let unread = (configs.global.is_none() && configs.global_path.is_file())
            .then(|| format!("unknown: {} cannot be read (above)", configs.global_path));
        let show = |feed: &Registry, verdict: Option<&FeedError>| {
            let provider = configs.effective_provider(feed);
            println!("{}:\n  index:               {}", feed.name, feed.index);
            println!("  in global config:    {}", unread.clone().unwrap_or_else(|| configs.in_global(feed)));
            let shown =
                unread.clone().filter(|_| provider.is_none()).unwrap_or_else(|| shown_providers(&provider));
            println!("  credential provider: {shown}");
            println!("  token from:          {}", configs.token_source(feed, provider));
            let fix = verdict.map(|err| format!("{err}\n  fix:                 {}", err.hint(Need::Read)));
            println!("  access:              {}", fix.as_deref().unwrap_or("ok"));
        };
        let failed = crate::access::check_feeds(&feeds, &SecretEnv::hiding(configs.secrets(&feeds)), &show)?;
        let az = Az::find().map(|az| (az.path.clone(), az.account_show()));
        println!("az: {}", cli_status(az, "run `az login`", "; needed by cargo-login and rotate-pat only"));
        let gh = Gh::find().map(|gh| (gh.path.clone(), gh.auth_status()));
        println!("gh: {}", cli_status(gh, &crate::gh::login_fix(), "; needed by rotate-pat only"));
        if !failed.is_empty() {
            bail!("{} of {} feed(s) failed: {}", failed.len(), feeds.len(), failed.join(", "));
        }
        println!("doctor: every feed is ok");
        Ok(())
    }
}

impl Configs {
    /// The config files, in the order cargo merges them: the global one, then the dirs'.
    fn layers(&self) -> Vec<(&Option<DocumentMut>, &str)> {
        let dirs = self.dirs.iter().map(|(doc, place)| (doc, place.as_str()));
        [(&self.global, self.global_path.as_str())].into_iter().chain(dirs).collect()
    }

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
        // Cargo reads a token from its config files too.
        let docs = self.layers().into_iter().chain([(&self.credentials, "")]);
        let docs: Vec<&DocumentMut> = docs.filter_map(|(doc, _)| doc.as_ref()).collect();
        let mut forms = crate::cargo_home::token_forms(&docs);
        // Cargo names a provider that failed by its command line: its arguments too.
        let providers = feeds.iter().filter_map(|feed| self.effective_provider(feed));
        for words in providers.flat_map(|(entries, _)| entries) {
            let shown = shown_provider(&words);
            forms.extend(words.into_iter().filter(|w| !w.starts_with('-') && !shown.contains(w.as_str())));
        }
        forms
    }

    /// The providers cargo will use for `feed`, each as its words, and where that is set.
    fn effective_provider(&self, feed: &Registry) -> Option<(Vec<Vec<String>>, String)> {
        let (entries, place) = self.configured_provider(feed)?;
        Some((entries.into_iter().map(|words| self.unalias(words)).collect(), place))
    }

    /// A provider of one word that `[credential-alias]` names is that command.
    fn unalias(&self, words: Vec<String>) -> Vec<String> {
        let [name] = words.as_slice() else { return words };
        let var = format!("CARGO_CREDENTIAL_ALIAS_{}", name.to_uppercase().replace('-', "_"));
        if let Ok(command) = std::env::var(var) {
            return command.split_whitespace().map(str::to_owned).collect();
        }
        let alias = |doc: &Option<DocumentMut>| doc.as_ref()?.get("credential-alias")?.get(name).cloned();
        let found = self.layers().into_iter().rev().find_map(|(doc, _)| alias(doc));
        found.map_or(words, |item| provider::provider_words(&item))
    }

    fn configured_provider(&self, feed: &Registry) -> Option<(Vec<Vec<String>>, String)> {
        let words = |text: &str| text.split_whitespace().map(str::to_owned).collect::<Vec<_>>();
        let var = feed.env_var("credential-provider");
        // Cargo 1.95 refuses the feed when it is set but empty ("invalid length 0").
        if let Ok(value) = std::env::var(&var) {
            let words = words(&value);
            let empty = format!("{var} is set but empty: cargo refuses the feed; unset it");
            return Some(if words.is_empty() { (Vec::new(), empty) } else { (vec![words], var) });
        }
        // Cargo reads the repo's config over those above it and the global one, but joins
        // lists, the global one first (a string and a list do not load at all).
        let docs = self.layers();
        let found: Vec<(&Item, &str)> = (docs.iter())
            .filter_map(|&(doc, place)| Some((provider::current_provider(doc.as_ref()?, &feed.name)?, place)))
            .collect();
        match found.as_slice() {
            [_, _, ..] if found.iter().all(|(item, _)| item.is_array()) => {
                let words = found.iter().flat_map(|(item, _)| provider::provider_words(item)).collect();
                let places: Vec<&str> = found.iter().map(|&(_, place)| place).collect();
                return Some((vec![words], format!("{}, joined", places.join(" and "))));
            }
            [.., (item, place)] => return Some((vec![provider::provider_words(item)], place.to_string())),
            [] => {}
        }
        let (mut entries, mut places) = (Vec::new(), Vec::new());
        for (doc, place) in docs {
            let list = doc.as_ref().and_then(|d| d.get("registry")?.get("global-credential-providers"));
            if let Some(list) = list.and_then(Item::as_array) {
                entries.extend(list.iter().filter_map(|v| v.as_str()).map(words));
                places.push(place);
            }
        }
        let mut place = format!("registry.global-credential-providers in {}", places.join(" and "));
        // The environment's list comes last (each word an entry), not instead of the files'.
        let var = "CARGO_REGISTRY_GLOBAL_CREDENTIAL_PROVIDERS";
        if let Ok(list) = std::env::var(var) {
            entries.extend(list.split_whitespace().map(|w| vec![w.to_owned()]));
            place = if places.is_empty() { var.to_owned() } else { format!("{place}, then {var}") };
            places.push(var);
        }
        (!places.is_empty()).then_some((entries, place))
    }

    /// Where cargo takes the token from: it asks the last provider first, and the one
    /// before when that has none (a command always answers).
    fn token_source(&self, feed: &Registry, provider: Option<(Vec<Vec<String>>, String)>) -> String {
        // None configured (cargo refuses the feed then): what `cargo:token` would find.
        let entries = provider.map(|(e, _)| e).filter(|e| !e.is_empty()).unwrap_or_else(|| vec![Vec::new()]);
        let mut said = Vec::new();
        for words in entries.iter().rev() {
            match words.first().map(String::as_str) {
                None | Some("cargo:token") => match self.stored_token(feed) {
                    Some(source) => return [said, vec![source]].concat().join(", else "),
                    None => continue,
                },
                Some(keychain @ ("cargo:libsecret" | "cargo:wincred" | "cargo:macos-keychain")) => {
                    said.push(format!("the OS keychain ({keychain}), if a token is stored there"));
                }
                Some(first) => {
                    // `cargo:token-from-stdout` takes the program as its first argument.
                    let at = usize::from(first == provider::TOKEN_FROM_STDOUT);
                    let program = words.get(at).map_or("(none given)", String::as_str);
                    said.push(format!("provider command {program} (asked on each use; nothing stored)"));
                    break;
                }
            }
        }
        if said.is_empty() { "none".into() } else { said.join(", else ") }
    }

    /// Where `cargo:token` finds a token for `feed`, if anywhere.
    fn stored_token(&self, feed: &Registry) -> Option<String> {
        // Even empty: cargo then sends no token, whatever is stored.
        let var = feed.env_var("token");
        if let Some(value) = std::env::var_os(&var) {
            let empty = if value.is_empty() { ", empty: cargo sends no token" } else { "" };
            return Some(format!("environment ({var}{empty})"));
        }
        // Cargo lets the credentials file win, then the deepest config.
        let dirs = self.dirs.iter().rev().map(|(doc, place)| {
            (doc, format!("{} ({place})", if place == feeds::CONFIG_PATH { "repo config" } else { "config" }))
        });
        let credentials = (&self.credentials, format!("credentials file ({})", self.credentials_path));
        let global = (&self.global, format!("global config ({})", self.global_path));
        let files = [credentials].into_iter().chain(dirs).chain([global]);
        let stored = |doc: &Option<DocumentMut>| {
            doc.as_ref().and_then(|doc| doc.get("registries")?.get(&feed.name)?.get("token")).is_some()
        };
        files.into_iter().find(|(doc, _)| stored(doc)).map(|(_, file)| file)
    }
}

fn shown_providers(provider: &Option<(Vec<Vec<String>>, String)>) -> String {
    match provider {
        Some((entries, place)) if entries.is_empty() => format!("none ({place})"),
        Some((entries, place)) => {
            let shown: Vec<String> = entries.iter().map(|words| shown_provider(words)).collect();
            format!("{} ({place})", shown.join(" "))
        }
        None => "none: cargo refuses authenticated feeds without one; run `cargo xtask setup`".into(),
    }
}

/// A provider as printable: cargo's and provider mode's whole, others by their program (args may be tokens).
fn shown_provider(words: &[String]) -> String {
    let Some(first) = words.first() else { return String::new() };
    let ours = first == provider::TOKEN_FROM_STDOUT
        && words.get(1).is_some_and(|az| words == provider::command(Utf8Path::new(az)).as_slice());
    if ours || words.iter().all(|w| w.starts_with("cargo:") && w != provider::TOKEN_FROM_STDOUT) {
        return words.join(" ");
    }
    crate::secret::shown_command(&words.iter().map(String::as_str).collect::<Vec<_>>())
}

/// The repo's config and each `.cargo/config[.toml]` cargo reads above it (not `home`'s), outermost first.
fn dir_configs(root: &Utf8Path, home: &Utf8Path) -> Vec<(Option<DocumentMut>, String)> {
    let above = root.parent().map(|dir| crate::cargo_home::dir_configs(dir, home)).unwrap_or_default();
    let mut dirs: Vec<_> = (above.into_iter().rev())
        .map(|path| {
            println!("config above the repo: {path} (cargo reads it too)");
            (read_optional("config above the repo", &path), path.to_string())
        })
        .collect();
    dirs.push((read_optional("repo config", &root.join(feeds::CONFIG_PATH)), feeds::CONFIG_PATH.into()));
    dirs
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
            dirs: vec![(Some(repo.parse().unwrap()), feeds::CONFIG_PATH.into())],
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

    /// A provider of one word named in `[credential-alias]` is that command to cargo 1.95
    /// (with arguments it is a program of that name).
    #[test]
    fn a_credential_alias_is_the_command_it_names() {
        let global = "[registries.x]\ncredential-provider = \"vault\"\n[registries.y]\ncredential-provider = \"vault x\"\n\
                      [credential-alias]\nvault = [\"cargo:token-from-stdout\", \"/bin/echo\", \"Bearer s3cr3t\"]\n";
        let configs = Configs {
            global_path: "home/config.toml".into(),
            global: Some(global.parse().unwrap()),
            dirs: Vec::new(),
            credentials_path: "home/credentials.toml".into(),
            credentials: None,
        };
        let feed = |name: &str| Registry { name: name.into(), index: "sparse+http://127.0.0.1/".into() };
        let provider = configs.effective_provider(&feed("x"));
        assert_eq!(
            shown_providers(&provider),
            "cargo:token-from-stdout /bin/echo (1 argument(s) not shown) (home/config.toml)"
        );
        assert!(configs.token_source(&feed("x"), provider).starts_with("provider command /bin/echo"));
        assert!(configs.secrets(&[feed("x")]).contains(&"Bearer s3cr3t".to_owned()));
        assert_eq!(
            shown_providers(&configs.effective_provider(&feed("y"))),
            "vault (1 argument(s) not shown) (home/config.toml)"
        );
    }

    /// Cargo 1.95 asks the last provider of the list first, the one before when it has
    /// no token: measured with a stored token and a command that prints another.
    #[test]
    fn the_token_comes_from_the_last_provider_that_has_one() {
        let source = |list: &str| {
            let configs = Configs {
                global_path: "home/config.toml".into(),
                global: Some(format!("[registry]\nglobal-credential-providers = {list}\n").parse().unwrap()),
                dirs: Vec::new(),
                credentials_path: "home/credentials.toml".into(),
                credentials: Some("[registries.x]\ntoken = \"Bearer stored\"\n".parse().unwrap()),
            };
            let feed = Registry { name: "x".into(), index: "sparse+http://127.0.0.1/".into() };
            configs.token_source(&feed, configs.effective_provider(&feed))
        };
        let command = "provider command /bin/echo (asked on each use; nothing stored)";
        assert_eq!(source("[\"cargo:token\", \"cargo:token-from-stdout /bin/echo Bearer cmd\"]"), command);
        let stored = "credentials file (home/credentials.toml)";
        assert_eq!(source("[\"cargo:token-from-stdout /bin/echo Bearer cmd\", \"cargo:token\"]"), stored);
        assert_eq!(
            source("[\"cargo:token\", \"cargo:libsecret\"]"),
            format!("the OS keychain (cargo:libsecret), if a token is stored there, else {stored}")
        );
    }

    /// Cargo 1.95 reads every `.cargo/config[.toml]` above the repo too, a deeper one
    /// over the global config: measured with a provider in each.
    #[test]
    fn a_config_above_the_repo_is_read_as_cargo_reads_it() {
        let dir = crate::workdir::WorkDir::create("test-doctor-above", false).unwrap();
        let (home, top, repo) =
            (dir.path().join(".cargo"), dir.path().join("a"), dir.path().join("a/b/repo"));
        for path in [&home, &top.join(".cargo"), &repo.join(".cargo")] {
            std::fs::create_dir_all(path).unwrap();
        }
        std::fs::write(home.join("config.toml"), "").unwrap();
        let above =
            "[registries.x]\ncredential-provider = \"cargo:token-from-stdout /bin/echo Bearer s3cr3t\"\n";
        std::fs::write(top.join(".cargo/config"), above).unwrap();
        std::fs::write(top.join(".cargo/config.toml"), "ignored = true\n").unwrap();
        let dirs = dir_configs(&repo, &home);
        let places: Vec<&str> = dirs.iter().map(|(_, place)| place.as_str()).collect();
        assert_eq!(places, [top.join(".cargo/config").as_str(), feeds::CONFIG_PATH]);
        let configs = Configs {
            global_path: "home/config.toml".into(),
            global: Some("[registries.x]\ncredential-provider = \"cargo:token\"\n".parse().unwrap()),
            dirs,
            credentials_path: "home/credentials.toml".into(),
            credentials: None,
        };
        let feed = Registry { name: "x".into(), index: "sparse+http://127.0.0.1/".into() };
        assert_eq!(
            shown_providers(&configs.effective_provider(&feed)),
            format!(
                "cargo:token-from-stdout /bin/echo (2 argument(s) not shown) ({})",
                top.join(".cargo/config")
            )
        );
        assert!(configs.secrets(&[feed]).contains(&"s3cr3t".to_owned()));
    }

    /// Cargo takes `registries.NAME.token` from a config file as well.
    #[test]
    fn a_token_in_a_config_file_is_its_source_and_redacted() {
        let configs = Configs {
            global_path: "home/config.toml".into(),
            global: Some("[registries.x]\ntoken = \"s3cr3t-token-value\"\n".parse().unwrap()),
            dirs: Vec::new(),
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
