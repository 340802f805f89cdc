//! Whether cargo can use a feed, by a real authenticated request: `cargo login` never
//! asks the feed, so every task that stores or hands over a token checks it here.

use anyhow::{Result, bail};

use crate::cargo::{self, FeedError, Need};
use crate::feeds::Registry;
use crate::gha;
use crate::secret::SecretEnv;

/// Checks each feed, one line each; returns the failed ones as `name (verdict)`.
/// `env` goes to cargo's environment; `forms` are redacted from every verdict.
pub fn check_feeds(feeds: &[Registry], env: &SecretEnv, forms: &[String]) -> Result<Vec<String>> {
    let mut failed = Vec::new();
    for (feed, access) in feeds.iter().zip(check_all(feeds, env, forms)) {
        match access? {
            None => eprintln!("check: {}: ok", feed.name),
            Some(err) => {
                eprintln!("check: {}: {err}\ncheck: {}: {}", feed.name, feed.name, err.hint(Need::Read));
                failed.push(report(feed, &err));
            }
        }
    }
    Ok(failed)
}

/// Annotates a failed feed for GitHub; returns `name (error)`.
pub fn report(feed: &Registry, err: &FeedError) -> String {
    gha::error_titled(&format!("feed {}", feed.name), &format!("{err}: {}", err.hint(Need::Read)));
    format!("{} ({err})", feed.name)
}

/// The checks of `feeds` in their order, one thread each: a feed that does not answer
/// costs one time limit in all.
pub fn check_all(feeds: &[Registry], env: &SecretEnv, forms: &[String]) -> Vec<Result<Option<FeedError>>> {
    let dir = &crate::project_root();
    std::thread::scope(|scope| {
        let checks: Vec<_> = feeds
            .iter()
            .map(|feed| scope.spawn(move || cargo::check_access(dir, feed, env, forms)))
            .collect();
        let joined = checks.into_iter().map(|check| check.join());
        joined.map(|result| result.unwrap_or_else(|_| bail!("the access check thread panicked"))).collect()
    })
}
