#include "CKernels.h"

#include <stdlib.h>
#include <string.h>

#if defined(__x86_64__)
#include <immintrin.h>
#define TC_X86 1
#else
#define TC_X86 0
#endif

// Stored 16-bit weights are read in place from the mapped safetensors file, where a tensor may start at an odd address
// (mlx's writer does not pad its header: about half of the bf16 folders mlx_lm writes). Every read of them goes through
// this 1-byte-aligned type, so the compiler never assumes 2-byte alignment (nor peels a loop to reach a wider one);
// the vector loads are unaligned loads already.
typedef uint16_t tc_half __attribute__((aligned(1)));

// ---- conversions -------------------------------------------------------------------------------------------------

static inline uint16_t to_bf16(float value) {
    uint32_t bits;
    memcpy(&bits, &value, 4);
    uint32_t rounded = (bits + 0x7fffu + ((bits >> 16) & 1u)) >> 16;
    uint32_t quiet = (bits >> 16) | 0x40u;  // NaN: keep it a (quiet) NaN instead of rounding into infinity
    return (uint16_t)(((bits & 0x7fffffffu) > 0x7f800000u) ? quiet : rounded);
}

static inline float from_bf16(uint16_t value) {
    uint32_t bits = (uint32_t)value << 16;
    float result;
    memcpy(&result, &bits, 4);
    return result;
}

// IEEE half → float, exact: normal numbers rebias the exponent, subnormals are scaled by 2⁻²⁴, inf/NaN keep their
// payload.
static inline float from_f16(uint16_t value) {
    uint32_t sign = (uint32_t)(value & 0x8000u) << 16;
    uint32_t exponent = (value >> 10) & 0x1fu, mantissa = value & 0x3ffu;
    uint32_t bits;
    if (exponent == 0) {
        float magnitude = (float)mantissa * 5.9604644775390625e-8f;
        memcpy(&bits, &magnitude, 4);
        bits |= sign;
    } else if (exponent == 31) {
        bits = sign | 0x7f800000u | (mantissa << 13);
    } else {
        bits = sign | ((exponent + 112u) << 23) | (mantissa << 13);
    }
    float result;
    memcpy(&result, &bits, 4);
    return result;
}

// Branch-free loops: the compiler vectorises them, with AVX-512 in the copies compiled for it.
#define CONVERSIONS(suffix, attribute)                                                                 \
    attribute static void f32_to_bf16_##suffix(const float *x, uint16_t *y, size_t n) {                \
        for (size_t i = 0; i < n; i++) y[i] = to_bf16(x[i]);                                           \
    }                                                                                                  \
    attribute static void bf16_to_f32_##suffix(const tc_half *x, float *y, size_t n) {                \
        for (size_t i = 0; i < n; i++) y[i] = from_bf16(x[i]);                                         \
    }

CONVERSIONS(generic, )
#if TC_X86
CONVERSIONS(avx512, __attribute__((target("avx512f,avx512bw"))))

// F16C through AVX-512F: 16 halves per instruction.
__attribute__((target("avx512f,avx512bw"))) static void f16_to_f32_avx512(const tc_half *x, float *y, size_t n) {
    size_t i = 0;
    for (; i + 16 <= n; i += 16) _mm512_storeu_ps(y + i, _mm512_cvtph_ps(_mm256_loadu_si256((const __m256i *)(x + i))));
    for (; i < n; i++) y[i] = from_f16(x[i]);
}
#endif

static void f16_to_f32_generic(const tc_half *x, float *y, size_t n) {
    for (size_t i = 0; i < n; i++) y[i] = from_f16(x[i]);
}

#if TC_X86
// AVX2 + FMA + F16C (Zen 2/3 and most x86 CPUs of the last decade without AVX-512): 256-bit copies of the same loops.
#define TC_AVX2 __attribute__((target("avx2,fma,f16c")))
CONVERSIONS(avx2, TC_AVX2)

TC_AVX2 static void f16_to_f32_avx2(const tc_half *x, float *y, size_t n) {
    size_t i = 0;
    for (; i + 8 <= n; i += 8) _mm256_storeu_ps(y + i, _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(x + i))));
    for (; i < n; i++) y[i] = from_f16(x[i]);
}
#endif

// ---- finiteness --------------------------------------------------------------------------------------------------

// A value is NaN or infinite when its exponent bits are all ones. OR-ing the comparison over a block and testing once
// per block keeps the loop branch-free (vectorised) and still stops early on a bad tensor.
#define FINITE_SCAN(suffix, attribute)                                                                              \
    attribute static int finite_u16_##suffix(const tc_half *x, size_t n, uint16_t mask) {                          \
        for (size_t start = 0; start < n; start += 4096) {                                                          \
            size_t end = n - start < 4096 ? n : start + 4096;                                                       \
            unsigned bad = 0;                                                                                       \
            for (size_t i = start; i < end; i++) bad |= (unsigned)((x[i] & mask) == mask);                          \
            if (bad) return 0;                                                                                      \
        }                                                                                                           \
        return 1;                                                                                                   \
    }                                                                                                               \
    attribute static int finite_u32_##suffix(const uint32_t *x, size_t n) {                                         \
        for (size_t start = 0; start < n; start += 4096) {                                                          \
            size_t end = n - start < 4096 ? n : start + 4096;                                                       \
            unsigned bad = 0;                                                                                       \
            for (size_t i = start; i < end; i++) bad |= (unsigned)((x[i] & 0x7f800000u) == 0x7f800000u);            \
            if (bad) return 0;                                                                                      \
        }                                                                                                           \
        return 1;                                                                                                   \
    }

