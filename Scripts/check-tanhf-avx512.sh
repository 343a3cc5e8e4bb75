#!/usr/bin/env bash
# The AVX-512 tanh (`mlpkit_tanhf_avx512`, Sources/CMLPKitSIMD/tanh.c) against this machine's tanhf
# on every one of the 2³² floats, bit for bit (NaNs as NaNs). The vector loop follows glibc 2.36's
# tanhf (fdlibm's, on expm1f, no fused multiply-add) operation for operation, so a different C
# library's tanhf may differ; this says where. Needs clang or gcc and an AVX-512 processor. A few
# minutes.
#     Scripts/check-tanhf-avx512.sh
set -euo pipefail
cd "$(dirname "$0")/.."
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
cat > "$work/main.c" <<'C'
#include <math.h>
#include <stdio.h>
#include <string.h>
#include "CMLPKitSIMD.h"
enum { BLOCK = 1 << 16 };
static float in[BLOCK], out[BLOCK];
int main(void) {
    if (mlpkit_avx512_level() < 1) { fprintf(stderr, "no AVX-512 on this processor\n"); return 2; }
    unsigned long long wrong = 0;
    for (unsigned long long base = 0; base < (1ull << 32); base += BLOCK) {
        for (unsigned i = 0; i < BLOCK; ++i) { unsigned bits = (unsigned)(base + i); memcpy(&in[i], &bits, 4); }
        // a ragged end too: the last seven by a second call, the block in place
        memcpy(out, in, sizeof in);
        mlpkit_tanhf_avx512(out, out, BLOCK - 7);
        mlpkit_tanhf_avx512(out + BLOCK - 7, out + BLOCK - 7, 7);
        for (unsigned i = 0; i < BLOCK; ++i) {
            float expected = tanhf(in[i]);
            unsigned a, b;
            memcpy(&a, &out[i], 4);
            memcpy(&b, &expected, 4);
            if (a != b && !(isnan(out[i]) && isnan(expected))) {
                if (wrong < 5) printf("x = %a: %a, tanhf %a\n", in[i], out[i], expected);
                ++wrong;
            }
        }
    }
    printf("tanh: %llu of 4294967296 floats differ from tanhf\n", wrong);
    return wrong != 0;
}
C
cc=${CC:-$(command -v clang || command -v gcc)}
"$cc" -O2 -ISources/CMLPKitSIMD/include -o "$work/check" "$work/main.c" Sources/CMLPKitSIMD/tanh.c Sources/CMLPKitSIMD/simd.c -lm
"$work/check"
