#pragma once
#include <stddef.h>
#include <stdint.h>

/// libFuzzer's entry for programs that have their own main (compiler-rt FuzzerInterface.h). SwiftPM links each
/// executable with `main` renamed to `<target>_main`, so the fuzz targets define that and hand over to libFuzzer.
int LLVMFuzzerRunDriver(int *argc, char ***argv, int (*callback)(const uint8_t *data, size_t size));
