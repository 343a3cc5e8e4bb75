#include "glibc_float.h"

// ---- tanh, sixteen at a time, with the bits of glibc's tanhf ----
//
// glibc's tanhf (2.36, sysdeps/ieee754/flt-32: fdlibm's, in float, with no fused multiply-add on
// x86-64 and no variant chosen at run time), which this follows operation for operation:
// - |x| ≥ 1: t = expm1f(|x| + |x|), z = 1 − 2/(t + 2); |x| < 1: t = expm1f(|x|·−2), z = −t/(t + 2);
//   tanh x = z with x's sign.
// - expm1f(u) (u in (−2, 0) or [2, 44) here): k = 0 for |u| ≤ ln2/2; k = ±1 for |u| < 1.5·ln2;
//   else k = (int)(u·(1/ln2) ± 1/2), truncated. With hi = u − k·ln2_hi (exact) and lo = k·ln2_lo
//   (k = 0 gives hi = u, lo = 0, the same as glibc's k = 0), r = hi − lo and c = (hi − r) − lo.
//   Then hfx = r/2, hxs = r·hfx, r1 = 1 + hxs·(Q1 + hxs·(Q2 + … Q5)) in Horner's order,
//   s = 3 − r1·hfx, e = hxs·((r1 − s)/(6 − r·s)), and by k (each case computed and blended):
//     k = 0:            r − (r·e − hxs)
//     k ≠ 0:            e' = (r·(e − c) − c) − hxs, and
//     k = −1:           (r − e')/2 − 1/2
//     k ≤ −2 or k > 56: 2ᵏ·(1 − (e' − r)) − 1  (2ᵏ by adding k to the exponent's bits)
//     2 ≤ k ≤ 22:       2ᵏ·((1 − 2⁻ᵏ) − (e' − r))
//     23 ≤ k ≤ 56:      2ᵏ·((r − (e' + 2⁻ᵏ)) + 1)
//   (k = 1 never happens: u ≥ 2 gives k ≥ 3, u < 0 gives k ≤ 0. expm1f returns u itself for
//   |u| < 2⁻²⁵, and so does k = 0's formula there: r·e − hxs is far below half an ulp of u.)
// - |x| < 2⁻⁵⁵ (zero and subnormals too): x·(1 + x), no sign step; |x| ≥ 22 and ±∞: ±1 (1 − 10⁻³⁰
//   rounded); NaN: quiet NaN (x + x, the same bits as glibc's 1/x + 1).
// Every lane computed in the vector, so no lane calls tanhf. Equal to this machine's tanhf on every
// float (`Scripts/check-avx512-functions.sh tanhf`).

#if defined(__x86_64__)

