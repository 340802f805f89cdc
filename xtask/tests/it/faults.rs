//! Feeds and tools that misbehave (issue 10): a feed answering 403, an HTML error
//! page, a server echoing the `Authorization` header, a feed or an az that never
//! answers. The feeds are [`FaultServer`]s on 127.0.0.1 answering the real cargo;
//! az is a stand-in. Each test ends with the whole-output secret scan.

use std::time::{Duration, Instant};

use xtask_harness::http::{Fault, FaultServer};
use xtask_harness::{Sandbox, base64, basic_header};

use crate::login::{PACKAGES, REDIST, pat84};

/// A sandbox whose feeds are these servers, with az and gh stand-ins that are
/// logged in and say nothing: doctor asks them, and must never reach the machine's
/// own.
fn sandbox_with_feeds(feeds: &[(&str, &FaultServer)]) -> Sandbox {
    let mut sb = Sandbox::new(crate::xtask_bin());
    for (name, server) in feeds {
        sb.env(&format!("CARGO_REGISTRIES_{}_INDEX", name.to_uppercase()), &server.index_url());
    }
    sb.install_standin("az", "exit 0\n");
    sb.install_standin("gh", "exit 0\n");
    sb
}

fn pat_forms(pat: &str) -> Vec<String> {
    vec![pat.to_owned(), base64(format!("PAT:{pat}").as_bytes()), basic_header("PAT", pat)]
}

fn assert_no_pat(sb: &Sandbox, pat: &str) {
    let forms = pat_forms(pat);
    let forms: Vec<&str> = forms.iter().map(String::as_str).collect();
    assert!(sb.assert_no_secret(&forms) > 0);
}

/// Defect 7: a 403 to an authenticated request is a token without the needed
/// scope, named as such with the scope to ask for, not "unreachable".
#[test]
fn a_feed_answering_403_says_the_token_lacks_a_scope() {
    let server = FaultServer::start(Fault::Answer {
        status: 403,
        content_type: "text/plain",
        body: "You lack Packaging read permission for the feed".into(),
    });
    let mut sb = sandbox_with_feeds(&[(REDIST, &server)]);
    let pat = pat84();
    sb.env("PAT", &pat);

    let run = sb.xtask(&["cargo-login-ci", "--registry", REDIST]);
    run.assert_failure();
    run.assert_output_contains(&format!(
        "check: {REDIST}: insufficient permissions: the token lacks a scope (HTTP 403: You lack Packaging read"
    ));
    run.assert_output_contains("use a PAT with the Packaging read scope");
    assert!(!run.stderr.contains("unreachable"), "{}", run.stderr);

    let run = sb.xtask(&["doctor", "--registry", REDIST]);
    assert_eq!(run.status.code(), Some(1), "{}", run.combined());
    run.assert_output_contains("access:              insufficient permissions");
    assert!(!run.stdout.contains("unreachable"), "{}", run.stdout);
    assert!(server.requests() >= 2, "cargo never asked the fault server");
    assert_no_pat(&sb, &pat);
}

/// An HTML error page (a proxy's, IIS's) is its status and title, not the page.
#[test]
fn an_html_error_page_is_reported_as_its_status_and_one_line() {
    let server = FaultServer::start(Fault::Answer {
        status: 500,
        content_type: "text/html",
        body: "<!DOCTYPE html>\n<html><head><title>500 - Internal server error.</title></head>\n\
               <body><h1>Server Error</h1>\n<p>There is a problem with the resource.</p>\n</body>\n</html>\n"
            .into(),
    });
    let mut sb = sandbox_with_feeds(&[(REDIST, &server)]);
    let pat = pat84();
    sb.env("PAT", &pat);

    let run = sb.xtask(&["cargo-login-ci", "--registry", REDIST]);
    run.assert_failure();
    run.assert_output_contains(&format!(
        "check: {REDIST}: the feed failed (HTTP 500: 500 - Internal server error.)"
    ));
    let run2 = sb.xtask(&["doctor", "--registry", REDIST]);
    run2.assert_output_contains(
        "access:              the feed failed (HTTP 500: 500 - Internal server error.)",
    );
    for output in [run.combined(), run2.combined()] {
        assert!(!output.contains("</html>") && !output.contains("<title>"), "{output}");
    }
    assert_no_pat(&sb, &pat);
}

