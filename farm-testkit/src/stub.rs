//! Just enough of an HTTP/1.1 server for stand-ins of services on 127.0.0.1 (the Docker API
//! moto calls, an AWS endpoint answering a recorded response): keep-alive connections, a
//! thread each, every request answered by one function of its method and path.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::Arc;

use anyhow::Context;

/// Answers requests on a free port of 127.0.0.1 until the process ends: `respond(method,
/// path)` gives the response's bytes (status line, headers, body; the body is left out for
/// `HEAD`). Returns the address.
pub(crate) fn listen(
    respond: impl Fn(&str, &str) -> Vec<u8> + Send + Sync + 'static,
) -> anyhow::Result<SocketAddr> {
    let listener = TcpListener::bind("127.0.0.1:0").context("binding a stand-in server")?;
    let address = listener.local_addr()?;
    let respond = Arc::new(respond);
    std::thread::spawn(move || {
        for stream in listener.incoming().flatten() {
            let respond = Arc::clone(&respond);
            std::thread::spawn(move || {
                let _ = serve(stream, &*respond);
            });
        }
    });
    Ok(address)
}

/// A response's bytes: `HTTP/1.1 <status>`, the headers, `Content-Length` and the body.
pub(crate) fn response(
    status: u16,
    content_type: &str,
    headers: &[(&str, &str)],
    body: &str,
) -> Vec<u8> {
    let mut text = format!(
        "HTTP/1.1 {status} Stand-in\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\n",
        body.len()
    );
    for (name, value) in headers {
        text.push_str(&format!("{name}: {value}\r\n"));
    }
    text.push_str("\r\n");
    text.push_str(body);
    text.into_bytes()
}

/// Answers the requests of one keep-alive connection.
fn serve(stream: TcpStream, respond: &dyn Fn(&str, &str) -> Vec<u8>) -> std::io::Result<()> {
    let mut reader = BufReader::new(stream.try_clone()?);
    let mut writer = stream;
    loop {
        let mut request_line = String::new();
        if reader.read_line(&mut request_line)? == 0 {
            return Ok(());
        }
        let mut length = 0usize;
        loop {
            let mut header = String::new();
            reader.read_line(&mut header)?;
            let header = header.trim_end();
            if header.is_empty() {
                break;
            }
            if let Some((name, value)) = header.split_once(':') {
                if name.eq_ignore_ascii_case("content-length") {
                    length = value.trim().parse().unwrap_or(0);
                }
            }
        }
        let mut body = vec![0; length];
        reader.read_exact(&mut body)?;
        let mut words = request_line.split_whitespace();
        let (method, target) = (words.next().unwrap_or(""), words.next().unwrap_or(""));
        let path = target.split('?').next().unwrap_or("");
        let mut answer = respond(method, path);
        if method == "HEAD" {
            if let Some(end) = answer.windows(4).position(|w| w == b"\r\n\r\n") {
                answer.truncate(end + 4);
            }
        }
        writer.write_all(&answer)?;
        writer.flush()?;
    }
}

/// A stand-in AWS endpoint that answers every request with the same recorded response (an
/// error AWS gives that moto cannot: a bucket in another region, expired credentials), for
/// `AWS_ENDPOINT_URL`.
#[derive(Debug, Clone)]
pub struct CannedEndpoint {
    endpoint: String,
}

impl CannedEndpoint {
    /// Answers every request with `response` (whole: status line, headers, body).
    pub fn start(response: Vec<u8>) -> anyhow::Result<Self> {
        let address = listen(move |_, _| response.clone())?;
        Ok(Self {
            endpoint: format!("http://{address}"),
        })
    }

    /// `http://127.0.0.1:<port>`.
    pub fn endpoint(&self) -> &str {
        &self.endpoint
    }
}
