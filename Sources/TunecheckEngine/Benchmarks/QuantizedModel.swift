import Foundation
import TunecheckJSON

/// Writes an mlx affine-quantized copy of a float model folder, as `mlx_lm.convert -q` lays it out
/// (docs/quantized-weights.md): every 2-D `*.weight` whose input dimension the group size divides (linear layers, the
/// embedding, the output projection; not norms) becomes `P.weight` (U32 packed codes), `P.scales` and `P.biases` (the
/// source's float dtype), other tensors are copied; `config.json` gains `quantization` and `quantization_config`.
/// For benchmarks (`tunecheck bench --quantize`): streamed tensor by tensor, so quantizing a 7B folder holds one
/// tensor's scales and biases, not the model.
public enum QuantizedModel {
    /// Quantizes `source` into `target` with `bits` and `groupSize` (mlx's defaults: 4 bits, groups of 64).
    public static func write(from source: URL, to target: URL, bits: Int, groupSize: Int = 64) throws {
        guard AffineQuantization.supportedBits.contains(bits), AffineQuantization.supportedGroupSizes.contains(groupSize) else {
            throw EngineError.invalidInput("quantize: bits must be 2, 3, 4, 5, 6 or 8 and the group size 32, 64 or 128")
        }
        let store = try WeightStore(folder: source)
        let floatType = store.dominantDType
        var headers: [TensorHeader] = []
        // Per output tensor: the source tensor and which part of its quantization it is (nil: copied as is).
        var plan: [(source: String, part: String?)] = []
        for name in store.tensorNames {
            let info = store.info(name)!
            if name.hasSuffix(".weight"), info.shape.count == 2, info.shape[1] % groupSize == 0, !name.contains("norm") {
                let module = String(name.dropLast(".weight".count))
                let rows = info.shape[0], columns = info.shape[1]
                headers += [TensorHeader(name: name, dtype: .uint32, shape: [rows, columns * bits / 32]),
                            TensorHeader(name: module + ".scales", dtype: floatType, shape: [rows, columns / groupSize]),
                            TensorHeader(name: module + ".biases", dtype: floatType, shape: [rows, columns / groupSize])]
                plan += [(name, "weight"), (name, "scales"), (name, "biases")]
            } else {
                headers.append(TensorHeader(name: name, dtype: info.dtype, shape: info.shape))
                plan.append((name, nil))
            }
        }
        try FileManager.default.createDirectory(at: target, withIntermediateDirectories: true)
        var scales: [Float] = [], biases: [Float] = []
        try SafeTensorsWriter.write(streaming: headers, metadata: ["format": "mlx"], to: target.appendingPathComponent("model.safetensors")) { index, sink in
            let (name, part) = plan[index]
            let matrix = try store.weightMatrix(name)
            switch part {
            case nil:
                try AdapterFuser.streamWidened(matrix, into: sink)
            case "weight":
                (scales, biases) = try quantize(matrix, bits: bits, groupSize: groupSize, into: sink)
            case "scales":
                try scales.withUnsafeBufferPointer { try sink.write($0) }
            default:
                try biases.withUnsafeBufferPointer { try sink.write($0) }
            }
        }
        let configURL = source.appendingPathComponent("config.json")
        guard var config = try JSONParser.parse([UInt8](Data(contentsOf: configURL))).object else {
            throw EngineError.invalidConfig(path: configURL.path, reason: "expected a JSON object")
        }
        let quantization = JSONValue.object(JSONObject(["group_size": .from(groupSize), "bits": .from(bits), "mode": .string("affine")]))
        config.set("quantization", quantization)
        config.set("quantization_config", quantization)
        try AtomicWrite.write(Data(JSONWriter.string(.object(config)).utf8), to: target.appendingPathComponent("config.json"))
    }

