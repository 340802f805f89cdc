//! The global cargo config as users really have it (issue 10): a legacy `config`
//! beside `config.toml`, two logins started at once, a link into a dotfiles repo, a
//! read-only file, and a credential provider of the user's own. Real cargo against
//! a real kellnr wherever what cargo reads is the question.

use std::fs;
use std::path::{Path, PathBuf};

use xtask_harness::{Sandbox, basic_header};

use crate::login::{PACKAGES, REDIST, pat84, world};
use crate::standins::{AzState, GhState, install_az, install_gh};

const REDIST_INDEX: &str = "sparse+https://pkgs.dev.azure.com/AzureContainerUpstream/hyperlight/_packaging/hyperlight_redist/Cargo/index/";

fn config_toml(sb: &Sandbox) -> PathBuf {
    sb.cargo_home().join("config.toml")
}

fn read(path: &Path) -> String {
    fs::read_to_string(path).unwrap_or_else(|e| panic!("read {}: {e}", path.display()))
}

/// The `credential-provider` of `feed` in the config text, if any.
fn provider_of(config: &str, feed: &str) -> Option<String> {
    let doc: toml_edit::DocumentMut = config.parse().unwrap_or_else(|e| panic!("{e}\n{config}"));
    Some(doc.get("registries")?.get(feed)?.get("credential-provider")?.to_string())
}

/// Cargo 1.95 reads the legacy `config` whenever it exists, `config.toml` beside it
/// or not (and warns). Login must edit that one, and real cargo must then reach
/// both feeds with the stored PAT; doctor must name the file in use and the ignored
/// one. Before: setup wrote `config.toml`, and cargo refused the feeds for lack of
/// a credential provider.
#[test]
fn a_legacy_config_beside_config_toml_is_the_one_edited() {
    let (kellnr, mut sb) = world();
    let pat = pat84();
    kellnr.add_user("PAT", &pat);
    let legacy = sb.cargo_home().join("config");
    fs::write(&legacy, "# the old file\n[net]\nretry = 1\n").unwrap();
    let ignored = "# the new file, never read by cargo while `config` exists\n[build]\njobs = 1\n";
    fs::write(config_toml(&sb), ignored).unwrap();
    sb.env("PAT", &pat);

    let run = sb.xtask(&["cargo-login-ci"]);
    run.assert_success();
    for feed in [REDIST, PACKAGES] {
        assert!(run.stderr.contains(&format!("check: {feed}: ok")), "{}", run.stderr);
    }
    let warning = format!(
        "both {} and {} exist; cargo reads only {}",
        legacy.display(),
        config_toml(&sb).display(),
        legacy.display()
    );
    assert!(run.stderr.contains(&warning), "{}", run.stderr);
    assert_eq!(read(&config_toml(&sb)), ignored, "the ignored file was edited");
    let edited = read(&legacy);
    assert!(edited.starts_with("# the old file\n[net]\nretry = 1\n"), "{edited}");
    assert!(edited.contains("global-credential-providers = [\"cargo:token\"]"), "{edited}");

    // Cargo itself, outside the xtask, sees the feed and its provider.
    let dir = sb.root().to_path_buf();
    let info = sb.cargo(&dir, &["info", "--registry", REDIST, "no-such-crate-anywhere"]);
    assert!(info.stderr.contains("could not find `no-such-crate-anywhere`"), "{}", info.stderr);

    install_az(&sb, &AzState::default());
    install_gh(&sb, &GhState::default());
    let doctor = sb.xtask(&["doctor"]);
    assert_eq!(doctor.status.code(), Some(0), "{}", doctor.combined());
    doctor.assert_output_contains(&format!("global config: {}\n", legacy.display()));
    doctor.assert_output_contains(&warning);
    doctor.assert_output_contains(&format!("in global config:    yes ({})", legacy.display()));
    sb.assert_no_secret(&[&pat, &basic_header("PAT", &pat)]);
}

