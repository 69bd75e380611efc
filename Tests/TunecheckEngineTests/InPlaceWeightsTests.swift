import CBLAS
import Foundation
import Testing
@testable import TunecheckEngine

/// Weights used as stored (bfloat16 / float16 in the mapped file, widened a panel at a time or converted in the GEMV)
/// give the numbers of the same model with every weight widened to float32 first: the values multiplied are the same,
/// only summation order may differ.
///
/// Tolerances:
/// - prefill, scoring, adapters (GEMMs on panels widened exactly): float32 rounding of the sums, 1e-5 per log-prob
///   (observed: printed by the tests, ~1e-6 or 0).
/// - decoding steps (the bf16/f16 GEMV sums in another order than the float32 GEMV): as decode vs prefill in
///   FastPathTests, 1e-4; greedy ids must be equal.
/// - LoRA gradients: relative 1e-4 of the gradient's norm (a float32 backward pass through the same weights).
/// - fuse: exact, every fused value is the float32 merge rounded once to the stored dtype.
struct InPlaceWeightsTests {
    static let halfFixtures = ["llama-bf16", "llama-f16-sharded"]
    static let scoringTolerance = 1e-5
    static let decodeTolerance = 1e-4
    static let gradientTolerance = 1e-4

    /// Owns float32 copies of weights.
    final class Widened {
        var buffers: [UnsafeMutablePointer<Float>] = []
        func copy(_ matrix: WeightMatrix) -> WeightMatrix {
            let target = UnsafeMutablePointer<Float>.allocate(capacity: max(matrix.count, 1))
            matrix.widen(elements: 0..<matrix.count, into: target)
            buffers.append(target)
            return WeightMatrix(UnsafePointer(target), rows: matrix.rows, columns: matrix.columns)
        }
        deinit { buffers.forEach { $0.deallocate() } }
    }

    /// The same model with every weight matrix (linear layers, routed experts, embedding, output projection) widened
    /// to float32.
    static func widened(_ model: DecoderModel) -> DecoderModel {
        let owner = Widened()
        var weights = model.weights
        for index in weights.layers.indices {
            weights.layers[index].updateLinears { linear in
                linear = Linear(name: linear.name, weight: owner.copy(linear.weight), layout: linear.layout, bias: linear.bias,
                                inFeatures: linear.inFeatures, outFeatures: linear.outFeatures, adapter: linear.adapter)
            }
            if let experts = weights.layers[index].feedForward.experts {
                let projection: ExpertWeights.Projection
                switch experts.projection {
                case .fused(let gateUp): projection = .fused(owner.copy(gateUp))
                case let .separate(gate, up): projection = .separate(gate: owner.copy(gate), up: owner.copy(up))
                }
                weights.layers[index].feedForward.experts = ExpertWeights(router: experts.router, projection: projection,
                                                                          down: owner.copy(experts.down), hidden: experts.hidden,
                                                                          width: experts.width)
            }
        }
        let tied = model.weights.tokenEmbedding.base == model.weights.outputProjection.base
        weights.tokenEmbedding = owner.copy(model.weights.tokenEmbedding)
        weights.outputProjection = tied ? weights.tokenEmbedding : owner.copy(model.weights.outputProjection)
        return DecoderModel(spec: model.spec, weights: weights, store: model.store, retained: [owner])
    }

    @Test("The fixtures are read in place in their stored dtype", arguments: halfFixtures)
    func storedDTypeIsKept(name: String) throws {
        let model = try ModelLoader.loadDecoder(folder: FixturePaths.ownModel(name))
        let expected: WeightStorage = name.contains("bf16") ? .bfloat16 : .float16
        #expect(model.weights.layers.flatMap(\.linears).allSatisfy { $0.weight.storage == expected })
        #expect(model.weights.tokenEmbedding.storage == expected)
        #expect(model.store.ownedBytes < model.weights.tokenEmbedding.byteCount, "only small tensors widened: \(model.store.ownedBytes) bytes")
    }

