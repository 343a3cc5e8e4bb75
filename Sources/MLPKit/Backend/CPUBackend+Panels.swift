/// A weight kept in panels: W (rows×columns) as panels of `width` of its rows, each panel
/// columns×width with the rows side by side, column after column, so that W(j, p) lies at
/// (j / width)·width·columns + p·width + j % width. `rows` is a multiple of `width`.
struct WeightPanels: Equatable {
    var rows: Int
    var columns: Int
    var width: Int

    /// Where W(j, p) lies.
    @inline(__always)
    func index(row j: Int, column p: Int) -> Int {
        (j / width) * width * columns + p * width + j % width
    }

    /// W in rows (at `from`) into its panels (at `to`).
    func pack(_ from: UnsafePointer<Float>, into to: UnsafeMutablePointer<Float>) {
        for j in 0..<rows {
            let row = from + j * columns, panel = to + (j / width) * width * columns + j % width
            for p in 0..<columns { panel[p * width] = row[p] }
        }
    }

    /// W's panels (at `from`) back into rows (at `to`).
    func unpack(_ from: UnsafePointer<Float>, into to: UnsafeMutablePointer<Float>) {
        for j in 0..<rows {
            let row = to + j * columns, panel = from + (j / width) * width * columns + j % width
            for p in 0..<columns { row[p] = panel[p * width] }
        }
    }

    /// A flat parameter array (W first, then anything else in place) with W in rows, made into
    /// the same array with W in panels (`packs`), or back (`!packs`).
    func reorder(_ values: [Float], packs: Bool) -> [Float] {
        let count = rows * columns
        guard values.count >= count else { return values }
        var result = values
        values.withUnsafeBufferPointer { from in
            result.withUnsafeMutableBufferPointer { to in
                if packs { pack(from.baseAddress!, into: to.baseAddress!) } else { unpack(from.baseAddress!, into: to.baseAddress!) }
            }
        }
        return result
    }
}

/// A first layer's weight kept in the order its forward product packs it: that product then packs
/// nothing. mnist's first forward product packed its 256×784 weight's rows on every step (each
/// thread its 128 rows, transposed eight by eight: about 19 µs a thread in a C harness).
extension CPUBackend {
    /// Panels of 32 (the AVX-512 tile's columns) where both of the first layer's products of a
    /// full batch go to the claimed AVX-512 product (`readsRowsInPlace`), which then reads W's
    /// panels instead of packing them and writes dW's, and `rows` is a multiple of 32.
    public func firstWeightPanels(rows: Int, columns: Int, batch: Int) -> Int? {
        guard keepsWeightsInPanels, rows > 0, columns > 0, batch > 0,
              takesPanelledProducts(rows: rows, columns: columns, batch: batch) else { return nil }
        return SIMDKernels.weightPanel
    }

    /// Whether this batch's two products with W (rows×columns) kept in panels go to the panel
    /// kernels (else through W in rows, in `panelScratch`).
    func takesPanelledProducts(rows: Int, columns: Int, batch: Int) -> Bool {
        SIMDKernels.avx512 && rows % SIMDKernels.weightPanel == 0
            && readsRowsInPlace(.nt, m: batch, n: rows, k: columns) && readsRowsInPlace(.tn, m: rows, n: columns, k: batch)
    }

    /// `panelScratch`, made or grown to `count` elements.
    private func scratch(_ count: Int) throws -> CPUBuffer {
        if let buffer = panelScratch, buffer.count >= count { return buffer }
        let buffer = try makeBuffer(count: count)
        panelScratch = buffer
        return buffer
    }

    /// The batch's rows for a panel kernel: their pointer (the matrix's first row, or the selected
    /// rows' source) and, when selected, their indices checked into `body`'s Int array.
    private func withInputRows<R>(
        _ input: BatchInput<CPUBuffer>, count: Int, width: Int, operation: String,
        _ body: (UnsafePointer<Float>, UnsafePointer<Int>?) throws -> R
    ) throws -> R {
        switch input {
        case .matrix(let slice):
            let elements = try self.elements(count, width, "\(operation) A")
            return try body(try pointer(slice, count: elements, "\(operation) A"), nil)
        case .selected(let rows):
            guard rows.width == width else {
                throw BackendError.invalidArgument(operation: "\(operation) rows",
                                                   reason: "rows of width \(rows.width) for a depth of \(width)")
            }
            return try withCheckedRows(rows, count: count, width: width, operation: operation) { try body($0, $1) }
        }
    }

    /// The product in rows that a panelled one stands for (its fallback).
    private func rowsProduct(
        _ layout: ProductLayout, m: Int, n: Int, k: Int, input: BatchInput<CPUBuffer>, other: BufferSlice<CPUBuffer>,
        c: BufferSlice<CPUBuffer>, epilogue: ProductEpilogue<CPUBuffer>
    ) throws {
        switch input {
        case .matrix(let slice):
            if layout == .tn {
                try matrixProduct(layout, m: m, n: n, k: k, a: other, b: slice, c: c, epilogue: epilogue)
            } else {
                try matrixProduct(layout, m: m, n: n, k: k, a: slice, b: other, c: c, epilogue: epilogue)
            }
        case .selected(let rows):
            try matrixProduct(layout, m: m, n: n, k: k, rows: rows, other: other, c: c, epilogue: epilogue)
        }
    }

