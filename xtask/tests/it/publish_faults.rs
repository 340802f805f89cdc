//! Issue 14: how a publishing run fails and stops. Failures no re-run can fix are
//! named as such; a `.crate` over the feed's size limit stops the run before any
//! upload; two runs share one `CARGO_HOME`; SIGTERM and SIGHUP are handled as
//! Ctrl-C; a killed run's work dir is not removed while its cargo still runs; the
//! report says what the run learned of each crate.

use std::fs;
use std::path::PathBuf;

use xtask_harness::http::{Fault, FaultServer};
use xtask_harness::{Run, Sandbox};

use crate::login::{REDIST, git, logged_in_to, scan, seed_crate};
use crate::publish_redist::{Fixture, fixture, with_shared_dependencies};

fn publish_redist(sb: &mut Sandbox, fx: &Fixture, extra: &[&str]) -> Run {
    let repo = fx.dir.to_str().unwrap().to_owned();
    // The consumer check is other tests' subject (the sandbox's host has no workspace to build).
    let mut args = vec!["publish-redist", "--no-consumer-check", "--repo", &repo, "--rev", &fx.pin];
    args.extend_from_slice(extra);
    sb.xtask(&args)
}

/// Defect 6: the feed already has a version `cargo info` missed. When the resolver
/// finds it, it counts as in the feed (compared, skipped); when that misses it too
/// (published since it looked), cargo's "already exists" is no network failure: the
/// error says a run again compares it, else to publish under a new version, and the
/// report says the feed has it.
#[test]
fn a_version_the_feed_already_has_is_not_called_a_network_failure() {
    let (_kellnr, mut sb, secrets) = logged_in_to(REDIST);
    let fx = fixture(&mut sb, 0, 12);
    publish_redist(&mut sb, &fx, &[]).assert_success();

    let real = sb.root().join("wrap").join("cargo");
    assert!(real.is_file(), "the harness's cargo wrapper moved: {}", real.display());
    // `cargo info` misses it, the resolver finds it: in the feed, compared, skipped.
    let blind_to = |commands: &str| {
        format!(
            "case \"$1\" in\n\
             {commands}) echo \"error: could not find \\`$2\\` in registry; failed to select a version\" >&2; \
             exit 101 ;;\n\
             esac\n\
             exec '{}' \"$@\"\n",
            real.display()
        )
    };
    sb.install_standin("cargo-blind", &blind_to("info"));
    sb.env("CARGO", sb.bin_dir().join("cargo-blind").to_str().unwrap());
    let run = publish_redist(&mut sb, &fx, &[]);
    run.assert_success();
    run.assert_output_contains("already there (identical)");

    sb.install_standin("cargo-blind", &blind_to("info|generate-lockfile"));
    let run = publish_redist(&mut sb, &fx, &[]);
    run.assert_failure();
    let out = run.combined();
    run.assert_output_contains("already exists");
    run.assert_output_contains("publish these sources under a new version (`--version`");
    // A run again compares it: identical, it is skipped (the first half of this test).
    run.assert_output_contains("has it since this run checked it, so run again to compare it");
    // The report says the feed has it: "not published" read as "not in the feed".
    let bindings = run.stdout.lines().rfind(|l| l.starts_with("mshv-bindings")).unwrap_or_default();
    assert!(bindings.ends_with("in the registry (not compared)"), "{}", run.stdout);
    assert!(!out.contains("fail the same way"), "{out}");
    for wrong in ["unreachable", "check the network", "run again to resume"] {
        assert!(!out.contains(wrong), "`{wrong}` in:\n{out}");
    }
    scan(&sb, &secrets);
}

/// A `--repo` URL with a password, as a workflow may build one for a private fork
/// (`https://x-access-token:TOKEN@host/...`): it was printed in the progress lines, the
/// report and the step summary, and passed to git in its arguments. Now it is refused,
/// the password not shown.
#[test]
fn a_repo_url_with_a_password_is_refused_without_showing_it() {
    let mut sb = Sandbox::new(crate::xtask_bin());
    let token = "ghs_s3cr3tT0kenValue0123456789";
    let url = format!("https://x-access-token:{token}@127.0.0.1:9/rust-vmm/mshv");
    let run = sb.xtask(&["publish-redist", "--repo", &url, "--rev", "52edcf4", "--dry-run"]);
    run.assert_failure();
    run.assert_output_contains("`--repo` is a URL with a password");
    sb.assert_no_secret(&[token]);
}

/// Defect 9: when the compare refuses because one crate differs from the feed's,
/// the report still says which crates it found identical.
#[test]
fn a_refused_compare_still_reports_the_identical_crates() {
    let (_kellnr, mut sb, secrets) = logged_in_to(REDIST);
    let fx = fixture(&mut sb, 0, 12);
    publish_redist(&mut sb, &fx, &[]).assert_success();
    let lib = fx.dir.join("mshv-ioctls/src/lib.rs");
    let text = fs::read_to_string(&lib).unwrap() + "\npub fn also() -> u32 {\n    2\n}\n";
    fs::write(&lib, text).unwrap();
    git(&mut sb, &fx.dir, &["commit", "-q", "-a", "-m", "ioctls: one more function"]);
    let pin = git(&mut sb, &fx.dir, &["rev-parse", "HEAD"]).stdout.trim().to_owned();
    let run = publish_redist(&mut sb, &Fixture { dir: fx.dir.clone(), pin }, &[]);
    run.assert_failure();
    run.assert_output_contains("mshv-ioctls 0.1.1 is in hyperlight_redist with other sources");
    let line = |krate: &str| {
        let line = run.stdout.lines().rfind(|l| l.starts_with(krate)).unwrap_or_default();
        line.split_whitespace().skip(2).collect::<Vec<_>>().join(" ")
    };
    assert_eq!(line("mshv-bindings"), "already there (identical)", "{}", run.stdout);
    assert_eq!(line("mshv-ioctls"), "in the registry with other sources", "{}", run.stdout);
    scan(&sb, &secrets);
}

