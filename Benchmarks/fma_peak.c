// The machine's arithmetic peak: twelve independent chains of eight-lane fused multiply-adds per
// thread (enough to cover the FMA latency on two pipes), no memory traffic, on one thread and then
// on every core at once, six rounds. The matrix products cannot beat it; `mlp bench`'s ceiling
// (a 2048³ sgemm) says how close a BLAS comes.
//
//   clang -O2 -pthread Benchmarks/fma_peak.c -o /tmp/fma_peak && /tmp/fma_peak
//
// Prints each round's GFLOP/s (two per lane per multiply-add). Needs AVX2 and FMA.
#include <immintrin.h>
#include <pthread.h>
#include <stdio.h>
#include <time.h>
#include <unistd.h>

#define ITERATIONS 20000000L
#define CHAINS 12

static double seconds(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec + t.tv_nsec * 1e-9;
}

__attribute__((target("avx2,fma"))) static float chains(void) {
    __m256 a[CHAINS];
    const __m256 b = _mm256_set1_ps(0.999999f), c = _mm256_set1_ps(1e-7f);
    for (int i = 0; i < CHAINS; ++i) a[i] = _mm256_set1_ps((float)i);
    for (long n = 0; n < ITERATIONS; ++n) {
#pragma GCC unroll 12
        for (int i = 0; i < CHAINS; ++i) a[i] = _mm256_fmadd_ps(a[i], b, c);
    }
    __m256 sum = a[0];
    for (int i = 1; i < CHAINS; ++i) sum = _mm256_add_ps(sum, a[i]);
    float lanes[8];
    _mm256_storeu_ps(lanes, sum);
    return lanes[0];  // used, so the loop is not optimised away
}

static void *thread(void *result) {
    *(float *)result = chains();
    return NULL;
}

int main(void) {
    const long cores = sysconf(_SC_NPROCESSORS_ONLN);
    const double flops = 2.0 * 8 * CHAINS * ITERATIONS;
    pthread_t threads[256];
    float results[256];
    const long count = cores < 256 ? cores : 256;
    for (int round = 0; round < 6; ++round) {
        double start = seconds();
        results[0] = chains();
        const double one = seconds() - start;
        start = seconds();
        for (long i = 0; i < count; ++i) pthread_create(&threads[i], NULL, thread, &results[i]);
        for (long i = 0; i < count; ++i) pthread_join(threads[i], NULL);
        const double all = seconds() - start;
        printf("1 thread %.1f GFLOP/s, %ld threads %.1f GFLOP/s (%g)\n", flops / one * 1e-9, count,
               count * flops / all * 1e-9, (double)results[0]);
    }
    return 0;
}
