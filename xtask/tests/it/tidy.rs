//! The repo's own glue, checked by the real tools instead of by eye: the workflows
//! by a schema validator, the justfile by the real `just`, and the docs, help texts,
//! dependency comments and `.ci/run` against each other. A tool that is missing is
//! a failure saying how to get it, never a skip.

use std::collections::BTreeSet;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use xtask_harness::repo_root;

// ---------------------------------------------------------------- helpers

fn read(path: &Path) -> String {
    fs::read_to_string(path).unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()))
}

fn run(cmd: &mut Command) -> Output {
    let label = format!("{cmd:?}");
    cmd.output().unwrap_or_else(|e| panic!("cannot run {label}: {e}"))
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// A pinned tool the tests drive: env `var` when set, else where `cargo xtask test`
/// installs it under `~/.cache/hyperlight-xtask`. Panics when missing: a glue check
/// that skips would let a broken workflow or justfile through unnoticed.
fn pinned_tool(var: &str, name: &str, cache_relative: &[&str]) -> PathBuf {
    let path = match std::env::var_os(var) {
        Some(p) if !p.is_empty() => PathBuf::from(p),
        _ => {
            let home = std::env::var_os("HOME")
                .or_else(|| std::env::var_os("USERPROFILE"))
                .map(PathBuf::from)
                .expect("neither HOME nor USERPROFILE is set");
            cache_relative.iter().fold(home.join(".cache").join("hyperlight-xtask"), |p, c| p.join(c))
        }
    };
    assert!(
        path.is_file(),
        "{name} not found at {}: run `cargo xtask test` (installs it once per machine), or set {var} \
         to its path",
        path.display()
    );
    path
}

fn action_validator() -> PathBuf {
    let exe = if cfg!(windows) { "action-validator.cmd" } else { "action-validator" };
    pinned_tool(
        "XTASK_ACTION_VALIDATOR",
        "action-validator (npm @action-validator/cli 0.6.0)",
        &["action-validator-0.6.0", "node_modules", ".bin", exe],
    )
}

fn just() -> PathBuf {
    let exe = format!("just{}", std::env::consts::EXE_SUFFIX);
    pinned_tool("XTASK_JUST", "just 1.59.0", &["just-1.59.0", "bin", &exe])
}

/// The task names, as `cargo xtask --help` lists them (clap's own `help` left out).
fn tasks() -> Vec<String> {
    let out = run(Command::new(crate::xtask_bin()).arg("--help"));
    assert!(out.status.success(), "`cargo xtask --help` failed:\n{}", text(&out.stderr));
    let help = text(&out.stdout);
    let list: Vec<String> = help
        .lines()
        .skip_while(|l| l.trim() != "Commands:")
        .skip(1)
        .take_while(|l| !l.trim().is_empty())
        .filter_map(|l| l.split_whitespace().next())
        .filter(|name| *name != "help")
        .map(str::to_owned)
        .collect();
    assert!(list.len() >= 8, "too few tasks parsed from `cargo xtask --help`:\n{help}");
    list
}

/// The commands of the fenced code blocks of `markdown`, continuation lines joined,
/// comments and blank lines left out.
fn fenced_commands(markdown: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut inside = false;
    let mut pending = String::new();
    for line in markdown.lines() {
        let trimmed = line.trim();
        if trimmed.starts_with("```") {
            inside = !inside;
            continue;
        }
        if !inside || trimmed.is_empty() || trimmed.starts_with('#') {
            continue;
        }
        if let Some(head) = trimmed.strip_suffix('\\') {
            pending.push_str(head);
            continue;
        }
        pending.push_str(trimmed);
        out.push(std::mem::take(&mut pending));
    }
    out
}

/// The lines of `markdown` from heading `title` up to the next heading of the same
/// or a higher level.
fn section<'a>(markdown: &'a str, title: &str) -> &'a str {
    let level_of = |l: &str| l.chars().take_while(|c| *c == '#').count();
    let start = markdown
        .lines()
        .find(|l| level_of(l) > 0 && l.trim_start_matches('#').trim() == title)
        .unwrap_or_else(|| panic!("README.md has no section `{title}`"));
    let level = level_of(start);
    let from = markdown.find(start).unwrap() + start.len();
    let rest = &markdown[from..];
    let mut end = rest.len();
    let mut offset = 0;
    let mut in_fence = false;
    for line in rest.split_inclusive('\n') {
        if line.trim_start().starts_with("```") {
            in_fence = !in_fence;
        }
        let l = level_of(line);
        if !in_fence && l > 0 && l <= level {
            end = offset;
            break;
        }
        offset += line.len();
    }
    &rest[..end]
}

