import Foundation

/// NVRTC (`libnvrtc.so.13`), loaded with `dlopen` to compile the kernels for sm_90 without a GPU.
///
/// Looked up in `$MLPKIT_NVRTC` (the library or its folder), the default search path,
/// `$CUDA_HOME/lib64`, `/usr/local/cuda/lib64`, and NVIDIA's pip wheels (`nvidia/cu13/lib`,
/// `nvidia/cuda_nvrtc/lib`) in python3's site-packages. NVRTC opens its builtins library by name,
/// so the builtins beside the library found are loaded first.
final class NVRTCCompiler {
    typealias CreateProgram = @convention(c) (
        UnsafeMutablePointer<OpaquePointer?>?, UnsafePointer<CChar>?, UnsafePointer<CChar>?, Int32,
        UnsafePointer<UnsafePointer<CChar>?>?, UnsafePointer<UnsafePointer<CChar>?>?) -> Int32
    typealias CompileProgram = @convention(c) (OpaquePointer?, Int32, UnsafePointer<UnsafePointer<CChar>?>?) -> Int32
    typealias GetSize = @convention(c) (OpaquePointer?, UnsafeMutablePointer<Int>?) -> Int32
    typealias GetText = @convention(c) (OpaquePointer?, UnsafeMutablePointer<CChar>?) -> Int32
    typealias DestroyProgram = @convention(c) (UnsafeMutablePointer<OpaquePointer?>?) -> Int32
    typealias ErrorString = @convention(c) (Int32) -> UnsafePointer<CChar>?
    typealias Version = @convention(c) (UnsafeMutablePointer<Int32>?, UnsafeMutablePointer<Int32>?) -> Int32

    enum Failure: Error, CustomStringConvertible {
        case notFound([String])
        case missingSymbol(String)
        case call(String, String)

        var description: String {
            switch self {
            case let .notFound(tried): "NVRTC not found (tried \(tried.joined(separator: ", ")))"
            case let .missingSymbol(name): "NVRTC lacks \(name)"
            case let .call(name, message): "\(name) failed: \(message)"
            }
        }
    }

    /// The outcome of one compilation.
    struct Result {
        var succeeded: Bool
        var log: String
        var cubinBytes: Int
    }

    let path: String
    let version: String
    private let createProgram: CreateProgram
    private let compileProgram: CompileProgram
    private let getLogSize: GetSize
    private let getLog: GetText
    private let getCubinSize: GetSize
    private let destroyProgram: DestroyProgram
    private let errorString: ErrorString

    init() throws {
        let candidates = Self.candidates()
        guard let (handle, path) = candidates.lazy.compactMap({ name in
            Self.preloadBuiltins(besides: name)
            return dlopen(name, RTLD_NOW | RTLD_LOCAL).map { ($0, name) }
        }).first else {
            throw Failure.notFound(candidates)
        }
        self.path = path
        func symbol<T>(_ name: String) throws -> T {
            guard let address = dlsym(handle, name) else { throw Failure.missingSymbol(name) }
            return unsafeBitCast(address, to: T.self)
        }
        createProgram = try symbol("nvrtcCreateProgram")
        compileProgram = try symbol("nvrtcCompileProgram")
        getLogSize = try symbol("nvrtcGetProgramLogSize")
        getLog = try symbol("nvrtcGetProgramLog")
        getCubinSize = try symbol("nvrtcGetCUBINSize")
        destroyProgram = try symbol("nvrtcDestroyProgram")
        errorString = try symbol("nvrtcGetErrorString")
        let versionCall: Version = try symbol("nvrtcVersion")
        var major: Int32 = 0, minor: Int32 = 0
        _ = versionCall(&major, &minor)
        version = "\(major).\(minor)"
    }

