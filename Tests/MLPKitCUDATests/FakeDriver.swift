import BackendTestSupport
import Foundation
import XCTest
@testable import MLPKitCUDA

/// A stand-in for `libcuda.so.1`, compiled from C with the toolchain's clang, so that the
/// backend's driver-facing code runs without a GPU: the loader resolves every symbol, device
/// queries, memory (host memory standing in for device memory, with range checks), module
/// loading of the real NVRTC cubin, every launch's geometry and arguments (decoded with each
/// kernel's real signature), graph building with the real `CUDA_KERNEL_NODE_PARAMS_v2` struct
/// from cuda.h, in-place patching and replay. Kernels do not compute, except `advance_step`.
///
/// It checks MLPKit against MLPKit's reading of the driver API (struct layout as a C compiler
/// lays it out, call sequences, argument order), not against NVIDIA's driver.
enum FakeDriver {
    /// The compiled library, built once per test process; nil with the reason when clang is missing.
    static let library: Result<String, FakeDriverUnavailable> = build()

    struct FakeDriverUnavailable: Error, CustomStringConvertible {
        var description: String
    }

    /// The driver loaded from the fake library (a fresh `CUDADriver` over the same `dlopen` handle).
    static func driver() throws -> CUDADriver {
        let path: String
        switch library {
        case let .success(built): path = built
        // these tests need no GPU, only a C compiler: in CI a failed build fails them
        case let .failure(reason): try missingTool("fake driver unavailable: \(reason)")
        }
        let driver = try CUDADriver(library: SharedLibrary.open("libcuda", candidates: [path]))
        try driver.check(driver.initialize(0), "cuInit")
        return driver
    }

    /// A `dlsym` of one of the fake's own inspection functions.
    static func function<T>(_ name: String, as type: T.Type = T.self) throws -> T {
        guard case let .success(path) = library, let handle = dlopen(path, RTLD_NOW | RTLD_LOCAL),
              let address = dlsym(handle, name) else {
            try missingTool("fake driver unavailable: \(library)")
        }
        return unsafeBitCast(address, to: T.self)
    }

    typealias IntQuery = @convention(c) () -> Int32
    typealias IndexQuery = @convention(c) (Int32) -> UnsafePointer<CChar>?
    typealias ArgumentQuery = @convention(c) (Int32, Int32) -> UInt64
    typealias GeometryQuery = @convention(c) (Int32, UnsafeMutablePointer<UInt32>?) -> Void
    typealias ArityQuery = @convention(c) (Int32) -> Int32
    typealias SetInt = @convention(c) (Int32) -> Void
    typealias Reset = @convention(c) () -> Void
    typealias Signature = @convention(c) (UnsafePointer<CChar>?) -> UnsafePointer<CChar>?

    /// One launch the fake saw (direct, or a node of a replayed graph).
    struct Launch: Equatable, CustomStringConvertible {
        var kernel: String
        var grid: [UInt32]
        var block: [UInt32]
        var sharedBytes: UInt32
        var arguments: [UInt64]
        var fromGraph: Bool

        var description: String { "\(kernel) grid \(grid) block \(block)\(fromGraph ? " (graph)" : "")" }
    }

    static func reset() throws { try function("fake_reset", as: Reset.self)() }
    static func counter(_ name: String) throws -> Int { Int(try function("fake_\(name)", as: IntQuery.self)()) }
    typealias NamedQuery = @convention(c) (UnsafePointer<CChar>) -> Int32
    /// The dynamic shared memory limit the backend set on `kernel` (`cuFuncSetAttribute`).
    static func dynamicShared(_ kernel: String) throws -> Int {
        Int(try function("fake_dynamic_shared", as: NamedQuery.self)(kernel))
    }
    static func setInitFailure(_ code: Int32) throws { try function("fake_set_init_failure", as: SetInt.self)(code) }
    static func setDeviceCount(_ count: Int32) throws { try function("fake_set_device_count", as: SetInt.self)(count) }
    static func signature(_ kernel: String) throws -> String? {
        try function("fake_signature", as: Signature.self)(kernel).map { String(cString: $0) }
    }

