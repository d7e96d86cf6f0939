//! `infra/preflight.sh`, which `deploy.sh` runs before it builds anything: the names AWS would
//! refuse, and the account's Fargate vCPU quotas against `MaxVcpus`. The AWS CLI is a stub on
//! `PATH` answering the few calls the script makes with the values a test sets (moto implements
//! no Fargate quota).

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn script() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("preflight.sh")
}

/// A stub `aws`: `service-quotas get-service-quota` prints `$STUB_<code>` (fails when unset),
/// `cloudformation describe-stacks` prints `$STUB_STACK_<parameter>` (fails when unset).
const STUB: &str = r#"#!/bin/sh
case "$*" in
  *get-service-quota*L-36FBB829*) value="$STUB_SPOT" ;;
  *get-service-quota*L-3032A538*) value="$STUB_ON_DEMAND" ;;
  *describe-stacks*MaxVcpus*) value="$STUB_STACK_MAXVCPUS" ;;
  *describe-stacks*PreferSpot*) value="$STUB_STACK_PREFERSPOT" ;;
  *) echo "stub aws: unexpected call: $*" >&2; exit 2 ;;
esac
if [ -z "$value" ]; then echo "An error occurred (NoSuchResourceException)" >&2; exit 254; fi
echo "$value"
"#;

struct Stub {
    dir: tempfile::TempDir,
}

impl Stub {
    fn new() -> Self {
        let dir = tempfile::tempdir().expect("temp dir");
        let aws = dir.path().join("aws");
        std::fs::write(&aws, STUB).expect("write the stub");
        let mut mode = std::fs::metadata(&aws).expect("stub").permissions();
        std::os::unix::fs::PermissionsExt::set_mode(&mut mode, 0o755);
        std::fs::set_permissions(&aws, mode).expect("chmod");
        Self { dir }
    }

