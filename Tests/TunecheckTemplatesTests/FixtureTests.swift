import Foundation
import TunecheckTestSupport
import Testing
@testable import TunecheckTemplates

/// Every fixture case was rendered by transformers' own `render_jinja_template` (see
/// scripts/fixtures/make_chat_template_fixtures.py); our render must be byte-identical or raise the same error.
struct FixtureCase: Sendable, CustomTestStringConvertible {
    var template: String
    var index: Int
    var conversation: String
    var addGenerationPrompt: Bool
    var testDescription: String { "\(template) #\(index) \(conversation) agp=\(addGenerationPrompt)" }
}

enum Fixtures {
    static let directory = TestPaths.ownFixtures.appendingPathComponent("chat-templates")

    static func files() -> [URL] {
        ((try? FileManager.default.contentsOfDirectory(at: directory, includingPropertiesForKeys: nil)) ?? [])
            .filter { $0.pathExtension == "json" }
            .sorted { $0.lastPathComponent < $1.lastPathComponent }
    }

    static func load(_ name: String) throws -> TemplateDictionary {
        let data = try Data(contentsOf: directory.appendingPathComponent("\(name).json"))
        guard case let .dictionary(d) = try TemplateValue(jsonData: data) else { throw CallFailure(message: "bad fixture") }
        return d
    }

    static let allCases: [FixtureCase] = files().flatMap { url -> [FixtureCase] in
        let name = url.deletingPathExtension().lastPathComponent
        guard let d = try? load(name), case let .array(cases)? = d["cases"] else { return [] }
        return cases.enumerated().map { i, c in
            guard case let .dictionary(cd) = c else { return FixtureCase(template: name, index: i, conversation: "?", addGenerationPrompt: false) }
            let conv: String = { if case let .string(s)? = cd["conversation"] { return s }; return "?" }()
            let agp: Bool = { if case let .bool(b)? = cd["add_generation_prompt"] { return b }; return false }()
            return FixtureCase(template: name, index: i, conversation: conv, addGenerationPrompt: agp)
        }
    }

    /// 2024-09-05T14:30:00 in UTC, the instant the generator pinned `datetime.now()` to.
    static let fixedNow = Date(timeIntervalSince1970: 1_725_546_600)
}

@Suite struct TransformersFixtureTests {
    @Test func fixturesArePresent() {
        #expect(Fixtures.files().count >= 15)
        #expect(Fixtures.allCases.count >= 300)
    }

    @Test(arguments: Fixtures.allCases)
    func rendersLikeTransformers(_ fixture: FixtureCase) throws {
        let d = try Fixtures.load(fixture.template)
        guard case let .string(source)? = d["template"], case let .array(cases)? = d["cases"],
              case let .dictionary(c) = cases[fixture.index] else {
            Issue.record("malformed fixture")
            return
        }
        func optionalString(_ v: TemplateValue?) -> String? {
            if case let .string(s)? = v { return s }
            return nil
        }
        var template = try ChatTemplate(source: source)
        template.now = { Fixtures.fixedNow }
        template.timeZone = TimeZone(identifier: "UTC")!
        var messages: [ChatMessage] = []
        if case let .array(ms)? = c["messages"] {
            for m in ms {
                guard case let .dictionary(md) = m else { continue }
                messages.append(ChatMessage(role: optionalString(md["role"]) ?? "", content: optionalString(md["content"]) ?? ""))
            }
        }
        var extra: [String: TemplateValue] = [:]
        if case let .dictionary(e)? = c["extra_context"] {
            for (k, v) in e.pairs { extra[k] = v }
        }
        let render = {
            try template.render(messages: messages, addGenerationPrompt: fixture.addGenerationPrompt,
                                bosToken: optionalString(d["bos_token"]), eosToken: optionalString(d["eos_token"]),
                                extraContext: extra)
        }
        if let expected = optionalString(c["expected"]) {
            let actual = try render()
            #expect(Array(actual.utf8) == Array(expected.utf8), "\(fixture.testDescription)\n--- expected\n\(expected)\n--- actual\n\(actual)")
        } else if let expectedError = optionalString(c["expected_error"]) {
            do {
                let actual = try render()
                Issue.record("expected error \(expectedError.debugDescription), rendered \(actual.debugDescription)")
            } catch let error as ChatTemplateError {
                switch error {
                case let .raised(message):
                    #expect(message == expectedError)
                case let .runtime(message, _, _):
                    #expect(message == expectedError)
                default:
                    Issue.record("expected \(expectedError.debugDescription), got \(error)")
                }
            }
        } else {
            Issue.record("fixture case has neither expected nor expected_error")
        }
    }
}
