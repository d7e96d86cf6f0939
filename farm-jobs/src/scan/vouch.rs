//! Task records vouching for frames, so the scan need not read (HEAD) each one.
//!
//! A render attempt's record names every frame object it uploaded, with the ETag the store
//! returned for that upload and the object's size, and the metadata it stored on all of them
//! (the job's [`OutputVersion`]). A listed object is taken as current without a HEAD when:
//!
//! - a record names exactly its key, its ETag and its size, with metadata that
//!   [`OutputVersion::matches`] (the same rule the HEAD's metadata must pass);
//! - every record naming that key and ETag does (a record of another version naming the same
//!   bytes at the same key means the metadata on the object is not known: HEAD it);
//! - the ETag is a one-request ETag (no `-<parts>` suffix).
//!
//! Anything else (no record, another ETag, a multipart ETag, a record of another version) is
//! left to the HEAD. Why this never counts a frame current wrongly is in RELIABILITY.md
//! ("Frames vouched for by task records").

use std::collections::HashMap;

use farm_core::storage::Metadata;
use farm_core::tasks::TaskRecord;

use super::OutputVersion;

/// What the records say of the objects they name, by key and ETag.
#[derive(Debug, Default)]
pub(super) struct Vouchers<'a> {
    named: HashMap<(&'a str, &'a str), Vec<(u64, &'a Metadata)>>,
}

impl<'a> Vouchers<'a> {
    /// The objects `records` name (records of any version: the rule looks at each).
    pub(super) fn new(records: &'a [TaskRecord]) -> Self {
        let mut named: HashMap<_, Vec<_>> = HashMap::new();
        for record in records {
            let Some(metadata) = &record.frame_metadata else {
                continue;
            };
            for object in record.frames.iter().filter_map(|f| f.object.as_ref()) {
                named
                    .entry((object.key.as_str(), object.etag.as_str()))
                    .or_default()
                    .push((object.size, metadata));
            }
        }
        Self { named }
    }

    /// Whether the records vouch for the listed object at `key` (with `extension`, `etag` and
    /// `size` as listed) as a frame of `version`.
    pub(super) fn vouch(
        &self,
        version: &OutputVersion,
        key: &str,
        extension: &str,
        etag: Option<&str>,
        size: u64,
    ) -> bool {
        let Some(etag) = etag.filter(|e| !e.contains('-')) else {
            return false;
        };
        match self.named.get(&(key, etag)) {
            Some(named) => named.iter().all(|&(recorded, metadata)| {
                recorded == size && version.matches(extension, size, metadata)
            }),
            None => false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use farm_core::blender::OutputFormat;
    use farm_core::engine::Engine;
    use farm_core::tasks::{FrameTiming, UploadedFrame};

    const KEY: &str = "k.blend/frames/0001.png";
    const ETAG: &str = "\"0cc175b9c0f1b6a831c399e269772661\"";

    fn record(version: &OutputVersion, uploads: &[(&str, &str, u64)]) -> TaskRecord {
        let frames = uploads
            .iter()
            .map(|&(key, etag, size)| FrameTiming {
                frame: 1,
                render_seconds: Some(1.0),
                upload_seconds: 0.1,
                object: Some(UploadedFrame {
                    key: key.into(),
                    etag: etag.into(),
                    size,
                }),
            })
            .collect();
        TaskRecord {
            frames,
            frame_metadata: Some(version.metadata()),
            ..farm_testkit::render_record(0, version.source_tag.as_deref(), 1.0)
        }
    }

    fn job() -> OutputVersion {
        OutputVersion::new(Some("\"e2\""), None).with_dependencies(Some("00aa11bb22cc33dd"))
    }

    #[test]
    fn a_record_of_the_version_vouches_for_exactly_its_key_etag_and_size() {
        let records = [record(&job(), &[(KEY, ETAG, 10)])];
        let vouchers = Vouchers::new(&records);
        assert!(vouchers.vouch(&job(), KEY, "png", Some(ETAG), 10));
        assert!(!vouchers.vouch(&job(), KEY, "png", Some("\"other\""), 10));
        assert!(!vouchers.vouch(&job(), KEY, "png", Some(ETAG), 11));
        assert!(!vouchers.vouch(&job(), KEY, "png", None, 10));
        let other_key = "k.blend/frames/0002.png";
        assert!(!vouchers.vouch(&job(), other_key, "png", Some(ETAG), 10));
        // The listing never makes a non-frame (`.blend`) or an empty object current.
        assert!(!vouchers.vouch(&job(), KEY, "blend", Some(ETAG), 10));
    }

    #[test]
    fn every_part_of_the_version_must_match() {
        let records = [record(&job(), &[(KEY, ETAG, 10)])];
        let vouchers = Vouchers::new(&records);
        let others = [
            OutputVersion::new(Some("\"e1\""), None).with_dependencies(Some("00aa11bb22cc33dd")),
            job().with_dependencies(Some("ffee00112233aabb")),
            job().with_dependencies(None),
            job().with_engine(Some(Engine::Eevee)),
            OutputVersion {
                format: Some(OutputFormat::Png),
                ..job()
            },
        ];
        for other in &others {
            assert!(
                !vouchers.vouch(other, KEY, "png", Some(ETAG), 10),
                "{other:?}"
            );
        }
    }

    #[test]
    fn records_without_objects_or_version_vouch_for_nothing() {
        let mut old = record(&job(), &[(KEY, ETAG, 10)]);
        old.frame_metadata = None;
        let mut unnamed = record(&job(), &[]);
        unnamed.frames.push(FrameTiming {
            frame: 1,
            render_seconds: None,
            upload_seconds: 0.1,
            object: None,
        });
        let records = [old, unnamed];
        assert!(!Vouchers::new(&records).vouch(&job(), KEY, "png", Some(ETAG), 10));
    }

    #[test]
    fn a_multipart_etag_is_never_taken() {
        let multipart = "\"9b2cf535f27731c974343645a3985328-3\"";
        let records = [record(&job(), &[(KEY, multipart, 10)])];
        assert!(!Vouchers::new(&records).vouch(&job(), KEY, "png", Some(multipart), 10));
    }

    /// The same bytes uploaded for two versions have one ETag: which metadata the object
    /// carries is then not known from the records.
    #[test]
    fn the_same_bytes_named_by_another_version_are_left_to_the_head() {
        let old = OutputVersion::new(Some("\"e1\""), None);
        let records = [
            record(&job(), &[(KEY, ETAG, 10)]),
            record(&old, &[(KEY, ETAG, 10)]),
        ];
        assert!(!Vouchers::new(&records).vouch(&job(), KEY, "png", Some(ETAG), 10));
        // Two attempts of the same version uploading the same bytes agree.
        let retried = [
            record(&job(), &[(KEY, ETAG, 10)]),
            record(&job(), &[(KEY, ETAG, 10)]),
        ];
        assert!(Vouchers::new(&retried).vouch(&job(), KEY, "png", Some(ETAG), 10));
    }
}
