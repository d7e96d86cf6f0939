//! Every bad input: one clear line on stderr and exit code 1.

mod common;

use std::path::Path;

use common::{farm, run, Run};

/// A file that starts like a .blend: enough for the checks that run before Blender.
fn fake_blend(dir: &Path) -> std::path::PathBuf {
    let path = dir.join("scene.blend");
    std::fs::write(&path, b"BLENDER-v304RENDHfake scene for input checks").unwrap();
    path
}

fn render(args: &[&str], scene: &Path) -> Run {
    run(farm().arg("render").args(args).arg(scene))
}

#[test]
fn a_missing_scene_is_named() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("nope.blend");
    for command in ["render", "submit"] {
        let mut cmd = farm();
        cmd.arg(command).arg(&missing);
        if command == "submit" {
            cmd.args(["--bucket", "b", "--frames", "1"]);
        }
        let result = run(&mut cmd);
        let line = result.one_line_error();
        assert!(line.contains("nope.blend does not exist"), "{line}");
    }
}

#[test]
fn a_file_that_is_not_a_blend_is_refused_before_blender_runs() {
    let dir = tempfile::tempdir().unwrap();
    let text = dir.path().join("notes.blend");
    std::fs::write(&text, "just some text").unwrap();
    let result = render(&["--frames", "1"], &text);
    let line = result.one_line_error();
    assert!(line.contains("is not a .blend file"), "{line}");
    assert!(
        !dir.path().join("notes.farm").exists(),
        "nothing is created"
    );

    let empty = dir.path().join("empty.blend");
    std::fs::write(&empty, "").unwrap();
    assert!(render(&[], &empty).one_line_error().contains("empty"));

    let folder = dir.path().join("folder.blend");
    std::fs::create_dir(&folder).unwrap();
    assert!(render(&[], &folder)
        .one_line_error()
        .contains("is a folder"));

    let submit = run(farm()
        .arg("submit")
        .arg(&text)
        .args(["--bucket", "b", "--frames", "1"]));
    assert!(submit.one_line_error().contains("is not a .blend file"));
}

#[test]
fn invalid_frame_lists_say_what_is_wrong() {
    let dir = tempfile::tempdir().unwrap();
    let blend = fake_blend(dir.path());
    for (frames, needle) in [
        ("5-1", "runs backwards"),
        ("abc", "is not a frame"),
        ("1-10:0", "step"),
        ("", "empty"),
        ("1-99999999", "outside Blender's frame range"),
    ] {
        let result = render(&["--frames", frames], &blend);
        let line = result.one_line_error();
        assert!(line.contains("invalid --frames"), "{frames}: {line}");
        assert!(line.contains(needle), "{frames}: {line}");
    }
    let chunk = render(&["--frames", "1-4", "--format", "gif"], &blend);
    assert!(chunk.one_line_error().contains("is not an output format"));

    for (flag, value, needle) in [
        ("--frames", "5-1", "tag `frames=5-1` is invalid"),
        ("--frame", "0", "tag `frame=0` is invalid"),
    ] {
        let result = run(farm()
            .arg("submit")
            .arg(&blend)
            .args(["--bucket", "b", flag, value]));
        let line = result.one_line_error();
        assert!(line.contains(needle), "{line}");
    }
    let chunk = run(farm()
        .arg("submit")
        .arg(&blend)
        .args(["--bucket", "b", "--frames", "1-4", "--chunk", "x"]));
    assert!(chunk.one_line_error().contains("tag `chunk=x` is invalid"));
    let key = run(farm().arg("submit").arg(&blend).args([
        "--bucket",
        "b",
        "--frames",
        "1-4",
        "--key",
        "scene.txt",
    ]));
    assert!(key.one_line_error().contains("does not end in `.blend`"));
}

#[test]
fn an_unwritable_output_folder_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let blend = fake_blend(dir.path());
    let file = dir.path().join("a file");
    std::fs::write(&file, "x").unwrap();

    let under_a_file = file.join("out");
    let result = render(
        &["--frames", "1", "--out", under_a_file.to_str().unwrap()],
        &blend,
    );
    let line = result.one_line_error();
    assert!(line.contains("cannot create the output folder"), "{line}");
    assert!(line.contains("--out"), "{line}");

    let result = render(&["--frames", "1", "--out", file.to_str().unwrap()], &blend);
    assert!(result.one_line_error().contains("is a file"));

    // A read-only folder (root ignores permissions, so use a read-only file system then).
    let read_only = dir.path().join("read-only");
    std::fs::create_dir(&read_only).unwrap();
    let mut permissions = std::fs::metadata(&read_only).unwrap().permissions();
    permissions.set_readonly(true);
    std::fs::set_permissions(&read_only, permissions).unwrap();
    let probe = std::fs::write(read_only.join("probe"), "x").is_ok();
    let target = if probe {
        Path::new("/proc/farm-test-out").to_owned()
    } else {
        read_only.join("out")
    };
    let result = render(
        &["--frames", "1", "--out", target.to_str().unwrap()],
        &blend,
    );
    let line = result.one_line_error();
    assert!(line.contains("output folder"), "{line}");
    download_into(&target);
}

