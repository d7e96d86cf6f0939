//! Progress bars on stderr. indicatif hides them by itself when stderr is not a terminal (a
//! pipe, a log file, a test), and `--json` asks for none at all.

use std::io::IsTerminal;
use std::time::Duration;

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

/// How often a bar redraws on its own, so elapsed time and ETA move between events.
const TICK: Duration = Duration::from_millis(200);

/// Whether bars would be shown at all.
pub fn visible() -> bool {
    std::io::stderr().is_terminal()
}

fn new_bar(len: u64, template: &str) -> ProgressBar {
    let bar = ProgressBar::with_draw_target(Some(len), ProgressDrawTarget::stderr());
    // The templates are constants: a broken one is a bug caught by the tests below.
    if let Ok(style) = ProgressStyle::with_template(template) {
        bar.set_style(style.progress_chars("=> "));
    }
    bar.enable_steady_tick(TICK);
    bar
}

/// A bar over `len` frames, with elapsed time and an estimate of the time left.
pub fn frames(len: u64) -> ProgressBar {
    new_bar(len, FRAMES_TEMPLATE)
}

/// A bar over `len` bytes, with throughput and an estimate of the time left.
pub fn bytes(len: u64, prefix: &'static str) -> ProgressBar {
    let bar = new_bar(len, BYTES_TEMPLATE);
    bar.set_prefix(prefix);
    bar
}

/// A spinner for a step of unknown length.
pub fn spinner(message: impl Into<std::borrow::Cow<'static, str>>) -> ProgressBar {
    let bar = ProgressBar::with_draw_target(None, ProgressDrawTarget::stderr());
    if let Ok(style) = ProgressStyle::with_template(SPINNER_TEMPLATE) {
        bar.set_style(style);
    }
    bar.set_message(message);
    bar.enable_steady_tick(TICK);
    bar
}

const FRAMES_TEMPLATE: &str =
    "{prefix:>9.bold} [{elapsed_precise}] [{bar:32}] {pos}/{len} frames, \
     {eta} left {msg}";
const BYTES_TEMPLATE: &str =
    "{prefix:>9.bold} [{elapsed_precise}] [{bar:32}] {bytes}/{total_bytes} \
     ({binary_bytes_per_sec}, {eta} left)";
const SPINNER_TEMPLATE: &str = "{spinner} {msg} [{elapsed}]";

/// `1.2 s`, `3 min 4 s`.
pub fn seconds(duration: Duration) -> String {
    let secs = duration.as_secs_f64();
    if secs < 60.0 {
        format!("{secs:.1} s")
    } else {
        let whole = duration.as_secs();
        format!("{} min {} s", whole / 60, whole % 60)
    }
}

/// `512 B`, `1.5 KiB`, `12.0 MiB`.
pub fn human_bytes(bytes: u64) -> String {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut value = bytes as f64;
    let mut unit = 0;
    while value >= 1024.0 && unit + 1 < UNITS.len() {
        value /= 1024.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{bytes} B")
    } else {
        format!("{value:.1} {}", UNITS[unit])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn templates_are_valid() {
        for template in [FRAMES_TEMPLATE, BYTES_TEMPLATE, SPINNER_TEMPLATE] {
            assert!(ProgressStyle::with_template(template).is_ok(), "{template}");
        }
    }
    #[test]
    fn sizes_read_plainly() {
        assert_eq!(human_bytes(512), "512 B");
        assert_eq!(human_bytes(1536), "1.5 KiB");
        assert_eq!(human_bytes(12 * 1024 * 1024), "12.0 MiB");
    }
}
