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
    #define INT64 long
    #define NAN_F NAN
    #define expf(x) exp(x)
    #define logf(x) log(x)
    #define sqrtf(x) sqrt(x)
    #define fmaf(a, b, c) fma(a, b, c)
    #define fmaxf(a, b) fmax(a, b)
    #define expm1f(x) expm1(x)
    #define log1pf(x) log1p(x)
    #elif defined(__CUDACC_RTC__) || defined(__CUDACC__)
    /* CUDA C++ (NVRTC): unmangled entry points, launch bounds from the block size. */
    #define KERNEL(threads) extern "C" __global__ __launch_bounds__(threads)
    #define KERNEL_ANY extern "C" __global__
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
    #define INT64 long long
    #define NAN_F __int_as_float(0x7fc00000)
    #else
    #error "MLPKit kernels compile as OpenCL C or with NVRTC"
    #endif

    /* Threads per block of the product kernels, from the tile sizes. */
    #define GEMM_THREADS ((BM / TM) * (BN / TN))
    /* Row stride of the shared tiles: padded against bank conflicts on tile stores. */
    #define AS_LD (BM + TILE_PAD)
    #define BS_LD (BN + TILE_PAD)
    /* Epilogue codes (KernelEpilogue). */
    #define EPILOGUE_NONE 0
    #define EPILOGUE_BIAS 1
    #define EPILOGUE_BIAS_RELU 2
    #define EPILOGUE_RELU_MASK 3
    /* Target encodings (KernelTargetKind). */
    #define TARGET_CLASS_INDICES 0
    #define TARGET_DENSE 1

    """
}
