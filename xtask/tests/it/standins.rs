//! Stand-ins for the Azure CLI (`az`) and the GitHub CLI (`gh`), shared by every test
//! module. They are the only programs the tests fake: each is a small `sh` script
//! first on the sandbox's `PATH` that records its argv and stdin (through
//! [`Sandbox::install_recording_standin`]) and answers the way the real tool does
//! for the few commands the xtask runs. Each answer below names the real behaviour it
//! copies; anything else fails loudly so a new, unfaked command shows up in a test.

use std::fs;
use std::path::PathBuf;

use xtask_harness::Sandbox;

/// The Entra resource id of Azure DevOps, which every token request names.
pub const AZURE_DEVOPS_RESOURCE: &str = "499b84ac-1321-427f-aa17-267ca6975798";

/// What the `az` stand-in knows: whether it is logged in, the token it hands out, and
/// the PAT that `az rest` "creates".
#[derive(Clone, Debug)]
pub struct AzState {
    /// Logged in (as after `az login`). When false every command except `login` fails
    /// as real az does: "Please run 'az login' to setup account." on stderr, exit 1.
    /// `az login` through the stand-in logs it in; `az logout` out.
    pub logged_in: bool,
    /// The Entra access token `az account get-access-token` returns. Give it a token
    /// the test's kellnr accepts as `Bearer <token>` (its admin token) to log in.
    pub token: String,
    /// `expiresOn` of the token, in az's local-time format.
    pub expires_on: String,
    /// The PAT `az rest --method post ... _apis/tokens/pats` returns as
    /// `patToken.token`; `None` makes that call fail like a 401 from Azure DevOps.
    pub pat_to_create: Option<String>,
    /// `patTokenError` of the PAT API's answer: `"none"` on success; Azure DevOps
    /// answers e.g. `"invalidScope"` or `"accessDenied"` with no token.
    pub pat_error: String,
    /// Fault injection, not a behaviour seen from Azure DevOps (which answers with the
    /// scope asked for, or refuses): `patToken.scope` of the answer, instead of the
    /// requested one. Stands for any PAT whose access is not what was asked.
    pub pat_scope_answered: Option<String>,
    /// Fault injection, likewise: an answer whose `patToken` lacks `authorizationId`
    /// (an API change, a proxy in between), the id that revoking the PAT takes.
    pub pat_answer_without_authorization_id: bool,
    /// Fault injection: an answer that is no JSON (a proxy's HTML error page). Real
    /// `az rest` prints such an answer as it came, warns on stderr and exits 0.
    pub pat_answer_not_json: bool,
    /// az on Windows: Python's text-mode stdout ends each line with `\r\n`
    /// (Azure/azure-cli#33385), in `--output tsv` too.
    pub crlf: bool,
}

impl Default for AzState {
    fn default() -> Self {
        AzState {
            logged_in: true,
            token: "eyJ0eXAiOiJKV1QiLCJhbGciOiJSUzI1NiJ9.stand-in-access-token".into(),
            expires_on: "2031-01-01 12:00:00.000000".into(),
            pat_to_create: None,
            pat_error: "none".into(),
            pat_scope_answered: None,
            pat_answer_without_authorization_id: false,
            pat_answer_not_json: false,
            crlf: false,
        }
    }
}

/// The authorization id the PAT API's answer carries (what revocation takes).
pub const PAT_AUTHORIZATION_ID: &str = "4ff6de4e-ad3e-4b15-8f3f-000000000001";