FINITE_SCAN(generic, )
#if TC_X86
FINITE_SCAN(avx512, __attribute__((target("avx512f,avx512bw"))))
FINITE_SCAN(avx2, TC_AVX2)
#endif

static int finite_range(const void *x, int kind, size_t n) {
#if TC_X86
    if (tc_uses_avx512()) {
        if (kind == TC_F32) return finite_u32_avx512((const uint32_t *)x, n);
        return finite_u16_avx512((const tc_half *)x, n, kind == TC_BF16 ? 0x7f80u : 0x7c00u);
    }
    if (tc_uses_avx2()) {
        if (kind == TC_F32) return finite_u32_avx2((const uint32_t *)x, n);
        return finite_u16_avx2((const tc_half *)x, n, kind == TC_BF16 ? 0x7f80u : 0x7c00u);
    }
#endif
    if (kind == TC_F32) return finite_u32_generic((const uint32_t *)x, n);
    return finite_u16_generic((const tc_half *)x, n, kind == TC_BF16 ? 0x7f80u : 0x7c00u);
}

typedef struct {
    const char *x;
    int kind;
    size_t n, block, size;
    int results[64];
} finite_job;

static void finite_part(void *ctx, int part) {
    finite_job *job = ctx;
    size_t start = (size_t)part * job->block;
    if (start >= job->n) { job->results[part] = 1; return; }
    size_t count = job->n - start < job->block ? job->n - start : job->block;
    job->results[part] = finite_range(job->x + start * job->size, job->kind, count);
}

int tc_all_finite(const void *x, int kind, size_t n, int parts) {
    if (parts < 1) parts = 1;
    if (parts > 64) parts = 64;
    if (parts == 1 || n < ((size_t)1 << 20)) return finite_range(x, kind, n);
    finite_job job;
    job.x = (const char *)x;
    job.kind = kind;
    job.n = n;
    job.size = kind == TC_F32 ? 4 : 2;
    job.block = (n + (size_t)parts - 1) / (size_t)parts;
    tc_parallel_for(parts, parts, finite_part, &job);
    for (int part = 0; part < parts; part++) if (!job.results[part]) return 0;
    return 1;
}

// ---- panels of widened weights -----------------------------------------------------------------------------------

static __thread float *scratch_buffer = NULL;
static __thread size_t scratch_capacity = 0;

float *tc_thread_scratch(size_t count) {
    if (scratch_capacity < count) {
        free(scratch_buffer);
        scratch_buffer = aligned_alloc(64, (count * sizeof(float) + 63) / 64 * 64);
        scratch_capacity = scratch_buffer ? count : 0;
    }
    return scratch_buffer;
}

static void widen_bf16(const tc_half *x, float *y, size_t n);
static void widen_f16(const tc_half *x, float *y, size_t n);

void tc_widen_block(const void *w, int kind, size_t ldw, size_t rows, size_t cols, float *out) {
    // A contiguous block (all columns) is one conversion; otherwise one per row.
    size_t runs = cols == ldw ? 1 : rows, length = cols == ldw ? rows * cols : cols;
    for (size_t r = 0; r < runs; r++) {
        float *target = out + r * cols;
        switch (kind) {
        case TC_BF16: widen_bf16((const tc_half *)w + r * ldw, target, length); break;
        case TC_F16: widen_f16((const tc_half *)w + r * ldw, target, length); break;
        default: memcpy(target, (const float *)w + r * ldw, length * sizeof(float)); break;
        }
    }
}

// ---- matrix-vector product ---------------------------------------------------------------------------------------

static inline void store(float *y, float sum, float alpha, float beta) {
    *y = beta == 0 ? alpha * sum : alpha * sum + beta * *y;
}

static void gemv_generic(const tc_half *w, size_t rows, size_t cols, size_t ldw, const float *x, float alpha, float beta,
                         float *y) {
    for (size_t r = 0; r < rows; r++) {
        const tc_half *row = w + r * ldw;
        float partial[8] = {0, 0, 0, 0, 0, 0, 0, 0};
        size_t c = 0;
        for (; c + 8 <= cols; c += 8) {
            for (int lane = 0; lane < 8; lane++) partial[lane] += from_bf16(row[c + lane]) * x[c + lane];
        }
        float sum = 0;
        for (int lane = 0; lane < 8; lane++) sum += partial[lane];
        for (; c < cols; c++) sum += from_bf16(row[c]) * x[c];
        store(y + r, sum, alpha, beta);
    }
}

#if TC_X86
// 16 bf16 values → 16 floats: zero-extend to 32 bits and shift into the high half.
__attribute__((target("avx512f,avx512bw"))) static inline __m512 load16_bf16(const tc_half *p) {
    __m256i half = _mm256_loadu_si256((const __m256i *)p);
    return _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_cvtepu16_epi32(half), 16));
}

__attribute__((target("avx512f,avx512bw"))) static inline __m512 load16_f32(const float *p) { return _mm512_loadu_ps(p); }

static inline float scalar_bf16(const tc_half *p) { return from_bf16(*p); }
static inline float scalar_f32(const float *p) { return *p; }

