#include "CKernels.h"
#include "row_blocks.h"

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

// ---- AVX2: the lane layout (every width) ----
//
// A block of the row's codes is spread over the 8 int32 lanes of a vector so that lane j holds c whole codes of the
// block, code k of lane j at bit offset shift(j, k). Then lanes & (mask << shift) is q · 2^shift in every lane: an
// exact integer below 2^31, so its conversion to float is exact, and it meets x · 2^(−shift) (exact: a power of two) in
// one FMA, giving exactly the float product q · x. So c codes per lane cost, per k, one and, one int→float conversion
// and one FMA whose x operand is a plain load, with no byte interleaving. The input vector is permuted and scaled once
// per call to match: x_lanes[block_codes·block + 8k + j] = x[block_codes·block + code(j, k)] · 2^(−shift(j, k)).
// Products and sums stay float32 (the scaling is exact for |x| ≥ 2^−98, i.e. anything but subnormal-range
// activations); only the summation order differs (each lane sums its own codes).
//
// - 2, 4, 8 bits: lane j is word j of a block of 8 words (one 32-byte load), c = 32/b codes, code(j, k) = c·j + k,
//   shift = b·k. The top code (k = c − 1, which would reach the sign bit) is a shift right instead, and meets x
//   unscaled. Per 64 4-bit codes: 1 load, 7 ands, 1 shift, 8 conversions, 8 FMAs (the byte-interleaving loop this
//   replaces needed ~24 instructions per 32 codes).
// - 3, 6 bits: 8 codes (3-bit) or 4 codes (6-bit) fill 3 bytes; lane j is bytes [3j, 3j + 3) of a 24-byte block
//   (64 or 32 codes), gathered by one byte shuffle of two 16-byte loads (bytes 0..15 and 8..23: nothing is read past
//   the block); code(j, k) = c·j + k, shift = b·k, all below 2^24.
// - 5 bits: 8 codes fill 5 bytes, split into two lanes of 4 codes: lane 2i is bytes [5i, 5i + 3) (codes 8i .. 8i+3 at
//   bits 5k), lane 2i + 1 bytes [5i + 2, 5i + 5) (codes 8i+4 .. 8i+7 at bits 4 + 5k); a block is 20 bytes, 32 codes,
//   loaded as bytes 0..15 and 4..19.
//
// The group sum Σ q·x is scaled once per group: a group of `group` codes spans L = group/c lanes. L ≥ 8: a group is
// L/8 whole blocks. L < 8 (4-bit g32, 3-bit g32, 2-bit g32/g64): a block holds 8/L groups, lane j belongs to group
// j/L, and the block's lanes are scaled by a vector of per-lane scales. Columns past the last whole block (cols not a
// multiple of the block: e.g. 4-bit groups of 32 with an odd number of groups) go through the byte path below with the
// original x.

static inline int lane_codes(int bits) { return bits == 3 ? 8 : bits == 5 || bits == 6 ? 4 : 32 / bits; }
static inline size_t lane_block_codes(int bits) { return 8 * (size_t)lane_codes(bits); }
static inline size_t lane_block_bytes(int bits) { return lane_block_codes(bits) * (size_t)bits / 8; }

// Which code of the block lane j's k-th code is, and the bit offset it is read at (docs above).
static inline size_t lane_code(int bits, size_t j, size_t k) {
    return bits == 5 ? 8 * (j / 2) + 4 * (j % 2) + k : (size_t)lane_codes(bits) * j + k;
}
static inline unsigned lane_shift(int bits, size_t j, size_t k) {
    if (bits == 5) return (unsigned)(5 * k + 4 * (j % 2));
    return (unsigned)(bits * k);
}
// The power of two x is scaled by (the shifted-right top code of 2, 4, 8 bits meets x unscaled).
static inline unsigned lane_x_shift(int bits, size_t j, size_t k) {
    int words = bits == 2 || bits == 4 || bits == 8;
    return words && k + 1 == (size_t)lane_codes(bits) ? 0 : lane_shift(bits, j, k);
}

