//! `cargo xtask setup` on a private CARGO_HOME: format preservation, idempotence,
//! `--check`, bad input. No registry is needed: setup only edits the config.

use std::fs;

use xtask_harness::Sandbox;

const REDIST: &str = "sparse+https://pkgs.dev.azure.com/AzureContainerUpstream/hyperlight/_packaging/hyperlight_redist/Cargo/index/";
const PACKAGES: &str = "sparse+https://pkgs.dev.azure.com/AzureContainerUpstream/hyperlight/_packaging/hyperlight_packages/Cargo/index/";

fn sandbox() -> Sandbox {
    Sandbox::new(crate::xtask_bin())
}

fn config_path(sb: &Sandbox) -> std::path::PathBuf {
    sb.cargo_home().join("config.toml")
}

#[test]
fn setup_keeps_a_hand_written_config_and_only_adds() {
    let mut sb = sandbox();
    let before = "# My cargo settings.\n\
                  [build]\n\
                  jobs = 2   # a small laptop\n\
                  \n\
                  [registries]\n\
                  # A feed of my own.\n\
                  mine = { index = \"sparse+https://example.invalid/index/\" }\n\
                  \n\
                  [net]\n\
                  git-fetch-with-cli = true\n";
    fs::write(config_path(&sb), before).unwrap();

    sb.xtask(&["setup"]).assert_success();

    let after = fs::read_to_string(config_path(&sb)).unwrap();
    let expected = format!(
        "# My cargo settings.\n\
         [build]\n\
         jobs = 2   # a small laptop\n\
         \n\
         [registries]\n\
         # A feed of my own.\n\
         mine = {{ index = \"sparse+https://example.invalid/index/\" }}\n\
         hyperlight_redist = {{ index = \"{REDIST}\" }}\n\
         hyperlight_packages = {{ index = \"{PACKAGES}\" }}\n\
         \n\
         [net]\n\
         git-fetch-with-cli = true\n\
         \n\
         [registry]\n\
         global-credential-providers = [\"cargo:token\"]\n"
    );
    assert_eq!(after, expected);

    let second = sb.xtask(&["setup"]);
    second.assert_success().assert_output_contains("nothing written");
    assert_eq!(fs::read_to_string(config_path(&sb)).unwrap(), expected, "second run changed the file");
}

#[test]
fn setup_check_reports_and_writes_nothing() {
    let mut sb = sandbox();
    let check = sb.xtask(&["setup", "--check"]);
    check.assert_failure().assert_output_contains("would add feed hyperlight_redist");
    assert!(check.stderr.contains("run `cargo xtask setup`"), "{}", check.stderr);
    assert!(!config_path(&sb).exists(), "--check wrote the config");

    sb.xtask(&["setup"]).assert_success();
    sb.xtask(&["setup", "--check"]).assert_success().assert_output_contains("nothing written");
}

#[test]
fn malformed_config_is_named_and_left_byte_identical() {
    let mut sb = sandbox();
    let bad = "[registries]\nmine = { index = \"sparse+https://x/\" \n# unclosed table above\n";
    fs::write(config_path(&sb), bad).unwrap();
    for args in [&["setup"][..], &["setup", "--check"], &["cargo-login-ci"]] {
        sb.env("PAT", "a-valid-looking-pat-0123456789");
        let run = sb.xtask(args);
        run.assert_failure();
        let path = config_path(&sb);
        assert!(
            run.stderr.contains(&path.display().to_string()),
            "{args:?} does not name the file: {}",
            run.stderr
        );
        assert!(run.stderr.contains("line 2"), "{args:?} does not name the line: {}", run.stderr);
        assert_eq!(fs::read_to_string(&path).unwrap(), bad, "{args:?} touched the bad file");
    }
    assert!(!sb.cargo_home().join("credentials.toml").exists());
}

