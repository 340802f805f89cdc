//! The login tasks against a real kellnr with authentication required: the real
//! cargo stores and sends the token, a scratch crate resolves through it, and no
//! form of the secret appears in any output or argv.

use std::fs;
use std::path::{Path, PathBuf};

use xtask_harness::{Kellnr, Sandbox, base64, basic_header};

use crate::standins::{AZURE_DEVOPS_RESOURCE, AzState, install_az};

pub const REDIST: &str = "hyperlight_redist";
pub const PACKAGES: &str = "hyperlight_packages";

/// An 84-character PAT, the length Azure DevOps issues since 2024 (the old bash
/// recipe broke on it: `PAT:` + 84 characters wraps in GNU base64).
pub fn pat84() -> String {
    let pat: String = xtask_harness::random_token(84);
    assert_eq!(pat.len(), 84);
    pat
}

/// A kellnr serving both feeds (the second through the server's alias URL, since
/// cargo refuses two registries with one index URL), and a sandbox pointed at it.
pub fn world() -> (Kellnr, Sandbox) {
    let kellnr = Kellnr::start();
    let mut sb = Sandbox::new(crate::xtask_bin());
    sb.feed(REDIST, &kellnr);
    sb.feed(PACKAGES, &kellnr);
    (kellnr, sb)
}

/// A kellnr, a sandbox with `feed` pointed at it, logged in with a PAT through the
/// real `cargo-login-ci` (kellnr takes the Azure form `Basic base64("PAT:" + pat)`
/// for a user named `PAT`). Returns the secrets to scan for.
pub fn logged_in_to(feed: &str) -> (Kellnr, Sandbox, Vec<String>) {
    let kellnr = Kellnr::start();
    let mut sb = Sandbox::new(crate::xtask_bin());
    sb.feed(feed, &kellnr);
    let pat = pat84();
    kellnr.add_user("PAT", &pat);
    sb.env("PAT", &pat);
    sb.xtask(&["cargo-login-ci", "--registry", feed]).assert_success();
    sb.env_remove("PAT");
    let secrets = vec![
        xtask_harness::base64(format!("PAT:{pat}").as_bytes()),
        xtask_harness::basic_header("PAT", &pat),
        pat,
    ];
    (kellnr, sb, secrets)
}

/// `git` in `dir` with the sandbox's environment, which must succeed.
pub fn git(sb: &mut Sandbox, dir: &std::path::Path, args: &[&str]) -> xtask_harness::Run {
    let run = sb.run("git", args, dir);
    run.assert_success();
    run
}

/// The index entry of `krate` at `version`: one JSON line of the sparse index.
pub fn entry(kellnr: &Kellnr, krate: &str, version: &str) -> String {
    let file = kellnr.index_entry(krate).unwrap_or_else(|| panic!("{krate} is not in the feed"));
    file.lines()
        .find(|l| l.contains(&format!("\"vers\":\"{version}\"")))
        .unwrap_or_else(|| panic!("{krate} {version} is not in the feed:\n{file}"))
        .to_owned()
}

/// A loopback port nothing listens on: a feed there is unreachable.
pub fn closed_port() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    listener.local_addr().unwrap().port()
}

/// A feed that answers 500 to every request, with a PAT for it in cargo's
/// environment (so cargo asks again with it after the 401 it expects first).
/// Returns the server, to count its requests, and the PAT, to scan for.
pub fn feed_answering_500(sb: &mut Sandbox, feed: &str) -> (xtask_harness::http::FaultServer, String) {
    use xtask_harness::http::{Fault, FaultServer};
    let server = FaultServer::start(Fault::Answer {
        status: 500,
        content_type: "text/plain",
        body: "the feed is having a bad day".into(),
    });
    let var = format!("CARGO_REGISTRIES_{}", feed.to_uppercase());
    sb.env(&format!("{var}_INDEX"), &server.index_url());
    let pat = pat84();
    sb.env(&format!("{var}_TOKEN"), &basic_header("PAT", &pat));
    sb.env(&format!("{var}_CREDENTIAL_PROVIDER"), "cargo:token");
    (server, pat)
}

/// The whole-output secret scan of a sandbox, which must have scanned something.
pub fn scan(sb: &Sandbox, secrets: &[String]) {
    let secrets: Vec<&str> = secrets.iter().map(String::as_str).collect();
    assert!(sb.assert_no_secret(&secrets) > 0);
}

/// Publishes crate `name` 0.1.0 to `feed` as kellnr's admin, from a sandbox of
/// its own, so the test's sandbox starts with no credentials at all.
pub fn seed_crate(kellnr: &Kellnr, feed: &str, name: &str) {
    let mut seeder = Sandbox::new(crate::xtask_bin());
    seeder.feed(feed, kellnr);
    let var = |key: &str| format!("CARGO_REGISTRIES_{}_{key}", feed.to_uppercase());
    seeder.env(&var("TOKEN"), &format!("Bearer {}", kellnr.admin_token()));
    seeder.env(&var("CREDENTIAL_PROVIDER"), "cargo:token");
    let dir = seeder.scratch_crate(name, "");
    seeder.cargo(&dir, &["publish", "--registry", feed, "--allow-dirty", "--no-verify"]).assert_success();
}

