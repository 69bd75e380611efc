import Foundation
import Testing
@testable import TunecheckEngine

/// Granite 4.0-H routed experts used in place: a bfloat16 / float16 mixture-of-experts model computes what the same
/// model with its experts (and every other weight matrix) widened to float32 computes. The half-precision fixtures are
/// made here from the float32 `granite-hybrid-moe-nope` (every tensor rounded once to the dtype, written to a temporary
/// folder): both sides of each comparison read the same rounded values, so only summation order may differ.
///
/// Tolerances are `InPlaceWeightsTests`': scoring 1e-5 per log-prob (panels widened exactly, float32 sums), decoding
/// steps 1e-4 (the 16-bit GEMV sums in another order than the float32 one), greedy ids equal, LoRA gradients 1e-4
/// relative to each tensor's gradient norm.
struct InPlaceExpertsTests {
    static let fixture = "granite-hybrid-moe-nope"
    static let dtypes: [DType] = [.bfloat16, .float16]

    /// `fixture` with every tensor rounded to `dtype`, in a new temporary folder (the caller removes `parent`).
    static func convertedFixture(_ dtype: DType) throws -> (folder: URL, parent: URL) {
        let source = FixturePaths.ownModel(fixture)
        let parent = try FixturePaths.temporaryDirectory("moe-\(dtype.rawValue)")
        let folder = parent.appendingPathComponent(fixture)
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        let store = try WeightStore(folder: source)
        try withExtendedLifetime(store) {
            let tensors = try store.tensorNames.map { name in
                let tensor = try store.floatTensor(name)
                return TensorToWrite(name: name, dtype: dtype, shape: tensor.shape, values: tensor.buffer)
            }
            try SafeTensorsWriter.write(tensors, metadata: ["format": "pt"], to: folder.appendingPathComponent("model.safetensors"))
        }
        let config = try String(contentsOf: source.appendingPathComponent("config.json"), encoding: .utf8)
        let typeName = dtype == .bfloat16 ? "bfloat16" : "float16"
        let converted = config.replacingOccurrences(of: #""torch_dtype": "float32""#, with: #""torch_dtype": "\#(typeName)""#)
        #expect(converted != config, "the fixture's config names its dtype")
        try converted.write(to: folder.appendingPathComponent("config.json"), atomically: true, encoding: .utf8)
        try FileManager.default.copyItem(at: source.appendingPathComponent("generation_config.json"),
                                         to: folder.appendingPathComponent("generation_config.json"))
        return (folder, parent)
    }

    @Test("Routed experts are read in place in their stored dtype; only small tensors are widened", arguments: dtypes)
    func expertsStayInPlace(dtype: DType) throws {
        let (folder, parent) = try Self.convertedFixture(dtype)
        defer { try? FileManager.default.removeItem(at: parent) }
        let model = try ModelLoader.loadDecoder(folder: folder)
        let storage = try #require(WeightStorage(dtype))
        let experts = model.weights.layers.compactMap(\.feedForward.experts)
        #expect(experts.count == model.spec.layerCount)
        #expect(experts.allSatisfy { $0.matrices.allSatisfy { $0.storage == storage } })
        #expect(model.weights.layers.flatMap(\.linears).allSatisfy { $0.weight.storage == storage })
        // The experts point into the mapping: their bytes are the file's.
        let file = try SafeTensorsFile(url: folder.appendingPathComponent("model.safetensors"))
        let info = try #require(file.tensors["model.layers.0.block_sparse_moe.input_linear.weight"])
        #expect(experts[0].matrices[0].byteCount == info.dataRange.count)
        // Owned float32 memory is at most the tensors that are not weight matrices (norms, conv taps, Mamba's vectors,
        // routers): widening the experts would add 4 bytes for each of their values.
        let store = model.store
        var matrixValues = model.weights.layers.flatMap(\.linears).reduce(0) { $0 + $1.weight.count } + model.weights.tokenEmbedding.count
        if model.weights.outputProjection.base != model.weights.tokenEmbedding.base { matrixValues += model.weights.outputProjection.count }
        matrixValues += experts.reduce(0) { $0 + $1.matrices.reduce(0) { $0 + $1.count } }
        let allValues = store.tensorNames.reduce(0) { $0 + (store.info($1)?.elementCount ?? 0) }
        let expertBytes = experts.reduce(0) { $0 + 4 * $1.matrices.reduce(0) { $0 + $1.count } }
        print("MoE \(dtype.rawValue): owned \(store.ownedBytes) bytes, small tensors \(4 * (allValues - matrixValues)), experts as float32 \(expertBytes)")
        #expect(store.ownedBytes <= 4 * (allValues - matrixValues))
        #expect(store.ownedBytes < expertBytes)
    }

    @Test("Scoring, decoding and greedy generation with in-place experts equal the widened model", arguments: dtypes)
    func scoringAndGeneration(dtype: DType) throws {
        let (folder, parent) = try Self.convertedFixture(dtype)
        defer { try? FileManager.default.removeItem(at: parent) }
        let inPlace = try ModelLoader.loadDecoder(folder: folder)
        let wide = InPlaceWeightsTests.widened(inPlace)
        let texts = try FastPathTests.texts(FixturePaths.ownModel(Self.fixture))
        let scores = try Scorer(model: inPlace).score(texts)
        let difference = FastPathTests.largestDifference(scores, try Scorer(model: wide).score(texts))
        print("MoE in place vs widened, \(dtype.rawValue): scoring \(difference)")
        #expect(difference <= InPlaceWeightsTests.scoringTolerance)
        #expect(scores.allSatisfy { $0.allSatisfy(\.isFinite) })

        // One row at a time: every expert product is a GEMV on the stored 16-bit weights.
        let steps = FastPathTests.largestDifference(try FastPathTests.decodeSteps(inPlace, ids: texts[0]), try FastPathTests.decodeSteps(wide, ids: texts[0]))
        print("MoE in place vs widened, \(dtype.rawValue): decode steps \(steps)")
        #expect(steps <= InPlaceWeightsTests.decodeTolerance)

        let options = GenerationOptions(maxNewTokens: 24, ignoreEOS: true)
        let prompt = Array(texts[0].prefix(6))
        let generated = try Generator(model: inPlace).generate(promptIds: prompt, options: options).ids
        #expect(generated == (try Generator(model: wide).generate(promptIds: prompt, options: options).ids))
        #expect(generated.count == 24)
    }

    /// LoRA on every default module: the gradients of the lower layers' adapters flow back through each block's
    /// experts (the input gradient `d[gate | up] · W_in`, `dOut · W_down` on the stored weights).
    @Test("LoRA gradients through in-place experts equal those through widened experts", arguments: dtypes)
    func trainingGradients(dtype: DType) throws {
        let (folder, parent) = try Self.convertedFixture(dtype)
        defer { try? FileManager.default.removeItem(at: parent) }
        let base = try ModelLoader.loadDecoder(folder: folder)
        let texts = try FastPathTests.texts(FixturePaths.ownModel(Self.fixture))
        let worst = try InPlaceWeightsTests.largestRelativeGradientDifference(base, InPlaceWeightsTests.widened(base), texts: texts)
        print("MoE in place vs widened LoRA gradients, \(dtype.rawValue): relative \(worst)")
        #expect(worst <= InPlaceWeightsTests.gradientTolerance)
    }
}
