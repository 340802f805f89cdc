//! Secrets as types: no `Display`, a placeholder `Debug`; [`Secret::expose`] only for a child's stdin or env.

use std::fmt;

use anyhow::{bail, ensure};

#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    pub fn new(value: String) -> Secret {
        Secret(value)
    }

    /// The secret itself, for a child or a masking command; never for a message.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(<redacted>)")
    }
}

/// An Azure DevOps personal access token, read from the environment or stdin.
#[derive(Debug, Clone)]
pub struct PatToken(Secret);

/// Shorter cannot be an Azure DevOps PAT (52 or 84); it also keeps a stray short value
/// (`true`) out of `::add-mask::`, which would hide it everywhere in the job's log.
const PAT_MIN_LEN: usize = 20;

impl PatToken {
    /// Checks a PAT read from `source` (named in errors, never the value or its length).
    pub fn parse(value: String, source: &str) -> anyhow::Result<PatToken> {
        let trimmed = value.trim();
        if trimmed.is_empty() {
            bail!("{source} is empty: set it to an Azure DevOps PAT with the Packaging scope");
        }
        if let Some(pos) = trimmed.find(|c: char| !c.is_ascii_graphic()) {
            bail!(
                "{source} holds a character cargo cannot send (at position {}): a PAT is visible ASCII \
                 only; copy it again without spaces or line breaks",
                trimmed[..pos].chars().count() + 1
            );
        }
        ensure!(
            trimmed.len() >= PAT_MIN_LEN,
            "{source} is too short to be an Azure DevOps PAT (fewer than {PAT_MIN_LEN} characters; \
                 theirs have 52 or 84): check that it holds the whole PAT"
        );
        Ok(PatToken(Secret::new(trimmed.to_owned())))
    }

    pub fn from_env(var: &str) -> anyhow::Result<PatToken> {
        match std::env::var(var) {
            Ok(value) => PatToken::parse(value, &format!("environment variable {var}")),
            Err(std::env::VarError::NotPresent) => bail!(
                "environment variable {var} is not set: set it to an Azure DevOps PAT with the Packaging \
                 scope (in GitHub Actions: `env: {var}: ${{{{ secrets.ADO_CARGO_RO_PAT }}}}`)"
            ),
            Err(std::env::VarError::NotUnicode(_)) => {
                bail!("environment variable {var} is not valid UTF-8: a PAT is visible ASCII only")
            }
        }
    }

    pub fn secret(&self) -> &Secret {
        &self.0
    }

    /// `Basic base64("PAT:" + pat)`, what Azure Artifacts takes (the user name is arbitrary).
    pub fn header(&self) -> AuthHeader {
        AuthHeader(Secret::new(format!("Basic {}", base64(format!("PAT:{}", self.0.0).as_bytes()))))
    }

    /// Every form that must be masked, in this order: the PAT, the header and its base64 credential.
    pub fn forms(&self) -> Vec<String> {
        let AuthHeader(Secret(header)) = self.header();
        let credential = header["Basic ".len()..].to_owned();
        vec![self.0.0.clone(), header, credential]
    }
}

/// The `Authorization` value cargo stores and sends verbatim, as `cargo login` reads it.
#[derive(Debug, Clone)]
pub struct AuthHeader(Secret);

impl AuthHeader {
    /// A bearer header for an Entra access token, checking it can travel as one line.
    pub fn bearer(token: &str) -> anyhow::Result<AuthHeader> {
        let token = token.trim();
        if token.is_empty() || !token.chars().all(|c| c.is_ascii_graphic()) {
            bail!("the access token is empty or not one line of visible ASCII");
        }
        Ok(AuthHeader(Secret::new(format!("Bearer {token}"))))
    }

    pub fn secret(&self) -> &Secret {
        &self.0
    }

    pub fn forms(&self) -> Vec<String> {
        token_forms(&self.0.0)
    }
}

/// `text` with every form replaced, longest first (a header goes whole), then any credential of 8
/// characters or more after `Basic `/`Bearer `/`Authorization: ` (any case): a proxy may echo a
/// header no one here knows. JSON may write `/` as `\/` and `+` as `\u002B`.
pub fn redact(text: &str, forms: &[String]) -> String {
    let json = |f: String| [f.replace('+', "\\u002B"), f.replace('+', "\\u002b"), f];
    let mut forms: Vec<String> = (forms.iter().filter(|f| !f.is_empty()))
        .flat_map(|f| json(f.replace('/', "\\/")).into_iter().chain(json(f.clone())))
        .collect();
    forms.sort_by_key(|f| std::cmp::Reverse(f.len()));
    let text = forms.iter().fold(text.to_owned(), |text, form| text.replace(form.as_str(), "<redacted>"));
    let lower = text.to_ascii_lowercase();
    let (mut out, mut done) = (String::with_capacity(text.len()), 0);
    for (space, _) in lower.match_indices(' ') {
        let rest = &text[space + 1..];
        let len =
            rest.find(|c: char| !c.is_ascii_alphanumeric() && !"-._~+/=\\".contains(c)).unwrap_or(rest.len());
        let after_scheme = ["basic", "bearer", "authorization:"].iter().any(|w| lower[..space].ends_with(w));
        if after_scheme && space >= done && len >= 8 {
            out = out + &text[done..=space] + "<redacted>";
            done = space + 1 + len;
        }
    }
    out.push_str(&text[done..]);
    hide_provider_arguments(hide_jwts(out))
}

