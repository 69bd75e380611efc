// swift-tools-version: 6.0
import PackageDescription

// tunecheck: a health check for fine-tuned LLM checkpoints.
//
// Targets, bottom up:
//   CBLAS                 OpenBLAS' cblas.h as a Swift module (libopenblas-dev)
//   TunecheckTokenizers   tokenizer.json: normalizers, pre-tokenizers, BPE, decoders, post-processors
//   TunecheckEngine       safetensors, config.json, transformer forward passes, scoring, generation
//   TunecheckCLI          the `tunecheck` executable, a thin layer over the libraries
let package = Package(
    name: "tunecheck",
    platforms: [.macOS(.v13)],
    products: [
        .executable(name: "tunecheck", targets: ["TunecheckCLI"]),
        .library(name: "TunecheckEngine", targets: ["TunecheckEngine"]),
        .library(name: "TunecheckTokenizers", targets: ["TunecheckTokenizers"]),
        .library(name: "TunecheckTemplates", targets: ["TunecheckTemplates"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.5.0"),
    ],
    targets: [
        .systemLibrary(
            name: "CBLAS",
            pkgConfig: "openblas",
            providers: [.apt(["libopenblas-dev"])]
        ),
        .target(
            name: "TunecheckTokenizers"
        ),
        .target(
            name: "TunecheckTemplates"
        ),
        .target(
            name: "TunecheckEngine",
            dependencies: ["CBLAS", "TunecheckTokenizers"]
        ),
        .executableTarget(
            name: "TunecheckCLI",
            dependencies: [
                "TunecheckEngine",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ]
        ),
        .testTarget(
            name: "TunecheckTokenizersTests",
            dependencies: ["TunecheckTokenizers"]
        ),
        .testTarget(
            name: "TunecheckTemplatesTests",
            dependencies: ["TunecheckTemplates"]
        ),
        .testTarget(
            name: "TunecheckEngineTests",
            dependencies: ["TunecheckEngine"]
        ),
        .testTarget(
            name: "TunecheckCLITests",
            dependencies: ["TunecheckCLI", "TunecheckEngine"]
        ),
    ]
)
