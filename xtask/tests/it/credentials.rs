//! Credentials end to end (issue 4): `rotate-pat`, `doctor` and token-free provider
//! mode, against a real kellnr with authentication required, the real cargo, and the
//! az and gh stand-ins of [`crate::standins`] (which say which real behaviour each
//! answer copies). Every test ends with the whole-output secret scan.

use std::fs;
use std::time::{SystemTime, UNIX_EPOCH};

use xtask_harness::http::{Fault, FaultServer};
use xtask_harness::{Call, Kellnr, Sandbox, base64, basic_header};

use crate::login::{PACKAGES, REDIST, closed_port, consumer_fetches, pat84, seed_crate, world};
use crate::standins::{
    AZURE_DEVOPS_RESOURCE, AzState, GhState, PAT_AUTHORIZATION_ID, az_rest_bodies, gh_secrets_stored_in,
    install_az, install_gh,
};

const ORG: &str = "HyperlightTest";
const REPO: &str = "hyperlight-dev/hyperlight";
/// How gh is told the repository: with its host, so GH_HOST cannot move it.
const HOST_REPO: &str = "github.com/hyperlight-dev/hyperlight";
const PAT_API: &str =
    "https://vssps.dev.azure.com/HyperlightTest/_apis/tokens/pats?api-version=7.1-preview.1";

/// The value after `flag` in a recorded argv.
fn arg<'a>(call: &'a Call, flag: &str) -> Option<&'a str> {
    call.argv.iter().position(|a| a == flag).and_then(|i| call.argv.get(i + 1)).map(String::as_str)
}

/// The `az rest` calls, in order.
fn rest_calls(sb: &Sandbox) -> Vec<Call> {
    sb.calls("az").into_iter().filter(|c| c.argv.first().map(String::as_str) == Some("rest")).collect()
}

/// A string field of a flat JSON object (the PAT request body).
fn json_field(json: &str, key: &str) -> Option<String> {
    let rest = &json[json.find(&format!("\"{key}\""))? + key.len() + 2..];
    let rest = rest.trim_start().strip_prefix(':')?.trim_start();
    if let Some(text) = rest.strip_prefix('"') {
        return Some(text[..text.find('"')?].to_owned());
    }
    Some(rest[..rest.find([',', '}'])?].trim().to_owned())
}

/// Seconds since 1970 of `YYYY-MM-DDTHH:MM:SS…`, written here independently of the
/// xtask's date code (Howard Hinnant's `days_from_civil`).
fn unix_time(iso: &str) -> i64 {
    let num = |range: std::ops::Range<usize>| -> i64 { iso[range].parse().unwrap() };
    let (y, m, d) = (num(0..4), num(5..7), num(8..10));
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    days * 86_400 + num(11..13) * 3600 + num(14..16) * 60 + num(17..19)
}

fn now() -> i64 {
    SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_secs() as i64
}

fn today() -> String {
    let out = std::process::Command::new("date").args(["-u", "+%Y-%m-%d"]).output().unwrap();
    String::from_utf8(out.stdout).unwrap().trim().to_owned()
}

/// The forms of a PAT a leak could take, for the scan.
fn pat_forms(pat: &str) -> [String; 3] {
    [pat.to_owned(), base64(format!("PAT:{pat}").as_bytes()), basic_header("PAT", pat)]
}

/// No credentials file of either name: nothing was stored.
fn assert_nothing_stored(sb: &Sandbox) {
    for name in ["credentials.toml", "credentials"] {
        let path = sb.cargo_home().join(name);
        assert!(
            !path.exists(),
            "{} exists:\n{}",
            path.display(),
            fs::read_to_string(&path).unwrap_or_default()
        );
    }
}

/// Done means 1: the PAT API request carries the right scope, name and expiry; the
/// check passes through cargo against both feeds; gh receives the right secret name
/// and repository, and the PAT on stdin only.
#[test]
fn rotate_pat_creates_checks_and_stores_the_pat() {
    let (kellnr, mut sb) = world();
    let pat = pat84();
    kellnr.add_user("PAT", &pat);
    install_az(&sb, &AzState { pat_to_create: Some(pat.clone()), ..AzState::default() });
    install_gh(&sb, &GhState::default());
    // A user's enterprise host for gh: the secret still goes to github.com; and az's
    // log file on: it must not get the PAT API's answer.
    sb.env("GH_HOST", "ghe.example.com");
    sb.env("AZURE_LOGGING_ENABLE_LOG_FILE", "yes");

    let before = now();
    let run = sb.xtask(&["rotate-pat", "--access", "read", "--organization", ORG, "--repo", REPO]);
    run.assert_success();
    let after = now();

    // The PAT API request: one POST with the Azure DevOps resource, the body in a file.
    let rest = rest_calls(&sb);
    assert_eq!(rest.len(), 1, "{rest:?}");
    assert_eq!(arg(&rest[0], "--method"), Some("post"));
    assert_eq!(arg(&rest[0], "--uri"), Some(PAT_API));
    assert_eq!(arg(&rest[0], "--resource"), Some(AZURE_DEVOPS_RESOURCE));
    assert!(arg(&rest[0], "--body").is_some_and(|b| b.starts_with('@')), "{:?}", rest[0].argv);
    let body = &az_rest_bodies(&sb)[0];
    assert_eq!(json_field(body, "scope").as_deref(), Some("vso.packaging"), "{body}");
    assert_eq!(json_field(body, "displayName"), Some(format!("hyperlight-cargo-read-{}", today())), "{body}");
    assert_eq!(json_field(body, "allOrgs").as_deref(), Some("false"), "{body}");
    let valid_to = unix_time(&json_field(body, "validTo").unwrap());
    assert!(
        (before + 90 * 86_400..=after + 90 * 86_400).contains(&valid_to),
        "validTo is not 90 days ahead: {body}"
    );

    // The check: a real request per feed through cargo, the PAT's header in the
    // child's environment only, never in a credentials file.
    let header = basic_header("PAT", &pat);
    for feed in [REDIST, PACKAGES] {
        let upper = feed.to_uppercase();
        let check = sb
            .calls("cargo")
            .into_iter()
            .find(|c| c.argv.iter().any(|a| a == feed))
            .unwrap_or_else(|| panic!("cargo was not asked about {feed}"));
        assert_eq!(check.env(&format!("CARGO_REGISTRIES_{upper}_TOKEN")), Some(header.as_str()));
        assert_eq!(check.env(&format!("CARGO_REGISTRIES_{upper}_CREDENTIAL_PROVIDER")), Some("cargo:token"));
        assert!(run.stderr.contains(&format!("check: {feed}: ok")), "{}", run.stderr);
    }
    assert_nothing_stored(&sb);

    // gh: logged in and able to read the repository's secrets (asked before the PAT was
    // made), then the secret of the repository, the PAT on stdin only.
    let gh = sb.calls("gh");
    assert_eq!(gh.len(), 3, "{gh:?}");
    assert_eq!(gh[0].argv, ["auth", "status", "--hostname", "github.com"]);
    assert_eq!(gh[1].argv, ["secret", "list", "--repo", HOST_REPO]);
    assert_eq!(gh[2].argv[..3], ["secret", "set", "ADO_CARGO_RO_PAT"]);
    assert_eq!(gh_secrets_stored_in(&sb), [format!("github.com/{REPO}\n")]);
    assert_eq!(gh[2].stdin, pat);
    assert!(run.stderr.contains("ADO_CARGO_RO_PAT of hyperlight-dev/hyperlight now holds the new PAT"));

    // Done means 4: no form of the PAT in any output or argv, nor in az's log file.
    let forms = pat_forms(&pat);
    assert!(sb.assert_no_secret(&[&forms[0], &forms[1], &forms[2]]) > 0);
    let az_log = fs::read_to_string(sb.home().join(".azure/logs/az.log")).unwrap_or_default();
    assert!(!az_log.contains(&pat), "the PAT is in az's log file:\n{az_log}");
}

