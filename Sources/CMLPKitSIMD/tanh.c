#include "glibc_float.h"
#include "tanh16.h"

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
// The constants, and `tanh16` (the sixteen lanes), are in `tanh16.h`.

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
