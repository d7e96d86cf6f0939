//! The decision table: every tag, facts and limits case the trigger's handler tests
//! (`trigger-lambda/tests/handler.rs`) drive through S3 events, decided without any I/O.

use farm_blend::Scene;
use farm_core::blender::OutputFormat;

use super::*;

/// A header Blender 3.4 writes (what the handler tests upload).
const HEAD: &[u8] = b"BLENDER-v304RENDH\x00\x00\x00 rest of a scene";

const LIMITS: Limits = Limits {
    max_frames: 10_000,
    task_slots: None,
};

fn tags(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
    pairs
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect()
}

fn scene() -> Scene {
    Scene {
        name: "Scene".into(),
        frame_start: 5,
        frame_end: 15,
        frame_step: 5,
        camera: Some("Camera".into()),
        ..crate::scene::tests::scene()
    }
}

fn read(scene: Scene) -> Result<BlendInfo, String> {
    Ok(crate::scene::tests::info(scene))
}

fn facts<'a>(head: &'a [u8], read: &'a Result<BlendInfo, String>) -> Option<UploadFacts<'a>> {
    Some(UploadFacts { head, read })
}

fn submitted(decision: Decision) -> Accepted {
    match decision {
        Decision::Submit(accepted) => *accepted,
        other => panic!("not accepted: {other:?}"),
    }
}

fn rejection(decision: &Decision) -> &str {
    match decision {
        Decision::Reject(message) => message,
        other => panic!("not rejected: {other:?}"),
    }
}

#[test]
fn tags_alone_decide_nothing_to_do_and_every_bad_tag() {
    let unread: Result<BlendInfo, String> = Err("unread".into());
    for facts in [None, facts(HEAD, &unread)] {
        let owner_only = decide(&tags(&[("owner", "ana")]), facts, &LIMITS);
        assert_eq!(owner_only, Decision::NoFrameTag);
        let cases: &[(&[(&str, &str)], &str)] = &[
            (&[("frame", "10"), ("frames", "1-5")], "both `frame=10`"),
            (&[("frames", "5-1")], "tag `frames=5-1` is invalid"),
            (
                &[("frame", "10"), ("chunk", "0")],
                "tag `chunk=0` is invalid",
            ),
            (&[("frame", "abc")], "tag `frame=abc` is invalid"),
            (&[("frame", "10001")], "10000"),
            (
                &[("frame", "5"), ("format", "GIF")],
                "tag `format=GIF` is invalid",
            ),
        ];
        for (pairs, needle) in cases {
            let decision = decide(&tags(pairs), facts, &LIMITS);
            let message = rejection(&decision);
            assert!(message.contains(needle), "{pairs:?}: {message}");
            assert!(message.contains("put-object-tagging"), "{message}");
        }
    }
}

#[test]
fn the_frame_limit_and_the_array_limit_are_the_limits() {
    let small = Limits {
        max_frames: 500,
        task_slots: None,
    };
    let decision = decide(&tags(&[("frame", "600")]), None, &small);
    assert!(rejection(&decision).contains("500"));
    let large = Limits {
        max_frames: 100_000,
        task_slots: None,
    };
    let decision = decide(&tags(&[("frame", "20000")]), None, &large);
    assert!(rejection(&decision).contains("use chunk=2"));
    let fitting = tags(&[("frame", "20000"), ("chunk", "2")]);
    assert_eq!(decide(&fitting, None, &large), Decision::NeedsFacts);
    let read = read(scene());
    let accepted = submitted(decide(&fitting, facts(HEAD, &read), &large));
    assert_eq!(accepted.request.plan.array_size(), Some(10_000));
    // `chunk=auto` fills the farm's task slots.
    let slots = Limits {
        max_frames: 10_000,
        task_slots: NonZeroUsize::new(10),
    };
    let auto = tags(&[("frames", "1-100"), ("chunk", "auto")]);
    let accepted = submitted(decide(&auto, facts(HEAD, &read), &slots));
    assert_eq!(accepted.request.plan.chunk_count(), 10);
}

#[test]
fn a_frame_tag_needs_the_upload_read_and_then_submits() {
    let frame = tags(&[("frame", "3")]);
    assert_eq!(decide(&frame, None, &LIMITS), Decision::NeedsFacts);
    let read = read(scene());
    let accepted = submitted(decide(&frame, facts(HEAD, &read), &LIMITS));
    assert_eq!(accepted.request.plan.frames().canonical(), "1-3");
    assert_eq!(accepted.tags, frame);
    assert_eq!(accepted.saved_by, Ok(BlenderSeries::new(3, 4)));
    assert_eq!(accepted.scene, None);
    assert_eq!(accepted.engine, Engine::Cycles);
    assert_eq!(accepted.request.engine, Some(Engine::Cycles));
    // A file the reader could not read is left to Blender (and the dependency gate warns).
    let unread: Result<BlendInfo, String> = Err("truncated".into());
    let accepted = submitted(decide(&frame, facts(HEAD, &unread), &LIMITS));
    assert_eq!(accepted.engine, Engine::Cycles);
}

