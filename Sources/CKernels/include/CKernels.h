#ifndef TUNECHECK_CKERNELS_H
#define TUNECHECK_CKERNELS_H

#include <stddef.h>
#include <stdint.h>

// Small C kernels the engine calls where Swift cannot name the instruction it needs (AVX-512 widening loads).
// Each picks an AVX-512 path at run time when the CPU has it, else an AVX2 + FMA + F16C path, else a portable loop.

/// bfloat16 bits from float32, rounded to nearest even (NaN stays NaN): y[i] = bf16(x[i]) for i < n.
void tc_f32_to_bf16(const float *x, uint16_t *y, size_t n);

/// float32 from bfloat16 bits (exact): y[i] = float(x[i]) for i < n.
void tc_bf16_to_f32(const uint16_t *x, float *y, size_t n);

/// float32 from IEEE half bits (exact, subnormals included): y[i] = float(x[i]) for i < n.
void tc_f16_to_f32(const uint16_t *x, float *y, size_t n);

/// Element types of stored weights, for the kernels below that take any of them.
enum { TC_F32 = 0, TC_BF16 = 1, TC_F16 = 2 };

/// Widens the (rows, cols) block at `w` (row stride `ldw` elements, element type `kind`) into `out` (row stride
/// cols): out[r·cols + c] = float(w[r·ldw + c]). Exact for every kind.
void tc_widen_block(const void *w, int kind, size_t ldw, size_t rows, size_t cols, float *out);

/// 1 when none of the n values of type `kind` is NaN or infinite (exponent bits all ones), else 0. Split into
/// `parts` ranges run by tc_parallel_for.
int tc_all_finite(const void *x, int kind, size_t n, int parts);

/// A float buffer of at least `count` elements owned by the calling thread (grown on demand, reused by later calls
/// on the same thread: the pool's workers keep theirs). For per-thread panels of widened weights.
float *tc_thread_scratch(size_t count);

/// Matrix-vector product over a bfloat16 matrix with float32 input, products and sums:
/// y[r] = alpha · Σ_c w[r·ldw + c] · x[c] + beta · y[r] for r < rows (beta = 0 ignores y's old value).
/// `w` is (rows, cols) with row stride `ldw` elements.
void tc_gemv_bf16(const uint16_t *w, size_t rows, size_t cols, size_t ldw, const float *x, float alpha, float beta,
                  float *y);

/// The same over an IEEE half matrix (float32 products and sums).
void tc_gemv_f16(const uint16_t *w, size_t rows, size_t cols, size_t ldw, const float *x, float alpha, float beta, float *y);

/// The same over a float32 matrix: y[r] = alpha · Σ_c w[r·ldw + c] · x[c] + beta · y[r].
void tc_gemv_f32(const float *w, size_t rows, size_t cols, size_t ldw, const float *x, float alpha, float beta, float *y);

/// Transposed, for small matrices (attention over the cache): y[c] = alpha · Σ_r x[r] · w[r·ldw + c] for c < cols.
void tc_gemv_t_f32(const float *w, size_t rows, size_t cols, size_t ldw, const float *x, float alpha, float *y);

/// Runs fn(ctx, part) for part < parts on up to `threads` threads (the caller and threads − 1 pool workers). The
/// workers persist and spin for a short while between jobs, so back-to-back small jobs (decoding: ~85 products per
/// token) do not pay a thread wake-up each; after ~2 ms without work they sleep. One job runs at a time.
void tc_parallel_for(int parts, int threads, void (*fn)(void *ctx, int part), void *ctx);

/// tc_gemv_f32 / tc_gemv_bf16 / tc_gemv_f16 on `parts` threads (tc_parallel_for), in row blocks of a multiple of 4 rows:
/// one per thread, or up to 8 per thread for large matrices (claimed by whichever thread is free); each row is summed
/// by one thread in the same order, so the result does not depend on `parts`.
void tc_gemv_f32_parallel(const float *w, size_t rows, size_t cols, size_t ldw, const float *x, float alpha, float beta, float *y,
                          int parts);
