#!/usr/bin/env bash
# Deploy the render farm to the AWS account and region of the standard AWS environment
# (AWS_PROFILE, AWS_REGION / AWS_DEFAULT_REGION, or the CLI's configuration).
#
#   infra/deploy.sh [STACK_NAME] [ParameterKey=Value ...]
#
#   infra/deploy.sh                                  # stack "blender-farm", created VPC, Spot first
#   infra/deploy.sh my-farm PreferSpot=false MaxVcpus=128
#   infra/deploy.sh my-farm SubnetIds=subnet-aaa,subnet-bbb SecurityGroupIds=sg-ccc
#
# Needs: aws (v1 or v2), cargo + cargo-lambda (and zig, which cargo-lambda uses), x86_64 Linux
# with glibc <= 2.36 for the image binaries (ADR 0104), and buildah, podman or docker (BuildKit).
# Before anything is built, infra/preflight.sh checks the stack name (bucket and ECR naming
# rules) and the account's Fargate vCPU quotas against MaxVcpus (refused when given above the
# quota of the compute environment Batch fills first; the default is lowered to it).
# Environment:
#   FARM_ARTIFACTS_BUCKET  bucket for the Lambda zip and the template (default
#                          farm-artifacts-<account>-<region>)
#   FARM_IMAGE_ENGINE      buildah | podman | docker (default: the first of these installed)
#
# Order of work, which also works from a fresh account:
#   1. build the Lambda zip and upload it under a content-hash key to the artifacts bucket;
#   2. a new stack is created first (it creates the ECR repositories; its job definitions name
#      image tags that are pushed right after, before any upload can start a job), then the
#      images are built and pushed;
#      an existing stack gets its images pushed first and is updated after, so the job
#      definitions never name an image that is not there yet.
# Image tags are content hashes of the sources and the Dockerfile, so the ECR repositories can
# keep tags immutable and an unchanged image is not rebuilt.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"

STACK="${1:-blender-farm}"
if [[ $# -gt 0 ]]; then shift; fi
EXTRA_PARAMETERS=("$@")

TEMPLATE=infra/farm.yaml
LAMBDA_ZIP=target/lambda/trigger-lambda/bootstrap.zip

log() { printf '==> %s\n' "$*" >&2; }
die() {
  printf 'deploy.sh: %s\n' "$*" >&2
  exit 1
}
need() { command -v "$1" >/dev/null 2>&1 || die "$1 is required ($2)"; }

# The stack name makes the bucket and repository names: refused here if S3 or ECR would.
infra/preflight.sh names "$STACK"

need aws "https://aws.amazon.com/cli/"
need cargo "https://rustup.rs"
need cargo-lambda "pip install cargo-lambda, or see https://www.cargo-lambda.info"
need sha256sum "coreutils"
ENGINE="${FARM_IMAGE_ENGINE:-}"
if [[ -z "$ENGINE" ]]; then
  for candidate in buildah podman docker; do
    if command -v "$candidate" >/dev/null 2>&1; then
      ENGINE="$candidate"
      break
    fi
  done
fi
[[ -n "$ENGINE" ]] || die "buildah, podman or docker is required to build the images"
export FARM_IMAGE_ENGINE="$ENGINE"

REGION="${AWS_REGION:-${AWS_DEFAULT_REGION:-$(aws configure get region 2>/dev/null || true)}}"
[[ -n "$REGION" ]] || die "no region: set AWS_REGION (or AWS_DEFAULT_REGION, or aws configure)"
export AWS_REGION="$REGION" AWS_DEFAULT_REGION="$REGION"
ACCOUNT="$(aws sts get-caller-identity --query Account --output text)" ||
  die "no AWS credentials (aws sts get-caller-identity failed)"
log "account $ACCOUNT, region $REGION, stack $STACK"

stack_status() {
  aws cloudformation describe-stacks --stack-name "$STACK" \
    --query 'Stacks[0].StackStatus' --output text 2>/dev/null || echo NONE
}
stack_output() {
  local value
  value="$(aws cloudformation describe-stacks --stack-name "$STACK" \
    --query "Stacks[0].Outputs[?OutputKey=='$1'].OutputValue" --output text)"
  [[ "$value" == None ]] && value=""
  printf '%s' "$value"
}
repository_uri() {
  aws ecr describe-repositories --repository-names "$STACK/$1" \
    --query 'repositories[0].repositoryUri' --output text
}

# The account's Fargate vCPU quotas against MaxVcpus: refused, or MaxVcpus lowered to them.
QUOTA_PARAMETERS="$(infra/preflight.sh quotas "$STACK" ${EXTRA_PARAMETERS[@]+"${EXTRA_PARAMETERS[@]}"})"

STATUS="$(stack_status)"
case "$STATUS" in
  NONE | CREATE_COMPLETE | UPDATE_COMPLETE | UPDATE_ROLLBACK_COMPLETE | IMPORT_COMPLETE) ;;
  ROLLBACK_COMPLETE | ROLLBACK_FAILED | DELETE_FAILED)
    die "stack $STACK is $STATUS: run infra/teardown.sh $STACK, then deploy again" ;;
  *) die "stack $STACK is $STATUS: wait until it settles" ;;
