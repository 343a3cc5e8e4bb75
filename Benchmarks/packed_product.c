// The packed product (`mlpkit_packed_product_avx2`, the CPU backend's product where no BLAS is
// installed) against one-thread OpenBLAS on one shape, five rounds, alternating:
//
//   clang -O2 -I Sources/CMLPKitSIMD/include Benchmarks/packed_product.c Sources/CMLPKitSIMD/simd.c \
//       -o /tmp/packed_product -ldl -lm
//   /tmp/packed_product M N K LAYOUT        # LAYOUT: 0 NT, 1 TN, 2 NN (as ProductLayout)
//
// Prints each round's GFLOP/s (2·M·N·K per product) for both. Needs libopenblas.so.0.
#include <dlfcn.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#include "CMLPKitSIMD.h"

typedef void (*Sgemm)(int, int, int, int, int, int, float, const float *, int, const float *, int, float, float *, int);

static double seconds(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec + t.tv_nsec * 1e-9;
}

int main(int argc, char **argv) {
    if (argc != 5) {
        fprintf(stderr, "usage: %s M N K LAYOUT (0 NT, 1 TN, 2 NN)\n", argv[0]);
        return 2;
    }
    const long m = atol(argv[1]), n = atol(argv[2]), k = atol(argv[3]);
    const int layout = atoi(argv[4]);
    if (m <= 0 || n <= 0 || k <= 0 || layout < 0 || layout > 2) {
        fprintf(stderr, "error: sizes must be positive and LAYOUT 0, 1 or 2\n");
        return 2;
    }
    if (!mlpkit_simd_available()) {
        fprintf(stderr, "error: this processor has no AVX2 and FMA\n");
        return 1;
    }
    void *library = dlopen("libopenblas.so.0", RTLD_NOW);
    Sgemm sgemm = library ? (Sgemm)dlsym(library, "cblas_sgemm") : NULL;
    void (*setThreads)(int) = library ? (void (*)(int))dlsym(library, "openblas_set_num_threads") : NULL;
    if (!sgemm || !setThreads) {
        fprintf(stderr, "error: libopenblas.so.0 not found\n");
        return 1;
    }
    setThreads(1);
    float *a = malloc(sizeof(float) * m * k), *b = malloc(sizeof(float) * k * n), *c = malloc(sizeof(float) * m * n);
    if (!a || !b || !c) {
        fprintf(stderr, "error: out of memory\n");
        return 1;
    }
    srand(1);
    for (long i = 0; i < m * k; ++i) a[i] = (float)rand() / (float)RAND_MAX - 0.5f;
    for (long i = 0; i < k * n; ++i) b[i] = (float)rand() / (float)RAND_MAX - 0.5f;
    // A(i, p) = a[i·aRow + p·aDepth], B(p, j) = b[p·bDepth + j·bColumn]; CBLAS: 111 no transpose, 112 transpose
    long aRow = k, aDepth = 1, bDepth = n, bColumn = 1;
    int transposeA = 111, transposeB = 111, lda = (int)k, ldb = (int)n;
    if (layout == 0) { bDepth = 1; bColumn = k; transposeB = 112; ldb = (int)k; }
    if (layout == 1) { aRow = 1; aDepth = m; transposeA = 112; lda = (int)m; }
    const double work = 2.0 * m * n * k;
    for (int round = 0; round < 5; ++round) {
        const double t0 = seconds();
        mlpkit_packed_product_avx2(m, n, k, a, aRow, aDepth, b, bDepth, bColumn, c, n);
        const double t1 = seconds();
        sgemm(101, transposeA, transposeB, (int)m, (int)n, (int)k, 1, a, lda, b, ldb, 0, c, (int)n);
        const double t2 = seconds();
        printf("packed %.1f GFLOP/s  OpenBLAS (1 thread) %.1f GFLOP/s\n", work / (t1 - t0) / 1e9, work / (t2 - t1) / 1e9);
    }
    free(a);
    free(b);
    free(c);
    return 0;
}
