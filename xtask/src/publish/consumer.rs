//! Checks that the host still builds against what is about to be published, before
//! an upload that cannot be taken back.
//!
//! The crates verify fine on their own: it is the consumer that breaks. mshv at
//! `52edcf4` requires `vmm-sys-util = ">=0.2.1"`; resolved fresh today that takes
//! 0.15 while `kvm-ioctls` takes 0.11, and `hyperlight_host` fails on error types
//! that no longer convert. So, after packaging, the host workspace's members that
//! depend on the crates are built against the packaged crates (cargo's `[patch]`,
//! through `--config`) in a copy of the host (its `Cargo.lock` included), and the
//! run stops when they do not compile. And every requirement of a packaged crate
//! with no upper bound gets a warning: that is how a fresh resolution breaks.

use std::time::Instant;

use anyhow::{Context, bail};
use camino::Utf8Path;

use super::manifest::{self, Kind};
use super::workspace::Workspace;
use super::{CratePlan, Engine, tail};
use crate::gha;
use crate::git::{self, Git};

/// Warns, per dependency of each packaged crate, about requirements with no upper
/// bound (`>=X`, `>X`, `*`). Returns the warnings, also printed.
pub fn warn_unbounded(crates: &[CratePlan]) -> anyhow::Result<Vec<String>> {
    let mut warnings = Vec::new();
    for krate in crates {
        let path = krate.packaged.join("Cargo.toml");
        let text = std::fs::read_to_string(&path).with_context(|| format!("cannot read {path}"))?;
        for dep in manifest::dependencies(&path, &text)? {
            let Some(requirement) =
                dep.requirement.as_deref().filter(|r| dep.kind != Kind::Dev && is_unbounded(r))
            else {
                continue;
            };
            warnings.push(format!(
                "{} {} requires {} `{requirement}`, with no upper bound: a fresh resolution takes the newest \
                 {}, which a consumer may not build with (mshv at 52edcf4 with vmm-sys-util 0.15 breaks \
                 hyperlight_host); consumers should pin it in their Cargo.lock",
                krate.name, krate.version, dep.package, dep.package
            ));
        }
    }
    for warning in &warnings {
        eprintln!("warning: {warning}");
        gha::warning(warning);
    }
    Ok(warnings)
}

/// Whether no version is too new for `requirement`: every comparator is `>`,
/// `>=` or `*`.
fn is_unbounded(requirement: &str) -> bool {
    requirement.split(',').map(str::trim).all(|c| c == "*" || c.starts_with('>'))
}

/// Builds the members of the workspace at `host` that depend on `crates` from the
/// engine's feed, against the packaged crates. `Ok` when it built, or when there
/// is nothing to build (said in a progress line); an error, before any upload,
/// when a member does not compile. In a dry run, a feed the host needs but cannot
/// read (no credentials) skips the check with a warning instead.
pub fn check(
    engine: &mut Engine,
    host: &Utf8Path,
    crates: &[CratePlan],
    dry_run: bool,
) -> anyhow::Result<()> {
    let t = Instant::now();
    if !host.join("Cargo.toml").is_file() {
        engine.stage("consumer", &format!("no workspace at {host}: nothing to build against the crates"), t);
        return Ok(());
    }
    let feed = engine.registry().name.clone();
    let ws = Workspace::read(host).with_context(|| format!("reading the host workspace at {host}"))?;
    let consumers: Vec<&str> = ws
        .members
        .iter()
        .filter(|m| crates.iter().any(|c| ws.depends_on(m, &c.name, &feed)))
        .map(|m| m.name.as_str())
        .collect();
    let names: Vec<&str> = crates.iter().map(|c| c.name.as_str()).collect();
    if consumers.is_empty() {
        engine.stage(
            "consumer",
            &format!("no member of {host} depends on {} from {feed}", names.join(", ")),
            t,
        );
        return Ok(());
    }

    let copy = engine.work().join("consumer");
    Git::find()?.snapshot(engine.sh, host, &copy)?;
    // Each packaged crate stands in for the feed's, under the feed's name and under
    // the empty index's URL, which the packaged dependents name their dependencies by.
    let index = git::file_url(&engine.work().join("empty-index"));
    let mut patches = Vec::new();
    for krate in crates {
        let path = toml_edit::Value::from(krate.packaged.as_str());
        patches.push(format!("patch.{feed}.{}.path={path}", krate.name));
        patches.push(format!("patch.{}.{}.path={path}", toml_edit::Value::from(index.as_str()), krate.name));
    }
    let mut args = vec!["check"];
    for consumer in &consumers {
        args.extend(["-p", consumer]);
    }
    for patch in &patches {
        args.extend(["--config", patch.as_str()]);
    }
    let out = engine.cargo(&copy, &args, true)?;
    if out.success {
        engine.stage(
            "consumer",
            &format!("{} of {host} built against the packaged {}", consumers.join(", "), names.join(", ")),
            t,
        );
        return Ok(());
    }
    // A build that failed says so (`could not compile`); anything else stopped
    // before the build, at resolving the host's dependencies: a feed's problem,
    // read by the one classifier of cargo's messages.
    if !out.stderr.contains("could not compile") {
        let why = super::feed_error(&feed, &out.stderr, crate::cargo::Need::Read);
        if dry_run {
            let warning = format!(
                "skipped the consumer check: resolving {} needs a feed this dry run cannot read: {why:#}",
                consumers.join(", ")
            );
            eprintln!("warning: {warning}");
            gha::warning(&warning);
            return Ok(());
        }
        let what = format!("cannot resolve {} of {host} for the consumer check", consumers.join(", "));
        return Err(why.context(what));
    }
    bail!(
        "{} of {host} do not build against the packaged {}; nothing was uploaded:\n{}\n\
         Publish a rev they build with, or skip this check with --no-consumer-check",
        consumers.join(", "),
        names.join(", "),
        tail(&out.stderr)
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requirements_without_an_upper_bound() {
        for unbounded in [">=0.2.1", "> 1", "*", ">=1.0, >1.1"] {
            assert!(is_unbounded(unbounded), "{unbounded}");
        }
        for bounded in ["0.2.1", "^0.2", "~1.2", "=0.1.1", ">=0.2, <0.4", "0.*", "<2"] {
            assert!(!is_unbounded(bounded), "{bounded}");
        }
    }
}
