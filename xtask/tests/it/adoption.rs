//! The xtask moved into a host repository shaped like Hyperlight's (facts.md section
//! 7), by the steps of docs/adding-the-xtask.md, on a machine logged in to nothing.
//!
//! The host: a workspace of a host crate that depends (on Unix) on `mshv-bindings`
//! and `mshv-ioctls` from the auth-required feed (a real kellnr), and a test crate;
//! `default-members`, an `exclude`d guest dir, `[workspace.package]` without
//! `publish`, `[workspace.lints]`, its own profiles (`release-with-debug`), a
//! committed `Cargo.lock`, the `.cargo/config.toml` of 2023 (the two feeds and a
//! `[registry]` table), a Justfile of 2023 with PowerShell as its Windows shell, its
//! own `test`, `build`, `check` and no newline after its last line, and
//! rustfmt/clippy settings that the xtask's code would fail. One of its crates is
//! badly formatted and has a clippy warning, so a check that strays into the host
//! fails.
//!
//! The xtask is built inside the host, as a user would, through the real cargo and
//! the alias; its crates.io dependencies come from a vendored copy made once (the
//! test's private `CARGO_HOME` starts empty).

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

use xtask_harness::{Kellnr, Sandbox, basic_header, repo_root};

use crate::login::{REDIST, git, pat84};
use crate::publish_redist::fixture;

const HOST_MANIFEST: &str = r#"[workspace]
resolver = "2"
members = ["src/hyperlight_host", "src/hyperlight_testing"]
default-members = ["src/hyperlight_host"]
exclude = ["src/tests/rust_guests"]

[workspace.package]
version = "0.1.0"
edition = "2021"
rust-version = "1.85"
license = "Apache-2.0"
homepage = "https://github.com/hyperlight-dev/hyperlight"
repository = "https://github.com/hyperlight-dev/hyperlight"
readme = "README.md"

[workspace.dependencies]
hyperlight_testing = { path = "src/hyperlight_testing", version = "0.1.0" }

[workspace.lints.rust]
unsafe_op_in_unsafe_fn = "deny"

[profile.dev]
opt-level = 0
debug = true

[profile.release-with-debug]
inherits = "release"
debug = true
"#;

const HOST_CRATE: &str = r#"[package]
name = "hyperlight_host"
version.workspace = true
edition.workspace = true
rust-version.workspace = true
license.workspace = true

[lints]
workspace = true

[target.'cfg(unix)'.dependencies]
mshv-bindings = { version = "=0.1.1", registry = "hyperlight_redist" }
mshv-ioctls = { version = "=0.1.1", registry = "hyperlight_redist" }

[dev-dependencies]
hyperlight_testing = { workspace = true }
"#;

const HOST_LIB: &str =
    "#[cfg(unix)]\npub fn hypervisor_version() -> u32 {\n    mshv_ioctls::mshv_version()\n}\n";

const TESTING_CRATE: &str = r#"[package]
name = "hyperlight_testing"
version.workspace = true
edition.workspace = true
license.workspace = true
"#;

/// Badly formatted, with a clippy warning (`needless_return`): a format check or
/// clippy run over the host's crates fails on it.
const TESTING_LIB: &str = "pub fn  guest_binary_path( ) -> u32 {let x = 1; return x;}\n";

/// The host's `.cargo/config.toml` as it was in 2023 (facts.md section 7): the feeds,
/// and a `[registry]` table that cargo merges into every run in the host, the
/// xtask's tests' runs too unless they run elsewhere.
const HOST_CARGO_CONFIG: &str = r#"[registries]
hyperlight_redist = { index = "sparse+https://pkgs.dev.azure.com/AzureContainerUpstream/hyperlight/_packaging/hyperlight_redist/Cargo/index/" }
hyperlight_packages = { index = "sparse+https://pkgs.dev.azure.com/AzureContainerUpstream/hyperlight/_packaging/hyperlight_packages/Cargo/index/" }

[registry]
global-credential-providers = ["cargo:token"]
"#;

