//! `farm submit`: a tagged upload that starts the job.
//!
//! The tags travel in the upload request itself (PutObject `tagging`, or CreateMultipartUpload
//! `tagging` for a large file), so the object is never visible without them and the trigger's
//! `ObjectCreated` event finds them. They are validated first with the trigger's own parser,
//! [`RenderRequest::from_tags`], so whatever is uploaded is accepted.

use std::path::Path;

use anyhow::{anyhow, bail, Context};
use aws_sdk_s3::primitives::{ByteStream, Length};
use aws_sdk_s3::types::{CompletedMultipartUpload, CompletedPart};
use farm_core::blender::OutputFormat;
use farm_core::layout::is_blend_key;
use farm_core::request::DEFAULT_REQUEST_MAX_FRAMES as DEFAULT_MAX_FRAMES;
use farm_core::request::{TAG_BLENDER, TAG_CHUNK, TAG_FORMAT, TAG_FRAME, TAG_FRAMES};
use farm_core::RenderRequest;
use futures::{StreamExt, TryStreamExt};
use percent_encoding::{utf8_percent_encode, AsciiSet, NON_ALPHANUMERIC};

use crate::aws::Aws;
use crate::cli::SubmitArgs;
use crate::render::{check_scene, human_bytes, Shutdown};
use crate::{progress, shell_quote, Interrupted};

/// Default part size of a multipart upload, in MiB. Files larger than two parts are uploaded in
/// parts, four at a time.
pub const DEFAULT_PART_MIB: u64 = 16;
/// Parts uploading at once.
const PARTS_IN_FLIGHT: usize = 4;
/// Longest value S3 allows in a tag.
const MAX_TAG_VALUE: usize = 256;
/// Content type of an uploaded scene.
const BLEND_CONTENT_TYPE: &str = "application/x-blender";

/// Characters left as they are in a tagging query string: RFC 3986's unreserved set.
const TAG_ENCODE: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~');

/// What `farm submit` asks for, as given on the command line.
#[derive(Debug, Clone, Copy, Default)]
pub struct Asked<'a> {
    pub frames: Option<&'a str>,
    pub frame: Option<&'a str>,
    pub chunk: Option<&'a str>,
    pub format: Option<&'a str>,
    pub blender: Option<&'a str>,
}