#[test]
fn a_feed_defined_elsewhere_is_kept_unless_forced() {
    let mut sb = sandbox();
    let before = "[registries.hyperlight_redist]\n\
                  index = \"sparse+https://mirror.invalid/redist/\" # our mirror\n\
                  credential-provider = \"cargo:token\"\n";
    fs::write(config_path(&sb), before).unwrap();

    let run = sb.xtask(&["setup"]);
    run.assert_success().assert_output_contains("left alone");
    let after = fs::read_to_string(config_path(&sb)).unwrap();
    assert!(after.starts_with(before), "the user's own feed changed:\n{after}");

    sb.xtask(&["setup", "--force"]).assert_success();
    let forced = fs::read_to_string(config_path(&sb)).unwrap();
    assert!(
        forced.starts_with(&format!(
            "[registries.hyperlight_redist]\nindex = \"{REDIST}\" # our mirror\ncredential-provider = \"cargo:token\"\n"
        )),
        "--force must replace the index and keep the comment and the other keys:\n{forced}"
    );
}

#[test]
fn the_obsolete_unstable_key_gets_a_warning() {
    let mut sb = sandbox();
    fs::write(config_path(&sb), "[unstable]\nregistry-auth = true\n").unwrap();
    sb.xtask(&["setup"]).assert_success().assert_output_contains("stable since cargo 1.74");
}

#[test]
fn keychain_uses_the_platform_provider() {
    let mut sb = sandbox();
    sb.xtask(&["setup", "--keychain"]).assert_success();
    let after = fs::read_to_string(config_path(&sb)).unwrap();
    let keychain = if cfg!(windows) {
        "cargo:wincred"
    } else if cfg!(target_os = "macos") {
        "cargo:macos-keychain"
    } else {
        "cargo:libsecret"
    };
    assert!(
        after.contains(&format!("global-credential-providers = [\"cargo:token\", \"{keychain}\"]")),
        "{after}"
    );
}

/// `--check` with `--keychain` or `--force` names the command that makes those
/// changes: a plain `cargo xtask setup` would not add the keychain.
#[test]
fn check_names_the_command_with_the_flags_checked() {
    let mut sb = sandbox();
    sb.xtask(&["setup"]).assert_success();
    let check = sb.xtask(&["setup", "--check", "--keychain", "--force"]);
    assert!(check.stderr.contains("run `cargo xtask setup --keychain --force` to make"), "{}", check.stderr);
}

/// A time limit that is not a number of seconds (`10m`) is said to be ignored, not
/// silently replaced by the default the user meant to raise (cargo-logout runs cargo).
#[test]
fn a_time_limit_that_is_not_seconds_is_named() {
    let mut sb = sandbox();
    sb.env("XTASK_TIMEOUT_SECS", "10m");
    let run = sb.xtask(&["cargo-logout"]);
    run.assert_success();
    let warnings = run.stderr.lines().filter(|l| l.starts_with("warning: XTASK_TIMEOUT_SECS=10m")).count();
    assert_eq!(warnings, 1, "{}", run.stderr);
}

/// The legacy `config` (no extension) is what cargo reads when it is the only one.
#[test]
fn the_legacy_config_file_is_edited_in_place() {
    let mut sb = sandbox();
    fs::write(sb.cargo_home().join("config"), "# old style\n").unwrap();
    sb.xtask(&["setup"]).assert_success();
    assert!(!config_path(&sb).exists());
    let legacy = fs::read_to_string(sb.cargo_home().join("config")).unwrap();
    assert!(legacy.starts_with("# old style\n") && legacy.contains(REDIST), "{legacy}");
}

/// `cargo xtask` after the repository moved with its `xtask/target`: cargo does not
/// rebuild for a move, so the path compiled in is the old one; the xtask must read
/// the repository cargo runs it from (cargo's `CARGO_MANIFEST_DIR`), not the old one.
#[test]
fn a_moved_repository_is_read_where_it_is_now() {
    let mut sb = sandbox();
    let host = sb.root().join("moved");
    fs::create_dir_all(host.join(".cargo")).unwrap();
    fs::create_dir_all(host.join("xtask")).unwrap();
    let feed = "[registries]\nmoved_feed = { index = \"sparse+https://example.invalid/moved/\" }\n";
    fs::write(host.join(".cargo").join("config.toml"), feed).unwrap();
    sb.env("CARGO_MANIFEST_DIR", host.join("xtask").to_str().unwrap());
    sb.env("CARGO_PKG_NAME", "xtask");
    let run = sb.xtask(&["setup", "--check"]);
    run.assert_failure().assert_output_contains("would add feed moved_feed");
    assert!(!run.combined().contains("hyperlight_redist"), "read the old repository:\n{}", run.combined());
}