/// Defect 10: the dependencies from crates.io that the crates share (mshv's libc,
/// vmm-sys-util, zerocopy and its derive) compile once per run, not once per
/// verification. The bindings' dev-dependencies ask syn for more features, so the
/// bindings' own verification and their dependents' build two syns, and over each a
/// zerocopy-derive and a zerocopy, as the manual flow does.
#[test]
fn shared_crates_io_dependencies_compile_once() {
    let mut sb = Sandbox::new(crate::xtask_bin());
    let fx = fixture(&mut sb, 0, 12);
    let fx = with_shared_dependencies(&mut sb, &fx);
    let run = publish_redist(&mut sb, &fx, &["--dry-run"]);
    run.assert_success();
    let twice = ["syn", "zerocopy", "zerocopy-derive"];
    for dependency in ["libc", "vmm-sys-util", "bitflags", "proc-macro2"].iter().chain(&twice) {
        let compiled = run.stdout.matches(&format!("Compiling {dependency} v")).count();
        let expected = if twice.contains(dependency) { 2 } else { 1 };
        assert_eq!(compiled, expected, "{dependency} compiled {compiled} times:\n{}", run.stdout);
    }
    assert_eq!(run.stdout.matches("would publish").count(), 2, "{}", run.stdout);
}

/// A git repository of one crate `name` 0.1.0 in `<sandbox>/ws`; its manifest.
fn one_crate(sb: &mut Sandbox, name: &str) -> String {
    let dir = sb.root().join("ws");
    fs::create_dir_all(dir.join("src")).unwrap();
    let manifest = format!(
        "[package]\nname = \"{name}\"\nversion = \"0.1.0\"\nedition = \"2021\"\n\
         license = \"MIT\"\ndescription = \"one crate\"\n"
    );
    fs::write(dir.join("Cargo.toml"), manifest).unwrap();
    fs::write(dir.join("src/lib.rs"), "").unwrap();
    sb.cargo(&dir, &["generate-lockfile", "--offline"]).assert_success();
    git(sb, &dir, &["init", "-q", "-b", "main"]);
    git(sb, &dir, &["add", "-A"]);
    git(sb, &dir, &["commit", "-q", "-m", "one crate"]);
    dir.join("Cargo.toml").to_str().unwrap().to_owned()
}

/// [`one_crate`] whose feed is `echo` (the token from cargo:token).
fn one_crate_for(sb: &mut Sandbox, echo: &FaultServer) -> String {
    let upper = REDIST.to_uppercase();
    sb.env(&format!("CARGO_REGISTRIES_{upper}_INDEX"), &echo.index_url());
    sb.env(&format!("CARGO_REGISTRIES_{upper}_CREDENTIAL_PROVIDER"), "cargo:token");
    one_crate(sb, "xtask-test-echo")
}

/// Cargo takes `-` and `_` for one name: with `xtask_test_spelt` in the feed, `cargo
/// info xtask-test-spelt@0.1.0` found it ("translating"), and the compare stopped with
/// "cannot fetch"; at another version, "could not find `xtask_test_spelt@0.3.0`" was
/// "cannot tell". Kellnr 6.5.0 would take both names; crates.io refuses the second.
#[test]
fn a_crate_the_feed_holds_spelled_otherwise_stops_the_run_by_name() {
    let (kellnr, mut sb, secrets) = logged_in_to(REDIST);
    seed_crate(&kellnr, REDIST, "xtask_test_spelt");
    let manifest = one_crate(&mut sb, "xtask-test-spelt");
    let publish = ["publish", "--registry", REDIST, "--manifest-path", &manifest];
    for version in [&[][..], &["--version", "0.3.0"]] {
        let run = sb.xtask(&[&publish[..], version].concat());
        run.assert_failure();
        run.assert_output_contains(&format!("{REDIST} holds a crate named xtask_test_spelt"));
        run.assert_output_contains("Nothing was uploaded");
        assert!(!run.combined().contains("cannot fetch"), "{}", run.combined());
    }
    assert!(kellnr.index_entry("xtask-test-spelt").is_none(), "uploaded");
    scan(&sb, &secrets);
}

/// A token without a scheme (a bare PAT set by mistake) that a feed or proxy echoes
/// in its 403: the publish tasks know no token, and only `Basic`/`Bearer` credentials
/// were redacted, so the token reached the error.
#[test]
fn an_echoed_token_without_a_scheme_is_never_shown_by_publish() {
    let echo = FaultServer::start(Fault::EchoAuthorization { status: 403 });
    let mut sb = Sandbox::new(crate::xtask_bin());
    let manifest = one_crate_for(&mut sb, &echo);
    let token = "bare0123456789token0123456789";
    sb.env(&format!("CARGO_REGISTRIES_{}_TOKEN", REDIST.to_uppercase()), token);
    let run = sb.xtask(&["publish", "--registry", REDIST, "--manifest-path", &manifest]);
    run.assert_failure().assert_output_contains("Authorization: <redacted>");
    assert!(echo.requests() >= 1, "cargo never asked the echoing feed");
    sb.assert_no_secret(&[token]);
}

