#!/usr/bin/env bash
# Checks deploy.sh makes before it builds or creates anything: what AWS would refuse later.
#
#   infra/preflight.sh names STACK
#       The stack name, and the names built from it: the bucket <stack>-<account>-<region>
#       (S3's bucket naming rules) and the ECR repositories <stack>/renderer, <stack>/zipper.
#   infra/preflight.sh quotas STACK [ParameterKey=Value ...]
#       The account's Fargate vCPU quotas (Service Quotas) against MaxVcpus. Batch fills the
#       first compute environment of the queue (Spot with PreferSpot=true) up to MaxVcpus before
#       it uses the second, so a MaxVcpus above the first one's quota leaves jobs RUNNABLE and
#       chunk=auto planning for task slots the account cannot run. Refuses a MaxVcpus given
#       above that quota; lowers the default (or the stack's current value) to it, printing the
#       override (MaxVcpus=N) on stdout for deploy.sh to pass; warns when the second compute
#       environment's quota is lower still. Uses the standard AWS environment (region, profile).
#
# Exits 1 with the reason on stderr when AWS would refuse the deployment.
set -euo pipefail

# Service Quotas codes (service code "fargate").
SPOT_QUOTA=L-36FBB829      # Fargate Spot vCPU resource count
ON_DEMAND_QUOTA=L-3032A538 # Fargate On-Demand vCPU resource count
TASK_VCPUS=4               # one render task (RenderJobDefinition*)
DEFAULT_MAX_VCPUS=64       # farm.yaml's MaxVcpus default
DEFAULT_PREFER_SPOT=true   # farm.yaml's PreferSpot default

die() {
  printf 'deploy.sh: %s\n' "$*" >&2
  exit 1
}
warn() { printf 'deploy.sh: warning: %s\n' "$*" >&2; }
log() { printf '==> %s\n' "$*" >&2; }

check_names() {
  local stack="$1"
  # The bucket <stack>-<account>-<region> has at most 63 characters: 35 for the stack.
  [[ "$stack" =~ ^[a-z][a-z0-9-]{0,33}[a-z0-9]$ ]] ||
    die "stack name '$stack': use 2-35 lowercase letters, digits and dashes, starting with a letter (it starts the bucket name)"
  # S3 reserves these bucket name prefixes; ECR repository names cannot hold "--".
  case "$stack" in
    xn--* | sthree-* | amzn-s3-demo-*)
      die "stack name '$stack': S3 refuses bucket names starting with xn--, sthree- or amzn-s3-demo- (the bucket is named $stack-<account>-<region>)" ;;
    *--*)
      die "stack name '$stack': no two dashes in a row (ECR refuses the repository name $stack/renderer)" ;;
  esac
}

# The value of parameter $1 among the Key=Value arguments after it, if given.
given() {
  local name="$1" arg
  shift
  for arg in "$@"; do
    if [[ "$arg" == "$name="* ]]; then
      printf '%s' "${arg#*=}"
      return 0
    fi
  done
  return 1
}

# The deployed stack's current value of parameter $2, if the stack exists.
current() {
  local value
  value="$(aws cloudformation describe-stacks --stack-name "$1" \
    --query "Stacks[0].Parameters[?ParameterKey=='$2'].ParameterValue" --output text 2>/dev/null)" || return 1
  [[ -n "$value" && "$value" != None ]] || return 1
  printf '%s' "$value"
}

# The applied value of quota $1 as a whole number of vCPUs, or nothing if it cannot be read.
quota() {
  local value
  value="$(aws service-quotas get-service-quota --service-code fargate --quota-code "$1" \
    --query Quota.Value --output text 2>/dev/null)" || return 1
  [[ "$value" =~ ^[0-9]+(\.[0-9]+)?$ ]] || return 1
  printf '%s' "${value%%.*}"
}

quota_name() {
  if [[ "$1" == "$SPOT_QUOTA" ]]; then
    echo "Fargate Spot vCPU resource count ($SPOT_QUOTA)"
  else
    echo "Fargate On-Demand vCPU resource count ($ON_DEMAND_QUOTA)"
  fi
}

raise_hint() {
  printf 'raise it in the Service Quotas console or with: aws service-quotas request-service-quota-increase --service-code fargate --quota-code %s --desired-value %s' "$1" "$2"
}

check_quotas() {
  local stack="$1"
  shift
  local max_vcpus prefer_spot explicit=false first second first_quota second_quota usable
  if max_vcpus="$(given MaxVcpus "$@")"; then
    explicit=true
  else
    max_vcpus="$(current "$stack" MaxVcpus || echo "$DEFAULT_MAX_VCPUS")"
  fi
  prefer_spot="$(given PreferSpot "$@" || current "$stack" PreferSpot || echo "$DEFAULT_PREFER_SPOT")"
  [[ "$max_vcpus" =~ ^[0-9]+$ ]] || die "MaxVcpus=$max_vcpus is not a whole number of vCPUs"
  if [[ "$prefer_spot" == true ]]; then
    first="$SPOT_QUOTA" second="$ON_DEMAND_QUOTA"
  else
    first="$ON_DEMAND_QUOTA" second="$SPOT_QUOTA"
  fi
  if ! first_quota="$(quota "$first")"; then
    warn "could not read the quota $(quota_name "$first") (Service Quotas, servicequotas:GetServiceQuota): MaxVcpus=$max_vcpus is not checked; jobs stay RUNNABLE if it is above the quota"
    return 0
  fi
  log "quota $(quota_name "$first"): $first_quota vCPUs; MaxVcpus $max_vcpus"
  usable=$((first_quota / TASK_VCPUS * TASK_VCPUS))
  if ((usable < TASK_VCPUS)); then
    die "the account's quota $(quota_name "$first") is $first_quota vCPUs: not one render task ($TASK_VCPUS vCPUs) can run; $(raise_hint "$first" "$max_vcpus")"
  fi
  if ((max_vcpus > first_quota)); then
    if [[ "$explicit" == true ]]; then
      die "MaxVcpus=$max_vcpus is above the account's quota $(quota_name "$first") of $first_quota vCPUs: Batch fills that compute environment first, so jobs would wait RUNNABLE and chunk=auto would plan for task slots that cannot run. Deploy with MaxVcpus=$usable, or $(raise_hint "$first" "$max_vcpus")"
    fi
    warn "MaxVcpus lowered from $max_vcpus to $usable, the account's quota $(quota_name "$first") (rounded to whole render tasks); chunk=auto plans $((usable / TASK_VCPUS)) task slots. To run more, $(raise_hint "$first" "$max_vcpus")"
    echo "MaxVcpus=$usable"
    max_vcpus="$usable"
  fi
  if second_quota="$(quota "$second")" && ((max_vcpus > second_quota)); then
    warn "the account's quota $(quota_name "$second") is $second_quota vCPUs, below MaxVcpus=$max_vcpus: the second compute environment, used once the first is full, runs at most $((second_quota / TASK_VCPUS)) render tasks; $(raise_hint "$second" "$max_vcpus")"
  fi
}

case "${1:-}" in
  names)
    [[ $# -eq 2 ]] || die "usage: infra/preflight.sh names STACK"
    check_names "$2" ;;
  quotas)
    [[ $# -ge 2 ]] || die "usage: infra/preflight.sh quotas STACK [ParameterKey=Value ...]"
    shift
    check_quotas "$@" ;;
  *) die "usage: infra/preflight.sh names STACK | quotas STACK [ParameterKey=Value ...]" ;;
esac
