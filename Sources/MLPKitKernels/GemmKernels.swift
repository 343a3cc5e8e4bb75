extension KernelSource {
    /// The tiled matrix product in the three layouts of the training step, with fused epilogues,
    /// in two block tiles (`gemm_nt`… with the main tile, `gemm_nt_compact`… with the compact one
    /// for products whose main tiles would leave most of the device idle), and the split-k sum.
    ///
    /// 2D block tiling: a block of `G_THREADS` threads computes a G_BM×G_BN tile of C; each thread
    /// owns G_TM×G_TN outputs in 4×4 quads, the quads strided by (4·G_BM/G_TM, 4·G_BN/G_TN) so
    /// that a quarter-warp's 16-byte shared reads are conflict-free (or broadcasts) and its C
    /// stores are 16-byte runs of one row. Operand tiles of G_BK columns of k are staged in shared
    /// memory k-major (tile[p][r], rows padded by 4 floats), double-buffered: the next stage's
    /// global loads are in registers while the current stage is multiplied, so one barrier per
    /// stage. Global loads are 16 bytes wide where the operand is 16-byte aligned with a row
    /// stride divisible by 4 and the tile lies inside the matrix; elsewhere element by element,
    /// with zeros outside the matrix, so any m, n, k ≥ 1 is correct.
    ///
    /// Split k: with `kSplit` < k, block row `BLOCK_Y` covers row tile `BLOCK_Y % ⌈m/G_BM⌉` over
    /// k in [z·kSplit, (z+1)·kSplit) for z = `BLOCK_Y / ⌈m/G_BM⌉`, and writes its partial product
    /// to slice z of C (C then being an S×m×n workspace, epilogue none); `gemm_splitk_sum` adds
    /// the slices in order z = 0, 1, … (deterministic) and applies the epilogue.
    /// Matrices are limited to 2³¹ elements (the backends check).
    public static let gemm: String = gemmVariant(suffix: "", tile: "") + gemmVariant(suffix: "_compact", tile: "C_")
        + splitKSum

    /// One instantiation of the product kernels: `tile` is the prefix of the tile macros
    /// ("" for BM…, "C_" for C_BM…), `suffix` ends every function name.
    static func gemmVariant(suffix: String, tile: String) -> String {
        let bindings = ["BM", "BN", "BK", "TM", "TN", "MIN_BLOCKS", "MIN_BLOCKS_TN", "DYNAMIC_SHARED"].map { "#undef G_\($0)\n#define G_\($0) \(tile)\($0)\n" }
        return bindings.joined() + gemmTemplate.split(separator: "@", omittingEmptySubsequences: false).joined(separator: suffix)
    }

    static let gemmTemplate: String = """
    /* Reads this thread's share of one operand stage into regs: rows [idx0, idx0 + W) × k columns
       [k0, k0 + G_BK), as L float4 chunks. kContiguous: element (idx, p) is src[idx * ld + p], and
       a chunk is 4 consecutive p of one row; else src[p * ld + idx], and a chunk is 4 consecutive
       rows at one p. vector: the whole stage lies inside the matrix and is 16-byte aligned. */
    DEVICE_INLINE void gemm_fetch@(float* regs, const int W, const int L, const GLOBAL float* RESTRICT src,
                                   const int kContiguous, const int ld, const int idx0, const int extent,
                                   const int k0, const int kEnd, const int vector, const int tid)
    {
        #pragma unroll
        for (int c = 0; c < L; ++c) {
            const int e = tid + c * G_THREADS;
            int idx, kk;
            if (kContiguous) {
                idx = idx0 + e / (G_BK / 4);
                kk = k0 + 4 * (e % (G_BK / 4));
            } else {
                kk = k0 + e / (W / 4);
                idx = idx0 + 4 * (e % (W / 4));
            }
            if (vector) {
                const float4 v = LOAD_FLOAT4(src + (kContiguous ? idx * ld + kk : kk * ld + idx));
                regs[4 * c] = v.x;
                regs[4 * c + 1] = v.y;
                regs[4 * c + 2] = v.z;
                regs[4 * c + 3] = v.w;
            } else {
                #pragma unroll
                for (int j = 0; j < 4; ++j) {
                    const int ii = kContiguous ? idx : idx + j;
                    const int kj = kContiguous ? kk + j : kk;
                    regs[4 * c + j] = (ii < extent && kj < kEnd) ? src[kContiguous ? ii * ld + kj : kj * ld + ii] : 0.0f;
                }
            }
        }
    }

    /* Writes the chunks gemm_fetch read into the shared stage tile[p * tileLd + r]. */
    DEVICE_INLINE void gemm_stage@(SHARED_PTR float* tile, const float* regs, const int W, const int L,
                                   const int tileLd, const int kContiguous, const int tid)
    {
        #pragma unroll
        for (int c = 0; c < L; ++c) {
            const int e = tid + c * G_THREADS;
            if (kContiguous) {
                const int r = e / (G_BK / 4);
                const int q = e % (G_BK / 4);
                #pragma unroll
                for (int j = 0; j < 4; ++j) {
                    tile[(4 * q + j) * tileLd + r] = regs[4 * c + j];
                }
            } else {
                const int p = e / (W / 4);
                const int r4 = e % (W / 4);
                STORE_FLOAT4(FLOAT4(regs[4 * c], regs[4 * c + 1], regs[4 * c + 2], regs[4 * c + 3]),
                             tile + p * tileLd + 4 * r4);
            }
        }
    }

    /* One block's G_BM×G_BN tile of C = op(A)·op(B) over its k range, then the epilogue. */
    DEVICE_INLINE void gemm_block@(const int m, const int n, const int k, const int kSplit,
                                   const GLOBAL float* RESTRICT a, const int aKContiguous, const int lda, const int aAligned,
                                   const GLOBAL float* RESTRICT b, const int bKContiguous, const int ldb, const int bAligned,
                                   GLOBAL float* RESTRICT c, const int cAligned,
                                   const int epilogue, const GLOBAL float* RESTRICT aux,
                                   SHARED_PTR float* as, SHARED_PTR float* bs)
    {
        const int tid = THREAD_X;
        const int tx = tid % (G_BN / G_TN);
        const int ty = tid / (G_BN / G_TN);
        const int rowBlocks = (m + G_BM - 1) / G_BM;
        const int z = BLOCK_Y / rowBlocks;
        const int row0 = (BLOCK_Y % rowBlocks) * G_BM;
        const int col0 = BLOCK_X * G_BN;
        const int kBegin = z * kSplit;
        const int kEnd = min(k, kBegin + kSplit);
        c += (INT64)z * m * n;
        const int aInside = aAligned && row0 + G_BM <= m;
        const int bInside = bAligned && col0 + G_BN <= n;

        float acc[G_TM][G_TN];
        #pragma unroll
        for (int i = 0; i < G_TM; ++i) {
            #pragma unroll
            for (int j = 0; j < G_TN; ++j) {
                acc[i][j] = 0.0f;
            }
        }

        float ra[4 * G_A_LOADS];
        float rb[4 * G_B_LOADS];
        int stage = 0;
        if (kBegin < kEnd) {
            const int full = kBegin + G_BK <= kEnd;
            gemm_fetch@(ra, G_BM, G_A_LOADS, a, aKContiguous, lda, row0, m, kBegin, kEnd, aInside && full, tid);
            gemm_fetch@(rb, G_BN, G_B_LOADS, b, bKContiguous, ldb, col0, n, kBegin, kEnd, bInside && full, tid);
            gemm_stage@(as, ra, G_BM, G_A_LOADS, G_AS_LD, aKContiguous, tid);
            gemm_stage@(bs, rb, G_BN, G_B_LOADS, G_BS_LD, bKContiguous, tid);
        }
        BARRIER();
        for (int k0 = kBegin; k0 < kEnd; k0 += G_BK) {
            const int next = k0 + G_BK;
            if (next < kEnd) {
                const int full = next + G_BK <= kEnd;
                gemm_fetch@(ra, G_BM, G_A_LOADS, a, aKContiguous, lda, row0, m, next, kEnd, aInside && full, tid);
                gemm_fetch@(rb, G_BN, G_B_LOADS, b, bKContiguous, ldb, col0, n, next, kEnd, bInside && full, tid);
            }
            const SHARED_PTR float* at = as + stage * (G_BK * G_AS_LD);
            const SHARED_PTR float* bt = bs + stage * (G_BK * G_BS_LD);
            #pragma unroll
            for (int p = 0; p < G_BK; ++p) {
                float va[G_TM];
                float vb[G_TN];
                #pragma unroll
                for (int g = 0; g < G_TM / 4; ++g) {
                    const float4 v = LOAD_FLOAT4(at + p * G_AS_LD + g * (4 * G_BM / G_TM) + 4 * ty);
                    va[4 * g] = v.x;
                    va[4 * g + 1] = v.y;
                    va[4 * g + 2] = v.z;
                    va[4 * g + 3] = v.w;
                }
                #pragma unroll
                for (int g = 0; g < G_TN / 4; ++g) {
                    const float4 v = LOAD_FLOAT4(bt + p * G_BS_LD + g * (4 * G_BN / G_TN) + 4 * tx);
                    vb[4 * g] = v.x;
                    vb[4 * g + 1] = v.y;
                    vb[4 * g + 2] = v.z;
                    vb[4 * g + 3] = v.w;
                }
                #pragma unroll
                for (int i = 0; i < G_TM; ++i) {
                    #pragma unroll
                    for (int j = 0; j < G_TN; ++j) {
                        acc[i][j] = fmaf(va[i], vb[j], acc[i][j]);
                    }
                }
            }
            if (next < kEnd) {
                stage ^= 1;
                gemm_stage@(as + stage * (G_BK * G_AS_LD), ra, G_BM, G_A_LOADS, G_AS_LD, aKContiguous, tid);
                gemm_stage@(bs + stage * (G_BK * G_BS_LD), rb, G_BN, G_B_LOADS, G_BS_LD, bKContiguous, tid);
            }
            BARRIER();
        }

        #pragma unroll
        for (int i = 0; i < G_TM; ++i) {
            const int row = row0 + (i / 4) * (4 * G_BM / G_TM) + 4 * ty + i % 4;
            if (row < m) {
                #pragma unroll
                for (int g = 0; g < G_TN / 4; ++g) {
                    const int col = col0 + g * (4 * G_BN / G_TN) + 4 * tx;
                    float v[4];
                    #pragma unroll
                    for (int j = 0; j < 4; ++j) {
                        float value = acc[i][4 * g + j];
                        if (col + j < n) {
                            if (epilogue == EPILOGUE_BIAS) {
                                value += aux[col + j];
                            } else if (epilogue == EPILOGUE_BIAS_RELU) {
                                value += aux[col + j];
                                value = value > 0.0f ? value : 0.0f;
                            } else if (epilogue == EPILOGUE_RELU_MASK) {
                                value = aux[row * n + col + j] > 0.0f ? value : 0.0f;
                            }
                        }
                        v[j] = value;
                    }
                    if (cAligned && col + 3 < n) {
                        STORE_FLOAT4(FLOAT4(v[0], v[1], v[2], v[3]), c + row * n + col);
                    } else {
                        #pragma unroll
                        for (int j = 0; j < 4; ++j) {
                            if (col + j < n) {
                                c[row * n + col + j] = v[j];
                            }
                        }
                    }
                }
            }
        }
    }

    /* The three layouts' entry points: A and B each k-contiguous (1, element (idx, p) at
       src[idx·ld + p]) or not (0, at src[p·ld + idx]), with their leading dimensions; a 16-byte
       path needs a 16-byte aligned offset and a leading dimension divisible by 4.
       NT: C[m×n] = A[m×k]·B[n×k]ᵀ (forward: Z = A_prev·Wᵀ + b, ReLU).
       TN: C[m×n] = A[k×m]ᵀ·B[k×n] (weight gradient: dW = dZᵀ·A_prev).
       NN: C[m×n] = A[m×k]·B[k×n] (input gradient: dA_prev = dZ·W, ReLU mask). */
    #define GEMM_ENTRY(NAME, BLOCKS_PER_SM, A_K_CONTIGUOUS, A_LD, B_K_CONTIGUOUS, B_LD) \\
    KERNEL_OCCUPANCY(G_THREADS, BLOCKS_PER_SM) void NAME(const int m, const int n, const int k, \\
                                                      const GLOBAL float* RESTRICT a, const int aOffset, \\
                                                      const GLOBAL float* RESTRICT b, const int bOffset, \\
                                                      GLOBAL float* RESTRICT c, const int cOffset, \\
                                                      const int epilogue, const GLOBAL float* RESTRICT aux, \\
                                                      const int auxOffset, const int kSplit) \\
    { \\
        GEMM_SHARED_TILES(aStages, bStages) \\
        gemm_block@(m, n, k, kSplit, a + aOffset, A_K_CONTIGUOUS, A_LD, (aOffset & 3) == 0 && ((A_LD) & 3) == 0, \\
                    b + bOffset, B_K_CONTIGUOUS, B_LD, (bOffset & 3) == 0 && ((B_LD) & 3) == 0, \\
                    c + cOffset, (cOffset & 3) == 0 && (n & 3) == 0, epilogue, aux + auxOffset, \\
                    aStages, bStages); \\
    }
    GEMM_ENTRY(gemm_nt@, G_MIN_BLOCKS, 1, k, 1, k)
    GEMM_ENTRY(gemm_tn@, G_MIN_BLOCKS_TN, 0, m, 0, n)
    GEMM_ENTRY(gemm_nn@, G_MIN_BLOCKS, 1, k, 0, n)
    #undef GEMM_ENTRY

    """

    static let splitKSum: String = """
    /* C[i] = epilogue(Σ_z partial[z·count + i]) for z = 0..<splits in order: the split-k products'
       slices added deterministically (count = m·n; grid-stride). */
    KERNEL_ANY void gemm_splitk_sum(const int m, const int n, const int splits,
                                    const GLOBAL float* RESTRICT partial, const int partialOffset,
                                    GLOBAL float* RESTRICT c, const int cOffset,
                                    const int epilogue, const GLOBAL float* RESTRICT aux, const int auxOffset)
    {
        const int count = m * n;
        partial += partialOffset;
        c += cOffset;
        aux += auxOffset;
        for (int i = GLOBAL_ID_X; i < count; i += GLOBAL_SIZE_X) {
            float value = partial[i];
            for (int z = 1; z < splits; ++z) {
                value += partial[(INT64)z * count + i];
            }
            const int col = i % n;
            if (epilogue == EPILOGUE_BIAS) {
                value += aux[col];
            } else if (epilogue == EPILOGUE_BIAS_RELU) {
                value += aux[col];
                value = value > 0.0f ? value : 0.0f;
            } else if (epilogue == EPILOGUE_RELU_MASK) {
                value = aux[i] > 0.0f ? value : 0.0f;
            }
            c[i] = value;
        }
    }

    """
}