/// `farm download` checks its output folder before any network call.
fn download_into(target: &Path) {
    let result = run(farm()
        .args(["download", "k.blend", "--bucket", "b", "--out"])
        .arg(target));
    assert!(result.one_line_error().contains("output folder"));
}

#[test]
fn an_unreachable_endpoint_is_one_line_naming_it() {
    let dir = tempfile::tempdir().unwrap();
    let blend = fake_blend(dir.path());
    let unreachable = |cmd: &mut std::process::Command| {
        cmd.env("AWS_ENDPOINT_URL", "http://127.0.0.1:9")
            .env("AWS_REGION", "us-east-1")
            .env("AWS_ACCESS_KEY_ID", "testing")
            .env("AWS_SECRET_ACCESS_KEY", "testing");
    };
    let commands: Vec<Vec<&str>> = vec![
        vec!["status", "k.blend", "--bucket", "b"],
        vec!["status", "k.blend", "--bucket", "b", "--json"],
        vec!["cancel", "k.blend", "--bucket", "b"],
        vec![
            "retry",
            "k.blend",
            "--bucket",
            "b",
            "--queue",
            "q",
            "--job-definition",
            "r",
            "--zip-job-definition",
            "z",
        ],
    ];
    for args in commands {
        let mut cmd = farm();
        cmd.args(&args);
        unreachable(&mut cmd);
        let result = run(&mut cmd);
        let line = result.one_line_error();
        assert!(line.contains("127.0.0.1:9"), "{args:?}: {line}");
    }
    let out = dir.path().join("dl");
    let mut cmd = farm();
    cmd.args(["download", "k.blend", "--bucket", "b", "--out"])
        .arg(&out);
    unreachable(&mut cmd);
    let result = run(&mut cmd);
    let line = result.one_line_error();
    assert!(line.contains("127.0.0.1:9"), "{line}");

    // (The stand-in .blend is unreadable to the farm: --force sends it unchecked.)
    let mut cmd = farm();
    cmd.arg("submit")
        .arg(&blend)
        .args(["--bucket", "b", "--frames", "1-4", "--force"]);
    unreachable(&mut cmd);
    let result = run(&mut cmd);
    let line = result.one_line_error();
    assert!(line.contains("127.0.0.1:9"), "{line}");
}

#[test]
fn usage_errors_are_one_line_too() {
    for args in [
        vec!["render"],
        vec!["submit", "a.blend", "--frames", "1"],
        vec!["render", "a.blend", "--workers", "0"],
        vec!["render", "a.blend", "--no-such-flag"],
        vec!["no-such-command"],
    ] {
        let result = run(farm().args(&args));
        let line = result.one_line_error();
        assert!(line.contains("--help"), "{args:?}: {line}");
    }
}

#[test]
fn a_missing_blender_is_named_with_the_fix() {
    let dir = tempfile::tempdir().unwrap();
    let blend = fake_blend(dir.path());
    // The frame range is read without Blender, so Blender is first needed for the chunk.
    let result = run(farm()
        .args(["render", "--frames", "1"])
        .arg(&blend)
        .env("BLENDER", dir.path().join("no-blender-here")));
    let line = result.one_line_error();
    assert!(line.contains("cannot run blender"), "{line}");
    assert!(line.contains("--blender"), "{line}");
}

#[test]
fn bare_farm_prints_the_help_on_stderr_and_exits_1() {
    let result = run(&mut farm());
    assert_eq!(result.code, Some(1), "{result:#?}");
    assert!(result.stdout.is_empty(), "{result:#?}");
    assert!(result.stderr.contains("Usage: farm"), "{result:#?}");
    assert!(result.stderr.contains("render"), "{result:#?}");
    // Asking for the help is not an error.
    assert_eq!(run(farm().arg("--help")).code, Some(0));
}