// Columns covered by whole blocks (the rest of a row is the tail).
static inline size_t lane_columns(size_t cols, int bits) {
    size_t block = lane_block_codes(bits);
    return cols / block * block;
}

// x permuted and scaled for the lane layout (above) over the whole blocks.
static void permute_for_lanes(const float *x, size_t cols, int bits, float *lanes) {
    const size_t c = (size_t)lane_codes(bits), block = lane_block_codes(bits), covered = lane_columns(cols, bits);
    float scale[16][8];
    size_t code[16][8];
    for (size_t k = 0; k < c; k++)
        for (size_t j = 0; j < 8; j++) {
            scale[k][j] = 1.0f / (float)(1u << lane_x_shift(bits, j, k));
            code[k][j] = lane_code(bits, j, k);
        }
    for (size_t start = 0; start < covered; start += block)
        for (size_t k = 0; k < c; k++)
            for (size_t j = 0; j < 8; j++) lanes[start + 8 * k + j] = x[start + code[k][j]] * scale[k][j];
}

// One block's codes in lane order: 2, 4, 8 bits one 32-byte load; 3, 5, 6 bits two 16-byte loads and a byte shuffle
// that gives lane j its 3 bytes (zero above). `bits` is a constant in each inlined copy.
TC_AVX2 static inline __attribute__((always_inline)) __m256i lane_load(const uint8_t *block, const int bits) {
    if (bits == 2 || bits == 4 || bits == 8) return _mm256_loadu_si256((const __m256i *)block);
    const int high_offset = (int)lane_block_bytes(bits) - 16;
    __m256i both = _mm256_inserti128_si256(_mm256_castsi128_si256(_mm_loadu_si128((const __m128i *)block)),
                                           _mm_loadu_si128((const __m128i *)(block + high_offset)), 1);
    __m256i order;
    if (bits == 5) {
        order = _mm256_setr_epi8(0, 1, 2, -1, 2, 3, 4, -1, 5, 6, 7, -1, 7, 8, 9, -1,                            // bytes 0..9
                                 10 - 4, 11 - 4, 12 - 4, -1, 12 - 4, 13 - 4, 14 - 4, -1, 15 - 4, 16 - 4, 17 - 4, -1, // 10..19,
                                 17 - 4, 18 - 4, 19 - 4, -1);                                                      // from 4
    } else {
        order = _mm256_setr_epi8(0, 1, 2, -1, 3, 4, 5, -1, 6, 7, 8, -1, 9, 10, 11, -1,             // bytes 0..11
                                 12 - 8, 13 - 8, 14 - 8, -1, 15 - 8, 16 - 8, 17 - 8, -1, 18 - 8, // bytes 12..23,
                                 19 - 8, 20 - 8, -1, 21 - 8, 22 - 8, 23 - 8, -1);                 // loaded from 8
    }
    return _mm256_shuffle_epi8(both, order);
}

// The 8 per-lane partial sums Σ_k q[j][k] · x[code(j, k)] of one block at `block` (any alignment), from the permuted
// x. Two accumulators halve the FMA dependency chain. `bits` is a constant in each inlined copy, so the loop unrolls
// into immediate masks.
TC_AVX2 static inline __attribute__((always_inline)) __m256 lane_block_dot(const uint8_t *block, const float *lanes, const int bits) {
    const int c = lane_codes(bits);
    const unsigned mask = (1u << bits) - 1;
    const int words = bits == 2 || bits == 4 || bits == 8;
    const __m256i w = lane_load(block, bits);
    __m256 sums[2] = {_mm256_setzero_ps(), _mm256_setzero_ps()};
#pragma clang loop unroll(full)
    for (int k = 0; k < c; k++) {
        __m256i q;
        if (words && k + 1 == c) {
            q = _mm256_srli_epi32(w, 32 - bits);
        } else if (bits == 5) {
            q = _mm256_and_si256(w, _mm256_setr_epi32((int)(mask << (5 * k)), (int)(mask << (5 * k + 4)), (int)(mask << (5 * k)),
                                                      (int)(mask << (5 * k + 4)), (int)(mask << (5 * k)), (int)(mask << (5 * k + 4)),
                                                      (int)(mask << (5 * k)), (int)(mask << (5 * k + 4))));
        } else {
            q = _mm256_and_si256(w, _mm256_set1_epi32((int)(mask << (k * bits))));
        }
        sums[k & 1] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(q), _mm256_loadu_ps(lanes + 8 * k), sums[k & 1]);
    }
    return _mm256_add_ps(sums[0], sums[1]);
}

