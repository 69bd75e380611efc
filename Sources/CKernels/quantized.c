#include "CKernels.h"

#include <stdlib.h>
#include <string.h>

#if defined(__x86_64__)
#include <immintrin.h>
#define TC_X86 1
#define TC_AVX2 __attribute__((target("avx2,fma,f16c")))
#else
#define TC_X86 0
#endif

// mlx affine quantization (docs/quantized-weights.md). Row r of the logical (rows, cols) matrix is the bit stream of
// its cols codes, little end first: code c occupies bits [c·bits, (c+1)·bits) of the row's words read as one
// little-endian integer (3, 5 and 6 bits straddle word boundaries). A group of `group_size` ≥ 32 codes spans
// bits·group_size/32 whole words, so groups start on word boundaries. w[r][c] = scale[r][g] · code + bias[r][g] with
// g = c / group_size, in float32.

enum { TC_MAX_GROUP = 128, TC_STACK_GROUPS = 2048 };

static inline size_t words_per_row(const tc_affine_matrix *m) { return m->cols * (size_t)m->bits / 32; }
static inline size_t groups_per_row(const tc_affine_matrix *m) { return m->cols / (size_t)m->group_size; }

// Scales and biases of row r as float32 (exact widening of the stored dtype). mlx's safetensors writer does not pad
// its header, so tensors can start at any byte: the row's 16-bit values are copied to an aligned buffer first (the
// float32 ones are copied straight into place).
static void row_scales(const tc_affine_matrix *m, size_t r, float *scales, float *biases) {
    size_t groups = groups_per_row(m);
    size_t element = m->scale_kind == TC_F32 ? 4 : 2;
    const char *scale_row = (const char *)m->scales + r * groups * element, *bias_row = (const char *)m->biases + r * groups * element;
    if (element == 4) {
        memcpy(scales, scale_row, groups * 4);
        memcpy(biases, bias_row, groups * 4);
        return;
    }
    uint16_t staging[2 * TC_STACK_GROUPS];
    uint16_t *halves = groups <= TC_STACK_GROUPS ? staging : malloc(2 * groups * sizeof(uint16_t));
    memcpy(halves, scale_row, groups * 2);
    memcpy(halves + groups, bias_row, groups * 2);
    if (m->scale_kind == TC_BF16) {
        tc_bf16_to_f32(halves, scales, groups);
        tc_bf16_to_f32(halves + groups, biases, groups);
    } else {
        tc_f16_to_f32(halves, scales, groups);
        tc_f16_to_f32(halves + groups, biases, groups);
    }
    if (halves != staging) free(halves);
}

static inline const uint8_t *row_bytes(const tc_affine_matrix *m, size_t row) {
    return (const uint8_t *)m->packed + row * words_per_row(m) * 4;
}

int tc_affine_scales_finite(const tc_affine_matrix *m) {
    size_t groups = groups_per_row(m);
    float *values = malloc(2 * (groups ? groups : 1) * sizeof(float));
    int finite = 1;
    for (size_t r = 0; r < m->rows && finite; r++) {
        row_scales(m, r, values, values + groups);
        unsigned bad = 0;
        for (size_t i = 0; i < 2 * groups; i++) {
            uint32_t bits;
            memcpy(&bits, values + i, 4);
            bad |= (unsigned)((bits & 0x7f800000u) == 0x7f800000u);
        }
        finite = !bad;
    }
    free(values);
    return finite;
}

// The codes of one group (`count` = group_size values, a multiple of 8, starting on a word boundary) as bytes, in
// order. 8 codes of `bits` bits fill exactly `bits` bytes, so each block of 8 is one little-endian 8-byte load (any
// alignment; it reads into the next block, which is still inside the row) and 8 shifts; the group's last block is
// assembled byte by byte so that nothing past the tensor's end is read. `bits` is a constant in each inlined copy (a
// memcpy of 3 or 5 bytes became a library call: 2.5 ns per code). Little-endian hosts (x86-64, arm64).
static inline __attribute__((always_inline)) void unpack_fixed(const uint8_t *bytes, const int bits, size_t count, uint8_t *codes) {
    const uint64_t mask = ((uint64_t)1 << bits) - 1;
    const size_t blocks = count / 8;
    for (size_t block = 0; block < blocks; block++) {
        const uint8_t *source = bytes + block * (size_t)bits;
        uint64_t window = 0;
        if (block + 1 < blocks) {
            memcpy(&window, source, 8);
        } else {
            for (int i = 0; i < bits; i++) window |= (uint64_t)source[i] << (8 * i);
        }
        for (int k = 0; k < 8; k++) codes[block * 8 + (size_t)k] = (uint8_t)((window >> (k * bits)) & mask);
    }
}

