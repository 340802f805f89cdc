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
            // The toolchain check (`_xtask-rust`) first, then one call of the task.
            let printed = text(&out.stderr);
            let lines: Vec<&str> = printed.lines().filter(|l| !l.trim().is_empty()).collect();
            let calls: Vec<&&str> = lines.iter().filter(|l| l.contains("cargo xtask")).collect();
            assert_eq!(
                calls.len(),
                1,
                "{how:?}: recipe `{recipe}` must call the xtask once, it prints:\n{printed}"
            );
            let want = format!("XTASK_INVOCATION_DIR='{}' cargo xtask {task}", dir.display());
            let want = want.trim_end().to_owned();
            assert!(
                lines.last().is_some_and(|l| l.starts_with(&want)),
                "{how:?}: recipe `{recipe}` should end in `{want}`, it prints:\n{printed}"
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
/// started from a subdirectory, which `XTASK_INVOCATION_DIR` names (relative paths
/// given to flags are from there): the real `just` runs its real `sh`, with a `cargo`
/// stand-in first on `PATH` that records its argv and environment.
#[cfg(unix)]
#[test]
fn recipes_pass_arguments_through_unchanged() {
    let mut sb = xtask_harness::Sandbox::new(crate::xtask_bin());
    sb.install_recording_standin("cargo", &cargo_standin("1.95.0 (f2d3ce0bd 2026-01-01)"));
    let host = sb.root().join("host");
    host_with_recipes(&host, Adoption::Import);
    let subdir = host.join("src").join("it's déjà vu");
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
            vec!["--version"],
            vec!["xtask", "cargo-login-ci", "--pat-env", "A B", "it's \"quoted\""],
            vec!["--version"],
            vec!["xtask", "doctor", "--registry", "x y"],
        ],
        "just should check the toolchain, then run one cargo per recipe with the arguments unchanged"
    );
    let host_root = host.canonicalize().unwrap();
    for call in &calls {
        let pwd = call.env("PWD").map(|p| Path::new(p).canonicalize().unwrap());
        assert_eq!(pwd.as_deref(), Some(host_root.as_path()), "`cargo xtask` must run at the host root");
        let started = call.env("XTASK_INVOCATION_DIR").map(|p| Path::new(p).canonicalize().unwrap());
        let want = (call.argv[0] == "xtask").then(|| subdir.canonicalize().unwrap());
        assert_eq!(started, want, "`cargo xtask` must be told where `just` was started");
    }
}

/// A stand-in for the cargo of one toolchain: `--version` prints `cargo <version>`;
/// anything else, from a toolchain older than 1.85, fails as real cargo does on the
/// xtask's edition-2024 manifest (cargo 1.74.0's words, exit 101), and from a newer
/// one succeeds.
#[cfg(unix)]
fn cargo_standin(version: &str) -> String {
    format!(
        "if [ \"$1\" = --version ]; then echo 'cargo {version}'; exit 0; fi\n\
         case '{version}' in 1.[0-7]?.*|1.8[0-4].*) ;; *) exit 0 ;; esac\n\
         printf '%s\\n' 'error: failed to parse manifest at `'\"$PWD\"'/xtask/Cargo.toml`' '' 'Caused by:' \
         '  feature `edition2024` is required' '' \
         '  The package requires the Cargo feature called `edition2024`, but that feature is not stabilized in this version of Cargo ({version}).' \
         '  Consider trying a newer version of Cargo (this may require the nightly release).' >&2\n\
         exit 101\n"
    )
}