/// Defect 4: a server that echoes the `Authorization` header into its error body
/// (403 and 401) puts no form of the PAT on screen, through cargo-login-ci's check
/// or doctor, which does not know the token and reads it from where cargo does.
#[test]
fn an_echoed_authorization_header_is_never_shown() {
    let forbidden = FaultServer::start(Fault::EchoAuthorization { status: 403 });
    let rejected = FaultServer::start(Fault::EchoAuthorization { status: 401 });
    let mut sb = sandbox_with_feeds(&[(REDIST, &forbidden), (PACKAGES, &rejected)]);
    let pat = pat84();
    sb.env("PAT", &pat);

    let login = sb.xtask(&["cargo-login-ci"]);
    let doctor = sb.xtask(&["doctor"]);
    // The token handed over in cargo's environment only (--github-env).
    let env_file = sb.root().join("github-env");
    std::fs::write(&env_file, "").unwrap();
    sb.env("GITHUB_ACTIONS", "true");
    sb.env("GITHUB_ENV", env_file.to_str().unwrap());
    sb.xtask(&["cargo-login-ci", "--github-env"]).assert_failure();
    sb.env_remove("GITHUB_ACTIONS");
    // The masks are the one place the PAT may be printed: GitHub hides them.
    let unmasked =
        sb.all_output().lines().filter(|l| !l.starts_with("::add-mask::")).collect::<Vec<_>>().join("\n");
    let forms = pat_forms(&pat);
    let forms: Vec<&str> = forms.iter().map(String::as_str).collect();
    if let Some(found) = xtask_harness::find_secret(&unmasked, &forms) {
        panic!("{found}:\n{unmasked}");
    }
    assert!(forbidden.requests() >= 2 && rejected.requests() >= 2);

    login.assert_failure();
    login.assert_output_contains(&format!("check: {REDIST}: insufficient permissions"));
    login.assert_output_contains(&format!("check: {PACKAGES}: token rejected"));
    login.assert_output_contains("you sent Authorization: <redacted>");
    assert_eq!(doctor.status.code(), Some(1), "{}", doctor.combined());
    doctor.assert_output_contains("you sent Authorization: <redacted>");
}

/// Doctor never shows the arguments of a command provider, global or per feed,
/// nor the token such a provider gave cargo when a feed echoes it back.
#[test]
fn doctor_hides_provider_arguments_and_their_tokens() {
    let server = FaultServer::start(Fault::EchoAuthorization { status: 403 });
    let mut sb = sandbox_with_feeds(&[(REDIST, &server)]);
    let token = "s3cr3t-provider-token-0123456789";
    let argument = "k3y-s3cr3t-argument-0123456789";
    std::fs::write(
        sb.cargo_home().join("config.toml"),
        format!(
            "[registry]\nglobal-credential-providers = [\"/opt/my-provider --key {argument}\", \"cargo:token\", \
             \"cargo:token-from-stdout echo Bearer {token}\"]\n"
        ),
    )
    .unwrap();

    let global = sb.xtask(&["doctor", "--registry", REDIST]);
    assert!(server.requests() >= 2, "cargo never sent the provider's token");
    // The per-feed setting, from the environment.
    sb.env(
        &format!("CARGO_REGISTRIES_{}_CREDENTIAL_PROVIDER", REDIST.to_uppercase()),
        &format!("cargo:token-from-stdout echo Bearer {token}"),
    );
    let per_feed = sb.xtask(&["doctor", "--registry", REDIST]);
    // A feed echoing the credential alone: only the token's known forms give it away.
    let bare = FaultServer::start(Fault::EchoCredential { status: 403 });
    sb.env(&format!("CARGO_REGISTRIES_{}_INDEX", REDIST.to_uppercase()), &bare.index_url());
    sb.xtask(&["doctor", "--registry", REDIST]).assert_failure();
    assert!(bare.requests() >= 2, "cargo never sent the provider's token");
    assert!(sb.assert_no_secret(&[token, argument]) > 0);

    assert_eq!(global.status.code(), Some(1), "{}", global.combined());
    global.assert_output_contains(
        "credential provider: /opt/my-provider (2 argument(s) not shown) cargo:token \
         cargo:token-from-stdout echo (2 argument(s) not shown)",
    );
    global.assert_output_contains("insufficient permissions");
    per_feed.assert_output_contains(
        "credential provider: cargo:token-from-stdout echo (2 argument(s) not shown)",
    );
}

