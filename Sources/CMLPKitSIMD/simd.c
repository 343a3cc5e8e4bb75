#include "glibc_float.h"

// Every operation below is the one written: no multiply-add contraction (Adam's bits must be
// the Swift loop's; the product uses explicit fused multiply-adds).
#pragma STDC FP_CONTRACT OFF

#if defined(__x86_64__)
#include <cpuid.h>
#include <immintrin.h>
#include <math.h>
#include <stdlib.h>

int mlpkit_simd_available(void) {
    unsigned a, b, c, d;
    if (!__get_cpuid(1, &a, &b, &c, &d)) return 0;
    const unsigned osxsave = 1u << 27, avx = 1u << 28, fma = 1u << 12;
    if ((c & (osxsave | avx | fma)) != (osxsave | avx | fma)) return 0;
    // the operating system saves the SSE and AVX registers (XCR0 bits 1 and 2)
    unsigned low, high;
    __asm__ volatile("xgetbv" : "=a"(low), "=d"(high) : "c"(0));
    if ((low & 6) != 6) return 0;
    if (!__get_cpuid_count(7, 0, &a, &b, &c, &d)) return 0;
    return (b >> 5) & 1;  // AVX2
}

int mlpkit_avx512_level(void) {
    unsigned a, b, c, d;
    if (!__get_cpuid(1, &a, &b, &c, &d)) return 0;
    const unsigned osxsave = 1u << 27;
    if (!(c & osxsave)) return 0;
    // the operating system saves the SSE, AVX and AVX-512 registers (XCR0 bits 1, 2, 5, 6 and 7)
    unsigned low, high;
    __asm__ volatile("xgetbv" : "=a"(low), "=d"(high) : "c"(0));
    if ((low & 0xE6) != 0xE6) return 0;
    if (!__get_cpuid_count(7, 0, &a, &b, &c, &d)) return 0;
    // AVX-512 F (16), DQ (17), CD (28), BW (30) and VL (31): what OpenBLAS's SkylakeX kernels use
    const unsigned needed = (1u << 16) | (1u << 17) | (1u << 28) | (1u << 30) | (1u << 31);
    if ((b & needed) != needed) return 0;
    const unsigned leaves = a;
    // AVX512_BF16: CPUID 7, subleaf 1, EAX bit 5
    if (leaves >= 1 && __get_cpuid_count(7, 1, &a, &b, &c, &d) && ((a >> 5) & 1)) return 2;
    return 1;
}

#define AVX2 __attribute__((target("avx2,fma")))

// Adam asks for its four operands this far ahead (floats: 1 KiB, sixteen cache lines a stream):
// the AVX2 loop within its range (`adam_prefetch`), the AVX-512 loop's whole vectors without that
// test (`adam_prefetch_ahead`: a prefetch never faults). Over the wide step's 8.4M parameters
// (235 MB read and written, past every cache) the hardware's prefetchers alone left each core
// waiting on memory: two threads, a C harness, 5.4–5.8 against 4.4–5.1 ms a pass (the AVX2 loop
// 4.9–5.0 against 4.3–4.6); the wide step 1.1% faster; mnist's 3.7 MB, mostly in the caches, the
// same. The arithmetic and its bits are untouched.
#define MLPKIT_ADAM_AHEAD 256
static inline __attribute__((always_inline)) void adam_prefetch_ahead(const float *theta, const float *g, const float *m,
                                                                      const float *v, long i) {
    _mm_prefetch((const char *)(g + i + MLPKIT_ADAM_AHEAD), _MM_HINT_T0);
    _mm_prefetch((const char *)(m + i + MLPKIT_ADAM_AHEAD), _MM_HINT_T0);
    _mm_prefetch((const char *)(v + i + MLPKIT_ADAM_AHEAD), _MM_HINT_T0);
    _mm_prefetch((const char *)(theta + i + MLPKIT_ADAM_AHEAD), _MM_HINT_T0);
}
static inline __attribute__((always_inline)) void adam_prefetch(const float *theta, const float *g, const float *m,
                                                                const float *v, long i, long end) {
    if (i + MLPKIT_ADAM_AHEAD < end) adam_prefetch_ahead(theta, g, m, v, i);
}

// The loop body for fixed options, so that each combination is its own loop with no test inside.
static inline __attribute__((always_inline, target("avx2,fma"))) void adam_loop(
    const MLPKitAdamJob *job, long start, long end, int divides1, int divides2, int clips, int decays) {
    float *theta = job->theta, *m = job->m, *v = job->v;
    const float *g = job->g;
    const float oneMinusBeta1 = 1 - job->beta1, oneMinusBeta2 = 1 - job->beta2;
    const __m256 beta1 = _mm256_set1_ps(job->beta1), beta2 = _mm256_set1_ps(job->beta2);
    const __m256 rest1 = _mm256_set1_ps(oneMinusBeta1), rest2 = _mm256_set1_ps(oneMinusBeta2);
    const __m256 alpha = _mm256_set1_ps(job->alpha), epsilon = _mm256_set1_ps(job->epsilon);
    const __m256 correction1 = _mm256_set1_ps(job->correction1), correction2 = _mm256_set1_ps(job->correction2);
    const __m256 scale = _mm256_set1_ps(job->gradientScale), decay = _mm256_set1_ps(job->decay);
    long i = start;
    for (; i + 8 <= end; i += 8) {
        if ((i - start) % 16 == 0) adam_prefetch(theta, g, m, v, i, end);
        __m256 gradient = _mm256_loadu_ps(g + i);
        if (clips) gradient = _mm256_mul_ps(gradient, scale);
        const __m256 mOld = _mm256_loadu_ps(m + i), vOld = _mm256_loadu_ps(v + i);
        __m256 thetaOld = _mm256_loadu_ps(theta + i);
        if (decays) thetaOld = _mm256_mul_ps(thetaOld, decay);
        // β1·m + (1 − β1)·g and β2·v + ((1 − β2)·g)·g
        const __m256 mt = _mm256_add_ps(_mm256_mul_ps(beta1, mOld), _mm256_mul_ps(rest1, gradient));
        const __m256 vt = _mm256_add_ps(_mm256_mul_ps(beta2, vOld), _mm256_mul_ps(_mm256_mul_ps(rest2, gradient), gradient));
        const __m256 mHat = divides1 ? _mm256_div_ps(mt, correction1) : mt;
        const __m256 vHat = divides2 ? _mm256_div_ps(vt, correction2) : vt;
        // θ − (α·m̂) / (√v̂ + ε)
        const __m256 step = _mm256_div_ps(_mm256_mul_ps(alpha, mHat), _mm256_add_ps(_mm256_sqrt_ps(vHat), epsilon));
        _mm256_storeu_ps(m + i, mt);
        _mm256_storeu_ps(v + i, vt);
        _mm256_storeu_ps(theta + i, _mm256_sub_ps(thetaOld, step));
    }
    for (; i < end; ++i) {
        float gradient = g[i];
        if (clips) gradient = gradient * job->gradientScale;
        const float mt = job->beta1 * m[i] + oneMinusBeta1 * gradient;
        const float vt = job->beta2 * v[i] + oneMinusBeta2 * gradient * gradient;
        m[i] = mt;
        v[i] = vt;
        const float mHat = divides1 ? mt / job->correction1 : mt;
        const float vHat = divides2 ? vt / job->correction2 : vt;
        float thetaOld = theta[i];
        if (decays) thetaOld = thetaOld * job->decay;
        theta[i] = thetaOld - job->alpha * mHat / (__builtin_sqrtf(vHat) + job->epsilon);
    }
}

// Each option combination its own loop: x / 1 is x, so a correction that has reached 1 is
// skipped (the Swift loop's cases); clipping and decay share one loop.
#define MLPKIT_ADAM_CASES(loop)                                                                     \
    do {                                                                                            \
        const int d1 = job->correction1 != 1.0f, d2 = job->correction2 != 1.0f;                     \
        if (job->clips || job->decays) loop(job, start, end, d1, d2, job->clips != 0, job->decays != 0); \
        else if (d1 && d2) loop(job, start, end, 1, 1, 0, 0);                                       \
        else if (d2) loop(job, start, end, 0, 1, 0, 0);                                             \
        else if (d1) loop(job, start, end, 1, 0, 0, 0);                                             \
        else loop(job, start, end, 0, 0, 0, 0);                                                     \
    } while (0)

AVX2 void mlpkit_adam_avx2(const MLPKitAdamJob *job, long start, long end) { MLPKIT_ADAM_CASES(adam_loop); }

// Adam with sixteen-lane AVX-512 and the divider taking one division per parameter instead of
// three operations (v̂'s division, the square root and the update's division), for the same bits.
// The divider, not the arithmetic, bounds the AVX2 loop: about 16 cycles per eight parameters.
//
// - x / c for the step's constant c = 1 − βᵗ (in [2⁻²⁴, 1] since β is a Float32 in [0, 1)):
//   y = RN(1/c) once per call; q₀ = RN(x·y); two corrections q ← RN(q + RN(x − q·c)·y), each with
//   fused multiply-adds. After the first, q is within one ulp of x/c (its error before rounding is
//   at most 1.5 ulp · 2⁻²³); Markstein's theorem (y within half an ulp of 1/c, q within one ulp of
//   x/c, no underflow or overflow) makes the second RN(x/c). No underflow: |x| ≥ 2⁻⁶⁰ keeps the
//   residual x − q·c exact (the exponents of c and q sum to at least −84, above −103); no
//   overflow: |x| ≤ 2¹⁰⁰. x = ±0 gives ±0 (the sign is put back).
// - √x for x in [2⁻¹⁰⁰, FLT_MAX] and x = 0: the 14-bit reciprocal-root estimate, one Newton step
//   for the root and one for half its reciprocal, and one correction s + (x − s²)·h. It equals the
//   correctly rounded square root on every one of those inputs (all 1.9 billion checked by
//   `mlpkit_check_sqrt_avx512` in Scripts/check-adam-avx512.sh; the tests check whole binades).
// - A vector whose v holds a lane outside {+0} ∪ [2⁻⁶⁰, 2¹⁰⁰] (a tiny or subnormal second
//   moment, an infinity, a NaN, a negative one), or whose m, when m̂ divides, holds one outside
//   {±0} ∪ ±[2⁻⁶⁰, 2¹⁰⁰], takes the divider's operations instead.
#include "epilogue16.h"
#define MLPKIT_FAST_LOW 0x21800000u   /* 2⁻⁶⁰ */
#define MLPKIT_FAST_HIGH 0x71800000u  /* 2¹⁰⁰ */

// Lanes of x outside {+0} ∪ [2⁻⁶⁰, 2¹⁰⁰] (its bits as unsigned integers): NaN, infinity and, with
// `signed_lanes`, any negative lane; without it the sign is ignored (±0 and ±[2⁻⁶⁰, 2¹⁰⁰] inside).
static inline __attribute__((always_inline)) AVX512 __mmask16 outside_fast_range(__m512 x, int signed_lanes) {
    const __m512i bits = _mm512_castps_si512(x);
    const __m512i magnitude = signed_lanes ? bits : _mm512_and_si512(bits, _mm512_set1_epi32(0x7fffffff));
    const __mmask16 high = _mm512_cmpgt_epu32_mask(magnitude, _mm512_set1_epi32((int)MLPKIT_FAST_HIGH));
    // magnitude − 1 below 2⁻⁶⁰ − 1, unsigned: the tiny and subnormal lanes, not zero (which wraps)
    const __mmask16 tiny = _mm512_cmplt_epu32_mask(_mm512_sub_epi32(magnitude, _mm512_set1_epi32(1)),
                                                   _mm512_set1_epi32((int)MLPKIT_FAST_LOW - 1));
    return high | tiny;
}

