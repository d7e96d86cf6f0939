//! An endpoint that accepts connections and never answers, and a way to run a binary against it
//! with a bound: every AWS call must time out rather than hold a task until Batch's attempt
//! timeout.

use std::io::Read;
use std::net::TcpListener;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// A listener on 127.0.0.1 that accepts every connection and never reads or writes a byte.
/// Dropping it stops accepting; connections already held stay open until the process ends.
#[derive(Debug)]
pub struct BlackHole {
    _listener: TcpListener,
    url: String,
}

impl BlackHole {
    pub fn start() -> std::io::Result<Self> {
        let listener = TcpListener::bind("127.0.0.1:0")?;
        let url = format!("http://{}", listener.local_addr()?);
        let accept = listener.try_clone()?;
        std::thread::spawn(move || {
            let mut held = Vec::new();
            for stream in accept.incoming() {
                match stream {
                    Ok(stream) => held.push(stream),
                    Err(_) => break,
                }
                if held.len() > 64 {
                    break;
                }
            }
        });
        Ok(Self {
            _listener: listener,
            url,
        })
    }

    /// `http://127.0.0.1:<port>`.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// Points `command` at the black hole with test credentials and tight bounds (2 attempts
    /// of 1 s each; production keeps the defaults), in an otherwise empty environment.
    pub fn aws_env<'a>(&self, command: &'a mut Command) -> &'a mut Command {
        command
            .env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .env("AWS_ENDPOINT_URL", &self.url)
            .env("AWS_REGION", "us-east-1")
            .env("AWS_ACCESS_KEY_ID", "testing")
            .env("AWS_SECRET_ACCESS_KEY", "testing")
            .env("AWS_EC2_METADATA_DISABLED", "true")
            .env("AWS_MAX_ATTEMPTS", "2")
            .env(farm_core::env::AWS_ATTEMPT_TIMEOUT, "1")
    }
}

/// How a bounded run ended.
#[derive(Debug)]
pub struct BoundedRun {
    /// The exit code; `None` if it was still running at the limit and was killed.
    pub code: Option<i32>,
    pub took: Duration,
    pub stderr: String,
}

/// Runs `command` to its end or for at most `limit`.
pub fn run_bounded(mut command: Command, limit: Duration) -> std::io::Result<BoundedRun> {
    let started = Instant::now();
    let mut child = command
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()?;
    loop {
        if let Some(status) = child.try_wait()? {
            let mut stderr = String::new();
            if let Some(mut pipe) = child.stderr.take() {
                pipe.read_to_string(&mut stderr)?;
            }
            return Ok(BoundedRun {
                code: status.code(),
                took: started.elapsed(),
                stderr,
            });
        }
        if started.elapsed() > limit {
            child.kill()?;
            child.wait()?;
            return Ok(BoundedRun {
                code: None,
                took: started.elapsed(),
                stderr: "still running: killed".to_owned(),
            });
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}
