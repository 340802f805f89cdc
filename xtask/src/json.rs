//! A small JSON reader for `cargo metadata`, and a string quoter. Input may carry secrets:
//! errors never quote the text, and a [`Value`]'s `Debug` shows strings' lengths only.

use std::fmt;

use anyhow::anyhow;

/// A JSON value: strings and their structure; `null`, booleans and numbers, unread, are [`Value::Scalar`].
#[derive(PartialEq)]
pub enum Value {
    Scalar,
    String(String),
    Array(Vec<Value>),
    /// Members in the order of the text; keys are unique.
    Object(Vec<(String, Value)>),
}

impl Value {
    pub fn get(&self, key: &str) -> Option<&Value> {
        let Value::Object(members) = self else { return None };
        members.iter().find(|(k, _)| k == key).map(|(_, v)| v)
    }

    pub fn as_str(&self) -> Option<&str> {
        if let Value::String(s) = self { Some(s) } else { None }
    }
}

impl fmt::Debug for Value {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Value::Scalar => f.write_str("_"),
            Value::String(s) => write!(f, "<string of {} chars>", s.chars().count()),
            Value::Array(items) => f.debug_list().entries(items).finish(),
            Value::Object(members) => f.debug_map().entries(members.iter().map(|(k, v)| (k, v))).finish(),
        }
    }
}

/// Bounds the recursion on hostile input; deeper than any answer read here.
const MAX_DEPTH: usize = 128;

/// One JSON value filling the text (whitespace around it allowed); an error says what is wrong where.
pub fn parse(text: &str) -> anyhow::Result<Value> {
    let mut parser = Parser { text, pos: 0 };
    let value = parser.value(0)?;
    need(parser.token().is_none(), parser.pos, "unexpected text after the JSON value")?;
    Ok(value)
}

/// `text` as a JSON string literal, quotes included.
pub fn quote(text: &str) -> String {
    let mut out = String::from('"');
    for c in text.chars() {
        match c {
            '"' | '\\' => out.extend(['\\', c]),
            '\n' => out.push_str("\\n"),
            c if c < ' ' => out.push_str(&format!("\\u{:04x}", u32::from(c))),
            c => out.push(c),
        }
    }
    out + "\""
}

fn need(ok: bool, pos: usize, what: &str) -> anyhow::Result<()> {
    if ok { Ok(()) } else { Err(anyhow!("{what} at byte {pos}")) }
}

struct Parser<'a> {
    text: &'a str,
    pos: usize,
}

