//! `cargo xtask publish` against a real kellnr with authentication required, from a
//! real git repository shaped like Hyperlight's workspace today: a common crate, a
//! proc-macro crate and its helper, a guest crate depending on the common one with
//! `default-features = false`, a crate with a build script, a libc crate (`links =
//! "c"`, its own readme) whose build script reads its C headers from a real git
//! submodule, that crate depending on it through a default feature, a host crate
//! depending on several of them, and a test crate without a `version` (cargo reads
//! 0.0.0 and publishes it nowhere) the host dev-depends on by path only. `[workspace.package]`
//! gives every member its version (and edition, license, repository, readme, the
//! root `README.md`); `[workspace.dependencies]` lists the crates with `path` and
//! `version`, with different operators, and one path-only entry a helper crate
//! dev-depends on, closing a dev-dependency cycle (legal: cargo drops path-only
//! dev-dependencies). The guest tracing crate is in no `members` list: cargo makes
//! it a member because a member depends on it by path. `Cargo.lock` is committed,
//! as Hyperlight does. No crates.io dependencies, so nothing here needs the network.
//!
//! The xtask runs with this repository as its root; `--manifest-path` points it at
//! the fixture.

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};

use xtask_harness::{Kellnr, Run, Sandbox};

use crate::login::{PACKAGES, closed_port, entry, feed_answering_500, git, logged_in_to, scan, seed_crate};
use crate::package_files::{cargo_list, crate_file, crate_files};

const VERSION: &str = "0.2.0-preview.1";

/// The publishable crates, each with the fixture crates it depends on (normal or
/// build dependencies: what must be in the feed before it).
const CRATES: [(&str, &[&str]); 8] = [
    ("hyperlight-common", &[]),
    ("hyperlight-component-util", &[]),
    ("hyperlight-component-macro", &["hyperlight-component-util"]),
    ("hyperlight-guest-tracing", &[]),
    ("hyperlight-guest", &["hyperlight-common", "hyperlight-guest-tracing"]),
    ("hyperlight-libc", &[]),
    ("hyperlight-guest-bin", &["hyperlight-guest", "hyperlight-common", "hyperlight-libc"]),
    ("hyperlight-host", &["hyperlight-common", "hyperlight-component-macro", "hyperlight-guest-bin"]),
];
const TESTING: &str = "hyperlight-testing";

/// The members are listed host first, so that the workspace's own order is not a
/// valid publish order: the order must come from the dependencies.
const ROOT_MANIFEST: &str = r#"[workspace]
resolver = "2"
members = [
    "src/hyperlight_host",
    "src/hyperlight_guest_bin",
    "src/hyperlight_guest",
    "src/hyperlight_component_macro",
    "src/hyperlight_component_util",
    "src/hyperlight_common",
    "src/hyperlight_libc",
    "src/hyperlight_testing",
]

[workspace.package]
version = "0.1.0"
edition = "2021"
license = "Apache-2.0"
repository = "https://github.com/hyperlight-dev/hyperlight"
readme = "README.md"

[workspace.dependencies]
# Exact pins, as Hyperlight writes them.
hyperlight-common = { path = "src/hyperlight_common", version = "=0.1.0", default-features = false }
hyperlight-guest-bin = { path = "src/hyperlight_guest_bin", version = "=0.1.0" }
# Plain (caret) and tilde requirements.
hyperlight-guest = { path = "src/hyperlight_guest", version = "0.1.0" }
hyperlight-component-macro = { path = "src/hyperlight_component_macro", version = "0.1.0" }
hyperlight-component-util = { path = "src/hyperlight_component_util", version = "~0.1.0" }
hyperlight-guest-tracing = { path = "src/hyperlight_guest_tracing", version = "0.1.0" }
hyperlight-libc = { path = "src/hyperlight_libc", version = "0.1.0", default-features = false }
# Path only: never published.
hyperlight-testing = { path = "src/hyperlight_testing" }
# Path only, for a dev-dependency that closes a cycle: cargo drops it when publishing.
component-macro-for-tests = { package = "hyperlight-component-macro", path = "src/hyperlight_component_macro" }
"#;

/// The libc crate's build script: generated Rust from a header of the submodule,
/// so a package without the submodule's files fails to build.
const LIBC_BUILD: &str = r##"use std::path::PathBuf;

fn main() {
    let header = "third_party/picolibc/include/limits.h";
    let text = std::fs::read_to_string(header).expect("the picolibc submodule is checked out");
    let bits = text.lines().find_map(|l| l.strip_prefix("#define INT_BITS ")).expect("INT_BITS");
    let out = PathBuf::from(std::env::var("OUT_DIR").unwrap());
    std::fs::write(out.join("bindings.rs"), format!("pub const INT_BITS: u32 = {bits};\n")).unwrap();
    println!("cargo:rerun-if-changed={header}");
}
"##;

/// Where the libc crate's submodule sits, as in Hyperlight's `.gitmodules`.
const SUBMODULE: &str = "src/hyperlight_libc/third_party/picolibc";

/// (path, contents) of every file of the fixture but `Cargo.lock` and the submodule's.
fn fixture_files() -> Vec<(&'static str, &'static str)> {
    vec![
        ("Cargo.toml", ROOT_MANIFEST),
        ("README.md", "# Hyperlight (a test fixture)\n"),
        (".gitignore", "/target\n"),
        (
            "src/hyperlight_common/Cargo.toml",
            "[package]\nname = \"hyperlight-common\"\nversion.workspace = true\nedition.workspace = true\nlicense.workspace = true\nrepository.workspace = true\nreadme.workspace = true\ndescription = \"Common types\"\n\n[features]\ndefault = [\"std\"]\nstd = []\n",
        ),
        (
            "src/hyperlight_common/src/lib.rs",
            "#![no_std]\n#[cfg(feature = \"std\")]\nextern crate std;\n\npub const PAGE_SIZE: usize = 4096;\n\n#[cfg(feature = \"std\")]\npub fn describe() -> std::string::String {\n    std::format!(\"page size {PAGE_SIZE}\")\n}\n",
        ),
        (
            "src/hyperlight_component_util/Cargo.toml",
            "[package]\nname = \"hyperlight-component-util\"\nversion.workspace = true\nedition.workspace = true\nlicense.workspace = true\nrepository.workspace = true\nreadme.workspace = true\ndescription = \"Helpers of the component macro\"\n\n[dev-dependencies]\ncomponent-macro-for-tests = { workspace = true }\n",
        ),
        (
            "src/hyperlight_component_util/src/lib.rs",
            "/// The expression the macro expands to.\npub fn expansion() -> &'static str {\n    \"42u32\"\n}\n",
        ),
        (
            "src/hyperlight_component_macro/Cargo.toml",
            "[package]\nname = \"hyperlight-component-macro\"\nversion.workspace = true\nedition.workspace = true\nlicense.workspace = true\nrepository.workspace = true\nreadme.workspace = true\ndescription = \"A proc macro\"\n\n[lib]\nproc-macro = true\n\n[dependencies]\nhyperlight-component-util = { workspace = true }\n",
        ),
        (
            "src/hyperlight_component_macro/src/lib.rs",
            "use proc_macro::TokenStream;\n\n#[proc_macro]\npub fn host_bindgen(_input: TokenStream) -> TokenStream {\n    hyperlight_component_util::expansion().parse().unwrap()\n}\n",
        ),
        (
            "src/hyperlight_guest/Cargo.toml",
            "[package]\nname = \"hyperlight-guest\"\nversion.workspace = true\nedition.workspace = true\nlicense.workspace = true\nrepository.workspace = true\nreadme.workspace = true\ndescription = \"The guest library\"\n\n[dependencies]\nhyperlight-common = { workspace = true }\nhyperlight-guest-tracing = { workspace = true }\n",
        ),
        (
            "src/hyperlight_guest/src/lib.rs",
            "#![no_std]\n\npub fn pages(bytes: usize) -> usize {\n    hyperlight_guest_tracing::trace(\"pages\");\n    bytes.div_ceil(hyperlight_common::PAGE_SIZE)\n}\n",
        ),
        (
            "src/hyperlight_guest_tracing/Cargo.toml",
            "[package]\nname = \"hyperlight-guest-tracing\"\nversion.workspace = true\nedition.workspace = true\nlicense.workspace = true\nrepository.workspace = true\nreadme.workspace = true\ndescription = \"Guest tracing, a member only through the guest's path dependency\"\n",
        ),
        ("src/hyperlight_guest_tracing/src/lib.rs", "#![no_std]\n\npub fn trace(_what: &str) {}\n"),
        (
            "src/hyperlight_guest_bin/Cargo.toml",
            "[package]\nname = \"hyperlight-guest-bin\"\nversion.workspace = true\nedition.workspace = true\nlicense.workspace = true\nrepository.workspace = true\nreadme.workspace = true\ndescription = \"The guest binary support, with a build script\"\nbuild = \"build.rs\"\n\n[features]\ndefault = [\"libc\"]\nlibc = [\"dep:hyperlight-libc\"]\n\n[dependencies]\nhyperlight-guest = { workspace = true }\nhyperlight-common = { workspace = true }\nhyperlight-libc = { workspace = true, default-features = false, optional = true }\n",
        ),
        // `cargo vendor`, which fetches the feed's copy, leaves these out at any depth.
        ("src/hyperlight_guest_bin/.gitignore", "/scratch\n"),
        ("src/hyperlight_guest_bin/src/.gitattributes", "*.rs text eol=lf\n"),
        (
            "src/hyperlight_guest_bin/build.rs",
            "use std::path::PathBuf;\n\nfn main() {\n    let out = PathBuf::from(std::env::var(\"OUT_DIR\").unwrap());\n    std::fs::write(out.join(\"generated.rs\"), \"pub const STACK_PAGES: usize = 16;\\n\").unwrap();\n    println!(\"cargo:rerun-if-changed=build.rs\");\n}\n",
        ),
        (
            "src/hyperlight_guest_bin/src/lib.rs",
            "#![no_std]\n\ninclude!(concat!(env!(\"OUT_DIR\"), \"/generated.rs\"));\n\npub fn stack_bytes() -> usize {\n    STACK_PAGES * hyperlight_common::PAGE_SIZE + hyperlight_guest::pages(0)\n}\n\n#[cfg(feature = \"libc\")]\npub fn int_bits() -> u32 {\n    hyperlight_libc::INT_BITS\n}\n",
        ),
        (
            "src/hyperlight_host/Cargo.toml",
            "[package]\nname = \"hyperlight-host\"\nversion.workspace = true\nedition.workspace = true\nlicense.workspace = true\nrepository.workspace = true\nreadme.workspace = true\ndescription = \"The host library\"\n\n[dependencies]\nhyperlight-common = { workspace = true, default-features = true, features = [\"std\"] }\nhyperlight-component-macro = { workspace = true }\nhyperlight-guest-bin = { workspace = true }\n\n[dev-dependencies]\nhyperlight-testing = { workspace = true }\n",
        ),
        (
            "src/hyperlight_host/src/lib.rs",
            "pub fn sandbox_summary() -> String {\n    let answer: u32 = hyperlight_component_macro::host_bindgen!();\n    format!(\"{} stack {} answer {answer} int {}\", hyperlight_common::describe(), hyperlight_guest_bin::stack_bytes(), hyperlight_guest_bin::int_bits())\n}\n\n#[cfg(test)]\nmod tests {\n    #[test]\n    fn summary() {\n        assert_eq!(hyperlight_testing::expected(), super::sandbox_summary());\n    }\n}\n",
        ),
        // Hyperlight's libc: `links = "c"`, its own readme, and a build script that
        // reads the headers of its submodule (see `fixture`).
        (
            "src/hyperlight_libc/Cargo.toml",
            "[package]\nname = \"hyperlight-libc\"\nlinks = \"c\"\nversion.workspace = true\nedition.workspace = true\nlicense.workspace = true\nrepository.workspace = true\nreadme = \"README.md\"\ndescription = \"picolibc for Hyperlight guests\"\n\n[features]\ndefault = []\n",
        ),
        ("src/hyperlight_libc/README.md", "# hyperlight-libc (a test fixture)\n"),
        ("src/hyperlight_libc/build.rs", LIBC_BUILD),
        (
            "src/hyperlight_libc/src/lib.rs",
            "#![no_std]\n\ninclude!(concat!(env!(\"OUT_DIR\"), \"/bindings.rs\"));\n",
        ),
        (
            "src/hyperlight_testing/Cargo.toml",
            "[package]\nname = \"hyperlight-testing\"\nedition.workspace = true\n\n[dependencies]\nhyperlight-common = { workspace = true, features = [\"std\"] }\n",
        ),
        (
            "src/hyperlight_testing/src/lib.rs",
            "pub fn expected() -> String {\n    format!(\"{} stack 65536 answer 42 int 32\", hyperlight_common::describe())\n}\n",
        ),
    ]
}

