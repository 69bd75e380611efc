import Foundation
import Testing
@testable import TunecheckEngine

/// `fuse` onto an mlx affine-quantized base against `mlx_lm fuse` on the same QLoRA adapter
/// (Tests/Fixtures/quantized/qlora-llama-q4-g64-fused, made by scripts/fixtures/make_quantized_fixtures.py: the fused
/// layers' tensors of both mlx_lm outputs and mlx_lm's float32 log-probs on both fused folders).
///
/// Tolerances:
/// - re-quantized: observed bit-equal to mlx_lm's (codes, scales, biases) on this machine. Allowed: codes one step
///   apart on at most 0.1% of them, scales and biases within one bf16 step, because the float32 `scale·ΔW` (a rank-4
///   sum) may be added in another order by another BLAS kernel, which can flip a bf16 rounding of the merged weight
///   and then a code on a rounding tie; log-probs within 1e-4 of mlx_lm's on its own fused folder.
/// - `--dequantize` (bf16, as mlx_lm writes it): observed bit-equal; allowed within one bf16 step on at most 0.1% of
///   the weights (same reason); log-probs within 1e-4 of mlx_lm's on its dequantized folder. `--dequantize --dtype float32` (no bf16 rounding): log-probs within 1e-4 of
///   the unfused base + adapter computed by mlx_lm.
struct QuantizedFuseTests {
    struct FusedReference: Decodable {
        var texts: [String: [ModelReference.ScoredText]]
    }

    static let base = QuantizedWeightsTests.folder("llama-q4-g64")
    static let adapterFolder = QuantizedWeightsTests.folder("qlora-llama-q4-g64")
    static let fusedFolder = QuantizedWeightsTests.folder("qlora-llama-q4-g64-fused")

    static func reference() throws -> FusedReference {
        try JSONDecoder().decode(FusedReference.self, from: Data(contentsOf: fusedFolder.appendingPathComponent("reference.json")))
    }

    /// mlx_lm's fused layers: `quantized/<name>` and `dequantized/<name>`.
    static func mlxLayers() throws -> WeightStore {
        try WeightStore(files: [fusedFolder.appendingPathComponent("mlx_fused_layers.safetensors")])
    }

    static func fuse(_ label: String, dtype: DType? = nil, dequantize: Bool) throws -> (URL, FuseReport) {
        let parent = try FixturePaths.temporaryDirectory("qfuse-\(label)")
        let output = parent.appendingPathComponent("fused")
        let report = try AdapterFuser.fuse(baseFolder: base, adapter: Adapter.load(path: adapterFolder), output: output,
                                           dtype: dtype, dequantize: dequantize)
        return (output, report)
    }

    /// A stored float tensor (F32/BF16/F16) as float32 values, from its raw bytes.
    static func floats(_ store: WeightStore, _ name: String) throws -> [Float] {
        let info = try #require(store.info(name), "\(name) present")
        let raw = try store.rawBytes(of: name)
        switch info.dtype {
        case .bfloat16:
            return (0..<raw.count / 2).map { Float(bitPattern: UInt32(raw.loadUnaligned(fromByteOffset: $0 * 2, as: UInt16.self)) << 16) }
        case .float16:
            return (0..<raw.count / 2).map { Float(Float16(bitPattern: raw.loadUnaligned(fromByteOffset: $0 * 2, as: UInt16.self))) }
        default:
            return (0..<raw.count / 4).map { raw.loadUnaligned(fromByteOffset: $0 * 4, as: Float.self) }
        }
    }

    /// The `bits`-bit codes of a packed U32 tensor (little end first).
    static func codes(_ store: WeightStore, _ name: String, bits: Int) throws -> [Int] {
        let raw = try store.rawBytes(of: name)
        let words = (0..<raw.count / 4).map { UInt64(raw.loadUnaligned(fromByteOffset: $0 * 4, as: UInt32.self)) }
        let count = words.count * 32 / bits
        return (0..<count).map { index in
            let bit = index * bits
            var value = words[bit / 32] >> UInt64(bit % 32)
            if bit % 32 + bits > 32 { value |= words[bit / 32 + 1] << UInt64(32 - bit % 32) }
            return Int(value & UInt64((1 << bits) - 1))
        }
    }

    /// Largest |a − b| in bf16 steps of b, a step taken as |b|·2⁻⁷ (an upper bound of bf16's spacing near b).
    static func bf16Steps(_ a: [Float], _ b: [Float]) -> Double {
        zip(a, b).map { Double(abs($0 - $1)) / max(Double(abs($1)) * 0x1p-7, 1e-30) }.max() ?? 0
    }

    static func scores(_ folder: URL, _ texts: [ModelReference.ScoredText]) throws -> Double {
        let model = try ModelLoader.loadDecoder(folder: folder)
        return FastPathTests.largestDifference(try Scorer(model: model).score(texts.map(\.ids)), texts.map(\.logprobs))
    }