// RN(x / c) for lanes in the fast range, y = RN(1/c) (see above). `signed_x`: x may be negative
// or −0; without it (x in {+0} ∪ [2⁻⁶⁰, 2¹⁰⁰], as Adam's v), +0 gives +0 with no sign to restore.
static inline __attribute__((always_inline)) AVX512 __m512 divide_by_constant(__m512 x, __m512 c, __m512 y, int signed_x) {
    __m512 q = _mm512_mul_ps(x, y);
    q = _mm512_fmadd_ps(_mm512_fnmadd_ps(q, c, x), y, q);
    q = _mm512_fmadd_ps(_mm512_fnmadd_ps(q, c, x), y, q);
    // x = −0 gives +0 above: the quotient's sign is x's (c > 0)
    return signed_x ? _mm512_or_ps(q, _mm512_and_ps(x, _mm512_set1_ps(-0.0f))) : q;
}

// RN(√x) for x = 0 and x in [2⁻¹⁰⁰, FLT_MAX] (see above).
static inline __attribute__((always_inline)) AVX512 __m512 square_root(__m512 x) {
    const __m512 half = _mm512_set1_ps(0.5f);
    // the estimate of 1/√0 is +∞: capped, so that x = 0 gives 0 throughout
    const __m512 y = _mm512_min_ps(_mm512_rsqrt14_ps(x), _mm512_set1_ps(0x1p64f));
    const __m512 s0 = _mm512_mul_ps(x, y), h0 = _mm512_mul_ps(half, y);
    const __m512 s1 = _mm512_fmadd_ps(_mm512_fnmadd_ps(s0, s0, x), h0, s0);
    const __m512 h1 = _mm512_fmadd_ps(h0, _mm512_fnmadd_ps(s0, h0, half), h0);
    return _mm512_fmadd_ps(_mm512_fnmadd_ps(s1, s1, x), h1, s1);
}

// How many x with bits in low...high the root (divides = 0) or the division by c (divides = 1)
// above gets wrong against the divider's correctly rounded operation.
static AVX512 long count_misrounded(unsigned low, unsigned high, int divides, float c) {
    long mismatches = 0;
    const __m512 divisor = _mm512_set1_ps(c), reciprocal = _mm512_set1_ps(1.0f / c);
    __m512i bits = _mm512_add_epi32(_mm512_set1_epi32((int)low),
                                    _mm512_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15));
    for (unsigned long b = low; b <= high; b += 16) {
        const __m512 x = _mm512_castsi512_ps(bits);
        const __mmask16 lanes = high - b >= 15 ? (__mmask16)0xFFFF : (__mmask16)((1u << (high - b + 1)) - 1);
        const __m512 ours = divides ? divide_by_constant(x, divisor, reciprocal, 1) : square_root(x);
        const __m512 exact = divides ? _mm512_div_ps(x, divisor) : _mm512_sqrt_ps(x);
        mismatches += __builtin_popcount(
            _mm512_mask_cmpneq_epi32_mask(lanes, _mm512_castps_si512(ours), _mm512_castps_si512(exact)));
        bits = _mm512_add_epi32(bits, _mm512_set1_epi32(16));
    }
    return mismatches;
}

AVX512 long mlpkit_check_sqrt_avx512(unsigned low, unsigned high) { return count_misrounded(low, high, 0, 1); }

AVX512 long mlpkit_check_divide_avx512(float c, unsigned low, unsigned high) { return count_misrounded(low, high, 1, c); }

// Adam's constants, broadcast once per call.
typedef struct {
    __m512 beta1, beta2, rest1, rest2, alpha, epsilon, correction1, correction2, reciprocal1, reciprocal2, scale, decay;
} Adam512;

// Adam on the lanes `lanes` of the sixteen parameters from i (the others neither read nor written).
static inline __attribute__((always_inline)) AVX512 void adam_vector_512(
    const Adam512 *k, float *theta, const float *g, float *m, float *v, long i, __mmask16 lanes, int divides1, int divides2,
    int clips, int decays) {
    __m512 gradient = _mm512_maskz_loadu_ps(lanes, g + i);
    if (clips) gradient = _mm512_mul_ps(gradient, k->scale);
    const __m512 mOld = _mm512_maskz_loadu_ps(lanes, m + i), vOld = _mm512_maskz_loadu_ps(lanes, v + i);
    __m512 thetaOld = _mm512_maskz_loadu_ps(lanes, theta + i);
    if (decays) thetaOld = _mm512_mul_ps(thetaOld, k->decay);
    // β1·m + (1 − β1)·g and β2·v + ((1 − β2)·g)·g
    const __m512 mt = _mm512_add_ps(_mm512_mul_ps(k->beta1, mOld), _mm512_mul_ps(k->rest1, gradient));
    const __m512 vt = _mm512_add_ps(_mm512_mul_ps(k->beta2, vOld), _mm512_mul_ps(_mm512_mul_ps(k->rest2, gradient), gradient));
    __m512 mHat, root;
    // v's lanes by their sign too: a negative second moment (a corrupted state; never from
    // Adam's own updates) would get a number from the root's estimate where √ gives NaN
    const __mmask16 outside = outside_fast_range(vt, 1) | (divides1 ? outside_fast_range(mt, 0) : 0);
    if (__builtin_expect(outside == 0, 1)) {
        mHat = divides1 ? divide_by_constant(mt, k->correction1, k->reciprocal1, 1) : mt;
        root = square_root(divides2 ? divide_by_constant(vt, k->correction2, k->reciprocal2, 0) : vt);
    } else {
        mHat = divides1 ? _mm512_div_ps(mt, k->correction1) : mt;
        root = _mm512_sqrt_ps(divides2 ? _mm512_div_ps(vt, k->correction2) : vt);
    }
    // θ − (α·m̂) / (√v̂ + ε)
    const __m512 step = _mm512_div_ps(_mm512_mul_ps(k->alpha, mHat), _mm512_add_ps(root, k->epsilon));
    _mm512_mask_storeu_ps(m + i, lanes, mt);
    _mm512_mask_storeu_ps(v + i, lanes, vt);
    _mm512_mask_storeu_ps(theta + i, lanes, _mm512_sub_ps(thetaOld, step));
}

// Whole vectors unmasked, asking for the operands MLPKIT_ADAM_AHEAD ahead without a bounds test (a
// prefetch never faults), then the ragged end under a mask: the per-vector mask and test were
// scalar work on the ports the vector arithmetic needs. With that and v̂'s division left without
// its sign (v is +0 or positive on this path), one thread over 65,536 parameters in the L2 cache,
// step 300 (only v̂ divides): 23.4–24.3 → 20.8–21.0 cycles per sixteen parameters; the wide
// step's Adam (memory-bound) 4.60–4.66 → 4.49 ms, mnist's (78–81 µs, bound by the caches) level.
static inline __attribute__((always_inline)) AVX512 void adam_loop_512(
    const MLPKitAdamJob *job, long start, long end, int divides1, int divides2, int clips, int decays) {
    float *theta = job->theta, *m = job->m, *v = job->v;
    const float *g = job->g;
    const Adam512 k = {
        _mm512_set1_ps(job->beta1), _mm512_set1_ps(job->beta2), _mm512_set1_ps(1 - job->beta1), _mm512_set1_ps(1 - job->beta2),
        _mm512_set1_ps(job->alpha), _mm512_set1_ps(job->epsilon), _mm512_set1_ps(job->correction1),
        _mm512_set1_ps(job->correction2), _mm512_set1_ps(1 / job->correction1), _mm512_set1_ps(1 / job->correction2),
        _mm512_set1_ps(job->gradientScale), _mm512_set1_ps(job->decay)};
    long i = start;
    for (; i + 16 <= end; i += 16) {
        adam_prefetch_ahead(theta, g, m, v, i);
        adam_vector_512(&k, theta, g, m, v, i, (__mmask16)0xFFFF, divides1, divides2, clips, decays);
    }
    if (i < end) adam_vector_512(&k, theta, g, m, v, i, (__mmask16)((1u << (end - i)) - 1), divides1, divides2, clips, decays);
}

// ---- e^x, eight at a time, with the bits of glibc's expf ----
//
// glibc's expf (2.28 and later; on x86-64 with FMA its FMA build, which this follows operation for
// operation): in double precision, k + r = x·32/ln 2 with k whole (rounded by adding 1.5·2⁵²) and
// |r| ≤ 1/2, e^x = 2^(k/32)·2^(r/32) with 2^(k/32) from a table of the 32 values 2^(i/32) (whose
// bits, less i·2⁴⁷, take the exponent from k's bits) and 2^(r/32) a cubic in r, rounded once to
// float. Lanes with |x| ≥ 88, ±∞ or NaN take expf itself. Equal to this machine's expf on every
// float (`Scripts/check-avx512-functions.sh expf`; the tests check a sample).
static const unsigned long long exp2_table[32] = {
    0x3ff0000000000000, 0x3fefd9b0d3158574, 0x3fefb5586cf9890f, 0x3fef9301d0125b51, 0x3fef72b83c7d517b,
    0x3fef54873168b9aa, 0x3fef387a6e756238, 0x3fef1e9df51fdee1, 0x3fef06fe0a31b715, 0x3feef1a7373aa9cb,
    0x3feedea64c123422, 0x3feece086061892d, 0x3feebfdad5362a27, 0x3feeb42b569d4f82, 0x3feeab07dd485429,
    0x3feea47eb03a5585, 0x3feea09e667f3bcd, 0x3fee9f75e8ec5f74, 0x3feea11473eb0187, 0x3feea589994cce13,
    0x3feeace5422aa0db, 0x3feeb737b0cdc5e5, 0x3feec49182a3f090, 0x3feed503b23e255d, 0x3feee89f995ad3ad,
    0x3feeff76f2fb5e47, 0x3fef199bdd85529c, 0x3fef3720dcef9069, 0x3fef5818dcfba487, 0x3fef7c97337b9b5f,
    0x3fefa4afa2a490da, 0x3fefd0765b6e4540};

// e^x of the lanes of xs (the others: anything), as glibc's expf computes it.
static inline AVX512 __m256 expf8(__m256 xs, __mmask8 lanes) {
    const __m512d scaled = _mm512_set1_pd(0x1.71547652b82fep+5), shift = _mm512_set1_pd(0x1.8p+52);
    const __m512d c0 = _mm512_set1_pd(0x1.c6af84b912394p-20), c1 = _mm512_set1_pd(0x1.ebfce50fac4f3p-13);
    const __m512d c2 = _mm512_set1_pd(0x1.62e42ff0c52d6p-6), one = _mm512_set1_pd(1);
    const __m256i exponentMask = _mm256_set1_epi32(0x7ff), large = _mm256_set1_epi32(0x42b);
    // |x| ≥ 88 (the top twelve bits' exponent part at least 88.0f's), ±∞ and NaN
    const __m256i top = _mm256_and_si256(_mm256_srli_epi32(_mm256_castps_si256(xs), 20), exponentMask);
    const __mmask8 special = _mm256_mask_cmpge_epi32_mask(lanes, top, large);
    const __m512d xd = _mm512_cvtps_pd(xs);
    const __m512d shifted = _mm512_fmadd_pd(scaled, xd, shift);
    const __m512i k = _mm512_castpd_si512(shifted);
    const __m512d kd = _mm512_sub_pd(shifted, shift);
    const __m512d r = _mm512_fmsub_pd(scaled, xd, kd);
    const __m512i entry = _mm512_i64gather_epi64(_mm512_and_si512(k, _mm512_set1_epi64(31)), (const void *)exp2_table, 8);
    const __m512d s = _mm512_castsi512_pd(_mm512_add_epi64(entry, _mm512_slli_epi64(k, 47)));
    const __m512d z = _mm512_fmadd_pd(c0, r, c1);
    const __m512d r2 = _mm512_mul_pd(r, r);
    __m512d y = _mm512_fmadd_pd(r, c2, one);
    y = _mm512_fmadd_pd(z, r2, y);
    y = _mm512_mul_pd(y, s);
    __m256 result = _mm512_cvtpd_ps(y);
    if (special) {
        float held[8], values[8];
        _mm256_storeu_ps(held, xs);
        _mm256_storeu_ps(values, result);
        for (unsigned left = special; left; left &= left - 1) values[__builtin_ctz(left)] = expf(held[__builtin_ctz(left)]);
        result = _mm256_loadu_ps(values);
    }
    return result;
}