/// Provider mode: cargo asks az for an Entra token (a JWT) on each use, so the publish
/// tasks never know it; a feed echoing it alone showed it whole.
#[test]
fn an_echoed_provider_token_is_never_shown_by_publish() {
    let echo = FaultServer::start(Fault::EchoCredential { status: 403 });
    let mut sb = Sandbox::new(crate::xtask_bin());
    let manifest = one_crate_for(&mut sb, &echo);
    let jwt = "eyJ0eXAiOiJKV1QifQ.eyJhdWQiOiI0OTliODRhYy0xMzIxIn0.c2lnbmF0dXJlLW9mLWF6dXJl";
    sb.install_standin("az-token", &format!("echo 'Bearer {jwt}'"));
    let provider = format!("CARGO_REGISTRIES_{}_CREDENTIAL_PROVIDER", REDIST.to_uppercase());
    sb.env(&provider, "cargo:token-from-stdout az-token");
    let run = sb.xtask(&["publish", "--registry", REDIST, "--manifest-path", &manifest]);
    run.assert_failure().assert_output_contains("denied: unknown credential <redacted>");
    assert!(echo.requests() >= 1, "cargo never asked the echoing feed");
    sb.assert_no_secret(&[jwt]);
}

/// A feed or proxy echoing the credential alone, with no header name or scheme to
/// spot it by: publish knew no token, so a crates.io-style token in the environment
/// and a PAT's header in the credentials file (either name) were shown. Now it
/// redacts every form of the tokens cargo may send, masked first under Actions.
#[test]
fn a_credential_echoed_alone_is_never_shown_by_publish() {
    let echo = FaultServer::start(Fault::EchoCredential { status: 403 });
    let mut sb = Sandbox::new(crate::xtask_bin());
    let manifest = one_crate_for(&mut sb, &echo);
    let publish = ["publish", "--registry", REDIST, "--manifest-path", &manifest];
    let (token, pat) = ("cio0123456789bareToken0123", crate::login::pat84());
    let var = format!("CARGO_REGISTRIES_{}_TOKEN", REDIST.to_uppercase());
    sb.env(&var, token);
    sb.xtask(&publish).assert_failure().assert_output_contains("denied: unknown credential <redacted>");
    sb.env_remove(&var);
    let header = xtask_harness::basic_header("PAT", &pat);
    let stored = format!("[registries.{REDIST}]\ntoken = \"{header}\"\n");
    for file in ["credentials.toml", "credentials"] {
        fs::write(sb.cargo_home().join(file), &stored).unwrap();
        sb.xtask(&publish).assert_failure().assert_output_contains("denied: unknown credential <redacted>");
        fs::remove_file(sb.cargo_home().join(file)).unwrap();
    }
    assert!(echo.requests() >= 3, "cargo never asked the echoing feed");
    sb.assert_no_secret(&[token, &pat]);
    // Under Actions the forms are masked before anything else is printed.
    fs::write(sb.cargo_home().join("credentials.toml"), &stored).unwrap();
    sb.env("GITHUB_ACTIONS", "true");
    sb.env("CARGO_REGISTRY_TOKEN", "true"); // too short to mask: it would hide every `true`
    let run = sb.xtask(&publish);
    run.assert_failure();
    let masks: Vec<&str> = run.stdout.lines().take_while(|l| l.starts_with("::add-mask::")).collect();
    for form in [&header, &pat] {
        assert!(masks.contains(&format!("::add-mask::{form}").as_str()), "{}", run.stdout);
    }
    assert!(!masks.contains(&"::add-mask::true"), "{}", run.stdout);
    let unmasked: Vec<&str> = run.stdout.lines().filter(|l| !l.starts_with("::add-mask::")).collect();
    let found = xtask_harness::find_secret(&(unmasked.join("\n") + &run.stderr), &[&pat]);
    assert!(found.is_none(), "{found:?}");
}

/// A token in the repository's own `.cargo/config.toml`, which cargo sends from the
/// work copy (here to read the feed a dependency comes from): publish redacted only
/// the environment's, the credentials files' and the global config's.
#[test]
fn a_token_in_the_repositorys_config_is_never_shown_by_publish() {
    let echo = FaultServer::start(Fault::EchoCredential { status: 403 });
    let mut sb = Sandbox::new(crate::xtask_bin());
    let manifest = one_crate_for(&mut sb, &echo);
    let (dir, token) = (sb.root().join("ws"), "repo0123456789configToken0123");
    fs::create_dir_all(dir.join(".cargo")).unwrap();
    fs::write(dir.join(".cargo/config.toml"), format!("[registries.{REDIST}]\ntoken = \"{token}\"\n"))
        .unwrap();
    let dependency =
        format!("\n[dependencies]\nfeeddep = {{ version = \"0.1\", registry = \"{REDIST}\" }}\n");
    fs::write(&manifest, fs::read_to_string(&manifest).unwrap() + &dependency).unwrap();
    git(&mut sb, &dir, &["rm", "-q", "Cargo.lock"]);
    git(&mut sb, &dir, &["add", "-A"]);
    git(&mut sb, &dir, &["commit", "-q", "-m", "a dependency from the feed"]);
    let run = sb.xtask(&["publish", "--registry", REDIST, "--manifest-path", &manifest, "--dry-run"]);
    run.assert_failure().assert_output_contains("denied: unknown credential <redacted>");
    assert!(echo.requests() >= 1, "cargo never asked the echoing feed");
    sb.assert_no_secret(&[token]);
    sb.env("GITHUB_ACTIONS", "true");
    let run = sb.xtask(&["publish", "--registry", REDIST, "--manifest-path", &manifest, "--dry-run"]);
    assert!(run.assert_failure().stdout.contains(&format!("::add-mask::{token}\n")), "{}", run.stdout);
}

