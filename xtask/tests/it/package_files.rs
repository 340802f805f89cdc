//! Issue 14: what `cargo xtask publish` packages is what cargo packages in the
//! user's tree, and "identical" means identical for consumers.
//!
//! The fixture copies the shapes of today's Hyperlight that a copy of the
//! workspace's own files got wrong: the workspace is a subdirectory of its git
//! repository, members inherit their readme (`../README.md`, outside the workspace
//! dir), edition and license from the root, a member builds from a git submodule
//! (a real one: a second local repository added with `git submodule add`), and
//! another reads its data through a symlinked directory that points outside the
//! workspace dir.

use std::fs;
use std::path::{Path, PathBuf};

use xtask_harness::{Run, Sandbox};

use crate::login::{PACKAGES, git, logged_in_to, scan};

const LIBC: &str = "hyperlight-libc";
const COMMON: &str = "hyperlight-common";

/// The workspace root, `ws/` of the repository.
const ROOT_MANIFEST: &str = r#"[workspace]
resolver = "2"
members = ["src/hyperlight_common", "src/hyperlight_libc"]

[workspace.package]
version = "0.1.0"
edition = "2021"
license = "Apache-2.0"
readme = "../README.md"

[workspace.dependencies]
# Already naming the feed: the rewrite has nothing to change.
hyperlight-libc = { path = "src/hyperlight_libc", version = "=0.1.0", registry = "hyperlight_packages" }
"#;

/// (path in the repository, contents) of the superproject's files.
const FILES: [(&str, &str); 8] = [
    ("README.md", "# Hyperlight (a test fixture)\n"),
    (".gitignore", "target/\n"),
    ("shared/pages.txt", "4096\n"),
    ("ws/Cargo.toml", ROOT_MANIFEST),
    (
        "ws/src/hyperlight_libc/Cargo.toml",
        "[package]\nname = \"hyperlight-libc\"\nversion.workspace = true\nedition.workspace = true\nlicense.workspace = true\nreadme.workspace = true\ndescription = \"C from a submodule\"\nlinks = \"c\"\nbuild = \"build.rs\"\n",
    ),
    (
        "ws/src/hyperlight_libc/build.rs",
        "fn main() {\n    let header = std::fs::read_to_string(\"third_party/picolibc/include/limits.h\").unwrap();\n    assert!(header.contains(\"INT_BITS\"));\n    println!(\"cargo:rerun-if-changed=third_party/picolibc/include/limits.h\");\n}\n",
    ),
    ("ws/src/hyperlight_libc/src/lib.rs", "pub const INT_BITS: u32 = 32;\n"),
    (
        "ws/src/hyperlight_common/Cargo.toml",
        "[package]\nname = \"hyperlight-common\"\nversion.workspace = true\nedition.workspace = true\nlicense.workspace = true\nreadme.workspace = true\ndescription = \"Data through a symlinked dir\"\n\n[dependencies]\nhyperlight-libc = { workspace = true }\n",
    ),
];

/// The fixture: `picolibc`, a repository of its own, and `hyperlight`, whose
/// workspace `ws/` has it as a submodule of the libc crate; everything committed.
fn fixture(sb: &mut Sandbox) -> PathBuf {
    let url = crate::publish::picolibc(sb);
    let dir = write_files(sb, &FILES);
    let common = dir.join("ws/src/hyperlight_common");
    fs::write(
        common.join("src/lib.rs"),
        "pub const PAGE_SIZE: &str = include_str!(\"../data/pages.txt\");\npub const INT_BITS: u32 = hyperlight_libc::INT_BITS;\n",
    )
    .unwrap();
    symlink_dir("../../../shared", &common.join("data"));
    let at = "ws/src/hyperlight_libc/third_party/picolibc";
    git(sb, &dir, &["-c", "protocol.file.allow=always", "submodule", "add", "-q", &url, at]);
    commit_fixture(sb, &dir)
}

