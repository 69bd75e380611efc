import Foundation

/// The `post_processor` stage for a single sequence: adds the special tokens a model expects
/// around the encoded text (BOS for Llama, `<s> … </s>` for RoBERTa). Pair templates are not used
/// by this tool and are ignored.
indirect enum PostProcessor: Sendable {
    /// Each element is either fixed ids (a special token) or the encoded sequence.
    case template([TemplatePiece])
    case sequence([PostProcessor])
    /// `ByteLevel` only adjusts offsets, so it is a no-op for ids.
    case none

    enum TemplatePiece: Sendable, Equatable {
        case ids([Int])
        case sequence
    }

    static func parse(_ node: JSONNode) throws -> PostProcessor {
        let type = try node.type()
        switch type {
        case "TemplateProcessing":
            var specialIds: [String: [Int]] = [:]
            if let specials = node.value("special_tokens")?.object {
                for (name, raw) in zip(specials.keys, specials.values) {
                    guard let rawIds = raw.object?["ids"]?.array, case let ids = rawIds.compactMap(\.int), ids.count == rawIds.count else {
                        throw node.invalid("special_tokens.\(name)", "expected an object with integer 'ids'")
                    }
                    specialIds[name] = ids
                }
            }
            let single = try node.array("single")
            var pieces: [TemplatePiece] = []
            for (index, raw) in single.enumerated() {
                guard let element = raw.object else {
                    throw node.invalid("single[\(index)]", "expected an object")
                }
                if element["Sequence"] != nil {
                    pieces.append(.sequence)
                } else if let name = element["SpecialToken"]?.object?["id"]?.string {
                    guard let ids = specialIds[name] else {
                        throw node.invalid("single[\(index)]", "special token '\(name)' is not listed in special_tokens")
                    }
                    pieces.append(.ids(ids))
                } else {
                    throw node.invalid("single[\(index)]", "expected a Sequence or SpecialToken element")
                }
            }
            return .template(pieces)
        case "RobertaProcessing", "BertProcessing":
            return .template([.ids([try tokenId(node, "cls")]), .sequence, .ids([try tokenId(node, "sep")])])
        case "ByteLevel":
            return .none
        case "Sequence":
            return .sequence(try node.objects("processors").map(parse))
        default:
            throw TokenizerError.unsupported(path: node.path, component: "post-processor", type: type)
        }
    }

    /// `cls` / `sep` are serialised as `["<s>", 0]`.
    private static func tokenId(_ node: JSONNode, _ key: String) throws -> Int {
        let pair = try node.array(key)
        guard pair.count == 2, let id = pair[1].int else {
            throw node.invalid(key, "expected [token, id]")
        }
        return id
    }

    func process(_ ids: [Int]) -> [Int] {
        switch self {
        case .none:
            return ids
        case .sequence(let steps):
            return steps.reduce(ids) { $1.process($0) }
        case .template(let pieces):
            var output: [Int] = []
            output.reserveCapacity(ids.count + 4)
            for piece in pieces {
                switch piece {
                case .ids(let special): output += special
                case .sequence: output += ids
                }
            }
            return output
        }
    }
}