AVX512 void mlpkit_expf_avx512(const float *x, float *out, long count) {
    for (long i = 0; i < count; i += 8) {
        const __mmask8 lanes = count - i >= 8 ? (__mmask8)0xFF : (__mmask8)((1u << (count - i)) - 1);
        // from the lanes' x as loaded (out may be x, so not from memory after the store)
        const __m256 xs = _mm256_maskz_loadu_ps(lanes, x + i);
        _mm256_mask_storeu_ps(out + i, lanes, expf8(xs, lanes));
    }
}

// Softmax cross-entropy over class labels, without weights, sixteen rows at a time (one row a
// lane, its columns gathered): the float operations of `LossKernels.gradient`'s scalar loops for
// each row, in the same order, so the same bits. Per row: the largest logit (z ≥ largest takes z,
// as Swift's max, so a NaN never does), e = e^(z − largest) (expf's bits, in registers), their sum
// from zero in column order, lse = largest + logf(sum) (glibc's logf, lane by lane),
// d_j = (e_j·(1/sum) − [j = label])·scale, and the row's loss lse − z_label in `losses`.
AVX512 void mlpkit_softmax_cross_entropy_avx512(const float *z, const int *labels, long rows, long columns, float scale,
                                                float *d, float *losses) {
    if (columns < 1 || columns > MLPKIT_SOFTMAX_COLUMNS) return;
    const __m512i at = _mm512_mullo_epi32(_mm512_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15),
                                          _mm512_set1_epi32((int)columns));
    const __m512 zero = _mm512_setzero_ps(), one = _mm512_set1_ps(1), scales = _mm512_set1_ps(scale);
    __m512 values[MLPKIT_SOFTMAX_COLUMNS];
    for (long i = 0; i < rows; i += 16) {
        const long count = rows - i < 16 ? rows - i : 16;
        const __mmask16 live = (__mmask16)(count == 16 ? 0xFFFF : (1u << count) - 1);
        const float *zb = z + i * columns;
        __m512 largest = _mm512_set1_ps(-INFINITY);
        for (long j = 0; j < columns; ++j) {
            values[j] = _mm512_mask_i32gather_ps(zero, live, at, zb + j, 4);
            largest = _mm512_mask_mov_ps(largest, _mm512_cmp_ps_mask(values[j], largest, _CMP_GE_OQ), values[j]);
        }
        __m512 sum = zero;
        for (long j = 0; j < columns; ++j) {
            const __m512 x = _mm512_sub_ps(values[j], largest);
            const __m256 low = expf8(_mm512_castps512_ps256(x), (__mmask8)live);
            const __m256 high = expf8(_mm256_castpd_ps(_mm512_extractf64x4_pd(_mm512_castps_pd(x), 1)), (__mmask8)(live >> 8));
            values[j] = _mm512_castpd_ps(_mm512_insertf64x4(_mm512_castps_pd(_mm512_castps256_ps512(low)), _mm256_castps_pd(high), 1));
            sum = _mm512_add_ps(sum, _mm512_maskz_mov_ps(live, values[j]));
        }
        float sums[16], logarithms[16] = {0};
        _mm512_storeu_ps(sums, sum);
        for (long r = 0; r < count; ++r) logarithms[r] = logf(sums[r]);
        const __m512 lse = _mm512_add_ps(largest, _mm512_loadu_ps(logarithms));
        const __m512 inverse = _mm512_div_ps(one, sum);
        const __m512i label = _mm512_maskz_loadu_epi32(live, labels + i);
        float *db = d + i * columns;
        for (long j = 0; j < columns; ++j) {
            const __m512 hot = _mm512_maskz_mov_ps(_mm512_cmpeq_epi32_mask(label, _mm512_set1_epi32((int)j)), one);
            const __m512 g = _mm512_mul_ps(_mm512_sub_ps(_mm512_mul_ps(values[j], inverse), hot), scales);
            _mm512_mask_i32scatter_ps(db + j, live, at, g, 4);
        }
        const __m512 picked = _mm512_mask_i32gather_ps(zero, live, _mm512_add_epi32(at, label), zb, 4);
        _mm512_mask_storeu_ps(losses + i, live, _mm512_sub_ps(lse, picked));
    }
}

// σ(x) as `ActivationFunction.sigmoid` computes it, eight at a time: e = expf(−x) and 1/(1 + e)
// where x ≥ 0, else e = expf(x) and e/(1 + e) (NaN takes the second, as in Swift).
AVX512 void mlpkit_sigmoid_avx512(const float *x, float *out, long count) {
    const __m256 one = _mm256_set1_ps(1);
    for (long i = 0; i < count; i += 8) {
        const __mmask8 lanes = count - i >= 8 ? (__mmask8)0xFF : (__mmask8)((1u << (count - i)) - 1);
        const __m256 xs = _mm256_maskz_loadu_ps(lanes, x + i);
        const __mmask8 positive = _mm256_cmp_ps_mask(xs, _mm256_setzero_ps(), _CMP_GE_OQ);
        const __m256 e = expf8(_mm256_mask_xor_ps(xs, positive, xs, _mm256_set1_ps(-0.0f)), lanes);
        const __m256 d = _mm256_add_ps(one, e);
        _mm256_mask_storeu_ps(out + i, lanes, _mm256_mask_div_ps(_mm256_div_ps(e, d), positive, one, d));
    }
}

AVX512 void mlpkit_adam_avx512(const MLPKitAdamJob *job, long start, long end) {
    // the proofs above take c in [2⁻²⁴, 1]; any other (not from β in [0, 1)) goes to the AVX2 loop
    const int fits = job->correction1 >= 0x1p-24f && job->correction1 <= 1 && job->correction2 >= 0x1p-24f &&
                     job->correction2 <= 1;
    if (fits) MLPKIT_ADAM_CASES(adam_loop_512);
    else mlpkit_adam_avx2(job, start, end);
}

// One block of C: `rows` (1 to 6) rows by `vectors` (1 or 2) eight-column registers, the last
// register under `last` (all lanes, or the ragged end's), each sum accumulated over p in order
// with fused multiply-adds from zero. Called with constant rows, vectors and `masked`, so each
// combination is its own unrolled loop with the sums in registers (six rows by sixteen columns:
// twelve).
static inline __attribute__((always_inline, target("avx2,fma"))) void product_block(
    int rows, int vectors, int masked, long k, const float *a, long rowStride, long depthStride, const float *b, long ldb, float *c,
    long n, __m256i last) {
    __m256 sums[6][2];
    for (int r = 0; r < rows; ++r)
        for (int v = 0; v < vectors; ++v) sums[r][v] = _mm256_setzero_ps();
    for (long p = 0; p < k; ++p) {
        const float *bp = b + p * ldb;
        __m256 bv[2];
        if (vectors == 2) bv[0] = _mm256_loadu_ps(bp);
        bv[vectors - 1] = masked ? _mm256_maskload_ps(bp + 8 * (vectors - 1), last) : _mm256_loadu_ps(bp + 8 * (vectors - 1));
        const float *ap = a + p * depthStride;
        for (int r = 0; r < rows; ++r) {
            const __m256 ar = _mm256_broadcast_ss(ap + r * rowStride);
            for (int v = 0; v < vectors; ++v) sums[r][v] = _mm256_fmadd_ps(ar, bv[v], sums[r][v]);
        }
    }
    for (int r = 0; r < rows; ++r) {
        if (vectors == 2) _mm256_storeu_ps(c + r * n, sums[r][0]);
        if (masked) _mm256_maskstore_ps(c + r * n + 8 * (vectors - 1), last, sums[r][vectors - 1]);
        else _mm256_storeu_ps(c + r * n + 8 * (vectors - 1), sums[r][vectors - 1]);
    }
}

// Every row of one column block by MLPKIT_BLOCK(rows) (its block of `rows` rows at row i): six
// rows at a time, then the last 1 to 5, each count its own unrolled block.
#define MLPKIT_ROW_BLOCKS(m)                    \
    long i = 0;                                 \
    for (; i + 6 <= (m); i += 6) MLPKIT_BLOCK(6); \
    switch ((m) - i) {                          \
    case 5: MLPKIT_BLOCK(5); break;             \
    case 4: MLPKIT_BLOCK(4); break;             \
    case 3: MLPKIT_BLOCK(3); break;             \
    case 2: MLPKIT_BLOCK(2); break;             \
    case 1: MLPKIT_BLOCK(1); break;             \
    default: break;                             \
    }

// Every row of one column block: six rows at a time, then the last 1 to 5.
static inline __attribute__((always_inline, target("avx2,fma"))) void product_row_blocks(
    int vectors, int masked, long m, long k, const float *a, long rowStride, long depthStride, const float *b, long ldb,
    float *c, long n, __m256i last) {
#define MLPKIT_BLOCK(rows) product_block(rows, vectors, masked, k, a + i * rowStride, rowStride, depthStride, b, ldb, c + i * n, n, last)
    MLPKIT_ROW_BLOCKS(m)
#undef MLPKIT_BLOCK
}

// Sixteen columns of C (`masked` 0), or the last 1 to 15 (`masked` 1), over every row.
static inline __attribute__((always_inline, target("avx2,fma"))) void product_columns(
    int masked, long m, long width, long k, const float *a, long rowStride, long depthStride, const float *b, long ldb,
    float *c, long n) {
    const long lastWidth = width > 8 ? width - 8 : width;
    const __m256i last = _mm256_cmpgt_epi32(_mm256_set1_epi32((int)lastWidth), _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7));
    if (width > 8) product_row_blocks(2, masked, m, k, a, rowStride, depthStride, b, ldb, c, n, last);
    else product_row_blocks(1, masked, m, k, a, rowStride, depthStride, b, ldb, c, n, last);
}

// C[m×n] = Σ_p A(i, p)·B(p, j) with A(i, p) = a[i·rowStride + p·depthStride] and B(p, j) =
// b[p·ldb + j], C row-major (leading dimension n), sixteen columns at a time (the last ones under
// a mask), six rows by sixteen columns of C in twelve registers: enough independent sums to keep
// both multiply-add units busy even for the mnist step's 10-wide products, which four rows by
// eight columns left waiting on each sum's latency. Every sum is accumulated over p in order
// with fused multiply-adds from zero, whatever its block.
static inline __attribute__((always_inline, target("avx2,fma"))) void product_rows(
    long m, long n, long k, const float *a, long rowStride, long depthStride, const float *b, long ldb, float *c) {
    for (long j = 0; j < n; j += 16) {
        if (n - j >= 16) product_columns(0, m, 16, k, a, rowStride, depthStride, b + j, ldb, c + j, n);
        else product_columns(1, m, n - j, k, a, rowStride, depthStride, b + j, ldb, c + j, n);
    }
}

