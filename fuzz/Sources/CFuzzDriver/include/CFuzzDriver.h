#ifndef BLINDAI_CFUZZDRIVER_H
#define BLINDAI_CFUZZDRIVER_H
#include <stddef.h>
#include <stdint.h>

/// libFuzzer's driver (linked by -sanitize=fuzzer). SwiftPM renames a Swift executable's entry point and
/// points `main` at it, so libFuzzer's own `main` is never linked: each target's @main calls this instead.
int LLVMFuzzerRunDriver(int *argc, char ***argv, int (*callback)(const uint8_t *data, size_t size));

/// Calls LLVMFuzzerRunDriver with the process's arguments.
int blindai_fuzz_run(int argc, char **argv, int (*callback)(const uint8_t *data, size_t size));
#endif
