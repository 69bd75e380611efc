import Foundation
import Testing
import TunecheckJSON

/// The project's JSON parser and writer: strings byte-exact (no Unicode normalisation, U+FEFF kept), object keys in
/// file order (duplicates kept), integers told apart from other numbers, errors with the byte offset.
@Suite struct JSONParserWriterTests {
    func parse(_ text: String) throws -> JSONValue { try JSONParser.parse(Array(text.utf8)) }

    func parseError(_ text: String) -> JSONParseError? {
        do { _ = try parse(text); return nil } catch { return error as? JSONParseError }
    }

    @Test func scalarsAndContainers() throws {
        #expect(try parse("null") == .null)
        #expect(try parse(" true ") == .bool(true) && parse("false") == .bool(false))
        #expect(try parse(#""text""#) == .string("text"))
        #expect(try parse("[1, [], {}]") == .array([.from(1), .array([]), .object(JSONObject())]))
        let object = try #require(try parse(#"{"b": 1, "a": [true, null]}"#).object)
        #expect(object.keys == ["b", "a"])
        #expect(object["a"] == .array([.bool(true), .null]) && object["missing"] == nil)
    }

    @Test func numbersKeepWhetherTheyWereIntegers() throws {
        #expect(try parse("42") == .number(42, isInteger: true))
        #expect(try parse("-7") == .number(-7, isInteger: true))
        #expect(try parse("42.0") == .number(42, isInteger: false))
        #expect(try parse("1e3") == .number(1000, isInteger: false))
        #expect(try parse("-1.5E-3") == .number(-0.0015, isInteger: false))
        #expect(try parse("42").int == 42 && parse("42.0").int == nil && parse("42.0").double == 42)
        // Integers beyond ±9e15 are not exact in a Double: `int` refuses them.
        #expect(try parse("9007199254740993").int == nil)
    }

    @Test func stringsAreByteExact() throws {
        // U+FEFF inside a string (a Llama-2 token) survives; JSONSerialization on Linux drops it.
        #expect(try parse("\"\u{FEFF}\"").string?.unicodeScalars.map(\.value) == [0xFEFF])
        #expect(try parse(#""\ufeffx""#).string?.unicodeScalars.map(\.value) == [0xFEFF, 0x78])
        // "Å" as U+00C5 and as U+212B are different vocabulary entries, kept apart.
        let object = try #require(try parse("{\"\u{C5}\": 1, \"\u{212B}\": 2}").object)
        #expect(object.keys.map { Array($0.unicodeScalars.map(\.value)) } == [[0xC5], [0x212B]])
        #expect(ExactString("\u{C5}") != ExactString("\u{212B}") && "\u{C5}" == "\u{212B}")
        #expect(Set([ExactString("\u{C5}"), ExactString("\u{212B}")]).count == 2)
        // Decomposed forms stay decomposed.
        #expect(try parse("\"e\u{301}\"").string?.unicodeScalars.count == 2)
    }

    @Test func escapes() throws {
        #expect(try parse(#""\"\\\/\b\f\n\r\t""#).string == "\"\\/\u{8}\u{C}\n\r\t")
        #expect(try parse(#""\u00e9\u00C9""#).string == "éÉ")
        #expect(try parse(#""\ud83d\ude00""#).string == "😀")
        // A lone surrogate cannot be a Swift scalar: U+FFFD, as Python's json does with errors="replace".
        #expect(try parse(#""\ud800x""#).string == "\u{FFFD}x")
    }

    @Test func duplicateKeysAreKeptInOrderAndLookupFindsTheFirst() throws {
        let object = try #require(try parse(#"{"a": 1, "b": 2, "a": 3}"#).object)
        #expect(object.keys == ["a", "b", "a"])
        #expect(object.values == [.from(1), .from(2), .from(3)])
        #expect(object["a"] == .from(1))
        var edited = object
        edited.set("a", .from(9))
        #expect(edited.keys == ["a", "b", "a"] && edited.values == [.from(9), .from(2), .from(3)])
        edited.set("c", .null)
        #expect(edited.keys.last == "c")
    }

