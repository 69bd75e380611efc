import Foundation
import Testing
@testable import TunecheckEngine
#if canImport(Glibc)
import Glibc
#endif

/// The safetensors writer and reader, and the `WeightStore` over them, fed well-formed and malformed files.
/// Expected bit patterns below were worked out by hand from the IEEE layouts (and cross-checked once against
/// `torch.tensor(x).bfloat16()` / `.half()`); none of them comes from the code under test.
@Suite struct SafeTensorsTests {

    // MARK: - Writer: encoding

    /// (input, expected BF16 bits). Round-to-nearest-even on the 16 dropped bits, as torch does.
    static let bfloat16Table: [(Float, UInt16)] = [
        (1.0, 0x3F80),
        (Float(bitPattern: 0x3F80_8000), 0x3F80),   // exactly halfway, even neighbour is below: round down
        (Float(bitPattern: 0x3F81_8000), 0x3F82),   // exactly halfway, even neighbour is above: round up
        (Float(bitPattern: 0x3F80_8001), 0x3F81),   // just above halfway: up
        (Float(bitPattern: 0x3F80_7FFF), 0x3F80),   // just below halfway: down
        (-2.5, 0xC020),
        (Float(bitPattern: 0x0001_16C2), 0x0001),                       // float32 subnormal 0x000116C2 keeps its top bits
        (-0.0, 0x8000),
        (3.0e38, 0x7F62),                            // 0x7F61B1E6: low half 0xB1E6 > 0x8000, up
        (-1.7e38, 0xFF00),                           // 0xFEFFC99E: rounds up across the exponent boundary
        (0.1, 0x3DCD),                               // 0x3DCCCCCD: low half 0xCCCD > 0x8000, up
        (65504, 0x4780),                             // 0x477FE000: low half 0xE000, up, carries into the exponent
        (1.0 / 3.0, 0x3EAB),                         // 0x3EAAAAAB
        (-123456.789, 0xC7F1),                       // 0xC7F12065: low half below halfway, down
    ]

    /// (input, expected F16 bits).
    static let float16Table: [(Float, UInt16)] = [
        (1.0, 0x3C00),
        (1.0 + 0x1p-11, 0x3C00),                     // halfway between 0x3C00 and 0x3C01: even, down
        (1.0 + 3 * 0x1p-11, 0x3C02),                 // halfway between 0x3C01 and 0x3C02: even, up
        (1.00390625, 0x3C04),                        // 1 + 2^-8 = 4 ulps
        (-2.5, 0xC100),
        (0.1, 0x2E66),
        (65504, 0x7BFF),                             // largest finite half
        (0x1p-14, 0x0400),                           // smallest normal half
        (1e-5, 0x00A8),                              // subnormal: 1e-5 / 2^-24 = 167.77 → 168
        (3e-8, 0x0001),                              // above half of the smallest subnormal: rounds up to it
        (1.0 / 3.0, 0x3555),
        (-0.0, 0x8000),
    ]

    @Test func bfloat16BitsRoundToNearestEven() {
        for (value, expected) in Self.bfloat16Table {
            let bits = SafeTensorsWriter.bfloat16Bits(value)
            #expect(bits == expected, "bf16(\(value)) = 0x\(String(bits, radix: 16)), expected 0x\(String(expected, radix: 16))")
        }
        // Specials: NaN becomes the canonical quiet NaN, overflow past the largest bf16 becomes infinity (torch).
        #expect(SafeTensorsWriter.bfloat16Bits(.nan) == 0x7FC0)
        #expect(SafeTensorsWriter.bfloat16Bits(-.nan) == 0x7FC0)
        #expect(SafeTensorsWriter.bfloat16Bits(.infinity) == 0x7F80)
        #expect(SafeTensorsWriter.bfloat16Bits(-.infinity) == 0xFF80)
        #expect(SafeTensorsWriter.bfloat16Bits(.greatestFiniteMagnitude) == 0x7F80)
    }

    /// Writes one tensor per dtype and checks the raw bytes in the file (parsed here, not by the reader) and the
    /// values read back through `WeightStore`.
    @Test(arguments: [DType.float32, .float16, .bfloat16])
    func writerRoundTrip(dtype: DType) throws {
        let table: [(Float, UInt32)]
        switch dtype {
        case .float32:
            let values: [Float] = [0, -0.0, 1, -1.5, 1e-40, .leastNonzeroMagnitude, 3e38, -3e38, 0.1, -123456.789, 65504]
            table = values.map { ($0, $0.bitPattern) }
        case .float16:
            table = Self.float16Table.map { ($0.0, UInt32($0.1)) }
        default:
            table = Self.bfloat16Table.map { ($0.0, UInt32($0.1)) }
        }
        try BadInput.withTemporaryFolder("writer-\(dtype.rawValue)") { folder in
            let url = folder.appendingPathComponent("model.safetensors")
            try BadInput.writeTensors([("t", dtype, [table.count], table.map(\.0)),
                                       ("second", dtype, [1, 2], [1, -1])], to: url)
            let raw = try RawSafetensors(url: url)
            #expect(raw.headerLength % 8 == 0)
            let entry = try #require(raw.entries["t"])
            #expect(entry.dtype == dtype.rawValue)
            #expect(entry.shape == [table.count])
            let bits = raw.words(of: "t", size: dtype.byteSize)
            #expect(bits == table.map { UInt64($0.1) })

            let store = try WeightStore(folder: folder)
            let tensor = try store.floatTensor("t")
            for (index, (input, expectedBits)) in table.enumerated() {
                let expected: Float
                switch dtype {
                case .float32: expected = Float(bitPattern: expectedBits)
                case .float16: expected = Self.decodeHalf(UInt16(expectedBits))
                default: expected = Float(bitPattern: expectedBits << 16)
                }
                #expect(tensor.buffer[index].bitPattern == expected.bitPattern, "\(dtype.rawValue) \(input) read back as \(tensor.buffer[index]), expected \(expected)")
            }
            #expect(Array(try store.floatTensor("second", shape: [1, 2]).buffer) == [1, -1])
        }
    }