// Four rows at a time share each load of x; two accumulators per row keep eight FMA chains in flight.
// A matrix larger than a quarter of the L3 (the output projection, usually) is streamed with non-temporal prefetches,
// so reading it once per token does not evict the layers' weights, which then stay in L3 for small models
// (stories15M: 24 MB of layers beside a 37 MB output projection; decoding ~11% faster, s110m ~5%).
#define GEMV_AVX512(name, type, load16, scalar)                                                                          \
    __attribute__((target("avx512f,avx512bw"))) static void name(const type *w, size_t rows, size_t cols, size_t ldw,    \
                                                                 const float *x, float alpha, float beta, float *y) {    \
        size_t r = 0;                                                                                                    \
        size_t wide = cols & ~(size_t)31;                                                                                \
        int stream = rows * cols * sizeof(type) > ((size_t)16 << 20) / 2;                                               \
        size_t vec = cols & ~(size_t)15;                                                                                 \
        for (; r + 4 <= rows; r += 4) {                                                                                  \
            const type *w0 = w + r * ldw, *w1 = w0 + ldw, *w2 = w1 + ldw, *w3 = w2 + ldw;                                \
            __m512 a0 = _mm512_setzero_ps(), a1 = _mm512_setzero_ps(), a2 = _mm512_setzero_ps();                         \
            __m512 a3 = _mm512_setzero_ps(), b0 = _mm512_setzero_ps(), b1 = _mm512_setzero_ps();                         \
            __m512 b2 = _mm512_setzero_ps(), b3 = _mm512_setzero_ps();                                                   \
            size_t c = 0;                                                                                                \
            for (; c < wide; c += 32) {                                                                                  \
                if (stream) {                                                                                            \
                    _mm_prefetch((const char *)(w0 + c + 256), _MM_HINT_NTA);                                            \
                    _mm_prefetch((const char *)(w1 + c + 256), _MM_HINT_NTA);                                            \
                    _mm_prefetch((const char *)(w2 + c + 256), _MM_HINT_NTA);                                            \
                    _mm_prefetch((const char *)(w3 + c + 256), _MM_HINT_NTA);                                            \
                }                                                                                                        \
                __m512 x0 = _mm512_loadu_ps(x + c), x1 = _mm512_loadu_ps(x + c + 16);                                    \
                a0 = _mm512_fmadd_ps(load16(w0 + c), x0, a0);                                                            \
                a1 = _mm512_fmadd_ps(load16(w1 + c), x0, a1);                                                            \
                a2 = _mm512_fmadd_ps(load16(w2 + c), x0, a2);                                                            \
                a3 = _mm512_fmadd_ps(load16(w3 + c), x0, a3);                                                            \
                b0 = _mm512_fmadd_ps(load16(w0 + c + 16), x1, b0);                                                       \
                b1 = _mm512_fmadd_ps(load16(w1 + c + 16), x1, b1);                                                       \
                b2 = _mm512_fmadd_ps(load16(w2 + c + 16), x1, b2);                                                       \
                b3 = _mm512_fmadd_ps(load16(w3 + c + 16), x1, b3);                                                       \
            }                                                                                                            \
            for (; c < vec; c += 16) {                                                                                   \
                __m512 x0 = _mm512_loadu_ps(x + c);                                                                      \
                a0 = _mm512_fmadd_ps(load16(w0 + c), x0, a0);                                                            \
                a1 = _mm512_fmadd_ps(load16(w1 + c), x0, a1);                                                            \
                a2 = _mm512_fmadd_ps(load16(w2 + c), x0, a2);                                                            \
                a3 = _mm512_fmadd_ps(load16(w3 + c), x0, a3);                                                            \
            }                                                                                                            \
            float s0 = _mm512_reduce_add_ps(_mm512_add_ps(a0, b0)), s1 = _mm512_reduce_add_ps(_mm512_add_ps(a1, b1));    \
            float s2 = _mm512_reduce_add_ps(_mm512_add_ps(a2, b2)), s3 = _mm512_reduce_add_ps(_mm512_add_ps(a3, b3));    \
            for (; c < cols; c++) {                                                                                      \
                s0 += scalar(w0 + c) * x[c];                                                                             \
                s1 += scalar(w1 + c) * x[c];                                                                             \
                s2 += scalar(w2 + c) * x[c];                                                                             \
                s3 += scalar(w3 + c) * x[c];                                                                             \
            }                                                                                                            \
            store(y + r, s0, alpha, beta);                                                                               \
            store(y + r + 1, s1, alpha, beta);                                                                           \
            store(y + r + 2, s2, alpha, beta);                                                                           \
            store(y + r + 3, s3, alpha, beta);                                                                           \
        }                                                                                                                \
        for (; r < rows; r++) {                                                                                          \
            const type *row = w + r * ldw;                                                                               \
            __m512 a = _mm512_setzero_ps();                                                                              \
            size_t c = 0;                                                                                                \
            for (; c < vec; c += 16) a = _mm512_fmadd_ps(load16(row + c), _mm512_loadu_ps(x + c), a);                    \
            float sum = _mm512_reduce_add_ps(a);                                                                         \
            for (; c < cols; c++) sum += scalar(row + c) * x[c];                                                         \
            store(y + r, sum, alpha, beta);                                                                              \
        }                                                                                                                \
    }

GEMV_AVX512(gemv_bf16_avx512, tc_half, load16_bf16, scalar_bf16)

__attribute__((target("avx512f,avx512bw"))) static inline __m512 load16_f16(const tc_half *p) {
    return _mm512_cvtph_ps(_mm256_loadu_si256((const __m256i *)p));
}
static inline float scalar_f16(const tc_half *p) { return from_f16(*p); }
GEMV_AVX512(gemv_f16_avx512, tc_half, load16_f16, scalar_f16)

// bfloat16 rows, 32 columns per step without widening instructions: a 512-bit load holds 16 (even, odd) pairs; the
// even values become floats by a shift left of 16, the odd ones by masking off the low half. x is split once into its
// even and odd columns (per thread, reused) so each pair of halves meets its inputs. Two integer ops and two FMAs per 32
// weights instead of two widening loads, two widenings and two shifts: decoding from bfloat16 stops being bound by
// instruction throughput. Sums run in a different order than gemv_f32 (per lane parity), so results match a float32
// product of the same rounded weights to float32 rounding, not bit for bit.
static __thread float *pair_buffer = NULL;
static __thread size_t pair_capacity = 0;

