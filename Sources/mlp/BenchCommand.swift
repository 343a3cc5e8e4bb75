import ArgumentParser
import MLPKit
import MLPKitCUDA

struct BenchCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "bench",
        abstract: "Median time of full training steps (forward, loss, backward, Adam) and GFLOP/s.",
        discussion: """
            Configurations: tiny = [32,64,64,1] batch 64 MSE; mnist = [784,256,128,10] batch 128 \
            cross-entropy; wide = [1024,2048,2048,1024] batch 512 MSE. GFLOP/s counts 2·B·(3·Σ in·out − h1·h2) \
            per step. The ceiling is a 2048³ product through the same backend, timed once per ten steps (9 to \
            31 times) during each configuration's steps; each configuration is compared with the ceiling \
            measured during its own steps. With --breakdown, as many steps again are clocked phase by phase \
            (the batch, each layer's forward and backward pass, the loss, Adam), with the ceiling sampled between \
            them, to show where the step's time goes. --layers (with --batch-size, --loss and --activation) \
            benchmarks a network of your own instead, as the configuration "custom".
            """)

    enum ConfigurationChoice: String, ExpressibleByArgument, CaseIterable {
        case tiny, mnist, wide, all
    }

    @Option(help: "tiny, mnist, wide or all (default: all).")
    var config: ConfigurationChoice?

    @Option(parsing: .unconditional,
            help: ArgumentHelp("Benchmark this network instead: its sizes from the inputs to the outputs, comma-separated (like 784,512,256,10).",
                               valueName: "sizes"))
    var layers: String?

    @Option(name: .customLong("batch-size"), parsing: .unconditional, help: "With --layers: rows per step (default 128).")
    var batchSize: Int?

    @Option(help: "With --layers: mse (default), cross-entropy or binary-cross-entropy.")
    var loss: Loss?

    @Option(help: "With --layers: the hidden activation, relu (default), leaky-relu (slope 0.01), tanh, sigmoid or gelu.")
    var activation: Activation?

    @Option(help: "auto, cpu, opencl or cuda.")
    var device: DeviceChoice = .auto

    @Option(parsing: .unconditional, help: "Timed steps per configuration (after 10 warm-up steps).")
    var steps: Int = 200

    @Flag(help: "Also time each phase of the step (batch, each layer's forward and backward pass, loss, Adam) over as many clocked steps, and show where the time goes.")
    var breakdown = false

    @Flag(help: "Print {\"results\": [{\"name\", \"layers\", \"batch\", \"step_seconds\", \"min_seconds\", \"max_seconds\", \"gflops\", \"ceiling_gflops\", \"fraction_of_ceiling\", …}, …]}.")
    var json = false

    func validate() throws {
        try require(steps >= 1, "--steps must be at least 1, got \(steps)")
        _ = try configurations()
    }

    /// The configurations to run: --config's standard ones, or --layers' own network ("custom").
    func configurations() throws -> [Benchmark.Configuration] {
        guard let layers else {
            for (flag, given) in [("--batch-size", batchSize != nil), ("--loss", loss != nil), ("--activation", activation != nil)] {
                try require(!given, "\(flag) goes with --layers (the standard configurations have their own)")
            }
            let chosen = config ?? .all
            return Benchmark.Configuration.standard.filter { chosen == .all || $0.name == chosen.rawValue }
        }
        try require(config == nil, "--config and --layers each choose what to run; give one of them")
        let sizes = try parseSizes(layers, flag: "--layers", example: "784,256,128,10")
        let batch = batchSize ?? 128
        let custom = Benchmark.Configuration(name: "custom", layers: sizes, batch: batch, loss: loss ?? .meanSquaredError,
                                             activation: ActivationFunction(activation ?? .relu))
        // the library's own check (sizes, batch, the random data's size), before any work
        do {
            _ = try Benchmark.randomDataRows(custom)
        } catch let error as ModelError {
            throw ValidationError("--layers \(layers) with --batch-size \(batch): \(error.description)")
        }
        return [custom]
    }

    func run() throws {
        // a tuning variable set to a value it cannot take would skew the timings unnoticed
        for problem in EnvironmentSettings.problems() { Terminal.writeError("warning: \(problem)") }
        let report = try device.run(BenchTask(configurations: try configurations(), includesLarge: layers == nil, steps: steps,
                                              breakdown: breakdown))
        if json {
            var object: [(String, JSONValue)] = [
                ("device", .string(report.device)),
                ("ceiling_gflops", .number(report.ceiling)),
                ("results", .array(report.rows.map { row in
                    .object([
                        ("name", .string(row.configuration.name)),
                        ("layers", .array(row.configuration.layers.map { .number(Double($0)) })),
                        ("batch", .number(Double(row.configuration.batch))),
                        ("loss", .string(row.configuration.loss.rawValue)),
                        ("activation", .string(row.configuration.activation.kind.rawValue)),
                        ("mode", .string(row.mode)),
                        ("step_seconds", .number(row.median)),
                        ("min_seconds", .number(row.minimum)),
                        ("max_seconds", .number(row.maximum)),
                        ("gflops", .number(row.gflops)),
                        ("tflops", .number(row.gflops / 1000)),
                        ("ceiling_gflops", .number(report.ceiling(for: row))),
                        ("fraction_of_ceiling", .number(row.gflops / report.ceiling(for: row))),
                    ] + (row.breakdown.map { breakdown in
                        [("breakdown", .object([
                            ("clocked_steps", .number(Double(breakdown.steps))),
                            ("step_seconds", .number(breakdown.stepSeconds)),
                            ("phases", .array(breakdown.phases.map { phase in
                                .object([("name", .string(phase.phase.description)), ("seconds", .number(phase.seconds)),
                                         ("share", .number(phase.seconds / breakdown.phaseSeconds)), ("flops", .number(phase.flops)),
                                         ("gflops", .number(phase.gflops)),
                                         ("fraction_of_ceiling", .number(phase.gflops / report.ceiling(for: breakdown, of: row)))])
                            })),
                            ("ceiling_gflops", .number(report.ceiling(for: breakdown, of: row))),
                        ]))]
                    } ?? []))
                })),
            ]
            if !report.products.isEmpty {
                object.append(("products", .array(report.products.map { product in
                    .object([("layout", .string(product.layout.rawValue)), ("size", .number(Double(product.size))),
                             ("seconds", .number(product.median)), ("tflops", .number(product.tflops))])
                })))
            }
            print(JSONValue.object(object).serialized)
            return
        }
        print("device: \(report.device)")
        print("product ceiling: \(Format.fixed(report.ceiling, 1)) GFLOP/s\(report.ceilingNote)")
        print("config  layers                  batch  mode       median        min        max   GFLOP/s   ceiling  of ceiling")
        for row in report.rows {
            let c = row.configuration
            let layers = c.layers.map(String.init).joined(separator: ",")
            print(Format.pad(c.name, 7) + " " + Format.pad(layers, 22) + " " + Format.padLeft("\(c.batch)", 6) + "  " + Format.pad(row.mode, 6) + " "
                  + Format.padLeft(Format.seconds(row.median), 10) + " " + Format.padLeft(Format.seconds(row.minimum), 10) + " "
                  + Format.padLeft(Format.seconds(row.maximum), 10) + " " + Format.padLeft(Format.fixed(row.gflops, 1), 9) + " "
                  + Format.padLeft(Format.fixed(report.ceiling(for: row), 1), 9) + " "
                  + Format.padLeft(Format.fixed(100 * row.gflops / report.ceiling(for: row), 1) + "%", 11))
        }
        for row in report.rows {
            if let breakdown = row.breakdown { printBreakdown(breakdown, ceiling: report.ceiling(for: breakdown, of: row)) }
        }
        for product in report.products {
            print("product \(product.layout.rawValue) \(product.size)³: \(Format.seconds(product.median)), \(Format.fixed(product.tflops, 2)) TFLOP/s")
        }
    }

    /// Where one configuration's step time goes, phase by phase.
    private func printBreakdown(_ breakdown: Benchmark.Breakdown, ceiling: Double) {
        let total = breakdown.phaseSeconds
        print("")
        print("\(breakdown.configuration.name), phase by phase (\(breakdown.steps) clocked steps, the backend synchronised after each phase; "
              + "their median \(Format.seconds(breakdown.stepSeconds)), \(Format.fixed(100 * breakdown.configuration.flopsPerStep / breakdown.stepSeconds / 1e9 / ceiling, 1))% of a ceiling of \(Format.fixed(ceiling, 1)) GFLOP/s sampled between them):")
        print("  phase            median    share   GFLOP/s  of ceiling")
        for phase in breakdown.phases {
            var line = "  " + Format.pad(phase.phase.description, 12) + " " + Format.padLeft(Format.seconds(phase.seconds), 10) + " "
                + Format.padLeft(Format.fixed(100 * phase.seconds / total, 1) + "%", 8)
            if phase.flops > 0 {
                line += " " + Format.padLeft(Format.fixed(phase.gflops, 1), 9) + " "
                    + Format.padLeft(Format.fixed(100 * phase.gflops / ceiling, 1) + "%", 11)
            }
            print(line)
        }
        let products = breakdown.productPhases
        let seconds = products.reduce(0) { $0 + $1.seconds }, flops = products.reduce(0) { $0 + $1.flops }
        print("  the products with their passes: \(Format.seconds(seconds)), \(Format.fixed(100 * seconds / total, 1))% of the step, "
              + "\(Format.fixed(flops / seconds / 1e9, 1)) GFLOP/s (\(Format.fixed(100 * flops / seconds / 1e9 / ceiling, 1))% of the ceiling); "
              + "the rest: \(Format.seconds(total - seconds))")
    }
}

