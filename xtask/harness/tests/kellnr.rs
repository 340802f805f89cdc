//! Tests against a real kellnr: they prove the harness works, and they document
//! how cargo behaves against an auth-required sparse registry (the facts the
//! xtask relies on). Run with `--nocapture` to see cargo's exact messages.
//!
//! They need the kellnr binary (see `xtask_harness::kellnr_bin`) and fail,
//! rather than skip, without it.

use std::path::Path;
use std::time::{Duration, Instant};

use xtask_harness::{Kellnr, Run, Sandbox, base64, basic_header};

/// Long like a real (84 character) PAT, so the scanner test is realistic.
const PAT: &str = "harnessPAT0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789ab";
const FEED: &str = "hyperlight_redist";
const FEED_ENV: &str = "HYPERLIGHT_REDIST";

fn sandbox() -> Sandbox {
    // These tests drive cargo only; the xtask binary is not needed.
    Sandbox::new(Path::new("/nonexistent/xtask"))
}

/// Prints a command's output under a marker, so `--nocapture` shows cargo's
/// exact words (the xtask matches some of them).
fn show(what: &str, run: &Run) {
    eprintln!("\n######## {what}\n$ {}\n{}\n{}########", run.command, run.stdout, run.stderr);
}

fn process_alive(pid: u32) -> bool {
    // A zombie would still have /proc/<pid>; Drop reaps, so gone means gone.
    Path::new(&format!("/proc/{pid}")).exists()
}

#[test]
fn kellnr_starts_answers_and_is_gone_after_drop() {
    let began = Instant::now();
    let k = Kellnr::start();
    eprintln!("kellnr ready in {:?} (first health answer {:?})", began.elapsed(), k.startup_time());
    let pid = k.pid();
    let port = k.port();
    assert!(process_alive(pid));
    assert_eq!(k.index_url(), format!("sparse+http://127.0.0.1:{port}/api/v1/crates/"));
    let r = k.get("/api/v1/health", None).unwrap();
    assert_eq!(r.status, 200);
    drop(k);
    assert!(!process_alive(pid), "kellnr pid {pid} still alive after drop");
    assert!(
        std::net::TcpStream::connect_timeout(
            &std::net::SocketAddr::from(([127, 0, 0, 1], port)),
            Duration::from_secs(1)
        )
        .is_err(),
        "port {port} still accepts connections"
    );
}

#[test]
fn kellnr_auth_forms() {
    let k = Kellnr::start();
    let config = "/api/v1/crates/config.json";
    let status = |auth: Option<&str>| k.get(config, auth).unwrap().status;

    // No auth: 401, which is what makes cargo retry with its token.
    let r = k.get(config, None).unwrap();
    assert_eq!(r.status, 401, "{}", r.text());
    eprintln!("WWW-Authenticate on 401: {:?}", r.header("WWW-Authenticate"));

    // The admin token, bare and as Bearer; the admin password as Basic.
    assert_eq!(status(Some(k.admin_token())), 200);
    assert_eq!(status(Some(&format!("Bearer {}", k.admin_token()))), 200);
    assert_eq!(status(Some(&basic_header("admin", k.admin_password()))), 200);

    // The Azure PAT form only after the `PAT` user exists.
    let pat_header = basic_header("PAT", PAT);
    let before = status(Some(&pat_header));
    assert_ne!(before, 200);
    k.add_user("PAT", PAT);
    assert_eq!(status(Some(&pat_header)), 200);
    assert_eq!(pat_header, format!("Basic {}", base64(format!("PAT:{PAT}").as_bytes())));

    // Wrong credentials: measured, not 200.
    let wrong_basic = status(Some(&basic_header("PAT", "wrong-pat-value")));
    let wrong_token = status(Some("not-a-token-at-all"));
    eprintln!(
        "config.json status: no auth 401; unknown PAT user {before}; wrong Basic password \
         {wrong_basic}; unknown bare token {wrong_token}"
    );
    assert!(matches!(wrong_basic, 401 | 403));
    assert!(matches!(wrong_token, 401 | 403));

    // The config names the same origin and requires auth.
    let body = k.get(config, Some(k.admin_token())).unwrap().text();
    eprintln!("config.json: {body}");
    assert!(body.contains(&format!("127.0.0.1:{}", k.port())), "{body}");
    assert!(body.contains("\"auth-required\":true"), "{body}");

    assert_eq!(k.index_entry("no-such-crate"), None);
}