void tc_gemv_bf16_parallel(const uint16_t *w, size_t rows, size_t cols, size_t ldw, const float *x, float alpha, float beta, float *y,
                           int parts);
void tc_gemv_f16_parallel(const uint16_t *w, size_t rows, size_t cols, size_t ldw, const float *x, float alpha, float beta, float *y,
                          int parts);

/// A matrix in mlx's affine quantization (docs/quantized-weights.md): the logical (rows, cols) weight w with
/// w[r][c] = scale[r][g] · q[r][c] + bias[r][g], g = c / group_size. `packed` is (rows, cols·bits/32) uint32 words, each
/// row one little-endian bit stream of its codes (code c at bits [c·bits, (c+1)·bits)); `scales` and `biases` are
/// (rows, cols/group_size) of element type `scale_kind` (TC_F32, TC_BF16 or TC_F16). bits ∈ {2,3,4,5,6,8},
/// group_size ∈ {32, 64, 128}, cols a multiple of group_size (the caller validates all of it).
/// Any of the three arrays may start at any byte (mlx's safetensors writer does not align tensors).
typedef struct {
    const void *packed;
    const void *scales;
    const void *biases;
    size_t rows, cols;
    int bits, group_size, scale_kind;
} tc_affine_matrix;

/// Dequantizes rows [row_begin, row_begin + rows) × columns [col_begin, col_begin + cols) of `m` into `out` (row stride
/// cols), float32: out = scale · q + bias. Any column range (whole groups are unpacked, the overlap kept).
void tc_dequantize_block(const tc_affine_matrix *m, size_t row_begin, size_t rows, size_t col_begin, size_t cols, float *out);

/// y[r] = alpha · Σ_c w[r][c] · x[c] + beta · y[r] (beta = 0 ignores y) straight on the packed codes, float32 products and
/// sums (as Σ_g scale·Σ q·x + bias·Σ x), split into `parts` row blocks on tc_parallel_for. AVX2 + FMA where the CPU has
/// it (AVX-512 CPUs too), else a portable loop; each row is summed by one thread, so the result does not depend on parts.
void tc_gemv_affine_parallel(const tc_affine_matrix *m, const float *x, float alpha, float beta, float *y, int parts);

/// 1 when every scale and bias of `m` is finite, else 0 (the codes are integers and always are).
int tc_affine_scales_finite(const tc_affine_matrix *m);

/// The portable loop of tc_gemv_affine_parallel on the calling thread, whatever the CPU (tests compare the two).
void tc_gemv_affine_portable(const tc_affine_matrix *m, const float *x, float alpha, float beta, float *y);

/// log Σ exp(x[i]) over n values with max subtraction (the max is stored in *maximum); exp by a degree-6
/// polynomial (relative error < 2e-7), lanes summed in float32, the total in double.
double tc_log_sum_exp(const float *x, size_t n, float *maximum);

/// 1 when the AVX-512 paths are used on this CPU.
int tc_uses_avx512(void);

/// 1 when the CPU has AVX2, FMA and F16C (the paths used when AVX-512 is absent, e.g. AMD Zen 2/3).
int tc_uses_avx2(void);


/// SHA-256 compression (FIPS 180-4 §6.2.2) of `blocks` consecutive 64-byte blocks at `data` into the hash state
/// H0…H7 (`state`, 8 words, updated in place); padding is the caller's. Uses the x86 SHA extensions (SHA-NI) when
/// the CPU has them, else the portable loop; both give the same state.
void tc_sha256_blocks(uint32_t state[8], const uint8_t *data, size_t blocks);

/// The portable loop alone (tests compare it with the SHA-NI path).
void tc_sha256_blocks_portable(uint32_t state[8], const uint8_t *data, size_t blocks);

/// 1 when tc_sha256_blocks runs on the SHA extensions (cpuid: SHA, SSE4.1, SSSE3), else 0.
int tc_uses_sha_ni(void);

#endif