esac

# ---------------------------------------------------------------- 1. Lambda artifact
ARTIFACTS="${FARM_ARTIFACTS_BUCKET:-farm-artifacts-$ACCOUNT-$REGION}"
# Every call on the artifacts bucket names its owner: a bucket of that name in another account
# (squatted, or left over) is refused instead of receiving or serving the Lambda's code.
# (CreateBucket has no such parameter; it fails if the name is taken.)
OWNER=(--expected-bucket-owner "$ACCOUNT")
if ! aws s3api head-bucket --bucket "$ARTIFACTS" "${OWNER[@]}" >/dev/null 2>&1; then
  log "creating artifacts bucket $ARTIFACTS"
  if [[ "$REGION" == us-east-1 ]]; then
    aws s3api create-bucket --bucket "$ARTIFACTS" >/dev/null
  else
    aws s3api create-bucket --bucket "$ARTIFACTS" \
      --create-bucket-configuration "LocationConstraint=$REGION" >/dev/null
  fi
  aws s3api put-public-access-block --bucket "$ARTIFACTS" "${OWNER[@]}" --public-access-block-configuration \
    BlockPublicAcls=true,IgnorePublicAcls=true,BlockPublicPolicy=true,RestrictPublicBuckets=true
  aws s3api put-bucket-encryption --bucket "$ARTIFACTS" "${OWNER[@]}" --server-side-encryption-configuration \
    '{"Rules":[{"ApplyServerSideEncryptionByDefault":{"SSEAlgorithm":"AES256"}}]}'
fi

log "building the trigger Lambda (cargo lambda build --release --output-format zip)"
cargo lambda build --release --output-format zip -p trigger-lambda
[[ -f "$LAMBDA_ZIP" ]] || die "$LAMBDA_ZIP was not built"
LAMBDA_HASH="$(sha256sum "$LAMBDA_ZIP" | cut -c1-32)"
LAMBDA_KEY="trigger-lambda/$LAMBDA_HASH.zip"
if aws s3api head-object --bucket "$ARTIFACTS" "${OWNER[@]}" --key "$LAMBDA_KEY" >/dev/null 2>&1; then
  log "s3://$ARTIFACTS/$LAMBDA_KEY already uploaded"
else
  log "uploading s3://$ARTIFACTS/$LAMBDA_KEY"
  aws s3api put-object --bucket "$ARTIFACTS" "${OWNER[@]}" --key "$LAMBDA_KEY" --body "$LAMBDA_ZIP" >/dev/null
fi

# ---------------------------------------------------------------- image tags
# Hash of everything the image build reads: the workspace's tracked and untracked (not ignored)
# files outside infra/ and the docs, plus the image's Dockerfile and build arguments.
source_hash() {
  local dockerfile="$1"
  shift
  {
    if git rev-parse --is-inside-work-tree >/dev/null 2>&1; then
      git ls-files -z --cached --others --exclude-standard -- . \
        ':!:infra/' ':!:decision-docs/' ':!:*.md' ':!:Dockerfile.*'
    else
      find . -path ./target -prune -o -path ./.git -prune -o -path ./infra -prune -o \
        -path ./decision-docs -prune -o -type f ! -name '*.md' ! -name 'Dockerfile.*' -print0
    fi | sort -z |
      while IFS= read -r -d '' file; do
        if [[ -f "$file" ]]; then sha256sum -- "$file"; fi
      done
    sha256sum "$dockerfile"
    printf '%s\n' "$@"
  } | sha256sum | cut -c1-24
}
# One renderer image per Blender series the template runs (its DefaultBlender values but auto),
# each from its own hash-locked bpy (infra/bpy/<series>.txt, build argument BLENDER_SERIES; the
# Debian base follows from the series, see infra/images.sh).
SERIES=(4.2 4.5 5.0 5.3)
declare -A RENDERER_TAGS=()
for series in "${SERIES[@]}"; do
  [[ -f "infra/bpy/$series.txt" ]] || die "infra/bpy/$series.txt is missing (the bpy lock of Blender $series)"
  RENDERER_TAGS[$series]="r$series-$(source_hash Dockerfile.renderer "BLENDER_SERIES=$series" "$(cat "infra/bpy/$series.txt")")"