/// Entra ID tokens (JWTs: `eyJ` and three base64url parts) anywhere: provider mode's az
/// token goes from az to cargo, so the tasks never know it to redact it as a form.
fn hide_jwts(text: String) -> String {
    let part =
        |s: &str| s.find(|c: char| !c.is_ascii_alphanumeric() && c != '-' && c != '_').unwrap_or(s.len());
    let jwt = |s: &str| {
        let (a, rest) = s.split_at(part(s));
        let (b, rest) = rest.strip_prefix('.').map(|r| r.split_at(part(r)))?;
        Some(a.len() + b.len() + rest.strip_prefix('.').map(part)? + 2)
    };
    let (mut out, mut rest) = (String::with_capacity(text.len()), text.as_str());
    while let Some(at) = rest.find("eyJ") {
        let len = jwt(&rest[at..]).unwrap_or(3);
        out = out + &rest[..at] + if len > 3 { "<redacted>" } else { "eyJ" };
        rest = &rest[at + len..];
    }
    out + rest
}

/// Cargo names a credential provider by its command line (`credential provider `CMD
/// ARGS` failed…`): its arguments can be a secret, so only the program is kept.
fn hide_provider_arguments(text: String) -> String {
    const MARK: &str = "credential provider `";
    let (mut out, mut rest) = (String::with_capacity(text.len()), text.as_str());
    while let Some(at) = rest.find(MARK) {
        let (before, after) = rest.split_at(at + MARK.len());
        let end = after.find('`').unwrap_or(after.len());
        let words: Vec<&str> = after[..end].split_whitespace().collect();
        out = out + before + &shown_command(&words);
        rest = &after[end..];
    }
    out + rest
}

/// A provider's command line as its program (and `cargo:token-from-stdout`'s): arguments may be secret.
pub fn shown_command(words: &[&str]) -> String {
    let keep = if words.first() == Some(&"cargo:token-from-stdout") { 2 } else { 1 }.min(words.len());
    match words.len() - keep {
        0 => words[..keep].join(" "),
        hidden => format!("{} ({hidden} argument(s) not shown)", words[..keep].join(" ")),
    }
}

/// Every form of a token read here: it, its credential, for `Basic` the decoded `user:password` and password.
pub fn token_forms(token: &str) -> Vec<String> {
    let token = token.trim();
    let mut forms = vec![token.to_owned()];
    if let Some((scheme, credential)) = token.split_once(' ') {
        forms.push(credential.to_owned());
        if scheme.eq_ignore_ascii_case("basic")
            && let Some(pair) = base64_decode(credential).and_then(|b| String::from_utf8(b).ok())
        {
            forms.extend(pair.split_once(':').map(|(_, password)| password.to_owned()));
            forms.push(pair);
        }
    }
    forms.retain(|f| !f.is_empty());
    forms
}

/// Secret variables for a child's environment (never its argv), and every form of a
/// secret to redact from what the child prints. `Debug` lists the names only.
#[derive(Clone, Default)]
pub struct SecretEnv {
    vars: Vec<(String, Secret)>,
    forms: Vec<String>,
}

impl SecretEnv {
    /// No variables yet, only `forms` to redact.
    pub fn hiding(forms: Vec<String>) -> SecretEnv {
        SecretEnv { vars: Vec::new(), forms }
    }

    /// Adds `key=value`, redacting `value` too.
    pub fn secret(mut self, key: impl Into<String>, value: &Secret) -> SecretEnv {
        self.vars.push((key.into(), value.clone()));
        self.forms.push(value.0.clone());
        self
    }

    /// Adds `key=value` for a value that is no secret (`cargo:token`).
    pub fn plain(mut self, key: impl Into<String>, value: &str) -> SecretEnv {
        self.vars.push((key.into(), Secret::new(value.to_owned())));
        self
    }

    pub fn vars(&self) -> impl Iterator<Item = (&str, &str)> {
        self.vars.iter().map(|(k, v)| (k.as_str(), v.expose()))
    }

    pub fn forms(&self) -> &[String] {
        &self.forms
    }
}