/// `CARGO_LOG=debug` (a CI job debugging cargo) makes cargo log a credential
/// provider's command line, its arguments too, as a verbose cargo does: here the
/// token itself, which publish never knows (a provider hands it to cargo).
#[test]
fn cargo_log_never_shows_a_providers_arguments() {
    let answer = Fault::Answer { status: 403, content_type: "text/plain", body: "denied".into() };
    let feed = FaultServer::start(answer);
    let mut sb = Sandbox::new(crate::xtask_bin());
    let manifest = one_crate_for(&mut sb, &feed);
    let dir = sb.root().join("ws");
    let dependency =
        format!("\n[dependencies]\nfeeddep = {{ version = \"0.1\", registry = \"{REDIST}\" }}\n");
    fs::write(&manifest, fs::read_to_string(&manifest).unwrap() + &dependency).unwrap();
    git(&mut sb, &dir, &["rm", "-q", "Cargo.lock"]);
    git(&mut sb, &dir, &["commit", "-q", "-a", "-m", "a dependency from the feed"]);
    let secret = "providedSecret0123456789";
    let provider = format!("cargo:token-from-stdout echo {secret}");
    sb.env(&format!("CARGO_REGISTRIES_{}_CREDENTIAL_PROVIDER", REDIST.to_uppercase()), &provider);
    sb.env("CARGO_LOG", "debug");
    let run = sb.xtask(&["publish", "--registry", REDIST, "--manifest-path", &manifest, "--dry-run"]);
    run.assert_failure().assert_output_contains("got 403");
    assert!(feed.requests() >= 1, "cargo never asked the feed");
    sb.assert_no_secret(&[secret]);
}

/// A workspace of a small crate and one whose `.crate` is over crates.io's 10 MiB
/// (11 MiB that do not compress), as a git repository.
fn workspace_with_a_large_crate(sb: &mut Sandbox) -> PathBuf {
    let dir = sb.root().join("large");
    let files = [
        ("Cargo.toml", "[workspace]\nresolver = \"2\"\nmembers = [\"small\", \"large\"]\n"),
        (
            "small/Cargo.toml",
            "[package]\nname = \"xtask-test-small\"\nversion = \"0.1.0\"\nedition = \"2021\"\nlicense = \"MIT\"\ndescription = \"small\"\n",
        ),
        ("small/src/lib.rs", "pub fn one() -> u32 {\n    1\n}\n"),
        (
            "large/Cargo.toml",
            "[package]\nname = \"xtask-test-large\"\nversion = \"0.1.0\"\nedition = \"2021\"\nlicense = \"MIT\"\ndescription = \"large\"\n",
        ),
        ("large/src/lib.rs", "pub static DATA: &[u8] = include_bytes!(\"../data.bin\");\n"),
        (".gitignore", "/target\n"),
    ];
    for (path, text) in files {
        let path = dir.join(path);
        fs::create_dir_all(path.parent().unwrap()).unwrap();
        fs::write(path, text).unwrap();
    }
    // xorshift: bytes gzip cannot shrink.
    let mut x: u64 = 0x9E37_79B9_7F4A_7C15;
    let data: Vec<u8> = (0..11 * 1024 * 1024)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect();
    fs::write(dir.join("large/data.bin"), data).unwrap();
    sb.cargo(&dir, &["generate-lockfile", "--offline"]).assert_success();
    git(sb, &dir, &["init", "-q", "-b", "main"]);
    git(sb, &dir, &["add", "-A"]);
    git(sb, &dir, &["commit", "-q", "-m", "a small and a large crate"]);
    dir
}

/// Defect 6 and 9: a `.crate` over the feed's size limit stops the run after
/// packaging, before any upload (here a dry run to crates.io, whose limit is
/// known: 10 MiB), naming the crate, its size and the fix; the report does not
/// say "would publish" for crates of a dry run that failed.
#[test]
fn a_crate_over_the_size_limit_stops_the_run_before_any_upload() {
    let mut sb = Sandbox::new(crate::xtask_bin());
    let dir = workspace_with_a_large_crate(&mut sb);
    let manifest = dir.join("Cargo.toml");
    let run = sb.xtask(&[
        "publish",
        "--manifest-path",
        manifest.to_str().unwrap(),
        "--registry",
        "crates-io",
        "--dry-run",
    ]);
    run.assert_failure();
    run.assert_output_contains("xtask-test-large 0.1.0 is ");
    run.assert_output_contains("over crates-io's limit of 10485760 bytes (crates.io's upload limit)");
    run.assert_output_contains("nothing was uploaded");
    run.assert_output_contains("cargo package --list");
    let error = run.stderr.lines().find(|l| l.starts_with("error:")).unwrap_or_default();
    assert!(error.contains("xtask-test-large 0.1.0 is ") && !error.contains("small"), "{}", run.stderr);
    assert!(!run.stdout.contains("would publish"), "{}", run.stdout);
    // crates.io said it lacks both (a dry run asks it).
    assert_eq!(run.stdout.matches("0.1.0    not published").count(), 2, "{}", run.stdout);
    assert!(sb.calls("cargo").iter().all(|c| c.argv.first().map(String::as_str) != Some("publish")));
}

/// kellnr 6.5.0 takes 10 MB (`registry.max_crate_size` 10, in MB); the check took 10,000 MB, so
/// the small crate was uploaded and the large one refused ("400: length limit exceeded").
#[test]
fn a_crate_over_kellnrs_limit_stops_the_run_before_any_upload() {
    let (kellnr, mut sb, secrets) = logged_in_to(crate::login::PACKAGES);
    let manifest = workspace_with_a_large_crate(&mut sb).join("Cargo.toml");
    let run = sb.xtask(&["publish", "--manifest-path", manifest.to_str().unwrap()]);
    run.assert_failure().assert_output_contains("over hyperlight_packages's limit of 10000000 bytes");
    assert!(kellnr.index_entry("xtask-test-small").is_none(), "uploaded before the size check");
    scan(&sb, &secrets);
}

