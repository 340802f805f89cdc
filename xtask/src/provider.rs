//! Token-free login, "provider mode" (`cargo xtask cargo-login --provider`): each feed's
//! `credential-provider` in the global cargo config becomes `cargo:token-from-stdout`
//! running the Azure CLI, so cargo asks az for a fresh `Bearer` token whenever it
//! needs one. Nothing is stored, and the hourly re-login is gone for as long as
//! `az login` lasts. `cargo xtask cargo-logout` turns it off again.
//!
//! A provider the user chose for a feed is theirs: it is replaced only with
//! `--force`, and then kept in a comment that `cargo-logout` turns back into the
//! setting, byte for byte.

use std::fmt;

use anyhow::{Context, bail};
use camino::{Utf8Path, Utf8PathBuf};
use toml_edit::{Array, DocumentMut, Item, Value};

use crate::az::{AZURE_DEVOPS_RESOURCE, Az};
use crate::cargo;
use crate::cargo_home::global_config;
use crate::feeds::Registry;
use crate::gha;
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

/// The start of the comment line that keeps a feed's own `credential-provider` while
/// provider mode replaces it (`cargo-login --provider --force`), so that
/// `cargo-logout` can put it back as it was, comments and spacing included. A comment
/// because cargo ignores it, where an unknown key could one day be refused.
const KEPT_MARKER: &str = "# cargo xtask: previous ";

/// Turns provider mode on for `feeds`: checks that az hands out a token now (so a
/// missing `az login` is reported here, plainly, rather than inside a later cargo
/// error), removes tokens stored earlier (they would only go stale), and sets each
/// feed's `credential-provider`. A provider the user set for a feed is left alone,
/// and the run stops, unless `force`: then it is kept in a comment for `disable`.
pub fn enable(feeds: &[Registry], az: &Az, force: bool) -> anyhow::Result<()> {
    let path = global_config()?.path;
    let wanted = command(az.path());
    let turn_on = |doc: &mut DocumentMut| -> anyhow::Result<()> {
        if !force {
            refuse_foreign_providers(doc, feeds, &path)?;
        }
        for feed in feeds {
            set_provider(doc, feed, &wanted, &path)?;
        }
        Ok(())
    };
    // Anything in the file that stops the edit is reported before az is asked or a
    // stored token removed, so a refused run changes nothing.
    Edit::plan(&path, turn_on)?;

    let token = az.access_token()?;
    gha::mask(&token.header.forms());
    drop(token);

    // `cargo logout` is unsupported for a feed already in provider mode, and such a
    // feed has no stored token anyway.
    let doc = existing(&path)?;
    for feed in feeds {
        if !current_provider(&doc, &feed.name).is_some_and(is_az_provider) {
            cargo::logout(feed)?;
        }
    }
    let written = toml_file::update(&path, turn_on)?;
    if written {
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

/// Fails, naming each feed and the file, when a feed has a `credential-provider`
/// that is not provider mode's. Its value is not shown: a command line can hold a
/// token.
fn refuse_foreign_providers(doc: &DocumentMut, feeds: &[Registry], path: &Utf8Path) -> anyhow::Result<()> {
    let foreign: Vec<&str> = feeds
        .iter()
        .filter(|feed| current_provider(doc, &feed.name).is_some_and(|item| !is_az_provider(item)))
        .map(|feed| feed.name.as_str())
        .collect();
    if foreign.is_empty() {
        return Ok(());
    }
    let keys: Vec<String> =
        foreign.iter().map(|name| format!("registries.{name}.credential-provider")).collect();
    bail!(
        "{} in {path} set(s) a credential provider of your own, left alone: run `cargo xtask cargo-login \
         --provider --force` to replace it (it is kept in a comment, and `cargo xtask cargo-logout` puts \
         it back), or remove it yourself",
        keys.join(", ")
    )
}

/// Sets provider mode's command as `feed`'s provider. A value that is already
/// provider mode's keeps its comments; any other is moved into a [`KEPT_MARKER`]
/// comment line above.
fn set_provider(
    doc: &mut DocumentMut,
    feed: &Registry,
    wanted: &[String],
    path: &Utf8Path,
) -> anyhow::Result<()> {
    let name = feed.name.as_str();
    let not_a_table = || format!("registries.{name} in {path} is not a table; fix it and run again");
    let registries = toml_file::table_mut(doc.as_table_mut(), "registries", path)?;
    let entry = registries
        .entry(name)
        .or_insert_with(|| {
            let mut table = toml_edit::Table::new();
            table.insert("index", toml_edit::value(feed.index.as_str()));
            Item::Table(table)
        })
        .as_table_like_mut()
        .with_context(not_a_table)?;
    let mut value = Value::Array(wanted.iter().map(String::as_str).collect::<Array>());
    let Some(old) = entry.get_mut("credential-provider") else {
        entry.insert("credential-provider", Item::Value(value));
        return Ok(());
    };
    if is_az_provider(old) {
        if let Some(old) = old.as_value() {
            *value.decor_mut() = old.decor().clone();
        }
        *old = Item::Value(value);
        return Ok(());
    }
    let old_value = old.as_value().cloned().with_context(|| {
        format!(
            "registries.{name}.credential-provider in {path} is not a string or list; fix it and run again"
        )
    })?;
    *old = Item::Value(value);
    let key_suffix = entry
        .key("credential-provider")
        .and_then(|k| k.leaf_decor().suffix())
        .and_then(|s| s.as_str())
        .unwrap_or(" ")
        .to_owned();
    let kept = format!("{KEPT_MARKER}credential-provider{key_suffix}={old_value}\n");
    let mut line = kept_line_key(registries_mut(doc)?, name, path)?;
    let prefix = line.leaf_decor().prefix().and_then(|p| p.as_str()).unwrap_or("").to_owned();
    line.leaf_decor_mut().set_prefix(format!("{prefix}{kept}"));
    Ok(())
}

fn registries_mut(doc: &mut DocumentMut) -> anyhow::Result<&mut dyn toml_edit::TableLike> {
    doc.get_mut("registries").and_then(Item::as_table_like_mut).context("no [registries] table")
}

/// The key whose line holds `feed`'s `credential-provider`, where a kept value's
/// comment goes: the `credential-provider` key of a `[registries.NAME]` table, or
/// the `NAME` key of a `NAME = { … }` line. Dotted keys (`NAME.credential-provider`)
/// share their line with other parts and are refused.
fn kept_line_key<'a>(
    registries: &'a mut dyn toml_edit::TableLike,
    feed: &str,
    path: &Utf8Path,
) -> anyhow::Result<toml_edit::KeyMut<'a>> {
    let standalone_table = match registries.get(feed) {
        Some(Item::Table(table)) if table.is_dotted() => bail!(
            "registries.{feed} in {path} is written with dotted keys, where the old credential-provider \
             cannot be kept: write it as a [registries.{feed}] table and run again"
        ),
        Some(Item::Table(_)) => true,
        _ => false,
    };
    if standalone_table {
        let table = registries.get_mut(feed).and_then(Item::as_table_like_mut).context("checked above")?;
        return table.key_mut("credential-provider").context("set above");
    }
    registries.key_mut(feed).context("set above")
}