    /// Independent IEEE half decoder (sign, 5-bit exponent with bias 15, 10-bit fraction; subnormals at 2^-24).
    static func decodeHalf(_ bits: UInt16) -> Float {
        let sign: Float = bits & 0x8000 != 0 ? -1 : 1
        let exponent = Int((bits >> 10) & 0x1F)
        let fraction = Float(bits & 0x3FF)
        if exponent == 0 { return sign * fraction * 0x1p-24 }
        return sign * (1 + fraction / 1024) * Float(sign: .plus, exponent: exponent - 15, significand: 1)
    }

    @Test func headerIsPaddedToEightBytes() throws {
        try BadInput.withTemporaryFolder("writer-align") { folder in
            // Names of every length mod 8 move the unpadded header length through every residue.
            for length in 1...16 {
                let url = folder.appendingPathComponent("a\(length).safetensors")
                try BadInput.writeTensors([(String(repeating: "x", count: length), .float32, [1], [2])], to: url)
                let raw = try RawSafetensors(url: url)
                #expect(raw.headerLength % 8 == 0, "name length \(length): header length \(raw.headerLength)")
                #expect(raw.words(of: String(repeating: "x", count: length), size: 4) == [UInt64(Float(2).bitPattern)])
            }
        }
    }

    @Test func metadataRoundTrips() throws {
        try BadInput.withTemporaryFolder("writer-metadata") { folder in
            let url = folder.appendingPathComponent("m.safetensors")
            let metadata = ["format": "pt", "note": "quotes \" and ünïcode", "empty": ""]
            try BadInput.writeTensors([("w", .bfloat16, [2], [1, 2])], metadata: metadata, to: url)
            #expect(try SafeTensorsFile(url: url).metadata == metadata)
            let plain = folder.appendingPathComponent("plain.safetensors")
            try BadInput.writeTensors([("w", .float32, [2], [1, 2])], to: plain)
            #expect(try SafeTensorsFile(url: plain).metadata == nil)
            #expect(try RawSafetensors(url: plain).hasMetadataKey == false)
        }
    }

    @Test func writeIsAtomic() throws {
        try BadInput.withTemporaryFolder("writer-atomic") { folder in
            let url = folder.appendingPathComponent("model.safetensors")
            try BadInput.writeTensors([("w", .float32, [3], [1, 2, 3])], to: url)
            #expect(try FileManager.default.contentsOfDirectory(atPath: folder.path) == ["model.safetensors"])
            // Replacing an existing file: still exactly one file, holding the new contents.
            try BadInput.writeTensors([("w", .float32, [2], [4, 5])], to: url)
            #expect(try FileManager.default.contentsOfDirectory(atPath: folder.path) == ["model.safetensors"])
            #expect(try SafeTensorsFile(url: url).tensors["w"]?.shape == [2])
            // A write that fails (its folder does not exist) reports the target and leaves nothing behind.
            let missing = folder.appendingPathComponent("no-such-folder/model.safetensors")
            let error = BadInput.engineError { try BadInput.writeTensors([("w", .float32, [1], [1])], to: missing) }
            #expect(error?.caseName == "writeFailed")
            BadInput.expectMessage(error, contains: [missing.path])
            #expect(try FileManager.default.contentsOfDirectory(atPath: folder.path) == ["model.safetensors"])
        }
    }