/// In a host that pins a toolchain older than the xtask's `rust-version` (Hyperlight
/// pinned 1.74.0 in 2023: `rust-toolchain.toml` plus a `cargo` stand-in for that
/// toolchain, see [`cargo_standin`]), every recipe stops before cargo builds
/// anything, with one line naming the toolchain, what the xtask needs and the
/// command to run. 1.88 is refused and 1.89, the minimum, goes through.
#[cfg(unix)]
#[test]
fn an_old_pinned_toolchain_gets_one_line_naming_it_and_the_command() {
    let just = just();
    let just = just.to_str().expect("UTF-8 path of just");
    for (version, old) in [
        ("1.74.0 (ecb9851af 2023-10-18)", true),
        ("1.88.0 (873a06493 2025-05-10)", true),
        ("1.89.0 (c24e10642 2025-06-23)", false),
    ] {
        let mut sb = xtask_harness::Sandbox::new(crate::xtask_bin());
        sb.install_recording_standin("cargo", &cargo_standin(version));
        let host = sb.root().join("host");
        host_with_recipes(&host, Adoption::Import);
        let pin = &version[..version.find(' ').unwrap()];
        fs::write(host.join("rust-toolchain.toml"), format!("[toolchain]\nchannel = \"{pin}\"\n")).unwrap();
        for (recipe, task) in RECIPES {
            let task = if task.is_empty() { "<task>" } else { task };
            let args = if recipe == "xtask" { vec![recipe, "doctor"] } else { vec![recipe, "--flag"] };
            let out = sb.run(just, &args, &host);
            let calls: Vec<Vec<String>> = sb.calls("cargo").into_iter().map(|c| c.argv).collect();
            if !old {
                out.assert_success();
                assert_eq!(
                    calls.last().map(|a| a[0].as_str()),
                    Some("xtask"),
                    "{version}: {recipe} did not run"
                );
                continue;
            }
            out.assert_failure();
            let lines: Vec<&str> = out.stderr.lines().filter(|l| !l.trim().is_empty()).collect();
            assert_eq!(lines.len(), 1, "{version}: `just {recipe}` must say one line:\n{}", out.stderr);
            let want = format!("cargo here is {pin} ");
            for part in [
                want.as_str(),
                "needs Rust 1.89 or later",
                &format!("run `cargo +stable xtask {task}` at the repository root"),
            ] {
                assert!(
                    lines[0].contains(part),
                    "{version}: `just {recipe}` does not say `{part}`: {}",
                    lines[0]
                );
            }
            assert!(
                calls.iter().all(|a| a == &["--version"]),
                "{version}: cargo ran past the check: {calls:?}"
            );
        }
    }
}

/// A task's error is the last thing said, with its exit code: no "error: recipe
/// `cargo-login-ci` failed on line 39" after it, naming a line of xtask.just.
#[cfg(unix)]
#[test]
fn a_failing_task_s_error_is_not_followed_by_just_s() {
    let just = just();
    let mut sb = xtask_harness::Sandbox::new(crate::xtask_bin());
    let cargo = "if [ \"$1\" = --version ]; then echo 'cargo 1.95.0'; exit 0; fi\necho 'error: unknown feed' >&2; exit 3\n";
    sb.install_recording_standin("cargo", cargo);
    let host = sb.root().join("host");
    host_with_recipes(&host, Adoption::Import);
    for (recipe, _) in RECIPES {
        let out = sb.run(just.to_str().unwrap(), &[recipe, "--registry", "nope"], &host);
        assert_eq!(out.status.code(), Some(3), "{recipe}: {}", out.stderr);
        assert!(out.stderr.trim_end().ends_with("error: unknown feed"), "{recipe}: {}", out.stderr);
    }
}

/// A pinned toolchain rustup has not installed, its automatic installs off
/// (`RUSTUP_AUTO_INSTALL=0`; rustup 1.29's words, exit 1): the check's `cargo --version`
/// fails, and the recipe stops there, rustup's error shown once. It went on to `cargo
/// xtask`, which failed the same way, followed by just's "recipe failed" line.
#[cfg(unix)]
#[test]
fn a_pinned_toolchain_rustup_lacks_stops_the_recipe_after_rustups_error() {
    let mut sb = xtask_harness::Sandbox::new(crate::xtask_bin());
    let rustup_error = "error: toolchain '1.74.0-x86_64-unknown-linux-gnu' is not installed";
    sb.install_recording_standin("cargo", &format!("echo \"{rustup_error}\" >&2; exit 1\n"));
    let host = sb.root().join("pinned");
    host_with_recipes(&host, Adoption::Import);
    let just = just();
    let out = sb.run(just.to_str().unwrap(), &["cargo-login"], &host);
    out.assert_failure();
    assert_eq!(out.stderr, format!("{rustup_error}\n"));
    let calls: Vec<Vec<String>> = sb.calls("cargo").into_iter().map(|c| c.argv).collect();
    assert_eq!(calls, [["--version"]], "cargo ran past the check");
}
