#!/usr/bin/env bash
# The quick-start demo, on a fresh machine with only Node 20 and npm: installs, builds, runs.
set -euo pipefail
cd "$(dirname "$0")/.."
export TURBO_TELEMETRY_DISABLED=1
source scripts/pnpm.sh
$PNPM install --frozen-lockfile >&2
$PNPM run build >&2
$PNPM --filter @vlm/demo start -- "$@"