    /// Compiles `source` with `options`; the log holds ptxas' report when asked for.
    func compile(_ source: String, name: String, options: [String]) throws -> Result {
        var program: OpaquePointer?
        try check(createProgram(&program, source, name, 0, nil, nil), "nvrtcCreateProgram")
        defer { _ = destroyProgram(&program) }
        let status = withCStrings(options) { compileProgram(program, Int32(options.count), $0) }
        var logSize = 0
        try check(getLogSize(program, &logSize), "nvrtcGetProgramLogSize")
        var logBytes = [CChar](repeating: 0, count: max(logSize, 1))
        try check(getLog(program, &logBytes), "nvrtcGetProgramLog")
        let log = String(decoding: logBytes.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
        var cubinBytes = 0
        if status == 0 { try check(getCubinSize(program, &cubinBytes), "nvrtcGetCUBINSize") }
        return Result(succeeded: status == 0, log: status == 0 ? log : "\(message(status))\n\(log)", cubinBytes: cubinBytes)
    }

    private func check(_ status: Int32, _ call: String) throws {
        if status != 0 { throw Failure.call(call, message(status)) }
    }

    private func message(_ status: Int32) -> String {
        errorString(status).map { String(cString: $0) } ?? "NVRTC error \(status)"
    }

    private func withCStrings<R>(_ strings: [String], _ body: (UnsafePointer<UnsafePointer<CChar>?>?) -> R) -> R {
        let copies = strings.map { strdup($0) }
        defer { copies.forEach { free($0) } }
        let pointers = copies.map { UnsafePointer($0) }
        return pointers.withUnsafeBufferPointer { body($0.baseAddress) }
    }

    /// Library paths and names to try, most specific first.
    static func candidates() -> [String] {
        let environment = ProcessInfo.processInfo.environment
        var names: [String] = []
        if let override = environment["MLPKIT_NVRTC"], !override.isEmpty {
            var isFolder: ObjCBool = false
            if FileManager.default.fileExists(atPath: override, isDirectory: &isFolder), isFolder.boolValue {
                names.append("\(override)/libnvrtc.so.13")
            } else {
                names.append(override)
            }
        }
        names.append("libnvrtc.so.13")
        var folders: [String] = []
        if let cudaHome = environment["CUDA_HOME"] { folders.append("\(cudaHome)/lib64") }
        folders.append("/usr/local/cuda/lib64")
        for sitePackages in pythonSitePackages() {
            folders += ["\(sitePackages)/nvidia/cu13/lib", "\(sitePackages)/nvidia/cuda_nvrtc/lib"]
        }
        names += folders.map { "\($0)/libnvrtc.so.13" }.filter { FileManager.default.fileExists(atPath: $0) }
        return names
    }

    /// python3's site-packages folders (empty without python3).
    static func pythonSitePackages() -> [String] {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        process.arguments = ["python3", "-c",
                             "import site; print('\\n'.join(site.getsitepackages() + [site.getusersitepackages()]))"]
        let pipe = Pipe()
        process.standardOutput = pipe
        process.standardError = FileHandle.nullDevice
        guard (try? process.run()) != nil else { return [] }
        let data = pipe.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        return String(decoding: data, as: UTF8.self).split(separator: "\n").map(String.init)
    }

    /// Loads libnvrtc-builtins from the folder of `library` (when it names a path) so NVRTC's own
    /// `dlopen` of the builtins by name finds it.
    static func preloadBuiltins(besides library: String) {
        guard library.contains("/") else { return }
        let folder = (library as NSString).deletingLastPathComponent
        let builtins = (try? FileManager.default.contentsOfDirectory(atPath: folder))?
            .filter { $0.hasPrefix("libnvrtc-builtins.so.") }.sorted() ?? []
        for name in builtins { _ = dlopen("\(folder)/\(name)", RTLD_NOW | RTLD_GLOBAL) }
    }
}

/// One kernel's line of ptxas' verbose report.
struct PTXASReport: CustomStringConvertible {
    var kernel: String
    var registers = 0
    var sharedBytes = 0
    var stackBytes = 0
    var spillStores = 0
    var spillLoads = 0

    var description: String {
        let name = kernel.padding(toLength: 28, withPad: " ", startingAt: 0)
        return "\(name) \(registers) registers, \(sharedBytes) B smem, \(stackBytes) B stack, "
            + "\(spillStores) B spill stores, \(spillLoads) B spill loads"
    }

    /// Parses `--ptxas-options=-v` output: "Compiling entry function 'k'", "Function properties
    /// for k / N bytes stack frame, N bytes spill stores, N bytes spill loads", "Used N registers,
    /// ... N bytes smem".
    static func parse(_ log: String) -> [PTXASReport] {
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
        guard let start = line.range(of: prefix) else { return nil }
        let rest = line[start.upperBound...]
        return rest.firstIndex(of: "'").map { String(rest[..<$0]) }
    }

    /// The integer just before `suffix` in `line`.
    private static func number(_ line: String, before suffix: String) -> Int? {
        guard let end = line.range(of: suffix) else { return nil }
        let digits = line[..<end.lowerBound].reversed().prefix { $0.isNumber }
        return Int(String(digits.reversed()))
    }
}