/// `picolibc`, a repository of two commits in the sandbox: its `file://` URL (a
/// plain path would make git ignore `--depth`).
pub(crate) fn picolibc(sb: &mut Sandbox) -> String {
    let picolibc = sb.root().join("picolibc");
    fs::create_dir_all(picolibc.join("include")).unwrap();
    fs::write(picolibc.join("COPYING.picolibc"), "BSD\n").unwrap();
    git(sb, &picolibc, &["init", "-q", "-b", "main"]);
    git(sb, &picolibc, &["add", "-A"]);
    git(sb, &picolibc, &["commit", "-q", "-m", "picolibc"]);
    fs::write(picolibc.join("include/limits.h"), "#define INT_BITS 32\n").unwrap();
    git(sb, &picolibc, &["add", "-A"]);
    git(sb, &picolibc, &["commit", "-q", "-m", "limits.h"]);
    let path = picolibc.to_str().unwrap().replace('\\', "/");
    if path.starts_with('/') { format!("file://{path}") } else { format!("file:///{path}") }
}

/// The fixture: a git repository in the sandbox, with its `Cargo.lock` committed
/// and `picolibc` as the libc crate's submodule, shallow as Hyperlight's
/// `.gitmodules` asks (`shallow = true`) and a clone with it gets.
fn fixture(sb: &mut Sandbox) -> PathBuf {
    let url = picolibc(sb);
    let dir = sb.root().join("hyperlight");
    for (path, text) in fixture_files() {
        let path = dir.join(path);
        fs::create_dir_all(path.parent().unwrap()).unwrap();
        fs::write(path, text).unwrap();
    }
    sb.cargo(&dir, &["generate-lockfile", "--offline"]).assert_success();
    assert!(dir.join("Cargo.lock").is_file());
    git(sb, &dir, &["init", "-q", "-b", "main"]);
    let add = ["-c", "protocol.file.allow=always", "submodule", "add", "-q", "--depth", "1", &url, SUBMODULE];
    git(sb, &dir, &add);
    let shallow = format!("submodule.{SUBMODULE}.shallow");
    git(sb, &dir, &["config", "-f", ".gitmodules", &shallow, "true"]);
    let checkout = dir.join(SUBMODULE);
    assert_eq!(git(sb, &checkout, &["rev-parse", "--is-shallow-repository"]).stdout.trim(), "true");
    git(sb, &dir, &["add", "-A"]);
    git(sb, &dir, &["commit", "-q", "-m", "Hyperlight, in small"]);
    dir
}

/// Every file of the fixture outside `.git`, with its bytes, and the commit checked out.
fn tree(sb: &mut Sandbox, dir: &Path) -> (BTreeMap<String, Vec<u8>>, String) {
    fn walk(root: &Path, dir: &Path, out: &mut BTreeMap<String, Vec<u8>>) {
        for entry in fs::read_dir(dir).unwrap().flatten() {
            let path = entry.path();
            if entry.file_name() == ".git" {
                continue;
            }
            if entry.file_type().unwrap().is_dir() {
                walk(root, &path, out);
            } else {
                let relative = path.strip_prefix(root).unwrap().to_string_lossy().into_owned();
                out.insert(relative, fs::read(&path).unwrap());
            }
        }
    }
    let mut files = BTreeMap::new();
    walk(dir, dir, &mut files);
    let head = git(sb, dir, &["rev-parse", "HEAD"]).stdout;
    (files, head)
}

/// The fixture's tree is as it was, and git sees nothing changed.
#[track_caller]
fn assert_untouched(sb: &mut Sandbox, dir: &Path, before: &(BTreeMap<String, Vec<u8>>, String)) {
    let after = tree(sb, dir);
    let names = |t: &BTreeMap<String, Vec<u8>>| t.keys().cloned().collect::<Vec<_>>();
    assert_eq!(names(&after.0), names(&before.0), "files appeared or went in the fixture");
    for (path, bytes) in &before.0 {
        assert!(
            after.0[path] == *bytes,
            "{path} of the fixture changed:\n{}",
            String::from_utf8_lossy(&after.0[path])
        );
    }
    assert_eq!(after.1, before.1, "the fixture's HEAD moved");
    let status = git(sb, dir, &["status", "--porcelain", "--ignored"]);
    assert_eq!(status.stdout, "", "git status of the fixture");
}

/// A kellnr, a sandbox with `hyperlight_packages` pointed at it, logged in with a PAT
/// Logged in to `hyperlight_packages`, see [`crate::login::logged_in_to`].
fn logged_in() -> (Kellnr, Sandbox, Vec<String>) {
    logged_in_to(PACKAGES)
}

/// The work dir a `publish --keep` run kept, as its progress line names it.
pub(crate) fn kept_work_dir(run: &Run) -> PathBuf {
    let line = run.stderr.lines().find_map(|l| l.strip_prefix("publish: work dir "));
    let dir = line.and_then(|l| l.strip_suffix(" (kept: --keep)"));
    PathBuf::from(dir.unwrap_or_else(|| panic!("no kept work dir: {}", run.stderr)))
}

/// `cargo xtask publish --manifest-path <fixture>/Cargo.toml <extra>`.
pub(crate) fn publish(sb: &mut Sandbox, fixture: &Path, extra: &[&str]) -> Run {
    let manifest = fixture.join("Cargo.toml");
    let manifest = manifest.to_str().unwrap().to_owned();
    let mut args = vec!["publish", "--manifest-path", &manifest];
    args.extend_from_slice(extra);
    sb.xtask(&args)
}

/// The crates `cargo publish` was run for, in order, read from the recorded calls:
/// the crate whose directory holds the `--manifest-path` given.
fn published_crates(sb: &Sandbox) -> Vec<String> {
    sb.calls("cargo")
        .iter()
        .filter(|c| c.argv.first().map(String::as_str) == Some("publish"))
        .map(|c| {
            let at = c.argv.iter().position(|a| a == "--manifest-path").expect("a manifest path");
            let manifest = Path::new(&c.argv[at + 1]);
            let dir = manifest.parent().unwrap().file_name().unwrap().to_str().unwrap();
            dir.replace('_', "-")
        })
        .collect()
}

/// The `"deps":[…]` part of an index entry line.
fn deps(entry: &str) -> &str {
    let start = entry.find("\"deps\":[").unwrap_or_else(|| panic!("no deps in {entry}"));
    let end = start + entry[start..].find("],\"cksum\"").unwrap_or_else(|| panic!("no cksum in {entry}"));
    &entry[start..=end]
}

/// The object of dependency `dep` in an index entry line (`{"name":"dep",…}`).
fn dependency<'a>(entry: &'a str, dep: &str) -> &'a str {
    let deps = deps(entry);
    let start = deps
        .find(&format!("{{\"name\":\"{dep}\""))
        .unwrap_or_else(|| panic!("no dependency on {dep} in {entry}"));
    let end = start + deps[start..].find('}').unwrap();
    &deps[start..=end]
}

