//! The secret scanner behind [`crate::Sandbox::assert_no_secret`].
//!
//! A PAT rarely leaks verbatim: it leaks inside `Basic base64("PAT:" + pat)`, in
//! a URL, or in JSON. So each secret is searched in several forms:
//!
//! - verbatim;
//! - percent-encoded (upper- and lower-case hex, and `+` for space as in forms);
//! - JSON-escaped;
//! - base64, *as part of any longer encoded text*: base64 of `prefix + secret`
//!   depends on the prefix length modulo 3, so for each of the three alignments
//!   the characters that depend on the secret alone are searched (this catches
//!   `Basic base64("PAT:" + pat)` and `base64(pat)` alike), in the standard and
//!   the URL-safe alphabet. Base64 forms are also searched with all whitespace
//!   removed from the text, which catches output wrapped by GNU `base64`.

use crate::{STANDARD_ALPHABET, URL_SAFE_ALPHABET, base64_with};

/// Shortest secret the scanner accepts: shorter ones give base64 fragments so
/// short that unrelated output could match them by chance.
pub const MIN_SECRET_LEN: usize = 8;

/// One searchable form of a secret.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SecretForm {
    /// What it is, for the panic message, e.g. `"base64 (alignment 1)"`.
    pub name: String,
    /// The text to look for.
    pub needle: String,
    /// Whether to look for it also in the text with whitespace removed.
    pub ignore_whitespace: bool,
}

/// Every form of `secret` the scanner looks for (deduplicated).
///
/// Panics if the secret is shorter than [`MIN_SECRET_LEN`] bytes.
pub fn secret_forms(secret: &str) -> Vec<SecretForm> {
    assert!(
        secret.len() >= MIN_SECRET_LEN,
        "secret {secret:?} is too short for a reliable scan: use at least {MIN_SECRET_LEN} \
         characters (real PATs have 84)"
    );
    let mut forms: Vec<SecretForm> = Vec::new();
    let mut add = |name: String, needle: String, ignore_whitespace: bool| {
        if !needle.is_empty() && !forms.iter().any(|f| f.needle == needle) {
            forms.push(SecretForm { name, needle, ignore_whitespace });
        }
    };
    add("plain".into(), secret.into(), false);
    add("percent-encoded".into(), percent_encode(secret, true, false), false);
    add("percent-encoded (lower-case hex)".into(), percent_encode(secret, false, false), false);
    add("form-encoded".into(), percent_encode(secret, true, true), false);
    add("JSON-escaped".into(), json_escape(secret), false);
    for (alphabet_name, alphabet) in [("base64", STANDARD_ALPHABET), ("base64url", URL_SAFE_ALPHABET)] {
        for align in 0..3 {
            add(
                format!("{alphabet_name} (inside encoded text, alignment {align})"),
                base64_core(secret.as_bytes(), align, alphabet),
                true,
            );
        }
    }
    forms
}

/// The base64 characters that depend only on `secret` when it follows `align`
/// bytes of anything and is followed by anything.
fn base64_core(secret: &[u8], align: usize, alphabet: &[u8; 64]) -> String {
    let mut bytes = vec![0u8; align];
    bytes.extend_from_slice(secret);
    let full = base64_with(&bytes, alphabet, false);
    // Characters cover 6 bits each: the first ones that carry no prefix bit.
    let start = (align * 8).div_ceil(6);
    // Only complete 3-byte groups: the last partial group depends on what follows.
    let end = (bytes.len() / 3) * 4;
    full.get(start..end).unwrap_or_default().to_string()
}

fn percent_encode(s: &str, upper: bool, form: bool) -> String {
    let mut out = String::new();
    for b in s.bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => out.push(b as char),
            b' ' if form => out.push('+'),
            _ if upper => out.push_str(&format!("%{b:02X}")),
            _ => out.push_str(&format!("%{b:02x}")),
        }
    }
    out
}

