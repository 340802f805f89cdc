//! Provider mode (`cargo-login --provider`): each feed's `credential-provider` runs az, so
//! nothing is stored; and `registry.global-credential-providers`, which setup writes too.

use anyhow::{Context, anyhow, ensure};
use camino::Utf8Path;
use toml_edit::{Array, DocumentMut, Item, KeyMut, Value};

use crate::az::{AZURE_DEVOPS_RESOURCE, Az};
use crate::cargo_home::global_config;
use crate::feeds::Registry;
use crate::{cargo, toml_file};

/// Cargo's built-in provider that takes a command's stdout as the token, on each use.
pub const TOKEN_FROM_STDOUT: &str = "cargo:token-from-stdout";

/// Provider mode's `credential-provider`: an array (cargo splits a string at spaces) with az's
/// full path (a bare `az` misses `az.cmd`); az prints `Bearer `, as cargo sends it verbatim.
pub fn command(az: &Utf8Path) -> Vec<String> {
    let words = [TOKEN_FROM_STDOUT, az.as_str(), "account", "get-access-token", "--resource"];
    let query = ["--query", "join(' ', ['Bearer', accessToken])", "--output", "tsv"];
    [&words[..], &[AZURE_DEVOPS_RESOURCE], &query].concat().into_iter().map(str::to_owned).collect()
}

/// Whether a `credential-provider` is provider mode's (any az path), the only kind removed.
pub fn is_az_provider(item: &Item) -> bool {
    let words = provider_words(item);
    words.first().is_some_and(|w| w == TOKEN_FROM_STDOUT) && words.iter().any(|w| w == "get-access-token")
}

pub fn provider_words(item: &Item) -> Vec<String> {
    let words: Vec<&str> = match item.as_str() {
        Some(text) => text.split_whitespace().collect(),
        None => item.as_array().map_or(Vec::new(), |a| a.iter().filter_map(|v| v.as_str()).collect()),
    };
    words.into_iter().map(str::to_owned).collect()
}

/// Starts the comment line that keeps a feed's own `credential-provider` while `--force`
/// replaces it: a comment, because cargo could one day refuse an unknown key.
const KEPT_MARKER: &str = "# cargo xtask: previous ";

/// Turns provider mode on for `feeds` once az hands out a token (a missing `az login`
/// is reported here, not in a later cargo error), removing stored tokens.
pub fn enable(feeds: &[Registry], az: &Az, force: bool) -> anyhow::Result<()> {
    let path = global_config()?.path;
    let words = command(&az.path);
    let wanted: Array = words.iter().collect();
    let mut turn_on = |doc: &mut DocumentMut| -> anyhow::Result<()> {
        if !force {
            refuse_foreign_providers(doc, feeds, &path)?;
        }
        feeds.iter().try_for_each(|feed| set_provider(doc, feed, &wanted, &path))
    };
    // A refused run changes nothing: planned before az is asked or a token removed.
    toml_file::plan(&path, &mut turn_on)?;
    az.check_provider_command(&words[2..])?;
    if toml_file::update(&path, &mut turn_on)? {
        eprintln!("cargo-login: wrote {path}");
    }
    // Only once provider mode is on: a config left unwritten (read-only) keeps its tokens.
    feeds.iter().try_for_each(cargo::logout)?;
    for feed in feeds {
        eprintln!(
            "cargo-login: {} asks `{} account get-access-token` for a fresh token on each use; nothing stored",
            feed.name, az.path
        );
    }
    Ok(())
}

/// Names each feed with a provider of its own, not its value: a command line can hold a token.
fn refuse_foreign_providers(doc: &DocumentMut, feeds: &[Registry], path: &Utf8Path) -> anyhow::Result<()> {
    let foreign: Vec<String> = feeds
        .iter()
        .filter(|feed| current_provider(doc, &feed.name).is_some_and(|item| !is_az_provider(item)))
        .map(|feed| format!("registries.{}.credential-provider", feed.name))
        .collect();
    ensure!(
        foreign.is_empty(),
        "{} in {path} set(s) a credential provider of your own, left alone: run `cargo xtask cargo-login \
         --provider --force` to replace it (it is kept in a comment, and `cargo xtask cargo-logout` puts \
         it back), or remove it yourself",
        foreign.join(", ")
    );
    Ok(())
}

