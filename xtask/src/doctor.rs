//! TODO: being written.

use xshell::Shell;

/// Report, per feed, whether cargo can use it.
#[derive(clap::Args)]
pub struct Doctor {}

impl Doctor {
    pub fn run(self, _sh: &Shell) -> anyhow::Result<()> {
        anyhow::bail!("not written yet")
    }
}
