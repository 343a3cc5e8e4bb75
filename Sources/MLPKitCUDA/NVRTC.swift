#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// NVRTC, CUDA's run-time compiler, loaded with `dlopen`: it compiles the kernels to a cubin for
/// the device's own architecture, and runs without a GPU (tests compile for sm_90 anywhere).
///
/// Looked up in `$MLPKIT_NVRTC` alone when it is set (the library or its folder); otherwise the
/// default search path, `$CUDA_HOME/lib64`, `$CUDA_PATH/lib64`, `/usr/local/cuda/lib64`, and
/// NVIDIA's pip wheels (`nvidia/cu13/lib`, `nvidia/cuda_nvrtc/lib`) in Python's site-packages.
/// NVRTC opens its builtins library by name, so the builtins beside the library are loaded first.
///
/// ```swift
/// let nvrtc = try NVRTCCompiler()
/// let result = try nvrtc.compile(source, name: "kernels.cu", options: ["--gpu-architecture=sm_90"])
/// if result.succeeded { load(result.cubin) } else { print(result.log) }
/// ```
public final class NVRTCCompiler: @unchecked Sendable {
    typealias CreateProgram = @convention(c) (
        UnsafeMutablePointer<OpaquePointer?>?, UnsafePointer<CChar>?, UnsafePointer<CChar>?, Int32,
        UnsafePointer<UnsafePointer<CChar>?>?, UnsafePointer<UnsafePointer<CChar>?>?) -> Int32
    typealias CompileProgram = @convention(c) (OpaquePointer?, Int32, UnsafePointer<UnsafePointer<CChar>?>?) -> Int32
    typealias GetSize = @convention(c) (OpaquePointer?, UnsafeMutablePointer<Int>?) -> Int32
    typealias GetText = @convention(c) (OpaquePointer?, UnsafeMutablePointer<CChar>?) -> Int32
    typealias DestroyProgram = @convention(c) (UnsafeMutablePointer<OpaquePointer?>?) -> Int32
    typealias ErrorString = @convention(c) (Int32) -> UnsafePointer<CChar>?
    typealias Version = @convention(c) (UnsafeMutablePointer<Int32>?, UnsafeMutablePointer<Int32>?) -> Int32
    typealias NumSupportedArchs = @convention(c) (UnsafeMutablePointer<Int32>?) -> Int32
    typealias SupportedArchs = @convention(c) (UnsafeMutablePointer<Int32>?) -> Int32

    /// The outcome of one compilation: the log (ptxas' report when asked for with
    /// `--ptxas-options=-v`, the errors when it failed) and the machine code.
    public struct Result: Sendable {
        public var succeeded: Bool
        public var log: String
        /// The cubin's size in bytes (0 when compiling to PTX or when it failed).
        public var cubinBytes: Int
        /// The cubin (empty when compiling to PTX with `--gpu-architecture=compute_XY`, or on failure).
        public var cubin: [UInt8]
        /// The PTX text when compiling for a virtual architecture (`compute_XY`).
        public var ptx: String?
    }

    /// The library that loaded.
    public let path: String
    /// NVRTC's version, "13.0".
    public let version: String
    /// The real architectures it compiles cubins for, as numbers: 75, 80, ..., 90, ... (sm_XY).
    public let supportedArchitectures: [Int]

    private let createProgram: CreateProgram
    private let compileProgram: CompileProgram
    private let getLogSize: GetSize
    private let getLog: GetText
    private let getCubinSize: GetSize
    private let getCubin: GetText
    private let getPTXSize: GetSize
    private let getPTX: GetText
    private let destroyProgram: DestroyProgram
    private let errorString: ErrorString

    /// The process-wide compiler, loaded on first use.
    public static let shared: Swift.Result<NVRTCCompiler, CUDAError> = Swift.Result { () throws(CUDAError) in
        try NVRTCCompiler()
    }

    /// Loads NVRTC from the places above.
    /// - Throws: `CUDAError.libraryUnavailable` naming every path tried, `.missingSymbol`.
    public convenience init() throws(CUDAError) {
        let library: SharedLibrary
        do throws(CUDAError) {
            library = try SharedLibrary.open("NVRTC", candidates: Self.candidates(includingPython: false),
                                             prepare: Self.preloadBuiltins(besides:))
        } catch {
            // last resort: ask python3 where its packages are (pip wheels in unusual places)
            guard SharedLibrary.environment("MLPKIT_NVRTC") == nil else { throw error }
            library = try SharedLibrary.open("NVRTC", candidates: Self.candidates(),
                                             prepare: Self.preloadBuiltins(besides:))
        }
        try self.init(library: library)
    }

