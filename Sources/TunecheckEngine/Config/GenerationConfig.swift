import Foundation
import TunecheckJSON

/// The parts of `generation_config.json` (and the token ids of `config.json`) generation needs.
/// `eos_token_id` may be one id or a list (Llama 3 lists several).
public struct GenerationConfig: Sendable, Equatable {
    public var bosTokenId: Int?
    public var eosTokenIds: [Int]
    public var padTokenId: Int?

    public init(bosTokenId: Int? = nil, eosTokenIds: [Int] = [], padTokenId: Int? = nil) {
        self.bosTokenId = bosTokenId
        self.eosTokenIds = eosTokenIds
        self.padTokenId = padTokenId
    }

    /// Reads `generation_config.json` when present, falling back to the ids in `config.json`.
    public static func load(folder: URL) throws -> GenerationConfig {
        var result = GenerationConfig()
        for name in ["config.json", "generation_config.json"] {
            let url = folder.appendingPathComponent(name)
            let data: Data
            do { data = try BoundedFile.read(url, limit: BoundedFile.Limit.config) } catch {
                if error.isMissing { continue }
                throw EngineError.unreadable(path: url.path, reason: error.reason)
            }
            let root: JSONValue
            do { root = try JSONParser.parse([UInt8](data)) } catch {
                throw EngineError.invalidConfig(path: url.path, reason: "not valid JSON (\(error))")
            }
            guard let dictionary = root.object else {
                throw EngineError.invalidConfig(path: url.path, reason: "expected a JSON object")
            }
            // Later files (generation_config.json) override earlier ones field by field.
            if let bos = try tokenIds(dictionary["bos_token_id"], field: "bos_token_id", path: url.path)?.first { result.bosTokenId = bos }
            if let eos = try tokenIds(dictionary["eos_token_id"], field: "eos_token_id", path: url.path) { result.eosTokenIds = eos }
            if let pad = try tokenIds(dictionary["pad_token_id"], field: "pad_token_id", path: url.path)?.first { result.padTokenId = pad }
        }
        return result
    }

    /// nil for absent or null; an id or a list of ids otherwise.
    static func tokenIds(_ value: JSONValue?, field: String, path: String) throws -> [Int]? {
        guard let value, !value.isNull else { return nil }
        if let list = value.array {
            return try list.map { element in
                guard let id = SafeTensorsFile.exactInteger(element), id >= 0 else {
                    throw EngineError.invalidConfig(path: path, reason: "\(field) must hold non-negative integer token ids")
                }
                return id
            }
        }
        guard let id = SafeTensorsFile.exactInteger(value), id >= 0 else {
            throw EngineError.invalidConfig(path: path, reason: "\(field) must be a non-negative integer token id or a list of them")
        }
        return [id]
    }
}
