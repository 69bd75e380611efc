/// GPT-2's reversible byte ↔ printable-scalar table.
///
/// Printable Latin-1 bytes (`!`…`~`, `¡`…`¬`, `®`…`ÿ`) stand for themselves; the 68 others (control
/// characters, space, NBSP, soft hyphen) are shifted to U+0100 and up in byte order, which is why a
/// space becomes `Ġ` (U+0120) and a newline `Ċ` (U+010A).
enum ByteLevelTables {
    static let scalarForByte: [Unicode.Scalar] = {
        var table = [Unicode.Scalar](repeating: "\0", count: 256)
        var shifted: UInt32 = 256
        for byte in 0..<256 {
            let printable = (0x21...0x7E).contains(byte) || (0xA1...0xAC).contains(byte) || (0xAE...0xFF).contains(byte)
            if printable {
                table[byte] = Unicode.Scalar(UInt8(byte))
            } else {
                table[byte] = Unicode.Scalar(shifted)!  // 256..<324 are all valid scalars
                shifted += 1
            }
        }
        return table
    }()

    static let byteForScalar: [UInt32: UInt8] = {
        var inverse = [UInt32: UInt8]()
        for (byte, scalar) in scalarForByte.enumerated() { inverse[scalar.value] = UInt8(byte) }
        return inverse
    }()
}
