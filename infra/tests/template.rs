//! Reads `infra/farm.yaml` and checks what `cfn-lint` and `checkov` cannot: the S3 event filter,
//! the job sizes, the Batch retry rules against the binaries' exit codes (`farm_core::exit`),
//! the trigger's environment (`farm_core::env`) and the least-privilege IAM policies against the
//! key layout (`farm_core::JobKeys`).

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use farm_core::{env, exit, receipt, JobKeys};
use serde_json::{json, Value};

/// The bucket's name, as the template builds it wherever it cannot `Ref` the bucket.
const BUCKET_NAME_SUB: &str = "${AWS::StackName}-${AWS::AccountId}-${AWS::Region}";
const BUCKET_ARN_SUB: &str =
    "arn:${AWS::Partition}:s3:::${AWS::StackName}-${AWS::AccountId}-${AWS::Region}";

fn template_text() -> String {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join(farm_infra::TEMPLATE_PATH);
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("read {}: {e}", path.display()))
}

fn template() -> Value {
    serde_yaml_ng::from_str(&template_text()).expect("farm.yaml is plain YAML")
}

fn resource<'t>(t: &'t Value, name: &str) -> &'t Value {
    let r = &t["Resources"][name];
    assert!(r.is_object(), "resource {name} is missing");
    r
}

fn props<'t>(t: &'t Value, name: &str) -> &'t Value {
    &resource(t, name)["Properties"]
}

fn parameter<'t>(t: &'t Value, name: &str) -> &'t Value {
    let p = &t["Parameters"][name];
    assert!(p.is_object(), "parameter {name} is missing");
    p
}

fn as_i64(v: &Value) -> i64 {
    match v {
        Value::Number(n) => n.as_i64().expect("integer"),
        Value::String(s) => s.parse().expect("integer string"),
        other => panic!("not a number: {other}"),
    }
}

fn r#ref(name: &str) -> Value {
    json!({ "Ref": name })
}

/// Every allowed `DefaultBlender`: `auto` and each series.
fn defaults(t: &Value) -> Vec<String> {
    parameter(t, "DefaultBlender")["AllowedValues"]
        .as_array()
        .expect("AllowedValues")
        .iter()
        .map(|v| v.as_str().expect("a string").to_owned())
        .collect()
}

/// The Blender series the stack runs: the allowed values of `DefaultBlender` but `auto`.
fn series(t: &Value) -> Vec<String> {
    defaults(t).into_iter().filter(|v| v != "auto").collect()
}

/// The render job definition of a series: `RenderJobDefinition42` for 4.2.
fn render_job(series: &str) -> String {
    format!("RenderJobDefinition{}", series.replace('.', ""))
}

/// Every render job definition, then the zip job definition.
fn job_definitions(t: &Value) -> Vec<String> {
    let mut jobs: Vec<String> = series(t).iter().map(|s| render_job(s)).collect();
    jobs.push("ZipJobDefinition".to_owned());
    jobs
}

fn resources_of_type<'t>(t: &'t Value, ty: &str) -> Vec<(&'t String, &'t Value)> {
    t["Resources"]
        .as_object()
        .expect("Resources")
        .iter()
        .filter(|(_, r)| r["Type"] == ty)
        .collect()
}

// ------------------------------------------------------------------ template form

#[test]
fn template_is_plain_cloudformation_with_long_form_intrinsics() {
    let text = template_text();
    for (n, line) in text.lines().enumerate() {
        let code = line.split(" #").next().unwrap_or(line);
        assert!(
            !code.contains(": !") && !code.trim_start().starts_with("- !"),
            "line {}: short-form intrinsic (YAML tag) in {line:?}",
            n + 1
        );
    }
    let t = template();
    assert_eq!(t["AWSTemplateFormatVersion"], "2010-09-09");
    assert!(t.get("Transform").is_none(), "no transform");
}

#[test]
fn outputs_name_what_deploy_and_users_need() {
    let t = template();
    for output in [
        "BucketName",
        "JobQueueArn",
        "RenderJobDefinitionArn",
        "RenderJobDefinition42Arn",
        "RenderJobDefinition45Arn",
        "RenderJobDefinition50Arn",
        "RenderJobDefinition53Arn",
        "ZipJobDefinitionArn",
        "RendererRepositoryUri",
        "ZipperRepositoryUri",
        "TriggerFunctionName",
    ] {
        assert!(t["Outputs"][output]["Value"].is_object(), "output {output}");
    }
}

// ------------------------------------------------------------------ CloudFormation quotas

/// CloudFormation's documented template quotas ("CloudFormation quotas", User Guide).
mod quota {
    /// A template body passed inline (`--template-body`, `deploy --template-file` alone).
    pub(super) const INLINE_BODY_BYTES: usize = 51_200;
    /// A template body read from S3 (`--template-url`, `deploy --s3-bucket`): 1 MB.
    pub(super) const S3_BODY_BYTES: usize = 1_000_000;
    pub(super) const RESOURCES: usize = 500;
    pub(super) const PARAMETERS: usize = 200;
    pub(super) const OUTPUTS: usize = 200;
    pub(super) const MAPPINGS: usize = 200;
    /// Logical ids of resources, parameters, outputs, and mapping names.
    pub(super) const NAME_CHARS: usize = 255;
    pub(super) const DESCRIPTION_BYTES: usize = 1_024;
    pub(super) const PARAMETER_VALUE_BYTES: usize = 4_096;
}

fn section_len(t: &Value, section: &str) -> usize {
    t.get(section)
        .and_then(Value::as_object)
        .map_or(0, serde_json::Map::len)
}

fn script(name: &str) -> String {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join(name);
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("read {}: {e}", path.display()))
}

/// The template within every documented quota, and deployed the way its size allows: larger
/// than an inline body may be, so `deploy.sh` and `check.sh` must pass it through S3.
#[test]
fn the_template_fits_cloudformations_quotas_and_is_deployed_through_s3() {
    let text = template_text();
    let t = template();
    let size = text.len();
    assert!(size <= quota::S3_BODY_BYTES, "{size} bytes");
    let counts = [
        ("Resources", quota::RESOURCES),
        ("Parameters", quota::PARAMETERS),
        ("Outputs", quota::OUTPUTS),
        ("Mappings", quota::MAPPINGS),
    ];
    for (section, max) in counts {
        let n = section_len(&t, section);
        assert!(n <= max, "{n} {section}, CloudFormation allows {max}");
        println!("{section}: {n} of {max}");
        for name in t
            .get(section)
            .and_then(Value::as_object)
            .into_iter()
            .flat_map(|m| m.keys())
        {
            assert!(name.chars().count() <= quota::NAME_CHARS, "{name}");
        }
    }
    println!("template: {size} of {} bytes", quota::S3_BODY_BYTES);
    let description = t["Description"].as_str().unwrap_or_default();
    assert!(description.len() <= quota::DESCRIPTION_BYTES);
    for (name, p) in t["Parameters"].as_object().expect("Parameters") {
        let default = p.get("Default").map(Value::to_string).unwrap_or_default();
        assert!(default.len() <= quota::PARAMETER_VALUE_BYTES, "{name}");
    }

    let deploy = script("deploy.sh");
    let check = script("check.sh");
    if size > quota::INLINE_BODY_BYTES {
        // `aws cloudformation deploy` uploads the template to --s3-bucket and passes its URL.
        let command = deploy
            .split("aws cloudformation deploy \\\n")
            .nth(1)
            .expect("deploy.sh runs aws cloudformation deploy");
        let command = command.split("\n}").next().unwrap_or(command);
        assert!(
            command.contains("--s3-bucket"),
            "a {size}-byte template is refused inline: deploy.sh must pass --s3-bucket"
        );
        for (name, body) in [("deploy.sh", &deploy), ("check.sh", &check)] {
            assert!(
                !body.contains("--template-body"),
                "{name} passes the {size}-byte template inline"
            );
        }
        assert!(check.contains("--template-url"), "check.sh deploys from S3");
    }
}

// ------------------------------------------------------------------ bucket and events

#[test]
fn notifications_are_suffix_blend_for_created_and_tagging_put() {
    let t = template();
    let bucket = props(&t, "FarmBucket");
    let notifications = &bucket["NotificationConfiguration"];
    assert!(notifications.get("QueueConfigurations").is_none());
    assert!(notifications.get("TopicConfigurations").is_none());
    let configs = notifications["LambdaConfigurations"]
        .as_array()
        .expect("LambdaConfigurations");
    let events: BTreeSet<&str> = configs
        .iter()
        .map(|c| c["Event"].as_str().expect("Event"))
        .collect();
    assert_eq!(
        events,
        BTreeSet::from(["s3:ObjectCreated:*", "s3:ObjectTagging:Put"])
    );
    assert_eq!(configs.len(), 2);
    for c in configs {
        assert_eq!(
            c["Filter"],
            json!({ "S3Key": { "Rules": [{ "Name": "suffix", "Value": ".blend" }] } }),
            "filter of {}",
            c["Event"]
        );
        assert_eq!(
            c["Function"],
            json!({ "Fn::GetAtt": ["TriggerFunction", "Arn"] })
        );
    }
}

/// S3 compares the suffix filter byte for byte: the trigger takes exactly the keys S3 sends it
/// (an upload ending `.BLEND` is never sent, so the trigger must not count on it either).
#[test]
fn the_trigger_takes_exactly_the_keys_the_suffix_filter_sends() {
    let t = template();
    let filter = &props(&t, "FarmBucket")["NotificationConfiguration"]["LambdaConfigurations"][0]
        ["Filter"]["S3Key"]["Rules"][0]["Value"];
    let suffix = filter.as_str().expect("a suffix");
    assert_eq!(suffix, farm_core::layout::BLEND_SUFFIX);
    for key in [
        "a.blend",
        "a.BLEND",
        "dir/x y.Blend",
        "ü.blend",
        "a.blend1",
        "a.blend/job.json",
        "x.blend.blend",
    ] {
        assert_eq!(
            farm_core::layout::is_blend_key(key),
            key.ends_with(suffix),
            "{key}"
        );
    }
}

