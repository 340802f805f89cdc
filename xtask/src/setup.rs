//! `cargo xtask setup`: the work is [`crate::global_config`], which logins run too.

use crate::{feeds, global_config};

/// Make your global cargo config ready for the feeds (one time per machine).
///
/// Defines every feed of the repo's `.cargo/config.toml` in `$CARGO_HOME/config.toml`
/// (for crates outside this repo too) and a credential provider, without which cargo
/// refuses authenticated feeds. Comments and layout are kept; a second run writes nothing.
#[derive(clap::Args)]
#[command(
    after_help = "Examples:\n  cargo xtask setup\n  cargo xtask setup --check\n  cargo xtask setup --keychain"
)]
pub struct Setup {
    /// Write nothing: list what would change, and exit non-zero if anything would.
    #[arg(long)]
    pub check: bool,
    /// Also use the OS keychain for tokens, as Azure recommends: libsecret on Linux,
    /// wincred on Windows, macos-keychain on macOS.
    #[arg(long)]
    pub keychain: bool,
    /// Replace the index of a feed your config already defines differently (by
    /// default such a feed is left alone with a warning).
    #[arg(long)]
    pub force: bool,
}

impl Setup {
    pub fn run(self) -> anyhow::Result<()> {
        let feeds = feeds::all()?;
        global_config::Options { check: self.check, keychain: self.keychain, force: self.force }
            .ensure(&feeds)
    }
}