// One row's remaining columns from `start`, continuing its running sum `sum`.
static inline float mse_row_tail(const float *z, const float *y, float *d, long start, long columns, float scale, float sum) {
    for (long j = start; j < columns; ++j) {
        const float difference = z[j] - y[j];
        d[j] = difference * scale;
        sum += difference * difference;
    }
    return sum;
}

// Adds an 8×8 block of squares, q[r] holding row r's eight columns, to `sums` (lane r: row r):
// transposed so that each register holds one column, then added in column order.
static inline __attribute__((always_inline, target("avx2,fma"))) __m256 add_columns(__m256 sums, const __m256 *q) {
    const __m256 t0 = _mm256_unpacklo_ps(q[0], q[1]), t1 = _mm256_unpackhi_ps(q[0], q[1]);
    const __m256 t2 = _mm256_unpacklo_ps(q[2], q[3]), t3 = _mm256_unpackhi_ps(q[2], q[3]);
    const __m256 t4 = _mm256_unpacklo_ps(q[4], q[5]), t5 = _mm256_unpackhi_ps(q[4], q[5]);
    const __m256 t6 = _mm256_unpacklo_ps(q[6], q[7]), t7 = _mm256_unpackhi_ps(q[6], q[7]);
    const __m256 u0 = _mm256_shuffle_ps(t0, t2, 0x44), u1 = _mm256_shuffle_ps(t0, t2, 0xEE);
    const __m256 u2 = _mm256_shuffle_ps(t1, t3, 0x44), u3 = _mm256_shuffle_ps(t1, t3, 0xEE);
    const __m256 u4 = _mm256_shuffle_ps(t4, t6, 0x44), u5 = _mm256_shuffle_ps(t4, t6, 0xEE);
    const __m256 u6 = _mm256_shuffle_ps(t5, t7, 0x44), u7 = _mm256_shuffle_ps(t5, t7, 0xEE);
    sums = _mm256_add_ps(sums, _mm256_permute2f128_ps(u0, u4, 0x20));  // column 0
    sums = _mm256_add_ps(sums, _mm256_permute2f128_ps(u1, u5, 0x20));
    sums = _mm256_add_ps(sums, _mm256_permute2f128_ps(u2, u6, 0x20));
    sums = _mm256_add_ps(sums, _mm256_permute2f128_ps(u3, u7, 0x20));
    sums = _mm256_add_ps(sums, _mm256_permute2f128_ps(u0, u4, 0x31));  // column 4
    sums = _mm256_add_ps(sums, _mm256_permute2f128_ps(u1, u5, 0x31));
    sums = _mm256_add_ps(sums, _mm256_permute2f128_ps(u2, u6, 0x31));
    return _mm256_add_ps(sums, _mm256_permute2f128_ps(u3, u7, 0x31));
}

AVX2 void mlpkit_mse_rows_avx2(const float *z, const float *y, float *d, long start, long end, long columns, float scale,
                               float *rowSums) {
    enum { tile = 64 };
    const __m256 s = _mm256_set1_ps(scale);
    float squares[8 * tile];
    long i = start;
    for (; i + 8 <= end; i += 8) {
        __m256 sums = _mm256_setzero_ps();  // lane r: row i + r's running sum
        // the columns that fill eight-lane registers, up to 64 of each row in turn (reading eight
        // rows side by side, 4 KiB apart for a 1024-wide output, evicted each other's lines from
        // the first-level cache: 6× slower), their squares kept here, then added eight columns
        // at a time; the last 0 to 7 columns below, one at a time
        const long whole = columns / 8 * 8;
        long j = 0;
        while (j < whole) {
            const long width = whole - j < tile ? whole - j : tile;
            for (int r = 0; r < 8; ++r) {
                const long at = (i + r) * columns + j;
                for (long v = 0; v < width; v += 8) {
                    const __m256 difference = _mm256_sub_ps(_mm256_loadu_ps(z + at + v), _mm256_loadu_ps(y + at + v));
                    _mm256_storeu_ps(d + at + v, _mm256_mul_ps(difference, s));
                    _mm256_storeu_ps(squares + r * tile + v, _mm256_mul_ps(difference, difference));
                }
            }
            for (long v = 0; v < width; v += 8) {
                __m256 q[8];
                for (int r = 0; r < 8; ++r) q[r] = _mm256_loadu_ps(squares + r * tile + v);
                sums = add_columns(sums, q);
            }
            j += width;
        }
        float lanes[8];
        _mm256_storeu_ps(lanes, sums);
        for (int r = 0; r < 8; ++r) {
            const long at = (i + r) * columns;
            rowSums[i + r] = mse_row_tail(z + at, y + at, d + at, j, columns, scale, lanes[r]);
        }
    }
    for (; i < end; ++i) {
        const long at = i * columns;
        rowSums[i] = mse_row_tail(z + at, y + at, d + at, 0, columns, scale, 0);
    }
}

// An NT product's B (n×k) transposed to k×n, per thread.
static _Thread_local float transposed[MLPKIT_SMALL_NT_LIMIT];

// Every row of C from A's rows and B's columns as strided, for `rows` (AVX2's or AVX-512's).
typedef void (*small_product_rows)(long m, long n, long k, const float *a, long rowStride, long depthStride, const float *b,
                                   long ldb, float *c);

// The small product in a layout: operand strides for `rows`, an NT product's B transposed first.
// Inlined into each entry point, so that `rows` is a constant there.
static inline __attribute__((always_inline, target("avx2,fma"))) int small_product(
    int layout, long m, long n, long k, const float *a, const float *b, float *c, small_product_rows rows) {
    switch (layout) {
    case 0:  // NT: A m×k, B n×k
        if (k * n > MLPKIT_SMALL_NT_LIMIT) return 0;
        for (long j = 0; j < n; ++j)
            for (long p = 0; p < k; ++p) transposed[p * n + j] = b[j * k + p];
        rows(m, n, k, a, k, 1, transposed, n, c);
        return 1;
    case 1:  // TN: A k×m, B k×n
        rows(m, n, k, a, 1, m, b, n, c);
        return 1;
    case 2:  // NN: A m×k, B k×n
        rows(m, n, k, a, k, 1, b, n, c);
        return 1;
    default:
        return 0;
    }
}

AVX2 int mlpkit_small_product_avx2(int layout, long m, long n, long k, const float *a, const float *b, float *c) {
    return small_product(layout, m, n, k, a, b, c, product_rows);
}

// ---- The small product with AVX-512: the same sums, sixteen lanes to a register ----
//
// As `mlpkit_small_product_avx2`, six rows by 32 columns of C in twelve sixteen-lane registers
// (the ragged last 1 to 31 columns under a lane mask), each element the same chain of fused
// multiply-adds over p in order from zero, so the same bits as the AVX2 kernel on any shape.


static inline __attribute__((always_inline, target("avx512f"))) void product_block_512(
    int rows, int vectors, long k, const float *a, long rowStride, long depthStride, const float *b, long ldb, float *c, long n,
    __mmask16 last) {
    __m512 sums[6][2];
    for (int r = 0; r < rows; ++r)
        for (int v = 0; v < vectors; ++v) sums[r][v] = _mm512_setzero_ps();
    for (long p = 0; p < k; ++p) {
        const float *bp = b + p * ldb;
        __m512 bv[2];
        if (vectors == 2) bv[0] = _mm512_loadu_ps(bp);
        bv[vectors - 1] = _mm512_maskz_loadu_ps(last, bp + 16 * (vectors - 1));
        const float *ap = a + p * depthStride;
        for (int r = 0; r < rows; ++r) {
            const __m512 ar = _mm512_set1_ps(ap[r * rowStride]);
            for (int v = 0; v < vectors; ++v) sums[r][v] = _mm512_fmadd_ps(ar, bv[v], sums[r][v]);
        }
    }
    for (int r = 0; r < rows; ++r) {
        if (vectors == 2) _mm512_storeu_ps(c + r * n, sums[r][0]);
        _mm512_mask_storeu_ps(c + r * n + 16 * (vectors - 1), last, sums[r][vectors - 1]);
    }
}

static inline __attribute__((always_inline, target("avx512f"))) void product_row_blocks_512(
    int vectors, long m, long k, const float *a, long rowStride, long depthStride, const float *b, long ldb, float *c, long n,
    __mmask16 last) {
#define MLPKIT_BLOCK(rows) product_block_512(rows, vectors, k, a + i * rowStride, rowStride, depthStride, b, ldb, c + i * n, n, last)
    MLPKIT_ROW_BLOCKS(m)
#undef MLPKIT_BLOCK
}

static inline __attribute__((always_inline, target("avx512f"))) void product_rows_512(
    long m, long n, long k, const float *a, long rowStride, long depthStride, const float *b, long ldb, float *c) {
    for (long j = 0; j < n; j += 32) {
        const long width = n - j < 32 ? n - j : 32;
        const long lastWidth = width > 16 ? width - 16 : width;
        const __mmask16 last = (__mmask16)(lastWidth >= 16 ? 0xFFFF : (1u << lastWidth) - 1);
        if (width > 16) product_row_blocks_512(2, m, k, a, rowStride, depthStride, b + j, ldb, c + j, n, last);
        else product_row_blocks_512(1, m, k, a, rowStride, depthStride, b + j, ldb, c + j, n, last);
    }
}

AVX512 int mlpkit_small_product_avx512(int layout, long m, long n, long k, const float *a,
                                                                           const float *b, float *c) {
    return small_product(layout, m, n, k, a, b, c, product_rows_512);
}

// ---- The packed product: the CPU backend's product where no BLAS is installed ----
//
// The scheme of a BLAS (Goto's): C's columns in blocks of PACKED_NC, the depth in blocks of
// PACKED_KC, C's rows in blocks of PACKED_MC; each depth block of B copied once into panels of
// sixteen columns and each of A into panels of six rows (zero-padded), so that the kernel reads
// both operands contiguously, whatever the layout; then six rows by sixteen columns of C at a
// time in twelve registers. Each element of C is the sum, in order, of one chain of fused
// multiply-adds from zero per depth block: the blocking of the depth depends on k alone, so the
// bits do not depend on which rows or columns a call (or a thread) is given.
// Depth blocks of 512 (against 256: 1024³ on one thread 50 → 70 GFLOP/s, one-thread OpenBLAS
// 69–82 in the same runs: C is read and written once per block) and row blocks of 72 (A's block,
// 144 KiB, stays in the L2 cache).
enum { PACKED_MR = 6, PACKED_NR = 16, PACKED_KC = 512, PACKED_MC = 72, PACKED_NC = 1024 };
// The AVX-512 kernel's tile: 8 rows by 32 columns (below).
enum { PACKED512_NR = 32, PACKED512_MR = 8 };

// Each thread's packing buffers (A's block 144 KiB, B's 2 MiB), made at its first product.
static _Thread_local float *packed_a_block;
static _Thread_local float *packed_b_block;

// Makes this thread's packing buffers at its first product; 0 where there is no memory for them.
static int packing_buffers(void) {
    if (!packed_a_block) {
        void *block = NULL;
        if (posix_memalign(&block, 64, sizeof(float) * PACKED_MC * PACKED_KC) == 0) packed_a_block = block;
    }
    if (!packed_b_block) {
        void *block = NULL;
        if (posix_memalign(&block, 64, sizeof(float) * PACKED_KC * PACKED_NC) == 0) packed_b_block = block;
    }
    return packed_a_block && packed_b_block;
}

