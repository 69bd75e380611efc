// swift-tools-version: 6.0
import PackageDescription

// tunecheck: a health check for fine-tuned LLM checkpoints.
//
// Targets, bottom up:
//   CBLAS                 OpenBLAS' cblas.h as a Swift module (libopenblas-dev)
//   CKernels              C kernels with run-time AVX-512 / AVX2 dispatch (bf16/f16 weights, mlx-quantized weights), SHA-256 blocks (SHA-NI)
//   TunecheckJSON         a JSON parser/writer that keeps strings byte-exact and keys in order; the settings helper
//   TunecheckTokenizers   tokenizer.json: normalizers, pre-tokenizers, BPE, decoders, post-processors
//   TunecheckEngine       safetensors, config.json, transformer forward passes, scoring, generation, adapters,
//                         DPO rewards, checkpoint and metric names
//   TunecheckTemplates    the Jinja subset of chat templates (Llama 3, Qwen2.5, Mistral, Phi-3, Granite)
//   TunecheckHarness      the evaluation session that eval, watch and train share; suites behind one protocol and
//                         registry; evalsets, golden outputs, reports (JUnit via libxml2, JSON, HTML)
//   TunecheckTrainer      LoRA / full SFT and DPO on the engine's backward passes; hands each checkpoint to a
//                         training callback (it does not depend on the harness)
//   TunecheckBenchmarks   `tunecheck bench`'s measurements (score, decode, a LoRA step) and their FLOP accounting
//   TunecheckCLI          the `tunecheck` executable, a thin layer over the libraries; wires the harness-backed
//                         training callback into the trainer
//
// Tests mirror the modules (`Tests/<Target>Tests`, plus TunecheckJSONTests). They share TunecheckTestSupport
// (Tests/TunecheckTestSupport, not a product): the repository-root locator, the shared-fixtures lookup
// (`TUNECHECK_SHARED_FIXTURES`, skipped with a reason when ../shared is absent) and the CLI runner.
let package = Package(
    name: "tunecheck",
    platforms: [.macOS(.v13)],
    products: [
        .executable(name: "tunecheck", targets: ["TunecheckCLI"]),
        .library(name: "TunecheckEngine", targets: ["TunecheckEngine"]),
        .library(name: "TunecheckTokenizers", targets: ["TunecheckTokenizers"]),
        .library(name: "TunecheckHarness", targets: ["TunecheckHarness"]),
        .library(name: "TunecheckTemplates", targets: ["TunecheckTemplates"]),
        .library(name: "TunecheckTrainer", targets: ["TunecheckTrainer"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.5.0"),
        .package(url: "https://github.com/jpsim/Yams", from: "6.0.0"),
    ],
    targets: [
        .systemLibrary(
            name: "CBLAS",
            pkgConfig: "openblas",
            providers: [.apt(["libopenblas-dev"])]
        ),
        .systemLibrary(
            name: "CLibXML2",
            pkgConfig: "libxml-2.0",
            providers: [.apt(["libxml2-dev"])]
        ),
        .systemLibrary(
            name: "CZlib",
            pkgConfig: "zlib",
            providers: [.apt(["zlib1g-dev"])]
        ),
        .target(
            name: "CKernels"
        ),
        .target(
            name: "TunecheckJSON",
            dependencies: ["CKernels"]  // SHA-256 block function (SHA-NI)
        ),
        .target(
            name: "TunecheckTokenizers",
            dependencies: ["TunecheckJSON"]
        ),
        .target(
            name: "TunecheckTemplates",
            dependencies: ["TunecheckJSON"]
        ),
        .target(
            name: "TunecheckEngine",
            dependencies: ["CBLAS", "CKernels", "TunecheckJSON", "TunecheckTokenizers"]
        ),
        .target(
            name: "TunecheckHarness",
            dependencies: [
                "TunecheckEngine", "TunecheckJSON", "TunecheckTokenizers", "TunecheckTemplates", "CLibXML2", "CZlib",
                .product(name: "Yams", package: "Yams"),
            ]
        ),
        .target(
            name: "TunecheckTrainer",
            dependencies: [
                "TunecheckEngine", "TunecheckJSON", "TunecheckTokenizers",
                .product(name: "Yams", package: "Yams"),
            ]
        ),
        .target(
            name: "TunecheckBenchmarks",
            dependencies: ["TunecheckEngine", "TunecheckTrainer", "TunecheckJSON", "CBLAS"]
        ),
        .executableTarget(
            name: "TunecheckCLI",
            dependencies: [
                "TunecheckEngine",
                "TunecheckHarness",
                "TunecheckTrainer",
                "TunecheckBenchmarks",
                "TunecheckJSON",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ]
        ),
        .target(
            name: "TunecheckTestSupport",
            dependencies: ["TunecheckJSON"],
            path: "Tests/TunecheckTestSupport"
        ),
        .testTarget(
            name: "TunecheckJSONTests",
            dependencies: ["TunecheckJSON", "TunecheckTestSupport", .product(name: "Yams", package: "Yams")]
        ),
        .testTarget(
            name: "TunecheckTokenizersTests",
            dependencies: ["TunecheckTokenizers", "TunecheckJSON", "TunecheckTestSupport"]
        ),
        .testTarget(
            name: "TunecheckTemplatesTests",
            dependencies: ["TunecheckTemplates", "TunecheckTestSupport"]
        ),
        .testTarget(
            name: "TunecheckEngineTests",
            dependencies: ["TunecheckEngine", "TunecheckTestSupport"]
        ),
        .testTarget(
            name: "TunecheckHarnessTests",
            dependencies: ["TunecheckHarness", "TunecheckEngine", "TunecheckJSON", "CLibXML2", "TunecheckTestSupport"]
        ),
        .testTarget(
            name: "TunecheckBenchmarksTests",
            dependencies: ["TunecheckBenchmarks", "TunecheckEngine", "TunecheckJSON", "TunecheckTestSupport"]
        ),
        .testTarget(
            name: "TunecheckTrainerTests",
            dependencies: ["TunecheckTrainer", "TunecheckEngine", "TunecheckHarness", "TunecheckTestSupport"]
        ),
        .testTarget(
            name: "TunecheckCLITests",
            dependencies: ["TunecheckCLI", "TunecheckEngine", "TunecheckHarness", "TunecheckJSON", "CLibXML2", "TunecheckTestSupport"]
        ),
    ]
)