AVX512 void mlpkit_tanhf_avx512(const float *x, float *out, long count) {
    const __m512i magnitudeMask = _mm512_set1_epi32(0x7fffffff), signMask = _mm512_set1_epi32((int)0x80000000u);
    const __m512 one = _mm512_set1_ps(1), two = _mm512_set1_ps(2), half = _mm512_set1_ps(0.5f);
    const __m512 minusTwo = _mm512_set1_ps(-2), minusHalf = _mm512_set1_ps(-0.5f);
    const __m512 invln2 = f32(0x3fb8aa3b), ln2hi = f32(0x3f317180), ln2lo = f32(0x3717f7d1);
    const __m512 q1 = f32(0xbd088889), q2 = f32(0x3ad00d01), q3 = f32(0xb8a670cd), q4 = f32(0x36867e54), q5 = f32(0xb457edbb);
    const __m512 three = _mm512_set1_ps(3), six = _mm512_set1_ps(6);
    for (long i = 0; i < count; i += 16) {
        const __mmask16 lanes = count - i >= 16 ? (__mmask16)0xFFFF : (__mmask16)((1u << (count - i)) - 1);
        const __m512 xs = _mm512_maskz_loadu_ps(lanes, x + i);
        const __m512i bits = _mm512_castps_si512(xs);
        const __m512i ix = _mm512_and_si512(bits, magnitudeMask);
        const __m512 a = _mm512_castsi512_ps(ix);

        // expm1f's argument: |x| + |x| for |x| ≥ 1, |x|·−2 below
        const __mmask16 big = _mm512_cmpge_epi32_mask(ix, _mm512_set1_epi32(0x3f800000));
        const __m512 u = _mm512_mask_blend_ps(big, _mm512_mul_ps(a, minusTwo), _mm512_add_ps(a, a));
        const __m512i hu = _mm512_and_si512(_mm512_castps_si512(u), magnitudeMask);

        // k: 0 up to ln2/2, ±1 below 1.5·ln2, else u/ln2 ± 1/2 truncated
        const __mmask16 reduces = _mm512_cmpgt_epi32_mask(hu, _mm512_set1_epi32(0x3eb17218));
        const __mmask16 far = _mm512_cmpge_epi32_mask(hu, _mm512_set1_epi32(0x3f851592));
        const __mmask16 negative = _mm512_cmplt_epi32_mask(_mm512_castps_si512(u), _mm512_setzero_si512());
        const __m512 rounding = _mm512_mask_blend_ps(negative, half, minusHalf);
        const __m512i kFar = _mm512_cvttps_epi32(_mm512_add_ps(_mm512_mul_ps(invln2, u), rounding));
        const __m512i kNear = _mm512_mask_blend_epi32(negative, _mm512_set1_epi32(1), _mm512_set1_epi32(-1));
        const __m512i k = _mm512_mask_blend_epi32(far, _mm512_maskz_mov_epi32(reduces, kNear), kFar);
        const __m512 kf = _mm512_cvtepi32_ps(k);

        // r + c = u − k·ln2 (k·ln2_hi exact)
        const __m512 hi = _mm512_sub_ps(u, _mm512_mul_ps(kf, ln2hi));
        const __m512 lo = _mm512_mul_ps(kf, ln2lo);
        const __m512 r = _mm512_sub_ps(hi, lo);
        const __m512 c = _mm512_sub_ps(_mm512_sub_ps(hi, r), lo);

        // the rational approximation on the reduced r
        const __m512 hfx = _mm512_mul_ps(r, half);
        const __m512 hxs = _mm512_mul_ps(r, hfx);
        __m512 r1 = _mm512_add_ps(_mm512_mul_ps(q5, hxs), q4);
        r1 = _mm512_add_ps(_mm512_mul_ps(r1, hxs), q3);
        r1 = _mm512_add_ps(_mm512_mul_ps(r1, hxs), q2);
        r1 = _mm512_add_ps(_mm512_mul_ps(r1, hxs), q1);
        r1 = _mm512_add_ps(_mm512_mul_ps(r1, hxs), one);
        const __m512 s = _mm512_sub_ps(three, _mm512_mul_ps(r1, hfx));
        const __m512 e = _mm512_mul_ps(_mm512_div_ps(_mm512_sub_ps(r1, s), _mm512_sub_ps(six, _mm512_mul_ps(r, s))), hxs);

        // the cases on k, each for every lane, blended
        const __m512 e2 = _mm512_sub_ps(_mm512_sub_ps(_mm512_mul_ps(r, _mm512_sub_ps(e, c)), c), hxs);
        const __m512 e2r = _mm512_sub_ps(e2, r);
        const __m512i kBits = _mm512_slli_epi32(k, 23);
        // 2 ≤ k ≤ 22 and (less 1 after) k ≤ −2 or k > 56: 2ᵏ·(lead − (e' − r)), lead 1 − 2⁻ᵏ or 1
        // (a shift by 32 or more, a negative k's too, gives 0)
        const __m512 lead = _mm512_castsi512_ps(
            _mm512_sub_epi32(_mm512_set1_epi32(0x3f800000), _mm512_srlv_epi32(_mm512_set1_epi32(0x1000000), k)));
        __m512 t = _mm512_castsi512_ps(_mm512_add_epi32(_mm512_castps_si512(_mm512_sub_ps(lead, e2r)), kBits));
        const __mmask16 minusOne = _mm512_cmpeq_epi32_mask(k, _mm512_set1_epi32(-1));
        const __mmask16 outer = _mm512_cmplt_epi32_mask(k, _mm512_set1_epi32(-1)) | _mm512_cmpgt_epi32_mask(k, _mm512_set1_epi32(56));
        t = _mm512_mask_sub_ps(t, outer, t, one);
        // 23 ≤ k ≤ 56: 2ᵏ·((r − (e' + 2⁻ᵏ)) + 1)
        const __mmask16 middle = _mm512_cmpgt_epi32_mask(k, _mm512_set1_epi32(22)) & ~outer;
        const __m512 inverse = _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_sub_epi32(_mm512_set1_epi32(0x7f), k), 23));
        const __m512 y = _mm512_add_ps(_mm512_sub_ps(r, _mm512_add_ps(e2, inverse)), one);
        t = _mm512_mask_mov_ps(t, middle, _mm512_castsi512_ps(_mm512_add_epi32(_mm512_castps_si512(y), kBits)));
        // k = −1 and k = 0
        t = _mm512_mask_mov_ps(t, minusOne, _mm512_sub_ps(_mm512_mul_ps(_mm512_sub_ps(r, e2), half), half));
        t = _mm512_mask_mov_ps(t, ~reduces, _mm512_sub_ps(r, _mm512_sub_ps(_mm512_mul_ps(r, e), hxs)));

        // tanh from t (one division: 2 or −t over t + 2), then x's sign
        const __m512 numerator = _mm512_mask_blend_ps(big, _mm512_xor_ps(t, _mm512_castsi512_ps(signMask)), two);
        const __m512 quotient = _mm512_div_ps(numerator, _mm512_add_ps(t, two));
        __m512 z = _mm512_mask_sub_ps(quotient, big, one, quotient);
        z = _mm512_mask_mov_ps(z, _mm512_cmpge_epi32_mask(ix, _mm512_set1_epi32(0x41b00000)), one);
        z = _mm512_xor_ps(z, _mm512_castsi512_ps(_mm512_and_si512(bits, signMask)));
        // tiny x: x·(1 + x); NaN: quiet
        z = _mm512_mask_mov_ps(z, _mm512_cmplt_epi32_mask(ix, _mm512_set1_epi32(0x24000000)), _mm512_mul_ps(_mm512_add_ps(one, xs), xs));
        z = _mm512_mask_mov_ps(z, _mm512_cmpgt_epi32_mask(ix, _mm512_set1_epi32(0x7f800000)), _mm512_add_ps(xs, xs));
        _mm512_mask_storeu_ps(out + i, lanes, z);
    }
}

#else

void mlpkit_tanhf_avx512(const float *x, float *out, long count) {
    for (long i = 0; i < count; ++i) out[i] = tanhf(x[i]);
}

#endif
