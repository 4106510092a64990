//! The HTTP/1.1 side of `check-http`: the URL and expectation (parsed from the file), the
//! request, and the reading of a response. Pure functions apart from [`get`], which talks to
//! the server over an already connected stream.

use std::io::{Read, Write};

/// Most of the body looked at for the expected substring.
pub const MAX_BODY: usize = 64 * 1024;
/// Most of the status line and headers read.
const MAX_HEAD: usize = 16 * 1024;

/// What `check-http` asks for.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Spec {
    /// Host as written in the URL (name, IPv4 or `[IPv6]`), for the connection and `Host:`.
    pub host: String,
    pub port: u16,
    /// Path and query, starting with `/`.
    pub path: String,
    /// Accepted status codes, inclusive.
    pub status: (u16, u16),
    /// Text the first [`MAX_BODY`] bytes of the body must contain.
    pub body: Option<String>,
}

impl Spec {
    /// `host:port` for connecting.
    pub fn addr(&self) -> String {
        format!("{}:{}", self.host, self.port)
    }
}

/// Parses the file: line 1 the URL (`http://HOST[:PORT][/PATH]`), line 2 (optional) the
/// accepted status, `200` or a range `200-399` (default `200-399`), line 3 (optional) a
/// substring the body must contain.
pub fn parse(text: &str) -> Result<Spec, String> {
    let mut lines = text.lines();
    let url = lines.next().unwrap_or("").trim();
    let rest = url
        .strip_prefix("http://")
        .ok_or_else(|| format!("not an http:// URL: {url:?}"))?;
    let (hostport, path) = match rest.find('/') {
        Some(k) => (&rest[..k], &rest[k..]),
        None => (rest, "/"),
    };
    let (host, port) = if let Some(v6) = hostport.strip_prefix('[') {
        let (h, after) = v6
            .split_once(']')
            .ok_or_else(|| format!("bad host in {url:?}"))?;
        (format!("[{h}]"), after.strip_prefix(':'))
    } else {
        match hostport.rsplit_once(':') {
            Some((h, p)) => (h.to_string(), Some(p)),
            None => (hostport.to_string(), None),
        }
    };
    if host.is_empty() || host.contains(|c: char| c.is_whitespace() || c == '@') {
        return Err(format!("bad host in {url:?}"));
    }
    let port = match port {
        None => 80,
        Some(p) => p
            .parse::<u16>()
            .ok()
            .filter(|&p| p > 0)
            .ok_or_else(|| format!("bad port in {url:?}"))?,
    };
    if path.contains(|c: char| c.is_whitespace() || c.is_control()) {
        return Err(format!("bad path in {url:?}"));
    }
    let status = match lines.next().map(str::trim).filter(|l| !l.is_empty()) {
        None => (200, 399),
        Some(s) => parse_status(s).ok_or_else(|| format!("bad status {s:?}"))?,
    };
    let body = lines
        .next()
        .map(|l| l.trim_end_matches('\r'))
        .filter(|l| !l.is_empty())
        .map(str::to_string);
    Ok(Spec {
        host,
        port,
        path: path.to_string(),
        status,
        body,
    })
}

fn parse_status(s: &str) -> Option<(u16, u16)> {
    let code = |t: &str| {
        t.trim()
            .parse::<u16>()
            .ok()
            .filter(|c| (100..=599).contains(c))
    };
    match s.split_once('-') {
        Some((a, b)) => {
            let (a, b) = (code(a)?, code(b)?);
            (a <= b).then_some((a, b))
        }
        None => code(s).map(|c| (c, c)),
    }
}

/// The request bytes.
pub fn request(spec: &Spec) -> Vec<u8> {
    let host = if spec.port == 80 {
        spec.host.clone()
    } else {
        spec.addr()
    };
    format!(
        "GET {} HTTP/1.1\r\nHost: {host}\r\nUser-Agent: rsv-probe\r\nAccept: */*\r\nConnection: close\r\n\r\n",
        spec.path
    )
    .into_bytes()
}

/// A response as far as the probe needs it.
#[derive(Debug, PartialEq, Eq)]
pub struct Response {
    pub status: u16,
    /// The (de-chunked) body, at most [`MAX_BODY`] bytes.
    pub body: Vec<u8>,
}

/// Where the head ends (index after the blank line), if it is complete.
fn head_end(buf: &[u8]) -> Option<usize> {
    buf.windows(4).position(|w| w == b"\r\n\r\n").map(|k| k + 4)
}

/// Has `buf` (head and body so far) everything the probe needs?
pub fn complete(buf: &[u8]) -> bool {
    let Some(h) = head_end(buf) else {
        return buf.len() >= MAX_HEAD;
    };
    let head = String::from_utf8_lossy(&buf[..h]).to_ascii_lowercase();
    let body = buf.len() - h;
    if body >= MAX_BODY {
        return true;
    }
    if let Some(len) = header(&head, "content-length").and_then(|v| v.parse::<usize>().ok()) {
        return body >= len;
    }
    if header(&head, "transfer-encoding").is_some_and(|v| v.contains("chunked")) {
        return buf[h..].windows(5).any(|w| w == b"0\r\n\r\n");
    }
    false
}

fn header<'a>(lower_head: &'a str, name: &str) -> Option<&'a str> {
    lower_head.lines().skip(1).find_map(|l| {
        let (k, v) = l.split_once(':')?;
        (k.trim() == name).then(|| v.trim())
    })
}

