//! `cargo xtask setup`: the global cargo config readied for the feeds, nothing else touched; logins run it.

use anyhow::{Context, Result, bail};
use camino::Utf8PathBuf;
use toml_edit::{DocumentMut, InlineTable, Item};

use crate::cargo_home::global_config;
use crate::feeds::{self, Registry};
use crate::provider::global_providers;
use crate::toml_file;

/// Make your global cargo config ready for the feeds (one time per machine).
///
/// Defines every feed of the repo's `.cargo/config.toml`, and a credential provider, in
/// `$CARGO_HOME/config.toml`. Comments and layout are kept; a second run writes nothing.
#[derive(clap::Args, Clone, Copy, Debug, Default)]
#[command(
    after_help = "Examples:\n  cargo xtask setup\n  cargo xtask setup --check\n  cargo xtask setup --keychain"
)]
pub struct Setup {
    /// Write nothing: list what would change, and exit non-zero if anything would.
    #[arg(long)]
    pub check: bool,
    /// Also use the OS keychain for tokens, as Azure recommends (libsecret, wincred, macos-keychain).
    #[arg(long)]
    pub keychain: bool,
    /// Replace the index of a feed your config defines differently (else it is only warned about).
    #[arg(long)]
    pub force: bool,
}

/// Edits to make in the file at `path`, and what only the user can decide.
#[derive(Default)]
struct Findings {
    path: Utf8PathBuf,
    changes: Vec<String>,
    warnings: Vec<String>,
}

impl Setup {
    pub fn run(self) -> Result<()> {
        self.ensure(&feeds::all()?)
    }

    /// Brings the global config in line for `feeds`; the login tasks run it too.
    pub fn ensure(&self, feeds: &[Registry]) -> Result<()> {
        let config = global_config()?;
        let path = &config.path;
        let mut findings = Findings::default();
        // Planned again under the lock when another run changed the file meanwhile.
        let mut plan = |doc: &mut DocumentMut| {
            findings = Findings { path: path.clone(), ..Findings::default() };
            self.apply_feeds(doc, feeds, &mut findings)?;
            findings.changes.extend(global_providers(doc, path, feeds, self.keychain)?);
            Ok(())
        };
        if self.check {
            toml_file::plan(path, &mut plan)?;
        } else {
            toml_file::update(path, &mut plan)?;
        }
        findings.warnings.extend(config.ignored_warning);
        // The how-to's `[unstable] registry-auth` is stable since 1.74: ignored, or warned about.
        let sets_it = |doc: DocumentMut| doc.get("unstable").and_then(|u| u.get("registry-auth")).is_some();
        for file in [path.clone(), crate::tool::project_root().join(feeds::CONFIG_PATH)] {
            if toml_file::read(&file).is_ok_and(sets_it) {
                findings.warnings.push(format!(
                    "{file} sets `[unstable] registry-auth`, stable since cargo 1.74 and ignored: delete that line"
                ));
            }
        }
        for warning in &findings.warnings {
            eprintln!("warning: {warning}");
        }
        if findings.changes.is_empty() {
            let names: Vec<&str> = feeds.iter().map(|f| f.name.as_str()).collect();
            eprintln!("setup: {path} is already set up for {}; nothing written", names.join(", "));
            return Ok(());
        }
        let verb = if self.check { " would" } else { "" };
        for change in &findings.changes {
            eprintln!("setup: {path}:{verb} {change}");
        }
        if self.check {
            let flags = [(self.keychain, " --keychain"), (self.force, " --force")];
            let flags: String = flags.iter().filter(|(on, _)| *on).map(|(_, flag)| *flag).collect();
            bail!(
                "{path} needs {} change(s): run `cargo xtask setup{flags}` to make them",
                findings.changes.len()
            );
        }
        eprintln!("setup: wrote {path}");
        Ok(())
    }

