//! `farm download`: fetch `frames.zip` (and the movie, for a movie scene), and optionally unpack
//! the archive.
//!
//! Each object streams into a temporary file beside its destination, renamed into place once
//! complete: `OUT/frames.zip` and `OUT/<stem>.<ext>` are whole or absent. Unpacking checks every entry's CRC and writes
//! each frame the same way.

use std::path::{Component, Path, PathBuf};

use anyhow::{anyhow, bail, Context};
use farm_core::manifest::JobManifest;
use farm_core::storage::{get_json, Storage, StorageError};
use farm_core::JobKeys;
use futures::TryStreamExt;
use tokio::io::AsyncWriteExt;
use tokio_util::compat::FuturesAsyncReadCompatExt;

use crate::aws::{Aws, Site};
use crate::cli::DownloadArgs;
use crate::out::{download_out, prepare_out};
use crate::progress::human_bytes;
use crate::shutdown::Shutdown;
use crate::{progress, shell_quote, Interrupted};

/// Runs `farm download`.
pub async fn run(args: &DownloadArgs) -> anyhow::Result<()> {
    let shutdown = Shutdown::listen();
    let out = args.out.clone().unwrap_or_else(|| download_out(&args.key));
    prepare_out(&out).await?;
    let record = format!("s3://{}/{}\n", args.bucket, args.key);
    if !args.force {
        refuse_overwrite(&out, &record, args.unpack).await?;
    }
    let aws = Aws::load().await;
    let archive = out.join("frames.zip");
    let (site, storage) = (aws.site(), aws.storage(&args.bucket));
    let fetch = async {
        let size = fetch(&site, &storage, args, &out, &archive).await?;
        let movie = fetch_movie(&site, &storage, args, &out).await?;
        anyhow::Ok((size, movie))
    };
    let (size, movie) = tokio::select! {
        () = shutdown.signal() => {
            return Err(Interrupted("download stopped; what was written is whole".into()).into());
        }
        fetched = fetch => fetched?,
    };
    let record_path = out.join(DOWNLOAD_RECORD);
    tokio::fs::write(&record_path, record)
        .await
        .with_context(|| format!("cannot write {}", record_path.display()))?;
    println!("archive: {} ({})", archive.display(), human_bytes(size));
    match movie {
        Some(MovieFetch::Fetched(path, size)) => {
            println!("movie:   {} ({})", path.display(), human_bytes(size));
        }
        Some(MovieFetch::NotYet(key)) => println!(
            "movie:   not made yet (s3://{}/{key}): the movie job runs after the archive, or it failed; see farm status {} --bucket {}",
            args.bucket,
            shell_quote(&args.key),
            shell_quote(&args.bucket)
        ),
        None => {}
    }
    if args.unpack {
        let frames_dir = out.join("frames");
        let unpack = unpack(&archive, &frames_dir);
        let count = tokio::select! {
            () = shutdown.signal() => {
                return Err(Interrupted("unpacking stopped; the frames written so far are whole".into()).into());
            }
            count = unpack => count?,
        };
        println!("frames:  {}/ ({count} files)", frames_dir.display());
    }
    Ok(())
}

/// The file a download leaves in its folder, naming the job (`s3://bucket/key`): downloading
/// the same job again replaces its own files, while a local render's files, or another job's,
/// are replaced only with `--force`.
pub const DOWNLOAD_RECORD: &str = ".farm-download";

/// Fails, before anything is fetched, when `out` holds an archive (or, when unpacking, frames)
/// that this job's earlier download did not write.
async fn refuse_overwrite(out: &Path, record: &str, unpack: bool) -> anyhow::Result<()> {
    let ours = tokio::fs::read_to_string(out.join(DOWNLOAD_RECORD))
        .await
        .is_ok_and(|r| r == record);
    if ours {
        return Ok(());
    }
    let mut held = Vec::new();
    let archive = out.join("frames.zip");
    if tokio::fs::symlink_metadata(&archive).await.is_ok() {
        held.push(archive.display().to_string());
    }
    let frames = out.join("frames");
    if unpack {
        if let Ok(mut entries) = tokio::fs::read_dir(&frames).await {
            if entries.next_entry().await.ok().flatten().is_some() {
                held.push(format!("{}/", frames.display()));
            }
        }
    }
    if held.is_empty() {
        return Ok(());
    }
    bail!(
        "{} already holds {}, written by a local render or another job: farm download replaces only its own earlier download. Download elsewhere (--out DIR), or add --force to replace them",
        out.display(),
        held.join(" and ")
    )
}

