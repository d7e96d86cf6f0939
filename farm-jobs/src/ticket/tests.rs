use std::collections::BTreeMap;

use farm_testkit::MemoryStorage;
use proptest::prelude::*;

use super::*;

fn plan(frames: &str, chunk: u32) -> Plan {
    Plan::new(FrameList::parse(frames, DEFAULT_MAX_FRAMES).unwrap(), chunk).unwrap()
}

fn ticket(frames: &str) -> JobTicket {
    JobTicket {
        bucket: "bucket".to_owned(),
        keys: JobKeys::new("shots/a b ü.blend"),
        plan: plan(frames, 3),
        source_etag: Some("\"e1\"".to_owned()),
        format: Some(OutputFormat::OpenExr),
        engine: Some(Engine::Eevee),
        dependencies: Some("shots/a b ü.blend/deps/00ff.json".to_owned()),
        blender: Some(BlenderSeries::new(4, 5)),
        persistent: false,
        movie: Some("mkv".to_owned()),
        views: FrameViews::new(&["_L", "_R"]).unwrap(),
        scout: None,
    }
}

#[test]
fn a_local_ticket_versions_frames_by_the_scenes_hash_and_files() {
    let local = JobTicket::local(
        plan("1-4", 2),
        "5ca1ab1e",
        Some(OutputFormat::Png),
        Engine::Workbench,
        Some("0123456789abcdef"),
        true,
    );
    assert_eq!(local.keys, JobKeys::root());
    assert_eq!(
        local.version(),
        OutputVersion {
            source_tag: Some("5ca1ab1e".to_owned()),
            format: Some(OutputFormat::Png),
            dependencies: Some("0123456789abcdef".to_owned()),
            engine: Engine::Workbench,
            views: FrameViews::single(),
        }
    );
    let bare = JobTicket::local(plan("1", 1), "5ca1ab1e", None, Engine::Cycles, None, true);
    assert_eq!(bare.version().dependencies, None);
}

#[test]
fn the_version_at_an_upload_is_the_jobs_bound_to_that_etag() {
    let mut any = ticket("1-3");
    any.source_etag = None;
    let at = any.version_at(Some("\"e9\""));
    assert_eq!(at.source_tag.as_deref(), Some("\"e9\""));
    assert_eq!(
        OutputVersion {
            source_tag: None,
            ..at
        },
        any.version()
    );
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap()
}

async fn round_trip(ticket: &JobTicket) -> (Vec<(String, String)>, JobTicket) {
    let storage = MemoryStorage::new();
    let vars = ticket.to_env(&storage).await.unwrap();
    let back = JobTicket::from_env(&vars, &storage).await.unwrap();
    (vars, back)
}

#[tokio::test]
async fn a_ticket_reads_back_what_its_environment_says() {
    let full = ticket("1-10");
    let (vars, back) = round_trip(&full).await;
    assert_eq!(back, full);
    let vars: BTreeMap<_, _> = vars.into_iter().collect();
    assert_eq!(vars[env::BUCKET], "bucket");
    assert_eq!(vars[env::KEY], "shots/a b ü.blend");
    assert_eq!(vars[env::FRAMES], "1-10");
    assert_eq!(vars[env::CHUNK], "3");
    assert_eq!(vars[env::FORMAT], "OPEN_EXR");
    assert_eq!(vars[env::ENGINE], "eevee");
    assert_eq!(vars[env::SOURCE_ETAG], "\"e1\"");
    assert_eq!(vars[env::JOB_BLENDER_SERIES], "4.5");
    assert_eq!(vars[env::PERSISTENT], "off");
    assert_eq!(vars[env::DEPENDENCIES], "shots/a b ü.blend/deps/00ff.json");
    assert_eq!(vars[env::MOVIE], "mkv");
    assert_eq!(vars[env::VIEWS], "_L,_R");
    assert!(!vars.contains_key(env::ESTIMATE) && !vars.contains_key(env::MAX_VCPUS));

    // A scout's samples and the farm's MaxVcpus travel with it.
    let scout = JobTicket {
        scout: Some(Scout {
            samples: 2,
            max_vcpus: 256,
        }),
        ..full.clone()
    };
    let (vars, back) = round_trip(&scout).await;
    assert_eq!(back, scout);
    let vars: BTreeMap<_, _> = vars.into_iter().collect();
    assert_eq!(
        (vars[env::ESTIMATE].as_str(), vars[env::MAX_VCPUS].as_str()),
        ("2", "256")
    );
    assert_eq!(scout.for_zip().scout, None);

    // What a request leaves unset stays out of the environment and reads back unset.
    let bare = JobTicket {
        source_etag: None,
        format: None,
        engine: None,
        dependencies: None,
        blender: None,
        persistent: true,
        movie: None,
        views: FrameViews::single(),
        ..full
    };
    let (vars, back) = round_trip(&bare).await;
    assert_eq!(back, bare);
    let names: Vec<&str> = vars.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(names, [env::BUCKET, env::KEY, env::FRAMES, env::CHUNK]);
}

