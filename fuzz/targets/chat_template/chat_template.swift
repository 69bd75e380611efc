import Foundation
import FuzzSupport
import TunecheckTemplates

/// The chat-template interpreter. Input: the template source, a NUL byte, then message contents separated by
/// NUL (roles alternate user/assistant after an optional leading system message).
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzChatTemplate(_ data: UnsafePointer<UInt8>?, _ size: Int) -> CInt {
    guard let data else { return 0 }
    let (sourceBytes, rest) = Fuzz.splitAtNUL(UnsafeRawBufferPointer(start: data, count: size))
    let source = String(decoding: sourceBytes, as: UTF8.self)
    let contents = rest.split(separator: 0, omittingEmptySubsequences: false).prefix(8).map { String(decoding: $0, as: UTF8.self) }
    var messages: [ChatMessage] = []
    for (index, content) in contents.enumerated() {
        let role = index == 0 && content.hasPrefix("S") ? "system" : (messages.count % 2 == 0 ? "user" : "assistant")
        messages.append(ChatMessage(role: role, content: content))
    }
    Fuzz.run {
        var template = try ChatTemplate(source: source)
        template.now = { Date(timeIntervalSince1970: 1_700_000_000) }
        _ = try template.render(messages: messages, addGenerationPrompt: true, bosToken: "<s>", eosToken: "</s>")
        _ = try template.render(messages: messages, addGenerationPrompt: false, bosToken: nil, eosToken: nil)
    }
    return 0
}

@_cdecl("fuzz_chat_template_main")
public func fuzzMain(_ argc: CInt, _ argv: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>) -> CInt {
    Fuzz.driver(argc, argv, fuzzChatTemplate)
}