impl fmt::Debug for SecretEnv {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let names: Vec<&str> = self.vars.iter().map(|(k, _)| k.as_str()).collect();
        write!(f, "SecretEnv({} = <redacted>)", names.join(", "))
    }
}

const BASE64: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

/// Standard base64 (padding optional) back to bytes; `None` if it is not base64.
fn base64_decode(text: &str) -> Option<Vec<u8>> {
    let (mut out, mut acc, mut bits) = (Vec::new(), 0u32, 0);
    for c in text.trim_end_matches('=').bytes() {
        acc = acc << 6 | BASE64.iter().position(|&a| a == c)? as u32;
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push((acc >> bits) as u8);
        }
    }
    Some(out)
}

/// Standard base64 with padding and, unlike GNU `base64`, no line wrapping.
pub fn base64(bytes: &[u8]) -> String {
    let quad = |chunk: &[u8]| {
        let n = chunk.iter().enumerate().fold(0, |n, (i, &b)| n | u32::from(b) << (16 - 8 * i));
        let len = chunk.len();
        (0..4).map(move |i| if i <= len { BASE64[(n >> (18 - 6 * i) & 63) as usize] as char } else { '=' })
    };
    bytes.chunks(3).flat_map(quad).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base64_matches_rfc4648_vectors() {
        // RFC 4648 §10, but for its two-byte vector, which the host's spell check refuses.
        let vectors = [
            ("", ""),
            ("f", "Zg=="),
            ("fa", "ZmE="),
            ("foo", "Zm9v"),
            ("foob", "Zm9vYg=="),
            ("fooba", "Zm9vYmE="),
            ("foobar", "Zm9vYmFy"),
        ];
        for (plain, encoded) in vectors {
            assert_eq!(base64(plain.as_bytes()), encoded, "{plain:?}");
        }
    }

    #[test]
    fn an_84_character_pat_makes_one_unwrapped_header() {
        let pat = "a".repeat(84);
        let token = PatToken::parse(pat, "PAT").unwrap();
        let header = token.header();
        let value = header.secret().expose();
        assert_eq!(value.len(), "Basic ".len() + 120);
        assert!(!value.contains(['\n', '\r']) && value.matches(' ').count() == 1);
    }

    #[test]
    fn debug_never_shows_the_secret() {
        let token = PatToken::parse("s3cr3t-value-0123456789".into(), "PAT").unwrap();
        let shown =
            format!("{token:?} {:?} {:?}", token.header(), AuthHeader::bearer("s3cr3t-value").unwrap());
        assert!(!shown.contains("s3cr3t"), "{shown}");
        assert!(!shown.contains(&base64(b"PAT:s3cr3t-value-0123456789")), "{shown}");
        assert!(shown.starts_with("PatToken(Secret(<redacted>))"), "nothing says a secret is there: {shown}");
    }

    #[test]
    fn an_access_token_is_one_line_of_visible_ascii() {
        for bad in ["", " \r\n", "eyJ0 eyJ1", "eyJ0\neyJ1"] {
            assert!(AuthHeader::bearer(bad).is_err(), "{bad:?}");
        }
        assert_eq!(AuthHeader::bearer(" eyJ0.x\r\n").unwrap().secret().expose(), "Bearer eyJ0.x");
    }

    #[test]
    fn bad_pats_are_named_not_shown() {
        for bad in ["", "   \n", "ab cd", "abc\u{e9}", "x1y", "s3cr3t-19-character"] {
            let err = PatToken::parse(bad.to_owned(), "environment variable PAT").unwrap_err();
            let msg = format!("{err:#}");
            assert!(msg.contains("environment variable PAT"), "{msg}");
            if !bad.trim().is_empty() {
                assert!(!msg.contains(bad.trim()), "{msg}");
            }
        }
        let msg = format!("{:#}", PatToken::parse("s3cr3t-19-character".into(), "stdin").unwrap_err());
        assert!(msg.contains("stdin is too short to be an Azure DevOps PAT"), "{msg}");
        assert!(!msg.contains("19"), "the length of a refused value is shown: {msg}");
    }

    #[test]
    fn twenty_characters_is_the_shortest_pat() {
        assert_eq!("s3cr3t-19-character".len() + 1, PAT_MIN_LEN);
        assert!(PatToken::parse("x".repeat(PAT_MIN_LEN), "PAT").is_ok());
        assert!(PatToken::parse(format!("  {}\n", "x".repeat(PAT_MIN_LEN - 1)), "PAT").is_err());
        // Azure DevOps' two lengths.
        assert!(PatToken::parse("x".repeat(52), "PAT").is_ok());
        assert!(PatToken::parse("x".repeat(84), "PAT").is_ok());
    }

    #[test]
    fn echoed_headers_are_redacted_known_or_not() {
        let text = "denied: Authorization: Basic UEFUOnMzY3IzdA== and bearer eyJ0eXAi.abc-def; Basic auth";
        assert_eq!(
            redact(text, &[]),
            "denied: Authorization: Basic <redacted> and bearer <redacted>; Basic auth"
        );
        let token = PatToken::parse("s3cr3t-value-0123456789".into(), "PAT").unwrap();
        let shown = redact(
            &format!("got {} {}", token.header().secret().expose(), "s3cr3t-value-0123456789"),
            &token.forms(),
        );
        assert_eq!(shown, "got <redacted> <redacted>");
        // Whatever the order of the forms, the header goes whole.
        let reversed: Vec<String> = token.forms().into_iter().rev().collect();
        assert_eq!(redact(token.header().secret().expose(), &reversed), "<redacted>");
    }

    /// A token with no scheme (crates.io's, or a bare PAT set by mistake) echoed by a
    /// proxy in its header's words: only the tasks that read the tokens knew it.
    #[test]
    fn an_echoed_header_without_a_scheme_is_redacted() {
        assert_eq!(
            redact("403: you sent authorization: cio0123456789abcdef; Authorization: Bearer eyJ0eXAi.x", &[]),
            "403: you sent authorization: <redacted>; Authorization: Bearer <redacted>"
        );
    }

    /// Provider mode's az token, unknown to the tasks, echoed alone: redacted by its shape.
    #[test]
    fn an_entra_token_is_redacted_by_its_shape() {
        let jwt = "eyJ0eXAiOiJKV1QifQ.eyJhdWQiOiI0OTliODRhYyJ9.c2lnbmF0dXJl_-x";
        assert_eq!(
            redact(&format!("denied: unknown credential {jwt}; eyJ alone, eyJa.b stays"), &[]),
            "denied: unknown credential <redacted>; eyJ alone, eyJa.b stays"
        );
    }

    /// A server echoing the header in JSON may write base64's `/` as `\/` (PHP, Java's
    /// org.json) and `+` as `\u002B` (.NET's default encoder): the rest stayed visible.
    #[test]
    fn a_json_escaped_echo_is_redacted_whole() {
        let token = PatToken::parse("s3cr3t-???>?-0123456789abc".into(), "PAT").unwrap();
        let credential = token.forms()[2].clone();
        assert!(credential.contains('/') && credential.contains('+'), "{credential}");
        let escaped = credential.replace('/', "\\/").replace('+', "\\u002B");
        let echoed = format!("{{\"authorization\":\"Basic {escaped}\"}}");
        // Known, the header goes whole; unknown, what follows its scheme.
        assert_eq!(redact(&echoed, &token.forms()), "{\"authorization\":\"<redacted>\"}");
        assert_eq!(redact(&echoed, &[]), "{\"authorization\":\"Basic <redacted>\"}");
        let bare = format!("[\"{}\"]", escaped.replace("\\u002B", "\\u002b"));
        assert_eq!(redact(&bare, &token.forms()), "[\"<redacted>\"]");
    }

    #[test]
    fn a_providers_arguments_are_hidden_its_program_kept() {
        let text = "error: credential provider `cargo:token-from-stdout my-vault read s3cr3t` failed action \
                    `get`\nerror: credential provider `/opt/p --key s3cr3t` failed\ncredential provider `cargo:token`";
        assert_eq!(
            redact(text, &[]),
            "error: credential provider `cargo:token-from-stdout my-vault (2 argument(s) not shown)` failed action \
             `get`\nerror: credential provider `/opt/p (2 argument(s) not shown)` failed\ncredential provider `cargo:token`"
        );
    }

    #[test]
    fn forms_of_a_stored_basic_token_include_the_pat() {
        let header = PatToken::parse("s3cr3t-value-0123456789".into(), "PAT").unwrap().header();
        let forms = token_forms(header.secret().expose());
        assert!(forms.contains(&"s3cr3t-value-0123456789".to_owned()), "{forms:?}");
        assert!(forms.contains(&"PAT:s3cr3t-value-0123456789".to_owned()), "{forms:?}");
        assert_eq!(token_forms("Bearer abc.def"), ["Bearer abc.def", "abc.def"]);
        assert_eq!(base64_decode("Zm9vYmE="), Some(b"fooba".to_vec()));
    }

    #[test]
    fn secret_env_debug_names_the_variables_only() {
        let env = SecretEnv::default()
            .secret("CARGO_REGISTRIES_F_TOKEN", &Secret::new("Bearer s3cr3t-value".into()))
            .plain("CARGO_REGISTRIES_F_CREDENTIAL_PROVIDER", "cargo:token");
        let shown = format!("{env:?}");
        assert!(!shown.contains("s3cr3t") && shown.contains("CARGO_REGISTRIES_F_TOKEN"), "{shown}");
        assert_eq!(env.forms(), ["Bearer s3cr3t-value"]);
    }
}
