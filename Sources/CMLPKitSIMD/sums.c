#include "CMLPKitSIMD.h"

// The bias gradient's column sums over one block of rows, with AVX-512: 256 columns at a time in
// sixteen registers, each row's part read once, in order. Each column's sum is a chain of
// additions from zero in row order, as the Swift loop adds them, so the bits are the same.

#if defined(__x86_64__)
#include <immintrin.h>

#define AVX512 __attribute__((target("avx512f,avx512dq,avx512vl,avx512bw,avx2,fma")))

// Columns j..<j + 16·vectors − 16 + (the lanes of `last`): `vectors` (a constant where inlined,
// so that the sums stay in registers) vectors of sums, the last one under the mask.
static inline __attribute__((always_inline)) AVX512 void sum_vectors(const float *matrix, long ld, long start, long end,
                                                                    long j, const int vectors, __mmask16 last, float *sums) {
    __m512 s[16];
    for (int v = 0; v < vectors; ++v) s[v] = _mm512_setzero_ps();
    for (long i = start; i < end; ++i) {
        const float *row = matrix + i * ld + j;
        for (int v = 0; v < vectors - 1; ++v) s[v] = _mm512_add_ps(s[v], _mm512_loadu_ps(row + 16 * v));
        s[vectors - 1] = _mm512_add_ps(s[vectors - 1], _mm512_maskz_loadu_ps(last, row + 16 * (vectors - 1)));
    }
    for (int v = 0; v < vectors - 1; ++v) _mm512_storeu_ps(sums + j + 16 * v, s[v]);
    _mm512_mask_storeu_ps(sums + j + 16 * (vectors - 1), last, s[vectors - 1]);
}

AVX512 void mlpkit_column_sums_avx512(const float *matrix, long ld, long columns, long start, long end, float *sums) {
    long j = 0;
    for (; j + 256 <= columns; j += 256) sum_vectors(matrix, ld, start, end, j, 16, (__mmask16)0xFFFF, sums);
    const long left = columns - j;
    if (left <= 0) return;
    const __mmask16 last = (__mmask16)(left % 16 == 0 ? 0xFFFF : (1u << (left % 16)) - 1);
    switch ((left + 15) / 16) {
#define SUMS_CASE(V) case V: sum_vectors(matrix, ld, start, end, j, V, last, sums); break;
    SUMS_CASE(1) SUMS_CASE(2) SUMS_CASE(3) SUMS_CASE(4) SUMS_CASE(5) SUMS_CASE(6) SUMS_CASE(7) SUMS_CASE(8)
    SUMS_CASE(9) SUMS_CASE(10) SUMS_CASE(11) SUMS_CASE(12) SUMS_CASE(13) SUMS_CASE(14) SUMS_CASE(15)
#undef SUMS_CASE
    default: break;
    }
}

#else

void mlpkit_column_sums_avx512(const float *matrix, long ld, long columns, long start, long end, float *sums) {
    (void)matrix; (void)ld; (void)columns; (void)start; (void)end; (void)sums;
}

#endif
