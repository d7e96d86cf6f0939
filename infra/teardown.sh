#!/usr/bin/env bash
# Remove a deployed render farm: stops its jobs, empties its bucket (every object version and
# delete marker, and unfinished multipart uploads), deletes its images, then deletes the stack,
# and last the Lambda zip (and the templates, cloudformation/) deploy.sh uploaded for it to the artifacts bucket
# (farm-artifacts-<account>-<region>, or the stack's LambdaCodeBucket). Another stack deploying
# from the same bucket keeps its zips and the bucket; otherwise the emptied bucket is deleted.
# Uses the standard AWS environment (AWS_PROFILE, AWS_REGION / AWS_DEFAULT_REGION).
#
#   infra/teardown.sh [STACK_NAME]      # default blender-farm
set -euo pipefail

STACK="${1:-blender-farm}"

log() { printf '==> %s\n' "$*" >&2; }
die() {
  printf 'teardown.sh: %s\n' "$*" >&2
  exit 1
}
command -v aws >/dev/null 2>&1 || die "aws is required"

REGION="${AWS_REGION:-${AWS_DEFAULT_REGION:-$(aws configure get region 2>/dev/null || true)}}"
[[ -n "$REGION" ]] || die "no region: set AWS_REGION (or AWS_DEFAULT_REGION, or aws configure)"
export AWS_REGION="$REGION" AWS_DEFAULT_REGION="$REGION"
ACCOUNT="$(aws sts get-caller-identity --query Account --output text)" ||
  die "no AWS credentials (aws sts get-caller-identity failed)"

if ! aws cloudformation describe-stacks --stack-name "$STACK" >/dev/null 2>&1; then
  die "no stack $STACK in $ACCOUNT/$REGION"
fi
log "tearing down stack $STACK in $ACCOUNT/$REGION"

stack_output() {
  local value
  value="$(aws cloudformation describe-stacks --stack-name "$STACK" \
    --query "Stacks[0].Outputs[?OutputKey=='$1'].OutputValue" --output text 2>/dev/null || true)"
  [[ "$value" == None ]] && value=""
  printf '%s' "$value"
}
# The names the template gives, when the stack has no outputs (a creation that failed early).
BUCKET="$(stack_output BucketName)"
BUCKET="${BUCKET:-$STACK-$ACCOUNT-$REGION}"
stack_parameter() {
  local value
  value="$(aws cloudformation describe-stacks --stack-name "$STACK" \
    --query "Stacks[0].Parameters[?ParameterKey=='$1'].ParameterValue" --output text 2>/dev/null || true)"
  [[ "$value" == None ]] && value=""
  printf '%s' "$value"
}
ARTIFACTS="$(stack_parameter LambdaCodeBucket)"
LAMBDA_KEY="$(stack_parameter LambdaCodeKey)"
QUEUE="$(stack_output JobQueueArn)"
if [[ -z "$QUEUE" ]] &&
  [[ "$(aws batch describe-job-queues --job-queues "$STACK-queue" \
    --query 'length(jobQueues)' --output text 2>/dev/null || echo 0)" != 0 ]]; then
  QUEUE="$STACK-queue"
fi

# ---------------------------------------------------------------- stop jobs
if [[ -n "$QUEUE" ]]; then
  log "terminating the jobs of $QUEUE"
  for status in SUBMITTED PENDING RUNNABLE STARTING RUNNING; do
    for job in $(aws batch list-jobs --job-queue "$QUEUE" --job-status "$status" \
      --query 'jobSummaryList[].jobId' --output text); do
      [[ "$job" == None ]] && continue
      aws batch terminate-job --job-id "$job" --reason "infra/teardown.sh" >/dev/null || true
    done
  done
fi

