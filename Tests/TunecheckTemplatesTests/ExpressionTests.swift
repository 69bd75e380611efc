import Foundation
import Testing
@testable import TunecheckTemplates

private func render(_ source: String, _ context: [String: TemplateValue] = [:]) throws -> String {
    try ChatTemplate(source: source).render(messages: [], addGenerationPrompt: false, bosToken: nil, eosToken: nil,
                                            extraContext: context)
}

struct ExpressionCase: Sendable, CustomTestStringConvertible {
    var template: String
    var expected: String
    var testDescription: String { template.prefix(60).debugDescription }

    /// Expected outputs were produced by jinja2 configured like transformers (unit/expressions.json).
    static let all: [ExpressionCase] = {
        let url = Fixtures.directory.appendingPathComponent("unit/expressions.json")
        guard let data = try? Data(contentsOf: url), case let .array(items)? = try? TemplateValue(jsonData: data) else { return [] }
        return items.compactMap { item in
            guard case let .dictionary(d) = item, case let .string(t)? = d["template"], case let .string(e)? = d["expected"] else { return nil }
            return ExpressionCase(template: t, expected: e)
        }
    }()
}

@Suite struct ExpressionTests {
    @Test(arguments: ExpressionCase.all)
    func matchesJinja(_ c: ExpressionCase) throws {
        #expect(try render(c.template) == c.expected)
    }

    @Test func expressionCasesLoaded() { #expect(ExpressionCase.all.count >= 9) }

    @Test(arguments: [
        ("{{ 1 + 2 * 3 }}", "7"),
        ("{{ 'a' ~ 1 + 2 }}", ""),          // `~` binds tighter than `+`: ('a' ~ 1) + 2, a TypeError as in Jinja
        ("{{ not false and false }}", "False"),
        ("{{ -2 ** 2 }}", "4"),              // Jinja applies unary minus before `**`
        ("{{ 10 - 2 - 3 }}", "5"),
        ("{{ [1,2,3] | length > 2 }}", "True"),
        ("{{ 'x' if false }}", ""),
        ("{{ 'ab' 'cd' }}", "abcd"),
    ])
    func precedence(_ source: String, _ expected: String) throws {
        if source == "{{ 'a' ~ 1 + 2 }}" {
            // ('a' ~ 1) + 2 → str + int is a TypeError in Jinja too.
            #expect(throws: ChatTemplateError.self) { try render(source) }
            return
        }
        #expect(try render(source) == expected)
    }

    @Test func loopVariables() throws {
        let out = try render("{% for x in ['a','b','c'] %}{{ loop.index0 }}{{ loop.index }}{{ loop.first }}{{ loop.last }}{{ loop.length }}{{ loop.revindex }};{% endfor %}")
        #expect(out == "01TrueFalse33;12FalseFalse32;23FalseTrue31;")
        #expect(try render("{% for a, b in items %}{{ a }}{{ b }}{% endfor %}", ["items": [["x", 1], ["y", 2]]]) == "x1y2")
        #expect(try render("{% for k in d %}{{ k }}{% endfor %}", ["d": ["z": 1, "a": 2]]).count == 2)
    }

    @Test func namespaceAndScoping() throws {
        #expect(try render("{% set ns = namespace(n=1) %}{% for i in range(3) %}{% set ns.n = ns.n * 2 %}{% endfor %}{{ ns.n }}") == "8")
        #expect(try render("{% set x = 1 %}{% for i in [1] %}{% set x = 2 %}{% endfor %}{{ x }}") == "1")
        #expect(try render("{% set x = 1 %}{% if true %}{% set x = 2 %}{% endif %}{{ x }}") == "2")
        #expect(throws: ChatTemplateError.self) { try render("{% set s = 'a' %}{% set s.x = 1 %}") }
    }

    @Test func whitespaceControl() throws {
        #expect(try render("a  {{- 'b' -}}  c") == "abc")
        #expect(try render("a\n{% if true %}\nb\n{% endif %}\nc") == "a\nb\nc")
        #expect(try render("a\n    {% if true %}b{% endif %}") == "a\nb")
        #expect(try render("x {# comment #} y") == "x  y")
        #expect(try render("line\n") == "line")
    }

    @Test func undefinedBehaviour() throws {
        #expect(try render("[{{ missing }}]") == "[]")
        #expect(try render("{{ missing is defined }}{{ missing is none }}{{ not missing }}") == "FalseFalseTrue")
        #expect(try render("{{ 'a' in missing }}{{ missing | length }}") == "False0")
        #expect(throws: ChatTemplateError.runtime(message: "'missing' is undefined", line: 1, column: 11)) {
            try render("{{ missing.attr }}")
        }
        #expect(throws: ChatTemplateError.self) { try render("{{ 'a' + missing }}") }
    }

    @Test func filtersAndMethods() throws {
        #expect(try render("{{ '  a b  ' | trim | upper }}") == "A B")
        #expect(try render("{{ [1, 2] | first }}{{ [1, 2] | last }}{{ 'xyz' | first }}") == "12x")
        #expect(try render("{{ ['a', 'b'] | join(', ') }}") == "a, b")
        #expect(try render("{{ 'a-b' | replace('-', '+') }}{{ 'abc'.replace('b', '') }}") == "a+bac")
        #expect(try render("{{ d | items | list }}", ["d": ["k": "v"]]) == "[['k', 'v']]")
        #expect(try render("{{ d.get('k') }}{{ d.get('z') }}{{ d['k'] }}{{ d.k }}", ["d": ["k": "v"]]) == "vNonevv")
        #expect(try render("{{ x | tojson }}", ["x": ["é", 1.5, nil, true]]) == "[\"é\", 1.5, null, true]")
        #expect(try render("{{ x | tojson(indent=4) }}", ["x": ["a": [1]]]) == "{\n    \"a\": [\n        1\n    ]\n}")
        #expect(try render("{{ ms | rejectattr('role', 'equalto', 'system') | map(attribute='role') | join }}",
                           ["ms": [["role": "system"], ["role": "user"]]]) == "user")
        #expect(try render("{{ 'a b c'.split(' ', 1) }}") == "['a', 'b c']")
    }

    @Test func strftimeNowUsesInjectedClock() throws {
        var t = try ChatTemplate(source: "{{ strftime_now('%d %b %Y|%B %d, %Y|%Y-%m-%d|%A %H:%M') }}")
        t.now = { Fixtures.fixedNow }
        t.timeZone = TimeZone(identifier: "UTC")!
        #expect(try t.render(messages: [], addGenerationPrompt: false, bosToken: nil, eosToken: nil)
            == "05 Sep 2024|September 05, 2024|2024-09-05|Thursday 14:30")
    }

    @Test func raiseException() throws {
        #expect(throws: ChatTemplateError.raised(message: "bad roles")) {
            try render("{{ raise_exception('bad roles') }}")
        }
    }

    @Test func macroAndCall() throws {
        #expect(try render("{% macro w(x) %}[{{ caller() }}{{ x }}]{% endmacro %}{% call w(1) %}in{% endcall %}") == "[in1]")
    }
}
