//! A stand-in Docker Engine API for moto's Batch docker mode, so a Batch job in moto can walk its
//! states up to SUCCEEDED (or FAILED with an exit code) without Docker. moto runs each job's
//! container through the `docker` Python library at `DOCKER_HOST`; this answers the few calls it
//! makes (version, create, inspect, start, logs, wait, kill, remove). Containers show as running
//! until [`FakeDocker::release`], then as exited with [`FakeDocker::set_exit_code`]'s code; they
//! run nothing and log nothing.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicUsize, Ordering};
use std::sync::Arc;

use anyhow::Context;

#[derive(Debug, Default)]
struct State {
    released: AtomicBool,
    exit_code: AtomicI64,
    created: AtomicUsize,
}

/// The stand-in Docker API, listening on 127.0.0.1 until the process ends.
#[derive(Debug, Clone)]
pub struct FakeDocker {
    host: String,
    state: Arc<State>,
}

impl FakeDocker {
    /// Listens on a free port of 127.0.0.1 (a thread per connection).
    pub fn start() -> anyhow::Result<Self> {
        let listener = TcpListener::bind("127.0.0.1:0").context("binding the fake Docker API")?;
        let host = format!("tcp://{}", listener.local_addr()?);
        let state = Arc::new(State::default());
        let served = Arc::clone(&state);
        std::thread::spawn(move || {
            for stream in listener.incoming().flatten() {
                let state = Arc::clone(&served);
                std::thread::spawn(move || {
                    let _ = serve(stream, &state);
                });
            }
        });
        Ok(Self { host, state })
    }

    /// `DOCKER_HOST` for moto_server: `tcp://127.0.0.1:<port>`.
    pub fn host(&self) -> &str {
        &self.host
    }

    /// From now on every container (running or yet to start) has exited.
    pub fn release(&self) {
        self.state.released.store(true, Ordering::SeqCst);
    }

    /// Containers run again until the next [`FakeDocker::release`].
    pub fn hold(&self) {
        self.state.released.store(false, Ordering::SeqCst);
    }

    /// The exit code every container ends with (0 unless set).
    pub fn set_exit_code(&self, code: i64) {
        self.state.exit_code.store(code, Ordering::SeqCst);
    }

    /// Containers created so far.
    pub fn created(&self) -> usize {
        self.state.created.load(Ordering::SeqCst)
    }
}

/// Answers the requests of one keep-alive connection.
fn serve(stream: TcpStream, state: &State) -> std::io::Result<()> {
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
        let (status, answer) = answer(method, path, state);
        let reason = if status < 300 { "OK" } else { "Not Found" };
        write!(
            writer,
            "HTTP/1.1 {status} {reason}\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{answer}",
            answer.len()
        )?;
        writer.flush()?;
    }
}

/// The status and JSON body for one call (API version prefixes such as `/v1.44` ignored).
fn answer(method: &str, path: &str, state: &State) -> (u16, String) {
    let parts: Vec<&str> = path
        .split('/')
        .filter(|p| !p.is_empty())
        .filter(|p| !(p.starts_with('v') && p[1..].starts_with(|c: char| c.is_ascii_digit())))
        .collect();
    let running = !state.released.load(Ordering::SeqCst);
    let code = state.exit_code.load(Ordering::SeqCst);
    match (method, parts.as_slice()) {
        ("GET", ["version"]) => (
            200,
            r#"{"ApiVersion":"1.44","MinAPIVersion":"1.24","Version":"25.0.0"}"#.to_owned(),
        ),
        ("POST", ["containers", "create"]) => {
            let n = state.created.fetch_add(1, Ordering::SeqCst);
            (201, format!(r#"{{"Id":"fake{n}","Warnings":[]}}"#))
        }
        ("GET", ["containers", id, "json"]) => {
            let status = if running { "running" } else { "exited" };
            (
                200,
                format!(
                    r#"{{"Id":"{id}","Name":"/{id}","Image":"fake","State":{{"Status":"{status}","Running":{running},"ExitCode":{code}}},"Config":{{"Tty":false}},"NetworkSettings":{{"IPAddress":"127.0.0.1","Networks":{{}}}}}}"#
                ),
            )
        }
        ("POST", ["containers", _, "wait"]) => (200, format!(r#"{{"StatusCode":{code}}}"#)),
        ("GET", ["containers", _, "logs"]) => (200, String::new()),
        ("POST", ["containers", _, "start" | "kill" | "stop"]) | ("DELETE", ["containers", _]) => {
            (204, String::new())
        }
        _ => (
            404,
            r#"{"message":"not in the fake Docker API"}"#.to_owned(),
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn containers_run_until_released_then_exit_with_the_code() {
        let state = State::default();
        assert_eq!(answer("POST", "/v1.44/containers/create", &state).0, 201);
        let (_, json) = answer("GET", "/v1.44/containers/fake0/json", &state);
        assert!(json.contains(r#""Status":"running""#), "{json}");
        state.released.store(true, Ordering::SeqCst);
        state.exit_code.store(3, Ordering::SeqCst);
        let (_, json) = answer("GET", "/v1.44/containers/fake0/json", &state);
        assert!(json.contains(r#""Status":"exited""#), "{json}");
        assert_eq!(
            answer("POST", "/v1.44/containers/fake0/wait", &state).1,
            r#"{"StatusCode":3}"#
        );
        assert_eq!(answer("GET", "/v1.44/images/x/json", &state).0, 404);
    }
}
