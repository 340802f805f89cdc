//! A tiny HTTP/1.1 client over [`std::net::TcpStream`].
//!
//! Why not a crate: the harness is std-only on purpose (it is compiled for every
//! `cargo test` of the xtask, and the xtask's dependency budget is tight). The
//! only server it ever talks to is a kellnr on the loopback interface, so plain
//! HTTP with `Connection: close` is all that is needed: one request per
//! connection, the response is read to EOF, and chunked bodies are decoded.
//!
//! Also [`FaultServer`]: a fake feed on the loopback interface that answers
//! with one fault (403, an HTML error page, an echoed `Authorization` header, no
//! answer at all), for the error paths a real registry cannot be made to take.

use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::Duration;

/// One HTTP response, fully read.
#[derive(Debug, Clone)]
pub struct Response {
    /// The status code, e.g. 200.
    pub status: u16,
    /// Every header as sent, in order (names as the server spelled them).
    pub headers: Vec<(String, String)>,
    /// The body, de-chunked.
    pub body: Vec<u8>,
}

impl Response {
    /// The first header named `name` (case-insensitive).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers_all(name).next()
    }

    /// Every header named `name` (case-insensitive), e.g. all `Set-Cookie`s.
    pub fn headers_all<'a>(&'a self, name: &str) -> impl Iterator<Item = &'a str> + use<'a> {
        let name = name.to_string();
        self.headers.iter().filter(move |(k, _)| k.eq_ignore_ascii_case(&name)).map(|(_, v)| v.as_str())
    }

    /// The body as text (lossy UTF-8).
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
}

/// Sends one request to `addr` and reads the whole response.
///
/// `headers` are sent as given, after `Host`, `Connection: close` and (when
/// there is a body) `Content-Length`. Timeouts are generous (30 s) but finite
/// so that a wedged server fails a test instead of hanging it.
pub fn request(
    addr: SocketAddr,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> io::Result<Response> {
    let timeout = Duration::from_secs(30);
    let mut stream = TcpStream::connect_timeout(&addr, Duration::from_secs(5))?;
    stream.set_read_timeout(Some(timeout))?;
    stream.set_write_timeout(Some(timeout))?;

    let mut head = format!("{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n");
    if !body.is_empty() || method == "POST" || method == "PUT" {
        head.push_str(&format!("Content-Length: {}\r\n", body.len()));
    }
    for (k, v) in headers {
        head.push_str(&format!("{k}: {v}\r\n"));
    }
    head.push_str("\r\n");
    stream.write_all(head.as_bytes())?;
    stream.write_all(body)?;
    stream.flush()?;

    let mut raw = Vec::new();
    stream.read_to_end(&mut raw)?;
    parse_response(&raw)
}

fn invalid(msg: impl Into<String>) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, msg.into())
}

/// Parses a complete HTTP/1.1 response (status line, headers, body).
pub(crate) fn parse_response(raw: &[u8]) -> io::Result<Response> {
    let split = find(raw, b"\r\n\r\n").ok_or_else(|| invalid("no end of headers in response"))?;
    let head = std::str::from_utf8(&raw[..split]).map_err(|_| invalid("non-UTF-8 headers"))?;
    let rest = &raw[split + 4..];
    let mut lines = head.split("\r\n");
    let status_line = lines.next().unwrap_or_default();
    let status = status_line
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse::<u16>().ok())
        .ok_or_else(|| invalid(format!("bad status line {status_line:?}")))?;
    let headers: Vec<(String, String)> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_string(), v.trim().to_string()))
        .collect();
    let mut resp = Response { status, headers, body: Vec::new() };
    let chunked =
        resp.header("Transfer-Encoding").is_some_and(|v| v.to_ascii_lowercase().contains("chunked"));
    resp.body = if chunked {
        dechunk(rest)?
    } else if let Some(len) = resp.header("Content-Length").and_then(|v| v.parse::<usize>().ok()) {
        rest[..len.min(rest.len())].to_vec()
    } else {
        rest.to_vec()
    };
    Ok(resp)
}

