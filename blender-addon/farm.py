"""The `farm` command, driven from Blender: argument lists, background runs and their output.

No bpy here: this module builds the command lines, runs `farm` as a child process whose output
threads collect, and reads its JSON. The add-on holds no AWS credentials and makes no AWS call:
`farm` does, with the user's own AWS configuration (environment, ~/.aws).
"""

import json
import os
import shutil
import subprocess
import threading
import time

# Lines kept of a run's output (the last ones; the first error line is kept apart).
MAX_LINES = 200
# farm's progress lines (FARM_PROGRESS=lines): `farm-progress: <done>/<total> <unit> <what>`.
PROGRESS_PREFIX = "farm-progress: "


class FarmNotFound(Exception):
    """No `farm` binary where the preference or PATH says."""


def find_farm(preference=""):
    """The `farm` binary: the preference's path if set, else `farm` on PATH."""
    if preference:
        path = os.path.expanduser(preference)
        if os.path.isfile(path) and os.access(path, os.X_OK):
            return path
        raise FarmNotFound(
            f"the farm binary set in the add-on's preferences, {path}, is not an executable file"
        )
    found = shutil.which("farm")
    if found is None:
        raise FarmNotFound(
            "`farm` is not on PATH: install it (cargo install --path farm-cli --locked) "
            "or set its path in the Render Farm add-on's preferences"
        )
    return found


def key_for(blend, root):
    """The bucket key of `blend` under the project root `root` (its path from the root, with
    forward slashes), so files beside it keep their places; the file's name without a root.
    Raises ValueError when the .blend is not inside the root."""
    blend = os.path.abspath(blend)
    if not root:
        return os.path.basename(blend)
    root = os.path.abspath(root)
    relative = os.path.relpath(blend, root)
    if relative.startswith(os.pardir + os.sep) or relative == os.pardir:
        raise ValueError(f"the .blend {blend} is not inside the project root {root}")
    return relative.replace(os.sep, "/")


def target_args(stack="", bucket=""):
    """Which farm: `--stack NAME` (farm reads the bucket from the stack's outputs) when a stack
    is set, else `--bucket NAME`. ValueError when neither is."""
    if stack and stack.strip():
        return ["--stack", stack.strip()]
    if bucket and bucket.strip():
        return ["--bucket", bucket.strip()]
    raise ValueError(
        "Set the farm's stack (the CloudFormation stack's name) or its bucket "
        "(the stack's BucketName output) first"
    )


def submit_args(
    blend,
    target,
    key,
    frames=None,
    chunk="auto",
    blender="",
    dry_run=False,
    project="",
    replace=False,
):
    """`farm submit`'s arguments (after the binary). `target`: [`target_args`]. `frames` None:
    the scene's own range (`--frames scene`, read from the .blend by farm and the trigger).
    `project`: the project folder farm may upload from (`--project`; default: the .blend's own
    folder). `replace`: stop the key's job if it still runs (`--replace`; without it farm
    refuses)."""
    args = ["submit", blend, *target, "--key", key]
    if project:
        args += ["--project", project]
    args += ["--frames", frames.strip() if frames and frames.strip() else "scene"]
    if chunk and chunk.strip():
        args += ["--chunk", chunk.strip()]
    if blender and blender.strip():
        args += ["--blender", blender.strip()]
    if replace:
        args.append("--replace")
    if dry_run:
        args += ["--dry-run", "--json"]
    return args


def render_args(blend, frames=None, blender="", python=""):
    """`farm render`'s arguments: the scene's range unless `frames` is given; rendered by the
    Blender executable `blender` (`--blender`), else by the Python whose `bpy` module is
    Blender (`--blender-python`), else by farm's own choice."""
    args = ["render", blend]
    if blender:
        args += ["--blender", blender]
    elif python:
        args += ["--blender-python", python]
    if frames and frames.strip():
        args += ["--frames", frames.strip()]
    return args


def job_args(verb, key, target, *extra):
    """`farm status|cancel|retry|download|report KEY --stack S|--bucket B ...`."""
    return [verb, key, *target, *extra]


def default_render_out(blend):
    """Where `farm render` writes by default: `<scene>.farm/` beside the .blend."""
    stem, _ = os.path.splitext(os.path.basename(blend))
    return os.path.join(os.path.dirname(os.path.abspath(blend)), stem + ".farm")


def output_folder(render_filepath):
    """The folder of a scene's output path, already made absolute (`/out/shot_####` -> `/out`,
    `/out/` -> `/out`)."""
    if render_filepath.endswith(("/", os.sep)):
        return render_filepath.rstrip("/" + os.sep) or os.sep
    return os.path.dirname(render_filepath) or "."


def error_line(stderr_lines):
    """farm's own words for a failure: its `farm: error: ...` line (farm prints every error
    as one such line), else the last line it printed."""
    for line in stderr_lines:
        if line.startswith("farm: error: "):
            return line[len("farm: error: ") :]
    for line in reversed(stderr_lines):
        if line.strip():
            return line.strip()
    return "farm failed without a message"


