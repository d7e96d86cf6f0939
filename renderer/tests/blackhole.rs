//! Every AWS call is bounded: against an endpoint that accepts connections and never answers,
//! the renderer gives up after its timeouts and exits TRANSIENT (Batch retries) instead of
//! holding a 4-vCPU task until the attempt timeout (issue 12). The zipper's case is in
//! `zipper/tests/moto.rs`.

use std::process::Command;
use std::time::Duration;

use farm_core::exit;
use farm_testkit::{run_bounded, BlackHole};

#[test]
fn the_renderer_gives_up_on_a_black_hole_and_exits_transient() {
    let hole = BlackHole::start().unwrap();
    let work = tempfile::tempdir().unwrap();
    let mut command = Command::new(env!("CARGO_BIN_EXE_renderer"));
    hole.aws_env(&mut command)
        .env("FARM_BUCKET", "renders")
        .env("FARM_KEY", "scene.blend")
        .env("FARM_FRAMES", "1")
        .env("FARM_WORK_DIR", work.path());
    let run = run_bounded(command, Duration::from_secs(60)).unwrap();
    assert_eq!(
        run.code,
        Some(exit::TRANSIENT),
        "after {:?}: {}",
        run.took,
        run.stderr
    );
    assert!(run.took < Duration::from_secs(30), "took {:?}", run.took);
}