#[tokio::test]
async fn a_long_frame_list_travels_by_reference_and_reads_back_whole() {
    let long = ticket("1-3000:3 2-3000:3");
    let canonical = long.plan.frames().canonical();
    assert!(canonical.len() > FRAMES_INLINE_MAX, "{}", canonical.len());
    let storage = MemoryStorage::new();
    let vars = long.to_env(&storage).await.unwrap();
    let frames = &vars.iter().find(|(n, _)| n == env::FRAMES).unwrap().1;
    let key = frames.strip_prefix(FRAMES_REF_PREFIX).expect("a reference");
    assert_eq!(key, long.keys.frame_list(&canonical));
    assert_eq!(storage.body(key).unwrap(), canonical.as_bytes());
    assert_eq!(JobTicket::from_env(&vars, &storage).await.unwrap(), long);
    // Without the object, the reference is an error that names it.
    let err = JobTicket::from_env(&vars, &MemoryStorage::new())
        .await
        .unwrap_err();
    assert!(
        matches!(&err, TicketError::FrameList { key: k, .. } if k == key),
        "{err}"
    );
}

#[test]
fn the_workers_parser_names_the_variable_of_a_bad_value() {
    let good = |extra: &[(&str, &str)]| {
        // Later pairs replace earlier ones of the same name.
        let vars: BTreeMap<&str, &str> = [
            (env::BUCKET, "b"),
            (env::KEY, "k.blend"),
            (env::FRAMES, "1-10"),
        ]
        .iter()
        .chain(extra)
        .copied()
        .collect();
        let vars: Vec<(String, String)> = vars
            .into_iter()
            .map(|(n, v)| (n.to_owned(), v.to_owned()))
            .collect();
        runtime().block_on(JobTicket::from_env(&vars, &MemoryStorage::new()))
    };
    assert!(good(&[]).is_ok());
    for (var, value) in [
        (env::FRAMES, "5-1"),
        (env::CHUNK, "0"),
        (env::FORMAT, "gif"),
        (env::JOB_BLENDER_SERIES, "4"),
        (env::KEY, " "),
        (env::MOVIE, "m/kv"),
        (env::MOVIE, ".."),
        (env::MOVIE, "png"),
        (env::ESTIMATE, "0"),
        (env::ESTIMATE, "17"),
        (env::VIEWS, "_L,../x"),
        (env::VIEWS, "_L,_L"),
    ] {
        let err = good(&[(var, value)]).unwrap_err();
        assert!(
            matches!(&err, TicketError::Invalid { variable, .. } if *variable == var),
            "{var}={value}: {err}"
        );
        assert!(err.to_string().starts_with(var), "{err}");
    }
    // The pairs alone: this process's own `FARM_KEY` does not stand in for a missing one.
    std::env::set_var(env::KEY, "from-the-process.blend");
    let without_key = vec![
        (env::BUCKET.to_owned(), "b".to_owned()),
        (env::FRAMES.to_owned(), "1".to_owned()),
    ];
    let read = runtime().block_on(JobTicket::from_env(&without_key, &MemoryStorage::new()));
    std::env::remove_var(env::KEY);
    assert!(matches!(read, Err(TicketError::NotJobEnv(_))), "{read:?}");
    let err = good(&[("NOT_A_JOB_VARIABLE", "1")]).unwrap_err();
    assert!(matches!(err, TicketError::NotJobEnv(_)), "{err}");
    // An empty optional value reads as unset.
    let ticket = good(&[(env::FORMAT, ""), (env::SOURCE_ETAG, "")]).unwrap();
    assert_eq!((ticket.format, ticket.source_etag), (None, None));
    assert_eq!(
        good(&[(env::MOVIE, "mp4")]).unwrap().movie.as_deref(),
        Some("mp4")
    );
}

#[test]
fn the_zip_ticket_keeps_the_version_and_drops_what_only_the_render_job_reads() {
    let render = ticket("1-10");
    let zip = render.for_zip();
    assert_eq!(zip.version(), render.version());
    assert_eq!(zip.plan, render.plan);
    assert_eq!((zip.blender, zip.persistent), (None, true));
    assert_eq!(zip.movie, None, "the zip job makes no movie");
    assert_eq!(render.for_render().movie, None, "nor the render job");
    let movie = render.for_movie().expect("the scene asks for a movie");
    assert_eq!(movie.version(), render.version());
    assert_eq!(
        (movie.blender, movie.movie.as_deref()),
        (render.blender, Some("mkv")),
        "the movie job runs the render job's Blender"
    );
    let stills = JobTicket {
        movie: None,
        ..render
    };
    assert_eq!(stills.for_movie(), None);
}

