//! Progress on stderr: bars with an ETA on a terminal; plain lines, at most one a second per
//! bar, when stderr is not a terminal (a pipe, a log file, a program such as the Blender
//! add-on), so a long render is never silent. `FARM_PROGRESS=lines` asks for the lines on a
//! terminal too, `FARM_PROGRESS=off` for no progress at all (bars hide themselves where they
//! cannot draw). The lines read:
//!
//! ```text
//! farm-progress: <done>/<total> <frames|bytes> <what>
//! farm-progress: 3/24 frames rendering
//! farm-progress: 1048576/5242880 bytes uploading
//! ```
//!
//! `<what>` is one word (`rendering`, `uploading`, `zipping`, `download`, `unpacking`) and may be
//! absent. A bar whose length is not known yet (`farm render`'s archive before its frames are
//! listed: [`LateBytes`]) prints nothing until it is, never `0/0`. Spinners (steps of unknown
//! length) print nothing in this mode.

use std::io::{IsTerminal, Write};
use std::sync::Mutex;
use std::time::Duration;

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle, TermLike};

/// How often a bar redraws on its own, so elapsed time and ETA move between events.
const TICK: Duration = Duration::from_millis(200);

/// Whether bars would be shown at all.
pub fn visible() -> bool {
    std::io::stderr().is_terminal()
}

/// Whether progress goes as plain lines instead of bars: `FARM_PROGRESS=lines`, or stderr is
/// not a terminal (unless `FARM_PROGRESS` says `bars` or `off`).
fn lines_asked() -> bool {
    match std::env::var(farm_core::env::PROGRESS)
        .as_deref()
        .map(str::trim)
    {
        Ok("lines") => true,
        Ok("bars" | "off") => false,
        _ => !std::io::stderr().is_terminal(),
    }
}

/// Whether progress shows as bars: stderr is a terminal and `FARM_PROGRESS` asks for neither
/// lines nor nothing.
pub fn bars_shown() -> bool {
    !off() && !lines_asked()
}

/// Whether `FARM_PROGRESS=off` asks for no progress at all.
fn off() -> bool {
    std::env::var(farm_core::env::PROGRESS).is_ok_and(|v| v.trim() == "off")
}

fn new_bar(len: u64, template: &str, lines_template: &str) -> ProgressBar {
    let (target, template) = if off() {
        (ProgressDrawTarget::hidden(), template)
    } else if lines_asked() {
        let target = ProgressDrawTarget::term_like_with_hz(Box::new(Lines::default()), 1);
        (target, lines_template)
    } else {
        (ProgressDrawTarget::stderr(), template)
    };
    let bar = ProgressBar::with_draw_target(Some(len), target);
    // The templates are constants: a broken one is a bug caught by the tests below.
    if let Ok(style) = ProgressStyle::with_template(template) {
        bar.set_style(style.progress_chars("=> "));
    }
    bar.enable_steady_tick(TICK);
    bar
}

/// A bar over `len` frames, with elapsed time and an estimate of the time left.
pub fn frames(len: u64) -> ProgressBar {
    new_bar(len, FRAMES_TEMPLATE, FRAMES_LINE)
}

/// The bar of `farm status --watch`: frames done, the jobs' states, the cost so far and the
/// farm's own ETA in the message (indicatif's would measure the polls, not the render).
pub fn watch_bar() -> ProgressBar {
    new_bar(0, WATCH_TEMPLATE, FRAMES_LINE)
}

/// A bar over `len` bytes, with throughput and an estimate of the time left.
pub fn bytes(len: u64, prefix: &'static str) -> ProgressBar {
    let bar = new_bar(len, BYTES_TEMPLATE, BYTES_LINE);
    bar.set_prefix(prefix);
    bar
}

/// A bar over bytes whose total is known only later (an archive's frames, once listed): it
/// shows nothing, as a bar or as a line, until [`LateBytes::update`] gives it a total, so no
/// `0/0 bytes` line is ever printed.
#[derive(Debug)]
pub struct LateBytes {
    prefix: &'static str,
    bar: std::sync::OnceLock<ProgressBar>,
}

impl LateBytes {
    pub fn new(prefix: &'static str) -> Self {
        Self {
            prefix,
            bar: std::sync::OnceLock::new(),
        }
    }

