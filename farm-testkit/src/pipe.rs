//! A named pipe a stand-in Blender reports through. Blender can write no file outside its work
//! folder (`renderer::sandbox`), and the work folder may be gone when the run ends, but a pipe is
//! no file of the read-only mounts: a stand-in opens it by path and writes, as often and from as
//! many processes as it likes.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;

/// A named pipe at a path, read on a thread from [`Pipe::listen`] to [`Pipe::read`].
#[derive(Debug)]
pub struct Pipe {
    path: PathBuf,
    done: Arc<AtomicBool>,
    reader: JoinHandle<std::io::Result<Vec<u8>>>,
}

impl Pipe {
    /// Makes the pipe at `path` (unless there is one) and reads whatever each writer writes.
    pub fn listen(path: &Path) -> anyhow::Result<Self> {
        if !path.exists() {
            let made = std::process::Command::new("mkfifo").arg(path).status()?;
            anyhow::ensure!(made.success(), "mkfifo {} failed", path.display());
        }
        let done = Arc::new(AtomicBool::new(false));
        let reader = {
            let (path, done) = (path.to_owned(), done.clone());
            std::thread::spawn(move || {
                let mut all = Vec::new();
                // Each open waits for a writer and reads to its end; a writer opening in between
                // waits for the next open.
                while !done.load(Ordering::SeqCst) {
                    all.extend(std::fs::read(&path)?);
                }
                Ok(all)
            })
        };
        Ok(Self {
            path: path.to_owned(),
            done,
            reader,
        })
    }

    /// Everything written to the pipe since [`Pipe::listen`]; call it once the writers are gone.
    pub fn read(self) -> anyhow::Result<Vec<u8>> {
        self.done.store(true, Ordering::SeqCst);
        // Opening for reading and writing never blocks: it lets a reader's open through, and
        // closing it ends that read. Again until the reader has seen `done`.
        while !self.reader.is_finished() {
            drop(
                std::fs::OpenOptions::new()
                    .read(true)
                    .write(true)
                    .open(&self.path)?,
            );
            std::thread::sleep(std::time::Duration::from_millis(10));
        }
        self.reader
            .join()
            .map_err(|_| anyhow::anyhow!("the pipe's reader panicked"))?
            .map_err(Into::into)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_writers_bytes_are_read_and_nothing_when_no_one_writes() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("report.pipe");
        let pipe = Pipe::listen(&path).unwrap();
        for line in ["one\n", "two\n"] {
            let mut writer = std::process::Command::new("sh")
                .args(["-c", "cat >> \"$0\"", path.to_str().unwrap()])
                .stdin(std::process::Stdio::piped())
                .spawn()
                .unwrap();
            use std::io::Write;
            writer
                .stdin
                .take()
                .unwrap()
                .write_all(line.as_bytes())
                .unwrap();
            assert!(writer.wait().unwrap().success());
        }
        assert_eq!(pipe.read().unwrap(), b"one\ntwo\n");
        let silent = Pipe::listen(&path).unwrap();
        assert_eq!(silent.read().unwrap(), b"");
    }
}