/// Turns provider mode off for `feeds`: provider mode's `credential-provider` is put
/// back to the user's own one that `--force` replaced, or else removed; any other
/// provider is left alone. Makes sure cargo then still has a provider
/// (`registry.global-credential-providers`), without which it refuses authenticated
/// feeds. Returns what it did, one entry per feed it changed.
pub fn disable(feeds: &[Registry]) -> anyhow::Result<Vec<TurnedOff>> {
    let path = global_config()?.path;
    if !path.exists() {
        return Ok(Vec::new());
    }
    let mut turned_off = Vec::new();
    toml_file::update(&path, |doc| {
        turned_off.clear();
        for feed in feeds {
            let entry = doc
                .get_mut("registries")
                .and_then(|r| r.get_mut(&feed.name))
                .and_then(Item::as_table_like_mut);
            if !entry.is_some_and(|e| e.get("credential-provider").is_some_and(is_az_provider)) {
                continue;
            }
            let restored = restore_kept(doc, &feed.name, &path)?;
            turned_off.push(TurnedOff { feed: feed.name.clone(), path: path.clone(), restored });
        }
        if turned_off.iter().any(|t| !t.restored) {
            let registry = toml_file::table_mut(doc.as_table_mut(), "registry", &path)?;
            if !registry.contains_key("global-credential-providers") {
                let list: Array = ["cargo:token"].into_iter().collect();
                registry.insert("global-credential-providers", Item::Value(Value::Array(list)));
            }
        }
        Ok(())
    })?;
    Ok(turned_off)
}