__attribute__((target("avx512f,avx512bw"))) static void gemv_bf16_pairs_avx512(const tc_half *w, size_t rows, size_t cols, size_t ldw,
                                                                              const float *x, float alpha, float beta, float *y) {
    size_t wide = cols & ~(size_t)31;
    if (wide == 0) { gemv_bf16_avx512(w, rows, cols, ldw, x, alpha, beta, y); return; }
    if (pair_capacity < wide) {
        free(pair_buffer);
        pair_buffer = malloc(wide * sizeof(float));
        pair_capacity = pair_buffer ? wide : 0;
        if (!pair_buffer) { gemv_bf16_avx512(w, rows, cols, ldw, x, alpha, beta, y); return; }
    }
    // Per 32 columns: 16 even inputs, then 16 odd ones.
    for (size_t c = 0; c < wide; c += 32) {
        for (size_t i = 0; i < 16; i++) {
            pair_buffer[c + i] = x[c + 2 * i];
            pair_buffer[c + 16 + i] = x[c + 2 * i + 1];
        }
    }
    const __m512i high = _mm512_set1_epi32((int)0xffff0000u);
    size_t r = 0;
    for (; r + 4 <= rows; r += 4) {
        const tc_half *w0 = w + r * ldw, *w1 = w0 + ldw, *w2 = w1 + ldw, *w3 = w2 + ldw;
        __m512 a0 = _mm512_setzero_ps(), a1 = _mm512_setzero_ps(), a2 = _mm512_setzero_ps(), a3 = _mm512_setzero_ps();
        __m512 b0 = _mm512_setzero_ps(), b1 = _mm512_setzero_ps(), b2 = _mm512_setzero_ps(), b3 = _mm512_setzero_ps();
        for (size_t c = 0; c < wide; c += 32) {
            __m512 even = _mm512_loadu_ps(pair_buffer + c), odd = _mm512_loadu_ps(pair_buffer + c + 16);
            __m512i p0 = _mm512_loadu_si512((const void *)(w0 + c)), p1 = _mm512_loadu_si512((const void *)(w1 + c));
            __m512i p2 = _mm512_loadu_si512((const void *)(w2 + c)), p3 = _mm512_loadu_si512((const void *)(w3 + c));
            a0 = _mm512_fmadd_ps(_mm512_castsi512_ps(_mm512_slli_epi32(p0, 16)), even, a0);
            b0 = _mm512_fmadd_ps(_mm512_castsi512_ps(_mm512_and_si512(p0, high)), odd, b0);
            a1 = _mm512_fmadd_ps(_mm512_castsi512_ps(_mm512_slli_epi32(p1, 16)), even, a1);
            b1 = _mm512_fmadd_ps(_mm512_castsi512_ps(_mm512_and_si512(p1, high)), odd, b1);
            a2 = _mm512_fmadd_ps(_mm512_castsi512_ps(_mm512_slli_epi32(p2, 16)), even, a2);
            b2 = _mm512_fmadd_ps(_mm512_castsi512_ps(_mm512_and_si512(p2, high)), odd, b2);
            a3 = _mm512_fmadd_ps(_mm512_castsi512_ps(_mm512_slli_epi32(p3, 16)), even, a3);
            b3 = _mm512_fmadd_ps(_mm512_castsi512_ps(_mm512_and_si512(p3, high)), odd, b3);
        }
        float s0 = _mm512_reduce_add_ps(_mm512_add_ps(a0, b0)), s1 = _mm512_reduce_add_ps(_mm512_add_ps(a1, b1));
        float s2 = _mm512_reduce_add_ps(_mm512_add_ps(a2, b2)), s3 = _mm512_reduce_add_ps(_mm512_add_ps(a3, b3));
        for (size_t c = wide; c < cols; c++) {
            s0 += from_bf16(w0[c]) * x[c];
            s1 += from_bf16(w1[c]) * x[c];
            s2 += from_bf16(w2[c]) * x[c];
            s3 += from_bf16(w3[c]) * x[c];
        }
        store(y + r, s0, alpha, beta);
        store(y + r + 1, s1, alpha, beta);
        store(y + r + 2, s2, alpha, beta);
        store(y + r + 3, s3, alpha, beta);
    }
    if (r < rows) gemv_bf16_avx512(w + r * ldw, rows - r, cols, ldw, x, alpha, beta, y + r);
}
GEMV_AVX512(gemv_f32_avx512, float, load16_f32, scalar_f32)
#endif

#if TC_X86
// ---- AVX2 matrix-vector products ---------------------------------------------------------------------------------

TC_AVX2 static inline __m256 load8_bf16(const tc_half *p) {
    return _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_cvtepu16_epi32(_mm_loadu_si128((const __m128i *)p)), 16));
}
TC_AVX2 static inline __m256 load8_f16(const tc_half *p) { return _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)p)); }
TC_AVX2 static inline __m256 load8_f32(const float *p) { return _mm256_loadu_ps(p); }

TC_AVX2 static inline float hsum8(__m256 v) {
    __m128 low = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    low = _mm_add_ps(low, _mm_movehl_ps(low, low));
    low = _mm_add_ss(low, _mm_movehdup_ps(low));
    return _mm_cvtss_f32(low);
}

