import ArgumentParser
import MLPKit
import MLPKitCUDA
#if canImport(Glibc)
import Glibc
#endif

struct CheckCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "check",
        abstract: "Compare every operation of a backend with the CPU backend on random inputs, and a 100-step training run.",
        discussion: """
            Products in the NT, TN and NN layouts with each fused epilogue (none, bias, bias+ReLU, ReLU \
            mask) at 1×1×1, 1×97×13, 41×1×7, 37×53×29, 128×128×64 and 257×130×200; column sums; the loss \
            gradient and loss sum for MSE and cross-entropy with class indices (with and without class \
            weights) and dense targets; the batch gather; Adam over several steps; and TrainingSession runs of \
            [13,32,24,5] (cross-entropy and MSE) for 100 shuffled steps.

            Beyond the seed, for the features the backend implements: binary cross-entropy's gradient and \
            loss sum; products with the tanh, sigmoid, GELU and leaky-ReLU epilogues and derivatives; AdamW \
            with weight decay and clipping by global norm; and a training run with each feature (and one with \
            all of them). On CUDA, graph-replayed steps are also compared with eager ones (exactly), with and \
            without the features.

            Each row is ‖candidate − CPU‖ / ‖CPU‖; it passes at ≤ 1e-5 (products and element-wise \
            operations), 0 (the gather, a copy) or ≤ 1e-4 (the training runs' parameters). A training run \
            past its threshold is run again on a second data set and fails only if that one does too (a ReLU \
            input within rounding of 0 can send two correct backends apart); its sizes then show both errors. \
            Exits 1 on any mismatch.

            With --device cpu, the CPU backend as used (BLAS when installed) is checked against the CPU \
            backend with MLPKit's own Swift matrix product; without a BLAS library both are the same code.
            """)

    @Option(help: "opencl, cuda, cpu or auto (the backend `train` would pick).")
    var device: DeviceChoice = .auto

    @Option(parsing: .unconditional, help: "Seeds the random inputs and the training runs.")
    var seed: UInt64 = 0x5EED_C4EC

    @Flag(help: "Print {\"device\", \"reference\", \"checks\": [{\"name\", \"sizes\", \"relative_error\", \"threshold\", \"passed\"}, …], \"passed\"}.")
    var json = false

    func run() throws {
        let report = try device.run(CheckTask(seed: seed))
        let failed = report.results.filter { !$0.passed }.count
        if json {
            let checks: [JSONValue] = report.results.map { result in
                .object([
                    ("name", .string(result.name)),
                    ("sizes", .string(result.sizes)),
                    // JSON has no infinity: a non-finite error is written as null (and fails)
                    ("relative_error", result.relativeError.isFinite ? .number(result.relativeError) : .null),
                    ("threshold", .number(result.threshold)),
                    ("passed", .bool(result.passed)),
                ])
            }
            print(JSONValue.object([
                ("device", .string(report.device)),
                ("reference", .string(report.reference)),
                ("checks", .array(checks)),
                ("passed", .bool(failed == 0)),
            ]).serialized)
        } else {
            printTable(report)
        }
        if failed > 0 {
            throw CommandError("\(failed) of \(report.results.count) checks failed")
        }
    }

    func printTable(_ report: CheckTask.Report) {
        print("device: \(report.device)")
        print("reference: \(report.reference)")
        let nameWidth = max(9, report.results.map(\.name.count).max() ?? 0)
        let sizeWidth = max(5, report.results.map(\.sizes.count).max() ?? 0)
        print(Format.pad("operation", nameWidth) + "  " + Format.pad("sizes", sizeWidth) + "  relative error  threshold  result")
        for result in report.results {
            print(Format.pad(result.name, nameWidth) + "  " + Format.pad(result.sizes, sizeWidth) + "  "
                  + Format.pad(BackendCheckResult.scientific(result.relativeError), 14) + "  " + Format.pad(result.threshold == 0 ? "0" : BackendCheckResult.scientific(result.threshold, 0), 9)
                  + "  " + (result.passed ? "ok" : "FAIL"))
        }
        // the worst error of each kind of operation, in the order the checks ran
        var kinds: [String] = [], worst: [String: Double] = [:]
        for result in report.results {
            if worst[result.kind] == nil { kinds.append(result.kind) }
            let error = result.relativeError.isNaN ? .infinity : result.relativeError
            worst[result.kind] = max(worst[result.kind] ?? 0, error)
        }
        print("worst: " + kinds.map { "\($0) \(BackendCheckResult.scientific(worst[$0] ?? 0))" }.joined(separator: ", "))
        let passed = report.results.filter(\.passed).count
        print("\(passed) of \(report.results.count) checks passed")
    }

}

/// `BackendCheck` on whichever backend `--device` names, against the CPU backend.
struct CheckTask: BackendTask {
    let seed: UInt64

    struct Report {
        var device: String
        var reference: String
        var results: [BackendCheckResult]
    }

    func run<B: Backend>(on backend: B) throws -> Report {
        // the CPU checked against itself: BLAS (when installed) against the Swift product
        let reference = backend is CPUBackend ? CPUBackend(useBLAS: false) : CPUBackend()
        let check = BackendCheck(candidate: backend, reference: reference, seed: seed)
        do {
            var results = try check.run()
            // on CUDA, graph-replayed steps must equal eagerly queued ones exactly
            if let cuda = backend as? CUDABackend { results += try cuda.graphReplayCheckRows() }
            return Report(device: backend.summary, reference: reference.summary, results: results)
        } catch {
            throw CommandError("\(error)")
        }
    }
}
