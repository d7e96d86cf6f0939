//! Blender in a sandbox: where unprivileged user namespaces are available, Blender starts
//! through `unshare --user --keep-caps --net --mount`, with
//! - no network: a network namespace of its own holding only a loopback interface that is down.
//!   A URL that reached FFmpeg (a sequencer strip, which the pre-flight does not read) cannot
//!   connect anywhere, not even to this machine's `127.0.0.1`;
//! - no write outside its work folder: in a mount namespace of its own, the work folder is
//!   bind-mounted on itself and every other mount is remounted read-only, so what Blender does as
//!   it opens a file (clearing a disk cache folder beside the .blend, before any script of the
//!   farm runs) or anything else it is made to write there fails with `EROFS`;
//! - no capabilities: a small `sh` script makes the mounts with the capabilities the new user
//!   namespace grants (`--keep-caps`), then `setpriv` drops every one of them (bounding set
//!   included, with `no_new_privs`) before Blender starts, so Blender cannot undo a mount. Its
//!   user namespace maps no user, so it runs as `nobody` (files it writes are still this
//!   user's).
//!
//! Every step `exec`s the next (no extra process, same pid), so stopping and killing Blender work
//! as before.
//!
//! Where the mounts cannot be made (no `mount` or `setpriv`, a mount point `/proc/self/mountinfo`
//! names with an escape) Blender gets the network namespace alone; where namespaces are not
//! allowed at all (a container runtime's seccomp profile, a kernel that forbids them to
//! unprivileged users; Fargate's behaviour was not verified) Blender starts as before. The log
//! says which, once. The renderer's .blend and its project lie in its work folder in any case;
//! the worker's own egress is then what ADR 0007 describes.

use std::ffi::OsStr;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::OnceLock;

use tokio::process::Command;

/// `unshare`'s arguments for the network namespace alone, before the program it runs.
const NETWORK_ONLY: [&str; 3] = ["--user", "--net", "--"];

/// `unshare`'s arguments for the whole sandbox, before [`CONFINE`].
const SANDBOX: [&str; 6] = ["--user", "--keep-caps", "--net", "--mount", "--", "/bin/sh"];

