import Foundation

/// One chat message as evalsets provide it.
public struct ChatMessage: Sendable, Equatable {
    public var role: String
    public var content: String
    public init(role: String, content: String) {
        self.role = role
        self.content = content
    }
}

/// A model's `chat_template` (from `tokenizer_config.json`), parsed once and rendered per prompt exactly like
/// transformers' `tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=...)`.
public struct ChatTemplate: Sendable {
    public let source: String
    let nodes: [Node]

    /// The clock behind `strftime_now` (Llama 3.2, Granite and Mistral Small print today's date). Replace it to
    /// make renders reproducible.
    public var now: @Sendable () -> Date = { Date() }
    /// The time zone `strftime_now` formats in; transformers uses the process's local time.
    public var timeZone: TimeZone = .current
    var limits = RenderLimits()

    /// Parses the template. Throws `ChatTemplateError.syntax` or `.unsupported` with the line and column.
    public init(source: String) throws {
        self.source = source
        var lexer = Lexer(source: source)
        let tokens = try lexer.tokenize()
        var parser = Parser(tokens: tokens)
        self.nodes = try parser.parseTemplate()
    }

    /// Renders `messages`. Like transformers, the template sees `messages`, `add_generation_prompt`, `tools`
    /// and `documents` (None unless given in `extraContext`), `bos_token`/`eos_token` when known, and every
    /// `extraContext` entry (e.g. `tools`, `date_string`, `enable_thinking`).
    public func render(messages: [ChatMessage], addGenerationPrompt: Bool, bosToken: String?, eosToken: String?,
                       extraContext: [String: TemplateValue] = [:]) throws -> String {
        var context: [String: TemplateValue] = [
            "messages": .array(messages.map { .dictionary(TemplateDictionary([("role", .string($0.role)), ("content", .string($0.content))])) }),
            "add_generation_prompt": .bool(addGenerationPrompt),
            // render_jinja_template passes these explicitly, so templates see them as defined-but-None.
            "tools": .none,
            "documents": .none,
        ]
        if let bosToken { context["bos_token"] = .string(bosToken) }
        if let eosToken { context["eos_token"] = .string(eosToken) }
        for (k, v) in extraContext { context[k] = v }
        let globals = Globals.make(now: now, timeZone: timeZone, maxRange: min(limits.maxLoopIterations, 100_000))
        let interpreter = Interpreter(context: context, globals: globals, limits: limits)
        return try interpreter.render(nodes)
    }
}