/// The tags for a request, in upload order, as the trigger will read them. Fails with the
/// trigger's own message on a bad frame list, chunk size, format or Blender series (whether the
/// farm runs that series only the trigger knows).
pub fn request_tags(
    asked: Asked<'_>,
) -> anyhow::Result<(Vec<(&'static str, String)>, RenderRequest)> {
    let Asked {
        frames,
        frame,
        chunk,
        format,
        blender,
    } = asked;
    let mut asked: Vec<(&str, &str)> = Vec::new();
    if let Some(frames) = frames {
        asked.push((TAG_FRAMES, frames));
    }
    if let Some(frame) = frame {
        asked.push((TAG_FRAME, frame));
    }
    if let Some(chunk) = chunk {
        asked.push((TAG_CHUNK, chunk));
    }
    if let Some(format) = format {
        asked.push((TAG_FORMAT, format));
    }
    if let Some(blender) = blender {
        asked.push((TAG_BLENDER, blender));
    }
    let request = RenderRequest::from_tags(asked.iter().copied(), DEFAULT_MAX_FRAMES)
        .map_err(|e| anyhow!("{e}"))?
        .ok_or_else(|| anyhow!("no frames given: pass --frames LIST or --frame N"))?;
    // What goes on the object: canonical values, which are also valid S3 tag values (a comma,
    // for one, is not).
    let mut tags = Vec::new();
    match frame {
        Some(count) => tags.push((TAG_FRAME, count.trim().to_owned())),
        None => tags.push((TAG_FRAMES, request.plan.frames().canonical())),
    }
    if chunk.is_some() {
        tags.push((TAG_CHUNK, request.plan.chunk_size().to_string()));
    }
    if let Some(format) = request.format {
        tags.push((TAG_FORMAT, format.blender_name().to_owned()));
    }
    if let Some(blender) = request.blender {
        tags.push((TAG_BLENDER, blender.to_string()));
    }
    for (name, value) in &tags {
        if value.chars().count() > MAX_TAG_VALUE {
            bail!(
                "the {name} list is too long for an S3 tag ({} characters, at most {MAX_TAG_VALUE}): use ranges like 1-100 or 1-100:5, or submit it in several uploads",
                value.chars().count()
            );
        }
    }
    let again = RenderRequest::from_tags(
        tags.iter().map(|(k, v)| (*k, v.as_str())),
        DEFAULT_MAX_FRAMES,
    )
    .map_err(|e| anyhow!("{e}"))?;
    if again.as_ref() != Some(&request) {
        bail!("the tags do not read back as the request (a bug in farm): {tags:?}");
    }
    Ok((tags, request))
}

/// The URL-encoded tagging string of an upload: `frames=1-10%2020&chunk=2`.
pub fn tagging(tags: &[(&str, String)]) -> String {
    tags.iter()
        .map(|(name, value)| {
            format!(
                "{}={}",
                utf8_percent_encode(name, TAG_ENCODE),
                utf8_percent_encode(value, TAG_ENCODE)
            )
        })
        .collect::<Vec<_>>()
        .join("&")
}

/// Runs `farm submit`.
pub async fn run(args: &SubmitArgs) -> anyhow::Result<()> {
    let shutdown = Shutdown::listen();
    check_scene(&args.scene).await?;
    let key = match &args.key {
        Some(key) => key.trim_start_matches('/').to_owned(),
        None => args
            .scene
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .ok_or_else(|| anyhow!("{} has no file name", args.scene.display()))?,
    };
    if !is_blend_key(&key) {
        bail!("key `{key}` does not end in .blend: the trigger only starts jobs for .blend keys; pass --key NAME.blend");
    }
    if args.bucket.trim().is_empty() {
        bail!("--bucket is empty: give the farm's bucket name");
    }
    let format = args
        .format
        .as_deref()
        .map(|f| f.parse::<OutputFormat>().map(|f| f.blender_name()))
        .transpose()
        .map_err(|e| anyhow!("invalid --format: {e}"))?;
    // `--frames scene`: the active scene's own range and step, read here to check and show
    // it; the object is tagged `frames=scene` so the trigger reads and records it too.
    let scene_frames = match args.frames.as_deref().map(str::trim) {
        Some(f) if f.eq_ignore_ascii_case(farm_jobs::scene::SCENE_FRAMES) => {
            let path = args.scene.clone();
            let info = tokio::task::spawn_blocking(move || crate::inspect::read_blend(&path))
                .await
                .context("reading the scene")??;
            for note in crate::inspect::notes(&info) {
                println!("note: {note}");
            }
            match farm_jobs::scene::from_info(&info, DEFAULT_MAX_FRAMES) {
                farm_jobs::scene::SceneRead::Frames(record) => Some(record.frames),
                farm_jobs::scene::SceneRead::Invalid(message) => bail!("{message}"),
            }
        }
        _ => None,
    };
    let (mut tags, request) = request_tags(Asked {
        frames: scene_frames.as_deref().or(args.frames.as_deref()),
        frame: args.frame.as_deref(),
        chunk: args.chunk.as_deref(),
        format,
        blender: args.blender.as_deref(),
    })?;
    if scene_frames.is_some() {
        farm_jobs::scene::set_frames_tag(&mut tags);
    }
    let size = tokio::fs::metadata(&args.scene)
        .await
        .with_context(|| format!("cannot read {}", args.scene.display()))?
        .len();

    let aws = Aws::load().await;
    let client = aws.s3();
    let tagging = tagging(&tags);
    let part_size = args.part_size_mib * 1024 * 1024;
    let target = Target {
        aws: &aws,
        client: &client,
        args,
        key: &key,
        tagging: &tagging,
    };
    let etag = upload(&target, size, part_size, &shutdown).await?;

    let bucket = &args.bucket;
    let tag_text = tags
        .iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join(", ");
    println!(
        "uploaded {} to s3://{bucket}/{key} ({}, ETag {etag}) tagged {tag_text}",
        args.scene.display(),
        human_bytes(size)
    );
    let on = request
        .blender
        .map(|b| format!(" on Blender {b}"))
        .unwrap_or_default();
    println!(
        "the trigger starts the job now: {} frame(s) in {} task(s) of up to {} frame(s){on}",
        request.plan.frames().len(),
        request.plan.chunk_count(),
        request.plan.chunk_size()
    );
    println!("key: {key}");
    let (k, b) = (shell_quote(&key), shell_quote(bucket));
    println!("watch it:  farm status {k} --bucket {b}");
    println!("fetch it:  farm download {k} --bucket {b} --unpack");
    Ok(())
}

/// Where the scene goes and how.
struct Target<'a> {
    aws: &'a Aws,
    client: &'a aws_sdk_s3::Client,
    args: &'a SubmitArgs,
    key: &'a str,
    tagging: &'a str,
}

