//! The feeds the tasks act on: `[registries]` of the repo's `.cargo/config.toml`,
//! with cargo's own `CARGO_REGISTRIES_<NAME>_INDEX` first, as cargo resolves them.

use anyhow::{Context, ensure};

use crate::toml_file;

/// The repo's cargo config, relative to the repo root.
pub const CONFIG_PATH: &str = ".cargo/config.toml";

/// The public registry's name, as cargo takes it in `--registry`.
pub const CRATES_IO: &str = "crates-io";

/// One cargo registry (an Azure Artifacts feed, or in tests a local kellnr).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Registry {
    pub name: String,
    /// The index URL cargo uses, `sparse+https://…/` for Azure.
    pub index: String,
}

impl Registry {
    /// Cargo's environment variable for this registry's `key` (`index`, `token`, …).
    pub fn env_var(&self, key: &str) -> String {
        format!("CARGO_REGISTRIES_{}_{key}", self.name).to_uppercase().replace(['-', '.'], "_")
    }

    pub fn crates_io() -> Registry {
        Registry { name: CRATES_IO.into(), index: "sparse+https://index.crates.io/".into() }
    }

    /// The public registry, whose index cargo knows and takes from no `CARGO_REGISTRIES_*`.
    pub fn is_crates_io(&self) -> bool {
        self.name == CRATES_IO
    }

    /// The Azure DevOps organisation of `https://pkgs.dev.azure.com/ORG/…` or of the
    /// older `https://ORG.pkgs.visualstudio.com/…`.
    pub fn azure_organization(&self) -> Option<&str> {
        let (host, path) = self.index.split_once("://")?.1.split_once('/')?;
        match host.eq_ignore_ascii_case("pkgs.dev.azure.com") {
            true => path.split('/').next().filter(|org| !org.is_empty()),
            false => host.strip_suffix(".pkgs.visualstudio.com"),
        }
    }
}

/// All feeds of the repo's config, in the order written there.
pub fn all() -> anyhow::Result<Vec<Registry>> {
    let path = crate::tool::project_root().join(CONFIG_PATH);
    let doc = toml_file::read(&path)?;
    let none =
        format!("{path} lists no feeds under [registries]: add the feeds as docs/adding-the-xtask.md shows");
    let table = doc.get("registries").and_then(|r| r.as_table_like()).context(none.clone())?;
    let mut feeds = Vec::new();
    // `[registries.crates-io]` holds cargo's `protocol` for crates.io, no feed.
    for (name, entry) in table.iter().filter(|(name, _)| *name != CRATES_IO) {
        // Cargo refuses other names, but only on use: the tasks write them first (`$GITHUB_ENV`).
        // Beyond ASCII its rule is Unicode's XID, which std lacks: only spaces are refused.
        let ok =
            |c: char| c.is_ascii_alphanumeric() || "-_".contains(c) || !(c.is_ascii() || c.is_whitespace());
        ensure!(
            name.starts_with(|c: char| !c.is_ascii_digit() && c != '-') && name.chars().all(ok),
            "registries.{name:?} in {CONFIG_PATH}: cargo takes only letters, digits, `-` and `_` in a registry \
             name, not a digit or `-` first: rename it"
        );
        let mut feed = Registry { name: name.to_owned(), index: String::new() };
        let var = feed.env_var("index");
        let from_env = std::env::var(&var).ok();
        ensure!(
            from_env.as_deref() != Some(""),
            "{var} is set but empty, which cargo takes as the index of {name} and fails on: unset it"
        );
        let index = from_env.or_else(|| entry.get("index")?.as_str().map(str::to_owned));
        feed.index = index.context(format!("registries.{name} in {CONFIG_PATH} has no `index` string"))?;
        feeds.push(feed);
    }
    ensure!(!feeds.is_empty(), none);
    Ok(feeds)
}

/// The feeds named, or all when none is; an unknown name is an error listing the known.
pub fn select(names: &[String]) -> anyhow::Result<Vec<Registry>> {
    let all = all()?;
    if names.is_empty() {
        return Ok(all);
    }
    let known: Vec<&str> = all.iter().map(|r| r.name.as_str()).collect();
    let find = |name: &String| all.iter().find(|r| &r.name == name).cloned();
    let unknown =
        |name: &String| format!("unknown feed `{name}`: the feeds in {CONFIG_PATH} are {}", known.join(", "));
    names.iter().map(|name| find(name).with_context(|| unknown(name))).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn env_var_names_follow_cargo() {
        let env_var = |name: &str, key| Registry { name: name.into(), index: String::new() }.env_var(key);
        assert_eq!(env_var("hyperlight_redist", "index"), "CARGO_REGISTRIES_HYPERLIGHT_REDIST_INDEX");
        assert_eq!(
            env_var("my-feed.x", "credential-provider"),
            "CARGO_REGISTRIES_MY_FEED_X_CREDENTIAL_PROVIDER"
        );
    }

    #[test]
    fn organization_comes_from_the_index_url() {
        let feed = |index: &str| Registry { name: "f".into(), index: index.into() };
        let azure = feed(
            "sparse+https://pkgs.dev.azure.com/AzureContainerUpstream/hyperlight/_packaging/hyperlight_redist/Cargo/index/",
        );
        assert_eq!(azure.azure_organization(), Some("AzureContainerUpstream"));
        assert_eq!(
            feed("sparse+https://contoso.pkgs.visualstudio.com/p/_packaging/f/Cargo/index/")
                .azure_organization(),
            Some("contoso")
        );
        assert_eq!(feed("sparse+http://127.0.0.1:1234/api/v1/crates/").azure_organization(), None);
    }
}
