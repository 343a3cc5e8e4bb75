import Foundation
import XCTest

/// What the sources import decides what the static `mlp` binary for the GPU machine weighs:
/// with full Foundation (its internationalisation data) it is about 60 MB, with
/// FoundationEssentials about 17 MB, and everything carried to the GPU machine, the packed
/// tests included, must fit 64 MiB (../shared/GPU.md).
final class SourceImportTests: XCTestCase {
    func testSourcesImportFoundationEssentialsNotFoundation() throws {
        let sources = URL(fileURLWithPath: #filePath)
            .deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
            .appendingPathComponent("Sources")
        let files = try XCTUnwrap(FileManager.default.enumerator(at: sources, includingPropertiesForKeys: nil))
        var checked = 0
        var offenders: [String] = []
        for case let file as URL in files where file.pathExtension == "swift" {
            checked += 1
            let lines = try String(contentsOf: file, encoding: .utf8).split(separator: "\n")
            if lines.contains(where: { $0.trimmingCharacters(in: .whitespaces) == "import Foundation" }) {
                offenders.append(file.lastPathComponent)
            }
        }
        XCTAssertGreaterThan(checked, 50, "the sources were not found at \(sources.path)")
        XCTAssertEqual(offenders, [], "import FoundationEssentials (or Glibc) instead of Foundation in these files")
    }
}
