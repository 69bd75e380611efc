// Micro-benchmark of the packed affine GEMV kernel alone (Sources/CKernels/quantized.c), for iterating on it without
// the whole engine: one (rows, cols) matrix of random codes with bf16 scales and biases, timed on one thread and on
// `threads` threads, checked against the portable loop. Build and run (release-like flags):
//   clang -O2 -I Sources/CKernels/include scripts/bench/affine_gemv_bench.c Sources/CKernels/*.c -lpthread -lm -o /tmp/agb
//   /tmp/agb [rows cols bits group_size iterations threads]        (defaults: 3072 8192 4 64 200 1)
// Reports ns per call, weights/s and packed GB/s; run it under `perf stat -e cycles,instructions` for cycles and
// instructions per weight (subtract the setup by comparing two iteration counts).
#include "CKernels.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static uint64_t state = 88172645463325252ULL;
static uint64_t next_random(void) {
    state ^= state << 13;
    state ^= state >> 7;
    state ^= state << 17;
    return state;
}

static uint16_t bf16(float value) {
    uint32_t bits;
    memcpy(&bits, &value, 4);
    return (uint16_t)(bits >> 16);
}

static double seconds(clockid_t clock) {
    struct timespec ts;
    clock_gettime(clock, &ts);
    return ts.tv_sec + ts.tv_nsec * 1e-9;
}

int main(int argc, char **argv) {
    size_t rows = argc > 1 ? strtoul(argv[1], 0, 10) : 3072, cols = argc > 2 ? strtoul(argv[2], 0, 10) : 8192;
    int bits = argc > 3 ? atoi(argv[3]) : 4, group = argc > 4 ? atoi(argv[4]) : 64;
    int iterations = argc > 5 ? atoi(argv[5]) : 200, threads = argc > 6 ? atoi(argv[6]) : 1;
    size_t words = rows * cols * (size_t)bits / 32, groups = rows * cols / (size_t)group;
    // One spare byte in front so the tensors start unaligned, as in mlx's files.
    uint8_t *packed_storage = malloc(words * 4 + 1);
    uint16_t *scales = malloc(groups * 2), *biases = malloc(groups * 2);
    float *x = malloc(cols * sizeof(float)), *y = malloc(rows * sizeof(float)), *reference = malloc(rows * sizeof(float));
    for (size_t i = 0; i < words * 4 + 1; i++) packed_storage[i] = (uint8_t)next_random();
    for (size_t i = 0; i < groups; i++) {
        scales[i] = bf16((float)(next_random() % 1000 + 1) * 1e-5f);
        biases[i] = bf16(-(float)(next_random() % 1000) * 1e-4f);
    }
    for (size_t i = 0; i < cols; i++) x[i] = (float)((int)(next_random() % 2001) - 1000) / 1000.0f;
    tc_affine_matrix m = {packed_storage + 1, scales, biases, rows, cols, bits, group, TC_BF16};

    tc_gemv_affine_portable(&m, x, 1, 0, reference);
    tc_gemv_affine_parallel(&m, x, 1, 0, y, threads);
    double worst = 0;
    for (size_t r = 0; r < rows; r++) {
        double scale = fabs(reference[r]) + 1e-3;
        double error = fabs((double)y[r] - reference[r]) / scale;
        if (error > worst) worst = error;
    }
    // CPU time as well as wall time: on a shared machine the wall clock counts the time other processes ran.
    double start = seconds(CLOCK_MONOTONIC), cpu_start = seconds(CLOCK_PROCESS_CPUTIME_ID);
    for (int i = 0; i < iterations; i++) tc_gemv_affine_parallel(&m, x, 1, 0, y, threads);
    double elapsed = (seconds(CLOCK_MONOTONIC) - start) / iterations;
    double cpu = (seconds(CLOCK_PROCESS_CPUTIME_ID) - cpu_start) / iterations;  // all threads, spinning included
    double weights = (double)rows * cols;
    double bytes = words * 4.0 + groups * 4.0;
    printf("rows %zu cols %zu bits %d group %d threads %d: wall %.1f us/call (%.2f G weights/s, %.2f GB/s), "
           "CPU %.1f us/call (%.2f G weights per CPU-second), worst relative difference to portable %.2e\n",
           rows, cols, bits, group, threads, elapsed * 1e6, weights / elapsed * 1e-9, bytes / elapsed * 1e-9, cpu * 1e6,
           weights / cpu * 1e-9, worst);
    return 0;
}
