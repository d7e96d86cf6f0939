//! `S3Storage::from_env` reads the standard AWS variables and uses path-style addressing when an
//! endpoint URL is set (moto on 127.0.0.1 has no virtual-hosted bucket names).
//!
//! Alone in its test binary: it sets process environment variables.

use bytes::Bytes;
use farm_core::storage::PutOptions;
use farm_core::Storage;
use farm_io::S3Storage;
use farm_testkit::{unique_prefix, Moto};

#[tokio::test]
async fn from_env_talks_to_the_configured_endpoint() -> anyhow::Result<()> {
    let moto = Moto::start().await?;
    moto.bucket("from-env").await?;
    for (name, value) in moto.env() {
        std::env::set_var(name, value);
    }
    std::env::remove_var("AWS_PROFILE");

    let storage = S3Storage::from_env("from-env").await;
    assert_eq!(storage.bucket(), "from-env");
    let key = format!("{}job.json", unique_prefix("env"));
    storage
        .put(&key, Bytes::from_static(b"{}"), &PutOptions::default())
        .await?;
    assert_eq!(storage.get(&key).await?, Bytes::from_static(b"{}"));
    let listed = moto
        .s3()
        .list_objects_v2()
        .bucket("from-env")
        .send()
        .await?;
    assert_eq!(listed.contents().len(), 1);
    Ok(())
}
