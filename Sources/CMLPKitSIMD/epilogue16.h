// The product epilogue on sixteen lanes of a row of C, for the kernels that apply it while C is in
// their registers (`skinny.c`, and the packed product's AVX-512 tiles in `simd.c`). Include after
// `glibc_float.h` (no contraction, the vector helpers).
#ifndef MLPKIT_EPILOGUE16_H
#define MLPKIT_EPILOGUE16_H

#include "tanh16.h"

#if defined(__x86_64__)

// The product epilogue on one vector of C's row (columns j.. of row i), as the CPU backend's
// passes compute it. With `bias`: f(x + bias), f by `function` (0 none, 1 ReLU as Swift's
// max(x, 0): NaN stays NaN and −0 becomes +0, as max_ps(0, x) + 0 does; 2 MLPKit's tanh). With
// `source` (the activation A, or Z): x·f′, ReLU's as a mask (x where A is above 0, not for NaN,
// else +0), tanh's x·(1 − A·A).
static inline __attribute__((always_inline)) AVX512 __m512 epilogue(__m512 x, __mmask16 lanes, const float *bias, int function,
                                                                   const float *source) {
    if (bias) {
        x = _mm512_add_ps(x, _mm512_maskz_loadu_ps(lanes, bias));
        if (function == 1) x = _mm512_add_ps(_mm512_max_ps(_mm512_setzero_ps(), x), _mm512_setzero_ps());
        if (function == 2) x = tanh16(x);
    }
    if (source) {
        const __m512 a = _mm512_maskz_loadu_ps(lanes, source);
        if (function == 1) x = _mm512_maskz_mov_ps(_mm512_cmp_ps_mask(a, _mm512_setzero_ps(), _CMP_GT_OQ), x);
        if (function == 2) x = _mm512_mul_ps(x, _mm512_sub_ps(_mm512_set1_ps(1.0f), _mm512_mul_ps(a, a)));
    }
    return x;
}

#endif
#endif