/// The lines of the closing table, after its `crate  version  outcome` header.
fn table(run: &Run) -> Vec<&str> {
    let lines: Vec<&str> = run.stdout.lines().collect();
    let header = lines
        .iter()
        .rposition(|l| l.split_whitespace().collect::<Vec<_>>() == ["crate", "version", "outcome"])
        .unwrap_or_else(|| panic!("no table:\n{}", run.stdout));
    lines[header + 1..].iter().copied().take_while(|l| !l.trim().is_empty()).collect()
}

/// The table line of one crate: `name  version  outcome`, spaces squeezed.
fn outcome(run: &Run, krate: &str) -> String {
    let line = table(run)
        .into_iter()
        .find(|l| l.split_whitespace().next() == Some(krate))
        .unwrap_or_else(|| panic!("no table line for {krate}:\n{}", run.stdout));
    line.split_whitespace().skip(2).collect::<Vec<_>>().join(" ")
}

#[track_caller]
fn assert_outcomes(run: &Run, expected: &[(&str, &str)]) {
    for (krate, want) in expected {
        assert_eq!(outcome(run, krate), *want, "{krate}:\n{}", run.stdout);
    }
    assert_eq!(table(run).len(), expected.len(), "{}", run.stdout);
    assert!(
        !table(run).iter().any(|l| l.split_whitespace().next() == Some(TESTING)),
        "the versionless crate is in the table:\n{}",
        run.stdout
    );
}

/// Each crate of `order` comes after every fixture crate it depends on, and the
/// order holds every publishable crate once.
#[track_caller]
fn assert_valid_order(order: &[String]) {
    let mut sorted = order.to_vec();
    sorted.sort();
    let mut all: Vec<String> = CRATES.iter().map(|(n, _)| n.to_string()).collect();
    all.sort();
    assert_eq!(sorted, all, "published: {order:?}");
    for (krate, deps) in CRATES {
        let at = order.iter().position(|n| n == krate).unwrap();
        for dep in deps {
            let dep_at = order.iter().position(|n| n == dep).unwrap();
            assert!(dep_at < at, "{krate} was published before its dependency {dep}: {order:?}");
        }
    }
}

/// Each crate's `.crate` as kellnr serves it holds exactly the files `cargo package
/// --list` gives in the fixture: the libc crate's with its submodule's header and
/// its own readme, the others' with the root's readme they inherit.
#[track_caller]
fn assert_feed_crates_hold_cargo_s_files(kellnr: &Kellnr, sb: &mut Sandbox, fx: &Path) {
    let downloads = sb.root().join("downloads");
    fs::create_dir_all(&downloads).unwrap();
    for (krate, _) in CRATES {
        let bytes =
            kellnr.crate_file(krate, VERSION).unwrap_or_else(|| panic!("kellnr has no {krate} {VERSION}"));
        let file = downloads.join(format!("{krate}-{VERSION}.crate"));
        fs::write(&file, bytes).unwrap();
        let held = crate_files(sb, &file);
        assert_eq!(held, cargo_list(sb, fx, krate), "{krate}: the .crate against `cargo package --list`");
        let readme = if krate == "hyperlight-libc" {
            for expected in ["third_party/picolibc/include/limits.h", "build.rs"] {
                assert!(held.iter().any(|f| f == expected), "{expected} is not in {krate}: {held:?}");
            }
            "src/hyperlight_libc/README.md"
        } else {
            "README.md"
        };
        let readme = fixture_files().into_iter().find(|(path, _)| *path == readme).unwrap().1;
        assert_eq!(crate_file(sb, &file, "README.md"), readme, "{krate}");
    }
}

/// Issue 8, the whole flow: the publishable crates under `--version`, in
/// dependency order, the requirements between them following with their operators
/// kept, a consumer building against the host crate from the feed (the libc build
/// script reading the submodule's header in the published `.crate`), each `.crate`
/// holding what `cargo package --list` gives, the fixture unchanged; then a second
/// identical run publishes nothing.
#[test]
fn publishes_the_workspace_in_order_then_a_second_run_skips_all() {
    let (kellnr, mut sb, secrets) = logged_in();
    let fx = fixture(&mut sb);
    let before = tree(&mut sb, &fx);

    let run = publish(&mut sb, &fx, &["--version", VERSION]);
    run.assert_success();
    let published: Vec<(&str, &str)> = CRATES.iter().map(|(n, _)| (*n, "published")).collect();
    assert_outcomes(&run, &published);
    let order = published_crates(&sb);
    assert_valid_order(&order);
    assert!(kellnr.index_entry(TESTING).is_none(), "the versionless crate was published");
    // The manifest diff is shown: versions and requirements.
    assert!(run.stdout.contains(&format!("+version = \"{VERSION}\"")), "{}", run.stdout);

    // The index: every crate at the version; each requirement between them on
    // exactly that version, with its operator, from this same registry.
    for (krate, on) in CRATES {
        let line = entry(&kellnr, krate, VERSION);
        assert!(kellnr.index_entry(krate).unwrap().lines().count() == 1, "{krate}: 0.1.0 published too");
        assert_eq!(deps(&line).matches("{\"name\":").count(), on.len(), "{krate}: {line}");
        for dep in on {
            let dep = dependency(&line, dep);
            // `"registry":null` is "this index": not crates.io, not another feed.
            assert!(dep.contains("\"registry\":null"), "{krate}: {dep}");
            assert!(dep.contains(&format!("{VERSION}\"")), "{krate}: {dep}");
        }
    }
    let host = entry(&kellnr, "hyperlight-host", VERSION);
    let common = dependency(&host, "hyperlight-common");
    assert!(common.contains(&format!("\"req\":\"={VERSION}\"")), "{common}");
    assert!(common.contains("\"features\":[\"std\"]"), "{common}");
    assert!(!deps(&host).contains(TESTING), "a path-only dev-dependency was published: {host}");
    let bin = dependency(&host, "hyperlight-guest-bin");
    assert!(bin.contains(&format!("\"req\":\"={VERSION}\"")), "{bin}");
    let macro_dep = dependency(&host, "hyperlight-component-macro");
    assert!(macro_dep.contains(&format!("\"req\":\"^{VERSION}\"")), "{macro_dep}");
    let guest = entry(&kellnr, "hyperlight-guest", VERSION);
    let common = dependency(&guest, "hyperlight-common");
    assert!(common.contains(&format!("\"req\":\"={VERSION}\"")), "{common}");
    assert!(common.contains("\"default_features\":false"), "{common}");
    let guest_bin = entry(&kellnr, "hyperlight-guest-bin", VERSION);
    let guest_dep = dependency(&guest_bin, "hyperlight-guest");
    assert!(guest_dep.contains(&format!("\"req\":\"^{VERSION}\"")), "{guest_dep}");
    let macro_entry = entry(&kellnr, "hyperlight-component-macro", VERSION);
    let util = dependency(&macro_entry, "hyperlight-component-util");
    assert!(util.contains(&format!("\"req\":\"~{VERSION}\"")), "{util}");

    // A consumer resolves the host crate from the feed, and everything under it,
    // and builds (the proc macro and the build script run).
    let consumer = sb.scratch_crate(
        "consumer",
        &format!("hyperlight-host = {{ version = \"={VERSION}\", registry = \"{PACKAGES}\" }}"),
    );
    fs::write(
        consumer.join("src/lib.rs"),
        "pub fn summary() -> String { hyperlight_host::sandbox_summary() }\n\n#[test]\nfn works() {\n    assert_eq!(summary(), \"page size 4096 stack 65536 answer 42 int 32\");\n}\n",
    )
    .unwrap();
    sb.cargo(&consumer, &["test"]).assert_success();

    assert_feed_crates_hold_cargo_s_files(&kellnr, &mut sb, &fx);
    assert_untouched(&mut sb, &fx, &before);

    // Again: every crate is there with the same sources; nothing is published.
    let (calls_before, cargo_before) = (published_crates(&sb).len(), sb.calls("cargo").len());
    let run = publish(&mut sb, &fx, &["--version", VERSION]);
    run.assert_success();
    let identical: Vec<(&str, &str)> =
        CRATES.iter().map(|(n, _)| (*n, "already there (identical)")).collect();
    assert_outcomes(&run, &identical);
    assert_eq!(published_crates(&sb).len(), calls_before, "published again: {:?}", published_crates(&sb));
    // Nothing to upload: packaged to compare, but nothing verified or built.
    let builds: Vec<Vec<String>> = (sb.calls("cargo")[cargo_before..].iter())
        .map(|c| c.argv.clone())
        .filter(|argv| {
            let no_build = ["--no-verify", "--list"].iter().any(|flag| argv.iter().any(|a| a == flag));
            ["build", "check"].contains(&&argv[0][..]) || argv[0] == "package" && !no_build
        })
        .collect();
    assert!(builds.is_empty(), "a re-run with every crate in the feed compiled: {builds:?}");
    assert!(run.stderr.contains("packaged (every one is in the registry)"), "{}", run.stderr);
    assert!(run.stderr.contains(&format!("already in {PACKAGES}, identical")), "{}", run.stderr);

    assert_untouched(&mut sb, &fx, &before);
    assert!(fs::read_dir(sb.tmp_dir()).unwrap().next().is_none(), "the work dir was left behind");
    scan(&sb, &secrets);
}

