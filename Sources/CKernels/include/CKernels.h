#ifndef TUNECHECK_CKERNELS_H
#define TUNECHECK_CKERNELS_H

#include <stddef.h>
#include <stdint.h>

// Small C kernels the engine calls where Swift cannot name the instruction it needs (AVX-512 widening loads).
// Each picks an AVX-512 path at run time when the CPU has it and a portable loop otherwise.

/// bfloat16 bits from float32, rounded to nearest even (NaN stays NaN): y[i] = bf16(x[i]) for i < n.
void tc_f32_to_bf16(const float *x, uint16_t *y, size_t n);

/// float32 from bfloat16 bits (exact): y[i] = float(x[i]) for i < n.
void tc_bf16_to_f32(const uint16_t *x, float *y, size_t n);

/// Matrix-vector product over a bfloat16 matrix with float32 input, products and sums:
/// y[r] = alpha · Σ_c w[r·ldw + c] · x[c] + beta · y[r] for r < rows (beta = 0 ignores y's old value).
/// `w` is (rows, cols) with row stride `ldw` elements.
void tc_gemv_bf16(const uint16_t *w, size_t rows, size_t cols, size_t ldw, const float *x, float alpha, float beta,
                  float *y);

/// The same over a float32 matrix: y[r] = alpha · Σ_c w[r·ldw + c] · x[c] + beta · y[r].
void tc_gemv_f32(const float *w, size_t rows, size_t cols, size_t ldw, const float *x, float alpha, float beta, float *y);

/// Transposed, for small matrices (attention over the cache): y[c] = alpha · Σ_r x[r] · w[r·ldw + c] for c < cols.
void tc_gemv_t_f32(const float *w, size_t rows, size_t cols, size_t ldw, const float *x, float alpha, float *y);

/// Runs fn(ctx, part) for part < parts on up to `threads` threads (the caller and threads − 1 pool workers). The
/// workers persist and spin for a short while between jobs, so back-to-back small jobs (decoding: ~85 products per
/// token) do not pay a thread wake-up each; after ~2 ms without work they sleep. One job runs at a time.
void tc_parallel_for(int parts, int threads, void (*fn)(void *ctx, int part), void *ctx);

/// tc_gemv_f32 / tc_gemv_bf16 split into `parts` row blocks (multiples of 4 rows) run by tc_parallel_for; each row
/// is summed by one thread in the same order, so the result does not depend on `parts`.
void tc_gemv_f32_parallel(const float *w, size_t rows, size_t cols, size_t ldw, const float *x, float alpha, float beta, float *y,
                          int parts);
void tc_gemv_bf16_parallel(const uint16_t *w, size_t rows, size_t cols, size_t ldw, const float *x, float alpha, float beta, float *y,
                           int parts);

/// log Σ exp(x[i]) over n values with max subtraction (the max is stored in *maximum); exp by a degree-6
/// polynomial (relative error < 2e-7), lanes summed in float32, the total in double.
double tc_log_sum_exp(const float *x, size_t n, float *maximum);

/// 1 when the AVX-512 paths are used on this CPU.
int tc_uses_avx512(void);

#endif
