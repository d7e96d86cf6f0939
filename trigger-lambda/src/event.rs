//! Reading S3 notification records: which event, which bucket, which key.

use aws_lambda_events::event::s3::{S3Event, S3EventRecord};
use farm_core::etag::unquote_etag;
use percent_encoding::percent_decode_str;
use serde::Serialize;

/// The S3 events the trigger acts on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum EventKind {
    /// `ObjectCreated:*` (`Put`, `Post`, `Copy`, `CompleteMultipartUpload`).
    Created,
    /// `ObjectTagging:Put`: tags set on an existing object (`aws s3api put-object-tagging`).
    Tagged,
}

impl EventKind {
    /// The kind of an S3 event name (with or without the `s3:` prefix); `None` for events the
    /// trigger ignores (deletions, restores, `ObjectTagging:Delete`, ...).
    pub fn from_event_name(name: &str) -> Option<Self> {
        let name = name.strip_prefix("s3:").unwrap_or(name);
        if name.starts_with("ObjectCreated:") {
            Some(Self::Created)
        } else if name == "ObjectTagging:Put" {
            Some(Self::Tagged)
        } else {
            None
        }
    }
}

/// One S3 record the trigger should look at: a `.blend` that was uploaded or tagged.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BlendRecord {
    pub kind: EventKind,
    /// The S3 event name as delivered, e.g. `ObjectCreated:Put`.
    pub event_name: String,
    pub bucket: String,
    /// The decoded key (S3 sends it URL-encoded).
    pub key: String,
    /// The ETag the event names, without quotes (S3 events carry it bare).
    pub etag: Option<String>,
    /// The object version the event names, in a versioned bucket.
    pub version_id: Option<String>,
}

/// Why a record is not one the trigger acts on. Each is logged and skipped, never an error.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Skip {
    #[error("event `{0}` is not one the farm acts on (it handles ObjectCreated:* and ObjectTagging:Put)")]
    OtherEvent(String),
    #[error("key `{0}` does not end in `.blend`: only .blend uploads are rendered")]
    NotBlend(String),
    #[error("the record names no bucket or no key")]
    Incomplete,
    #[error("key `{key}` is not valid URL-encoded UTF-8: {reason}")]
    BadKey { key: String, reason: String },
}

impl BlendRecord {
    /// Picks the fields the trigger needs out of a record, or says why the record is skipped.
    pub fn from_record(record: &S3EventRecord) -> Result<Self, Skip> {
        let event_name = record.event_name.clone().unwrap_or_default();
        let kind = EventKind::from_event_name(&event_name)
            .ok_or_else(|| Skip::OtherEvent(event_name.clone()))?;
        let bucket = record
            .s3
            .bucket
            .name
            .clone()
            .filter(|b| !b.is_empty())
            .ok_or(Skip::Incomplete)?;
        let raw_key = record
            .s3
            .object
            .key
            .as_deref()
            .filter(|k| !k.is_empty())
            .ok_or(Skip::Incomplete)?;
        let key = decode_key(raw_key).map_err(|reason| Skip::BadKey {
            key: raw_key.to_owned(),
            reason,
        })?;
        if !is_blend_key(&key) {
            return Err(Skip::NotBlend(key));
        }
        Ok(Self {
            kind,
            event_name,
            bucket,
            key,
            etag: record
                .s3
                .object
                .e_tag
                .as_deref()
                .map(unquote_etag)
                .filter(|e| !e.is_empty())
                .map(str::to_owned),
            version_id: record
                .s3
                .object
                .version_id
                .clone()
                .filter(|v| !v.is_empty() && v != "null"),
        })
    }
}

/// Decodes a key as S3 puts it in event notifications: form-URL-encoded, so `+` is a space and
/// `%2B` a plus sign, and the bytes are UTF-8. `my+scene+%C3%BC.blend` is `my scene ü.blend`.
pub fn decode_key(raw: &str) -> Result<String, String> {
    let spaced = raw.replace('+', " ");
    percent_decode_str(&spaced)
        .decode_utf8()
        .map(|key| key.into_owned())
        .map_err(|e| format!("the decoded bytes are not UTF-8 ({e})"))
}

pub use farm_core::layout::is_blend_key;