/// `--dry-run` with no credentials and the feed unreachable: every crate is
/// packaged and verified (each dependent against the dependencies just packaged),
/// nothing is uploaded.
#[test]
fn a_dry_run_verifies_the_whole_set_with_no_feed_and_no_token() {
    let mut sb = Sandbox::new(crate::xtask_bin());
    let fx = fixture(&mut sb);
    let before = tree(&mut sb, &fx);
    let unreachable = format!("sparse+http://127.0.0.1:{}/api/v1/crates/", closed_port());
    sb.env("CARGO_REGISTRIES_HYPERLIGHT_PACKAGES_INDEX", &unreachable);

    let run = publish(&mut sb, &fx, &["--version", VERSION, "--dry-run", "--keep"]);
    run.assert_success();
    let out = run.combined();
    for (krate, _) in CRATES {
        assert!(out.contains(&format!("Verifying {krate} v{VERSION}")), "{krate} not verified:\n{out}");
    }
    assert!(!out.contains(&format!("Verifying {TESTING}")), "{out}");
    // Planning (cargo metadata, cargo package --list) is timed on its own, not as part of the copy.
    let plan = out.lines().find(|l| l.starts_with("publish: plan ")).expect("a plan line");
    assert!(!plan.ends_with("(0.00 s)"), "{plan}");
    // In the order they run (docs/publish.md: the plan, in your tree, before the copy).
    assert!(out.find("publish: plan ") < out.find("publish: copy "), "{out}");
    let would: Vec<(&str, &str)> =
        CRATES.iter().map(|(n, _)| (*n, "would publish (the registry not asked)")).collect();
    assert_outcomes(&run, &would);
    assert!(!out.contains("Uploading") && !out.contains("Uploaded"), "{out}");
    assert!(published_crates(&sb).is_empty(), "{:?}", published_crates(&sb));
    let lines: Vec<String> = sb.calls("cargo").iter().map(|c| c.line()).collect();
    assert!(lines.iter().all(|l| !l.starts_with("info ") && !l.starts_with("vendor ")), "{lines:?}");
    assert_untouched(&mut sb, &fx, &before);

    // The kept copy: the rewrite committed, the lock with it, and nothing that
    // cargo changed while packaging (it would have rewritten a stale lock).
    let kept = kept_work_dir(&run);
    let src = kept.join("src");
    let status = git(&mut sb, &src, &["status", "--porcelain"]);
    assert_eq!(status.stdout, "", "the copy changed after the rewrite commit");
    let lock = fs::read_to_string(src.join("Cargo.lock")).unwrap();
    for (krate, _) in CRATES {
        assert!(lock.contains(&format!("name = \"{krate}\"\nversion = \"{VERSION}\"")), "{krate}:\n{lock}");
    }
    assert!(lock.contains(&format!("name = \"{TESTING}\"\nversion = \"0.0.0\"")), "{lock}");
}

/// The `-p` examples of `publish --help` run on a Hyperlight-shaped workspace:
/// `-p hyperlight-host` without the crates it needs by path is refused.
#[test]
fn the_helps_package_examples_run_on_a_hyperlight_shaped_workspace() {
    let mut sb = Sandbox::new(crate::xtask_bin());
    let fx = fixture(&mut sb);
    let unreachable = format!("sparse+http://127.0.0.1:{}/api/v1/crates/", closed_port());
    sb.env("CARGO_REGISTRIES_HYPERLIGHT_PACKAGES_INDEX", &unreachable);
    let help = sb.xtask(&["publish", "--help"]).stdout;
    let examples: Vec<&str> = help.lines().filter(|l| l.contains("cargo xtask publish -p ")).collect();
    assert!(!examples.is_empty(), "{help}");
    for example in examples {
        let args: Vec<&str> = example.split_whitespace().skip(3).collect();
        assert!(args.contains(&"--dry-run"), "{example}");
        publish(&mut sb, &fx, &args).assert_success();
    }
}

/// `--registry crates-io`: crates.io's index cannot be replaced by an empty one, so
/// the set is packaged and verified in one `cargo package` overlaid on it, and the
/// copies cargo extracted for that overlay do not outlive the run (a later run
/// must never verify against them). crates.io is public, so a dry run asks it which
/// versions it has, as a real run does (it has these names, not this version).
#[test]
fn a_dry_run_to_crates_io_verifies_the_set_in_one_command() {
    let mut sb = Sandbox::new(crate::xtask_bin());
    let fx = fixture(&mut sb);
    // Cargo reads crates.io's index for the overlay (it ignores a source
    // replacement of crates.io when packaging for it), as the xtask's own build
    // reads crates.io: the one network this needs.
    let run = publish(&mut sb, &fx, &["--registry", "crates-io", "--version", VERSION, "--dry-run"]);
    run.assert_success();
    let out = run.combined();
    for (krate, _) in CRATES {
        assert!(out.contains(&format!("Verifying {krate} v{VERSION}")), "{krate} not verified:\n{out}");
    }
    let would: Vec<(&str, &str)> = CRATES.iter().map(|(n, _)| (*n, "would publish")).collect();
    assert_outcomes(&run, &would);
    let lines: Vec<String> = sb.calls("cargo").iter().map(|c| c.line()).collect();
    let packages: Vec<&String> =
        lines.iter().filter(|l| l.starts_with("package ") && !l.starts_with("package --list")).collect();
    assert_eq!(packages.len(), 1, "{lines:?}");
    assert!(packages[0].starts_with("package --registry crates-io") && !packages[0].contains("--config"));
    assert_eq!(lines.iter().filter(|l| l.starts_with("info ")).count(), CRATES.len(), "{lines:?}");
    assert!(lines.iter().all(|l| !l.starts_with("publish ")), "{lines:?}");
    let extracted = sb.cargo_home().join("registry").join("src");
    for entry in fs::read_dir(&extracted).into_iter().flatten().flatten() {
        for (krate, _) in CRATES {
            let copy = entry.path().join(format!("{krate}-{VERSION}"));
            assert!(!copy.exists(), "{} outlived the run", copy.display());
        }
    }
}

/// A version crates.io has, with other sources (a release forgotten to bump): the dry
/// run finds it as the real run would, comparing without building anything.
#[test]
fn a_dry_run_to_crates_io_stops_at_a_version_it_has_with_other_sources() {
    let mut sb = offline_sandbox();
    let dir = small_workspace(
        &mut sb,
        "taken",
        &[("Cargo.toml", &package_at("cfg-if", "1.0.0")), ("src/lib.rs", "")],
    );
    let run = publish(&mut sb, &dir, &["--registry", "crates-io", "--dry-run"]);
    run.assert_failure();
    run.assert_output_contains("publish: check    cfg-if 1.0.0 is in crates-io");
    run.assert_output_contains("cfg-if 1.0.0 is in crates-io with other sources than this run's: ");
    run.assert_output_contains("(`--version`, such as 1.0.1). Nothing was uploaded.");
    assert_eq!(outcome(&run, "cfg-if"), "in the registry with other sources", "{}", run.stdout);
    let lines: Vec<String> = sb.calls("cargo").iter().map(|c| c.line()).collect();
    assert!(lines.iter().any(|l| l.starts_with("package ") && l.ends_with("--no-verify")), "{lines:?}");
    assert!(!run.combined().contains("Verifying"), "{}", run.combined());
}

/// A workspace whose root is a package too, with its `Cargo.lock` committed: the
/// lock is then one of that package's files, and a lock left behind the new
/// versions is an uncommitted change that `cargo package` and `cargo publish`
/// refuse. Published under a new version, both crates reach the feed.
#[test]
fn a_package_at_the_workspace_root_with_a_committed_lock() {
    let (kellnr, mut sb, secrets) = logged_in();
    let dir = sb.root().join("rooted");
    fs::create_dir_all(dir.join("src")).unwrap();
    fs::create_dir_all(dir.join("member/src")).unwrap();
    let files = [
        (
            "Cargo.toml",
            "[package]\nname = \"rooted\"\nversion = \"0.1.0\"\nedition = \"2021\"\nlicense = \"MIT\"\ndescription = \"At the root\"\n\n[dependencies]\nrooted-member = { path = \"member\", version = \"0.1.0\" }\n\n[workspace]\nmembers = [\"member\"]\n",
        ),
        ("src/lib.rs", "pub fn one() -> u32 {\n    rooted_member::one()\n}\n"),
        (
            "member/Cargo.toml",
            "[package]\nname = \"rooted-member\"\nversion = \"0.1.0\"\nedition = \"2021\"\nlicense = \"MIT\"\ndescription = \"A member\"\n",
        ),
        ("member/src/lib.rs", "pub fn one() -> u32 {\n    1\n}\n"),
        (".gitignore", "/target\n"),
    ];
    for (path, text) in files {
        fs::write(dir.join(path), text).unwrap();
    }
    sb.cargo(&dir, &["generate-lockfile", "--offline"]).assert_success();
    git(&mut sb, &dir, &["init", "-q", "-b", "main"]);
    git(&mut sb, &dir, &["add", "-A"]);
    git(&mut sb, &dir, &["commit", "-q", "-m", "a root package"]);
    let before = tree(&mut sb, &dir);

    let run = publish(&mut sb, &dir, &["--version", VERSION]);
    run.assert_success();
    // The member first, then the root package (its manifest at the copy's root, `src/`).
    assert_eq!(published_crates(&sb), ["member", "src"]);
    let rooted = entry(&kellnr, "rooted", VERSION);
    assert!(dependency(&rooted, "rooted-member").contains(&format!("\"req\":\"^{VERSION}\"")), "{rooted}");
    entry(&kellnr, "rooted-member", VERSION);
    assert_untouched(&mut sb, &dir, &before);
    scan(&sb, &secrets);
}

