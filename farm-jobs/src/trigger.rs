//! The trigger's decision on an upload, pure: from its tags, what was read of it and the
//! farm's limits to what to do (nothing, reject with a message, or submit this request).
//! `trigger-lambda` only sequences the I/O around it: it reads the tags, asks [`decide`], reads
//! the upload once when the decision needs it ([`Decision::NeedsFacts`]), asks again, then runs
//! the dependency gate and submits.

use std::num::NonZeroUsize;

use farm_blend::sniff;
use farm_blend::BlendInfo;
use farm_core::engine::Engine;
use farm_core::{BlenderSeries, RenderRequest};

use crate::scene::{self, SceneRead, SceneRecord};

/// What the trigger read of an upload.
#[derive(Debug, Clone, Copy)]
pub struct UploadFacts<'a> {
    /// The upload's first bytes (up to [`farm_core::blend::SNIFF_LEN`]).
    pub head: &'a [u8],
    /// What `farm-blend` read of it, or why it could not.
    pub read: &'a Result<BlendInfo, String>,
}

/// The farm's limits on a request.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// Most frames one request may ask for (`FARM_MAX_FRAMES`).
    pub max_frames: usize,
    /// Render tasks the farm runs at once, which `chunk=auto` fills (`None`: unknown).
    pub task_slots: Option<NonZeroUsize>,
}

/// What to do with an upload.
#[derive(Debug, Clone, PartialEq)]
pub enum Decision {
    /// No `frame`/`frames` tag: nothing to render yet.
    NoFrameTag,
    /// The decision needs the upload read: ask again with its [`UploadFacts`].
    NeedsFacts,
    /// The request can never succeed as it stands; the message says why and what to do.
    Reject(String),
    /// Submit this request (after the dependency gate).
    Submit(Box<Accepted>),
}

/// A request the trigger accepts, with what it found.
#[derive(Debug, Clone, PartialEq)]
pub struct Accepted {
    /// The request, its engine and format resolved against the scene.
    pub request: RenderRequest,
    /// The tags, with `frames=scene` replaced by the scene's frames.
    pub tags: Vec<(String, String)>,
    /// The Blender that saved the file, from its header, or why it is unknown.
    pub saved_by: Result<BlenderSeries, String>,
    /// What `frames=scene` found, for `job.json`.
    pub scene: Option<Box<SceneRecord>>,
    /// The engine the job runs.
    pub engine: Engine,
    /// What the farm does differently from the scene (engine, stills of a movie scene).
    pub notes: Vec<String>,
    /// The extension of the movie the active scene asks for: the job also makes it.
    pub movie: Option<String>,
    /// The files each frame makes (the active scene's views, [`scene::frame_views`]).
    pub views: farm_core::views::FrameViews,
}

/// Decides what to do with an upload tagged `tags`, given what was read of it (`None`: nothing
/// yet). Checks in the order an artist fixes them: the scene's frames (`frames=scene`), the
/// tags, the file's kind, whether the scene can render.
pub fn decide(
    tags: &[(String, String)],
    facts: Option<UploadFacts<'_>>,
    limits: &Limits,
) -> Decision {
    let mut tags = tags.to_vec();
    let mut scene_record = None;
    if scene::asks_for_scene(&tags) {
        let Some(facts) = facts else {
            return Decision::NeedsFacts;
        };
        match scene::from_read(facts.read, limits.max_frames) {
            SceneRead::Frames(record) => {
                scene::set_frames(&mut tags, &record.frames);
                scene_record = Some(record);
            }
            SceneRead::Invalid(message) => return Decision::Reject(message),
        }
    }
    let parsed = RenderRequest::from_tags_with_slots(
        tags.iter().map(|(k, v)| (k.as_str(), v.as_str())),
        limits.max_frames,
        limits.task_slots,
    );
    let mut request = match parsed {
        Ok(Some(request)) => request,
        Ok(None) => return Decision::NoFrameTag,
        Err(err) => {
            return Decision::Reject(format!(
                "{err}; set corrected tags (aws s3api put-object-tagging) to submit the render"
            ))
        }
    };
    let Some(facts) = facts else {
        return Decision::NeedsFacts;
    };
    if let Err(err) = sniff(facts.head) {
        return Decision::Reject(err.to_string());
    }
    let saved_by = farm_blend::read_version(facts.head)
        .map(|v| BlenderSeries::new(v.major, v.minor))
        .map_err(|err| err.to_string());
    let info = facts.read.as_ref().ok();
    if let Some(refusal) = info.and_then(scene::cannot_render) {
        return Decision::Reject(refusal);
    }
    let views = match scene::frame_views(info) {
        Ok(views) => views,
        Err(refusal) => return Decision::Reject(refusal),
    };
    let engine = scene::choose_engine(request.engine, info);
    request.engine = Some(engine.engine);
    let (format, stills) = scene::stills_format(request.format, info);
    request.format = format;
    if let Some(record) = scene_record.as_mut() {
        scene::record_engine(record, &engine);
        record.notes.extend(stills.iter().cloned());
    }
    Decision::Submit(Box::new(Accepted {
        request,
        tags,
        saved_by,
        scene: scene_record,
        engine: engine.engine,
        notes: engine.note.into_iter().chain(stills).collect(),
        movie: scene::movie_extension(info),
        views,
    }))
}

#[cfg(test)]
mod tests;
