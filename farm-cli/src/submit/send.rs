//! `farm submit`'s upload: the project files the bucket lacks, then the tagged .blend, and
//! what it prints before and after.

use farm_core::storage::{PutOptions, Storage};
use farm_io::{S3Storage, UploadTuning};

use super::{tag_text, upload_error, Prepared, DEPENDENCY_PARTS_IN_FLIGHT};
use crate::aws::Site;
use crate::cli::SubmitArgs;
use crate::progress::{self, human_bytes};
use crate::project::ProjectFile;
use crate::upload::{self, UploadError};
use crate::{shell_quote, Interrupted};

/// What `farm submit` prints once the upload is done: what went, the job and what to type next.
pub(super) fn print_submitted(args: &SubmitArgs, prepared: &Prepared, sent: Sent, etag: &str) {
    let Prepared {
        key,
        tags,
        request,
        project,
        size,
        ..
    } = prepared;
    let bucket = &args.bucket;
    let tag_text = tag_text(tags);
    if !project.files.is_empty() {
        println!(
            "project: uploaded {} of {} file(s) ({}); {} already in the bucket",
            sent.files,
            project.files.len(),
            human_bytes(sent.bytes),
            project.files.len() - sent.files
        );
    }
    if sent.blend {
        println!(
            "uploaded {} to s3://{bucket}/{key} ({}, ETag {etag}) tagged {tag_text}",
            args.scene.display(),
            human_bytes(*size)
        );
    } else {
        println!(
            "s3://{bucket}/{key} already holds {} (ETag {etag}): tagged it {tag_text}",
            args.scene.display()
        );
        if sent.files == 0 {
            println!(
                "nothing changed since the last upload: if this request (frames, chunk, format, Blender) was submitted before, the trigger keeps that job and starts none"
            );
        }
    }
    let on = format!(" on {}", prepared.blender.line());
    let frames = request.plan.frames().len();
    if let Some(samples) = args.estimate {
        println!(
            "the trigger starts a scout job now: {samples} sample frame(s) of the {frames}{on}, on one task; waiting for its estimate (Ctrl-C stops waiting, not the scout)"
        );
    } else if prepared.chunk_auto {
        println!(
            "the trigger starts the job now: {frames} frame(s){on}, chunk=auto: as few tasks as keep \
             every task slot busy (ceil({frames} / (MaxVcpus / 4)) frames each)"
        );
    } else {
        println!(
            "the trigger starts the job now: {frames} frame(s) in {} task(s) of up to {} frame(s){on}",
            request.plan.chunk_count(),
            request.plan.chunk_size()
        );
    }
    println!("key: {key}");
    let (k, b) = (shell_quote(key), shell_quote(bucket));
    println!("watch it:  farm status {k} --bucket {b}");
    println!("fetch it:  farm download {k} --bucket {b} --unpack");
}

pub(super) fn interrupted() -> anyhow::Error {
    Interrupted("upload stopped; nothing was submitted".into()).into()
}

/// What [`upload_project`] sent.
#[derive(Debug, Clone, Copy)]
pub(super) struct Sent {
    /// Project files uploaded (the others were already in the bucket) and their bytes.
    files: usize,
    bytes: u64,
    /// Whether the .blend was uploaded (otherwise it was only tagged).
    blend: bool,
}

/// Uploads `sending` (the project files the bucket does not hold yet, and the .blend last when
/// it changed: [`crate::upload::to_send`]), several at once, then the .blend
/// with its tags in the same request; a .blend already in the bucket is tagged instead. Either
/// way the tags, which start the job, come last, once every file is there. One progress bar
/// counts every byte sent. A failure or Ctrl-C aborts the uploads in flight, so nothing
/// half-written appears and S3 keeps no parts.
pub(super) async fn upload_project(
    site: &Site,
    storage: &S3Storage,
    mut sending: Vec<ProjectFile>,
    blend: &ProjectFile,
    options: PutOptions,
    tuning: UploadTuning,
) -> anyhow::Result<Sent> {
    let failed = |err: UploadError| upload_error(site, err);
    let blend_changed = sending.last().is_some_and(|last| last.key == blend.key);
    if blend_changed {
        sending.pop();
    }
    let bytes: u64 = sending.iter().map(|f| f.size).sum();
    let total = bytes + if blend_changed { blend.size } else { 0 };
    let bar = progress::bytes(total, "uploading");
    let sent = async {
        // Several files at once, each with fewer parts in flight: memory stays near
        // FILES_AT_ONCE x (DEPENDENCY_PARTS_IN_FLIGHT + 1) parts. The part size, hence the
        // ETags, is the same.
        let files_storage = storage.clone().with_upload_tuning(UploadTuning {
            parts_in_flight: DEPENDENCY_PARTS_IN_FLIGHT,
            ..tuning
        });
        upload::send_all(&files_storage, &sending, &bar)
            .await
            .map_err(failed)?;
        if blend_changed {
            upload::send_file(storage, blend, options, &bar)
                .await
                .map_err(failed)
        } else {
            // PutObjectTagging: S3's `ObjectTagging:Put` event starts the job, as after
            // `aws s3api put-object-tagging`.
            storage
                .put_tags(&blend.key, &options.tags)
                .await
                .map_err(|err| {
                    let doing = format!("tagging s3://{}/{}", storage.bucket(), blend.key);
                    site.storage_error(&err, &doing)
                })
        }
    }
    .await;
    bar.finish_and_clear();
    sent?;
    Ok(Sent {
        files: sending.len(),
        bytes,
        blend: blend_changed,
    })
}
