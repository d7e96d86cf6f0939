//! Reading the task records of a job of 10,000 tasks (issue 27), as `farm status` (cost so far)
//! and the zipper (the receipt) do with `farm_jobs::tasks::job_records`, against moto_server
//! through the real S3 adapter, next to the same reads one GET after the other (how they were
//! read before). Records are generated here and put into moto. moto_server is one Python
//! process on the same cores, so the reads are bound by it, not by latency; a second part puts
//! the records into `MemoryStorage` behind [`Faulty`] with S3-like 20 ms per GET. Run with
//! `cargo bench -p farm-jobs --bench task_records --profile test -- --nocapture` (numbers in
//! BENCHMARKS.md, "10,000 children").

use std::time::{Duration, Instant};

use bytes::Bytes;
use farm_core::storage::PutOptions;
use farm_core::tasks::TaskRecord;
use farm_core::{JobKeys, Storage};
use farm_io::S3Storage;
use farm_jobs::tasks::{job_records, RECORD_READS_AT_ONCE};
use farm_testkit::{Fault, Faulty, MemoryStorage, Moto, Op};
use futures::stream::{self, StreamExt, TryStreamExt};

const BUCKET: &str = "farm-bench";
const TASKS: usize = 10_000;

fn record(index: usize) -> TaskRecord {
    farm_testkit::render_record(index, Some("\"e1\""), 12.5)
}

/// Peak resident memory of this process so far, MiB (`VmHWM`).
fn peak_mib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("VmHWM:"))
                .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
        })
        .map_or(0, |kib| kib / 1024)
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let moto = Moto::start().await?;
    moto.bucket(BUCKET).await?;
    let storage = S3Storage::new(moto.s3(), BUCKET);
    let keys = JobKeys::new("shots/big.blend");
    let started = Instant::now();
    stream::iter(0..TASKS)
        .map(|index| {
            let (storage, keys) = (&storage, &keys);
            async move {
                let body = Bytes::from(serde_json::to_vec(&record(index))?);
                storage
                    .put(&keys.task_record(index, 1), body, &PutOptions::default())
                    .await?;
                Ok::<_, anyhow::Error>(())
            }
        })
        .buffer_unordered(32)
        .try_collect::<()>()
        .await?;
    println!(
        "put {TASKS} task records into moto in {:.1?}",
        started.elapsed()
    );

    let started = Instant::now();
    let mut one_by_one = 0;
    for object in storage.list(&keys.tasks_prefix()).await? {
        let body = storage.get(&object.key).await?;
        let _: TaskRecord = serde_json::from_slice(&body)?;
        one_by_one += 1;
    }
    let sequential: Duration = started.elapsed();
    assert_eq!(one_by_one, TASKS);

    let started = Instant::now();
    let records = job_records(&storage, &keys, Some("\"e1\"")).await?;
    let concurrent = started.elapsed();
    assert_eq!(records.len(), TASKS);
    let receipt = farm_core::receipt::Receipt::compute(&records, TASKS, None);
    assert_eq!(receipt.tasks, TASKS);

    println!("| {TASKS} task records from moto | time | peak RSS of this process |");
    println!("|---|---|---|");
    println!(
        "| one GET after the other (before) | {:.1} s | |",
        sequential.as_secs_f64()
    );
    println!(
        "| `job_records` ({RECORD_READS_AT_ONCE} at once) + `Receipt::compute` | {:.1} s | {} MiB |",
        concurrent.as_secs_f64(),
        peak_mib()
    );
    with_latency().await
}

/// 20 ms a GET, no server in the way: one by one against `job_records`.
async fn with_latency() -> anyhow::Result<()> {
    const LATENCY: Duration = Duration::from_millis(20);
    println!("| with {LATENCY:?} a GET (MemoryStorage behind Faulty) | time | |");
    for count in [1_000, TASKS] {
        let storage = Faulty::new(MemoryStorage::new());
        let keys = JobKeys::new(format!("latency-{count}.blend"));
        for index in 0..count {
            let body = Bytes::from(serde_json::to_vec(&record(index))?);
            storage
                .put(&keys.task_record(index, 1), body, &PutOptions::default())
                .await?;
        }
        storage.inject(Fault::on(Op::Get).delay(LATENCY));
        if count <= 1_000 {
            let started = Instant::now();
            for object in storage.list(&keys.tasks_prefix()).await? {
                let _: TaskRecord = serde_json::from_slice(&storage.get(&object.key).await?)?;
            }
            println!(
                "| {count} records one GET after the other | {:.1} s | |",
                started.elapsed().as_secs_f64()
            );
        }
        let started = Instant::now();
        let records = job_records(&storage, &keys, Some("\"e1\"")).await?;
        assert_eq!(records.len(), count);
        println!(
            "| {count} records, `job_records` | {:.1} s | |",
            started.elapsed().as_secs_f64()
        );
    }
    Ok(())
}