class Status:
    """What the panel shows of `farm status --json`."""

    def __init__(self, document):
        self.document = document
        frames = document.get("frames") or {}
        spend = document.get("spend") or {}
        render = document.get("render_job") or {}
        self.key = document.get("key", "")
        self.state = document.get("status", "")
        self.message = document.get("message")
        self.job_state = render.get("state", "")
        self.done = frames.get("done", 0)
        self.failed = frames.get("failed", 0)
        self.total = frames.get("total", 0)
        self.cost_usd = spend.get("cost_usd")
        self.eta_seconds = spend.get("eta_seconds")
        self.complete = bool(document.get("complete"))
        self.archive = document.get("archive")

    @classmethod
    def parse(cls, text):
        """Reads `farm status --json`'s document; ValueError when it is not one."""
        try:
            document = json.loads(text)
        except json.JSONDecodeError as err:
            raise ValueError(f"farm status printed no JSON document: {err}") from err
        if not isinstance(document, dict) or "status" not in document:
            raise ValueError("farm status printed JSON without a `status`")
        return cls(document)

    def summary(self):
        """One line: state, frames, cost, ETA."""
        if self.state == "rejected":
            return f"rejected: {self.message or 'see farm status'}"
        parts = [self.job_state or self.state, f"{self.done}/{self.total} frames"]
        if self.failed:
            parts.append(f"{self.failed} failed")
        if self.cost_usd is not None:
            parts.append(f"${self.cost_usd:.2f} so far")
        if self.eta_seconds is not None and not self.complete:
            parts.append(f"ETA {format_seconds(self.eta_seconds)}")
        if self.complete:
            parts.append("complete")
        return ", ".join(parts)


def parse_progress(line):
    """A `farm-progress:` line as (done, total, unit, what), or None."""
    if not line.startswith(PROGRESS_PREFIX):
        return None
    words = line[len(PROGRESS_PREFIX) :].split()
    if len(words) < 2 or "/" not in words[0]:
        return None
    done, _, total = words[0].partition("/")
    if not (done.isdigit() and total.isdigit()):
        return None
    return int(done), int(total), words[1], " ".join(words[2:])


def progress_text(progress):
    """`rendering 3/24 frames`, `uploading 1.0/5.0 MiB (20%)`."""
    done, total, unit, what = progress
    if unit == "bytes":
        mib = 1024 * 1024
        amount = f"{done / mib:.1f}/{total / mib:.1f} MiB"
    else:
        amount = f"{done}/{total} {unit}"
    share = f" ({100 * done // total}%)" if total else ""
    return f"{what} {amount}{share}".strip()


def format_seconds(seconds):
    """`42 s`, `3 min 4 s`, `1 h 5 min`."""
    seconds = int(round(seconds))
    if seconds < 60:
        return f"{seconds} s"
    if seconds < 3600:
        return f"{seconds // 60} min {seconds % 60} s"
    return f"{seconds // 3600} h {seconds % 3600 // 60} min"


class Run:
    """One `farm` process in the background. Threads read its output; [`poll`] (called from a
    Blender timer) says whether it ended, so Blender's UI never waits on it."""

    def __init__(self, farm, args, title, cwd=None):
        self.title = title
        self.argv = [farm, *args]
        self.started = time.monotonic()
        self.stdout = []
        self.stderr = []
        self.returncode = None
        self.progress = None
        self._lock = threading.Lock()
        # Progress as lines (farm's progress bars are for terminals).
        env = dict(os.environ, FARM_PROGRESS="lines")
        self.process = subprocess.Popen(
            self.argv,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            encoding="utf-8",
            errors="replace",
            cwd=cwd,
            env=env,
        )
        self._threads = [
            threading.Thread(
                target=self._read, args=(self.process.stdout, self.stdout), daemon=True
            ),
            threading.Thread(
                target=self._read, args=(self.process.stderr, self.stderr), daemon=True
            ),
        ]
        for thread in self._threads:
            thread.start()

    def _read(self, stream, lines):
        for line in stream:
            line = line.rstrip("\n")
            progress = parse_progress(line)
            with self._lock:
                if progress is not None:
                    self.progress = progress
                    continue
                lines.append(line)
                if len(lines) > MAX_LINES and lines is self.stderr:
                    # Keep farm's error line, drop the oldest others.
                    del lines[1 if lines[0].startswith("farm: error: ") else 0]
        stream.close()

    def poll(self):
        """None while running; the exit code once it ended and its output is read."""
        if self.returncode is None and self.process.poll() is not None:
            for thread in self._threads:
                thread.join()
            self.returncode = self.process.returncode
        return self.returncode

    def elapsed(self):
        return time.monotonic() - self.started

    def detail(self):
        """What the status bar shows: farm's progress, else its last line."""
        with self._lock:
            progress = self.progress
        return progress_text(progress) if progress else self.last_line()

    def last_line(self):
        with self._lock:
            for lines in (self.stderr, self.stdout):
                if lines:
                    return lines[-1]
        return ""

    def output(self):
        with self._lock:
            return "\n".join(self.stdout)

    def error(self):
        with self._lock:
            return error_line(self.stderr)

    def stop(self):
        """Asks farm to stop (SIGTERM: it aborts uploads and keeps only whole frames)."""
        if self.process.poll() is None:
            self.process.terminate()
