//! TODO: being written.

use xshell::Shell;

/// Create a new PAT and store it in the repository's GitHub secret.
#[derive(clap::Args)]
pub struct RotatePat {}

impl RotatePat {
    pub fn run(self, _sh: &Shell) -> anyhow::Result<()> {
        anyhow::bail!("not written yet")
    }
}
