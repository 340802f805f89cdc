//! External programs by the full path `which` finds (on Windows a bare name finds only `.exe`s,
//! not `az.cmd`), and where the xtask was started and lives.

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

/// The directory the user started the task from, for paths given relative to it: where
/// `cargo xtask` started, or where `just` did (a recipe runs it at the root and says so).
pub fn invocation_dir() -> anyhow::Result<Utf8PathBuf> {
    let from_just = std::env::var_os("XTASK_INVOCATION_DIR").filter(|d| !d.is_empty());
    let dir = from_just.map_or_else(std::env::current_dir, |d| Ok(d.into()));
    let dir = dir.context("cannot read the current directory")?;
    Utf8PathBuf::try_from(dir).context("the current directory is not UTF-8")
}

/// The first `max` of `items` joined by `sep`, then how many more there are.
pub fn first(items: &[String], max: usize, sep: &str) -> String {
    let shown = items[..items.len().min(max)].join(sep);
    match items.len().saturating_sub(max) {
        0 => shown,
        more => format!("{shown}{sep}and {more} more"),
    }
}

/// The parent of the xtask's directory as `cargo run` names it now: the path compiled in
/// is stale once the repository moved (cargo does not rebuild for a move).
pub fn project_root() -> Utf8PathBuf {
    let ours = std::env::var("CARGO_PKG_NAME").is_ok_and(|name| name == "xtask");
    let now = std::env::var("CARGO_MANIFEST_DIR").ok().filter(|_| ours);
    let dir = Utf8PathBuf::from(now.unwrap_or_else(|| env!("CARGO_MANIFEST_DIR").into()));
    dir.parent().expect("xtask/ has a parent").to_owned()
}

#[cfg(test)]
mod tests {
    #[test]
    fn first_counts_only_what_it_leaves_out() {
        let items = |n: usize| (1..=n).map(|i| i.to_string()).collect::<Vec<_>>();
        assert_eq!(super::first(&items(2), 2, ", "), "1, 2");
        assert_eq!(super::first(&items(3), 2, ", "), "1, 2, and 1 more");
        assert_eq!(super::first(&[], 2, ", "), "");
    }
}
