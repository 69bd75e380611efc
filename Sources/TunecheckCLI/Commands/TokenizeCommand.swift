import ArgumentParser
import Foundation
import TunecheckEngine
import TunecheckJSON
import TunecheckTokenizers

struct TokenizeCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "tokenize",
        abstract: "Encode and decode text with a model's tokenizer.json, as Hugging Face tokenizers does.",
        discussion: """
        Each input line is {"text": ...}. Each output line keeps the input fields and adds "ids" (encoded with the \
        tokenizer's default special tokens, like tokenizer.encode(text)) and "decoded" (the decode of those ids, \
        special tokens kept). The folder needs only tokenizer.json (and tokenizer_config.json when present).

        Example:
          tunecheck tokenize --model models/tiny --input texts.jsonl --output tokens.jsonl
        """
    )

    @Option(name: .long, help: ArgumentHelp("Folder with tokenizer.json (and tokenizer_config.json).", valueName: "dir"))
    var model: String

    @OptionGroup var files: JSONLFileOptions

    func run() throws {
        let tokenizer = try Tokenizer.load(directory: URL(fileURLWithPath: model))
        let records = try JSONLines.read(files.inputURL)
        var output: [JSONObject] = []
        output.reserveCapacity(records.count)
        for record in records {
            guard let text = record.string("text") else {
                throw JSONLinesError.invalidLine(path: files.input, line: record.line, reason: "expected a \"text\" string")
            }
            var fields = record.fields
            let ids = tokenizer.encode(text)
            fields.set("ids", .from(ids))
            fields.set("decoded", .string(try tokenizer.decode(ids)))
            output.append(fields)
        }
        try JSONLines.write(output, to: files.outputURL)
    }
}