/// Defect 8, az: an az that never answers stops cargo-login and doctor within the
/// time limit, with a line saying what they wait for and an error naming az and
/// how to allow more time.
#[test]
fn a_hanging_az_is_stopped_at_the_time_limit() {
    let mut sb = Sandbox::new(crate::xtask_bin());
    sb.set_timeout(Duration::from_secs(60));
    // Real az can hang on a token refresh over a dead network: it sleeps here.
    sb.install_recording_standin("az", "sleep 30\n");
    sb.env("XTASK_TIMEOUT_SECS", "3");

    let began = Instant::now();
    let run = sb.xtask(&["cargo-login", "--registry", REDIST]);
    let took = began.elapsed();
    run.assert_failure();
    assert!(took < Duration::from_secs(15), "cargo-login took {took:?}: {}", run.combined());
    run.assert_output_contains("waiting for `az account get-access-token`");
    run.assert_output_contains("`az account get-access-token` gave no result within 3 s and was stopped");
    run.assert_output_contains("XTASK_TIMEOUT_SECS=<seconds>");

    // doctor: the az line says so, the rest of the report still comes.
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    sb.env(
        &format!("CARGO_REGISTRIES_{}_INDEX", REDIST.to_uppercase()),
        &format!("sparse+http://127.0.0.1:{closed}/index/"),
    );
    sb.install_standin("gh", "exit 0\n");
    let began = Instant::now();
    let run = sb.xtask(&["doctor", "--registry", REDIST]);
    assert!(began.elapsed() < Duration::from_secs(15), "doctor took {:?}", began.elapsed());
    run.assert_output_contains(
        "(cannot tell whether it is logged in: `az account show` gave no result within 3 s",
    );
    run.assert_output_contains("gh: ");
    sb.assert_no_secret(&["stand-in-access-token"]);
}

/// Defect 8, feeds: a feed that accepts the connection and never answers ends its
/// check within the time limit (cargo itself gives up: it is told to), and two such
/// feeds are checked at the same time, so two cost about as much as one.
#[test]
fn hanging_feeds_are_checked_concurrently_within_the_time_limit() {
    let first = FaultServer::start(Fault::Hang);
    let second = FaultServer::start(Fault::Hang);
    let mut sb = sandbox_with_feeds(&[(REDIST, &first), (PACKAGES, &second)]);
    sb.set_timeout(Duration::from_secs(90));
    let pat = pat84();
    sb.env("PAT", &pat);
    sb.env("XTASK_TIMEOUT_SECS", "12");
    // Setup and login first, so that the timed runs below are the checks alone.
    sb.xtask(&["cargo-login-ci", "--no-check"]).assert_success();
    // Cargo's own message (it is told to give up), or the runner's backstop on a
    // machine too loaded for cargo to keep its time.
    let timed_out = |stdout: &str| {
        stdout.matches("access:              unreachable ([28] Timeout was reached").count()
            + stdout.matches("access:              no answer within 12 s").count()
    };

    let began = Instant::now();
    let run = sb.xtask(&["doctor", "--registry", REDIST]);
    let one = began.elapsed();
    assert_eq!(run.status.code(), Some(1), "{}", run.combined());
    assert_eq!(timed_out(&run.stdout), 1, "{}", run.stdout);
    assert!(one < Duration::from_secs(16), "one hanging feed took {one:?}");

    let began = Instant::now();
    let run = sb.xtask(&["doctor"]);
    let two = began.elapsed();
    assert_eq!(run.status.code(), Some(1), "{}", run.combined());
    assert_eq!(timed_out(&run.stdout), 2, "{}", run.stdout);
    eprintln!("one hanging feed: {one:?}; two hanging feeds: {two:?}");
    assert!(two < one + one / 2, "two feeds took {two:?}, one took {one:?}: not concurrent");
    assert_no_pat(&sb, &pat);
}