#[test]
fn the_version_is_the_tickets_identity() {
    let version = ticket("1").version();
    assert_eq!(version.source_tag.as_deref(), Some("\"e1\""));
    assert_eq!(version.format, Some(OutputFormat::OpenExr));
    assert_eq!(version.dependencies.as_deref(), Some("00ff"));
    assert_eq!(version.engine, Engine::Eevee);
    let old = JobTicket {
        engine: None,
        ..ticket("1")
    };
    assert_eq!(old.version().engine, Engine::Cycles);
}

#[test]
fn a_manifest_makes_the_ticket_its_jobs_were_given() {
    let submitted = ticket("1-3000:3 2-3000:3");
    let request = RenderRequest {
        plan: submitted.plan.clone(),
        format: submitted.format,
        engine: submitted.engine,
        blender: submitted.blender.map(BlenderPick::Series),
        persistent: submitted.persistent,
        estimate: None,
    };
    let source = crate::SourceObject {
        bucket: submitted.bucket.clone(),
        key: submitted.keys.source().to_owned(),
        etag: "\"e1\"".to_owned(),
        version_id: None,
        saved_by: None,
        scene: None,
        movie: submitted.movie.clone(),
        views: submitted.views.clone(),
    };
    let mut manifest = crate::submitted_manifest(&source, &request, "r", "z");
    manifest.movie.clone_from(&submitted.movie);
    manifest.dependencies = Some(farm_core::deps::DependencyRecord {
        list: submitted.dependencies.clone(),
        ..Default::default()
    });
    assert_eq!(JobTicket::from_manifest(&manifest).unwrap(), submitted);
    let for_request = JobTicket::for_request(
        &source.bucket,
        &source.key,
        Some(&source.etag),
        &request,
        submitted.dependencies.as_deref(),
    );
    assert_eq!(
        JobTicket {
            movie: submitted.movie.clone(),
            views: submitted.views.clone(),
            ..for_request
        },
        submitted
    );
    manifest.frames = Some("9-1".to_owned());
    let err = JobTicket::from_manifest(&manifest).unwrap_err().to_string();
    assert!(err.contains("unreadable frame list `9-1`"), "{err}");
}

fn frame_lists() -> impl Strategy<Value = FrameList> {
    prop::collection::vec((-5_000i32..5_000, 0u16..400, 1u16..8), 1..200).prop_map(|ranges| {
        let frames = ranges.into_iter().flat_map(|(start, len, step)| {
            (0..=i32::from(len) / i32::from(step)).map(move |i| start + i * i32::from(step))
        });
        FrameList::from_frames(frames).unwrap()
    })
}

proptest! {
    /// Whatever its frames (long lists by reference) and settings, a ticket reads back equal.
    #[test]
    fn every_ticket_reads_back_equal(
        frames in frame_lists(),
        chunk in 1u32..50,
        key in "[a-z][a-zA-Z0-9 /_ü.-]{0,299}",
        etag in proptest::option::of("\"[0-9a-f]{32}(-[0-9]{1,3})?\""),
        format in proptest::option::of(prop::sample::select(vec!["PNG", "JPEG", "OPEN_EXR", "TIFF", "WEBP"])),
        engine in proptest::option::of(prop::sample::select(vec![Engine::Cycles, Engine::Eevee, Engine::Workbench])),
        blender in proptest::option::of((4u16..6, 0u16..6)),
        persistent in any::<bool>(),
        movie in proptest::option::of(prop::sample::select(farm_blend::MOVIE_EXTENSIONS)),
        scout in proptest::option::of((1u16..=16, 4u32..5000)),
        views in prop::sample::select(vec![vec![], vec!["_L", "_R"], vec!["-a", "", "B_2"]]),
    ) {
        let chunk = chunk.max(u32::try_from(frames.len().div_ceil(farm_core::plan::MAX_ARRAY_SIZE)).unwrap());
        let ticket = JobTicket {
            bucket: "bucket".to_owned(),
            keys: JobKeys::new(key.clone()),
            plan: Plan::new(frames, chunk).unwrap(),
            source_etag: etag,
            format: format.map(|f| f.parse().unwrap()),
            engine,
            dependencies: Some(format!("{key}/deps/0a1b.json")),
            blender: blender.map(|(major, minor)| BlenderSeries::new(major, minor)),
            persistent,
            movie: movie.map(str::to_owned),
            views: FrameViews::new(&views).unwrap(),
            scout: scout.map(|(samples, max_vcpus)| Scout { samples, max_vcpus }),
        };
        let (_, back) = runtime().block_on(round_trip(&ticket));
        prop_assert_eq!(back, ticket);
    }
}