    /// Adds or fixes each feed's entry in `[registries]`.
    fn apply_feeds(&self, doc: &mut DocumentMut, feeds: &[Registry], findings: &mut Findings) -> Result<()> {
        let path = &findings.path;
        // New feeds follow the file's style: `[registries.NAME]` tables, or else inline tables.
        let as_tables =
            doc.get("registries").and_then(Item::as_table).is_some_and(|t| t.is_implicit() && !t.is_empty());
        let registries = toml_file::table_mut(doc.as_table_mut(), "registries", path)?;
        for feed in feeds {
            let (name, index) = (feed.name.as_str(), feed.index.as_str());
            let Some(entry) = registries.get_mut(name) else {
                let new = InlineTable::from_iter([("index", index)]);
                registries.insert(name, if as_tables { Item::Table(new.into_table()) } else { new.into() });
                findings.changes.push(format!("add feed {name} = {index}"));
                continue;
            };
            let entry = entry
                .as_table_like_mut()
                .context(format!("registries.{name} in {path} is not a table; fix it and run again"))?;
            match entry.get("index").and_then(|i| i.as_str()) {
                Some(current) if current == index => {}
                Some(other) if !self.force => findings.warnings.push(format!(
                    "registries.{name} in {path} has index {other}, the repo uses {index}; left alone (run \
                     `cargo xtask setup --force` to replace it)"
                )),
                _ => {
                    toml_file::set_keeping_decor(entry, "index", index.into());
                    findings.changes.push(format!("set registries.{name}.index = {index}"));
                }
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::provider::KEYCHAIN_PROVIDER;

    fn feeds() -> Vec<Registry> {
        vec![
            Registry { name: "a_feed".into(), index: "sparse+https://example.com/a/".into() },
            Registry { name: "b_feed".into(), index: "sparse+https://example.com/b/".into() },
        ]
    }

    fn apply(setup: &Setup, text: &str) -> (String, Findings) {
        let mut doc: DocumentMut = text.parse().unwrap();
        let mut findings = Findings { path: "config.toml".into(), ..Findings::default() };
        setup.apply_feeds(&mut doc, &feeds(), &mut findings).unwrap();
        let change = global_providers(&mut doc, &findings.path, &feeds(), setup.keychain);
        findings.changes.extend(change.unwrap());
        (doc.to_string(), findings)
    }

    #[test]
    fn adds_feeds_and_a_provider_keeping_the_rest() {
        let before = "# my settings\n[build]\njobs = 2 # two cores\n\n[registries]\n# mine\nother = { index = \"sparse+https://o/\" }\n";
        let (after, findings) = apply(&Setup::default(), before);
        assert_eq!(
            after,
            "# my settings\n[build]\njobs = 2 # two cores\n\n[registries]\n# mine\nother = { index = \"sparse+https://o/\" }\n\
             a_feed = { index = \"sparse+https://example.com/a/\" }\nb_feed = { index = \"sparse+https://example.com/b/\" }\n\n\
             [registry]\nglobal-credential-providers = [\"cargo:token\"]\n"
        );
        assert_eq!(findings.changes.len(), 3);
        let (again, findings) = apply(&Setup::default(), &after);
        assert_eq!(again, after);
        assert!(findings.changes.is_empty());
    }

    #[test]
    fn a_different_index_is_kept_unless_forced() {
        let before = "[registries.a_feed]\nindex = \"sparse+https://elsewhere/\" # why\ncredential-provider = \"cargo:token\"\n";
        let (after, findings) = apply(&Setup::default(), before);
        assert!(after.contains("sparse+https://elsewhere/"), "{after}");
        assert_eq!(findings.warnings.len(), 1);
        let forced = Setup { force: true, ..Setup::default() };
        let (after, _) = apply(&forced, before);
        assert!(
            after.starts_with("[registries.a_feed]\nindex = \"sparse+https://example.com/a/\" # why\n"),
            "{after}"
        );
    }

    #[test]
    fn a_forced_index_keeps_the_comment_above_it() {
        let before = "[registries.a_feed]\n# mine\nindex = \"sparse+https://elsewhere/\"\ncredential-provider = \"cargo:token\"\n";
        let (after, _) = apply(&Setup { force: true, ..Setup::default() }, before);
        assert!(after.contains("# mine\nindex = \"sparse+https://example.com/a/\"\n"), "{after}");
    }

    #[test]
    fn keychain_adds_the_platform_provider_once() {
        let setup = Setup { keychain: true, ..Setup::default() };
        let (after, _) = apply(&setup, "[registry]\nglobal-credential-providers = [\"cargo:token\"]\n");
        assert!(after.contains(&format!("[\"cargo:token\", \"{KEYCHAIN_PROVIDER}\"]")), "{after}");
        let (again, findings) = apply(&setup, &after);
        assert_eq!(again, after);
        assert!(findings.changes.is_empty());
    }

    #[test]
    fn an_existing_provider_list_is_respected() {
        let before = "[registry]\nglobal-credential-providers = [\"cargo:libsecret\"]\n";
        let (after, _) = apply(&Setup::default(), before);
        assert!(after.starts_with(before), "{after}");
    }
}