/// The movie of a movie scene's job (`job.json` names it), fetched or not there yet.
enum MovieFetch {
    Fetched(PathBuf, u64),
    NotYet(String),
}

/// Streams the job's movie, `<key>/<stem>.<ext>`, into `OUT/<stem>.<ext>` when `job.json`
/// names one; `None` for a job of stills.
async fn fetch_movie<S: Storage>(
    site: &Site,
    storage: &S,
    args: &DownloadArgs,
    out: &Path,
) -> anyhow::Result<Option<MovieFetch>> {
    let keys = JobKeys::new(args.key.as_str());
    let manifest = match get_json::<JobManifest>(storage, &keys.manifest()).await {
        Ok(manifest) => manifest,
        // The archive is there: a job.json gone or unreadable names no movie.
        Err(StorageError::NotFound { .. } | StorageError::Json { .. }) => return Ok(None),
        Err(err) => return Err(site.storage_error(&err, &format!("reading `{}`", keys.manifest()))),
    };
    let Some(extension) = manifest.movie else {
        return Ok(None);
    };
    let key = keys.movie(&extension);
    let doing = format!("downloading s3://{}/{key}", args.bucket);
    let length = match storage.head(&key).await {
        Ok(Some(meta)) => meta.size,
        Ok(None) => return Ok(Some(MovieFetch::NotYet(key))),
        Err(err) => return Err(site.storage_error(&err, &doing)),
    };
    let name = key.rsplit('/').next().unwrap_or(&key);
    let dest = out.join(name);
    let size = stream_to(site, storage, &key, length, out, &dest, &doing).await?;
    Ok(Some(MovieFetch::Fetched(dest, size)))
}

/// Streams `<key>/frames.zip` into `dest`; returns its size.
async fn fetch<S: Storage>(
    site: &Site,
    storage: &S,
    args: &DownloadArgs,
    out: &Path,
    dest: &Path,
) -> anyhow::Result<u64> {
    let key = JobKeys::new(args.key.as_str()).zip();
    let doing = format!("downloading s3://{}/{key}", args.bucket);
    let missing = || {
        anyhow!(
            "there is no archive for `{}` yet (s3://{}/{key}): the job is still running or it failed; see farm status {} --bucket {}",
            args.key,
            args.bucket,
            shell_quote(&args.key),
            shell_quote(&args.bucket)
        )
    };
    let length = match storage.head(&key).await {
        Ok(Some(meta)) => meta.size,
        Ok(None) => {
            // A HEAD cannot tell a missing bucket, or no job at all, from a job still running:
            // the job's job.json can.
            site.manifest(storage, &args.bucket, &args.key).await?;
            return Err(missing());
        }
        Err(err) => return Err(site.storage_error(&err, &doing)),
    };
    match stream_to(site, storage, &key, length, out, dest, &doing).await {
        Err(err) if err.downcast_ref::<Gone>().is_some() => Err(missing()),
        other => other,
    }
}

/// The object was deleted between its HEAD and its GET.
#[derive(Debug, thiserror::Error)]
#[error("the object is gone")]
struct Gone;

/// Streams the object `key` of `length` bytes into `dest` (in `out`) through a temporary file
/// renamed into place once whole; returns its size.
async fn stream_to(
    site: &Site,
    storage: &impl Storage,
    key: &str,
    length: u64,
    out: &Path,
    dest: &Path,
    doing: &str,
) -> anyhow::Result<u64> {
    let mut chunks = match storage.get_stream(key).await {
        Ok(chunks) => chunks,
        Err(StorageError::NotFound { .. }) => return Err(Gone.into()),
        Err(err) => return Err(site.storage_error(&err, doing)),
    };
    let name = dest
        .file_name()
        .map_or_else(String::new, |n| n.to_string_lossy().into_owned());
    let temp = tempfile::Builder::new()
        .prefix(&format!(".{name}."))
        .suffix(".partial")
        .tempfile_in(out)
        .with_context(|| format!("cannot create a file in {}", out.display()))?;
    let (file, temp_path) = temp.into_parts();
    let mut file = tokio::fs::File::from_std(file);
    let bar = progress::bytes(length, "download");
    let mut written = 0u64;
    while let Some(chunk) = chunks.try_next().await.map_err(|e| {
        anyhow!("{doing}: the connection failed mid-way ({e}); run the command again")
    })? {
        file.write_all(&chunk)
            .await
            .with_context(|| format!("cannot write in {}", out.display()))?;
        written += chunk.len() as u64;
        bar.set_position(written);
    }
    bar.finish_and_clear();
    file.flush()
        .await
        .with_context(|| format!("cannot write in {}", out.display()))?;
    drop(file);
    if written != length {
        bail!("{doing}: got {written} of {length} bytes (the object was replaced, or the connection broke); run the command again");
    }
    temp_path
        .persist(dest)
        .with_context(|| format!("cannot write {}", dest.display()))?;
    Ok(written)
}