fn interrupted() -> anyhow::Error {
    Interrupted("upload stopped; nothing was submitted".into()).into()
}

/// Uploads the scene with its tags; returns the object's ETag. Ctrl-C stops it; a multipart
/// upload is then aborted before returning, so S3 keeps no parts.
async fn upload(
    target: &Target<'_>,
    size: u64,
    part_size: u64,
    shutdown: &Shutdown,
) -> anyhow::Result<String> {
    let Target {
        aws,
        client,
        args,
        key,
        tagging,
    } = target;
    let doing = format!("uploading to s3://{}/{key}", args.bucket);
    if size <= 2 * part_size {
        let body = ByteStream::from_path(&args.scene)
            .await
            .with_context(|| format!("cannot read {}", args.scene.display()))?;
        let spinner = progress::spinner(format!("uploading {}", human_bytes(size)));
        let put = client
            .put_object()
            .bucket(&args.bucket)
            .key(*key)
            .tagging(*tagging)
            .content_type(BLEND_CONTENT_TYPE)
            .body(body)
            .send();
        // A dropped PutObject leaves no object behind.
        let output = tokio::select! {
            () = shutdown.signal() => return Err(interrupted()),
            output = put => output,
        };
        spinner.finish_and_clear();
        let output = output.map_err(|e| aws.sdk_error(&e, &doing))?;
        return Ok(output.e_tag().unwrap_or_default().to_owned());
    }
    let created = client
        .create_multipart_upload()
        .bucket(&args.bucket)
        .key(*key)
        .tagging(*tagging)
        .content_type(BLEND_CONTENT_TYPE)
        .send()
        .await
        .map_err(|e| aws.sdk_error(&e, &doing))?;
    let upload_id = created
        .upload_id()
        .ok_or_else(|| anyhow!("{doing}: S3 returned no upload id"))?
        .to_owned();
    // From here on every way out aborts the upload unless it completed.
    let guard = AbortGuard {
        client: (*client).clone(),
        bucket: args.bucket.clone(),
        key: (*key).to_owned(),
        upload_id: upload_id.clone(),
        armed: true,
    };
    let bar = progress::bytes(size, "uploading");
    let complete = async {
        let parts = upload_parts(target, &upload_id, size, part_size, &bar).await?;
        let output = client
            .complete_multipart_upload()
            .bucket(&args.bucket)
            .key(*key)
            .upload_id(&upload_id)
            .multipart_upload(
                CompletedMultipartUpload::builder()
                    .set_parts(Some(parts))
                    .build(),
            )
            .send()
            .await
            .map_err(|e| aws.sdk_error(&e, &doing))?;
        Ok::<_, anyhow::Error>(output.e_tag().unwrap_or_default().to_owned())
    };
    let result = tokio::select! {
        () = shutdown.signal() => Err(interrupted()),
        result = complete => result,
    };
    bar.finish_and_clear();
    match result {
        Ok(etag) => {
            guard.disarm();
            Ok(etag)
        }
        Err(err) => {
            guard.abort().await;
            Err(err)
        }
    }
}

async fn upload_parts(
    target: &Target<'_>,
    upload_id: &str,
    size: u64,
    part_size: u64,
    bar: &indicatif::ProgressBar,
) -> anyhow::Result<Vec<CompletedPart>> {
    let Target {
        aws,
        client,
        args,
        key,
        ..
    } = target;
    let count = size.div_ceil(part_size);
    let path: &Path = &args.scene;
    futures::stream::iter(0..count)
        .map(|index| async move {
            let offset = index * part_size;
            let length = part_size.min(size - offset);
            let number = i32::try_from(index + 1).context("too many parts")?;
            let body = ByteStream::read_from()
                .path(path)
                .offset(offset)
                .length(Length::Exact(length))
                .build()
                .await
                .with_context(|| format!("cannot read {}", path.display()))?;
            let output = client
                .upload_part()
                .bucket(&args.bucket)
                .key(*key)
                .upload_id(upload_id)
                .part_number(number)
                .body(body)
                .send()
                .await
                .map_err(|e| {
                    aws.sdk_error(
                        &e,
                        &format!(
                            "uploading part {number} of {count} of s3://{}/{key}",
                            args.bucket
                        ),
                    )
                })?;
            bar.inc(length);
            Ok(CompletedPart::builder()
                .part_number(number)
                .set_e_tag(output.e_tag().map(str::to_owned))
                .build())
        })
        .buffered(PARTS_IN_FLIGHT)
        .try_collect()
        .await
}