/// A consumer crate outside the repo that depends on `deps` (`(crate, feed)`) and
/// fetches them through cargo: it resolves only if cargo's token is accepted.
pub fn consumer_fetches(sb: &mut Sandbox, name: &str, deps: &[(&str, &str)]) -> xtask_harness::Run {
    let body: Vec<String> = deps
        .iter()
        .map(|(krate, feed)| format!("{krate} = {{ version = \"0.1\", registry = \"{feed}\" }}"))
        .collect();
    let dir = sb.scratch_crate(name, &body.join("\n"));
    sb.cargo(&dir, &["fetch"])
}

fn stored_token(sb: &Sandbox, feed: &str) -> Option<String> {
    let text = fs::read_to_string(sb.cargo_home().join("credentials.toml")).ok()?;
    let doc: toml_edit::DocumentMut = text.parse().ok()?;
    Some(doc.get("registries")?.get(feed)?.get("token")?.as_str()?.to_owned())
}

fn is_empty_dir(dir: &Path) -> bool {
    fs::read_dir(dir).map(|mut d| d.next().is_none()).unwrap_or(true)
}

#[test]
fn ci_login_with_an_84_character_pat_lets_cargo_use_both_feeds() {
    let (kellnr, mut sb) = world();
    let pat = pat84();
    kellnr.add_user("PAT", &pat);
    seed_crate(&kellnr, REDIST, "redist-dep");
    seed_crate(&kellnr, PACKAGES, "packages-dep");
    sb.env("PAT", &pat);

    let run = sb.xtask(&["cargo-login-ci"]);
    run.assert_success();
    assert!(run.stderr.contains(&format!("check: {REDIST}: ok")), "{}", run.stderr);
    assert!(run.stderr.contains(&format!("check: {PACKAGES}: ok")), "{}", run.stderr);

    let header = basic_header("PAT", &pat);
    assert_eq!(stored_token(&sb, REDIST).as_deref(), Some(header.as_str()));
    assert_eq!(stored_token(&sb, PACKAGES).as_deref(), Some(header.as_str()));
    let logins: Vec<_> =
        sb.calls("cargo").into_iter().filter(|c| c.argv.first().is_some_and(|a| a == "login")).collect();
    assert_eq!(logins.len(), 2, "one `cargo login` per feed");

    consumer_fetches(&mut sb, "consumer", &[("redist-dep", REDIST), ("packages-dep", PACKAGES)])
        .assert_success();

    let credential = base64(format!("PAT:{pat}").as_bytes());
    assert!(sb.assert_no_secret(&[&pat, &credential, &header]) > 0);

    // Under Actions the stored PAT is masked first too, not only an exported one.
    sb.env("GITHUB_ACTIONS", "true");
    let run = sb.xtask(&["cargo-login-ci", "--no-check"]);
    run.assert_success();
    let masks: Vec<&str> = run.stdout.lines().take(3).collect();
    let mask = |form: &str| format!("::add-mask::{form}");
    assert_eq!(masks, [mask(&pat), mask(&header), mask(&credential)], "{}", run.combined());
}

#[test]
fn ci_login_with_a_wrong_pat_names_the_rejected_feeds() {
    let (kellnr, mut sb) = world();
    kellnr.add_user("PAT", &pat84());
    let wrong = pat84();
    sb.env("PAT", &wrong);

    let run = sb.xtask(&["cargo-login-ci"]);
    run.assert_failure();
    for feed in [REDIST, PACKAGES] {
        assert!(run.stderr.contains(&format!("check: {feed}: token rejected")), "{}", run.stderr);
    }
    assert!(
        run.stderr.contains("access check failed for hyperlight_redist (token rejected)"),
        "{}",
        run.stderr
    );
    sb.assert_no_secret(&[&wrong, &basic_header("PAT", &wrong)]);
}

