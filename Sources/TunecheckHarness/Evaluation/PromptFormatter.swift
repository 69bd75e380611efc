import Foundation
import TunecheckEngine
import TunecheckTemplates

/// Turns an evalset prompt into token ids: as written (encoded with the tokenizer's special tokens, like
/// `tokenizer(prompt)`), or wrapped in the model's chat template as one user turn with the generation prompt, then
/// encoded without adding special tokens (the template writes them), as `apply_chat_template(tokenize=True)` does.
enum PromptFormatter {
    static func promptIds(_ prompt: String, model: LanguageModel, mode: GenerationSettings.ChatTemplateMode) throws -> [Int] {
        let ids: [Int]
        switch mode {
        case .none:
            ids = model.tokenizer.encode(prompt)
        case .auto:
            ids = model.tokenizer.encode(try render(prompt, model: model), addSpecialTokens: false)
        }
        guard !ids.isEmpty else { throw HarnessError.missingInput("a prompt encodes to no tokens: \(prompt.debugDescription)") }
        return ids
    }

    static func render(_ prompt: String, model: LanguageModel) throws -> String {
        let tokenizer = model.tokenizer
        guard let source = tokenizer.chatTemplate else {
            throw HarnessError.missingInput("\(model.folder.path): chat_template: auto, but the tokenizer has no chat template (tokenizer_config.json or chat_template.jinja)")
        }
        do {
            let template = try ChatTemplate(source: source)
            return try template.render(messages: [ChatMessage(role: "user", content: prompt)], addGenerationPrompt: true,
                                       bosToken: tokenizer.bosTokenId.flatMap { tokenizer.token(forId: $0) },
                                       eosToken: tokenizer.eosTokenId.flatMap { tokenizer.token(forId: $0) })
        } catch let error as ChatTemplateError {
            throw HarnessError.invalidCheckpoint(path: model.folder.appendingPathComponent("tokenizer_config.json").path,
                                                 reason: "chat template: \(error.errorDescription ?? "\(error)")")
        }
    }
}