/// Two logins to different feeds started at the same moment, several rounds: each
/// must find both feeds in the config and both tokens stored. Before: one feed was
/// lost in every round, and both runs still said "wrote".
#[test]
fn two_logins_at_once_both_land() {
    let (kellnr, mut sb) = world();
    let pat = pat84();
    kellnr.add_user("PAT", &pat);
    sb.env("PAT", &pat);
    for round in 0..5 {
        for file in ["config.toml", "credentials.toml"] {
            let _ = fs::remove_file(sb.cargo_home().join(file));
        }
        let runs = sb.xtask_together(&[
            &["cargo-login-ci", "--registry", REDIST],
            &["cargo-login-ci", "--registry", PACKAGES],
        ]);
        for run in &runs {
            run.assert_success();
        }
        let config = read(&config_toml(&sb));
        for feed in [REDIST, PACKAGES] {
            let index = sb.feed_index(feed).unwrap();
            assert!(config.contains(index), "round {round}: {feed} lost:\n{config}");
        }
        let credentials = read(&sb.cargo_home().join("credentials.toml"));
        for feed in [REDIST, PACKAGES] {
            assert!(
                credentials.contains(&format!("[registries.{feed}]")),
                "round {round}: token of {feed} lost"
            );
        }
    }
    sb.assert_no_secret(&[&pat, &basic_header("PAT", &pat)]);
}

/// Two provider-mode logouts at once must both turn their feed's provider off.
/// Before: each wrote back the other's feed as it had read it, still in provider
/// mode. Nothing here asks a feed, so the feeds are the repo's own (no kellnr).
#[test]
fn two_provider_mode_logouts_at_once_both_land() {
    let mut sb = Sandbox::new(crate::xtask_bin());
    install_az(&sb, &AzState::default());
    for round in 0..5 {
        sb.xtask(&["cargo-login", "--provider", "--no-check"]).assert_success();
        let config = read(&config_toml(&sb));
        assert!(
            provider_of(&config, REDIST).is_some() && provider_of(&config, PACKAGES).is_some(),
            "{config}"
        );
        let runs = sb.xtask_together(&[
            &["cargo-logout", "--registry", REDIST],
            &["cargo-logout", "--registry", PACKAGES],
        ]);
        for run in &runs {
            run.assert_success();
        }
        let config = read(&config_toml(&sb));
        for feed in [REDIST, PACKAGES] {
            assert_eq!(
                provider_of(&config, feed),
                None,
                "round {round}: {feed} still in provider mode:\n{config}"
            );
        }
    }
}

/// A provider the user set for a feed (with its comment) is theirs: provider mode
/// stops without `--force` and leaves the file as it was; with `--force` it takes
/// over, and logout puts the file back byte for byte. Before: overwritten silently,
/// and logout removed the setting altogether.
#[test]
fn a_users_own_provider_is_refused_then_kept_and_restored() {
    let mut sb = Sandbox::new(crate::xtask_bin());
    install_az(&sb, &AzState::default());
    let before = format!(
        "# my feeds\n[registries.{REDIST}]\nindex = \"{REDIST_INDEX}\"\n\
         # from the keyring, on purpose\ncredential-provider = \"cargo:token\" # chosen by me\n"
    );
    fs::write(config_toml(&sb), &before).unwrap();
    let login = ["cargo-login", "--provider", "--no-check", "--registry", REDIST];

    let refused = sb.xtask(&login);
    refused.assert_failure();
    let path = config_toml(&sb).display().to_string();
    assert!(
        refused.stderr.contains(&format!("registries.{REDIST}.credential-provider in {path}")),
        "{}",
        refused.stderr
    );
    refused.assert_output_contains("--provider --force");
    assert_eq!(read(&config_toml(&sb)), before, "a refused run changed the file");
    assert!(sb.calls("az").is_empty(), "refused only after asking az");

    sb.xtask(&[&login[..], &["--force"]].concat()).assert_success();
    let on = read(&config_toml(&sb));
    assert!(provider_of(&on, REDIST).is_some_and(|p| p.contains("get-access-token")), "{on}");
    assert!(
        on.contains("# cargo xtask: previous credential-provider = \"cargo:token\" # chosen by me\n"),
        "{on}"
    );

    let logout = sb.xtask(&["cargo-logout", "--registry", REDIST]);
    logout.assert_success().assert_output_contains("put back your own");
    assert_eq!(read(&config_toml(&sb)), before, "logout did not restore the user's provider exactly");
}

