#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Errors reading or writing files.
public enum FileError: Error, CustomStringConvertible, Equatable {
    case cannotOpen(path: String, reason: String)
    case readFailed(path: String, reason: String)
    case writeFailed(path: String, reason: String)

    /// What went wrong, without the path.
    public var reason: String {
        switch self {
        case .cannotOpen(_, let reason), .readFailed(_, let reason), .writeFailed(_, let reason): return reason
        }
    }

    public var description: String {
        switch self {
        case let .cannotOpen(path, reason): return "cannot open \(path): \(reason)"
        case let .readFailed(path, reason): return "cannot read \(path): \(reason)"
        case let .writeFailed(path, reason): return "cannot write \(path): \(reason)"
        }
    }
}

/// Whole-file reads and atomic writes.
public enum FileIO {
    static func systemError() -> String {
        String(cString: strerror(errno))
    }

    /// The bytes of the file at `path` (a regular file, or a pipe such as /dev/stdin; devices are
    /// refused, since one like /dev/zero never ends), read with
    /// one allocation sized from `fstat`, grown only if the file is longer than it said.
    /// - Throws: `FileError` when it cannot be opened or read, or is a directory.
    public static func read(_ path: String) throws -> [UInt8] {
        let descriptor = open(path, O_RDONLY)
        guard descriptor >= 0 else { throw FileError.cannotOpen(path: path, reason: systemError()) }
        defer { close(descriptor) }
        var status = stat()
        guard fstat(descriptor, &status) == 0 else { throw FileError.readFailed(path: path, reason: systemError()) }
        let kind = status.st_mode & S_IFMT
        guard kind != S_IFDIR else { throw FileError.readFailed(path: path, reason: "is a directory") }
        // a device such as /dev/zero never ends: read only files and pipes
        guard kind == S_IFREG || kind == S_IFIFO else {
            throw FileError.readFailed(path: path, reason: "not a regular file or a pipe")
        }
        // one spare byte, so a file of exactly the reported size reaches end-of-file without growing
        var bytes = [UInt8](repeating: 0, count: max(Int(status.st_size), 0) + 1)
        var count = 0
        while true {
            if count == bytes.count { bytes.append(contentsOf: repeatElement(0, count: max(bytes.count, 1 << 16))) }
            let got = bytes.withUnsafeMutableBytes { raw -> Int in
                guard let base = raw.baseAddress else { return 0 }
                return Glibc.read(descriptor, base + count, raw.count - count)
            }
            if got < 0 {
                if errno == EINTR { continue }
                throw FileError.readFailed(path: path, reason: systemError())
            }
            if got == 0 { break }
            count += got
        }
        bytes.removeSubrange(count...)
        return bytes
    }

    /// Writes `bytes` to `path` atomically: into a temporary file in the same folder, flushed to
    /// disk, then renamed over `path`. A crash at any moment leaves the old file or the new one.
    /// The temporary file is `.NAME.tmp-PID`; ones a killed writer left for the same `path` are
    /// removed first (see ``removeStaleTemporaries(for:)``).
    /// - Throws: `FileError.writeFailed`; the temporary file is removed on failure.
    public static func writeAtomically(_ bytes: [UInt8], to path: String) throws {
        let folderEnd = path.lastIndex(of: "/")
        let folder = folderEnd.map { String(path[..<$0]) } ?? "."
        let name = folderEnd.map { String(path[path.index(after: $0)...]) } ?? path
        let temporary = (folder.isEmpty ? "/" : folder + "/") + ".\(name).tmp-\(getpid())"
        removeStaleTemporaries(for: path)
        let descriptor = open(temporary, O_WRONLY | O_CREAT | O_TRUNC, 0o644)
        guard descriptor >= 0 else { throw FileError.writeFailed(path: path, reason: systemError()) }
        var done = 0
        let failure: String? = bytes.withUnsafeBytes { buffer in
            while done < bytes.count {
                let count = write(descriptor, buffer.baseAddress! + done, bytes.count - done)
                if count < 0 {
                    if errno == EINTR { continue }
                    return systemError()
                }
                done += count
            }
            return fsync(descriptor) == 0 ? nil : systemError()
        }
        close(descriptor)
        if let failure {
            unlink(temporary)
            throw FileError.writeFailed(path: path, reason: failure)
        }
        guard rename(temporary, path) == 0 else {
            let reason = systemError()
            unlink(temporary)
            throw FileError.writeFailed(path: path, reason: reason)
        }
        // make the rename itself durable
        let folderDescriptor = open(folder.isEmpty ? "/" : folder, O_RDONLY)
        if folderDescriptor >= 0 {
            fsync(folderDescriptor)
            close(folderDescriptor)
        }
    }

    /// Removes the temporary files (`.NAME.tmp-PID` beside `path`) that writers of `path` killed
    /// mid-write left behind: only names of exactly that form, and only when process PID no longer
    /// exists, so a save in progress in another process is never disturbed. Errors are ignored.
    public static func removeStaleTemporaries(for path: String) {
        let folderEnd = path.lastIndex(of: "/")
        let folder = folderEnd.map { String(path[..<$0]) } ?? "."
        let name = folderEnd.map { String(path[path.index(after: $0)...]) } ?? path
        let directory = folder.isEmpty ? "/" : folder
        let prefix = ".\(name).tmp-"
        guard !name.isEmpty, let stream = opendir(directory) else { return }
        var stale: [String] = []
        while let entry = readdir(stream) {
            let entryName = withUnsafePointer(to: &entry.pointee.d_name) {
                String(cString: UnsafeRawPointer($0).assumingMemoryBound(to: CChar.self))
            }
            guard entryName.utf8.starts(with: prefix.utf8) else { continue }
            let digits = entryName.utf8.dropFirst(prefix.utf8.count)
            guard !digits.isEmpty, digits.count <= 10, digits.allSatisfy({ $0 >= UInt8(ascii: "0") && $0 <= UInt8(ascii: "9") }),
                  let pid = pid_t(String(decoding: digits, as: UTF8.self)), pid > 0, pid != getpid()
            else { continue }
            if kill(pid, 0) != 0 && errno == ESRCH { stale.append(entryName) }
        }
        closedir(stream)
        for entryName in stale { unlink(directory + "/" + entryName) }
    }
}