/// Installs the `az` stand-in into `sb` with `state`. Calling it again replaces the
/// answers (and the logged-in state).
pub fn install_az(sb: &Sandbox, state: &AzState) {
    let dir = state_dir(sb);
    fs::create_dir_all(&dir).expect("create az stand-in state dir");
    let logged_in = dir.join("az-logged-in");
    if state.logged_in {
        fs::write(&logged_in, "").expect("write az login state");
    } else {
        let _ = fs::remove_file(&logged_in);
    }
    let body = format!(
        r#"STATE={state}
TOKEN={token}
EXPIRES={expires}
PAT={pat}
PAT_ERROR={pat_error}
SCOPE_ANSWERED={scope_answered}
WITHOUT_AUTHORIZATION_ID={without_authorization_id}
NOT_JSON={not_json}
EOL='{eol}'
not_logged_in() {{
  # Real az without a login (or with an expired one), for any command but `login`.
  echo "ERROR: Please run 'az login' to setup account." >&2
  exit 1
}}
# Arguments as `key=value` lines, so options can come in any order as with az.
opt() {{
  __want="$1"; shift
  while [ $# -gt 0 ]; do
    if [ "$1" = "$__want" ] && [ $# -gt 1 ]; then printf '%s' "$2"; return 0; fi
    shift
  done
  return 1
}}
# Real az's `--query` (JMESPath) with `--output tsv`, for the one query form the
# xtask sends: a multiselect list of field paths (`[a.b, c]`). The answer's fields
# are the variables `f_<path with _ for .>`, unset for null or missing. knack's TSV
# writer prints a list result one element per line, a null as `None`.
tsv_query() {{
  case "$1" in
    "["*"]") ;;
    *) echo "stand-in az: unsupported --query: $1" >&2; exit 2 ;;
  esac
  __list=${{1#[}}; __list=${{__list%]}}
  __ifs=$IFS; IFS=,
  for __path in $__list; do
    __path=$(printf '%s' "$__path" | tr -d ' ')
    case "$__path" in
      ""|*[!A-Za-z0-9_.]*) echo "stand-in az: unsupported --query: $1" >&2; exit 2 ;;
    esac
    eval "printf '%s$EOL' \"\${{f_$(printf '%s' "$__path" | tr . _)-None}}\""
  done
  IFS=$__ifs
}}
case "$1 $2" in
  "login "*)
    # Real `az login` opens a browser and prints the subscriptions as JSON.
    : > "$STATE/az-logged-in"
    echo '[{{"cloudName": "AzureCloud", "isDefault": true, "name": "Stand-in subscription", "state": "Enabled", "user": {{"name": "dev@example.com", "type": "user"}}}}]'
    exit 0 ;;
  "logout "*)
    rm -f "$STATE/az-logged-in"; exit 0 ;;
esac
[ -f "$STATE/az-logged-in" ] || not_logged_in
case "$1 $2" in
  "account show")
    # Real az prints nothing with `--output none`, else the default subscription as JSON.
    [ "$(opt --output "$@")" = none ] && exit 0
    cat <<EOF
{{
  "environmentName": "AzureCloud",
  "id": "00000000-0000-0000-0000-000000000001",
  "isDefault": true,
  "name": "Stand-in subscription",
  "state": "Enabled",
  "tenantId": "00000000-0000-0000-0000-000000000002",
  "user": {{
    "name": "dev@example.com",
    "type": "user"
  }}
}}
EOF
    exit 0 ;;
  "account get-access-token")
    resource=$(opt --resource "$@") || resource=""
    if [ "$resource" != "{resource}" ]; then
      echo "stand-in az: expected --resource {resource}, got '$resource'" >&2; exit 2
    fi
    query=$(opt --query "$@") || query=""
    output=$(opt --output "$@") || output=$(opt -o "$@") || output=json
    if [ "$query" = "join(' ', ['Bearer', accessToken])" ] && [ "$output" = tsv ]; then
      # Real az: the JMESPath result, as one tab-separated line.
      printf "Bearer %s$EOL" "$TOKEN"; exit 0
    fi
    if [ -n "$query" ] && [ "$output" = tsv ]; then
      f_accessToken=$TOKEN; f_expiresOn=$EXPIRES; f_tokenType=Bearer
      tsv_query "$query"; exit 0
    fi
    if [ -z "$query" ] && [ "$output" = json ]; then
      # Real az's JSON (az 2.60+ adds `expires_on`, a POSIX time).
      cat <<EOF
{{
  "accessToken": "$TOKEN",
  "expiresOn": "$EXPIRES",
  "expires_on": 1924992000,
  "subscription": "00000000-0000-0000-0000-000000000001",
  "tenant": "00000000-0000-0000-0000-000000000002",
  "tokenType": "Bearer"
}}
EOF
      exit 0
    fi
    echo "stand-in az: unsupported get-access-token form: $*" >&2; exit 2 ;;
  "rest "*)
    method=$(opt --method "$@") || method=$(opt -m "$@") || method=get
    uri=$(opt --uri "$@") || uri=$(opt -u "$@") || uri=""
    resource=$(opt --resource "$@") || resource=""
    body=$(opt --body "$@") || body=$(opt -b "$@") || body=""
    # Real az loads an argument value `@FILE` from that file: keep a copy, since
    # the caller may delete it as soon as az returns.
    case "$body" in
      @-) cat > "$STANDIN_RECORD/body" ;;
      @*) cat "${{body#@}}" > "$STANDIN_RECORD/body" 2>/dev/null || {{ echo "ERROR: file ${{body#@}} not found" >&2; exit 1; }} ;;
      *) printf '%s' "$body" > "$STANDIN_RECORD/body" ;;
    esac
    if [ "$resource" != "{resource}" ]; then
      # Real az rest only adds a token for ARM URLs by itself; for any other host
      # without --resource it sends none, and Azure DevOps answers 401.
      echo "ERROR: Unauthorized({{\"message\":\"TF400813: The user '' is not authorized to access this resource.\"}})" >&2
      exit 1
    fi
    case "$method $uri" in
      "post https://vssps.dev.azure.com/"*"/_apis/tokens/pats?api-version=7.1-preview.1"|"POST https://vssps.dev.azure.com/"*"/_apis/tokens/pats?api-version=7.1-preview.1")
        if [ -z "$PAT" ]; then
          echo "ERROR: Unauthorized({{\"message\":\"TF400813: The user is not authorized to access this resource.\"}})" >&2
          exit 1
        fi
        # The display name as the JSON string literal of the request, escapes and
        # all, so that the answer below carries it back as the API does.
        name=$(sed -n -E 's/.*"displayName" *: *"((\\.|[^"\\])*)".*/\1/p' "$STANDIN_RECORD/body")
        scope=$(sed -n 's/.*"scope" *: *"\([^"]*\)".*/\1/p' "$STANDIN_RECORD/body")
        valid_to=$(sed -n 's/.*"validTo" *: *"\([^"]*\)".*/\1/p' "$STANDIN_RECORD/body")
        query=$(opt --query "$@") || query=""
        output=$(opt --output "$@") || output=$(opt -o "$@") || output=json
        if [ "$NOT_JSON" = yes ]; then
          echo 'WARNING: Not a json response, outputting to stdout. For binary data suggest use "--output-file" to write to a file' >&2
          printf '<!DOCTYPE html>\n<html><body>Service Unavailable</body></html>\n'; exit 0
        fi
        f_patTokenError=$PAT_ERROR
        if [ "$PAT_ERROR" != none ]; then
          # The PAT lifecycle API: HTTP 200 with an error code and no token.
          [ -n "$query" ] && [ "$output" = tsv ] && {{ tsv_query "$query"; exit 0; }}
          printf '{{"patToken": null, "patTokenError": "%s"}}\n' "$PAT_ERROR"; exit 0
        fi
        [ -n "$SCOPE_ANSWERED" ] && scope=$SCOPE_ANSWERED
        authz_line='"authorizationId": "{authz}",'
        f_patToken_authorizationId='{authz}'
        [ "$WITHOUT_AUTHORIZATION_ID" = yes ] && authz_line='' && unset f_patToken_authorizationId
        f_patToken_token=$PAT; f_patToken_scope=$scope; f_patToken_validTo=$valid_to
        f_patToken_validFrom=2030-01-01T00:00:00Z
        # Real az with logging.enable_log_file (AZURE_LOGGING_ENABLE_LOG_FILE, which beats
        # the config file): knack's file handler takes DEBUG, and az rest logs the
        # "Response content:" at INFO (azure-cli core/util.py _log_response), the PAT too.
        case "$(printf '%s' "${{AZURE_LOGGING_ENABLE_LOG_FILE:-}}" | tr A-Z a-z)" in
          1|yes|true|on)
            mkdir -p "${{AZURE_CONFIG_DIR:-$HOME/.azure}}/logs"
            printf 'INFO : cli.azure.cli.core.util : Response content:\nINFO : cli.azure.cli.core.util : {{"patToken": {{"token": "%s"}}}}\n' \
              "$PAT" >> "${{AZURE_CONFIG_DIR:-$HOME/.azure}}/logs/az.log" ;;
        esac
        if [ -n "$query" ] && [ "$output" = tsv ]; then
          tsv_query "$query"; exit 0
        fi
        # The PAT lifecycle API's answer (PatTokenResult), as az prints it: keys
        # sorted, two-space indent (knack's JSON output), strings JSON-escaped.
        cat <<EOF
{{
  "patToken": {{
    $authz_line
    "displayName": "$name",
    "scope": "$scope",
    "targetAccounts": null,
    "token": "$PAT",
    "validFrom": "2030-01-01T00:00:00Z",
    "validTo": "$valid_to"
  }},
  "patTokenError": "none"
}}
EOF
        exit 0 ;;
      "delete https://vssps.dev.azure.com/"*"/_apis/tokens/pats?"*|"DELETE https://vssps.dev.azure.com/"*"/_apis/tokens/pats?"*)
        # Revocation: 204 No Content, and az prints nothing.
        exit 0 ;;
    esac
    echo "stand-in az: unsupported rest call: $method $uri" >&2; exit 2 ;;