// Four rows share each load of x; two accumulators per row (16 columns per step) keep eight FMA chains in flight.
// The four rows come from the four quarters of the block (rows r, q + r, 2q + r, 3q + r for q = rows / 4), not from
// four neighbours: each of the four loads then walks one contiguous quarter of the matrix, row after row, which the
// hardware prefetchers follow. Four neighbouring rows made every load jump ahead by four rows after each row; with
// short rows (stories15M: 288 floats, 18 cache lines) the prefetchers kept losing the streams, and on Zen 3 the
// (32000, 288) output projection streamed at 14 GB/s on one core instead of 27 (layers 288×288 and 768×288 in L2/L3:
// 53 → 80 GB/s). Non-temporal prefetches, which helped the neighbour order elsewhere, measured neutral in this order
// (and 30% slower in the old one here), so there are none. Each row is summed exactly as before (the first 4q rows
// with the two accumulators, the last rows % 4 with one), so the order changes no result.
#define GEMV_AVX2(name, type, load8, scalar)                                                                             \
    TC_AVX2 static void name(const type *w, size_t rows, size_t cols, size_t ldw, const float *x, float alpha, float beta,\
                             float *y) {                                                                                 \
        size_t wide = cols & ~(size_t)15;                                                                                \
        size_t quarter = rows / 4;                                                                                       \
        for (size_t r = 0; r < quarter; r++) {                                                                           \
            const type *w0 = w + r * ldw, *w1 = w0 + quarter * ldw, *w2 = w1 + quarter * ldw, *w3 = w2 + quarter * ldw;  \
            __m256 a0 = _mm256_setzero_ps(), a1 = _mm256_setzero_ps(), a2 = _mm256_setzero_ps();                        \
            __m256 a3 = _mm256_setzero_ps(), b0 = _mm256_setzero_ps(), b1 = _mm256_setzero_ps();                        \
            __m256 b2 = _mm256_setzero_ps(), b3 = _mm256_setzero_ps();                                                  \
            size_t c = 0;                                                                                                \
            for (; c < wide; c += 16) {                                                                                  \
                __m256 x0 = _mm256_loadu_ps(x + c), x1 = _mm256_loadu_ps(x + c + 8);                                     \
                a0 = _mm256_fmadd_ps(load8(w0 + c), x0, a0);                                                             \
                a1 = _mm256_fmadd_ps(load8(w1 + c), x0, a1);                                                             \
                a2 = _mm256_fmadd_ps(load8(w2 + c), x0, a2);                                                             \
                a3 = _mm256_fmadd_ps(load8(w3 + c), x0, a3);                                                             \
                b0 = _mm256_fmadd_ps(load8(w0 + c + 8), x1, b0);                                                         \
                b1 = _mm256_fmadd_ps(load8(w1 + c + 8), x1, b1);                                                         \
                b2 = _mm256_fmadd_ps(load8(w2 + c + 8), x1, b2);                                                         \
                b3 = _mm256_fmadd_ps(load8(w3 + c + 8), x1, b3);                                                         \
            }                                                                                                            \
            float s0 = hsum8(_mm256_add_ps(a0, b0)), s1 = hsum8(_mm256_add_ps(a1, b1));                                  \
            float s2 = hsum8(_mm256_add_ps(a2, b2)), s3 = hsum8(_mm256_add_ps(a3, b3));                                  \
            for (; c < cols; c++) {                                                                                      \
                s0 += scalar(w0 + c) * x[c];                                                                             \
                s1 += scalar(w1 + c) * x[c];                                                                             \
                s2 += scalar(w2 + c) * x[c];                                                                             \
                s3 += scalar(w3 + c) * x[c];                                                                             \
            }                                                                                                            \
            store(y + r, s0, alpha, beta);                                                                               \
            store(y + quarter + r, s1, alpha, beta);                                                                     \
            store(y + 2 * quarter + r, s2, alpha, beta);                                                                 \
            store(y + 3 * quarter + r, s3, alpha, beta);                                                                 \
        }                                                                                                                \
        for (size_t r = 4 * quarter; r < rows; r++) {                                                                    \
            const type *row = w + r * ldw;                                                                               \
            __m256 a = _mm256_setzero_ps();                                                                              \
            size_t c = 0;                                                                                                \
            for (; c + 8 <= cols; c += 8) a = _mm256_fmadd_ps(load8(row + c), _mm256_loadu_ps(x + c), a);               \
            float sum = hsum8(a);                                                                                        \
            for (; c < cols; c++) sum += scalar(row + c) * x[c];                                                         \
            store(y + r, sum, alpha, beta);                                                                              \
        }                                                                                                                \
    }

GEMV_AVX2(gemv_bf16_avx2, tc_half, load8_bf16, scalar_bf16)
GEMV_AVX2(gemv_f16_avx2, tc_half, load8_f16, scalar_f16)
GEMV_AVX2(gemv_f32_avx2, float, load8_f32, scalar_f32)