impl Parser<'_> {
    fn error(&self, what: &str) -> anyhow::Error {
        anyhow!("{what} at byte {}", self.pos)
    }

    fn peek(&self) -> Option<u8> {
        self.text.as_bytes().get(self.pos).copied()
    }

    /// The next byte after whitespace, the cursor moved to it.
    fn token(&mut self) -> Option<u8> {
        let rest = &self.text[self.pos..];
        self.pos += rest.len() - rest.trim_start_matches([' ', '\t', '\n', '\r']).len();
        self.peek()
    }

    /// Consumes `byte` if it comes next after whitespace.
    fn eat(&mut self, byte: u8) -> bool {
        let next = self.token() == Some(byte);
        self.pos += usize::from(next);
        next
    }

    fn value(&mut self, depth: usize) -> anyhow::Result<Value> {
        match self.token() {
            Some(b'{' | b'[') => return self.nested(depth),
            Some(b'"') => return self.string().map(Value::String),
            _ => {}
        }
        let rest = &self.text[self.pos..];
        let end = rest.find(|c: char| !c.is_ascii_alphanumeric() && !"+-.".contains(c));
        let word = &rest[..end.unwrap_or(rest.len())];
        let number = word.trim_start_matches('-').starts_with(|c: char| c.is_ascii_digit())
            && word.parse::<f64>().is_ok();
        need(number || ["true", "false", "null"].contains(&word), self.pos, "expected a value")?;
        self.pos += word.len();
        Ok(Value::Scalar)
    }

    /// An object or an array, the cursor on its opening bracket.
    fn nested(&mut self, depth: usize) -> anyhow::Result<Value> {
        need(depth < MAX_DEPTH, self.pos, "arrays and objects nested too deeply")?;
        let object = self.peek() == Some(b'{');
        let close = if object { b'}' } else { b']' };
        self.pos += 1;
        let (mut members, mut items) = (Vec::new(), Vec::new());
        while !self.eat(close) {
            if !(members.is_empty() && items.is_empty()) {
                need(self.eat(b','), self.pos, "expected `,` or the closing bracket")?;
            }
            if !object {
                items.push(self.value(depth + 1)?);
                continue;
            }
            need(self.token() == Some(b'"'), self.pos, "expected a string as the key of an object member")?;
            let key = self.string()?;
            need(members.iter().all(|(k, _)| *k != key), self.pos, "duplicate key in an object")?;
            need(self.eat(b':'), self.pos, "expected `:` after the key of an object member")?;
            members.push((key, self.value(depth + 1)?));
        }
        Ok(if object { Value::Object(members) } else { Value::Array(items) })
    }

    fn string(&mut self) -> anyhow::Result<String> {
        self.pos += 1;
        let mut out = String::new();
        loop {
            let rest = &self.text[self.pos..];
            let plain = rest.find(|c: char| c == '"' || c == '\\' || c < ' ').unwrap_or(rest.len());
            out.push_str(&rest[..plain]);
            self.pos += plain;
            let next = self.peek();
            need(next.is_some(), self.pos, "unterminated string")?;
            need(next >= Some(b' '), self.pos, "control character in a string (it must be escaped)")?;
            self.pos += 1;
            if next == Some(b'"') {
                return Ok(out);
            }
            let escape = self.peek().and_then(|e| b"\"\\/bfnrtu".iter().position(|&c| c == e));
            let escape = escape.ok_or_else(|| self.error("invalid escape in a string"))?;
            self.pos += 1;
            out.push(match escape {
                8 => self.unicode_escape()?,
                i => ['"', '\\', '/', '\u{8}', '\u{c}', '\n', '\r', '\t'][i],
            });
        }
    }

    /// The character of `\uXXXX`, joining a UTF-16 surrogate pair written as two
    /// escapes; a lone surrogate is no character.
    fn unicode_escape(&mut self) -> anyhow::Result<char> {
        let mut units = vec![self.hex4()?];
        if (0xD800..0xDC00).contains(&units[0]) && self.text[self.pos..].starts_with("\\u") {
            self.pos += 2;
            units.push(self.hex4()?);
        }
        let c = char::decode_utf16(units).next().and_then(Result::ok);
        c.ok_or_else(|| self.error("lone surrogate in a \\u escape"))
    }

    fn hex4(&mut self) -> anyhow::Result<u16> {
        let digits =
            self.text.get(self.pos..self.pos + 4).filter(|d| d.bytes().all(|b| b.is_ascii_hexdigit()));
        let code = digits.and_then(|d| u16::from_str_radix(d, 16).ok());
        let code = code.ok_or_else(|| self.error("expected four hex digits after \\u"))?;
        self.pos += 4;
        Ok(code)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(text: &str) -> Value {
        Value::String(text.to_owned())
    }

    fn err(text: &str) -> String {
        match parse(text) {
            Ok(value) => panic!("parsed: {value:?}"),
            Err(err) => err.to_string(),
        }
    }

    #[test]
    fn every_escape_is_decoded() {
        let v = parse(r#""q\" b\\ s\/ \b\f\n\r\t \u00e9 \u0041 \u20AC""#).unwrap();
        assert_eq!(v, s("q\" b\\ s/ \u{8}\u{c}\n\r\t \u{e9} A \u{20ac}"));
        // Raw non-ASCII passes through as it is (az prints with ensure_ascii off).
        assert_eq!(parse("\"é€😀\"").unwrap(), s("é€😀"));
    }

    #[test]
    fn surrogate_pairs_join_and_lone_halves_are_refused() {
        assert_eq!(parse(r#""\ud83d\ude00""#).unwrap(), s("😀"));
        assert_eq!(parse(r#""\uD834\uDD1E x""#).unwrap(), s("\u{1d11e} x"));
        for text in [r#""\ud83d""#, r#""\ud83dx""#, r#""\ud83d\u0041""#, r#""\ude00""#] {
            assert!(err(text).starts_with("lone surrogate in a \\u escape at byte "), "{text}");
        }
    }

    #[test]
    fn nesting_keeps_order_and_paths_find_members() {
        let v = parse(
            r#" {"patToken": {"displayName": "token", "token": "the-pat", "n": [1, {"a": null}]},
                 "patTokenError": "none", "ok": true, "no": false} "#,
        )
        .unwrap();
        let pat = v.get("patToken").unwrap();
        assert_eq!(pat.get("token").and_then(Value::as_str), Some("the-pat"));
        assert_eq!(pat.get("displayName").and_then(Value::as_str), Some("token"));
        assert_eq!(v.get("patTokenError").and_then(Value::as_str), Some("none"));
        assert_eq!(v.get("ok"), Some(&Value::Scalar));
        assert_eq!(v.get("no"), Some(&Value::Scalar));
        assert!(matches!(pat.get("n"), Some(Value::Array(_))));
        assert_eq!(pat.get("token").and_then(|t| t.get("x")), None);
        assert_eq!(v.get("missing"), None);
        let Value::Object(members) = pat else { panic!("{v:?}") };
        let keys: Vec<&str> = members.iter().map(|(k, _)| k.as_str()).collect();
        assert_eq!(keys, ["displayName", "token", "n"]);
        assert!(matches!(parse("[[], {}, [[[]]]]").unwrap(), Value::Array(_)));
        let deep = format!("{}{}", "[".repeat(MAX_DEPTH + 1), "]".repeat(MAX_DEPTH + 1));
        assert_eq!(err(&deep), format!("arrays and objects nested too deeply at byte {MAX_DEPTH}"));
        let deep = format!("{}1{}", "{\"a\":".repeat(MAX_DEPTH + 1), "}".repeat(MAX_DEPTH + 1));
        assert_eq!(err(&deep), format!("arrays and objects nested too deeply at byte {}", 5 * MAX_DEPTH));
        let ok = format!("{}{}", "[".repeat(MAX_DEPTH), "]".repeat(MAX_DEPTH));
        assert!(parse(&ok).is_ok());
    }

    #[test]
    fn numbers_are_checked_and_skipped() {
        for text in ["0", "-0", "12", "-12.5", "1e5", "1E+5", "2.5e-3", "0.0"] {
            assert_eq!(parse(text).unwrap(), Value::Scalar, "{text}");
        }
        for text in ["+1", ".5", "1e", "1e+", "-", "--1", "NaN", "Infinity", "0x10"] {
            assert!(parse(text).is_err(), "{text} parsed");
        }
    }

    #[test]
    fn errors_say_where() {
        let cases = [
            ("", 0, "expected a value"),
            ("{\n  \"a\": 1,\n  \"b\" 2\n}", 18, "expected `:` after the key of an object member"),
            ("{\"a\": 1,}", 8, "expected a string as the key of an object member"),
            ("[1, 2,]", 6, "expected a value"),
            ("[1 2]", 3, "expected `,` or the closing bracket"),
            ("{\"a\": 1 \"b\": 2}", 8, "expected `,` or the closing bracket"),
            ("{\"a\": 1, \"a\": 2}", 12, "duplicate key in an object"),
            ("\"abc", 4, "unterminated string"),
            ("\"a\tb\"", 2, "control character in a string (it must be escaped)"),
            ("\"\\x\"", 2, "invalid escape in a string"),
            ("\"\\u12g4\"", 3, "expected four hex digits after \\u"),
            ("nul", 0, "expected a value"),
            ("{} {}", 3, "unexpected text after the JSON value"),
            ("\"é\" x", 5, "unexpected text after the JSON value"),
        ];
        for (text, at, what) in cases {
            assert_eq!(err(text), format!("{what} at byte {at}"), "{text:?}");
        }
    }

    #[test]
    fn a_token_never_reaches_an_error_or_debug() {
        let token = "zq7hjkzq7hjkzq7hjkzq7hjkzq7hjkzq7hjkzq7hjkzq7hjkzq7h";
        // Broken at every place around the token: inside it, just after it, after it.
        for text in [
            format!("{{\"token\": \"{token}"),
            format!("{{\"token\": \"{token}\\q\"}}"),
            format!("{{\"token\": \"{token}\" \"x\"}}"),
            format!("{{\"token\": {token}}}"),
            format!("{{\"token\": \"{token}\", \"token\": \"{token}\"}}"),
            format!("{{\"token\": \"{token}\"}} {token}"),
        ] {
            let e = err(&text);
            let shown = format!("{e} {e:?}");
            assert!(!shown.contains("zq7h"), "{shown}");
        }
        let v = parse(&format!("{{\"patToken\": {{\"token\": \"{token}\"}}}}")).unwrap();
        let shown = format!("{v:?}");
        assert!(!shown.contains("zq7h"), "{shown}");
        assert_eq!(shown, "{\"patToken\": {\"token\": <string of 52 chars>}}");
    }

    #[test]
    fn quote_round_trips() {
        let texts = ["plain", "a \"b\" \\ c", "line\nbreak\ttab\r", "\u{1}\u{1f}", "é 😀 \u{7f}"];
        for text in texts {
            assert_eq!(parse(&quote(text)).unwrap(), s(text), "{text:?}");
        }
        assert_eq!(quote("a \"b\" \\ \n\u{1}"), r#""a \"b\" \\ \n\u0001""#);
    }
}