/// A provider of the user's own that is a command stores nothing, so cargo refuses
/// to log out of its feed ("requested operation not supported"). Before, that failed
/// `--provider --force` and every `cargo-logout` after, whatever was run again; now
/// the token an earlier login left in the credentials file goes all the same.
#[test]
fn a_command_provider_of_the_users_own_does_not_stop_login_or_logout() {
    let mut sb = Sandbox::new(crate::xtask_bin());
    install_az(&sb, &AzState::default());
    let before = format!(
        "[registries.{REDIST}]\nindex = \"{REDIST_INDEX}\"\ncredential-provider = \"cargo:token-from-stdout my-vault read\"\n"
    );
    fs::write(config_toml(&sb), &before).unwrap();
    let stale = format!("[registries.{REDIST}]\ntoken = \"Bearer stale-token-from-before\"\n");
    fs::write(sb.cargo_home().join("credentials.toml"), stale).unwrap();
    let login = ["cargo-login", "--provider", "--force", "--no-check", "--registry", REDIST];
    sb.xtask(&login).assert_success();
    let credentials = read(&sb.cargo_home().join("credentials.toml"));
    assert!(!credentials.contains("stale-token"), "{credentials}");
    sb.xtask(&["cargo-logout", "--registry", REDIST]).assert_success();
    assert_eq!(read(&config_toml(&sb)), before, "logout did not restore the user's provider");
    sb.xtask(&["cargo-logout", "--registry", REDIST]).assert_success();
}

/// Storing a token for a feed whose provider is a command of the user's own (one that
/// works: cargo reads the index with it first): cargo refuses, naming the whole command
/// (its arguments may be a secret). The error says why and what to do, without it.
#[test]
fn a_login_over_a_command_provider_says_why_without_the_command() {
    let (kellnr, mut sb) = world();
    let pat = pat84();
    kellnr.add_user("PAT", &pat);
    sb.install_standin("my-vault", &format!("echo 'Bearer {}'", kellnr.admin_token()));
    let provider = "cargo:token-from-stdout my-vault read s3cr3t-vault-key";
    fs::write(config_toml(&sb), format!("[registries.{REDIST}]\ncredential-provider = \"{provider}\"\n"))
        .unwrap();
    sb.env("PAT", &pat);
    let run = sb.xtask(&["cargo-login-ci", "--no-check", "--registry", REDIST]);
    run.assert_failure().assert_output_contains(&format!("cargo cannot store a token for {REDIST}"));
    sb.assert_no_secret(&["s3cr3t-vault-key", &pat]);
}

/// Provider mode over a read-only config: refused, and the tokens stored before stay.
/// Before, they were logged out first, and the write failed after: neither a token
/// nor provider mode was left.
#[test]
fn provider_mode_over_a_read_only_config_keeps_the_stored_tokens() {
    let mut sb = Sandbox::new(crate::xtask_bin());
    install_az(&sb, &AzState::default());
    sb.xtask(&["setup"]).assert_success();
    let writable = fs::metadata(config_toml(&sb)).unwrap().permissions();
    let mut permissions = writable.clone();
    permissions.set_readonly(true);
    fs::set_permissions(config_toml(&sb), permissions).unwrap();
    let stored = format!("[registries.{REDIST}]\ntoken = \"Bearer stored-before\"\n");
    let credentials = sb.cargo_home().join("credentials.toml");
    fs::write(&credentials, &stored).unwrap();
    let run = sb.xtask(&["cargo-login", "--provider", "--no-check", "--registry", REDIST]);
    run.assert_failure().assert_output_contains("is read-only");
    assert_eq!(read(&credentials), stored, "the stored token was removed");

    // Writable again: provider mode goes on, and then the stored token goes.
    fs::set_permissions(config_toml(&sb), writable).unwrap();
    sb.xtask(&["cargo-login", "--provider", "--no-check", "--registry", REDIST]).assert_success();
    assert!(!read(&credentials).contains("stored-before"), "{}", read(&credentials));
}