/// Puts back the `credential-provider` kept in a [`KEPT_MARKER`] comment of `feed`,
/// or removes provider mode's one when none was kept. Returns whether it put one back.
fn restore_kept(doc: &mut DocumentMut, feed: &str, path: &Utf8Path) -> anyhow::Result<bool> {
    let registries = registries_mut(doc)?;
    // Dotted keys never get a kept line (`--force` refuses them).
    let dotted = registries.get(feed).and_then(Item::as_table).is_some_and(|t| t.is_dotted());
    let prefix = if dotted {
        String::new()
    } else {
        let line = kept_line_key(registries, feed, path)?;
        line.leaf_decor().prefix().and_then(|p| p.as_str()).unwrap_or("").to_owned()
    };
    let Some(start) = prefix.find(KEPT_MARKER) else {
        let registries = registries_mut(doc)?;
        if let Some(entry) = registries.get_mut(feed).and_then(Item::as_table_like_mut) {
            entry.remove("credential-provider");
        }
        return Ok(false);
    };
    let end = prefix[start..].find('\n').map_or(prefix.len(), |at| start + at + 1);
    let kept_text = &prefix[start + KEPT_MARKER.len()..end];
    let kept: DocumentMut = kept_text.parse().map_err(|err| {
        anyhow::anyhow!(
            "the comment `{KEPT_MARKER}…` above registries.{feed}.credential-provider in {path} no longer \
             holds a valid setting ({err}): fix or delete that line, set the provider you want, and run again"
        )
    })?;
    let (kept_key, kept_item) = kept.as_table().get_key_value("credential-provider").with_context(|| {
        format!("the `{KEPT_MARKER}…` comment in {path} does not name a credential-provider")
    })?;
    let key_suffix = kept_key.leaf_decor().suffix().and_then(|s| s.as_str()).unwrap_or(" ").to_owned();
    let kept_item = kept_item.clone();
    let mut line = kept_line_key(registries_mut(doc)?, feed, path)?;
    line.leaf_decor_mut().set_prefix(format!("{}{}", &prefix[..start], &prefix[end..]));

    let registries = registries_mut(doc)?;
    let entry =
        registries.get_mut(feed).and_then(Item::as_table_like_mut).context("checked by the caller")?;
    if let Some(item) = entry.get_mut("credential-provider") {
        *item = kept_item;
    }
    if let Some(mut key) = entry.key_mut("credential-provider") {
        key.leaf_decor_mut().set_suffix(key_suffix);
    }
    Ok(true)
}

/// What turning provider mode off did to one feed's setting.
pub struct TurnedOff {
    pub feed: String,
    pub path: Utf8PathBuf,
    /// The feed's own provider, which `--force` replaced, was put back.
    pub restored: bool,
}

impl fmt::Display for TurnedOff {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let TurnedOff { feed, path, restored } = self;
        if *restored {
            write!(
                f,
                "provider mode off for {feed}: put back your own registries.{feed}.credential-provider in {path}"
            )
        } else {
            write!(
                f,
                "provider mode off for {feed}: removed registries.{feed}.credential-provider from {path}"
            )
        }
    }
}