    @Test("Scoring and greedy generation in place equal the widened model", arguments: halfFixtures)
    func scoringAndGeneration(name: String) throws {
        let folder = FixturePaths.ownModel(name)
        let inPlace = try ModelLoader.loadDecoder(folder: folder)
        let wide = Self.widened(inPlace)
        let texts = try FastPathTests.texts(folder)
        let difference = FastPathTests.largestDifference(try Scorer(model: inPlace).score(texts), try Scorer(model: wide).score(texts))
        print("in place vs widened, \(name): scoring \(difference)")
        #expect(difference <= Self.scoringTolerance)

        let steps = FastPathTests.largestDifference(try FastPathTests.decodeSteps(inPlace, ids: texts[0]), try FastPathTests.decodeSteps(wide, ids: texts[0]))
        print("in place vs widened, \(name): decode steps \(steps)")
        #expect(steps <= Self.decodeTolerance)

        let options = GenerationOptions(maxNewTokens: 24, ignoreEOS: true)
        let prompt = Array(texts[0].prefix(6))
        let generated = try Generator(model: inPlace).generate(promptIds: prompt, options: options).ids
        #expect(generated == (try Generator(model: wide).generate(promptIds: prompt, options: options).ids))
        #expect(generated.count == 24)
    }

    @Test("An adapter on an in-place base scores as on the widened base", arguments: halfFixtures)
    func adapterScoring(name: String) throws {
        let folder = FixturePaths.ownModel(name)
        let adapter = try Adapter.load(path: AdapterFixtures.adapterPath("peft-llama"))
        let base = try ModelLoader.loadDecoder(folder: folder)
        let texts = try FastPathTests.texts(folder)
        let inPlace = try Scorer(model: adapter.attach(to: base)).score(texts)
        let wide = try Scorer(model: adapter.attach(to: Self.widened(base))).score(texts)
        let plain = try Scorer(model: base).score(texts)
        let difference = FastPathTests.largestDifference(inPlace, wide)
        print("in place vs widened with peft-llama, \(name): \(difference) (the adapter moves log-probs by \(FastPathTests.largestDifference(inPlace, plain)))")
        #expect(difference <= Self.scoringTolerance)
        #expect(FastPathTests.largestDifference(inPlace, plain) > 0.01, "the adapter has an effect")
    }

    @Test("LoRA gradients on an in-place base equal those on the widened base", arguments: halfFixtures)
    func trainingGradients(name: String) throws {
        let folder = FixturePaths.ownModel(name)
        let base = try ModelLoader.loadDecoder(folder: folder)
        let worst = try Self.largestRelativeGradientDifference(base, Self.widened(base), texts: try FastPathTests.texts(folder))
        print("in place vs widened LoRA gradients, \(name): relative \(worst)")
        #expect(worst <= Self.gradientTolerance)
    }

    /// LoRA gradients (rank 4 on the default modules, `lora_b` given random values so that every factor gets a
    /// gradient) of one pass over `texts` on each model; the largest ‖a − b‖ / ‖b‖ over the tensors.
    static func largestRelativeGradientDifference(_ first: DecoderModel, _ second: DecoderModel, texts: [[Int]]) throws -> Double {
        func gradients(_ model: DecoderModel) throws -> [[Float]] {
            let lora = try LoRAParameters(base: model, rank: 4, scale: 2, keys: nil, numLayers: nil, seed: 7)
            // lora_b starts at zero (as mlx_lm); give it values so that every factor gets a gradient.
            var generator = SeededGenerator(seed: 11)
            for tensor in lora.tensors where tensor.name.hasSuffix("lora_b") {
                for index in 0..<tensor.count { tensor.values[index] = Float.random(in: -0.1...0.1, using: &generator) }
            }
            lora.zeroGradients()
            let pass = TrainingPass(model: lora.model, threads: 1)
            let logprobs = try pass.forward(texts)
            pass.backward(logprobs.map { $0.map { _ in -1.0 } }, into: lora.gradients)
            return lora.tensors.map { Array(UnsafeBufferPointer(start: $0.gradient, count: $0.count)) }
        }
        let a = try gradients(first), b = try gradients(second)
        var worst = 0.0
        for (x, y) in zip(a, b) {
            let norm = y.reduce(0) { $0 + Double($1) * Double($1) }.squareRoot()
            let difference = zip(x, y).reduce(0) { $0 + Double($1.0 - $1.1) * Double($1.0 - $1.1) }.squareRoot()
            #expect(norm > 0)
            worst = max(worst, difference / max(norm, 1e-30))
        }
        return worst
    }

