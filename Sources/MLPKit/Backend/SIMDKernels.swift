import CMLPKitSIMD
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// The CPU backend's AVX2 paths (`Sources/CMLPKitSIMD`): Adam eight parameters at a time with
/// the Swift loop's exact operations, and a register-blocked product for small matrices, where
/// a BLAS call's fixed cost is most of the time. The package is compiled for baseline x86-64,
/// so these run only where the processor has AVX2 and FMA; `MLPKIT_SIMD=0` turns them off.
enum SIMDKernels {
    /// Whether the AVX2 paths run in this process.
    static let enabled: Bool = {
        if let value = getenv("MLPKIT_SIMD"), String(cString: value) == "0" { return false }
        return mlpkit_simd_available() != 0
    }()

    /// Products with at most this many multiply-adds (tiny's 64³, mnist's three 10-wide ones)
    /// take the small-product kernel: on the 2-core machine it ran tiny's eight products in
    /// 41 µs against OpenBLAS's 48 µs (a 64³ NN product at 72 against 50–54 GFLOP/s).
    static let smallProductLimit = 1 << 18

    /// C = op(A)·op(B) (overwriting C) with the small-product kernel, when the product is small
    /// enough and the kernel takes it; false when the caller must do it.
    @inline(__always)
    static func smallProduct(
        _ layout: ProductLayout, m: Int, n: Int, k: Int, a: UnsafePointer<Float>, b: UnsafePointer<Float>,
        c: UnsafeMutablePointer<Float>, enabled: Bool = enabled
    ) -> Bool {
        guard enabled, m > 0, n > 0, k > 0, BLASLibrary.multiplyAdds(m: m, n: n, k: k) <= smallProductLimit else { return false }
        let code: Int32
        switch layout {
        case .nt: code = 0
        case .tn: code = 1
        case .nn: code = 2
        }
        return mlpkit_small_product_avx2(code, m, n, k, a, b, c) != 0
    }

    /// Adam over parameters start..<end of `job` (same bits as `ElementwiseKernels.adamRange`'s loops).
    @inline(__always)
    static func adam(_ job: ElementwiseKernels.AdamJob, start: Int, end: Int) {
        var arguments = MLPKitAdamJob(
            theta: job.theta, g: job.g, m: job.m, v: job.v, beta1: job.beta1, beta2: job.beta2, alpha: job.alpha,
            epsilon: job.epsilon, correction1: job.correction1, correction2: job.correction2,
            gradientScale: job.gradientScale, decay: job.decay, clips: job.clips ? 1 : 0, decays: job.decays ? 1 : 0)
        mlpkit_adam_avx2(&arguments, start, end)
    }
}
