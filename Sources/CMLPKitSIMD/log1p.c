#include "glibc_float.h"

// ---- log(1 + x), sixteen at a time, with the bits of glibc's log1pf ----
//
// glibc's log1pf (2.36, sysdeps/ieee754/flt-32/s_log1pf.c: fdlibm's, in float, with no fused
// multiply-add on x86-64 and no variant chosen at run time; the polynomial in Horner's order),
// which this follows operation for operation:
// - |x| < 2⁻⁵⁴ (zero and subnormals too): x; |x| < 2⁻²⁹: x − x²/2.
// - −(1 − √2/2) ≤ x < √2 − 1 (bits at most 0xbe95f61f, or below 0x3ed413d7): k = 0, f = x, c = 0.
// - else (x > −1): u = 1 + x, k = u's unbiased exponent, c = (k > 0 ? 1 − (u − x) : x − (u − 1))/u,
//   the rounding error of 1 + x over u; u's mantissa m (bits) gives u' = 1.m below √2
//   (m < 0x3504f7), else u' = 0.5·1.m and k + 1; f = u' − 1. Then log(1 + x) = k·ln2 + log(1 + f) + c.
// - hfsq = (f/2)·f, s = f/(2 + f), z = s², R = z·(Lp1 + z·(Lp2 + … z·Lp7)) in Horner's order;
//   kf = k as a float, hi = kf·ln2_hi (exact), lo = kf·ln2_lo + c;
//   k = 0: f − (hfsq − s·(hfsq + R)); k ≠ 0: hi − ((hfsq − (lo + s·(hfsq + R))) − f); both computed
//   for every lane and blended.
// Two of glibc's cases are left out, the formulas above giving the same bits there (the exhaustive
// check goes through every x that reaches them, with and without them):
// - from 2⁵³ on glibc takes u = x (so is 1 + x) and c = 0; the c above, 1/x there, is far below
//   half an ulp of kf·ln2_lo (k ≥ 53), so lo is the same.
// - where u' is 1 or just below it (hu = 0 in glibc: m = 0, or m > 0x7ffffc, f = −1, −2 or −3 × 2⁻²⁴)
//   glibc takes R' = (1 − Lp1·f)·hfsq for s·(hfsq + R) and returns f − R' (k = 0) or
//   hi − ((R' − lo) − f), or for f = 0 exactly, 0 or lo + hi: on these four f the formulas above
//   give the same bits.
// - +∞: x + x; NaN: quiet NaN (x + x; glibc's (x − x)/(x − x) for a negative one, the same bits).
// - x ≤ −1 (−∞ too): the lane calls log1pf (its −∞ or NaN, and the errno that glibc's wrapper
//   sets there). Everything above −1, so every e^−|z| of the cross-entropy loss, stays in the vector.
// Equal to this machine's log1pf on every float (`Scripts/check-avx512-functions.sh log1pf`).

#if defined(__x86_64__)

