// swift-tools-version: 6.0
import PackageDescription

// tunecheck: a health check for fine-tuned LLM checkpoints.
//
// Targets, bottom up:
//   CBLAS                 OpenBLAS' cblas.h as a Swift module (libopenblas-dev)
//   TunecheckJSON         a JSON parser/writer that keeps strings byte-exact and keys in order
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
            name: "TunecheckJSON"
        ),
        .target(
            name: "TunecheckTokenizers",
            dependencies: ["TunecheckJSON"]
        ),
        .target(
            name: "TunecheckEngine",
            dependencies: ["CBLAS", "TunecheckJSON", "TunecheckTokenizers"]
        ),
        .executableTarget(
            name: "TunecheckCLI",
            dependencies: [
                "TunecheckEngine",
                "TunecheckJSON",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ]
        ),
        .testTarget(
            name: "TunecheckTokenizersTests",
            dependencies: ["TunecheckTokenizers", "TunecheckJSON"]
        ),
        .testTarget(
            name: "TunecheckEngineTests",
            dependencies: ["TunecheckEngine"]
        ),
        .testTarget(
            name: "TunecheckCLITests",
            dependencies: ["TunecheckCLI", "TunecheckEngine", "TunecheckJSON"]
        ),
    ]
)