#[test]
fn local_errors_use_no_cloud_words() {
    let dir = tempfile::tempdir().unwrap();
    let blend = fake_blend(dir.path());
    let text = dir.path().join("notes.blend");
    std::fs::write(&text, "just some text").unwrap();
    let lines = [
        render(&["--frames", "1"], &text)
            .one_line_error()
            .to_owned(),
        render(&["--frames", "1-100001"], &blend)
            .one_line_error()
            .to_owned(),
        render(&["--frames", "1-10001", "--chunk", "1"], &blend)
            .one_line_error()
            .to_owned(),
        render(&["--frames", "1-4", "--chunk", "0"], &blend)
            .one_line_error()
            .to_owned(),
    ];
    assert!(lines[0].contains("not a .blend file"), "{}", lines[0]);
    assert!(lines[1].contains("more than 100000 frames"), "{}", lines[1]);
    assert!(lines[2].contains("use --chunk 2 or more"), "{}", lines[2]);
    assert!(lines[3].contains("or `auto`"), "{}", lines[3]);
    for line in &lines {
        for word in ["upload", "AWS", "Batch", "array", "task", "chunk="] {
            assert!(!line.contains(word), "`{word}` in a local error: {line}");
        }
    }
}

/// A decompression bomb is never left to Blender, even with `--frames` given (which leaves an
/// unreadable file to Blender): one line naming both bounds, nothing rendered or uploaded.
#[test]
fn a_decompression_bomb_is_refused_naming_both_bounds() {
    let dir = tempfile::tempdir().unwrap();
    let bomb = dir.path().join("bomb.blend");
    std::fs::write(
        &bomb,
        farm_testkit::zstd_blend_bomb(b"BLENDER-v304", (32 << 30) / 24 * 24),
    )
    .unwrap();
    let out = dir.path().join("out");
    let mut commands = vec![
        render(&["--frames", "1", "--out", out.to_str().unwrap()], &bomb),
        run(farm().arg("inspect").arg(&bomb)),
    ];
    let mut submit = farm();
    submit
        .env("AWS_ENDPOINT_URL", "http://127.0.0.1:9")
        .args(["submit", "--bucket", "b", "--frame", "1"])
        .arg(&bomb);
    commands.push(run(&mut submit));
    for result in &commands {
        let error = result.one_line_error();
        assert!(error.contains("decompression bomb"), "{error}");
        assert!(error.contains("128 times its compressed size"), "{error}");
        assert!(error.contains("16 GiB"), "{error}");
    }
    assert!(!out.join("frames").exists());
}

/// No AWS credentials at all: one line saying so and how to sign in, without the SDK's chain of
/// providers (that is under -v), and no advice to retry the network.
#[test]
fn missing_credentials_are_one_line_saying_how_to_sign_in() {
    let result = run(farm()
        .args(["status", "k.blend", "--bucket", "b"])
        .env("AWS_REGION", "us-east-1")
        .env("AWS_ENDPOINT_URL", "http://127.0.0.1:9"));
    let line = result.one_line_error();
    assert!(line.contains("no usable credentials"), "{line}");
    assert!(line.contains("aws sso login"), "{line}");
    assert!(!line.contains("Attempted"), "{line}");
    assert!(!line.contains("then retry"), "{line}");
}

/// What S3 answers a request for a bucket of another region (here `eu-west-1`, the request
/// signed for `us-east-1`), byte for byte as S3 sends it but for `Content-Length` in place of
/// chunked encoding: a `301 PermanentRedirect` naming the bucket's region in
/// `x-amz-bucket-region` (and the endpoint in the body)...
const S3_PERMANENT_REDIRECT: &str = "HTTP/1.1 301 Moved Permanently\r\n\
x-amz-bucket-region: eu-west-1\r\n\
x-amz-request-id: 2FZ1F6MB3NBFJ5DX\r\n\
x-amz-id-2: c2X4ilVJNkzP8J0ZTs6Hq7nVWrOqUNCUWUAxlZ+2a9Kt8oCjY4NHjNcnFxb3kJ0gEw2LeLHBm5M=\r\n\
Content-Type: application/xml\r\n\
Date: Sun, 06 Dec 2026 21:00:00 GMT\r\n\
Server: AmazonS3\r\n\
Content-Length: 402\r\n\
\r\n\
<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n\
<Error><Code>PermanentRedirect</Code><Message>The bucket you are attempting to access must be addressed using the specified endpoint. Please send all future requests to this endpoint.</Message><Endpoint>b.s3.eu-west-1.amazonaws.com</Endpoint><Bucket>b</Bucket><RequestId>2FZ1F6MB3NBFJ5DX</RequestId><HostId>c2X4ilVJNkzP8J0ZTs6Hq7nVWrOqUNCUWUAxlZ=</HostId></Error>";

