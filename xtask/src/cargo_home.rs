//! Where cargo keeps its per-user files (`$CARGO_HOME`), and which of them it reads.
//! Shared by every task that looks at the user's cargo config or credentials, so
//! no task has to import another task's module for it.

use anyhow::Context;
use camino::Utf8PathBuf;

/// `$CARGO_HOME`, or `~/.cargo` as cargo defaults it.
pub fn cargo_home() -> anyhow::Result<Utf8PathBuf> {
    if let Some(home) = std::env::var_os("CARGO_HOME").filter(|h| !h.is_empty()) {
        return Utf8PathBuf::from_path_buf(home.into())
            .map_err(|p| anyhow::anyhow!("CARGO_HOME {} is not UTF-8", p.display()));
    }
    #[allow(deprecated)] // Fixed on Windows since 1.85, below our minimum.
    let home = std::env::home_dir().context("cannot find your home directory: set CARGO_HOME")?;
    Utf8PathBuf::from_path_buf(home.join(".cargo"))
        .map_err(|p| anyhow::anyhow!("{} is not UTF-8", p.display()))
}

/// The global cargo config: the file cargo reads, and a file beside it that cargo
/// ignores, if there is one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GlobalConfig {
    /// The file cargo reads (and so the one to edit).
    pub path: Utf8PathBuf,
    /// `config.toml` when the legacy `config` exists too: cargo 1.95 then reads
    /// `config` only, and warns on every command ("both … exist. Using …/config").
    pub ignored: Option<Utf8PathBuf>,
}

impl GlobalConfig {
    /// What to tell the user about the ignored file, if there is one.
    pub fn ignored_warning(&self) -> Option<String> {
        let ignored = self.ignored.as_ref()?;
        Some(format!(
            "both {} and {ignored} exist; cargo reads only {} (and warns about it on every command), \
             so that is the file used here: move what you need from {ignored} into it and delete {ignored}",
            self.path, self.path
        ))
    }
}

/// The global config as cargo picks it: the legacy `config` whenever it exists
/// (measured on cargo 1.95, with `config.toml` beside it too), else `config.toml`.
pub fn global_config() -> anyhow::Result<GlobalConfig> {
    let home = cargo_home()?;
    let legacy = home.join("config");
    let current = home.join("config.toml");
    if !legacy.exists() {
        return Ok(GlobalConfig { path: current, ignored: None });
    }
    // Cargo does not warn when both names are one file (a link from one to the other).
    let same_file = match (std::fs::canonicalize(&legacy), std::fs::canonicalize(&current)) {
        (Ok(a), Ok(b)) => a == b,
        _ => false,
    };
    let ignored = (current.exists() && !same_file).then_some(current);
    Ok(GlobalConfig { path: legacy, ignored })
}

/// The credentials file cargo reads: a legacy `credentials` wins when it exists.
pub fn credentials_path() -> anyhow::Result<Utf8PathBuf> {
    let home = cargo_home()?;
    let legacy = home.join("credentials");
    Ok(if legacy.is_file() { legacy } else { home.join("credentials.toml") })
}