fn json_escape(s: &str) -> String {
    let quoted = crate::http::json_string(s);
    quoted[1..quoted.len() - 1].to_string()
}

/// Looks for any form of any of `secrets` in `text`. Returns a description of
/// the first hit (which secret, by index and first characters, and which form).
pub fn find_secret(text: &str, secrets: &[&str]) -> Option<String> {
    let squeezed: String = text.chars().filter(|c| !c.is_whitespace()).collect();
    // JSON encoders may write base64's `/` as `\/` and `+` as `\u002B`, cutting its forms.
    let unescaped = text.replace("\\/", "/").replace("\\u002B", "+").replace("\\u002b", "+");
    for (i, secret) in secrets.iter().enumerate() {
        for form in secret_forms(secret) {
            let hit = text.contains(&form.needle)
                || (form.ignore_whitespace && squeezed.contains(&form.needle))
                || unescaped.contains(&form.needle);
            if hit {
                let shown: String = secret.chars().take(4).collect();
                return Some(format!("secret #{i} ({shown}…) found in {} form {:?}", form.name, form.needle));
            }
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{base64, basic_header};

    const PAT: &str = "abcdefghijklmnopqrstuvwxyz0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuv";

    #[test]
    fn catches_plain() {
        assert!(find_secret(&format!("token is {PAT}\n"), &[PAT]).unwrap().contains("plain"));
        assert!(find_secret("nothing here", &[PAT]).is_none());
    }

    #[test]
    fn catches_base64_of_the_secret_and_of_the_header() {
        let text = format!("x {} y", base64(PAT.as_bytes()));
        assert!(find_secret(&text, &[PAT]).unwrap().contains("base64"));
        // "PAT:" shifts the alignment by 4 bytes (= 1 mod 3).
        let text = format!("Authorization: {}", basic_header("PAT", PAT));
        assert!(find_secret(&text, &[PAT]).unwrap().contains("base64"));
        // Any other prefix length too.
        for prefix in ["", "a", "ab", "abc", "user:"] {
            let text = base64(format!("{prefix}{PAT}!").as_bytes());
            assert!(find_secret(&text, &[PAT]).is_some(), "prefix {prefix:?}");
        }
    }

    #[test]
    fn catches_base64_wrapped_like_gnu_base64() {
        let enc = base64(format!("PAT:{PAT}").as_bytes());
        let wrapped = format!("{}\n{}", &enc[..76], &enc[76..]);
        assert!(find_secret(&wrapped, &[PAT]).is_some());
        // The old recipe's `$(...)` turned the wrap into a space.
        let spaced = format!("Basic {} {}", &enc[..76], &enc[76..]);
        assert!(find_secret(&spaced, &[PAT]).is_some());
    }

    #[test]
    fn catches_percent_and_json_forms() {
        let secret = "p@ss w/rd\"+x";
        assert!(find_secret("?t=p%40ss%20w%2Frd%22%2Bx", &[secret]).is_some());
        assert!(find_secret("?t=p%40ss+w%2Frd%22%2Bx", &[secret]).is_some());
        assert!(find_secret(r#"{"t":"p@ss w/rd\"+x"}"#, &[secret]).is_some());
    }

    #[test]
    fn catches_base64_with_json_escaped_slash_and_plus() {
        let pat = "s3cr3t-???>?-0123456789abc";
        let header = basic_header("PAT", pat);
        assert!(header.contains('/') && header.contains('+'), "{header}");
        let escaped = header.replace('/', "\\/").replace('+', "\\u002B");
        assert!(find_secret(&format!("{{\"a\":\"{escaped}\"}}"), &[pat]).is_some());
    }

    #[test]
    #[should_panic(expected = "too short")]
    fn refuses_short_secrets() {
        find_secret("", &["abc"]);
    }

    #[test]
    fn base64_cores_are_long_enough() {
        for form in secret_forms("12345678") {
            assert!(form.needle.len() >= 8, "{form:?}");
        }
    }
}
