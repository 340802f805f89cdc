//! The xtask's own glue, checked by the real tools instead of by eye: its workflows
//! by a schema validator, its recipe shims by the real `just`, and its docs, help
//! texts, dependency comments and config entries against each other. A tool that is
//! missing is a failure saying how to get it, never a skip.
//!
//! Only what the xtask owns is checked (named in the lists below), never the host
//! repository's own README, CI or Justfile: these tests pass inside any host.

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

/// The workflows the xtask brings (by file name, in `.github/workflows/`).
pub const XTASK_WORKFLOWS: [&str; 4] = ["xtask.yml", "publish-redist.yml", "publish.yml", "oidc-example.yml"];

/// The docs the xtask brings, relative to the repository root.
pub const XTASK_DOCS: [&str; 6] = [
    "xtask/README.md",
    "docs/publishing-to-cargo.md",
    "docs/credentials.md",
    "docs/publish-redist.md",
    "docs/publish.md",
    "docs/adding-the-xtask.md",
];

/// The recipe shims the xtask brings, for the host's Justfile to import or append.
pub fn recipes_file() -> PathBuf {
    repo_root().join("xtask").join("xtask.just")
}

fn action_validator() -> PathBuf {
    xtask_harness::action_validator_bin()
}

fn just() -> PathBuf {
    xtask_harness::just_bin()
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

/// The xtask's docs, every one of which must exist.
fn docs_files() -> Vec<PathBuf> {
    XTASK_DOCS.iter().map(|d| repo_root().join(d)).collect()
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
    let workflows: Vec<PathBuf> = XTASK_WORKFLOWS.iter().map(|w| dir.join(w)).collect();
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

/// xtask.yml caches the pinned tools under a key naming their versions; a bump in
/// `harness/src/pinned.rs` must show in the key, or CI keeps restoring the old tools.
#[test]
fn ci_cache_key_names_the_pinned_tool_versions() {
    use xtask_harness::pinned;
    let ci = read(&repo_root().join(".github").join("workflows").join("xtask.yml"));
    let key = ci
        .lines()
        .find_map(|l| l.trim().strip_prefix("key:"))
        .expect("xtask.yml has no actions/cache `key:`")
        .trim();
    for (tool, version) in
        [("kellnr", pinned::KELLNR), ("just", pinned::JUST), ("action-validator", pinned::ACTION_VALIDATOR)]
    {
        let want = format!("{tool}-{version}");
        assert!(key.contains(&want), "xtask.yml cache key `{key}` lacks `{want}` (pinned in pinned.rs)");
    }
}

// ---------------------------------------------------------------- recipes

/// The recipes of the old justfile and the task each must call now; `xtask` is the
/// pass-through to any task (`just xtask doctor`).
const RECIPES: [(&str, &str); 5] = [
    ("cargo-login", "cargo-login"),
    ("cargo-login-ci", "cargo-login-ci"),
    ("cargo-login-ci-windows", "cargo-login-ci"),
    ("publish-redist", "publish-redist"),
    ("xtask", ""),
];

/// A host Justfile shaped like Hyperlight's (facts.md section 7): PowerShell as the
/// Windows shell, a `.env` loaded, its own `test`, `build` and `check` recipes (and
/// more names Hyperlight's Justfile has), with positional arguments off.
const HOST_JUSTFILE: &str = "set windows-shell := [\"pwsh.exe\", \"-NoLogo\", \"-Command\"]
set dotenv-load := true

default-target := \"debug\"

# The host's own recipes, with names the shims must not take.
build target=default-target:
    cargo build --profile={{ if target == \"debug\" { \"dev\" } else { target } }}

test target=default-target:
    echo host-test ${1:-} {{target}}

check:
    cargo check

clippy target=default-target:
    cargo clippy

fmt-check:
    cargo fmt --all -- --check

help:
    just --list
";

/// The ways a host adds the shims: one `import` line, or the file appended.
#[derive(Clone, Copy, Debug)]
enum Adoption {
    Import,
    Append,
}

/// A host repository dir holding a Justfile that adopted the shims, and a copy of
/// `xtask/xtask.just` where adoption puts it.
fn host_with_recipes(dir: &Path, how: Adoption) -> PathBuf {
    fs::create_dir_all(dir.join("xtask")).unwrap();
    let shims = read(&recipes_file());
    fs::write(dir.join("xtask").join("xtask.just"), &shims).unwrap();
    let justfile = match how {
        Adoption::Import => format!("{HOST_JUSTFILE}\nimport 'xtask/xtask.just'\n"),
        Adoption::Append => format!("{HOST_JUSTFILE}\n{shims}"),
    };
    let path = dir.join("Justfile");
    fs::write(&path, justfile).unwrap();
    path
}

fn just_in(justfile: &Path) -> Command {
    let mut cmd = Command::new(just());
    cmd.arg("--justfile").arg(justfile).current_dir(justfile.parent().unwrap());
    cmd
}

/// The recipe file sets nothing globally and takes no name the host already has.
#[test]
fn the_recipes_set_nothing_global_and_take_no_host_name() {
    let shims = read(&recipes_file());
    for line in shims.lines() {
        let t = line.trim_start();
        assert!(
            !(t.starts_with("set ") || t.starts_with("import ") || t.starts_with("mod ")),
            "xtask.just must not change the host's settings or imports: `{line}`"
        );
    }
    let host: BTreeSet<&str> =
        ["default", "build", "test", "check", "clippy", "fmt-check", "help", "fmt-apply"].into();
    for (recipe, _) in RECIPES {
        assert!(!host.contains(recipe), "the shim `{recipe}` takes a recipe name of the host's");
    }
}

/// In a host Justfile with PowerShell as its Windows shell and its own `test`,
/// `build` and `check`, every shim (imported or appended) parses and is one call of
/// its task, and the host's recipes still run as they did.
#[test]
fn the_recipes_parse_and_dispatch_inside_a_host_justfile() {
    let tasks = tasks();
    for how in [Adoption::Import, Adoption::Append] {
        let dir = std::env::temp_dir().join(format!("xtask-tidy-just-{how:?}-{}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        let justfile = host_with_recipes(&dir, how);
        let out = run(just_in(&justfile).arg("--summary"));
        assert!(out.status.success(), "{how:?}: `just --summary` failed:\n{}", text(&out.stderr));
        let recipes: BTreeSet<String> = text(&out.stdout).split_whitespace().map(str::to_owned).collect();
        for (recipe, task) in RECIPES {
            assert!(recipes.contains(recipe), "{how:?}: the shim `{recipe}` is missing: {recipes:?}");
            // `--dry-run` prints the recipe's lines to stderr instead of running them.
            let out = run(just_in(&justfile).args(["--dry-run", recipe, "--flag", "two words"]));
            assert!(
                out.status.success(),
                "{how:?}: `just --dry-run {recipe}` failed:\n{}",
                text(&out.stderr)
            );
            let printed = text(&out.stderr);
            let lines: Vec<&str> = printed.lines().filter(|l| !l.trim().is_empty()).collect();
            assert_eq!(lines.len(), 1, "{how:?}: recipe `{recipe}` must be one line, it prints:\n{printed}");
            let want = format!("cargo xtask {task}").trim_end().to_owned();
            assert!(
                lines[0].starts_with(&want),
                "{how:?}: recipe `{recipe}` should call `{want}`, it prints:\n{printed}"
            );
            assert!(
                task.is_empty() || tasks.iter().any(|t| t == task),
                "recipe `{recipe}` calls `{task}`, which `cargo xtask --help` does not list: {tasks:?}"
            );
        }
        // The host's own recipes are untouched: still there, still without
        // positional arguments (`$1` stays empty in sh).
        let out = run(just_in(&justfile).args(["test", "release"]));
        assert!(out.status.success(), "{how:?}: the host's `test` failed:\n{}", text(&out.stderr));
        assert_eq!(
            text(&out.stdout),
            "host-test release\n",
            "{how:?}: the host's `test` changed behaviour (`$1` set?)"
        );
        let _ = fs::remove_dir_all(&dir);
    }
}

/// Extra arguments reach the task one by one, spaces and quotes intact, and `cargo
/// xtask` runs at the host's root (where the alias's path is), even when `just` is
/// started from a subdirectory: the real `just` runs its real `sh`, with a `cargo`
/// stand-in first on `PATH` that records its argv and environment.
#[cfg(unix)]
#[test]
fn recipes_pass_arguments_through_unchanged() {
    let mut sb = xtask_harness::Sandbox::new(crate::xtask_bin());
    sb.install_recording_standin("cargo", "exit 0\n");
    let host = sb.root().join("host");
    host_with_recipes(&host, Adoption::Import);
    let subdir = host.join("src").join("deep");
    fs::create_dir_all(&subdir).unwrap();
    let just = just();
    let just = just.to_str().expect("UTF-8 path of just");
    let out = sb.run(just, &["cargo-login-ci-windows", "--pat-env", "A B", "it's \"quoted\""], &subdir);
    out.assert_success();
    let out = sb.run(just, &["xtask", "doctor", "--registry", "x y"], &subdir);
    out.assert_success();
    let calls = sb.calls("cargo");
    let argv: Vec<Vec<String>> = calls.iter().map(|c| c.argv.clone()).collect();
    assert_eq!(
        argv,
        vec![
            vec!["xtask", "cargo-login-ci", "--pat-env", "A B", "it's \"quoted\""],
            vec!["xtask", "doctor", "--registry", "x y"],
        ],
        "just should run one cargo per recipe with the arguments unchanged"
    );
    let host_root = host.canonicalize().unwrap();
    for call in &calls {
        let pwd = call.env("PWD").map(|p| Path::new(p).canonicalize().unwrap());
        assert_eq!(pwd.as_deref(), Some(host_root.as_path()), "`cargo xtask` must run at the host root");
    }
}

// ---------------------------------------------------------------- docs and help

#[test]
fn every_task_is_documented_with_an_example_in_readme_and_docs() {
    let root = repo_root();
    let readme = read(&root.join("xtask").join("README.md"));
    let docs: String = docs_files().iter().map(|p| read(p)).collect::<Vec<_>>().join("\n");
    assert!(!docs.is_empty(), "docs/ holds no Markdown");
    let mut missing = Vec::new();
    for task in tasks() {
        if !has_example(&readme, &task) {
            missing.push(format!("xtask/README.md has no example line `cargo xtask {task} ...`"));
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

/// Relative links in the xtask's docs lead to files that exist.
#[test]
fn relative_links_in_the_docs_resolve() {
    let files = docs_files();
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
    let readme = read(&root.join("xtask").join("README.md"));
    let command = "cargo run --manifest-path xtask/Cargo.toml -p xtask-harness --release --bin bench-build";
    assert!(readme.contains(command), "xtask/README.md should tell how to run the benchmark: `{command}`");
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

/// The dependency rule: a dependency must delete more than it costs, so the comment
/// above each one in xtask/Cargo.toml gives its measured cold build time (`Cost:`, a
/// figure in seconds) and what it deletes (`Deletes`).
#[test]
fn every_dependency_says_what_it_costs_and_deletes() {
    let body = read(&repo_root().join("xtask").join("Cargo.toml"));
    let lines: Vec<&str> = body.lines().collect();
    let start = lines.iter().position(|l| l.trim() == "[dependencies]").expect("a [dependencies] table");
    let mut problems = Vec::new();
    let mut seen = 0;
    for i in start + 1..lines.len() {
        let line = lines[i].trim();
        if line.starts_with('[') {
            break;
        }
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        seen += 1;
        let mut note: Vec<&str> = lines[..i]
            .iter()
            .rev()
            .take_while(|l| l.trim_start().starts_with('#'))
            .map(|l| l.trim_start_matches([' ', '#']))
            .collect();
        note.reverse();
        let note = note.join(" ");
        if !(has_seconds_after(&note, "Cost:") && note.contains("Deletes")) {
            problems.push(format!("xtask/Cargo.toml:{}: `{line}`", i + 1));
        }
    }
    assert!(seen >= 6, "found only {seen} dependencies in xtask/Cargo.toml");
    assert!(
        problems.is_empty(),
        "each dependency needs a note above it with its measured cost (`Cost: ... 0.3 s ...`) and \
         what it deletes (`Deletes ...`); see the dependency rule in xtask/README.md:\n{}",
        problems.join("\n")
    );
}

/// Whether `text` has, within 100 bytes after `label`, a number followed by ` s` (a
/// figure in seconds).
fn has_seconds_after(text: &str, label: &str) -> bool {
    let Some(at) = text.find(label) else { return false };
    let rest: String = text[at..].chars().take(100).collect();
    rest.match_indices(" s").any(|(i, _)| rest[..i].ends_with(|c: char| c.is_ascii_digit()))
}

#[test]
fn the_dependency_note_needs_a_figure() {
    assert!(has_seconds_after("Cost: 0.3 s CPU cold. Deletes 81 lines", "Cost:"));
    assert!(!has_seconds_after("Cost: small. Deletes 81 lines", "Cost:"));
    assert!(!has_seconds_after(&format!("Cost: small.{} 2 s", " ".repeat(100)), "Cost:"));
    assert!(!has_seconds_after("0.3 s before. Cost: negligible", "Cost:"));
}

// ---------------------------------------------------------------- config entries

/// The xtask's entries in the host's `.cargo/config.toml`: the alias runs the
/// xtask's own workspace (so it builds with no feed reachable), and the feeds are
/// there. Nothing else in that file is the xtask's business.
#[test]
fn the_config_entries_are_the_alias_and_the_feeds() {
    let text = read(&repo_root().join(".cargo").join("config.toml"));
    let alias = text
        .lines()
        .find_map(|l| l.trim().strip_prefix("xtask = "))
        .expect(".cargo/config.toml has no `xtask = ...` alias");
    assert_eq!(
        alias, "\"run --manifest-path xtask/Cargo.toml --\"",
        "the alias must run the xtask's own workspace"
    );
    assert!(text.contains("[registries]"), ".cargo/config.toml lists no feeds under [registries]");
}

// ---------------------------------------------------------------- one runner

/// One way to run a program (ARCHITECTURE.md): outside `run.rs`, no module captures
/// a child by hand (`.ignore_status()`) or builds a `std::process::Command`, but for
/// the documented interactive exceptions, which need the user's terminal: `az login`
/// in az.rs, `stty` in rotate_pat.rs (each with the number of lines it takes).
#[test]
fn programs_run_through_the_runner_only() {
    const EXCEPTIONS: [(&str, usize); 2] = [("az.rs", 1), ("rotate_pat.rs", 2)];
    let src = repo_root().join("xtask").join("src");
    let mut files = Vec::new();
    let mut dirs = vec![src.clone()];
    while let Some(dir) = dirs.pop() {
        for entry in fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                dirs.push(path);
            } else if path.extension().is_some_and(|e| e == "rs") {
                files.push(path);
            }
        }
    }
    assert!(files.len() > 10, "found too few sources under {}", src.display());
    let mut problems = Vec::new();
    for file in files {
        let name = file.strip_prefix(&src).unwrap().to_string_lossy().replace('\\', "/");
        if name == "run.rs" {
            continue;
        }
        let body = read(&file);
        for (n, line) in body.lines().enumerate() {
            if line.contains(".ignore_status()") {
                problems.push(format!("{name}:{}: `.ignore_status()`: run it with run::Program", n + 1));
            }
        }
        let building: Vec<usize> = body
            .lines()
            .enumerate()
            .filter(|(_, l)| {
                ["process::Command", "Command::new(", "Command::from("].iter().any(|p| l.contains(p))
            })
            .map(|(n, _)| n + 1)
            .collect();
        let allowed = EXCEPTIONS.iter().find(|(f, _)| *f == name).map_or(0, |(_, n)| *n);
        if building.len() > allowed {
            problems.push(format!(
                "{name}: builds a std::process::Command at lines {building:?} ({allowed} allowed): run it with \
                 run::Program, or document a new interactive exception in run.rs and here"
            ));
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}
