#!/usr/bin/env bash
# The AVX-512 vector functions against this machine's C library on every one of the 2³² floats,
# bit for bit (NaNs as NaNs): `mlpkit_expf_avx512` (the cross-entropy loss's and σ's e^x, after
# glibc's expf, 2.28 and later) against expf, `mlpkit_tanhf_avx512` (tanh and GELU, after glibc
# 2.36's tanhf: fdlibm's, on expm1f, no fused multiply-add) against tanhf, and `mlpkit_log1pf_avx512`
# (the binary cross-entropy's log(1 + e^−|z|), after glibc 2.36's log1pf: fdlibm's, no fused
# multiply-add) against log1pf. Each follows its glibc function operation for operation, so a
# different C library may differ; this says where (and the library then takes the scalar loops:
# `SIMDKernels.vectorExp`, `vectorTanh`, `vectorLog1p`). Needs clang or gcc and an AVX-512 processor; the unit
# tests check a sample. About 40 s a function.
#     Scripts/check-avx512-functions.sh [expf] [tanhf] [log1pf]      (all three when none is named)
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
        // in place, with a ragged end too: the last seven by a second call
        memcpy(out, in, sizeof in);
        VECTOR(out, out, BLOCK - 7);
        VECTOR(out + BLOCK - 7, out + BLOCK - 7, 7);
        for (unsigned i = 0; i < BLOCK; ++i) {
            float expected = SCALAR(in[i]);
            unsigned a, b;
            memcpy(&a, &out[i], 4);
            memcpy(&b, &expected, 4);
            if (a != b && !(isnan(out[i]) && isnan(expected))) {
                if (wrong < 5) printf("x = %a: %a, " NAME " %a\n", in[i], out[i], expected);
                ++wrong;
            }
        }
    }
    printf(NAME ": %llu of 4294967296 floats differ\n", wrong);
    return wrong != 0;
}
C
cc=${CC:-$(command -v clang || command -v gcc)}
status=0
for name in "${@:-expf tanhf log1pf}"; do
    for function in $name; do
        case $function in
            expf | tanhf | log1pf) ;;
            *) echo "no AVX-512 $function here: expf, tanhf or log1pf" >&2; exit 2 ;;
        esac
        "$cc" -O2 -ISources/CMLPKitSIMD/include -DVECTOR="mlpkit_${function}_avx512" -DSCALAR="$function" -DNAME="\"$function\"" \
            -o "$work/check-$function" "$work/main.c" Sources/CMLPKitSIMD/simd.c Sources/CMLPKitSIMD/tanh.c \
            Sources/CMLPKitSIMD/log1p.c -lm
        "$work/check-$function" || status=1
    done
done
exit $status