#[test]
fn bad_pats_are_refused_by_name_and_nothing_is_written() {
    let mut sb = Sandbox::new(crate::xtask_bin());
    let cases: [(Option<&str>, &str); 5] = [
        (None, "is not set"),
        (Some(""), "is empty"),
        (Some("  \t "), "is empty"),
        (Some("abc def-ghi"), "character cargo cannot send"),
        (Some("pat-with-\u{e9}-accent"), "character cargo cannot send"),
    ];
    for (value, says) in cases {
        match value {
            Some(v) => sb.env("PAT", v),
            None => sb.env_remove("PAT"),
        }
        let run = sb.xtask(&["cargo-login-ci"]);
        run.assert_failure();
        assert!(run.stderr.contains("environment variable PAT"), "{value:?}: {}", run.stderr);
        assert!(run.stderr.contains(says), "{value:?}: {}", run.stderr);
        if let Some(v) = value.filter(|v| !v.trim().is_empty()) {
            assert!(!run.combined().contains(v), "the value leaked: {}", run.combined());
        }
        assert!(is_empty_dir(&sb.cargo_home()), "{value:?} left files in CARGO_HOME");
    }
    sb.env("OTHER_PAT", "");
    let run = sb.xtask(&["cargo-login-ci", "--pat-env", "OTHER_PAT"]);
    run.assert_failure().assert_output_contains("environment variable OTHER_PAT is empty");
}

#[test]
fn an_unknown_feed_is_an_error_listing_the_known_ones() {
    let mut sb = Sandbox::new(crate::xtask_bin());
    sb.env("PAT", &pat84());
    for task in ["cargo-login-ci", "cargo-login", "cargo-logout"] {
        let run = sb.xtask(&[task, "--registry", "hyperlight_nope"]);
        run.assert_failure()
            .assert_output_contains("unknown feed `hyperlight_nope`")
            .assert_output_contains("hyperlight_redist, hyperlight_packages");
    }
    assert!(is_empty_dir(&sb.cargo_home()));
}

/// The feed check reads no host workspace: cargo resolves the workspace it runs in,
/// writing its lock file (Hyperlight committed none until 2024) and asking every
/// source of its dependencies.
#[test]
fn login_leaves_the_host_workspace_and_its_lock_alone() {
    let (kellnr, mut sb) = world();
    let pat = pat84();
    kellnr.add_user("PAT", &pat);
    let host = sb.host();
    fs::write(
        host.join("Cargo.toml"),
        "[package]\nname = \"host\"\nversion = \"0.1.0\"\nedition = \"2021\"\n",
    )
    .unwrap();
    fs::create_dir_all(host.join("src")).unwrap();
    fs::write(host.join("src/lib.rs"), "").unwrap();
    sb.env("PAT", &pat);
    sb.xtask(&["cargo-login-ci"]).assert_success().assert_output_contains(&format!("check: {PACKAGES}: ok"));
    assert!(!host.join("Cargo.lock").exists(), "the login's feed check wrote the host's Cargo.lock");
}

#[test]
fn registry_flag_limits_the_login_to_one_feed() {
    let (kellnr, mut sb) = world();
    let pat = pat84();
    kellnr.add_user("PAT", &pat);
    sb.env("PAT", &pat);
    sb.xtask(&["cargo-login-ci", "--registry", PACKAGES]).assert_success();
    assert!(stored_token(&sb, PACKAGES).is_some());
    assert_eq!(stored_token(&sb, REDIST), None);
}

/// A token already in cargo's environment beats the one just stored: login says so
/// (before, it said "stored" and cargo went on sending the other one).
#[test]
fn login_names_a_token_in_the_environment_that_beats_the_stored_one() {
    let (kellnr, mut sb) = world();
    let pat = pat84();
    kellnr.add_user("PAT", &pat);
    let var = format!("CARGO_REGISTRIES_{}_TOKEN", PACKAGES.to_uppercase());
    sb.env(&var, &basic_header("PAT", &pat));
    sb.env("PAT", &pat);
    let run = sb.xtask(&["cargo-login-ci", "--registry", PACKAGES]);
    run.assert_success()
        .assert_output_contains(&format!("warning: {var} is set: cargo takes it over the token"));
    scan(&sb, &[pat]);
}

/// An empty `CARGO_REGISTRIES_<NAME>_TOKEN` (a workflow's `${{ secrets.X }}` for a
/// secret that does not exist) beats the stored token too: cargo 1.95 then sends no
/// token and says "token rejected". Login and doctor named the stored token instead.
#[test]
fn an_empty_token_variable_is_named_as_what_cargo_uses() {
    let (kellnr, mut sb) = world();
    let pat = pat84();
    kellnr.add_user("PAT", &pat);
    let var = format!("CARGO_REGISTRIES_{}_TOKEN", PACKAGES.to_uppercase());
    sb.env(&var, "");
    sb.env("PAT", &pat);
    let run = sb.xtask(&["cargo-login-ci", "--registry", PACKAGES]);
    run.assert_failure().assert_output_contains("token rejected");
    run.assert_output_contains(&format!(
        "warning: {var} is set (empty): cargo takes it over the token stored"
    ));
    let run = sb.xtask(&["doctor", "--registry", PACKAGES]);
    run.assert_failure();
    run.assert_output_contains(&format!(
        "token from:          environment ({var}, empty: cargo sends no token)"
    ));
    sb.env_remove(&var);
    sb.xtask(&["doctor", "--registry", PACKAGES]).assert_success();
    scan(&sb, &[pat]);
}