/// Packaging and the compare fetch the crates the host builds with, not every
/// platform's: `cargo vendor` and `cargo metadata` fetched the `windows` crates of
/// hyperlight-host 0.7.0 on Linux (179 crates, 424 MB, 28 s cold, to compare two).
#[test]
fn no_crate_of_another_platform_is_fetched() {
    let (kellnr, mut sb, secrets) = logged_in();
    seed_crate(&kellnr, PACKAGES, "windows-only");
    let dir = sb.root().join("hosted");
    fs::create_dir_all(dir.join("src")).unwrap();
    let manifest = format!(
        "[package]\nname = \"hosted\"\nversion = \"0.1.0\"\nedition = \"2021\"\nlicense = \"MIT\"\n\
         description = \"Hosted\"\n\n[target.'cfg(windows)'.dependencies]\n\
         windows-only = {{ version = \"0.1\", registry = \"{PACKAGES}\" }}\n\n[workspace]\n"
    );
    for (path, text) in [("Cargo.toml", manifest.as_str()), ("src/lib.rs", ""), (".gitignore", "/target\n")] {
        fs::write(dir.join(path), text).unwrap();
    }
    git(&mut sb, &dir, &["init", "-q", "-b", "main"]);
    git(&mut sb, &dir, &["add", "-A"]);
    git(&mut sb, &dir, &["commit", "-q", "-m", "hosted"]);
    publish(&mut sb, &dir, &[]).assert_success();
    let run = publish(&mut sb, &dir, &[]);
    run.assert_success();
    assert_outcomes(&run, &[("hosted", "already there (identical)")]);
    let cache = sb.cargo_home().join("registry/cache");
    let fetched: Vec<_> = (fs::read_dir(&cache).unwrap().flatten())
        .flat_map(|index| fs::read_dir(index.path()).unwrap().flatten().map(|f| f.file_name()))
        .collect();
    assert!(fetched.iter().all(|f| !f.to_string_lossy().starts_with("windows-only")), "{fetched:?}");
    scan(&sb, &secrets);
}

/// Issue 8: "the feed has that version" is not "the feed has these sources". The
/// feed holds the guest tracing crate at the version; the fixture's copy then
/// changes, same version: the run stops before any upload (the crates missing from
/// the feed, some ordered before it, are not published either), naming the crate
/// and the file.
#[test]
fn the_feed_holding_a_version_with_other_sources_stops_before_any_upload() {
    const TRACING: &str = "hyperlight-guest-tracing";
    let (kellnr, mut sb, secrets) = logged_in();
    let fx = fixture(&mut sb);
    let first = publish(&mut sb, &fx, &["--version", VERSION, "-p", TRACING]);
    first
        .assert_success()
        .assert_output_contains(&format!("publish: rewrite  version {VERSION} set and committed"));
    assert_eq!(published_crates(&sb), ["hyperlight-guest-tracing"]);

    let lib = fx.join("src/hyperlight_guest_tracing/src/lib.rs");
    let changed = fs::read_to_string(&lib).unwrap().replace("_what", "_event");
    fs::write(&lib, changed).unwrap();
    git(&mut sb, &fx, &["commit", "-q", "-a", "-m", "tracing: rename"]);
    let before = tree(&mut sb, &fx);

    let run = publish(&mut sb, &fx, &["--version", VERSION]);
    run.assert_failure();
    // Missing crates come before the tracing crate in the plan: a run that uploaded
    // as it went would have published them.
    run.assert_output_contains(&format!("hyperlight-component-macro {VERSION}, then {TRACING} {VERSION}"));
    run.assert_output_contains(&format!(
        "{TRACING} {VERSION} is in {PACKAGES} with other sources than this run's: src/lib.rs"
    ));
    run.assert_output_contains("Nothing was uploaded");
    assert_eq!(published_crates(&sb), ["hyperlight-guest-tracing"], "something was uploaded");
    for (krate, _) in CRATES.iter().filter(|(n, _)| *n != TRACING) {
        assert!(kellnr.index_entry(krate).is_none(), "{krate} was published");
    }
    assert_untouched(&mut sb, &fx, &before);
    scan(&sb, &secrets);
}

/// A network drop while uploading the second crate: the run fails with the first
/// crate in the feed; run again (the real cargo), it completes, the first crate
/// "already there (identical)". The drop is a cargo that fails the second
/// `cargo publish` as cargo does when the connection goes, and is the real cargo
/// (through the harness's recording wrapper) for everything else.
#[test]
fn a_run_dropped_after_the_first_upload_completes_when_run_again() {
    let (kellnr, mut sb, secrets) = logged_in();
    let fx = fixture(&mut sb);
    let before = tree(&mut sb, &fx);
    let real = sb.root().join("wrap").join("cargo");
    assert!(real.is_file(), "the harness's cargo wrapper moved: {}", real.display());
    let count = sb.root().join("publish-count");
    sb.install_standin(
        "cargo-dropping",
        &format!(
            "case \"$1\" in\n\
             publish)\n\
             \x20 n=$(cat '{count}' 2>/dev/null || echo 0); n=$((n+1)); echo $n > '{count}'\n\
             \x20 if [ $n -eq 2 ]; then\n\
             \x20   printf 'error: failed to publish to registry at http://127.0.0.1/\\n\\nCaused by:\\n  [7] Could not connect to server\\n' >&2\n\
             \x20   exit 101\n\
             \x20 fi ;;\n\
             esac\n\
             exec '{real}' \"$@\"\n",
            count = count.display(),
            real = real.display()
        ),
    );
    sb.env("CARGO", sb.bin_dir().join("cargo-dropping").to_str().unwrap());

    let cut = publish(&mut sb, &fx, &["--version", VERSION]);
    cut.assert_failure().assert_output_contains("Could not connect to server");
    cut.assert_output_contains("run again to resume");
    let first = published_crates(&sb);
    assert_eq!(first.len(), 1, "{first:?}");
    let first = first[0].clone();
    entry(&kellnr, &first, VERSION);
    assert_eq!(outcome(&cut, &first), "published", "{}", cut.stdout);
    for (krate, _) in CRATES.iter().filter(|(n, _)| *n != first) {
        assert_eq!(outcome(&cut, krate), "not published", "{}", cut.stdout);
        assert!(kellnr.index_entry(krate).is_none(), "{krate} is in the feed");
    }

    sb.env("CARGO", real.to_str().unwrap());
    let run = publish(&mut sb, &fx, &["--version", VERSION]);
    run.assert_success();
    for (krate, _) in CRATES {
        let want = if krate == first { "already there (identical)" } else { "published" };
        assert_eq!(outcome(&run, krate), want, "{}", run.stdout);
        entry(&kellnr, krate, VERSION);
    }
    let mut order = published_crates(&sb);
    assert_eq!(order[0], first);
    assert_valid_order(&order);
    order.remove(0);
    assert!(!order.contains(&first), "{first} was published twice: {order:?}");
    assert_untouched(&mut sb, &fx, &before);
    scan(&sb, &secrets);
}

/// Every bad input: a clear error naming what to fix, a non-zero exit, nothing
/// published (logged in, so that only the xtask's checks can stop it).
#[test]
fn bad_inputs_are_clear_errors_and_publish_nothing() {
    let (kellnr, mut sb, secrets) = logged_in();
    let fx = fixture(&mut sb);
    let before = tree(&mut sb, &fx);

    let cases: &[(&[&str], &[&str])] = &[
        (
            &["-p", "hyperlight-nope"],
            &["`hyperlight-nope` is not a crate of the workspace", "hyperlight-host", TESTING],
        ),
        (&["--exclude", "hyperlight-nope"], &["`hyperlight-nope` is not a crate of the workspace"]),
        // Issue 14: every unknown name at once.
        (
            &["-p", "hyperlight-nope", "-p", "hyperlight-host", "--exclude", "hyperlight-gone"],
            &["`hyperlight-nope`, `hyperlight-gone` are not crates of the workspace"],
        ),
        // Issue 14, 1: the versionless member is readable, not publishable, and says why.
        (
            &["-p", TESTING],
            &[
                "`hyperlight-testing` cannot be published: its manifest has no `version`",
                "drop `-p hyperlight-testing`",
            ],
        ),
        (&["--registry", "nope"], &["`--registry nope`", "or `crates-io` for crates.io"]),
        (&["--version", "1.0.0-01"], &["--version `1.0.0-01` is not a version cargo takes"]),
        // The host depends by path on crates left out, also through each other: the
        // error names them all at once, with the flags of this task that add them.
        (
            &["-p", "hyperlight-host", "-p", "hyperlight-common"],
            &[
                "`hyperlight-host` depends on `hyperlight-component-macro`",
                "`hyperlight-guest` depends on `hyperlight-guest-tracing`",
                "`hyperlight-guest-bin` depends on `hyperlight-libc`",
                "add `-p hyperlight-component-macro -p hyperlight-component-util -p hyperlight-guest -p \
                 hyperlight-guest-bin -p hyperlight-guest-tracing -p hyperlight-libc`",
            ],
        ),
        (
            &["--exclude", "hyperlight-guest"],
            &["`hyperlight-guest-bin` depends on `hyperlight-guest`", "drop `--exclude hyperlight-guest`"],
        ),
        (&["--version", "1.0.0+meta"], &["`1.0.0+meta` has build metadata", "1.0.0-1"]),
    ];
    for (flags, expected) in cases {
        let run = publish(&mut sb, &fx, flags);
        run.assert_failure();
        assert_ne!(run.status.code(), Some(0));
        for needle in *expected {
            run.assert_output_contains(needle);
        }
    }

    assert!(published_crates(&sb).is_empty(), "{:?}", published_crates(&sb));
    for (krate, _) in CRATES {
        assert!(kellnr.index_entry(krate).is_none(), "{krate} was published");
    }
    assert_untouched(&mut sb, &fx, &before);
    scan(&sb, &secrets);
}

/// A probe of the feed that fails for any reason other than "not found" is an
/// error, never "absent" (which would publish) nor "present" (which would skip):
/// a feed answering 500 stops the run before packaging or uploading anything.
#[test]
fn a_probe_answering_500_fails_the_run() {
    let mut sb = Sandbox::new(crate::xtask_bin());
    let dir = fixture(&mut sb);
    let (server, pat) = feed_answering_500(&mut sb, PACKAGES);
    let run = publish(&mut sb, &dir, &[]);
    run.assert_failure();
    run.assert_output_contains("cannot tell whether hyperlight_packages has");
    run.assert_output_contains("HTTP 500");
    assert!(server.requests() >= 2, "cargo never asked the fault server");
    let calls: Vec<String> = sb.calls("cargo").iter().map(|c| c.line()).collect();
    assert!(
        calls.iter().all(|l| !l.starts_with("package --registry") && !l.starts_with("publish ")),
        "packaged or published after a failed probe: {calls:?}"
    );
    sb.assert_no_secret(&[pat.as_str()]);
}