static inline void unpack_group(const uint8_t *bytes, int bits, size_t count, uint8_t *codes) {
    switch (bits) {
    case 2: unpack_fixed(bytes, 2, count, codes); break;
    case 3: unpack_fixed(bytes, 3, count, codes); break;
    case 4: unpack_fixed(bytes, 4, count, codes); break;
    case 5: unpack_fixed(bytes, 5, count, codes); break;
    case 6: unpack_fixed(bytes, 6, count, codes); break;
    default: memcpy(codes, bytes, count); break;  // 8 bits: one byte per code
    }
}

#if TC_X86
TC_AVX2 static inline __m256 codes8_f(__m128i bytes) { return _mm256_cvtepi32_ps(_mm256_cvtepu8_epi32(bytes)); }

// A whole group into `out`: scale · q + bias as a product then a sum (two roundings, like the scalar loop: the values
// are the same bits on every path). 4-bit codes are split into nibbles and interleaved back into order.
TC_AVX2 static void dequantize_group_avx2(const uint8_t *packed, int bits, size_t group, float scale, float bias, float *out) {
    const __m256 s = _mm256_set1_ps(scale), b = _mm256_set1_ps(bias);
    uint8_t codes[TC_MAX_GROUP];
    const uint8_t *bytes = packed;
    if (bits == 4) {
        const __m128i low_mask = _mm_set1_epi8(0x0f);
        for (size_t c = 0; c < group; c += 32) {
            __m128i word = _mm_loadu_si128((const __m128i *)(packed + c / 2));
            __m128i low = _mm_and_si128(word, low_mask), high = _mm_and_si128(_mm_srli_epi16(word, 4), low_mask);
            __m128i first = _mm_unpacklo_epi8(low, high), second = _mm_unpackhi_epi8(low, high);
            _mm256_storeu_ps(out + c, _mm256_add_ps(_mm256_mul_ps(codes8_f(first), s), b));
            _mm256_storeu_ps(out + c + 8, _mm256_add_ps(_mm256_mul_ps(codes8_f(_mm_unpackhi_epi64(first, first)), s), b));
            _mm256_storeu_ps(out + c + 16, _mm256_add_ps(_mm256_mul_ps(codes8_f(second), s), b));
            _mm256_storeu_ps(out + c + 24, _mm256_add_ps(_mm256_mul_ps(codes8_f(_mm_unpackhi_epi64(second, second)), s), b));
        }
        return;
    }
    if (bits != 8) {
        unpack_group(packed, bits, group, codes);
        bytes = codes;
    }
    for (size_t c = 0; c < group; c += 8) {
        __m128i eight = _mm_loadl_epi64((const __m128i *)(bytes + c));
        _mm256_storeu_ps(out + c, _mm256_add_ps(_mm256_mul_ps(codes8_f(eight), s), b));
    }
}
#endif