struct BenchTask: BackendTask {
    /// The configurations to time, in order.
    let configurations: [Benchmark.Configuration]
    /// Whether CUDA also times the large configuration (with the standard ones).
    let includesLarge: Bool
    let steps: Int
    var breakdown = false

    /// One configuration's step times, however they were measured.
    struct Row {
        var configuration: Benchmark.Configuration
        var mode: String
        var median: Double
        var minimum: Double
        var maximum: Double
        /// GFLOP/s of the ceiling measured during this configuration's steps (nil: the report's).
        var ceiling: Double? = nil
        /// Each phase's time (`--breakdown`).
        var breakdown: Benchmark.Breakdown? = nil
        var gflops: Double { configuration.flopsPerStep / median / 1e9 }
    }

    struct Report {
        var device: String
        /// GFLOP/s of the large square product the rows are compared with.
        var ceiling: Double
        /// How the ceiling was measured, for the text report.
        var ceilingNote = ""
        var rows: [Row]
        var products: [CUDABenchmark.ProductResult] = []

        /// The ceiling `row` is compared with: the one measured during its steps, else the report's.
        func ceiling(for row: Row) -> Double { row.ceiling ?? ceiling }
        /// The ceiling a breakdown's phases are compared with: the one measured between its clocked
        /// steps, else its row's.
        func ceiling(for breakdown: Benchmark.Breakdown, of row: Row) -> Double { breakdown.ceilingGflops ?? ceiling(for: row) }
    }

