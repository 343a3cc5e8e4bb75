import MLPKit

/// The training features beyond the seed, for every backend that runs the portable kernels
/// (OpenCL and CUDA alike): the hidden activations other than ReLU, the binary cross-entropy
/// loss (through `lossGradient`), and AdamW's decoupled weight decay with clipping by global
/// norm, computed as the CPU backend computes them.
extension KernelLaunchingBackend {
    /// Every feature is implemented; an activation's parameters must be valid (leaky ReLU's
    /// slope finite and ≥ 0).
    public func requireSupport(_ feature: BackendFeature) throws {
        if case .activation(let function) = feature { try function.validate() }
    }

    /// ReLU through the products' fused `.biasReLU` and `.reluMask` epilogues (one kernel); the
    /// other activations as the product with the `.bias` epilogue (forward) or none (derivative)
    /// into C, then one element-wise kernel over C (`activation_forward`, `activation_derivative`).
    /// Every operand is checked before anything is queued.
    public func matrixProduct(
        _ layout: ProductLayout, m: Int, n: Int, k: Int,
        a: BufferSlice<Buffer>, b: BufferSlice<Buffer>, c: BufferSlice<Buffer>,
        activation epilogue: ActivationEpilogue<Buffer>
    ) throws {
        if let fused = epilogue.fusedReLU {
            return try matrixProduct(layout, m: m, n: n, k: k, a: a, b: b, c: c, epilogue: fused)
        }
        switch epilogue {
        case let .biasActivation(bias, function, preActivation):
            let plan = try planned { () throws(KernelPlanError) in
                try launchPlanner.activationForward(function, rows: m, columns: n, c: c, preActivation: preActivation)
            }
            try matrixProduct(layout, m: m, n: n, k: k, a: a, b: b, c: c, epilogue: .bias(bias))
            if let plan { try submit(plan) }
        case let .activationDerivative(source, function):
            let plan = try planned { () throws(KernelPlanError) in
                try launchPlanner.activationDerivative(function, rows: m, columns: n, c: c, source: source)
            }
            try matrixProduct(layout, m: m, n: n, k: k, a: a, b: b, c: c, epilogue: .none)
            if let plan { try submit(plan) }
        }
    }

    /// Adam with AdamW's decoupled weight decay and clipping by global norm, in
    /// `Backend.adamWUpdate`'s order, without a host round trip (a graphed step may contain it):
    /// the norm is reduced on the device in a fixed order and `adamw_update` reads the scale from
    /// device memory. Plain Adam (λ = 0, no clipping) is `adamUpdate`'s kernel, unchanged.
    public func adamWUpdate(
        parameters: BufferSlice<Buffer>, gradients: BufferSlice<Buffer>,
        firstMoment: BufferSlice<Buffer>, secondMoment: BufferSlice<Buffer>,
        count: Int, hyperparameters: AdamHyperparameters, step: Int
    ) throws {
        if hyperparameters.isPlainAdam {
            return try adamUpdate(parameters: parameters, gradients: gradients, firstMoment: firstMoment,
                                  secondMoment: secondMoment, count: count, hyperparameters: hyperparameters, step: step)
        }
        try queueAdamW(parameters: parameters, gradients: gradients, firstMoment: firstMoment,
                       secondMoment: secondMoment, count: count, hyperparameters: hyperparameters, step: step)
    }

    /// Queues AdamW's launches: with clipping, the norm's two reductions into the clip scratch
    /// buffer, then `adamw_update` with t brought to `step` on the device.
    func queueAdamW(
        parameters: BufferSlice<Buffer>, gradients: BufferSlice<Buffer>,
        firstMoment: BufferSlice<Buffer>, secondMoment: BufferSlice<Buffer>,
        count: Int, hyperparameters: AdamHyperparameters, step: Int
    ) throws(LaunchError) {
        let plan = try planned { () throws(KernelPlanError) in
            try launchPlanner.adamWUpdate(parameters: parameters, gradients: gradients, firstMoment: firstMoment,
                                          secondMoment: secondMoment, count: count, hyperparameters: hyperparameters,
                                          step: step, stepCounter: adamStepCounter)
        }
        guard let plan else { return }
        let scratch = plan.scratchCount > 0 ? try scratchBuffer(.clip, count: plan.scratchCount) : nil
        try setDeviceStep(step)
        for launch in plan.launches(scratch: scratch) {
            try submit(launch)
        }
    }
}