    fn run(&self, args: &[&str], vars: &[(&str, &str)]) -> Output {
        let path = format!(
            "{}:{}",
            self.dir.path().display(),
            std::env::var("PATH").unwrap_or_default()
        );
        let mut command = Command::new("bash");
        command.arg(script()).args(args).env("PATH", path);
        for name in [
            "STUB_SPOT",
            "STUB_ON_DEMAND",
            "STUB_STACK_MAXVCPUS",
            "STUB_STACK_PREFERSPOT",
        ] {
            command.env_remove(name);
        }
        command.envs(vars.iter().copied());
        command.output().expect("bash runs")
    }
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

#[test]
fn stack_names_that_make_bucket_or_repository_names_aws_refuses_are_refused() {
    let stub = Stub::new();
    for good in ["blender-farm", "f1", "a-b-c"] {
        let out = stub.run(&["names", good], &[]);
        assert!(out.status.success(), "{good}: {}", text(&out.stderr));
    }
    for (bad, why) in [
        ("xn--farm", "xn--"),
        ("sthree-farm", "sthree-"),
        ("amzn-s3-demo-farm", "amzn-s3-demo-"),
        ("my--farm", "two dashes"),
        ("Farm", "lowercase"),
        ("-farm", "lowercase"),
        ("farm-", "lowercase"),
        (&"f".repeat(36), "2-35"),
    ] {
        let out = stub.run(&["names", bad], &[]);
        let stderr = text(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{bad}: {stderr}");
        assert!(
            stderr.contains(bad) && stderr.contains(why),
            "{bad}: {stderr}"
        );
    }
}

#[test]
fn a_max_vcpus_given_above_the_first_compute_environments_quota_is_refused_naming_it() {
    let stub = Stub::new();
    let out = stub.run(
        &["quotas", "farm", "MaxVcpus=64"],
        &[("STUB_SPOT", "16.0"), ("STUB_ON_DEMAND", "100.0")],
    );
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("Fargate Spot vCPU resource count (L-36FBB829)"),
        "{stderr}"
    );
    assert!(stderr.contains("MaxVcpus=16"), "{stderr}");
    assert!(
        stderr.contains(
            "request-service-quota-increase --service-code fargate --quota-code L-36FBB829"
        ),
        "{stderr}"
    );
    // On-demand first: the on-demand quota decides.
    let out = stub.run(
        &["quotas", "farm", "MaxVcpus=64", "PreferSpot=false"],
        &[("STUB_SPOT", "16.0"), ("STUB_ON_DEMAND", "100.0")],
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(text(&out.stdout), "");
    assert!(
        text(&out.stderr).contains("Fargate Spot vCPU resource count (L-36FBB829) is 16"),
        "the second environment's lower quota is a warning: {}",
        text(&out.stderr)
    );
}

#[test]
fn the_default_max_vcpus_is_lowered_to_whole_tasks_of_the_quota_so_chunk_auto_plans_real_slots() {
    let stub = Stub::new();
    // A new account: 6 Spot vCPUs. Not given: the default 64 becomes 4 (one render task).
    let out = stub.run(
        &["quotas", "farm"],
        &[("STUB_SPOT", "6.0"), ("STUB_ON_DEMAND", "6.0")],
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(text(&out.stdout).trim(), "MaxVcpus=4");
    assert!(
        text(&out.stderr).contains("1 task slots"),
        "{}",
        text(&out.stderr)
    );
    // The deployed stack's own value counts as not given, and within the quota stays.
    let out = stub.run(
        &["quotas", "farm"],
        &[
            ("STUB_SPOT", "4000.0"),
            ("STUB_ON_DEMAND", "4000.0"),
            ("STUB_STACK_MAXVCPUS", "128"),
        ],
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(text(&out.stdout), "");
    // Below one task: refused.
    let out = stub.run(&["quotas", "farm"], &[("STUB_SPOT", "2.0")]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        text(&out.stderr).contains("not one render task"),
        "{}",
        text(&out.stderr)
    );
}

#[test]
fn an_unreadable_quota_is_a_warning_not_a_refusal() {
    let stub = Stub::new();
    let out = stub.run(&["quotas", "farm", "MaxVcpus=64"], &[]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(text(&out.stdout), "");
    assert!(
        text(&out.stderr).contains("could not read the quota Fargate Spot vCPU resource count"),
        "{}",
        text(&out.stderr)
    );
}

/// `infra/smoke.sh` deploys to a real account: it refuses without the cost opt-in, without
/// credentials, and against an emulator endpoint, before it builds or deploys anything.
#[test]
fn the_smoke_test_runs_only_when_asked_with_real_credentials() {
    let stub = Stub::new();
    let smoke = Path::new(env!("CARGO_MANIFEST_DIR")).join("smoke.sh");
    let run = |vars: &[(&str, &str)]| {
        let path = format!(
            "{}:{}",
            stub.dir.path().display(),
            std::env::var("PATH").unwrap_or_default()
        );
        let mut command = Command::new("bash");
        command
            .arg(&smoke)
            .env("PATH", path)
            .env_remove("FARM_SMOKE_ACCEPT_COSTS")
            .env_remove("AWS_ENDPOINT_URL")
            .envs(vars.iter().copied());
        command.output().expect("bash runs")
    };
    let out = run(&[]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        text(&out.stderr).contains("FARM_SMOKE_ACCEPT_COSTS=1"),
        "{}",
        text(&out.stderr)
    );
    // The stub answers no `sts get-caller-identity`: no credentials.
    let out = run(&[("FARM_SMOKE_ACCEPT_COSTS", "1")]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        text(&out.stderr).contains("no AWS credentials"),
        "{}",
        text(&out.stderr)
    );
    // Never in CI: the suite's script does not call it.
    let suite = Path::new(env!("CARGO_MANIFEST_DIR")).join("../scripts/test.sh");
    let body = std::fs::read_to_string(&suite).expect("scripts/test.sh");
    assert!(
        !body.contains("smoke.sh"),
        "scripts/test.sh runs the smoke test"
    );
}
