#!/usr/bin/env bash
# The AVX-512 Adam's square root and division by a bias correction, checked against the
# correctly rounded operations on every input they take (simd.c says why they are exact):
# √x on all of {0} ∪ [2⁻¹⁰⁰, FLT_MAX], and x / c on all of [2⁻⁶⁰, 2¹⁰²] for every c = 1 − βᵗ
# the default β1 = 0.9 and β2 = 0.999 give before they round to 1 (t stepping by STRIDE for β2;
# STRIDE=1 is all 16,600, about 90 minutes on one core). Needs clang or gcc and an AVX-512
# processor; the unit test runs the same checks on chosen binades.
#     Scripts/check-adam-avx512.sh            # STRIDE=97: about 2 minutes
set -euo pipefail
cd "$(dirname "$0")/.."
stride=${STRIDE:-97}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
cat > "$work/main.c" <<'C'
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include "CMLPKitSIMD.h"
int main(int argc, char **argv) {
    int stride = atoi(argv[1]);
    if (mlpkit_avx512_level() < 1) { fprintf(stderr, "no AVX-512 on this processor\n"); return 2; }
    long bad = mlpkit_check_sqrt_avx512(0, 0) + mlpkit_check_sqrt_avx512(0x0D800000u, 0x7F7FFFFFu);
    printf("square root: %ld of 1.9 billion inputs differ\n", bad);
    long divisions = 0, wrong = 0;
    for (int which = 0; which < 2; which++) {
        double beta = which ? 0.999 : 0.9;
        for (int t = 1;; t += which ? stride : 1) {
            float c = (float)(1 - pow((float)beta, t));
            if (c >= 1) break;
            wrong += mlpkit_check_divide_avx512(c, 0x21800000u, 0x72800000u);
            divisions++;
        }
    }
    printf("division: %ld corrections, 1.3 billion x each: %ld differ\n", divisions, wrong);
    return bad || wrong;
}
C
cc=${CC:-$(command -v clang || command -v gcc)}
"$cc" -O2 -ISources/CMLPKitSIMD/include -o "$work/check" "$work/main.c" Sources/CMLPKitSIMD/simd.c -lm
"$work/check" "$stride"
