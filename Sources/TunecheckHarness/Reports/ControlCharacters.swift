import Foundation

/// The one escaper for control characters in text the reports show (terminal summary, HTML, JUnit XML, and the
/// CLI's renderers): model output may hold BEL, ESC sequences, backspace, NUL… which would ring, recolour or move
/// the cursor of a terminal, are not allowed in HTML text, and cannot be stored in XML 1.0 at all. Each such
/// scalar becomes a visible escape `\u{1B}` (uppercase hex, Swift's spelling), so the evidence survives and reads
/// the same in every report.
///
/// Escaped: C0 controls (U+0000–U+001F) except the whitespace `whitespace` keeps, DEL (U+007F), C1 controls
/// (U+0080–U+009F), and the noncharacters U+FFFE and U+FFFF (outside XML's `Char` production). Everything else
/// (emoji, combining marks, right-to-left text) is kept as is.
public enum ControlCharacters {
    /// What happens to tab, line feed and carriage return.
    public enum Whitespace: Sendable {
        /// Kept as they are (HTML `<pre>`, XML text and attributes).
        case keep
        /// Line feeds kept, tab and carriage return shown as one space (multi-line terminal and Markdown cells).
        case keepLineFeeds
        /// Each shown as one space (one-line terminal output).
        case spaces
    }

    /// `text` with control characters escaped as `\u{…}`; returns `text` itself when there is nothing to escape.
    public static func escape(_ text: String, whitespace: Whitespace) -> String {
        guard text.unicodeScalars.contains(where: { needsChange($0, whitespace) }) else { return text }
        var result = String.UnicodeScalarView()
        for scalar in text.unicodeScalars {
            if !needsChange(scalar, whitespace) {
                result.append(scalar)
            } else if isLayout(scalar) {
                result.append(" ")
            } else {
                result.append(contentsOf: "\\u{\(String(scalar.value, radix: 16, uppercase: true))}".unicodeScalars)
            }
        }
        return String(result)
    }

    /// Whether `scalar` is one that `escape` replaces (whatever the whitespace policy).
    public static func isControl(_ scalar: Unicode.Scalar) -> Bool {
        switch scalar.value {
        case 0x00...0x1F, 0x7F...0x9F, 0xFFFE, 0xFFFF: return true
        default: return false
        }
    }

    private static func isLayout(_ scalar: Unicode.Scalar) -> Bool { scalar == "\t" || scalar == "\n" || scalar == "\r" }

    private static func needsChange(_ scalar: Unicode.Scalar, _ whitespace: Whitespace) -> Bool {
        guard isControl(scalar) else { return false }
        switch whitespace {
        case .keep: return !isLayout(scalar)
        case .keepLineFeeds: return scalar != "\n"
        case .spaces: return true
        }
    }
}