AVX512 void mlpkit_log1pf_avx512(const float *x, float *out, long count) {
    const __m512 one = _mm512_set1_ps(1), two = _mm512_set1_ps(2), half = _mm512_set1_ps(0.5f);
    const __m512 ln2hi = f32(0x3f317180), ln2lo = f32(0x3717f7d1);
    const __m512 lp1 = f32(0x3f2aaaab), lp2 = f32(0x3ecccccd), lp3 = f32(0x3e924925), lp4 = f32(0x3e638e29);
    const __m512 lp5 = f32(0x3e3a3325), lp6 = f32(0x3e1cd04f), lp7 = f32(0x3e178897);
    for (long i = 0; i < count; i += 16) {
        const __mmask16 lanes = count - i >= 16 ? (__mmask16)0xFFFF : (__mmask16)((1u << (count - i)) - 1);
        const __m512 xs = _mm512_maskz_loadu_ps(lanes, x + i);
        const __m512i hx = _mm512_castps_si512(xs);
        const __m512i ax = _mm512_and_si512(hx, i32(0x7fffffff));

        // k and f through u = 1 + x: x ≥ √2 − 1, or x < −(1 − √2/2) (a negative float's bits above
        // 0xbe95f61f); the other lanes take k = 0, f = x
        const __mmask16 viaU = _mm512_cmpge_epi32_mask(hx, i32(0x3ed413d7)) | _mm512_cmpgt_epu32_mask(hx, i32(0xbe95f61f));
        const __m512 u = _mm512_add_ps(xs, one);
        const __m512i hu = _mm512_castps_si512(u);
        const __m512i uExponent = _mm512_sub_epi32(_mm512_srli_epi32(hu, 23), i32(127));
        // the correction c: (k > 0 ? 1 − (u − x) : x − (u − 1))/u
        const __m512 c = _mm512_div_ps(_mm512_mask_blend_ps(_mm512_cmpgt_epi32_mask(uExponent, _mm512_setzero_si512()),
                                                            _mm512_sub_ps(xs, _mm512_sub_ps(u, one)),
                                                            _mm512_sub_ps(one, _mm512_sub_ps(u, xs))),
                                       u);
        // u's mantissa m: 1.m below √2 (m < 0x3504f7), else 0.5·1.m and k + 1
        const __m512i m = _mm512_and_si512(hu, i32(0x7fffff));
        const __mmask16 upper = _mm512_cmpgt_epi32_mask(m, i32(0x3504f6));
        const __m512i k = _mm512_maskz_mov_epi32(viaU, _mm512_mask_add_epi32(uExponent, upper, uExponent, i32(1)));
        const __m512 normalized = _mm512_castsi512_ps(_mm512_or_si512(m, _mm512_mask_blend_epi32(upper, i32(0x3f800000), i32(0x3f000000))));
        const __m512 f = _mm512_mask_blend_ps(viaU, xs, _mm512_sub_ps(normalized, one));

        // the rational approximation of log(1 + f)
        const __m512 hfsq = _mm512_mul_ps(_mm512_mul_ps(half, f), f);
        const __m512 s = _mm512_div_ps(f, _mm512_add_ps(two, f));
        const __m512 z = _mm512_mul_ps(s, s);
        __m512 r = _mm512_add_ps(_mm512_mul_ps(lp7, z), lp6);
        r = _mm512_add_ps(_mm512_mul_ps(r, z), lp5);
        r = _mm512_add_ps(_mm512_mul_ps(r, z), lp4);
        r = _mm512_add_ps(_mm512_mul_ps(r, z), lp3);
        r = _mm512_add_ps(_mm512_mul_ps(r, z), lp2);
        r = _mm512_add_ps(_mm512_mul_ps(r, z), lp1);
        r = _mm512_mul_ps(r, z);
        const __m512 sR = _mm512_mul_ps(_mm512_add_ps(r, hfsq), s);

        // k·ln2 + c as hi + lo, and the cases k = 0 and k ≠ 0, each for every lane, blended
        const __m512 kf = _mm512_cvtepi32_ps(k);
        const __m512 hi = _mm512_mul_ps(kf, ln2hi);
        const __m512 lo = _mm512_add_ps(_mm512_mul_ps(kf, ln2lo), c);
        __m512 y = _mm512_mask_blend_ps(_mm512_cmpeq_epi32_mask(k, _mm512_setzero_si512()),
                                        _mm512_sub_ps(hi, _mm512_sub_ps(_mm512_sub_ps(hfsq, _mm512_add_ps(lo, sR)), f)),
                                        _mm512_sub_ps(f, _mm512_sub_ps(hfsq, sR)));

        // tiny x: x − x²/2 (hfsq: f = x there), below 2⁻⁵⁴ x; +∞ and NaN: x + x
        y = _mm512_mask_mov_ps(y, _mm512_cmplt_epi32_mask(ax, i32(0x31000000)), _mm512_sub_ps(xs, hfsq));
        y = _mm512_mask_mov_ps(y, _mm512_cmplt_epi32_mask(ax, i32(0x24800000)), xs);
        const __mmask16 special = _mm512_cmpge_epi32_mask(hx, i32(0x7f800000)) | _mm512_cmpgt_epi32_mask(ax, i32(0x7f800000));
        y = _mm512_mask_mov_ps(y, special, _mm512_add_ps(xs, xs));

        // x ≤ −1: the scalar log1pf (from the inputs as loaded: out may be x)
        const __mmask16 scalar = _mm512_cmp_ps_mask(xs, _mm512_set1_ps(-1), _CMP_LE_OQ);
        if (scalar) {
            float in[16], results[16];
            _mm512_storeu_ps(in, xs);
            _mm512_storeu_ps(results, y);
            for (unsigned lane = 0; lane < 16; ++lane)
                if ((scalar >> lane) & 1) results[lane] = log1pf(in[lane]);
            y = _mm512_loadu_ps(results);
        }
        _mm512_mask_storeu_ps(out + i, lanes, y);
    }
}

#else

void mlpkit_log1pf_avx512(const float *x, float *out, long count) {
    for (long i = 0; i < count; ++i) out[i] = log1pf(x[i]);
}

#endif
