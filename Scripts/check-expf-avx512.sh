#!/usr/bin/env bash
# The AVX-512 e^x (`mlpkit_expf_avx512`, the cross-entropy loss's exponentials) against this
# machine's expf on every one of the 2³² floats, bit for bit (NaNs as NaNs). The vector loop
# follows glibc's expf (2.28 and later) operation for operation, so a different C library's
# expf may differ; this says where. Needs clang or gcc and an AVX-512 processor; the unit test
# checks a sample. About a minute.
#     Scripts/check-expf-avx512.sh
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
        mlpkit_expf_avx512(in, out, BLOCK - 3);  // a ragged end too: the last three by a second call
        mlpkit_expf_avx512(in + BLOCK - 3, out + BLOCK - 3, 3);
        for (unsigned i = 0; i < BLOCK; ++i) {
            float expected = expf(in[i]);
            unsigned a, b;
            memcpy(&a, &out[i], 4);
            memcpy(&b, &expected, 4);
            if (a != b && !(isnan(out[i]) && isnan(expected))) {
                if (wrong < 5) printf("x = %a: %a, expf %a\n", in[i], out[i], expected);
                ++wrong;
            }
        }
    }
    printf("e^x: %llu of 4294967296 floats differ from expf\n", wrong);
    return wrong != 0;
}
C
cc=${CC:-$(command -v clang || command -v gcc)}
"$cc" -O2 -ISources/CMLPKitSIMD/include -o "$work/check" "$work/main.c" Sources/CMLPKitSIMD/simd.c -lm
"$work/check"