    func run<B: Backend>(on backend: B) throws -> Report {
        if let cuda = backend as? CUDABackend { return try runOnCUDA(cuda) }
        let ceiling = try Benchmark.ProductCeiling(on: backend)
        let rows = try configurations.map { configuration in
            let result = try Benchmark.run(configuration, on: backend, steps: steps, ceiling: ceiling)
            return Row(configuration: configuration, mode: "step", median: result.median, minimum: result.minimum,
                       maximum: result.maximum, ceiling: result.ceilingGflops,
                       breakdown: breakdown ? try Benchmark.breakdown(configuration, on: backend, steps: steps, ceiling: ceiling) : nil)
        }
        return Report(device: backend.summary, ceiling: ceiling.gflops,
                      ceilingNote: " (\(ceiling.size)³, median of \(ceiling.samples.count) products timed between the steps)", rows: rows)
    }

    /// On CUDA: the CPU configurations plus the large one, each eager and graph-replayed, timed
    /// with CUDA events; and the products at 4096³ in every layout.
    func runOnCUDA(_ backend: CUDABackend) throws -> Report {
        var rows: [Row] = []
        for configuration in configurations + (includesLarge ? [.large] : []) {
            for graphed in [false, true] {
                let result = try CUDABenchmark.run(configuration, on: backend, steps: steps, graphed: graphed)
                rows.append(Row(configuration: configuration, mode: graphed ? "graph" : "eager", median: result.median,
                                minimum: result.minimum, maximum: result.maximum,
                                breakdown: breakdown && !graphed ? try Benchmark.breakdown(configuration, on: backend, steps: steps) : nil))
            }
        }
        let products = try CUDABenchmark.products(on: backend, size: 4096)
        let ceiling = products.map { $0.tflops * 1000 }.max() ?? .nan
        return Report(device: backend.summary, ceiling: ceiling, rows: rows, products: products)
    }
}

extension Format {
    /// A duration with a unit: "12.3 µs", "4.56 ms", "1.23 s".
    static func seconds(_ value: Double) -> String {
        if value < 1e-3 { return fixed(value * 1e6, 1) + " µs" }
        if value < 1 { return fixed(value * 1e3, 3) + " ms" }
        return fixed(value, 3) + " s"
    }
}