/// The real flow the xtask automates: `cargo login` with the Basic PAT header
/// on stdin, then publish, then use the crate from another crate.
#[test]
fn cargo_login_publish_and_consume_through_kellnr() {
    let k = Kellnr::start();
    k.add_user("PAT", PAT);
    let mut sb = sandbox();
    sb.feed(FEED, &k);
    // Auth-required registries need an explicit credential provider.
    sb.env(&format!("CARGO_REGISTRIES_{FEED_ENV}_CREDENTIAL_PROVIDER"), "cargo:token");
    let root = sb.root().to_path_buf();

    let header = basic_header("PAT", PAT);
    let r = sb.cargo_stdin(&root, &["login", "--registry", FEED], &format!("{header}\n"));
    show("cargo login (good token)", &r);
    r.assert_success();
    let creds = std::fs::read_to_string(sb.cargo_home().join("credentials.toml")).unwrap();
    assert!(creds.contains(&header), "credentials.toml: {creds}");

    let demo = sb.scratch_crate("harness-demo", "");
    let r = sb.cargo(&demo, &["publish", "--registry", FEED]);
    show("cargo publish (good token)", &r);
    r.assert_success();
    let entry = k.index_entry("harness-demo").expect("published crate in index");
    assert!(entry.contains("\"vers\":\"0.1.0\""), "{entry}");
    let file = k.crate_file("harness-demo", "0.1.0").expect("the published .crate");
    assert_eq!(file[..2], [0x1f, 0x8b], "a .crate is gzip");
    assert_eq!(k.crate_file("harness-demo", "9.9.9"), None);

    let again = sb.cargo(&demo, &["publish", "--registry", FEED]);
    show("cargo publish (same version again)", &again);
    again.assert_failure().assert_output_contains("already exists on `hyperlight_redist` index");

    let consumer = sb.scratch_crate(
        "consumer",
        "harness-demo = { version = \"=0.1.0\", registry = \"hyperlight_redist\" }",
    );
    let r = sb.cargo(&consumer, &["fetch"]);
    show("cargo fetch of a consumer (good token)", &r);
    r.assert_success();
    let r = sb.cargo(&root, &["info", "harness-demo", "--registry", FEED]);
    show("cargo info (good token)", &r);
    r.assert_success();

    let r = sb.cargo(&root, &["logout", "--registry", FEED]);
    show("cargo logout", &r);
    r.assert_success();
    let r = sb.cargo(&root, &["logout", "--registry", FEED]);
    show("cargo logout (nothing stored)", &r);
    r.assert_success();

    assert!(sb.assert_no_secret(&[PAT]) > 0);
}