/// The global config, or an empty document when there is none yet.
fn existing(path: &Utf8Path) -> anyhow::Result<DocumentMut> {
    Ok(toml_file::read_if_exists(path)?.unwrap_or_default())
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
        // Through the file cargo reads: written as the array `enable` writes, read
        // back the way cargo splits a provider, the path with its spaces is still
        // one argument; the string form cargo also accepts would split it.
        let path = "C:\\Program Files\\Microsoft SDKs\\Azure\\CLI2\\wbin\\az.cmd";
        let array: Array = command(Utf8Path::new(path)).iter().map(String::as_str).collect();
        let doc: DocumentMut = format!("provider = {}", Value::Array(array)).parse().unwrap();
        let words = provider_words(&doc["provider"]);
        assert_eq!(words[1], path, "{words:?}");
        assert!(is_az_provider(&doc["provider"]));
        let as_string = toml_edit::value(words.join(" "));
        assert_ne!(provider_words(&as_string)[1], path, "a string would have kept the path whole");
    }

    fn feed() -> Registry {
        Registry { name: "a_feed".into(), index: "sparse+https://example.com/a/".into() }
    }

    /// Forced provider mode on, then off again, on a whole file: returns the file
    /// while provider mode is on; asserts that off restores the original bytes.
    fn forced_round_trip(before: &str) -> String {
        let path = Utf8Path::new("config.toml");
        let wanted = command(Utf8Path::new("/usr/bin/az"));
        let mut doc: DocumentMut = before.parse().unwrap();
        refuse_foreign_providers(&doc, &[feed()], path).unwrap_err();
        set_provider(&mut doc, &feed(), &wanted, path).unwrap();
        let on = doc.to_string();
        assert!(is_az_provider(current_provider(&doc, "a_feed").unwrap()), "{on}");
        // Again, as a second `--provider` run would: the kept line stays as it is.
        set_provider(&mut doc, &feed(), &wanted, path).unwrap();
        assert_eq!(doc.to_string(), on);

        let mut doc: DocumentMut = on.parse().unwrap();
        assert!(restore_kept(&mut doc, "a_feed", path).unwrap());
        assert_eq!(doc.to_string(), before, "not restored exactly; while on it was:\n{on}");
        on
    }

    #[test]
    fn a_users_own_provider_is_kept_in_a_comment_and_restored_exactly() {
        let on = forced_round_trip(
            "[registries.a_feed]\nindex = \"sparse+https://example.com/a/\"\n# my vault\n\
             credential-provider  =  \"cargo:token-from-stdout vault read\" # since 2024\nother = 1\n",
        );
        assert!(
            on.contains(
                "# my vault\n# cargo xtask: previous credential-provider  =  \
                 \"cargo:token-from-stdout vault read\" # since 2024\ncredential-provider  = ["
            ),
            "{on}"
        );
        let on = forced_round_trip(
            "[registries]\n# mine\na_feed = { index = \"sparse+https://example.com/a/\", \
             credential-provider = [\"cargo:libsecret\"] }\n",
        );
        assert!(
            on.contains("# mine\n# cargo xtask: previous credential-provider = [\"cargo:libsecret\"] \n"),
            "{on}"
        );
    }

    #[test]
    fn without_a_kept_provider_off_removes_provider_modes_setting() {
        let path = Utf8Path::new("config.toml");
        let mut doc: DocumentMut = "[registries.a_feed]\nindex = \"i\"\n".parse().unwrap();
        refuse_foreign_providers(&doc, &[feed()], path).unwrap();
        set_provider(&mut doc, &feed(), &command(Utf8Path::new("az")), path).unwrap();
        assert!(!restore_kept(&mut doc, "a_feed", path).unwrap());
        assert_eq!(doc.to_string(), "[registries.a_feed]\nindex = \"i\"\n");
    }

    #[test]
    fn a_foreign_provider_is_refused_by_name_without_its_value() {
        let doc: DocumentMut =
            "[registries.a_feed]\ncredential-provider = \"cargo:token-from-stdout echo s3cr3t\"\n"
                .parse()
                .unwrap();
        let err = format!(
            "{:#}",
            refuse_foreign_providers(&doc, &[feed()], Utf8Path::new("/h/config.toml")).unwrap_err()
        );
        assert!(err.contains("registries.a_feed.credential-provider in /h/config.toml"), "{err}");
        assert!(err.contains("--force") && !err.contains("s3cr3t"), "{err}");
    }

    #[test]
    fn dotted_keys_are_refused_for_force_but_provider_mode_still_turns_off() {
        let path = Utf8Path::new("config.toml");
        let before = "[registries]\na_feed.index = \"i\"\na_feed.credential-provider = \"cargo:token\"\n";
        let mut doc: DocumentMut = before.parse().unwrap();
        let err = format!(
            "{:#}",
            set_provider(&mut doc, &feed(), &command(Utf8Path::new("az")), path).unwrap_err()
        );
        assert!(err.contains("dotted keys") && err.contains("[registries.a_feed]"), "{err}");

        let mut doc: DocumentMut = "[registries]\na_feed.index = \"i\"\n".parse().unwrap();
        set_provider(&mut doc, &feed(), &command(Utf8Path::new("az")), path).unwrap();
        assert!(!restore_kept(&mut doc, "a_feed", path).unwrap());
        assert_eq!(doc.to_string(), "[registries]\na_feed.index = \"i\"\n");
    }
}
