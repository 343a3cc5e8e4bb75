#include "glibc_float.h"

// MLPKit's tanh: one definition, computed the same way by the scalar function (any processor)
// and the sixteen-lane one (AVX-512), so that the activation's bits do not depend on the
// processor or the C library. Every operation is a rounded float operation written out, none
// fused (`glibc_float.h` turns contraction off), so the two give the same bits on every float;
// `Scripts/check-avx512-functions.sh tanh` checks that on all 2³² of them, and the error
// against the exact tanh (at most 1.5 ulp there).
//
// With a = |x| (the sign put back at the end, so tanh(−x) = −tanh(x) and tanh(−0) = −0):
// - a < 0.9: a + a³·P(a²), P of degree 6 fitted to (tanh(a) − a)/a³ (relative error 1.1e-9
//   of tanh, 0.02 ulp, before rounding);
// - else: 1 − 2/(e^{2a} + 1), with a clamped to 10 (where the float tanh is 1), e^{2a} =
//   2ⁿ·e^r, n = round(2a/ln 2), r = 2a − n·ln 2 in two parts (Cody and Waite; n·LN2_HI exact),
//   and e^r = 1 + (r + r²·Q(r)), Q of degree 4 fitted to (e^r − 1 − r)/r² (relative error
//   3.1e-9 of e^r, 0.05 ulp, for |r| ≤ 0.3467);
// - NaN: x.

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

static inline float bits_float(unsigned bits) {
    float value;
    __builtin_memcpy(&value, &bits, 4);
    return value;
}

float mlpkit_tanh(float x) {
    if (x != x) return x;
    unsigned bits;
    __builtin_memcpy(&bits, &x, 4);
    const unsigned sign = bits & 0x80000000u;
    float a = bits_float(bits & 0x7fffffffu), result;
    if (a < bits_float(TANH_SPLIT)) {
        const float u = a * a;
        float p = bits_float(TANH_P6);
        p = p * u + bits_float(TANH_P5);
        p = p * u + bits_float(TANH_P4);
        p = p * u + bits_float(TANH_P3);
        p = p * u + bits_float(TANH_P2);
        p = p * u + bits_float(TANH_P1);
        p = p * u + bits_float(TANH_P0);
        result = a + (a * u) * p;
    } else {
        if (a > bits_float(TANH_CLAMP)) a = bits_float(TANH_CLAMP);
        const float y = a + a;
        // y/ln 2 rounded to the nearest integer (ties to even, as the vector's roundscale): by
        // adding and taking away 1.5·2²³, with no call to nearbyintf (SSE2 has no rounding instruction)
        const float n = (y * bits_float(TANH_LOG2E) + 0x1.8p23f) - 0x1.8p23f;
        const float r = (y - n * bits_float(TANH_LN2_HI)) - n * bits_float(TANH_LN2_LO);
        float q = bits_float(TANH_Q4);
        q = q * r + bits_float(TANH_Q3);
        q = q * r + bits_float(TANH_Q2);
        q = q * r + bits_float(TANH_Q1);
        q = q * r + bits_float(TANH_Q0);
        const float er = 1.0f + (r + (r * r) * q);
        const float e = er * bits_float((unsigned)((int)n + 127) << 23);
        result = 1.0f - 2.0f / (e + 1.0f);
    }
    unsigned out;
    __builtin_memcpy(&out, &result, 4);
    return bits_float(out | sign);
}

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

AVX512 void mlpkit_tanh_avx512(const float *x, float *out, long count) {
    long i = 0;
    for (; i + 16 <= count; i += 16) _mm512_storeu_ps(out + i, tanh16(_mm512_loadu_ps(x + i)));
    if (i < count) {
        const __mmask16 mask = (__mmask16)((1u << (count - i)) - 1);
        _mm512_mask_storeu_ps(out + i, mask, tanh16(_mm512_maskz_loadu_ps(mask, x + i)));
    }
}

#else

void mlpkit_tanh_avx512(const float *x, float *out, long count) {
    for (long i = 0; i < count; ++i) out[i] = mlpkit_tanh(x[i]);
}

#endif
