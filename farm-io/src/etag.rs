//! Whether a local file holds the same bytes as an S3 object, told from the object's ETag
//! without downloading it (`farm submit` skips the project files already in the bucket).
//!
//! For an object stored unencrypted or with SSE-S3 (the farm's bucket uses SSE-S3), S3's ETag of
//! a single-request upload is the MD5 of its bytes; of a multipart upload, the MD5 of the
//! concatenated MD5s of its parts, then `-` and the number of parts, so it depends on the part
//! sizes the uploader chose. Two layouts are tried: the farm's own streaming upload
//! ([`UploadTuning::part_lengths`]) and the AWS CLI's default (`aws s3 cp` and `aws s3 sync`:
//! parts of 8 MiB from 8 MiB up). An ETag matching none of them (another tool's part size,
//! SSE-KMS, whose ETags are no MD5) reads as other content: the file is uploaded again, never
//! wrongly skipped.

use std::io::Read;
use std::path::Path;

use md5::{Digest, Md5};

use crate::s3_upload::UploadTuning;

/// The AWS CLI's default `multipart_chunksize` (and `multipart_threshold`).
pub const AWS_CLI_PART_SIZE: u64 = 8 * 1024 * 1024;

/// How much of the file is read at a time.
const READ_CHUNK: usize = 1024 * 1024;

/// Whether the file at `path` has the bytes of an object whose ETag is `etag` (quotes
/// optional), for objects uploaded in one request or in parts by `tuning` or the AWS CLI.
/// Reads the whole file once; blocking.
pub fn file_matches_etag(path: &Path, etag: &str, tuning: &UploadTuning) -> std::io::Result<bool> {
    let etag = etag.trim().trim_matches('"').to_ascii_lowercase();
    let size = std::fs::metadata(path)?.len();
    let (digest, parts) = match etag.split_once('-') {
        None => (etag.as_str(), None),
        Some((digest, parts)) => match parts.parse::<usize>() {
            Ok(parts) => (digest, Some(parts)),
            Err(_) => return Ok(false),
        },
    };
    let mut layouts: Vec<LayoutHasher> = Vec::new();
    if let Some(count) = parts {
        for layout in [
            tuning.part_lengths(size),
            fixed_parts(size, AWS_CLI_PART_SIZE),
        ]
        .into_iter()
        .flatten()
        {
            if layout.len() == count && !layouts.iter().any(|l| l.parts == layout) {
                layouts.push(LayoutHasher::new(layout));
            }
        }
        if layouts.is_empty() {
            return Ok(false);
        }
    }
    let mut whole = Md5::new();
    let mut file = std::fs::File::open(path)?;
    let mut buffer = vec![0; READ_CHUNK];
    loop {
        let read = file.read(&mut buffer)?;
        if read == 0 {
            break;
        }
        if parts.is_none() {
            whole.update(&buffer[..read]);
        }
        for layout in &mut layouts {
            layout.update(&buffer[..read]);
        }
    }
    if parts.is_none() {
        return Ok(hex(&whole.finalize()) == digest);
    }
    Ok(layouts
        .into_iter()
        .any(|layout| layout.etag().as_deref() == Some(digest)))
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Parts of `part_size` from `part_size` up (the AWS CLI's split); `None` below one part.
fn fixed_parts(size: u64, part_size: u64) -> Option<Vec<u64>> {
    if size < part_size {
        return None;
    }
    let full = size / part_size;
    let mut parts = vec![part_size; usize::try_from(full).ok()?];
    if !size.is_multiple_of(part_size) {
        parts.push(size % part_size);
    }
    Some(parts)
}

/// MD5s of the parts of one layout, fed the file in order.
struct LayoutHasher {
    parts: Vec<u64>,
    /// Index of the part being hashed and bytes of it still to come.
    index: usize,
    left: u64,
    current: Md5,
    done: Vec<u8>,
}

impl LayoutHasher {
    fn new(parts: Vec<u64>) -> Self {
        let left = parts.first().copied().unwrap_or(0);
        Self {
            parts,
            index: 0,
            left,
            current: Md5::new(),
            done: Vec::new(),
        }
    }

    fn update(&mut self, mut data: &[u8]) {
        while !data.is_empty() && self.index < self.parts.len() {
            let take = usize::try_from(self.left)
                .unwrap_or(usize::MAX)
                .min(data.len());
            self.current.update(&data[..take]);
            data = &data[take..];
            self.left -= take as u64;
            if self.left == 0 {
                let part = std::mem::replace(&mut self.current, Md5::new()).finalize();
                self.done.extend_from_slice(&part);
                self.index += 1;
                self.left = self.parts.get(self.index).copied().unwrap_or(0);
            }
        }
    }

    /// The multipart ETag's hex digest, if the file filled exactly the layout.
    fn etag(self) -> Option<String> {
        (self.index == self.parts.len()).then(|| hex(&Md5::digest(&self.done)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn file(bytes: &[u8]) -> tempfile::NamedTempFile {
        let mut file = tempfile::NamedTempFile::new().unwrap();
        std::io::Write::write_all(&mut file, bytes).unwrap();
        file
    }

    #[test]
    fn a_single_request_etag_is_the_md5() {
        let tuning = UploadTuning::default();
        let abc = file(b"abc");
        assert!(
            file_matches_etag(abc.path(), "\"900150983cd24fb0d6963f7d28e17f72\"", &tuning).unwrap()
        );
        assert!(
            file_matches_etag(abc.path(), "900150983CD24FB0D6963F7D28E17F72", &tuning).unwrap()
        );
        assert!(
            !file_matches_etag(abc.path(), "\"900150983cd24fb0d6963f7d28e17f73\"", &tuning)
                .unwrap()
        );
        let empty = file(b"");
        assert!(file_matches_etag(
            empty.path(),
            "\"d41d8cd98f00b204e9800998ecf8427e\"",
            &tuning
        )
        .unwrap());
        assert!(!file_matches_etag(abc.path(), "\"garbage-x\"", &tuning).unwrap());
    }

    #[test]
    fn the_aws_clis_split_is_eight_mib_parts() {
        let mib = 1024 * 1024;
        assert_eq!(fixed_parts(8 * mib - 1, AWS_CLI_PART_SIZE), None);
        assert_eq!(fixed_parts(8 * mib, AWS_CLI_PART_SIZE), Some(vec![8 * mib]));
        assert_eq!(
            fixed_parts(17 * mib, AWS_CLI_PART_SIZE),
            Some(vec![8 * mib, 8 * mib, mib])
        );
    }
}