// bfloat16 pairs, as the AVX-512 pair kernel: a 256-bit load holds 8 (even, odd) pairs; the even values become floats
// by a shift left of 16, the odd ones by masking off the low half, against x split once into even and odd columns.
TC_AVX2 static void gemv_bf16_pairs_avx2(const tc_half *w, size_t rows, size_t cols, size_t ldw, const float *x, float alpha,
                                         float beta, float *y) {
    size_t wide = cols & ~(size_t)15;
    if (wide == 0) { gemv_bf16_avx2(w, rows, cols, ldw, x, alpha, beta, y); return; }
    if (pair_capacity < wide) {
        free(pair_buffer);
        pair_buffer = malloc(wide * sizeof(float));
        pair_capacity = pair_buffer ? wide : 0;
        if (!pair_buffer) { gemv_bf16_avx2(w, rows, cols, ldw, x, alpha, beta, y); return; }
    }
    // Per 16 columns: 8 even inputs, then 8 odd ones.
    for (size_t c = 0; c < wide; c += 16) {
        for (size_t i = 0; i < 8; i++) {
            pair_buffer[c + i] = x[c + 2 * i];
            pair_buffer[c + 8 + i] = x[c + 2 * i + 1];
        }
    }
    int stream = rows * cols * 2 > ((size_t)16 << 20) / 2;
    const __m256i high = _mm256_set1_epi32((int)0xffff0000u);
    size_t r = 0;
    for (; r + 4 <= rows; r += 4) {
        const tc_half *w0 = w + r * ldw, *w1 = w0 + ldw, *w2 = w1 + ldw, *w3 = w2 + ldw;
        __m256 a0 = _mm256_setzero_ps(), a1 = _mm256_setzero_ps(), a2 = _mm256_setzero_ps(), a3 = _mm256_setzero_ps();
        __m256 b0 = _mm256_setzero_ps(), b1 = _mm256_setzero_ps(), b2 = _mm256_setzero_ps(), b3 = _mm256_setzero_ps();
        for (size_t c = 0; c < wide; c += 16) {
            if (stream && (c & 31) == 0) {
                _mm_prefetch((const char *)(w0 + c + 256), _MM_HINT_NTA);
                _mm_prefetch((const char *)(w1 + c + 256), _MM_HINT_NTA);
                _mm_prefetch((const char *)(w2 + c + 256), _MM_HINT_NTA);
                _mm_prefetch((const char *)(w3 + c + 256), _MM_HINT_NTA);
            }
            __m256 even = _mm256_loadu_ps(pair_buffer + c), odd = _mm256_loadu_ps(pair_buffer + c + 8);
            __m256i p0 = _mm256_loadu_si256((const __m256i *)(w0 + c)), p1 = _mm256_loadu_si256((const __m256i *)(w1 + c));
            __m256i p2 = _mm256_loadu_si256((const __m256i *)(w2 + c)), p3 = _mm256_loadu_si256((const __m256i *)(w3 + c));
            a0 = _mm256_fmadd_ps(_mm256_castsi256_ps(_mm256_slli_epi32(p0, 16)), even, a0);
            b0 = _mm256_fmadd_ps(_mm256_castsi256_ps(_mm256_and_si256(p0, high)), odd, b0);
            a1 = _mm256_fmadd_ps(_mm256_castsi256_ps(_mm256_slli_epi32(p1, 16)), even, a1);
            b1 = _mm256_fmadd_ps(_mm256_castsi256_ps(_mm256_and_si256(p1, high)), odd, b1);
            a2 = _mm256_fmadd_ps(_mm256_castsi256_ps(_mm256_slli_epi32(p2, 16)), even, a2);
            b2 = _mm256_fmadd_ps(_mm256_castsi256_ps(_mm256_and_si256(p2, high)), odd, b2);
            a3 = _mm256_fmadd_ps(_mm256_castsi256_ps(_mm256_slli_epi32(p3, 16)), even, a3);
            b3 = _mm256_fmadd_ps(_mm256_castsi256_ps(_mm256_and_si256(p3, high)), odd, b3);
        }
        float s0 = hsum8(_mm256_add_ps(a0, b0)), s1 = hsum8(_mm256_add_ps(a1, b1));
        float s2 = hsum8(_mm256_add_ps(a2, b2)), s3 = hsum8(_mm256_add_ps(a3, b3));
        for (size_t c = wide; c < cols; c++) {
            s0 += from_bf16(w0[c]) * x[c];
            s1 += from_bf16(w1[c]) * x[c];
            s2 += from_bf16(w2[c]) * x[c];
            s3 += from_bf16(w3[c]) * x[c];
        }
        store(y + r, s0, alpha, beta);
        store(y + r + 1, s1, alpha, beta);
        store(y + r + 2, s2, alpha, beta);
        store(y + r + 3, s3, alpha, beta);
    }
    if (r < rows) gemv_bf16_avx2(w + r * ldw, rows - r, cols, ldw, x, alpha, beta, y + r);
}
#endif

static void gemv_f16_generic(const tc_half *w, size_t rows, size_t cols, size_t ldw, const float *x, float alpha, float beta,
                             float *y) {
    for (size_t r = 0; r < rows; r++) {
        const tc_half *row = w + r * ldw;
        float partial[8] = {0, 0, 0, 0, 0, 0, 0, 0};
        size_t c = 0;
        for (; c + 8 <= cols; c += 8) {
            for (int lane = 0; lane < 8; lane++) partial[lane] += from_f16(row[c + lane]) * x[c + lane];
        }
        float sum = 0;
        for (int lane = 0; lane < 8; lane++) sum += partial[lane];
        for (; c < cols; c++) sum += from_f16(row[c]) * x[c];
        store(y + r, sum, alpha, beta);
    }
}

static void gemv_f32_generic(const float *w, size_t rows, size_t cols, size_t ldw, const float *x, float alpha, float beta,
                             float *y) {
    for (size_t r = 0; r < rows; r++) {
        const float *row = w + r * ldw;
        float partial[8] = {0, 0, 0, 0, 0, 0, 0, 0};
        size_t c = 0;
        for (; c + 8 <= cols; c += 8) {
            for (int lane = 0; lane < 8; lane++) partial[lane] += row[c + lane] * x[c + lane];
        }
        float sum = 0;
        for (int lane = 0; lane < 8; lane++) sum += partial[lane];
        for (; c < cols; c++) sum += row[c] * x[c];
        store(y + r, sum, alpha, beta);
    }
}

// ---- dispatch ----------------------------------------------------------------------------------------------------