/// The `--github-env` mode writes no credentials file: it hands the token to later
/// steps through `$GITHUB_ENV`, masking every form first, as GitHub Actions needs.
#[test]
fn github_env_mode_masks_first_and_exports_instead_of_storing() {
    let (kellnr, mut sb) = world();
    let pat = pat84();
    kellnr.add_user("PAT", &pat);
    seed_crate(&kellnr, REDIST, "exported-dep");
    let github_env = sb.root().join("github_env");
    fs::write(&github_env, "").unwrap();
    sb.env("GITHUB_ACTIONS", "true");
    sb.env("GITHUB_ENV", github_env.to_str().unwrap());
    sb.env("PAT", &pat);

    let run = sb.xtask(&["cargo-login-ci", "--github-env"]);
    run.assert_success();

    let header = basic_header("PAT", &pat);
    let credential = base64(format!("PAT:{pat}").as_bytes());
    let masks: Vec<&str> = run.stdout.lines().take(3).collect();
    assert_eq!(
        masks,
        [format!("::add-mask::{pat}"), format!("::add-mask::{header}"), format!("::add-mask::{credential}")],
        "the first lines of stdout must mask the PAT, the header and the credential"
    );
    assert!(!sb.cargo_home().join("credentials.toml").exists(), "--github-env stored a token");

    // A later step: the runner sets what $GITHUB_ENV says; cargo then just works.
    let exported = parse_github_env(&fs::read_to_string(&github_env).unwrap());
    for feed in [REDIST, PACKAGES] {
        let upper = feed.to_uppercase();
        assert_eq!(exported.get(&format!("CARGO_REGISTRIES_{upper}_TOKEN")), Some(&header));
        assert_eq!(
            exported.get(&format!("CARGO_REGISTRIES_{upper}_CREDENTIAL_PROVIDER")).map(String::as_str),
            Some("cargo:token")
        );
    }
    sb.env_remove("GITHUB_ACTIONS");
    for (key, value) in &exported {
        sb.env(key, value);
    }
    consumer_fetches(&mut sb, "later-step", &[("exported-dep", REDIST)]).assert_success();

    // Masked values may appear only inside the masking commands themselves.
    let stdout_rest: String = run.stdout.lines().skip(3).collect::<Vec<_>>().join("\n");
    assert!(!stdout_rest.contains(&pat) && !run.stderr.contains(&pat));
}

/// `NAME<<DELIM` … `DELIM` blocks and `NAME=value` lines, as the runner reads them
/// (whichever of `=` and `<<` comes first decides; a line with neither is an error).
fn parse_github_env(text: &str) -> std::collections::BTreeMap<String, String> {
    let mut vars = std::collections::BTreeMap::new();
    let mut lines = text.lines().filter(|line| !line.is_empty());
    while let Some(line) = lines.next() {
        let (equals, heredoc) = (line.find('='), line.find("<<"));
        if let Some(at) = heredoc.filter(|&at| equals.is_none_or(|equals| at < equals)) {
            let delimiter = &line[at + 2..];
            let value: Vec<&str> = lines.by_ref().take_while(|l| *l != delimiter).collect();
            vars.insert(line[..at].to_owned(), value.join("\n"));
        } else {
            let (name, value) =
                line.split_once('=').unwrap_or_else(|| panic!("the runner refuses the line {line:?}"));
            vars.insert(name.to_owned(), value.to_owned());
        }
    }
    vars
}

/// A line an earlier step left without its newline (`printf 'X=1' >> $GITHUB_ENV`):
/// before, the export's first line joined it, so `X` took the name and the runner
/// read the header's line as a variable of its own and failed on the delimiter.
#[test]
fn github_env_export_survives_an_open_last_line() {
    let mut sb = Sandbox::new(crate::xtask_bin());
    let (pat, github_env) = (pat84(), sb.root().join("github_env"));
    fs::write(&github_env, "EARLIER=1").unwrap();
    sb.env("GITHUB_ENV", github_env.to_str().unwrap());
    sb.env("PAT", &pat);
    sb.xtask(&["cargo-login-ci", "--github-env", "--no-check", "--registry", REDIST]).assert_success();
    let exported = parse_github_env(&fs::read_to_string(&github_env).unwrap());
    assert_eq!(exported.get("EARLIER").map(String::as_str), Some("1"));
    let token = exported.get(&format!("CARGO_REGISTRIES_{}_TOKEN", REDIST.to_uppercase()));
    assert_eq!(token, Some(&basic_header("PAT", &pat)));
    scan(&sb, &[pat]);
}

/// A sandbox whose xtask runs in a host of its own with `config` as its `.cargo/config.toml`.
fn config_host(config: &str) -> (Sandbox, PathBuf) {
    let sb = Sandbox::new(crate::xtask_bin());
    let host = sb.host();
    fs::write(host.join(".cargo/config.toml"), config).unwrap();
    (sb, host)
}