    /// Every launch since the last reset, in order.
    static func launches() throws -> [Launch] {
        let count = try counter("launch_count")
        let name = try function("fake_launch_name", as: IndexQuery.self)
        let argument = try function("fake_launch_argument", as: ArgumentQuery.self)
        let arity = try function("fake_launch_arity", as: ArityQuery.self)
        let geometry = try function("fake_launch_geometry", as: GeometryQuery.self)
        return (0..<Int32(count)).map { index in
            var values = [UInt32](repeating: 0, count: 8)
            geometry(index, &values)
            return Launch(kernel: name(index).map { String(cString: $0) } ?? "?", grid: Array(values[0..<3]),
                          block: Array(values[3..<6]), sharedBytes: values[6],
                          arguments: (0..<arity(index)).map { argument(index, $0) }, fromGraph: values[7] != 0)
        }
    }

    /// Builds the library once per machine and source text (a folder named by the source's hash,
    /// written under a temporary name and renamed, so concurrent test processes agree).
    private static func build() -> Result<String, FakeDriverUnavailable> {
        var hash: UInt64 = 0xCBF2_9CE4_8422_2325   // FNV-1a of the source
        for byte in source.utf8 { hash = (hash ^ UInt64(byte)) &* 0x0000_0100_0000_01B3 }
        let folder = FileManager.default.temporaryDirectory
            .appendingPathComponent("mlpkit-fake-cuda-\(getuid())-\(String(hash, radix: 16))", isDirectory: true)
        let library = folder.appendingPathComponent("libcuda.so.1")
        if FileManager.default.fileExists(atPath: library.path) { return .success(library.path) }
        let source = folder.appendingPathComponent("fake_cuda.c")
        let partial = folder.appendingPathComponent("libcuda.\(getpid()).so")
        do {
            try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
            try FakeDriver.source.write(to: source, atomically: true, encoding: .utf8)
        } catch {
            return .failure(FakeDriverUnavailable(description: "cannot write \(source.path): \(error)"))
        }
        for compiler in ["clang", "cc", "gcc"] {
            let process = Process()
            process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
            process.arguments = [compiler, "-shared", "-fPIC", "-O1", "-std=c11", "-Wall", "-Werror", "-o", partial.path, source.path]
            let errors = Pipe()
            process.standardError = errors
            process.standardOutput = FileHandle.nullDevice
            guard (try? process.run()) != nil else { continue }
            let message = String(decoding: errors.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
            process.waitUntilExit()
            if process.terminationStatus == 0 {
                guard rename(partial.path, library.path) == 0 else {
                    return .failure(FakeDriverUnavailable(description: "cannot rename \(partial.path)"))
                }
                return .success(library.path)
            }
            if !message.contains("not found") && !message.contains("No such file") {
                return .failure(FakeDriverUnavailable(description: "\(compiler) failed on the fake driver:\n\(message)"))
            }
        }
        return .failure(FakeDriverUnavailable(description: "no C compiler (clang, cc, gcc) to build the fake driver"))
    }

    /// The fake driver's C source.
    static let source = #"""
    #include <stdint.h>
    #include <stdlib.h>
    #include <string.h>

    typedef int CUresult;
    typedef int CUdevice;
    typedef unsigned long long CUdeviceptr;
    typedef struct CUfunc_st* CUfunction;
    typedef struct CUkern_st* CUkernel;
    typedef struct CUctx_st* CUcontext;

    /* cuda.h (CUDA 12 and 13), verbatim */
    typedef struct CUDA_KERNEL_NODE_PARAMS_v2_st {
      CUfunction func;
      unsigned int gridDimX;
      unsigned int gridDimY;
      unsigned int gridDimZ;
      unsigned int blockDimX;
      unsigned int blockDimY;
      unsigned int blockDimZ;
      unsigned int sharedMemBytes;
      void** kernelParams;
      void** extra;
      CUkernel kern;
      CUcontext ctx;
    } CUDA_KERNEL_NODE_PARAMS_v2;

    _Static_assert(sizeof(CUDA_KERNEL_NODE_PARAMS_v2) == 72, "layout");

    /* Each kernel's parameters in order: i = int, f = float, p = pointer (from KernelSource). */
    typedef struct { const char* name; const char* signature; } Kernel;
    static Kernel kernels[] = {
      {"gemm_nt", "iiipipipiipii"}, {"gemm_tn", "iiipipipiipii"}, {"gemm_nn", "iiipipipiipii"},
      {"gemm_nt_compact", "iiipipipiipii"}, {"gemm_tn_compact", "iiipipipiipii"},
      {"gemm_nn_compact", "iiipipipiipii"}, {"gemm_splitk_sum", "iiipipiipi"}, {"loss_wide", "iiiipipiipiipipip"},
      {"column_sums", "iipipi"}, {"loss_mse", "iiipipiipiipipip"}, {"loss_softmax_cross_entropy", "iiipipiipiipipip"},
      {"sum_reduce", "ippi"}, {"gather_rows", "iiipipipi"}, {"adam_update", "ipipipipiffffp"},
      {"advance_step", "p"},
      {"loss_binary_cross_entropy", "iiipipiipiipipip"}, {"activation_forward", "iifpipi"}, {"activation_derivative", "iifpipi"},
      {"gradient_norm_partials", "ipip"}, {"clip_scale", "ifp"}, {"adamw_update", "ipipipipifffffpp"},
    };
    enum { KERNELS = sizeof(kernels) / sizeof(kernels[0]) };

    const char* fake_signature(const char* name) {
      for (int i = 0; i < KERNELS; ++i) if (strcmp(kernels[i].name, name) == 0) return kernels[i].signature;
      return 0;
    }

    /* memory: host allocations standing in for device memory */
    typedef struct { uintptr_t base; size_t size; } Allocation;
    static Allocation allocations[1 << 16];
    static int allocationCount = 0, liveAllocations = 0, badPointers = 0;

    static int inside(uintptr_t p, size_t bytes) {
      for (int i = 0; i < allocationCount; ++i)
        if (allocations[i].base && p >= allocations[i].base && p + bytes <= allocations[i].base + allocations[i].size) return 1;
      return 0;
    }

    /* launches seen: direct ones and graph replays' nodes */
    typedef struct {
      const Kernel* kernel; unsigned geometry[8]; unsigned long long arguments[16]; int arity;
    } Launch;
    static Launch launches[1 << 14];
    static int launchCount = 0;
    static int initFailure = 0, deviceCount = 1;
    static int graphsCreated = 0, nodesAdded = 0, instantiations = 0, nodePatches = 0, graphLaunches = 0;
    static int contextRetains = 0, contextReleases = 0, modulesLoaded = 0;

    void fake_reset(void) {
      launchCount = 0; badPointers = 0; graphsCreated = 0; nodesAdded = 0; instantiations = 0; nodePatches = 0;
      graphLaunches = 0; initFailure = 0; deviceCount = 1;
    }
    void fake_set_init_failure(int code) { initFailure = code; }
    void fake_set_device_count(int count) { deviceCount = count; }
    int fake_launch_count(void) { return launchCount; }
    int fake_bad_pointers(void) { return badPointers; }
    int fake_graphs_created(void) { return graphsCreated; }
    int fake_nodes_added(void) { return nodesAdded; }
    int fake_instantiations(void) { return instantiations; }
    int fake_node_patches(void) { return nodePatches; }
    int fake_graph_launches(void) { return graphLaunches; }
    int fake_live_allocations(void) { return liveAllocations; }
    int fake_context_balance(void) { return contextRetains - contextReleases; }
    int fake_modules_loaded(void) { return modulesLoaded; }
    const char* fake_launch_name(int i) { return launches[i].kernel->name; }
    int fake_launch_arity(int i) { return launches[i].arity; }
    unsigned long long fake_launch_argument(int i, int a) { return launches[i].arguments[a]; }
    void fake_launch_geometry(int i, unsigned* out) { memcpy(out, launches[i].geometry, sizeof launches[i].geometry); }

    /* a parameter set decoded with the kernel's signature */
    typedef struct {
      const Kernel* kernel; unsigned geometry[7]; unsigned long long arguments[16]; int arity; void* node;
    } Node;

    static CUresult decode(const Kernel* kernel, void** params, unsigned long long* out, int* arity) {
      if (!params) return 1;
      int n = (int)strlen(kernel->signature);
      for (int a = 0; a < n; ++a) {
        if (!params[a]) return 1;
        char kind = kernel->signature[a];
        if (kind == 'p') {
          unsigned long long value; memcpy(&value, params[a], 8); out[a] = value;
          if (value && !inside((uintptr_t)value, 4)) badPointers++;
        } else {
          uint32_t value; memcpy(&value, params[a], 4); out[a] = value;
        }
      }
      *arity = n;
      return 0;
    }

    /* runs what the fake can run: advance_step */
    static void run(const Kernel* kernel, const unsigned long long* arguments, const unsigned* geometry, int fromGraph) {
      if (launchCount >= (1 << 14)) launchCount = 0;  /* tests reset long before */
      Launch* l = &launches[launchCount++];
      l->kernel = kernel; memcpy(l->geometry, geometry, 7 * sizeof(unsigned)); l->geometry[7] = (unsigned)fromGraph;
      l->arity = (int)strlen(kernel->signature);
      memcpy(l->arguments, arguments, sizeof l->arguments);
      if (strcmp(kernel->name, "advance_step") == 0 && arguments[0] && inside((uintptr_t)arguments[0], 4))
        ++*(int*)(uintptr_t)arguments[0];
    }

    CUresult cuInit(unsigned flags) { (void)flags; return initFailure; }
    CUresult cuDriverGetVersion(int* v) { *v = 13000; return 0; }
    CUresult cuDeviceGetCount(int* n) { *n = deviceCount; return 0; }
    CUresult cuDeviceGet(CUdevice* d, int ordinal) { if (ordinal < 0 || ordinal >= deviceCount) return 101; *d = ordinal; return 0; }
    CUresult cuDeviceGetName(char* name, int length, CUdevice d) { (void)d; strncpy(name, "MLPKit Fake GPU", (size_t)length); return 0; }
    CUresult cuDeviceTotalMem_v2(size_t* bytes, CUdevice d) { (void)d; *bytes = (size_t)80 << 30; return 0; }
    CUresult cuDeviceGetAttribute(int* value, int attribute, CUdevice d) {
      (void)d;
      switch (attribute) {
        case 1: *value = 1024; break; case 6: *value = 65535; break; case 8: *value = 49152; break;
        case 13: *value = 1980000; break; case 16: *value = 132; break; case 36: *value = 2619000; break;
        case 37: *value = 5120; break; case 38: *value = 50 << 20; break; case 75: *value = 9; break;
        case 76: *value = 0; break; case 97: *value = 232448; break; default: *value = 0;
      }
      return 0;
    }
    static int contextObject;
    CUresult cuDevicePrimaryCtxRetain(void** context, CUdevice d) { (void)d; contextRetains++; *context = &contextObject; return 0; }
    CUresult cuDevicePrimaryCtxRelease_v2(CUdevice d) { (void)d; contextReleases++; return 0; }
    CUresult cuCtxSetCurrent(void* context) { return context == &contextObject ? 0 : 201; }
    CUresult cuCtxSynchronize(void) { return 0; }
    CUresult cuMemGetInfo_v2(size_t* free_, size_t* total) { *free_ = (size_t)79 << 30; *total = (size_t)80 << 30; return 0; }
    static int streamObject;
    CUresult cuStreamCreate(void** stream, unsigned flags) { if (flags != 1) return 1; *stream = &streamObject; return 0; }
    CUresult cuStreamDestroy_v2(void* stream) { return stream == &streamObject ? 0 : 400; }
    CUresult cuStreamSynchronize(void* stream) { return stream == &streamObject ? 0 : 400; }

    CUresult cuMemAlloc_v2(CUdeviceptr* pointer, size_t bytes) {
      if (bytes == 0) return 1;
      if (bytes > ((size_t)1 << 30) || allocationCount >= (1 << 16)) return 2;  /* CUDA_ERROR_OUT_OF_MEMORY past 1 GiB */
      void* memory = malloc(bytes);
      memset(memory, 0xFF, bytes);  /* NaN: the backend must clear it */
      allocations[allocationCount++] = (Allocation){(uintptr_t)memory, bytes};
      liveAllocations++;
      *pointer = (CUdeviceptr)(uintptr_t)memory;
      return 0;
    }
    CUresult cuMemFree_v2(CUdeviceptr pointer) {
      for (int i = 0; i < allocationCount; ++i)
        if (allocations[i].base == (uintptr_t)pointer) { free((void*)allocations[i].base); allocations[i].base = 0; liveAllocations--; return 0; }
      return 1;
    }
    CUresult cuMemsetD32Async(CUdeviceptr pointer, unsigned value, size_t count, void* stream) {
      if (stream != &streamObject || !inside((uintptr_t)pointer, count * 4)) return 1;
      for (size_t i = 0; i < count; ++i) memcpy((char*)(uintptr_t)pointer + 4 * i, &value, 4);
      return 0;
    }
    CUresult cuMemcpyHtoDAsync_v2(CUdeviceptr destination, const void* source, size_t bytes, void* stream) {
      if (stream != &streamObject || !inside((uintptr_t)destination, bytes)) return 1;
      memcpy((void*)(uintptr_t)destination, source, bytes); return 0;
    }
    CUresult cuMemcpyDtoHAsync_v2(void* destination, CUdeviceptr source, size_t bytes, void* stream) {
      if (stream != &streamObject || !inside((uintptr_t)source, bytes)) return 1;
      memcpy(destination, (const void*)(uintptr_t)source, bytes); return 0;
    }

    static int moduleObject;
    CUresult cuModuleLoadData(void** module, const void* image) {
      const unsigned char* bytes = image;
      int elf = bytes && bytes[0] == 0x7f && bytes[1] == 'E' && bytes[2] == 'L' && bytes[3] == 'F';
      if (!elf && !(bytes && strstr((const char*)bytes, ".version"))) return 200;  /* CUDA_ERROR_INVALID_IMAGE */
      modulesLoaded++; *module = &moduleObject; return 0;
    }
    CUresult cuModuleUnload(void* module) { return module == &moduleObject ? 0 : 400; }
    CUresult cuModuleGetFunction(void** function, void* module, const char* name) {
      if (module != &moduleObject) return 400;
      for (int i = 0; i < KERNELS; ++i) if (strcmp(kernels[i].name, name) == 0) { *function = &kernels[i]; return 0; }
      return 500;  /* CUDA_ERROR_NOT_FOUND */
    }
    CUresult cuFuncGetAttribute(int* value, int attribute, void* function) {
      (void)function; *value = attribute == 0 ? 1024 : 32; return 0;
    }
    /* CU_FUNC_ATTRIBUTE_MAX_DYNAMIC_SHARED_SIZE_BYTES (8) only, up to the device's opt-in limit */
    static int dynamicShared[KERNELS];
    CUresult cuFuncSetAttribute(void* function, int attribute, int value) {
      const Kernel* kernel = function;
      if (kernel < kernels || kernel >= kernels + KERNELS) return 400;
      if (attribute != 8 || value < 0 || value > 232448) return 1;
      dynamicShared[kernel - kernels] = value; return 0;
    }
    int fake_dynamic_shared(const char* name) {
      for (int i = 0; i < KERNELS; ++i) if (strcmp(kernels[i].name, name) == 0) return dynamicShared[i];
      return -1;
    }
    /* dynamic shared memory past 48 KB needs the function's opt-in */
    static int sharedAllowed(const Kernel* kernel, unsigned shared) {
      return shared <= 49152 || (int)shared <= dynamicShared[kernel - kernels];
    }
    CUresult cuLaunchKernel(void* function, unsigned gx, unsigned gy, unsigned gz, unsigned bx, unsigned by, unsigned bz,
                            unsigned shared, void* stream, void** params, void** extra) {
      if (stream != &streamObject || extra) return 1;
      if (!gx || !gy || !gz || !bx || !by || !bz || bx * by * bz > 1024) return 1;  /* CUDA_ERROR_INVALID_VALUE */
      const Kernel* kernel = function;
      if (!sharedAllowed(kernel, shared)) return 1;
      unsigned long long arguments[16] = {0};
      int arity = 0;
      if (decode(kernel, params, arguments, &arity)) return 1;
      unsigned geometry[7] = {gx, gy, gz, bx, by, bz, shared};
      run(kernel, arguments, geometry, 0);
      return 0;
    }

    static const char* errorName(int code) {
      switch (code) {
        case 0: return "CUDA_SUCCESS"; case 1: return "CUDA_ERROR_INVALID_VALUE"; case 2: return "CUDA_ERROR_OUT_OF_MEMORY";
        case 100: return "CUDA_ERROR_NO_DEVICE"; case 101: return "CUDA_ERROR_INVALID_DEVICE";
        case 200: return "CUDA_ERROR_INVALID_IMAGE"; case 201: return "CUDA_ERROR_INVALID_CONTEXT";
        case 400: return "CUDA_ERROR_INVALID_HANDLE"; case 500: return "CUDA_ERROR_NOT_FOUND"; case 999: return "CUDA_ERROR_UNKNOWN";
        default: return 0;
      }
    }
    static const char* errorString(int code) {
      switch (code) {
        case 0: return "no error"; case 1: return "invalid argument"; case 2: return "out of memory";
        case 100: return "no CUDA-capable device is detected"; case 101: return "invalid device ordinal";
        case 200: return "device kernel image is invalid"; case 201: return "invalid device context";
        case 400: return "invalid resource handle"; case 500: return "named symbol not found"; case 999: return "unknown error";
        default: return 0;
      }
    }
    CUresult cuGetErrorName(CUresult code, const char** name) { *name = errorName(code); return *name ? 0 : 1; }
    CUresult cuGetErrorString(CUresult code, const char** text) { *text = errorString(code); return *text ? 0 : 1; }

    static int eventObjects[2];
    CUresult cuEventCreate(void** event, unsigned flags) { (void)flags; *event = &eventObjects[0]; return 0; }
    CUresult cuEventDestroy_v2(void* event) { (void)event; return 0; }
    CUresult cuEventRecord(void* event, void* stream) { (void)event; return stream == &streamObject ? 0 : 400; }
    CUresult cuEventSynchronize(void* event) { (void)event; return 0; }
    CUresult cuEventElapsedTime_v2(float* milliseconds, void* start, void* end) { (void)start; (void)end; *milliseconds = 1.0f; return 0; }

    /* graphs: a chain of kernel nodes */
    typedef struct { Node nodes[256]; int count; } Graph;
    typedef struct { Graph* graph; Node nodes[256]; int count; } Exec;

    CUresult cuGraphCreate(void** graph, unsigned flags) {
      if (flags) return 1;
      Graph* g = calloc(1, sizeof(Graph)); graphsCreated++; *graph = g; return 0;
    }
    static CUresult decodeNode(const CUDA_KERNEL_NODE_PARAMS_v2* p, Node* node) {
      if (!p || !p->func || p->extra || p->kern || p->ctx) return 1;
      if (!p->gridDimX || !p->gridDimY || !p->gridDimZ || !p->blockDimX || !p->blockDimY || !p->blockDimZ) return 1;
      node->kernel = (const Kernel*)p->func;
      if (!sharedAllowed(node->kernel, p->sharedMemBytes)) return 1;
      unsigned geometry[7] = {p->gridDimX, p->gridDimY, p->gridDimZ, p->blockDimX, p->blockDimY, p->blockDimZ, p->sharedMemBytes};
      memcpy(node->geometry, geometry, sizeof geometry);
      memset(node->arguments, 0, sizeof node->arguments);
      return decode(node->kernel, p->kernelParams, node->arguments, &node->arity);
    }
    CUresult cuGraphAddKernelNode_v2(void** node, void* graph, void* const* dependencies, size_t count,
                                     const CUDA_KERNEL_NODE_PARAMS_v2* params) {
      Graph* g = graph;
      if (!g || g->count >= 256) return 1;
      /* a chain: the first node has no dependency, every other one the node before it */
      if (g->count == 0 ? count != 0 : (count != 1 || dependencies[0] != g->nodes[g->count - 1].node)) return 1;
      Node* n = &g->nodes[g->count];
      if (decodeNode(params, n)) return 1;
      n->node = n; g->count++; nodesAdded++; *node = n; return 0;
    }
    CUresult cuGraphInstantiateWithFlags(void** exec, void* graph, unsigned long long flags) {
      if (flags || !graph) return 1;
      Exec* e = calloc(1, sizeof(Exec)); e->graph = graph; e->count = e->graph->count;
      memcpy(e->nodes, e->graph->nodes, sizeof e->nodes); instantiations++; *exec = e; return 0;
    }
    CUresult cuGraphExecKernelNodeSetParams_v2(void* exec, void* node, const CUDA_KERNEL_NODE_PARAMS_v2* params) {
      Exec* e = exec;
      for (int i = 0; i < e->count; ++i) {
        if (e->nodes[i].node == node) {
          Node updated; if (decodeNode(params, &updated)) return 1;
          if (updated.kernel != e->nodes[i].kernel) return 1;
          updated.node = node; e->nodes[i] = updated; nodePatches++; return 0;
        }
      }
      return 400;
    }
    CUresult cuGraphLaunch(void* exec, void* stream) {
      Exec* e = exec;
      if (!e || stream != &streamObject) return 400;
      for (int i = 0; i < e->count; ++i) run(e->nodes[i].kernel, e->nodes[i].arguments, e->nodes[i].geometry, 1);
      graphLaunches++; return 0;
    }
    CUresult cuGraphExecDestroy(void* exec) { free(exec); return 0; }
    CUresult cuGraphDestroy(void* graph) { free(graph); return 0; }
    """#
}