/// The same workspace without the shapes a copy of the workspace dir's files got
/// wrong (no submodule, no symlink, the readme inside): for the tests of what the
/// compare and the probe say, which old code could publish.
fn plain_fixture(sb: &mut Sandbox) -> PathBuf {
    let mut files = FILES.to_vec();
    let manifest = ROOT_MANIFEST.replace("../README.md", "README.md");
    files.retain(|(path, _)| !path.ends_with("build.rs") && *path != "ws/Cargo.toml");
    files.extend([("ws/Cargo.toml", manifest.as_str()), ("ws/README.md", FILES[0].1)]);
    files.push(("ws/src/hyperlight_libc/build.rs", "fn main() {}\n"));
    let dir = write_files(sb, &files);
    let lib = "pub const INT_BITS: u32 = hyperlight_libc::INT_BITS;\n";
    fs::write(dir.join("ws/src/hyperlight_common/src/lib.rs"), lib).unwrap();
    commit_fixture(sb, &dir)
}

/// `files` written into a new git repository `hyperlight` of the sandbox.
fn write_files(sb: &mut Sandbox, files: &[(&str, &str)]) -> PathBuf {
    let dir = sb.root().join("hyperlight");
    for (path, text) in files {
        let path = dir.join(path);
        fs::create_dir_all(path.parent().unwrap()).unwrap();
        fs::write(path, text).unwrap();
    }
    fs::create_dir_all(dir.join("ws/src/hyperlight_common/src")).unwrap();
    git(sb, &dir, &["init", "-q", "-b", "main"]);
    dir
}

/// The fixture's `Cargo.lock` generated, and everything committed.
fn commit_fixture(sb: &mut Sandbox, dir: &Path) -> PathBuf {
    sb.cargo(&dir.join("ws"), &["generate-lockfile", "--offline"]).assert_success();
    git(sb, dir, &["add", "-A"]);
    git(sb, dir, &["commit", "-q", "-m", "Hyperlight, in small"]);
    dir.to_owned()
}

#[cfg(unix)]
fn symlink_dir(target: &str, link: &Path) {
    std::os::unix::fs::symlink(target, link).unwrap();
}

#[cfg(windows)]
fn symlink_dir(target: &str, link: &Path) {
    std::os::windows::fs::symlink_dir(target, link).unwrap();
}

/// `cargo xtask publish --manifest-path <fixture>/ws/Cargo.toml <extra>`.
fn publish(sb: &mut Sandbox, fixture: &Path, extra: &[&str]) -> Run {
    crate::publish::publish(sb, &fixture.join("ws"), extra)
}

/// What `cargo package --list -p name` gives in the workspace at `workspace`,
/// sorted (its target dir elsewhere, so the workspace stays as it is).
pub(crate) fn cargo_list(sb: &mut Sandbox, workspace: &Path, name: &str) -> Vec<String> {
    let target = sb.root().join("list-target");
    let target = target.to_str().unwrap().to_owned();
    let run = sb.cargo(workspace, &["package", "--list", "-p", name, "--target-dir", &target]);
    run.assert_success();
    let mut files: Vec<String> = run.stdout.lines().map(str::to_owned).collect();
    files.sort();
    files
}

/// The `.crate` of `name` 0.1.0 as the feed serves it, fetched by cargo for a
/// consumer: its path in the cargo home's download cache.
fn feed_crate(sb: &mut Sandbox, name: &str) -> PathBuf {
    let cache = sb.cargo_home().join("registry").join("cache");
    let cached = |cache: &Path| {
        let registries = fs::read_dir(cache).into_iter().flatten().flatten();
        registries.map(|r| r.path().join(format!("{name}-0.1.0.crate"))).find(|f| f.is_file())
    };
    if let Some(file) = cached(&cache) {
        return file;
    }
    let dependency = format!("{name} = {{ version = \"=0.1.0\", registry = \"{PACKAGES}\" }}");
    let consumer = sb.scratch_crate(&format!("fetch-{name}"), &dependency);
    sb.cargo(&consumer, &["fetch"]).assert_success();
    cached(&cache).unwrap_or_else(|| panic!("cargo fetched no {name}-0.1.0.crate into {}", cache.display()))
}

/// The files of a `.crate` (a gzipped tar), relative to its `name-version/` dir.
pub(crate) fn crate_files(sb: &mut Sandbox, file: &Path) -> Vec<String> {
    let run = sb.run("tar", &["-tzf", file.to_str().unwrap()], file.parent().unwrap());
    run.assert_success();
    let mut files: Vec<String> = run
        .stdout
        .lines()
        .filter(|l| !l.ends_with('/'))
        .map(|l| l.split_once('/').unwrap().1.to_owned())
        .collect();
    files.sort();
    files
}