// Row r's scales as float32 into `out` (groups values): 8 at a time from the stored dtype (unaligned loads), the rest
// one by one, so the loops below broadcast each group's scale with one load.
TC_AVX2 static inline void widen_scales(const char *row, int kind, size_t groups, float *out) {
    size_t g = 0;
    for (; g + 8 <= groups; g += 8) _mm256_storeu_ps(out + g, load8_scales(row, kind, g));
    for (; g < groups; g++) out[g] = load_scale(row, kind, g);
}

// Σ_g s_g · Σ_{c∈g} q_c·x_c over the whole blocks of one row (the first `covered` columns), as 8 lanes; `scales` is
// the row's scales as float32.
TC_AVX2 static inline __attribute__((always_inline)) __m256 lane_row(const uint8_t *packed_row, const float *scales, size_t group,
                                                                     size_t covered, const float *lanes, const int bits) {
    const size_t block_codes = lane_block_codes(bits), block_bytes = lane_block_bytes(bits);
    const size_t blocks = covered / block_codes;
    __m256 total = _mm256_setzero_ps();
    if (group == block_codes) {  // one block per group: 4-bit g64, 2-bit g128, 8-bit g32 (the common case: a tight loop)
        for (size_t g = 0; g < blocks; g++) {
            __m256 sum = lane_block_dot(packed_row + g * block_bytes, lanes + g * block_codes, bits);
            total = _mm256_fmadd_ps(sum, _mm256_broadcast_ss(scales + g), total);
        }
        return total;
    }
    if (group > block_codes) {
        const size_t blocks_per_group = group / block_codes;
        for (size_t block = 0, g = 0; block < blocks; block += blocks_per_group, g++) {
            __m256 sum = lane_block_dot(packed_row + block * block_bytes, lanes + block * block_codes, bits);
            for (size_t b = 1; b < blocks_per_group; b++)
                sum = _mm256_add_ps(sum, lane_block_dot(packed_row + (block + b) * block_bytes, lanes + (block + b) * block_codes, bits));
            total = _mm256_fmadd_ps(sum, _mm256_broadcast_ss(scales + g), total);
        }
        return total;
    }
    // Several groups per block: lane j belongs to the block's group j / lanes_per_group (2 or 4 lanes per group).
    const size_t lanes_per_group = group / (size_t)lane_codes(bits), groups_per_block = 8 / lanes_per_group;
    const __m256i lane = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);
    const __m256i owner = lanes_per_group == 4 ? _mm256_srli_epi32(lane, 2) : _mm256_srli_epi32(lane, 1);
    for (size_t block = 0; block < blocks; block++) {
        // The block's groups' scales sit in lanes 0 .. groups_per_block − 1 (4 loaded: the buffer has 8 spare floats).
        __m256 lane_scales = _mm256_permutevar8x32_ps(_mm256_castps128_ps256(_mm_loadu_ps(scales + block * groups_per_block)), owner);
        __m256 sum = lane_block_dot(packed_row + block * block_bytes, lanes + block * block_codes, bits);
        total = _mm256_fmadd_ps(sum, lane_scales, total);
    }
    return total;
}

