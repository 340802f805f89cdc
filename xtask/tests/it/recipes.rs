//! The xtask's glue checked by the real tools: its workflows by a schema validator,
//! its recipe shims by the real `just` (both pinned, installed by `cargo xtask
//! test`). A tool that is missing is a failure saying how to get it, never a skip.

use std::collections::BTreeSet;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

use xtask_harness::repo_root;

use crate::support::{RECIPES, XTASK_WORKFLOWS, read, recipes_file, run, tasks, text};

fn action_validator() -> PathBuf {
    xtask_harness::action_validator_bin()
}

fn just() -> PathBuf {
    xtask_harness::just_bin()
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

// ---------------------------------------------------------------- recipes

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