void tc_dequantize_block(const tc_affine_matrix *m, size_t row_begin, size_t rows, size_t col_begin, size_t cols, float *out) {
    if (rows == 0 || cols == 0) return;
    const size_t group = (size_t)m->group_size, groups = groups_per_row(m);
    const size_t group_bytes = group * (size_t)m->bits / 8;
    float stack_scales[TC_STACK_GROUPS], stack_biases[TC_STACK_GROUPS];
    float *scales = groups <= TC_STACK_GROUPS ? stack_scales : malloc(2 * groups * sizeof(float));
    float *biases = groups <= TC_STACK_GROUPS ? stack_biases : scales + groups;
    uint8_t codes[TC_MAX_GROUP];
    float values[TC_MAX_GROUP];
#if TC_X86
    const int avx2 = tc_uses_avx2();
#endif
    size_t first_group = col_begin / group, end_group = (col_begin + cols + group - 1) / group;
    for (size_t r = 0; r < rows; r++) {
        size_t row = row_begin + r;
        row_scales(m, row, scales, biases);
        const uint8_t *packed = row_bytes(m, row);
        float *target = out + r * cols;
        for (size_t g = first_group; g < end_group; g++) {
            size_t start = g * group, lo = start < col_begin ? col_begin - start : 0;
            size_t hi = start + group > col_begin + cols ? col_begin + cols - start : group;
            float scale = scales[g], bias = biases[g];
            float *destination = target + (start + lo - col_begin);
#if TC_X86
            if (avx2) {
                // Whole groups straight into place; a partial one (a column range's edges) through a buffer.
                if (lo == 0 && hi == group) {
                    dequantize_group_avx2(packed + g * group_bytes, m->bits, group, scale, bias, destination);
                } else {
                    dequantize_group_avx2(packed + g * group_bytes, m->bits, group, scale, bias, values);
                    memcpy(destination, values + lo, (hi - lo) * sizeof(float));
                }
                continue;
            }
#endif
            unpack_group(packed + g * group_bytes, m->bits, group, codes);
            for (size_t i = lo; i < hi; i++) destination[i - lo] = scale * (float)codes[i] + bias;
        }
    }
    if (scales != stack_scales) free(scales);
}

// ---- matrix-vector product on the packed codes ---------------------------------------------------------------------

// Σ_c x[c]·(s_g·q_c + b_g) = Σ_g (s_g · Σ_{c∈g} q_c·x[c] + b_g · Σ_{c∈g} x[c]): the codes are converted to float and
// multiplied by x, each group's sum scaled once, and the biases meet the per-group sums of x (computed once per call).
// Float32 products and sums throughout; the order differs from a dequantize-then-GEMM product only by rounding.

static inline void store(float *y, float sum, float alpha, float beta) {
    *y = beta == 0 ? alpha * sum : alpha * sum + beta * *y;
}

static void group_sums(const float *x, size_t cols, size_t group, float *sums) {
    for (size_t g = 0; g < cols / group; g++) {
        float partial[8] = {0, 0, 0, 0, 0, 0, 0, 0};
        for (size_t c = 0; c < group; c += 8)
            for (int lane = 0; lane < 8; lane++) partial[lane] += x[g * group + c + lane];
        float sum = 0;
        for (int lane = 0; lane < 8; lane++) sum += partial[lane];
        sums[g] = sum;
    }
}

static void gemv_affine_rows_generic(const tc_affine_matrix *m, size_t row_begin, size_t rows, const float *x, const float *sums,
                                     float *scales, float *biases, float alpha, float beta, float *y) {
    const size_t group = (size_t)m->group_size, groups = groups_per_row(m);
    const size_t group_bytes = group * (size_t)m->bits / 8;
    uint8_t codes[TC_MAX_GROUP];
    for (size_t r = 0; r < rows; r++) {
        size_t row = row_begin + r;
        row_scales(m, row, scales, biases);
        const uint8_t *packed = row_bytes(m, row);
        float total = 0, bias_total = 0;
        for (size_t g = 0; g < groups; g++) {
            unpack_group(packed + g * group_bytes, m->bits, group, codes);
            const float *xg = x + g * group;
            float partial[8] = {0, 0, 0, 0, 0, 0, 0, 0};
            for (size_t c = 0; c < group; c += 8)
                for (int lane = 0; lane < 8; lane++) partial[lane] += (float)codes[c + lane] * xg[c + lane];
            float sum = 0;
            for (int lane = 0; lane < 8; lane++) sum += partial[lane];
            total += scales[g] * sum;
            bias_total += biases[g] * sums[g];
        }
        store(y + r, total + bias_total, alpha, beta);
    }
}