done
ZIPPER_TAG="z-$(source_hash Dockerfile.zipper)"
log "image tags: renderer ${RENDERER_TAGS[*]}, zipper $ZIPPER_TAG"

# ---------------------------------------------------------------- stack and images
PARAMETERS=(
  "LambdaCodeBucket=$ARTIFACTS"
  "LambdaCodeKey=$LAMBDA_KEY"
  "Renderer42ImageTag=${RENDERER_TAGS[4.2]}"
  "Renderer45ImageTag=${RENDERER_TAGS[4.5]}"
  "Renderer50ImageTag=${RENDERER_TAGS[5.0]}"
  "Renderer53ImageTag=${RENDERER_TAGS[5.3]}"
  "ZipperImageTag=$ZIPPER_TAG"
  ${EXTRA_PARAMETERS[@]+"${EXTRA_PARAMETERS[@]}"}
)
if [[ -n "$QUOTA_PARAMETERS" ]]; then
  PARAMETERS+=("$QUOTA_PARAMETERS")
fi

# The template is larger than the 51,200 bytes CloudFormation takes inline: `deploy` uploads
# it to the artifacts bucket (named by content) and passes its URL (up to 1 MB).
deploy_stack() {
  log "aws cloudformation deploy --stack-name $STACK (template through s3://$ARTIFACTS/cloudformation/)"
  aws cloudformation deploy \
    --stack-name "$STACK" \
    --template-file "$TEMPLATE" \
    --s3-bucket "$ARTIFACTS" \
    --s3-prefix cloudformation \
    --capabilities CAPABILITY_NAMED_IAM \
    --no-fail-on-empty-changeset \
    --parameter-overrides "${PARAMETERS[@]}"
}

push_image() {
  local local_name="$1" uri="$2" tag="$3"
  local repo="${uri#*/}"
  if aws ecr describe-images --repository-name "$repo" --image-ids "imageTag=$tag" >/dev/null 2>&1; then
    log "$uri:$tag already in ECR"
    return
  fi
  "$ENGINE" tag "$local_name" "$uri:$tag"
  log "$ENGINE push $uri:$tag"
  "$ENGINE" push "$uri:$tag"
}

push_images() {
  local renderer_uri zipper_uri registry
  renderer_uri="$(repository_uri renderer)" || die "no ECR repository $STACK/renderer"
  zipper_uri="$(repository_uri zipper)" || die "no ECR repository $STACK/zipper"
  registry="${renderer_uri%%/*}"
  log "$ENGINE login $registry"
  aws ecr get-login-password | "$ENGINE" login --username AWS --password-stdin "$registry"
  # The same Dockerfiles and build as CI's image test, base images pulled from their registry:
  # localhost/farm-renderer:dev is Blender 4.2 (the Dockerfile's default), :dev-<series> the others.
  infra/images.sh build --pull --blender 4.5 --blender 5.0 --blender 5.3
  push_image localhost/farm-renderer:dev "$renderer_uri" "${RENDERER_TAGS[4.2]}"
  for series in 4.5 5.0 5.3; do
    push_image "localhost/farm-renderer:dev-$series" "$renderer_uri" "${RENDERER_TAGS[$series]}"
  done
  push_image localhost/farm-zipper:dev "$zipper_uri" "$ZIPPER_TAG"
}

if [[ "$STATUS" == NONE ]]; then
  deploy_stack
  push_images
else
  push_images
  deploy_stack
fi

# ---------------------------------------------------------------- how to use it
BUCKET="$(stack_output BucketName)"
BUCKET="${BUCKET:-$STACK-$ACCOUNT-$REGION}"
QUEUE="$(stack_output JobQueueArn)"
QUEUE="${QUEUE:-$STACK-queue}"
cat <<EOF

The farm is deployed (stack $STACK, region $REGION).
  bucket:     $BUCKET
  job queue:  $QUEUE

Render frames 1 to 24 of scene.blend, 4 frames per Batch task (6 tasks):

  aws s3api put-object --bucket $BUCKET --key scene.blend --body scene.blend --tagging 'frames=1-24&chunk=4'

(the tag frame=N alone means frames 1 to N, one task per frame; the Blender series is the
file's own, DefaultBlender=auto: add blender=4.5 to render with Blender 4.5 LTS instead). Follow it in the AWS Batch
console (queue ${QUEUE##*/}) or with

  farm status scene.blend --bucket $BUCKET

The frames land in s3://$BUCKET/scene.blend/frames/ and the archive in
s3://$BUCKET/scene.blend/frames.zip.
EOF
