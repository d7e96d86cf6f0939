//! The renderer bringing a project down (issue 13): 1 GiB of dependencies (64 files of 16 MiB,
//! bytes generated here, never committed) from moto_server through the real S3 adapter into a
//! work folder, as `renderer::project::download_dependencies` does it (8 downloads at once, each
//! streamed to its file with `If-Match` on the recorded ETag) next to the same downloads one by
//! one and at other widths. Run with
//! `cargo test -p renderer --bench deps_download --offline -- --nocapture` (numbers in
//! BENCHMARKS.md, section renderer).

use std::time::{Duration, Instant};

use bytes::Bytes;
use farm_core::deps::{Dependency, DependencyList};
use farm_core::storage::PutOptions;
use farm_core::Storage;
use farm_io::S3Storage;
use farm_testkit::Moto;
use futures::stream::{self, StreamExt, TryStreamExt};
use renderer::project::{download_dependencies, local_path, DOWNLOADS_AT_ONCE};

const BUCKET: &str = "farm-bench";
const BLEND: &str = "proj/shots/shot.blend";
const LIST: &str = "proj/shots/shot.blend/deps/bench.json";
const FILES: usize = 64;
const FILE_BYTES: usize = 16 << 20;
const RUNS: usize = 3;

/// Incompressible-looking bytes (xorshift), different for every file.
fn body(seed: u64) -> Bytes {
    let mut state = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    let mut out = Vec::with_capacity(FILE_BYTES);
    while out.len() < FILE_BYTES {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        out.extend_from_slice(&state.to_le_bytes());
    }
    Bytes::from(out)
}

fn stats(mut times: Vec<Duration>) -> (Duration, Duration, Duration) {
    times.sort();
    (times[times.len() / 2], times[0], times[times.len() - 1])
}

/// The same downloads as the renderer's (`Storage::download` with `If-Match`), `at_once` at a
/// time.
async fn download_at(
    storage: &S3Storage,
    files: &[Dependency],
    root: &std::path::Path,
    at_once: usize,
) -> anyhow::Result<u64> {
    let sizes: Vec<u64> = stream::iter(files)
        .map(|file| async move {
            let path = local_path(root, &file.key)?;
            tokio::fs::create_dir_all(path.parent().expect("a folder")).await?;
            let meta = storage.download(&file.key, &path, Some(&file.etag)).await?;
            Ok::<_, anyhow::Error>(meta.size)
        })
        .buffer_unordered(at_once)
        .try_collect()
        .await?;
    Ok(sizes.iter().sum())
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let moto = Moto::start().await?;
    moto.bucket(BUCKET).await?;
    let storage = S3Storage::new(moto.s3(), BUCKET);
    let mut files = Vec::with_capacity(FILES);
    for i in 0..FILES {
        let key = format!("proj/shots/tex/t_{:02}/plate_{i:03}.exr", i % 8);
        storage
            .put(&key, body(i as u64 + 1), &PutOptions::default())
            .await?;
        let meta = storage.head(&key).await?.expect("just written");
        files.push(Dependency {
            key,
            kind: "image".into(),
            path: String::new(),
            from: BLEND.into(),
            etag: meta.etag.expect("an ETag"),
            size: meta.size,
        });
    }
    farm_core::storage::put_json(
        &storage,
        LIST,
        &DependencyList {
            files: files.clone(),
        },
    )
    .await?;
    let total: u64 = files.iter().map(|f| f.size).sum();
    println!(
        "{FILES} files of {} MiB: {} MiB",
        FILE_BYTES >> 20,
        total >> 20
    );

    let renderer_way = format!("renderer (`download_dependencies`, {DOWNLOADS_AT_ONCE} at once)");
    let ways: Vec<(String, Option<usize>)> = vec![
        ("one by one".into(), Some(1)),
        ("4 at once".into(), Some(4)),
        (renderer_way, None),
        ("16 at once".into(), Some(16)),
    ];
    let mut results: Vec<(String, Vec<Duration>)> = Vec::new();
    for (label, at_once) in ways {
        let mut times = Vec::with_capacity(RUNS);
        for _ in 0..RUNS {
            let work = tempfile::tempdir()?;
            let started = Instant::now();
            let bytes = match at_once {
                Some(n) => download_at(&storage, &files, work.path(), n).await?,
                None => {
                    download_dependencies(&storage, BLEND, LIST, work.path())
                        .await?
                        .1
                }
            };
            times.push(started.elapsed());
            assert_eq!(bytes, total);
            // Every file arrived whole.
            for file in &files {
                let len = std::fs::metadata(local_path(work.path(), &file.key)?)?.len();
                assert_eq!(len, file.size, "{}", file.key);
            }
        }
        results.push((label, times));
    }
    println!("| way (64 x 16 MiB = 1 GiB) | median | min-max | MiB/s (median) |");
    println!("|---|---|---|---|");
    for (label, times) in results {
        let (median, min, max) = stats(times);
        println!(
            "| {label} | {:.2} s | {:.2}-{:.2} s | {:.0} |",
            median.as_secs_f64(),
            min.as_secs_f64(),
            max.as_secs_f64(),
            (total >> 20) as f64 / median.as_secs_f64()
        );
    }
    Ok(())
}