    /// Bad arguments to the writer are typed errors, not traps, and leave no file behind.
    @Test func writerRejectsInconsistentTensors() throws {
        try BadInput.withTemporaryFolder("writer-bad") { folder in
            let url = folder.appendingPathComponent("out.safetensors")
            let cases: [(String, [(name: String, dtype: DType, shape: [Int], values: [Float])], String)] = [
                ("shape/value count", [("w", .float32, [2, 2], [1, 2, 3])], "'w'"),
                ("non-float dtype", [("w", .int64, [1], [1])], "I64"),
                ("duplicate name", [("w", .float32, [1], [1]), ("w", .float32, [1], [2])], "'w'"),
                ("reserved name", [("__metadata__", .float32, [1], [1])], "__metadata__"),
                ("negative dimension", [("w", .float32, [-1, -1], [1])], "'w'"),
                ("overflowing shape", [("w", .float32, [1 << 40, 1 << 40], [1])], "'w'"),
            ]
            for (label, tensors, fragment) in cases {
                let error = BadInput.engineError { try BadInput.writeTensors(tensors, to: url) }
                #expect(error?.caseName == "writeFailed", "\(label)")
                BadInput.expectMessage(error, contains: [url.path, fragment])
                let leftovers = try FileManager.default.contentsOfDirectory(atPath: folder.path)
                #expect(leftovers.isEmpty, "\(label) left \(leftovers)")
            }
        }
    }

    // MARK: - Reader: accepted oddities

    @Test func readerAcceptsGapsBetweenTensors() throws {
        try BadInput.withTemporaryFolder("reader-gaps") { folder in
            // a: bytes 0..<8, a hole 8..<16 filled with garbage, b: 16..<20, then 4 trailing bytes nobody owns.
            let header = #"{"b":{"dtype":"F32","shape":[1],"data_offsets":[16,20]},"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}}"#
            let data = BadInput.bytes([1.5, -2]) + [UInt8](repeating: 0xFF, count: 8) + BadInput.bytes([7]) + [0xAB, 0xAB, 0xAB, 0xAB]
            try BadInput.write(BadInput.safetensorsBytes(header: header, data: data, headerLength: 128), named: "model.safetensors", in: folder)
            let file = try SafeTensorsFile(url: folder.appendingPathComponent("model.safetensors"))
            #expect(file.orderedNames == ["a", "b"])
            let store = try WeightStore(folder: folder)
            #expect(Array(try store.floatTensor("a", shape: [2]).buffer) == [1.5, -2])
            #expect(Array(try store.floatTensor("b", shape: [1]).buffer) == [7])
        }
    }

    @Test(arguments: ["null", "absent", "{}"])
    func readerAcceptsMetadataVariants(variant: String) throws {
        try BadInput.withTemporaryFolder("reader-meta") { folder in
            let tensor = #""w":{"dtype":"F32","shape":[1],"data_offsets":[0,4]}"#
            let header = variant == "absent" ? "{\(tensor)}" : #"{"__metadata__":\#(variant),\#(tensor)}"#
            let url = try BadInput.write(BadInput.safetensorsBytes(header: header, data: BadInput.bytes([3]), headerLength: 96), named: "x.safetensors", in: folder)
            let file = try SafeTensorsFile(url: url)
            #expect(file.metadata == (variant == "{}" ? [:] : nil))
            #expect(file.orderedNames == ["w"])
        }
    }

    @Test func readerAcceptsZeroSizeTensors() throws {
        try BadInput.withTemporaryFolder("reader-empty") { folder in
            // Empty tensors may sit anywhere, even at an offset inside another tensor's bytes: they own no bytes.
            let header = #"{"e1":{"dtype":"F32","shape":[0],"data_offsets":[0,0]},"#
                + #""e2":{"dtype":"BF16","shape":[2,0,3],"data_offsets":[4,4]},"#
                + #""w":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"#
                + #""e3":{"dtype":"F16","shape":[0],"data_offsets":[8,8]}}"#
            try BadInput.write(BadInput.safetensorsBytes(header: header, data: BadInput.bytes([1, 2]), headerLength: 256), named: "model.safetensors", in: folder)
            let store = try WeightStore(folder: folder)
            #expect(try store.floatTensor("e1", shape: [0]).count == 0)
            #expect(try store.floatTensor("e2", shape: [2, 0, 3]).count == 0)
            #expect(try store.floatTensor("e3").buffer.isEmpty)
            #expect(Array(try store.floatTensor("w").buffer) == [1, 2])
        }
    }

    /// Header length ≡ 2 (mod 4) puts F32 data at an address that is not 4-aligned: the store must copy it into
    /// aligned memory. /proc/self/maps tells whether a pointer lies inside the file's mapping.
    @Test(arguments: [0, 1, 2, 3])
    func unalignedFloat32IsCopied(misalignment: Int) throws {
        try BadInput.withTemporaryFolder("reader-unaligned") { folder in
            let values: [Float] = [1, -2.5, 1e-40, 3e38, 0.1, -0.0, 42, 7]
            let header = #"{"w":{"dtype":"F32","shape":[2,4],"data_offsets":[0,32]}}"#
            let headerLength = 80 + misalignment // 8 + 80 + m ≡ m (mod 4)
            #expect((8 + headerLength) % 4 == misalignment)
            let url = try BadInput.write(BadInput.safetensorsBytes(header: header, data: BadInput.bytes(values), headerLength: headerLength),
                                     named: "model.safetensors", in: folder)
            let store = try WeightStore(folder: folder)
            let tensor = try store.floatTensor("w", shape: [2, 4])
            #expect(Int(bitPattern: tensor.pointer) % MemoryLayout<Float>.alignment == 0)
            #expect(tensor.buffer.map(\.bitPattern) == values.map(\.bitPattern))
            // The store owns the mapping; keep it alive while its pointer is examined.
            let inMapping = try withExtendedLifetime(store) {
                try ProcMaps.address(UnsafeRawPointer(tensor.pointer), isInMappingOf: url.path)
            }
            #expect(inMapping == (misalignment == 0), "misalignment \(misalignment): pointer in the file's mapping = \(inMapping)")
        }
    }