/// Sets provider mode's command for `feed`, moving a provider of the user's into a [`KEPT_MARKER`] line.
fn set_provider(doc: &mut DocumentMut, feed: &Registry, new: &Array, path: &Utf8Path) -> anyhow::Result<()> {
    let name = feed.name.as_str();
    let registries = toml_file::table_mut(doc.as_table_mut(), "registries", path)?;
    let entry = registries
        .entry(name)
        .or_insert_with(|| Item::Table(toml_edit::Table::from_iter([("index", feed.index.as_str())])))
        .as_table_like_mut()
        .context(format!("registries.{name} in {path} is not a table; fix it and run again"))?;
    let value = Value::Array(new.clone());
    let Some(old) = entry.get_mut("credential-provider").filter(|old| !is_az_provider(old)) else {
        toml_file::set_keeping_decor(entry, "credential-provider", value);
        return Ok(());
    };
    let mut old_value = old.as_value().cloned().context(format!(
        "registries.{name}.credential-provider in {path} is not a string or list; fix it and run again"
    ))?;
    // A comment is one line: a list written over several is kept on one.
    if let Value::Array(list) = &mut old_value
        && list.to_string().contains('\n')
    {
        list.fmt();
    }
    ensure!(
        !old_value.to_string().contains('\n'),
        "registries.{name}.credential-provider in {path} spans several lines, which a comment cannot keep: \
         write it on one line and run again"
    );
    *old = Item::Value(value);
    let key = entry.key("credential-provider").and_then(|k| k.leaf_decor().suffix()?.as_str());
    let kept = format!("{KEPT_MARKER}credential-provider{}={old_value}\n", key.unwrap_or(" "));
    let mut line = line_key(doc, name).context(format!(
        "registries.{name} in {path} is written with dotted keys, where the old credential-provider cannot be \
         kept: write it as a [registries.{name}] table and run again"
    ))?;
    let prefix = line.leaf_decor().prefix().and_then(|p| p.as_str()).unwrap_or("").to_owned();
    line.leaf_decor_mut().set_prefix(format!("{prefix}{kept}"));
    Ok(())
}

/// The key whose line a kept provider of `feed` goes above; `None` for dotted keys (their line holds more).
fn line_key<'a>(doc: &'a mut DocumentMut, feed: &str) -> Option<KeyMut<'a>> {
    let registries = doc.get_mut("registries")?.as_table_like_mut()?;
    match registries.get(feed)?.as_table().map(toml_edit::Table::is_dotted) {
        Some(true) => None,
        Some(false) => registries.get_mut(feed)?.as_table_like_mut()?.key_mut("credential-provider"),
        None => registries.key_mut(feed),
    }
}

/// Turns provider mode off for `feeds`: the provider `--force` replaced goes back, else
/// provider mode's is removed, and cargo then needs `global-credential-providers`.
pub fn disable(feeds: &[Registry], task: &str) -> anyhow::Result<()> {
    let path = global_config()?.path;
    let mut said = Vec::new();
    toml_file::update(&path, &mut |doc| {
        said.clear();
        let mut removed = false;
        for feed in feeds.iter().map(|f| f.name.as_str()) {
            if !current_provider(doc, feed).is_some_and(is_az_provider) {
                continue;
            }
            let restored = restore_kept(doc, feed, &path)?;
            let (did, word) = if restored { ("put back your own", "in") } else { ("removed", "from") };
            said.push(format!("{feed}: {did} registries.{feed}.credential-provider {word} {path}"));
            removed |= !restored;
        }
        if removed {
            global_providers(doc, &path, feeds, false)?;
        }
        Ok(())
    })?;
    for line in said {
        eprintln!("{task}: provider mode off for {line}");
    }
    Ok(())
}

/// Puts back the provider kept in a [`KEPT_MARKER`] comment of `feed`, or removes
/// provider mode's when none was kept. Returns whether it put one back.
fn restore_kept(doc: &mut DocumentMut, feed: &str, path: &Utf8Path) -> anyhow::Result<bool> {
    let prefix = line_key(doc, feed).and_then(|k| k.leaf_decor().prefix()?.as_str().map(str::to_owned));
    let prefix = prefix.unwrap_or_default();
    let entry = doc.get_mut("registries").and_then(|r| r.get_mut(feed)).and_then(Item::as_table_like_mut);
    let entry = entry.context("checked by the caller")?;
    let Some(start) = prefix.find(KEPT_MARKER) else {
        entry.remove("credential-provider");
        return Ok(false);
    };
    let end = prefix[start..].find('\n').map_or(prefix.len(), |at| start + at + 1);
    let text = &prefix[start + KEPT_MARKER.len()..end];
    let kept: DocumentMut = text.parse().map_err(|err| {
        anyhow!(
            "the comment `{KEPT_MARKER}…` above registries.{feed}.credential-provider in {path} no longer holds \
             a valid setting ({}): fix or delete that line, set the provider you want, and run again",
            toml_file::parse_error(text, &err)
        )
    })?;
    let (kept_key, kept_item) = kept
        .as_table()
        .get_key_value("credential-provider")
        .context(format!("the `{KEPT_MARKER}…` comment in {path} does not name a credential-provider"))?;
    *entry.get_mut("credential-provider").context("checked by the caller")? = kept_item.clone();
    let suffix = kept_key.leaf_decor().suffix().and_then(|s| s.as_str()).unwrap_or(" ");
    entry.key_mut("credential-provider").context("set above")?.leaf_decor_mut().set_suffix(suffix);
    let rest = [&prefix[..start], &prefix[end..]].concat();
    line_key(doc, feed).context("found above")?.leaf_decor_mut().set_prefix(rest);
    Ok(true)
}