// Eight rows of eight values in r[0..7], transposed: afterwards r[i] (i < 4) holds column i in its
// low half and column i + 4 in its high half, and r[i + 4] columns i and i + 4 of rows 4–7, so
// that `_mm256_permute2f128_ps(r[i], r[i + 4], 0x20)` is column i and `0x31` column i + 4.
static inline __attribute__((always_inline, target("avx2,fma"))) void transpose8_registers(__m256 r[8]) {
    __m256 t[8];
    for (int i = 0; i < 8; i += 2) {
        t[i] = _mm256_unpacklo_ps(r[i], r[i + 1]);
        t[i + 1] = _mm256_unpackhi_ps(r[i], r[i + 1]);
    }
    for (int i = 0; i < 8; i += 4) {
        r[i] = _mm256_shuffle_ps(t[i], t[i + 2], _MM_SHUFFLE(1, 0, 1, 0));
        r[i + 1] = _mm256_shuffle_ps(t[i], t[i + 2], _MM_SHUFFLE(3, 2, 3, 2));
        r[i + 2] = _mm256_shuffle_ps(t[i + 1], t[i + 3], _MM_SHUFFLE(1, 0, 1, 0));
        r[i + 3] = _mm256_shuffle_ps(t[i + 1], t[i + 3], _MM_SHUFFLE(3, 2, 3, 2));
    }
}

// to[r·toStride + i] = from[i·fromStride + r] for an 8×8 block.
static inline __attribute__((always_inline, target("avx2,fma"))) void transpose8(const float *from, long fromStride, float *to,
                                                                               long toStride) {
    __m256 r[8];
    for (int i = 0; i < 8; ++i) r[i] = _mm256_loadu_ps(from + i * fromStride);
    transpose8_registers(r);
    for (int i = 0; i < 4; ++i) {
        _mm256_storeu_ps(to + i * toStride, _mm256_permute2f128_ps(r[i], r[i + 4], 0x20));
        _mm256_storeu_ps(to + (i + 4) * toStride, _mm256_permute2f128_ps(r[i], r[i + 4], 0x31));
    }
}

// to[r·6 + i] = from[i·fromStride + r] for six lines i of eight depths r (the packed layout of
// eight depths of a six-line panel): the six lines and two of zeros transposed, each depth's
// first six values stored (four, then two).
static inline __attribute__((always_inline, target("avx2,fma"))) void transpose6(const float *from, long fromStride, float *to) {
    __m256 r[8];
    for (int i = 0; i < 6; ++i) r[i] = _mm256_loadu_ps(from + i * fromStride);
    r[6] = r[7] = _mm256_setzero_ps();
    transpose8_registers(r);
    for (int i = 0; i < 4; ++i) {
        const __m256 low = _mm256_permute2f128_ps(r[i], r[i + 4], 0x20), high = _mm256_permute2f128_ps(r[i], r[i + 4], 0x31);
        _mm_storeu_ps(to + i * PACKED_MR, _mm256_castps256_ps128(low));
        _mm_storel_pi((__m64 *)(to + i * PACKED_MR + 4), _mm256_extractf128_ps(low, 1));
        _mm_storeu_ps(to + (i + 4) * PACKED_MR, _mm256_castps256_ps128(high));
        _mm_storel_pi((__m64 *)(to + (i + 4) * PACKED_MR + 4), _mm256_extractf128_ps(high, 1));
    }
}

// Lines 0..<count of an operand (A's rows or B's columns) over depth 0..<depth, into panels of
// `width` lines, each panel depth×width with the lines side by side, zero past the last line.
// Line i at depth p is source[i·lineStride + d·depthStride], d = p, or depths[p] where `depths`
// is given (B's depths picked from a larger matrix: a batch's rows read where they lie).
static inline __attribute__((always_inline, target("avx2,fma"))) void pack_panels(
    const float *source, long count, long lineStride, long depth, long depthStride, const long *depths, long width,
    float *packed) {
#define PACKED_DEPTH(p) ((depths ? depths[p] : (p)) * depthStride)
    if (lineStride == 1 && width == 8 && count % 16 == 0) {
        // eight-line panels (TN's A): two panels (one cache line of each depth) at a time, depth
        // after depth, so that the two panels are written in order
        for (long panel = 0; panel < count; panel += 16) {
            float *first = packed + panel * depth, *second = first + 8 * depth;
            for (long p = 0; p < depth; ++p) {
                const float *at = source + PACKED_DEPTH(p) + panel;
                _mm256_storeu_ps(first + p * 8, _mm256_loadu_ps(at));
                _mm256_storeu_ps(second + p * 8, _mm256_loadu_ps(at + 8));
            }
        }
        return;
    }
    if (lineStride == 1) {
        // the lines side by side in memory at each depth (B in NN and TN, A in TN): one pass along
        // each depth's run of lines, so the source is read in order (panel after panel, each
        // depth in turn, crossed a page at every depth: 512 pages a panel)
        for (long p = 0; p < depth; ++p) {
            const float *at = source + PACKED_DEPTH(p);
            long panel = 0;
            // whole panels, those of a multiple of eight lines eight at a time (`width` is a
            // constant where this is inlined; the compiler copied them one float at a time:
            // mnist's first weight gradient packed its 32-row chunks of dZ so)
            for (; panel + width <= count; panel += width) {
                float *row = packed + panel * depth + p * width;
                if (width % 8 == 0)
                    for (long j = 0; j < width; j += 8) _mm256_storeu_ps(row + j, _mm256_loadu_ps(at + panel + j));
                else
                    for (long j = 0; j < width; ++j) row[j] = at[panel + j];
            }
            if (panel < count) {
                float *row = packed + panel * depth + p * width;
                for (long j = 0; j < count - panel; ++j) row[j] = at[panel + j];
                for (long j = count - panel; j < width; ++j) row[j] = 0;
            }
        }
        return;
    }
    for (long panel = 0; panel < count; panel += width) {
        const long valid = count - panel < width ? count - panel : width;
        float *out = packed + panel * depth;
        const float *lines = source + panel * lineStride;
        long p = 0;
        if (width == PACKED_MR && valid == width && depthStride == 1 && !depths) {
            // whole six-line panels of lines along which the depth runs (A in NT and NN): eight
            // depths of the six lines at a time, transposed in registers as eight lines with two of
            // zeros, each depth's six values stored as four and two
            for (; p + 8 <= depth; p += 8) transpose6(lines + p, lineStride, out + p * PACKED_MR);
        } else if (width == 8 * (width / 8) && valid == width && depthStride == 1 && !depths) {
            // whole panels of lines along which the depth runs (B in NT): eight depths of eight
            // lines at a time, transposed in registers
            for (; p + 8 <= depth; p += 8)
                for (long j = 0; j < width; j += 8) transpose8(lines + j * lineStride + p, lineStride, out + p * width + j, width);
        }
        for (; p < depth; ++p) {
            const float *at = lines + PACKED_DEPTH(p);
            float *row = out + p * width;
            for (long j = 0; j < valid; ++j) row[j] = at[j * lineStride];
            for (long j = valid; j < width; ++j) row[j] = 0;
        }
    }
#undef PACKED_DEPTH
}

// The product's epilogue for one tile (or a block of C): f(C + bias) with `bias` (the tile's first
// column's), or C·f′(source) with `source` (the tile's first element's, `ld` floats a row); f by
// `function`, as `epilogue` in epilogue16.h. Applied where C's sums are final (the last depth block).
struct tile_epilogue {
    const float *bias;
    const float *source;
    long ld;
    int function;
};

// The epilogue moved to a tile `rows` rows and `columns` columns into its block (NULL stays NULL).
static inline __attribute__((always_inline)) struct tile_epilogue tile_epilogue_at(const struct tile_epilogue *block, long rows,
                                                                                   long columns) {
    struct tile_epilogue t = {block->bias ? block->bias + columns : NULL,
                              block->source ? block->source + rows * block->ld + columns : NULL, block->ld, block->function};
    return t;
}

// C's tile on its way into the L1 cache while a kernel makes its sums (each row's two cache
// lines, or three where it straddles one): 1024³ NN and 256×2048×1024 NT on one thread 6–8%
// closer to one-thread OpenBLAS.
static inline __attribute__((always_inline)) void prefetch_tile(const float *c, long ldc, long rows, long columns) {
    for (long r = 0; r < rows; ++r) {
        _mm_prefetch((const char *)(c + r * ldc), _MM_HINT_T0);
        _mm_prefetch((const char *)(c + r * ldc + columns - 1), _MM_HINT_T0);
    }
}

// C's rows×columns tile (at most 6×16, leading dimension ldc) from a packed panel of A
// (depth×6) and of B (depth×16): stored, or added to C for every depth block after the first.
static inline __attribute__((always_inline, target("avx2,fma"))) void packed_kernel(
    long depth, const float *a, const float *b, float *c, long ldc, long rows, long columns, int accumulates,
    const struct tile_epilogue *epi) {
    (void)epi;  // never given one: the epilogue is the AVX-512 tiles
    prefetch_tile(c, ldc, rows, columns);
    __m256 sums[PACKED_MR][2];
    for (int r = 0; r < PACKED_MR; ++r) sums[r][0] = sums[r][1] = _mm256_setzero_ps();
    for (long p = 0; p < depth; ++p) {
        const __m256 b0 = _mm256_loadu_ps(b + p * PACKED_NR), b1 = _mm256_loadu_ps(b + p * PACKED_NR + 8);
        const float *ap = a + p * PACKED_MR;
        for (int r = 0; r < PACKED_MR; ++r) {
            const __m256 ar = _mm256_broadcast_ss(ap + r);
            sums[r][0] = _mm256_fmadd_ps(ar, b0, sums[r][0]);
            sums[r][1] = _mm256_fmadd_ps(ar, b1, sums[r][1]);
        }
    }
    if (rows == PACKED_MR && columns == PACKED_NR) {
        for (int r = 0; r < PACKED_MR; ++r) {
            float *row = c + r * ldc;
            if (accumulates) {
                _mm256_storeu_ps(row, _mm256_add_ps(_mm256_loadu_ps(row), sums[r][0]));
                _mm256_storeu_ps(row + 8, _mm256_add_ps(_mm256_loadu_ps(row + 8), sums[r][1]));
            } else {
                _mm256_storeu_ps(row, sums[r][0]);
                _mm256_storeu_ps(row + 8, sums[r][1]);
            }
        }
        return;
    }
    float tile[PACKED_MR * PACKED_NR];
    for (int r = 0; r < PACKED_MR; ++r) {
        _mm256_storeu_ps(tile + r * PACKED_NR, sums[r][0]);
        _mm256_storeu_ps(tile + r * PACKED_NR + 8, sums[r][1]);
    }
    for (long r = 0; r < rows; ++r) {
        float *row = c + r * ldc;
        const float *from = tile + r * PACKED_NR;
        if (accumulates) {
            for (long j = 0; j < columns; ++j) row[j] = row[j] + from[j];
        } else {
            for (long j = 0; j < columns; ++j) row[j] = from[j];
        }
    }
}

// The packed product's sums element by element (`mlpkit_unpacked_product_avx2`), with op(A)'s
// depths picked too where `aDepths` is given (A(i, p) at a[i·aRow + aDepths[p]·aDepth]).
static void unpacked_product(long m, long n, long k, const float *a, long aRow, long aDepth, const long *aRows,
                             const long *aDepths, const float *b, long bDepth, long bColumn, const long *bDepths, float *c,
                             long ldc) {
    for (long i = 0; i < m; ++i)
        for (long j = 0; j < n; ++j) {
            const float *row = a + (aRows ? aRows[i] : i) * aRow, *column = b + j * bColumn;
            float total = 0;
            for (long pc = 0; pc < k; pc += PACKED_KC) {
                const long end = k - pc < PACKED_KC ? k : pc + PACKED_KC;
                float sum = 0;
                for (long p = pc; p < end; ++p)
                    sum = fmaf(row[(aDepths ? aDepths[p] : p) * aDepth], column[(bDepths ? bDepths[p] : p) * bDepth], sum);
                total = pc == 0 ? sum : total + sum;
            }
            c[i * ldc + j] = total;
        }
}