    /// Loads NVRTC from exactly `path` (a library, or a folder holding `libnvrtc.so.13`).
    public convenience init(path: String) throws(CUDAError) {
        let name = SharedLibrary.override(path, fileName: "libnvrtc.so.13")
        try self.init(library: SharedLibrary.open("NVRTC", candidates: [name], prepare: Self.preloadBuiltins(besides:)))
    }

    private init(library: SharedLibrary) throws(CUDAError) {
        path = library.path
        createProgram = try library.symbol("nvrtcCreateProgram")
        compileProgram = try library.symbol("nvrtcCompileProgram")
        getLogSize = try library.symbol("nvrtcGetProgramLogSize")
        getLog = try library.symbol("nvrtcGetProgramLog")
        getCubinSize = try library.symbol("nvrtcGetCUBINSize")
        getCubin = try library.symbol("nvrtcGetCUBIN")
        getPTXSize = try library.symbol("nvrtcGetPTXSize")
        getPTX = try library.symbol("nvrtcGetPTX")
        destroyProgram = try library.symbol("nvrtcDestroyProgram")
        errorString = try library.symbol("nvrtcGetErrorString")
        let versionCall: Version = try library.symbol("nvrtcVersion")
        var major: Int32 = 0, minor: Int32 = 0
        let status = versionCall(&major, &minor)
        version = status == 0 ? "\(major).\(minor)" : "unknown"
        let countCall: NumSupportedArchs = try library.symbol("nvrtcGetNumSupportedArchs")
        let listCall: SupportedArchs = try library.symbol("nvrtcGetSupportedArchs")
        var count: Int32 = 0
        if countCall(&count) == 0, count > 0 {
            var architectures = [Int32](repeating: 0, count: Int(count))
            supportedArchitectures = listCall(&architectures) == 0 ? architectures.map(Int.init) : []
        } else {
            supportedArchitectures = []
        }
    }

    /// Compiles `source` with `options`. A program NVRTC rejects is a result with
    /// `succeeded == false` and the log; a failing API call throws.
    public func compile(_ source: String, name: String, options: [String]) throws(CUDAError) -> Result {
        var program: OpaquePointer?
        try check(createProgram(&program, source, name, 0, nil, nil), "nvrtcCreateProgram")
        defer { _ = destroyProgram(&program) }
        let status = Self.withCStrings(options) { compileProgram(program, Int32(options.count), $0) }
        var logSize = 0
        try check(getLogSize(program, &logSize), "nvrtcGetProgramLogSize")
        var logBytes = [CChar](repeating: 0, count: max(logSize, 1))
        try check(getLog(program, &logBytes), "nvrtcGetProgramLog")
        let log = Self.string(logBytes)
        guard status == 0 else {
            return Result(succeeded: false, log: "\(message(status))\n\(log)", cubinBytes: 0, cubin: [], ptx: nil)
        }
        let virtual = options.contains { $0.hasPrefix("--gpu-architecture=compute_") || $0.hasPrefix("-arch=compute_") }
        if virtual {
            var size = 0
            try check(getPTXSize(program, &size), "nvrtcGetPTXSize")
            var text = [CChar](repeating: 0, count: max(size, 1))
            try check(getPTX(program, &text), "nvrtcGetPTX")
            return Result(succeeded: true, log: log, cubinBytes: 0, cubin: [], ptx: Self.string(text))
        }
        var size = 0
        try check(getCubinSize(program, &size), "nvrtcGetCUBINSize")
        var cubin = [UInt8](repeating: 0, count: size)
        if size > 0 {
            let status = cubin.withUnsafeMutableBytes { getCubin(program, $0.baseAddress?.assumingMemoryBound(to: CChar.self)) }
            try check(status, "nvrtcGetCUBIN")
        }
        return Result(succeeded: true, log: log, cubinBytes: size, cubin: cubin, ptx: nil)
    }

    private func check(_ status: Int32, _ call: String) throws(CUDAError) {
        if status != 0 { throw .nvrtc(call: call, code: status, message: message(status)) }
    }

    private func message(_ status: Int32) -> String {
        errorString(status).map { String(cString: $0) } ?? "NVRTC error \(status)"
    }

