import ArgumentParser
import Foundation
import TunecheckEngine
import TunecheckJSON

/// `--model DIR`: a model folder.
struct ModelOptions: ParsableArguments {
    @Option(name: .long, help: ArgumentHelp("Model folder (config.json, *.safetensors, tokenizer.json).", valueName: "dir"))
    var model: String

    @Option(name: .long, help: ArgumentHelp(
        "LoRA adapter applied unfused: an mlx_lm or PEFT adapter folder, a Trainer checkpoint-N folder, or one numbered mlx_lm checkpoint file.",
        valueName: "path"))
    var adapter: String?

    var modelURL: URL { URL(fileURLWithPath: model) }

    /// The model, with the adapter attached when one is given.
    func loadLanguageModel() throws -> LanguageModel {
        let base = try LanguageModel.load(folder: modelURL)
        guard let adapter else { return base }
        return try base.applyingAdapter(at: URL(fileURLWithPath: adapter)).model
    }
}

/// `--input IN.jsonl --output OUT.jsonl`.
struct JSONLFileOptions: ParsableArguments {
    @Option(name: .long, help: ArgumentHelp("Input JSON Lines file.", valueName: "in.jsonl"))
    var input: String

    @Option(name: .long, help: ArgumentHelp("Output JSON Lines file (written atomically; existing files are replaced).", valueName: "out.jsonl"))
    var output: String

    var inputURL: URL { URL(fileURLWithPath: input) }
    var outputURL: URL { URL(fileURLWithPath: output) }

    func validate() throws {
        try validateOutputPath(output)
    }
}

/// Fails early, before any model is loaded, when an output file could not be written.
func validateOutputPath(_ path: String) throws {
    let url = URL(fileURLWithPath: path)
    var isDirectory: ObjCBool = false
    if FileManager.default.fileExists(atPath: url.path, isDirectory: &isDirectory), isDirectory.boolValue {
        throw ValidationError("\(path) is a directory; --output needs a file path")
    }
    let parent = url.deletingLastPathComponent()
    if !FileManager.default.fileExists(atPath: parent.path, isDirectory: &isDirectory) || !isDirectory.boolValue {
        throw ValidationError("the folder of \(path) does not exist")
    }
}

/// Encodes a JSON object for standard output.
func printJSON(_ object: JSONObject) {
    FileHandle.standardOutput.write(JSONWriter.data(.object(object)) + Data("\n".utf8))
}
