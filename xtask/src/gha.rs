//! The one way to talk to GitHub Actions: workflow commands on stdout and the
//! `$GITHUB_ENV` / `$GITHUB_STEP_SUMMARY` files. Outside Actions every function
//! here does nothing (or, for groups, prints a plain heading), so tasks call them
//! unconditionally.

use std::io::Write;

use anyhow::Context;

use crate::secret::Secret;

/// Whether this process runs as a GitHub Actions step.
pub fn is_actions() -> bool {
    std::env::var_os("GITHUB_ACTIONS").is_some_and(|v| v == "true")
}

/// Registers every form of a secret with the runner's log masker. Call before
/// anything that could print one of them.
pub fn mask<S: AsRef<str>>(forms: &[S]) {
    if !is_actions() {
        return;
    }
    let mut out = std::io::stdout().lock();
    for form in forms {
        // A value with a line break would end the command early; every line is a form.
        for line in form.as_ref().lines().filter(|l| !l.trim().is_empty()) {
            let _ = writeln!(out, "::add-mask::{}", escape_data(line));
        }
    }
    let _ = out.flush();
}

/// Runs `f` inside a collapsible log group (`::group::`); outside Actions the title is
/// a plain progress line.
pub fn group<T>(title: &str, f: impl FnOnce() -> T) -> T {
    if is_actions() {
        println!("::group::{}", escape_data(title));
    } else {
        eprintln!("{title}");
    }
    let result = f();
    if is_actions() {
        println!("::endgroup::");
    }
    result
}

/// An error annotation on the run (`::error::`); nothing outside Actions, where the
/// caller prints the error itself.
pub fn error(message: &str) {
    if is_actions() {
        println!("::error::{}", escape_data(message));
    }
}

/// A warning annotation on the run (`::warning::`); nothing outside Actions, where the
/// caller prints the warning itself.
pub fn warning(message: &str) {
    if is_actions() {
        println!("::warning::{}", escape_data(message));
    }
}

/// An error annotation with a title (`::error title=T::MSG`).
pub fn error_titled(title: &str, message: &str) {
    if is_actions() {
        println!("::error title={}::{}", escape_property(title), escape_data(message));
    }
}

/// Exports a variable to the later steps of the job through `$GITHUB_ENV`, in the
/// delimiter form, so the value never appears in a command line. Fails outside
/// Actions: there are no later steps to export to.
pub fn export_env(name: &str, value: &Secret) -> anyhow::Result<()> {
    append_env(name, value.expose())
}

/// [`export_env`] for a value that is no secret (a provider name).
pub fn export_plain(name: &str, value: &str) -> anyhow::Result<()> {
    append_env(name, value)
}

fn append_env(name: &str, value: &str) -> anyhow::Result<()> {
    let path = std::env::var_os("GITHUB_ENV")
        .context("GITHUB_ENV is not set: exporting to later steps works only inside a GitHub Actions job")?;
    let delimiter = format!("XTASK_EOF_{}", std::process::id());
    let mut file = std::fs::OpenOptions::new()
        .append(true)
        .open(&path)
        .with_context(|| format!("cannot append to $GITHUB_ENV ({})", path.to_string_lossy()))?;
    write!(file, "{name}<<{delimiter}\n{value}\n{delimiter}\n")
        .with_context(|| format!("cannot append {name} to $GITHUB_ENV"))
}

/// Appends Markdown to the step summary when there is one.
pub fn summary(markdown: &str) -> anyhow::Result<()> {
    let Some(path) = std::env::var_os("GITHUB_STEP_SUMMARY") else { return Ok(()) };
    let mut file = std::fs::OpenOptions::new()
        .append(true)
        .create(true)
        .open(&path)
        .with_context(|| format!("cannot append to $GITHUB_STEP_SUMMARY ({})", path.to_string_lossy()))?;
    file.write_all(markdown.as_bytes()).context("cannot write the step summary")
}

fn escape_data(s: &str) -> String {
    s.replace('%', "%25").replace('\r', "%0D").replace('\n', "%0A")
}

fn escape_property(s: &str) -> String {
    escape_data(s).replace(':', "%3A").replace(',', "%2C")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_follow_the_runner_rules() {
        assert_eq!(escape_data("50%\r\nnext"), "50%25%0D%0Anext");
        assert_eq!(escape_property("a:b,c%"), "a%3Ab%2Cc%25");
    }
}
