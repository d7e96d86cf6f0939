//! Blender without a network: where unprivileged user namespaces are available, Blender starts
//! through `unshare --user --net`, in a network namespace of its own holding only
//! a loopback interface that is down. A URL that reached FFmpeg (a sequencer strip, which the
//! pre-flight does not read) then cannot connect anywhere, not even to this machine's
//! `127.0.0.1`. Its user namespace maps no user, so Blender runs there as `nobody` with no
//! capabilities (files it writes are still this user's). `unshare` replaces itself with Blender
//! (no extra process, same pid), so stopping and killing Blender work as before.
//!
//! Where namespaces are not allowed (a container runtime's seccomp profile, a kernel that forbids
//! them to unprivileged users; Fargate's behaviour was not verified) Blender starts as before,
//! and the log says so once; the worker's own egress is then what ADR 0007 describes.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::OnceLock;

use tokio::process::Command;

/// `unshare`'s arguments before the program it runs.
const UNSHARE_ARGS: [&str; 3] = ["--user", "--net", "--"];

/// `unshare`, when it can give a process a private network namespace here (probed once).
pub fn private_network() -> Option<&'static Path> {
    static PROBED: OnceLock<Option<PathBuf>> = OnceLock::new();
    PROBED
        .get_or_init(|| {
            let found = on_path("unshare").filter(|unshare| {
                std::process::Command::new(unshare)
                    .args(UNSHARE_ARGS)
                    .arg("true")
                    .stdin(Stdio::null())
                    .stdout(Stdio::null())
                    .stderr(Stdio::null())
                    .status()
                    .is_ok_and(|status| status.success())
            });
            match &found {
                Some(_) => tracing::debug!("Blender runs in a private network namespace"),
                None => tracing::warn!(
                    "unprivileged user namespaces are not available here (`unshare --user --net` fails): Blender runs with this machine's network"
                ),
            }
            found
        })
        .as_deref()
}

/// A command running `program`, in a private network namespace where [`private_network`]
/// allows; a program that cannot be found starts directly, so the error names it.
pub fn command(program: &Path) -> Command {
    match (private_network(), find(program)) {
        (Some(unshare), Some(program)) => {
            let mut command = Command::new(unshare);
            command.args(UNSHARE_ARGS).arg(program);
            command
        }
        _ => Command::new(program),
    }
}

/// `program` as a path to an existing file: itself, or found on `PATH` for a bare name.
fn find(program: &Path) -> Option<PathBuf> {
    if program.components().count() > 1 {
        return program.is_file().then(|| program.to_owned());
    }
    on_path(&program.to_string_lossy())
}

fn on_path(name: &str) -> Option<PathBuf> {
    std::env::var_os("PATH")
        .iter()
        .flat_map(std::env::split_paths)
        .map(|dir| dir.join(name))
        .find(|candidate| candidate.is_file())
}
