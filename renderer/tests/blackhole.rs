//! Every AWS call is bounded: against an endpoint that accepts connections and never answers,
//! the renderer and the zipper give up after their timeouts and exit TRANSIENT (Batch retries)
//! instead of holding a 4-vCPU task until the attempt timeout (issue 12).

use std::net::TcpListener;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use farm_core::exit;

/// Accepts every connection and never reads or writes a byte.
fn black_hole() -> (TcpListener, String, std::thread::JoinHandle<()>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let accept = listener.try_clone().unwrap();
    let thread = std::thread::spawn(move || {
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
    (listener, url, thread)
}

/// Runs `command` to its end or for at most `limit`; returns its exit code and how long it took.
fn run_bounded(mut command: Command, limit: Duration) -> (Option<i32>, Duration, String) {
    let started = Instant::now();
    let mut child = command
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            let mut stderr = String::new();
            use std::io::Read;
            child
                .stderr
                .take()
                .unwrap()
                .read_to_string(&mut stderr)
                .unwrap();
            return (status.code(), started.elapsed(), stderr);
        }
        if started.elapsed() > limit {
            child.kill().unwrap();
            child.wait().unwrap();
            return (None, started.elapsed(), "still running: killed".to_owned());
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn aws_env(command: &mut Command, endpoint: &str) {
    command
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("AWS_ENDPOINT_URL", endpoint)
        .env("AWS_REGION", "us-east-1")
        .env("AWS_ACCESS_KEY_ID", "testing")
        .env("AWS_SECRET_ACCESS_KEY", "testing")
        .env("AWS_EC2_METADATA_DISABLED", "true")
        // Tight bounds so the test is quick; production keeps the defaults (60 s, 5 attempts).
        .env("AWS_MAX_ATTEMPTS", "2")
        .env(farm_io::clients::ATTEMPT_TIMEOUT_ENV, "1");
}

#[test]
fn the_renderer_gives_up_on_a_black_hole_and_exits_transient() {
    let (_listener, endpoint, _thread) = black_hole();
    let work = tempfile::tempdir().unwrap();
    let mut command = Command::new(env!("CARGO_BIN_EXE_renderer"));
    aws_env(&mut command, &endpoint);
    command
        .env("FARM_BUCKET", "renders")
        .env("FARM_KEY", "scene.blend")
        .env("FARM_FRAMES", "1")
        .env("FARM_WORK_DIR", work.path());
    let (code, took, stderr) = run_bounded(command, Duration::from_secs(60));
    assert_eq!(code, Some(exit::TRANSIENT), "after {took:?}: {stderr}");
    assert!(took < Duration::from_secs(30), "took {took:?}");
}