    private static func string(_ bytes: [CChar]) -> String {
        String(decoding: bytes.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }

    private static func withCStrings<R>(_ strings: [String], _ body: (UnsafePointer<UnsafePointer<CChar>?>?) -> R) -> R {
        let copies = strings.map { strdup($0) }
        defer { copies.forEach { free($0) } }
        let pointers = copies.map { $0.map { UnsafePointer($0) } }
        return pointers.withUnsafeBufferPointer { body($0.baseAddress) }
    }

    // MARK: - Where NVRTC is

    /// The library file names tried, newest first.
    static let fileNames = ["libnvrtc.so.13", "libnvrtc.so.12"]

    /// Library paths and names to try, most specific first: `$MLPKIT_NVRTC` alone when set.
    /// - Parameter includingPython: also ask `python3` for its site-packages folders.
    public static func candidates(includingPython: Bool = true) -> [String] {
        if let override = SharedLibrary.environment("MLPKIT_NVRTC") {
            return [SharedLibrary.override(override, fileName: fileNames[0])]
        }
        var folders: [String] = []
        for variable in ["CUDA_HOME", "CUDA_PATH"] {
            if let root = SharedLibrary.environment(variable) { folders.append("\(root)/lib64") }
        }
        folders.append("/usr/local/cuda/lib64")
        folders += SharedLibrary.glob("/usr/local/cuda-1*/lib64")
        var sitePackages = SharedLibrary.likelySitePackages()
        if includingPython { sitePackages += pythonSitePackages() }
        for site in sitePackages {
            folders += ["\(site)/nvidia/cu13/lib", "\(site)/nvidia/cuda_nvrtc/lib"]
        }
        var names = fileNames   // the default search path (LD_LIBRARY_PATH, ldconfig)
        for fileName in fileNames {
            names += SharedLibrary.existing(fileName, in: folders)
        }
        var seen: Set<String> = []
        return names.filter { seen.insert($0).inserted }
    }

    /// python3's site-packages folders (empty without python3).
    public static func pythonSitePackages() -> [String] {
        SharedLibrary.pythonSitePackages()
    }

    /// Loads libnvrtc-builtins from the folder of `library` (when it names a path) so NVRTC's own
    /// `dlopen` of the builtins by name finds it.
    public static func preloadBuiltins(besides library: String) {
        guard let slash = library.lastIndex(of: "/") else { return }
        let folder = String(library[..<slash])
        for builtins in SharedLibrary.glob("\(folder)/libnvrtc-builtins.so.*") where !builtins.contains(".alt.") {
            _ = dlopen(builtins, RTLD_NOW | RTLD_GLOBAL)
        }
    }
}

/// One kernel's line of ptxas' verbose report (`--ptxas-options=-v`).
public struct PTXASReport: CustomStringConvertible, Sendable {
    public var kernel: String
    public var registers = 0
    public var sharedBytes = 0
    public var stackBytes = 0
    public var spillStores = 0
    public var spillLoads = 0

    public init(kernel: String) {
        self.kernel = kernel
    }

    public var description: String {
        let name = kernel.count >= 28 ? kernel : kernel + String(repeating: " ", count: 28 - kernel.count)
        return "\(name) \(registers) registers, \(sharedBytes) B smem, \(stackBytes) B stack, "
            + "\(spillStores) B spill stores, \(spillLoads) B spill loads"
    }

    /// Parses `--ptxas-options=-v` output: "Compiling entry function 'k'", "Function properties
    /// for k / N bytes stack frame, N bytes spill stores, N bytes spill loads", "Used N registers,
    /// ... N bytes smem".
    public static func parse(_ log: String) -> [PTXASReport] {
        var reports: [PTXASReport] = []
        for line in log.split(separator: "\n").map(String.init) {
            if let name = quoted(line, after: "Compiling entry function '") {
                reports.append(PTXASReport(kernel: name))
            } else if !reports.isEmpty {
                let last = reports.count - 1
                if let value = number(line, before: " bytes stack frame") { reports[last].stackBytes = value }
                if let value = number(line, before: " bytes spill stores") { reports[last].spillStores = value }
                if let value = number(line, before: " bytes spill loads") { reports[last].spillLoads = value }
                if let value = number(line, before: " registers") { reports[last].registers = value }
                if let value = number(line, before: " bytes smem") { reports[last].sharedBytes = value }
            }
        }
        return reports
    }

    private static func quoted(_ line: String, after prefix: String) -> String? {
        guard let start = line.firstRange(of: prefix) else { return nil }
        let rest = line[start.upperBound...]
        return rest.firstIndex(of: "'").map { String(rest[..<$0]) }
    }

    /// The integer just before `suffix` in `line`.
    private static func number(_ line: String, before suffix: String) -> Int? {
        guard let end = line.firstRange(of: suffix) else { return nil }
        let digits = line[..<end.lowerBound].reversed().prefix { $0.isNumber }
        return Int(String(digits.reversed()))
    }
}