/// Defect 9: a dry run whose packaging fails says so for every crate: not "would
/// publish", in the table or in the step summary.
#[test]
fn a_dry_run_that_fails_at_packaging_does_not_say_would_publish() {
    let mut sb = Sandbox::new(crate::xtask_bin());
    let fx = fixture(&mut sb, 0, 12);
    let lib = fx.dir.join("mshv-ioctls/src/lib.rs");
    fs::write(&lib, "pub fn broken() -> u32 { mshv_bindings::not_there() }\n").unwrap();
    git(&mut sb, &fx.dir, &["commit", "-q", "-a", "-m", "ioctls: broken"]);
    let pin = git(&mut sb, &fx.dir, &["rev-parse", "HEAD"]).stdout.trim().to_owned();
    let fx = Fixture { dir: fx.dir.clone(), pin };
    let summary = sb.root().join("step-summary.md");
    fs::write(&summary, "").unwrap();
    sb.env("GITHUB_STEP_SUMMARY", summary.to_str().unwrap());
    let run = publish_redist(&mut sb, &fx, &["--dry-run"]);
    run.assert_failure();
    run.assert_output_contains("`cargo package` failed, nothing was published");
    let summary = fs::read_to_string(&summary).unwrap();
    for text in [&run.stdout, &summary] {
        assert!(!text.contains("would publish"), "{text}");
        assert_eq!(text.matches("not checked (the run stopped before)").count(), 2, "{text}");
    }
}

/// The tests that send signals and stand in for cargo with shell scripts.
#[cfg(unix)]
mod unix {
    use std::fs;
    use std::path::{Path, PathBuf};
    use std::time::{Duration, Instant};

    use xtask_harness::Sandbox;

    use crate::login::git;
    use crate::publish_redist::{Fixture, fixture};

    /// A dry run of publish-redist at the fixture's pin, started for a test to act on.
    fn spawn_dry_run(sb: &mut Sandbox, fx: &Fixture) -> std::process::Child {
        let repo = fx.dir.to_str().unwrap();
        sb.spawn_xtask(&[
            "publish-redist",
            "--no-consumer-check",
            "--repo",
            repo,
            "--rev",
            &fx.pin,
            "--dry-run",
        ])
    }

    /// The `-`-named (local registry) entries under `$CARGO_HOME/registry`.
    fn local_registry_dirs(sb: &Sandbox) -> Vec<String> {
        let registry = sb.cargo_home().join("registry");
        let mut found = Vec::new();
        for part in ["index", "src", "cache"] {
            for entry in fs::read_dir(registry.join(part)).into_iter().flatten().flatten() {
                let name = entry.file_name().to_string_lossy().into_owned();
                if name.starts_with('-') {
                    found.push(format!("{part}/{name}"));
                }
            }
        }
        found
    }

    /// A build script for the bindings that makes two runs overlap where sharing a
    /// cargo home once broke them: the first run to build the bindings from the
    /// dependents' local registry claims `$MARKS/first`; the other run, at that point,
    /// waits until the first run's work dir is gone (the first run over, its cleanup
    /// done), then lets cargo compile the bindings from the sources it extracted.
    const RACE_BUILD_RS: &str = r#"use std::{env, fs, path::Path, thread, time::Duration};

    fn main() {
        let Ok(marks) = env::var("XTASK_TEST_RACE_MARKS") else { return };
        if !env::var("CARGO_MANIFEST_DIR").unwrap().contains("registry") {
            return;
        }
        let out = env::var("OUT_DIR").unwrap();
        let work = out.split("/verify-dependents").next().unwrap().to_owned();
        let first = Path::new(&marks).join("first");
        if fs::create_dir(&first).is_ok() {
            fs::write(first.join("work"), &work).unwrap();
            return;
        }
        let theirs = loop {
            match fs::read_to_string(first.join("work")) {
                Ok(theirs) if !theirs.is_empty() => break theirs,
                _ => thread::sleep(Duration::from_millis(100)),
            }
        };
        while Path::new(&theirs).exists() {
            thread::sleep(Duration::from_millis(100));
        }
    }
    "#;

    /// Defect 7: two runs at once in one `CARGO_HOME` (two terminals, a CI matrix on
    /// one machine) both complete, even when one run ends while the other builds from
    /// what cargo extracted into `$CARGO_HOME/registry` (the first run's cleanup used
    /// to remove it); they take turns at the package stage, and no run's local
    /// registry dirs are left behind.
    #[test]
    fn two_runs_in_one_cargo_home_both_complete() {
        let mut sb = Sandbox::new(crate::xtask_bin());
        let fx = fixture(&mut sb, 0, 12);
        fs::write(fx.dir.join("mshv-bindings/build.rs"), RACE_BUILD_RS).unwrap();
        git(&mut sb, &fx.dir, &["add", "-A"]);
        git(&mut sb, &fx.dir, &["commit", "-q", "-m", "bindings: a build script"]);
        let rev = git(&mut sb, &fx.dir, &["rev-parse", "HEAD"]).stdout.trim().to_owned();
        let marks = sb.root().join("race-marks");
        fs::create_dir_all(&marks).unwrap();
        sb.env("XTASK_TEST_RACE_MARKS", marks.to_str().unwrap());
        let repo = fx.dir.to_str().unwrap().to_owned();
        let args = ["publish-redist", "--no-consumer-check", "--repo", &repo, "--rev", &rev, "--dry-run"];
        let runs = sb.xtask_together(&[&args, &args]);
        for run in &runs {
            run.assert_success();
            assert!(run.stdout.matches("would publish").count() == 2, "{}", run.stdout);
        }
        assert!(marks.join("first").is_dir(), "the build script never ran from the local registry");
        let waited =
            runs.iter().filter(|r| r.stderr.contains("waiting for another run's package stage")).count();
        assert_eq!(waited, 1, "{}\n{}", runs[0].combined(), runs[1].combined());
        assert!(local_registry_dirs(&sb).is_empty(), "{:?}", local_registry_dirs(&sb));
    }