pub fn current_provider<'a>(doc: &'a DocumentMut, feed: &str) -> Option<&'a Item> {
    doc.get("registries")?.get(feed)?.get("credential-provider")
}

/// The Azure-recommended keychain provider of this platform.
pub const KEYCHAIN_PROVIDER: &str = if cfg!(windows) {
    "cargo:wincred"
} else if cfg!(target_os = "macos") {
    "cargo:macos-keychain"
} else {
    "cargo:libsecret"
};

/// Sets `registry.global-credential-providers`: `cargo:token` when one of `feeds` has no
/// provider of its own, and the keychain when asked. Returns the change, if any.
pub fn global_providers(
    doc: &mut DocumentMut,
    path: &Utf8Path,
    feeds: &[Registry],
    keychain: bool,
) -> anyhow::Result<Option<String>> {
    let feed_without_provider = feeds.iter().any(|feed| current_provider(doc, &feed.name).is_none());
    let registry = toml_file::table_mut(doc.as_table_mut(), "registry", path)?;
    let key = "global-credential-providers";
    let list = registry
        .get(key)
        .map_or(Some(Array::new()), |item| item.as_array().filter(|a| a.iter().all(|v| v.is_str())).cloned());
    let mut list =
        list.context(format!("registry.{key} in {path} is not a list of strings; fix it and run again"))?;
    let add = if keychain { 2 } else { usize::from(list.is_empty() && feed_without_provider) };
    let wanted = &["cargo:token", KEYCHAIN_PROVIDER][..add];
    let added: Vec<&str> =
        wanted.iter().copied().filter(|&p| !list.iter().any(|v| v.as_str() == Some(p))).collect();
    list.extend(added.iter().copied());
    if added.is_empty() {
        return Ok(None);
    }
    // Not the whole list: a command of the user's in it may carry a secret argument.
    let change = format!("add {} to registry.{key}", added.join(" and "));
    toml_file::set_keeping_decor(registry, key, Value::Array(list));
    Ok(Some(change))
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
        let wanted: Array = command(Utf8Path::new("/usr/bin/az")).into_iter().collect();
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
    fn a_provider_written_over_several_lines_is_kept_on_one() {
        let path = Utf8Path::new("config.toml");
        let before = "[registries.a_feed]\nindex = \"i\"\ncredential-provider = [\n  \"my-vault\",\n  \"read\",\n] # mine\n";
        let mut doc: DocumentMut = before.parse().unwrap();
        set_provider(&mut doc, &feed(), &command(Utf8Path::new("/usr/bin/az")).into_iter().collect(), path)
            .unwrap();
        let on = doc.to_string();
        assert!(
            on.contains("# cargo xtask: previous credential-provider = [\"my-vault\", \"read\"] # mine\n"),
            "{on}"
        );
        let mut doc: DocumentMut = on.parse().unwrap();
        assert!(restore_kept(&mut doc, "a_feed", path).unwrap());
        assert_eq!(provider_words(current_provider(&doc, "a_feed").unwrap()), ["my-vault", "read"]);
    }

    #[test]
    fn without_a_kept_provider_off_removes_provider_modes_setting() {
        let path = Utf8Path::new("config.toml");
        let mut doc: DocumentMut = "[registries.a_feed]\nindex = \"i\"\n".parse().unwrap();
        refuse_foreign_providers(&doc, &[feed()], path).unwrap();
        set_provider(&mut doc, &feed(), &command(Utf8Path::new("az")).into_iter().collect(), path).unwrap();
        assert!(!restore_kept(&mut doc, "a_feed", path).unwrap());
        assert_eq!(doc.to_string(), "[registries.a_feed]\nindex = \"i\"\n");
    }

    #[test]
    fn a_broken_kept_provider_is_located_not_quoted() {
        let text = "[registries.a_feed]\n# cargo xtask: previous credential-provider = \"cargo:token-from-stdout \
                    echo s3cr3t\ncredential-provider = [\"cargo:token-from-stdout\", \"az\", \"get-access-token\"]\n";
        let mut doc: DocumentMut = text.parse().unwrap();
        let err = restore_kept(&mut doc, "a_feed", Utf8Path::new("config.toml")).unwrap_err();
        let err = format!("{err:#}");
        assert!(
            err.contains("no longer holds a valid setting (line 1, column ") && !err.contains("s3cr3t"),
            "{err}"
        );
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
            set_provider(&mut doc, &feed(), &command(Utf8Path::new("az")).into_iter().collect(), path)
                .unwrap_err()
        );
        assert!(err.contains("dotted keys") && err.contains("[registries.a_feed]"), "{err}");

        let mut doc: DocumentMut = "[registries]\na_feed.index = \"i\"\n".parse().unwrap();
        set_provider(&mut doc, &feed(), &command(Utf8Path::new("az")).into_iter().collect(), path).unwrap();
        assert!(!restore_kept(&mut doc, "a_feed", path).unwrap());
        assert_eq!(doc.to_string(), "[registries]\na_feed.index = \"i\"\n");
    }
}