/// A feed name cargo refuses (a line break, `=`) in the repo's `.cargo/config.toml`:
/// `--github-env` wrote it into `$GITHUB_ENV` unchecked, so the name `"a=1\nEVIL=1\nx"`
/// set `EVIL` for the job's later steps, and a plain login had setup write it into the
/// global config; cargo refused the name only after. Now the tasks stop first.
#[test]
fn a_feed_name_cargo_refuses_stops_the_tasks_before_anything_is_written() {
    let (mut sb, host) =
        config_host("[registries]\n\"a=1\\nEVIL=1\\nx\" = { index = \"sparse+http://127.0.0.1:1/\" }\n");
    let (pat, github_env) = (pat84(), sb.root().join("github_env"));
    fs::write(&github_env, "").unwrap();
    sb.env("GITHUB_ENV", github_env.to_str().unwrap());
    sb.env("PAT", &pat);
    for args in [&["cargo-login-ci", "--github-env"][..], &["cargo-login-ci"]] {
        let run = sb.xtask(args);
        run.assert_failure().assert_output_contains("\"a=1\\nEVIL=1\\nx\"");
        run.assert_output_contains("only letters, digits, `-` and `_` in a registry name");
    }
    assert_eq!(fs::read_to_string(&github_env).unwrap(), "", "exported to later steps");
    assert!(!sb.cargo_home().join("config.toml").exists(), "setup wrote the global config");
    // Cargo's own rule: no digit or `-` first; a Unicode mark (`·`) is fine within.
    for (name, refused) in [("1feed", true), ("-feed", true), ("fe\u{b7}ed", false)] {
        let config = format!("[registries]\n\"{name}\" = {{ index = \"sparse+http://127.0.0.1:1/\" }}\n");
        fs::write(host.join(".cargo/config.toml"), config).unwrap();
        let run = sb.xtask(&["cargo-login-ci"]);
        run.assert_failure();
        assert_eq!(run.stderr.contains("in a registry name"), refused, "{name}: {}", run.stderr);
        let written = sb.cargo_home().join("config.toml").exists();
        assert_eq!(written, !refused, "{name}: the global config written: {written}");
    }
    scan(&sb, &[pat]);
}

/// A repository config without feeds: the error said so and nothing of what to add.
#[test]
fn a_config_without_feeds_says_what_to_add() {
    for config in ["[build]\njobs = 2\n", "[registries]\n"] {
        let (mut sb, host) = config_host(config);
        let run = sb.xtask(&["doctor"]);
        run.assert_failure().assert_output_contains(&host.join(".cargo/config.toml").display().to_string());
        run.assert_output_contains("add the feeds as docs/adding-the-xtask.md shows");
    }
}

/// `[registries.crates-io] protocol = "sparse"` is cargo's setting for crates.io, not a
/// feed: with it in the repo's config every task stopped on a feed without an `index`.
#[test]
fn crates_io_s_protocol_setting_is_no_feed() {
    let (mut sb, _) = config_host(
        "[registries]\ncrates-io = { protocol = \"sparse\" }\nfeed = { index = \"sparse+http://127.0.0.1:1/\" }\n",
    );
    let (pat, github_env) = (pat84(), sb.root().join("github_env"));
    fs::write(&github_env, "").unwrap();
    sb.env("GITHUB_ENV", github_env.to_str().unwrap());
    sb.env("PAT", &pat);
    sb.xtask(&["cargo-login-ci", "--github-env", "--no-check"]).assert_success();
    let exported = parse_github_env(&fs::read_to_string(&github_env).unwrap());
    assert!(exported.contains_key("CARGO_REGISTRIES_FEED_TOKEN"), "{exported:?}");
    assert!(!exported.keys().any(|k| k.contains("CRATES_IO")), "crates.io taken for a feed: {exported:?}");
    scan(&sb, &[pat]);
}

/// `$GITHUB_ENV` naming a file that does not exist yet (a run outside Actions): the
/// file made holds the token, so it is the user's alone, as a new config is.
#[cfg(unix)]
#[test]
fn a_github_env_file_made_for_the_token_is_private() {
    use std::os::unix::fs::PermissionsExt;
    let mut sb = Sandbox::new(crate::xtask_bin());
    let (pat, github_env) = (pat84(), sb.root().join("github_env"));
    sb.env("GITHUB_ENV", github_env.to_str().unwrap());
    sb.env("PAT", &pat);
    sb.xtask(&["cargo-login-ci", "--github-env", "--no-check", "--registry", REDIST]).assert_success();
    let mode = fs::metadata(&github_env).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600, "{github_env:?} has mode {mode:o}");
    scan(&sb, &[pat]);
}