/// Settings of the host that the xtask's own code breaks: a rustfmt width it does
/// not follow, and a clippy lint against a function it calls (`std::env::var`).
const HOST_RUSTFMT: &str = "max_width = 60\n";
/// Lines of Hyperlight's `.gitignore` (GitHub's Visual Studio template): `publish/`
/// ignores every directory of that name, the xtask's `src/publish/` too; until its
/// lock was committed (2024), `**/Cargo.lock` ignored the xtask's (this host's own
/// is committed, as today); until Nov 2024 (`[Bb]in/*` since), `[Bb]in/` ignored
/// every `bin/`, the harness's `src/bin/` too.
const HOST_GITIGNORE: &str =
    "[Bb]in/\n# Click-Once directory\npublish/\n\n**/**target\n**/Cargo.lock\n!/Cargo.lock\n";
const HOST_CLIPPY: &str =
    "disallowed-methods = [{ path = \"std::env::var\", reason = \"the host's rule\" }]\n";

/// The host's Justfile as it was in late 2023 (facts.md sections 1 and 7): PowerShell
/// as its Windows shell, a `.env` loaded, its own recipes, and the three login
/// recipes the xtask replaces, which adoption deletes.
const HOST_JUSTFILE_HEAD: &str = "set windows-shell := [\"pwsh.exe\", \"-NoLogo\", \"-Command\"]
set dotenv-load := true

default-target := \"debug\"

