import Foundation
import TunecheckTestSupport
import TunecheckEngine
import TunecheckJSON

/// Checkpoints and evalsets built on the fly for the `eval`, `compare`, `watch` and `train` tests.
enum EvalFixtures {
    static let evalsets = TestPaths.repositoryRoot.appendingPathComponent("evalsets/default")
    static let prompts = evalsets.appendingPathComponent("prompts.jsonl")
    static let pairs = evalsets.appendingPathComponent("pairs.jsonl")
    static let texts = evalsets.appendingPathComponent("texts.jsonl")

    /// A collapsed checkpoint: a copy of `models/tiny-default` with `mlp_bias: true`, zero MLP biases, and a huge
    /// `down_proj.bias` v in the last block, added to the residual stream at every position. With v = c·E[T]/g
    /// (E the lm_head, g the final RMSNorm weight, elementwise), the final norm output is ≈ E[T]·const whatever the
    /// input, so token T has the largest logit everywhere (Eᵢ·E_T < E_T·E_T for every other row of this random
    /// head) and greedy decoding says T forever.
    static func collapsedModel(at folder: URL, token text: String = " water") throws -> (folder: URL, token: Int) {
        let base = CLIRunner.defaultModel
        try FileManager.default.copyItem(at: base, to: folder)
        let tokenizer = try LanguageModel.load(folder: base).tokenizer
        let ids = tokenizer.encode(text, addSpecialTokens: false)
        guard ids.count == 1 else { throw FixtureError("\(text.debugDescription) is \(ids.count) tokens, not 1") }
        let token = ids[0]

        let configURL = folder.appendingPathComponent("config.json")
        guard var config = try JSONSerialization.jsonObject(with: Data(contentsOf: configURL)) as? [String: Any] else {
            throw FixtureError("config.json is not an object")
        }
        config["mlp_bias"] = true
        try JSONSerialization.data(withJSONObject: config, options: [.prettyPrinted, .sortedKeys]).write(to: configURL)

        let weightsURL = folder.appendingPathComponent("model.safetensors")
        var tensors: [(name: String, shape: [Int], values: [Float])] = []
        do {
            let file = try SafeTensorsFile(url: weightsURL)
            for name in file.orderedNames {
                let info = file.tensors[name]!
                guard info.dtype == .float32 else { throw FixtureError("\(name) is \(info.dtype), expected F32") }
                tensors.append((name, info.shape, Array(file.bytes(of: info).bindMemory(to: Float.self))))
            }
        }
        func values(_ name: String) throws -> (shape: [Int], values: [Float]) {
            guard let tensor = tensors.first(where: { $0.name == name }) else { throw FixtureError("no tensor \(name)") }
            return (tensor.shape, tensor.values)
        }
        let head = try values("lm_head.weight")
        let norm = try values("model.norm.weight").values
        let hidden = head.shape[1]
        let layers = (config["num_hidden_layers"] as? Int) ?? 2
        let intermediate = (config["intermediate_size"] as? Int) ?? 128
        for layer in 0..<layers {
            tensors.append(("model.layers.\(layer).mlp.gate_proj.bias", [intermediate], [Float](repeating: 0, count: intermediate)))
            tensors.append(("model.layers.\(layer).mlp.up_proj.bias", [intermediate], [Float](repeating: 0, count: intermediate)))
            var bias = [Float](repeating: 0, count: hidden)
            if layer == layers - 1 {
                for i in 0..<hidden { bias[i] = 1e5 * head.values[token * hidden + i] / norm[i] }
            }
            tensors.append(("model.layers.\(layer).mlp.down_proj.bias", [hidden], bias))
        }
        try write(tensors, to: weightsURL)
        return (folder, token)
    }

    static func write(_ tensors: [(name: String, shape: [Int], values: [Float])], metadata: [String: String]? = ["format": "pt"],
                      to url: URL) throws {
        let buffers = tensors.map { tensor -> UnsafeMutableBufferPointer<Float> in
            let buffer = UnsafeMutableBufferPointer<Float>.allocate(capacity: tensor.values.count)
            _ = buffer.initialize(from: tensor.values)
            return buffer
        }
        defer { buffers.forEach { $0.deallocate() } }
        try SafeTensorsWriter.write(zip(tensors, buffers).map { tensor, buffer in
            TensorToWrite(name: tensor.name, dtype: .float32, shape: tensor.shape, values: UnsafeBufferPointer(buffer))
        }, metadata: metadata, to: url)
    }

    /// An mlx_lm LoRA adapter on the default model (every linear of the last block, rank 2, scale 1) with small
    /// non-zero `lora_b`, so it moves the weights a little. Returns the bytes of a numbered checkpoint file and
    /// writes `adapter_config.json` into `folder` (as `Trainer.writeAdapterConfig` does).
    static func adapterBytes(seed: UInt64, folder: URL) throws -> Data {
        let base = try ModelLoader.loadDecoder(folder: CLIRunner.defaultModel)
        let lora = try LoRAParameters(base: base, rank: 2, scale: 1, keys: nil, numLayers: 1, seed: seed)
        for module in lora.modules {
            for index in 0..<module.b.count { module.b.values[index] = Float(index % 7) * 1e-3 - 3e-3 }
        }
        let config = """
        {"fine_tune_type": "lora", "num_layers": 1, "lora_parameters": {"rank": 2, "scale": 1.0, "dropout": 0.0}}
        """
        try Data(config.utf8).write(to: folder.appendingPathComponent("adapter_config.json"))
        let scratch = folder.appendingPathComponent(".scratch-\(seed).bin")
        try lora.write(to: scratch, metadata: ["step": "\(seed)", "format": "mlx"])
        defer { try? FileManager.default.removeItem(at: scratch) }
        return try Data(contentsOf: scratch)
    }

    /// report.json as Foundation values.
    static func readJSON(_ url: URL) throws -> [String: Any] {
        let value = try JSONParser.parse([UInt8](Data(contentsOf: url)))
        return (CLIRunner.foundationValue(value) as? [String: Any]) ?? [:]
    }

    /// The checks of report.json, flattened: (suite kind, checkpoint, check object).
    static func checks(_ report: [String: Any]) -> [(kind: String, checkpoint: String, check: [String: Any])] {
        ((report["suites"] as? [[String: Any]]) ?? []).flatMap { suite in
            ((suite["checks"] as? [[String: Any]]) ?? []).map {
                ((suite["kind"] as? String) ?? "", (suite["checkpoint"] as? String) ?? "", $0)
            }
        }
    }

    /// Files in a folder, hidden ones included (temporary files of atomic writes start with a dot).
    static func listing(_ folder: URL) -> [String] {
        ((try? FileManager.default.contentsOfDirectory(atPath: folder.path)) ?? []).sorted()
    }
}

struct FixtureError: Error, CustomStringConvertible {
    let description: String
    init(_ description: String) { self.description = description }
}