/// Aborts a multipart upload that did not complete, so S3 keeps no orphaned parts.
struct AbortGuard {
    client: aws_sdk_s3::Client,
    bucket: String,
    key: String,
    upload_id: String,
    armed: bool,
}

impl AbortGuard {
    fn disarm(mut self) {
        self.armed = false;
    }

    async fn abort(mut self) {
        self.armed = false;
        let _ = self.request().send().await;
    }

    fn request(
        &self,
    ) -> aws_sdk_s3::operation::abort_multipart_upload::builders::AbortMultipartUploadFluentBuilder
    {
        self.client
            .abort_multipart_upload()
            .bucket(&self.bucket)
            .key(&self.key)
            .upload_id(&self.upload_id)
    }
}

impl Drop for AbortGuard {
    fn drop(&mut self) {
        if self.armed {
            let request = self.request();
            if let Ok(runtime) = tokio::runtime::Handle::try_current() {
                // Best effort: the process may exit before it completes.
                runtime.spawn(async move {
                    let _ = request.send().await;
                });
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tags_are_canonical_and_encoded_for_s3() {
        let (tags, request) = request_tags(Asked {
            frames: Some("1-10, 20"),
            chunk: Some("2"),
            format: Some("open_exr"),
            blender: Some(" 4.5"),
            ..Asked::default()
        })
        .unwrap();
        assert_eq!(
            tags,
            vec![
                ("frames", "1-10 20".to_owned()),
                ("chunk", "2".to_owned()),
                ("format", "OPEN_EXR".to_owned()),
                ("blender", "4.5".to_owned())
            ]
        );
        assert_eq!(request.plan.chunk_count(), 6);
        assert_eq!(request.blender, Some(farm_core::BlenderSeries::new(4, 5)));
        assert_eq!(
            tagging(&tags),
            "frames=1-10%2020&chunk=2&format=OPEN_EXR&blender=4.5"
        );
        let frame = |n| Asked {
            frame: Some(n),
            ..Asked::default()
        };
        let frames = |list| Asked {
            frames: Some(list),
            ..Asked::default()
        };
        let (tags, _) = request_tags(frame("48")).unwrap();
        assert_eq!(tagging(&tags), "frame=48");
        let (tags, _) = request_tags(frames("-3--1 4-10:3")).unwrap();
        assert_eq!(tagging(&tags), "frames=-3--1%204-10%3A3");
    }

    #[test]
    fn bad_requests_fail_with_the_triggers_message() {
        for (frames, frame, chunk, blender, needle) in [
            (Some("5-1"), None, None, None, "tag `frames=5-1` is invalid"),
            (Some("x"), None, None, None, "tag `frames=x` is invalid"),
            (None, Some("0"), None, None, "tag `frame=0` is invalid"),
            (
                Some("1-4"),
                None,
                Some("0"),
                None,
                "tag `chunk=0` is invalid",
            ),
            (
                Some("1-4"),
                None,
                None,
                Some("4.2.23"),
                "use the series `4.2`",
            ),
            (None, None, None, None, "no frames given"),
        ] {
            let err = request_tags(Asked {
                frames,
                frame,
                chunk,
                blender,
                format: None,
            })
            .unwrap_err()
            .to_string();
            assert!(err.contains(needle), "{err}");
        }
        let long: Vec<String> = (0..200).map(|i: i32| (i * i).to_string()).collect();
        let long = long.join(" ");
        let err = request_tags(Asked {
            frames: Some(&long),
            ..Asked::default()
        })
        .unwrap_err()
        .to_string();
        assert!(err.contains("too long for an S3 tag"), "{err}");
    }
}
