#!/usr/bin/env bash
# The whole test suite, on a fresh machine with only Node 20 and npm:
# install, build, typecheck, unit tests (cpu and wasm), golden conformance (cpu and wasm),
# the API site with warnings as errors, publint and are-the-types-wrong on every package.
set -euo pipefail
cd "$(dirname "$0")/.."
export TURBO_TELEMETRY_DISABLED=1
source scripts/pnpm.sh

step() { printf '\n=== %s\n' "$*" >&2; }
reports=$(mktemp -d)

step "install"
$PNPM install --frozen-lockfile
step "build"
$PNPM run build
step "typecheck"
$PNPM run typecheck
for backend in cpu wasm; do
  step "unit tests ($backend)"
  VLM_BACKEND=$backend $PNPM exec vitest run --reporter=default --reporter=json --outputFile="$reports/unit-$backend.json"
done
for backend in cpu wasm; do
  step "golden conformance ($backend)"
  node tools/golden/dist/cli.js --backend "$backend" | tee "$reports/golden-$backend.txt"
done
step "API site (typedoc, warnings are errors)"
$PNPM run docs
step "package checks (publint, attw)"
$PNPM run lint:pkg

node scripts/summarize-tests.mjs "$reports"