/// One file of a `.crate` named `name-version.crate`, as cargo names them.
pub(crate) fn crate_file(sb: &mut Sandbox, file: &Path, inner: &str) -> String {
    let stem = file.file_stem().unwrap().to_str().unwrap();
    let path = format!("{stem}/{inner}");
    let run = sb.run("tar", &["-xzOf", file.to_str().unwrap(), &path], file.parent().unwrap());
    run.assert_success();
    run.stdout.clone()
}

/// The fixture published to kellnr; each `.crate` the feed serves holds exactly
/// the files `cargo package --list` gives in the fixture (the submodule's, the
/// symlinked dir's and the readme from outside the workspace among them); a
/// second run skips both as identical.
#[test]
fn packages_hold_cargo_s_files_submodule_symlink_and_outside_readme() {
    let (_kellnr, mut sb, secrets) = logged_in_to(PACKAGES);
    let fx = fixture(&mut sb);

    let run = publish(&mut sb, &fx, &[]);
    run.assert_success();
    for name in [LIBC, COMMON] {
        let listed = cargo_list(&mut sb, &fx.join("ws"), name);
        let file = feed_crate(&mut sb, name);
        assert_eq!(crate_files(&mut sb, &file), listed, "{name}");
    }
    let libc = feed_crate(&mut sb, LIBC);
    let libc = crate_files(&mut sb, &libc);
    for expected in ["third_party/picolibc/include/limits.h", "README.md", "build.rs"] {
        assert!(libc.contains(&expected.to_owned()), "{expected} is missing: {libc:?}");
    }
    let common = feed_crate(&mut sb, COMMON);
    assert!(crate_files(&mut sb, &common).contains(&"data/pages.txt".to_owned()));
    assert_eq!(crate_file(&mut sb, &common, "README.md"), FILES[0].1);

    let again = publish(&mut sb, &fx, &[]);
    again.assert_success();
    for name in [LIBC, COMMON] {
        let line =
            again.stdout.lines().find(|l| l.starts_with(name)).unwrap_or_else(|| panic!("{}", again.stdout));
        assert!(line.ends_with("already there (identical)"), "{line}");
    }
    scan(&sb, &secrets);
}

/// Without `--version` and with nothing to rewrite, the `.crate` names the user's
/// commit and the workspace's path in the repository, as `cargo publish` would.
#[test]
fn the_crate_names_the_user_s_commit() {
    let (_kellnr, mut sb, secrets) = logged_in_to(PACKAGES);
    let fx = plain_fixture(&mut sb);
    let head = git(&mut sb, &fx, &["rev-parse", "HEAD"]).stdout.trim().to_owned();

    let run = publish(&mut sb, &fx, &[]);
    run.assert_success();
    run.assert_output_contains("nothing to change");
    assert!(!run.stderr.contains("exists nowhere else"), "{}", run.stderr);
    for (name, dir) in [(LIBC, "hyperlight_libc"), (COMMON, "hyperlight_common")] {
        let file = feed_crate(&mut sb, name);
        let vcs = crate_file(&mut sb, &file, ".cargo_vcs_info.json");
        assert!(vcs.contains(&format!("\"sha1\": \"{head}\"")), "{vcs}");
        assert!(vcs.contains(&format!("\"path_in_vcs\": \"ws/src/{dir}\"")), "{vcs}");
        assert!(!vcs.contains("dirty"), "{vcs}");
    }

    // With a rewrite (`--version`), the run says which commit the packages name.
    let run = publish(&mut sb, &fx, &["--version", "0.2.0"]);
    run.assert_success();
    run.assert_output_contains(&format!("your commit {head} with the rewrite committed on top"));
    scan(&sb, &secrets);
}