/// Write access: scope `vso.packaging_write`, secret `ADO_CARGO_RW_PAT` unless
/// `--secret` says otherwise, name and lifetime from the flags, one feed only.
#[test]
fn rotate_pat_write_access_with_flags() {
    let (kellnr, mut sb) = world();
    let pat = pat84();
    kellnr.add_user("PAT", &pat);
    install_az(&sb, &AzState { pat_to_create: Some(pat.clone()), ..AzState::default() });
    install_gh(&sb, &GhState::default());

    let before = now();
    let run = sb.xtask(&[
        "rotate-pat",
        "--access",
        "write",
        "--days",
        "30",
        "--name",
        "ci \"publish\" token",
        "--organization",
        ORG,
        "--repo",
        REPO,
        "--registry",
        REDIST,
    ]);
    run.assert_success();
    let body = &az_rest_bodies(&sb)[0];
    assert_eq!(json_field(body, "scope").as_deref(), Some("vso.packaging_write"), "{body}");
    assert!(body.contains(r#""displayName": "ci \"publish\" token""#), "{body}");
    let valid_to = unix_time(&json_field(body, "validTo").unwrap());
    assert!((before + 30 * 86_400..=now() + 30 * 86_400).contains(&valid_to), "{body}");
    // Only the feed asked for was checked.
    assert!(run.stderr.contains(&format!("check: {REDIST}: ok")), "{}", run.stderr);
    assert!(!run.stderr.contains(&format!("check: {PACKAGES}")), "{}", run.stderr);
    let set = sb.calls("gh").pop().unwrap();
    assert_eq!(set.argv, ["secret", "set", "ADO_CARGO_RW_PAT", "--repo", HOST_REPO]);
    assert_eq!(set.stdin, pat);

    // --secret overrides the name.
    let run = sb.xtask(&[
        "rotate-pat",
        "--access",
        "write",
        "--organization",
        ORG,
        "--repo",
        REPO,
        "--secret",
        "MY_PAT",
        "--registry",
        REDIST,
    ]);
    run.assert_success();
    assert_eq!(sb.calls("gh").pop().unwrap().argv, ["secret", "set", "MY_PAT", "--repo", HOST_REPO]);
    let forms = pat_forms(&pat);
    sb.assert_no_secret(&[&forms[0], &forms[1], &forms[2]]);
}

/// Done means 1, the other half: a PAT the feed rejects never reaches gh, the error
/// names the feeds that rejected it, and the unused PAT is revoked again.
#[test]
fn rotate_pat_with_a_rejected_pat_never_calls_gh() {
    let (_kellnr, mut sb) = world();
    let pat = pat84(); // no kellnr user for it: the feeds answer 401
    install_az(&sb, &AzState { pat_to_create: Some(pat.clone()), ..AzState::default() });
    install_gh(&sb, &GhState::default());

    let run = sb.xtask(&["rotate-pat", "--access", "read", "--organization", ORG, "--repo", REPO]);
    run.assert_failure();
    assert_eq!(run.status.code(), Some(1));
    run.assert_output_contains(&format!(
        "the new PAT does not work for {REDIST} (token rejected), {PACKAGES} (token rejected)"
    ));
    run.assert_output_contains("ADO_CARGO_RO_PAT of hyperlight-dev/hyperlight was left unchanged");
    assert!(secret_sets(&sb).is_empty(), "gh stored it: {:?}", secret_sets(&sb));

    // The PAT this run made is revoked by its authorization id.
    let rest = rest_calls(&sb);
    assert_eq!(rest.len(), 2, "{rest:?}");
    assert_eq!(arg(&rest[1], "--method"), Some("delete"));
    let uri = arg(&rest[1], "--uri").unwrap();
    assert!(uri.starts_with("https://vssps.dev.azure.com/HyperlightTest/_apis/tokens/pats?"), "{uri}");
    assert!(uri.contains(&format!("authorizationId={PAT_AUTHORIZATION_ID}")), "{uri}");
    run.assert_output_contains("revoked the new PAT");

    // The same with a PAT from stdin: nothing created, so nothing revoked.
    let run = sb.xtask_stdin(&["rotate-pat", "--access", "read", "--pat-stdin", "--repo", REPO], &pat);
    run.assert_failure().assert_output_contains("token rejected");
    assert!(secret_sets(&sb).is_empty());
    assert_eq!(rest_calls(&sb).len(), 2);
    assert_nothing_stored(&sb);
    let forms = pat_forms(&pat);
    sb.assert_no_secret(&[&forms[0], &forms[1], &forms[2]]);
}

/// Ctrl-C while the new PAT is stored (gh hangs here) revokes it all the same and
/// exits 130, or says it is live when it cannot: the interrupt used to stop the
/// revocation at once, and the message saying the PAT was live went unprinted. The
/// secret may hold it (gh was stopped, not refused): the error says so.
#[cfg(unix)]
#[test]
fn ctrl_c_while_the_pat_is_stored_revokes_it() {
    let (kellnr, mut sb) = world();
    let pat = pat84();
    kellnr.add_user("PAT", &pat);
    sb.install_recording_standin("gh", "[ \"$1 $2\" = \"secret set\" ] && exec sleep 30\nexit 0\n");
    install_az(&sb, &AzState { pat_to_create: Some(pat.clone()), ..AzState::default() });
    let stderr = rotate_pat_interrupted_at_gh(&mut sb);
    assert!(stderr.contains("revoked the new PAT"), "{stderr}");
    // GitHub may have stored it before gh was stopped: the error says so.
    assert!(
        stderr.contains("ADO_CARGO_RO_PAT of hyperlight-dev/hyperlight may hold the new PAT"),
        "{stderr}"
    );
    let rest = rest_calls(&sb);
    assert_eq!(arg(rest.last().unwrap(), "--method"), Some("delete"), "{rest:?}");

    // A revocation that fails: the error saying the PAT is live is printed.
    fs::rename(sb.bin_dir().join("az"), sb.bin_dir().join("az-standin")).unwrap();
    let failing = "case \"$*\" in *\"--method delete\"*) echo 'ERROR: no network' >&2; exit 1 ;; esac\n";
    sb.install_standin("az", &format!("{failing}exec az-standin \"$@\"\n"));
    let stderr = rotate_pat_interrupted_at_gh(&mut sb);
    assert!(stderr.contains("is LIVE and stored nowhere, and revoking it failed"), "{stderr}");
    let forms = pat_forms(&pat);
    sb.assert_no_secret(&[&forms[0], &forms[1], &forms[2]]);
}

/// rotate-pat's stderr after a SIGINT once `gh secret set` runs; it exits 130.
#[cfg(unix)]
fn rotate_pat_interrupted_at_gh(sb: &mut Sandbox) -> String {
    use std::time::{Duration, Instant};
    let gh_calls = sb.calls("gh").len();
    let mut child =
        sb.spawn_xtask(&["rotate-pat", "--access", "read", "--organization", ORG, "--repo", REPO]);
    let started = Instant::now();
    while sb.calls("gh")[gh_calls..].iter().all(|c| c.argv.get(..2) != Some(&["secret".into(), "set".into()]))
    {
        assert!(started.elapsed() < Duration::from_secs(60), "gh secret set never ran");
        assert!(child.try_wait().unwrap().is_none(), "{:?}", sb.spawned_output("xtask rotate-pat"));
        std::thread::sleep(Duration::from_millis(50));
    }
    let kill = std::process::Command::new("kill").args(["-INT", &child.id().to_string()]).status();
    assert!(kill.unwrap().success());
    let status = crate::exit_after(&mut child, "SIGINT");
    let (_, stderr) = sb.spawned_output("xtask rotate-pat (interrupted)");
    assert_eq!(status.code(), Some(130), "{stderr}");
    stderr
}

/// `--pat-stdin`: a PAT made by hand, piped in; az is not needed at all.
#[test]
fn rotate_pat_from_stdin() {
    let (kellnr, mut sb) = world();
    let pat = pat84();
    kellnr.add_user("PAT", &pat);
    install_gh(&sb, &GhState::default());
    // No az stand-in: --pat-stdin must not need the Azure CLI.
    let run = sb.xtask_stdin(
        &["rotate-pat", "--access", "write", "--pat-stdin", "--repo", REPO],
        &format!("{pat}\n"),
    );
    run.assert_success()
        .assert_output_contains("ADO_CARGO_RW_PAT of hyperlight-dev/hyperlight now holds the PAT");
    assert!(sb.calls("az").is_empty());
    let set = sb.calls("gh").pop().unwrap();
    assert_eq!(set.argv, ["secret", "set", "ADO_CARGO_RW_PAT", "--repo", HOST_REPO]);
    assert_eq!(set.stdin, pat, "gh must get the PAT without the line break");

    // Empty stdin: a clear error, nothing stored (gh's read-only checks ran first).
    let run = sb.xtask(&["rotate-pat", "--access", "read", "--pat-stdin", "--repo", REPO]);
    run.assert_failure().assert_output_contains("the PAT on stdin (--pat-stdin) is empty");
    assert_eq!(secret_sets(&sb).len(), 1);
    // Flags that only make sense when creating a PAT are refused with it.
    let run = sb
        .xtask_stdin(&["rotate-pat", "--access", "read", "--pat-stdin", "--days", "3", "--repo", REPO], &pat);
    run.assert_failure().assert_output_contains("cannot be used with");
    let forms = pat_forms(&pat);
    sb.assert_no_secret(&[&forms[0], &forms[1], &forms[2]]);
}

/// Real gh (2.52+) fails `gh auth status` when any account on any host has a stale
/// token. One on another host is no reason to refuse: gh is asked about github.com only.
#[test]
fn rotate_pat_ignores_a_stale_gh_login_on_another_host() {
    let (kellnr, mut sb) = world();
    let pat = pat84();
    kellnr.add_user("PAT", &pat);
    let stale = "X Failed to log in to ghe.example.com account old (keyring)";
    sb.install_recording_standin(
        "gh",
        &format!(
            "case \"$*\" in\n  \"auth status --hostname github.com\") exit 0 ;;\n  \"auth status\"*) echo '{stale}' >&2; \
             exit 1 ;;\nesac\nexit 0\n"
        ),
    );
    let run = sb.xtask_stdin(&["rotate-pat", "--access", "read", "--pat-stdin", "--repo", REPO], &pat);
    run.assert_success().assert_output_contains("ADO_CARGO_RO_PAT of hyperlight-dev/hyperlight now holds");
    assert_eq!(secret_sets(&sb).len(), 1);
    assert_eq!(secret_sets(&sb)[0].stdin, pat);
}

/// Under GitHub Actions the new PAT is masked in every form before anything else
/// is printed.
#[test]
fn rotate_pat_masks_first_under_actions() {
    let (kellnr, mut sb) = world();
    let pat = pat84();
    kellnr.add_user("PAT", &pat);
    install_az(&sb, &AzState { pat_to_create: Some(pat.clone()), ..AzState::default() });
    install_gh(&sb, &GhState::default());
    sb.env("GITHUB_ACTIONS", "true");
    let run = sb.xtask(&["rotate-pat", "--access", "read", "--organization", ORG, "--repo", REPO]);
    run.assert_success();
    let [plain, credential, header] = pat_forms(&pat);
    let masks: Vec<&str> = run.stdout.lines().take(3).collect();
    assert_eq!(
        masks,
        [
            format!("::add-mask::{plain}"),
            format!("::add-mask::{header}"),
            format!("::add-mask::{credential}")
        ]
    );
    let rest: String = run.stdout.lines().skip(3).collect::<Vec<_>>().join("\n");
    assert!(find_none(&format!("{rest}\n{}", run.stderr), &pat), "{rest}\n{}", run.stderr);
}

fn find_none(text: &str, pat: &str) -> bool {
    xtask_harness::find_secret(text, &[pat]).is_none()
}

/// Azure DevOps refuses to create the PAT: its code and what to do are said, and with
/// no PAT made nothing is revoked and gh stores nothing.
#[test]
fn rotate_pat_refused_by_azure_says_why() {
    let (_kellnr, mut sb) = world();
    install_gh(&sb, &GhState::default());
    let refused =
        AzState { pat_to_create: Some(pat84()), pat_error: "invalidScope".into(), ..AzState::default() };
    install_az(&sb, &refused);
    let run = sb.xtask(&["rotate-pat", "--access", "read", "--organization", ORG, "--repo", REPO]);
    run.assert_failure().assert_output_contains(
        "Azure DevOps refused to create the PAT: invalidScope (your organisation does not allow this scope)",
    );
    assert!(!run.combined().contains("LIVE") && !run.combined().contains("revoke"), "{}", run.combined());
    assert_eq!(rest_calls(&sb).len(), 1, "{:?}", rest_calls(&sb));
    assert!(secret_sets(&sb).is_empty(), "gh stored it: {:?}", secret_sets(&sb));
}

/// What to run when az or gh is not logged in, bad input named clearly, and the
/// repository from the git remote when `--repo` is not given.
#[test]
fn rotate_pat_says_what_to_fix() {
    let (kellnr, mut sb) = world();
    let pat = pat84();
    kellnr.add_user("PAT", &pat);
    install_gh(&sb, &GhState::default());

    // az not logged in: nothing created, gh asked only what it can tell without changing anything.
    install_az(&sb, &AzState { logged_in: false, pat_to_create: Some(pat.clone()), ..AzState::default() });
    let run = sb.xtask(&["rotate-pat", "--access", "read", "--organization", ORG, "--repo", REPO]);
    run.assert_failure().assert_output_contains("run `az login`");
    assert!(secret_sets(&sb).is_empty());

    // gh not logged in, or unable to read the repository's secrets: found before any PAT is made.
    install_az(&sb, &AzState { pat_to_create: Some(pat.clone()), ..AzState::default() });
    let made = rest_calls(&sb).len();
    install_gh(&sb, &GhState { logged_in: false, ..GhState::default() });
    let run = sb.xtask(&["rotate-pat", "--access", "read", "--organization", ORG, "--repo", REPO]);
    run.assert_failure().assert_output_contains("run `gh auth login`");
    assert_eq!(rest_calls(&sb).len(), made, "a PAT was made: {}", run.stderr);
    install_gh(&sb, &GhState { may_read_secrets: false, ..GhState::default() });
    let run = sb.xtask(&["rotate-pat", "--access", "read", "--organization", ORG, "--repo", REPO]);
    run.assert_failure()
        .assert_output_contains("the GitHub CLI cannot read the secrets of hyperlight-dev/hyperlight");
    run.assert_output_contains("HTTP 403");
    assert_eq!(rest_calls(&sb).len(), made, "a PAT was made: {}", run.stderr);
    assert!(secret_sets(&sb).is_empty());
    install_gh(&sb, &GhState { logged_in: false, ..GhState::default() });
    // A refused GH_TOKEN beats gh's login, and `gh auth login` refuses to run while it is set.
    sb.env("GH_TOKEN", "ghp_refused0000000000000000000000000000");
    let run = sb.xtask(&["rotate-pat", "--access", "read", "--organization", ORG, "--repo", REPO]);
    run.assert_failure()
        .assert_output_contains("set a valid token in GH_TOKEN, or unset it and run `gh auth login`");
    sb.env_remove("GH_TOKEN");
    install_gh(&sb, &GhState::default());

    // Bad input: named, nothing created.
    let rest_before = rest_calls(&sb).len();
    for (args, message) in [
        (&["--repo", "not-a-repo", "--organization", ORG][..], "`not-a-repo` is not a GitHub repository"),
        (&["--repo", REPO, "--secret", "GITHUB_X", "--organization", ORG], "not a valid GitHub secret name"),
        (&["--repo", REPO, "--organization", "a/b"], "not an Azure DevOps organisation name"),
        // The kellnr index URLs name no Azure DevOps organisation.
        (&["--repo", REPO], "pass --organization ORG"),
        (&["--repo", REPO, "--organization", ORG, "--registry", "nope"], "unknown feed `nope`"),
        (&["--repo", REPO, "--organization", ORG, "--days", "400"], "400 is not in 1..=365"),
    ] {
        let mut full = vec!["rotate-pat", "--access", "read"];
        full.extend_from_slice(args);
        sb.xtask(&full).assert_failure().assert_output_contains(message);
    }
    sb.xtask(&["rotate-pat", "--access", "admin"]).assert_failure().assert_output_contains("read, write");
    assert_eq!(rest_calls(&sb).len(), rest_before);

    // gh or az missing: how to install it. PATH is the stand-in directory alone, so
    // a real gh or az on the machine running the tests cannot be reached.
    let bin = sb.bin_dir();
    sb.env("PATH", bin.to_str().unwrap());
    fs::rename(bin.join("gh"), sb.root().join("gh.away")).unwrap();
    let run = sb.xtask(&["rotate-pat", "--access", "read", "--organization", ORG, "--repo", REPO]);
    run.assert_failure().assert_output_contains("`gh` was not found on PATH: install the GitHub CLI");
    // A gh that needs nothing from PATH (the recording one runs mkdir), as gh is asked first.
    sb.install_standin("gh", "exit 0\n");
    fs::rename(bin.join("az"), sb.root().join("az.away")).unwrap();
    let run = sb.xtask(&["rotate-pat", "--access", "read", "--organization", ORG, "--repo", REPO]);
    run.assert_failure().assert_output_contains("`az` was not found on PATH: install the Azure CLI");
    fs::rename(sb.root().join("az.away"), bin.join("az")).unwrap();
    assert_eq!(rest_calls(&sb).len(), rest_before);
    // Back to the sandbox's own PATH: the stand-ins first, then the inherited one.
    sb.env("PATH", &format!("{}:{}", bin.display(), std::env::var("PATH").unwrap()));
    install_gh(&sb, &GhState::default());

    // No --repo: the repository of the git remote `origin` of the host (the sandbox's).
    let (host, root) = (sb.host(), sb.root().to_path_buf());
    sb.run("git", &["init", "-q", host.to_str().unwrap()], &root).assert_success();
    let set_origin = |sb: &mut Sandbox, url: &str| {
        let _ = sb.run("git", &["-C", host.to_str().unwrap(), "remote", "remove", "origin"], &root);
        sb.run("git", &["-C", host.to_str().unwrap(), "remote", "add", "origin", url], &root)
            .assert_success();
    };
    set_origin(&mut sb, "https://x-access-token:ghs_notreal@github.com/octo-org/octo-repo.git");
    let run = sb.xtask(&["rotate-pat", "--access", "read", "--organization", ORG]);
    run.assert_success();
    assert_eq!(
        sb.calls("gh").pop().unwrap().argv,
        ["secret", "set", "ADO_CARGO_RO_PAT", "--repo", "github.com/octo-org/octo-repo"]
    );
    set_origin(&mut sb, "https://u:ghs_notreal@gitlab.example/a/b.git");
    let run = sb.xtask(&["rotate-pat", "--access", "read", "--organization", ORG]);
    run.assert_failure().assert_output_contains("is not a GitHub repository: pass --repo OWNER/NAME");
    assert!(
        !run.combined().contains("ghs_notreal"),
        "credentials of the remote URL shown: {}",
        run.combined()
    );

    let forms = pat_forms(&pat);
    sb.assert_no_secret(&[&forms[0], &forms[1], &forms[2]]);
}

/// The URI that revokes the stand-in's PAT, as the DELETE must carry it.
fn revoke_uri() -> String {
    format!(
        "https://vssps.dev.azure.com/{ORG}/_apis/tokens/pats?authorizationId={PAT_AUTHORIZATION_ID}\
         &api-version=7.1-preview.1"
    )
}

/// The DELETE calls of `az rest`: revocations.
fn revocations(sb: &Sandbox) -> Vec<Call> {
    rest_calls(sb).into_iter().filter(|c| arg(c, "--method") == Some("delete")).collect()
}

/// The `gh secret set` calls.
fn secret_sets(sb: &Sandbox) -> Vec<Call> {
    sb.calls("gh").into_iter().filter(|c| c.argv.starts_with(&["secret".into(), "set".into()])).collect()
}

/// Issue 10, defect 5: the PAT API's answer is read by path (az's `--query`). With `--name
/// token` the old string scan took the display name's value for the `token` key, so
/// the run failed and left the new PAT live, unmentioned. Now the PAT is read and
/// stored, whatever the name holds (the escaped `"token": "x"` too); and when the
/// feeds then reject it, it is revoked by its authorizationId.
#[test]
fn rotate_pat_reads_the_pat_whatever_its_name() {
    let (kellnr, mut sb) = world();
    let pat = pat84();
    kellnr.add_user("PAT", &pat);
    install_az(&sb, &AzState { pat_to_create: Some(pat.clone()), ..AzState::default() });
    install_gh(&sb, &GhState::default());
    for name in ["token", r#"ci "token": "x", "authorizationId": "y""#] {
        let run = sb.xtask(&[
            "rotate-pat",
            "--access",
            "read",
            "--name",
            name,
            "--organization",
            ORG,
            "--repo",
            REPO,
        ]);
        run.assert_success().assert_output_contains(&format!("now holds the new PAT \"{name}\""));
        let sets = secret_sets(&sb);
        let set = sets.last().unwrap();
        assert_eq!(set.argv, ["secret", "set", "ADO_CARGO_RO_PAT", "--repo", HOST_REPO]);
        assert_eq!(set.stdin, pat, "gh did not get the PAT of the answer");
    }
    assert_eq!(secret_sets(&sb).len(), 2);
    assert!(revocations(&sb).is_empty(), "a stored PAT was revoked: {:?}", revocations(&sb));

    // The feeds reject the next one: revoked, by the id of the answer.
    let rejected = pat84();
    install_az(&sb, &AzState { pat_to_create: Some(rejected.clone()), ..AzState::default() });
    let run = sb.xtask(&[
        "rotate-pat",
        "--access",
        "read",
        "--name",
        "token",
        "--organization",
        ORG,
        "--repo",
        REPO,
    ]);
    run.assert_failure().assert_output_contains("the new PAT does not work for");
    run.assert_output_contains("revoked the new PAT \"token\" again");
    let revoked = revocations(&sb);
    assert_eq!(revoked.len(), 1, "{revoked:?}");
    assert_eq!(arg(&revoked[0], "--uri"), Some(revoke_uri().as_str()));
    assert_eq!(arg(&revoked[0], "--resource"), Some(AZURE_DEVOPS_RESOURCE));
    assert_eq!(secret_sets(&sb).len(), 2, "the rejected PAT reached gh");

    let (a, b) = (pat_forms(&pat), pat_forms(&rejected));
    assert!(sb.assert_no_secret(&[&a[0], &a[1], &a[2], &b[0], &b[1], &b[2]]) > 0);
}

/// An answer that is no JSON (a proxy's HTML page), which az prints as it came: not
/// taken for a refusal, so the run says the PAT may exist and where to look, and
/// stores and revokes nothing.
#[test]
fn rotate_pat_with_an_answer_that_is_not_json_says_the_pat_may_exist() {
    let mut sb = Sandbox::new(crate::xtask_bin());
    let state = AzState { pat_to_create: Some(pat84()), pat_answer_not_json: true, ..AzState::default() };
    install_az(&sb, &state);
    install_gh(&sb, &GhState::default());
    let run = sb.xtask(&[
        "rotate-pat",
        "--access",
        "read",
        "--name",
        "ci-read",
        "--organization",
        ORG,
        "--repo",
        REPO,
    ]);
    run.assert_failure();
    for says in [
        "the PAT request is not the PAT API's (not JSON)",
        "may have created the PAT \"ci-read\" of HyperlightTest all the same",
        "https://dev.azure.com/HyperlightTest/_usersSettings/tokens",
    ] {
        assert!(run.stderr.contains(says), "{says}: {}", run.stderr);
    }
    assert!(!run.stderr.contains("refused"), "{}", run.stderr);
    assert_eq!(rest_calls(&sb).len(), 1, "{:?}", rest_calls(&sb));
    assert!(secret_sets(&sb).is_empty());
}

/// An az stopped by the time limit while the PAT request was under way (it was sent;
/// the answer is lost): the run says the PAT may exist and where to look, as for an
/// unreadable answer. A refused request (az's own error) says nothing of the kind.
#[test]
fn rotate_pat_stopped_while_creating_says_the_pat_may_exist() {
    let mut sb = Sandbox::new(crate::xtask_bin());
    install_az(&sb, &AzState { pat_to_create: Some(pat84()), ..AzState::default() });
    install_gh(&sb, &GhState::default());
    fs::rename(sb.bin_dir().join("az"), sb.bin_dir().join("az-standin")).unwrap();
    let hang = "case \"$*\" in *\"--method post\"*) az-standin \"$@\" >/dev/null; exec sleep 30 ;; esac\n";
    sb.install_standin("az", &format!("{hang}exec az-standin \"$@\"\n"));
    sb.env("XTASK_TIMEOUT_SECS", "2");
    let args = ["rotate-pat", "--access", "read", "--name", "ci-read", "--organization", ORG, "--repo", REPO];
    let run = sb.xtask(&args);
    run.assert_failure().assert_output_contains("gave no result within 2 s");
    run.assert_output_contains("may have created the PAT \"ci-read\" of HyperlightTest all the same");
    assert_eq!(rest_calls(&sb).len(), 1, "{:?}", rest_calls(&sb));
    assert!(secret_sets(&sb).is_empty());

    // A Ctrl-C while az asks: the same, and exit code 130.
    #[cfg(unix)]
    {
        sb.env_remove("XTASK_TIMEOUT_SECS");
        let mut child = sb.spawn_xtask(&args);
        while rest_calls(&sb).len() < 2 {
            assert!(child.try_wait().unwrap().is_none(), "{:?}", sb.spawned_output("xtask rotate-pat"));
            std::thread::sleep(std::time::Duration::from_millis(50));
        }
        let kill = std::process::Command::new("kill").args(["-INT", &child.id().to_string()]).status();
        assert!(kill.unwrap().success());
        let status = crate::exit_after(&mut child, "SIGINT");
        let (_, stderr) = sb.spawned_output("xtask rotate-pat (interrupted)");
        assert_eq!(status.code(), Some(130), "{stderr}");
        assert!(stderr.contains("may have created the PAT \"ci-read\""), "{stderr}");
    }

    install_az(&sb, &AzState::default()); // az answers 401: nothing was made
    let run = sb.xtask(&args);
    run.assert_failure().assert_output_contains("TF400813");
    assert!(!run.stderr.contains("may have created"), "{}", run.stderr);
}

/// A failure after the PAT exists, with no authorizationId to revoke it by: the run
/// fails and says plainly that the PAT is live, which one, and where to revoke it
/// (also as the job's error annotation), instead of sending a DELETE with an empty id.
#[test]
fn rotate_pat_without_an_authorization_id_says_the_pat_is_live() {
    let pat = pat84();
    let state = AzState {
        pat_to_create: Some(pat.clone()),
        pat_answer_without_authorization_id: true,
        ..AzState::default()
    };
    let args = ["rotate-pat", "--access", "read", "--name", "ci-read", "--organization", ORG, "--repo", REPO];
    // The run stops before the feed check: no registry needed.
    let mut sb = Sandbox::new(crate::xtask_bin());
    install_az(&sb, &state);
    install_gh(&sb, &GhState::default());
    let run = sb.xtask(&args);
    run.assert_failure();
    for says in [
        "holds no patToken.authorizationId",
        "the new PAT \"ci-read\" of HyperlightTest is LIVE and stored nowhere",
        "revoke it at https://dev.azure.com/HyperlightTest/_usersSettings/tokens",
    ] {
        assert!(run.stderr.contains(says), "{says}: {}", run.stderr);
    }
    assert_eq!(rest_calls(&sb).len(), 1, "{:?}", rest_calls(&sb));
    assert!(secret_sets(&sb).is_empty());
    let forms = pat_forms(&pat);
    assert!(sb.assert_no_secret(&[&forms[0], &forms[1], &forms[2]]) > 0);

    // Under Actions: masked first, since it was read, and the job's error says it.
    let mut sb = Sandbox::new(crate::xtask_bin());
    install_az(&sb, &state);
    install_gh(&sb, &GhState::default());
    sb.env("GITHUB_ACTIONS", "true");
    let run = sb.xtask(&args);
    run.assert_failure();
    assert_eq!(run.stdout.lines().next(), Some(format!("::add-mask::{pat}").as_str()));
    assert!(
        run.stdout.lines().any(|l| l.starts_with("::error::") && l.contains("is LIVE and stored nowhere")),
        "no error annotation: {}",
        run.stdout
    );
    let unmasked: String =
        run.stdout.lines().filter(|l| !l.starts_with("::add-mask::")).collect::<Vec<_>>().join("\n");
    assert!(find_none(&format!("{unmasked}\n{}", run.stderr), &pat), "{}", run.combined());
}

/// gh failing to store the PAT (an account without the right to edit secrets): the
/// new PAT is revoked. When revoking fails too, the run says the PAT is live and
/// gives both ways to revoke it: the tokens page and the exact `az rest` line.
#[test]
fn rotate_pat_revokes_what_gh_could_not_store() {
    let (kellnr, mut sb) = world();
    let pat = pat84();
    kellnr.add_user("PAT", &pat);
    install_az(&sb, &AzState { pat_to_create: Some(pat.clone()), ..AzState::default() });
    install_gh(&sb, &GhState { may_set_secrets: false, ..GhState::default() });
    let run = sb.xtask(&["rotate-pat", "--access", "read", "--organization", ORG, "--repo", REPO]);
    run.assert_failure().assert_output_contains("HTTP 403: Resource not accessible by integration");
    run.assert_output_contains("revoked the new PAT");
    assert_eq!(secret_sets(&sb).len(), 1);
    let revoked = revocations(&sb);
    assert_eq!(revoked.len(), 1, "{revoked:?}");
    assert_eq!(arg(&revoked[0], "--uri"), Some(revoke_uri().as_str()));

    // Revoking fails as well (az signed out in between).
    let az = sb.bin_dir().join("az");
    let script = fs::read_to_string(&az).unwrap();
    // The real az, signed out between the two calls: the DELETE fails with its
    // not-logged-in message.
    let script = script.replacen(
        "case \"$method $uri\" in",
        "case \"$method\" in delete) echo \"ERROR: Please run 'az login' to setup account.\" >&2; exit 1 ;; esac\n    case \"$method $uri\" in",
        1,
    );
    fs::write(&az, script).unwrap();
    let run = sb.xtask(&["rotate-pat", "--access", "read", "--organization", ORG, "--repo", REPO]);
    run.assert_failure();
    assert!(!run.stderr.contains("revoked the new PAT"), "{}", run.stderr);
    for says in [
        "is LIVE and stored nowhere, and revoking it failed",
        "Please run 'az login'",
        "Revoke it at https://dev.azure.com/HyperlightTest/_usersSettings/tokens, or run:",
        &format!("  az rest --method delete --uri \"{}\" --resource {AZURE_DEVOPS_RESOURCE}", revoke_uri()),
    ] {
        assert!(run.stderr.contains(says), "{says}: {}", run.stderr);
    }
    let forms = pat_forms(&pat);
    assert!(sb.assert_no_secret(&[&forms[0], &forms[1], &forms[2]]) > 0);
}

/// Write access: a created PAT whose answer lacks `vso.packaging_write` is refused
/// (before the feed check, which only reads) and revoked. A PAT from stdin cannot be
/// checked for it without publishing: it is stored, with a plain warning before, and
/// a `::warning::` annotation under Actions.
#[test]
fn rotate_pat_write_access_is_checked_or_said_unchecked() {
    let (kellnr, mut sb) = world();
    let pat = pat84();
    kellnr.add_user("PAT", &pat); // it would pass the read check: only the scope is wrong
    install_az(
        &sb,
        &AzState {
            pat_to_create: Some(pat.clone()),
            pat_scope_answered: Some("vso.packaging".into()),
            ..AzState::default()
        },
    );
    install_gh(&sb, &GhState::default());
    let run = sb.xtask(&["rotate-pat", "--access", "write", "--organization", ORG, "--repo", REPO]);
    run.assert_failure().assert_output_contains(
        "Azure DevOps created the PAT with scope `vso.packaging`, which lacks vso.packaging_write",
    );
    run.assert_output_contains("revoked the new PAT");
    assert_eq!(json_field(&az_rest_bodies(&sb)[0], "scope").as_deref(), Some("vso.packaging_write"));
    let revoked = revocations(&sb);
    assert_eq!(revoked.len(), 1, "{revoked:?}");
    assert_eq!(arg(&revoked[0], "--uri"), Some(revoke_uri().as_str()));
    assert!(secret_sets(&sb).is_empty());
    // The same answer satisfies read access.
    sb.xtask(&["rotate-pat", "--access", "read", "--organization", ORG, "--repo", REPO]).assert_success();

    let run = sb.xtask_stdin(&["rotate-pat", "--access", "write", "--pat-stdin", "--repo", REPO], &pat);
    run.assert_success();
    let warning =
        run.stderr.find("warning: write access was NOT verified").unwrap_or_else(|| panic!("{}", run.stderr));
    let stored = run.stderr.find(
        "ADO_CARGO_RW_PAT of hyperlight-dev/hyperlight now holds the PAT from stdin (write access not verified)",
    );
    assert!(stored.is_some_and(|s| s > warning), "not stored after the warning: {}", run.stderr);
    let set = secret_sets(&sb).pop().unwrap();
    assert_eq!(set.argv, ["secret", "set", "ADO_CARGO_RW_PAT", "--repo", HOST_REPO]);
    assert_eq!(set.stdin, pat);
    // Read access is what the feed check proves: no warning there.
    let run = sb.xtask_stdin(&["rotate-pat", "--access", "read", "--pat-stdin", "--repo", REPO], &pat);
    run.assert_success();
    assert!(!run.combined().contains("NOT verified"), "{}", run.combined());
    let forms = pat_forms(&pat);
    assert!(sb.assert_no_secret(&[&forms[0], &forms[1], &forms[2]]) > 0);

    // Under Actions the warning is also an annotation on the run.
    sb.env("GITHUB_ACTIONS", "true");
    let run = sb.xtask_stdin(&["rotate-pat", "--access", "write", "--pat-stdin", "--repo", REPO], &pat);
    run.assert_success();
    assert_eq!(run.stdout.lines().next(), Some(format!("::add-mask::{pat}").as_str()), "masked first");
    assert!(
        run.stdout.lines().any(|l| l.starts_with("::warning::write access was NOT verified")),
        "{}",
        run.stdout
    );
    let unmasked: String =
        run.stdout.lines().filter(|l| !l.starts_with("::add-mask::")).collect::<Vec<_>>().join("\n");
    assert!(find_none(&format!("{unmasked}\n{}", run.stderr), &pat), "{}", run.combined());
}

/// A value shorter than any PAT (Azure's have 52 or 84 characters) is refused by
/// its source, before `::add-mask::`, which would otherwise hide every occurrence
/// of, say, `a` in the job's log; the value itself is never shown.
#[test]
fn short_pats_are_refused_by_source_and_never_masked() {
    let mut sb = Sandbox::new(crate::xtask_bin());
    install_gh(&sb, &GhState::default());
    sb.env("GITHUB_ACTIONS", "true");
    let nineteen = "sh0rt-but-19-chars!";
    assert_eq!(nineteen.len(), 19);
    for value in ["a", "sh0rtpat-9x", nineteen] {
        sb.env("PAT", value);
        let run = sb.xtask(&["cargo-login-ci"]);
        run.assert_failure()
            .assert_output_contains("environment variable PAT is too short to be an Azure DevOps PAT");
        assert!(!run.stdout.contains("::add-mask::"), "{value}: {}", run.stdout);
        assert_nothing_stored(&sb);

        let run = sb.xtask_stdin(&["rotate-pat", "--access", "read", "--pat-stdin", "--repo", REPO], value);
        run.assert_failure()
            .assert_output_contains("the PAT on stdin (--pat-stdin) is too short to be an Azure DevOps PAT");
        assert!(!run.stdout.contains("::add-mask::"), "{value}: {}", run.stdout);
    }
    assert!(secret_sets(&sb).is_empty());
    // `a` is in every text; the longer values are in none.
    assert!(sb.assert_no_secret(&["sh0rtpat-9x", nineteen]) > 0);
}

/// Done means 2: doctor says ok for a logged-in feed (exit 0), token rejected for a
/// wrong token and unreachable for a closed port (exit 1), each with where the token
/// comes from; under Actions the failures are error annotations.
#[test]
fn doctor_reports_ok_rejected_and_unreachable() {
    let (kellnr, mut sb) = world();
    let pat = pat84();
    kellnr.add_user("PAT", &pat);
    install_az(&sb, &AzState::default());
    install_gh(&sb, &GhState { logged_in: false, ..GhState::default() });

    // Nothing set up yet: cargo refuses, exit 1, and what to run.
    let run = sb.xtask(&["doctor"]);
    assert_eq!(run.status.code(), Some(1), "{}", run.combined());
    run.assert_output_contains(&format!("cargo: 1.{}\n", cargo_minor()));
    run.assert_output_contains("access:              refused by cargo: no credential provider is configured");
    run.assert_output_contains("in global config:    no");
    run.assert_output_contains("run `cargo xtask setup`");
    // A CI job logs in with a PAT: az is said to be for the tasks that use it, as gh is.
    let az = run.stdout.lines().find(|l| l.starts_with("az: ")).unwrap_or_default();
    assert!(az.ends_with("; needed by cargo-login and rotate-pat only)"), "{}", run.stdout);
    // Set up but not logged in: no token.
    sb.xtask(&["setup"]).assert_success();
    let run = sb.xtask(&["doctor"]);
    assert_eq!(run.status.code(), Some(1), "{}", run.combined());
    assert_eq!(run.stdout.matches("access:              no token").count(), 2, "{}", run.stdout);
    assert_eq!(run.stdout.matches("token from:          none").count(), 2, "{}", run.stdout);
    run.assert_output_contains("run `cargo xtask cargo-login`");

    // Logged in with a good PAT: ok, from the credentials file.
    sb.env("PAT", &pat);
    sb.xtask(&["cargo-login-ci"]).assert_success();
    let run = sb.xtask(&["doctor"]);
    assert_eq!(run.status.code(), Some(0), "{}", run.combined());
    for feed in [REDIST, PACKAGES] {
        run.assert_output_contains(&format!(
            "{feed}:\n  index:               {}",
            sb.feed_index(feed).unwrap()
        ));
    }
    assert_eq!(run.stdout.matches("access:              ok").count(), 2, "{}", run.stdout);
    assert_eq!(run.stdout.matches("in global config:    yes").count(), 2, "{}", run.stdout);
    assert_eq!(run.stdout.matches("token from:          credentials file").count(), 2, "{}", run.stdout);
    run.assert_output_contains("credential provider: cargo:token (registry.global-credential-providers in ");
    run.assert_output_contains("cargo: 1.");
    run.assert_output_contains("(logged in; needed by cargo-login and rotate-pat only)"); // az
    run.assert_output_contains("not logged in: run `gh auth login`");
    run.assert_output_contains("doctor: every feed is ok");

    // A wrong token: rejected, exit 1, named per feed.
    let wrong = pat84();
    sb.env("PAT", &wrong);
    sb.xtask(&["cargo-login-ci", "--no-check"]).assert_success();
    let run = sb.xtask(&["doctor"]);
    assert_eq!(run.status.code(), Some(1), "{}", run.combined());
    assert_eq!(run.stdout.matches("access:              token rejected").count(), 2, "{}", run.stdout);
    run.assert_output_contains(&format!(
        "2 of 2 feed(s) failed: {REDIST} (token rejected), {PACKAGES} (token rejected)"
    ));

    // Under Actions the failures become annotations.
    sb.env("GITHUB_ACTIONS", "true");
    let run = sb.xtask(&["doctor", "--registry", REDIST]);
    assert_eq!(run.status.code(), Some(1));
    run.assert_output_contains(&format!("::error title=feed {REDIST}::token rejected: "));
    sb.env_remove("GITHUB_ACTIONS");

    // The token from the environment beats the stored one, and doctor says so.
    let upper = REDIST.to_uppercase();
    sb.env(&format!("CARGO_REGISTRIES_{upper}_TOKEN"), &basic_header("PAT", &pat));
    let run = sb.xtask(&["doctor", "--registry", REDIST]);
    assert_eq!(run.status.code(), Some(0), "{}", run.combined());
    run.assert_output_contains(&format!("token from:          environment (CARGO_REGISTRIES_{upper}_TOKEN)"));
    sb.env_remove(&format!("CARGO_REGISTRIES_{upper}_TOKEN"));

    // A feed on a closed port: unreachable, exit 1, even with cargo set offline
    // (`[net] offline`), where it answered from its cache and doctor said "ok".
    sb.env(
        &format!("CARGO_REGISTRIES_{upper}_INDEX"),
        &format!("sparse+http://127.0.0.1:{}/api/v1/crates/", closed_port()),
    );
    sb.env("CARGO_NET_OFFLINE", "true");
    let run = sb.xtask(&["doctor", "--registry", REDIST]);
    assert_eq!(run.status.code(), Some(1), "{}", run.combined());
    run.assert_output_contains("access:              unreachable (");
    run.assert_output_contains(&format!("1 of 1 feed(s) failed: {REDIST} (unreachable"));

    let (good, bad) = (pat_forms(&pat), pat_forms(&wrong));
    sb.assert_no_secret(&[&good[0], &good[1], &good[2], &bad[0], &bad[1], &bad[2]]);
}

/// Cargo 1.95 appends `CARGO_REGISTRY_GLOBAL_CREDENTIAL_PROVIDERS` to the files'
/// lists rather than replacing them; doctor showed the environment's alone.
#[test]
fn doctor_shows_the_environments_global_providers_after_the_files() {
    let (_kellnr, mut sb, secrets) = crate::login::logged_in_to(REDIST);
    let var = "CARGO_REGISTRY_GLOBAL_CREDENTIAL_PROVIDERS";
    sb.env(var, "cargo:token");
    let run = sb.xtask(&["doctor", "--registry", REDIST]);
    run.assert_success().assert_output_contains(&format!(
        "credential provider: cargo:token cargo:token (registry.global-credential-providers in {}, then {var})",
        sb.cargo_home().join("config.toml").display()
    ));
    let secrets: Vec<&str> = secrets.iter().map(String::as_str).collect();
    sb.assert_no_secret(&secrets);
}

/// `CARGO_REGISTRIES_<NAME>_CREDENTIAL_PROVIDER` set but empty: cargo 1.95 refuses
/// every use of the feed ("invalid length 0, expected at least one element"), while
/// doctor showed the config's provider as the one in use.
#[test]
fn doctor_names_an_empty_provider_variable_which_cargo_refuses() {
    let (_kellnr, mut sb, secrets) = crate::login::logged_in_to(REDIST);
    let var = format!("CARGO_REGISTRIES_{}_CREDENTIAL_PROVIDER", REDIST.to_uppercase());
    sb.env(&var, "");
    let run = sb.xtask(&["doctor", "--registry", REDIST]);
    run.assert_failure().assert_output_contains("invalid length 0");
    run.assert_output_contains(&format!("credential provider: none ({var} is set but empty: cargo refuses"));
    let secrets: Vec<&str> = secrets.iter().map(String::as_str).collect();
    sb.assert_no_secret(&secrets);
}

/// `CARGO_REGISTRIES_<NAME>_CREDENTIAL_PROVIDER` beats the config's provider (cargo
/// 1.95): provider mode, written there, is then never used, and the check's "no token"
/// said to log in again, which changed nothing. The variable is named.
#[test]
fn provider_mode_names_a_provider_in_the_environment_that_beats_it() {
    let kellnr = Kellnr::start();
    let mut sb = Sandbox::new(crate::xtask_bin());
    sb.feed(REDIST, &kellnr);
    install_az(&sb, &AzState { token: kellnr.admin_token().to_owned(), ..AzState::default() });
    let var = format!("CARGO_REGISTRIES_{}_CREDENTIAL_PROVIDER", REDIST.to_uppercase());
    sb.env(&var, "cargo:token");
    let run = sb.xtask(&["cargo-login", "--provider", "--registry", REDIST]);
    run.assert_failure().assert_output_contains(&format!("check: {REDIST}: no token"));
    run.assert_output_contains(&format!(
        "warning: {var} is set: cargo uses it instead of provider mode for {REDIST}"
    ));
    sb.assert_no_secret(&[kellnr.admin_token()]);
}

/// An environment variable that is not UTF-8 (here a secret of some other tool):
/// doctor reads the environment for tokens to redact, and std's `vars` panicked on it,
/// printing the value. Now such a value is skipped.
#[test]
fn doctor_survives_an_environment_value_that_is_not_utf8() {
    let mut sb = Sandbox::new(crate::xtask_bin());
    install_gh(&sb, &GhState::default());
    let xtask = xtask_harness::sh_quote(&crate::xtask_bin().to_string_lossy());
    let script = format!(
        "OTHER_SECRET=\"$(printf 'x\\377-s3cr3t-of-another-tool')\" exec {xtask} doctor --registry {REDIST}"
    );
    let run = sb.run("sh", &["-c", &script], &sb.host());
    assert_ne!(run.status.code(), Some(101), "doctor panicked:\n{}", run.combined());
    assert!(!run.combined().contains("s3cr3t-of-another-tool"), "{}", run.combined());
    run.assert_output_contains(&format!("{REDIST}:"));
}

/// Done means 3: provider mode. With no credentials file at all, a scratch crate
/// depending on a crate in the feed resolves through cargo, cargo having asked the
/// az stand-in for the token; cargo-logout removes the provider setting.
#[test]
fn provider_mode_logs_in_without_storing_a_token() {
    let kellnr = Kellnr::start();
    let mut sb = Sandbox::new(crate::xtask_bin());
    sb.feed(REDIST, &kellnr);
    seed_crate(&kellnr, REDIST, "provided-dep");
    // kellnr takes its admin token as `Bearer <token>`: the stand-in hands it out as
    // the Entra access token, as real az would hand out one Azure DevOps accepts.
    install_az(&sb, &AzState { token: kellnr.admin_token().to_owned(), ..AzState::default() });
    install_gh(&sb, &GhState::default()); // doctor asks gh too: never the machine's own

    let run = sb.xtask(&["cargo-login", "--provider", "--registry", REDIST]);
    run.assert_success().assert_output_contains(&format!("check: {REDIST}: ok"));
    assert_nothing_stored(&sb);

    // The global config: the feed's provider runs az by its full path, as an array.
    let config = fs::read_to_string(sb.cargo_home().join("config.toml")).unwrap();
    let doc: toml_edit::DocumentMut = config.parse().unwrap();
    let provider: Vec<&str> = doc["registries"][REDIST]["credential-provider"]
        .as_array()
        .unwrap_or_else(|| panic!("no credential-provider array:\n{config}"))
        .iter()
        .map(|v| v.as_str().unwrap())
        .collect();
    let az_path = sb.bin_dir().join("az");
    assert_eq!(
        provider,
        [
            "cargo:token-from-stdout",
            az_path.to_str().unwrap(),
            "account",
            "get-access-token",
            "--resource",
            AZURE_DEVOPS_RESOURCE,
            "--query",
            "join(' ', ['Bearer', accessToken])",
            "--output",
            "tsv"
        ]
    );

    // A crate outside the repo resolves and downloads through the feed; cargo itself
    // runs az for the token (the calls carry cargo's provider environment).
    let asked = |sb: &Sandbox| {
        sb.calls("az")
            .into_iter()
            .filter(|c| arg(c, "--output") == Some("tsv") && c.env("CARGO_REGISTRY_INDEX_URL").is_some())
            .count()
    };
    let before = asked(&sb);
    consumer_fetches(&mut sb, "provider-consumer", &[("provided-dep", REDIST)]).assert_success();
    assert!(asked(&sb) > before, "cargo did not ask az during the fetch: {:?}", sb.calls("az"));
    assert_nothing_stored(&sb);

    // doctor explains it.
    let run = sb.xtask(&["doctor", "--registry", REDIST]);
    assert_eq!(run.status.code(), Some(0), "{}", run.combined());
    run.assert_output_contains(&format!("token from:          provider command {}", az_path.display()));

    // Logged out of az: cargo's provider fails, and doctor says the feed fails.
    install_az(
        &sb,
        &AzState { logged_in: false, token: kellnr.admin_token().to_owned(), ..AzState::default() },
    );
    let run = sb.xtask(&["doctor", "--registry", REDIST]);
    assert_eq!(run.status.code(), Some(1), "{}", run.combined());
    install_az(&sb, &AzState { token: kellnr.admin_token().to_owned(), ..AzState::default() });

    // cargo-logout removes the provider setting (cargo logout itself refuses while it
    // is set); afterwards cargo has no token for the feed.
    sb.xtask(&["cargo-logout", "--registry", REDIST]).assert_success();
    let config = fs::read_to_string(sb.cargo_home().join("config.toml")).unwrap();
    let doc: toml_edit::DocumentMut = config.parse().unwrap();
    assert!(doc["registries"][REDIST].get("credential-provider").is_none(), "{config}");
    assert!(doc["registries"][REDIST].get("index").is_some(), "the feed itself must stay:\n{config}");
    assert_nothing_stored(&sb);
    let calls = sb.calls("az").len();
    consumer_fetches(&mut sb, "after-logout", &[("provided-dep", REDIST)]).assert_failure();
    assert_eq!(sb.calls("az").len(), calls, "cargo still asks az after logout");

    // Back to provider mode, then the stored-token login turns it off again.
    sb.xtask(&["cargo-login", "--provider", "--registry", REDIST]).assert_success();
    sb.xtask(&["cargo-login", "--registry", REDIST]).assert_success();
    let config = fs::read_to_string(sb.cargo_home().join("config.toml")).unwrap();
    assert!(!config.contains("token-from-stdout"), "{config}");

    assert!(sb.assert_no_secret(&[kellnr.admin_token()]) > 0);
    // Under Actions az's token is masked first: the access check's feed may echo it.
    sb.env("GITHUB_ACTIONS", "true");
    let run = sb.xtask(&["cargo-login", "--provider", "--registry", REDIST, "--no-check"]);
    let mask = format!("::add-mask::Bearer {}", kellnr.admin_token());
    assert_eq!(run.stdout.lines().next(), Some(mask.as_str()), "{}", run.combined());
    // The token the stored-token login left is gone: provider mode stores nothing.
    let credentials = fs::read_to_string(sb.cargo_home().join("credentials.toml")).unwrap_or_default();
    assert!(!credentials.contains(kellnr.admin_token()), "a stored token stayed in credentials.toml");
}

/// az on Windows ends its line with CRLF, and cargo before 1.98 keeps the CR of a
/// `cargo:token-from-stdout` line in the header it sends (`Bearer <token>\r`): provider
/// mode is refused before anything changes, and the stored token stays. Cargo 1.98
/// strips the CR (rust-lang/cargo#17072): there provider mode works.
#[test]
fn provider_mode_is_refused_when_az_prints_crlf() {
    let kellnr = Kellnr::start();
    let mut sb = Sandbox::new(crate::xtask_bin());
    sb.feed(REDIST, &kellnr);
    let state = AzState { token: kellnr.admin_token().to_owned(), ..AzState::default() };
    install_az(&sb, &state);
    sb.xtask(&["cargo-login", "--registry", REDIST, "--no-check"]).assert_success();
    let files =
        |sb: &Sandbox| ["config.toml", "credentials.toml"].map(|f| fs::read(sb.cargo_home().join(f)).ok());
    let before = files(&sb);
    install_az(&sb, &AzState { crlf: true, ..state });
    let run = sb.xtask(&["cargo-login", "--provider", "--registry", REDIST]);
    if cargo_minor() >= 98 {
        run.assert_success();
        assert!(sb.assert_no_secret(&[kellnr.admin_token()]) > 0);
        return;
    }
    run.assert_failure().assert_output_contains("az ends its output with CRLF");
    assert_eq!(files(&sb), before, "provider mode changed the files");
    assert!(sb.assert_no_secret(&[kellnr.admin_token()]) > 0);
}

/// The minor version of the cargo the sandboxes run.
fn cargo_minor() -> u32 {
    let cargo = std::env::var_os("CARGO").unwrap_or("cargo".into());
    let out = std::process::Command::new(cargo).arg("--version").output().unwrap();
    let text = String::from_utf8(out.stdout).unwrap();
    text.split(['.', ' ']).nth(2).and_then(|minor| minor.parse().ok()).unwrap()
}

/// OIDC: in `.github/workflows/oidc-example.yml`, `azure/login` with a federated
/// identity and then `cargo xtask cargo-login` is the whole CI login, with no PAT
/// secret. The workflow's own `cargo xtask` steps are run here, in order, as the
/// runner would after azure/login (the az stand-in logged in, `GITHUB_ACTIONS=true`).
#[test]
fn oidc_workflow_logs_in_with_azure_login_and_cargo_login_only() {
    let path = xtask_harness::repo_root().join(".github").join("workflows").join("oidc-example.yml");
    let workflow = fs::read_to_string(&path).unwrap();
    assert!(workflow.contains("id-token: write"), "azure/login needs the job's OIDC token");
    assert!(!workflow.contains("secrets."), "the OIDC workflow must use no secret at all");
    let lines: Vec<&str> = workflow.lines().map(str::trim).collect();
    let login = lines.iter().position(|l| l.starts_with("uses: azure/login@")).expect("no azure/login step");
    assert!(lines[login..].iter().any(|l| l.starts_with("client-id:")), "azure/login needs client-id");
    let steps: Vec<Vec<&str>> = lines[login..]
        .iter()
        .filter_map(|l| l.strip_prefix("run: "))
        .map(|cmd| {
            let words: Vec<&str> = cmd.split_whitespace().collect();
            assert_eq!(words[..2], ["cargo", "xtask"], "a step after azure/login is not a task: {cmd}");
            words[2..].to_vec()
        })
        .collect();
    assert_eq!(steps.first().map(Vec::as_slice), Some(&["cargo-login"][..]), "cargo-login must come first");

    let (kellnr, mut sb) = world();
    seed_crate(&kellnr, REDIST, "oidc-dep");
    install_az(&sb, &AzState { token: kellnr.admin_token().to_owned(), ..AzState::default() });
    install_gh(&sb, &GhState::default()); // doctor asks gh too: never the machine's own
    sb.env("GITHUB_ACTIONS", "true");
    for step in &steps {
        let run = sb.xtask(step);
        run.assert_success();
        // Masked on the runner, but printed nowhere else in the first place.
        let unmasked: String = run.stdout.lines().filter(|l| !l.starts_with("::add-mask::")).collect();
        assert!(
            find_none(&format!("{unmasked}\n{}", run.stderr), kellnr.admin_token()),
            "{}",
            run.combined()
        );
        if step[0] == "cargo-login" {
            let bearer = format!("Bearer {}", kellnr.admin_token());
            assert_eq!(run.stdout.lines().next(), Some(format!("::add-mask::{bearer}").as_str()));
        }
    }
    sb.env_remove("GITHUB_ACTIONS");
    // A later step of the job uses the feed with what cargo-login left.
    consumer_fetches(&mut sb, "oidc-consumer", &[("oidc-dep", REDIST)]).assert_success();
}

/// `--pat-stdin` from a terminal reads the PAT without echo. A real pseudo-terminal
/// comes from util-linux `script` (Linux), which keeps the terminal's echo on when its
/// own input is a pipe, as a terminal is by default: the PAT is typed as soon as the
/// prompt shows (echo is off before it is printed). A plain `head -n1` in the same
/// terminal first proves that echo would show what is typed.
#[cfg(target_os = "linux")]
#[test]
fn rotate_pat_reads_a_typed_pat_without_echo() {
    let (kellnr, mut sb) = world();
    let pat = pat84();
    kellnr.add_user("PAT", &pat);
    install_gh(&sb, &GhState::default());
    sb.env("TYPED", &pat);
    let root = sb.host();
    let log = sb.root().join("typescript");
    let in_terminal = |sb: &mut Sandbox, command: &str, prompt: &str| {
        let _ = fs::remove_file(&log);
        let feeder = format!(
            "while ! grep -q '{prompt}' \"$LOG\" 2>/dev/null; do sleep 0.05; done; printf '%s\\n' \"$TYPED\"; sleep 1"
        );
        let shell = format!("({feeder}) | script -q -f -e -c \"$COMMAND\" \"$LOG\"");
        sb.env("LOG", log.to_str().unwrap());
        sb.env("COMMAND", command);
        sb.run("sh", &["-c", &shell], &root)
    };

    // Control: with echo on, what is typed shows in the terminal's output.
    // (`sleep`: the session outlives the echo, so script passes it on before it ends.)
    let run = in_terminal(&mut sb, "echo type here; head -n1 >/dev/null; sleep 0.5", "type here");
    run.assert_success();
    assert!(
        run.stdout.contains(&pat),
        "the terminal does not echo, so this test proves nothing: {}",
        run.stdout
    );

    let command =
        format!("{} rotate-pat --access read --pat-stdin --repo {REPO}", crate::xtask_bin().display());
    let run = in_terminal(&mut sb, &command, "it is not shown");
    run.assert_success()
        .assert_output_contains("ADO_CARGO_RO_PAT of hyperlight-dev/hyperlight now holds the PAT");
    assert!(find_none(&run.combined(), &pat), "the typed PAT was echoed: {}", run.combined());
    assert_eq!(sb.calls("gh").pop().unwrap().stdin, pat);
    // The terminal's echo is on again afterwards (`stty echo` on the way out).
    let run = in_terminal(&mut sb, &format!("{command}; stty -a"), "it is not shown");
    run.assert_success();
    let flags: Vec<&str> = run.stdout.split([' ', ';', '\n', '\r']).collect();
    assert!(flags.contains(&"echo") && !flags.contains(&"-echo"), "echo stayed off: {}", run.stdout);
    assert!(find_none(&run.combined(), &pat), "the typed PAT was echoed: {}", run.combined());
}

/// Ctrl-C at the PAT prompt (typed into a real terminal: `script` gives the xtask a
/// pty, whose line discipline turns `^C` into SIGINT for the foreground group) ends
/// the task at once with exit code 130, stores nothing, and leaves the terminal's
/// echo on; it used to wait for Enter.
#[cfg(unix)]
#[test]
fn ctrl_c_at_the_pat_prompt_ends_the_task_with_echo_on() {
    let mut sb = Sandbox::new(crate::xtask_bin());
    install_gh(&sb, &GhState::default());
    let root = sb.host();
    let log = sb.root().join("typescript");
    // The xtask is timed inside the terminal: the pipeline itself lasts as long as
    // the input is held open. The ^C goes to the whole foreground group, the timing
    // shell too: `trap` keeps that shell alive to report, whichever shell `script`
    // starts (dash, unlike bash, ends at a SIGINT even when its child handled it).
    // A trapped signal is reset to default for the xtask, which sees a plain ^C.
    let command = format!(
        "trap true INT; s=$(date +%s%N); {} rotate-pat --access read --pat-stdin --repo {REPO}; \
         echo \"exit=$? took=$(( ($(date +%s%N) - s) / 1000000 ))ms\"; stty -a",
        crate::xtask_bin().display()
    );
    // Ctrl-C once the prompt shows; nothing else is typed, and the terminal's input
    // stays open for 12 s, so only the interrupt can end the read before that.
    let feeder = "while ! grep -q 'it is not shown' \"$LOG\" 2>/dev/null; do sleep 0.05; done; \
                  printf '\\003'; sleep 12";
    sb.env("LOG", log.to_str().unwrap());
    sb.env("COMMAND", &command);
    let run = sb.run("sh", &["-c", &format!("({feeder}) | script -q -f -e -c \"$COMMAND\" \"$LOG\"")], &root);
    let output = run.combined();
    assert!(output.contains("exit=130"), "Ctrl-C did not end the task with 130: {output}");
    assert!(output.contains("interrupted"), "{output}");
    let took: u64 = output
        .split("took=")
        .nth(1)
        .and_then(|rest| rest.split("ms").next())
        .and_then(|ms| ms.parse().ok())
        .unwrap_or_else(|| panic!("no timing in: {output}"));
    assert!(took < 8000, "the prompt waited for more input ({took} ms) instead of ending at Ctrl-C");
    let flags: Vec<&str> = run.stdout.split([' ', ';', '\n', '\r']).collect();
    assert!(flags.contains(&"echo") && !flags.contains(&"-echo"), "echo stayed off: {}", run.stdout);
    assert!(secret_sets(&sb).is_empty(), "gh stored a secret after Ctrl-C");
}

/// Done means 4: the whole-output secret scan over every credentials task, run one
/// after the other in one sandbox (create, stdin, rejected, doctor, provider mode,
/// logout, and each of them against a feed that echoes the token back): no form of
/// any PAT or token in any output or argv, 0 hits.
#[test]
fn every_credentials_task_leaks_nothing() {
    let (kellnr, mut sb) = world();
    let pat = pat84();
    let typed = pat84();
    let rejected = pat84();
    kellnr.add_user("PAT", &pat);
    install_gh(&sb, &GhState::default());
    let with_token = |pat: Option<&str>| AzState {
        token: kellnr.admin_token().to_owned(),
        pat_to_create: pat.map(str::to_owned),
        ..AzState::default()
    };

    install_az(&sb, &with_token(Some(&pat)));
    sb.xtask(&["rotate-pat", "--access", "write", "--organization", ORG, "--repo", REPO]).assert_success();
    install_az(&sb, &with_token(Some(&rejected)));
    sb.xtask(&["rotate-pat", "--access", "read", "--organization", ORG, "--repo", REPO]).assert_failure();
    sb.xtask_stdin(&["rotate-pat", "--access", "read", "--pat-stdin", "--repo", REPO], &typed)
        .assert_failure();
    // The paths of issue 10: a name that is a key of the answer, rejected and revoked;
    // an answer without an authorization id; a scope short of write; a PAT from stdin
    // stored under write with the warning; a PAT too short to be one.
    install_az(&sb, &with_token(Some(&rejected)));
    let named = ["rotate-pat", "--access", "read", "--name", "token", "--organization", ORG, "--repo", REPO];
    sb.xtask(&named).assert_failure();
    install_az(&sb, &AzState { pat_answer_without_authorization_id: true, ..with_token(Some(&rejected)) });
    sb.xtask(&named).assert_failure();
    install_az(&sb, &AzState { pat_scope_answered: Some("vso.packaging".into()), ..with_token(Some(&pat)) });
    sb.xtask(&["rotate-pat", "--access", "write", "--organization", ORG, "--repo", REPO]).assert_failure();
    sb.xtask_stdin(&["rotate-pat", "--access", "write", "--pat-stdin", "--repo", REPO], &pat)
        .assert_success();
    sb.xtask_stdin(&["rotate-pat", "--access", "read", "--pat-stdin", "--repo", REPO], &typed[..19])
        .assert_failure();
    install_az(&sb, &with_token(None));
    sb.xtask(&["doctor"]).assert_failure();
    sb.xtask(&["cargo-login", "--provider"]).assert_success();
    sb.xtask(&["doctor"]).assert_success();
    sb.xtask(&["cargo-logout"]).assert_success();
    sb.env("PAT", &rejected);
    sb.xtask(&["cargo-login-ci", "--no-check"]).assert_success();
    sb.xtask(&["doctor"]).assert_failure();
    sb.env("PAT", &pat);
    sb.xtask(&["cargo-login-ci"]).assert_success();
    sb.xtask(&["doctor"]).assert_success();

    // The fault paths (issue 10): a feed that echoes the `Authorization` header into
    // a 403 page, under every task that checks a feed, with each kind of token.
    let echo = FaultServer::start(Fault::EchoAuthorization { status: 403 });
    sb.env(&format!("CARGO_REGISTRIES_{}_INDEX", REDIST.to_uppercase()), &echo.index_url());
    sb.xtask(&["cargo-login-ci", "--registry", REDIST]).assert_failure();
    sb.xtask(&["doctor", "--registry", REDIST]).assert_failure();
    sb.xtask_stdin(
        &["rotate-pat", "--access", "read", "--pat-stdin", "--repo", REPO, "--registry", REDIST],
        &typed,
    )
    .assert_failure();
    install_az(&sb, &with_token(None));
    sb.xtask(&["cargo-login", "--registry", REDIST]).assert_failure();
    sb.xtask(&["doctor", "--registry", REDIST]).assert_failure();
    sb.xtask(&["cargo-login", "--provider", "--registry", REDIST]).assert_failure();
    sb.xtask(&["doctor", "--registry", REDIST]).assert_failure();
    assert!(echo.requests() >= 12, "the echoing feed saw {} requests", echo.requests());
    // A feed echoing the credential alone: only its known forms hide az's token.
    let bare = FaultServer::start(Fault::EchoCredential { status: 403 });
    sb.env(&format!("CARGO_REGISTRIES_{}_INDEX", REDIST.to_uppercase()), &bare.index_url());
    sb.xtask(&["cargo-login", "--registry", REDIST]).assert_failure();
    assert!(bare.requests() >= 2, "the bare-echoing feed saw {} requests", bare.requests());
    sb.xtask(&["cargo-logout", "--registry", REDIST]).assert_success();

    let mut secrets: Vec<String> =
        vec![kellnr.admin_token().to_owned(), format!("Bearer {}", kellnr.admin_token())];
    for p in [&pat, &typed, &rejected] {
        secrets.extend(pat_forms(p));
    }
    secrets.push(typed[..19].to_owned());
    let secrets: Vec<&str> = secrets.iter().map(String::as_str).collect();
    let scanned = sb.assert_no_secret(&secrets);
    assert!(scanned >= 20, "the scan saw only {scanned} texts");
    // gh got the PATs that passed, on stdin only.
    let stored: Vec<String> = secret_sets(&sb).into_iter().map(|c| c.stdin).collect();
    assert_eq!(stored, [pat.clone(), pat]);
}