/// Parses what the server sent (possibly cut at [`MAX_BODY`] or at end of file).
pub fn parse_response(buf: &[u8]) -> Result<Response, String> {
    let line_end = buf
        .windows(2)
        .position(|w| w == b"\r\n")
        .ok_or_else(|| "no status line".to_string())?;
    let line = String::from_utf8_lossy(&buf[..line_end]);
    let mut words = line.split_whitespace();
    let version = words.next().unwrap_or("");
    if !version.starts_with("HTTP/1.") {
        return Err(format!(
            "not an HTTP/1.x response: {:?}",
            crate::extstate::one_line(line.as_bytes())
        ));
    }
    let status = words
        .next()
        .and_then(|c| c.parse::<u16>().ok())
        .ok_or_else(|| "bad status line".to_string())?;
    let (h, raw) = match head_end(buf) {
        Some(h) => (h, &buf[h..]),
        None => (buf.len(), &buf[buf.len()..]),
    };
    let head = String::from_utf8_lossy(&buf[..h]).to_ascii_lowercase();
    let mut body = if header(&head, "transfer-encoding").is_some_and(|v| v.contains("chunked")) {
        dechunk(raw)
    } else {
        raw.to_vec()
    };
    body.truncate(MAX_BODY);
    Ok(Response { status, body })
}

/// Decodes a chunked body as far as it goes.
pub fn dechunk(mut raw: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    while let Some(k) = raw.windows(2).position(|w| w == b"\r\n") {
        let size_text = String::from_utf8_lossy(&raw[..k]);
        let size_hex = size_text.split(';').next().unwrap_or("").trim();
        let Ok(size) = usize::from_str_radix(size_hex, 16) else {
            break;
        };
        if size == 0 {
            break;
        }
        let data = &raw[k + 2..];
        let take = size.min(data.len());
        out.extend_from_slice(&data[..take]);
        if take < size || out.len() >= MAX_BODY {
            break;
        }
        raw = data.get(size + 2..).unwrap_or(&[]);
    }
    out
}

/// Does the body contain `want`?
pub fn body_has(body: &[u8], want: &str) -> bool {
    let w = want.as_bytes();
    w.is_empty() || body.windows(w.len()).any(|x| x == w)
}

/// Sends the request on `stream` and reads the response (the stream's timeouts bound it).
pub fn get(stream: &mut (impl Read + Write), spec: &Spec) -> std::io::Result<Response> {
    stream.write_all(&request(spec))?;
    let mut buf = Vec::with_capacity(4096);
    let mut chunk = [0u8; 4096];
    loop {
        match stream.read(&mut chunk) {
            Ok(0) => break,
            Ok(n) => {
                buf.extend_from_slice(&chunk[..n]);
                if complete(&buf) {
                    break;
                }
            }
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) if buf.is_empty() => return Err(e),
            Err(_) => break,
        }
    }
    if buf.is_empty() {
        return Err(std::io::Error::new(
            std::io::ErrorKind::UnexpectedEof,
            "connection closed without a response",
        ));
    }
    parse_response(&buf).map_err(std::io::Error::other)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_and_expectations() {
        let s = parse("http://127.0.0.1:8080/health?x=1\n200\nok\n").unwrap();
        assert_eq!(
            (s.host.as_str(), s.port, s.path.as_str(), s.status),
            ("127.0.0.1", 8080, "/health?x=1", (200, 200))
        );
        assert_eq!(s.body.as_deref(), Some("ok"));
        let s = parse("http://localhost").unwrap();
        assert_eq!((s.port, s.path.as_str(), s.status), (80, "/", (200, 399)));
        assert_eq!(s.body, None);
        let s = parse("http://[::1]:81/\n200-299\n").unwrap();
        assert_eq!(
            (s.host.as_str(), s.addr(), s.status),
            ("[::1]", "[::1]:81".to_string(), (200, 299))
        );
        for bad in [
            "https://x/",
            "http://:80/",
            "http://h:0/",
            "http://h:99999/",
            "http://h/a b",
            "http://h/\n99",
            "http://h/\n300-200",
            "",
        ] {
            assert!(parse(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn request_names_the_host() {
        let s = parse("http://127.0.0.1:8080/h").unwrap();
        let r = String::from_utf8(request(&s)).unwrap();
        assert!(
            r.starts_with("GET /h HTTP/1.1\r\nHost: 127.0.0.1:8080\r\n"),
            "{r}"
        );
        assert!(r.ends_with("Connection: close\r\n\r\n"));
    }

    #[test]
    fn responses() {
        let r =
            parse_response(b"HTTP/1.1 503 Service Unavailable\r\nContent-Length: 4\r\n\r\ndown")
                .unwrap();
        assert_eq!((r.status, r.body.as_slice()), (503, &b"down"[..]));
        let chunked = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n4;x=y\r\ndefg\r\n0\r\n\r\n";
        assert!(complete(chunked));
        assert_eq!(parse_response(chunked).unwrap().body, b"abcdefg");
        assert!(!complete(
            b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nabc"
        ));
        assert!(complete(b"HTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\nabc"));
        assert!(!complete(b"HTTP/1.0 200 OK\r\n\r\nuntil eof"));
        assert!(parse_response(b"SSH-2.0-OpenSSH\r\n").is_err());
        assert!(parse_response(b"garbage").is_err());
        assert!(body_has(b"status: ok", "ok") && !body_has(b"status: down", "ok"));
    }
}