#if TC_X86
TC_AVX2 static inline float hsum8_q(__m256 v) {
    __m128 low = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    low = _mm_add_ps(low, _mm_movehl_ps(low, low));
    low = _mm_add_ss(low, _mm_movehdup_ps(low));
    return _mm_cvtss_f32(low);
}

// 8 codes (bytes) → 8 floats.
TC_AVX2 static inline __m256 codes8(__m128i bytes) { return _mm256_cvtepi32_ps(_mm256_cvtepu8_epi32(bytes)); }

// Σ over 32 codes given as two 16-byte vectors in order, times x[0..32), into four accumulators (short dependency
// chains: a group of 64 codes is two FMAs per chain).
TC_AVX2 static inline void dot32(__m128i first, __m128i second, const float *x, __m256 *a) {
    a[0] = _mm256_fmadd_ps(codes8(first), _mm256_loadu_ps(x), a[0]);
    a[1] = _mm256_fmadd_ps(codes8(_mm_unpackhi_epi64(first, first)), _mm256_loadu_ps(x + 8), a[1]);
    a[2] = _mm256_fmadd_ps(codes8(second), _mm256_loadu_ps(x + 16), a[2]);
    a[3] = _mm256_fmadd_ps(codes8(_mm_unpackhi_epi64(second, second)), _mm256_loadu_ps(x + 24), a[3]);
}

// One scale or bias (index i of a row) as float, read in place at any alignment.
TC_AVX2 static inline float load_scale(const char *row, int kind, size_t i) {
    if (kind == TC_F32) {
        float value;
        memcpy(&value, row + 4 * i, 4);
        return value;
    }
    uint16_t half;
    memcpy(&half, row + 2 * i, 2);
    if (kind == TC_F16) return _cvtsh_ss(half);
    uint32_t bits = (uint32_t)half << 16;
    float value;
    memcpy(&value, &bits, 4);
    return value;
}

// Eight of them (unaligned loads).
TC_AVX2 static inline __m256 load8_scales(const char *row, int kind, size_t i) {
    if (kind == TC_F32) return _mm256_loadu_ps((const float *)(row + 4 * i));
    __m128i halves = _mm_loadu_si128((const __m128i *)(row + 2 * i));
    if (kind == TC_F16) return _mm256_cvtph_ps(halves);
    return _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_cvtepu16_epi32(halves), 16));
}

// One row at a time, one group at a time; scales and biases are read in place. 4-bit: 16 bytes hold 32 codes, low
// nibble first (code 2j in byte j's low half, 2j+1 in its high half); interleaving the two nibble vectors restores the
// order. 8-bit: one byte per code. Other widths unpack a group into bytes first (scalar), then take the 8-bit path.
TC_AVX2 static void gemv_affine_rows_avx2(const tc_affine_matrix *m, size_t row_begin, size_t rows, const float *x, const float *sums,
                                          float alpha, float beta, float *y) {
    const size_t group = (size_t)m->group_size, groups = groups_per_row(m);
    const size_t group_bytes = group * (size_t)m->bits / 8;
    const int bits = m->bits, kind = m->scale_kind;
    const size_t scale_row_bytes = groups * (kind == TC_F32 ? 4 : 2);
    const __m128i low_mask = _mm_set1_epi8(0x0f);
    uint8_t codes[TC_MAX_GROUP];
    for (size_t r = 0; r < rows; r++) {
        size_t row = row_begin + r;
        const char *scale_row = (const char *)m->scales + row * scale_row_bytes, *bias_row = (const char *)m->biases + row * scale_row_bytes;
        const uint8_t *packed_row = row_bytes(m, row);
        __m256 total = _mm256_setzero_ps();
        for (size_t g = 0; g < groups; g++) {
            const uint8_t *group_start = packed_row + g * group_bytes;
            const float *xg = x + g * group;
            __m256 a[4] = {_mm256_setzero_ps(), _mm256_setzero_ps(), _mm256_setzero_ps(), _mm256_setzero_ps()};
            if (bits == 4) {
                for (size_t c = 0; c < group; c += 32) {
                    __m128i packed = _mm_loadu_si128((const __m128i *)(group_start + c / 2));
                    __m128i low = _mm_and_si128(packed, low_mask);
                    __m128i high = _mm_and_si128(_mm_srli_epi16(packed, 4), low_mask);
                    dot32(_mm_unpacklo_epi8(low, high), _mm_unpackhi_epi8(low, high), xg + c, a);
                }
            } else {
                const uint8_t *bytes = group_start;
                if (bits != 8) {
                    unpack_group(group_start, bits, group, codes);
                    bytes = codes;
                }
                for (size_t c = 0; c < group; c += 32) {
                    dot32(_mm_loadu_si128((const __m128i *)(bytes + c)), _mm_loadu_si128((const __m128i *)(bytes + c + 16)), xg + c, a);
                }
            }
            __m256 sum = _mm256_add_ps(_mm256_add_ps(a[0], a[1]), _mm256_add_ps(a[2], a[3]));
            total = _mm256_fmadd_ps(sum, _mm256_set1_ps(load_scale(scale_row, kind, g)), total);
        }
        __m256 bias_lanes = _mm256_setzero_ps();
        size_t g = 0;
        for (; g + 8 <= groups; g += 8) bias_lanes = _mm256_fmadd_ps(load8_scales(bias_row, kind, g), _mm256_loadu_ps(sums + g), bias_lanes);
        float bias_total = hsum8_q(bias_lanes);
        for (; g < groups; g++) bias_total += load_scale(bias_row, kind, g) * sums[g];
        store(y + r, hsum8_q(total) + bias_total, alpha, beta);
    }
}
#endif

