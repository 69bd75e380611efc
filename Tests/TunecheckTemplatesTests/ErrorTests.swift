import Foundation
import Testing
@testable import TunecheckTemplates

@Suite struct ErrorTests {
    @Test func syntaxErrorHasPosition() {
        #expect(throws: ChatTemplateError.syntax(message: "expected end of print statement '}}', got 'b'", line: 2, column: 6)) {
            try ChatTemplate(source: "ok\n{{ a b }}")
        }
        #expect(throws: ChatTemplateError.self) { try ChatTemplate(source: "{% if x %}never closed") }
        #expect(throws: ChatTemplateError.self) { try ChatTemplate(source: "{{ 'unterminated }}") }
        #expect(throws: ChatTemplateError.self) { try ChatTemplate(source: "{# no end") }
        #expect(throws: ChatTemplateError.self) { try ChatTemplate(source: "{% endfor %}") }
    }

    @Test func unknownFilterIsNamed() throws {
        let error = #expect(throws: ChatTemplateError.self) {
            try ChatTemplate(source: "line one\n\n  {{ text | wordwrap(10) }}")
        }
        #expect(error == .unsupported(feature: "filter 'wordwrap'", line: 3, column: 13))
        #expect(error?.localizedDescription == "unsupported filter 'wordwrap' at 3:13")
    }

    @Test func unsupportedTagsAndTests() {
        #expect(throws: ChatTemplateError.unsupported(feature: "tag 'include'", line: 1, column: 4)) {
            try ChatTemplate(source: "{% include 'x.j2' %}")
        }
        #expect(throws: ChatTemplateError.unsupported(feature: "test 'escaped'", line: 1, column: 9)) {
            try ChatTemplate(source: "{{ x is escaped }}")
        }
        #expect(throws: ChatTemplateError.self) {
            try ChatTemplate(source: "{{ cycler(1, 2) }}").render(messages: [], addGenerationPrompt: false, bosToken: nil, eosToken: nil)
        }
    }

    @Test func runawayLoopIsCapped() throws {
        var t = try ChatTemplate(source: "{% for i in range(1000) %}{% for j in range(1000) %}{% for k in range(1000) %}{% endfor %}{% endfor %}{% endfor %}")
        t.limits.maxLoopIterations = 10_000
        #expect(throws: ChatTemplateError.limitExceeded(limit: "loop iteration limit of 10000", line: 1, column: 56)) {
            try t.render(messages: [], addGenerationPrompt: false, bosToken: nil, eosToken: nil)
        }
    }

    @Test func outputSizeIsCapped() throws {
        var t = try ChatTemplate(source: "{% for i in range(100000) %}{{ 'xxxxxxxxxx' * 100 }}{% endfor %}")
        t.limits.maxOutputBytes = 1 << 16
        #expect(throws: ChatTemplateError.self) {
            try t.render(messages: [], addGenerationPrompt: false, bosToken: nil, eosToken: nil)
        }
        #expect(throws: ChatTemplateError.self) {
            try ChatTemplate(source: "{{ 'x' * 1000000000 }}").render(messages: [], addGenerationPrompt: false, bosToken: nil, eosToken: nil)
        }
    }

    @Test func recursionIsCapped() throws {
        let t = try ChatTemplate(source: "{% macro f(n) %}{{ f(n + 1) }}{% endmacro %}{{ f(0) }}")
        #expect(throws: ChatTemplateError.self) {
            try t.render(messages: [], addGenerationPrompt: false, bosToken: nil, eosToken: nil)
        }
        let deep = String(repeating: "(", count: 500) + "1" + String(repeating: ")", count: 500)
        #expect(throws: ChatTemplateError.self) { try ChatTemplate(source: "{{ \(deep) }}") }
    }

    @Test func mistralRejectsNonAlternatingRoles() throws {
        let t = try ChatTemplate(source: "{% for m in messages %}{% if (m['role'] == 'user') != (loop.index0 % 2 == 0) %}{{ raise_exception('Conversation roles must alternate user/assistant/user/assistant/...') }}{% endif %}{% endfor %}")
        #expect(throws: ChatTemplateError.raised(message: "Conversation roles must alternate user/assistant/user/assistant/...")) {
            try t.render(messages: [ChatMessage(role: "user", content: "a"), ChatMessage(role: "user", content: "b")],
                         addGenerationPrompt: true, bosToken: "<s>", eosToken: "</s>")
        }
    }
}