# ---------------------------------------------------------------- empty the bucket
empty_bucket() {
  local bucket="$1" batch
  aws s3api head-bucket --bucket "$bucket" >/dev/null 2>&1 || return 0
  log "emptying s3://$bucket (all versions and delete markers)"
  for kind in Versions DeleteMarkers; do
    while :; do
      batch="$(aws s3api list-object-versions --bucket "$bucket" --max-items 1000 --output json \
        --query "{Objects: ${kind}[].{Key: Key, VersionId: VersionId}, Quiet: \`true\`}")"
      if [[ -z "$batch" ]] || printf '%s' "$batch" | grep -q '"Objects": null'; then
        break
      fi
      aws s3api delete-objects --bucket "$bucket" --delete "$batch" >/dev/null
    done
  done
  aws s3api list-multipart-uploads --bucket "$bucket" \
    --query 'Uploads[].[Key, UploadId]' --output text |
    while IFS=$'\t' read -r key upload; do
      [[ -z "$key" || "$key" == None ]] && continue
      aws s3api abort-multipart-upload --bucket "$bucket" --key "$key" --upload-id "$upload" || true
    done
}
empty_bucket "$BUCKET"

# ---------------------------------------------------------------- delete the images
for repo in "$STACK/renderer" "$STACK/zipper"; do
  aws ecr describe-repositories --repository-names "$repo" >/dev/null 2>&1 || continue
  log "deleting the images of $repo"
  while :; do
    ids="$(aws ecr list-images --repository-name "$repo" --max-items 100 \
      --query 'imageIds[].imageDigest' --output text 2>/dev/null || true)"
    [[ -z "$ids" || "$ids" == None ]] && break
    args=()
    for digest in $ids; do args+=("imageDigest=$digest"); done
    aws ecr batch-delete-image --repository-name "$repo" --image-ids "${args[@]}" >/dev/null
  done
done

# ---------------------------------------------------------------- delete the stack
log "deleting stack $STACK"
aws cloudformation delete-stack --stack-name "$STACK"
if ! aws cloudformation wait stack-delete-complete --stack-name "$STACK"; then
  # A job that was still writing may have left objects behind: empty again, retry once.
  log "stack deletion did not finish; emptying the bucket again and retrying"
  empty_bucket "$BUCKET"
  aws cloudformation delete-stack --stack-name "$STACK"
  aws cloudformation wait stack-delete-complete --stack-name "$STACK"
fi
log "stack $STACK deleted"

# ---------------------------------------------------------------- the Lambda artifact
# Every remaining stack's Lambda code location, one "bucket<TAB>key" line each; when the stacks
# cannot be listed, the artifacts are kept.
if ! CODE="$(aws cloudformation describe-stacks --output text --query \
  "Stacks[].[Parameters[?ParameterKey=='LambdaCodeBucket'].ParameterValue | [0], Parameters[?ParameterKey=='LambdaCodeKey'].ParameterValue | [0]]")"; then
  log "cannot list the remaining stacks: keeping s3://$ARTIFACTS"
  ARTIFACTS=""
fi
if [[ -n "$ARTIFACTS" ]] && aws s3api head-bucket --bucket "$ARTIFACTS" >/dev/null 2>&1; then
  USED="$(printf '%s\n' "$CODE" | awk -F'\t' -v b="$ARTIFACTS" '$1 == b { print $2 }')"
  if [[ -n "$USED" ]]; then
    # Shared: only this stack's zip goes, unless another stack runs the same one.
    if [[ -n "$LAMBDA_KEY" ]] && ! grep -qxF -- "$LAMBDA_KEY" <<<"$USED"; then
      log "deleting s3://$ARTIFACTS/$LAMBDA_KEY"
      aws s3api delete-object --bucket "$ARTIFACTS" --key "$LAMBDA_KEY" >/dev/null
    fi
    log "keeping s3://$ARTIFACTS: other stacks deploy from it"
  else
    log "deleting the Lambda zips and templates deploy.sh uploaded to s3://$ARTIFACTS/"
    aws s3 rm "s3://$ARTIFACTS/trigger-lambda/" --recursive --only-show-errors
    aws s3 rm "s3://$ARTIFACTS/cloudformation/" --recursive --only-show-errors
    # shellcheck disable=SC2016 # a JMESPath literal, not a shell expansion
    if [[ "$(aws s3api list-objects-v2 --bucket "$ARTIFACTS" --max-items 1 \
      --query 'length(Contents || `[]`)' --output text)" != 0 ]]; then
      log "keeping s3://$ARTIFACTS: it holds objects deploy.sh did not put there"
    else
      empty_bucket "$ARTIFACTS"
      log "deleting the artifacts bucket $ARTIFACTS"
      aws s3api delete-bucket --bucket "$ARTIFACTS"
    fi
  fi
fi
