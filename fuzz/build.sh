#!/usr/bin/env bash
# Builds every fuzz target with libFuzzer + AddressSanitizer into ../.build-fuzz and links them as fuzz/bin/<target>.
#
# How (Swift 6.3 on Linux): fuzz/ is its own SwiftPM package that depends on the repository (`path: ".."`), with
# one executable target per fuzzer. `-sanitize=fuzzer,address` instruments every Swift module (the tunecheck
# libraries too) and links libFuzzer, whose `main` drives our `@_cdecl("LLVMFuzzerTestOneInput")`;
# `-parse-as-library` stops the single-file executables from getting a Swift `main` of their own. Optimised
# (`-c release`) so the executions per second are useful; FUZZ_CONFIG=debug for readable stack traces.
#
#   bash fuzz/build.sh                 # all targets
#   bash fuzz/build.sh --product fuzz_safetensors
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
root="$(dirname "$here")"
config="${FUZZ_CONFIG:-release}"
scratch="${FUZZ_SCRATCH:-$root/.build-fuzz}"
swift build --package-path "$here" --scratch-path "$scratch" -c "$config" \
    -Xswiftc -sanitize=fuzzer,address -Xswiftc -parse-as-library "$@"
mkdir -p "$here/bin"
for binary in "$scratch/$config"/fuzz_*; do
    [ -x "$binary" ] && [ -f "$binary" ] || continue
    name="$(basename "$binary")"
    ln -sf "$binary" "$here/bin/${name#fuzz_}"
done
ls "$here/bin"
