//! Whether cargo can use a feed, asked with a real authenticated request: the one
//! feed check the login tasks, doctor and rotate-pat share. A `cargo login` does not
//! ask the feed whether a token is good, so every task that stores or hands over a
//! token checks it here.

use anyhow::bail;
use camino::Utf8Path;

use crate::cargo::{self, Access};
use crate::feeds::Registry;
use crate::gha;
use crate::secret::SecretEnv;

/// Checks each feed and prints one line per feed; returns the failed ones as
/// `name (verdict)`. `env` goes to cargo's environment (a token not stored);
/// `forms` are the secrets of the run, redacted from every verdict.
pub fn check_feeds(feeds: &[Registry], env: &SecretEnv, forms: &[String]) -> anyhow::Result<Vec<String>> {
    let mut failed = Vec::new();
    for (feed, access) in feeds.iter().zip(check_all(&crate::project_root(), feeds, env, forms)) {
        let access = access?;
        eprintln!("check: {}: {access}", feed.name);
        if access != Access::Ok {
            eprintln!("check: {}: {}", feed.name, access.hint());
            gha::error_titled(&format!("feed {}", feed.name), &format!("{access}: {}", access.hint()));
            failed.push(format!("{} ({access})", feed.name));
        }
    }
    Ok(failed)
}

/// The access checks of `feeds`, one thread each: a feed that does not answer
/// costs one time limit in all, not one per feed. In the order of `feeds`.
pub fn check_all(
    dir: &Utf8Path,
    feeds: &[Registry],
    env: &SecretEnv,
    forms: &[String],
) -> Vec<anyhow::Result<Access>> {
    std::thread::scope(|scope| {
        let checks: Vec<_> = feeds
            .iter()
            .map(|feed| scope.spawn(move || cargo::check_access(dir, feed, env, forms)))
            .collect();
        checks
            .into_iter()
            .map(|check| check.join().unwrap_or_else(|_| bail!("the access check thread panicked")))
            .collect()
    })
}
