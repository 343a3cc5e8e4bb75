#!/usr/bin/env bash
# The AVX-512 vector functions on every one of the 2³² floats, bit for bit against their scalar
# functions (NaNs as NaNs):
# - `mlpkit_expf_avx512` (the cross-entropy loss's and σ's e^x, after glibc's expf, 2.28 and later)
#   against this machine's expf;
# - `mlpkit_log1pf_avx512` (the binary cross-entropy's log(1 + e^−|z|), after glibc 2.36's log1pf:
#   fdlibm's, no fused multiply-add) against this machine's log1pf;
# - `mlpkit_tanh_avx512` (tanh and GELU: MLPKit's own tanh, `tanh.c`) against the scalar
#   `mlpkit_tanh`, and both against the exact tanh (in Float64: `exact_tanh` below): the largest
#   error in ulps of the result, which must stay under 1.5.
# The first two follow their glibc function operation for operation, so a different C library
# may differ; this says where (and the library then takes the scalar loops:
# `SIMDKernels.vectorExp`, `vectorLog1p`). Needs clang or gcc and an AVX-512 processor; the unit
# tests check a sample. The positive and the negative floats run at once, one process each: on 2
# cores about 20 s a function, tanh 90 s (the 2⁻⁶³ and smaller floats, whose squares are
# subnormal, take the processor's slow path for such numbers).
#     Scripts/check-avx512-functions.sh [expf] [tanh] [log1pf]      (all three when none is named)
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
// tanh(x) in Float64: the C library's below 20 in magnitude, ±1 above (within 2e−17), and
// x − x³/3 + 2x⁵/15 below 2⁻¹² (within 2⁻⁸⁴·|x|), so that the check takes 90 s, not 180
__attribute__((unused)) static double exact_tanh(double x) {
    const double a = fabs(x);
    if (a < 0x1p-12) return x - x * x * x / 3 + 2 * x * x * x * x * x / 15;
    return a >= 20 ? copysign(1.0, x) : tanh(x);
}
// argv[1]: 0 for the positive floats (sign bit clear), 1 for the negative ones
int main(int argc, char **argv) {
    const unsigned long long half = argc > 1 && argv[1][0] == '1' ? 1 : 0;
    if (mlpkit_avx512_level() < 1) { fprintf(stderr, "no AVX-512 on this processor\n"); return 2; }
    unsigned long long wrong = 0;
    double worst = 0;
    float worstInput = 0;
    for (unsigned long long base = half << 31; base < (half + 1) << 31; base += BLOCK) {
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
#ifdef EXACT
            // the error in units of the last place of the exact value's binade (subnormals: 2⁻¹⁴⁹)
            if (isnan(in[i])) {
                if (!isnan(expected)) { printf("x = %a: %a, not NaN\n", in[i], expected); ++wrong; }
                continue;
            }
            const double exact = EXACT((double)in[i]);
            const double ulp = fabs(exact) < 0x1p-126 ? 0x1p-149 : ldexp(1.0, ilogb(exact) - 23);
            const double error = fabs((double)expected - exact) / ulp;
            if (error > worst) { worst = error; worstInput = in[i]; }
#endif
        }
    }
    printf(NAME ": %llu of the 2147483648 %s floats differ\n", wrong, half ? "negative" : "positive");
#ifdef EXACT
    printf(NAME ": largest error %.3f ulp on the %s floats (x = %a)\n", worst, half ? "negative" : "positive", worstInput);
    if (worst >= 1.5) return 1;
#endif
    (void)worst; (void)worstInput;
    return wrong != 0;
}
C
cc=${CC:-$(command -v clang || command -v gcc)}
status=0
for name in "${@:-expf tanh log1pf}"; do
    for function in $name; do
        case $function in
            expf | log1pf) flags=(-DVECTOR="mlpkit_${function}_avx512" -DSCALAR="$function") ;;
            tanh) flags=(-DVECTOR=mlpkit_tanh_avx512 -DSCALAR=mlpkit_tanh -DEXACT=exact_tanh) ;;
            *) echo "no AVX-512 $function here: expf, tanh or log1pf" >&2; exit 2 ;;
        esac
        "$cc" -O2 -ISources/CMLPKitSIMD/include "${flags[@]}" -DNAME="\"$function\"" \
            -o "$work/check-$function" "$work/main.c" Sources/CMLPKitSIMD/simd.c Sources/CMLPKitSIMD/tanh.c \
            Sources/CMLPKitSIMD/log1p.c -lm
        # the positive and the negative floats at once, one a core
        "$work/check-$function" 0 > "$work/$function.0" & positive=$!
        "$work/check-$function" 1 > "$work/$function.1" & negative=$!
        wait $positive || status=1
        wait $negative || status=1
        cat "$work/$function.0" "$work/$function.1"
    done
done
exit $status
