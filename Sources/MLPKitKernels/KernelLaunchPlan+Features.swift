import MLPKit

/// The launches of an AdamW step, planned once the arguments are checked: with clipping,
/// `gradient_norm_partials` and `clip_scale` into a clip scratch buffer of at least
/// `scratchCount` floats that the backend provides, then `adamw_update` (which reads the scale
/// from the scratch buffer); without clipping, `adamw_update` alone.
public struct AdamWPlan<Buffer> {
    /// Floats of clip scratch the launches need (0 without clipping: `launches` ignores its argument).
    public let scratchCount: Int
    let make: (Buffer?) -> [KernelLaunchPlan<Buffer>]

    /// The launches in order, with `scratch` (at least `scratchCount` floats) when clipping.
    public func launches(scratch: Buffer?) -> [KernelLaunchPlan<Buffer>] { make(scratch) }
}

extension KernelLaunchPlanner {
    /// The most blocks of `gradient_norm_partials`: `clip_scale`'s one block totals at most this
    /// many partial sums.
    public static let maxNormBlocks = 1024
    /// Floats before the partial sums in the clip scratch buffer (`CLIP_PARTIALS`: the scale, padding).
    public static let clipScratchHeader = 2

    /// `activation_forward` over C[rows×columns], which already holds Z = product + bias (the
    /// product's `.bias` epilogue): C = f(Z), and Z copied to `preActivation` when given.
    /// Planned before the product runs, so that a bad operand throws before anything is queued.
    public func activationForward<Buffer: KernelPlanBuffer>(
        _ function: ActivationFunction, rows: Int, columns: Int, c: BufferSlice<Buffer>,
        preActivation: BufferSlice<Buffer>?
    ) throws(KernelPlanError) -> KernelLaunchPlan<Buffer>? {
        _ = (try Self.int32(rows, "rows"), try Self.int32(columns, "columns"))
        let count32 = try Self.int32(try Self.product(rows, columns, "rows·columns"), "rows·columns")
        let cOffset = try Self.checkRange(c, rows * columns, "activation output C")
        var preOffset: Int32 = 0
        if let preActivation {
            preOffset = try Self.checkRange(preActivation, rows * columns, "activation pre-activation Z")
        }
        guard rows > 0, columns > 0 else { return nil }
        let (code, slope) = KernelActivation.arguments(function)
        return KernelLaunchPlan(.activationForward, blocksX: elementBlocks(rows * columns), threads: elementThreads, [
            .int(count32), .int(code.rawValue), .float(slope),
            .buffer(c.buffer), .int(cOffset), .buffer(preActivation?.buffer), .int(preOffset),
        ])
    }

    /// `activation_derivative` over C[rows×columns] (the product without epilogue): C = C·f'(source),
    /// source being A = f(Z), or Z when `function.derivativeNeedsPreActivation` (GELU).
    public func activationDerivative<Buffer: KernelPlanBuffer>(
        _ function: ActivationFunction, rows: Int, columns: Int, c: BufferSlice<Buffer>, source: BufferSlice<Buffer>
    ) throws(KernelPlanError) -> KernelLaunchPlan<Buffer>? {
        _ = (try Self.int32(rows, "rows"), try Self.int32(columns, "columns"))
        let count32 = try Self.int32(try Self.product(rows, columns, "rows·columns"), "rows·columns")
        let cOffset = try Self.checkRange(c, rows * columns, "activation derivative C")
        let sourceOffset = try Self.checkRange(source, rows * columns, "activation derivative source")
        guard rows > 0, columns > 0 else { return nil }
        let (code, slope) = KernelActivation.arguments(function)
        return KernelLaunchPlan(.activationDerivative, blocksX: elementBlocks(rows * columns), threads: elementThreads, [
            .int(count32), .int(code.rawValue), .float(slope),
            .buffer(c.buffer), .int(cOffset), .buffer(source.buffer), .int(sourceOffset),
        ])
    }

    /// Blocks of `gradient_norm_partials` for `count` gradients: one per `reduceThreads`
    /// gradients, at most `maxNormBlocks` (and `maxElementBlocks`). It depends only on the count
    /// and the device, so the norm's order of summation is the same every step.
    public func normBlocks(count: Int) -> Int {
        max(1, min((count + tiles.reduceThreads - 1) / tiles.reduceThreads, Self.maxNormBlocks, maxElementBlocks))
    }

    /// AdamW with decoupled weight decay and clipping by global norm (`Backend.adamWUpdate`), t
    /// read from `stepCounter`; the backend brings the counter to `step` (see `advanceStep`)
    /// between planning and launching. The decay factor 1 − α·λ is computed here as the CPU
    /// backend computes it (in Float64, rounded once).
    public func adamWUpdate<Buffer: KernelPlanBuffer>(
        parameters: BufferSlice<Buffer>, gradients: BufferSlice<Buffer>,
        firstMoment: BufferSlice<Buffer>, secondMoment: BufferSlice<Buffer>,
        count: Int, hyperparameters: AdamHyperparameters, step: Int, stepCounter: Buffer
    ) throws(KernelPlanError) -> AdamWPlan<Buffer>? {
        let count32 = try Self.int32(count, "count")
        guard step >= 1 else { throw .invalidArgument("Adam step \(step) (t starts at 1)") }
        guard count > 0 else { return nil }
        let offsets = (
            try Self.checkRange(parameters, count, "AdamW parameters"),
            try Self.checkRange(gradients, count, "AdamW gradients"),
            try Self.checkRange(firstMoment, count, "AdamW first moment"),
            try Self.checkRange(secondMoment, count, "AdamW second moment"))
        let h = hyperparameters
        let decay = Float(1 - Double(h.learningRate) * Double(h.weightDecay))
        let blocks = normBlocks(count: count)
        let blocks32 = Int32(blocks)
        let scratchCount = h.clipNorm == nil ? 0 : Self.clipScratchHeader + 2 * blocks
        let (reduceThreads, elementThreads, updateBlocks) = (tiles.reduceThreads, elementThreads, elementBlocks(count))
        return AdamWPlan(scratchCount: scratchCount) { scratch in
            var launches: [KernelLaunchPlan<Buffer>] = []
            if let clipNorm = h.clipNorm {
                // Σ g² per block, then one block totals them in a fixed order and stores the scale
                launches.append(KernelLaunchPlan(.gradientNormPartials, blocksX: blocks, threads: reduceThreads, [
                    .int(count32), .buffer(gradients.buffer), .int(offsets.1), .buffer(scratch),
                ]))
                launches.append(KernelLaunchPlan(.clipScale, blocksX: 1, threads: reduceThreads, [
                    .int(blocks32), .float(clipNorm), .buffer(scratch),
                ]))
            }
            launches.append(KernelLaunchPlan(.adamW, blocksX: updateBlocks, threads: elementThreads, [
                .int(count32),
                .buffer(parameters.buffer), .int(offsets.0), .buffer(gradients.buffer), .int(offsets.1),
                .buffer(firstMoment.buffer), .int(offsets.2), .buffer(secondMoment.buffer), .int(offsets.3),
                .float(h.learningRate), .float(h.beta1), .float(h.beta2), .float(h.epsilon), .float(decay),
                .buffer(stepCounter), .buffer(h.clipNorm == nil ? nil : scratch),
            ]))
            return launches
        }
    }
}