build target=default-target:
    cargo build --profile={{ if target == \"debug\" { \"dev\" } else { target } }}

";

const HOST_LOGIN_RECIPES: &str = "# Log in to the feeds with your Azure account (`az login` first).
cargo-login:
    az account get-access-token --query \"join(' ', ['Bearer', accessToken])\" --output tsv | cargo login --registry hyperlight_redist
    az account get-access-token --query \"join(' ', ['Bearer', accessToken])\" --output tsv | cargo login --registry hyperlight_packages

# Log in to the feeds with the PAT in env PAT (CI).
cargo-login-ci:
    echo Basic $(echo -n PAT:$PAT | base64) | cargo login --registry hyperlight_redist
    echo Basic $(echo -n PAT:$PAT | base64) | cargo login --registry hyperlight_packages

cargo-login-ci-windows:
    \"Basic \" + [Convert]::ToBase64String([Text.Encoding]::UTF8.GetBytes(\"PAT:\" + $Env:PAT)) | cargo login --registry hyperlight_redist
    \"Basic \" + [Convert]::ToBase64String([Text.Encoding]::UTF8.GetBytes(\"PAT:\" + $Env:PAT)) | cargo login --registry hyperlight_packages

";

/// Its last line without a newline: appended bare, the import is glued onto it.
const HOST_JUSTFILE_TAIL: &str = "test target=default-target:
    cargo test --profile={{ if target == \"debug\" { \"dev\" } else { target } }}

check:
    cargo check";

/// What docs/adding-the-xtask.md's command adds to the host's Justfile.
const IMPORT_LINE: &str = "\nimport 'xtask/xtask.just'\n";

/// The recipes docs/adding-the-xtask.md says to delete from a host that has them.
const REPLACED_RECIPES: [&str; 5] =
    ["cargo-login", "cargo-login-ci", "cargo-login-ci-windows", "publish-redist", "xtask"];

/// The files whose bytes adoption must not change.
const UNTOUCHED: [&str; 6] = [
    "Cargo.toml",
    "Cargo.lock",
    "rustfmt.toml",
    "clippy.toml",
    "src/hyperlight_host/Cargo.toml",
    "src/hyperlight_testing/src/lib.rs",
];

#[test]
fn the_xtask_moves_into_a_hyperlight_shaped_host() {
    let kellnr = Kellnr::start();
    let mut sb = Sandbox::new(crate::xtask_bin());
    sb.feed(REDIST, &kellnr);
    // The private CARGO_HOME takes crates.io crates from the vendored copy.
    let vendored = vendored_xtask_dependencies(&sb);
    fs::write(
        sb.cargo_home().join("config.toml"),
        format!(
            "# The developer's own settings, which adoption and login keep.\n[source.crates-io]\nreplace-with = \"vendored\"\n\n[source.vendored]\ndirectory = {:?}\n",
            vendored.to_str().expect("UTF-8 vendor path")
        ),
    )
    .unwrap();
    let pat = pat84();
    kellnr.add_user("PAT", &pat);
    let header = basic_header("PAT", &pat);

    // The feed as Hyperlight's was in 2023: mshv 0.1.1 in it. Published by a
    // maintainer whose token is in the environment only, so nothing is stored.
    let fx = fixture(&mut sb, 0, 12);
    with_env_token(&mut sb, &header, |sb| {
        let repo = fx.dir.to_str().unwrap().to_owned();
        sb.xtask(&["publish-redist", "--no-consumer-check", "--repo", &repo, "--rev", &fx.pin])
            .assert_success();
    });

    // The host, with its lock file committed (made with the maintainer's token).
    let host = sb.root().join("hyperlight");
    write_host(&host);
    with_env_token(&mut sb, &header, |sb| {
        sb.cargo(&host, &["generate-lockfile"]).assert_success();
    });
    let lock = fs::read_to_string(host.join("Cargo.lock")).unwrap();
    assert!(lock.contains("name = \"mshv-ioctls\""), "the host's lock lacks the feed's crates:\n{lock}");
    git(&mut sb, &host, &["init", "-q", "-b", "main"]);
    git(&mut sb, &host, &["add", "-A"]);
    git(&mut sb, &host, &["commit", "-q", "-m", "the host before the xtask"]);
    assert!(!sb.cargo_home().join("credentials.toml").exists(), "no token may be stored yet");

    // The checks that must fail on the host's crates, to show that the xtask's
    // passing ones do not look at them.
    sb.cargo(&host, &["fmt", "--all", "--check"]).assert_failure();
    let just = xtask_harness::just_bin();
    let just = just.to_str().unwrap().to_owned();
    let host_recipes_before = dry_run_host_recipes(&mut sb, &just, &host);
    let before: Vec<(String, Vec<u8>)> =
        UNTOUCHED.iter().map(|f| (f.to_string(), fs::read(host.join(f)).unwrap())).collect();

    adopt(&mut sb, &host);
    recipes_work_after_adoption(&mut sb, &just, &host);
    // Committed as a user would, so that what the tasks then change would show.
    git(&mut sb, &host, &["add", "-A"]);
    git(&mut sb, &host, &["commit", "-q", "-m", "add the hyperlight xtask"]);
    let args = ["ls-files", "--others", "--ignored", "--exclude-standard", "--directory", "xtask"];
    let ignored = git(&mut sb, &host, &args).stdout;
    let ignored: Vec<&str> = ignored.lines().filter(|l| *l != "xtask/target/").collect();
    assert!(ignored.is_empty(), "the host's .gitignore keeps files of the xtask out of git: {ignored:?}");

    // 1. With no credentials anywhere: login builds the xtask (its own workspace:
    // no feed read for that) and logs in; then the host's member resolves its
    // feed dependencies; publish-redist works from the host.
    sb.env("PAT", &pat);
    let login = sb.cargo(&host, &["xtask", "cargo-login-ci", "--registry", REDIST]);
    sb.env_remove("PAT");
    login.assert_success().assert_output_contains("check: hyperlight_redist: ok");
    assert!(login.stderr.contains("Compiling xtask"), "the xtask was built in the host:\n{}", login.stderr);
    sb.cargo(&host, &["check", "-p", "hyperlight_host", "--locked"]).assert_success();
    let repo = fx.dir.to_str().unwrap().to_owned();
    let version = "0.1.2-20240321";
    sb.cargo(
        &host,
        &[
            "xtask",
            "publish-redist",
            "--repo",
            &repo,
            "--rev",
            &fx.pin,
            "--version",
            version,
            "--allow-unchecked-consumers",
        ],
    )
    .assert_success();
    assert!(
        kellnr.index_entry("mshv-ioctls").unwrap().contains(&format!("\"vers\":\"{version}\"")),
        "publish-redist from the host did not publish"
    );

    // 2. The host's files are as they were: lock file, manifests (so profiles),
    // settings, code; its config keeps its own entries; its recipes run as before.
    for (file, bytes) in &before {
        assert!(fs::read(host.join(file)).unwrap() == *bytes, "adoption or a task changed the host's {file}");
    }
    let config = fs::read_to_string(host.join(".cargo/config.toml")).unwrap();
    assert!(config.starts_with(HOST_CARGO_CONFIG), "the host's own config entries changed:\n{config}");
    let justfile = fs::read_to_string(host.join("Justfile")).unwrap();
    let want = format!("{HOST_JUSTFILE_HEAD}{HOST_JUSTFILE_TAIL}{IMPORT_LINE}");
    assert_eq!(
        justfile, want,
        "the host's Justfile is not the old one less the login recipes, plus the import"
    );
    assert_eq!(dry_run_host_recipes(&mut sb, &just, &host), host_recipes_before);
    let exe = format!("xtask{}", std::env::consts::EXE_SUFFIX);
    assert!(
        !host.join("target").join("debug").join(&exe).exists(),
        "the xtask was built into the host's target dir"
    );
    assert!(
        host.join("xtask").join("target").join("debug").join(&exe).is_file(),
        "the xtask has its own target dir"
    );

    // 3. `cargo xtask test` inside the host checks the xtask only: the host's badly
    // formatted crate, its clippy warning, its rustfmt and clippy settings do not
    // fail it. Its tests read the xtask's own files in the host, never the host's
    // workspace: they pass with the host's root Cargo.toml broken (a publish-redist
    // dry run among them, whose consumer check would read that workspace).
    let cache = xtask_harness::pinned::cache_dir().expect("the test tools' cache");
    sb.env("XTASK_CACHE", cache.to_str().unwrap());
    let manifest = host.join("Cargo.toml");
    let good = fs::read(&manifest).unwrap();
    fs::write(&manifest, "[workspace\nnot a manifest cargo can load\n").unwrap();
    sb.cargo(&host, &["metadata", "--no-deps", "--format-version", "1"]).assert_failure();
    let test = sb.cargo(
        &host,
        &[&["xtask", "test", "--", "tidy::", "recipes::", HOUSE_FREE_TEST], ROOT_CONFIG_TESTS].concat(),
    );
    fs::write(&manifest, good).unwrap();
    test.assert_success();
    for name in [
        "tidy::every_task_help_has_examples_and_says_cargo_xtask",
        "recipes::workflows_validate_with_action_validator",
        "recipes::the_recipes_parse_and_dispatch_inside_a_host_justfile",
        HOUSE_FREE_TEST,
    ]
    .iter()
    .chain(ROOT_CONFIG_TESTS)
    {
        assert!(
            test.stdout.contains(&format!("test {name} ... ok")),
            "the test {name} did not run and pass inside the host:\n{}",
            test.stdout
        );
    }
    assert!(!test.stdout.contains("FAILED"), "{}", test.stdout);
    let status = git(&mut sb, &host, &["status", "--porcelain", "--untracked-files=no"]);
    assert_eq!(status.stdout, "", "the tasks changed tracked files of the host");
    sb.assert_no_secret(&[pat.as_str(), header.as_str()]);
}

/// A publish-redist test run inside the host: it names no consumer workspace, so
/// the xtask's default (the repository it sits in) must not be read.
const HOUSE_FREE_TEST: &str = "publish_redist::a_dry_run_needs_no_credentials_and_no_feed";

/// Tests whose cargo reads `registry.global-credential-providers`: they failed inside a
/// host whose root config sets it, while their sandbox ran the xtask in the host's root.
const ROOT_CONFIG_TESTS: &[&str] = &[
    "credentials::doctor_shows_the_environments_global_providers_after_the_files",
    "config_faults::doctor_names_the_users_config_cargo_refuses",
];

/// The steps of the adoption doc made the recipes work: `just --list` parses the
/// Justfile, and the old recipe names reach the xtask. Importing without deleting
/// the host's login recipes first is what `just` refuses, which is why the doc
/// says to delete them.
fn recipes_work_after_adoption(sb: &mut Sandbox, just: &str, host: &Path) {
    let list = sb.run(just, &["--list"], host);
    list.assert_success();
    for recipe in
        ["cargo-login", "cargo-login-ci", "cargo-login-ci-windows", "publish-redist", "build", "check"]
    {
        assert!(
            list.stdout.contains(&format!("    {recipe}")),
            "`just --list` lacks {recipe}:\n{}",
            list.stdout
        );
    }
    let dry = sb.run(just, &["--dry-run", "cargo-login-ci"], host);
    dry.assert_success();
    assert!(
        dry.stderr.lines().any(|l| l.trim().ends_with(" cargo xtask cargo-login-ci \"$@\"")),
        "`just --dry-run cargo-login-ci` does not show the xtask's call:\n{}",
        dry.stderr
    );
    let naive = host.join("Justfile.naive");
    fs::write(&naive, format!("{HOST_JUSTFILE_HEAD}{HOST_LOGIN_RECIPES}{HOST_JUSTFILE_TAIL}{IMPORT_LINE}"))
        .unwrap();
    let refused = sb.run(just, &["--justfile", naive.to_str().unwrap(), "--list"], host);
    fs::remove_file(&naive).unwrap();
    refused.assert_failure().assert_output_contains("redefined");
}

/// Deletes recipe `name` as docs/adding-the-xtask.md says: its header line, its
/// indented body, the comment and attribute lines right above it, and the blank
/// lines after it.
fn delete_recipe(justfile: &str, name: &str) -> String {
    let lines: Vec<&str> = justfile.lines().collect();
    let is_header = |l: &&str| l.strip_prefix(name).is_some_and(|rest| rest.starts_with([' ', ':']));
    let Some(header) = lines.iter().position(is_header) else {
        return justfile.to_owned();
    };
    let mut start = header;
    while start > 0 && (lines[start - 1].starts_with('#') || lines[start - 1].starts_with('[')) {
        start -= 1;
    }
    let mut end = header + 1;
    while end < lines.len() && (lines[end].starts_with([' ', '\t']) || lines[end].trim().is_empty()) {
        end += 1;
    }
    let kept: Vec<&str> = lines[..start].iter().chain(&lines[end..]).copied().collect();
    kept.join("\n") + if justfile.ends_with('\n') { "\n" } else { "" }
}

/// Runs `f` with the feed's token in cargo's environment only (a maintainer's CI
/// job), then takes it away again.
fn with_env_token(sb: &mut Sandbox, header: &str, f: impl FnOnce(&mut Sandbox)) {
    sb.env("CARGO_REGISTRIES_HYPERLIGHT_REDIST_TOKEN", header);
    sb.env("CARGO_REGISTRIES_HYPERLIGHT_REDIST_CREDENTIAL_PROVIDER", "cargo:token");
    f(sb);
    sb.env_remove("CARGO_REGISTRIES_HYPERLIGHT_REDIST_TOKEN");
    sb.env_remove("CARGO_REGISTRIES_HYPERLIGHT_REDIST_CREDENTIAL_PROVIDER");
}

fn write_host(host: &Path) {
    let justfile = format!("{HOST_JUSTFILE_HEAD}{HOST_LOGIN_RECIPES}{HOST_JUSTFILE_TAIL}");
    let files = [
        ("Cargo.toml", HOST_MANIFEST),
        ("src/hyperlight_host/Cargo.toml", HOST_CRATE),
        ("src/hyperlight_host/src/lib.rs", HOST_LIB),
        ("src/hyperlight_testing/Cargo.toml", TESTING_CRATE),
        ("src/hyperlight_testing/src/lib.rs", TESTING_LIB),
        ("src/tests/rust_guests/README.md", "A nested workspace of guests, excluded.\n"),
        (".cargo/config.toml", HOST_CARGO_CONFIG),
        ("rustfmt.toml", HOST_RUSTFMT),
        ("clippy.toml", HOST_CLIPPY),
        ("Justfile", justfile.as_str()),
        ("README.md", "# Hyperlight\n"),
        (".gitignore", HOST_GITIGNORE),
    ];
    for (path, text) in files {
        let path = host.join(path);
        fs::create_dir_all(path.parent().unwrap()).unwrap();
        fs::write(path, text).unwrap();
    }
}

/// The steps of docs/adding-the-xtask.md.
fn adopt(sb: &mut Sandbox, host: &Path) {
    let repo = repo_root();
    // 1. `xtask/`, without its target dir.
    copy_dir(&repo.join("xtask"), &host.join("xtask"));
    // 2. The docs and workflows it owns.
    for file in crate::support::XTASK_DOCS.iter().filter(|d| d.starts_with("docs/")) {
        copy_file(&repo.join(file), &host.join(file));
    }
    for workflow in crate::support::XTASK_WORKFLOWS {
        let file = Path::new(".github").join("workflows").join(workflow);
        copy_file(&repo.join(&file), &host.join(&file));
    }
    // 3. The block docs/adding-the-xtask.md gives for `.cargo/config.toml`, less the
    // lines the host has (its [registries] table with the same two feeds).
    let doc = fs::read_to_string(repo.join("docs").join("adding-the-xtask.md")).unwrap();
    let start =
        doc.find("```toml\n").expect("adding-the-xtask.md gives the config block") + "```toml\n".len();
    let end = start + doc[start..].find("```").expect("the config block ends");
    let config = host.join(".cargo").join("config.toml");
    let mut text = fs::read_to_string(&config).unwrap();
    let block: String = (doc[start..end].lines().map(str::trim_start))
        .filter(|l| !text.lines().any(|have| have == *l))
        .map(|l| format!("{l}\n"))
        .collect();
    text.push('\n');
    text.push_str(&block);
    fs::write(&config, text).unwrap();
    // 4. The host's recipes of the xtask's names deleted, then the doc's command run.
    let justfile = host.join("Justfile");
    let mut text = fs::read_to_string(&justfile).unwrap();
    for recipe in REPLACED_RECIPES {
        text = delete_recipe(&text, recipe);
    }
    fs::write(&justfile, text).unwrap();
    let add = doc.lines().map(str::trim).find(|l| l.ends_with(">> Justfile")).expect("the doc's command");
    sb.run("sh", &["-c", add], host).assert_success();
}

/// What `just --dry-run` prints for each of the host's own recipes.
fn dry_run_host_recipes(sb: &mut Sandbox, just: &str, host: &Path) -> Vec<String> {
    let calls: [&[&str]; 3] =
        [&["--dry-run", "build", "release-with-debug"], &["--dry-run", "test"], &["--dry-run", "check"]];
    calls
        .iter()
        .map(|args| {
            let run = sb.run(just, args, host);
            run.assert_success();
            run.stderr
        })
        .collect()
}

fn copy_dir(from: &Path, to: &Path) {
    fs::create_dir_all(to).unwrap();
    for entry in fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let name = entry.file_name();
        if name == "target" {
            continue;
        }
        let (src, dst) = (entry.path(), to.join(&name));
        if entry.file_type().unwrap().is_dir() { copy_dir(&src, &dst) } else { copy_file(&src, &dst) }
    }
}

fn copy_file(from: &Path, to: &Path) {
    fs::create_dir_all(to.parent().unwrap()).unwrap();
    fs::copy(from, to).unwrap_or_else(|e| panic!("copy {}: {e}", from.display()));
}

/// The xtask's crates.io dependencies, vendored once per target dir (from crates.io,
/// or the local cache of it) so that the host's builds need no network; cargo runs in
/// `sb`, where no host's `.cargo/config.toml` is read.
pub fn vendored_xtask_dependencies(sb: &Sandbox) -> PathBuf {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        let manifest = repo_root().join("xtask").join("Cargo.toml");
        let lock = fs::read(repo_root().join("xtask").join("Cargo.lock")).unwrap();
        let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("vendored-xtask-deps");
        // Beside the directory: a directory source holds crates and nothing else.
        let stamp = dir.with_extension("lock");
        if fs::read(&stamp).ok().as_deref() == Some(lock.as_slice()) {
            return dir;
        }
        let _ = fs::remove_dir_all(&dir);
        let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
        let out = Command::new(cargo)
            .current_dir(sb.root())
            .args(["vendor", "--locked", "--manifest-path"])
            .arg(&manifest)
            .arg(&dir)
            .output()
            .expect("run cargo vendor");
        assert!(
            out.status.success(),
            "cannot vendor the xtask's dependencies (this needs crates.io once per target dir):\n{}",
            String::from_utf8_lossy(&out.stderr)
        );
        fs::write(&stamp, lock).unwrap();
        dir
    })
    .clone()
}
