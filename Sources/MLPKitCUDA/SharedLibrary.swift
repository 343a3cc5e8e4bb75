#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// A library opened with `dlopen`, and the search that finds it: nothing CUDA is needed to build
/// MLPKit, and a machine without it reports what was tried.
struct SharedLibrary: @unchecked Sendable {
    /// The `dlopen` handle (never closed: function pointers from it live as long as the process).
    let handle: UnsafeMutableRawPointer
    /// The name or path that opened.
    let path: String
    /// "libcuda" or "NVRTC", for messages.
    let library: String

    /// Opens the first of `candidates` that loads; `prepare` runs before each attempt.
    static func open(_ library: String, candidates: [String],
                     prepare: (String) -> Void = { _ in }) throws(CUDAError) -> SharedLibrary {
        var reasons: [String] = []
        for name in candidates {
            prepare(name)
            if let handle = dlopen(name, RTLD_NOW | RTLD_LOCAL) {
                return SharedLibrary(handle: handle, path: name, library: library)
            }
            let message = dlerror().map { String(cString: $0) } ?? "not found"
            // a path that does not exist says nothing more than "tried"; anything else does
            if (!name.contains("/") || exists(name)), !reasons.contains(message) { reasons.append(message) }
        }
        throw .libraryUnavailable(library: library, tried: candidates,
                                  reason: reasons.isEmpty ? "no such files" : reasons.joined(separator: "; "))
    }

    /// The function `name`, cast to the `@convention(c)` type `T`.
    func symbol<T>(_ name: String, as type: T.Type = T.self) throws(CUDAError) -> T {
        guard let address = dlsym(handle, name) else { throw .missingSymbol(library: library, symbol: name) }
        return unsafeBitCast(address, to: T.self)
    }

    /// The first of `names` the library exports (newest ABI first), cast to `T`.
    func symbol<T>(firstOf names: [String], as type: T.Type = T.self) throws(CUDAError) -> T {
        for name in names {
            if let address = dlsym(handle, name) { return unsafeBitCast(address, to: T.self) }
        }
        throw .missingSymbol(library: library, symbol: names.joined(separator: " or "))
    }

    // MARK: - Search paths

    /// The value of environment variable `name`, when set and not empty.
    static func environment(_ name: String) -> String? {
        guard let value = getenv(name) else { return nil }
        let text = String(cString: value)
        return text.isEmpty ? nil : text
    }

    /// Whether `path` names a directory.
    static func isDirectory(_ path: String) -> Bool {
        var status = stat()
        return stat(path, &status) == 0 && (status.st_mode & S_IFMT) == S_IFDIR
    }

    /// Whether `path` names something that exists.
    static func exists(_ path: String) -> Bool {
        access(path, F_OK) == 0
    }

    /// An override from the environment: the library itself, or a folder holding `fileName`.
    static func override(_ value: String, fileName: String) -> String {
        isDirectory(value) ? "\(value)/\(fileName)" : value
    }

    /// The paths `pattern` matches (shell wildcards), sorted.
    static func glob(_ pattern: String) -> [String] {
        var result = glob_t()
        defer { globfree(&result) }
        #if canImport(Glibc)
        let status = Glibc.glob(pattern, 0, nil, &result)
        #else
        let status = Darwin.glob(pattern, 0, nil, &result)
        #endif
        guard status == 0 else { return [] }
        return (0..<Int(result.gl_pathc)).compactMap { index in
            result.gl_pathv[index].map { String(cString: $0) }
        }.sorted()
    }

    /// Python site-packages folders found without running Python: the virtual environment,
    /// the user's, pyenv's and the system's.
    static func likelySitePackages() -> [String] {
        var patterns: [String] = []
        if let virtualEnvironment = environment("VIRTUAL_ENV") {
            patterns.append("\(virtualEnvironment)/lib/python3*/site-packages")
        }
        if let conda = environment("CONDA_PREFIX") {
            patterns.append("\(conda)/lib/python3*/site-packages")
        }
        if let home = environment("HOME") {
            patterns += ["\(home)/.local/lib/python3*/site-packages", "\(home)/.pyenv/versions/*/lib/python3*/site-packages"]
        }
        patterns += ["/usr/local/lib/python3*/dist-packages", "/usr/local/lib/python3*/site-packages",
                     "/usr/lib/python3/dist-packages", "/usr/lib/python3*/site-packages",
                     "/opt/conda/lib/python3*/site-packages"]
        return patterns.flatMap(glob)
    }

    /// python3's own site-packages list (runs `python3`; empty without it).
    static func pythonSitePackages() -> [String] {
        let command = "python3 -c 'import site; print(\"\\n\".join(site.getsitepackages() + [site.getusersitepackages()]))' 2>/dev/null"
        guard let pipe = popen(command, "r") else { return [] }
        var output: [UInt8] = []
        var buffer = [UInt8](repeating: 0, count: 4096)
        while true {
            let count = fread(&buffer, 1, buffer.count, pipe)
            if count <= 0 { break }
            output += buffer[0..<count]
        }
        pclose(pipe)
        return String(decoding: output, as: UTF8.self).split(separator: "\n").map(String.init)
    }

    /// `folder/fileName` for each folder where that file exists, without repeats.
    static func existing(_ fileName: String, in folders: [String]) -> [String] {
        var seen: Set<String> = []
        return folders.map { "\($0)/\(fileName)" }.filter { exists($0) && seen.insert($0).inserted }
    }
}

/// A mutual-exclusion lock for the process-wide caches (no Foundation in library targets).
final class Lock: @unchecked Sendable {
    private let mutex: UnsafeMutablePointer<pthread_mutex_t>

    init() {
        mutex = .allocate(capacity: 1)
        mutex.initialize(to: pthread_mutex_t())
        pthread_mutex_init(mutex, nil)
    }

    deinit {
        pthread_mutex_destroy(mutex)
        mutex.deallocate()
    }

    func withLock<T, E: Error>(_ body: () throws(E) -> T) throws(E) -> T {
        pthread_mutex_lock(mutex)
        defer { pthread_mutex_unlock(mutex) }
        return try body()
    }
}