/// A command provider of the user's that fails when cargo asks it for the token:
/// cargo's error names its whole command line, whose arguments can be a secret. The
/// login's error keeps the program only. A user's `[term] verbose` made cargo print it
/// whole (`Credential cargo:token-from-stdout ... s3cr3t-vault-key get ...`).
#[test]
fn a_failing_command_provider_is_named_without_its_arguments() {
    let (kellnr, mut sb) = world();
    sb.env("CARGO_TERM_VERBOSE", "true");
    let pat = pat84();
    kellnr.add_user("PAT", &pat);
    let provider = "cargo:token-from-stdout my-missing-vault read s3cr3t-vault-key";
    fs::write(config_toml(&sb), format!("[registries.{REDIST}]\ncredential-provider = \"{provider}\"\n"))
        .unwrap();
    sb.env("PAT", &pat);
    let run = sb.xtask(&["cargo-login-ci", "--no-check", "--registry", REDIST]);
    run.assert_failure().assert_output_contains("my-missing-vault (2 argument(s) not shown)");
    sb.assert_no_secret(&["s3cr3t-vault-key", &pat]);
}

/// `setup --keychain` beside a command provider of the user's in the global list: it
/// says what it adds, never the list (before: the whole list, the command's secret
/// argument too).
#[test]
fn setup_names_what_it_adds_not_the_users_providers() {
    let mut sb = Sandbox::new(crate::xtask_bin());
    let argument = "k3y-s3cr3t-argument-0123456789";
    let before =
        format!("[registry]\nglobal-credential-providers = [\"/opt/my-provider --key {argument}\"]\n");
    fs::write(config_toml(&sb), before).unwrap();
    let run = sb.xtask(&["setup", "--keychain"]);
    run.assert_success().assert_output_contains("add cargo:token and cargo:");
    assert!(read(&config_toml(&sb)).contains(argument), "the user's provider was lost");
    sb.assert_no_secret(&[argument]);
}

/// An empty `CARGO_REGISTRIES_<NAME>_INDEX` (a workflow's unset `${{ vars.X }}`):
/// cargo 1.95 takes it as the index and fails on it (`invalid url ```), while the
/// tasks took the repo's index and went on to write it and log in. Now they stop first.
#[test]
fn an_empty_index_variable_stops_the_tasks_before_anything_is_written() {
    let mut sb = Sandbox::new(crate::xtask_bin());
    let var = format!("CARGO_REGISTRIES_{}_INDEX", PACKAGES.to_uppercase());
    sb.env(&var, "");
    let run = sb.xtask(&["setup"]);
    run.assert_failure().assert_output_contains(&format!("{var} is set but empty"));
    assert!(!config_toml(&sb).exists(), "setup wrote {}", read(&config_toml(&sb)));
}

/// A value of the wrong type in the global config: cargo names the file it read, and
/// doctor named the access check's own home, a directory gone by then.
#[test]
fn doctor_names_the_users_config_cargo_refuses() {
    let kellnr = xtask_harness::Kellnr::start();
    let mut sb = Sandbox::new(crate::xtask_bin());
    sb.feed(PACKAGES, &kellnr);
    fs::write(config_toml(&sb), "[registry]\nglobal-credential-providers = \"cargo:token\"\n").unwrap();
    let run = sb.xtask(&["doctor", "--registry", PACKAGES]);
    run.assert_failure();
    run.assert_output_contains(&format!(
        "`registry.global-credential-providers` in {}",
        config_toml(&sb).display()
    ));
    assert!(!run.combined().contains("hyperlight-xtask-check-"), "{}", run.combined());
}