    /// mlx's affine quantization of one group (`mx.quantize`): the range [min, max] is split into 2^bits − 1 steps; the
    /// end of larger magnitude is represented exactly (scale = edge / round(edge / scale)), the other end rounds.
    /// Returns (scale, bias); `codes` receives round((w − bias) / scale) clipped to [0, 2^bits − 1]. Rounding is to
    /// nearest, ties to even, as mlx's (half away from zero differs on ties: checked against `mx.quantize` on the fused
    /// QLoRA layers, where ties are common because the inputs are bf16).
    static func quantizeGroup(_ values: UnsafeBufferPointer<Float>, bits: Int, codes: UnsafeMutablePointer<UInt32>) -> (Float, Float) {
        let levels = Float((1 << bits) - 1)
        var low = Float.infinity, high = -Float.infinity
        for value in values { low = min(low, value); high = max(high, value) }
        let lowIsEdge = abs(low) > abs(high)
        var scale = max((high - low) / levels, 1e-7)
        scale = lowIsEdge ? scale : -scale
        let edge = lowIsEdge ? low : high
        let steps = (edge / scale).rounded(.toNearestOrEven)
        if steps != 0 { scale = edge / steps }
        let bias = steps == 0 ? 0 : edge
        for (index, value) in values.enumerated() {
            codes[index] = UInt32(min(max(((value - bias) / scale).rounded(.toNearestOrEven), 0), levels))
        }
        return (scale, bias)
    }

    /// Writes `matrix`'s packed codes through `sink` (a block of rows at a time) and returns its scales and biases.
    static func quantize(_ matrix: WeightMatrix, bits: Int, groupSize: Int, into sink: TensorSink) throws -> ([Float], [Float]) {
        try quantize(matrix, bits: bits, groupSize: groupSize) { try sink.writeRaw($0) }
    }

    /// mlx's affine quantization of `matrix` (`mx.quantize`, `quantizeGroup` per group): hands the packed (rows,
    /// columns·bits/32) uint32 words to `emit` a block of rows at a time and returns the (rows, columns/groupSize)
    /// scales and biases in float32 (rounded to the model's dtype by whoever stores them, as mlx does). The one affine
    /// quantizer of the codebase: `bench --quantize` and `fuse` onto a quantized base both use it.
    static func quantize(_ matrix: WeightMatrix, bits: Int, groupSize: Int,
                         emit: (UnsafeRawBufferPointer) throws -> Void) throws -> ([Float], [Float]) {
        let columns = matrix.columns, groups = columns / groupSize, wordsPerRow = columns * bits / 32
        var scales = [Float](repeating: 0, count: matrix.rows * groups), biases = scales
        let blockRows = max(1, (1 << 18) / columns)
        let values = UnsafeMutablePointer<Float>.allocate(capacity: blockRows * columns)
        let codes = UnsafeMutablePointer<UInt32>.allocate(capacity: columns)
        let words = UnsafeMutablePointer<UInt32>.allocate(capacity: blockRows * wordsPerRow)
        defer { values.deallocate(); codes.deallocate(); words.deallocate() }
        var row = 0
        while row < matrix.rows {
            let count = min(blockRows, matrix.rows - row)
            matrix.widen(rows: row..<(row + count), columns: 0..<columns, into: values)
            words.initialize(repeating: 0, count: count * wordsPerRow)
            for r in 0..<count {
                for group in 0..<groups {
                    let start = values + r * columns + group * groupSize
                    let (scale, bias) = quantizeGroup(UnsafeBufferPointer(start: start, count: groupSize), bits: bits, codes: codes + group * groupSize)
                    scales[(row + r) * groups + group] = scale
                    biases[(row + r) * groups + group] = bias
                }
                // Little end first: code c at bits [c·bits, (c+1)·bits) of the row's words.
                let rowWords = words + r * wordsPerRow
                for column in 0..<columns {
                    let bit = column * bits, code = UInt64(codes[column])
                    rowWords[bit / 32] |= UInt32(truncatingIfNeeded: code << UInt64(bit % 32))
                    if bit % 32 + bits > 32 { rowWords[bit / 32 + 1] |= UInt32(truncatingIfNeeded: code >> UInt64(32 - bit % 32)) }
                }
            }
            try emit(UnsafeRawBufferPointer(start: words, count: count * wordsPerRow * 4))
            row += count
        }
        return (scales, biases)
    }
}