/// A `--manifest-path` that names no manifest is refused, naming it, before
/// anything runs; so is a TMPDIR that does not exist.
#[test]
fn a_manifest_path_without_a_manifest_is_refused() {
    let mut sb = Sandbox::new(crate::xtask_bin());
    let missing = sb.root().join("no-workspace").join("Cargo.toml");
    let missing = missing.to_str().unwrap().to_owned();
    let run = sb.xtask(&["publish", "--dry-run", "--manifest-path", &missing]);
    run.assert_failure();
    run.assert_output_contains(&format!("--manifest-path {missing}: not a Cargo.toml that exists"));
    assert!(sb.calls("cargo").is_empty(), "cargo ran: {:?}", sb.calls("cargo"));

    // A temporary directory that cannot hold the work dir: the error says what to set.
    let dir = small_workspace(&mut sb, "tmp", &[("Cargo.toml", &package("small-a", "")), ("src/lib.rs", "")]);
    sb.env("TMPDIR", sb.root().join("no-tmp").to_str().unwrap());
    let run = publish(&mut sb, &dir, &["--dry-run"]);
    run.assert_failure()
        .assert_output_contains("): set TMPDIR (TEMP on Windows) to a directory you can write to");
}

/// `GIT_DIR` in the environment (as git sets it for a hook) reaches no git call of
/// the run: the copy is made and packaged, and the user's branch stays checked out
/// (the copy's checkout detached the user's HEAD).
#[test]
fn git_dir_in_the_environment_leaves_the_users_repository_alone() {
    let mut sb = offline_sandbox();
    let root = "[workspace]\nresolver = \"2\"\nmembers = [\"a\"]\n";
    let a = package("small-a", "");
    let files = [("Cargo.toml", root), ("a/Cargo.toml", &a), ("a/src/lib.rs", "")];
    let dir = small_workspace(&mut sb, "hooked", &files);
    sb.env("GIT_DIR", dir.join(".git").to_str().unwrap());
    let run = publish(&mut sb, &dir, &["--dry-run"]);
    run.assert_success();
    let head = git(&mut sb, &dir, &["symbolic-ref", "-q", "HEAD"]);
    assert_eq!(head.stdout.trim(), "refs/heads/main", "the user's HEAD moved");
}

/// A checkout owned by another user (a CI container's): git refuses it, and the error
/// said the workspace "is not in a git repository" before git's own fix.
#[test]
fn a_checkout_git_refuses_to_trust_is_named_with_gits_fix() {
    let mut sb = offline_sandbox();
    let files =
        [("Cargo.toml", "[workspace]\nmembers = [\"a\"]\n"), ("a/Cargo.toml", &package("small-a", ""))];
    let dir = small_workspace(&mut sb, "owned", &[files[0], files[1], ("a/src/lib.rs", "")]);
    sb.env("GIT_TEST_ASSUME_DIFFERENT_OWNER", "1");
    let run = publish(&mut sb, &dir, &["--dry-run"]);
    run.assert_failure().assert_output_contains("git config --global --add safe.directory");
    assert!(!run.stderr.contains("not in a git repository"), "{}", run.stderr);
}

/// A global `core.autocrlf = true` (Git for Windows' default) changes nothing: the
/// copy holds the commit's bytes (its checkout turned them to CRLF, the rewrite
/// back to LF, and its commit failed with nothing to commit). Nor does `core.eol =
/// crlf` (Windows' native) for files a `.gitattributes` marks `text=auto`: it did.
/// Nor `protocol.file.allow = never`, which refused the copy of the user's own checkout.
#[test]
fn a_global_autocrlf_leaves_the_copy_as_committed() {
    let mut sb = offline_sandbox();
    let root = "[workspace]\nresolver = \"2\"\nmembers = [\"a\"]\n";
    let a = package("small-a", "");
    let lib = "pub fn one() -> u32 {\n    1\n}\n";
    let dir = small_workspace(
        &mut sb,
        "crlf",
        &[
            ("Cargo.toml", root),
            ("a/Cargo.toml", &a),
            ("a/src/lib.rs", lib),
            (".gitattributes", "* text=auto\n"),
        ],
    );
    let config = "[core]\n\tautocrlf = true\n\teol = crlf\n[protocol \"file\"]\n\tallow = never\n";
    fs::write(sb.home().join(".gitconfig"), config).unwrap();
    let run = publish(&mut sb, &dir, &["--dry-run", "--keep"]);
    run.assert_success();
    let copy = kept_work_dir(&run).join("src");
    assert_eq!(fs::read_to_string(copy.join("a/src/lib.rs")).unwrap(), lib);
}

/// A `[package]` table of `name` 0.1.0, publishable, with `extra` after it.
/// A sandbox whose feed is a closed port: what a dry run must do without.
pub(crate) fn offline_sandbox() -> Sandbox {
    let mut sb = Sandbox::new(crate::xtask_bin());
    let unreachable = format!("sparse+http://127.0.0.1:{}/api/v1/crates/", closed_port());
    sb.env("CARGO_REGISTRIES_HYPERLIGHT_PACKAGES_INDEX", &unreachable);
    sb
}

fn package(name: &str, extra: &str) -> String {
    format!("{}{extra}", package_at(name, "0.1.0"))
}

fn package_at(name: &str, version: &str) -> String {
    format!(
        "[package]\nname = \"{name}\"\nversion = \"{version}\"\nedition = \"2021\"\nlicense = \"MIT\"\n\
         description = \"{name}\"\n"
    )
}

/// A small workspace in a git repository at `name` in the sandbox, from (path,
/// contents) pairs.
fn small_workspace(sb: &mut Sandbox, name: &str, files: &[(&str, &str)]) -> PathBuf {
    let dir = sb.root().join(name);
    for (path, text) in files {
        let path = dir.join(path);
        fs::create_dir_all(path.parent().unwrap()).unwrap();
        fs::write(path, text).unwrap();
    }
    git(sb, &dir, &["init", "-q", "-b", "main"]);
    git(sb, &dir, &["add", "-A"]);
    git(sb, &dir, &["commit", "-q", "-m", "small"]);
    dir
}

/// Issue 14, the smaller ones: a default selection that can never work names the
/// fix that works (leave the dependent out, or make the dependency publishable);
/// a compound requirement between members needs no rewrite without `--version`,
/// and with it the error names the user's manifest, not the work copy's.
#[test]
fn selections_and_requirements_get_the_advice_that_works() {
    let mut sb = offline_sandbox();
    let root = "[workspace]\nresolver = \"2\"\nmembers = [\"a\", \"b\"]\n";
    let a =
        package("small-a", "\n[dependencies]\nsmall-b = { path = \"../b\", version = \">=0.1, <0.3\" }\n");
    let closed = package("small-b", "publish = false\n");
    let dir = small_workspace(
        &mut sb,
        "closed",
        &[
            ("Cargo.toml", root),
            ("a/Cargo.toml", &a),
            ("a/src/lib.rs", ""),
            ("b/Cargo.toml", &closed),
            ("b/src/lib.rs", ""),
        ],
    );
    let run = publish(&mut sb, &dir, &["--dry-run"]);
    run.assert_failure();
    run.assert_output_contains("`small-a` depends on `small-b` of the same workspace by path");
    run.assert_output_contains("Leave `small-a` out (`--exclude small-a`), or make `small-b` publishable");
    assert!(!run.combined().contains("add `-p small-b`"), "{}", run.combined());

    let open = package("small-b", "");
    let dir = small_workspace(
        &mut sb,
        "compound",
        &[
            ("Cargo.toml", root),
            ("a/Cargo.toml", &a),
            ("a/src/lib.rs", ""),
            ("b/Cargo.toml", &open),
            ("b/src/lib.rs", ""),
        ],
    );
    let run = publish(&mut sb, &dir, &["--dry-run"]);
    run.assert_success();
    let kept =
        "+small-b = { path = \"../b\", version = \">=0.1, <0.3\", registry = \"hyperlight_packages\" }";
    assert!(run.stdout.contains(kept), "{}", run.stdout);
    let run = publish(&mut sb, &dir, &["--dry-run", "--version", "0.2.0"]);
    run.assert_failure();
    let manifest = dir.join("a").join("Cargo.toml");
    run.assert_output_contains(&format!("in {} requires `>=0.1, <0.3`", manifest.display()));
}

/// Build metadata in a crate's own version makes no new version: the feed would take
/// `0.1.0+b` for 0.1.0. Refused by name before anything is packaged.
#[test]
fn a_crate_version_with_build_metadata_is_refused() {
    let mut sb = offline_sandbox();
    let manifest = package_at("small-meta", "0.1.0+b");
    let dir = small_workspace(&mut sb, "meta", &[("Cargo.toml", &manifest), ("src/lib.rs", "")]);
    let run = publish(&mut sb, &dir, &["--dry-run"]);
    run.assert_failure();
    run.assert_output_contains("the version of small-meta `0.1.0+b` has build metadata");
    assert!(!run.combined().contains("would publish"), "{}", run.combined());
}

