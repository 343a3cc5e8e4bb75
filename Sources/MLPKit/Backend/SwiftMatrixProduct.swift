/// The matrix product in plain Swift: packed panels and a 4×16 SIMD micro-kernel.
///
/// Used when no BLAS library is installed on a processor without AVX2 (with AVX2 the packed C
/// product of `SIMDKernels` runs instead), and as the reference the tests and `mlp check`
/// compare BLAS, the packed product and the GPU kernels with. C[m×n] (row-major, overwritten)
/// = Σ_p A(i, p)·B(p, j), where the layout decides how A and B are strided (see `ProductLayout`).
public enum SwiftMatrixProduct {
    static let rowsPerPanel = 4         // MR
    static let columnsPerPanel = 16     // NR
    static let depthBlock = 256         // KC
    static let rowBlock = 64            // MC
    static let columnBlock = 512        // NC

    /// C[m×n] = op(A)·op(B) for row-major A, B and C in the given layout.
    public static func multiply(
        _ layout: ProductLayout, m: Int, n: Int, k: Int,
        a: UnsafePointer<Float>, b: UnsafePointer<Float>, c: UnsafeMutablePointer<Float>
    ) {
        let (aRow, aDepth, bDepth, bColumn) = layout.operandStrides(m: m, n: n, k: k)
        guard m > 0, n > 0 else { return }
        guard k > 0 else {
            c.update(repeating: 0, count: m * n)
            return
        }
        let mr = rowsPerPanel, nr = columnsPerPanel
        let kc = min(depthBlock, k)
        let nc = min(columnBlock, (n + nr - 1) / nr * nr)
        let mc = min(rowBlock, (m + mr - 1) / mr * mr)
        let packedB = UnsafeMutablePointer<Float>.allocate(capacity: kc * nc)
        let packedA = UnsafeMutablePointer<Float>.allocate(capacity: mc * kc)
        defer {
            packedB.deallocate()
            packedA.deallocate()
        }
        var tile = [Float](repeating: 0, count: mr * nr)
        var columnStart = 0
        while columnStart < n {
            let columns = min(nc, n - columnStart)
            var depthStart = 0
            while depthStart < k {
                let depth = min(kc, k - depthStart)
                let accumulate = depthStart > 0
                // B's columns in panels of NR
                pack(b, start: columnStart, count: columns, lineStride: bColumn, depthStart: depthStart, depth: depth,
                     depthStride: bDepth, width: nr, into: packedB)
                var rowStart = 0
                while rowStart < m {
                    let rows = min(mc, m - rowStart)
                    // A's rows in panels of MR
                    pack(a, start: rowStart, count: rows, lineStride: aRow, depthStart: depthStart, depth: depth,
                         depthStride: aDepth, width: mr, into: packedA)
                    var panelRow = 0
                    while panelRow < rows {
                        let validRows = min(mr, rows - panelRow)
                        var panelColumn = 0
                        while panelColumn < columns {
                            let validColumns = min(nr, columns - panelColumn)
                            tile.withUnsafeMutableBufferPointer { tilePointer in
                                microKernel(
                                    depth: depth,
                                    a: packedA + panelRow * depth,
                                    b: packedB + panelColumn * depth,
                                    tile: tilePointer.baseAddress!)
                                let cOrigin = c + (rowStart + panelRow) * n + columnStart + panelColumn
                                for r in 0..<validRows {
                                    let cRow = cOrigin + r * n
                                    let tileRow = tilePointer.baseAddress! + r * nr
                                    if accumulate {
                                        for j in 0..<validColumns { cRow[j] += tileRow[j] }
                                    } else {
                                        for j in 0..<validColumns { cRow[j] = tileRow[j] }
                                    }
                                }
                            }
                            panelColumn += nr
                        }
                        panelRow += mr
                    }
                    rowStart += mc
                }
                depthStart += kc
            }
            columnStart += nc
        }
    }

