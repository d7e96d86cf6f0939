#!/usr/bin/env bash
# The trigger as Lambda runs it: `cargo lambda watch` serves the function (the Lambda runtime
# API emulator), `cargo lambda invoke` sends it a real S3 event fixture, and the effect is
# checked in moto_server: a render + zip job submitted for a tagged .blend, rejected job.json
# files for a bad tag and for a body that is not a .blend, and nothing submitted on a second
# delivery of the same event.
#
# Starts its own moto_server on a free 127.0.0.1 port unless AWS_ENDPOINT_URL is set (then it
# uses that server, with a bucket and Batch resources of its own). Needs cargo-lambda, the AWS
# CLI and moto_server (scripts/setup.sh installs them). Exits non-zero on any failure.
set -euo pipefail
cd "$(dirname "$0")/../.."

STARTUP_TIMEOUT=${STARTUP_TIMEOUT:-60}   # seconds for moto and the watch server to listen
INVOKE_TIMEOUT=${INVOKE_TIMEOUT:-900}    # seconds for an invoke (the first one compiles)
FIXTURE=trigger-lambda/tests/fixtures/several_records.json

log() { echo "cargo_lambda.sh: $*" >&2; }
fail() {
    log "FAILED: $*"
    exit 1
}
for tool in cargo-lambda aws python3 curl; do
    command -v "$tool" >/dev/null || fail "$tool is not on PATH: run scripts/setup.sh"
done

