import CLibXML2
import Foundation

/// Validates JUnit XML against an XML Schema (the Jenkins `junit-10.xsd`) in-process with libxml2, the same check
/// as `xmllint --noout --schema junit-10.xsd junit.xml`. Network access is off for both files.
public enum JUnitValidator {
    /// Throws `JUnitError` naming the file and every schema problem (with line numbers) if `xmlAt` is not valid.
    public static func validate(xmlAt url: URL, schemaAt schemaURL: URL) throws {
        guard let data = FileManager.default.contents(atPath: url.path) else {
            throw JUnitError.unreadableDocument(path: url.path, reason: "cannot read the file")
        }
        try validate(xml: data, named: url.path, schemaAt: schemaURL)
    }

    /// Validates an in-memory document; `name` is used in error messages.
    public static func validate(xml data: Data, named name: String = "<memory>", schemaAt schemaURL: URL) throws {
        LibXML.initialize()
        let schemaErrors = ErrorCollector()
        guard FileManager.default.isReadableFile(atPath: schemaURL.path) else {
            throw JUnitError.unreadableSchema(path: schemaURL.path, reason: "no such file")
        }
        guard let parserContext = xmlSchemaNewParserCtxt(schemaURL.path) else {
            throw JUnitError.unreadableSchema(path: schemaURL.path, reason: "cannot create a schema parser")
        }
        defer { xmlSchemaFreeParserCtxt(parserContext) }
        schemaErrors.install { xmlSchemaSetParserStructuredErrors(parserContext, $0, $1) }
        guard let schema = xmlSchemaParse(parserContext) else {
            throw JUnitError.unreadableSchema(path: schemaURL.path, reason: schemaErrors.summary(or: "invalid schema"))
        }
        defer { xmlSchemaFree(schema) }

        guard let documentContext = xmlNewParserCtxt() else {
            throw JUnitError.unreadableDocument(path: name, reason: "cannot create an XML parser")
        }
        defer { xmlFreeParserCtxt(documentContext) }
        let options = Int32(XML_PARSE_NONET.rawValue | XML_PARSE_NOERROR.rawValue | XML_PARSE_NOWARNING.rawValue)
        let document = data.withUnsafeBytes { (bytes: UnsafeRawBufferPointer) -> xmlDocPtr? in
            guard let base = bytes.baseAddress?.assumingMemoryBound(to: CChar.self) else { return nil }
            return xmlCtxtReadMemory(documentContext, base, Int32(bytes.count), name, nil, options)
        }
        guard let document else {
            var reason = "empty document"
            if let last = xmlCtxtGetLastError(documentContext), let message = last.pointee.message {
                reason = "line \(last.pointee.line): " + String(cString: message).trimmingCharacters(in: .whitespacesAndNewlines)
            }
            throw JUnitError.unreadableDocument(path: name, reason: reason)
        }
        defer { xmlFreeDoc(document) }

        guard let validContext = xmlSchemaNewValidCtxt(schema) else {
            throw JUnitError.unreadableSchema(path: schemaURL.path, reason: "cannot create a validation context")
        }
        defer { xmlSchemaFreeValidCtxt(validContext) }
        let problems = ErrorCollector()
        problems.install { xmlSchemaSetValidStructuredErrors(validContext, $0, $1) }
        let result = xmlSchemaValidateDoc(validContext, document)
        if result != 0 {
            throw JUnitError.invalid(path: name, problems: problems.messages.isEmpty
                ? ["libxml2 validation failed with code \(result)"] : problems.messages)
        }
    }
}

/// Collects libxml2 structured errors as `line N: message` strings. Kept alive by the caller for as long as the
/// context it is installed on is used.
private final class ErrorCollector {
    var messages: [String] = []

    func install(_ setter: (xmlStructuredErrorFunc?, UnsafeMutableRawPointer?) -> Void) {
        let context = Unmanaged.passUnretained(self).toOpaque()
        setter({ context, error in
            guard let context, let error else { return }
            let collector = Unmanaged<ErrorCollector>.fromOpaque(context).takeUnretainedValue()
            let message = error.pointee.message.map { String(cString: $0) }?
                .trimmingCharacters(in: .whitespacesAndNewlines) ?? "unknown error"
            collector.messages.append(error.pointee.line > 0 ? "line \(error.pointee.line): \(message)" : message)
        }, context)
    }

    func summary(or fallback: String) -> String {
        messages.isEmpty ? fallback : messages.joined(separator: "; ")
    }
}
