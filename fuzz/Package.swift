// swift-tools-version: 6.0
import PackageDescription

// libFuzzer targets for tunecheck's input readers. NOT part of the main package: build it with `fuzz/build.sh`
// (which passes `-sanitize=fuzzer,address -parse-as-library`), never with a plain `swift build` at the root.
// Each target is one executable whose only entry point is `LLVMFuzzerTestOneInput`; libFuzzer supplies `main`.
let fuzzTargets = [
    "safetensors", "model_config", "tokenizer", "adapter_mlx", "adapter_peft",
    "evalset_jsonl", "golden", "suite_yaml", "training_yaml", "chat_template",
]

let libraries: [Target.Dependency] = [
    .product(name: "TunecheckEngine", package: "tunecheck"),
    .product(name: "TunecheckTokenizers", package: "tunecheck"),
    .product(name: "TunecheckHarness", package: "tunecheck"),
    .product(name: "TunecheckTemplates", package: "tunecheck"),
    .product(name: "TunecheckTrainer", package: "tunecheck"),
]

let package = Package(
    name: "tunecheck-fuzz",
    dependencies: [.package(name: "tunecheck", path: "..")],
    targets: [
        .target(name: "CFuzzDriver", path: "CFuzzDriver"),
        .target(name: "FuzzSupport", dependencies: ["CFuzzDriver", .product(name: "TunecheckEngine", package: "tunecheck")], path: "Support"),
    ]
        + fuzzTargets.map { name in
            .executableTarget(name: "fuzz_\(name)", dependencies: ["FuzzSupport"] + libraries, path: "targets/\(name)")
        }
)
