// MLPKit's tanh, sixteen lanes at a time (`tanh.c` says how it is computed; its scalar twin
// `mlpkit_tanh` does the same operations): here so that a kernel can take it in its epilogue
// (`skinny.c`). Include after `glibc_float.h` (no contraction, the vector helpers).
#ifndef MLPKIT_TANH16_H
#define MLPKIT_TANH16_H

#define TANH_SPLIT 0x3f666666u   // 0.9f
#define TANH_CLAMP 0x41200000u   // 10.0f
#define TANH_P0 0xbeaaaaa7u      // the fitted P(u) = P0 + P1·u + … + P6·u⁶
#define TANH_P1 0x3e08879au
#define TANH_P2 0xbd5ce4f9u
#define TANH_P3 0x3cb177beu
#define TANH_P4 0xbc076804u
#define TANH_P5 0x3b2941ffu
#define TANH_P6 0xb9eecaddu
#define TANH_Q0 0x3efffffeu      // the fitted Q(r) = Q0 + Q1·r + … + Q4·r⁴
#define TANH_Q1 0x3e2aaa49u
#define TANH_Q2 0x3d2aac79u
#define TANH_Q3 0x3c091d05u
#define TANH_Q4 0x3ab511f8u
#define TANH_LOG2E 0x3fb8aa3bu   // 1/ln 2
#define TANH_LN2_HI 0x3f317200u  // ln 2's first 16 bits
#define TANH_LN2_LO 0x35bfbe8eu  // ln 2 − LN2_HI

#if defined(__x86_64__)

static inline __attribute__((always_inline)) AVX512 __m512 tanh16(__m512 x) {
    const __m512 a = _mm512_castsi512_ps(_mm512_and_si512(_mm512_castps_si512(x), i32(0x7fffffffu)));
    const __mmask16 small = _mm512_cmp_ps_mask(a, f32(TANH_SPLIT), _CMP_LT_OQ);
    __m512 result = _mm512_setzero_ps();
    if (small) {
        const __m512 u = _mm512_mul_ps(a, a);
        __m512 p = f32(TANH_P6);
        p = _mm512_add_ps(_mm512_mul_ps(p, u), f32(TANH_P5));
        p = _mm512_add_ps(_mm512_mul_ps(p, u), f32(TANH_P4));
        p = _mm512_add_ps(_mm512_mul_ps(p, u), f32(TANH_P3));
        p = _mm512_add_ps(_mm512_mul_ps(p, u), f32(TANH_P2));
        p = _mm512_add_ps(_mm512_mul_ps(p, u), f32(TANH_P1));
        p = _mm512_add_ps(_mm512_mul_ps(p, u), f32(TANH_P0));
        result = _mm512_add_ps(a, _mm512_mul_ps(_mm512_mul_ps(a, u), p));
    }
    if (small != (__mmask16)0xFFFF) {
        // min(10, a): a NaN lane (a second operand) stays NaN to the end, as NaN in, NaN out asks
        const __m512 c = _mm512_min_ps(f32(TANH_CLAMP), a);
        const __m512 y = _mm512_add_ps(c, c);
        const __m512 n = _mm512_roundscale_ps(_mm512_mul_ps(y, f32(TANH_LOG2E)), _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
        const __m512 r = _mm512_sub_ps(_mm512_sub_ps(y, _mm512_mul_ps(n, f32(TANH_LN2_HI))), _mm512_mul_ps(n, f32(TANH_LN2_LO)));
        __m512 q = f32(TANH_Q4);
        q = _mm512_add_ps(_mm512_mul_ps(q, r), f32(TANH_Q3));
        q = _mm512_add_ps(_mm512_mul_ps(q, r), f32(TANH_Q2));
        q = _mm512_add_ps(_mm512_mul_ps(q, r), f32(TANH_Q1));
        q = _mm512_add_ps(_mm512_mul_ps(q, r), f32(TANH_Q0));
        const __m512 one = _mm512_set1_ps(1.0f);
        const __m512 er = _mm512_add_ps(one, _mm512_add_ps(r, _mm512_mul_ps(_mm512_mul_ps(r, r), q)));
        // er·2ⁿ, exact (n ≤ 29), as the scalar function's product by 2ⁿ
        const __m512 e = _mm512_scalef_ps(er, n);
        const __m512 large = _mm512_sub_ps(one, _mm512_div_ps(_mm512_set1_ps(2.0f), _mm512_add_ps(e, one)));
        result = _mm512_mask_blend_ps(small, large, result);
    }
    // the sign of x: result | (x & sign bit)
    return _mm512_castsi512_ps(_mm512_ternarylogic_epi32(_mm512_castps_si512(result), _mm512_castps_si512(x), i32(0x80000000u), 0xF8));
}

#endif

#endif