/// Cargo's messages for the failures the xtask must explain to its users.
#[test]
fn cargo_failure_messages() {
    let k = Kellnr::start();
    k.add_user("PAT", PAT);
    let mut sb = sandbox();
    sb.feed(FEED, &k);
    let root = sb.root().to_path_buf();
    let consumer =
        sb.scratch_crate("consumer", "no-such-crate = { version = \"1\", registry = \"hyperlight_redist\" }");

    // 1. No credential provider configured at all.
    let r = sb.cargo(&consumer, &["generate-lockfile"]);
    show("no credential provider configured", &r);
    r.assert_failure().assert_output_contains("authenticated registries require a credential-provider");
    // `cargo login` checks that too (it reads config.json first), and fails.
    let good = format!("{}\n", basic_header("PAT", PAT));
    let r = sb.cargo_stdin(&root, &["login", "--registry", FEED], &good);
    show("cargo login, no credential provider configured", &r);
    r.assert_failure().assert_output_contains("authenticated registries require a credential-provider");

    // From here on: a global provider list, as Azure's docs recommend.
    std::fs::write(
        sb.cargo_home().join("config.toml"),
        "[registry]\nglobal-credential-providers = [\"cargo:token\"]\n",
    )
    .unwrap();

    // 2. No token stored.
    let r = sb.cargo(&consumer, &["generate-lockfile"]);
    show("no token (generate-lockfile)", &r);
    r.assert_failure().assert_output_contains("no token found for `hyperlight_redist`");
    let r = sb.cargo(&root, &["info", "harness-demo", "--registry", FEED]);
    show("no token (cargo info)", &r);
    r.assert_failure();

    // An empty line on stdin is refused.
    let r = sb.cargo_stdin(&root, &["login", "--registry", FEED], "\n");
    show("cargo login, empty token", &r);
    r.assert_failure().assert_output_contains("please provide a non-empty token");

    // 3. Wrong token: `cargo login` does not check it, later commands fail.
    let wrong = basic_header("PAT", "wrong-pat-value-0123456789");
    sb.cargo_stdin(&root, &["login", "--registry", FEED], &format!("{wrong}\n")).assert_success();
    let r = sb.cargo(&consumer, &["generate-lockfile"]);
    show("token rejected (generate-lockfile)", &r);
    r.assert_failure().assert_output_contains("token rejected for `hyperlight_redist`");
    let demo = sb.scratch_crate("harness-demo", "");
    let r = sb.cargo(&demo, &["publish", "--registry", FEED, "--no-verify"]);
    show("token rejected (publish)", &r);
    r.assert_failure().assert_output_contains("token rejected for `hyperlight_redist`");

    // 4. A good token, but the crate does not exist.
    sb.cargo_stdin(&root, &["login", "--registry", FEED], &good).assert_success();
    let r = sb.cargo(&consumer, &["generate-lockfile"]);
    show("unknown crate (generate-lockfile)", &r);
    r.assert_failure().assert_output_contains("no matching package named `no-such-crate` found");
    let r = sb.cargo(&root, &["info", "no-such-crate", "--registry", FEED]);
    show("unknown crate (cargo info)", &r);
    r.assert_failure().assert_output_contains("could not find `no-such-crate` in registry");

    // 5. Registry unreachable: a server that was there and is gone.
    let port = k.port();
    drop(k);
    sb.env(
        &format!("CARGO_REGISTRIES_{FEED_ENV}_INDEX"),
        &format!("sparse+http://127.0.0.1:{port}/api/v1/crates/"),
    );
    let r = sb.cargo(&consumer, &["generate-lockfile"]);
    show("unreachable (generate-lockfile)", &r);
    r.assert_failure().assert_output_contains("download of config.json failed");
    let r = sb.cargo(&root, &["info", "no-such-crate", "--registry", FEED]);
    show("unreachable (cargo info)", &r);
    r.assert_failure().assert_output_contains("Could not connect to server");
    // `cargo login` reads the registry's config.json (never checking the
    // token): from the index cache when an earlier authenticated read stored
    // it, so here, with a warm cache, it works offline...
    let r = sb.cargo_stdin(&root, &["login", "--registry", FEED], &good);
    show("cargo login, registry unreachable, warm index cache", &r);
    r.assert_success();
    // ...but from the server with a cold cache (a fresh CARGO_HOME, as on CI):
    // then an unreachable registry fails the login.
    let mut cold = sandbox();
    cold.env(
        &format!("CARGO_REGISTRIES_{FEED_ENV}_INDEX"),
        &format!("sparse+http://127.0.0.1:{port}/api/v1/crates/"),
    );
    cold.env(&format!("CARGO_REGISTRIES_{FEED_ENV}_CREDENTIAL_PROVIDER"), "cargo:token");
    let cold_root = cold.root().to_path_buf();
    let r = cold.cargo_stdin(&cold_root, &["login", "--registry", FEED], &good);
    show("cargo login, registry unreachable, cold index cache", &r);
    r.assert_failure().assert_output_contains("download of config.json failed");
    assert!(cold.assert_no_secret(&[PAT]) > 0);

    assert!(sb.assert_no_secret(&[PAT]) > 0);
}

/// Two feeds on one server: the harness gives the second an alias URL, since
/// cargo refuses two registries with the same index URL.
#[test]
fn two_feeds_share_one_server() {
    let k = Kellnr::start();
    let mut sb = sandbox();
    sb.feed("hyperlight_redist", &k);
    sb.feed("hyperlight_packages", &k);
    assert_eq!(sb.feed_index("hyperlight_redist"), Some(k.index_url().as_str()));
    assert_eq!(sb.feed_index("hyperlight_packages"), Some(k.index_url_alias().as_str()));
    std::fs::write(
        sb.cargo_home().join("config.toml"),
        "[registry]\nglobal-credential-providers = [\"cargo:token\"]\n",
    )
    .unwrap();
    let root = sb.root().to_path_buf();
    let token = k.admin_token().to_string();
    for feed in ["hyperlight_redist", "hyperlight_packages"] {
        sb.cargo_stdin(&root, &["login", "--registry", feed], &format!("{token}\n")).assert_success();
    }
    let demo = sb.scratch_crate("harness-two", "");
    let r = sb.cargo(&demo, &["publish", "--registry", "hyperlight_packages", "--no-verify"]);
    show("publish through the alias URL", &r);
    r.assert_success();
    let consumer = sb.scratch_crate(
        "consumer",
        "harness-two = { version = \"0.1.0\", registry = \"hyperlight_packages\" }",
    );
    sb.cargo(&consumer, &["generate-lockfile"]).assert_success();
    assert!(k.index_entry("harness-two").is_some());
}
