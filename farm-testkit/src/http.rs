//! Just enough HTTP/1.0 for a local moto_server: one request per connection, read to the end.

use anyhow::{anyhow, bail, Context};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// An answer: status code and body.
#[derive(Debug)]
pub(crate) struct Response {
    pub(crate) status: u16,
    pub(crate) body: String,
}

impl Response {
    /// The text of the first `<tag>...</tag>` element of an XML body.
    pub(crate) fn xml_value(&self, tag: &str) -> Option<&str> {
        let open = format!("<{tag}>");
        let start = self.body.find(&open)? + open.len();
        let end = self.body[start..].find(&format!("</{tag}>"))? + start;
        Some(&self.body[start..end])
    }
}

/// Sends one request to `endpoint` (`http://host:port`) and reads the whole answer.
pub(crate) async fn send(
    endpoint: &str,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> anyhow::Result<Response> {
    let authority = endpoint
        .strip_prefix("http://")
        .ok_or_else(|| anyhow!("only http:// endpoints are supported, not {endpoint}"))?
        .trim_end_matches('/');
    let mut stream = TcpStream::connect(authority)
        .await
        .with_context(|| format!("connecting to {authority}"))?;
    let mut request = format!(
        "{method} {path} HTTP/1.0\r\nHost: {authority}\r\nContent-Length: {}\r\n",
        body.len()
    );
    for (name, value) in headers {
        request.push_str(&format!("{name}: {value}\r\n"));
    }
    request.push_str("\r\n");
    stream.write_all(request.as_bytes()).await?;
    stream.write_all(body).await?;
    let mut answer = Vec::new();
    stream.read_to_end(&mut answer).await?;
    parse(&answer)
}

fn parse(answer: &[u8]) -> anyhow::Result<Response> {
    let text = String::from_utf8_lossy(answer);
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    let status_line = head.lines().next().unwrap_or_default();
    let Some(status) = status_line
        .split_whitespace()
        .nth(1)
        .and_then(|code| code.parse().ok())
    else {
        bail!("not an HTTP answer: {status_line:?}");
    };
    Ok(Response {
        status,
        body: body.to_owned(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn answers_are_parsed() {
        let response =
            parse(b"HTTP/1.1 200 OK\r\nContent-Type: text/xml\r\n\r\n<a><vpcId>vpc-1</vpcId></a>")
                .unwrap();
        assert_eq!(response.status, 200);
        assert_eq!(response.xml_value("vpcId"), Some("vpc-1"));
        assert_eq!(response.xml_value("subnetId"), None);
        assert!(parse(b"garbage").is_err());
    }
}
