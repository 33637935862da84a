#!/usr/bin/env bash
# The whole test suite, on a fresh machine with only Node 20 and npm:
# install (which compiles @vlm/native-matmul's addon), build, typecheck, unit tests (cpu, wasm,
# and wasm with the native matMul), golden conformance (cpu, wasm, wasm + native), the
# benchmark at quick size (wasm, wasm + native),
# @vlm/core on webgpu/webgl/wasm/cpu in headless Chromium (installed with apt when missing),
# the web page (apps/web) in Chromium on webgpu/webgl/wasm,
# the consumer test (tools/consumer-test: every package packed, installed with npm in fresh
# projects, typechecked, run from ESM and CJS, bundled with esbuild and Vite and run in Chromium),
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
step "unit tests (wasm, native matMul)"
VLM_BACKEND=wasm VLM_NATIVE=1 $PNPM exec vitest run --reporter=default --reporter=json --outputFile="$reports/unit-wasm-native.json"
for backend in cpu wasm; do
  step "golden conformance ($backend)"
  node tools/golden/dist/cli.js --backend "$backend" | tee "$reports/golden-$backend.txt"
done
step "golden conformance (wasm, native matMul)"
node tools/golden/dist/cli.js --backend wasm --native | tee "$reports/golden-wasm-native.txt"
step "benchmark smoke test (quick shapes, wasm: every configuration runs and leaks no tensor)"
# JSON lines to bench.jsonl (skipped by summarize-tests); the 'N passed, M failed' line is on stderr.
{ node tools/bench/dist/cli.js --quick --backend wasm > "$reports/bench.jsonl"; } 2>&1 | tee "$reports/bench.txt"
{ node tools/bench/dist/cli.js --quick --backend wasm --native > "$reports/bench-native.jsonl"; } 2>&1 | tee "$reports/bench-native.txt"
step "browser: every backend in headless Chromium"
if [ ! -x "${CHROMIUM:-/usr/bin/chromium}" ] && [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
  # Debian's Chromium (tool installers' own browser downloads do not work offline)
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null
fi
node tools/browser-smoke/run.mjs | tee "$reports/browser.txt"
step "web page (apps/web): its production build in headless Chromium on webgpu, webgl and wasm — caption, 20 live training steps, a dropped image, no leaks, no console errors; steps/s next to Node's"
node apps/web/test/browser.mjs | tee "$reports/web.txt"
step "consumer test (packed tarballs installed with npm in fresh projects: types, ESM, CJS, esbuild + Vite bundles in Chromium)"
PNPM="$PNPM" node tools/consumer-test/run.mjs 2>&1 | tee "$reports/consumer.txt"
step "README and guide examples (each file's own npm install line, fresh project, code typechecked and run)"
PNPM="$PNPM" node tools/consumer-test/examples.mjs 2>&1 | tee "$reports/examples.txt"
step "API site (typedoc, warnings are errors) and its crawl in Chromium (console errors, links, anchors, search)"
$PNPM run docs
node tools/docs-crawl/run.mjs 2>&1 | tee "$reports/docs.txt"
step "package checks (publint, attw)"
$PNPM run lint:pkg

node scripts/summarize-tests.mjs "$reports"