// Rows [row_begin, row_begin + rows) of y = alpha·W·x + beta·y, given the group sums of x.
static void gemv_affine_rows(const tc_affine_matrix *m, size_t row_begin, size_t rows, const float *x, const float *sums, float alpha,
                             float beta, float *y, int portable) {
#if TC_X86
    if (!portable && tc_uses_avx2()) {
        gemv_affine_rows_avx2(m, row_begin, rows, x, sums, alpha, beta, y);
        return;
    }
#endif
    size_t groups = groups_per_row(m);
    float stack[2 * TC_STACK_GROUPS];
    float *scales = groups <= TC_STACK_GROUPS ? stack : malloc(2 * groups * sizeof(float));
    gemv_affine_rows_generic(m, row_begin, rows, x, sums, scales, scales + groups, alpha, beta, y);
    if (scales != stack) free(scales);
}

typedef struct {
    const tc_affine_matrix *m;
    const float *x, *sums;
    float alpha, beta;
    float *y;
    size_t block;
} affine_job;

static void gemv_affine_part(void *ctx, int part) {
    affine_job *job = ctx;
    size_t start = (size_t)part * job->block;
    if (start >= job->m->rows) return;
    size_t count = job->m->rows - start < job->block ? job->m->rows - start : job->block;
    gemv_affine_rows(job->m, start, count, job->x, job->sums, job->alpha, job->beta, job->y + start, 0);
}

void tc_gemv_affine_parallel(const tc_affine_matrix *m, const float *x, float alpha, float beta, float *y, int parts) {
    if (m->rows == 0) return;
    size_t groups = groups_per_row(m);
    float stack[TC_STACK_GROUPS];
    float *sums = groups <= TC_STACK_GROUPS ? stack : malloc(groups * sizeof(float));
    group_sums(x, m->cols, (size_t)m->group_size, sums);
    if (parts < 1) parts = 1;
    size_t block = (m->rows + (size_t)parts - 1) / (size_t)parts;
    block = (block + 3) / 4 * 4;
    affine_job job = {m, x, sums, alpha, beta, y, block};
    tc_parallel_for(parts, parts, gemv_affine_part, &job);
    if (sums != stack) free(sums);
}

void tc_gemv_affine_portable(const tc_affine_matrix *m, const float *x, float alpha, float beta, float *y) {
    if (m->rows == 0) return;
    size_t groups = groups_per_row(m);
    float *sums = malloc(groups * sizeof(float));
    group_sums(x, m->cols, (size_t)m->group_size, sums);
    gemv_affine_rows(m, 0, m->rows, x, sums, alpha, beta, y, 1);
    free(sums);
}