esac
echo "stand-in az: unsupported command: $*" >&2
exit 2
"#,
        state = quote(&dir.to_string_lossy()),
        token = quote(&state.token),
        expires = quote(&state.expires_on),
        pat = quote(state.pat_to_create.as_deref().unwrap_or("")),
        pat_error = quote(&state.pat_error),
        scope_answered = quote(state.pat_scope_answered.as_deref().unwrap_or("")),
        without_authorization_id = if state.pat_answer_without_authorization_id { "yes" } else { "no" },
        not_json = if state.pat_answer_not_json { "yes" } else { "no" },
        eol = if state.crlf { "\\r\\n" } else { "\\n" },
        resource = AZURE_DEVOPS_RESOURCE,
        authz = PAT_AUTHORIZATION_ID,
    );
    sb.install_recording_standin("az", &body);
}

/// What the `gh` stand-in knows.
#[derive(Clone, Debug)]
pub struct GhState {
    /// Logged in (as after `gh auth login`). When false `gh auth status` and
    /// `gh secret set` fail as the real gh does.
    pub logged_in: bool,
    /// The account may edit the repository's secrets. When false `gh secret set`
    /// fails as real gh does for a token without that right: GitHub answers 403 to
    /// the request for the repository's public key, before any secret is sent.
    pub may_set_secrets: bool,
    /// The account may read the repository's secrets. When false `gh secret list`
    /// fails as real gh does: GitHub answers 403 to the list request.
    pub may_read_secrets: bool,
}

