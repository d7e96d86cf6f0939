//! One storage conformance suite, run against `LocalStorage` (a temporary folder), against
//! `S3Storage` on moto_server and against the test kit's `MemoryStorage` (which unit tests use in
//! their place). Every suite function works under its own random prefix.
//!
//! Test names: `local::<case>`, `s3::<case>` and `memory::<case>`; `versioned::*` holds what only a
//! versioned S3 bucket has (version ids).

use std::path::Path;
use std::time::Duration;

use anyhow::{ensure, Context};
use bytes::Bytes;
use farm_core::storage::{Metadata, ObjectMeta, PutOptions, StorageError, Tags};
use farm_core::{Storage, StreamUpload};
use futures::{StreamExt, TryStreamExt};

const MIB: usize = 1024 * 1024;

/// Deterministic bytes that differ from one `seed` to another and along the data.
fn pattern(len: usize, seed: u64) -> Bytes {
    let mut state = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    let mut out = Vec::with_capacity(len + 8);
    while out.len() < len {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        out.extend_from_slice(&state.to_le_bytes());
    }
    out.truncate(len);
    Bytes::from(out)
}

fn options_with_metadata() -> PutOptions {
    PutOptions {
        content_type: Some("image/png".to_owned()),
        metadata: Metadata::from([
            ("farm-source-etag".to_owned(), "\"abc123\"".to_owned()),
            ("purpose".to_owned(), "conformance".to_owned()),
        ]),
        ..PutOptions::default()
    }
}

fn keys(objects: &[ObjectMeta]) -> Vec<&str> {
    objects.iter().map(|o| o.key.as_str()).collect()
}

/// Files in `dir`, to check downloads leave no temporary file behind.
fn files_in(dir: &Path) -> anyhow::Result<Vec<String>> {
    let mut names: Vec<String> = std::fs::read_dir(dir)?
        .map(|entry| Ok(entry?.file_name().to_string_lossy().into_owned()))
        .collect::<anyhow::Result<_>>()?;
    names.sort();
    Ok(names)
}

/// Writes `total` bytes (in 1 MiB writes) of `pattern(total, seed)` to a new upload.
async fn write_in_mib<U: StreamUpload>(upload: &mut U, data: &Bytes) -> anyhow::Result<()> {
    for chunk in data.chunks(MIB) {
        upload.write(data.slice_ref(chunk)).await?;
    }
    Ok(())
}

