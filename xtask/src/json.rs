//! A small, strict JSON reader (RFC 8259) and a string quoter. Input may carry
//! secrets, so an [`Error`] says where and what but never quotes the text, and the
//! `Debug` of a [`Value`] shows the length of strings, not their text.

use std::fmt;

/// A JSON value. Numbers keep their text: nothing here does arithmetic.
#[derive(Clone, PartialEq)]
pub enum Value {
    Null,
    Bool(bool),
    Number(String),
    String(String),
    Array(Vec<Value>),
    /// Members in the order of the text; keys are unique.
    Object(Vec<(String, Value)>),
}

impl Value {
    /// The member `key` of an object.
    pub fn get(&self, key: &str) -> Option<&Value> {
        match self {
            Value::Object(members) => members.iter().find(|(k, _)| k == key).map(|(_, v)| v),
            _ => None,
        }
    }

    pub fn as_str(&self) -> Option<&str> {
        match self {
            Value::String(s) => Some(s),
            _ => None,
        }
    }
}

impl fmt::Debug for Value {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Value::Null => f.write_str("null"),
            Value::Bool(b) => write!(f, "{b}"),
            Value::Number(n) => f.write_str(n),
            Value::String(s) => write!(f, "<string of {} chars>", s.chars().count()),
            Value::Array(items) => f.debug_list().entries(items).finish(),
            Value::Object(members) => f.debug_map().entries(members.iter().map(|(k, v)| (k, v))).finish(),
        }
    }
}

/// Where the text stops being JSON (1-based, columns in characters), and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Error {
    pub line: usize,
    pub column: usize,
    pub what: &'static str,
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} at line {}, column {}", self.what, self.line, self.column)
    }
}

impl std::error::Error for Error {}

/// Bounds the recursion on hostile input; deeper than any answer read here.
const MAX_DEPTH: usize = 128;

/// One JSON value filling the whole text (whitespace around it allowed).
pub fn parse(text: &str) -> Result<Value, Error> {
    let mut parser = Parser { text, pos: 0, depth: 0 };
    let value = parser.value()?;
    parser.whitespace();
    parser.need(parser.pos == text.len(), "unexpected text after the JSON value")?;
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

struct Parser<'a> {
    text: &'a str,
    pos: usize,
    depth: usize,
}