fn dechunk(mut data: &[u8]) -> io::Result<Vec<u8>> {
    let mut out = Vec::new();
    loop {
        let eol = find(data, b"\r\n").ok_or_else(|| invalid("truncated chunk size"))?;
        let size_text = std::str::from_utf8(&data[..eol]).map_err(|_| invalid("bad chunk size"))?;
        let size_text = size_text.split(';').next().unwrap_or_default().trim();
        let size = usize::from_str_radix(size_text, 16)
            .map_err(|_| invalid(format!("bad chunk size {size_text:?}")))?;
        data = &data[eol + 2..];
        if size == 0 {
            return Ok(out);
        }
        if data.len() < size {
            return Err(invalid("truncated chunk"));
        }
        out.extend_from_slice(&data[..size]);
        data = data.get(size + 2..).unwrap_or_default();
    }
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

/// Quotes `s` as a JSON string (with the quotes). Enough for the few request
/// bodies the harness sends; keeps serde out of the harness.
pub fn json_string(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if (c as u32) < 0x20 => out.push_str(&format!("\\u{:04x}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// What a [`FaultServer`] answers to a request that carries an `Authorization`
/// header (one without gets 401 first, as Azure Artifacts answers anonymous
/// requests, so that cargo sends its token).
#[derive(Debug, Clone)]
pub enum Fault {
    /// A fixed answer: status, `Content-Type` and body.
    Answer { status: u16, content_type: &'static str, body: String },
    /// `status` with a body that repeats the request's `Authorization` header, as a
    /// misconfigured server or proxy may: the defect that put tokens on screen.
    EchoAuthorization { status: u16 },
    /// `status` with a body that repeats the credential alone (the header's value
    /// after its scheme, or all of it), with no header name or scheme to spot it by.
    EchoCredential { status: u16 },
    /// Accepts the connection, reads the request and never answers.
    Hang,
}

/// A fake feed on `127.0.0.1:<free port>` answering every request with one
/// [`Fault`]. Std only, and bounded: it serves at most [`FaultServer::MAX_CONNECTIONS`]
/// connections, for at most [`FaultServer::LIFETIME`], holds a hanging connection
/// at most that long, and stops (and joins its threads) when dropped.
pub struct FaultServer {
    addr: SocketAddr,
    stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
    requests: std::sync::Arc<std::sync::atomic::AtomicUsize>,
    acceptor: Option<std::thread::JoinHandle<()>>,
}

impl FaultServer {
    pub const MAX_CONNECTIONS: usize = 200;
    pub const LIFETIME: Duration = Duration::from_secs(300);

    pub fn start(fault: Fault) -> FaultServer {
        use std::sync::Arc;
        use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1:0");
        listener.set_nonblocking(true).expect("non-blocking listener");
        let addr = listener.local_addr().expect("local address");
        let stop = Arc::new(AtomicBool::new(false));
        let requests = Arc::new(AtomicUsize::new(0));
        let (stop2, requests2) = (stop.clone(), requests.clone());
        let acceptor = std::thread::spawn(move || {
            let began = std::time::Instant::now();
            let mut workers = Vec::new();
            while !stop2.load(Ordering::Relaxed)
                && began.elapsed() < Self::LIFETIME
                && workers.len() < Self::MAX_CONNECTIONS
            {
                match listener.accept() {
                    Ok((stream, _)) => {
                        let (fault, stop, requests) = (fault.clone(), stop2.clone(), requests2.clone());
                        workers.push(std::thread::spawn(move || {
                            let _ = serve(stream, &fault, &stop, &requests, began);
                        }));
                    }
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                        std::thread::sleep(Duration::from_millis(10))
                    }
                    Err(_) => break,
                }
            }
            stop2.store(true, Ordering::Relaxed);
            for worker in workers {
                let _ = worker.join();
            }
        });
        FaultServer { addr, stop, requests, acceptor: Some(acceptor) }
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// A sparse index URL on this server, for `CARGO_REGISTRIES_<NAME>_INDEX`.
    pub fn index_url(&self) -> String {
        format!("sparse+http://{}/index/", self.addr)
    }

    /// How many requests it has read so far.
    pub fn requests(&self) -> usize {
        self.requests.load(std::sync::atomic::Ordering::Relaxed)
    }
}

impl Drop for FaultServer {
    fn drop(&mut self) {
        self.stop.store(true, std::sync::atomic::Ordering::Relaxed);
        if let Some(acceptor) = self.acceptor.take() {
            let _ = acceptor.join();
        }
    }
}

/// Answers the requests of one connection: keep-alive, as cargo's curl uses it,
/// unless the request says `Connection: close` (as [`request`] does).
fn serve(
    mut stream: TcpStream,
    fault: &Fault,
    stop: &std::sync::atomic::AtomicBool,
    requests: &std::sync::atomic::AtomicUsize,
    began: std::time::Instant,
) -> io::Result<()> {
    use std::sync::atomic::Ordering;
    stream.set_nonblocking(false)?;
    stream.set_read_timeout(Some(Duration::from_millis(100)))?;
    let mut buf = Vec::new();
    loop {
        // Read one request head (no request the fault server gets has a body).
        let head = loop {
            if let Some(end) = find(&buf, b"\r\n\r\n") {
                let head = String::from_utf8_lossy(&buf[..end]).into_owned();
                buf.drain(..end + 4);
                break head;
            }
            if stop.load(Ordering::Relaxed) || began.elapsed() > FaultServer::LIFETIME {
                return Ok(());
            }
            let mut chunk = [0u8; 4096];
            match stream.read(&mut chunk) {
                Ok(0) => return Ok(()),
                Ok(n) => buf.extend_from_slice(&chunk[..n]),
                Err(e) if matches!(e.kind(), io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut) => {}
                Err(e) => return Err(e),
            }
        };
        requests.fetch_add(1, Ordering::Relaxed);
        let authorization = head
            .split("\r\n")
            .filter_map(|l| l.split_once(':'))
            .find(|(k, _)| k.trim().eq_ignore_ascii_case("authorization"))
            .map(|(_, v)| v.trim().to_owned());
        let (status, content_type, body) = match (&authorization, fault) {
            (None, _) => (401, "text/plain", "authentication required".to_owned()),
            (Some(_), Fault::Hang) => {
                while !stop.load(Ordering::Relaxed) && began.elapsed() < FaultServer::LIFETIME {
                    std::thread::sleep(Duration::from_millis(50));
                }
                return Ok(());
            }
            (Some(_), Fault::Answer { status, content_type, body }) => (*status, *content_type, body.clone()),
            (Some(auth), Fault::EchoAuthorization { status }) => {
                (*status, "text/plain", format!("denied: you sent Authorization: {auth}"))
            }
            (Some(auth), Fault::EchoCredential { status }) => {
                let credential = auth.rsplit(' ').next().unwrap_or_default();
                (*status, "text/plain", format!("denied: unknown credential {credential}"))
            }
        };
        let reason = match status {
            401 => "Unauthorized",
            403 => "Forbidden",
            404 => "Not Found",
            500 => "Internal Server Error",
            _ => "Error",
        };
        let mut answer = format!(
            "HTTP/1.1 {status} {reason}\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\n",
            body.len()
        );
        if status == 401 {
            answer.push_str("WWW-Authenticate: Basic realm=\"fault\"\r\n");
        }
        answer.push_str("\r\n");
        answer.push_str(&body);
        stream.write_all(answer.as_bytes())?;
        stream.flush()?;
        if head.to_ascii_lowercase().contains("\r\nconnection: close") {
            return Ok(());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_content_length_body() {
        let r = parse_response(
            b"HTTP/1.1 404 Not Found\r\nContent-Length: 3\r\nSet-Cookie: a=1\r\nset-cookie: b=2\r\n\r\nabcdef",
        )
        .unwrap();
        assert_eq!(r.status, 404);
        assert_eq!(r.body, b"abc");
        assert_eq!(r.headers_all("SET-COOKIE").collect::<Vec<_>>(), ["a=1", "b=2"]);
    }

    #[test]
    fn parses_chunked_body() {
        let r = parse_response(
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n4\r\nWiki\r\n5;x=y\r\npedia\r\n0\r\n\r\n",
        )
        .unwrap();
        assert_eq!(r.status, 200);
        assert_eq!(r.text(), "Wikipedia");
    }

    #[test]
    fn json_strings_are_escaped() {
        assert_eq!(json_string("a\"b\\c\n\u{1}"), r#""a\"b\\c\n\u0001""#);
    }

    #[test]
    fn fault_server_asks_for_a_token_then_answers_with_its_fault() {
        let server = FaultServer::start(Fault::EchoAuthorization { status: 403 });
        let anonymous = request(server.addr(), "GET", "/index/config.json", &[], b"").unwrap();
        assert_eq!(anonymous.status, 401);
        assert!(anonymous.header("WWW-Authenticate").is_some());
        let with_token =
            request(server.addr(), "GET", "/index/config.json", &[("Authorization", "Bearer t0ken")], b"")
                .unwrap();
        assert_eq!(with_token.status, 403);
        assert_eq!(with_token.text(), "denied: you sent Authorization: Bearer t0ken");
        assert_eq!(server.requests(), 2);
        let server = FaultServer::start(Fault::EchoCredential { status: 403 });
        let auth = [("Authorization", "Bearer t0ken")];
        let with_token = request(server.addr(), "GET", "/index/config.json", &auth, b"").unwrap();
        assert_eq!(with_token.text(), "denied: unknown credential t0ken");
    }
}
