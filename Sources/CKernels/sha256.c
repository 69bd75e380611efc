#include "CKernels.h"

#include <string.h>

#if defined(__x86_64__)
#include <cpuid.h>
#include <immintrin.h>
#define TC_X86 1
#else
#define TC_X86 0
#endif

// SHA-256 compression, FIPS 180-4 §6.2.2: the portable path transcribes the standard; the x86 path runs the same
// rounds on the SHA extensions (SHA-NI), two rounds per SHA256RNDS2.

static const uint32_t round_constants[64] = {
    0x428a2f98, 0x71374491, 0xb5c0fbcf, 0xe9b5dba5, 0x3956c25b, 0x59f111f1, 0x923f82a4, 0xab1c5ed5,
    0xd807aa98, 0x12835b01, 0x243185be, 0x550c7dc3, 0x72be5d74, 0x80deb1fe, 0x9bdc06a7, 0xc19bf174,
    0xe49b69c1, 0xefbe4786, 0x0fc19dc6, 0x240ca1cc, 0x2de92c6f, 0x4a7484aa, 0x5cb0a9dc, 0x76f988da,
    0x983e5152, 0xa831c66d, 0xb00327c8, 0xbf597fc7, 0xc6e00bf3, 0xd5a79147, 0x06ca6351, 0x14292967,
    0x27b70a85, 0x2e1b2138, 0x4d2c6dfc, 0x53380d13, 0x650a7354, 0x766a0abb, 0x81c2c92e, 0x92722c85,
    0xa2bfe8a1, 0xa81a664b, 0xc24b8b70, 0xc76c51a3, 0xd192e819, 0xd6990624, 0xf40e3585, 0x106aa070,
    0x19a4c116, 0x1e376c08, 0x2748774c, 0x34b0bcb5, 0x391c0cb3, 0x4ed8aa4a, 0x5b9cca4f, 0x682e6ff3,
    0x748f82ee, 0x78a5636f, 0x84c87814, 0x8cc70208, 0x90befffa, 0xa4506ceb, 0xbef9a3f7, 0xc67178f2,
};

// ---- portable ----------------------------------------------------------------------------------------------------

static inline uint32_t rotr(uint32_t x, int n) { return (x >> n) | (x << (32 - n)); }

