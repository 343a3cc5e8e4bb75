import ArgumentParser
import MLPKit

struct BenchCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "bench",
        abstract: "Median time of full training steps (forward, loss, backward, Adam) and GFLOP/s.",
        discussion: """
            Configurations: tiny = [32,64,64,1] batch 64 MSE; mnist = [784,256,128,10] batch 128 cross-entropy;
            wide = [1024,2048,2048,1024] batch 512 MSE. GFLOP/s counts 2·B·(3·Σ in·out − h1·h2) per step.
            The ceiling is a 2048³ product through the same backend.
            """)

    enum ConfigurationChoice: String, ExpressibleByArgument, CaseIterable {
        case tiny, mnist, wide, all
    }

    @Option(help: "tiny, mnist, wide or all.")
    var config: ConfigurationChoice = .all

    @Option(help: "auto, cpu, opencl or cuda.")
    var device: DeviceChoice = .auto

    @Option(help: "Timed steps per configuration (after 10 warm-up steps).")
    var steps: Int = 200

    @Flag(help: "Print {\"results\": [{\"name\", \"layers\", \"batch\", \"step_seconds\", \"min_seconds\", \"max_seconds\", \"gflops\"}, …]}.")
    var json = false

    func validate() throws {
        try require(steps >= 1, "--steps must be at least 1, got \(steps)")
    }

    func run() throws {
        let configurations = config == .all
            ? Benchmark.Configuration.standard
            : Benchmark.Configuration.standard.filter { $0.name == config.rawValue }
        let report = try device.run(BenchTask(configurations: configurations, steps: steps))
        if json {
            let results: [JSONValue] = report.results.map { result in
                .object([
                    ("name", .string(result.configuration.name)),
                    ("layers", .array(result.configuration.layers.map { .number(Double($0)) })),
                    ("batch", .number(Double(result.configuration.batch))),
                    ("step_seconds", .number(result.median)),
                    ("min_seconds", .number(result.minimum)),
                    ("max_seconds", .number(result.maximum)),
                    ("gflops", .number(result.gflops)),
                    ("fraction_of_ceiling", .number(result.gflops / report.ceiling)),
                ])
            }
            print(JSONValue.object([
                ("device", .string(report.device)),
                ("ceiling_gflops", .number(report.ceiling)),
                ("results", .array(results)),
            ]).serialized)
            return
        }
        print("device: \(report.device)")
        print("product ceiling (2048³): \(Format.fixed(report.ceiling, 1)) GFLOP/s")
        print("config  layers                  batch    median        min        max   GFLOP/s  of ceiling")
        for result in report.results {
            let c = result.configuration
            let layers = c.layers.map(String.init).joined(separator: ",")
            print(pad(c.name, 7) + " " + pad(layers, 22) + " " + padLeft("\(c.batch)", 6) + " "
                  + padLeft(Format.seconds(result.median), 10) + " " + padLeft(Format.seconds(result.minimum), 10) + " "
                  + padLeft(Format.seconds(result.maximum), 10) + " " + padLeft(Format.fixed(result.gflops, 1), 9) + " "
                  + padLeft(Format.fixed(100 * result.gflops / report.ceiling, 1) + "%", 11))
        }
    }

    func pad(_ text: String, _ width: Int) -> String { text + String(repeating: " ", count: max(0, width - text.count)) }
    func padLeft(_ text: String, _ width: Int) -> String { String(repeating: " ", count: max(0, width - text.count)) + text }
}

struct BenchTask: BackendTask {
    let configurations: [Benchmark.Configuration]
    let steps: Int

    struct Report {
        var device: String
        var ceiling: Double
        var results: [Benchmark.Result]
    }

    func run<B: Backend>(on backend: B) throws -> Report {
        let results = try configurations.map { try Benchmark.run($0, on: backend, steps: steps) }
        return Report(device: backend.summary, ceiling: try Benchmark.productCeiling(on: backend), results: results)
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