    @Test("Fusing into a half-precision base: merged weights rounded once, other tensors copied byte for byte", arguments: halfFixtures)
    func fuseOnHalfBase(name: String) throws {
        let baseFolder = FixturePaths.ownModel(name)
        let adapter = try Adapter.load(path: AdapterFixtures.adapterPath("peft-llama"))
        let parent = try FixturePaths.temporaryDirectory("fuse-inplace")
        defer { try? FileManager.default.removeItem(at: parent) }
        let output = parent.appendingPathComponent("fused")
        let report = try AdapterFuser.fuse(baseFolder: baseFolder, adapter: adapter, output: output)
        #expect(!report.fusedTensors.isEmpty)
        let model = try adapter.attach(to: ModelLoader.loadDecoder(folder: baseFolder))
        let base = model.store
        let fused = try WeightStore(folder: output)
        var adapted: [String: Linear] = [:]
        for linear in model.weights.layers.flatMap(\.linears) where linear.adapter != nil { adapted[linear.name + ".weight"] = linear }
        for tensorName in base.tensorNames {
            let info = try #require(base.info(tensorName)), stored = try #require(fused.info(tensorName))
            #expect(stored.dtype == info.dtype && stored.shape == info.shape)
            let before = try base.weightMatrix(tensorName), after = try fused.weightMatrix(tensorName)
            let beforeBytes = Data(bytes: before.base, count: before.byteCount), afterBytes = Data(bytes: after.base, count: after.byteCount)
            if let linear = adapted[tensorName] {
                // Expected: the stored base widened, + scale·B·A in float32, rounded once to the stored dtype.
                var merged = [Float](repeating: 0, count: before.count)
                merged.withUnsafeMutableBufferPointer { buffer in
                    before.widen(elements: 0..<before.count, into: buffer.baseAddress!)
                    AdapterFuser.addDelta(linear.adapter!, to: buffer.baseAddress!, layout: linear.layout, inFeatures: linear.inFeatures,
                                          outFeatures: linear.outFeatures)
                }
                let expected = merged.map { info.dtype == .float16 ? Float(Float16($0)) : Float(bitPattern: UInt32(SafeTensorsWriter.bfloat16Bits($0)) << 16) }
                #expect((0..<after.count).allSatisfy { after[$0] == expected[$0] }, "\(tensorName)")
                #expect(beforeBytes != afterBytes, "\(tensorName) changed")
            } else {
                #expect(beforeBytes == afterBytes, "\(tensorName) copied unchanged")
            }
        }
    }

