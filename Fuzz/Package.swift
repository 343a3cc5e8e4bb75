// swift-tools-version:6.0
// libFuzzer targets for MLPKit's file readers: one executable per reader. They are built with
// `-sanitize=fuzzer,address`; each exposes `LLVMFuzzerTestOneInput` and its main.swift hands
// control to libFuzzer's driver. See README.md here and Scripts/fuzz.sh.
import PackageDescription

let package = Package(
    name: "MLPKitFuzz",
    dependencies: [
        .package(name: "MLPKit", path: ".."),
    ],
    targets: [
        .target(name: "CFuzzDriver"),
        .target(name: "FuzzSupport", dependencies: ["CFuzzDriver", .product(name: "MLPKit", package: "MLPKit")]),
        .executableTarget(name: "FuzzCheckpoint", dependencies: ["FuzzSupport", .product(name: "MLPKit", package: "MLPKit")]),
        .executableTarget(name: "FuzzNumpy", dependencies: ["FuzzSupport", .product(name: "MLPKit", package: "MLPKit")]),
        .executableTarget(name: "FuzzCSV", dependencies: ["FuzzSupport", .product(name: "MLPKit", package: "MLPKit")]),
        .executableTarget(name: "FuzzIDX", dependencies: ["FuzzSupport", .product(name: "MLPKit", package: "MLPKit")]),
        .executableTarget(name: "FuzzArchive", dependencies: ["FuzzSupport", .product(name: "MLPKit", package: "MLPKit")]),
    ],
    swiftLanguageModes: [.v5]
)