/// An entry name as a safe relative path: no absolute paths, no `..`, no drive prefixes.
pub fn safe_entry_path(name: &str) -> Option<PathBuf> {
    if name.contains('\\') || name.contains('\0') {
        return None;
    }
    let path = Path::new(name);
    let mut clean = PathBuf::new();
    for component in path.components() {
        match component {
            Component::Normal(part) => clean.push(part),
            Component::CurDir => {}
            _ => return None,
        }
    }
    (!clean.as_os_str().is_empty()).then_some(clean)
}

/// Extracts every file of `archive` into `dir`, checking each CRC; returns how many.
pub async fn unpack(archive: &Path, dir: &Path) -> anyhow::Result<usize> {
    let shown = archive.display();
    let file = tokio::fs::File::open(archive)
        .await
        .with_context(|| format!("cannot open {shown}"))?;
    let mut reader =
        async_zip::tokio::read::seek::ZipFileReader::with_tokio(tokio::io::BufReader::new(file))
            .await
            .map_err(|e| anyhow!("{shown} is not a readable zip: {e}"))?;
    tokio::fs::create_dir_all(dir)
        .await
        .with_context(|| format!("cannot create {}", dir.display()))?;
    let count = reader.file().entries().len();
    let bar = progress::frames(count as u64);
    bar.set_prefix("unpacking");
    let mut files = 0;
    for index in 0..count {
        let (name, crc, is_dir) = {
            let entry = &reader.file().entries()[index];
            let name = entry
                .filename()
                .as_str()
                .map_err(|e| anyhow!("{shown}: entry {index} has an unreadable name: {e}"))?
                .to_owned();
            (name, entry.crc32(), entry.dir().unwrap_or(false))
        };
        let relative = safe_entry_path(&name).ok_or_else(|| {
            anyhow!("{shown}: refusing the entry `{name}`, which points outside the folder")
        })?;
        let dest = dir.join(&relative);
        if is_dir {
            tokio::fs::create_dir_all(&dest)
                .await
                .with_context(|| format!("cannot create {}", dest.display()))?;
            continue;
        }
        if let Some(parent) = dest.parent() {
            tokio::fs::create_dir_all(parent)
                .await
                .with_context(|| format!("cannot create {}", parent.display()))?;
        }
        let mut entry = reader
            .reader_without_entry(index)
            .await
            .map_err(|e| anyhow!("{shown}: cannot read `{name}`: {e}"))?;
        let temp = tempfile::Builder::new()
            .prefix(".unpack.")
            .suffix(".partial")
            .tempfile_in(dest.parent().unwrap_or(dir))
            .with_context(|| format!("cannot write in {}", dir.display()))?;
        let (std_file, temp_path) = temp.into_parts();
        let mut out = tokio::fs::File::from_std(std_file);
        let mut compat = (&mut entry).compat();
        tokio::io::copy(&mut compat, &mut out)
            .await
            .map_err(|e| anyhow!("{shown}: cannot extract `{name}`: {e}"))?;
        out.flush()
            .await
            .with_context(|| format!("cannot write {}", dest.display()))?;
        drop(out);
        if entry.compute_hash() != crc {
            bail!("{shown}: `{name}` is corrupt (its CRC does not match); download it again");
        }
        temp_path
            .persist(&dest)
            .with_context(|| format!("cannot write {}", dest.display()))?;
        files += 1;
        bar.inc(1);
    }
    bar.finish_and_clear();
    Ok(files)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entries_stay_inside_the_folder() {
        assert_eq!(safe_entry_path("0001.png"), Some(PathBuf::from("0001.png")));
        assert_eq!(safe_entry_path("./a/b.png"), Some(PathBuf::from("a/b.png")));
        for bad in ["../x", "/etc/passwd", "a/../../b", "", "a\\b", "."] {
            assert_eq!(safe_entry_path(bad), None, "{bad:?}");
        }
    }
}
