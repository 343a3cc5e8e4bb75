extension KernelSource {
    /// Maps qualifiers, shared memory, barriers, thread indices and math names so that kernels
    /// read as CUDA C in both dialects. Selected by `__OPENCL_VERSION__` versus `__CUDACC_RTC__`.
    public static let prelude: String = """
    #if defined(__OPENCL_VERSION__)
    /* OpenCL C */
    #define KERNEL(threads) __kernel __attribute__((reqd_work_group_size(threads, 1, 1)))
    #define KERNEL_ANY __kernel
    #define GLOBAL __global
    #define SHARED __local
    #define SHARED_PTR __local
    #define DEVICE_INLINE static inline
    #define RESTRICT restrict
    #define BARRIER() barrier(CLK_LOCAL_MEM_FENCE)
    #define THREAD_X ((int)get_local_id(0))
    #define BLOCK_X ((int)get_group_id(0))
    #define BLOCK_Y ((int)get_group_id(1))
    #define BLOCK_DIM_X ((int)get_local_size(0))
    #define GLOBAL_ID_X ((int)get_global_id(0))
    #define GLOBAL_SIZE_X ((int)get_global_size(0))
    #define GRID_BLOCKS_X ((int)get_num_groups(0))
    #define INT64 long
    #define NAN_F NAN
    #define expf(x) exp(x)
    #define logf(x) log(x)
    #define sqrtf(x) sqrt(x)
    #define fmaf(a, b, c) fma(a, b, c)
    #define fmaxf(a, b) fmax(a, b)
    #define expm1f(x) expm1(x)
    #define log1pf(x) log1p(x)
    #define tanhf(x) tanh(x)
    #define fabsf(x) fabs(x)
    #define floorf(x) floor(x)
    /* A product never fused into an FMA: kernels that follow the CPU's rounding turn contraction
       off (FP_CONTRACT_OFF … FP_CONTRACT_DEFAULT) around their text. */
    #define MUL_RN(a, b) ((a) * (b))
    #define FP_CONTRACT_OFF _Pragma("OPENCL FP_CONTRACT OFF")
    #define FP_CONTRACT_DEFAULT _Pragma("OPENCL FP_CONTRACT DEFAULT")
    /* Float64 for the gradient norm's sums of squares where the device has it (as on the CPU). */
    #if defined(cl_khr_fp64)
    #pragma OPENCL EXTENSION cl_khr_fp64 : enable
    #define NORM_FLOAT double
    #elif defined(__opencl_c_fp64)
    #define NORM_FLOAT double
    #else
    #define NORM_FLOAT float
    #endif
    #define KERNEL_OCCUPANCY(threads, blocks) KERNEL(threads)
    #define LOAD_FLOAT4(p) vload4(0, p)
    #define STORE_FLOAT4(v, p) vstore4(v, 0, p)
    #define FLOAT4(x, y, z, w) ((float4)(x, y, z, w))
    #elif defined(__CUDACC_RTC__) || defined(__CUDACC__)
    /* CUDA C++ (NVRTC): unmangled entry points, launch bounds from the block size. */
    #define KERNEL(threads) extern "C" __global__ __launch_bounds__(threads)
    #define KERNEL_ANY extern "C" __global__
    #define KERNEL_OCCUPANCY(threads, blocks) extern "C" __global__ __launch_bounds__(threads, blocks)
    #define LOAD_FLOAT4(p) (*(const float4*)(p))
    #define STORE_FLOAT4(v, p) (*(float4*)(p) = (v))
    #define FLOAT4(x, y, z, w) make_float4(x, y, z, w)
    #define GLOBAL
    #define SHARED __shared__
    #define SHARED_PTR
    #define DEVICE_INLINE static __device__ __forceinline__
    #define RESTRICT __restrict__
    #define BARRIER() __syncthreads()
    #define THREAD_X ((int)threadIdx.x)
    #define BLOCK_X ((int)blockIdx.x)
    #define BLOCK_Y ((int)blockIdx.y)
    #define BLOCK_DIM_X ((int)blockDim.x)
    #define GLOBAL_ID_X ((int)(blockIdx.x * blockDim.x + threadIdx.x))
    #define GLOBAL_SIZE_X ((int)(gridDim.x * blockDim.x))
    #define GRID_BLOCKS_X ((int)gridDim.x)
    #define INT64 long long
    #define NAN_F __int_as_float(0x7fc00000)
    #define NORM_FLOAT double
    /* NVRTC fuses a·b + c into an FMA by default; __fmul_rn is never fused. */
    #define MUL_RN(a, b) __fmul_rn(a, b)
    #define FP_CONTRACT_OFF
    #define FP_CONTRACT_DEFAULT
    #else
    #error "MLPKit kernels compile as OpenCL C or with NVRTC"
    #endif

    /* The product kernels are instantiated once per block tile (GemmKernels): G_BM… name the
       instance's tile. Threads per block; shared row strides (padded by 4 floats, keeping 16-byte
       alignment); float4 chunks each thread loads per operand stage. */
    #define G_THREADS ((G_BM / G_TM) * (G_BN / G_TN))
    #define G_AS_LD (G_BM + 4)
    #define G_BS_LD (G_BN + 4)
    #define G_A_LOADS (G_BM * G_BK / (4 * G_THREADS))
    #define G_B_LOADS (G_BN * G_BK / (4 * G_THREADS))
    /* A product kernel's two shared stages of each operand, as float pointers `as`, `bs`: static
       arrays, or (CUDA, G_DYNAMIC_SHARED) the block's dynamic shared memory for stages beyond the
       48 KB a kernel may declare statically. */
    #define GEMM_CAT_(a, b) a##b
    #define GEMM_CAT(a, b) GEMM_CAT_(a, b)
    #define GEMM_SHARED_TILES(as, bs) GEMM_CAT(GEMM_SHARED_TILES_, G_DYNAMIC_SHARED)(as, bs)
    #define GEMM_SHARED_TILES_0(as, bs) \
        SHARED float4 as##_stages[G_BK * G_AS_LD / 2]; \
        SHARED float4 bs##_stages[G_BK * G_BS_LD / 2]; \
        SHARED_PTR float* as = (SHARED_PTR float*)as##_stages; \
        SHARED_PTR float* bs = (SHARED_PTR float*)bs##_stages;
    #if defined(__OPENCL_VERSION__)
    #define GEMM_SHARED_TILES_1(as, bs) GEMM_SHARED_TILES_0(as, bs)
    #else
    #define GEMM_SHARED_TILES_1(as, bs) \
        extern __shared__ float4 gemm_dynamic_shared[]; \
        float* as = (float*)gemm_dynamic_shared; \
        float* bs = as + 2 * G_BK * G_AS_LD;
    #endif
    /* Epilogue codes (KernelEpilogue). */
    #define EPILOGUE_NONE 0
    #define EPILOGUE_BIAS 1
    #define EPILOGUE_BIAS_RELU 2
    #define EPILOGUE_RELU_MASK 3
    /* Target encodings (KernelTargetKind). */
    #define TARGET_CLASS_INDICES 0
    #define TARGET_DENSE 1
    /* A class-index target read as its class: a whole number in [0, classes), or −1 for anything
       else (a fraction, a negative, NaN, ±∞, a class the output does not have), which every loss
       kernel turns into a NaN row loss, as the CPU backend does (LossKernels.classLabel). */
    DEVICE_INLINE int class_label(const float value, const int classes)
    {
        return (value >= 0.0f && value < 2147483648.0f && value == floorf(value) && (int)value < classes)
            ? (int)value : -1;
    }
    /* Loss codes of loss_wide (KernelLossKind). */
    #define LOSS_MSE 0
    #define LOSS_CROSS_ENTROPY 1
    #define LOSS_BINARY_CROSS_ENTROPY 2

    """
}
