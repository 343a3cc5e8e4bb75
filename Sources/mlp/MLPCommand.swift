import ArgumentParser
import MLPKit
#if canImport(Glibc)
import Glibc
#endif

@main
struct MLPCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "mlp",
        abstract: "Train and run batched multi-layer perceptrons with Adam, exactly as the math says.",
        subcommands: [TrainCommand.self, EvalCommand.self, PredictCommand.self, InfoCommand.self, ExportCommand.self, DemoCommand.self, DevicesCommand.self, BenchCommand.self, CheckCommand.self]
    )

    /// Results go to stdout; every error is one line `error: …` on stderr with a non-zero exit.
    static func main() {
        do {
            var command = try parseAsRoot()
            // --separator holds for every CSV the command reads, through the library's readers
            try CSVSeparator.$chosen.withValue((command as? ReadsData)?.data.chosenSeparator) {
                try command.run()
            }
        } catch {
            let code = exitCode(for: error)
            if code == .success {
                print(fullMessage(for: error))
                Glibc.exit(0)
            }
            let message: String
            if error is CommandError || error is CleanExit { message = "\(error)" } else { message = self.message(for: error) }
            let line = message.split(separator: "\n").first.map(String.init) ?? "failed"
            Terminal.writeError("error: " + (line.hasPrefix("Error: ") ? String(line.dropFirst(7)) : line))
            Glibc.exit(code == .validationFailure ? 64 : 1)
        }
    }
}

/// A command that reads data files through ``DataOptions``.
protocol ReadsData {
    var data: DataOptions { get }
}

extension TrainCommand: ReadsData {}
extension EvalCommand: ReadsData {}
extension PredictCommand: ReadsData {}

/// A failure the command line reports in one line.
struct CommandError: Error, CustomStringConvertible {
    let description: String
    init(_ description: String) { self.description = description }
}

/// Writing to the terminal's streams.
enum Terminal {
    /// Writes `line` and a newline to stderr, control characters escaped (a NUL would end the C
    /// string early; a carriage return or newline would break the one line).
    static func writeError(_ line: String) {
        fputs(Excerpt.escapeControls(line) + "\n", stderr)
    }

    static var standardErrorIsTerminal: Bool { isatty(2) == 1 }

    /// Writes `bytes` to standard output as they are (`predict --out -`), then flushes it.
    static func writeOutput(_ bytes: [UInt8]) throws {
        let written = bytes.withUnsafeBufferPointer { fwrite($0.baseAddress, 1, $0.count, stdout) }
        guard written == bytes.count, fflush(stdout) == 0 else {
            throw CommandError("cannot write the predictions to standard output: \(String(cString: strerror(errno)))")
        }
    }
}
