//! Logging and signals shared by the farm's binaries.

use std::io::IsTerminal;

use tracing_subscriber::EnvFilter;

/// Sets up `tracing`: one JSON object per line when `format` is `json` (CloudWatch Logs
/// Insights reads the fields), readable text otherwise (coloured only on a terminal). `RUST_LOG`
/// overrides the level (`info`).
pub fn init(format: &str) {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    if format.eq_ignore_ascii_case("json") {
        builder
            .json()
            .with_current_span(true)
            .with_span_list(false)
            .init();
    } else {
        builder
            .with_target(false)
            .with_ansi(std::io::stderr().is_terminal())
            .init();
    }
}

/// Resolves when the process receives SIGTERM (a Batch cancel or a Spot reclaim) or SIGINT.
pub async fn sigterm() {
    use tokio::signal::unix::{signal, SignalKind};
    match (
        signal(SignalKind::terminate()),
        signal(SignalKind::interrupt()),
    ) {
        (Ok(mut term), Ok(mut int)) => {
            tokio::select! {
                _ = term.recv() => {}
                _ = int.recv() => {}
            }
        }
        _ => std::future::pending().await,
    }
}
