// What the C files whose scalar and vector functions must give the same bits share (`log1p.c`,
// which follows glibc's log1pf operation for operation, and `tanh.c`, MLPKit's own tanh): every
// operation the one written, none contracted into a fused multiply-add, and the vector helpers.
#ifndef MLPKIT_GLIBC_FLOAT_H
#define MLPKIT_GLIBC_FLOAT_H

#include "CMLPKitSIMD.h"

#include <math.h>

// GCC ignores the standard pragma (and fused the intrinsics' products and sums at -O2: 150,752 of
// the glibc tanhf port's and 422,672 of log1pf's floats then differed), so it is told in its own
// words too.
#pragma STDC FP_CONTRACT OFF
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC optimize("fp-contract=off")
#endif

#if defined(__x86_64__)
#include <immintrin.h>

#define AVX512 __attribute__((target("avx512f,avx512dq,avx512vl,avx512bw,avx2,fma")))

// sixteen copies of the float with these bits
static inline __attribute__((always_inline)) AVX512 __m512 f32(unsigned bits) { return _mm512_castsi512_ps(_mm512_set1_epi32((int)bits)); }

// sixteen copies of the int with these bits
static inline __attribute__((always_inline)) AVX512 __m512i i32(unsigned bits) { return _mm512_set1_epi32((int)bits); }
#endif

#endif