impl Parser<'_> {
    fn error(&self, what: &'static str) -> Error {
        self.error_at(self.pos, what)
    }

    fn error_at(&self, pos: usize, what: &'static str) -> Error {
        let before = &self.text[..pos];
        let line_start = before.rfind('\n').map_or(0, |i| i + 1);
        Error {
            line: before.matches('\n').count() + 1,
            column: before[line_start..].chars().count() + 1,
            what,
        }
    }

    fn need(&self, ok: bool, what: &'static str) -> Result<(), Error> {
        if ok { Ok(()) } else { Err(self.error(what)) }
    }

    fn expect(&mut self, byte: u8, what: &'static str) -> Result<(), Error> {
        let next = self.eat(byte);
        self.need(next, what)
    }

    fn peek(&self) -> Option<u8> {
        self.text.as_bytes().get(self.pos).copied()
    }

    /// Consumes `byte` if it comes next.
    fn eat(&mut self, byte: u8) -> bool {
        let next = self.peek() == Some(byte);
        self.pos += usize::from(next);
        next
    }

    fn whitespace(&mut self) {
        while let Some(b' ' | b'\t' | b'\n' | b'\r') = self.peek() {
            self.pos += 1;
        }
    }

    fn value(&mut self) -> Result<Value, Error> {
        self.whitespace();
        match self.peek() {
            None => Err(self.error("unexpected end of the text, expected a value")),
            Some(b'{') => self.nested(true),
            Some(b'[') => self.nested(false),
            Some(b'"') => self.string().map(Value::String),
            Some(b'-' | b'0'..=b'9') => self.number(),
            Some(_) => {
                for (word, value) in
                    [("true", Value::Bool(true)), ("false", Value::Bool(false)), ("null", Value::Null)]
                {
                    if self.text[self.pos..].starts_with(word) {
                        self.pos += word.len();
                        return Ok(value);
                    }
                }
                Err(self.error("expected a value"))
            }
        }
    }

    /// An object or an array, the cursor on its opening bracket.
    fn nested(&mut self, object: bool) -> Result<Value, Error> {
        self.need(self.depth < MAX_DEPTH, "arrays and objects nested too deeply")?;
        self.depth += 1;
        self.pos += 1;
        let (close, what) = if object {
            (b'}', "expected `,` or `}` in an object")
        } else {
            (b']', "expected `,` or `]` in an array")
        };
        let (mut members, mut items) = (Vec::new(), Vec::new());
        self.whitespace();
        let mut done = self.eat(close);
        while !done {
            if object {
                self.whitespace();
                let key_pos = self.pos;
                self.need(self.peek() == Some(b'"'), "expected a string as the key of an object member")?;
                let key = self.string()?;
                if members.iter().any(|(k, _)| *k == key) {
                    return Err(self.error_at(key_pos, "duplicate key in an object"));
                }
                self.whitespace();
                self.expect(b':', "expected `:` after the key of an object member")?;
                members.push((key, self.value()?));
            } else {
                items.push(self.value()?);
            }
            self.whitespace();
            done = self.eat(close);
            if !done {
                self.expect(b',', what)?;
            }
        }
        self.depth -= 1;
        Ok(if object { Value::Object(members) } else { Value::Array(items) })
    }

    fn string(&mut self) -> Result<String, Error> {
        self.pos += 1;
        let mut out = String::new();
        loop {
            let rest = &self.text[self.pos..];
            let plain = rest.find(|c: char| c == '"' || c == '\\' || c < ' ').unwrap_or(rest.len());
            out.push_str(&rest[..plain]);
            self.pos += plain;
            let at = self.pos;
            match self.peek() {
                None => return Err(self.error("unterminated string")),
                Some(b'"') => {
                    self.pos += 1;
                    return Ok(out);
                }
                Some(b'\\') => self.pos += 1,
                Some(_) => return Err(self.error("control character in a string (it must be escaped)")),
            }
            let escape = self.peek().and_then(|e| b"\"\\/bfnrtu".iter().position(|&c| c == e));
            self.pos += 1;
            out.push(match escape {
                Some(8) => self.unicode_escape(at)?,
                Some(i) => ['"', '\\', '/', '\u{8}', '\u{c}', '\n', '\r', '\t'][i],
                None => return Err(self.error_at(at, "invalid escape in a string")),
            });
        }
    }

    /// The character of `\uXXXX` at `at`, joining a UTF-16 surrogate pair written as
    /// two escapes; a lone surrogate is no character.
    fn unicode_escape(&mut self, at: usize) -> Result<char, Error> {
        let code = match self.hex4()? {
            high @ 0xD800..=0xDBFF => {
                let mut low = 0;
                if self.text[self.pos..].starts_with("\\u") {
                    self.pos += 2;
                    low = self.hex4()?;
                }
                if !(0xDC00..=0xDFFF).contains(&low) {
                    return Err(self.error_at(at, "high surrogate not followed by a low surrogate"));
                }
                0x10000 + ((high - 0xD800) << 10) + (low - 0xDC00)
            }
            0xDC00..=0xDFFF => return Err(self.error_at(at, "low surrogate without a high one")),
            code => code,
        };
        char::from_u32(code).ok_or_else(|| self.error_at(at, "invalid \\u escape"))
    }

    fn hex4(&mut self) -> Result<u32, Error> {
        let digits =
            self.text.get(self.pos..self.pos + 4).filter(|d| d.bytes().all(|b| b.is_ascii_hexdigit()));
        let code = digits.and_then(|d| u32::from_str_radix(d, 16).ok());
        let code = code.ok_or_else(|| self.error("expected four hex digits after \\u"))?;
        self.pos += 4;
        Ok(code)
    }

    /// `-? (0 | [1-9][0-9]*) (. [0-9]+)? ([eE] [+-]? [0-9]+)?`
    fn number(&mut self) -> Result<Value, Error> {
        let start = self.pos;
        self.eat(b'-');
        if !self.eat(b'0') {
            self.digits("expected a digit in a number")?;
        }
        self.need(!matches!(self.peek(), Some(b'0'..=b'9')), "leading zero in a number")?;
        if self.eat(b'.') {
            self.digits("expected a digit after the decimal point")?;
        }
        if self.eat(b'e') || self.eat(b'E') {
            let _sign = self.eat(b'+') || self.eat(b'-');
            self.digits("expected a digit in the exponent")?;
        }
        Ok(Value::Number(self.text[start..self.pos].to_owned()))
    }

    /// A run of digits, at least one.
    fn digits(&mut self, what: &'static str) -> Result<(), Error> {
        let start = self.pos;
        while let Some(b'0'..=b'9') = self.peek() {
            self.pos += 1;
        }
        self.need(self.pos > start, what)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(text: &str) -> Value {
        Value::String(text.to_owned())
    }

    fn err(text: &str) -> Error {
        match parse(text) {
            Ok(value) => panic!("parsed: {value:?}"),
            Err(err) => err,
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
        for (text, what) in [
            (r#""\ud83d""#, "high surrogate not followed by a low surrogate"),
            (r#""\ud83dx""#, "high surrogate not followed by a low surrogate"),
            (r#""\ud83d\u0041""#, "high surrogate not followed by a low surrogate"),
            (r#""\ude00""#, "low surrogate without a high one"),
        ] {
            let e = err(text);
            assert_eq!((e.what, e.column), (what, 2), "{text}");
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
        assert_eq!(v.get("ok"), Some(&Value::Bool(true)));
        assert_eq!(v.get("no"), Some(&Value::Bool(false)));
        assert!(matches!(pat.get("n"), Some(Value::Array(_))));
        assert_eq!(pat.get("token").and_then(|t| t.get("x")), None);
        assert_eq!(v.get("missing"), None);
        let Value::Object(members) = pat else { panic!("{v:?}") };
        let keys: Vec<&str> = members.iter().map(|(k, _)| k.as_str()).collect();
        assert_eq!(keys, ["displayName", "token", "n"]);
        assert!(matches!(parse("[[], {}, [[[]]]]").unwrap(), Value::Array(_)));
        let deep = format!("{}{}", "[".repeat(MAX_DEPTH + 1), "]".repeat(MAX_DEPTH + 1));
        assert_eq!(err(&deep).what, "arrays and objects nested too deeply");
        let ok = format!("{}{}", "[".repeat(MAX_DEPTH), "]".repeat(MAX_DEPTH));
        assert!(parse(&ok).is_ok());
    }

    #[test]
    fn numbers_follow_the_grammar() {
        for text in ["0", "-0", "12", "-12.5", "1e5", "1E+5", "2.5e-3", "0.0"] {
            assert_eq!(parse(text).unwrap(), Value::Number(text.into()), "{text}");
        }
        for text in ["01", "+1", "1.", ".5", "1e", "1e+", "-", "--1", "NaN", "Infinity", "0x10"] {
            assert!(parse(text).is_err(), "{text} parsed");
        }
    }

    #[test]
    fn errors_say_where() {
        let cases = [
            ("", 1, 1, "unexpected end of the text, expected a value"),
            ("{\n  \"a\": 1,\n  \"b\" 2\n}", 3, 7, "expected `:` after the key of an object member"),
            ("{\"a\": 1,}", 1, 9, "expected a string as the key of an object member"),
            ("[1, 2,]", 1, 7, "expected a value"),
            ("[1 2]", 1, 4, "expected `,` or `]` in an array"),
            ("{\"a\": 1 \"b\": 2}", 1, 9, "expected `,` or `}` in an object"),
            ("{\"a\": 1, \"a\": 2}", 1, 10, "duplicate key in an object"),
            ("\"abc", 1, 5, "unterminated string"),
            ("\"a\tb\"", 1, 3, "control character in a string (it must be escaped)"),
            ("\"\\x\"", 1, 2, "invalid escape in a string"),
            ("\"\\u12g4\"", 1, 4, "expected four hex digits after \\u"),
            ("tru", 1, 1, "expected a value"),
            ("{} {}", 1, 4, "unexpected text after the JSON value"),
            ("\"é\" x", 1, 5, "unexpected text after the JSON value"),
        ];
        for (text, line, column, what) in cases {
            assert_eq!(parse(text).unwrap_err(), Error { line, column, what }, "{text:?}");
        }
        assert_eq!(err("[1 2]").to_string(), "expected `,` or `]` in an array at line 1, column 4");
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