/// Uncommitted changes, in the workspace and in the submodule, stop the run before
/// anything is packaged, each named; `--allow-dirty` publishes them as they are.
#[test]
fn uncommitted_changes_are_refused_unless_allow_dirty() {
    let mut sb = crate::publish::offline_sandbox();
    let fx = fixture(&mut sb);
    let lib = fx.join("ws/src/hyperlight_libc/src/lib.rs");
    fs::write(&lib, "pub const INT_BITS: u32 = 32;\npub const DIRTY: bool = true;\n").unwrap();
    fs::write(fx.join("notes.txt"), "not committed\n").unwrap();
    let header = fx.join("ws/src/hyperlight_libc/third_party/picolibc/include/limits.h");
    fs::write(&header, "#define INT_BITS 32\n#define DIRTY 1\n").unwrap();

    let run = publish(&mut sb, &fx, &["--dry-run"]);
    run.assert_failure();
    run.assert_output_contains("3 changes are uncommitted");
    run.assert_output_contains("ws/src/hyperlight_libc/src/lib.rs");
    run.assert_output_contains("notes.txt");
    run.assert_output_contains("ws/src/hyperlight_libc/third_party/picolibc/include/limits.h");
    run.assert_output_contains("--allow-dirty");
    let calls: Vec<String> = sb.calls("cargo").iter().map(|c| c.line()).collect();
    assert!(calls.iter().all(|l| !l.starts_with("package ")), "packaged a dirty tree: {calls:?}");

    let run = publish(&mut sb, &fx, &["--dry-run", "--allow-dirty", "--keep"]);
    run.assert_success();
    run.assert_output_contains("with its uncommitted changes (--allow-dirty)");
    run.assert_output_contains("your uncommitted changes committed on top");
    let kept = crate::publish::kept_work_dir(&run);
    let packaged = kept.join("package").join(format!("{LIBC}-0.1.0"));
    let packaged = if packaged.is_dir() {
        packaged
    } else {
        kept.join("verify-dependencies").join("package").join(format!("{LIBC}-0.1.0"))
    };
    let text = fs::read_to_string(packaged.join("src/lib.rs")).unwrap();
    assert!(text.contains("DIRTY"), "{text}");
    let text = fs::read_to_string(packaged.join("third_party/picolibc/include/limits.h")).unwrap();
    assert!(text.contains("DIRTY"), "{text}");
}

/// With `--allow-dirty`, cargo packages a file git ignores that `include` names (a
/// generated source); the copy holds what git tracks, so it lacks it. The run stops
/// naming the file and what to do, not blaming the xtask; done, it publishes.
#[test]
fn an_ignored_file_cargo_includes_is_named_with_what_to_do() {
    let mut sb = crate::publish::offline_sandbox();
    let fx = plain_fixture(&mut sb);
    let common = fx.join("ws/src/hyperlight_common");
    let manifest = fs::read_to_string(common.join("Cargo.toml")).unwrap();
    let included =
        "description = \"Data through a symlinked dir\"\ninclude = [\"src/*.rs\", \"Cargo.toml\"]\n";
    fs::write(
        common.join("Cargo.toml"),
        manifest.replace("description = \"Data through a symlinked dir\"\n", included),
    )
    .unwrap();
    fs::write(common.join(".gitignore"), "generated.rs\n").unwrap();
    git(&mut sb, &fx, &["add", "-A"]);
    git(&mut sb, &fx, &["commit", "-q", "-m", "include"]);
    fs::write(common.join("src/generated.rs"), "pub const GENERATED: bool = true;\n").unwrap();

    // Without it, cargo took the file for a change and asked for --allow-dirty, which cannot help.
    for flags in [&["--dry-run"][..], &["--dry-run", "--allow-dirty"]] {
        let run = publish(&mut sb, &fx, flags);
        run.assert_failure();
        run.assert_output_contains("src/generated.rs");
        run.assert_output_contains("git add -f");
        assert!(
            !run.stderr.contains("please report") && !run.stderr.contains("pass the `--allow"),
            "{}",
            run.stderr
        );
    }
    git(&mut sb, &fx, &["add", "-f", "ws/src/hyperlight_common/src/generated.rs"]);
    git(&mut sb, &fx, &["commit", "-q", "-m", "generated"]);
    publish(&mut sb, &fx, &["--dry-run"]).assert_success();
}