int tc_uses_avx2(void) {
#if TC_X86
    static int cached = -1;
    if (cached < 0) {
        __builtin_cpu_init();
        cached = __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma") && __builtin_cpu_supports("f16c");
    }
    return cached;
#else
    return 0;
#endif
}

int tc_uses_avx512(void) {
#if TC_X86
    static int cached = -1;
    if (cached < 0) {
        __builtin_cpu_init();
        cached = __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw");
    }
    return cached;
#else
    return 0;
#endif
}

void tc_f32_to_bf16(const float *x, uint16_t *y, size_t n) {
#if TC_X86
    if (tc_uses_avx512()) { f32_to_bf16_avx512(x, y, n); return; }
    if (tc_uses_avx2()) { f32_to_bf16_avx2(x, y, n); return; }
#endif
    f32_to_bf16_generic(x, y, n);
}

static void widen_bf16(const tc_half *x, float *y, size_t n) {
#if TC_X86
    if (tc_uses_avx512()) { bf16_to_f32_avx512(x, y, n); return; }
    if (tc_uses_avx2()) { bf16_to_f32_avx2(x, y, n); return; }
#endif
    bf16_to_f32_generic(x, y, n);
}

void tc_bf16_to_f32(const uint16_t *x, float *y, size_t n) { widen_bf16(x, y, n); }

void tc_gemv_bf16(const uint16_t *w, size_t rows, size_t cols, size_t ldw, const float *x, float alpha, float beta, float *y) {
#if TC_X86
    if (tc_uses_avx512()) { gemv_bf16_pairs_avx512(w, rows, cols, ldw, x, alpha, beta, y); return; }
    if (tc_uses_avx2()) { gemv_bf16_pairs_avx2(w, rows, cols, ldw, x, alpha, beta, y); return; }
#endif
    gemv_generic(w, rows, cols, ldw, x, alpha, beta, y);
}

static void widen_f16(const tc_half *x, float *y, size_t n) {
#if TC_X86
    if (tc_uses_avx512()) { f16_to_f32_avx512(x, y, n); return; }
    if (tc_uses_avx2()) { f16_to_f32_avx2(x, y, n); return; }
#endif
    f16_to_f32_generic(x, y, n);
}

void tc_f16_to_f32(const uint16_t *x, float *y, size_t n) { widen_f16(x, y, n); }

void tc_gemv_f16(const uint16_t *w, size_t rows, size_t cols, size_t ldw, const float *x, float alpha, float beta, float *y) {
#if TC_X86
    if (tc_uses_avx512()) { gemv_f16_avx512(w, rows, cols, ldw, x, alpha, beta, y); return; }
    if (tc_uses_avx2()) { gemv_f16_avx2(w, rows, cols, ldw, x, alpha, beta, y); return; }
#endif
    gemv_f16_generic(w, rows, cols, ldw, x, alpha, beta, y);
}

void tc_gemv_f32(const float *w, size_t rows, size_t cols, size_t ldw, const float *x, float alpha, float beta, float *y) {
#if TC_X86
    if (tc_uses_avx512()) { gemv_f32_avx512(w, rows, cols, ldw, x, alpha, beta, y); return; }
    if (tc_uses_avx2()) { gemv_f32_avx2(w, rows, cols, ldw, x, alpha, beta, y); return; }
#endif
    gemv_f32_generic(w, rows, cols, ldw, x, alpha, beta, y);
}

static void gemv_t_f32_generic(const float *w, size_t rows, size_t cols, size_t ldw, const float *x, float alpha, float *y) {
    for (size_t c = 0; c < cols; c++) y[c] = 0;
    for (size_t r = 0; r < rows; r++) {
        const float *row = w + r * ldw;
        float weight = alpha * x[r];
        for (size_t c = 0; c < cols; c++) y[c] += weight * row[c];
    }
}

#if TC_X86
// Decoding's attention output per head: y (headDim) = Σ_r p[r] · V[r], V (keys, headDim) with row stride kvDim. The
// portable loop reads and writes y once per key; here 32 columns of y stay in four registers while the keys stream
// past (stories15M: headDim 48, up to a few hundred keys, 6 heads × 6 layers per token; 3.5% of a decoding profile
// before). Multiply, then add, in the same order as the portable loop (no FMA: this is compiled for AVX2 alone), so
// the result is unchanged bit for bit.
__attribute__((target("avx2"))) static void gemv_t_f32_avx2(const float *w, size_t rows, size_t cols, size_t ldw, const float *x,
                                                            float alpha, float *y) {
    size_t c = 0;
    for (; c + 32 <= cols; c += 32) {
        __m256 y0 = _mm256_setzero_ps(), y1 = _mm256_setzero_ps(), y2 = _mm256_setzero_ps(), y3 = _mm256_setzero_ps();
        for (size_t r = 0; r < rows; r++) {
            const float *row = w + r * ldw + c;
            __m256 weight = _mm256_set1_ps(alpha * x[r]);
            y0 = _mm256_add_ps(y0, _mm256_mul_ps(weight, _mm256_loadu_ps(row)));
            y1 = _mm256_add_ps(y1, _mm256_mul_ps(weight, _mm256_loadu_ps(row + 8)));
            y2 = _mm256_add_ps(y2, _mm256_mul_ps(weight, _mm256_loadu_ps(row + 16)));
            y3 = _mm256_add_ps(y3, _mm256_mul_ps(weight, _mm256_loadu_ps(row + 24)));
        }
        _mm256_storeu_ps(y + c, y0);
        _mm256_storeu_ps(y + c + 8, y1);
        _mm256_storeu_ps(y + c + 16, y2);
        _mm256_storeu_ps(y + c + 24, y3);
    }
    for (; c + 8 <= cols; c += 8) {
        __m256 y0 = _mm256_setzero_ps();
        for (size_t r = 0; r < rows; r++) {
            y0 = _mm256_add_ps(y0, _mm256_mul_ps(_mm256_set1_ps(alpha * x[r]), _mm256_loadu_ps(w + r * ldw + c)));
        }
        _mm256_storeu_ps(y + c, y0);
    }
    for (; c < cols; c++) {
        float sum = 0;
        for (size_t r = 0; r < rows; r++) sum += (alpha * x[r]) * w[r * ldw + c];
        y[c] = sum;
    }
}
#endif