    /// Packs `count` lines of an operand (A's rows or B's columns) from `start`, over depth
    /// depthStart..<+depth, into panels of `width` lines, each panel depth×width contiguous and
    /// zero-padded past the last line. Line i at depth p is `source[i·lineStride + p·depthStride]`.
    @inline(__always)
    static func pack(
        _ source: UnsafePointer<Float>, start: Int, count: Int, lineStride: Int, depthStart: Int, depth: Int,
        depthStride: Int, width: Int, into packed: UnsafeMutablePointer<Float>
    ) {
        var panel = 0
        while panel < count {
            let valid = min(width, count - panel)
            let destination = packed + panel * depth
            for p in 0..<depth {
                let line = source + (start + panel) * lineStride + (depthStart + p) * depthStride
                let row = destination + p * width
                if lineStride == 1 {
                    for j in 0..<valid { row[j] = line[j] }
                } else {
                    for j in 0..<valid { row[j] = line[j * lineStride] }
                }
                for j in valid..<width { row[j] = 0 }
            }
            panel += width
        }
    }

    /// tile[4×16] = Σ_p a[p][0..<4] ⊗ b[p][0..<16] over packed panels.
    @inline(__always)
    static func microKernel(depth: Int, a: UnsafePointer<Float>, b: UnsafePointer<Float>, tile: UnsafeMutablePointer<Float>) {
        var c00 = SIMD8<Float>(), c01 = SIMD8<Float>()
        var c10 = SIMD8<Float>(), c11 = SIMD8<Float>()
        var c20 = SIMD8<Float>(), c21 = SIMD8<Float>()
        var c30 = SIMD8<Float>(), c31 = SIMD8<Float>()
        let bVectors = UnsafeRawPointer(b)
        for p in 0..<depth {
            let b0 = bVectors.loadUnaligned(fromByteOffset: p * 64, as: SIMD8<Float>.self)
            let b1 = bVectors.loadUnaligned(fromByteOffset: p * 64 + 32, as: SIMD8<Float>.self)
            let aColumn = a + p * 4
            let a0 = SIMD8<Float>(repeating: aColumn[0])
            let a1 = SIMD8<Float>(repeating: aColumn[1])
            let a2 = SIMD8<Float>(repeating: aColumn[2])
            let a3 = SIMD8<Float>(repeating: aColumn[3])
            c00 += a0 * b0; c01 += a0 * b1
            c10 += a1 * b0; c11 += a1 * b1
            c20 += a2 * b0; c21 += a2 * b1
            c30 += a3 * b0; c31 += a3 * b1
        }
        let out = UnsafeMutableRawPointer(tile)
        out.storeBytes(of: c00, toByteOffset: 0, as: SIMD8<Float>.self)
        out.storeBytes(of: c01, toByteOffset: 32, as: SIMD8<Float>.self)
        out.storeBytes(of: c10, toByteOffset: 64, as: SIMD8<Float>.self)
        out.storeBytes(of: c11, toByteOffset: 96, as: SIMD8<Float>.self)
        out.storeBytes(of: c20, toByteOffset: 128, as: SIMD8<Float>.self)
        out.storeBytes(of: c21, toByteOffset: 160, as: SIMD8<Float>.self)
        out.storeBytes(of: c30, toByteOffset: 192, as: SIMD8<Float>.self)
        out.storeBytes(of: c31, toByteOffset: 224, as: SIMD8<Float>.self)
    }
}

extension ProductLayout {
    /// The strides of a row-major m×n×k product's operands in this layout: A(i, p) is
    /// a[i·aRow + p·aDepth] and B(p, j) is b[p·bDepth + j·bColumn].
    func operandStrides(m: Int, n: Int, k: Int) -> (aRow: Int, aDepth: Int, bDepth: Int, bColumn: Int) {
        switch self {
        case .nt: (k, 1, 1, k)
        case .tn: (1, m, n, 1)
        case .nn: (k, 1, n, 1)
        }
    }
}