/// A submodule checked out at a commit of its own (committed there, so neither `git
/// status` nor cargo sees a change) is uncommitted for the superproject: published, its
/// files would not be the ones the recorded commit names.
#[test]
fn a_submodule_at_another_commit_is_uncommitted() {
    let mut sb = crate::publish::offline_sandbox();
    let fx = fixture(&mut sb);
    let sub = fx.join("ws/src/hyperlight_libc/third_party/picolibc");
    fs::write(sub.join("include/limits.h"), "#define INT_BITS 32\n#define MOVED 1\n").unwrap();
    git(&mut sb, &sub, &["commit", "-q", "-a", "-m", "moved on"]);

    let run = publish(&mut sb, &fx, &["--dry-run"]);
    run.assert_failure();
    run.assert_output_contains("1 change is uncommitted");
    run.assert_output_contains("ws/src/hyperlight_libc/third_party/picolibc (checked out at");
    let calls: Vec<String> = sb.calls("cargo").iter().map(|c| c.line()).collect();
    assert!(calls.iter().all(|l| !l.starts_with("package ")), "packaged a moved submodule: {calls:?}");
}

/// What the commit has inside a crate to publish but the checkout lacks: a submodule
/// not checked out (a clone without `--recurse-submodules`), files a sparse checkout
/// leaves out. Cargo packages what is on disk, so the crate would lack them (here it
/// still verifies: the libc crate's build script is made not to need its headers);
/// the run stops before packaging, with or without `--allow-dirty`, naming what to run.
#[test]
fn a_crate_s_files_not_checked_out_are_refused() {
    let mut sb = crate::publish::offline_sandbox();
    let fx = fixture(&mut sb);
    let (root, clone) = (sb.root().to_owned(), sb.root().join("clone"));
    git(&mut sb, &root, &["clone", "-q", fx.to_str().unwrap(), clone.to_str().unwrap()]);
    fs::write(clone.join("ws/src/hyperlight_libc/build.rs"), "fn main() {}\n").unwrap();
    git(&mut sb, &clone, &["commit", "-q", "-a", "-m", "headers as data"]);
    let no_package = |sb: &Sandbox| {
        let calls: Vec<String> = sb.calls("cargo").iter().map(|c| c.line()).collect();
        assert!(calls.iter().all(|l| !l.starts_with("package ")), "packaged: {calls:?}");
    };

    for extra in [&["--dry-run"][..], &["--dry-run", "--allow-dirty"]] {
        let run = publish(&mut sb, &clone, extra);
        run.assert_failure();
        run.assert_output_contains("not checked out");
        run.assert_output_contains("git submodule update --init --recursive");
        run.assert_output_contains(
            "ws/src/hyperlight_libc/third_party/picolibc in hyperlight-libc (a submodule",
        );
        // Where the submodule cannot be had (its host unreachable): the flags that leave its crate
        // out, and every crate that needs it, also through another.
        run.assert_output_contains("or leave out those crates and what needs them: `--exclude hyperlight-common --exclude hyperlight-libc`");
        no_package(&sb);
    }
    let run = publish(&mut sb, &clone, &["--dry-run", "-p", LIBC]);
    run.assert_failure()
        .assert_output_contains("or leave out those crates and what needs them: drop `-p hyperlight-libc`");

    fs::write(fx.join("ws/src/hyperlight_common/NOTES.md"), "notes\n").unwrap();
    git(&mut sb, &fx, &["add", "-A"]);
    git(&mut sb, &fx, &["commit", "-q", "-m", "notes"]);
    let sparse = ["sparse-checkout", "set", "--no-cone", "/*", "!/ws/src/hyperlight_common/NOTES.md"];
    git(&mut sb, &fx, &sparse);
    let run = publish(&mut sb, &fx, &["--dry-run"]);
    run.assert_failure();
    run.assert_output_contains("ws/src/hyperlight_common/NOTES.md");
    run.assert_output_contains("git sparse-checkout disable");
    no_package(&sb);

    // A symlink checked out as a plain file holding its target (`core.symlinks=false`,
    // Git for Windows' default): cargo would package that text.
    git(&mut sb, &fx, &["sparse-checkout", "disable"]);
    git(&mut sb, &fx, &["config", "core.symlinks", "false"]);
    let link = "ws/src/hyperlight_common/data";
    remove_symlink_dir(&fx.join(link));
    git(&mut sb, &fx, &["checkout", "--", link]);
    let run = publish(&mut sb, &fx, &["--dry-run"]);
    run.assert_failure();
    run.assert_output_contains(&format!("{link} in hyperlight-common (a symlink checked out as a file"));
    run.assert_output_contains("git config core.symlinks true");
    no_package(&sb);
}

#[cfg(unix)]
fn remove_symlink_dir(link: &Path) {
    fs::remove_file(link).unwrap();
}