// One row at a time. The row's scales and biases are widened to float32 first (one of each per 64 codes at 4 bits,
// groups of 64). The lane blocks above cover the row's whole blocks (`lanes` is x permuted by permute_for_lanes); the
// tail groups, if any, are unpacked into bytes (scalar) and converted 8 at a time against the original x. `bits` is a
// constant in each out-of-line copy below (one per width keeps the lane loop's masks in registers).
TC_AVX2 static inline __attribute__((always_inline)) void affine_rows_avx2(const tc_affine_matrix *m, size_t row_begin, size_t rows,
                                                                           const float *x, const float *lanes, const float *sums,
                                                                           float alpha, float beta, float *y, const int bits) {
    const size_t group = (size_t)m->group_size, groups = groups_per_row(m);
    const size_t group_bytes = group * (size_t)bits / 8;
    const int kind = m->scale_kind;
    const size_t scale_row_bytes = groups * (kind == TC_F32 ? 4 : 2);
    const size_t covered = lane_columns(m->cols, bits);
    // + 8: lane_row reads 4 scales per block where a block may hold fewer groups.
    float stack[2 * TC_STACK_GROUPS + 8];
    float *scales = groups <= TC_STACK_GROUPS ? stack : malloc((2 * groups + 8) * sizeof(float));
    float *biases = scales + groups + 8;
    uint8_t codes[TC_MAX_GROUP];
    for (size_t r = 0; r < rows; r++) {
        size_t row = row_begin + r;
        widen_scales((const char *)m->scales + row * scale_row_bytes, kind, groups, scales);
        widen_scales((const char *)m->biases + row * scale_row_bytes, kind, groups, biases);
        const uint8_t *packed_row = row_bytes(m, row);
        __m256 total = lane_row(packed_row, scales, group, covered, lanes, bits);
        for (size_t g = covered / group; g < groups; g++) {
            const uint8_t *bytes = packed_row + g * group_bytes;
            if (bits != 8) {
                unpack_group(bytes, bits, group, codes);
                bytes = codes;
            }
            const float *xg = x + g * group;
            __m256 a[4] = {_mm256_setzero_ps(), _mm256_setzero_ps(), _mm256_setzero_ps(), _mm256_setzero_ps()};
            for (size_t c = 0; c < group; c += 32)
                dot32(_mm_loadu_si128((const __m128i *)(bytes + c)), _mm_loadu_si128((const __m128i *)(bytes + c + 16)), xg + c, a);
            __m256 sum = _mm256_add_ps(_mm256_add_ps(a[0], a[1]), _mm256_add_ps(a[2], a[3]));
            total = _mm256_fmadd_ps(sum, _mm256_broadcast_ss(scales + g), total);
        }
        __m256 bias_lanes = _mm256_setzero_ps();
        size_t g = 0;
        for (; g + 8 <= groups; g += 8) bias_lanes = _mm256_fmadd_ps(_mm256_loadu_ps(biases + g), _mm256_loadu_ps(sums + g), bias_lanes);
        float bias_total = hsum8_q(bias_lanes);
        for (; g < groups; g++) bias_total += biases[g] * sums[g];
        store(y + r, hsum8_q(total) + bias_total, alpha, beta);
    }
    if (scales != stack) free(scales);
}

#define TC_AFFINE_ROWS(name, b)                                                                                                         \
    TC_AVX2 __attribute__((noinline)) static void name(const tc_affine_matrix *m, size_t row_begin, size_t rows, const float *x,        \
                                                       const float *lanes, const float *sums, float alpha, float beta, float *y) {      \
        affine_rows_avx2(m, row_begin, rows, x, lanes, sums, alpha, beta, y, b);                                                        \
    }
TC_AFFINE_ROWS(affine_rows_avx2_2, 2)
TC_AFFINE_ROWS(affine_rows_avx2_3, 3)
TC_AFFINE_ROWS(affine_rows_avx2_4, 4)
TC_AFFINE_ROWS(affine_rows_avx2_5, 5)
TC_AFFINE_ROWS(affine_rows_avx2_6, 6)
TC_AFFINE_ROWS(affine_rows_avx2_8, 8)