#[test]
fn logout_removes_the_tokens_and_is_fine_when_there_are_none() {
    let (kellnr, mut sb) = world();
    let pat = pat84();
    kellnr.add_user("PAT", &pat);
    sb.env("PAT", &pat);
    sb.xtask(&["cargo-login-ci", "--no-check"]).assert_success();
    assert!(stored_token(&sb, REDIST).is_some());

    sb.xtask(&["cargo-logout"]).assert_success();
    assert_eq!(stored_token(&sb, REDIST), None);
    assert_eq!(stored_token(&sb, PACKAGES), None);
    sb.xtask(&["cargo-logout"]).assert_success();
}

// `cargo-login`: the developer path, with the az stand-in handing out kellnr's admin
// token as the Entra access token (kellnr accepts it as `Bearer <token>`).

fn az_token_calls(sb: &Sandbox) -> Vec<Vec<String>> {
    sb.calls("az")
        .into_iter()
        .map(|c| c.argv)
        .filter(|a| a.starts_with(&["account".into(), "get-access-token".into()]))
        .collect()
}

#[test]
fn dev_login_asks_az_once_and_lets_cargo_use_both_feeds() {
    let (kellnr, mut sb) = world();
    let token = kellnr.admin_token().to_owned();
    install_az(&sb, &AzState { token: token.clone(), ..AzState::default() });
    seed_crate(&kellnr, REDIST, "dev-dep");
    seed_crate(&kellnr, PACKAGES, "dev-other-dep");

    let run = sb.xtask(&["cargo-login"]);
    run.assert_success().assert_output_contains("expires at 2031-01-01 12:00:00");
    assert!(run.stderr.contains(&format!("check: {PACKAGES}: ok")), "{}", run.stderr);

    let calls = az_token_calls(&sb);
    assert_eq!(calls.len(), 1, "one az call for all feeds: {calls:?}");
    assert!(calls[0].windows(2).any(|w| w == ["--resource", AZURE_DEVOPS_RESOURCE]), "{:?}", calls[0]);
    let bearer = format!("Bearer {token}");
    assert_eq!(stored_token(&sb, REDIST).as_deref(), Some(bearer.as_str()));
    assert_eq!(stored_token(&sb, PACKAGES).as_deref(), Some(bearer.as_str()));
    assert!(sb.cargo_home().join("config.toml").exists(), "cargo-login sets up a new machine");

    consumer_fetches(&mut sb, "dev-consumer", &[("dev-dep", REDIST), ("dev-other-dep", PACKAGES)])
        .assert_success();
    assert!(sb.assert_no_secret(&[&token, &bearer]) > 0);
}

#[test]
fn dev_login_without_an_az_session_says_to_run_az_login() {
    let (_kellnr, mut sb) = world();
    install_az(&sb, &AzState { logged_in: false, ..AzState::default() });
    let run = sb.xtask(&["cargo-login"]);
    run.assert_failure().assert_output_contains("run `az login`");
    assert!(run.stderr.contains("--az-login"), "{}", run.stderr);
    assert!(!sb.cargo_home().join("credentials.toml").exists());
}

#[test]
fn az_login_flag_logs_in_to_azure_first() {
    let (kellnr, mut sb) = world();
    let token = kellnr.admin_token().to_owned();
    install_az(&sb, &AzState { logged_in: false, token: token.clone(), ..AzState::default() });
    sb.xtask(&["cargo-login", "--az-login", "--registry", REDIST]).assert_success();
    let commands: Vec<String> =
        sb.calls("az").iter().map(|c| c.argv[..2.min(c.argv.len())].join(" ")).collect();
    assert_eq!(commands, ["login", "account get-access-token"]);
    assert_eq!(stored_token(&sb, REDIST), Some(format!("Bearer {token}")));
    sb.assert_no_secret(&[&token]);
}

/// Without az on PATH the error says how to install it. PATH holds only the
/// sandbox's stand-in dir and the few utilities the cargo recording wrapper uses,
/// so an az installed on the machine cannot make this pass by accident.
#[cfg(unix)]
#[test]
fn missing_az_says_how_to_install_it() {
    let (_kellnr, mut sb) = world();
    let tools = sb.root().join("tools");
    fs::create_dir_all(&tools).unwrap();
    for util in ["sh", "mkdir", "env", "cat"] {
        let path = ["/bin", "/usr/bin"].iter().map(|d| Path::new(d).join(util)).find(|p| p.exists()).unwrap();
        std::os::unix::fs::symlink(path, tools.join(util)).unwrap();
    }
    sb.env("PATH", &format!("{}:{}", sb.bin_dir().display(), tools.display()));
    let run = sb.xtask(&["cargo-login"]);
    run.assert_failure().assert_output_contains("`az` was not found on PATH: install the Azure CLI");
    // Found missing before the set-up: nothing written (before, the global config was).
    assert!(is_empty_dir(&sb.cargo_home()), "cargo-login without az wrote to CARGO_HOME");
}