    // MARK: - Reader: rejected files

    struct Malformed: Sendable, CustomTestStringConvertible {
        let label: String
        let bytes: Data
        let expectedCase: String
        let fragments: [String]
        var testDescription: String { label }

        init(_ label: String, _ bytes: Data, _ fragments: [String], expectedCase: String = "invalidSafetensors") {
            self.label = label
            self.bytes = bytes
            self.expectedCase = expectedCase
            self.fragments = fragments
        }

        /// A file with one tensor entry `a` described by `entry` and `dataCount` zero bytes of data.
        static func entry(_ label: String, _ entry: String, data dataCount: Int = 8, _ fragments: [String]) -> Malformed {
            Malformed(label, BadInput.safetensorsBytes(header: #"{"a":\#(entry)}"#, data: [UInt8](repeating: 0, count: dataCount)), fragments)
        }

        static func header(_ label: String, _ header: String, data dataCount: Int = 8, _ fragments: [String]) -> Malformed {
            Malformed(label, BadInput.safetensorsBytes(header: header, data: [UInt8](repeating: 0, count: dataCount)), fragments)
        }

        static func lengthField(_ label: String, _ length: UInt64, trailing: Int, _ fragments: [String]) -> Malformed {
            var data = Data()
            var little = length.littleEndian
            withUnsafeBytes(of: &little) { data.append(contentsOf: $0) }
            data.append(contentsOf: Array(#"{"a":1}"#.utf8) + [UInt8](repeating: 0x20, count: max(0, trailing - 7)))
            return Malformed(label, data, fragments)
        }
    }

    static let malformed: [Malformed] = [
        Malformed("empty file", Data(), ["0 bytes"]),
        Malformed("five bytes", Data([1, 2, 3, 4, 5]), ["5 bytes"]),
        .lengthField("header length past the end", 1_000, trailing: 16, ["header length 1000", "runs past the end"]),
        .lengthField("header length over 100 MB", 100_000_001, trailing: 16, ["header length 100000001", "limit"]),
        .lengthField("header length 2^64-1", UInt64.max, trailing: 16, ["limit"]),
        .lengthField("header length zero", 0, trailing: 16, ["JSON object"]),
        .header("header not JSON", "{this is not json}", ["not valid JSON"]),
        .header("header JSON array", #"[{"a":1}]"#, ["JSON object"]),
        .header("header with leading space", #" {}"#, ["JSON object"]),
        .header("header truncated JSON", #"{"a":{"dtype":"F32""#, ["not valid JSON"]),
        .entry("entry not an object", "5", ["'a'", "not an object"]),
        .entry("missing dtype", #"{"shape":[2],"data_offsets":[0,8]}"#, ["'a'", "dtype"]),
        .entry("dtype not a string", #"{"dtype":4,"shape":[2],"data_offsets":[0,8]}"#, ["'a'", "dtype"]),
        .entry("missing shape", #"{"dtype":"F32","data_offsets":[0,8]}"#, ["'a'", "shape"]),
        .entry("shape not an array", #"{"dtype":"F32","shape":2,"data_offsets":[0,8]}"#, ["'a'", "shape"]),
        .entry("missing data_offsets", #"{"dtype":"F32","shape":[2]}"#, ["'a'", "data_offsets"]),
        .entry("one data offset", #"{"dtype":"F32","shape":[2],"data_offsets":[8]}"#, ["'a'", "data_offsets"]),
        .entry("three data offsets", #"{"dtype":"F32","shape":[2],"data_offsets":[0,8,8]}"#, ["'a'", "data_offsets"]),
        .entry("string data offset", #"{"dtype":"F32","shape":[2],"data_offsets":["0",8]}"#, ["'a'", "data_offsets"]),
        .entry("unknown dtype", #"{"dtype":"F128","shape":[2],"data_offsets":[0,8]}"#, ["'a'", "unknown dtype 'F128'"]),
        .entry("lower-case dtype", #"{"dtype":"f32","shape":[2],"data_offsets":[0,8]}"#, ["'a'", "'f32'"]),
        .entry("negative dimension", #"{"dtype":"F32","shape":[-2],"data_offsets":[0,8]}"#, ["'a'", "dimension", "-2"]),
        .entry("fractional dimension", #"{"dtype":"F32","shape":[2.5],"data_offsets":[0,10]}"#, ["'a'", "dimension", "2.5"]),
        .entry("boolean dimension", #"{"dtype":"F32","shape":[true],"data_offsets":[0,4]}"#, ["'a'", "dimension"]),
        .entry("string dimension", #"{"dtype":"F32","shape":["2"],"data_offsets":[0,8]}"#, ["'a'", "dimension"]),
        .entry("null dimension", #"{"dtype":"F32","shape":[null],"data_offsets":[0,8]}"#, ["'a'", "dimension"]),
        .entry("huge dimension", #"{"dtype":"F32","shape":[1e300],"data_offsets":[0,8]}"#, ["'a'", "dimension"]),
        .entry("begin > end", #"{"dtype":"F32","shape":[0],"data_offsets":[8,4]}"#, ["'a'", "[8, 4]", "begin > end"]),
        .entry("negative begin", #"{"dtype":"F32","shape":[1],"data_offsets":[-4,0]}"#, ["'a'", "[-4, 0]", "negative"]),
        .entry("end beyond the data", #"{"dtype":"F32","shape":[4],"data_offsets":[0,16]}"#, ["'a'", "16", "past its end", "8 bytes"]),
        .entry("byte length too short for shape", #"{"dtype":"F32","shape":[2,2],"data_offsets":[0,8]}"#,
               ["'a'", "[2, 2]", "16 bytes", "span 8"]),
        .entry("byte length too long for shape", #"{"dtype":"BF16","shape":[2],"data_offsets":[0,8]}"#,
               ["'a'", "4 bytes", "span 8"]),
        .entry("size overflows Int", #"{"dtype":"F32","shape":[1099511627776,1099511627776],"data_offsets":[0,8]}"#,
               ["'a'", "overflows"]),
        .entry("size overflows Int only in bytes", #"{"dtype":"F64","shape":[1099511627776,2097152],"data_offsets":[0,8]}"#,
               ["'a'", "overflows"]),
        .header("overlapping tensors", #"{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"b":{"dtype":"F32","shape":[2],"data_offsets":[4,12]}}"#,
                data: 12, ["'a'", "'b'", "overlap"]),
        .header("identical ranges", #"{"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]},"b":{"dtype":"I32","shape":[1],"data_offsets":[0,4]}}"#,
                data: 4, ["'a'", "'b'", "overlap"]),
        .header("metadata not an object", #"{"__metadata__":[1]}"#, ["__metadata__"]),
        .header("metadata value not a string", #"{"__metadata__":{"format":1}}"#, ["__metadata__", "format"]),
    ]

    @Test(arguments: malformed)
    func readerRejects(_ malformed: Malformed) throws {
        try BadInput.withTemporaryFolder("reader-bad") { folder in
            let url = try BadInput.write(malformed.bytes, named: "bad.safetensors", in: folder)
            let error = BadInput.engineError { _ = try SafeTensorsFile(url: url) }
            #expect(error?.caseName == malformed.expectedCase, "\(malformed.label): \(String(describing: error))")
            #expect(error?.path == url.path)
            BadInput.expectMessage(error, contains: [url.path] + malformed.fragments)
        }
    }

    /// A real fixture cut short: in the middle of the tensor data, and in the middle of the header.
    @Test(arguments: ["llama-bf16", "mistral"])
    func readerRejectsTruncatedFixture(name: String) throws {
        let original = try Data(contentsOf: FixturePaths.ownModel(name).appendingPathComponent("model.safetensors"))
        let headerLength = Int(original.prefix(8).withUnsafeBytes { $0.loadUnaligned(as: UInt64.self) }.littleEndian)
        try BadInput.withTemporaryFolder("reader-truncated") { folder in
            let middleOfData = 8 + headerLength + (original.count - 8 - headerLength) / 2
            let cut = try BadInput.write(original.prefix(middleOfData), named: "model.safetensors", in: folder)
            var error = BadInput.engineError { _ = try WeightStore(folder: folder) }
            #expect(error?.caseName == "invalidSafetensors")
            BadInput.expectMessage(error, contains: [cut.path, "past its end", "truncated"])

            let inHeader = try BadInput.write(original.prefix(8 + headerLength / 2), named: "header.safetensors", in: folder)
            error = BadInput.engineError { _ = try SafeTensorsFile(url: inHeader) }
            #expect(error?.caseName == "invalidSafetensors")
            BadInput.expectMessage(error, contains: [inHeader.path, "runs past the end"])
        }
    }

    @Test func readerRejectsDirectoryMissingFileAndDanglingLink() throws {
        try BadInput.withTemporaryFolder("reader-nonfile") { folder in
            let directory = folder.appendingPathComponent("model.safetensors")
            try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: false)
            var error = BadInput.engineError { _ = try SafeTensorsFile(url: directory) }
            #expect(error?.caseName == "unreadable")
            BadInput.expectMessage(error, contains: [directory.path, "is a directory, expected a file"])

            let missing = folder.appendingPathComponent("missing.safetensors")
            error = BadInput.engineError { _ = try SafeTensorsFile(url: missing) }
            #expect(error?.caseName == "unreadable")
            BadInput.expectMessage(error, contains: [missing.path, "No such file"])

            let link = folder.appendingPathComponent("dangling.safetensors")
            try FileManager.default.createSymbolicLink(atPath: link.path, withDestinationPath: folder.appendingPathComponent("gone").path)
            error = BadInput.engineError { _ = try SafeTensorsFile(url: link) }
            #expect(error?.caseName == "unreadable")
            BadInput.expectMessage(error, contains: [link.path, "No such file"])
        }
    }

    /// A named pipe must be refused, not opened for reading (which blocks forever waiting for a writer).
    /// Unlike permission bits, this case works when the tests run as root.
    @Test(.timeLimit(.minutes(1)))
    func readerRejectsNamedPipe() throws {
        try BadInput.withTemporaryFolder("reader-fifo") { folder in
            let fifo = folder.appendingPathComponent("model.safetensors")
            #expect(mkfifo(fifo.path, 0o644) == 0)
            let error = BadInput.engineError { _ = try SafeTensorsFile(url: fifo) }
            #expect(error?.caseName == "unreadable")
            BadInput.expectMessage(error, contains: [fifo.path, "is a named pipe, expected a regular file"])
        }
    }

    /// Permission bits do not stop root, so this case only means something for other users; as root it is
    /// reported as skipped (the named-pipe test above covers an unreadable file as root).
    @Test(.enabled(if: getuid() != 0, "running as root: chmod 000 does not stop root from reading"))
    func readerRejectsFileWithoutReadPermission() throws {
        try BadInput.withTemporaryFolder("reader-perm") { folder in
            let url = folder.appendingPathComponent("model.safetensors")
            try BadInput.writeTensors([("w", .float32, [1], [1])], to: url)
            #expect(chmod(url.path, 0) == 0)
            defer { _ = chmod(url.path, 0o644) }
            let error = BadInput.engineError { _ = try SafeTensorsFile(url: url) }
            #expect(error?.caseName == "unreadable")
            BadInput.expectMessage(error, contains: [url.path, "Permission denied"])
        }
    }

    // MARK: - WeightStore

    /// Half-precision bytes built by hand (not by the writer) widen to the values the bit patterns denote.
    @Test func halfPrecisionWeightsWiden() throws {
        let halves: [(UInt16, Float)] = [(0x3C00, 1), (0xC100, -2.5), (0x0001, 0x1p-24), (0x7BFF, 65504), (0x8000, -0.0),
                                         (0x0400, 0x1p-14), (0x3555, 0.333251953125), (0x03FF, 1023 * 0x1p-24)]
        let brains: [(UInt16, Float)] = [(0x3F80, 1), (0xC020, -2.5), (0x0001, Float(bitPattern: 0x0001_0000)),
                                         (0x7F7F, Float(bitPattern: 0x7F7F_0000)), (0x3DCD, 0.10009765625), (0x8000, -0.0)]
        func littleEndian(_ words: [UInt16]) -> [UInt8] { words.flatMap { [UInt8($0 & 0xFF), UInt8($0 >> 8)] } }
        try BadInput.withTemporaryFolder("store-widen") { folder in
            let header = #"{"h":{"dtype":"F16","shape":[\#(halves.count)],"data_offsets":[0,\#(2 * halves.count)]},"#
                + #""b":{"dtype":"BF16","shape":[\#(brains.count)],"data_offsets":[\#(2 * halves.count),\#(2 * halves.count + 2 * brains.count)]}}"#
            // Odd header length: the half data also starts unaligned.
            let data = littleEndian(halves.map(\.0)) + littleEndian(brains.map(\.0))
            try BadInput.write(BadInput.safetensorsBytes(header: header, data: data, headerLength: 201), named: "model.safetensors", in: folder)
            let store = try WeightStore(folder: folder)
            #expect(try store.floatTensor("h").buffer.map(\.bitPattern) == halves.map(\.1.bitPattern))
            #expect(try store.floatTensor("b").buffer.map(\.bitPattern) == brains.map(\.1.bitPattern))
            #expect(store.dominantDType == .float16)
        }
    }

    @Test(arguments: [("F32", [UInt8](BadInput.bytes([1, .nan]))), ("F32", BadInput.bytes([.infinity, 1])),
                      ("BF16", [0x80, 0x3F, 0x80, 0x7F]), ("F16", [0x00, 0xFC, 0x00, 0x3C]), ("F16", [0x01, 0x7E, 0x00, 0x3C])])
    func nonFiniteWeightsAreRejected(dtype: String, data: [UInt8]) throws {
        try BadInput.withTemporaryFolder("store-nonfinite") { folder in
            let count = data.count / (dtype == "F32" ? 4 : 2)
            let header = #"{"ok":{"dtype":"F32","shape":[1],"data_offsets":[0,4]},"layers.0.bad.weight":{"dtype":"\#(dtype)","shape":[\#(count)],"data_offsets":[4,\#(4 + data.count)]}}"#
            let url = try BadInput.write(BadInput.safetensorsBytes(header: header, data: BadInput.bytes([3]) + data, headerLength: 160),
                                     named: "model.safetensors", in: folder)
            let store = try WeightStore(folder: folder)
            #expect(Array(try store.floatTensor("ok").buffer) == [3])
            let error = BadInput.engineError { _ = try store.floatTensor("layers.0.bad.weight") }
            #expect(error == .nonFiniteWeights(path: url.path, name: "layers.0.bad.weight"))
            BadInput.expectMessage(error, contains: [url.path, "'layers.0.bad.weight'", "NaN or infinite"])
        }
    }

    @Test func nonFloatDTypeMissingTensorAndWrongShape() throws {
        try BadInput.withTemporaryFolder("store-lookup") { folder in
            let header = #"{"ids":{"dtype":"I64","shape":[1],"data_offsets":[0,8]},"w":{"dtype":"F32","shape":[2],"data_offsets":[8,16]}}"#
            let url = try BadInput.write(BadInput.safetensorsBytes(header: header, data: [UInt8](repeating: 0, count: 16)),
                                     named: "model.safetensors", in: folder)
            let store = try WeightStore(folder: folder)
            var error = BadInput.engineError { _ = try store.floatTensor("ids") }
            #expect(error == .unsupportedDType(path: url.path, name: "ids", dtype: "I64"))
            error = BadInput.engineError { _ = try store.floatTensor("nope") }
            #expect(error == .missingTensor(path: folder.path, name: "nope"))
            BadInput.expectMessage(error, contains: [folder.path, "'nope'"])
            error = BadInput.engineError { _ = try store.floatTensor("w", shape: [1, 2]) }
            #expect(error == .tensorShapeMismatch(path: url.path, name: "w", expected: [1, 2], actual: [2]))
        }
    }

    static func tensorFile(_ names: [String]) -> Data {
        let entries = names.enumerated().map { #""\#($1)":{"dtype":"F32","shape":[1],"data_offsets":[\#(4 * $0),\#(4 * $0 + 4)]}"# }
        return BadInput.safetensorsBytes(header: "{" + entries.joined(separator: ",") + "}",
                                         data: BadInput.bytes(names.indices.map { Float($0 + 1) }))
    }

    static func index(_ map: [String: Any]) throws -> Data {
        try JSONSerialization.data(withJSONObject: ["metadata": ["total_size": 8], "weight_map": map])
    }

    @Test(arguments: [true, false])
    func tensorInTwoShardsIsRejected(withIndex: Bool) throws {
        try BadInput.withTemporaryFolder("store-dup") { folder in
            try BadInput.write(Self.tensorFile(["a", "shared"]), named: "model-00001-of-00002.safetensors", in: folder)
            try BadInput.write(Self.tensorFile(["shared", "b"]), named: "model-00002-of-00002.safetensors", in: folder)
            if withIndex {
                try BadInput.write(try Self.index(["a": "model-00001-of-00002.safetensors", "shared": "model-00001-of-00002.safetensors",
                                               "b": "model-00002-of-00002.safetensors"]),
                               named: "model.safetensors.index.json", in: folder)
            }
            let error = BadInput.engineError { _ = try WeightStore(folder: folder) }
            #expect(error?.caseName == "invalidSafetensors")
            BadInput.expectMessage(error, contains: ["'shared'", "model-00001-of-00002.safetensors", "model-00002-of-00002.safetensors"])
        }
    }

    /// A shard named by many tensors is opened once; shards not in the index are ignored.
    @Test func indexNamingAShardRepeatedlyLoads() throws {
        try BadInput.withTemporaryFolder("store-index-ok") { folder in
            try BadInput.write(Self.tensorFile(["a", "b"]), named: "part-1.safetensors", in: folder)
            try BadInput.write(Self.tensorFile(["c"]), named: "part-2.safetensors", in: folder)
            try BadInput.write(Self.tensorFile(["a"]), named: "stray.safetensors", in: folder)
            try BadInput.write(try Self.index(["a": "part-1.safetensors", "b": "part-1.safetensors", "c": "part-2.safetensors"]),
                           named: "model.safetensors.index.json", in: folder)
            let store = try WeightStore(folder: folder)
            #expect(store.tensorNames == ["a", "b", "c"])
            #expect(Array(try store.floatTensor("b").buffer) == [2])
            #expect(store.path(of: "c") == folder.appendingPathComponent("part-2.safetensors").path)
        }
    }

    static let badIndexes: [(String, String, String, [String])] = [
        ("parent directory", #"{"weight_map":{"a":"../model.safetensors"}}"#, "invalidConfig", ["../model.safetensors"]),
        ("subfolder", #"{"weight_map":{"a":"sub/model.safetensors"}}"#, "invalidConfig", ["sub/model.safetensors"]),
        ("absolute path", #"{"weight_map":{"a":"/etc/model.safetensors"}}"#, "invalidConfig", ["/etc/model.safetensors"]),
        ("dot-dot", #"{"weight_map":{"a":".."}}"#, "invalidConfig", ["'..'"]),
        ("not safetensors", #"{"weight_map":{"a":"pytorch_model.bin"}}"#, "invalidConfig", ["pytorch_model.bin"]),
        ("file name not a string", #"{"weight_map":{"a":3}}"#, "invalidConfig", ["'a'"]),
        ("missing weight_map", #"{"metadata":{"total_size":8}}"#, "invalidConfig", ["weight_map"]),
        ("weight_map not an object", #"{"weight_map":["model.safetensors"]}"#, "invalidConfig", ["weight_map"]),
        ("empty weight_map", #"{"weight_map":{}}"#, "invalidConfig", ["weight_map is empty"]),
        ("not JSON", "weight_map", "invalidConfig", ["weight_map"]),
        ("JSON array", "[]", "invalidConfig", ["weight_map"]),
        ("missing shard", #"{"weight_map":{"a":"model.safetensors","b":"model-2.safetensors"}}"#, "invalidConfig", ["weight_map names 'model-2.safetensors', which is not in the folder"]),
    ]

    @Test(arguments: badIndexes.indices)
    func badIndexIsRejected(_ index: Int) throws {
        let (label, text, expectedCase, fragments) = Self.badIndexes[index]
        try BadInput.withTemporaryFolder("store-index") { folder in
            try BadInput.write(Self.tensorFile(["a"]), named: "model.safetensors", in: folder)
            let indexURL = try BadInput.write(Data(text.utf8), named: "model.safetensors.index.json", in: folder)
            let error = BadInput.engineError { _ = try WeightStore(folder: folder) }
            #expect(error?.caseName == expectedCase, "\(label): \(String(describing: error))")
            if expectedCase == "invalidConfig" { #expect(error?.path == indexURL.path, "\(label)") }
            BadInput.expectMessage(error, contains: fragments)
        }
    }

    @Test func folderWithoutWeightsIsUnreadable() throws {
        try BadInput.withTemporaryFolder("store-none") { folder in
            try BadInput.write(Data("{}".utf8), named: "config.json", in: folder)
            try BadInput.write(Self.tensorFile(["a"]), named: "adapter_model.safetensors", in: folder)
            let error = BadInput.engineError { _ = try WeightStore(folder: folder) }
            #expect(error?.caseName == "unreadable")
            BadInput.expectMessage(error, contains: [folder.path, "model.safetensors"])
        }
    }
}

/// A safetensors file parsed by the test itself (not by the engine), to check the writer's bytes.
struct RawSafetensors {
    let data: Data
    let headerLength: Int
    let entries: [String: (dtype: String, shape: [Int], begin: Int, end: Int)]
    let hasMetadataKey: Bool

    init(url: URL) throws {
        data = try Data(contentsOf: url)
        headerLength = Int(data.prefix(8).withUnsafeBytes { $0.loadUnaligned(as: UInt64.self) }.littleEndian)
        let header = try #require(try JSONSerialization.jsonObject(with: data.subdata(in: 8..<(8 + headerLength))) as? [String: Any])
        var entries: [String: (dtype: String, shape: [Int], begin: Int, end: Int)] = [:]
        for (name, value) in header where name != "__metadata__" {
            let entry = try #require(value as? [String: Any])
            let offsets = try #require(entry["data_offsets"] as? [Int])
            entries[name] = (try #require(entry["dtype"] as? String), try #require(entry["shape"] as? [Int]), offsets[0], offsets[1])
        }
        self.entries = entries
        hasMetadataKey = header["__metadata__"] != nil
    }

    /// The tensor's data as little-endian words of `size` bytes.
    func words(of name: String, size: Int) -> [UInt64] {
        guard let entry = entries[name] else { return [] }
        let start = 8 + headerLength + entry.begin
        let bytes = [UInt8](data.subdata(in: start..<(8 + headerLength + entry.end)))
        return stride(from: 0, to: bytes.count, by: size).map { offset in
            (0..<size).reduce(UInt64(0)) { $0 | UInt64(bytes[offset + $1]) << (8 * $1) }
        }
    }
}

/// Which file a mapped address belongs to, from /proc/self/maps.
enum ProcMaps {
    static func address(_ pointer: UnsafeRawPointer, isInMappingOf path: String) throws -> Bool {
        let address = UInt(bitPattern: pointer)
        // Not String(contentsOfFile:): on Linux Foundation it stops after the first read of a procfs file (~4 KB).
        guard let handle = FileHandle(forReadingAtPath: "/proc/self/maps") else { return false }
        defer { try? handle.close() }
        let maps = String(decoding: try handle.readToEnd() ?? Data(), as: UTF8.self)
        let resolved = URL(fileURLWithPath: path).resolvingSymlinksInPath().path
        for line in maps.split(separator: "\n") {
            let fields = line.split(separator: " ", maxSplits: 5, omittingEmptySubsequences: true)
            guard fields.count == 6 else { continue }
            let file = fields[5].trimmingCharacters(in: .whitespaces)
            guard file == path || file == resolved else { continue }
            let bounds = fields[0].split(separator: "-").compactMap { UInt($0, radix: 16) }
            if bounds.count == 2, address >= bounds[0], address < bounds[1] { return true }
        }
        return false
    }
}