AVX2 void mlpkit_unpacked_product_avx2(long m, long n, long k, const float *a, long aRow, long aDepth, const long *aRows,
                                       const float *b, long bDepth, long bColumn, const long *bDepths, float *c, long ldc) {
    unpacked_product(m, n, k, a, aRow, aDepth, aRows, NULL, b, bDepth, bColumn, bDepths, c, ldc);
}

// One tile of C from packed panels of A and B (at most 6 rows by `width` columns), stored or added.
typedef void (*packed_tile_kernel)(long depth, const float *a, const float *b, float *c, long ldc, long rows, long columns,
                                   int accumulates, const struct tile_epilogue *epi);

// Where B's panels and C's column panels lie: panel q of B at b + q·b, of C at c + q·c (floats).
// Packed B: kc·width apart; B kept in panels (`claimed_product`'s bPanel): bPanel apart. Plain C:
// `width` apart (columns side by side); C kept in panels: cPanel apart.
struct panel_strides {
    long b, c;
};

// Every tile of a rows×columns block of C (leading dimension ldc) from packed A (its rows in
// panels of `mr`, depth kc) and B's panels of `width` columns (`strides.b` apart): stored, or
// added to C. B's panels outermost, so that each stays in the cache over every panel of A.
static inline __attribute__((always_inline, target("avx2,fma"))) void packed_tiles(
    long kc, const float *packedA, long rows, const float *packedB, long columns, float *c, long ldc, long width, long mr,
    packed_tile_kernel kernel, int accumulates, const struct tile_epilogue *epi, struct panel_strides strides) {
    for (long jr = 0; jr < columns; jr += width) {
        const long tileColumns = columns - jr < width ? columns - jr : width;
        for (long ir = 0; ir < rows; ir += mr) {
            const long tileRows = rows - ir < mr ? rows - ir : mr;
            const struct tile_epilogue at = epi ? tile_epilogue_at(epi, ir, jr) : (struct tile_epilogue){0};
            kernel(kc, packedA + ir * kc, packedB + jr / width * strides.b, c + ir * ldc + jr / width * strides.c, ldc, tileRows,
                   tileColumns, accumulates, epi ? &at : NULL);
        }
    }
}

// The packed product's blocking and packing around `kernel`, whose tiles are `width` columns wide
// (B packed in panels of that many columns): the AVX2 kernel's sixteen or the AVX-512 one's 32.
// Inlined into each entry point, so that `width` and `kernel` are constants there (the packing
// loops and the kernel specialised, as when each was written out).
static inline __attribute__((always_inline, target("avx2,fma"))) void packed_product(
    long m, long n, long k, const float *a, long aRow, long aDepth, const float *b, long bDepth, long bColumn, float *c, long ldc,
    long width, long mr, packed_tile_kernel kernel) {
    if (m <= 0 || n <= 0) return;
    if (k <= 0) {
        for (long i = 0; i < m; ++i)
            for (long j = 0; j < n; ++j) c[i * ldc + j] = 0;
        return;
    }
    if (!packing_buffers()) {
        // no memory for the packing buffers: the same sums, element by element
        mlpkit_unpacked_product_avx2(m, n, k, a, aRow, aDepth, NULL, b, bDepth, bColumn, NULL, c, ldc);
        return;
    }
    float *packedA = packed_a_block, *packedB = packed_b_block;
    for (long jc = 0; jc < n; jc += PACKED_NC) {
        const long nc = n - jc < PACKED_NC ? n - jc : PACKED_NC;
        for (long pc = 0; pc < k; pc += PACKED_KC) {
            const long kc = k - pc < PACKED_KC ? k - pc : PACKED_KC;
            pack_panels(b + jc * bColumn + pc * bDepth, nc, bColumn, kc, bDepth, NULL, width, packedB);
            for (long ic = 0; ic < m; ic += PACKED_MC) {
                const long mc = m - ic < PACKED_MC ? m - ic : PACKED_MC;
                pack_panels(a + ic * aRow + pc * aDepth, mc, aRow, kc, aDepth, NULL, mr, packedA);
                // a panel of B (32 KiB at most with AVX2's kernel) stays in the L1 cache over every panel of A
                packed_tiles(kc, packedA, mc, packedB, nc, c + ic * ldc + jc, ldc, width, mr, kernel, pc > 0, NULL,
                             (struct panel_strides){kc * width, width});
            }
        }
    }
}

// One tile of C from A read where it lies (A(r, p) at a[i·rowStride + p·depthStride], i = r, or
// rows[r] where `rows` is given) and a packed panel of B: AVX-512's `direct_kernel_512`. `ahead`
// (or NULL): the next tile's eight rows of A, asked for into the L2 cache while this one runs.
typedef void (*direct_tile_kernel)(long depth, const float *a, long rowStride, long depthStride, const long *rows,
                                   const float *b, float *c, long ldc, long tileRows, long columns, int accumulates,
                                   const struct tile_epilogue *epi, const float *const *ahead);

// A tile's eight rows of A: row r at a + r·rowStride, or a + rowIndex[r]·rowStride where
// `rowIndex` is given; a row past `rows` is the last row again.
static inline __attribute__((always_inline)) void tile_rows(const float *a, long rowStride, const long *rowIndex, long rows,
                                                            const float *lines[PACKED512_MR]) {
    for (int r = 0; r < PACKED512_MR; ++r) {
        const long line = r < rows ? r : rows - 1;
        lines[r] = a + (rowIndex ? rowIndex[line] : line) * rowStride;
    }
}

// `packed_tiles` with A read where it lies (rows `aRow` apart, depths `aDepth` apart; row r at
// a + aRows[r]·aRow where `aRows` is given). In the first panel of B's columns, where A's rows are
// read for the first time (from another core's caches when they are the activations both threads
// wrote, from L3 when they are the batch's rows), each tile asks for the next tile's rows: mnist's
// second forward product 43.8–44.7 → 37.6–37.8 µs and its step 581–582 → 574–576 µs (`mlp bench
// --config mnist --steps 2000 --breakdown`, three alternating pairs); [32,64,64,1] at batch 4096
// 1.06–1.07 → 1.03 ms, others level. In a C harness with A's halves just written by the two
// threads, 44.5–45.0 → 40.3–40.8 µs a thread; two or three tiles ahead, or into the first
// level's cache, did no better.
static inline __attribute__((always_inline, target("avx2,fma"))) void direct_tiles(
    long kc, const float *a, long aRow, long aDepth, const long *aRows, long rows, const float *packedB, long columns, float *c,
    long ldc, long width, long mr, direct_tile_kernel kernel, int accumulates, const struct tile_epilogue *epi,
    struct panel_strides strides) {
    for (long jr = 0; jr < columns; jr += width) {
        const long tileColumns = columns - jr < width ? columns - jr : width;
        for (long ir = 0; ir < rows; ir += mr) {
            const long tileRows = rows - ir < mr ? rows - ir : mr;
            const struct tile_epilogue at = epi ? tile_epilogue_at(epi, ir, jr) : (struct tile_epilogue){0};
            const float *ahead[PACKED512_MR];
            const int asks = jr == 0 && aDepth == 1 && ir + mr < rows && mr == PACKED512_MR;
            if (asks) {
                const long next = ir + mr;
                tile_rows(aRows ? a : a + next * aRow, aRow, aRows ? aRows + next : NULL, rows - next, ahead);
            }
            kernel(kc, aRows ? a : a + ir * aRow, aRow, aDepth, aRows ? aRows + ir : NULL, packedB + jr / width * strides.b,
                   c + ir * ldc + jr / width * strides.c, ldc, tileRows, tileColumns, accumulates, epi ? &at : NULL,
                   asks ? ahead : NULL);
        }
    }
}

// The epilogue over a rows×columns block of C (leading dimension ldc) already computed: AVX-512's
// `epilogue_block_512`, where the claimed product falls back to its element-by-element sums.
typedef void (*block_epilogue)(float *c, long ldc, long rows, long columns, const struct tile_epilogue *epi);

// Each thread's buffer for a whole operand packed once (`claimed_product`), grown as needed.
static _Thread_local float *packed_whole;
static _Thread_local long packed_whole_capacity;