impl Default for GhState {
    fn default() -> Self {
        GhState { logged_in: true, may_set_secrets: true, may_read_secrets: true }
    }
}

/// Installs the `gh` stand-in into `sb`. `gh secret set NAME --repo R` reads the value
/// from stdin, as real gh does when `--body` is absent and stdin is not a terminal;
/// the recording keeps that stdin for [`Sandbox::calls`].
pub fn install_gh(sb: &Sandbox, state: &GhState) {
    let body = format!(
        r#"LOGGED_IN={logged_in}
MAY_SET={may_set}
MAY_READ={may_read}
not_logged_in() {{
  # Real gh without a login.
  echo "You are not logged into any GitHub hosts. To log in, run: gh auth login" >&2
  exit 1
}}
case "$1 $2" in
  "auth status")
    # Real gh takes GH_TOKEN, else GITHUB_TOKEN, over its stored login (go-gh auth
    # tokenForHost); LOGGED_IN=no stands for a token GitHub refuses. `gh auth login`
    # refuses to run while one is set (cli/cli pkg/cmd/auth/login).
    source=keyring; [ -n "$GITHUB_TOKEN" ] && source=GITHUB_TOKEN; [ -n "$GH_TOKEN" ] && source=GH_TOKEN
    if [ "$LOGGED_IN" != yes ] && [ "$source" != keyring ]; then
      printf 'github.com\n  X Failed to log in to github.com using token (%s)\n  - Active account: true\n  - The token in %s is invalid.\n' "$source" "$source" >&2
      exit 1
    fi
    [ "$LOGGED_IN" = yes ] || not_logged_in
    # Real gh prints the status to stderr and masks the token.
    echo "github.com" >&2
    echo "  ✓ Logged in to github.com account stand-in ($source)" >&2
    echo "  - Token: gho_************************************" >&2
    exit 0 ;;
  "secret list")
    [ "$LOGGED_IN" = yes ] || not_logged_in
    if [ "$MAY_READ" != yes ]; then
      echo "failed to get secrets: HTTP 403: Resource not accessible by integration (https://api.github.com/repos/${{4#github.com/}}/actions/secrets?per_page=100)" >&2
      exit 1
    fi
    printf 'ADO_CARGO_RO_PAT\t2025-01-01T00:00:00Z\n'
    exit 0 ;;
  "secret set")
    [ "$LOGGED_IN" = yes ] || not_logged_in
    name="$3"; repo=""
    shift 3
    while [ $# -gt 0 ]; do
      case "$1" in
        --repo|-R) repo="$2"; shift 2 ;;
        --body|-b) shift 2 ;;
        *) shift ;;
      esac
    done
    if [ -z "$repo" ]; then
      echo "stand-in gh: no --repo given (real gh would guess from the git remotes)" >&2; exit 2
    fi
    # Real gh reads --repo as [HOST/]OWNER/REPO; a bare OWNER/REPO is on GH_HOST's host
    # when set (cli/cli internal/ghrepo, go-gh auth.DefaultHost). The stand-in is logged in
    # to every host, as a user with an enterprise login too, so a wrong host goes unseen.
    case "$repo" in
      */*/*) host=${{repo%%/*}}; repo=${{repo#*/}} ;;
      *) host=${{GH_HOST:-github.com}} ;;
    esac
    printf '%s/%s\n' "$host" "$repo" > "$STANDIN_RECORD/stored-in"
    if [ "$MAY_SET" != yes ]; then
      echo "failed to fetch public key: HTTP 403: Resource not accessible by integration (https://api.github.com/repos/$repo/actions/secrets/public-key)" >&2
      exit 1
    fi
    echo "✓ Set Actions secret $name for $repo"
    exit 0 ;;