/// Cargo logs out of one place: the first provider holding a token, in the one
/// credentials file it reads (the legacy `credentials` when it exists). Before, a token
/// in `credentials.toml` beside it stayed, and came back once the deprecated file was
/// deleted (as cargo's warning asks); a fresh machine also got an empty `config.toml`.
#[test]
fn logout_clears_the_token_from_both_credentials_files() {
    let mut sb = Sandbox::new(crate::xtask_bin());
    let (used, dormant) = (pat84(), pat84());
    let home = sb.cargo_home();
    let legacy = format!("[registries.{REDIST}]\ntoken = \"Bearer {used}\"\n");
    fs::write(home.join("credentials"), legacy).unwrap();
    let other = format!(
        "# mine\n[registries.{REDIST}]\ntoken = \"Bearer {dormant}\"\n\n[registries.x]\ntoken = \"kept\"\n"
    );
    fs::write(home.join("credentials.toml"), &other).unwrap();
    sb.xtask(&["cargo-logout", "--registry", REDIST]).assert_success();
    for name in ["credentials", "credentials.toml"] {
        let text = fs::read_to_string(home.join(name)).unwrap();
        assert!(!text.contains(&used) && !text.contains(&dormant), "{name} keeps a token:\n{text}");
    }
    let toml = fs::read_to_string(home.join("credentials.toml")).unwrap();
    assert_eq!(toml, format!("# mine\n[registries.{REDIST}]\n\n[registries.x]\ntoken = \"kept\"\n"));
    assert!(!home.join("config.toml").exists(), "logout made a config.toml");

    // A keychain ahead of `cargo:token` (as `setup --keychain` orders them) answers the
    // logout, and cargo stops there: the stored token stayed, and cargo still used it.
    let keychain = "echo '{\"v\":[1]}'; read -r request; case \"$request\" in *'\"logout\"'*) \
                    echo '{\"Ok\":{\"kind\":\"logout\"}}';; *) echo '{\"Err\":{\"kind\":\"not-found\"}}';; esac";
    sb.install_standin("fake-keychain", keychain);
    let providers = format!("[\"cargo:token\", \"{}\"]", sb.bin_dir().join("fake-keychain").display());
    fs::write(home.join("config.toml"), format!("[registry]\nglobal-credential-providers = {providers}\n"))
        .unwrap();
    fs::remove_file(home.join("credentials")).unwrap();
    fs::write(home.join("credentials.toml"), format!("[registries.{REDIST}]\ntoken = \"Bearer {used}\"\n"))
        .unwrap();
    sb.xtask(&["cargo-logout", "--registry", REDIST]).assert_success();
    assert_eq!(stored_token(&sb, REDIST), None);
    sb.assert_no_secret(&[&used, &dormant]);
}

/// A token in the global config (cargo reads `registries.NAME.token` there too, and
/// its `cargo logout` says it removed it) is removed; one in the environment, which
/// no logout can remove, is named. Before, both stayed in use, and logout said none.
#[test]
fn logout_names_or_removes_every_token_cargo_would_still_use() {
    let mut sb = Sandbox::new(crate::xtask_bin());
    let (in_config, in_env) = (pat84(), pat84());
    let config = sb.cargo_home().join("config.toml");
    let before = format!(
        "[registries.{REDIST}] # mine\ntoken = \"Bearer {in_config}\"\n\n[registry]\nglobal-credential-providers = [\"cargo:token\"]\n"
    );
    fs::write(&config, before).unwrap();
    let var = format!("CARGO_REGISTRIES_{}_TOKEN", PACKAGES.to_uppercase());
    sb.env(&var, &format!("Bearer {in_env}"));
    let run = sb.xtask(&["cargo-logout"]);
    run.assert_success().assert_output_contains(&format!("warning: {var} is set: cargo still takes it"));
    assert_eq!(
        fs::read_to_string(&config).unwrap(),
        format!(
            "[registries.{REDIST}] # mine\n\n[registry]\nglobal-credential-providers = [\"cargo:token\"]\n"
        )
    );
    sb.assert_no_secret(&[&in_config, &in_env]);
}

/// Cargo reads `registries.NAME.token` from every `.cargo/config.toml` from where it
/// runs upwards, a repository's own too. Before, logout said "no token stored" while
/// such a token stayed in use; now it names the file (a repository's may be committed).
#[test]
fn logout_names_a_token_in_a_config_of_the_repository_or_above() {
    let mut sb = Sandbox::new(crate::xtask_bin());
    let pat = pat84();
    let (above, here) = (sb.root().join("elsewhere"), sb.root().join("elsewhere/deeper"));
    fs::create_dir_all(above.join(".cargo")).unwrap();
    fs::create_dir_all(&here).unwrap();
    let config = above.join(".cargo/config.toml");
    fs::write(&config, format!("[registries.{REDIST}]\ntoken = \"Bearer {pat}\"\n")).unwrap();
    sb.env("XTASK_INVOCATION_DIR", &here.display().to_string());
    let run = sb.xtask(&["cargo-logout"]);
    run.assert_success();
    run.assert_output_contains(&format!("warning: {} holds registries.{REDIST}.token", config.display()));
    assert!(!run.stderr.contains(&format!("no token stored for {REDIST}")), "{}", run.stderr);
    run.assert_output_contains(&format!("no token stored for {PACKAGES} any more"));
    sb.assert_no_secret(&[&pat]);
}