/// ... or, at the bucket's regional endpoint, `400 AuthorizationHeaderMalformed` saying which
/// region it expected, in the body and in `x-amz-bucket-region` (the header is all a `HEAD`
/// gets; botocore's region redirector reads it there) ...
const S3_AUTHORIZATION_HEADER_MALFORMED: &str = "HTTP/1.1 400 Bad Request\r\n\
x-amz-bucket-region: eu-west-1\r\n\
x-amz-request-id: 0Q6ZVYR2MDAB4RVA\r\n\
x-amz-id-2: 8vDoE1iD0kvUgtWeTq6XqgqVy2C7A1lTQFQHXNs7jEq7t0+e1VYxkTjd5gk3v5Lh4tCKoTSNKg0=\r\n\
Content-Type: application/xml\r\n\
Date: Sun, 06 Dec 2026 21:00:00 GMT\r\n\
Server: AmazonS3\r\n\
Content-Length: 336\r\n\
\r\n\
<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n\
<Error><Code>AuthorizationHeaderMalformed</Code><Message>The authorization header is malformed; the region 'us-east-1' is wrong; expecting 'eu-west-1'</Message><Region>eu-west-1</Region><RequestId>0Q6ZVYR2MDAB4RVA</RequestId><HostId>8vDoE1iD0kvUgtWeTq6XqgqVy2C7A1lTQFQHXNs7jEq7t0=</HostId></Error>";

/// ... and a session token past its time: `400 ExpiredToken`.
const S3_EXPIRED_TOKEN: &str = "HTTP/1.1 400 Bad Request\r\n\
x-amz-request-id: 7TQ3X9ZB1GJ2K8PD\r\n\
x-amz-id-2: Yc3kE1oP0qvDgtWeTq6XqgqVy2C7A1lTQFQHXNs7jEq7t0+e1VYxkTjd5gk3v5Lh4tCKoTSNKg0=\r\n\
Content-Type: application/xml\r\n\
Date: Sun, 06 Dec 2026 21:00:00 GMT\r\n\
Server: AmazonS3\r\n\
Content-Length: 292\r\n\
\r\n\
<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n\
<Error><Code>ExpiredToken</Code><Message>The provided token has expired.</Message><Token-0>FwoGZXIvYXdzEJr//////////wEaDEXAMPLETOKEN</Token-0><RequestId>7TQ3X9ZB1GJ2K8PD</RequestId><HostId>Yc3kE1oP0qvDgtWeTq6XqgqVy2C7A1lTQFQHXNs7jEq7t0=</HostId></Error>";

/// `farm status` (and `download`) against an endpoint answering with `response`, with
/// credentials and `us-east-1` set; `verbose` adds `-v`.
fn against(response: &str, args: &[&str], verbose: bool) -> Run {
    let endpoint = farm_testkit::CannedEndpoint::start(response.as_bytes().to_vec()).unwrap();
    let mut cmd = farm();
    cmd.args(args)
        .env("AWS_ENDPOINT_URL", endpoint.endpoint())
        .env("AWS_REGION", "us-east-1")
        .env("AWS_ACCESS_KEY_ID", "testing")
        .env("AWS_SECRET_ACCESS_KEY", "testing")
        .env("AWS_SESSION_TOKEN", "testing");
    if verbose {
        cmd.arg("-v");
    }
    run(&mut cmd)
}

/// Errors AWS gives and moto cannot (a bucket in another region, an expired session), replayed
/// from S3's own response bytes by a stand-in endpoint, through the real `farm`: one line
/// saying what happened and what to do, AWS's code only under -v.
#[test]
fn a_wrong_region_and_expired_credentials_are_one_line_saying_what_to_do() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("dl");
    let status = ["status", "k.blend", "--bucket", "b"];
    let download = [
        "download",
        "k.blend",
        "--bucket",
        "b",
        "--out",
        out.to_str().unwrap(),
    ];
    for (response, code) in [
        (S3_PERMANENT_REDIRECT, "PermanentRedirect"),
        (
            S3_AUTHORIZATION_HEADER_MALFORMED,
            "AuthorizationHeaderMalformed",
        ),
    ] {
        for args in [&status[..], &download[..]] {
            let result = against(response, args, false);
            let line = result.one_line_error();
            assert!(
                line.contains("the bucket is in eu-west-1, and requests went to us-east-1")
                    && line.contains("Set AWS_REGION=eu-west-1"),
                "{code} {args:?}: {line}"
            );
            assert!(!line.contains(code), "{line}");
        }
        let verbose = against(response, &status, true);
        assert!(verbose.stderr.contains(code), "{verbose:#?}");
    }
    // (A HEAD's 400 has no body, so `farm download`, which asks for the archive with a HEAD
    // first, cannot tell an expired token from another bad request.)
    let report = ["report", "k.blend", "--bucket", "b"];
    for args in [&status[..], &report[..]] {
        let result = against(S3_EXPIRED_TOKEN, args, false);
        let line = result.one_line_error();
        assert!(
            line.contains("your AWS credentials have expired") && line.contains("aws sso login"),
            "{args:?}: {line}"
        );
        assert!(!line.contains("ExpiredToken"), "{line}");
    }
    let verbose = against(S3_EXPIRED_TOKEN, &status, true);
    assert!(verbose.stderr.contains("ExpiredToken"), "{verbose:#?}");
}