esac
echo "stand-in gh: unsupported command: $*" >&2
exit 2
"#,
        logged_in = if state.logged_in { "yes" } else { "no" },
        may_set = if state.may_set_secrets { "yes" } else { "no" },
        may_read = if state.may_read_secrets { "yes" } else { "no" },
    );
    sb.install_recording_standin("gh", &body);
}

/// Where each `gh secret set` call stored its secret, as `HOST/OWNER/REPO`.
pub fn gh_secrets_stored_in(sb: &Sandbox) -> Vec<String> {
    let mut records: Vec<(u64, PathBuf)> = fs::read_dir(sb.records_dir())
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| Some((e.file_name().to_string_lossy().strip_prefix("gh.")?.parse().ok()?, e.path())))
        .collect();
    records.sort();
    records.into_iter().filter_map(|(_, dir)| fs::read_to_string(dir.join("stored-in")).ok()).collect()
}

/// The request bodies of every `az rest` call, in order (from `--body TEXT`,
/// `--body @FILE` or `--body @-`): the stand-in keeps a copy, because the xtask may
/// delete its body file as soon as az returns.
pub fn az_rest_bodies(sb: &Sandbox) -> Vec<String> {
    let mut records: Vec<(u64, PathBuf)> = fs::read_dir(sb.records_dir())
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| {
            let name = e.file_name().to_string_lossy().into_owned();
            let n = name.strip_prefix("az.")?.parse().ok()?;
            Some((n, e.path()))
        })
        .collect();
    records.sort();
    records.into_iter().filter_map(|(_, dir)| fs::read_to_string(dir.join("body")).ok()).collect()
}