void tc_gemv_t_f32(const float *w, size_t rows, size_t cols, size_t ldw, const float *x, float alpha, float *y) {
#if TC_X86
    if (tc_uses_avx2()) { gemv_t_f32_avx2(w, rows, cols, ldw, x, alpha, y); return; }
#endif
    gemv_t_f32_generic(w, rows, cols, ldw, x, alpha, y);
}

// ---- log-sum-exp -------------------------------------------------------------------------------------------------

// exp(x) for x ≤ 88: x = n·ln2 + r, |r| ≤ ln2/2, exp(r) by a degree-6 polynomial, 2ⁿ through the exponent bits (the
// same scheme and coefficients as the Swift LogSoftmaxKernels.exp8); relative error below 2e-7, ~0 below −87.
static inline float exp_poly(float x) {
    if (x > 88.0f) x = 88.0f;
    if (x < -87.0f) x = -87.0f;
    float n = __builtin_roundf(x * 1.442695040888963f);
    float r = x - n * 0.693145751953125f;
    r = r - n * 1.428606765330187e-06f;
    float p = 1.0f / 720.0f;
    p = p * r + 1.0f / 120.0f;
    p = p * r + 1.0f / 24.0f;
    p = p * r + 1.0f / 6.0f;
    p = p * r + 0.5f;
    p = p * r + 1.0f;
    p = p * r + 1.0f;
    uint32_t bits = (uint32_t)((int32_t)n + 127) << 23;
    float scale;
    memcpy(&scale, &bits, 4);
    return p * scale;
}

static double log_sum_exp_generic(const float *x, size_t n, float *maximum) {
    float m = -__builtin_inff();
    for (size_t i = 0; i < n; i++) m = x[i] > m ? x[i] : m;
    double sum = 0;
    for (size_t i = 0; i < n; i++) sum += exp_poly(x[i] - m);
    *maximum = m;
    return (double)m + __builtin_log(sum);
}

#if TC_X86
__attribute__((target("avx512f,avx512bw"))) static inline __m512 exp16(__m512 x) {
    x = _mm512_min_ps(_mm512_max_ps(x, _mm512_set1_ps(-87.0f)), _mm512_set1_ps(88.0f));
    __m512 n = _mm512_roundscale_ps(_mm512_mul_ps(x, _mm512_set1_ps(1.442695040888963f)), _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    __m512 r = _mm512_fnmadd_ps(n, _mm512_set1_ps(0.693145751953125f), x);
    r = _mm512_fnmadd_ps(n, _mm512_set1_ps(1.428606765330187e-06f), r);
    __m512 p = _mm512_set1_ps(1.0f / 720.0f);
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.0f / 120.0f));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.0f / 24.0f));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.0f / 6.0f));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(0.5f));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.0f));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.0f));
    __m512i bits = _mm512_slli_epi32(_mm512_add_epi32(_mm512_cvtps_epi32(n), _mm512_set1_epi32(127)), 23);
    return _mm512_mul_ps(p, _mm512_castsi512_ps(bits));
}

__attribute__((target("avx512f,avx512bw"))) static double log_sum_exp_avx512(const float *x, size_t n, float *maximum) {
    size_t vec = n & ~(size_t)15;
    __m512 m0 = _mm512_set1_ps(-__builtin_inff()), m1 = m0;
    size_t i = 0;
    for (; i + 32 <= vec; i += 32) {
        m0 = _mm512_max_ps(m0, _mm512_loadu_ps(x + i));
        m1 = _mm512_max_ps(m1, _mm512_loadu_ps(x + i + 16));
    }
    for (; i < vec; i += 16) m0 = _mm512_max_ps(m0, _mm512_loadu_ps(x + i));
    float m = _mm512_reduce_max_ps(_mm512_max_ps(m0, m1));
    for (; i < n; i++) m = x[i] > m ? x[i] : m;
    __m512 shift = _mm512_set1_ps(m);
    __m512 s0 = _mm512_setzero_ps(), s1 = _mm512_setzero_ps();
    for (i = 0; i + 32 <= vec; i += 32) {
        s0 = _mm512_add_ps(s0, exp16(_mm512_sub_ps(_mm512_loadu_ps(x + i), shift)));
        s1 = _mm512_add_ps(s1, exp16(_mm512_sub_ps(_mm512_loadu_ps(x + i + 16), shift)));
    }
    for (; i < vec; i += 16) s0 = _mm512_add_ps(s0, exp16(_mm512_sub_ps(_mm512_loadu_ps(x + i), shift)));
    double sum = (double)_mm512_reduce_add_ps(_mm512_add_ps(s0, s1));
    for (; i < n; i++) sum += exp_poly(x[i] - m);
    *maximum = m;
    return (double)m + __builtin_log(sum);
}
#endif

double tc_log_sum_exp(const float *x, size_t n, float *maximum) {
#if TC_X86
    if (tc_uses_avx512()) return log_sum_exp_avx512(x, n, maximum);
#endif
    return log_sum_exp_generic(x, n, maximum);
}
