//! `etag::file_matches_etag` against the ETags moto_server gives real uploads: one request, the
//! farm's own parts, and 8 MiB parts as the AWS CLI splits a file.

use farm_core::storage::PutOptions;
use farm_core::Storage;
use farm_io::etag::{file_matches_etag, AWS_CLI_PART_SIZE};
use farm_io::{S3Storage, UploadTuning};
use farm_testkit::Moto;

const BUCKET: &str = "etag-test";
const MIB: usize = 1024 * 1024;

fn bytes(len: usize, seed: u8) -> Vec<u8> {
    (0..len)
        .map(|i| (i as u8).wrapping_mul(31).wrapping_add(seed))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn local_files_match_the_etags_of_their_uploads_and_only_those() -> anyhow::Result<()> {
    let moto = Moto::start().await?;
    moto.bucket(BUCKET).await?;
    let farm_tuning = UploadTuning {
        part_size: 5 * MIB,
        single_put_max: 5 * MIB as u64,
        ..UploadTuning::default()
    };
    let cli_tuning = UploadTuning {
        part_size: AWS_CLI_PART_SIZE as usize,
        single_put_max: AWS_CLI_PART_SIZE - 1,
        ..UploadTuning::default()
    };
    let dir = tempfile::tempdir()?;
    // (name, size, the uploader's tuning, multipart expected)
    let cases = [
        ("small", 1000, &farm_tuning, false),
        ("farm-parts", 11 * MIB + 7, &farm_tuning, true),
        ("cli-parts", 17 * MIB + 1, &cli_tuning, true),
    ];
    for (name, size, tuning, multipart) in cases {
        let path = dir.path().join(name);
        std::fs::write(&path, bytes(size, 7))?;
        let storage = S3Storage::new(moto.s3(), BUCKET).with_upload_tuning(*tuning);
        storage
            .upload_file(name, &path, &PutOptions::default())
            .await?;
        let etag = storage.head(name).await?.unwrap().etag.unwrap();
        assert_eq!(etag.contains('-'), multipart, "{name}: {etag}");
        // `farm submit` always compares with the farm's own tuning: the CLI's split is known.
        assert!(
            file_matches_etag(&path, &etag, &farm_tuning)?,
            "{name}: {etag}"
        );
        // One byte changed, or one more: other content.
        let mut changed = bytes(size, 7);
        changed[size / 2] ^= 1;
        std::fs::write(&path, &changed)?;
        assert!(!file_matches_etag(&path, &etag, &farm_tuning)?, "{name}");
        let mut longer = bytes(size, 7);
        longer.push(0);
        std::fs::write(&path, &longer)?;
        assert!(!file_matches_etag(&path, &etag, &farm_tuning)?, "{name}");
    }
    Ok(())
}
