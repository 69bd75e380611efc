import Foundation
import Testing
import TunecheckJSON
import Yams

/// A settings struct exercising every kind of field.
private struct Sample: SettingsCodable, Equatable {
    enum Mode: String, SettingsEnum { case fast, careful }

    struct Inner: SettingsCodable, Equatable {
        var rank = 8
        var keys: [String]?
        static var fields: [SettingsField<Self>] { [.field("rank", \.rank), .field("keys", \.keys)] }
    }

    var model = ""
    var maxTokens = 64
    var margin: Double? = 5
    var floor: Double?
    var mode = Mode.fast
    var inner = Inner()
    var ratios: [Double] = [0.5]

    static var fields: [SettingsField<Self>] {
        [.required("model", \.model), .field("max_tokens", \.maxTokens), .field("margin", \.margin), .field("floor", \.floor),
         .field("mode", \.mode), .field("inner", \.inner), .field("ratios", \.ratios)]
    }
    static var ignoredKeys: [String] { ["wandb"] }
}

private func decodeJSON<T: Decodable>(_ type: T.Type, _ text: String) throws -> T {
    try JSONValueDecoder().decode(type, from: Array(text.utf8))
}

/// The message the error gives, or nil when decoding succeeded.
private func message<T: Decodable>(_ type: T.Type, json text: String) -> String? {
    do { _ = try decodeJSON(type, text); return nil } catch let error as DecodingError { return error.settingsMessage } catch {
        return "\(error)"
    }
}

private func message<T: Decodable>(_ type: T.Type, yaml text: String) -> String? {
    do { _ = try YAMLDecoder().decode(type, from: text); return nil } catch let error as DecodingError { return error.settingsMessage } catch {
        return "\(error)"
    }
}

