//! A stand-in Docker Engine API for moto's Batch docker mode, so a Batch job in moto can walk its
//! states up to SUCCEEDED (or FAILED with an exit code) without Docker. moto runs each job's
//! container through the `docker` Python library at `DOCKER_HOST`; this answers the few calls it
//! makes (version, create, inspect, start, logs, wait, kill, remove). Containers show as running
//! until [`FakeDocker::release`], then as exited with [`FakeDocker::set_exit_code`]'s code; they
//! run nothing and log nothing.

use std::sync::atomic::{AtomicBool, AtomicI64, AtomicUsize, Ordering};
use std::sync::Arc;

use crate::stub::{listen, response};

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
        let state = Arc::new(State::default());
        let served = Arc::clone(&state);
        let address = listen(move |method, path| {
            let (status, body) = answer(method, path, &served);
            response(status, "application/json", &[], &body)
        })?;
        Ok(Self {
            host: format!("tcp://{address}"),
            state,
        })
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
