//! The trigger's dependency check for a project of 1,000 files (10 folders of 100) against
//! moto_server, through the real S3 adapter: the check as built (each folder listed once) next
//! to a HEAD per file, one at a time and 16 at once. Run with
//! `cargo test -p trigger-lambda --bench preflight --offline -- --nocapture` (numbers in
//! BENCHMARKS.md).

use std::time::{Duration, Instant};

use bytes::Bytes;
use farm_blend::{BlendInfo, BlenderVersion, Compression, ExternalFile, FileKind};
use farm_core::storage::PutOptions;
use farm_core::Storage;
use farm_io::S3Storage;
use farm_jobs::deps::{check, Preflight};
use farm_testkit::Moto;
use futures::stream::{self, StreamExt, TryStreamExt};

const BUCKET: &str = "farm-bench";
const FOLDERS: usize = 10;
const PER_FOLDER: usize = 100;
const RUNS: usize = 5;

fn median(mut times: Vec<Duration>) -> (Duration, Duration, Duration) {
    times.sort();
    (times[times.len() / 2], times[0], times[times.len() - 1])
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let moto = Moto::start().await?;
    moto.bucket(BUCKET).await?;
    let storage = S3Storage::new(moto.s3(), BUCKET);
    let keys: Vec<String> = (0..FOLDERS)
        .flat_map(|f| (0..PER_FOLDER).map(move |i| format!("proj/tex{f}/t_{i:03}.png")))
        .collect();
    stream::iter(keys.clone())
        .map(|key| {
            let storage = &storage;
            async move {
                storage
                    .put(&key, Bytes::from(key.clone()), &PutOptions::default())
                    .await
            }
        })
        .buffer_unordered(16)
        .try_collect::<Vec<()>>()
        .await?;
    let files = keys
        .iter()
        .map(|key| ExternalFile {
            kind: FileKind::Image,
            path: format!("//{}", key.strip_prefix("proj/").unwrap_or(key)),
            name: key.clone(),
            packed: false,
            source: Some("FILE".to_owned()),
            tiles: Vec::new(),
            sequence_uses: Vec::new(),
        })
        .collect();
    let info = BlendInfo {
        version: BlenderVersion { major: 4, minor: 2 },
        compression: Compression::None,
        scene: None,
        scenes: Vec::new(),
        files,
        cameras: Vec::new(),
    };

    let mut listed = Vec::new();
    let mut sequential = Vec::new();
    let mut concurrent = Vec::new();
    for _ in 0..RUNS {
        let started = Instant::now();
        let Preflight::Ready(record) =
            check(&storage, "proj/shot.blend", &info, None, false, None).await?
        else {
            anyhow::bail!("files missing");
        };
        listed.push(started.elapsed());
        assert_eq!(record.files.len(), keys.len());

        let started = Instant::now();
        for key in &keys {
            storage.head(key).await?.expect("present");
        }
        sequential.push(started.elapsed());

        let started = Instant::now();
        let found: Vec<_> = stream::iter(keys.iter())
            .map(|key| storage.head(key))
            .buffer_unordered(16)
            .try_collect()
            .await?;
        assert_eq!(found.len(), keys.len());
        concurrent.push(started.elapsed());
    }
    println!("| way (1,000 files in 10 folders) | median | min-max |");
    println!("|---|---|---|");
    for (label, times) in [
        ("the check: each folder listed once", listed),
        ("HEAD per file, one at a time", sequential),
        ("HEAD per file, 16 at once", concurrent),
    ] {
        let (median, min, max) = median(times);
        println!(
            "| {label} | {} ms | {}-{} ms |",
            median.as_millis(),
            min.as_millis(),
            max.as_millis()
        );
    }
    Ok(())
}