#[cfg(windows)]
fn remove_symlink_dir(link: &Path) {
    fs::remove_dir(link).unwrap();
}

/// A filter of the repository's own config (as `git lfs install --local` sets up)
/// smudges a file of a crate in the user's checkout: the package holds the file as
/// the user's cargo packages it, not the blob (for LFS, a pointer).
#[test]
fn a_filter_of_the_repository_s_config_applies_in_the_copy() {
    let mut sb = crate::publish::offline_sandbox();
    let fx = plain_fixture(&mut sb);
    let data = "ws/src/hyperlight_libc/data.txt";
    fs::write(fx.join(".gitattributes"), "*.txt filter=rot13\n").unwrap();
    fs::write(fx.join(data), "pointer\n").unwrap();
    git(&mut sb, &fx, &["add", "-A"]);
    git(&mut sb, &fx, &["commit", "-q", "-m", "a filtered file"]);
    for (key, value) in [("smudge", "tr a-z n-za-m"), ("clean", "tr a-z n-za-m"), ("required", "true")] {
        git(&mut sb, &fx, &["config", &format!("filter.rot13.{key}"), value]);
    }
    fs::remove_file(fx.join(data)).unwrap();
    git(&mut sb, &fx, &["checkout", "--", data]);
    assert_eq!(fs::read_to_string(fx.join(data)).unwrap(), "cbvagre\n");

    let run = publish(&mut sb, &fx, &["--dry-run", "--keep", "-p", LIBC]);
    run.assert_success();
    let kept = crate::publish::kept_work_dir(&run);
    let packaged = kept.join("package/package").join(format!("{LIBC}-0.1.0")).join("data.txt");
    assert_eq!(fs::read_to_string(&packaged).unwrap(), "cbvagre\n", "{}", packaged.display());

    // Chosen by the repository's own attributes (`.git/info/attributes`), not committed ones.
    git(&mut sb, &fx, &["rm", "-q", ".gitattributes"]);
    git(&mut sb, &fx, &["commit", "-q", "-m", "attributes of the repository's own"]);
    fs::write(fx.join(".git/info/attributes"), "*.txt filter=rot13\n").unwrap();
    let run = publish(&mut sb, &fx, &["--dry-run", "--keep", "-p", LIBC]);
    run.assert_success();
    let kept = crate::publish::kept_work_dir(&run);
    let packaged = kept.join("package/package").join(format!("{LIBC}-0.1.0")).join("data.txt");
    assert_eq!(fs::read_to_string(&packaged).unwrap(), "cbvagre\n", "{}", packaged.display());

    // one reading the user's `.git` (git LFS's objects) would: the run stops instead of
    // packaging the blob.
    git(&mut sb, &fx, &["config", "--unset", "filter.rot13.required"]);
    let config = fs::read_to_string(fx.join(".git/config")).unwrap() + "[filter \"rot13\"]\n\trequired\n";
    fs::write(fx.join(".git/config"), config).unwrap();
    let mine = "test -d \"$(git rev-parse --absolute-git-dir)/mine\" && tr a-z n-za-m";
    for key in ["filter.rot13.smudge", "filter.rot13.clean"] {
        git(&mut sb, &fx, &["config", key, mine]);
    }
    fs::create_dir_all(fx.join(".git/mine")).unwrap();
    fs::remove_file(fx.join(data)).unwrap();
    git(&mut sb, &fx, &["checkout", "--", data]);
    let run = publish(&mut sb, &fx, &["--dry-run", "-p", LIBC]);
    run.assert_failure();
    run.assert_output_contains("smudge filter rot13 failed");
}