    /// `done` of `total` bytes; nothing while `total` is 0 (not known yet).
    pub fn update(&self, done: u64, total: u64) {
        if total == 0 {
            return;
        }
        let bar = self.bar.get_or_init(|| bytes(total, self.prefix));
        bar.set_length(total);
        bar.set_position(done);
    }

    pub fn finish_and_clear(&self) {
        if let Some(bar) = self.bar.get() {
            bar.finish_and_clear();
        }
    }
}

/// A spinner for a step of unknown length (on a terminal only; nothing in lines).
pub fn spinner(message: impl Into<std::borrow::Cow<'static, str>>) -> ProgressBar {
    let target = if off() || lines_asked() {
        ProgressDrawTarget::hidden()
    } else {
        ProgressDrawTarget::stderr()
    };
    let bar = ProgressBar::with_draw_target(None, target);
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
const WATCH_TEMPLATE: &str =
    "{prefix:>9.bold} [{elapsed_precise}] [{bar:32}] {pos}/{len} frames, {msg}";
const SPINNER_TEMPLATE: &str = "{spinner} {msg} [{elapsed}]";
const FRAMES_LINE: &str = "farm-progress: {pos}/{len} frames {prefix}";
const BYTES_LINE: &str = "farm-progress: {pos}/{len} bytes {prefix}";

/// The "terminal" of `FARM_PROGRESS=lines`: each drawing of a bar becomes one line on stderr
/// (indicatif writes a drawing in pieces, then flushes; cursor moves are ignored).
#[derive(Debug, Default)]
struct Lines {
    drawing: Mutex<String>,
    /// The last line written: a drawing that says nothing new is not repeated.
    last: Mutex<String>,
}

impl TermLike for Lines {
    fn width(&self) -> u16 {
        // Wide enough that indicatif never wraps a line.
        u16::MAX / 2
    }
    fn move_cursor_up(&self, _: usize) -> std::io::Result<()> {
        Ok(())
    }
    fn move_cursor_down(&self, _: usize) -> std::io::Result<()> {
        Ok(())
    }
    fn move_cursor_right(&self, _: usize) -> std::io::Result<()> {
        Ok(())
    }
    fn move_cursor_left(&self, _: usize) -> std::io::Result<()> {
        Ok(())
    }
    fn write_line(&self, s: &str) -> std::io::Result<()> {
        self.write_str(s)
    }
    fn write_str(&self, s: &str) -> std::io::Result<()> {
        self.drawing
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push_str(s);
        Ok(())
    }
    fn clear_line(&self) -> std::io::Result<()> {
        Ok(())
    }
    fn flush(&self) -> std::io::Result<()> {
        let drawing = std::mem::take(&mut *self.drawing.lock().unwrap_or_else(|e| e.into_inner()));
        let line = drawing.trim();
        let mut last = self.last.lock().unwrap_or_else(|e| e.into_inner());
        if line.is_empty() || *last == line {
            return Ok(());
        }
        line.clone_into(&mut last);
        writeln!(std::io::stderr().lock(), "{line}")
    }
}

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
        for template in [
            FRAMES_TEMPLATE,
            BYTES_TEMPLATE,
            SPINNER_TEMPLATE,
            WATCH_TEMPLATE,
            FRAMES_LINE,
            BYTES_LINE,
        ] {
            assert!(ProgressStyle::with_template(template).is_ok(), "{template}");
        }
    }
    /// No bar (so no line) before the total is known; then one, over that total.
    #[test]
    fn a_late_bar_shows_only_once_its_total_is_known() {
        let late = LateBytes::new("zipping");
        late.update(0, 0);
        assert!(late.bar.get().is_none());
        late.update(10, 3087);
        let bar = late.bar.get().expect("a bar once the total is known");
        assert_eq!((bar.position(), bar.length()), (10, Some(3087)));
        late.finish_and_clear();
    }

    #[test]
    fn sizes_read_plainly() {
        assert_eq!(human_bytes(512), "512 B");
        assert_eq!(human_bytes(1536), "1.5 KiB");
        assert_eq!(human_bytes(12 * 1024 * 1024), "12.0 MiB");
    }
}
