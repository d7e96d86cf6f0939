//! `farm render` and a project's files: a Blender-made project (the e2e fixture's script) whose
//! shot uses a texture beside it and a library whose object uses its own texture in `../shared/`.

mod common;

use common::{farm, make_project, run};

#[test]
fn missing_files_are_listed_before_rendering_and_strict_refuses() {
    let dir = tempfile::tempdir().unwrap();
    let project = make_project(dir.path());
    let shot = project.join("shots/shot.blend");
    let green = project.join("shared/green.png");
    std::fs::remove_file(&green).unwrap();
    std::fs::remove_file(project.join("shots/tex/skin.1002.png")).unwrap();

    let out = dir.path().join("strict.farm");
    let refused = run(farm()
        .args(["render", "--frames", "1", "--strict", "--out"])
        .arg(&out)
        .arg(&shot));
    let line = refused.one_line_error();
    assert!(
        line.contains("2 file(s) the scene needs are missing"),
        "{line}"
    );
    assert!(line.contains("//../shared/green.png"), "{line}");
    assert!(line.contains(&format!("{}", green.display())), "{line}");
    assert!(line.contains("skin.1002.png"), "{line}");
    assert!(!out.join("frames").exists(), "nothing rendered");

    // Without --strict: listed as a warning, then rendered.
    let out = dir.path().join("loose.farm");
    let rendered = run(farm()
        .args(["render", "--frames", "1", "--out"])
        .arg(&out)
        .arg(&shot));
    rendered.ok();
    assert!(
        rendered
            .stderr
            .contains("2 file(s) the scene needs are missing")
            && rendered.stderr.contains("shared/green.png"),
        "{}",
        rendered.stderr
    );
    assert!(out.join("frames/0001.png").is_file());

    // All there: no warning.
    std::fs::copy(project.join("shots/tex/red.png"), &green).unwrap();
    std::fs::copy(
        project.join("shots/tex/skin.1001.png"),
        project.join("shots/tex/skin.1002.png"),
    )
    .unwrap();
    let out = dir.path().join("whole.farm");
    let whole = run(farm()
        .args(["render", "--frames", "1", "--strict", "--out"])
        .arg(&out)
        .arg(&shot));
    whole.ok();
    assert!(!whole.stderr.contains("missing"), "{}", whole.stderr);

    // Rendering again keeps the frame; after a texture changed, the frame is rendered again.
    let frame = out.join("frames/0001.png");
    let red = [255, 0, 0];
    let blue = [0, 0, 255];
    // The shot's plane (left half) shows `//tex/red.png`.
    let left = |png: &[u8]| farm_testkit::pixel(png, 4, 12).unwrap();
    assert_eq!(left(&std::fs::read(&frame).unwrap()), red);
    let modified = std::fs::metadata(&frame).unwrap().modified().unwrap();
    let render_whole = || {
        let again = run(farm()
            .args(["render", "--frames", "1", "--strict", "--out"])
            .arg(&out)
            .arg(&shot));
        again.ok();
    };
    render_whole();
    assert_eq!(
        std::fs::metadata(&frame).unwrap().modified().unwrap(),
        modified,
        "nothing changed: the frame is kept"
    );
    std::fs::copy(
        project.join("shots/tex/skin.1001.png"),
        project.join("shots/tex/red.png"),
    )
    .unwrap();
    render_whole();
    assert_eq!(
        left(&std::fs::read(&frame).unwrap()),
        blue,
        "the texture changed (to a blue one): the frame is rendered with it"
    );
}
