import Foundation
import TunecheckEngine

/// Turns an evalset prompt into token ids: as written (encoded with the tokenizer's special tokens, like
/// `tokenizer(prompt)`), or wrapped in the model's chat template as a single user turn with the generation prompt.
enum PromptFormatter {
    static func promptIds(_ prompt: String, model: LanguageModel, mode: GenerationSettings.ChatTemplateMode) throws -> [Int] {
        switch mode {
        case .none:
            let ids = model.tokenizer.encode(prompt)
            guard !ids.isEmpty else { throw HarnessError.missingInput("a prompt encodes to no tokens: \(prompt.debugDescription)") }
            return ids
        case .auto:
            throw HarnessError.missingInput("chat_template: auto is not available yet")
        }
    }
}
