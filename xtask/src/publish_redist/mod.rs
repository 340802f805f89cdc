//! TODO: being written.

use xshell::Shell;

/// Republish the pinned rust-vmm mshv crates to the redist feed.
#[derive(clap::Args)]
pub struct PublishRedist {}

impl PublishRedist {
    pub fn run(self, _sh: &Shell) -> anyhow::Result<()> {
        anyhow::bail!("not written yet")
    }
}
