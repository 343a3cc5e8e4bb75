// swift-tools-version:6.0
import PackageDescription

let package = Package(
    name: "MLPKit",
    products: [
        .library(name: "MLPKit", targets: ["MLPKit"]),
        .executable(name: "mlp", targets: ["mlp"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.5.0"),
    ],
    targets: [
        // the CPU backend's AVX2 paths, chosen at run time (the package builds for baseline x86-64)
        .target(name: "CMLPKitSIMD"),
        .target(name: "MLPKit", dependencies: ["CMLPKitSIMD"]),
        .target(name: "MLPKitKernels", dependencies: ["MLPKit"], exclude: ["NOTES.md"]),
        .target(name: "MLPKitOpenCL", dependencies: ["MLPKit", "MLPKitKernels"]),
        .target(name: "MLPKitCUDA", dependencies: ["MLPKit", "MLPKitKernels"]),
        .executableTarget(
            name: "mlp",
            dependencies: [
                "MLPKit",
                "MLPKitOpenCL",
                "MLPKitCUDA",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ]
        ),
        // the checks the backends' tests share (every operation against the CPU backend)
        .target(
            name: "BackendTestSupport",
            dependencies: ["MLPKit", "MLPKitKernels"],
            path: "Tests/BackendTestSupport"
        ),
        .testTarget(
            name: "MLPKitTests",
            dependencies: ["MLPKit", "BackendTestSupport"],
            exclude: ["Fixtures"]
        ),
        .testTarget(
            name: "mlpTests",
            dependencies: ["mlp", "MLPKit", "BackendTestSupport"]
        ),
        .testTarget(
            name: "MLPKitOpenCLTests",
            dependencies: ["MLPKitOpenCL", "MLPKit", "MLPKitKernels", "MLPKitCUDA", "BackendTestSupport"]
        ),
        .testTarget(
            name: "MLPKitCUDATests",
            dependencies: ["MLPKitCUDA", "MLPKit", "MLPKitKernels", "BackendTestSupport"]
        ),
    ],
    swiftLanguageModes: [.v5]
)