/// Cargo configuration the user's cargo reads and the work copy's does not (an
/// ignored `.cargo/config.toml` in the workspace, one above the repository): the run
/// names each, as the packages are built and verified without them; a committed one
/// is in the copy and not named, nor one above both the repository and the work copy
/// (the sandbox's, above its temp dir), which the copy's cargo reads too.
#[test]
fn configs_the_copy_does_not_see_are_named() {
    let mut sb = crate::publish::offline_sandbox();
    let (outer, fx) = (sb.root().join("outer"), plain_fixture(&mut sb));
    fs::create_dir_all(&outer).unwrap();
    fs::rename(&fx, outer.join("hyperlight")).unwrap();
    let fx = outer.join("hyperlight");
    let config = "[env]\nXTASK_TEST_NOTE = \"1\"\n";
    for dir in [fx.join(".cargo"), fx.join("ws/.cargo"), outer.join(".cargo"), sb.root().join(".cargo")] {
        fs::create_dir_all(&dir).unwrap();
        fs::write(dir.join("config.toml"), config).unwrap();
    }
    fs::write(fx.join(".gitignore"), "target/\nws/.cargo/\n").unwrap();
    git(&mut sb, &fx, &["add", "-A"]);
    git(&mut sb, &fx, &["commit", "-q", "-m", "a committed config"]);

    let run = publish(&mut sb, &fx, &["--dry-run"]);
    run.assert_success();
    let warning =
        run.stderr.lines().find(|l| l.contains("the work copy does not have")).unwrap_or_else(|| {
            panic!("no warning of the configs: {}", run.stderr);
        });
    let named = |dir: &Path| warning.contains(dir.join(".cargo").join("config.toml").to_str().unwrap());
    assert!(named(&fx.join("ws")) && named(&outer), "{warning}");
    assert!(!named(&fx), "a committed config named: {warning}");
    assert!(!named(sb.root()), "a config the copy reads named: {warning}");
}

/// Issue 14, defect 2: published, then only the root manifest changes (what the
/// members inherit: their license, a dependency's requirement): the run stops as
/// "other sources", naming the keys, and uploads nothing.
#[test]
fn a_change_of_only_the_root_manifest_is_not_identical() {
    let (kellnr, mut sb, secrets) = logged_in_to(PACKAGES);
    let fx = plain_fixture(&mut sb);
    publish(&mut sb, &fx, &[]).assert_success();

    let root = fx.join("ws/Cargo.toml");
    let changed =
        fs::read_to_string(&root).unwrap().replace("Apache-2.0", "MIT").replace("\"=0.1.0\"", "\"0.1.0\"");
    fs::write(&root, changed).unwrap();
    git(&mut sb, &fx, &["commit", "-q", "-a", "-m", "root manifest only"]);

    let before = kellnr.index_entry(COMMON).unwrap();
    let run = publish(&mut sb, &fx, &[]);
    run.assert_failure();
    run.assert_output_contains(&format!(
        "{COMMON} 0.1.0 is in {PACKAGES} with other sources than this run's"
    ));
    run.assert_output_contains(
        "Cargo.toml: package.license (\"MIT\" here, \"Apache-2.0\" in the registry's)",
    );
    run.assert_output_contains(
        "Cargo.toml: dependencies.hyperlight-libc.version (\"0.1.0\" here, \"=0.1.0\" in the registry's)",
    );
    run.assert_output_contains("Nothing was uploaded");
    assert_eq!(kellnr.index_entry(COMMON).unwrap(), before);
    scan(&sb, &secrets);
}

/// Issue 14, defect 6: a yanked version is in the feed and can never be published
/// again: the run says so and asks for a new version, never "run again". The version it
/// offers (once the very one yanked, the docs' example) publishes.
#[test]
fn a_yanked_version_is_refused_as_permanent() {
    let (_kellnr, mut sb, secrets) = logged_in_to(PACKAGES);
    let fx = plain_fixture(&mut sb);
    let yanked = "0.1.2-20240416";
    publish(&mut sb, &fx, &["-p", LIBC, "--version", yanked]).assert_success();
    let yank = sb.cargo(&fx, &["yank", "--registry", PACKAGES, &format!("{LIBC}@{yanked}")]);
    yank.assert_success();

    let run = publish(&mut sb, &fx, &["-p", LIBC, "--version", yanked]);
    run.assert_failure();
    run.assert_output_contains(&format!("{LIBC} {yanked} is yanked in {PACKAGES}"));
    assert!(!run.combined().contains("run again"), "{}", run.combined());
    let publishes =
        sb.calls("cargo").iter().filter(|c| c.argv.first().map(String::as_str) == Some("publish")).count();
    assert_eq!(publishes, 1, "published again after the yank");
    let offered = run.stderr.split("(`--version`, such as ").nth(1).and_then(|rest| rest.split(')').next());
    let offered = offered.unwrap_or_else(|| panic!("no version offered: {}", run.stderr));
    publish(&mut sb, &fx, &["-p", LIBC, "--version", offered]).assert_success();
    scan(&sb, &secrets);
}
