#!/usr/bin/env bash
# The browser page (apps/web), on a fresh machine with only Node 20 and npm: installs, builds
# the packages and the page for production, then serves it on http://127.0.0.1:5173
# (`npm run web -- --port N` for another port; `--host H` to listen elsewhere).
set -euo pipefail
cd "$(dirname "$0")/.."
export TURBO_TELEMETRY_DISABLED=1
source scripts/pnpm.sh
$PNPM install --frozen-lockfile >&2
$PNPM exec turbo run build --filter=@vlm/web... >&2
exec node apps/web/serve.mjs "$@"
