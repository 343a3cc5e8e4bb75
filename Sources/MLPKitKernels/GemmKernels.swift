extension KernelSource {
    /// The tiled matrix product in the three layouts of the training step, with fused epilogues.
    ///
    /// 2D block tiling: a block of `GEMM_THREADS` threads computes a BM×BN tile of C; each thread
    /// owns TM×TN outputs strided by (BM/TM, BN/TN) so that shared-memory reads are conflict-free
    /// and stores to C are coalesced. Operand tiles of BK columns of k are staged in shared
    /// memory, k-major (tile[p][r]); loads outside the matrix write zeros, so any m, n, k ≥ 1 is
    /// correct. Matrices are limited to 2³¹ elements (the backends check).
    public static let gemm: String = """
    /* Stages rows [idx0, idx0 + width) × k columns [k0, k0 + BK) of one operand in tile[p * tileLd + r],
       zeros outside the matrix. kContiguous: element (idx, p) is src[idx * ld + p]; else src[p * ld + idx]. */
    DEVICE_INLINE void gemm_load_tile(SHARED_PTR float* tile, const int width, const int tileLd,
                                      const GLOBAL float* src, const int kContiguous, const int ld,
                                      const int idx0, const int extent, const int k0, const int k, const int tid)
    {
        if (kContiguous) {
            for (int e = tid; e < BK * width; e += GEMM_THREADS) {
                const int p = e % BK;
                const int r = e / BK;
                const int idx = idx0 + r;
                const int kk = k0 + p;
                tile[p * tileLd + r] = (idx < extent && kk < k) ? src[idx * ld + kk] : 0.0f;
            }
        } else {
            for (int e = tid; e < BK * width; e += GEMM_THREADS) {
                const int r = e % width;
                const int p = e / width;
                const int idx = idx0 + r;
                const int kk = k0 + p;
                tile[p * tileLd + r] = (idx < extent && kk < k) ? src[kk * ld + idx] : 0.0f;
            }
        }
    }

    /* One block's BM×BN tile of C = op(A)·op(B), then the epilogue; shared by the three layouts. */
    DEVICE_INLINE void gemm_block(const int m, const int n, const int k,
                                  const GLOBAL float* RESTRICT a, const int aKContiguous, const int lda,
                                  const GLOBAL float* RESTRICT b, const int bKContiguous, const int ldb,
                                  GLOBAL float* RESTRICT c, const int epilogue, const GLOBAL float* RESTRICT aux,
                                  SHARED_PTR float* as, SHARED_PTR float* bs)
    {
        const int tid = THREAD_X;
        const int tx = tid % (BN / TN);
        const int ty = tid / (BN / TN);
        const int row0 = BLOCK_Y * BM;
        const int col0 = BLOCK_X * BN;

        float acc[TM][TN];
        #pragma unroll
        for (int i = 0; i < TM; ++i) {
            #pragma unroll
            for (int j = 0; j < TN; ++j) {
                acc[i][j] = 0.0f;
            }
        }

        for (int k0 = 0; k0 < k; k0 += BK) {
            gemm_load_tile(as, BM, AS_LD, a, aKContiguous, lda, row0, m, k0, k, tid);
            gemm_load_tile(bs, BN, BS_LD, b, bKContiguous, ldb, col0, n, k0, k, tid);
            BARRIER();
            #pragma unroll
            for (int p = 0; p < BK; ++p) {
                float ra[TM];
                float rb[TN];
                #pragma unroll
                for (int i = 0; i < TM; ++i) {
                    ra[i] = as[p * AS_LD + ty + i * (BM / TM)];
                }
                #pragma unroll
                for (int j = 0; j < TN; ++j) {
                    rb[j] = bs[p * BS_LD + tx + j * (BN / TN)];
                }
                #pragma unroll
                for (int i = 0; i < TM; ++i) {
                    #pragma unroll
                    for (int j = 0; j < TN; ++j) {
                        acc[i][j] = fmaf(ra[i], rb[j], acc[i][j]);
                    }
                }
            }
            BARRIER();
        }

        #pragma unroll
        for (int i = 0; i < TM; ++i) {
            const int row = row0 + ty + i * (BM / TM);
            #pragma unroll
            for (int j = 0; j < TN; ++j) {
                const int col = col0 + tx + j * (BN / TN);
                if (row < m && col < n) {
                    float value = acc[i][j];
                    if (epilogue == EPILOGUE_BIAS) {
                        value += aux[col];
                    } else if (epilogue == EPILOGUE_BIAS_RELU) {
                        value += aux[col];
                        value = value > 0.0f ? value : 0.0f;
                    } else if (epilogue == EPILOGUE_RELU_MASK) {
                        value = aux[row * n + col] > 0.0f ? value : 0.0f;
                    }
                    c[row * n + col] = value;
                }
            }
        }
    }

    /* C[m×n] = A[m×k]·B[n×k]ᵀ, then the epilogue (forward: Z = A_prev·Wᵀ + b, ReLU). */
    KERNEL(GEMM_THREADS) void gemm_nt(const int m, const int n, const int k,
                                      const GLOBAL float* RESTRICT a, const int aOffset,
                                      const GLOBAL float* RESTRICT b, const int bOffset,
                                      GLOBAL float* RESTRICT c, const int cOffset,
                                      const int epilogue, const GLOBAL float* RESTRICT aux, const int auxOffset)
    {
        SHARED float as[BK * AS_LD];
        SHARED float bs[BK * BS_LD];
        gemm_block(m, n, k, a + aOffset, 1, k, b + bOffset, 1, k, c + cOffset, epilogue, aux + auxOffset, as, bs);
    }

    /* C[m×n] = A[k×m]ᵀ·B[k×n], then the epilogue (weight gradient: dW = dZᵀ·A_prev). */
    KERNEL(GEMM_THREADS) void gemm_tn(const int m, const int n, const int k,
                                      const GLOBAL float* RESTRICT a, const int aOffset,
                                      const GLOBAL float* RESTRICT b, const int bOffset,
                                      GLOBAL float* RESTRICT c, const int cOffset,
                                      const int epilogue, const GLOBAL float* RESTRICT aux, const int auxOffset)
    {
        SHARED float as[BK * AS_LD];
        SHARED float bs[BK * BS_LD];
        gemm_block(m, n, k, a + aOffset, 0, m, b + bOffset, 0, n, c + cOffset, epilogue, aux + auxOffset, as, bs);
    }

    /* C[m×n] = A[m×k]·B[k×n], then the epilogue (input gradient: dA_prev = dZ·W, ReLU mask). */
    KERNEL(GEMM_THREADS) void gemm_nn(const int m, const int n, const int k,
                                      const GLOBAL float* RESTRICT a, const int aOffset,
                                      const GLOBAL float* RESTRICT b, const int bOffset,
                                      GLOBAL float* RESTRICT c, const int cOffset,
                                      const int epilogue, const GLOBAL float* RESTRICT aux, const int auxOffset)
    {
        SHARED float as[BK * AS_LD];
        SHARED float bs[BK * BS_LD];
        gemm_block(m, n, k, a + aOffset, 1, k, b + bOffset, 0, n, c + cOffset, epilogue, aux + auxOffset, as, bs);
    }

    """
}