/// `cargo-login` in provider mode with no az session: it fails saying so, and provider
/// mode stays on. Before, it was turned off first, leaving neither provider nor token.
#[test]
fn dev_login_keeps_provider_mode_when_az_gives_no_token() {
    let mut sb = Sandbox::new(crate::xtask_bin());
    install_az(&sb, &AzState::default());
    sb.xtask(&["cargo-login", "--provider", "--no-check"]).assert_success();
    let config = sb.cargo_home().join("config.toml");
    let before = fs::read_to_string(&config).unwrap();
    install_az(&sb, &AzState { logged_in: false, ..AzState::default() });
    sb.xtask(&["cargo-login", "--no-check"]).assert_failure().assert_output_contains("run `az login`");
    assert_eq!(fs::read_to_string(&config).unwrap(), before, "provider mode was changed");
}

/// `cargo-login-ci` on a machine in provider mode (a developer trying a PAT): cargo
/// cannot `login` a feed whose provider is a command, so provider mode goes off first,
/// as `cargo-login` does. Before, cargo's "requested operation not supported".
#[test]
fn ci_login_turns_provider_mode_off_first() {
    let (kellnr, mut sb) = world();
    let pat = pat84();
    kellnr.add_user("PAT", &pat);
    install_az(&sb, &AzState::default());
    // Without setup: turning provider mode off gives cargo the provider it then needs.
    sb.xtask(&["cargo-login", "--provider", "--no-check", "--no-setup"]).assert_success();
    sb.env("PAT", &pat);
    let run = sb.xtask(&["cargo-login-ci", "--no-setup"]);
    run.assert_success().assert_output_contains(&format!("provider mode off for {REDIST}"));
    assert_eq!(stored_token(&sb, REDIST), Some(basic_header("PAT", &pat)));
    scan(&sb, &[pat]);
}

/// The access check gives cargo a private home: before, it held a copy of the
/// credentials (a second file of tokens in the temp dir, left there by a crash); now
/// a link to them. A cargo in between lists the home each check runs with.
#[test]
fn the_access_check_links_the_credentials_never_copies_them() {
    let (kellnr, mut sb) = world();
    let pat = pat84();
    kellnr.add_user("PAT", &pat);
    let listing = sb.root().join("probe-homes");
    let real = xtask_harness::sh_quote(&sb.real_cargo().to_string_lossy());
    let list = format!(
        "[ \"$1\" = info ] && ls -l \"$CARGO_HOME\" >> '{}'\nexec {real} \"$@\"\n",
        listing.display()
    );
    sb.install_standin("listing-cargo", &list);
    sb.env("CARGO", sb.bin_dir().join("listing-cargo").to_str().unwrap());
    sb.env("PAT", &pat);
    sb.xtask(&["cargo-login-ci", "--registry", REDIST]).assert_success();
    let listing = fs::read_to_string(&listing).unwrap();
    let credentials = listing.lines().find(|line| line.contains("credentials.toml"));
    assert!(credentials.is_some_and(|line| line.starts_with('l')), "{listing}");
    scan(&sb, &[pat]);
}

/// A credentials file that is not TOML: cargo's own error quotes the line, here a
/// crates.io token. Login and doctor name the file and the place, never the line.
#[test]
fn a_broken_credentials_file_is_located_never_quoted() {
    let (kellnr, mut sb) = world();
    let (pat, token) = (pat84(), format!("cio{}", xtask_harness::random_token(32)));
    kellnr.add_user("PAT", &pat);
    let path = sb.cargo_home().join("credentials.toml");
    let broken = format!("[registry]\ntoken = \"{token}\n");
    fs::write(&path, &broken).unwrap();
    sb.env("PAT", &pat);
    let run = sb.xtask(&["cargo-login-ci", "--no-check"]);
    run.assert_failure().assert_output_contains(&format!("{} is not valid TOML at line 2", path.display()));
    assert_eq!(fs::read_to_string(&path).unwrap(), broken);
    sb.xtask(&["cargo-logout"]).assert_failure().assert_output_contains("is not valid TOML at line 2");
    sb.xtask(&["doctor"]).assert_failure().assert_output_contains("is not valid TOML at line 2");
    scan(&sb, &[token, pat]);
}
