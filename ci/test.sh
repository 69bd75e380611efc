#!/usr/bin/env bash
# The whole test suite, as CI runs it: system packages, a release build (what users run), then every test.
# Tests that compare against ../shared/fixtures say they are skipped when that folder is absent.
set -euo pipefail
cd "$(dirname "$0")/.."
bash ci/setup.sh
swift build -c release
swift test