    /// Products over panels, split over threads, in both orientations and every stored dtype, against sgemm on the
    /// widened matrix. The matrix is large enough for several panels (the fixtures fit in one); one thread and several
    /// agree.
    @Test(arguments: [WeightStorage.bfloat16, .float16])
    func panelProductsMatchFloat32(storage: WeightStorage) throws {
        let rows = 3000, columns = 700  // 3 tiles of whole rows (1497 per 4 MB panel); 2 column tiles of 512 × 2 row blocks
        var generator = SeededGenerator(seed: 3)
        let values = (0..<(rows * columns)).map { _ in Float.random(in: -1...1, using: &generator) }
        let halves: [UInt16] = values.map { storage == .float16 ? Float16($0).bitPattern : SafeTensorsWriter.bfloat16Bits($0) }
        try halves.withUnsafeBufferPointer { halfBuffer in
            let matrix = WeightMatrix(storage: storage, base: UnsafeRawPointer(halfBuffer.baseAddress!), rows: rows, columns: columns)
            var wide = [Float](repeating: 0, count: rows * columns)
            wide.withUnsafeMutableBufferPointer { matrix.widen(elements: 0..<(rows * columns), into: $0.baseAddress!) }
            #expect(matrix.allFinite())
            #expect(abs(matrix.sumOfSquares() - wide.reduce(0) { $0 + Double($1) * Double($1) }) < 1e-6 * Double(rows * columns))
            for batch in [1, 5] {
                for beta: Float in [0, 1] {
                    // y = x·Wᵀ (x has `columns` values per row), and y = x·W (x has `rows`).
                    let xT = (0..<(batch * columns)).map { _ in Float.random(in: -1...1, using: &generator) }
                    let x = (0..<(batch * rows)).map { _ in Float.random(in: -1...1, using: &generator) }
                    let startT = (0..<(batch * rows)).map { Float($0 % 7) }
                    let start = (0..<(batch * columns)).map { Float($0 % 5) }
                    var yT = startT, expectedT = startT, y = start, expected = start
                    WeightProducts.multiplyTransposed(matrix, x: xT, rows: batch, ldx: columns, into: &yT, ldy: rows, alpha: 0.5, beta: beta)
                    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, Int32(batch), Int32(rows), Int32(columns), 0.5, xT, Int32(columns),
                                wide, Int32(columns), beta, &expectedT, Int32(rows))
                    WeightProducts.multiply(matrix, x: x, rows: batch, ldx: rows, into: &y, ldy: columns, alpha: 0.5, beta: beta)
                    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, Int32(batch), Int32(columns), Int32(rows), 0.5, x, Int32(rows),
                                wide, Int32(columns), beta, &expected, Int32(columns))
                    // One thread (parts = 1) gives the same numbers: the panels are a fixed grid. Not compared bit for bit:
                    // tests run concurrently and OpenBLAS' thread count is process-wide state that another test may
                    // change in the middle of a product (threaded sgemm sums in another order), so 1e-5.
                    var yT1 = startT, y1 = start
                    withSingleThreadedBLAS {
                        WeightProducts.multiplyTransposed(matrix, x: xT, rows: batch, ldx: columns, into: &yT1, ldy: rows, alpha: 0.5, beta: beta)
                        WeightProducts.multiply(matrix, x: x, rows: batch, ldx: rows, into: &y1, ldy: columns, alpha: 0.5, beta: beta)
                    }
                    let threadDifference = max(zip(yT1, yT).map { abs($0 - $1) }.max()!, zip(y1, y).map { abs($0 - $1) }.max()!)
                    #expect(threadDifference <= 1e-5, "\(storage) batch \(batch) beta \(beta): one thread vs several \(threadDifference)")
                    let errorT = zip(yT, expectedT).map { abs($0 - $1) }.max()!
                    let error = zip(y, expected).map { abs($0 - $1) }.max()!
                    #expect(errorT <= 1e-4 && error <= 1e-4, "\(storage) batch \(batch) beta \(beta): \(errorT), \(error)")
                }
            }
        }
    }

    /// mlx's safetensors writer does not pad its header, so in about half of the folders it writes every 16-bit tensor
    /// starts at an odd address of the mapping. Such a folder (the fixture with one space added to each file's header,
    /// which shifts all data by one byte) is still read in place, not widened, and gives the same numbers: the kernels
    /// read through unaligned loads, and the values and summation order are the same, so the results are identical.
    @Test("16-bit tensors at odd addresses are read in place with identical results", arguments: halfFixtures)
    func oddAddressesStayInPlace(name: String) throws {
        try BadInput.withTemporaryFolder("inplace-odd") { folder in
            let shifted = try BadInput.copyFixture(name, into: folder)
            let files = try FileManager.default.contentsOfDirectory(at: shifted, includingPropertiesForKeys: nil)
                .filter { $0.pathExtension == "safetensors" }
            #expect(!files.isEmpty)
            for file in files {
                let data = try Data(contentsOf: file)
                let headerLength = Int(data.prefix(8).withUnsafeBytes { $0.loadUnaligned(as: UInt64.self) })
                // Make 8 + header length odd: the data section (and every tensor, all of even byte size) starts odd.
                let padding = (8 + headerLength) % 2 == 0 ? 1 : 0
                var length = UInt64(headerLength + padding).littleEndian
                var rewritten = Data(bytes: &length, count: 8)
                rewritten.append(data[8..<(8 + headerLength)])
                rewritten.append(contentsOf: [UInt8](repeating: UInt8(ascii: " "), count: padding))
                rewritten.append(data[(8 + headerLength)...])
                try rewritten.write(to: file)
            }
            let aligned = try ModelLoader.loadDecoder(folder: FixturePaths.ownModel(name))
            let odd = try ModelLoader.loadDecoder(folder: shifted)
            let embedding = odd.weights.tokenEmbedding
            #expect(Int(bitPattern: embedding.base) % 2 == 1, "the test shifts the tensors to odd addresses")
            #expect(odd.weights.layers.flatMap(\.linears).allSatisfy { $0.weight.storage == aligned.weights.tokenEmbedding.storage })
            #expect(embedding.storage == aligned.weights.tokenEmbedding.storage)
            #expect(odd.store.ownedBytes == aligned.store.ownedBytes, "nothing more widened: \(odd.store.ownedBytes) bytes")

            let texts = try FastPathTests.texts(FixturePaths.ownModel(name))
            #expect(try Scorer(model: odd).score(texts) == (try Scorer(model: aligned).score(texts)))
            let options = GenerationOptions(maxNewTokens: 16, ignoreEOS: true)
            let prompt = Array(texts[0].prefix(6))
            #expect(try Generator(model: odd).generate(promptIds: prompt, options: options).ids
                    == (try Generator(model: aligned).generate(promptIds: prompt, options: options).ids))
        }
    }

    @Test func nonFiniteHalfWeightsNameTheFileAndTensor() throws {
        try BadInput.withTemporaryFolder("inplace-nan") { folder in
            let model = try BadInput.copyFixture("llama-bf16", into: folder)
            let file = model.appendingPathComponent("model.safetensors")
            let parsed = try SafeTensorsFile(url: file)
            let info = try #require(parsed.tensors["model.layers.1.mlp.up_proj.weight"])
            let headerLength = Int(try Data(contentsOf: file).prefix(8).withUnsafeBytes { $0.loadUnaligned(as: UInt64.self) })
            var data = try Data(contentsOf: file)
            // bfloat16 +inf (0x7F80) in the middle of the tensor.
            let offset = 8 + headerLength + info.dataRange.lowerBound + info.dataRange.count / 2
            data[offset] = 0x80
            data[offset + 1] = 0x7F
            try data.write(to: file)
            let error = BadInput.engineError { _ = try ModelLoader.loadDecoder(folder: model) }
            #expect(error?.caseName == "nonFiniteWeights")
            BadInput.expectMessage(error, contains: [file.path, "model.layers.1.mlp.up_proj.weight"])
        }
    }

    @Test func truncatedHalfFileNamesTheFile() throws {
        try BadInput.withTemporaryFolder("inplace-truncated") { folder in
            let model = try BadInput.copyFixture("llama-bf16", into: folder)
            let file = model.appendingPathComponent("model.safetensors")
            let data = try Data(contentsOf: file)
            try data.prefix(data.count - 1000).write(to: file)
            let error = BadInput.engineError { _ = try ModelLoader.loadDecoder(folder: model) }
            #expect(error?.caseName == "invalidSafetensors")
            BadInput.expectMessage(error, contains: [file.path, "truncated"])
        }
    }

    /// Loading and scoring a bfloat16 folder of 288 MB (written here, deleted after) leaves the weights in the page
    /// cache: anonymous memory (RssAnon, sampled every 5 ms) grows by far less than the weights, where widening them
    /// would add twice their size. Other tests may run at the same time in this process, so the bound is loose
    /// (a quarter of the weights); the values are printed.
    @Test func bigBFloat16FolderAllocatesNoModelSizedBuffer() throws {
        let shape = ModelShape(name: "mem", hidden: 1024, layers: 6, heads: 8, kvHeads: 8, intermediate: 4096, vocabulary: 32000,
                               tied: false, dtype: .bfloat16)
        let folder = try FixturePaths.temporaryDirectory("inplace-memory")
        defer { try? FileManager.default.removeItem(at: folder) }
        try Self.writeCheapFolder(shape, to: folder)
        let weightBytes = Double(ModelArithmetic.parameterCount(try ModelConfigLoader.loadSpec(configURL: folder.appendingPathComponent("config.json")).spec) * 2)
        #expect(weightBytes >= 256 * 1_048_576)
        let before = try #require(ProcessMemory.current())
        let sampler = MemorySampler(interval: 0.002)
        let model = try ModelLoader.loadDecoder(folder: folder)
        let scores = try Scorer(model: model).score([Array(1...64), Array(100...163)])
        let peaks = sampler.stop()
        let after = try #require(ProcessMemory.current())
        let growth = peaks.anonymous - before.anonymousBytes
        print(String(format: "in-place memory: weights %.0f MB, anonymous +%.0f MB (peak), file-backed resident %.0f MB", weightBytes / 1e6,
                     growth / 1e6, after.fileBytes / 1e6))
        #expect(scores.allSatisfy { $0.count == 63 && $0.allSatisfy(\.isFinite) })
        #expect(growth < weightBytes / 4, "anonymous memory grew by \(growth) bytes for \(weightBytes) bytes of weights")
        #expect(after.fileBytes > weightBytes / 2, "the weights are read from the mapping (file-backed resident \(after.fileBytes))")
    }

    /// A bfloat16 folder of `shape` whose weights repeat one 1M-value block (fast to write in a debug build).
    static func writeCheapFolder(_ shape: ModelShape, to folder: URL) throws {
        let config = """
        {"model_type": "llama", "hidden_size": \(shape.hidden), "intermediate_size": \(shape.intermediate), "num_hidden_layers": \(shape.layers),
         "num_attention_heads": \(shape.heads), "num_key_value_heads": \(shape.kvHeads), "vocab_size": \(shape.vocabulary),
         "max_position_embeddings": 2048, "rms_norm_eps": 1e-05, "tie_word_embeddings": false, "hidden_act": "silu", "torch_dtype": "bfloat16"}
        """
        try Data(config.utf8).write(to: folder.appendingPathComponent("config.json"))
        let kv = shape.kvHeads * shape.headDim
        var headers: [TensorHeader] = [TensorHeader(name: "model.embed_tokens.weight", dtype: .bfloat16, shape: [shape.vocabulary, shape.hidden]),
                                       TensorHeader(name: "lm_head.weight", dtype: .bfloat16, shape: [shape.vocabulary, shape.hidden]),
                                       TensorHeader(name: "model.norm.weight", dtype: .bfloat16, shape: [shape.hidden])]
        for layer in 0..<shape.layers {
            let prefix = "model.layers.\(layer)"
            for (suffix, dims) in [("input_layernorm.weight", [shape.hidden]), ("post_attention_layernorm.weight", [shape.hidden]),
                                   ("self_attn.q_proj.weight", [shape.hidden, shape.hidden]), ("self_attn.k_proj.weight", [kv, shape.hidden]),
                                   ("self_attn.v_proj.weight", [kv, shape.hidden]), ("self_attn.o_proj.weight", [shape.hidden, shape.hidden]),
                                   ("mlp.gate_proj.weight", [shape.intermediate, shape.hidden]), ("mlp.up_proj.weight", [shape.intermediate, shape.hidden]),
                                   ("mlp.down_proj.weight", [shape.hidden, shape.intermediate])] {
                headers.append(TensorHeader(name: "\(prefix).\(suffix)", dtype: .bfloat16, shape: dims))
            }
        }
        // One block of bfloat16 bits, encoded once and written repeatedly, with a plain file write: the project's
        // writer fsyncs (atomic, durable), which for 300 MB of test data costs the disk's time, not the test's.
        var generator = SeededGenerator(seed: 5)
        let block = (0..<(1 << 20)).map { _ in SafeTensorsWriter.bfloat16Bits(Float.random(in: -0.03...0.03, using: &generator)) }
        var header: [String: Any] = [:]
        var offset = 0
        for tensor in headers {
            let bytes = tensor.shape.reduce(1, *) * 2
            header[tensor.name] = ["dtype": "BF16", "shape": tensor.shape, "data_offsets": [offset, offset + bytes]] as [String: Any]
            offset += bytes
        }
        var headerData = try JSONSerialization.data(withJSONObject: header, options: [.sortedKeys])
        headerData.append(contentsOf: [UInt8](repeating: UInt8(ascii: " "), count: (8 - headerData.count % 8) % 8))
        let url = folder.appendingPathComponent("model.safetensors")
        FileManager.default.createFile(atPath: url.path, contents: nil)
        let handle = try FileHandle(forWritingTo: url)
        defer { try? handle.close() }
        var length = UInt64(headerData.count).littleEndian
        try handle.write(contentsOf: Data(bytes: &length, count: 8) + headerData)
        let blockData = block.withUnsafeBytes { Data($0) }
        for tensor in headers {
            let count = tensor.shape.reduce(1, *)
            if tensor.name.hasSuffix("norm.weight") {
                let ones = [UInt16](repeating: SafeTensorsWriter.bfloat16Bits(1), count: count)
                try handle.write(contentsOf: ones.withUnsafeBytes { Data($0) })
                continue
            }
            var written = 0
            while written < count {
                let length = min(block.count, count - written)
                try handle.write(contentsOf: length == block.count ? blockData : blockData.prefix(2 * length))
                written += length
            }
        }
    }
}