    /// A sandbox whose cargo packages without verifying for real, and for each
    /// verification (two at once) waits for a child of its own, as for a build
    /// script (one that outlives cargo's exit at SIGINT; its output is not ours),
    /// marking in `marks` its start (`package-started-<pgid>`), the sleeper's pid
    /// (`build-script-pid-<pgid>`) and an interrupt (`cargo-got-int-<pgid>`).
    fn slow_verifying_sandbox() -> (Sandbox, Fixture, PathBuf) {
        let mut sb = Sandbox::new(crate::xtask_bin());
        let fx = fixture(&mut sb, 0, 12);
        let marks = sb.root().join("marks");
        fs::create_dir_all(&marks).unwrap();
        let real = sb.real_cargo().to_str().unwrap().to_owned();
        let m = marks.to_str().unwrap().to_owned();
        sb.install_standin(
            "cargo-slow-package",
            &format!(
                "case \"$1 $*\" in\n\
                 *--no-verify*) exec '{real}' \"$@\" ;;\n\
                 package*)\n\
                 \x20 trap 'echo INT > {m}/cargo-got-int-$$; exit 130' INT\n\
                 \x20 sh -c 'echo $$ > {m}/build-script-pid-$PPID; touch {m}/package-started-$PPID; exec sleep 60' \
                 </dev/null >/dev/null 2>&1 &\n\
                 \x20 wait\n\
                 \x20 ;;\n\
                 *) exec '{real}' \"$@\" ;;\n\
                 esac\n"
            ),
        );
        sb.env("CARGO", sb.bin_dir().join("cargo-slow-package").to_str().unwrap());
        (sb, fx, marks)
    }

    fn marked(marks: &Path, prefix: &str) -> Vec<PathBuf> {
        fs::read_dir(marks)
            .unwrap()
            .flatten()
            .filter(|e| e.file_name().to_string_lossy().starts_with(prefix))
            .map(|e| e.path())
            .collect()
    }

    /// Whether `pid` runs: a zombie (killed, its parent gone, not yet reaped) does not.
    fn alive(pid: &str) -> bool {
        let ps = std::process::Command::new("ps").args(["-o", "stat=", "-p", pid.trim()]).output().unwrap();
        let state = String::from_utf8_lossy(&ps.stdout);
        !state.trim().is_empty() && !state.trim().starts_with('Z')
    }

    /// `kill -s SIG -- TARGET` (a negative target names a process group).
    fn signal(target: &str, sig: &str) {
        let status = std::process::Command::new("kill").args(["-s", sig, "--", target]).status().unwrap();
        assert!(status.success(), "kill -s {sig} {target}");
    }