struct SettingsCodingTests {
    @Test func absentKeysKeepTheDefaults() throws {
        let sample = try decodeJSON(Sample.self, #"{"model": "m"}"#)
        var expected = Sample()
        expected.model = "m"
        #expect(sample == expected)
    }

    @Test func optionalFieldsDistinguishAbsentFromNull() throws {
        // `margin` defaults to 5: absent keeps it, null turns it off; `floor` defaults to nil.
        #expect(try decodeJSON(Sample.self, #"{"model": "m"}"#).margin == 5)
        #expect(try decodeJSON(Sample.self, #"{"model": "m", "margin": null}"#).margin == nil)
        #expect(try decodeJSON(Sample.self, #"{"model": "m", "floor": 0.25}"#).floor == 0.25)
        // A null for a non-optional setting keeps its default, as `decodeIfPresent ?? default` did.
        #expect(try decodeJSON(Sample.self, #"{"model": "m", "max_tokens": null}"#).maxTokens == 64)
    }

    @Test func sameMessagesFromJSONAndYAML() {
        let cases: [(json: String, yaml: String, message: String)] = [
            (#"{"max_tokens": 3}"#, "max_tokens: 3", #"missing "model""#),
            (#"{"model": "m", "max_token": 3}"#, "model: m\nmax_token: 3",
             "max_token: unknown key 'max_token' (did you mean 'max_tokens'? known: floor, inner, margin, max_tokens, mode, model, ratios)"),
            (#"{"model": "m", "zzz": 3}"#, "model: m\nzzz: 3",
             "zzz: unknown key 'zzz' (known: floor, inner, margin, max_tokens, mode, model, ratios)"),
            (#"{"model": "m", "inner": {"alpha": 1}}"#, "model: m\ninner: {alpha: 1}",
             "inner.alpha: unknown key 'alpha' (known: keys, rank)"),
            (#"{"model": "m", "inner": {"rank": "high"}}"#, "model: m\ninner: {rank: high}", #""inner.rank" should be an integer"#),
            (#"{"model": "m", "mode": "slow"}"#, "model: m\nmode: slow", "mode: unknown value 'slow' (fast, careful)"),
            (#"{"model": "m", "ratios": [0.5, "x"]}"#, "model: m\nratios: [0.5, x]", #""ratios[1]" should be a number"#),
        ]
        for entry in cases {
            #expect(message(Sample.self, json: entry.json) == entry.message, "JSON \(entry.json)")
            #expect(message(Sample.self, yaml: entry.yaml) == entry.message, "YAML \(entry.yaml)")
        }
    }

    @Test func ignoredKeysAreAccepted() throws {
        #expect(try decodeJSON(Sample.self, #"{"model": "m", "wandb": "project"}"#).model == "m")
    }

    @Test func fractionalIntegerIsNamedAtItsKey() {
        #expect(message(Sample.self, json: #"{"model": "m", "max_tokens": 2.5}"#) == "max_tokens: 2.5 is not an integer (or does not fit in 64 bits)")
        #expect(message(Sample.self, json: #"{"model": "m", "max_tokens": 1e30}"#) == "max_tokens: 1e+30 is not an integer (or does not fit in 64 bits)")
        // An integral value written with a fraction is an integer (transformers writes some that way).
        #expect((try? decodeJSON(Sample.self, #"{"model": "m", "max_tokens": 32.0}"#))?.maxTokens == 32)
    }

    @Test func encodingWritesTheTableKeysInOrderAndRoundTrips() throws {
        var sample = Sample()
        sample.model = "models/x"
        sample.margin = nil
        sample.floor = -1.5
        sample.mode = .careful
        sample.inner.keys = ["q_proj"]
        let value = try JSONValueEncoder().encode(sample)
        // An optional that is off but on by default is written as null, other nil optionals are left out; integers
        // stay integers.
        #expect(JSONWriter.string(value)
            == #"{"model":"models/x","max_tokens":64,"margin":null,"floor":-1.5,"mode":"careful","inner":{"rank":8,"keys":["q_proj"]},"ratios":[0.5]}"#)
        #expect(JSONWriter.string(try JSONValueEncoder().encode(Sample.Inner())) == #"{"rank":8}"#)
        #expect(try JSONValueDecoder().decode(Sample.self, from: value) == sample)
        // Through text and back, and through YAML's encoder (the same Codable conformance).
        #expect(try decodeJSON(Sample.self, JSONWriter.string(value)) == sample)
        #expect(try YAMLDecoder().decode(Sample.self, from: try YAMLEncoder().encode(sample)) == sample)
    }

    @Test func prettyWriterMatchesPythonIndent2() {
        // Expected text from Python: json.dumps({...}, indent=2, sort_keys=True) (transformers' shard index layout).
        let object = JSONObject([
            "empty": .object(JSONObject()),
            "list": .array([.from(1), .from(2.5), .array([])]),
            "metadata": .object(JSONObject(["total_size": .from(12)])),
            "weight_map": .object(JSONObject(["a": .string("x.safetensors"), "b": .string("y.safetensors")])),
        ])
        let expected = "{\n  \"empty\": {},\n  \"list\": [\n    1,\n    2.5,\n    []\n  ],\n  \"metadata\": {\n    \"total_size\": 12\n  },\n"
            + "  \"weight_map\": {\n    \"a\": \"x.safetensors\",\n    \"b\": \"y.safetensors\"\n  }\n}"
        #expect(String(decoding: JSONWriter.prettyData(.object(object)), as: UTF8.self) == expected)
    }

    @Test func parserRejectsInvalidUTF8InStrings() {
        var bytes = Array(#"{"model_type": "llama"}"#.utf8)
        bytes[16] = 0xFF
        #expect(throws: JSONParseError.self) { try JSONParser.parse(bytes) }
        // Canonically equivalent keys stay distinct (the reason for this parser).
        let object = try? JSONParser.parse(Array("{\"\u{00C5}\": 1, \"\u{212B}\": 2}".utf8)).object
        #expect(object?.keys.count == 2)
    }

    @Test func nearestKeySuggestionNeedsAClosePair() {
        let decoded = message(Sample.self, json: #"{"model": "m", "md": 1}"#)
        // "md" is 2 edits from "mode" and "model" but a two-letter typo "meaning" a five-letter key is a guess.
        #expect(decoded?.contains("did you mean") == false, "\(decoded ?? "")")
    }
}