void tc_sha256_blocks_portable(uint32_t state[8], const uint8_t *data, size_t blocks) {
    uint32_t w[64];
    for (size_t block = 0; block < blocks; block++, data += 64) {
        for (int t = 0; t < 16; t++) {
            const uint8_t *p = data + 4 * t;
            w[t] = (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | (uint32_t)p[3];
        }
        for (int t = 16; t < 64; t++) {
            uint32_t s0 = rotr(w[t - 15], 7) ^ rotr(w[t - 15], 18) ^ (w[t - 15] >> 3);
            uint32_t s1 = rotr(w[t - 2], 17) ^ rotr(w[t - 2], 19) ^ (w[t - 2] >> 10);
            w[t] = w[t - 16] + s0 + w[t - 7] + s1;
        }
        uint32_t a = state[0], b = state[1], c = state[2], d = state[3];
        uint32_t e = state[4], f = state[5], g = state[6], h = state[7];
        for (int t = 0; t < 64; t++) {
            uint32_t t1 = h + (rotr(e, 6) ^ rotr(e, 11) ^ rotr(e, 25)) + ((e & f) ^ (~e & g)) + round_constants[t] + w[t];
            uint32_t t2 = (rotr(a, 2) ^ rotr(a, 13) ^ rotr(a, 22)) + ((a & b) ^ (a & c) ^ (b & c));
            h = g; g = f; f = e; e = d + t1; d = c; c = b; b = a; a = t1 + t2;
        }
        state[0] += a; state[1] += b; state[2] += c; state[3] += d;
        state[4] += e; state[5] += f; state[6] += g; state[7] += h;
    }
}

// ---- SHA-NI ------------------------------------------------------------------------------------------------------
//
// SHA256RNDS2(cdgh, abef, wk) runs two rounds with the message+constant words wk[0], wk[1] and returns the new
// ABEF (dwords high to low: A B E F); after two rounds the old A, B, E, F are the new C, D, G, H, so the two state
// registers swap roles on every call. SHA256MSG1(w[t-16..t-13], w[t-12..t-9]) = w[t-16+i] + σ0(w[t-15+i]);
// SHA256MSG2(x + w[t-7..t-4], w[t-4..t-1]) adds σ1(w[t-2+i]), finishing w[t..t+3].

#if TC_X86
#define TC_SHA __attribute__((target("sha,sse4.1")))

TC_SHA static void sha256_blocks_shani(uint32_t state[8], const uint8_t *data, size_t blocks) {
    // Big-endian words: reverse the bytes within each dword.
    const __m128i byte_swap = _mm_set_epi8(12, 13, 14, 15, 8, 9, 10, 11, 4, 5, 6, 7, 0, 1, 2, 3);
    __m128i dcba = _mm_loadu_si128((const __m128i *)state);        // dwords low→high: a b c d
    __m128i hgfe = _mm_loadu_si128((const __m128i *)(state + 4));  // e f g h
    __m128i badc = _mm_shuffle_epi32(dcba, 0xB1);                   // b a d c
    __m128i efgh = _mm_shuffle_epi32(hgfe, 0x1B);                   // h g f e
    __m128i abef = _mm_alignr_epi8(badc, efgh, 8);                  // f e b a: A B E F high to low
    __m128i cdgh = _mm_blend_epi16(efgh, badc, 0xF0);               // h g d c: C D G H high to low
    for (size_t block = 0; block < blocks; block++, data += 64) {
        const __m128i saved_abef = abef, saved_cdgh = cdgh;
        __m128i m[4];  // m[j & 3] holds w[4j .. 4j+3] for the latest j
        for (int j = 0; j < 4; j++) m[j] = _mm_shuffle_epi8(_mm_loadu_si128((const __m128i *)(data + 16 * j)), byte_swap);
#pragma clang loop unroll(full)
        for (int j = 0; j < 16; j++) {
            if (j >= 4) {
                __m128i x = _mm_sha256msg1_epu32(m[j & 3], m[(j + 1) & 3]);             // w[t-16] + σ0(w[t-15])
                x = _mm_add_epi32(x, _mm_alignr_epi8(m[(j + 3) & 3], m[(j + 2) & 3], 4));  // + w[t-7]
                m[j & 3] = _mm_sha256msg2_epu32(x, m[(j + 3) & 3]);                      // + σ1(w[t-2])
            }
            __m128i wk = _mm_add_epi32(m[j & 3], _mm_loadu_si128((const __m128i *)(round_constants + 4 * j)));
            cdgh = _mm_sha256rnds2_epu32(cdgh, abef, wk);                  // rounds 4j, 4j+1: new ABEF
            abef = _mm_sha256rnds2_epu32(abef, cdgh, _mm_shuffle_epi32(wk, 0x0E));  // rounds 4j+2, 4j+3
        }
        abef = _mm_add_epi32(abef, saved_abef);
        cdgh = _mm_add_epi32(cdgh, saved_cdgh);
    }
    __m128i feba = _mm_shuffle_epi32(abef, 0x1B);                   // a b e f low→high
    __m128i ghcd = _mm_shuffle_epi32(cdgh, 0xB1);                   // g h c d low→high
    _mm_storeu_si128((__m128i *)state, _mm_blend_epi16(feba, ghcd, 0xF0));        // a b c d
    _mm_storeu_si128((__m128i *)(state + 4), _mm_alignr_epi8(ghcd, feba, 8));      // e f g h
}
#endif

int tc_uses_sha_ni(void) {
#if TC_X86
    static int cached = -1;
    if (cached < 0) {
        unsigned eax, ebx, ecx, edx;
        int sse41 = __get_cpuid(1, &eax, &ebx, &ecx, &edx) && (ecx & (1u << 19)) && (ecx & (1u << 9));  // SSE4.1, SSSE3
        int sha = __get_cpuid_count(7, 0, &eax, &ebx, &ecx, &edx) && (ebx & (1u << 29));               // SHA
        cached = sse41 && sha;
    }
    return cached;
#else
    return 0;
#endif
}

void tc_sha256_blocks(uint32_t state[8], const uint8_t *data, size_t blocks) {
#if TC_X86
    if (tc_uses_sha_ni()) { sha256_blocks_shani(state, data, blocks); return; }
#endif
    tc_sha256_blocks_portable(state, data, blocks);
}
