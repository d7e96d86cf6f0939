//! farm-core stays pure: its dependency closure (normal dependencies, not dev or build) holds no
//! AWS SDK, async runtime or HTTP stack.

use std::collections::{BTreeSet, HashMap};
use std::process::Command;

use serde_json::Value;

/// Packages farm-core must never depend on, by exact name; any `aws-*` package is refused too.
const FORBIDDEN: &[&str] = &["tokio", "lambda_runtime", "hyper", "reqwest"];

fn metadata() -> Value {
    let output = Command::new(env!("CARGO"))
        .args(["metadata", "--format-version", "1"])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .expect("cargo metadata runs");
    assert!(
        output.status.success(),
        "cargo metadata failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    serde_json::from_slice(&output.stdout).expect("cargo metadata prints JSON")
}

/// Names of the packages reachable from `root` through normal dependencies.
fn normal_closure(metadata: &Value, root: &str) -> BTreeSet<String> {
    let names: HashMap<&str, &str> = metadata["packages"]
        .as_array()
        .expect("packages")
        .iter()
        .map(|p| (p["id"].as_str().unwrap(), p["name"].as_str().unwrap()))
        .collect();
    let nodes: HashMap<&str, &Value> = metadata["resolve"]["nodes"]
        .as_array()
        .expect("resolve nodes")
        .iter()
        .map(|n| (n["id"].as_str().unwrap(), n))
        .collect();
    let root_id = names
        .iter()
        .find(|(_, name)| **name == root)
        .map(|(id, _)| *id)
        .expect("root package in the workspace");

    let mut seen = BTreeSet::new();
    let mut stack = vec![root_id];
    while let Some(id) = stack.pop() {
        if !seen.insert(id) {
            continue;
        }
        for dep in nodes[id]["deps"].as_array().expect("deps") {
            let normal = dep["dep_kinds"]
                .as_array()
                .expect("dep_kinds")
                .iter()
                .any(|kind| kind["kind"].is_null());
            if normal {
                stack.push(dep["pkg"].as_str().unwrap());
            }
        }
    }
    seen.into_iter().map(|id| names[id].to_owned()).collect()
}

#[test]
fn farm_core_depends_on_no_sdk_runtime_or_http_stack() {
    let closure = normal_closure(&metadata(), "farm-core");
    assert!(
        closure.contains("serde"),
        "the closure is computed: {closure:?}"
    );
    let offending: Vec<&String> = closure
        .iter()
        .filter(|name| name.starts_with("aws-") || FORBIDDEN.contains(&name.as_str()))
        .collect();
    assert!(
        offending.is_empty(),
        "farm-core must stay free of I/O crates, but depends on {offending:?}"
    );
}

#[test]
fn the_check_would_catch_an_io_crate() {
    // farm-io depends on the AWS SDK and tokio: the same walk must find them there.
    let closure = normal_closure(&metadata(), "farm-io");
    assert!(closure.contains("aws-sdk-s3"), "{closure:?}");
    assert!(closure.contains("tokio"), "{closure:?}");
}