    /// Z = A·Wᵀ and the epilogue from W's panels by the claimed product, which reads them in place
    /// of packing B; where it would not take this batch's product, W in rows in `panelScratch`
    /// through `matrixProduct`. The bits of `matrixProduct(.nt, …)` with W in rows either way.
    public func panelledProduct(
        m: Int, n: Int, k: Int, input: BatchInput<CPUBuffer>, panels: BufferSlice<CPUBuffer>, c: BufferSlice<CPUBuffer>,
        epilogue: ProductEpilogue<CPUBuffer>
    ) throws {
        guard m >= 0, n > 0, k > 0, n % SIMDKernels.weightPanel == 0 else {
            throw BackendError.invalidArgument(operation: "panelledProduct", reason: "size \(m)×\(n)×\(k) for panels of 32")
        }
        let layout = WeightPanels(rows: n, columns: k, width: SIMDKernels.weightPanel)
        let weight = try pointer(panels, count: try elements(n, k, "panelledProduct W"), "panelledProduct W")
        guard takesPanelledProducts(rows: n, columns: k, batch: m) else {
            let rows = try scratch(n * k)
            layout.unpack(weight, into: rows.pointer)
            try rowsProduct(.nt, m: m, n: n, k: k, input: input, other: BufferSlice(rows), c: c, epilogue: epilogue)
            return
        }
        let mn = try elements(m, n, "panelledProduct C")
        let cPointer = try pointer(c, count: mn, "panelledProduct C")
        let epiloguePointers = try pointers(epilogue, count: mn, columns: n)
        let applied = try withInputRows(input, count: m, width: k, operation: "panelledProduct") { a, rows in
            SIMDKernels.panelForward(m: m, n: n, k: k, a: a, rows: rows, panels: weight, c: cPointer, epilogue: epiloguePointers.skinny)
        }
        if !applied { applyEpilogue(epiloguePointers, c: cPointer, rows: m, columns: n) }
    }

    /// dW = dZᵀ·A written into W's panels by the claimed product (as dWᵀ = Aᵀ·dZ, C kept in panels);
    /// where it would not take this batch's product, `matrixProduct(.tn, …)` into `panelScratch`,
    /// then packed. The bits of `matrixProduct(.tn, …)` in rows either way.
    public func panelledWeightGradient(
        rows: Int, columns: Int, batch: Int, delta: BufferSlice<CPUBuffer>, input: BatchInput<CPUBuffer>,
        into panels: BufferSlice<CPUBuffer>
    ) throws {
        guard rows > 0, columns > 0, batch >= 0, rows % SIMDKernels.weightPanel == 0 else {
            throw BackendError.invalidArgument(operation: "panelledWeightGradient",
                                               reason: "size \(rows)×\(columns) over \(batch) rows for panels of 32")
        }
        let layout = WeightPanels(rows: rows, columns: columns, width: SIMDKernels.weightPanel)
        let count = try elements(rows, columns, "panelledWeightGradient dW")
        let gradient = try pointer(panels, count: count, "panelledWeightGradient dW")
        guard takesPanelledProducts(rows: rows, columns: columns, batch: batch) else {
            let scratch = try scratch(count)
            try rowsProduct(.tn, m: rows, n: columns, k: batch, input: input, other: delta, c: BufferSlice(scratch), epilogue: .none)
            layout.pack(scratch.pointer, into: gradient)
            return
        }
        let dZ = try pointer(delta, count: try elements(batch, rows, "panelledWeightGradient dZ"), "panelledWeightGradient dZ")
        try withInputRows(input, count: batch, width: columns, operation: "panelledWeightGradient") { a, indices in
            SIMDKernels.panelWeightGradient(n: rows, k: columns, batch: batch, delta: dZ, a: a, rows: indices, panels: gradient)
        }
    }

    /// Adam (`adamUpdate(…, layout:, …)`), its clipping's global norm summed over W's elements in
    /// the order of its rows where W is kept in panels: the bits of the update in rows.
    public func adamUpdate(
        parameters: BufferSlice<CPUBuffer>, gradients: BufferSlice<CPUBuffer>,
        firstMoment: BufferSlice<CPUBuffer>, secondMoment: BufferSlice<CPUBuffer>,
        layout: LayerLayout, firstWeightPanels: Int?, hyperparameters: AdamHyperparameters, step: Int
    ) throws {
        let panels = firstWeightPanels.map { WeightPanels(rows: layout.sizes[1], columns: layout.sizes[0], width: $0) }
        try adam(parameters: parameters, gradients: gradients, firstMoment: firstMoment, secondMoment: secondMoment,
                 count: layout.parameterCount, hyperparameters: hyperparameters, step: step, layout: layout, panels: panels)
    }
}