fn state_dir(sb: &Sandbox) -> PathBuf {
    sb.root().join("standin-state")
}

use xtask_harness::sh_quote as quote;

/// The stand-ins answer like the real tools for the forms the xtask uses.
#[test]
fn standins_answer_like_the_real_tools() {
    let mut sb = Sandbox::new(crate::xtask_bin());
    let dir = sb.root().to_path_buf();
    let state = AzState { pat_to_create: Some("pat-from-the-api-0123456789".into()), ..AzState::default() };
    install_az(&sb, &state);
    install_gh(&sb, &GhState::default());

    let r = sb.run(
        "az",
        &[
            "account",
            "get-access-token",
            "--resource",
            AZURE_DEVOPS_RESOURCE,
            "--query",
            "join(' ', ['Bearer', accessToken])",
            "--output",
            "tsv",
        ],
        &dir,
    );
    assert_eq!(r.assert_success().stdout, format!("Bearer {}\n", state.token));
    let r = sb.run(
        "az",
        &["account", "get-access-token", "--resource", AZURE_DEVOPS_RESOURCE, "--output", "json"],
        &dir,
    );
    assert!(r.assert_success().stdout.contains(&format!("\"accessToken\": \"{}\"", state.token)));
    // A multiselect list with `--output tsv`: one element per line, null as `None`.
    let r = sb.run(
        "az",
        &[
            "account",
            "get-access-token",
            "--resource",
            AZURE_DEVOPS_RESOURCE,
            "--query",
            "[accessToken, expiresOn, missing.field]",
            "--output",
            "tsv",
        ],
        &dir,
    );
    assert_eq!(r.assert_success().stdout, format!("{}\n{}\nNone\n", state.token, state.expires_on));
    sb.run("az", &["account", "show"], &dir).assert_success().assert_output_contains("\"user\"");
    let r = sb.run("az", &["account", "show", "--output", "none"], &dir);
    assert_eq!(r.assert_success().stdout, "");

    let body = dir.join("body.json");
    fs::write(&body, r#"{"displayName": "n", "scope": "vso.packaging", "validTo": "2031-01-01T00:00:00.000Z", "allOrgs": false}"#).unwrap();
    // The same request both times: the body file's contents change between them.
    let body_arg = format!("@{}", body.display());
    let post = [
        "rest",
        "--method",
        "post",
        "--uri",
        "https://vssps.dev.azure.com/Org/_apis/tokens/pats?api-version=7.1-preview.1",
        "--resource",
        AZURE_DEVOPS_RESOURCE,
        "--body",
        &body_arg,
    ];
    let r = sb.run("az", &post, &dir);
    r.assert_success().assert_output_contains("\"token\": \"pat-from-the-api-0123456789\"");
    r.assert_output_contains("\"validTo\": \"2031-01-01T00:00:00.000Z\"");
    let query = ["--query", "[patTokenError, patToken.authorizationId, patToken.token]", "--output", "tsv"];
    let r = sb.run("az", &[&post[..], &query[..]].concat(), &dir);
    let expected = format!("none\n{PAT_AUTHORIZATION_ID}\npat-from-the-api-0123456789\n");
    assert_eq!(r.assert_success().stdout, expected);
    fs::remove_file(&body).unwrap();
    assert_eq!(az_rest_bodies(&sb).len(), 2);
    assert!(az_rest_bodies(&sb)[0].contains("vso.packaging"));
    // The display name comes back as the request wrote it, escapes and all; the
    // fault knobs change the scope and drop the authorization id.
    install_az(
        &sb,
        &AzState {
            pat_scope_answered: Some("vso.other".into()),
            pat_answer_without_authorization_id: true,
            ..state.clone()
        },
    );
    fs::write(&body, r#"{"displayName": "a \"token\": \"x\" \\", "scope": "vso.packaging_write", "validTo": "2031-01-01T00:00:00Z", "allOrgs": false}"#).unwrap();
    let r = sb.run("az", &post, &dir);
    r.assert_success().assert_output_contains(r#""displayName": "a \"token\": \"x\" \\","#);
    r.assert_output_contains(r#""scope": "vso.other","#);
    assert!(!r.stdout.contains("authorizationId"), "{}", r.stdout);
    let r = sb.run("az", &[&post[..], &query[..]].concat(), &dir);
    assert_eq!(r.assert_success().stdout, "none\nNone\npat-from-the-api-0123456789\n");
    install_az(&sb, &AzState { pat_error: "invalidScope".into(), ..state.clone() });
    let r = sb.run("az", &[&post[..], &query[..]].concat(), &dir);
    assert_eq!(r.assert_success().stdout, "invalidScope\nNone\nNone\n");
    install_az(&sb, &AzState { pat_answer_not_json: true, ..state.clone() });
    let r = sb.run("az", &[&post[..], &query[..]].concat(), &dir);
    r.assert_success().assert_output_contains("Not a json response");
    assert!(r.stdout.starts_with("<!DOCTYPE html>"), "{}", r.stdout);
    install_az(&sb, &state);

    install_az(&sb, &AzState { logged_in: false, ..state });
    let r = sb.run("az", &["account", "show"], &dir);
    r.assert_failure().assert_output_contains("Please run 'az login' to setup account.");
    assert_eq!(r.status.code(), Some(1));
    sb.run("az", &["login"], &dir).assert_success();
    sb.run("az", &["account", "show"], &dir).assert_success();

    sb.run("gh", &["auth", "status"], &dir).assert_success();
    sb.run("sh", &["-c", "printf secret-value | gh secret set NAME --repo o/n"], &dir).assert_success();
    let set = sb.calls("gh").pop().unwrap();
    assert_eq!(set.argv, ["secret", "set", "NAME", "--repo", "o/n"]);
    assert_eq!(set.stdin, "secret-value");
    install_gh(&sb, &GhState { may_set_secrets: false, ..GhState::default() });
    let r = sb.run("sh", &["-c", "printf secret-value | gh secret set NAME --repo o/n"], &dir);
    r.assert_failure().assert_output_contains("HTTP 403: Resource not accessible by integration");
    sb.run("gh", &["secret", "list", "--repo", "github.com/o/n"], &dir).assert_success();
    install_gh(&sb, &GhState { may_read_secrets: false, ..GhState::default() });
    let r = sb.run("gh", &["secret", "list", "--repo", "github.com/o/n"], &dir);
    r.assert_failure().assert_output_contains(
        "HTTP 403: Resource not accessible by integration (https://api.github.com/repos/o/n/",
    );
    install_gh(&sb, &GhState { logged_in: false, ..GhState::default() });
    sb.run("gh", &["auth", "status"], &dir).assert_failure().assert_output_contains("gh auth login");
}
