//! Where cargo keeps its per-user files (`$CARGO_HOME`), and which of them it reads.

use anyhow::Context;
use camino::{Utf8Path, Utf8PathBuf};
use toml_edit::{DocumentMut, Item};

pub fn cargo_home() -> anyhow::Result<Utf8PathBuf> {
    #[allow(deprecated)] // Fixed on Windows since 1.85, below our minimum.
    let home = match std::env::var_os("CARGO_HOME").filter(|h| !h.is_empty()) {
        Some(home) => home.into(),
        None => {
            std::env::home_dir().context("cannot find your home directory: set CARGO_HOME")?.join(".cargo")
        }
    };
    Utf8PathBuf::from_path_buf(home).map_err(|p| anyhow::anyhow!("{} (CARGO_HOME) is not UTF-8", p.display()))
}

/// The global cargo config cargo reads, and a warning when a file beside it is ignored.
pub struct GlobalConfig {
    pub path: Utf8PathBuf,
    pub ignored_warning: Option<String>,
}

/// As cargo 1.95 picks it: the legacy `config` whenever it exists (and cargo then warns on every
/// command when `config.toml` exists too), else `config.toml`.
pub fn global_config() -> anyhow::Result<GlobalConfig> {
    let home = cargo_home()?;
    let (path, ignored) = (home.join("config"), home.join("config.toml"));
    if !path.exists() {
        return Ok(GlobalConfig { path: ignored, ignored_warning: None });
    }
    // Cargo does not warn when both names are one file (a link from one to the other).
    let same_file =
        std::fs::canonicalize(&path).ok().is_some_and(|a| std::fs::canonicalize(&ignored).ok() == Some(a));
    let ignored_warning = (ignored.exists() && !same_file).then(|| {
        format!(
            "both {path} and {ignored} exist; cargo reads only {path} (and warns about it on every command), \
             so that is the file used here: move what you need from {ignored} into it and delete {ignored}"
        )
    });
    Ok(GlobalConfig { path, ignored_warning })
}

/// The credentials file cargo reads: a legacy `credentials` wins when it exists.
pub fn credentials_path() -> anyhow::Result<Utf8PathBuf> {
    let home = cargo_home()?;
    let legacy = home.join("credentials");
    Ok(if legacy.is_file() { legacy } else { home.join("credentials.toml") })
}

/// Each `.cargo/config[.toml]` cargo reads in `dir` and above it, but `home`'s (the
/// global one); innermost first, the legacy name winning as in `$CARGO_HOME`.
pub fn dir_configs(dir: &Utf8Path, home: &Utf8Path) -> Vec<Utf8PathBuf> {
    let home = home.canonicalize().ok();
    (dir.ancestors().map(|dir| dir.join(".cargo")))
        .filter(|dot| home.is_none() || dot.canonicalize().ok() != home)
        .filter_map(|dot| [dot.join("config"), dot.join("config.toml")].into_iter().find(|p| p.is_file()))
        .collect()
}

/// Every form of every token cargo may send: `CARGO_REGISTRY_TOKEN`, each
/// `CARGO_REGISTRIES_<NAME>_TOKEN`, and each feed's or crates.io's `token` in `docs`.
pub fn token_forms(docs: &[&DocumentMut]) -> Vec<String> {
    let is_token = |key: &str| {
        key == "CARGO_REGISTRY_TOKEN" || (key.starts_with("CARGO_REGISTRIES_") && key.ends_with("_TOKEN"))
    };
    // `vars` would panic on a value that is not UTF-8, printing it.
    let vars = std::env::vars_os().filter_map(|(k, v)| Some((k.into_string().ok()?, v.into_string().ok()?)));
    let mut tokens: Vec<String> = vars.filter(|(key, _)| is_token(key)).map(|(_, value)| value).collect();
    for doc in docs {
        let registries = doc.get("registries").and_then(Item::as_table_like);
        let entries = registries.into_iter().flat_map(|r| r.iter().map(|(_, entry)| entry));
        let entries = entries.chain(doc.get("registry"));
        tokens.extend(entries.filter_map(|entry| entry.get("token")?.as_str().map(str::to_owned)));
    }
    tokens.iter().map(|token| crate::secret::token_forms(token)).collect::<Vec<_>>().concat()
}
