//! External programs by the full path `which` finds: on Windows a bare name finds only `.exe`s, not `az.cmd`.

use anyhow::Context;
use camino::Utf8PathBuf;

/// A program the tasks need, with what to tell a user who lacks it.
pub struct Tool {
    pub name: &'static str,
    pub install: &'static str,
}

pub const AZ: Tool = Tool {
    name: "az",
    install: "install the Azure CLI: https://learn.microsoft.com/cli/azure/install-azure-cli",
};

pub const GH: Tool = Tool { name: "gh", install: "install the GitHub CLI: https://cli.github.com" };

/// On Linux, macOS and Windows 10 and newer.
pub const TAR: Tool = Tool { name: "tar", install: "install tar" };

pub const GIT: Tool = Tool { name: "git", install: "install git: https://git-scm.com/downloads" };

impl Tool {
    /// The full path of the program, or an error saying how to install it.
    pub fn find(&self) -> anyhow::Result<Utf8PathBuf> {
        let path = which::which(self.name)
            .map_err(|_| anyhow::anyhow!("`{}` was not found on PATH: {}", self.name, self.install))?;
        Utf8PathBuf::try_from(path).with_context(|| format!("the path of `{}` is not UTF-8", self.name))
    }
}

/// The cargo running this xtask (`CARGO`, set by `cargo run`): nested calls use its toolchain. Else `cargo`.
pub fn cargo() -> String {
    std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_owned())
}
