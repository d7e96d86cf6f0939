#!/usr/bin/env bash
# Real-account smoke test: what moto cannot check. Deploys a stack of its own, renders the
# example scene through the upload path (farm submit -> S3 event -> trigger -> Batch -> zip
# job), checks that frames.zip holds every frame, tears the stack down (also when a step fails)
# and prints what the job cost (its receipt.json).
#
#   FARM_SMOKE_ACCEPT_COSTS=1 infra/smoke.sh
#
# It costs money (a few cents of Fargate and S3, and whatever the images' build and push cost)
# and takes some minutes, hence the explicit opt-in. It never runs in CI or scripts/test.sh.
# Uses the standard AWS environment (AWS_PROFILE, AWS_REGION); needs what deploy.sh needs, plus
# Blender (to make examples/bounce.blend), jq, and the `farm` binary (FARM, default: built here).
# Environment:
#   FARM_SMOKE_STACK   stack name (default farm-smoke-<random>); it is deleted at the end
#   FARM_SMOKE_FRAMES  frames to render (default 1-4), two per task
#   FARM_SMOKE_WAIT    seconds to wait for frames.zip (default 1800)
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"

die() {
  printf 'smoke.sh: %s\n' "$*" >&2
  exit 1
}
log() { printf '==> %s\n' "$*" >&2; }

[[ "${FARM_SMOKE_ACCEPT_COSTS:-}" == 1 ]] ||
  die "this deploys to a real AWS account and costs money: run with FARM_SMOKE_ACCEPT_COSTS=1"
command -v aws >/dev/null 2>&1 || die "aws is required (https://aws.amazon.com/cli/)"
ACCOUNT="$(aws sts get-caller-identity --query Account --output text 2>/dev/null)" ||
  die "no AWS credentials (aws sts get-caller-identity failed): nothing to smoke-test against"
[[ -z "${AWS_ENDPOINT_URL:-}" ]] || die "AWS_ENDPOINT_URL is set ($AWS_ENDPOINT_URL): this test is for a real account"

STACK="${FARM_SMOKE_STACK:-farm-smoke-$(od -An -N4 -tx1 /dev/urandom | tr -d ' \n')}"
FRAMES="${FARM_SMOKE_FRAMES:-1-4}"
WAIT="${FARM_SMOKE_WAIT:-1800}"
WORK="$(mktemp -d)"
DEPLOYED=false

cleanup() {
  local rc=$?
  if [[ "$DEPLOYED" == true ]]; then
    log "tearing down $STACK"
    infra/teardown.sh "$STACK" || rc=1
  fi
  rm -rf "$WORK"
  if ((rc == 0)); then echo "smoke.sh: passed"; else echo "smoke.sh: FAILED" >&2; fi
  exit "$rc"
}
trap cleanup EXIT

FARM="${FARM:-}"
if [[ -z "$FARM" ]]; then
  log "building farm"
  cargo build --release -p farm-cli
  FARM="${CARGO_TARGET_DIR:-target}/release/farm"
fi
BLEND="$WORK/bounce.blend"
blender -b --factory-startup --python examples/make_example.py -- "$BLEND" >"$WORK/blender.log" 2>&1 ||
  die "could not make the example scene (see Blender's output: $WORK/blender.log)"

log "deploying $STACK in account $ACCOUNT (MaxVcpus=4, on-demand first)"
DEPLOYED=true
infra/deploy.sh "$STACK" MaxVcpus=4 PreferSpot=false
REGION="${AWS_REGION:-${AWS_DEFAULT_REGION:-$(aws configure get region)}}"
BUCKET="$STACK-$ACCOUNT-$REGION"
KEY="smoke/bounce.blend"

log "farm submit $KEY --frames $FRAMES"
"$FARM" submit "$BLEND" --bucket "$BUCKET" --key "$KEY" --frames "$FRAMES" --chunk 2

deadline=$((SECONDS + WAIT))
while true; do
  status="$("$FARM" status "$KEY" --bucket "$BUCKET" --json 2>/dev/null || true)"
  if [[ "$(jq -r '.complete // false' <<<"$status" 2>/dev/null)" == true ]]; then
    break
  fi
  if [[ "$(jq -r '.zip_job.state // ""' <<<"$status" 2>/dev/null)" == FAILED ]]; then
    "$FARM" status "$KEY" --bucket "$BUCKET" >&2 || true
    die "the zip job FAILED"
  fi
  ((SECONDS < deadline)) || die "no frames.zip after ${WAIT}s: $("$FARM" status "$KEY" --bucket "$BUCKET" 2>&1 || true)"
  sleep 20
done

"$FARM" download "$KEY" --bucket "$BUCKET" --unpack --out "$WORK/out"
want="$(jq -r '.frames.total' <<<"$status")"
got="$(find "$WORK/out" -name '*.png' | wc -l)"
[[ "$got" == "$want" ]] || die "frames.zip held $got frames, expected $want"
log "frames.zip holds all $got frames"
"$FARM" report "$KEY" --bucket "$BUCKET"