// The packed product split into chunks of C's columns (or rows) that the calling threads claim one
// at a time from `*next` (an atomic counter from zero): each thread packs the other operand whole
// (all of A for column chunks, all of B for row chunks; the share every thread packs when the
// product is cut in halves), then takes chunks until none is left, packing only the chunk's part
// of its own operand. So a thread that runs slower takes fewer chunks instead of being waited for.
// Every element is the same chain per block of the depth as in `packed_product`: the same bits
// whichever thread takes which chunk. `chunk` is best a multiple of `width` (columns) or of `mr`
// (rows); it is held to the packing buffers' PACKED_NC columns or PACKED_MC rows.
//
// `aRows` (or NULL): op(A)'s row i is row aRows[i] of `a`; `bDepths` (or NULL): op(B)'s depth p is
// depth bDepths[p] of `b`; `aDepths` (or NULL): op(A)'s depth p is depth aDepths[p] of `a` (TN's A).
// A batch's rows are read where they lie in the data instead of gathered first: the same sums, so
// the same bits as the product of the gathered copy.
//
// Operands kept in panels of `width` (a weight the CPU backend keeps in the order its forward
// product packs it, and that weight's gradient): with `bPanel` > 0, B's line j at depth p is
// b[(j / width)·bPanel + p·width + j % width] (the panels over the whole depth, never packed); with
// `cPanel` > 0, C(i, j) is c[(j / width)·cPanel + i·ldc + j % width]. Either needs column chunks
// that start on a panel (`chunk` a multiple of `width`).
static inline __attribute__((always_inline, target("avx2,fma"))) void claimed_product(
    long m, long n, long k, const float *a, long aRow, long aDepth, const long *aRows, const long *aDepths, const float *b,
    long bDepth, long bColumn, const long *bDepths, long bPanel, float *c, long ldc, long cPanel, long chunk, long *next,
    int splitsColumns, long width, long mr, packed_tile_kernel kernel, direct_tile_kernel direct, const struct tile_epilogue *epi,
    block_epilogue apply) {
    // at most what the packing buffers hold (the same on every thread, so the chunks agree)
    const long largest = splitsColumns ? PACKED_NC : PACKED_MC;
    chunk = chunk < 1 ? 1 : chunk > largest ? largest : chunk;
    const long extent = splitsColumns ? n : m;
    long claim = __atomic_fetch_add(next, 1, __ATOMIC_RELAXED);
    if (claim * chunk >= extent || m <= 0 || n <= 0) return;
    // A read where it lies instead of packed, where there is a kernel for it (AVX-512's) and A's
    // rows run along the depth (NT and NN: activations and deltas), so that each of a tile's eight
    // rows is read in order; one thread, alternating in a C harness: 128×256×784 NT 5–7% faster,
    // 128×128×256 NT (by rows) 8–10%, 128×256×128 NN 2%; TN, whose depths lie m apart, level or
    // slower, so it stays packed
    const int readsA = direct && aDepth == 1 && !aDepths;
    const long lines = splitsColumns ? m : n, panel = splitsColumns ? mr : width;
    const long padded = (lines + panel - 1) / panel * panel;
    // A packed a tile at a time (its eight lines over the depth block, into the L1 cache) where C is
    // kept in panels (a weight gradient dWᵀ = Aᵀ·dZ with dW in panels: A is the batch, and a chunk
    // is a thread's whole block of dW's rows), instead of all of A packed first: mnist's first
    // weight gradient packed its 128×784 batch, 400 KB of fresh lines a thread each step; so,
    // backward 1 183.5–184.7 → 177.3–179.5 µs (`--breakdown`, three alternating pairs), while
    // chunks of 64 columns (A's tiles packed twice) were level
    const int aTiles = splitsColumns && !readsA && cPanel;
    // the other operand packed whole first, unless it is A and read where it lies, or B and kept in panels
    const int packsWhole = splitsColumns ? !readsA && !aTiles : !bPanel;
    const long need = packsWhole ? padded * (k > 0 ? k : 1) : 1;
    if (packed_whole_capacity < need) {
        void *block = NULL;
        if (posix_memalign(&block, 64, sizeof(float) * need) == 0) {
            free(packed_whole);
            packed_whole = block;
            packed_whole_capacity = need;
        }
    }
    if (k <= 0 || packed_whole_capacity < need || !packing_buffers() || (aRows && !readsA)) {
        // no depth, or no memory for the buffers, or A's rows picked where A is packed (the packing
        // has no row index): the same sums, element by element, chunk by chunk, and a panel of
        // `width` columns at a time where B or C is kept in panels
        for (; claim * chunk < extent; claim = __atomic_fetch_add(next, 1, __ATOMIC_RELAXED)) {
            const long start = claim * chunk, count = extent - start < chunk ? extent - start : chunk;
            const long first = splitsColumns ? start : 0, columns = splitsColumns ? count : n;
            const long rowStart = splitsColumns ? 0 : start, rows = splitsColumns ? m : count;
            const float *rowsA = aRows ? a : a + rowStart * aRow;
            const long *rowIndex = aRows ? aRows + rowStart : NULL;
            const long step = bPanel || cPanel ? width : columns;
            for (long j = first; j < first + columns; j += step) {
                const long group = first + columns - j < step ? first + columns - j : step;
                const float *bAt = bPanel ? b + j / width * bPanel : b + j * bColumn;
                float *cAt = (cPanel ? c + j / width * cPanel : c + j) + rowStart * ldc;
                unpacked_product(rows, group, k, rowsA, aRow, aDepth, rowIndex, aDepths, bAt, bPanel ? width : bDepth,
                                 bPanel ? 1 : bColumn, bDepths, cAt, ldc);
                if (epi) {
                    const struct tile_epilogue at = tile_epilogue_at(epi, rowStart, j);
                    apply(cAt, ldc, rows, group, &at);
                }
            }
        }
        return;
    }
    float *whole = packed_whole;
    for (long pc = 0; packsWhole && pc < k; pc += PACKED_KC) {
        const long kc = k - pc < PACKED_KC ? k - pc : PACKED_KC;
        if (splitsColumns)
            pack_panels(aDepths ? a : a + pc * aDepth, m, aRow, kc, aDepth, aDepths ? aDepths + pc : NULL, mr, whole + padded * pc);
        else
            pack_panels(bDepths ? b : b + pc * bDepth, n, bColumn, kc, bDepth, bDepths ? bDepths + pc : NULL, width,
                        whole + padded * pc);
    }
    for (; claim * chunk < extent; claim = __atomic_fetch_add(next, 1, __ATOMIC_RELAXED)) {
        const long start = claim * chunk, count = extent - start < chunk ? extent - start : chunk;
        // the chunk's epilogue, applied by the tiles of the last depth block (C's sums final there)
        const struct tile_epilogue chunkEpilogue = epi ? tile_epilogue_at(epi, splitsColumns ? 0 : start, splitsColumns ? start : 0)
                                                       : (struct tile_epilogue){0};
        // the chunk's C, and its column panels' distance
        float *chunkC = splitsColumns ? (cPanel ? c + start / width * cPanel : c + start) : c + start * ldc;
        const long cStride = cPanel ? cPanel : width;
        for (long pc = 0; pc < k; pc += PACKED_KC) {
            const long kc = k - pc < PACKED_KC ? k - pc : PACKED_KC;
            const struct tile_epilogue *last = epi && pc + kc >= k ? &chunkEpilogue : NULL;
            if (aTiles) {
                // the chunk's panels of B, then A a tile at a time, each tile's sums over every panel
                // (a branch of its own: folded into the column chunks' branch below, sharing its
                // packing of B, mnist's backward 1 measured 3–8 µs slower, 177–181 against 181–189)
                pack_panels(b + start * bColumn + (bDepths ? 0 : pc * bDepth), count, bColumn, kc, bDepth,
                            bDepths ? bDepths + pc : NULL, width, packed_b_block);
                const struct panel_strides strides = {kc * width, cStride};
                for (long ir = 0; ir < m; ir += mr) {
                    const long tileRows = m - ir < mr ? m - ir : mr;
                    pack_panels(aDepths ? a + ir * aRow : a + ir * aRow + pc * aDepth, tileRows, aRow, kc, aDepth,
                                aDepths ? aDepths + pc : NULL, mr, packed_a_block);
                    const struct tile_epilogue at = last ? tile_epilogue_at(last, ir, 0) : (struct tile_epilogue){0};
                    packed_tiles(kc, packed_a_block, tileRows, packed_b_block, count, chunkC + ir * ldc, ldc, width, mr, kernel,
                                 pc > 0, last ? &at : NULL, strides);
                }
            } else if (splitsColumns) {
                const float *panels = packed_b_block;
                struct panel_strides strides = {kc * width, cStride};
                if (bPanel) {
                    panels = b + start / width * bPanel + pc * width;
                    strides.b = bPanel;
                } else {
                    pack_panels(b + start * bColumn + (bDepths ? 0 : pc * bDepth), count, bColumn, kc, bDepth,
                                bDepths ? bDepths + pc : NULL, width, packed_b_block);
                }
                if (readsA)
                    direct_tiles(kc, a + pc * aDepth, aRow, aDepth, aRows, m, panels, count, chunkC, ldc, width, mr, direct, pc > 0,
                                 last, strides);
                else
                    packed_tiles(kc, whole + padded * pc, m, panels, count, chunkC, ldc, width, mr, kernel, pc > 0, last, strides);
            } else {
                // B whole: packed above, or its panels where it is kept so
                const float *panels = bPanel ? b + pc * width : whole + padded * pc;
                const struct panel_strides strides = {bPanel ? bPanel : kc * width, cStride};
                if (readsA) {
                    direct_tiles(kc, (aRows ? a : a + start * aRow) + pc * aDepth, aRow, aDepth, aRows ? aRows + start : NULL, count,
                                 panels, n, chunkC, ldc, width, mr, direct, pc > 0, last, strides);
                } else {
                    pack_panels(aDepths ? a + start * aRow : a + start * aRow + pc * aDepth, count, aRow, kc, aDepth,
                                aDepths ? aDepths + pc : NULL, mr, packed_a_block);
                    packed_tiles(kc, packed_a_block, count, panels, n, chunkC, ldc, width, mr, kernel, pc > 0, last, strides);
                }
            }
        }
    }
}

AVX2 void mlpkit_claimed_product_avx2(long m, long n, long k, const float *a, long aRow, long aDepth, const long *aRows,
                                      const float *b, long bDepth, long bColumn, const long *bDepths, float *c, long ldc, long chunk,
                                      long *next, int splitsColumns) {
    claimed_product(m, n, k, a, aRow, aDepth, aRows, NULL, b, bDepth, bColumn, bDepths, 0, c, ldc, 0, chunk, next, splitsColumns, PACKED_NR,
                    PACKED_MR, packed_kernel, NULL, NULL, NULL);
}

AVX2 void mlpkit_packed_product_avx2(long m, long n, long k, const float *a, long aRow, long aDepth, const float *b,
                                     long bDepth, long bColumn, float *c, long ldc) {
    packed_product(m, n, k, a, aRow, aDepth, b, bDepth, bColumn, c, ldc, PACKED_NR, PACKED_MR, packed_kernel);
}

// ---- The packed product with AVX-512 ----
//
// As `mlpkit_packed_product_avx2` (the same blocks of the depth, so the same sums and bits), with
// B in panels of 32 columns and A in panels of eight rows: eight rows by 32 columns of C at a time
// in sixteen sixteen-lane registers. Against six rows (twelve registers, A in six-row panels as
// with AVX2), one thread, `mlpkit_claimed_product_avx512` in a C harness, two rounds: mnist's
// 128×256×784 NT 109 against 100–103 GFLOP/s, 256×784×128 TN 120 against 111–113, 128×256×128 NN
// 117–119 against 108–110 (fewer loads of A per multiply-add, and 128 rows fill sixteen whole
// panels where six-row panels leave a 2-row one); 1024³ NN 137–140 against 134–140. (The tile's
// sizes, PACKED512_NR and PACKED512_MR, are with the AVX2 product's blocks above.)

// A tile's sums (rows × columns of C, at most 8 × 32) stored, or added to C.
static inline __attribute__((always_inline)) AVX512 void store_tile_512(
    __m512 sums[PACKED512_MR][2], float *c, long ldc, long rows, long columns, int accumulates, const struct tile_epilogue *epi) {
    if (epi) {
        // C's final sums (the depth's last block added to the blocks before it), then the
        // epilogue on each row's two vectors, as the backend's pass over C computes it
        const long firstWidth = columns < 16 ? columns : 16, secondWidth = columns > 16 ? columns - 16 : 0;
        const __mmask16 first = (__mmask16)(firstWidth >= 16 ? 0xFFFF : (1u << firstWidth) - 1);
        const __mmask16 second = (__mmask16)(secondWidth >= 16 ? 0xFFFF : (1u << secondWidth) - 1);
#pragma clang loop unroll(full)
        for (int r = 0; r < PACKED512_MR; ++r) {
            if (r >= rows) break;
            float *row = c + r * ldc;
            const float *source = epi->source ? epi->source + r * epi->ld : NULL;
            __m512 x0 = sums[r][0], x1 = sums[r][1];
            if (accumulates) x0 = _mm512_add_ps(_mm512_maskz_loadu_ps(first, row), x0);
            _mm512_mask_storeu_ps(row, first, epilogue(x0, first, epi->bias, epi->function, source));
            if (secondWidth) {
                if (accumulates) x1 = _mm512_add_ps(_mm512_maskz_loadu_ps(second, row + 16), x1);
                _mm512_mask_storeu_ps(row + 16, second, epilogue(x1, second, epi->bias ? epi->bias + 16 : NULL, epi->function,
                                                                 source ? source + 16 : NULL));
            }
        }
        return;
    }
    if (rows == PACKED512_MR && columns == PACKED512_NR) {
        for (int r = 0; r < PACKED512_MR; ++r) {
            float *row = c + r * ldc;
            if (accumulates) {
                _mm512_storeu_ps(row, _mm512_add_ps(_mm512_loadu_ps(row), sums[r][0]));
                _mm512_storeu_ps(row + 16, _mm512_add_ps(_mm512_loadu_ps(row + 16), sums[r][1]));
            } else {
                _mm512_storeu_ps(row, sums[r][0]);
                _mm512_storeu_ps(row + 16, sums[r][1]);
            }
        }
        return;
    }
    // a ragged tile: the columns under lane masks
    const long firstWidth = columns < 16 ? columns : 16, secondWidth = columns > 16 ? columns - 16 : 0;
    const __mmask16 first = (__mmask16)(firstWidth >= 16 ? 0xFFFF : (1u << firstWidth) - 1);
    const __mmask16 second = (__mmask16)(secondWidth >= 16 ? 0xFFFF : (1u << secondWidth) - 1);
    for (long r = 0; r < rows; ++r) {
        float *row = c + r * ldc;
        if (accumulates) {
            _mm512_mask_storeu_ps(row, first, _mm512_add_ps(_mm512_maskz_loadu_ps(first, row), sums[r][0]));
            if (secondWidth) _mm512_mask_storeu_ps(row + 16, second, _mm512_add_ps(_mm512_maskz_loadu_ps(second, row + 16), sums[r][1]));
        } else {
            _mm512_mask_storeu_ps(row, first, sums[r][0]);
            if (secondWidth) _mm512_mask_storeu_ps(row + 16, second, sums[r][1]);
        }
    }
}