/// Reads an S3 notification.
///
/// A payload without `Records` (the `s3:TestEvent` S3 sends when a notification is configured)
/// reads as an event with no records. Records must be shaped as real S3 sends them,
/// `userIdentity` and `requestParameters` included: moto's notifications lack those, and the
/// test harness completes them rather than this function accepting less than AWS sends.
pub fn parse_event(mut value: serde_json::Value) -> Result<S3Event, serde_json::Error> {
    if let Some(object) = value.as_object_mut() {
        object
            .entry("Records")
            .or_insert_with(|| serde_json::Value::Array(Vec::new()));
    }
    serde_json::from_value(value)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_decode_plus_as_space_then_percent_escapes() {
        assert_eq!(
            decode_key("my+scene+%C3%BC.blend").unwrap(),
            "my scene ü.blend"
        );
        assert_eq!(decode_key("a%2Bb.blend").unwrap(), "a+b.blend");
        assert_eq!(
            decode_key("shots/%E2%9C%93.blend").unwrap(),
            "shots/✓.blend"
        );
        assert_eq!(decode_key("plain.blend").unwrap(), "plain.blend");
        assert!(decode_key("bad%FF.blend").is_err());
    }

    #[test]
    fn blend_suffix_is_the_s3_filters_exactly() {
        for key in ["a.blend", "A.blend", "dir/x y.blend", "ü.blend"] {
            assert!(is_blend_key(key), "{key}");
        }
        // S3's suffix filter is case-sensitive: these never reach the trigger, which agrees.
        for key in [
            "A.BLEND",
            "dir/x y.Blend",
            ".blend",
            "a.blend1",
            "a.blend/job.json",
            "a.blend/frames/0001.png",
            "a.txt",
            "blend",
            "ü",
        ] {
            assert!(!is_blend_key(key), "{key}");
        }
    }

    #[test]
    fn event_names_map_to_kinds() {
        for name in [
            "ObjectCreated:Put",
            "ObjectCreated:Post",
            "ObjectCreated:Copy",
            "ObjectCreated:CompleteMultipartUpload",
            "s3:ObjectCreated:Put",
        ] {
            assert_eq!(EventKind::from_event_name(name), Some(EventKind::Created));
        }
        assert_eq!(
            EventKind::from_event_name("ObjectTagging:Put"),
            Some(EventKind::Tagged)
        );
        for name in [
            "ObjectTagging:Delete",
            "ObjectRemoved:Delete",
            "ObjectRestore:Post",
            "",
        ] {
            assert_eq!(EventKind::from_event_name(name), None, "{name}");
        }
    }

    #[test]
    fn test_events_parse_and_records_need_the_fields_real_s3_sends() {
        let test_event = serde_json::json!({
            "Service": "Amazon S3", "Event": "s3:TestEvent",
            "Time": "2026-01-01T00:00:00.000Z", "Bucket": "b", "RequestId": "r", "HostId": "h"
        });
        assert!(parse_event(test_event).unwrap().records.is_empty());
        let moto_like = serde_json::json!({"Records": [{
            "eventVersion": "2.1", "eventSource": "aws:s3", "awsRegion": "us-east-1",
            "eventTime": "2026-01-01T00:00:00.000Z", "eventName": "ObjectCreated:Put",
            "s3": {"s3SchemaVersion": "1.0", "configurationId": "c",
                   "bucket": {"name": "b", "arn": "arn:aws:s3:::b"},
                   "object": {"key": "a.blend", "size": 1, "eTag": "e", "versionId": "null",
                              "sequencer": "0"}}
        }]});
        assert!(
            parse_event(moto_like.clone()).is_err(),
            "moto's shape lacks userIdentity"
        );
        let mut real = moto_like;
        real["Records"][0]["userIdentity"] = serde_json::json!({"principalId": "AWS:AIDAEXAMPLE"});
        real["Records"][0]["requestParameters"] =
            serde_json::json!({"sourceIPAddress": "192.0.2.1"});
        let event = parse_event(real).unwrap();
        let record = BlendRecord::from_record(&event.records[0]).unwrap();
        assert_eq!(record.key, "a.blend");
        assert_eq!(record.version_id, None);
        assert_eq!(record.etag.as_deref(), Some("e"));
    }
}