    /// Waits (at most a minute) until `done` holds, failing early if the xtask ended.
    fn wait_for(child: &mut std::process::Child, what: &str, mut done: impl FnMut() -> bool) {
        let started = Instant::now();
        while !done() {
            assert!(started.elapsed() < Duration::from_secs(60), "timed out waiting for {what}");
            assert!(child.try_wait().unwrap().is_none(), "the xtask ended before {what}");
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// Defect 8 (and 9, the waiting lines): `sig` to the xtask alone during the two
    /// verifications reaches both cargo commands, the build scripts stop, the work
    /// dir is removed, the exit code is an interrupt's; the waiting lines name the
    /// step, not the cargo command line.
    fn a_signal_stops_the_run_as_ctrl_c_does(sig: &str) {
        let (mut sb, fx, marks) = slow_verifying_sandbox();
        let mut child = spawn_dry_run(&mut sb, &fx);
        wait_for(&mut child, "the two verifications", || marked(&marks, "package-started-").len() == 2);
        // The runner's waiting line comes after 5 s without output.
        let err = sb.root().join("spawned.err");
        wait_for(&mut child, "the waiting lines", || {
            let text = fs::read_to_string(&err).unwrap_or_default();
            text.contains("waiting for `verifying the dependencies`")
                && text.contains("waiting for `verifying the dependents`")
        });
        signal(&child.id().to_string(), sig);
        let status = crate::exit_after(&mut child, sig);
        let (_, stderr) = sb.spawned_output(&format!("xtask publish-redist ({sig})"));
        assert_eq!(status.code(), Some(130), "{stderr}");
        assert!(stderr.contains("interrupted"), "{stderr}");
        for line in stderr.lines().filter(|l| l.contains("waiting for")) {
            assert!(!line.contains("--target-dir") && !line.contains("--config"), "{line}");
        }
        assert_eq!(marked(&marks, "cargo-got-int-").len(), 2, "not both cargo commands got the interrupt");
        for file in marked(&marks, "build-script-pid-") {
            let pid = fs::read_to_string(file).unwrap();
            assert!(!alive(&pid), "cargo's child (a build script) is still running after {sig}");
        }
        let left: Vec<_> = fs::read_dir(sb.tmp_dir()).unwrap().flatten().map(|e| e.file_name()).collect();
        assert!(left.is_empty(), "work dirs left behind: {left:?}");
    }

    /// A reader that went away (`cargo xtask ... | head -1`, a runner that closed the
    /// pipe) stops nothing: std's print panicked on the broken pipe, and the panic
    /// aborted the run (exit 134), its work dir left behind.
    #[test]
    fn a_closed_output_pipe_ends_no_run_early() {
        let mut sb = Sandbox::new(crate::xtask_bin());
        let fx = fixture(&mut sb, 0, 12);
        let (reader, writer) = std::io::pipe().unwrap();
        drop(reader);
        let repo = fx.dir.to_str().unwrap().to_owned();
        let args = ["publish-redist", "--no-consumer-check", "--repo", &repo, "--rev", &fx.pin, "--dry-run"];
        let mut command = sb.xtask_command(&args);
        command.stdin(std::process::Stdio::null()).stdout(writer.try_clone().unwrap()).stderr(writer);
        let mut child = command.spawn().unwrap();
        let status = crate::exit_after(&mut child, "its start");
        assert_eq!(status.code(), Some(0), "{status}");
        let left: Vec<_> = fs::read_dir(sb.tmp_dir()).unwrap().flatten().map(|e| e.file_name()).collect();
        assert!(left.is_empty(), "work dirs left behind: {left:?}");
    }

    /// Ctrl-C while cargo waits for the index after its upload: the error says the
    /// crate was uploaded and to run again (only "interrupted" was printed), exit 130.
    /// In a workflow with CARGO_TERM_COLOR=always (as Hyperlight's) and a user's
    /// `[term] quiet`, cargo's `Uploaded` came coloured or not at all.
    #[test]
    fn ctrl_c_after_an_upload_says_the_crate_is_in_the_feed() {
        let (_kellnr, mut sb, secrets) = crate::login::logged_in_to(crate::login::REDIST);
        sb.env("CARGO_TERM_COLOR", "always");
        sb.env("CARGO_TERM_QUIET", "true");
        let fx = fixture(&mut sb, 0, 12);
        let uploaded = sb.root().join("uploaded");
        let instead = format!("\"$REAL\" \"$@\" || exit $?; touch '{}'; exec sleep 60", uploaded.display());
        crate::publish_redist::cargo_publishing(&mut sb, "cargo-slow-wait", "mshv-bindings", &instead);
        let repo = fx.dir.to_str().unwrap().to_owned();
        let mut child =
            sb.spawn_xtask(&["publish-redist", "--no-consumer-check", "--repo", &repo, "--rev", &fx.pin]);
        wait_for(&mut child, "the upload", || uploaded.exists());
        signal(&child.id().to_string(), "INT");
        let status = crate::exit_after(&mut child, "SIGINT");
        let (_, stderr) = sb.spawned_output("xtask publish-redist (INT after the upload)");
        assert_eq!(status.code(), Some(130), "{stderr}");
        let said = "mshv-bindings 0.1.1 was uploaded to hyperlight_redist, then cargo was stopped; run again";
        assert!(stderr.contains(said), "{stderr}");
        crate::login::scan(&sb, &secrets);
    }

    /// A workspace of three crates in a chain (`three-c` on `three-b` on `three-a`), each
    /// in a dir of its name, as a git repository; its root manifest.
    fn three_crates(sb: &mut Sandbox) -> String {
        let dir = sb.root().join("three");
        let mut members = Vec::new();
        for (name, on) in [("three-a", ""), ("three-b", "three-a"), ("three-c", "three-b")] {
            let dependency = if on.is_empty() {
                String::new()
            } else {
                format!("\n[dependencies]\n{on} = {{ path = \"../{on}\", version = \"0.1.0\" }}\n")
            };
            let manifest = format!(
                "[package]\nname = \"{name}\"\nversion = \"0.1.0\"\nedition = \"2021\"\nlicense = \"MIT\"\n\
                 description = \"{name}\"\n{dependency}"
            );
            fs::create_dir_all(dir.join(name).join("src")).unwrap();
            fs::write(dir.join(name).join("Cargo.toml"), manifest).unwrap();
            fs::write(dir.join(name).join("src/lib.rs"), "").unwrap();
            members.push(format!("\"{name}\""));
        }
        let root = format!("[workspace]\nresolver = \"2\"\nmembers = [{}]\n", members.join(", "));
        fs::write(dir.join("Cargo.toml"), root).unwrap();
        sb.cargo(&dir, &["generate-lockfile", "--offline"]).assert_success();
        git(sb, &dir, &["init", "-q", "-b", "main"]);
        git(sb, &dir, &["add", "-A"]);
        git(sb, &dir, &["commit", "-q", "-m", "three crates"]);
        dir.join("Cargo.toml").to_str().unwrap().to_owned()
    }

    /// Ctrl-C at a terminal (SIGINT to the xtask's process group) once the first of three
    /// crates is uploaded, while cargo publishes the second: the run said only
    /// "interrupted" (stopped by the time limit, only that). Now the error names the crate
    /// it stopped at and says to run again, and that run completes, the first crate
    /// skipped as identical.
    #[test]
    fn ctrl_c_between_uploads_says_to_run_again_and_that_completes() {
        let (kellnr, mut sb, secrets) = crate::login::logged_in_to(crate::login::PACKAGES);
        let manifest = three_crates(&mut sb);
        let started = sb.root().join("publishing-b");
        let instead = format!("touch '{}'; exec sleep 60", started.display());
        let real = crate::publish_redist::cargo_publishing(&mut sb, "cargo-slow-b", "three-b", &instead);
        let publish = ["publish", "--manifest-path", &manifest];
        let mut command = sb.xtask_command(&publish);
        let (out, err) = (sb.root().join("spawned.out"), sb.root().join("spawned.err"));
        command.stdin(std::process::Stdio::null());
        command.stdout(fs::File::create(&out).unwrap()).stderr(fs::File::create(&err).unwrap());
        let mut child = std::os::unix::process::CommandExt::process_group(&mut command, 0).spawn().unwrap();
        wait_for(&mut child, "the second upload", || started.exists());
        signal(&format!("-{}", child.id()), "INT");
        let status = crate::exit_after(&mut child, "SIGINT");
        let (stdout, stderr) = sb.spawned_output("xtask publish (INT before the second upload)");
        assert_eq!(status.code(), Some(130), "{stderr}");
        let said = "publishing three-b 0.1.0 to hyperlight_packages was stopped before cargo said it was \
                    uploaded; run again to publish the rest: what is published already is skipped";
        assert!(stderr.contains(said), "{stderr}");
        // three-b may or may not be in the feed: the row must not say "not published".
        let stopped =
            "three-b  0.1.0    stopped while uploading: a run again compares what the registry has\n";
        let table = format!("three-a  0.1.0    published\n{stopped}three-c  0.1.0    not published\n");
        assert!(stdout.contains(&table), "{stdout}");
        crate::login::entry(&kellnr, "three-a", "0.1.0");
        assert!(kellnr.index_entry("three-b").is_none(), "three-b was uploaded");
        assert!(fs::read_dir(sb.tmp_dir()).unwrap().next().is_none(), "the work dir was left behind");

        // The same stop by the time limit.
        sb.env("XTASK_TIMEOUT_SECS", "15");
        let cut = sb.xtask(&publish);
        cut.assert_failure().assert_output_contains("gave no result within 15 s");
        assert!(cut.stderr.contains(said), "{}", cut.stderr);
        let identical = "three-a  0.1.0    already there (identical)\n";
        assert!(cut.stdout.contains(&format!("{identical}{stopped}")), "{}", cut.stdout);

        sb.env("CARGO", real.to_str().unwrap());
        let again = sb.xtask(&publish);
        again.assert_success();
        let table = format!("{identical}three-b  0.1.0    published\nthree-c  0.1.0    published\n");
        assert!(again.stdout.contains(&table), "{}", again.stdout);
        crate::login::scan(&sb, &secrets);
    }

    #[test]
    fn sigterm_stops_the_run_as_ctrl_c_does() {
        a_signal_stops_the_run_as_ctrl_c_does("TERM");
    }

    /// A token that expires mid-run (an Entra token lasts an hour), rejected at the second
    /// upload: the advice offered `--dry-run`, which checks again what this run checked,
    /// and said a run again would fail the same way. Before any upload it still offers it.
    #[test]
    fn a_token_rejected_at_the_second_upload_says_to_log_in_and_run_again() {
        let (_kellnr, mut sb, secrets) = crate::login::logged_in_to(crate::login::PACKAGES);
        let manifest = three_crates(&mut sb);
        let expired =
            "CARGO_REGISTRIES_HYPERLIGHT_PACKAGES_TOKEN='Basic bm90LWEtdG9rZW4=' exec \"$REAL\" \"$@\"";
        crate::publish_redist::cargo_publishing(&mut sb, "cargo-expired", "three-b", expired);
        let run = sb.xtask(&["publish", "--manifest-path", &manifest]);
        run.assert_failure().assert_output_contains("token rejected");
        let said = "publishing three-b 0.1.0 to hyperlight_packages failed: log in as below, then run again: \
                    what is published already is skipped";
        assert!(run.stderr.contains(said) && !run.stderr.contains("--dry-run"), "{}", run.stderr);
        let table = "three-a  0.1.0    published\nthree-b  0.1.0    not published\n";
        assert!(run.stdout.contains(table), "{}", run.stdout);
        // Rejected before any upload (the check), a dry run is the way round.
        sb.env("CARGO_REGISTRIES_HYPERLIGHT_PACKAGES_TOKEN", "Basic bm90LWEtdG9rZW4=");
        let before = sb.xtask(&["publish", "--manifest-path", &manifest]);
        before.assert_failure().assert_output_contains("token rejected");
        before.assert_output_contains("or check everything but the upload with `--dry-run`");
        crate::login::scan(&sb, &secrets);
    }

    #[test]
    fn sighup_stops_the_run_as_ctrl_c_does() {
        a_signal_stops_the_run_as_ctrl_c_does("HUP");
    }

    /// Defect 8: a run killed outright (SIGKILL: no handler runs) while cargo builds
    /// in its work dir. The next run does not remove that dir while cargo's processes
    /// still run in it; once they are gone, it does.
    #[test]
    fn a_killed_runs_work_dir_stays_while_its_cargo_still_runs() {
        let (mut sb, fx, marks) = slow_verifying_sandbox();
        let mut child = spawn_dry_run(&mut sb, &fx);
        wait_for(&mut child, "the two verifications", || marked(&marks, "package-started-").len() == 2);
        child.kill().unwrap();
        child.wait().unwrap();
        sb.spawned_output("xtask publish-redist (killed)");
        let work_dirs =
            || -> Vec<PathBuf> { fs::read_dir(sb.tmp_dir()).unwrap().flatten().map(|e| e.path()).collect() };
        let dead = work_dirs();
        assert_eq!(dead.len(), 1, "{dead:?}");
        let sleepers: Vec<String> =
            marked(&marks, "build-script-pid-").iter().map(|f| fs::read_to_string(f).unwrap()).collect();
        assert!(sleepers.iter().all(|pid| alive(pid)), "cargo's children ended with the xtask");

        // Another run (stopped at once by a rev that does not exist) cleans stale dirs first.
        let repo = fx.dir.to_str().unwrap().to_owned();
        let args = [
            "publish-redist",
            "--no-consumer-check",
            "--repo",
            &repo,
            "--rev",
            "0123456789abcdef0123456789abcdef01234567",
            "--dry-run",
        ];
        let real = sb.real_cargo().to_str().unwrap().to_owned();
        sb.env("CARGO", &real);
        sb.xtask(&args).assert_failure();
        assert!(dead[0].exists(), "a work dir was removed while cargo still ran in it");

        for file in marked(&marks, "package-started-") {
            let pgid =
                file.file_name().unwrap().to_string_lossy().trim_start_matches("package-started-").to_owned();
            signal(&format!("-{pgid}"), "KILL");
        }
        let started = Instant::now();
        while sleepers.iter().any(|pid| alive(pid)) {
            assert!(started.elapsed() < Duration::from_secs(30), "the sleepers did not end");
            std::thread::sleep(Duration::from_millis(50));
        }
        sb.xtask(&args).assert_failure();
        assert!(!dead[0].exists(), "the dead run's work dir was not removed once its processes ended");
    }
}