    @Test func aLeadingByteOrderMarkIsSkipped() throws {
        #expect(try JSONParser.parse([0xEF, 0xBB, 0xBF] + Array("[1]".utf8)) == .array([.from(1)]))
    }

    @Test(arguments: [
        ("", 0, "unexpected end of input"),
        ("tru", 0, "unexpected end of input"),
        ("trve", 0, "invalid literal"),
        ("[1,]", 3, "invalid value"),
        ("[1 2]", 3, "expected ',' or ']'"),
        (#"{"a" 1}"#, 5, "expected ':'"),
        (#"{"a": 1,}"#, 8, "expected a string key"),
        (#"{"a": 1"#, 7, "unterminated object"),
        ("\"abc", 4, "unterminated string"),
        ("\"a\tb\"", 2, "control character in string"),
        (#""\x""#, 3, "invalid escape"),
        (#""\u12g4""#, 5, "invalid \\u escape"),
        ("1 2", 2, "unexpected trailing characters"),
        ("-", 0, "invalid value"),
    ])
    func errorsNameWhatAndWhere(_ input: String, _ offset: Int, _ message: String) throws {
        let error = try #require(parseError(input), "\(input.debugDescription) parsed")
        #expect(error.offset == offset && error.message == message, "\(input.debugDescription): \(error)")
        #expect(error.description == "\(message) at byte \(offset)")
        #expect(JSONParser.problem(in: Array(input.utf8)) == " (\(message) at byte \(offset))")
    }

    @Test func nestingIsCapped() throws {
        let deep = String(repeating: "[", count: 600) + String(repeating: "]", count: 600)
        let error = try #require(parseError(deep))
        #expect(error.message == "nesting deeper than 512 levels" && error.offset == 512)
        let fine = String(repeating: "[", count: 512) + String(repeating: "]", count: 512)
        #expect(parseError(fine) == nil)
        #expect(JSONParser.problem(in: Array("[]".utf8)) == "")
    }

    @Test func writerKeepsKeyOrderAndWritesStringsByteForByte() {
        var object = JSONObject()
        object.set("z", .from(1))
        object.set("a", .string("\u{FEFF}Å\u{212B} \"q\" \\ / \n\r\t\u{1}\u{1F}é😀"))
        object.set("m", .array([.null, .bool(false), .from(0.5), .from(-3)]))
        let written = JSONWriter.string(.object(object))
        #expect(written == "{\"z\":1,\"a\":\"\u{FEFF}Å\u{212B} \\\"q\\\" \\\\ / \\n\\r\\t\\u0001\\u001fé😀\",\"m\":[null,false,0.5,-3]}")
        #expect(JSONWriter.data(.object(object)) == Data(written.utf8))
    }

    @Test func numbersAreWrittenShortestAndNonFiniteAsNull() {
        #expect(JSONWriter.string(.from(3)) == "3")
        #expect(JSONWriter.string(.from(3.0)) == "3.0")
        #expect(JSONWriter.string(.from(0.1)) == "0.1")
        #expect(JSONWriter.string(.from(1e-7)) == "1e-07")
        #expect(JSONWriter.string(.from([Double.nan, .infinity, -.infinity])) == "[null,null,null]")
        #expect(JSONWriter.string(.number(1e20, isInteger: true)) == "1e+20")
    }

    @Test func roundTrips() throws {
        let samples = [
            #"{"b":[1,2.5,-0.25,1e+20,true,false,null],"a":{"nested":{"deep":[[]]}},"s":"\ufeff tab\t quote\" é"}"#,
            #"[{"a":1,"a":2},"\u0000",""]"#,
            #"{"Å":1,"Å":2}"#,
        ]
        for sample in samples {
            let value = try parse(sample)
            let written = JSONWriter.data(value)
            #expect(try JSONParser.parse(Array(written)) == value, "\(sample)")
            // Writing is deterministic: the second write is byte-identical to the first.
            #expect(JSONWriter.data(try JSONParser.parse(Array(written))) == written)
        }
    }
}