/// The Markdown files the tasks must be documented in: README.md and docs/*.md.
fn docs_files() -> Vec<PathBuf> {
    let dir = repo_root().join("docs");
    let mut files: Vec<PathBuf> = fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("cannot list {}: {e}", dir.display()))
        .map(|e| e.expect("docs/ entry").path())
        .filter(|p| p.extension().is_some_and(|e| e == "md"))
        .collect();
    files.sort();
    files
}

/// The line of `text` that starts with `cargo xtask <task>` (after any `VAR=value`
/// assignments, as in `PAT=... cargo xtask cargo-login-ci`).
fn has_example(text: &str, task: &str) -> bool {
    text.lines().any(|l| {
        let words: Vec<&str> = l.split_whitespace().skip_while(|w| w.contains('=')).collect();
        words.len() >= 3 && words[0] == "cargo" && words[1] == "xtask" && words[2] == task
    })
}

// ---------------------------------------------------------------- workflows

#[test]
fn workflows_validate_with_action_validator() {
    let validator = action_validator();
    let dir = repo_root().join(".github").join("workflows");
    let mut workflows: Vec<PathBuf> = fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("cannot list {}: {e}", dir.display()))
        .map(|e| e.expect("workflow entry").path())
        .filter(|p| p.extension().is_some_and(|e| e == "yml" || e == "yaml"))
        .collect();
    workflows.sort();
    assert!(!workflows.is_empty(), "no workflows in {}", dir.display());
    let mut failures = Vec::new();
    for wf in &workflows {
        // From the repo root: the validator checks glob filters against the tree.
        let out = run(Command::new(&validator).arg(wf).current_dir(repo_root()));
        if !out.status.success() {
            failures.push(format!("{}:\n{}{}", wf.display(), text(&out.stdout), text(&out.stderr)));
        }
    }
    assert!(failures.is_empty(), "workflows rejected by action-validator:\n{}", failures.join("\n"));
}

/// The validator must reject a broken workflow, or the check above proves nothing.
#[test]
fn action_validator_rejects_a_broken_workflow() {
    let validator = action_validator();
    let dir = std::env::temp_dir().join(format!("xtask-tidy-{}", std::process::id()));
    fs::create_dir_all(&dir).unwrap();
    let bad = dir.join("bad.yml");
    fs::write(&bad, "name: bad\non: push\njobs:\n  a:\n    runs-on: ubuntu-latest\n    stepz: []\n").unwrap();
    let out = run(Command::new(&validator).arg(&bad).current_dir(&dir));
    let _ = fs::remove_dir_all(&dir);
    assert!(!out.status.success(), "action-validator accepted a job with `stepz`");
}

