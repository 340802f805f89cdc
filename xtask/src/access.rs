//! Whether cargo can use a feed, by a real authenticated request: `cargo login` never
//! asks the feed, so every task that stores or hands over a token checks it here.

use std::time::Duration;

use anyhow::{Context, Result, bail};
use camino::Utf8Path;

use crate::cargo::{FeedError, Need, classify};
use crate::feeds::Registry;
use crate::run::{self, RunError, RunErrorKind};
use crate::secret::SecretEnv;
use crate::{gha, workdir::WorkDir};

/// A crate no feed holds: asking for it makes cargo fetch the feed's `config.json`
/// and an index file with its token, and "not found" proves the token was accepted.
const PROBE_CRATE: &str = "hyperlight-xtask-access-probe";

/// Cargo gives up on a silent request after a quarter of it, with one retry, so on a
/// hanging feed cargo's own message comes first and the limit is the backstop.
const PROBE_TIMEOUT: Duration = Duration::from_secs(60);

/// Checks `feeds`, one thread each (a silent feed costs one time limit in all), `show`s
/// each verdict in order; returns the failed ones as `name (verdict)`.
pub fn check_feeds(
    feeds: &[Registry],
    env: &SecretEnv,
    show: &dyn Fn(&Registry, Option<&FeedError>),
) -> Result<Vec<String>> {
    std::thread::scope(|scope| {
        let threads: Vec<_> = feeds.iter().map(|feed| scope.spawn(move || check(feed, env))).collect();
        let mut failed = Vec::new();
        for (feed, thread) in feeds.iter().zip(threads) {
            let verdict = thread.join().unwrap_or_else(|_| bail!("the access check thread panicked"))?;
            show(feed, verdict.as_ref());
            if let Some(err) = verdict {
                let hint = err.hint(Need::Read);
                gha::error(Some(&format!("feed {}", feed.name)), &format!("{err}: {hint}"));
                failed.push(format!("{} ({err})", feed.name));
            }
        }
        Ok(failed)
    })
}

/// A verdict as the login tasks and rotate-pat show it.
pub fn show_line(feed: &Registry, verdict: Option<&FeedError>) {
    match verdict {
        None => eprintln!("check: {}: ok", feed.name),
        Some(err) => eprintln!("check: {}: {err}\ncheck: {}: {}", feed.name, feed.name, err.hint(Need::Read)),
    }
}

/// Asks cargo for a crate of `feed` (`None`: accepted) in the xtask's own workspace: cargo reads
/// the repo's config on its way up, and `cargo info` at the host's root would rewrite the host's lock.
fn check(feed: &Registry, env: &SecretEnv) -> Result<Option<FeedError>> {
    let home = probe_home(&feed.name)?;
    let http_timeout = (run::timeout_or(PROBE_TIMEOUT).as_secs() / 4).max(1).to_string();
    let xtask_dir = crate::tool::project_root().join("xtask");
    let result = run::cargo(&xtask_dir, &["info", "--registry", &feed.name, PROBE_CRATE])
        .timeout(PROBE_TIMEOUT)
        .env("CARGO_HTTP_TIMEOUT", &http_timeout)
        .env("CARGO_NET_RETRY", "1")
        .env("CARGO_HOME", home.path().as_str())
        .secret_env(env)
        .output();
    let Err(err) = result else { return Ok(None) };
    let not_found = format!("could not find `{PROBE_CRATE}`");
    match err.kind {
        RunErrorKind::Exit { stderr, .. } if stderr.contains(&not_found) => Ok(None),
        // Cargo names the config it read by the probe's link: the user's is the file to fix.
        RunErrorKind::Exit { stderr, .. } => {
            let real = crate::cargo_home::cargo_home()?;
            Ok(Some(classify(&stderr.replace(home.path().as_str(), real.as_str()))))
        }
        RunErrorKind::TimedOut { limit } => Ok(Some(FeedError::TimedOut { after: limit })),
        kind => Err(RunError { kind, ..err }.into()),
    }
}

/// A private `CARGO_HOME` with the real one's config and credentials: cargo locks its home's
/// package cache while it updates an index, so checks sharing a home would wait for each other.
fn probe_home(feed: &str) -> Result<WorkDir> {
    let real = crate::cargo_home::cargo_home()?;
    let home = WorkDir::create(&format!("check-{feed}"), false)?;
    let walked = read_on_the_way_up(&real, &crate::tool::project_root());
    for name in ["config.toml", "config", "credentials.toml", "credentials"] {
        let from = real.join(name);
        if from.is_file() && !(walked && name.starts_with("config")) {
            // Linked, not copied: no second file holds the tokens, even after a crash.
            #[cfg(unix)]
            let link = std::fs::canonicalize(&from)
                .and_then(|from| std::os::unix::fs::symlink(from, home.path().join(name)));
            #[cfg(not(unix))]
            let link = std::fs::copy(&from, home.path().join(name));
            link.with_context(|| format!("cannot link {from} for the access check"))?;
        }
    }
    Ok(home)
}

/// Whether cargo in `root` reads `home`'s config on its way up (`~/.cargo` for a repo under `~`):
/// copied into a probe's home too, it would be read twice, its lists joined.
fn read_on_the_way_up(home: &Utf8Path, root: &Utf8Path) -> bool {
    let Ok(home) = home.canonicalize() else { return false };
    let dot_cargo = |dir: &std::path::Path| dir.join(".cargo").canonicalize().is_ok_and(|d| d == home);
    root.canonicalize().is_ok_and(|root| root.ancestors().any(dot_cargo))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_home_above_the_repo_is_read_on_the_way_up() {
        let dir = WorkDir::create("test-way-up", false).unwrap();
        let (home, repo) = (dir.path().join(".cargo"), dir.path().join("src/repo"));
        let elsewhere = dir.path().join("elsewhere/.cargo");
        for path in [&home, &repo, &elsewhere] {
            std::fs::create_dir_all(path).unwrap();
        }
        assert!(read_on_the_way_up(&home, &repo));
        assert!(!read_on_the_way_up(&elsewhere, &repo));
        assert!(!read_on_the_way_up(&dir.path().join("missing"), &repo));
        // A home set through a link: cargo 1.95 sees the same file (measured), so does this.
        #[cfg(unix)]
        {
            std::os::unix::fs::symlink(dir.path(), dir.path().join("link")).unwrap();
            assert!(read_on_the_way_up(&dir.path().join("link/.cargo"), &repo));
        }
    }
}