TC_AVX2 static void gemv_affine_rows_avx2(const tc_affine_matrix *m, size_t row_begin, size_t rows, const float *x, const float *lanes,
                                          const float *sums, float alpha, float beta, float *y) {
    switch (m->bits) {
    case 2: affine_rows_avx2_2(m, row_begin, rows, x, lanes, sums, alpha, beta, y); break;
    case 3: affine_rows_avx2_3(m, row_begin, rows, x, lanes, sums, alpha, beta, y); break;
    case 4: affine_rows_avx2_4(m, row_begin, rows, x, lanes, sums, alpha, beta, y); break;
    case 5: affine_rows_avx2_5(m, row_begin, rows, x, lanes, sums, alpha, beta, y); break;
    case 6: affine_rows_avx2_6(m, row_begin, rows, x, lanes, sums, alpha, beta, y); break;
    default: affine_rows_avx2_8(m, row_begin, rows, x, lanes, sums, alpha, beta, y); break;
    }
}
#endif

// Rows [row_begin, row_begin + rows) of y = alpha·W·x + beta·y, given the group sums of x.
static void gemv_affine_rows(const tc_affine_matrix *m, size_t row_begin, size_t rows, const float *x, const float *lanes,
                             const float *sums, float alpha, float beta, float *y, int portable) {
#if TC_X86
    if (!portable && tc_uses_avx2()) {
        gemv_affine_rows_avx2(m, row_begin, rows, x, lanes, sums, alpha, beta, y);
        return;
    }
#endif
    size_t groups = groups_per_row(m);
    float stack[2 * TC_STACK_GROUPS];
    float *scales = groups <= TC_STACK_GROUPS ? stack : malloc(2 * groups * sizeof(float));
    gemv_affine_rows_generic(m, row_begin, rows, x, sums, scales, scales + groups, alpha, beta, y);
    if (scales != stack) free(scales);
}

#if TC_X86
// The calling thread's buffer for the permuted input (cols floats), grown on demand and kept: decoding calls this
// ~200 times per token with the same few widths.
static float *lanes_scratch(size_t count) {
    static __thread float *buffer;
    static __thread size_t capacity;
    if (capacity < count) {
        free(buffer);
        buffer = aligned_alloc(64, (count * sizeof(float) + 63) / 64 * 64);
        capacity = buffer ? count : 0;
    }
    return buffer;
}
#endif

typedef struct {
    const tc_affine_matrix *m;
    const float *x, *lanes, *sums;
    float alpha, beta;
    float *y;
    size_t block;
    int portable;  // 1 when there is no permuted input (no AVX2, or its buffer could not be allocated)
} affine_job;

static void gemv_affine_part(void *ctx, int part) {
    affine_job *job = ctx;
    size_t start = (size_t)part * job->block;
    if (start >= job->m->rows) return;
    size_t count = job->m->rows - start < job->block ? job->m->rows - start : job->block;
    gemv_affine_rows(job->m, start, count, job->x, job->lanes, job->sums, job->alpha, job->beta, job->y + start, job->portable);
}

void tc_gemv_affine_parallel(const tc_affine_matrix *m, const float *x, float alpha, float beta, float *y, int parts) {
    if (m->rows == 0) return;
    size_t groups = groups_per_row(m);
    float stack[TC_STACK_GROUPS];
    float *sums = groups <= TC_STACK_GROUPS ? stack : malloc(groups * sizeof(float));
    group_sums(x, m->cols, (size_t)m->group_size, sums);
    const float *lanes = x;
    int portable = 1;
#if TC_X86
    float *permuted = tc_uses_avx2() ? lanes_scratch(m->cols) : NULL;
    if (permuted) {
        permute_for_lanes(x, m->cols, m->bits, permuted);
        lanes = permuted;
        portable = 0;
    }
#endif
    if (parts < 1) parts = 1;
    affine_job job = {m, x, lanes, sums, alpha, beta, y, tc_row_block(m->rows, parts), portable};
    tc_parallel_for(parts, parts, gemv_affine_part, &job);
    if (sums != stack) free(sums);
}

void tc_gemv_affine_portable(const tc_affine_matrix *m, const float *x, float alpha, float beta, float *y) {
    if (m->rows == 0) return;
    size_t groups = groups_per_row(m);
    float *sums = malloc(groups * sizeof(float));
    group_sums(x, m->cols, (size_t)m->group_size, sums);
    gemv_affine_rows(m, 0, m->rows, x, x, sums, alpha, beta, y, 1);
    free(sums);
}