/// A global config that is not TOML: doctor said per feed to run setup, which refuses it.
#[test]
fn doctor_on_a_broken_global_config_sends_to_the_file_not_to_setup() {
    let mut sb = Sandbox::new(crate::xtask_bin());
    fs::write(config_toml(&sb), "[registries\n").unwrap();
    let run = sb.xtask(&["doctor"]);
    run.assert_failure()
        .assert_output_contains(&format!("{} cannot be read (above)", config_toml(&sb).display()));
    assert!(!run.stdout.contains("cargo xtask setup"), "{}", run.stdout);
}

/// A read-only config is refused, named, and left as it was; so is every other
/// file of CARGO_HOME (no temp file left behind).
#[test]
fn a_read_only_config_is_refused_and_left_byte_identical() {
    let mut sb = Sandbox::new(crate::xtask_bin());
    let before = "[build]\njobs = 2\n";
    fs::write(config_toml(&sb), before).unwrap();
    let mut permissions = fs::metadata(config_toml(&sb)).unwrap().permissions();
    permissions.set_readonly(true);
    fs::set_permissions(config_toml(&sb), permissions).unwrap();

    let run = sb.xtask(&["setup"]);
    run.assert_failure();
    let path = config_toml(&sb).display().to_string();
    assert!(run.stderr.contains(&format!("{path} is read-only")), "{}", run.stderr);
    assert_eq!(read(&config_toml(&sb)), before);
    assert!(fs::metadata(config_toml(&sb)).unwrap().permissions().readonly());
    let mut names: Vec<_> = fs::read_dir(sb.cargo_home())
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    names.sort();
    assert_eq!(names, [".hyperlight-xtask.lock", "config.toml"]);
}

/// A config that is a link into a dotfiles repo stays a link; its target is edited.
/// (Unix only: creating a link on Windows needs a privilege test machines lack.)
#[cfg(unix)]
#[test]
fn a_symlinked_config_stays_a_link() {
    let mut sb = Sandbox::new(crate::xtask_bin());
    let dotfiles = sb.home().join("dotfiles");
    fs::create_dir_all(&dotfiles).unwrap();
    let target = dotfiles.join("cargo-config.toml");
    fs::write(&target, "# in git\n").unwrap();
    std::os::unix::fs::symlink(&target, config_toml(&sb)).unwrap();

    sb.xtask(&["setup"]).assert_success();
    assert!(
        fs::symlink_metadata(config_toml(&sb)).unwrap().file_type().is_symlink(),
        "the link was replaced"
    );
    let written = read(&target);
    assert!(written.starts_with("# in git\n") && written.contains(REDIST_INDEX), "{written}");
    let in_dotfiles: Vec<_> = fs::read_dir(&dotfiles).unwrap().map(|e| e.unwrap().file_name()).collect();
    assert_eq!(in_dotfiles, ["cargo-config.toml"], "a temp file was left behind");
    sb.xtask(&["setup"]).assert_success().assert_output_contains("nothing written");
}

/// Another run holding the lock makes setup wait, say so once after a second, and then do its edit.
#[test]
fn setup_waits_for_a_held_lock_and_says_so() {
    let mut sb = Sandbox::new(crate::xtask_bin());
    let path = config_toml(&sb).display().to_string();
    let waiting = format!("waiting for another cargo xtask editing {path}");
    for (held_ms, said) in [(700, 0), (2500, 1)] {
        let _ = fs::remove_file(config_toml(&sb));
        let lock = fs::File::create(sb.cargo_home().join(".hyperlight-xtask.lock")).unwrap();
        lock.lock().unwrap();
        let release = std::thread::spawn(move || {
            std::thread::sleep(std::time::Duration::from_millis(held_ms));
            drop(lock);
        });
        let run = sb.xtask(&["setup"]);
        release.join().unwrap();
        run.assert_success();
        assert_eq!(run.combined().matches(&waiting).count(), said, "held {held_ms} ms: {}", run.combined());
        assert!(read(&config_toml(&sb)).contains(REDIST_INDEX));
    }
}