// C's tile (at most 8 × 32) from A and a packed panel of B (depth × 32): A(r, p) at
// a[r·rowStride + p·depthStride] for the tile's rows, read where it lies or from a packed panel
// (`packed_kernel_512`); a row past `rows` reads the last row again, and its sums are never
// stored. Each element one chain of fused multiply-adds over p in order: the same bits either way.
static inline __attribute__((always_inline)) AVX512 void direct_kernel_512(
    long depth, const float *a, long rowStride, long depthStride, const long *rowIndex, const float *b, float *c, long ldc,
    long rows, long columns, int accumulates, const struct tile_epilogue *epi, const float *const *ahead) {
    prefetch_tile(c, ldc, rows, columns);
    const float *lines[PACKED512_MR];
    tile_rows(a, rowStride, rowIndex, rows, lines);
    __m512 sums[PACKED512_MR][2];
    for (int r = 0; r < PACKED512_MR; ++r) sums[r][0] = sums[r][1] = _mm512_setzero_ps();
    // sixteen depths at a time: one cache line of each row of A where its depths are adjacent,
    // the next tile's line of each row asked for first when `ahead` is given
    for (long p0 = 0; p0 < depth; p0 += 16) {
        if (ahead)
            for (int r = 0; r < PACKED512_MR; ++r) _mm_prefetch((const char *)(ahead[r] + p0), _MM_HINT_T1);
        const long end = depth - p0 < 16 ? depth : p0 + 16;
        for (long p = p0; p < end; ++p) {
            const __m512 b0 = _mm512_loadu_ps(b + p * PACKED512_NR), b1 = _mm512_loadu_ps(b + p * PACKED512_NR + 16);
            const long at = p * depthStride;
            for (int r = 0; r < PACKED512_MR; ++r) {
                const __m512 ar = _mm512_set1_ps(lines[r][at]);
                sums[r][0] = _mm512_fmadd_ps(ar, b0, sums[r][0]);
                sums[r][1] = _mm512_fmadd_ps(ar, b1, sums[r][1]);
            }
        }
    }
    store_tile_512(sums, c, ldc, rows, columns, accumulates, epi);
}

// A tile from a packed panel of A (depth×8, zero past the last row) and of B: the kernel above with
// the panel's strides.
static inline __attribute__((always_inline)) AVX512 void packed_kernel_512(
    long depth, const float *a, const float *b, float *c, long ldc, long rows, long columns, int accumulates,
    const struct tile_epilogue *epi) {
    direct_kernel_512(depth, a, 1, PACKED512_MR, NULL, b, c, ldc, rows, columns, accumulates, epi, NULL);
}

// `block_epilogue` with sixteen lanes: each row's vectors of C through `epilogue`.
static AVX512 void epilogue_block_512(float *c, long ldc, long rows, long columns, const struct tile_epilogue *epi) {
    for (long r = 0; r < rows; ++r)
        for (long j = 0; j < columns; j += 16) {
            const __mmask16 lanes = columns - j >= 16 ? (__mmask16)0xFFFF : (__mmask16)((1u << (columns - j)) - 1);
            float *at = c + r * ldc + j;
            _mm512_mask_storeu_ps(at, lanes, epilogue(_mm512_maskz_loadu_ps(lanes, at), lanes, epi->bias ? epi->bias + j : NULL,
                                                      epi->function, epi->source ? epi->source + r * epi->ld + j : NULL));
        }
}

AVX512 void mlpkit_packed_product_avx512(long m, long n, long k, const float *a, long aRow, long aDepth, const float *b, long bDepth,
                                  long bColumn, float *c, long ldc) {
    packed_product(m, n, k, a, aRow, aDepth, b, bDepth, bColumn, c, ldc, PACKED512_NR, PACKED512_MR, packed_kernel_512);
}

AVX512 void mlpkit_epilogue_block_avx512(float *c, long ldc, long rows, long columns, const float *bias, int function,
                                         const float *source) {
    const struct tile_epilogue epi = {bias, source, ldc, function};
    epilogue_block_512(c, ldc, rows, columns, &epi);
}

AVX512 void mlpkit_panel_product_avx512(
    long m, long n, long k, const float *a, long aRow, long aDepth, const long *aRows, const long *aDepths, const float *b,
    long bDepth, long bColumn, const long *bDepths, long bPanel, float *c, long ldc, long cPanel, long chunk, long *next,
    int splitsColumns, const float *bias, int function, const float *source) {
    const struct tile_epilogue epi = {bias, source, ldc, function};
    if (bias || source)
        claimed_product(m, n, k, a, aRow, aDepth, aRows, aDepths, b, bDepth, bColumn, bDepths, bPanel, c, ldc, cPanel, chunk, next,
                        splitsColumns, PACKED512_NR, PACKED512_MR, packed_kernel_512, direct_kernel_512, &epi, epilogue_block_512);
    else
        claimed_product(m, n, k, a, aRow, aDepth, aRows, aDepths, b, bDepth, bColumn, bDepths, bPanel, c, ldc, cPanel, chunk, next,
                        splitsColumns, PACKED512_NR, PACKED512_MR, packed_kernel_512, direct_kernel_512, NULL, NULL);
}

AVX512 void mlpkit_claimed_product_avx512(
    long m, long n, long k, const float *a, long aRow, long aDepth, const long *aRows, const float *b, long bDepth, long bColumn,
    const long *bDepths, float *c, long ldc, long chunk, long *next, int splitsColumns, const float *bias, int function,
    const float *source) {
    mlpkit_panel_product_avx512(m, n, k, a, aRow, aDepth, aRows, NULL, b, bDepth, bColumn, bDepths, 0, c, ldc, 0, chunk, next,
                                splitsColumns, bias, function, source);
}

#else

int mlpkit_simd_available(void) { return 0; }
int mlpkit_avx512_level(void) { return 0; }
int mlpkit_small_product_avx512(int layout, long m, long n, long k, const float *a, const float *b, float *c) { return 0; }
void mlpkit_packed_product_avx512(long m, long n, long k, const float *a, long aRow, long aDepth, const float *b,
                                   long bDepth, long bColumn, float *c, long ldc) {
    (void)m; (void)n; (void)k; (void)a; (void)aRow; (void)aDepth; (void)b; (void)bDepth; (void)bColumn; (void)c; (void)ldc;
}
void mlpkit_adam_avx2(const MLPKitAdamJob *job, long start, long end) {
    (void)job; (void)start; (void)end;
}
void mlpkit_adam_avx512(const MLPKitAdamJob *job, long start, long end) {
    (void)job; (void)start; (void)end;
}
void mlpkit_sigmoid_avx512(const float *x, float *out, long count) {
    for (long i = 0; i < count; ++i) out[i] = x[i] >= 0 ? 1 / (1 + expf(-x[i])) : expf(x[i]) / (1 + expf(x[i]));
}

void mlpkit_expf_avx512(const float *x, float *out, long count) {
    for (long i = 0; i < count; ++i) out[i] = expf(x[i]);
}
void mlpkit_softmax_cross_entropy_avx512(const float *z, const int *labels, long rows, long columns, float scale,
                                         float *d, float *losses) {
    (void)z; (void)labels; (void)rows; (void)columns; (void)scale; (void)d; (void)losses;
}
long mlpkit_check_sqrt_avx512(unsigned low, unsigned high) {
    (void)low; (void)high;
    return -1;
}
long mlpkit_check_divide_avx512(float c, unsigned low, unsigned high) {
    (void)c; (void)low; (void)high;
    return -1;
}
void mlpkit_mse_rows_avx2(const float *z, const float *y, float *d, long start, long end, long columns, float scale,
                          float *rowSums) {
    (void)z; (void)y; (void)d; (void)start; (void)end; (void)columns; (void)scale; (void)rowSums;
}
int mlpkit_small_product_avx2(int layout, long m, long n, long k, const float *a, const float *b, float *c) {
    (void)layout; (void)m; (void)n; (void)k; (void)a; (void)b; (void)c;
    return 0;
}

void mlpkit_packed_product_avx2(long m, long n, long k, const float *a, long aRow, long aDepth, const float *b,
                                 long bDepth, long bColumn, float *c, long ldc) {
    (void)m; (void)n; (void)k; (void)a; (void)aRow; (void)aDepth; (void)b; (void)bDepth; (void)bColumn; (void)c; (void)ldc;
}
void mlpkit_unpacked_product_avx2(long m, long n, long k, const float *a, long aRow, long aDepth, const long *aRows,
                                  const float *b, long bDepth, long bColumn, const long *bDepths, float *c, long ldc) {
    (void)m; (void)n; (void)k; (void)a; (void)aRow; (void)aDepth; (void)aRows; (void)b; (void)bDepth; (void)bColumn;
    (void)bDepths; (void)c; (void)ldc;
}
void mlpkit_claimed_product_avx2(long m, long n, long k, const float *a, long aRow, long aDepth, const long *aRows,
                                 const float *b, long bDepth, long bColumn, const long *bDepths, float *c, long ldc, long chunk,
                                 long *next, int splitsColumns) {
    (void)m; (void)n; (void)k; (void)a; (void)aRow; (void)aDepth; (void)aRows; (void)b; (void)bDepth; (void)bColumn;
    (void)bDepths; (void)c; (void)ldc; (void)chunk; (void)next; (void)splitsColumns;
}
void mlpkit_epilogue_block_avx512(float *c, long ldc, long rows, long columns, const float *bias, int function,
                                  const float *source) {
    (void)c; (void)ldc; (void)rows; (void)columns; (void)bias; (void)function; (void)source;
}
void mlpkit_claimed_product_avx512(long m, long n, long k, const float *a, long aRow, long aDepth, const long *aRows,
                                   const float *b, long bDepth, long bColumn, const long *bDepths, float *c, long ldc, long chunk,
                                   long *next, int splitsColumns, const float *bias, int function, const float *source) {
    (void)m; (void)n; (void)k; (void)a; (void)aRow; (void)aDepth; (void)aRows; (void)b; (void)bDepth; (void)bColumn;
    (void)bDepths; (void)c; (void)ldc; (void)chunk; (void)next; (void)splitsColumns; (void)bias; (void)function; (void)source;
}
void mlpkit_panel_product_avx512(long m, long n, long k, const float *a, long aRow, long aDepth, const long *aRows,
                                 const long *aDepths, const float *b, long bDepth, long bColumn, const long *bDepths, long bPanel,
                                 float *c, long ldc, long cPanel, long chunk, long *next, int splitsColumns, const float *bias,
                                 int function, const float *source) {
    (void)m; (void)n; (void)k; (void)a; (void)aRow; (void)aDepth; (void)aRows; (void)aDepths; (void)b; (void)bDepth;
    (void)bColumn; (void)bDepths; (void)bPanel; (void)c; (void)ldc; (void)cPanel; (void)chunk; (void)next; (void)splitsColumns;
    (void)bias; (void)function; (void)source;
}

#endif