/// Run by `sh -c` inside the namespaces with the work folder and the command after it: the work
/// folder (without symbolic links, as `mountinfo` names it) becomes a mount of its own and the
/// current folder, on that mount; every other mount read-only; any failure stops here, before
/// Blender.
const CONFINE: &str = r#"set -eu
work=$(cd -- "$1" && pwd -P)
shift
mount --bind -- "$work" "$work"
cd -- "$work"
while read -r _ _ _ _ point _; do
  case $point in
    "$work" | "$work"/*) ;;
    *) mount -o remount,bind,ro -- "$point" ;;
  esac
done < /proc/self/mountinfo
exec "$@"
"#;

/// `setpriv`'s arguments before the program: no capability now or after `exec`, for good.
const DROP_CAPABILITIES: [&str; 5] = [
    "--no-new-privs",
    "--bounding-set=-all",
    "--inh-caps=-all",
    "--ambient-caps=-all",
    "--",
];

/// What this machine lets Blender be shut out of (probed once).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Sandbox {
    /// No network, no write outside the work folder, no capabilities.
    Confined { unshare: PathBuf, setpriv: PathBuf },
    /// No network only.
    NetworkOnly { unshare: PathBuf },
    /// Nothing: Blender runs with this machine's network and files.
    None,
}

/// The sandbox this machine allows, probed once by running `true` in it.
pub fn available() -> &'static Sandbox {
    static PROBED: OnceLock<Sandbox> = OnceLock::new();
    PROBED.get_or_init(|| {
        let found = probe();
        match &found {
            Sandbox::Confined { .. } => {
                tracing::debug!("Blender runs without a network and can write only its work folder")
            }
            Sandbox::NetworkOnly { .. } => tracing::warn!(
                "mounts cannot be made in a user namespace here (`mount` or `setpriv` missing, or a mount point the sandbox cannot name): Blender runs without a network but can write outside its work folder"
            ),
            Sandbox::None => tracing::warn!(
                "unprivileged user namespaces are not available here (`unshare --user --net` fails): Blender runs with this machine's network and can write outside its work folder"
            ),
        }
        found
    })
}

fn probe() -> Sandbox {
    let Some(unshare) = on_path("unshare") else {
        return Sandbox::None;
    };
    if let Some(setpriv) = on_path("setpriv") {
        let confined = Sandbox::Confined {
            unshare: unshare.clone(),
            setpriv,
        };
        if runs(&confined.args(&std::env::temp_dir(), Path::new("true"))) {
            return confined;
        }
    }
    let network_only = Sandbox::NetworkOnly { unshare };
    if runs(&network_only.args(Path::new("/"), Path::new("true"))) {
        return network_only;
    }
    Sandbox::None
}

/// Whether the command line `args` runs and succeeds, quietly.
fn runs(args: &[&OsStr]) -> bool {
    let (program, rest) = args.split_first().expect("a program");
    std::process::Command::new(program)
        .args(rest)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|status| status.success())
}

impl Sandbox {
    /// The command line running `program` (found already) in this sandbox, `work` the one
    /// folder it may write.
    fn args<'a>(&'a self, work: &'a Path, program: &'a Path) -> Vec<&'a OsStr> {
        match self {
            Sandbox::Confined { unshare, setpriv } => [unshare.as_os_str()]
                .into_iter()
                .chain(SANDBOX.map(OsStr::new))
                .chain(["-c", CONFINE, "farm-sandbox"].map(OsStr::new))
                .chain([work.as_os_str(), setpriv.as_os_str()])
                .chain(DROP_CAPABILITIES.map(OsStr::new))
                .chain([program.as_os_str()])
                .collect(),
            Sandbox::NetworkOnly { unshare } => [unshare.as_os_str()]
                .into_iter()
                .chain(NETWORK_ONLY.map(OsStr::new))
                .chain([program.as_os_str()])
                .collect(),
            Sandbox::None => vec![program.as_os_str()],
        }
    }
}

/// A command running `program` in the sandbox [`available`] here, able to write only `work`
/// (made absolute against this process's folder: the command itself starts in `work`); a
/// program that cannot be found starts directly, so the error names it.
pub fn command(program: &Path, work: &Path) -> Command {
    let Some(program) = find(program) else {
        return Command::new(program);
    };
    let work = std::path::absolute(work).unwrap_or_else(|_| work.to_owned());
    let args = available().args(&work, &program);
    let (first, rest) = args.split_first().expect("a program");
    let mut command = Command::new(first);
    command.args(rest);
    command
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

#[cfg(test)]
mod tests {
    use super::*;

    /// On this machine (user namespaces allowed, as in CI) a program in the sandbox writes its
    /// work folder, and neither a folder beside it nor one it could make writable again.
    #[tokio::test]
    async fn a_sandboxed_program_writes_its_work_folder_and_nothing_else() {
        assert!(
            matches!(available(), Sandbox::Confined { .. }),
            "no sandbox here: {:?}",
            available()
        );
        let dir = tempfile::tempdir().unwrap();
        let (work, beside) = (dir.path().join("work"), dir.path().join("beside"));
        std::fs::create_dir_all(&work).unwrap();
        std::fs::create_dir_all(&beside).unwrap();
        let output = command(Path::new("sh"), &work)
            .args([
                "-c",
                "touch in-work; touch \"$0/x\"; mount -o remount,bind,rw /",
                beside.to_str().unwrap(),
            ])
            .output()
            .await
            .unwrap();
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(work.join("in-work").is_file(), "{stderr}");
        assert!(!beside.join("x").exists(), "{stderr}");
        assert!(stderr.contains("Read-only file system"), "{stderr}");
        assert!(!output.status.success(), "the remount succeeded: {stderr}");
    }
}