#[test]
fn a_body_that_is_not_a_blend_is_rejected() {
    let read = read(scene());
    for (head, needle) in [
        (&b"PK\x03\x04 a zip file"[..], "not a .blend"),
        (b"", "empty"),
    ] {
        let decision = decide(&tags(&[("frame", "10")]), facts(head, &read), &LIMITS);
        assert!(rejection(&decision).contains(needle), "{decision:?}");
    }
}

#[test]
fn frames_scene_takes_the_active_scenes_range() {
    let scene_tag = tags(&[("frames", "scene"), ("owner", "ana")]);
    assert_eq!(decide(&scene_tag, None, &LIMITS), Decision::NeedsFacts);
    let read = read(scene());
    let accepted = submitted(decide(&scene_tag, facts(HEAD, &read), &LIMITS));
    assert_eq!(accepted.request.plan.frames().canonical(), "5-15:5");
    assert_eq!(
        accepted.tags,
        tags(&[("frames", "5-15:5"), ("owner", "ana")])
    );
    let record = accepted.scene.expect("the scene's record");
    assert_eq!(
        (record.scene.as_str(), record.frames.as_str()),
        ("Scene", "5-15:5")
    );
    assert_eq!(record.rendered_with, "cycles");
    // Unreadable, or more frames than the farm allows: rejected, saying what to tag instead.
    let unread: Result<BlendInfo, String> = Err("the file is truncated".into());
    let decision = decide(&scene_tag, facts(HEAD, &unread), &LIMITS);
    let message = rejection(&decision);
    assert!(
        message.contains("`frames=scene` needs the scene's frame range"),
        "{message}"
    );
    assert!(message.contains("the file is truncated"), "{message}");
    let small = Limits {
        max_frames: 2,
        task_slots: None,
    };
    let decision = decide(&scene_tag, facts(HEAD, &read), &small);
    assert!(rejection(&decision).contains("more than the farm's limit of 2"));
}

#[test]
fn a_scene_without_a_camera_is_rejected_whatever_the_frame_tag() {
    let read = read(Scene {
        camera: None,
        ..scene()
    });
    for pair in [("frames", "scene"), ("frame", "3")] {
        let decision = decide(&tags(&[pair]), facts(HEAD, &read), &LIMITS);
        let message = rejection(&decision);
        assert!(message.contains("scene `Scene` has no camera"), "{message}");
        assert!(message.contains("Scene Properties > Camera"), "{message}");
    }
}

#[test]
fn the_engine_and_the_stills_format_are_the_scenes_unless_asked() {
    let eevee = read(Scene {
        engine: "BLENDER_EEVEE_NEXT".into(),
        ..scene()
    });
    let accepted = submitted(decide(
        &tags(&[("frame", "1")]),
        facts(HEAD, &eevee),
        &LIMITS,
    ));
    assert_eq!(accepted.engine, Engine::Eevee);
    let asked = tags(&[("frame", "1"), ("engine", "cycles")]);
    let accepted = submitted(decide(&asked, facts(HEAD, &eevee), &LIMITS));
    assert_eq!(accepted.engine, Engine::Cycles);
    assert!(
        !accepted.notes.is_empty(),
        "the engine differs from the scene's: a note"
    );
    let movie = read(Scene {
        output_format: "FFMPEG".into(),
        movie: Some(crate::scene::tests::mkv()),
        ..scene()
    });
    let accepted = submitted(decide(
        &tags(&[("frames", "scene")]),
        facts(HEAD, &movie),
        &LIMITS,
    ));
    assert_eq!(accepted.request.format, Some(OutputFormat::Png));
    assert!(
        accepted.notes.iter().any(|n| n.contains("writes a movie")),
        "{:?}",
        accepted.notes
    );
    let record = accepted.scene.expect("the scene's record");
    assert!(record.notes.iter().any(|n| n.contains("writes a movie")));
    assert_eq!(
        accepted.movie.as_deref(),
        Some("mkv"),
        "the job makes the movie"
    );
}

#[test]
fn a_stereo_scene_saving_views_apart_submits_a_file_per_view() {
    let stereo = read(crate::scene::tests::stereo("INDIVIDUAL", "_R"));
    let accepted = submitted(decide(
        &tags(&[("frames", "1-2")]),
        facts(HEAD, &stereo),
        &LIMITS,
    ));
    assert_eq!(accepted.views.suffixes(), ["_L", "_R"]);
    let plain = read(scene());
    let accepted = submitted(decide(
        &tags(&[("frames", "1-2")]),
        facts(HEAD, &plain),
        &LIMITS,
    ));
    assert!(accepted.views.is_single());
    let clash = read(crate::scene::tests::stereo("INDIVIDUAL", "_L"));
    let refused = decide(&tags(&[("frames", "1-2")]), facts(HEAD, &clash), &LIMITS);
    assert!(
        rejection(&refused).contains("same file suffix `_L`"),
        "{refused:?}"
    );
}
