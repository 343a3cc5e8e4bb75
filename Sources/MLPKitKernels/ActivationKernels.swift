import MLPKit

extension KernelSource {
    /// The hidden activations other than ReLU (whose forward and derivative stay fused into the
    /// products' epilogues), as element-wise passes after a product: the forward pass runs the
    /// product with the `.bias` epilogue into C, then `activation_forward` (C = f(C) in place,
    /// keeping Z when asked); the backward pass runs the product with no epilogue, then
    /// `activation_derivative` (C = C·f'(source) in place).
    ///
    /// f and f' are `ActivationFunction.apply` and `.derivative(from:)` on the CPU, operation for
    /// operation: leaky ReLU z > 0 ? z : slope·z; tanh; σ without overflow (1/(1 + e^−z) for
    /// z ≥ 0, e^z/(1 + e^z) below); GELU's tanh form. The derivative reads A = f(Z) (leaky ReLU
    /// from A's sign, tanh 1 − A², sigmoid A(1 − A)) or Z itself (GELU). `mlp_sigmoid` also serves
    /// the binary cross-entropy loss.
    public static let activation: String = """
    /* No FMA contraction (MUL_RN where a product meets a sum): the CPU's roundings, e.g. in 1 − A². */
    FP_CONTRACT_OFF

    /* Hidden activation codes (KernelActivation). */
    #define ACTIVATION_RELU 0
    #define ACTIVATION_LEAKY_RELU 1
    #define ACTIVATION_TANH 2
    #define ACTIVATION_SIGMOID 3
    #define ACTIVATION_GELU 4
    /* √(2/π), GELU's constant, and its cubic coefficient. */
    #define GELU_SCALE 0.7978845608028654f
    #define GELU_CUBIC 0.044715f

    /* σ(z) without overflow: 1/(1 + e^−z) for z ≥ 0, e^z/(1 + e^z) below. */
    DEVICE_INLINE float mlp_sigmoid(const float z)
    {
        if (z >= 0.0f) {
            return 1.0f / (1.0f + expf(-z));
        }
        const float e = expf(z);
        return e / (1.0f + e);
    }

    /* f(z) for an activation code (leaky ReLU with its slope). ReLU is 0 >= z ? 0 : z, Swift's max(z, 0). */
    DEVICE_INLINE float activation_apply(const int function, const float slope, const float z)
    {
        switch (function) {
        case ACTIVATION_LEAKY_RELU:
            return z > 0.0f ? z : slope * z;
        case ACTIVATION_TANH:
            return tanhf(z);
        case ACTIVATION_SIGMOID:
            return mlp_sigmoid(z);
        case ACTIVATION_GELU: {
            const float u = GELU_SCALE * (z + MUL_RN(GELU_CUBIC * z * z, z));
            return 0.5f * z * (1.0f + tanhf(u));
        }
        default:
            return 0.0f >= z ? 0.0f : z;
        }
    }

    /* C = f(C) in place over count elements, C holding Z = product + bias; Z is kept in pre when pre is not NULL. */
    KERNEL_ANY void activation_forward(const int count, const int function, const float slope,
                                       GLOBAL float* RESTRICT c, const int cOffset,
                                       GLOBAL float* RESTRICT pre, const int preOffset)
    {
        for (int e = GLOBAL_ID_X; e < count; e += GLOBAL_SIZE_X) {
            const float z = c[cOffset + e];
            if (pre) {
                pre[preOffset + e] = z;
            }
            c[cOffset + e] = activation_apply(function, slope, z);
        }
    }

    /* C = C · f'(source) in place over count elements: source is A = f(Z), or Z for GELU. */
    KERNEL_ANY void activation_derivative(const int count, const int function, const float slope,
                                          GLOBAL float* RESTRICT c, const int cOffset,
                                          const GLOBAL float* RESTRICT source, const int sourceOffset)
    {
        for (int e = GLOBAL_ID_X; e < count; e += GLOBAL_SIZE_X) {
            const float s = source[sourceOffset + e];
            float d = c[cOffset + e];
            switch (function) {
            case ACTIVATION_LEAKY_RELU:
                if (!(s > 0.0f)) {
                    d *= slope;
                }
                break;
            case ACTIVATION_TANH:
                d *= 1.0f - MUL_RN(s, s);
                break;
            case ACTIVATION_SIGMOID:
                d *= s * (1.0f - s);
                break;
            case ACTIVATION_GELU: {
                const float t = tanhf(GELU_SCALE * (s + MUL_RN(GELU_CUBIC * s * s, s)));
                d *= MUL_RN(0.5f, 1.0f + t)
                     + MUL_RN(0.5f * s * (1.0f - MUL_RN(t, t)) * GELU_SCALE, 1.0f + MUL_RN(3.0f * GELU_CUBIC * s, s));
                break;
            }
            default:
                if (!(s > 0.0f)) {
                    d = 0.0f;
                }
                break;
            }
            c[cOffset + e] = d;
        }
    }

    FP_CONTRACT_DEFAULT

    """
}

/// The activation codes `activation_forward` and `activation_derivative` take as `function`.
public enum KernelActivation: Int32, Sendable {
    case relu = 0
    case leakyReLU = 1
    case tanh = 2
    case sigmoid = 3
    case gelu = 4

    /// The code of `function` and the slope argument (leaky ReLU's; 0 for the others).
    public static func arguments(_ function: ActivationFunction) -> (code: KernelActivation, slope: Float) {
        switch function {
        case .relu: (.relu, 0)
        case let .leakyReLU(slope): (.leakyReLU, slope)
        case .tanh: (.tanh, 0)
        case .sigmoid: (.sigmoid, 0)
        case .gelu: (.gelu, 0)
        }
    }
}
