import Foundation

/// A word-level diff (longest common subsequence over words and whitespace runs) for the golden-output view.
enum WordDiff {
    enum Kind: Equatable { case same, deleted, inserted }

    struct Piece: Equatable {
        var kind: Kind
        var text: String
    }

    /// Above this many LCS cells (words × words) the middle part is shown as one deletion plus one insertion.
    static let cellLimit = 4_000_000

    static func diff(_ old: String, _ new: String) -> [Piece] {
        let a = tokens(old), b = tokens(new)
        var prefix = 0
        while prefix < a.count, prefix < b.count, a[prefix] == b[prefix] { prefix += 1 }
        var suffix = 0
        while suffix < a.count - prefix, suffix < b.count - prefix, a[a.count - 1 - suffix] == b[b.count - 1 - suffix] { suffix += 1 }
        let midA = Array(a[prefix..<(a.count - suffix)]), midB = Array(b[prefix..<(b.count - suffix)])

        var pieces: [Piece] = a[..<prefix].map { Piece(kind: .same, text: $0) }
        if midA.count * midB.count > cellLimit {
            pieces += midA.map { Piece(kind: .deleted, text: $0) } + midB.map { Piece(kind: .inserted, text: $0) }
        } else {
            pieces += lcs(midA, midB)
        }
        pieces += a[(a.count - suffix)...].map { Piece(kind: .same, text: $0) }
        return merge(pieces)
    }

    /// Words and the whitespace between them, in order (joining them gives the text back).
    static func tokens(_ text: String) -> [String] {
        var result: [String] = []
        var current = ""
        var currentIsSpace = false
        for character in text {
            let isSpace = character.isWhitespace
            if !current.isEmpty && isSpace != currentIsSpace {
                result.append(current)
                current = ""
            }
            current.append(character)
            currentIsSpace = isSpace
        }
        if !current.isEmpty { result.append(current) }
        return result
    }

    private static func lcs(_ a: [String], _ b: [String]) -> [Piece] {
        let n = a.count, m = b.count
        if n == 0 { return b.map { Piece(kind: .inserted, text: $0) } }
        if m == 0 { return a.map { Piece(kind: .deleted, text: $0) } }
        // table[i][j] = LCS length of a[i...] and b[j...], flattened row-major with width m + 1.
        var table = [Int32](repeating: 0, count: (n + 1) * (m + 1))
        for i in stride(from: n - 1, through: 0, by: -1) {
            for j in stride(from: m - 1, through: 0, by: -1) {
                table[i * (m + 1) + j] = a[i] == b[j]
                    ? table[(i + 1) * (m + 1) + j + 1] + 1
                    : max(table[(i + 1) * (m + 1) + j], table[i * (m + 1) + j + 1])
            }
        }
        var pieces: [Piece] = []
        var i = 0, j = 0
        while i < n && j < m {
            if a[i] == b[j] {
                pieces.append(Piece(kind: .same, text: a[i])); i += 1; j += 1
            } else if table[(i + 1) * (m + 1) + j] >= table[i * (m + 1) + j + 1] {
                pieces.append(Piece(kind: .deleted, text: a[i])); i += 1
            } else {
                pieces.append(Piece(kind: .inserted, text: b[j])); j += 1
            }
        }
        pieces += a[i...].map { Piece(kind: .deleted, text: $0) }
        pieces += b[j...].map { Piece(kind: .inserted, text: $0) }
        return pieces
    }

    /// Joins neighbours of one kind, and lets a lone space between two changes join them, so a replaced phrase
    /// reads as one deletion followed by one insertion.
    private static func merge(_ pieces: [Piece]) -> [Piece] {
        var result: [Piece] = []
        var index = 0
        while index < pieces.count {
            var piece = pieces[index]
            if piece.kind == .same, piece.text.allSatisfy(\.isWhitespace), let last = result.last, last.kind != .same,
               index + 1 < pieces.count, pieces[index + 1].kind != .same {
                // Whitespace between two edits: belongs to both sides of the change.
                result.append(Piece(kind: .deleted, text: piece.text))
                piece = Piece(kind: .inserted, text: piece.text)
            }
            result.append(piece)
            index += 1
        }
        // Deletions first, then insertions, within each run of changes; then merge neighbours.
        var ordered: [Piece] = []
        var run: [Piece] = []
        for piece in result + [Piece(kind: .same, text: "")] {
            if piece.kind == .same {
                ordered += run.filter { $0.kind == .deleted } + run.filter { $0.kind == .inserted }
                run = []
                if !piece.text.isEmpty { ordered.append(piece) }
            } else {
                run.append(piece)
            }
        }
        var merged: [Piece] = []
        for piece in ordered {
            if let last = merged.last, last.kind == piece.kind {
                merged[merged.count - 1].text += piece.text
            } else {
                merged.append(piece)
            }
        }
        return merged
    }
}