/// AWS Batch creates and uses its service-linked role when a compute environment names no
/// service role (AWS's recommendation; a custom role created in the same stack can fail the
/// first create while IAM propagates). Only moto, which requires one, gets an explicit role.
#[test]
fn compute_environments_use_batchs_service_linked_role_outside_moto() {
    let t = template();
    assert_eq!(
        t["Conditions"]["MotoCondition"],
        json!({ "Fn::Equals": [r#ref("AWS::AccountId"), "123456789012"] })
    );
    assert_eq!(
        resource(&t, "BatchServiceRole")["Condition"],
        "MotoCondition"
    );
    for ce in ["OnDemandComputeEnvironment", "SpotComputeEnvironment"] {
        assert_eq!(
            props(&t, ce)["ServiceRole"],
            json!({ "Fn::If": [
                "MotoCondition",
                { "Fn::GetAtt": ["BatchServiceRole", "Arn"] },
                r#ref("AWS::NoValue")
            ] }),
            "{ce}"
        );
    }
    // Nothing else names the role (a reference outside the condition would fail on AWS).
    let uses = template_text().matches("- BatchServiceRole").count();
    assert_eq!(
        uses, 2,
        "BatchServiceRole is named outside the compute environments"
    );
}

#[test]
fn bucket_name_is_a_fixed_string_so_the_permission_breaks_the_cycle() {
    let t = template();
    let bucket = resource(&t, "FarmBucket");
    assert_eq!(
        bucket["Properties"]["BucketName"],
        json!({ "Fn::Sub": BUCKET_NAME_SUB })
    );
    assert_eq!(bucket["DependsOn"], "TriggerPermission");

    let permission = props(&t, "TriggerPermission");
    assert_eq!(permission["Principal"], "s3.amazonaws.com");
    assert_eq!(permission["Action"], "lambda:InvokeFunction");
    assert_eq!(permission["SourceAccount"], r#ref("AWS::AccountId"));
    assert_eq!(
        permission["SourceArn"],
        json!({ "Fn::Sub": BUCKET_ARN_SUB })
    );

    // Nothing but the bucket policy and the outputs may Ref/GetAtt the bucket: anything the
    // trigger depends on doing so would close the cycle bucket -> permission -> function.
    for (name, r) in t["Resources"].as_object().expect("Resources") {
        if name == "FarmBucket" || name == "FarmBucketPolicy" {
            continue;
        }
        let text = serde_json::to_string(r).expect("json");
        assert!(
            !text.contains("\"FarmBucket\"") && !text.contains("${FarmBucket"),
            "{name} refers to FarmBucket: use the bucket's name string"
        );
    }
}

#[test]
fn bucket_is_private_encrypted_tls_only_and_cleans_multipart_uploads() {
    let t = template();
    let b = props(&t, "FarmBucket");
    for flag in [
        "BlockPublicAcls",
        "BlockPublicPolicy",
        "IgnorePublicAcls",
        "RestrictPublicBuckets",
    ] {
        assert_eq!(b["PublicAccessBlockConfiguration"][flag], true, "{flag}");
    }
    assert!(
        b["BucketEncryption"]["ServerSideEncryptionConfiguration"][0]
            ["ServerSideEncryptionByDefault"]["SSEAlgorithm"]
            .is_string()
    );
    let rules = b["LifecycleConfiguration"]["Rules"]
        .as_array()
        .expect("lifecycle rules");
    assert!(rules
        .iter()
        .any(|r| r["Status"] == "Enabled" && r["AbortIncompleteMultipartUpload"].is_object()));

    let statement = &props(&t, "FarmBucketPolicy")["PolicyDocument"]["Statement"];
    assert!(statement.as_array().expect("statements").iter().any(|s| {
        s["Effect"] == "Deny" && s["Condition"]["Bool"]["aws:SecureTransport"] == "false"
    }));
}

// ------------------------------------------------------------------ Batch

/// Fargate's valid memory sizes (MiB) for a vCPU count.
fn fargate_memory_ok(vcpu: &str, memory: i64) -> bool {
    match vcpu {
        "0.25" => [512, 1024, 2048].contains(&memory),
        "0.5" => (1024..=4096).contains(&memory) && memory % 1024 == 0,
        "1" => (2048..=8192).contains(&memory) && memory % 1024 == 0,
        "2" => (4096..=16384).contains(&memory) && memory % 1024 == 0,
        "4" => (8192..=30720).contains(&memory) && memory % 1024 == 0,
        "8" => (16384..=61440).contains(&memory) && memory % 4096 == 0,
        "16" => (32768..=122880).contains(&memory) && memory % 8192 == 0,
        _ => false,
    }
}

fn requirements(t: &Value, job: &str) -> BTreeMap<String, String> {
    props(t, job)["ContainerProperties"]["ResourceRequirements"]
        .as_array()
        .expect("ResourceRequirements")
        .iter()
        .map(|r| {
            (
                r["Type"].as_str().expect("Type").to_owned(),
                r["Value"].as_str().expect("Value is a string").to_owned(),
            )
        })
        .collect()
}

#[test]
fn render_job_is_4_vcpu_8192_mib_on_fargate_with_sized_storage_and_timeout() {
    let t = template();
    let job = props(&t, "RenderJobDefinition42");
    assert_eq!(job["Type"], "container");
    assert_eq!(job["PlatformCapabilities"], json!(["FARGATE"]));
    let req = requirements(&t, "RenderJobDefinition42");
    assert_eq!(req.get("VCPU").map(String::as_str), Some("4"));
    assert_eq!(req.get("MEMORY").map(String::as_str), Some("8192"));
    assert!(fargate_memory_ok("4", 8192));

    let container = &job["ContainerProperties"];
    assert_eq!(
        container["EphemeralStorage"]["SizeInGiB"],
        r#ref("RenderEphemeralStorageGiB")
    );
    let storage = parameter(&t, "RenderEphemeralStorageGiB");
    assert_eq!(as_i64(&storage["MinValue"]), 21);
    assert_eq!(as_i64(&storage["MaxValue"]), 200);
    assert!((21..=200).contains(&as_i64(&storage["Default"])));

    assert_eq!(
        job["Timeout"]["AttemptDurationSeconds"],
        r#ref("RenderAttemptTimeoutSeconds")
    );
    assert!(as_i64(&parameter(&t, "RenderAttemptTimeoutSeconds")["MinValue"]) >= 60);
    assert_eq!(container["RuntimePlatform"]["CpuArchitecture"], "X86_64");
    assert_eq!(
        container["Image"],
        json!({ "Fn::Sub": "${RendererRepository.RepositoryUri}:${Renderer42ImageTag}" })
    );
    // The image's entrypoint is the binary; the definition must not override it.
    assert!(container.get("Command").is_none());
}

/// One image and render job definition per Blender LTS series, the same job in every other way
/// (so the sizing, retry and environment checks of 4.2's hold for all of them).
#[test]
fn each_blender_series_has_its_image_and_an_otherwise_identical_render_job() {
    let t = template();
    let series = series(&t);
    assert_eq!(series, ["4.2", "4.5", "5.0", "5.3"]);
    // What `farm submit` and `farm inspect` judge files against.
    let known: Vec<String> = farm_core::series::FARM_SERIES
        .iter()
        .map(ToString::to_string)
        .collect();
    assert_eq!(series, known);
    assert_eq!(parameter(&t, "DefaultBlender")["Default"], "auto");
    let render_jobs: BTreeSet<String> = resources_of_type(&t, "AWS::Batch::JobDefinition")
        .into_iter()
        .map(|(name, _)| name.clone())
        .filter(|name| name != "ZipJobDefinition")
        .collect();
    assert_eq!(
        render_jobs,
        series
            .iter()
            .map(|s| render_job(s))
            .collect::<BTreeSet<_>>()
    );
    let mut shapes = Vec::new();
    for s in &series {
        let tag = format!("Renderer{}ImageTag", s.replace('.', ""));
        assert!(parameter(&t, &tag)["AllowedPattern"].is_string(), "{tag}");
        let mut job = props(&t, &render_job(s)).clone();
        assert_eq!(
            job["JobDefinitionName"],
            json!({ "Fn::Sub": format!("${{AWS::StackName}}-render-{}", s.replace('.', "-")) })
        );
        assert_eq!(
            job["ContainerProperties"]["Image"],
            json!({ "Fn::Sub": format!("${{RendererRepository.RepositoryUri}}:${{{tag}}}") })
        );
        job["JobDefinitionName"] = Value::Null;
        job["ContainerProperties"]["Image"] = Value::Null;
        shapes.push(job);
    }
    assert!(
        shapes.windows(2).all(|w| w[0] == w[1]),
        "render job definitions differ beyond name and image"
    );
}

#[test]
fn zip_job_is_smaller_and_valid_on_fargate() {
    let t = template();
    let job = props(&t, "ZipJobDefinition");
    assert_eq!(job["PlatformCapabilities"], json!(["FARGATE"]));
    let req = requirements(&t, "ZipJobDefinition");
    let vcpu = req.get("VCPU").expect("VCPU");
    let memory: i64 = req.get("MEMORY").expect("MEMORY").parse().expect("MiB");
    assert!(
        fargate_memory_ok(vcpu, memory),
        "{vcpu} vCPU / {memory} MiB"
    );
    assert!(vcpu.parse::<f64>().expect("vCPU") < 4.0 && memory < 8192);
    assert_eq!(
        job["ContainerProperties"]["Image"],
        json!({ "Fn::Sub": "${ZipperRepository.RepositoryUri}:${ZipperImageTag}" })
    );
    assert!(job["ContainerProperties"].get("Command").is_none());
}

#[test]
fn compute_environments_are_fargate_and_spot_and_the_queue_order_follows_the_parameter() {
    let t = template();
    let types: BTreeSet<&str> = resources_of_type(&t, "AWS::Batch::ComputeEnvironment")
        .iter()
        .map(|(_, r)| {
            r["Properties"]["ComputeResources"]["Type"]
                .as_str()
                .expect("Type")
        })
        .collect();
    assert_eq!(types, BTreeSet::from(["FARGATE", "FARGATE_SPOT"]));
    assert_eq!(
        props(&t, "SpotComputeEnvironment")["ComputeResources"]["Type"],
        "FARGATE_SPOT"
    );

    let order = &props(&t, "JobQueue")["ComputeEnvironmentOrder"]["Fn::If"];
    assert_eq!(order[0], "PreferSpotCondition");
    let first = |branch: &Value| branch[0]["ComputeEnvironment"].clone();
    assert_eq!(order[1][0]["Order"], 1);
    assert_eq!(first(&order[1]), r#ref("SpotComputeEnvironment"));
    assert_eq!(first(&order[2]), r#ref("OnDemandComputeEnvironment"));
    assert_eq!(order[1].as_array().map(Vec::len), Some(2));
    assert_eq!(order[2].as_array().map(Vec::len), Some(2));
}

/// One `evaluateOnExit` rule, as Batch reads it.
#[derive(Debug)]
struct Rule {
    on_exit_code: Option<String>,
    on_status_reason: Option<String>,
    on_reason: Option<String>,
    action: String,
}

fn rules(t: &Value, job: &str) -> Vec<Rule> {
    let strategy = &props(t, job)["RetryStrategy"];
    assert_eq!(strategy["Attempts"], r#ref("JobAttempts"), "{job} attempts");
    let list = strategy["EvaluateOnExit"]
        .as_array()
        .expect("EvaluateOnExit");
    assert!(list.len() <= 5, "Batch accepts at most 5 rules");
    list.iter()
        .map(|r| {
            let text = |k: &str| r.get(k).map(|v| v.as_str().expect("string").to_owned());
            let keys: BTreeSet<&str> = r
                .as_object()
                .expect("rule")
                .keys()
                .map(|k| k.as_str())
                .collect();
            assert!(
                keys.is_subset(&BTreeSet::from([
                    "OnExitCode",
                    "OnStatusReason",
                    "OnReason",
                    "Action"
                ])),
                "unknown key in {r}"
            );
            Rule {
                on_exit_code: text("OnExitCode"),
                on_status_reason: text("OnStatusReason"),
                on_reason: text("OnReason"),
                action: text("Action").expect("Action"),
            }
        })
        .collect()
}

/// Batch's patterns: an exact string, or a prefix followed by one final `*`.
fn glob(pattern: &str, value: &str) -> bool {
    match pattern.strip_suffix('*') {
        Some(prefix) => value.starts_with(prefix),
        None => value == pattern,
    }
}

/// What Batch does with a failed attempt: the first rule whose every pattern matches decides;
/// when none matches, Batch retries.
fn decide(rules: &[Rule], exit_code: Option<i32>, status_reason: &str, reason: &str) -> String {
    for rule in rules {
        let code_ok = match (&rule.on_exit_code, exit_code) {
            (None, _) => true,
            (Some(p), Some(code)) => glob(p, &code.to_string()),
            (Some(_), None) => false,
        };
        let status_ok = rule
            .on_status_reason
            .as_deref()
            .is_none_or(|p| glob(p, status_reason));
        let reason_ok = rule.on_reason.as_deref().is_none_or(|p| glob(p, reason));
        if code_ok && status_ok && reason_ok {
            return rule.action.clone();
        }
    }
    "RETRY".to_owned()
}

#[test]
fn retry_rules_follow_the_binaries_exit_codes() {
    let t = template();
    for job in job_definitions(&t) {
        let job = job.as_str();
        let rules = rules(&t, job);

        // Patterns Batch accepts.
        for r in &rules {
            assert!(r.action == "RETRY" || r.action == "EXIT", "{job}: {r:?}");
            if let Some(p) = &r.on_exit_code {
                let digits = p.strip_suffix('*').unwrap_or(p);
                assert!(digits.chars().all(|c| c.is_ascii_digit()), "{job}: {p}");
            }
            for p in [&r.on_status_reason, &r.on_reason].into_iter().flatten() {
                let body = p.strip_suffix('*').unwrap_or(p);
                assert!(
                    body.chars()
                        .all(|c| c.is_ascii_alphanumeric() || ".: ".contains(c)),
                    "{job}: pattern {p:?}"
                );
            }
        }

        // Every rule's meaning is documented: no `onExitCode: "*"` (whether it matches a job
        // with no exit code is not), the reason rules come first and the last rule is Batch's
        // documented catch-all (`onReason: "*"`, "exits for any reason").
        assert!(
            rules.iter().all(|r| r.on_exit_code.as_deref() != Some("*")),
            "{job}: {rules:?}"
        );
        let last = rules.last().expect("rules");
        assert_eq!(
            (last.on_reason.as_deref(), last.action.as_str()),
            (Some("*"), "EXIT"),
            "{job}: the catch-all comes last"
        );
        assert!(last.on_exit_code.is_none() && last.on_status_reason.is_none());
        let first_exit_code = rules.iter().position(|r| r.on_exit_code.is_some());
        let last_reason = rules[..rules.len() - 1]
            .iter()
            .rposition(|r| r.on_status_reason.is_some() || r.on_reason.is_some());
        assert!(
            last_reason < first_exit_code,
            "{job}: reason rules before exit code rules"
        );

        // The exit codes the rules name are the documented ones, with their actions.
        let named: BTreeMap<i32, &str> = rules
            .iter()
            .filter_map(|r| {
                let code = r.on_exit_code.as_ref()?.parse().ok()?;
                Some((code, r.action.as_str()))
            })
            .collect();
        assert_eq!(named, BTreeMap::from([(exit::TRANSIENT, "RETRY")]), "{job}");

        // What Batch then does with each exit code of the binaries, for a container that
        // exited by itself: only TRANSIENT spends another attempt.
        let container_exit = "Essential container in task exited";
        let on = |code: i32| decide(&rules, Some(code), container_exit, "");
        assert_eq!(on(exit::BAD_INPUT), "EXIT", "{job}: bad input");
        assert_eq!(on(exit::SUPERSEDED), "EXIT", "{job}: superseded");
        assert_eq!(on(137), "EXIT", "{job}: the binary killed for memory");
        assert_eq!(on(exit::USAGE), "EXIT", "{job}: usage");
        assert_eq!(on(exit::TRANSIENT), "RETRY", "{job}: transient");
        assert_eq!(on(101), "EXIT", "{job}: Rust panic");
        for code in 1..=255 {
            let want = if code == exit::TRANSIENT {
                "RETRY"
            } else {
                "EXIT"
            };
            assert_eq!(on(code), want, "{job}: exit code {code}");
        }

        // A Fargate Spot reclaim retries whatever the task did with its SIGTERM: exited
        // INTERRUPTED, was killed after the stop timeout, or never reported an exit code.
        for code in [Some(exit::INTERRUPTED), Some(137), None] {
            assert_eq!(
                decide(&rules, code, "Your Spot Task was interrupted.", ""),
                "RETRY",
                "{job}: spot interruption, exit code {code:?}"
            );
        }
        // A SIGTERM that is not a reclaim exits: TerminateJob and timeouts are never retried
        // by Batch anyway.
        assert_eq!(on(exit::INTERRUPTED), "EXIT", "{job}: SIGTERM");
        // A task that failed to start (image pull, resource initialisation, a container that
        // cannot start) retries by its status reason: nothing of ours ran.
        for (status_reason, reason) in [
            (
                "Task failed to start",
                "CannotPullContainerError: pull image manifest",
            ),
            (
                "ResourceInitializationError: unable to pull secrets or registry auth",
                "",
            ),
            (
                "Task failed to start",
                "ResourceInitializationError: failed to create new container runtime task",
            ),
            (
                "Task failed to start",
                "CannotStartContainerError: exec format error",
            ),
        ] {
            assert_eq!(
                decide(&rules, None, status_reason, reason),
                "RETRY",
                "{job}: {status_reason} / {reason}"
            );
        }
        // Anything else with no exit code exits by the catch-all.
        assert_eq!(
            decide(&rules, None, "Host EC2 (instance i-0) terminated.", ""),
            "EXIT",
            "{job}: unknown failure"
        );
    }

    let attempts = parameter(&t, "JobAttempts");
    assert!(as_i64(&attempts["MinValue"]) >= 1 && as_i64(&attempts["MaxValue"]) <= 10);
    assert!(
        as_i64(&attempts["Default"]) >= 2,
        "retries need at least 2 attempts"
    );
}

#[test]
fn job_definitions_set_only_static_environment() {
    let t = template();
    let per_job = [
        env::BUCKET,
        env::KEY,
        env::FRAMES,
        env::CHUNK,
        env::FORMAT,
        env::SOURCE_ETAG,
        env::JOB_BLENDER_SERIES,
        env::ENGINE,
    ];
    let known = [
        env::WORK_DIR,
        env::LOG_FORMAT,
        env::BLENDER,
        env::FRAME_TIMEOUT,
    ];
    let prices = [receipt::ENV_VCPU_HOUR_USD, receipt::ENV_GB_HOUR_USD];
    for job in job_definitions(&t) {
        let job = job.as_str();
        for vars in environments(&t, job) {
            for (name, _) in vars {
                let name = name.as_str();
                assert!(
                    !per_job.contains(&name),
                    "{job}: {name} comes from the trigger"
                );
                assert!(
                    known.contains(&name) || prices.contains(&name),
                    "{job}: unknown variable {name}"
                );
            }
        }
    }
    for vars in environments(&t, "RenderJobDefinition42") {
        assert_eq!(vars.get(env::WORK_DIR), Some(&json!("/scratch")));
    }
}

/// Every render job definition bounds a frame by the stack's FrameTimeoutSeconds, which by
/// default leaves a chunk's attempt time for several frames; the zip job has no frames.
#[test]
fn every_render_job_bounds_a_frame_within_the_attempt_timeout() {
    let t = template();
    for job in job_definitions(&t) {
        for vars in environments(&t, &job) {
            let limit = vars.get(env::FRAME_TIMEOUT);
            if job == "ZipJobDefinition" {
                assert_eq!(limit, None, "{job}");
            } else {
                assert_eq!(limit, Some(&r#ref("FrameTimeoutSeconds")), "{job}");
            }
        }
    }
    let frame = as_i64(&parameter(&t, "FrameTimeoutSeconds")["Default"]);
    let attempt = as_i64(&parameter(&t, "RenderAttemptTimeoutSeconds")["Default"]);
    assert!(
        frame >= 60 && frame * 2 <= attempt,
        "frame {frame} s, attempt {attempt} s"
    );
}

/// Every variant of a job definition's `Environment` (both lists of an `Fn::If`), as names and
/// values.
fn environments(t: &Value, job: &str) -> Vec<BTreeMap<String, Value>> {
    let environment = &props(t, job)["ContainerProperties"]["Environment"];
    let lists = match environment.get("Fn::If") {
        Some(branches) => vec![&branches[1], &branches[2]],
        None => vec![environment],
    };
    lists
        .into_iter()
        .map(|list| {
            list.as_array()
                .unwrap_or_else(|| panic!("{job}: Environment is not a list: {list}"))
                .iter()
                .map(|v| {
                    let name = v["Name"].as_str().expect("Name").to_owned();
                    (name, v["Value"].clone())
                })
                .collect()
        })
        .collect()
}

/// The receipt's price overrides (#14): stack parameters, empty by default (the dated table in
/// code), a pair, and given to the zipper (and to the renderer, for a scout's estimate) as the
/// variables they read only when set.
#[test]
fn the_zipper_and_a_scout_get_the_price_overrides_only_when_the_stack_sets_them() {
    let t = template();
    let (vcpu, gb) = ("PriceVcpuHourUsd", "PriceGbHourUsd");
    for name in [vcpu, gb] {
        let p = parameter(&t, name);
        assert_eq!(p["Type"], "String", "{name}");
        assert_eq!(p["Default"], "", "{name}: the table's prices by default");
        assert!(
            p["AllowedPattern"]
                .as_str()
                .is_some_and(|re| re.starts_with("^$|")),
            "{name}: empty or a price"
        );
    }
    let not_empty = |name: &str| json!({ "Fn::Not": [{ "Fn::Equals": [r#ref(name), ""] }] });
    assert_eq!(t["Conditions"]["PricesCondition"], not_empty(vcpu));
    // A price is a pair: the rules refuse one parameter without the other.
    for (set, needs) in [(vcpu, gb), (gb, vcpu)] {
        assert!(
            t["Rules"].as_object().expect("Rules").values().any(|rule| {
                rule["RuleCondition"] == not_empty(set)
                    && rule["Assertions"][0]["Assert"] == not_empty(needs)
            }),
            "no rule requires {needs} with {set}"
        );
    }
    let environment = &props(&t, "ZipJobDefinition")["ContainerProperties"]["Environment"];
    assert_eq!(environment["Fn::If"][0], "PricesCondition");
    let [with, without]: [BTreeMap<String, Value>; 2] = environments(&t, "ZipJobDefinition")
        .try_into()
        .expect("two variants");
    assert_eq!(
        with,
        BTreeMap::from([
            (env::LOG_FORMAT.to_owned(), json!("json")),
            (receipt::ENV_VCPU_HOUR_USD.to_owned(), r#ref(vcpu)),
            (receipt::ENV_GB_HOUR_USD.to_owned(), r#ref(gb)),
        ])
    );
    assert_eq!(
        without,
        BTreeMap::from([(env::LOG_FORMAT.to_owned(), json!("json"))])
    );
    // The render job definitions too: a scout job (`estimate=N`) prices its estimate.
    for s in series(&t) {
        let job = render_job(&s);
        let [with, without]: [BTreeMap<String, Value>; 2] =
            environments(&t, &job).try_into().expect("two variants");
        assert_eq!(
            with.get(receipt::ENV_VCPU_HOUR_USD),
            Some(&r#ref(vcpu)),
            "{s}"
        );
        assert_eq!(with.get(receipt::ENV_GB_HOUR_USD), Some(&r#ref(gb)), "{s}");
        assert!(!without.contains_key(receipt::ENV_VCPU_HOUR_USD), "{s}");
        assert!(!without.contains_key(receipt::ENV_GB_HOUR_USD), "{s}");
    }
}

// ------------------------------------------------------------------ trigger

#[test]
fn trigger_environment_is_exactly_the_documented_variables() {
    let t = template();
    let f = props(&t, "TriggerFunction");
    let vars = f["Environment"]["Variables"]
        .as_object()
        .expect("Variables");
    let names: BTreeSet<&str> = vars.keys().map(String::as_str).collect();
    assert_eq!(
        names,
        BTreeSet::from([
            env::JOB_QUEUE,
            env::RENDER_JOB_DEFINITIONS,
            env::DEFAULT_BLENDER,
            env::ZIP_JOB_DEFINITION,
            env::MAX_FRAMES,
            env::MAX_VCPUS,
            env::SHARED_PREFIXES,
            env::LOG_FORMAT,
        ])
    );
    assert_eq!(
        names,
        BTreeSet::from([
            "JOB_QUEUE_ARN",
            "FARM_RENDER_JOB_DEFINITIONS",
            "FARM_DEFAULT_BLENDER",
            "ZIP_JOB_DEFINITION_ARN",
            "FARM_MAX_FRAMES",
            "FARM_MAX_VCPUS",
            "FARM_SHARED_PREFIXES",
            "FARM_LOG_FORMAT",
        ])
    );
    assert_eq!(vars[env::SHARED_PREFIXES], r#ref("SharedPrefixes"));
    assert_eq!(parameter(&t, "SharedPrefixes")["Default"], "");
    assert_eq!(vars[env::JOB_QUEUE], r#ref("JobQueue"));
    assert_eq!(vars[env::DEFAULT_BLENDER], r#ref("DefaultBlender"));
    assert_eq!(vars[env::ZIP_JOB_DEFINITION], r#ref("ZipJobDefinition"));
    assert_eq!(vars[env::MAX_FRAMES], r#ref("MaxFrames"));
    assert_eq!(vars[env::LOG_FORMAT], "json");
    assert_eq!(as_i64(&parameter(&t, "MaxFrames")["Default"]), 10_000);

    assert_eq!(f["Runtime"], "provided.al2023");
    assert_eq!(f["Handler"], "bootstrap");
    assert_eq!(f["Architectures"], json!(["x86_64"]));
    assert_eq!(f["Code"]["S3Bucket"], r#ref("LambdaCodeBucket"));
    assert_eq!(f["Code"]["S3Key"], r#ref("LambdaCodeKey"));
    assert_eq!(
        f["DeadLetterConfig"]["TargetArn"],
        json!({ "Fn::GetAtt": ["TriggerDeadLetterQueue", "Arn"] })
    );
}

/// `chunk=auto` fills `MaxvCpus / 4` task slots: the trigger's `FARM_MAX_VCPUS` is the very
/// parameter both compute environments take as `MaxvCpus`, and a render task is the
/// `RENDER_TASK_VCPUS` the slot arithmetic divides by.
#[test]
fn the_trigger_knows_the_compute_environments_max_vcpus_for_chunk_auto() {
    let t = template();
    let vars = &props(&t, "TriggerFunction")["Environment"]["Variables"];
    assert_eq!(vars[env::MAX_VCPUS], r#ref("MaxVcpus"));
    for ce in ["OnDemandComputeEnvironment", "SpotComputeEnvironment"] {
        assert_eq!(
            props(&t, ce)["ComputeResources"]["MaxvCpus"],
            r#ref("MaxVcpus"),
            "{ce}"
        );
    }
    let slot = farm_core::plan::RENDER_TASK_VCPUS;
    assert!(as_i64(&parameter(&t, "MaxVcpus")["MinValue"]) >= i64::from(slot));
    for series in series(&t) {
        let req = requirements(&t, &render_job(&series));
        assert_eq!(req.get("VCPU"), Some(&slot.to_string()), "{series}");
    }
}

/// `deploy.sh` builds and pushes an image for every series the template runs, tagged
/// `r<series>-<hash>`, and the renderer repository keeps each series' newest images by that
/// prefix, so pushing one series' images never expires another's image in use.
#[test]
fn deploy_pushes_an_image_per_series_and_ecr_keeps_each_series_images() {
    let t = template();
    let deploy = std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("deploy.sh"))
        .expect("deploy.sh");
    let series = series(&t);
    let line = deploy
        .lines()
        .find(|l| l.starts_with("SERIES=("))
        .expect("deploy.sh lists its series");
    assert_eq!(line, format!("SERIES=({})", series.join(" ")));
    assert!(deploy.contains(r#"RENDERER_TAGS[$series]="r$series-$(source_hash"#));
    for s in &series {
        let short = s.replace('.', "");
        assert!(
            deploy.contains(&format!(
                r#""Renderer{short}ImageTag=${{RENDERER_TAGS[{s}]}}""#
            )),
            "deploy.sh sets Renderer{short}ImageTag"
        );
    }
    let policy: Value = serde_json::from_str(
        props(&t, "RendererRepository")["LifecyclePolicy"]["LifecyclePolicyText"]
            .as_str()
            .expect("policy text"),
    )
    .expect("the lifecycle policy is JSON");
    let rules = policy["rules"].as_array().expect("rules");
    for s in &series {
        let prefix = format!("r{s}-");
        assert!(
            rules.iter().any(|r| r["selection"]["tagStatus"] == "tagged"
                && r["selection"]["tagPrefixList"] == json!([prefix])
                && r["selection"]["countType"] == "imageCountMoreThan"),
            "no rule keeps the newest {prefix} images"
        );
    }
    // A rule for any tag comes last (ECR requires it), after every series' rule.
    let last = rules.last().expect("a rule");
    assert_eq!(last["selection"]["tagStatus"], "any");
    assert_eq!(last["rulePriority"], json!(rules.len()));
}

/// The trigger's own configuration reader accepts the environment the template gives it, for
/// every allowed `DefaultBlender`, and maps each series to its own job definition.
#[test]
fn the_trigger_reads_a_render_definition_per_series_from_the_template() {
    let t = template();
    let vars = props(&t, "TriggerFunction")["Environment"]["Variables"].clone();
    // What CloudFormation makes of `Ref: X` and `${X}`: a parameter's value (its default, or
    // each allowed `DefaultBlender`), and for a resource, here, `arn:X`.
    let resolve = |value: &Value, default: &str| -> String {
        match value {
            Value::String(s) => s.clone(),
            Value::Number(n) => n.to_string(),
            v if v["Ref"] == "DefaultBlender" => default.to_owned(),
            v if t["Parameters"][v["Ref"].as_str().unwrap_or("-")].is_object() => {
                match &t["Parameters"][v["Ref"].as_str().unwrap()]["Default"] {
                    Value::String(s) => s.clone(),
                    other => other.to_string(),
                }
            }
            v if v["Ref"].is_string() => format!("arn:{}", v["Ref"].as_str().unwrap()),
            v if v["Fn::Sub"].is_string() => {
                let mut text = v["Fn::Sub"].as_str().unwrap().to_owned();
                while let Some(start) = text.find("${") {
                    let end = start + text[start..].find('}').expect("closing brace");
                    let name = text[start + 2..end].to_owned();
                    text.replace_range(start..=end, &format!("arn:{name}"));
                }
                text
            }
            other => panic!("unexpected value {other}"),
        }
    };
    for default in defaults(&t) {
        let lookup = |name: &str| vars.get(name).map(|v| resolve(v, &default));
        let config = trigger_lambda::Config::from_lookup(lookup)
            .unwrap_or_else(|e| panic!("DefaultBlender={default}: {e}"));
        assert_eq!(config.render.default_pick().to_string(), default);
        let mapped: Vec<(String, String)> = config
            .render
            .iter()
            .map(|(s, d)| (s.to_string(), d.to_owned()))
            .collect();
        let expected: Vec<(String, String)> = series(&t)
            .iter()
            .map(|s| (s.clone(), format!("arn:{}", render_job(s))))
            .collect();
        assert_eq!(mapped, expected);
    }
    // The stack's output for the default series follows the parameter: each series but the
    // newest has a condition; the newest is what `auto` gives a file whose Blender is unknown.
    let all = series(&t);
    let (newest, older) = all.split_last().expect("a series");
    let mut output = &t["Outputs"]["RenderJobDefinitionArn"]["Value"];
    for s in older {
        let short = s.replace('.', "");
        let choice = &output["Fn::If"];
        assert_eq!(choice[0], format!("DefaultBlender{short}Condition"));
        assert_eq!(choice[1], r#ref(&render_job(s)));
        assert_eq!(
            t["Conditions"][format!("DefaultBlender{short}Condition")],
            json!({ "Fn::Equals": [r#ref("DefaultBlender"), s] })
        );
        output = &choice[2];
    }
    assert_eq!(*output, r#ref(&render_job(newest)));
}

// ------------------------------------------------------------------ IAM

fn strings(v: &Value) -> Vec<Value> {
    match v {
        Value::Array(items) => items.clone(),
        other => vec![other.clone()],
    }
}

fn statements(t: &Value, role: &str) -> Vec<Value> {
    let policies = props(t, role)["Policies"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    policies
        .iter()
        .flat_map(|p| {
            p["PolicyDocument"]["Statement"]
                .as_array()
                .cloned()
                .unwrap_or_default()
        })
        .collect()
}

/// The key pattern of an S3 object ARN of the farm bucket (`Fn::Sub` string), if it is one.
fn key_pattern(resource: &Value) -> Option<String> {
    let sub = resource["Fn::Sub"].as_str()?;
    sub.strip_prefix(BUCKET_ARN_SUB)?
        .strip_prefix('/')
        .map(str::to_owned)
}

/// IAM's ARN wildcards: `*` any run of characters, `?` one character.
fn iam_match(pattern: &str, value: &str) -> bool {
    fn go(p: &[char], v: &[char]) -> bool {
        match p.split_first() {
            None => v.is_empty(),
            Some(('*', rest)) => (0..=v.len()).any(|i| go(rest, &v[i..])),
            Some(('?', rest)) => !v.is_empty() && go(rest, &v[1..]),
            Some((c, rest)) => v.first() == Some(c) && go(rest, &v[1..]),
        }
    }
    let p: Vec<char> = pattern.chars().collect();
    let v: Vec<char> = value.chars().collect();
    go(&p, &v)
}

/// Object key patterns a role's statements allow (or deny) for an action.
fn object_patterns(statements: &[Value], effect: &str, action: &str) -> Vec<String> {
    statements
        .iter()
        .filter(|s| s["Effect"] == effect)
        .filter(|s| strings(&s["Action"]).iter().any(|a| a == action))
        .flat_map(|s| strings(&s["Resource"]))
        .filter_map(|r| key_pattern(&r))
        .collect()
}

/// Actions the Service Authorization Reference lists with no resource type: IAM can grant them
/// only on `"*"`.
const NO_RESOURCE_TYPE: [&str; 3] = [
    "ecr:GetAuthorizationToken",
    "batch:ListJobs",
    "batch:DescribeJobs",
];

#[test]
fn no_role_allows_whole_services_or_unscoped_writes() {
    let t = template();
    for (name, _) in resources_of_type(&t, "AWS::IAM::Role") {
        for s in statements(&t, name) {
            if s["Effect"] != "Allow" {
                continue;
            }
            let actions = strings(&s["Action"]);
            for a in &actions {
                let a = a.as_str().expect("action");
                assert!(a != "*" && !a.ends_with(":*"), "{name} allows {a}");
            }
            if strings(&s["Resource"]).iter().any(|r| r == "*") {
                for a in &actions {
                    assert!(
                        NO_RESOURCE_TYPE.contains(&a.as_str().expect("action")),
                        "{name}: {a} on Resource \"*\""
                    );
                }
            }
        }
    }
}

#[test]
fn trigger_policy_is_least_privilege() {
    let t = template();
    let statements = statements(&t, "TriggerFunctionRole");
    let allowed: BTreeSet<String> = statements
        .iter()
        .filter(|s| s["Effect"] == "Allow")
        .flat_map(|s| strings(&s["Action"]))
        .map(|a| a.as_str().expect("action").to_owned())
        .collect();
    for forbidden in ["s3:*", "batch:*", "*"] {
        assert!(!allowed.contains(forbidden), "trigger allows {forbidden}");
    }
    assert!(allowed.iter().all(|a| !a.ends_with(":*")));
    for needed in [
        "s3:GetObject",
        "s3:GetObjectTagging",
        "s3:PutObject",
        "batch:SubmitJob",
        "batch:TerminateJob",
    ] {
        assert!(allowed.contains(needed), "trigger needs {needed}");
    }

    // SubmitJob only on this queue, the render job definition of each series and the zip one.
    let submit: Vec<Value> = statements
        .iter()
        .filter(|s| strings(&s["Action"]).contains(&json!("batch:SubmitJob")))
        .flat_map(|s| strings(&s["Resource"]))
        .collect();
    let definitions = |name: &str| {
        json!({ "Fn::Sub": format!(
            "arn:${{AWS::Partition}}:batch:${{AWS::Region}}:${{AWS::AccountId}}:job-definition/${{AWS::StackName}}-{name}:*"
        ) })
    };
    assert_eq!(
        submit,
        vec![
            r#ref("JobQueue"),
            definitions("render-4-2"),
            definitions("render-4-5"),
            definitions("render-5-0"),
            definitions("render-5-3"),
            definitions("zip")
        ]
    );
    for s in series(&t) {
        assert_eq!(
            props(&t, &render_job(&s))["JobDefinitionName"],
            json!({ "Fn::Sub": format!("${{AWS::StackName}}-render-{}", s.replace('.', "-")) })
        );
    }
    assert_eq!(
        props(&t, "ZipJobDefinition")["JobDefinitionName"],
        json!({ "Fn::Sub": "${AWS::StackName}-zip" })
    );
}

#[test]
fn object_permissions_fit_the_key_layout_and_never_touch_blend_files() {
    let t = template();
    let keys = JobKeys::new("shots/scene 01.blend");
    let marker = keys.request_marker("0123abcd");

    let trigger = statements(&t, "TriggerFunctionRole");
    let trigger_puts = object_patterns(&trigger, "Allow", "s3:PutObject");
    for key in [
        keys.manifest(),
        keys.rejection(),
        marker.clone(),
        keys.dependency_list(b"{}"),
        keys.frame_list("1-9000:3"),
    ] {
        assert!(
            trigger_puts.iter().any(|p| iam_match(p, &key)),
            "trigger cannot write {key}"
        );
    }
    assert!(!trigger_puts.iter().any(|p| iam_match(p, keys.source())));
    let trigger_deletes = object_patterns(&trigger, "Allow", "s3:DeleteObject");
    assert!(trigger_deletes.iter().any(|p| iam_match(p, &marker)));
    assert!(!trigger_deletes
        .iter()
        .any(|p| iam_match(p, &keys.manifest())));

    let zipper = statements(&t, "ZipJobRole");
    let zip_deletes = object_patterns(&zipper, "Allow", "s3:DeleteObject");
    for key in [keys.zip(), keys.missing()] {
        assert!(
            zip_deletes.iter().any(|p| iam_match(p, &key)),
            "zipper cannot replace {key}"
        );
    }
    assert!(!zip_deletes
        .iter()
        .any(|p| iam_match(p, &keys.frame(1, "png"))));

    // Everything the farm writes: allowed for its writer, never caught by a `.blend` deny.
    let writes = [
        keys.frame(1, "png"),
        keys.frame(-12, "exr"),
        keys.log(7),
        keys.zip(),
        keys.missing(),
        keys.manifest(),
        marker,
    ];
    for (role, writes) in [
        ("TriggerFunctionRole", &writes[..]),
        ("RenderJobRole", &writes[..3]),
        ("ZipJobRole", &writes[..5]),
    ] {
        let s = statements(&t, role);
        let denied = object_patterns(&s, "Deny", "s3:PutObject");
        assert!(
            denied.iter().any(|p| iam_match(p, keys.source())),
            "{role} must be denied writing .blend files"
        );
        for key in writes {
            assert!(
                !key.ends_with(".blend"),
                "{key} would trigger the farm again"
            );
            assert!(
                !denied.iter().any(|p| iam_match(p, key)),
                "{role}: {key} denied"
            );
        }
    }
    for (role, key) in [
        ("RenderJobRole", keys.frame(1, "png")),
        ("RenderJobRole", keys.log(7)),
        ("ZipJobRole", keys.zip()),
        ("ZipJobRole", keys.missing()),
        ("ZipJobRole", keys.receipt()),
        ("ZipJobRole", keys.zip_task_record(1)),
        ("RenderJobRole", keys.task_record(0, 1)),
    ] {
        let puts = object_patterns(&statements(&t, role), "Allow", "s3:PutObject");
        assert!(
            puts.iter().any(|p| iam_match(p, &key)),
            "{role} cannot write {key}"
        );
    }
}

// ------------------------------------------------------------------ frame limit

/// The trigger accepts `MaxFrames` frames per upload; the renderer and the zipper refuse jobs
/// above `farm_core::frames::MAX_JOB_FRAMES`. A larger `MaxFrames` would let the trigger submit
/// jobs whose every child exits 2.
#[test]
fn max_frames_cannot_exceed_what_the_workers_accept() {
    let t = template();
    let max = parameter(&t, "MaxFrames");
    let limit = i64::try_from(farm_core::frames::MAX_JOB_FRAMES).unwrap();
    assert_eq!(as_i64(&max["MaxValue"]), limit, "MaxFrames MaxValue");
    assert!(as_i64(&max["Default"]) <= limit);
}

/// Whether a role may do `action` on `key`: some Allow matches and no Deny does.
fn may(statements: &[Value], action: &str, key: &str) -> bool {
    object_patterns(statements, "Allow", action)
        .iter()
        .any(|p| iam_match(p, key))
        && !object_patterns(statements, "Deny", action)
            .iter()
            .any(|p| iam_match(p, key))
}

/// The render role's credentials are what a compromised Blender could take (ADR 0007): they
/// write only the job folder's frames, logs and outputs, never the farm's control objects, and
/// read only scenes and their job folders.
#[test]
fn the_render_role_cannot_write_control_objects_or_read_outside_scenes() {
    let t = template();
    let render = statements(&t, "RenderJobRole");
    let keys = JobKeys::new("shots/scene 01.blend");
    for key in [
        keys.frame(1, "png"),
        keys.frame(-12, "exr"),
        keys.log(7),
        format!("{}/outputs/File Output/0001.png", keys.source()),
        keys.task_record(3, 2),
        // The movie job (ADR 0012) runs on this role.
        keys.receipt(),
        JobKeys::new("a.BLEND").movie("mp4"),
    ] {
        assert!(
            may(&render, "s3:PutObject", &key),
            "render cannot write {key}"
        );
    }
    for extension in farm_blend::MOVIE_EXTENSIONS {
        let movie = keys.movie(extension);
        for action in ["s3:PutObject", "s3:AbortMultipartUpload"] {
            assert!(
                may(&render, action, &movie),
                "render cannot {action} {movie}"
            );
        }
    }
    for key in [
        keys.manifest(),
        keys.request_marker("0123abcd"),
        keys.zip(),
        keys.missing(),
        // A project's own clips, outside any job folder.
        "footage/shot 01.mkv".to_owned(),
        "proj/a.blend.mp4".to_owned(),
        keys.source().to_owned(),
        "other.blend".to_owned(),
        format!("{}/frames/../job.json", keys.source()),
        "anything/else".to_owned(),
    ] {
        assert!(
            !may(&render, "s3:PutObject", &key),
            "render may write {key}"
        );
    }
    let deletes = object_patterns(&render, "Allow", "s3:DeleteObject");
    assert!(deletes.is_empty(), "render may delete {deletes:?}");

    // Reads: every spelling of the suffix the trigger accepts, and the job folder.
    for source in ["a.blend", "a.BLEND", "a.Blend", "x/y.bLeNd"] {
        let keys = JobKeys::new(source);
        for key in [keys.source().to_owned(), keys.frame(3, "png")] {
            assert!(
                may(&render, "s3:GetObject", &key),
                "render cannot read {key}"
            );
        }
    }
    // And the project's files wherever they sit beside the .blend (issue 13: the renderer
    // downloads textures, libraries and caches the job's dependency list names).
    for key in [
        "textures/wood.png",
        "proj/shared/lib.blend",
        "proj/cache/fluid_0001.vdb",
        "a.blend/deps/0123abcd.json",
    ] {
        assert!(
            may(&render, "s3:GetObject", key),
            "render cannot read {key}"
        );
    }
}

#[test]
fn the_trigger_terminates_and_tags_only_the_farms_jobs() {
    let t = template();
    let trigger = statements(&t, "TriggerFunctionRole");
    for action in ["batch:TerminateJob", "batch:TagResource"] {
        let statements: Vec<&Value> = trigger
            .iter()
            .filter(|s| s["Effect"] == "Allow" && strings(&s["Action"]).contains(&json!(action)))
            .collect();
        assert_eq!(statements.len(), 1, "{action}");
        let condition = &statements[0]["Condition"];
        assert!(condition.is_object(), "{action} is unconditioned");
        let text = condition.to_string();
        assert!(text.contains("farm:key"), "{action}: {text}");
    }
}

/// Batch needs `batch:TagResource` for the tags a job is submitted with: a tag key the trigger
/// sets that the condition does not list would make every submission fail with AccessDenied.
#[test]
fn the_trigger_may_set_every_tag_key_a_submission_carries() {
    let t = template();
    let trigger = statements(&t, "TriggerFunctionRole");
    let tagging = trigger
        .iter()
        .find(|s| {
            s["Effect"] == "Allow" && strings(&s["Action"]).contains(&json!("batch:TagResource"))
        })
        .expect("the trigger may tag jobs");
    let allowed = strings(&tagging["Condition"]["ForAllValues:StringEquals"]["aws:TagKeys"]);
    for key in [
        farm_core::scheduler::TAG_KEY,
        farm_core::scheduler::TAG_FRAMES,
        farm_jobs::submit::TAG_REQUEST,
    ] {
        assert!(
            allowed.contains(&json!(key)),
            "tag key {key} is not in {allowed:?}"
        );
    }
}

// ------------------------------------------------------------------ what the trigger does

/// An S3 event of one record for `key` in `bucket`.
fn s3_event(name: &str, bucket: &str, key: &str, etag: &str) -> serde_json::Value {
    json!({ "Records": [{
        "eventVersion": "2.1",
        "eventSource": "aws:s3",
        "awsRegion": "us-east-1",
        "eventTime": "2026-11-24T10:15:30.123Z",
        "eventName": name,
        "userIdentity": { "principalId": "AWS:AIDAJDPLRKLG7UEXAMPLE" },
        "requestParameters": { "sourceIPAddress": "203.0.113.15" },
        "responseElements": {},
        "s3": {
            "s3SchemaVersion": "1.0",
            "bucket": { "name": bucket, "arn": format!("arn:aws:s3:::{bucket}") },
            "object": { "key": key.replace(' ', "+"), "size": 40, "eTag": etag }
        }
    }]})
}

/// The trigger's IAM policy against every S3 call the trigger's own code makes: the handler runs
/// (over the test kit's in-memory bucket and scheduler, which record each call) through a
/// submission whose frame list travels by reference, a re-tag rejected while that job stands,
/// and a submission whose zip job fails (the marker is released), and the pre-flight check's
/// dependency list is written by the function the trigger calls. Every object the code writes,
/// deletes or reads must be allowed by the template and not denied, so a new key the trigger
/// starts writing fails here until the policy names it.
#[tokio::test]
async fn the_trigger_policy_allows_every_object_the_trigger_touches() {
    use farm_core::deps::{Dependency, DependencyRecord};
    use farm_core::scheduler::JobKind;
    use farm_testkit::{Fault, Faulty, MemoryScheduler, MemoryStorage, Op, StoredObject};
    use trigger_lambda::{handle_event, parse_event, Deps, RecordOutcome};

    const BUCKET: &str = "farm-bucket";
    const BLEND: &[u8] = b"BLENDER-v304RENDH\x00\x00\x00 rest of a scene";
    let source = "shots/scene 01.blend";
    let keys = JobKeys::new(source);

    let store = Faulty::new(MemoryStorage::new());
    let upload = |key: &str, etag: &str, tags: &[(&str, &str)]| {
        store.inner().insert_object(
            key,
            StoredObject::new(BLEND.to_vec())
                .etag(etag)
                .tags(tags.iter().copied()),
        );
    };
    let for_buckets = store.clone();
    let deps = Deps {
        buckets: move |bucket: &str| {
            assert_eq!(bucket, BUCKET);
            for_buckets.clone()
        },
        scheduler: Faulty::new(MemoryScheduler::new()),
        max_frames: 10_000,
        task_slots: None,
        read_budget: trigger_lambda::READ_BUDGET,
        shared_prefixes: Default::default(),
    };
    let run = |name: &'static str, key: &'static str, etag: &'static str| {
        let event = parse_event(s3_event(name, BUCKET, key, etag)).expect("an S3 event");
        handle_event(&deps, event)
    };

    // A frame list too long for the container overrides: written to plans/ and passed by key.
    let e1 = "0123456789abcdef0123456789abcdef";
    upload(
        source,
        e1,
        &[("frames", "1-3000:3 2-3000:3"), ("chunk", "1")],
    );
    let report = run("ObjectCreated:Put", source, e1)
        .await
        .expect("submitted");
    assert_eq!(report.submitted(), 1, "{report:?}");
    // A re-tag the trigger refuses while that job stands: rejected.json beside job.json.
    store.inner().set_tags(source, [("frame", "abc")]);
    let report = run("ObjectTagging:Put", source, e1).await.expect("handled");
    assert!(
        matches!(&report.records[0], RecordOutcome::Rejected { .. }),
        "{report:?}"
    );
    // A zip job Batch refuses: the render job is cancelled and the request marker released.
    let other = "b.blend";
    let e2 = "fedcba9876543210fedcba9876543210";
    upload(other, e2, &[("frame", "5")]);
    deps.scheduler
        .inject(Fault::on(Op::Submit).job_kind(JobKind::Zip));
    assert!(run("ObjectCreated:Put", other, e2).await.is_err());
    deps.scheduler.clear();
    // The pre-flight check's list of the files a job downloads.
    let mut record = DependencyRecord {
        files: vec![Dependency {
            key: "shots/tex/wood.png".to_owned(),
            kind: "image".to_owned(),
            path: "//../tex/wood.png".to_owned(),
            from: source.to_owned(),
            etag: "\"e\"".to_owned(),
            size: 3,
        }],
        ..DependencyRecord::default()
    };
    farm_jobs::deps::write_dependency_list(&store, &keys, &mut record)
        .await
        .expect("the list is written");
    // A scout (`estimate=N`): one job, and its estimate.json written `submitted`.
    let scouted = "d.blend";
    let e4 = "0f1e2d3c4b5a69788796a5b4c3d2e1f0";
    upload(scouted, e4, &[("frame", "9"), ("estimate", "2")]);
    let report = run("ObjectCreated:Put", scouted, e4)
        .await
        .expect("scouted");
    assert!(
        matches!(&report.records[0], RecordOutcome::Scouted { .. }),
        "{report:?}"
    );
    // A request whose submitter died: its stale pending marker is taken over, which first
    // lists the jobs the dead submitter may have left (ListJobs by name).
    let stale = "c.blend";
    let e3 = "00112233445566778899aabbccddeeff";
    upload(stale, e3, &[("frame", "2")]);
    run("ObjectCreated:Put", stale, e3)
        .await
        .expect("submitted");
    let stale_keys = JobKeys::new(stale);
    let marker = store
        .inner()
        .keys()
        .into_iter()
        .find(|k| k.starts_with(&stale_keys.requests_prefix()))
        .expect("a request marker");
    let mut body: Value =
        serde_json::from_slice(&store.inner().body(&marker).expect("marker")).expect("JSON");
    body["state"] = json!("pending");
    body["created"] = json!("2020-01-01T00:00:00Z");
    body.as_object_mut().expect("marker").remove("manifest");
    store
        .inner()
        .insert(&marker, serde_json::to_vec(&body).expect("JSON"));
    store.inner().remove(&stale_keys.manifest());
    run("ObjectCreated:Put", stale, e3)
        .await
        .expect("taken over");
    let mut scheduler_ops: Vec<Op> = Vec::new();
    for call in deps.scheduler.calls() {
        if !scheduler_ops.contains(&call.op) {
            scheduler_ops.push(call.op);
        }
    }
    assert!(
        scheduler_ops.contains(&Op::FindByName),
        "no takeover: {scheduler_ops:?}"
    );

    let calls = store.calls();
    let of = |ops: &[Op]| -> BTreeSet<String> {
        calls
            .iter()
            .filter(|call| ops.contains(&call.op))
            .map(|call| call.key.clone())
            .collect()
    };
    let writes = of(&[
        Op::Put,
        Op::CreateIfAbsent,
        Op::UploadFile,
        Op::UploadWrite,
        Op::UploadFinish,
    ]);
    let deletes = of(&[Op::Delete]);

    // The scenarios reach every kind of object the trigger writes.
    let canonical = store
        .inner()
        .body(&keys.manifest())
        .map(|b| serde_json::from_slice::<Value>(&b).expect("job.json")["frames"].clone())
        .and_then(|f| f.as_str().map(str::to_owned))
        .expect("job.json names the frames");
    for key in [
        keys.manifest(),
        keys.rejection(),
        keys.frame_list(&canonical),
        record.list.clone().expect("a dependency list"),
        JobKeys::new(scouted).estimate(),
    ] {
        assert!(
            writes.contains(&key),
            "the trigger did not write {key}: {writes:?}"
        );
    }
    let markers = |k: &JobKeys| -> Vec<String> {
        writes
            .iter()
            .filter(|w| w.starts_with(&k.requests_prefix()))
            .cloned()
            .collect()
    };
    assert!(!markers(&keys).is_empty(), "{writes:?}");
    let released = markers(&JobKeys::new(other));
    assert!(
        !released.is_empty() && released.iter().all(|m| deletes.contains(m)),
        "the failed request's marker was not released: {deletes:?}"
    );

    let trigger = statements(&template(), "TriggerFunctionRole");
    for key in &writes {
        assert!(
            [source, other, stale, scouted]
                .iter()
                .any(|k| key.starts_with(&format!("{k}/"))),
            "the trigger writes {key} outside a job folder"
        );
    }
    // Every object it wrote, deleted and read, and its lists (the pre-flight check lists
    // folders of a project's image sequences and UDIM tiles).
    assert_role_allows_storage_calls(&template(), "TriggerFunctionRole", &calls);
    // Nothing else: the trigger never deletes what it does not write, nor job.json.
    assert!(!may(&trigger, "s3:DeleteObject", &keys.manifest()));
    assert!(!may(&trigger, "s3:PutObject", source));

    // Every scheduler call it made (submissions, cancelling a render job whose zip job was
    // refused, the takeover's search), as the Batch adapter sends it.
    for op in scheduler_ops {
        for action in batch_actions(op) {
            assert!(
                allows(&trigger, action),
                "the trigger calls {op:?} but may not {action}"
            );
        }
    }
}

/// The zip role against every call the zipper's own code makes: `zipper::run` (the zip job)
/// over the test kit's recording store, once with every frame (archive, contact sheet, task
/// record, receipt) and once with a frame gone (missing.json; the older archive and contact
/// sheet removed, as they would show another run's frames).
#[tokio::test]
async fn the_zip_policy_allows_every_object_the_zipper_touches() {
    use farm_testkit::{Faulty, MemoryStorage, Op};

    let keys = JobKeys::new("shots/scene 01.blend");
    let store = Faulty::new(MemoryStorage::new());
    for frame in 1..=3 {
        store
            .inner()
            .insert(&keys.frame(frame, "png"), vec![frame as u8; 64]);
    }
    // An older contact sheet and archive, as a previous run left them.
    store.inner().insert(&keys.preview(), b"old sheet".to_vec());
    let config = zipper::Config {
        ticket: ticket(&keys, "1-3", 1),
        options: zipper::ZipOptions::default(),
        attempt: 1,
        prices: None,
    };
    zipper::run(&config, &store, std::future::pending())
        .await
        .expect("the archive is made");
    assert!(store.inner().body(&keys.zip()).is_some());
    store.inner().remove(&keys.frame(2, "png"));
    store.inner().insert(&keys.preview(), b"old sheet".to_vec());
    let missing = zipper::run(&config, &store, std::future::pending()).await;
    assert!(missing.is_err(), "frame 2 is missing");
    assert!(store.inner().body(&keys.missing()).is_some());
    assert!(
        store.inner().body(&keys.preview()).is_none(),
        "the older contact sheet stays beside missing.json"
    );

    let calls = store.calls();
    for op in [Op::UploadFinish, Op::Put, Op::Delete, Op::List] {
        assert!(
            calls.iter().any(|c| c.op == op),
            "no {op:?} call: {calls:?}"
        );
    }
    assert_role_allows_storage_calls(&template(), "ZipJobRole", &calls);
}

/// The renderer's calls against the render role: a chunk of two frames rendered by Debian's
/// Blender over a recording store (the .blend's HEAD and download, each frame's upload, the
/// task record), then the same chunk again (every frame current: listed, nothing rendered).
#[tokio::test]
async fn the_render_policy_allows_every_object_the_renderer_touches() {
    use farm_testkit::{Faulty, MemoryStorage, Op};

    let dir = tempfile::tempdir().unwrap();
    let scene = farm_testkit::make_scene(
        dir.path(),
        "scene",
        &farm_testkit::SceneOptions {
            end: 2,
            ..farm_testkit::SceneOptions::default()
        },
    )
    .expect("Blender makes the scene");
    let keys = JobKeys::new("shots/scene 01.blend");
    let store = Faulty::new(MemoryStorage::new());
    store
        .inner()
        .insert(keys.source(), std::fs::read(&scene).unwrap());
    let config = renderer::Config {
        ticket: ticket(&keys, "1-2", 2),
        index: 0,
        attempt: 1,
        blender: renderer::BlenderSetup {
            blender: farm_core::blender::Blender::Executable(farm_testkit::blender().unwrap()),
            threads: 1,
            work_dir: dir.path().join("work"),
            persistent: true,
            frame_timeout: None,
        },
        prices: None,
    };
    for _ in 0..2 {
        renderer::run(&store, &config, std::future::pending())
            .await
            .expect("the chunk renders");
    }
    assert!(store.inner().body(&keys.frame(2, "png")).is_some());
    let calls = store.calls();
    for op in [Op::Head, Op::List] {
        assert!(
            calls.iter().any(|c| c.op == op),
            "no {op:?} call: {calls:?}"
        );
    }
    assert!(
        calls.iter().any(|c| c.key.contains("/tasks/")),
        "no task record: {calls:?}"
    );
    assert_role_allows_storage_calls(&template(), "RenderJobRole", &calls);

    // The same definition runs a scout (`estimate=2`): it writes estimate.json, no frame.
    let scout_store = Faulty::new(MemoryStorage::new());
    scout_store
        .inner()
        .insert(keys.source(), std::fs::read(&scene).unwrap());
    let scout = renderer::Config {
        ticket: farm_jobs::JobTicket {
            scout: Some(farm_jobs::Scout {
                samples: 2,
                max_vcpus: 64,
            }),
            ..config.ticket.clone()
        },
        prices: farm_core::receipt::Prices::for_region("us-east-1", None, None),
        ..config.clone()
    };
    renderer::run(&scout_store, &scout, std::future::pending())
        .await
        .expect("the scout renders its samples");
    let calls = scout_store.calls();
    assert!(
        calls
            .iter()
            .any(|c| c.op == Op::Put && c.key == keys.estimate()),
        "no estimate.json: {calls:?}"
    );
    assert!(
        !calls.iter().any(|c| c.key.contains("/frames/")),
        "a scout uploads no frame: {calls:?}"
    );
    assert_role_allows_storage_calls(&template(), "RenderJobRole", &calls);
}

/// The movie job's calls against the render role it runs on: a movie scene's two frames
/// rendered by Debian's Blender, the zip job's receipt, then the movie job over a recording
/// store (the .blend's HEAD and download, the frames' listing and downloads, the movie's
/// upload, the receipt read and written).
#[tokio::test]
async fn the_render_policy_allows_every_object_the_movie_job_touches() {
    use farm_testkit::{Faulty, MemoryStorage, Op};

    let dir = tempfile::tempdir().unwrap();
    let scene = farm_testkit::make_scene(
        dir.path(),
        "film",
        &farm_testkit::SceneOptions {
            end: 2,
            movie_fps: Some(12),
            ..farm_testkit::SceneOptions::default()
        },
    )
    .expect("Blender makes the scene");
    let keys = JobKeys::new("shots/film 01.blend");
    let store = Faulty::new(MemoryStorage::new());
    store
        .inner()
        .insert(keys.source(), std::fs::read(&scene).unwrap());
    let setup = |work: &str| renderer::BlenderSetup {
        blender: farm_core::blender::Blender::Executable(farm_testkit::blender().unwrap()),
        threads: 1,
        work_dir: dir.path().join(work),
        persistent: true,
        frame_timeout: None,
    };
    let stills = farm_jobs::JobTicket {
        format: Some(farm_core::blender::OutputFormat::Png),
        ..ticket(&keys, "1-2", 2)
    };
    let render = renderer::Config {
        ticket: stills.clone(),
        index: 0,
        attempt: 1,
        blender: setup("render"),
        prices: None,
    };
    renderer::run(&store, &render, std::future::pending())
        .await
        .expect("the frames render");
    let receipt = farm_core::receipt::Receipt::compute(&[], 2, None);
    store
        .inner()
        .insert(&keys.receipt(), serde_json::to_vec(&receipt).unwrap());
    let before = store.calls().len();
    let movie = renderer::Config {
        ticket: farm_jobs::JobTicket {
            movie: Some("mkv".to_owned()),
            ..stills
        },
        index: 0,
        attempt: 1,
        blender: setup("movie"),
        prices: None,
    };
    let done = renderer::run(&store, &movie, std::future::pending())
        .await
        .expect("the movie is made");
    let renderer::Done::Movie(made) = done else {
        panic!("a movie ticket ran {done:?}")
    };
    assert_eq!(made.key, keys.movie("mkv"));
    let calls = store.calls().split_off(before);
    for op in [
        Op::Head,
        Op::List,
        Op::Download,
        Op::Get,
        Op::Put,
        Op::UploadFile,
    ] {
        assert!(
            calls.iter().any(|c| c.op == op),
            "no {op:?} call: {calls:?}"
        );
    }
    assert!(calls.iter().any(|c| c.key == made.key), "{calls:?}");
    assert_role_allows_storage_calls(&template(), "RenderJobRole", &calls);
}

/// A job's ticket in bucket `farm-bucket` for any version of `keys`' .blend.
fn ticket(keys: &JobKeys, frames: &str, chunk: u32) -> farm_jobs::JobTicket {
    farm_jobs::JobTicket {
        bucket: "farm-bucket".to_owned(),
        keys: keys.clone(),
        plan: farm_core::Plan::new(farm_core::FrameList::parse(frames, 100).unwrap(), chunk)
            .unwrap(),
        source_etag: None,
        format: None,
        engine: None,
        dependencies: None,
        blender: None,
        persistent: true,
        movie: None,
        views: farm_core::views::FrameViews::single(),
        scout: None,
    }
}

/// The farm user's policy as `infra/README.md` documents it, its placeholders written as the
/// template's `Fn::Sub` strings so the same matchers apply.
fn user_policy() -> Vec<Value> {
    let readme = script("README.md");
    let section = readme
        .split("## The farm user's policy")
        .nth(1)
        .expect("infra/README.md has the farm user's policy");
    let block = section
        .split("```json")
        .nth(1)
        .and_then(|rest| rest.split("```").next())
        .expect("a JSON block");
    let policy: Value = serde_json::from_str(block).expect("the policy is JSON");
    let sub = |r: &Value| -> Value {
        let r = r.as_str().expect("a resource");
        if r == "*" {
            return json!("*");
        }
        json!({ "Fn::Sub": r
            .replace("arn:aws:", "arn:${AWS::Partition}:")
            .replace("<stack>", "${AWS::StackName}")
            .replace("<account>", "${AWS::AccountId}")
            .replace("<region>", "${AWS::Region}") })
    };
    policy["Statement"]
        .as_array()
        .expect("statements")
        .iter()
        .map(|statement| {
            let mut statement = statement.clone();
            statement["Resource"] = strings(&statement["Resource"]).iter().map(sub).collect();
            statement
        })
        .collect()
}

/// The documented policy of `farm`'s users against the calls the job model's code makes for
/// them: `farm retry`'s submission (a long frame list by reference, job.json), `farm status`'s
/// frame scan and job states, `farm cancel`, each over the recording store and scheduler.
#[tokio::test]
async fn the_farm_users_policy_allows_what_farm_does_and_submits_by_definition_name() {
    use farm_core::request::RenderRequest;
    use farm_testkit::{Faulty, MemoryScheduler, MemoryStorage, Op, StoredObject};

    let policy = user_policy();
    let keys = JobKeys::new("shots/scene 01.blend");
    let store = Faulty::new(MemoryStorage::new());
    let scheduler = Faulty::new(MemoryScheduler::new());
    store.inner().insert_object(
        keys.source(),
        StoredObject::new(b"BLENDER-v304RENDH".to_vec()).etag("e1"),
    );
    let source = farm_jobs::submit::SourceObject {
        bucket: "farm-bucket".to_owned(),
        key: keys.source().to_owned(),
        etag: "\"e1\"".to_owned(),
        version_id: None,
        saved_by: None,
        scene: None,
        movie: None,
        views: farm_core::views::FrameViews::single(),
    };
    let request =
        RenderRequest::from_tags([("frames", "1-3000:3 2-3000:3"), ("chunk", "1")], 10_000)
            .expect("a request")
            .expect("frames");
    let manifest = farm_jobs::submit::submit_retry(&store, &scheduler, &source, &request, &request)
        .await
        .expect("the retry is submitted");
    farm_jobs::scan_frames(
        &store,
        &keys,
        request.plan.frames().as_slice(),
        &farm_jobs::OutputVersion::default(),
        &[],
    )
    .await
    .expect("the frames are scanned");
    let render = manifest.render_job_id.expect("a render job");
    farm_core::scheduler::Scheduler::describe(&scheduler, std::slice::from_ref(&render))
        .await
        .expect("described");
    farm_core::scheduler::Scheduler::cancel(&scheduler, &render, "farm cancel")
        .await
        .expect("cancelled");

    assert_storage_calls_allowed(&policy, "the farm user", &store.calls());
    let calls = scheduler.calls();
    for op in [Op::Submit, Op::Describe, Op::Cancel] {
        assert!(calls.iter().any(|c| c.op == op), "no {op:?}: {calls:?}");
        for action in batch_actions(op) {
            assert!(
                allows(&policy, action),
                "farm calls {op:?} but may not {action}"
            );
        }
    }
    // Tags go on the upload itself (PutObject's tagging needs s3:PutObjectTagging too).
    assert!(allows(&policy, "s3:PutObjectTagging"));
    // `farm retry` submits by definition name: IAM matches `job-definition/<name>`, no revision.
    let submit: Vec<Value> = policy
        .iter()
        .filter(|s| strings(&s["Action"]).contains(&json!("batch:SubmitJob")))
        .flat_map(|s| strings(&s["Resource"]))
        .collect();
    let t = template();
    let mut names: Vec<String> = series(&t)
        .iter()
        .map(|s| format!("render-{}", s.replace('.', "-")))
        .collect();
    names.push("zip".to_owned());
    for name in names {
        for revision in ["", ":*"] {
            let arn = json!({ "Fn::Sub": format!(
                "arn:${{AWS::Partition}}:batch:${{AWS::Region}}:${{AWS::AccountId}}:job-definition/${{AWS::StackName}}-{name}{revision}"
            ) });
            assert!(
                submit.contains(&arn),
                "the farm user may not submit to {arn}"
            );
        }
    }
    let tagging = policy
        .iter()
        .find(|s| strings(&s["Action"]).contains(&json!("batch:TagResource")))
        .expect("the user may tag what it submits");
    let allowed = strings(&tagging["Condition"]["ForAllValues:StringEquals"]["aws:TagKeys"]);
    for key in [
        farm_core::scheduler::TAG_KEY,
        farm_core::scheduler::TAG_FRAMES,
        farm_jobs::submit::TAG_REQUEST,
    ] {
        assert!(allowed.contains(&json!(key)), "tag key {key}");
    }
}

/// Every storage call in `calls`, as the S3 adapter makes it, allowed to `role` (and not
/// denied): object reads, writes (multipart parts included) and deletes on their key, lists on
/// the bucket.
fn assert_role_allows_storage_calls(t: &Value, role: &str, calls: &[farm_testkit::Logged]) {
    assert_storage_calls_allowed(&statements(t, role), role, calls);
}

/// [`assert_role_allows_storage_calls`] for any policy's statements.
fn assert_storage_calls_allowed(statements: &[Value], role: &str, calls: &[farm_testkit::Logged]) {
    use farm_testkit::Op;
    let bucket = json!({ "Fn::Sub": BUCKET_ARN_SUB });
    for call in calls {
        let key = call.key.as_str();
        let (action, on_bucket) = match call.op {
            Op::Head | Op::Get | Op::GetStream | Op::GetRange | Op::Download => {
                ("s3:GetObject", false)
            }
            Op::Put | Op::CreateIfAbsent | Op::UploadFile | Op::UploadWrite | Op::UploadFinish => {
                ("s3:PutObject", false)
            }
            Op::Delete => ("s3:DeleteObject", false),
            // The version's tags need s3:GetObjectVersionTagging as well; the template grants
            // both where it grants one.
            Op::GetTags => ("s3:GetObjectTagging", false),
            Op::PutTags => ("s3:PutObjectTagging", false),
            Op::List => ("s3:ListBucket", true),
            Op::OpenUploads => ("s3:ListBucketMultipartUploads", true),
            other => panic!("{other:?} is not a storage call"),
        };
        if on_bucket {
            assert!(
                statements.iter().any(|s| s["Effect"] == "Allow"
                    && strings(&s["Action"]).contains(&json!(action))
                    && strings(&s["Resource"]).contains(&bucket)),
                "{role} lists {key:?} but may not {action} on the bucket"
            );
        } else {
            assert!(
                may(statements, action, key),
                "{role} may not {action} {key}"
            );
        }
    }
}

/// The IAM actions `farm_io::BatchScheduler` needs for a scheduler call (SubmitJob with tags
/// needs `batch:TagResource` too).
fn batch_actions(op: farm_testkit::Op) -> Vec<&'static str> {
    use farm_testkit::Op;
    match op {
        Op::Submit => vec!["batch:SubmitJob", "batch:TagResource"],
        Op::Describe => vec!["batch:DescribeJobs"],
        Op::FindByName => vec!["batch:ListJobs"],
        Op::Cancel => vec!["batch:TerminateJob"],
        other => panic!("{other:?} is not a scheduler call"),
    }
}

/// Whether some Allow statement names `action`; an action without a resource type
/// ([`NO_RESOURCE_TYPE`]) must be granted on `"*"` or IAM never matches it.
fn allows(statements: &[Value], action: &str) -> bool {
    statements.iter().any(|s| {
        s["Effect"] == "Allow"
            && strings(&s["Action"]).contains(&json!(action))
            && (!NO_RESOURCE_TYPE.contains(&action)
                || strings(&s["Resource"]).contains(&json!("*")))
    })
}

// ------------------------------------------------------------------ notifications

/// The resources a `NotificationEmail` creates.
const NOTIFICATION_RESOURCES: [&str; 8] = [
    "NotificationKey",
    "NotificationTopic",
    "NotificationTopicPolicy",
    "ZipSucceededRule",
    "ZipFailedRule",
    "RenderFailedRule",
    "MovieSucceededRule",
    "MovieFailedRule",
];

#[test]
fn notifications_exist_only_with_an_email() {
    let t = template();
    let email = parameter(&t, "NotificationEmail");
    assert_eq!(email["Default"], "", "no notifications by default");
    assert!(email["AllowedPattern"]
        .as_str()
        .is_some_and(|re| re.starts_with("^$|")));
    assert_eq!(
        t["Conditions"]["NotifyCondition"],
        json!({ "Fn::Not": [{ "Fn::Equals": [r#ref("NotificationEmail"), ""] }] })
    );
    let notifying: BTreeSet<&str> = [
        "AWS::SNS::Topic",
        "AWS::SNS::TopicPolicy",
        "AWS::SNS::Subscription",
        "AWS::Events::Rule",
        "AWS::KMS::Key",
        "AWS::KMS::Alias",
    ]
    .into_iter()
    .flat_map(|ty| resources_of_type(&t, ty))
    .map(|(name, _)| name.as_str())
    .collect();
    assert_eq!(notifying, BTreeSet::from(NOTIFICATION_RESOURCES));
    for name in NOTIFICATION_RESOURCES {
        assert_eq!(resource(&t, name)["Condition"], "NotifyCondition", "{name}");
    }
    // Nothing created without the e-mail refers to them: CloudFormation would refuse the stack.
    let refers = |v: &Value| {
        let text = v.to_string();
        NOTIFICATION_RESOURCES.into_iter().find(|name| {
            text.contains(&format!("\"{name}\"")) || text.contains(&format!("${{{name}"))
        })
    };
    for section in ["Resources", "Outputs"] {
        for (name, item) in t[section].as_object().expect(section) {
            if item["Condition"] != "NotifyCondition" {
                assert_eq!(refers(item), None, "{section}.{name} is unconditional");
            }
        }
    }
    assert_eq!(
        t["Outputs"]["NotificationTopicArn"]["Value"],
        r#ref("NotificationTopic")
    );
}

/// What a rule's pattern selects: the kind of job (by job definition name, and a movie job on a
/// render job definition by its `farm_movie` parameter) and its statuses.
fn rule_selection(t: &Value, rule: &str) -> (String, BTreeSet<String>) {
    let rule = props(t, rule);
    assert_eq!(rule["State"], "ENABLED");
    let pattern = &rule["EventPattern"];
    assert_eq!(pattern["source"], json!(["aws.batch"]));
    assert_eq!(pattern["detail-type"], json!(["Batch Job State Change"]));
    let detail = &pattern["detail"];
    assert_eq!(
        detail["jobQueue"],
        json!([r#ref("JobQueue")]),
        "this farm's queue only"
    );
    let prefix = detail["jobDefinition"][0]["prefix"]["Fn::Sub"]
        .as_str()
        .expect("a job definition ARN prefix");
    let definitions =
        "arn:${AWS::Partition}:batch:${AWS::Region}:${AWS::AccountId}:job-definition/";
    let name = prefix
        .strip_prefix(definitions)
        .expect("a job definition ARN");
    let statuses = detail["status"]
        .as_array()
        .expect("statuses")
        .iter()
        .map(|s| s.as_str().expect("status").to_owned())
        .collect();
    // The prefix must select exactly this kind's job definitions, every revision.
    let sub = |job: &str| {
        props(t, job)["JobDefinitionName"]["Fn::Sub"]
            .as_str()
            .expect("a job definition name")
            .to_owned()
    };
    let kind = if name == format!("{}:", sub("ZipJobDefinition")) {
        "zip"
    } else {
        let renders: Vec<String> = series(t).iter().map(|s| sub(&render_job(s))).collect();
        assert!(
            renders.iter().all(|r| r.starts_with(name))
                && !sub("ZipJobDefinition").starts_with(name),
            "prefix {name} does not select the render job definitions {renders:?} alone"
        );
        let movie = &detail["parameters"][farm_core::scheduler::PARAM_MOVIE];
        if movie == &json!([{ "exists": true }]) {
            "movie"
        } else {
            assert_eq!(
                movie,
                &json!([{ "exists": false }]),
                "a render rule leaves movie jobs out"
            );
            "render"
        }
    };
    (kind.to_owned(), statuses)
}

#[test]
fn the_rules_send_the_zip_jobs_end_and_a_failed_render_job_to_the_topic() {
    let t = template();
    let mut selected = BTreeSet::new();
    for (name, _) in resources_of_type(&t, "AWS::Events::Rule") {
        let (kind, statuses) = rule_selection(&t, name);
        for status in statuses {
            assert!(
                selected.insert((kind.clone(), status.clone())),
                "{kind} {status} twice"
            );
        }
        let rule = props(&t, name);
        if kind == "render" {
            // One message per job: array children carry an index, their parent does not.
            assert_eq!(
                rule["EventPattern"]["detail"]["arrayProperties"],
                json!({ "index": [{ "exists": false }] }),
                "{name}"
            );
        }
        let targets = rule["Targets"].as_array().expect("Targets");
        assert_eq!(targets.len(), 1, "{name}");
        assert_eq!(targets[0]["Arn"], r#ref("NotificationTopic"), "{name}");
        assert!(targets[0]["InputTransformer"].is_object(), "{name}");
    }
    let expected: BTreeSet<(String, String)> = [
        ("zip", "SUCCEEDED"),
        ("zip", "FAILED"),
        ("render", "FAILED"),
        ("movie", "SUCCEEDED"),
        ("movie", "FAILED"),
    ]
    .into_iter()
    .map(|(k, s)| (k.to_owned(), s.to_owned()))
    .collect();
    assert_eq!(selected, expected);
}

#[test]
fn only_the_farms_rules_may_publish_to_the_encrypted_topic() {
    let t = template();
    let topic = props(&t, "NotificationTopic");
    assert_eq!(
        topic["Subscription"],
        json!([{ "Protocol": "email", "Endpoint": r#ref("NotificationEmail") }])
    );
    // Encrypted with a key EventBridge may use: the AWS-managed alias/aws/sns key's policy
    // cannot grant it, so EventBridge could not publish to a topic encrypted with that one.
    assert_eq!(topic["KmsMasterKeyId"], r#ref("NotificationKey"));
    let key = props(&t, "NotificationKey");
    assert_eq!(key["EnableKeyRotation"], true);
    let key_statements = key["KeyPolicy"]["Statement"]
        .as_array()
        .expect("key policy");
    assert!(
        key_statements.iter().any(|s| {
            let actions = strings(&s["Action"]);
            s["Effect"] == "Allow"
                && s["Principal"] == json!({ "Service": "events.amazonaws.com" })
                && actions.contains(&json!("kms:Decrypt"))
                && actions.contains(&json!("kms:GenerateDataKey*"))
        }),
        "EventBridge may not use the topic's key"
    );

    let policy = props(&t, "NotificationTopicPolicy");
    assert_eq!(policy["Topics"], json!([r#ref("NotificationTopic")]));
    let statements = policy["PolicyDocument"]["Statement"]
        .as_array()
        .expect("statements");
    assert_eq!(statements.len(), 1);
    let s = &statements[0];
    assert_eq!(s["Effect"], "Allow");
    assert_eq!(s["Principal"], json!({ "Service": "events.amazonaws.com" }));
    assert_eq!(s["Action"], "sns:Publish");
    assert_eq!(s["Resource"], r#ref("NotificationTopic"));
    let sources: BTreeSet<String> = strings(&s["Condition"]["ArnEquals"]["aws:SourceArn"])
        .iter()
        .map(|arn| {
            assert_eq!(arn["Fn::GetAtt"][1], "Arn");
            arn["Fn::GetAtt"][0].as_str().expect("a rule").to_owned()
        })
        .collect();
    let rules: BTreeSet<String> = resources_of_type(&t, "AWS::Events::Rule")
        .into_iter()
        .map(|(name, _)| name.clone())
        .collect();
    assert_eq!(sources, rules, "exactly the farm's rules publish");
}

/// The value at an input path (`$.a.b`) of an event, as EventBridge reads it: dot notation over
/// letters, digits, `_` and `-` only (no brackets, no colons).
fn at_path<'e>(event: &'e Value, path: &str) -> &'e Value {
    let rest = path.strip_prefix("$.").expect("a path from $");
    let mut value = event;
    for segment in rest.split('.') {
        assert!(
            !segment.is_empty()
                && segment
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-'),
            "EventBridge cannot read the path {path}"
        );
        value = &value[segment];
    }
    value
}

/// A rule's message for `event`, as EventBridge makes it from a string template: every
/// `<name>` becomes the string at its path (escaped as inside a JSON string), and each line of
/// the template is a JSON string, one line of the e-mail.
fn message(t: &Value, rule: &str, event: &Value) -> String {
    let transformer = &props(t, rule)["Targets"][0]["InputTransformer"];
    let paths = transformer["InputPathsMap"]
        .as_object()
        .expect("InputPathsMap");
    let template = transformer["InputTemplate"]["Fn::Sub"]
        .as_str()
        .expect("an Fn::Sub template")
        .replace("${AWS::StackName}", "farm");
    assert!(
        !template.contains("${"),
        "{rule}: only the stack name is substituted"
    );
    let mut text = template.clone();
    for (name, path) in paths {
        let value = at_path(event, path.as_str().expect("a path"));
        let value = value
            .as_str()
            .unwrap_or_else(|| panic!("{rule}: <{name}> ({path}) is not in the event"));
        let escaped = serde_json::to_string(value).expect("a JSON string");
        text = text.replace(&format!("<{name}>"), &escaped[1..escaped.len() - 1]);
    }
    for placeholder in template.split('<').skip(1) {
        let name = placeholder.split('>').next().unwrap_or_default();
        assert!(paths.contains_key(name), "{rule}: <{name}> has no path");
    }
    text.lines()
        .map(|line| {
            serde_json::from_str::<String>(line)
                .unwrap_or_else(|e| panic!("{rule}: {line:?} is not a JSON string: {e}"))
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// Each message, rendered from a Batch job state change event of jobs the farm submits (their
/// names and Batch parameters from `farm_core`), names the exact key and where to look.
#[tokio::test]
async fn the_messages_name_the_key_the_status_and_where_frames_zip_is() {
    use farm_core::scheduler::{JobSpec, PARAM_BUCKET, PARAM_KEY, PARAM_MOVIE};

    let t = template();
    let key = "shots/scene \"01\" ü $(x).blend";
    let keys = JobKeys::new(key);
    let request = farm_core::RenderRequest::from_tags([("frames", "1-10")], 100)
        .expect("a request")
        .expect("a render request");
    let ticket = farm_jobs::JobTicket::for_request("farm-bucket", key, None, &request, None);
    let storage = farm_testkit::MemoryStorage::new();
    let limits = farm_core::scheduler::Scheduler::limits(&farm_testkit::MemoryScheduler::new());
    let render = ticket.render_job(&storage, &limits).await.unwrap();
    let zip = ticket
        .zip_job(&storage, &limits, "render-id")
        .await
        .unwrap();
    let movie_scene = farm_jobs::JobTicket {
        movie: Some("mkv".to_owned()),
        ..ticket
    };
    let movie = movie_scene
        .movie_job(&storage, &limits, "zip-id")
        .await
        .unwrap()
        .expect("a movie job");
    assert!(!render.parameters().contains_key(PARAM_MOVIE));
    assert_eq!(movie.parameters()[PARAM_MOVIE], keys.movie("mkv"));
    let event = |job: &JobSpec, status: &str, reason: &str| {
        json!({
            "version": "0",
            "id": "c8f9c4b5",
            "detail-type": "Batch Job State Change",
            "source": "aws.batch",
            "time": "2026-11-29T20:00:00Z",
            "region": "us-east-1",
            "detail": {
                "jobName": job.name,
                "jobId": "4c7599ae-0a82",
                "status": status,
                "statusReason": reason,
                "parameters": job.parameters(),
            }
        })
    };
    for rule in [
        "ZipSucceededRule",
        "ZipFailedRule",
        "RenderFailedRule",
        "MovieSucceededRule",
        "MovieFailedRule",
    ] {
        let paths = &props(&t, rule)["Targets"][0]["InputTransformer"]["InputPathsMap"];
        assert_eq!(paths["key"], format!("$.detail.parameters.{PARAM_KEY}"));
        assert_eq!(
            paths["bucket"],
            format!("$.detail.parameters.{PARAM_BUCKET}")
        );
    }
    let s3 = |k: &str| format!("s3://farm-bucket/{k}");
    // A key is never inside a suggested command: EventBridge cannot quote it for a shell, and a
    // key may hold `"`, `'`, `$(...)` or spaces. Commands name it KEY.
    let no_key_in_commands = |text: &str| {
        for line in text.lines() {
            let commands = [
                "farm download",
                "farm report",
                "farm status",
                "farm retry",
                "aws s3",
            ];
            if commands.iter().any(|c| line.contains(c)) {
                assert!(!line.contains(key), "a command with the key: {line}");
            }
        }
    };

    let done = message(&t, "ZipSucceededRule", &event(&zip, "SUCCEEDED", ""));
    for needle in [
        key,
        &s3(&keys.zip()),
        &s3(&keys.receipt()),
        &format!("s3://farm-bucket/{key}"),
        "farm download KEY --bucket farm-bucket",
        "farm report KEY --bucket farm-bucket",
        &zip.name,
        "SUCCEEDED",
        "2026-11-29T20:00:00Z",
    ] {
        assert!(done.contains(needle), "{needle:?} not in:\n{done}");
    }

    no_key_in_commands(&done);

    let reason = "Essential container in task exited";
    let zip_failed = message(&t, "ZipFailedRule", &event(&zip, "FAILED", reason));
    for needle in [
        key,
        reason,
        &s3(&keys.missing()),
        "farm status KEY --bucket farm-bucket",
        "farm retry KEY --bucket farm-bucket",
        "/aws/batch/farm/zip",
        "FAILED",
    ] {
        assert!(
            zip_failed.contains(needle),
            "{needle:?} not in:\n{zip_failed}"
        );
    }

    no_key_in_commands(&zip_failed);

    let render_failed = message(&t, "RenderFailedRule", &event(&render, "FAILED", reason));
    for needle in [
        key,
        reason,
        &s3(&keys.logs_prefix()),
        "farm retry KEY --bucket farm-bucket",
        "/aws/batch/farm/render",
        &render.name,
        "FAILED",
    ] {
        assert!(
            render_failed.contains(needle),
            "{needle:?} not in:\n{render_failed}"
        );
    }
    no_key_in_commands(&render_failed);

    let made = message(&t, "MovieSucceededRule", &event(&movie, "SUCCEEDED", ""));
    for needle in [
        key,
        &s3(&keys.movie("mkv")),
        "farm download KEY --bucket farm-bucket",
        &movie.name,
        "SUCCEEDED",
    ] {
        assert!(made.contains(needle), "{needle:?} not in:\n{made}");
    }
    no_key_in_commands(&made);
    let not_made = message(&t, "MovieFailedRule", &event(&movie, "FAILED", reason));
    for needle in [
        key,
        reason,
        &s3(&keys.movie("mkv")),
        "farm status KEY --bucket farm-bucket",
        "/aws/batch/farm/render",
        &movie.name,
        "FAILED",
    ] {
        assert!(not_made.contains(needle), "{needle:?} not in:\n{not_made}");
    }
    no_key_in_commands(&not_made);
}

/// The trigger's read budget per upload (`trigger_lambda::READ_BUDGET`) ends well before the
/// Lambda's timeout: the rejection it ends in is written (and a submission has time) with at
/// least a minute to spare, so a slow upload is a recorded rejection, never a silent timeout.
#[test]
fn the_triggers_read_budget_leaves_time_before_the_lambda_timeout() {
    let t = template();
    let timeout = as_i64(&resource(&t, "TriggerFunction")["Properties"]["Timeout"]);
    let budget = i64::try_from(trigger_lambda::READ_BUDGET.as_secs()).unwrap();
    assert!(
        budget + 60 <= timeout,
        "budget {budget} s, timeout {timeout} s"
    );
}