/// A crate that takes another crate from the feed itself (not of the workspace: by
/// `registry`, no `path`) is packaged and verified against the feed's index, as
/// `cargo publish` would, this run's packages laid over it: the run's own empty
/// index, which stands for the feed otherwise, cannot resolve it.
#[test]
fn a_crate_depending_on_another_crate_of_the_feed_is_published() {
    let (kellnr, mut sb, secrets) = logged_in();
    let other = small_workspace(
        &mut sb,
        "other",
        &[("Cargo.toml", &package("feed-only", "")), ("src/lib.rs", "pub fn one() -> u32 { 1 }\n")],
    );
    publish(&mut sb, &other, &[]).assert_success();
    let from_feed = format!("feed-only = {{ version = \"0.1.0\", registry = \"{PACKAGES}\" }}\n");
    let dir = small_workspace(
        &mut sb,
        "user",
        &[
            ("Cargo.toml", "[workspace]\nresolver = \"2\"\nmembers = [\"a\", \"b\"]\n"),
            ("a/Cargo.toml", &package("user-a", &format!("\n[dependencies]\n{from_feed}"))),
            ("a/src/lib.rs", "pub fn two() -> u32 { feed_only::one() + 1 }\n"),
            ("b/Cargo.toml", &package("user-b", "\n[dependencies]\nuser-a = { path = \"../a\" }\n")),
            ("b/src/lib.rs", "pub fn three() -> u32 { user_a::two() + 1 }\n"),
        ],
    );
    let run = publish(&mut sb, &dir, &[]);
    run.assert_success();
    assert_outcomes(&run, &[("user-a", "published"), ("user-b", "published")]);
    entry(&kellnr, "user-b", "0.1.0");
    let again = publish(&mut sb, &dir, &[]);
    again.assert_success();
    let identical = "already there (identical)";
    assert_outcomes(&again, &[("user-a", identical), ("user-b", identical)]);
    scan(&sb, &secrets);
}

/// A committed `Cargo.lock` the manifests have moved past: listing the files in your
/// tree must not rewrite it (your tree is never changed); the run stops, naming the
/// lock to update and commit, as `cargo publish` (which would rewrite it, then
/// refuse it as uncommitted) cannot.
#[test]
fn a_stale_committed_lock_is_named_and_left_as_it_is() {
    let mut sb = offline_sandbox();
    let root = package("stale-root", "\n[workspace]\nmembers = [\"sub\"]\n");
    let dir = small_workspace(
        &mut sb,
        "stale",
        &[
            ("Cargo.toml", &root),
            ("src/lib.rs", ""),
            ("sub/Cargo.toml", &package("stale-sub", "")),
            ("sub/src/lib.rs", ""),
        ],
    );
    sb.cargo(&dir, &["generate-lockfile", "--offline"]).assert_success();
    let moved =
        root.replace("\n[workspace]", "\n[dependencies]\nstale-sub = { path = \"sub\" }\n\n[workspace]");
    fs::write(dir.join("Cargo.toml"), moved).unwrap();
    git(&mut sb, &dir, &["add", "-A"]);
    git(&mut sb, &dir, &["commit", "-q", "-m", "a dependency, the lock not updated"]);
    let before = tree(&mut sb, &dir);

    let run = publish(&mut sb, &dir, &["--dry-run"]);
    run.assert_failure();
    run.assert_output_contains("Cargo.lock");
    run.assert_output_contains("is out of date: update it (any cargo build does) and commit it");
    assert_untouched(&mut sb, &dir, &before);
}

/// A `[patch]` in the repository's committed `.cargo/config.toml`: the refusal's advice
/// (comment it out and commit that) and then the lock's, followed word for word, publish.
#[test]
fn a_patch_in_the_repositorys_config_gets_advice_that_works() {
    let mut sb = offline_sandbox();
    let local = sb.root().join("local-only");
    fs::create_dir_all(local.join("src")).unwrap();
    fs::write(local.join("Cargo.toml"), package("local-only", "")).unwrap();
    fs::write(local.join("src/lib.rs"), "").unwrap();
    let patch = format!("[patch.crates-io]\nlocal-only = {{ path = {:?} }}\n", local.to_str().unwrap());
    let files = [
        ("Cargo.toml", package("patched", "")),
        ("src/lib.rs", String::new()),
        (".gitignore", "/target\n".into()),
        (".cargo/config.toml", patch),
    ];
    let files: Vec<(&str, &str)> = files.iter().map(|(p, t)| (*p, t.as_str())).collect();
    let dir = small_workspace(&mut sb, "patched", &files);
    sb.cargo(&dir, &["generate-lockfile", "--offline"]).assert_success();
    git(&mut sb, &dir, &["add", "-A"]);
    git(&mut sb, &dir, &["commit", "-q", "-m", "lock"]);
    let run = publish(&mut sb, &dir, &["--dry-run"]);
    run.assert_failure();
    run.assert_output_contains(".cargo/config.toml of the repository to publish has a `[patch]`");
    run.assert_output_contains("Comment it out and commit that");
    let config = dir.join(".cargo/config.toml");
    let commented: String =
        fs::read_to_string(&config).unwrap().lines().map(|l| format!("# {l}\n")).collect();
    fs::write(&config, commented).unwrap();
    git(&mut sb, &dir, &["commit", "-q", "-a", "-m", "no patch while publishing"]);
    let run = publish(&mut sb, &dir, &["--dry-run"]);
    run.assert_failure()
        .assert_output_contains("is out of date: update it (any cargo build does) and commit it");
    sb.cargo(&dir, &["build", "--offline"]).assert_success();
    git(&mut sb, &dir, &["commit", "-q", "-a", "-m", "the lock"]);
    publish(&mut sb, &dir, &["--dry-run"]).assert_success().assert_output_contains("would publish");
}

/// crates.io refuses a crate that depends on another registry's crate, at the upload
/// ("Cross-registry dependencies are not permitted"): the crates before it in the
/// order would be uploaded already. The plan refuses it, naming the dependency,
/// before anything runs, also in a dry run (before it asks crates.io what it has).
#[test]
fn crates_io_refuses_a_dependency_from_a_feed_before_anything_is_uploaded() {
    let mut sb = offline_sandbox();
    let from_feed =
        format!("\n[dependencies]\nfeed-only = {{ version = \"0.1.0\", registry = \"{PACKAGES}\" }}\n");
    let dir = small_workspace(
        &mut sb,
        "cross",
        &[("Cargo.toml", &package("cross-registry", &from_feed)), ("src/lib.rs", "")],
    );
    let run = publish(&mut sb, &dir, &["--registry", "crates-io", "--dry-run"]);
    run.assert_failure();
    run.assert_output_contains(
        "crates.io refuses a crate with a dependency from another registry: `cross-registry` on `feed-only`",
    );
    assert!(sb.calls("cargo").iter().all(|c| c.argv[0] != "package"), "{:?}", sb.calls("cargo"));
}

/// crates.io refuses, at the upload, a crate without a description or a license
/// ("missing or empty metadata fields"), which cargo only warns about: a dry run said
/// "would publish", and a run uploaded the crates before it. Refused up front.
#[test]
fn crates_io_refuses_a_crate_without_a_description_or_license_before_anything_is_uploaded() {
    let mut sb = offline_sandbox();
    let bare = "[package]\nname = \"bare-b\"\nversion = \"0.1.0\"\nedition = \"2021\"\n\n[dependencies]\n\
                bare-a = { path = \"../a\", version = \"0.1.0\" }\n";
    let dir = small_workspace(
        &mut sb,
        "bare",
        &[
            ("Cargo.toml", "[workspace]\nresolver = \"2\"\nmembers = [\"a\", \"b\"]\n"),
            ("a/Cargo.toml", &package("bare-a", "")),
            ("a/src/lib.rs", ""),
            ("b/Cargo.toml", bare),
            ("b/src/lib.rs", ""),
        ],
    );
    let run = publish(&mut sb, &dir, &["--registry", "crates-io", "--dry-run"]);
    run.assert_failure();
    run.assert_output_contains("crates.io would refuse at the upload what cargo lets through");
    run.assert_output_contains("`bare-b` has no description, no license or license-file");
    run.assert_output_contains("or leave those crates out (`--exclude`)");
    assert!(sb.calls("cargo").iter().all(|c| c.argv[0] != "package"), "{:?}", sb.calls("cargo"));
    // A feed takes it as it is.
    let feed = publish(&mut sb, &dir, &["--dry-run"]);
    feed.assert_success();
}

/// What else crates.io refuses at the upload and cargo 1.95 packages without a word (seen with
/// `cargo publish --dry-run` against crates.io): more than 5 keywords or categories, a keyword
/// it does not take, a URL without http(s), a description over 1000 bytes, a `*` requirement.
/// The run went on to upload the crates before such a one. Refused up front, every one named.
#[test]
fn crates_io_refuses_other_metadata_before_anything_is_uploaded() {
    let mut sb = offline_sandbox();
    let keys = "keywords = [\"a\", \"b\", \"c\", \"d\", \"e\", \"no spaces\"]\n\
                categories = [\"a\", \"b\", \"c\", \"d\", \"e\", \"f\"]\nhomepage = \"example.com\"\n\n\
                [dependencies]\nlibc = \"*\"\n";
    let long = format!(
        "[package]\nname = \"meta-b\"\nversion = \"0.1.0\"\nedition = \"2021\"\nlicense = \"MIT\"\n\
         description = \"{}\"\n",
        "x".repeat(1001)
    );
    let dir = small_workspace(
        &mut sb,
        "meta",
        &[
            ("Cargo.toml", "[workspace]\nresolver = \"2\"\nmembers = [\"a\", \"b\"]\n"),
            ("a/Cargo.toml", &package("meta-a", keys)),
            ("a/src/lib.rs", ""),
            ("b/Cargo.toml", &long),
            ("b/src/lib.rs", ""),
        ],
    );
    let run = publish(&mut sb, &dir, &["--registry", "crates-io", "--dry-run"]);
    run.assert_failure();
    for part in [
        "`meta-a` has 6 keywords (at most 5)",
        "6 categories (at most 5)",
        "keyword `no spaces` (",
        "homepage `example.com` (",
        "dependency `libc` = \"*\"",
        "`meta-b` has a description over 1000 bytes",
    ] {
        run.assert_output_contains(part);
    }
    assert!(sb.calls("cargo").iter().all(|c| c.argv[0] != "package"), "{:?}", sb.calls("cargo"));
}