/// Waits up to 10 s for `check` to hold (S3: a spawned abort runs in the background).
async fn eventually<S: Storage>(storage: &S, prefix: &str, key: &str) -> anyhow::Result<()> {
    for _ in 0..100 {
        if storage.open_uploads(prefix).await?.is_empty() && storage.head(key).await?.is_none() {
            return Ok(());
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    anyhow::bail!(
        "upload of {key} still open ({:?}) or object present",
        storage.open_uploads(prefix).await?
    )
}

mod suite {
    use super::*;

    pub(crate) async fn head_get_and_put<S: Storage>(s: &S, p: &str) -> anyhow::Result<()> {
        let key = format!("{p}frames/0001.png");
        assert!(s.head(&key).await?.is_none());
        assert!(matches!(
            s.get(&key).await,
            Err(StorageError::NotFound { .. })
        ));

        let body = pattern(1000, 1);
        s.put(&key, body.clone(), &options_with_metadata()).await?;
        let head = s.head(&key).await?.context("head after put")?;
        assert_eq!(head.key, key);
        assert_eq!(head.size, 1000);
        assert_eq!(head.metadata, options_with_metadata().metadata);
        let first_etag = head.etag.clone().context("an etag")?;
        assert_eq!(s.get(&key).await?, body);

        // Replacing changes the content, the ETag and the metadata.
        s.put(&key, pattern(1000, 2), &PutOptions::default())
            .await?;
        let head = s.head(&key).await?.context("head after replace")?;
        assert_ne!(head.etag.as_deref(), Some(first_etag.as_str()));
        assert!(head.metadata.is_empty(), "{:?}", head.metadata);
        assert_eq!(s.get(&key).await?, pattern(1000, 2));
        Ok(())
    }

    pub(crate) async fn get_range_reads_any_part_of_one_version<S: Storage>(
        s: &S,
        p: &str,
    ) -> anyhow::Result<()> {
        let key = format!("{p}scene.blend");
        let body = pattern(100, 3);
        s.put(&key, body.clone(), &PutOptions::default()).await?;
        let etag = s.head(&key).await?.context("head")?.etag.context("etag")?;
        assert_eq!(s.get_range(&key, 0, 10, None).await?, body.slice(..10));
        assert_eq!(s.get_range(&key, 0, 100, None).await?, body);
        assert_eq!(s.get_range(&key, 0, 1000, None).await?, body);
        assert!(s.get_range(&key, 0, 0, None).await?.is_empty());
        // Inside, across the end, from the end and past it.
        assert_eq!(
            s.get_range(&key, 40, 20, Some(&etag)).await?,
            body.slice(40..60)
        );
        assert_eq!(s.get_range(&key, 90, 20, None).await?, body.slice(90..));
        assert!(s.get_range(&key, 100, 20, None).await?.is_empty());
        assert!(s.get_range(&key, 5000, 20, None).await?.is_empty());

        // Replaced: a range asked of the old version fails, whatever its length.
        s.put(&key, pattern(100, 4), &PutOptions::default()).await?;
        for len in [0, 10] {
            let read = s.get_range(&key, 40, len, Some(&etag)).await;
            assert!(
                matches!(&read, Err(StorageError::Changed { key: k, expected }) if *k == key && *expected == etag),
                "{read:?}"
            );
        }
        assert_eq!(
            s.get_range(&key, 40, 20, None).await?,
            pattern(100, 4).slice(40..60)
        );

        let empty = format!("{p}empty.blend");
        s.put(&empty, Bytes::new(), &PutOptions::default()).await?;
        assert!(s.get_range(&empty, 0, 16, None).await?.is_empty());
        assert!(s.get(&empty).await?.is_empty());
        assert_eq!(s.head(&empty).await?.context("empty object")?.size, 0);

        let missing = format!("{p}missing.blend");
        for len in [16, 0] {
            assert!(matches!(
                s.get_range(&missing, 0, len, None).await,
                Err(StorageError::NotFound { .. })
            ));
        }
        Ok(())
    }

    pub(crate) async fn get_stream_yields_the_whole_object<S: Storage>(
        s: &S,
        p: &str,
    ) -> anyhow::Result<()> {
        use futures::TryStreamExt;
        let key = format!("{p}frames/0001.exr");
        let body = pattern(3 * 1024 * 1024 + 17, 4);
        s.put(&key, body.clone(), &PutOptions::default()).await?;
        let chunks: Vec<Bytes> = s.get_stream(&key).await?.try_collect().await?;
        assert!(chunks.iter().all(|chunk| !chunk.is_empty()));
        assert_eq!(chunks.concat(), body);

        let empty = format!("{p}frames/0002.exr");
        s.put(&empty, Bytes::new(), &PutOptions::default()).await?;
        let chunks: Vec<Bytes> = s.get_stream(&empty).await?.try_collect().await?;
        assert_eq!(chunks.concat(), Bytes::new());

        let missing = format!("{p}frames/0003.exr");
        assert!(matches!(
            s.get_stream(&missing).await.map(|_| ()),
            Err(StorageError::NotFound { .. })
        ));
        Ok(())
    }

    pub(crate) async fn download_streams_to_a_file<S: Storage>(
        s: &S,
        p: &str,
    ) -> anyhow::Result<()> {
        let key = format!("{p}shots/a b ü.blend");
        let body = pattern(3 * MIB + 17, 4);
        s.put(&key, body.clone(), &options_with_metadata()).await?;
        let dir = tempfile::tempdir()?;
        let dest = dir.path().join("scene.blend");

        let meta = s.download(&key, &dest, None).await?;
        assert_eq!(std::fs::read(&dest)?, body);
        assert_eq!(meta.size, body.len() as u64);
        assert_eq!(meta.metadata, options_with_metadata().metadata);
        let head = s.head(&key).await?.context("head")?;
        assert_eq!(meta.etag, head.etag);
        assert_eq!(files_in(dir.path())?, ["scene.blend"]);

        // With the current ETag the download goes through and replaces the file.
        std::fs::write(&dest, b"old")?;
        let etag = head.etag.context("an etag")?;
        s.download(&key, &dest, Some(&etag)).await?;
        assert_eq!(std::fs::read(&dest)?, body);

        // Once the object is replaced, the old ETag is refused and the file is left alone.
        s.put(&key, pattern(2000, 5), &PutOptions::default())
            .await?;
        let refused = s.download(&key, &dest, Some(&etag)).await;
        assert!(
            matches!(&refused, Err(StorageError::Changed { expected, .. }) if *expected == etag),
            "{refused:?}"
        );
        assert_eq!(std::fs::read(&dest)?, body);
        assert_eq!(files_in(dir.path())?, ["scene.blend"]);

        let missing = s
            .download(&format!("{p}missing"), &dir.path().join("m"), None)
            .await;
        assert!(
            matches!(missing, Err(StorageError::NotFound { .. })),
            "{missing:?}"
        );
        assert_eq!(files_in(dir.path())?, ["scene.blend"]);
        Ok(())
    }

    pub(crate) async fn upload_file_small_and_large<S: Storage>(
        s: &S,
        p: &str,
    ) -> anyhow::Result<()> {
        let dir = tempfile::tempdir()?;
        for (name, size, seed) in [
            ("small.zip", MIB + MIB / 2, 6),
            ("large.zip", 12 * MIB + 5, 7),
        ] {
            let path = dir.path().join(name);
            let body = pattern(size, seed);
            std::fs::write(&path, &body)?;
            let key = format!("{p}{name}");
            let etag = s.upload_file(&key, &path, &options_with_metadata()).await?;
            let head = s.head(&key).await?.context("head after upload")?;
            assert_eq!(head.size, size as u64, "{name}");
            // The ETag returned is the one a HEAD and a listing show (a task record names it).
            if name == "small.zip" {
                ensure!(etag.is_some(), "{name}: one request, its ETag returned");
            }
            if let Some(etag) = etag {
                assert_eq!(head.etag.as_ref(), Some(&etag), "{name}");
                let listed = s.list(&key).await?;
                assert_eq!(listed[0].etag.as_ref(), Some(&etag), "{name}");
            }
            assert_eq!(head.metadata, options_with_metadata().metadata, "{name}");
            ensure!(s.get(&key).await? == body, "{name}: content differs");
        }
        assert!(s.open_uploads(p).await?.is_empty());
        let missing = s
            .upload_file(
                &format!("{p}x"),
                &dir.path().join("nope"),
                &PutOptions::default(),
            )
            .await;
        assert!(
            matches!(missing, Err(StorageError::Io { .. })),
            "{missing:?}"
        );
        assert!(s.head(&format!("{p}x")).await?.is_none());
        Ok(())
    }

    pub(crate) async fn create_if_absent_creates_once<S: Storage>(
        s: &S,
        p: &str,
    ) -> anyhow::Result<()> {
        let key = format!("{p}requests/fingerprint");
        let first = Bytes::from_static(b"first");
        assert!(
            s.create_if_absent(&key, first.clone(), &options_with_metadata())
                .await?
        );
        assert!(
            !s.create_if_absent(&key, Bytes::from_static(b"second"), &PutOptions::default())
                .await?
        );
        assert_eq!(s.get(&key).await?, first);
        let head = s.head(&key).await?.context("head")?;
        assert_eq!(head.metadata, options_with_metadata().metadata);

        // After a delete the key is free again.
        s.delete(&key).await?;
        assert!(
            s.create_if_absent(&key, Bytes::from_static(b"third"), &PutOptions::default())
                .await?
        );
        assert_eq!(s.get(&key).await?, Bytes::from_static(b"third"));
        Ok(())
    }

    pub(crate) async fn create_if_absent_has_one_winner<S: Storage>(
        s: &S,
        p: &str,
    ) -> anyhow::Result<()> {
        let key = format!("{p}requests/race");
        let attempts = (0..8u8).map(|i| {
            let key = key.clone();
            async move {
                s.create_if_absent(&key, Bytes::from(vec![i; 4]), &PutOptions::default())
                    .await
            }
        });
        let results = futures::future::try_join_all(attempts).await?;
        assert_eq!(results.iter().filter(|won| **won).count(), 1, "{results:?}");
        Ok(())
    }

    pub(crate) async fn list_is_ordered_and_prefixed<S: Storage>(
        s: &S,
        p: &str,
    ) -> anyhow::Result<()> {
        let names = ["b", "a/2", "a/1", "a b/ü ñ.txt", "ab", "a/sub/x", "é"];
        for (i, name) in names.iter().enumerate() {
            s.put(
                &format!("{p}{name}"),
                pattern(i + 1, i as u64),
                &PutOptions::default(),
            )
            .await?;
        }
        let all = s.list(p).await?;
        let expected: Vec<String> = {
            let mut v: Vec<String> = names.iter().map(|n| format!("{p}{n}")).collect();
            v.sort();
            v
        };
        assert_eq!(
            keys(&all),
            expected.iter().map(String::as_str).collect::<Vec<_>>()
        );
        // Byte order: ' ' < '/' < 'b' < 'é'.
        assert_eq!(
            keys(&all)
                .iter()
                .map(|k| k.strip_prefix(p).unwrap_or(k))
                .collect::<Vec<_>>(),
            ["a b/ü ñ.txt", "a/1", "a/2", "a/sub/x", "ab", "b", "é"]
        );
        for object in &all {
            let name = object.key.strip_prefix(p).unwrap_or(&object.key);
            let index = names
                .iter()
                .position(|n| *n == name)
                .context("listed name")?;
            assert_eq!(object.size, index as u64 + 1, "{name}");
            assert!(object.etag.is_some(), "{name}");
            assert!(object.metadata.is_empty(), "listings carry no metadata");
        }
        assert_eq!(
            keys(&s.list(&format!("{p}a/")).await?),
            [format!("{p}a/1"), format!("{p}a/2"), format!("{p}a/sub/x")]
        );
        assert_eq!(
            keys(&s.list(&format!("{p}a")).await?),
            [
                format!("{p}a b/ü ñ.txt"),
                format!("{p}a/1"),
                format!("{p}a/2"),
                format!("{p}a/sub/x"),
                format!("{p}ab")
            ]
        );
        assert_eq!(
            keys(&s.list(&format!("{p}a/s")).await?),
            [format!("{p}a/sub/x")]
        );
        assert!(s.list(&format!("{p}zzz")).await?.is_empty());
        assert!(s.list(&format!("{p}nothing/here/")).await?.is_empty());
        Ok(())
    }

    pub(crate) async fn listing_past_one_page<S: Storage>(s: &S, p: &str) -> anyhow::Result<()> {
        const COUNT: usize = 1_100;
        futures::stream::iter(0..COUNT)
            .map(|i| async move {
                s.put(
                    &format!("{p}frames/{i:04}.png"),
                    Bytes::from(i.to_string()),
                    &PutOptions::default(),
                )
                .await
            })
            .buffer_unordered(16)
            .try_collect::<Vec<()>>()
            .await?;
        let listed = s.list(p).await?;
        assert_eq!(listed.len(), COUNT);
        for (i, object) in listed.iter().enumerate() {
            assert_eq!(object.key, format!("{p}frames/{i:04}.png"));
            assert_eq!(object.size, i.to_string().len() as u64);
        }
        assert_eq!(s.list(&format!("{p}frames/10")).await?.len(), 100);
        Ok(())
    }

    pub(crate) async fn delete_removes_and_tolerates_missing<S: Storage>(
        s: &S,
        p: &str,
    ) -> anyhow::Result<()> {
        let key = format!("{p}logs/0001.log");
        s.put(&key, Bytes::from_static(b"log"), &options_with_metadata())
            .await?;
        s.delete(&key).await?;
        assert!(s.head(&key).await?.is_none());
        assert!(s.list(p).await?.is_empty());
        s.delete(&key).await?;
        s.delete(&format!("{p}never/existed")).await?;
        // A key written again after a delete has no stale metadata.
        s.put(&key, Bytes::from_static(b"again"), &PutOptions::default())
            .await?;
        assert!(s.head(&key).await?.context("head")?.metadata.is_empty());
        Ok(())
    }

    pub(crate) async fn tags_are_written_read_and_replaced<S: Storage>(
        s: &S,
        p: &str,
    ) -> anyhow::Result<()> {
        let key = format!("{p}scene.blend");
        let tags = |pairs: &[(&str, &str)]| -> Tags {
            pairs
                .iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                .collect()
        };
        assert_eq!(s.get_tags(&key, None).await?, None);
        assert!(matches!(
            s.put_tags(&key, &tags(&[("frames", "1")])).await,
            Err(StorageError::NotFound { .. })
        ));

        // Written with the object, in the order given, values with spaces and the punctuation S3
        // allows intact.
        let written = tags(&[
            ("frames", "1-10 20:2"),
            ("chunk", "2"),
            ("note", "a/b=c+d@e"),
        ]);
        let options = PutOptions {
            tags: written.clone(),
            ..options_with_metadata()
        };
        s.put(&key, pattern(100, 1), &options).await?;
        let head = s.head(&key).await?.context("head after put")?;
        assert_eq!(s.get_tags(&key, None).await?, Some(written.clone()));
        // The version `head` saw (a versioned bucket's) reads the same tags.
        assert_eq!(
            s.get_tags(&key, head.version_id.as_deref()).await?,
            Some(written)
        );

        // Replacing the tags keeps the content, the ETag and the metadata.
        let retagged = tags(&[("frames", "5")]);
        s.put_tags(&key, &retagged).await?;
        assert_eq!(s.get_tags(&key, None).await?, Some(retagged));
        let after = s.head(&key).await?.context("head after retagging")?;
        assert_eq!(after.etag, head.etag);
        assert_eq!(after.metadata, head.metadata);
        assert_eq!(s.get(&key).await?, pattern(100, 1));

        // A streaming upload writes its tags with the object; a plain replacement has none.
        let streamed = format!("{p}streamed.blend");
        let mut upload = s.start_upload(
            &streamed,
            PutOptions {
                tags: tags(&[("frames", "3")]),
                ..PutOptions::default()
            },
        );
        upload.write(pattern(10, 2)).await?;
        upload.finish().await?;
        assert_eq!(
            s.get_tags(&streamed, None).await?,
            Some(tags(&[("frames", "3")]))
        );
        s.put(&key, pattern(100, 3), &PutOptions::default()).await?;
        assert_eq!(s.get_tags(&key, None).await?, Some(Tags::new()));
        s.delete(&key).await?;
        assert_eq!(s.get_tags(&key, None).await?, None);
        Ok(())
    }

    pub(crate) async fn streaming_upload_small<S: Storage>(s: &S, p: &str) -> anyhow::Result<()> {
        let key = format!("{p}frames.zip");
        let mut upload = s.start_upload(&key, options_with_metadata());
        for part in ["zip ", "of ", "frames"] {
            upload.write(Bytes::from(part)).await?;
        }
        assert!(s.head(&key).await?.is_none(), "visible before finish");
        assert_eq!(upload.finish().await?, 13);
        assert_eq!(s.get(&key).await?, Bytes::from_static(b"zip of frames"));
        let head = s.head(&key).await?.context("head")?;
        assert_eq!(head.metadata, options_with_metadata().metadata);
        assert!(s.open_uploads(p).await?.is_empty());

        // Nothing written at all is an empty object.
        let empty = format!("{p}empty.zip");
        assert_eq!(
            s.start_upload(&empty, PutOptions::default())
                .finish()
                .await?,
            0
        );
        assert_eq!(s.head(&empty).await?.context("empty")?.size, 0);
        Ok(())
    }

    pub(crate) async fn streaming_upload_multipart<S: Storage>(
        s: &S,
        p: &str,
    ) -> anyhow::Result<()> {
        let key = format!("{p}big/frames.zip");
        let data = pattern(12 * MIB + 123, 8);
        let mut upload = s.start_upload(&key, options_with_metadata());
        write_in_mib(&mut upload, &data.slice(..9 * MIB)).await?;
        assert_eq!(s.open_uploads(p).await?, std::slice::from_ref(&key));
        assert!(s.head(&key).await?.is_none(), "visible before finish");
        write_in_mib(&mut upload, &data.slice(9 * MIB..)).await?;
        assert_eq!(upload.finish().await?, data.len() as u64);

        assert!(s.open_uploads(p).await?.is_empty());
        let head = s.head(&key).await?.context("head")?;
        assert_eq!(head.size, data.len() as u64);
        assert_eq!(head.metadata, options_with_metadata().metadata);
        let dir = tempfile::tempdir()?;
        let dest = dir.path().join("frames.zip");
        s.download(&key, &dest, None).await?;
        ensure!(std::fs::read(&dest)? == data, "downloaded bytes differ");
        Ok(())
    }

    pub(crate) async fn aborted_upload_leaves_nothing<S: Storage>(
        s: &S,
        p: &str,
    ) -> anyhow::Result<()> {
        let key = format!("{p}aborted.zip");
        let data = pattern(12 * MIB, 9);
        let mut upload = s.start_upload(&key, PutOptions::default());
        write_in_mib(&mut upload, &data.slice(..9 * MIB)).await?;
        assert_eq!(s.open_uploads(p).await?, std::slice::from_ref(&key));
        upload.abort().await?;
        assert!(s.open_uploads(p).await?.is_empty());
        assert!(s.head(&key).await?.is_none());
        assert!(s.list(p).await?.is_empty());

        // A small upload aborted before finishing leaves nothing either.
        let mut small = s.start_upload(&key, PutOptions::default());
        small.write(Bytes::from_static(b"tiny")).await?;
        small.abort().await?;
        assert!(s.head(&key).await?.is_none());
        assert!(s.open_uploads(p).await?.is_empty());
        Ok(())
    }

    pub(crate) async fn dropped_upload_leaves_nothing<S: Storage>(
        s: &S,
        p: &str,
    ) -> anyhow::Result<()> {
        let key = format!("{p}dropped.zip");
        let data = pattern(12 * MIB, 10);
        let mut upload = s.start_upload(&key, PutOptions::default());
        write_in_mib(&mut upload, &data.slice(..9 * MIB)).await?;
        assert_eq!(s.open_uploads(p).await?, std::slice::from_ref(&key));
        drop(upload);
        eventually(s, p, &key).await?;
        assert!(s.list(p).await?.is_empty());

        let mut small = s.start_upload(&key, PutOptions::default());
        small.write(Bytes::from_static(b"tiny")).await?;
        drop(small);
        eventually(s, p, &key).await
    }
}

macro_rules! conformance {
    ($($case:ident),* $(,)?) => {
        mod local {
            use super::*;
            $(
                #[tokio::test]
                async fn $case() -> anyhow::Result<()> {
                    let (_dir, storage) = harness::local()?;
                    suite::$case(&storage, &farm_testkit::unique_prefix(stringify!($case))).await
                }
            )*
        }

        mod s3 {
            use super::*;
            $(
                #[tokio::test]
                async fn $case() -> anyhow::Result<()> {
                    let (_moto, storage) = harness::s3().await?;
                    suite::$case(&storage, &farm_testkit::unique_prefix(stringify!($case))).await
                }
            )*
        }

        mod memory {
            use super::*;
            $(
                #[tokio::test]
                async fn $case() -> anyhow::Result<()> {
                    let storage = farm_testkit::MemoryStorage::new();
                    suite::$case(&storage, &farm_testkit::unique_prefix(stringify!($case))).await
                }
            )*
        }
    };
}

conformance!(
    head_get_and_put,
    get_range_reads_any_part_of_one_version,
    get_stream_yields_the_whole_object,
    download_streams_to_a_file,
    upload_file_small_and_large,
    create_if_absent_creates_once,
    create_if_absent_has_one_winner,
    list_is_ordered_and_prefixed,
    listing_past_one_page,
    delete_removes_and_tolerates_missing,
    tags_are_written_read_and_replaced,
    streaming_upload_small,
    streaming_upload_multipart,
    aborted_upload_leaves_nothing,
    dropped_upload_leaves_nothing,
);

/// What only a versioned bucket has: the version `head` saw names the tags of that upload even
/// after the key was uploaded again (the trigger reads the tags of the version its event names).
mod versioned {
    use super::*;

    #[tokio::test]
    async fn version_ids_name_the_tags_of_each_upload() -> anyhow::Result<()> {
        let (moto, storage) = harness::s3().await?;
        moto.s3()
            .put_bucket_versioning()
            .bucket(storage.bucket())
            .versioning_configuration(
                aws_sdk_s3::types::VersioningConfiguration::builder()
                    .status(aws_sdk_s3::types::BucketVersioningStatus::Enabled)
                    .build(),
            )
            .send()
            .await?;
        let key = format!("{}scene.blend", farm_testkit::unique_prefix("versioned"));
        let tagged = |frames: &str| PutOptions {
            tags: vec![("frames".to_owned(), frames.to_owned())],
            ..PutOptions::default()
        };
        let frames = |frames: &str| Some(vec![("frames".to_owned(), frames.to_owned())]);

        storage.put(&key, pattern(10, 1), &tagged("1")).await?;
        let first = storage.head(&key).await?.context("head")?;
        let first_version = first
            .version_id
            .context("a versioned bucket's version id")?;
        storage.put(&key, pattern(10, 2), &tagged("2")).await?;
        let second = storage.head(&key).await?.context("head")?;
        assert_ne!(second.version_id.as_deref(), Some(first_version.as_str()));

        assert_eq!(
            storage.get_tags(&key, Some(&first_version)).await?,
            frames("1")
        );
        assert_eq!(storage.get_tags(&key, None).await?, frames("2"));
        // A version deleted since the event is gone, as a deleted object is.
        moto.s3()
            .delete_object()
            .bucket(storage.bucket())
            .key(&key)
            .version_id(&first_version)
            .send()
            .await?;
        assert_eq!(storage.get_tags(&key, Some(&first_version)).await?, None);
        Ok(())
    }
}

mod harness {
    use farm_io::{LocalStorage, S3Storage, UploadTuning};
    use farm_testkit::Moto;

    const BUCKET: &str = "conformance";

    pub(crate) fn local() -> anyhow::Result<(tempfile::TempDir, LocalStorage)> {
        let dir = tempfile::tempdir()?;
        let storage = LocalStorage::new(dir.path().join("store"));
        Ok((dir, storage))
    }

    /// S3 on a fresh moto_server. Files past 4 MiB go up in parts, so the suite's 12 MiB file
    /// takes the multipart path without a 64 MiB fixture.
    pub(crate) async fn s3() -> anyhow::Result<(Moto, S3Storage)> {
        let moto = Moto::start().await?;
        moto.bucket(BUCKET).await?;
        let storage = S3Storage::new(moto.s3(), BUCKET).with_upload_tuning(UploadTuning {
            single_put_max: 4 * 1024 * 1024,
            ..UploadTuning::default()
        });
        Ok((moto, storage))
    }
}
