//! Token-free login, "provider mode" (`cargo xtask cargo-login --provider`): each feed's
//! `credential-provider` in the global cargo config becomes `cargo:token-from-stdout`
//! running the Azure CLI, so cargo asks az for a fresh `Bearer` token whenever it
//! needs one. Nothing is stored, and the hourly re-login is gone for as long as
//! `az login` lasts. `cargo xtask cargo-logout` turns it off again.

use anyhow::Context;
use camino::Utf8Path;
use toml_edit::{Array, DocumentMut, Item, Value};
use xshell::Shell;

use crate::az::{AZURE_DEVOPS_RESOURCE, Az};
use crate::cargo;
use crate::feeds::Registry;
use crate::gha;
use crate::setup::global_config_path;
use crate::toml_file::{self, Edit};

/// The built-in cargo provider that runs a command and takes its stdout (the last
/// newline trimmed) as the token, on every use.
pub const TOKEN_FROM_STDOUT: &str = "cargo:token-from-stdout";

/// The JMESPath query that makes az print exactly the header cargo must send: cargo
/// sends the token verbatim, and Azure DevOps wants the `Bearer ` scheme in it.
pub const BEARER_QUERY: &str = "join(' ', ['Bearer', accessToken])";

/// The `credential-provider` value of provider mode. An array, not a string: cargo
/// splits a string at spaces, which would break a path such as
/// `C:\Program Files\...\az.cmd`. The full path `which` found is used because a bare
/// `az` only ever finds `az.exe` on Windows, where az is `az.cmd`; Rust (and so
/// cargo) runs a `.cmd` through `cmd.exe` with its arguments escaped for it.
pub fn command(az: &Utf8Path) -> Vec<String> {
    [
        TOKEN_FROM_STDOUT,
        az.as_str(),
        "account",
        "get-access-token",
        "--resource",
        AZURE_DEVOPS_RESOURCE,
        "--query",
        BEARER_QUERY,
        "--output",
        "tsv",
    ]
    .map(str::to_owned)
    .to_vec()
}

/// Whether a `credential-provider` value is provider mode's (any az path): only such
/// a value is replaced or removed, never a provider the user chose.
pub fn is_az_provider(item: &Item) -> bool {
    let words = provider_words(item);
    words.first().map(String::as_str) == Some(TOKEN_FROM_STDOUT)
        && words.iter().any(|w| w == "get-access-token")
}

/// The words of a `credential-provider` value, in either form cargo accepts (a
/// string split at spaces, or an array).
pub fn provider_words(item: &Item) -> Vec<String> {
    if let Some(text) = item.as_str() {
        return text.split_whitespace().map(str::to_owned).collect();
    }
    item.as_array()
        .map(|a| a.iter().filter_map(|v| v.as_str()).map(str::to_owned).collect())
        .unwrap_or_default()
}

/// Turns provider mode on for `feeds`: checks that az hands out a token now (so a
/// missing `az login` is reported here, plainly, rather than inside a later cargo
/// error), removes tokens stored earlier (they would only go stale), and sets each
/// feed's `credential-provider`.
pub fn enable(sh: &Shell, feeds: &[Registry], az: &Az) -> anyhow::Result<()> {
    let token = az.access_token(sh)?;
    gha::mask(&token.header.forms());
    drop(token);

    let path = global_config_path()?;
    let wanted = command(az.path());
    // `cargo logout` is unsupported for a feed already in provider mode, and such a
    // feed has no stored token anyway.
    let doc = existing(&path)?;
    for feed in feeds {
        if !current_provider(&doc, &feed.name).is_some_and(is_az_provider) {
            cargo::logout(sh, feed)?;
        }
    }
    let edit = Edit::plan(&path, |doc| {
        for feed in feeds {
            let registries = toml_file::table_mut(doc.as_table_mut(), "registries", &path)?;
            let entry = registries
                .entry(&feed.name)
                .or_insert_with(|| {
                    let mut table = toml_edit::Table::new();
                    table.insert("index", toml_edit::value(feed.index.as_str()));
                    Item::Table(table)
                })
                .as_table_like_mut()
                .with_context(|| {
                    format!("registries.{} in {path} is not a table; fix it and run again", feed.name)
                })?;
            let array: Array = wanted.iter().map(String::as_str).collect();
            entry.insert("credential-provider", Item::Value(Value::Array(array)));
        }
        Ok(())
    })?;
    if edit.write()? {
        eprintln!("cargo-login: wrote {path}");
    }
    for feed in feeds {
        eprintln!(
            "cargo-login: {} asks `{} account get-access-token` for a fresh token on each use; nothing stored",
            feed.name,
            az.path()
        );
    }
    Ok(())
}

/// Turns provider mode off for `feeds` (removes provider mode's `credential-provider`;
/// any other provider is left alone). Makes sure cargo then still has a provider
/// (`registry.global-credential-providers`), without which it refuses authenticated
/// feeds. Returns the feeds it changed.
pub fn disable(feeds: &[Registry]) -> anyhow::Result<Vec<String>> {
    let path = global_config_path()?;
    if !path.exists() {
        return Ok(Vec::new());
    }
    let mut changed = Vec::new();
    let edit = Edit::plan(&path, |doc| {
        for feed in feeds {
            let entry = doc
                .get_mut("registries")
                .and_then(|r| r.get_mut(&feed.name))
                .and_then(Item::as_table_like_mut);
            let Some(entry) = entry else { continue };
            if entry.get("credential-provider").is_some_and(is_az_provider) {
                entry.remove("credential-provider");
                changed.push(feed.name.clone());
            }
        }
        if !changed.is_empty() {
            let registry = toml_file::table_mut(doc.as_table_mut(), "registry", &path)?;
            if !registry.contains_key("global-credential-providers") {
                let list: Array = ["cargo:token"].into_iter().collect();
                registry.insert("global-credential-providers", Item::Value(Value::Array(list)));
            }
        }
        Ok(())
    })?;
    edit.write()?;
    for name in &changed {
        eprintln!("provider mode off for {name}: removed registries.{name}.credential-provider from {path}");
    }
    Ok(changed)
}

/// The global config, or an empty document when there is none yet.
fn existing(path: &Utf8Path) -> anyhow::Result<DocumentMut> {
    if path.exists() { toml_file::read(path) } else { Ok(DocumentMut::new()) }
}

fn current_provider<'a>(doc: &'a DocumentMut, feed: &str) -> Option<&'a Item> {
    doc.get("registries")?.get(feed)?.get("credential-provider")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_provider_mode_values_count_as_ours() {
        let ours: Array =
            command(Utf8Path::new("C:\\Program Files\\az.cmd")).iter().map(String::as_str).collect();
        assert!(is_az_provider(&Item::Value(Value::Array(ours))));
        assert!(is_az_provider(&toml_edit::value(
            "cargo:token-from-stdout az account get-access-token --output tsv"
        )));
        assert!(!is_az_provider(&toml_edit::value("cargo:token")));
        assert!(!is_az_provider(&toml_edit::value("cargo:token-from-stdout my-vault read")));
    }

    #[test]
    fn the_az_path_stays_one_argument() {
        let words = command(Utf8Path::new("C:\\Program Files\\Microsoft SDKs\\Azure\\CLI2\\wbin\\az.cmd"));
        assert_eq!(words[1], "C:\\Program Files\\Microsoft SDKs\\Azure\\CLI2\\wbin\\az.cmd");
        assert_eq!(words.last().map(String::as_str), Some("tsv"));
    }
}