/// ci.yml caches the pinned tools under a key naming their versions; a bump in
/// `test_task.rs` must show in the key, or CI keeps restoring the old tools.
#[test]
fn ci_cache_key_names_the_pinned_tool_versions() {
    let root = repo_root();
    let task = read(&root.join("xtask").join("src").join("test_task.rs"));
    let ci = read(&root.join(".github").join("workflows").join("ci.yml"));
    let key = ci
        .lines()
        .find_map(|l| l.trim().strip_prefix("key:"))
        .expect("ci.yml has no actions/cache `key:`")
        .trim();
    for (konst, tool) in [("KELLNR", "kellnr"), ("JUST", "just"), ("ACTION_VALIDATOR", "action-validator")] {
        let prefix = format!("const {konst}: &str = \"");
        let version = task
            .lines()
            .find_map(|l| l.trim().strip_prefix(prefix.as_str()))
            .and_then(|rest| rest.split('"').next())
            .unwrap_or_else(|| panic!("test_task.rs has no `{prefix}...\";`"));
        let want = format!("{tool}-{version}");
        assert!(key.contains(&want), "ci.yml cache key `{key}` lacks `{want}` (pinned in test_task.rs)");
    }
}

// ---------------------------------------------------------------- justfile

/// The recipes of the old justfile and the task each must call now.
const OLD_RECIPES: [(&str, &str); 4] = [
    ("cargo-login", "cargo-login"),
    ("cargo-login-ci", "cargo-login-ci"),
    ("cargo-login-ci-windows", "cargo-login-ci"),
    ("publish-redist", "publish-redist"),
];

fn just_cmd() -> Command {
    let mut cmd = Command::new(just());
    cmd.arg("--justfile").arg(repo_root().join("justfile")).current_dir(repo_root());
    cmd
}

#[test]
fn every_recipe_is_one_call_of_its_task() {
    let out = run(just_cmd().arg("--summary"));
    assert!(out.status.success(), "`just --summary` failed:\n{}", text(&out.stderr));
    let recipes: Vec<String> = text(&out.stdout).split_whitespace().map(str::to_owned).collect();
    for (old, _) in OLD_RECIPES {
        assert!(recipes.iter().any(|r| r == old), "the justfile lost the old recipe `{old}`: {recipes:?}");
    }
    let tasks = tasks();
    for recipe in &recipes {
        let task = OLD_RECIPES.iter().find(|(r, _)| r == recipe).map_or(recipe.as_str(), |(_, t)| *t);
        // `--dry-run` prints the recipe's lines to stderr instead of running them.
        let out = run(just_cmd().args(["--dry-run", recipe]));
        assert!(out.status.success(), "`just --dry-run {recipe}` failed:\n{}", text(&out.stderr));
        let printed = text(&out.stderr);
        let lines: Vec<&str> = printed.lines().filter(|l| !l.trim().is_empty()).collect();
        assert_eq!(lines.len(), 1, "recipe `{recipe}` must be one line, it prints:\n{printed}");
        let want = format!("cargo xtask {task} ");
        assert!(
            lines[0].starts_with(&want) || lines[0] == want.trim_end(),
            "recipe `{recipe}` should call `cargo xtask {task}`, it prints:\n{printed}"
        );
        assert!(
            task == "help" || tasks.iter().any(|t| t == task),
            "recipe `{recipe}` calls `{task}`, which `cargo xtask --help` does not list: {tasks:?}"
        );
    }
}

/// Extra arguments reach the task one by one, spaces and quotes intact: the real
/// `just` runs its real `sh`, with a `cargo` stand-in first on `PATH` that records
/// its argv (the real cargo would get the same).
#[cfg(unix)]
#[test]
fn recipes_pass_arguments_through_unchanged() {
    let mut sb = xtask_harness::Sandbox::new(crate::xtask_bin());
    sb.install_recording_standin("cargo", "exit 0\n");
    let justfile = repo_root().join("justfile");
    let just = just();
    let out = sb.run(
        just.to_str().expect("UTF-8 path of just"),
        &[
            "--justfile",
            justfile.to_str().expect("UTF-8 repo path"),
            "cargo-login-ci-windows",
            "--pat-env",
            "A B",
            "it's \"quoted\"",
        ],
        &repo_root(),
    );
    out.assert_success();
    let calls: Vec<Vec<String>> = sb.calls("cargo").into_iter().map(|c| c.argv).collect();
    assert_eq!(
        calls,
        vec![vec!["xtask", "cargo-login-ci", "--pat-env", "A B", "it's \"quoted\""]],
        "just should run exactly one cargo with the arguments unchanged"
    );
}

