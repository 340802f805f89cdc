//! "The feed has NAME@VERSION" is not "the feed has what this run would publish":
//! versions are immutable, and the same version may have been published from other
//! sources (another rev, a hand-made upload, an upstream mirror). This fetches what
//! the feed has, through cargo (`cargo vendor` of a scratch package depending on
//! each crate at its exact version: cargo's own download, authentication and
//! checksum check), and compares it file by file with what the package stage made.
//!
//! Compared: every file of the package except those cargo generates, which differ
//! between runs and cargo versions for the same sources: the normalized
//! `Cargo.toml` (its `Cargo.toml.orig` is compared instead), `Cargo.lock`,
//! `.cargo_vcs_info.json`, and the `.cargo-checksum.json` that vendoring adds.

use std::collections::BTreeSet;

use anyhow::{Context, bail};
use camino::{Utf8Path, Utf8PathBuf};

use super::{Engine, tail};

const GENERATED: [&str; 5] =
    ["Cargo.toml", "Cargo.lock", ".cargo_vcs_info.json", ".cargo-checksum.json", ".cargo-ok"];

/// The feed's sources of `crates` (name, version), each in `<dir>/<name>-<version>`.
pub fn feed_sources(engine: &mut Engine, crates: &[(&str, &str)]) -> anyhow::Result<Utf8PathBuf> {
    let probe = engine.work().join("feed-sources");
    let vendor = probe.join("vendor");
    std::fs::create_dir_all(probe.join("src")).with_context(|| format!("cannot create {probe}"))?;
    let feed = engine.registry().name.clone();
    let registry =
        if engine.registry().is_crates_io() { String::new() } else { format!(", registry = \"{feed}\"") };
    let mut manifest = String::from(
        "[package]\nname = \"hyperlight-xtask-feed-sources\"\nversion = \"0.0.0\"\nedition = \"2021\"\n\
         publish = false\n\n[dependencies]\n",
    );
    for (name, version) in crates {
        manifest.push_str(&format!("{name} = {{ version = \"={version}\"{registry} }}\n"));
    }
    manifest.push_str("\n# Its own workspace, never part of one further up.\n[workspace]\n");
    std::fs::write(probe.join("Cargo.toml"), manifest)
        .with_context(|| format!("cannot write {probe}/Cargo.toml"))?;
    std::fs::write(probe.join("src").join("lib.rs"), "")
        .with_context(|| format!("cannot write {probe}/src"))?;
    let out = engine.cargo(&probe, &["vendor", "--versioned-dirs", vendor.as_str()], false)?;
    if !out.success {
        bail!(
            "cannot fetch what {feed} has for {} to compare it with this run's packages; nothing was \
             uploaded:\n{}",
            crates.iter().map(|(n, v)| format!("{n} {v}")).collect::<Vec<_>>().join(", "),
            tail(&out.stderr)
        );
    }
    Ok(vendor)
}

/// The files (relative, `/`-separated) that differ between two unpacked packages,
/// or exist in one only. Generated files are left out.
pub fn differences(ours: &Utf8Path, theirs: &Utf8Path) -> anyhow::Result<Vec<String>> {
    let (a, b) = (files(ours)?, files(theirs)?);
    let mut differ = Vec::new();
    for path in a.union(&b) {
        let same = match (a.contains(path), b.contains(path)) {
            (true, true) => {
                let read = |root: &Utf8Path| {
                    std::fs::read(root.join(path)).with_context(|| format!("cannot read {root}/{path}"))
                };
                read(ours)? == read(theirs)?
            }
            _ => false,
        };
        if !same {
            let note = match (a.contains(path), b.contains(path)) {
                (true, false) => " (only in this run's package)",
                (false, true) => " (only in the feed's)",
                _ => "",
            };
            differ.push(format!("{path}{note}"));
        }
    }
    Ok(differ)
}

/// Every file under `root`, relative, less the generated ones at its top.
fn files(root: &Utf8Path) -> anyhow::Result<BTreeSet<String>> {
    if !root.is_dir() {
        bail!("{root} is missing: nothing to compare");
    }
    let mut found = BTreeSet::new();
    let mut stack = vec![String::new()];
    while let Some(dir) = stack.pop() {
        let path = if dir.is_empty() { root.to_owned() } else { root.join(&dir) };
        for entry in std::fs::read_dir(&path).with_context(|| format!("cannot list {path}"))? {
            let entry = entry?;
            let name = entry
                .file_name()
                .into_string()
                .map_err(|n| anyhow::anyhow!("{path}: a name that is not UTF-8: {n:?}"))?;
            let relative = if dir.is_empty() { name.clone() } else { format!("{dir}/{name}") };
            if entry.file_type()?.is_dir() {
                stack.push(relative);
            } else if !(dir.is_empty() && GENERATED.contains(&name.as_str())) {
                found.insert(relative);
            }
        }
    }
    Ok(found)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_files_do_not_count_and_real_changes_do() {
        let base = Utf8PathBuf::try_from(std::env::temp_dir())
            .unwrap()
            .join(format!("xtask-compare-{}", std::process::id()));
        let (a, b) = (base.join("a"), base.join("b"));
        for (dir, lib, lock) in [(&a, "fn a() {}", "one"), (&b, "fn a() {}", "two")] {
            std::fs::create_dir_all(dir.join("src")).unwrap();
            std::fs::write(dir.join("src/lib.rs"), lib).unwrap();
            std::fs::write(dir.join("Cargo.lock"), lock).unwrap();
            std::fs::write(dir.join("Cargo.toml"), format!("# normalized {lock}")).unwrap();
            std::fs::write(dir.join("Cargo.toml.orig"), "[package]").unwrap();
        }
        std::fs::write(b.join(".cargo-checksum.json"), "{}").unwrap();
        assert_eq!(differences(&a, &b).unwrap(), Vec::<String>::new());
        std::fs::write(b.join("src/lib.rs"), "fn b() {}").unwrap();
        std::fs::write(b.join("src/extra.rs"), "").unwrap();
        std::fs::write(a.join("Cargo.toml.orig"), "[package]\nversion = \"1\"").unwrap();
        assert_eq!(
            differences(&a, &b).unwrap(),
            ["Cargo.toml.orig", "src/extra.rs (only in the feed's)", "src/lib.rs"]
        );
        std::fs::remove_dir_all(&base).unwrap();
    }
}