/// To crates.io without a token (trusted publishing's expired, or the step's `env:`
/// forgotten): the error named the Azure login tasks, which change nothing there.
/// With no token cargo stops before any upload.
#[test]
fn no_token_for_crates_io_names_cargo_registry_token() {
    let mut sb = offline_sandbox();
    let name = "hyperlight-xtask-test-no-token";
    let dir = small_workspace(&mut sb, "no-token", &[("Cargo.toml", &package(name, "")), ("src/lib.rs", "")]);
    let run = publish(&mut sb, &dir, &["--registry", "crates-io"]);
    run.assert_failure();
    run.assert_output_contains("`crates-io`: no token: set CARGO_REGISTRY_TOKEN");
    assert!(!run.stderr.contains("cargo-login"), "{}", run.stderr);
    // A trusted publishing token cannot create that crate, which crates.io lacks: the dry run says so.
    let token = "cio_tp_0123456789abcdef0123456789abcdef";
    sb.env("CARGO_REGISTRY_TOKEN", token);
    let run = publish(&mut sb, &dir, &["--registry", "crates-io", "--dry-run"]);
    run.assert_failure();
    run.assert_output_contains(&format!(
        "crates.io does not have {name} yet, and takes no trusted publishing"
    ));
    sb.assert_no_secret(&[token]);
}

/// A rejected token met while publishing: the hint named the Packaging read scope,
/// and a PAT with only that scope is refused at the upload.
#[test]
fn a_rejected_token_while_publishing_asks_for_the_write_scope() {
    let (_kellnr, mut sb, secrets) = logged_in();
    sb.env("CARGO_REGISTRIES_HYPERLIGHT_PACKAGES_TOKEN", "Basic bm90LWEtdG9rZW4=");
    let dir =
        small_workspace(&mut sb, "rejected", &[("Cargo.toml", &package("rejected", "")), ("src/lib.rs", "")]);
    let run = publish(&mut sb, &dir, &[]);
    run.assert_failure().assert_output_contains("token rejected");
    run.assert_output_contains("with the Packaging read & write scope");
    scan(&sb, &secrets);
}

/// Provider mode once az's session ended: cargo's own message says only that az failed,
/// and "see cargo's message" must show az's words, which say what to run.
#[test]
fn provider_mode_with_az_logged_out_shows_azs_words() {
    let kellnr = Kellnr::start();
    let mut sb = Sandbox::new(crate::xtask_bin());
    sb.feed(PACKAGES, &kellnr);
    let az = crate::standins::AzState { token: kellnr.admin_token().to_owned(), ..Default::default() };
    crate::standins::install_az(&sb, &az);
    sb.xtask(&["cargo-login", "--provider", "--registry", PACKAGES]).assert_success();
    crate::standins::install_az(&sb, &crate::standins::AzState { logged_in: false, ..az });
    let dir =
        small_workspace(&mut sb, "az-out", &[("Cargo.toml", &package("az-out", "")), ("src/lib.rs", "")]);
    let run = publish(&mut sb, &dir, &[]);
    run.assert_failure().assert_output_contains("see cargo's message");
    assert!(run.stderr.contains("Please run 'az login'"), "{}", run.stderr);
}

/// A workspace laid out for a feed (members depend on each other by path with
/// `registry = "<feed>"`, as Hyperlight's did for hyperlight_packages) published to
/// crates.io: the dependents took their dependencies from the feed, so a dry run
/// failed asking the feed (or, with the version in the feed, passed), and cargo would
/// refuse the dependent at its upload, after its dependency was uploaded. The rewrite
/// makes them come from crates.io, where the run publishes them.
#[test]
fn members_pinned_to_a_feed_come_from_crates_io_when_published_there() {
    let mut sb = offline_sandbox();
    let on_a = format!(
        "\n[dependencies]\nfeed-laid-a = {{ path = \"../a\", version = \"0.1.0\", registry = \"{PACKAGES}\" }}\n"
    );
    let dir = small_workspace(
        &mut sb,
        "feed-laid",
        &[
            ("Cargo.toml", "[workspace]\nresolver = \"2\"\nmembers = [\"a\", \"b\"]\n"),
            ("a/Cargo.toml", &package("feed-laid-a", "")),
            ("a/src/lib.rs", ""),
            ("b/Cargo.toml", &package("feed-laid-b", &on_a)),
            ("b/src/lib.rs", ""),
        ],
    );
    let run = publish(&mut sb, &dir, &["--registry", "crates-io", "--dry-run"]);
    run.assert_success();
    assert_outcomes(&run, &[("feed-laid-a", "would publish"), ("feed-laid-b", "would publish")]);
    let rewritten: Vec<&str> = run.stdout.lines().filter(|l| l.starts_with("+feed-laid-a = ")).collect();
    assert!(rewritten.len() == 1 && !rewritten[0].contains("registry"), "{}", run.stdout);
}

/// Found adopting the xtask in today's Hyperlight, whose host and libc crates have
/// build-dependencies (`built`, `cfg_aliases`, `cc`) that no crate of the set takes
/// as a normal dependency: `cargo build -p` of such a dependency panics in cargo's
/// feature resolver ("did not find features for ... NormalOrDev"), so the build of
/// the shared dependencies failed, printed cargo's panic, and each verification
/// compiled them again.
#[test]
fn a_build_dependency_leaves_the_shared_dependencies_compiled_once() {
    let mut sb = offline_sandbox();
    let shared = "\n[dependencies]\ncfg-if = \"1\"\n";
    let a = package("built-a", &format!("{shared}\n[build-dependencies]\ncfg_aliases = \"0.2\"\n"));
    let b = package("built-b", &format!("{shared}built-a = {{ path = \"../a\", version = \"0.1.0\" }}\n"));
    let dir = small_workspace(
        &mut sb,
        "built",
        &[
            ("Cargo.toml", "[workspace]\nresolver = \"2\"\nmembers = [\"a\", \"b\"]\n"),
            ("a/Cargo.toml", &a),
            ("a/build.rs", "fn main() {\n    cfg_aliases::cfg_aliases! { x: { unix } }\n}\n"),
            ("a/src/lib.rs", ""),
            ("b/Cargo.toml", &b),
            ("b/src/lib.rs", ""),
        ],
    );
    let run = publish(&mut sb, &dir, &["--dry-run"]);
    run.assert_success();
    assert!(!run.combined().contains("panicked"), "{}", run.combined());
    assert_eq!(run.stdout.matches("Compiling cfg-if v").count(), 1, "{}", run.stdout);
}

/// A member outside the run asking a shared dependency for more features (Hyperlight's
/// host crates) does not change what the shared build compiles: `cargo build -p` of a
/// dependency in the source workspace took every member's features, which neither
/// verification could reuse, so `either` compiled three times. A proc macro's own
/// dependency (Hyperlight's component-macro) is left out: `cargo build -p` panics on it.
#[test]
fn a_member_outside_the_run_leaves_the_shared_dependencies_compiled_once() {
    let mut sb = offline_sandbox();
    let lean = "\n[dependencies]\neither = { version = \"1\", default-features = false }\n";
    let a = package("lean-a", lean);
    let b = package("lean-b", &format!("{lean}lean-a = {{ path = \"../a\", version = \"0.1.0\" }}\n"));
    let other = "[package]\nname = \"lean-other\"\nversion = \"0.1.0\"\nedition = \"2021\"\npublish = false\n\n\
                 [dependencies]\neither = \"1\"\n";
    let dir = small_workspace(
        &mut sb,
        "lean",
        &[
            ("Cargo.toml", "[workspace]\nresolver = \"2\"\nmembers = [\"a\", \"b\", \"other\", \"m\"]\n"),
            ("a/Cargo.toml", &a),
            ("a/src/lib.rs", ""),
            ("b/Cargo.toml", &b),
            ("b/src/lib.rs", ""),
            ("other/Cargo.toml", other),
            ("other/src/lib.rs", ""),
            (
                "m/Cargo.toml",
                &package("lean-m", "\n[lib]\nproc-macro = true\n\n[dependencies]\ncfg-if = \"1\"\n"),
            ),
            ("m/src/lib.rs", ""),
        ],
    );
    let run = publish(&mut sb, &dir, &["--dry-run"]);
    run.assert_success();
    assert!(!run.combined().contains("panicked"), "{}", run.combined());
    assert_eq!(run.stdout.matches("Compiling either v").count(), 1, "{}", run.stdout);
}

/// A crate at the workspace root holds every file below it but another package's
/// directory, which cargo leaves out (its manifest in the index, checked out or not):
/// files a sparse checkout leaves out there, or a submodule not checked out there, are
/// no file of the crate, and the run goes on.
#[test]
fn what_the_checkout_lacks_in_another_package_s_dir_does_not_stop_a_root_crate() {
    let mut sb = offline_sandbox();
    let root = package("rooted-app", "\n[workspace]\nmembers = [\"sub\"]\nexclude = [\"guests\"]\n");
    let files = [
        ("Cargo.toml", root.as_str()),
        ("src/lib.rs", ""),
        ("NOTES.md", "notes\n"),
        ("sub/Cargo.toml", &package("rooted-sub", "")),
        ("sub/src/lib.rs", ""),
        ("sub/NOTES.md", "notes\n"),
        ("guests/Cargo.toml", &package("rooted-guest", "\n[workspace]\n")),
        ("guests/src/lib.rs", ""),
    ];
    let dir = small_workspace(&mut sb, "rooted", &files);
    // A member's file, and the whole of a package of its own (its manifest too).
    let sparse = ["sparse-checkout", "set", "--no-cone", "/*", "!/sub/NOTES.md", "!/guests/"];
    git(&mut sb, &dir, &sparse);
    assert!(!dir.join("sub/NOTES.md").exists() && !dir.join("guests").exists());
    let run = publish(&mut sb, &dir, &["--dry-run", "-p", "rooted-app"]);
    run.assert_success();
    // Left out of the root crate itself, the file is missed.
    git(&mut sb, &dir, &[&sparse[..], &["!/NOTES.md"]].concat());
    let run = publish(&mut sb, &dir, &["--dry-run", "-p", "rooted-app"]);
    run.assert_failure();
    run.assert_output_contains("  NOTES.md in rooted-app (left out by a sparse checkout");
}