// ---------------------------------------------------------------- docs and help

#[test]
fn every_task_is_documented_with_an_example_in_readme_and_docs() {
    let root = repo_root();
    let readme = read(&root.join("README.md"));
    let docs: String = docs_files().iter().map(|p| read(p)).collect::<Vec<_>>().join("\n");
    assert!(!docs.is_empty(), "docs/ holds no Markdown");
    let mut missing = Vec::new();
    for task in tasks() {
        if !has_example(&readme, &task) {
            missing.push(format!("README.md has no example line `cargo xtask {task} ...`"));
        }
        if !docs.contains(&format!("cargo xtask {task}")) {
            missing.push(format!("docs/*.md never mention `cargo xtask {task}`"));
        }
    }
    assert!(missing.is_empty(), "undocumented tasks:\n{}", missing.join("\n"));
}

#[test]
fn every_task_help_has_examples_and_says_cargo_xtask() {
    let mut problems = Vec::new();
    for task in tasks() {
        let out = run(Command::new(crate::xtask_bin()).args([task.as_str(), "--help"]));
        let help = text(&out.stdout);
        if !out.status.success() {
            problems.push(format!("`cargo xtask {task} --help` failed:\n{}", text(&out.stderr)));
            continue;
        }
        if !help.contains(&format!("Usage: cargo xtask {task}")) {
            problems.push(format!("`{task} --help` does not show `Usage: cargo xtask {task}`:\n{help}"));
        }
        let examples: String =
            help.lines().skip_while(|l| l.trim() != "Examples:").skip(1).collect::<Vec<_>>().join("\n");
        if !has_example(&examples, &task) {
            problems.push(format!(
                "`{task} --help` lacks an `Examples:` section with a `cargo xtask {task}` line \
                 (add `after_help` to the task's `#[command]`):\n{help}"
            ));
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n\n"));
}

/// Relative links in README.md and docs/*.md lead to files that exist.
#[test]
fn relative_links_in_the_docs_resolve() {
    let root = repo_root();
    let mut files = vec![root.join("README.md")];
    files.extend(docs_files());
    let mut broken = Vec::new();
    for file in &files {
        let body = read(file);
        for target in body.split("](").skip(1).filter_map(|rest| rest.split(')').next()) {
            let target = target.split('#').next().unwrap_or("");
            if target.is_empty() || target.contains("://") || target.starts_with("mailto:") {
                continue;
            }
            let resolved = file.parent().unwrap().join(target);
            if !resolved.exists() {
                broken.push(format!("{}: `{target}`", file.display()));
            }
        }
    }
    assert!(broken.is_empty(), "links to missing files:\n{}", broken.join("\n"));
}

/// The benchmark the README names exists where the README says.
#[test]
fn readme_names_the_build_benchmark() {
    let root = repo_root();
    let readme = read(&root.join("README.md"));
    let command = "cargo run -p xtask-harness --release --bin bench-build";
    assert!(readme.contains(command), "README.md should tell how to run the benchmark: `{command}`");
    let source = root.join("xtask").join("harness").join("src").join("bin").join("bench-build.rs");
    assert!(source.is_file(), "{} is missing", source.display());
}

// ---------------------------------------------------------------- dependencies

#[test]
fn every_dependency_has_a_comment_saying_why() {
    let root = repo_root();
    let mut problems = Vec::new();
    for manifest in
        [root.join("xtask").join("Cargo.toml"), root.join("xtask").join("harness").join("Cargo.toml")]
    {
        let body = read(&manifest);
        let lines: Vec<&str> = body.lines().collect();
        let mut in_deps = false;
        for (i, line) in lines.iter().enumerate() {
            let t = line.trim();
            if t.starts_with('[') {
                // `[dependencies]` opens a table of entries; `[dependencies.NAME]` is one.
                let header = t.trim_matches(|c| c == '[' || c == ']').trim();
                in_deps = header.ends_with("dependencies");
                let one_entry = header.contains("dependencies.");
                if one_entry && !commented(&lines, i) {
                    problems.push(format!("{}:{}: `{t}` has no comment above it", manifest.display(), i + 1));
                }
                continue;
            }
            if in_deps && !t.is_empty() && !t.starts_with('#') && t.contains('=') && !commented(&lines, i) {
                problems.push(format!("{}:{}: `{t}` has no comment above it", manifest.display(), i + 1));
            }
        }
    }
    assert!(
        problems.is_empty(),
        "each dependency needs a comment line right above it saying why it is worth its build time:\n{}",
        problems.join("\n")
    );
}

fn commented(lines: &[&str], i: usize) -> bool {
    i > 0 && lines[i - 1].trim_start().starts_with('#')
}

/// The dependency policy in one assertion: the xtask builds on these six crates and
/// no more. Adding one means measuring it first (README, "Dependency policy").
#[test]
fn the_xtask_depends_on_the_six_crates_only() {
    let body = read(&repo_root().join("xtask").join("Cargo.toml"));
    let deps: BTreeSet<&str> = body
        .lines()
        .skip_while(|l| l.trim() != "[dependencies]")
        .skip(1)
        .take_while(|l| !l.trim().starts_with('['))
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .filter_map(|l| l.split('=').next().map(str::trim))
        .collect();
    let want: BTreeSet<&str> = ["anyhow", "camino", "clap", "toml_edit", "which", "xshell"].into();
    assert_eq!(
        deps, want,
        "xtask/Cargo.toml [dependencies] changed: see the dependency policy in README.md and run the \
         build benchmark before adding anything"
    );
}

// ---------------------------------------------------------------- .ci/run

#[test]
fn ci_run_runs_exactly_the_readme_test_command() {
    let root = repo_root();
    let readme = read(&root.join("README.md"));
    let commands = fenced_commands(section(&readme, "Set-up on a fresh machine"));
    assert_eq!(
        commands.len(),
        2,
        "README's `Set-up on a fresh machine` should hold two commands (the main job, then the \
         test suite), found {commands:?}"
    );
    assert!(
        has_example(&commands[0], "publish-redist"),
        "the first set-up command should run the main job: {commands:?}"
    );
    let test_command = &commands[1];
    assert!(
        has_example(test_command, "test"),
        "the second set-up command should run the tests: {commands:?}"
    );

    let script = read(&root.join(".ci").join("run"));
    assert!(script.starts_with("#!/usr/bin/env bash\n"), ".ci/run should be a bash script");
    assert!(script.contains("set -euo pipefail"), ".ci/run should `set -euo pipefail`");
    // Every line that runs cargo is the README's command, and it runs once.
    let cargo_lines: Vec<&str> = script
        .lines()
        .map(str::trim)
        .filter(|l| !l.starts_with('#') && l.split_whitespace().any(|w| w == "cargo"))
        .collect();
    assert_eq!(
        cargo_lines,
        vec![test_command.as_str()],
        ".ci/run should run exactly the README's test command `{test_command}` and no other cargo"
    );
    let last = script.lines().map(str::trim).rfind(|l| !l.is_empty() && !l.starts_with('#'));
    assert_eq!(last, Some(test_command.as_str()), ".ci/run should end with the test command");

    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = fs::metadata(root.join(".ci").join("run")).unwrap().permissions().mode();
        assert!(mode & 0o111 != 0, ".ci/run is not executable (chmod +x, and `git update-index --chmod=+x`)");
    }
}
