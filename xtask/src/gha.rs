//! GitHub Actions' workflow commands and `$GITHUB_ENV` / `$GITHUB_STEP_SUMMARY` files.
//! Outside Actions each does nothing (a group prints its title): call them anyway.

use std::io::Write;

use anyhow::{Context, bail};

use crate::secret::Secret;

pub fn is_actions() -> bool {
    std::env::var_os("GITHUB_ACTIONS").is_some_and(|v| v == "true")
}

/// Registers every form of a secret with the log masker, before anything could print one.
pub fn mask(forms: &[String]) {
    // A line break would end the command early: each line is masked.
    for form in forms {
        form.lines().filter(|l| !l.trim().is_empty()).for_each(|line| command("add-mask", line));
    }
}

/// Runs `f` inside a collapsible log group.
pub fn group<T>(title: &str, f: impl FnOnce() -> T) -> T {
    if !is_actions() {
        eprintln!("{title}");
    }
    command("group", title);
    let result = f();
    command("endgroup", "");
    result
}

/// An error annotation, titled if `title` is given; outside Actions the caller prints the error itself.
pub fn error(title: Option<&str>, message: &str) {
    let title = title.map_or(String::new(), |title| format!(" title={}", escape_property(title)));
    command(&format!("error{title}"), message);
}

/// A warning on stderr and, in Actions, as an annotation.
pub fn warning(message: &str) {
    eprintln!("warning: {message}");
    command("warning", message);
}

fn command(name: &str, data: &str) {
    if is_actions() {
        let mut out = std::io::stdout().lock();
        let _ = writeln!(out, "::{name}::{}", escape_data(data)).and_then(|()| out.flush());
    }
}

/// Exports a variable to later steps through `$GITHUB_ENV` (never a command line); fails outside Actions.
pub fn export_env(name: &str, value: &Secret) -> anyhow::Result<()> {
    let Some(path) = std::env::var_os("GITHUB_ENV") else {
        bail!("GITHUB_ENV is not set: exporting to later steps works only inside a GitHub Actions job");
    };
    // A line an earlier step left open would swallow ours, making the value a variable.
    let open = std::fs::read(path).is_ok_and(|text| text.last().is_some_and(|&last| last != b'\n'));
    let delimiter = format!("XTASK_EOF_{}", std::process::id());
    let text = format!("{name}<<{delimiter}\n{}\n{delimiter}\n", value.expose());
    append("GITHUB_ENV", &if open { format!("\n{text}") } else { text })
}

pub fn summary(markdown: &str) -> anyhow::Result<()> {
    append("GITHUB_STEP_SUMMARY", markdown)
}

/// Appends `text` to the file that `var` names, if it names one.
fn append(var: &str, text: &str) -> anyhow::Result<()> {
    let Some(path) = std::env::var_os(var) else { return Ok(()) };
    let mut options = std::fs::OpenOptions::new();
    // A file made here (outside Actions, the runner makes them) may get a token: the user's alone.
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let file = options.append(true).create(true).open(&path);
    let mut file = file.with_context(|| format!("cannot append to ${var} ({})", path.to_string_lossy()))?;
    file.write_all(text.as_bytes()).with_context(|| format!("cannot write to ${var}"))
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