    @Test("fuse onto a 4-bit base re-quantizes the fused layers as mlx_lm fuse does and copies the rest byte for byte")
    func requantizedLikeMLX() throws {
        let (output, report) = try Self.fuse("requantized", dequantize: false)
        #expect(report.fusedTensors.count == 6)
        let fused = try WeightStore(folder: output)
        let baseStore = try WeightStore(folder: Self.base)
        let mlx = try Self.mlxLayers()
        #expect(fused.tensorNames == baseStore.tensorNames)
        var differing = 0, total = 0, scaleSteps = 0.0, exactScales = 0, scaleCount = 0
        for name in report.fusedTensors {
            let module = String(name.dropLast(".weight".count))
            #expect(fused.info(name)?.dtype == .uint32)
            let ours = try Self.codes(fused, name, bits: 4), theirs = try Self.codes(mlx, "quantized/" + name, bits: 4)
            #expect(ours.count == theirs.count)
            for (a, b) in zip(ours, theirs) where a != b {
                differing += 1
                #expect(abs(a - b) == 1, "\(name): codes \(a) vs \(b)")
            }
            total += ours.count
            for part in ["scales", "biases"] {
                let a = try Self.floats(fused, "\(module).\(part)"), b = try Self.floats(mlx, "quantized/\(module).\(part)")
                scaleSteps = max(scaleSteps, Self.bf16Steps(a, b))
                exactScales += zip(a, b).filter { $0 == $1 }.count
                scaleCount += a.count
            }
        }
        print("quantized fuse: \(differing) of \(total) codes differ from mlx_lm's (by one step); scales/biases \(exactScales) of \(scaleCount) "
              + "bit-equal, largest difference \(scaleSteps) bf16 steps")
        #expect(differing * 1000 <= total)
        #expect(scaleSteps <= 1)
        // Every other tensor (quantized or not) is the base's, byte for byte.
        for name in baseStore.tensorNames where !report.fusedTensors.contains(where: { name.hasPrefix(String($0.dropLast(".weight".count)) + ".") }) {
            #expect(Array(try fused.rawBytes(of: name)) == Array(try baseStore.rawBytes(of: name)), "\(name) copied")
        }
        let config = try String(contentsOf: output.appendingPathComponent("config.json"), encoding: .utf8)
        #expect(config.contains("\"quantization\"") && config.contains("\"group_size\": 64"))
        let difference = try Self.scores(output, Self.reference().texts["quantized"]!)
        print("quantized fuse: log-probs vs mlx_lm on its fused folder \(difference)")
        #expect(difference <= 1e-4)
    }

    @Test("fuse --dequantize writes the bf16 float folder mlx_lm fuse --dequantize writes; float32 equals the unfused adapter")
    func dequantizedLikeMLX() throws {
        let (output, report) = try Self.fuse("dequantized", dequantize: true)
        let fused = try WeightStore(folder: output)
        let mlx = try Self.mlxLayers()
        #expect(!fused.tensorNames.contains { $0.hasSuffix(".scales") || $0.hasSuffix(".biases") })
        #expect(fused.info("model.embed_tokens.weight")?.dtype == .bfloat16)
        #expect(fused.info("model.embed_tokens.weight")?.shape == [832, 128])
        var steps = 0.0, exact = 0, count = 0
        for name in report.fusedTensors {
            let a = try Self.floats(fused, name), b = try Self.floats(mlx, "dequantized/" + name)
            #expect(a.count == b.count)
            steps = max(steps, Self.bf16Steps(a, b))
            exact += zip(a, b).filter { $0 == $1 }.count
            count += a.count
        }
        print("dequantized fuse: \(exact) of \(count) fused weights bit-equal to mlx_lm's, largest difference \(steps) bf16 steps")
        #expect(steps <= 1 && (count - exact) * 1000 <= count)
        let config = try String(contentsOf: output.appendingPathComponent("config.json"), encoding: .utf8)
        #expect(!config.contains("quantization"))
        let difference = try Self.scores(output, Self.reference().texts["dequantized"]!)
        print("dequantized fuse: log-probs vs mlx_lm on its dequantized fused folder \(difference)")
        #expect(difference <= 1e-4)

        let (float32Output, _) = try Self.fuse("dequantized-f32", dtype: .float32, dequantize: true)
        #expect(try WeightStore(folder: float32Output).info("model.layers.0.self_attn.q_proj.weight")?.dtype == .float32)
        let unfused = try ModelReference.load(Self.adapterFolder)
        let float32Difference = try Self.scores(float32Output, unfused.texts)
        print("dequantized float32 fuse: log-probs vs mlx_lm's unfused base + adapter \(float32Difference)")
        #expect(float32Difference <= 1e-4)
    }

    @Test("--dtype without --dequantize on a quantized base is refused before anything is written")
    func dtypeNeedsDequantize() throws {
        let parent = try FixturePaths.temporaryDirectory("qfuse-dtype")
        let output = parent.appendingPathComponent("fused")
        #expect(throws: EngineError.self) {
            try AdapterFuser.fuse(baseFolder: Self.base, adapter: Adapter.load(path: Self.adapterFolder), output: output, dtype: .float32)
        }
        #expect(!FileManager.default.fileExists(atPath: output.path))
    }
}