work=$(mktemp -d)
pids=()
cleanup() {
    local status=$?
    for pid in "${pids[@]}"; do
        # Each background job runs in its own process group (setsid): end the whole group.
        kill -TERM -- "-$pid" 2>/dev/null || true
    done
    for pid in "${pids[@]}"; do
        wait "$pid" 2>/dev/null || true
    done
    if [ "$status" -ne 0 ]; then
        for f in "$work"/*.log; do
            [ -f "$f" ] || continue
            log "--- last lines of $(basename "$f")"
            tail -n 40 "$f" >&2
        done
    fi
    rm -rf "$work"
    exit "$status"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

free_port() {
    python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

wait_for_port() { # port, what, pid
    local deadline=$((SECONDS + STARTUP_TIMEOUT))
    until (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; do
        kill -0 "$3" 2>/dev/null || fail "$2 exited before listening on port $1"
        [ "$SECONDS" -lt "$deadline" ] || fail "$2 did not listen on port $1 within ${STARTUP_TIMEOUT}s"
        sleep 0.2
    done
}

export AWS_ACCESS_KEY_ID=${AWS_ACCESS_KEY_ID:-testing}
export AWS_SECRET_ACCESS_KEY=${AWS_SECRET_ACCESS_KEY:-testing}
export AWS_REGION=${AWS_REGION:-us-east-1}
export AWS_DEFAULT_REGION=$AWS_REGION
export AWS_EC2_METADATA_DISABLED=true
export AWS_PAGER=""

if [ -z "${AWS_ENDPOINT_URL:-}" ]; then
    command -v moto_server >/dev/null || fail "moto_server is not on PATH: pip install 'moto[server]'"
    moto_port=$(free_port)
    setsid moto_server -H 127.0.0.1 -p "$moto_port" >"$work/moto.log" 2>&1 &
    pids+=($!)
    wait_for_port "$moto_port" moto_server "$!"
    export AWS_ENDPOINT_URL="http://127.0.0.1:$moto_port"
    log "moto_server on $AWS_ENDPOINT_URL"
else
    log "using the server at $AWS_ENDPOINT_URL"
fi
# Batch without docker: jobs are accepted and succeed without running anything.
curl -fsS -X POST -H 'Content-Type: application/json' \
    -d '{"batch":{"use_docker":false}}' "$AWS_ENDPOINT_URL/moto-api/config" >/dev/null \
    || fail "could not switch moto's Batch to its docker-free mode"

awsq() { aws --endpoint-url "$AWS_ENDPOINT_URL" --output text "$@"; }

# --- S3: the bucket and three uploads named by the fixture -------------------------------------
suffix=$(python3 -c 'import uuid; print(uuid.uuid4().hex[:8])')
bucket="farm-lambda-test-$suffix"
awsq s3api create-bucket --bucket "$bucket" >/dev/null
printf 'BLENDER-v304RENDH\0\0\0 a tiny stand-in scene' >"$work/scene.blend"
printf 'hello, not a blend' >"$work/notes.blend"
put() { # key, file, tagging -> prints the ETag without quotes
    awsq s3api put-object --bucket "$bucket" --key "$1" --body "$2" --tagging "$3" \
        --query ETag | tr -d '"'
}
etag_one=$(put a/one.blend "$work/scene.blend" 'frame=3')
etag_two=$(put a/two.blend "$work/scene.blend" 'frame=abc')
etag_three=$(put a/three.blend "$work/notes.blend" 'frame=2')

# The fixture, pointed at this bucket and these objects' ETags.
python3 - "$FIXTURE" "$work/event.json" "$bucket" \
    "a/one.blend=$etag_one" "a/two.blend=$etag_two" "a/three.blend=$etag_three" <<'EOF'
import json, sys
src, dst, bucket, *etags = sys.argv[1:]
etags = dict(e.split("=", 1) for e in etags)
event = json.load(open(src))
for record in event["Records"]:
    record["s3"]["bucket"]["name"] = bucket
    record["s3"]["bucket"]["arn"] = f"arn:aws:s3:::{bucket}"
    key = record["s3"]["object"]["key"]
    if key in etags:
        record["s3"]["object"]["eTag"] = etags[key]
json.dump(event, open(dst, "w"))
EOF

# --- Batch: network, role, compute environment, queue, job definitions ------------------------
vpc=$(awsq ec2 create-vpc --cidr-block 10.0.0.0/16 --query Vpc.VpcId)
subnet=$(awsq ec2 create-subnet --vpc-id "$vpc" --cidr-block 10.0.1.0/24 --query Subnet.SubnetId)
sg=$(awsq ec2 create-security-group --group-name "farm-$suffix" --description farm \
    --vpc-id "$vpc" --query GroupId)
role=$(awsq iam create-role --role-name "farm-batch-$suffix" --query Role.Arn \
    --assume-role-policy-document '{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"Service":["batch.amazonaws.com","ecs-tasks.amazonaws.com"]},"Action":"sts:AssumeRole"}]}')
ce=$(awsq batch create-compute-environment --compute-environment-name "farm-ce-$suffix" \
    --type MANAGED --state ENABLED --service-role "$role" \
    --compute-resources "type=FARGATE,maxvCpus=16,subnets=$subnet,securityGroupIds=$sg" \
    --query computeEnvironmentArn)
queue=$(awsq batch create-job-queue --job-queue-name "farm-queue-$suffix" --priority 1 \
    --state ENABLED --compute-environment-order "order=1,computeEnvironment=$ce" \
    --query jobQueueArn)
definition() { # name, vcpus, memory
    awsq batch register-job-definition --job-definition-name "$1" --type container \
        --platform-capabilities FARGATE --query jobDefinitionArn \
        --container-properties "{\"image\":\"$1:test\",\"executionRoleArn\":\"$role\",\"resourceRequirements\":[{\"type\":\"VCPU\",\"value\":\"$2\"},{\"type\":\"MEMORY\",\"value\":\"$3\"}],\"networkConfiguration\":{\"assignPublicIp\":\"ENABLED\"}}"
}
render_def=$(definition "farm-render-4-2-$suffix" 4 8192)
render45_def=$(definition "farm-render-4-5-$suffix" 4 8192)
zip_def=$(definition "farm-zip-$suffix" 1 2048)
log "bucket $bucket, queue $queue"

# --- cargo lambda watch -----------------------------------------------------------------------
watch_port=$(free_port)
setsid cargo lambda watch -p trigger-lambda --bin trigger-lambda \
    -A 127.0.0.1 -P "$watch_port" --ignore-changes \
    --env-var "JOB_QUEUE_ARN=$queue" \
    --env-var "FARM_RENDER_JOB_DEFINITIONS=4.2=$render_def,4.5=$render45_def" \
    --env-var "FARM_DEFAULT_BLENDER=4.2" \
    --env-var "ZIP_JOB_DEFINITION_ARN=$zip_def" \
    --env-var "FARM_MAX_FRAMES=10000" \
    --env-var "FARM_LOG_FORMAT=json" \
    --env-var "AWS_ENDPOINT_URL=$AWS_ENDPOINT_URL" \
    --env-var "AWS_ACCESS_KEY_ID=$AWS_ACCESS_KEY_ID" \
    --env-var "AWS_SECRET_ACCESS_KEY=$AWS_SECRET_ACCESS_KEY" \
    --env-var "AWS_REGION=$AWS_REGION" \
    --env-var "AWS_EC2_METADATA_DISABLED=true" \
    </dev/null >"$work/watch.log" 2>&1 &
pids+=($!)
wait_for_port "$watch_port" "cargo lambda watch" "$!"
log "cargo lambda watch on 127.0.0.1:$watch_port"

invoke() { # output file
    timeout "$INVOKE_TIMEOUT" cargo lambda invoke trigger-lambda -A 127.0.0.1 -P "$watch_port" \
        --data-file "$work/event.json" --output-format json >"$1" 2>"$work/invoke.log" \
        || fail "cargo lambda invoke failed: $(cat "$work/invoke.log" "$1")"
}

# --- first delivery ---------------------------------------------------------------------------
invoke "$work/first.json"
log "first response: $(cat "$work/first.json")"
python3 - "$work/first.json" >"$work/ids" <<'EOF' || fail "unexpected first response"
import json, sys
response = json.load(open(sys.argv[1]))
outcomes = [r["outcome"] for r in response["records"]]
assert outcomes == ["submitted", "ignored", "ignored", "rejected", "rejected"], outcomes
submitted = response["records"][0]
assert submitted["key"] == "a/one.blend" and submitted["frames"] == "1-3", submitted
assert "frame=abc" in response["records"][3]["message"], response["records"][3]
assert "not a .blend" in response["records"][4]["message"], response["records"][4]
print(submitted["render_job_id"], submitted["zip_job_id"])
EOF
read -r render_id zip_id <"$work/ids"

# The jobs, as Batch sees them.
awsq batch describe-jobs --jobs "$render_id" "$zip_id" --output json >"$work/jobs.json"
python3 - "$work/jobs.json" "$render_id" "$zip_id" "$bucket" "$render_def" <<'EOF' || fail "unexpected jobs"
import json, sys
jobs = {j["jobId"]: j for j in json.load(open(sys.argv[1]))["jobs"]}
render, zip_ = jobs[sys.argv[2]], jobs[sys.argv[3]]
# No blender= tag: the default series' (4.2) render job definition.
assert render["jobDefinition"] == sys.argv[5], render["jobDefinition"]
assert render["arrayProperties"]["size"] == 3, render.get("arrayProperties")
env = {e["name"]: e["value"] for e in render["container"]["environment"]}
assert env["FARM_BUCKET"] == sys.argv[4] and env["FARM_KEY"] == "a/one.blend", env
assert env["FARM_FRAMES"] == "1-3" and env["FARM_CHUNK"] == "1", env
assert [d["jobId"] for d in zip_["dependsOn"]] == [sys.argv[2]], zip_["dependsOn"]
EOF

# The manifests.
manifest() { awsq s3 cp "s3://$bucket/$1/job.json" - 2>/dev/null || fail "no job.json for $1"; }
manifest a/one.blend | grep -q '"status": "submitted"' || fail "a/one.blend/job.json is not submitted"
manifest a/two.blend | grep -q '"status": "rejected"' || fail "a/two.blend/job.json is not rejected"
manifest a/three.blend | grep -q '"status": "rejected"' || fail "a/three.blend/job.json is not rejected"

# --- second delivery of the same event: nothing new -------------------------------------------
invoke "$work/second.json"
python3 - "$work/second.json" <<'EOF' || fail "unexpected second response: $(cat "$work/second.json")"
import json, sys
outcomes = [r["outcome"] for r in json.load(open(sys.argv[1]))["records"]]
assert outcomes == ["duplicate", "ignored", "ignored", "rejected", "rejected"], outcomes
EOF
# moto lists array children on the queue too (AWS does not): count the parents only.
jobs=$(awsq batch list-jobs --job-queue "$queue" --filters "name=JOB_NAME,values=*" --output json \
    | python3 -c 'import json, sys; print(sum(":" not in j["jobId"] for j in json.load(sys.stdin)["jobSummaryList"]))')
[ "$jobs" = 2 ] || fail "expected 2 jobs on the queue after two deliveries, found $jobs"

log "ok: submitted render $render_id (3 children) and zip $zip_id; bad tag and non-.blend rejected; redelivery submitted nothing"
