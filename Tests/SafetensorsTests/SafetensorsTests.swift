import DPOTestSupport
import Foundation
import XCTest
#if canImport(Glibc)
import Glibc
#endif
@testable import DPOSupport
@testable import Safetensors

/// The reader against files written by the Python `safetensors` library (fixtures from
/// tools/make_safetensors_fixtures.py), the writer against the same library's bytes, and the
/// reader against damaged files, which must each throw one DPOError naming the file.
final class SafetensorsTests: XCTestCase {
    // MARK: Fixtures

    private struct ExpectedTensor: Decodable {
        let dtype: String
        let shape: [Int]
        let floatBits: [UInt32]?
        let ints: [Int64]?
        enum CodingKeys: String, CodingKey { case dtype, shape, floatBits = "float_bits", ints }
    }

    private struct WriterInput: Decodable {
        let shape: [Int]
        let bits: [UInt32]
    }

    private struct Expected: Decodable {
        struct Mixed: Decodable {
            let metadata: [String: String]
            let tensors: [String: ExpectedTensor]
        }
        let mixed: Mixed
        let sharded: [String: ExpectedTensor]
        let writerInputs: [String: WriterInput]
        let writerBF16Bits: [String: [UInt16]]
        enum CodingKeys: String, CodingKey {
            case mixed, sharded, writerInputs = "writer_inputs", writerBF16Bits = "writer_bf16_bits"
        }
    }

    private static let fixtures = Fixtures.root + "/safetensors"

    private func fixture(_ name: String) -> String { (Self.fixtures as NSString).appendingPathComponent(name) }

    private lazy var expected: Expected = {
        let data = FileManager.default.contents(atPath: fixture("expected.json"))!
        return try! JSONDecoder().decode(Expected.self, from: data)
    }()

    private var temporaryDirectory: String!

    override func setUpWithError() throws {
        temporaryDirectory = NSTemporaryDirectory() + "safetensors-tests-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: temporaryDirectory, withIntermediateDirectories: true)
    }

    override func tearDownWithError() throws {
        try? FileManager.default.removeItem(atPath: temporaryDirectory)
    }

    private func temporary(_ name: String) -> String { (temporaryDirectory as NSString).appendingPathComponent(name) }

    private static let torchDTypes: [String: SafetensorsDType] = [
        "float32": .f32, "float16": .f16, "bfloat16": .bf16, "float64": .f64, "int64": .i64, "int32": .i32,
    ]

    /// Compares every tensor of `expected` with what `read` gives, bit for bit.
    private func assertTensors(_ expected: [String: ExpectedTensor], info: (String) -> SafetensorsTensorInfo?,
                               floats: (String) throws -> [Float], ints: (String) throws -> [Int64]) throws {
        for (name, tensor) in expected.sorted(by: { $0.key < $1.key }) {
            let info = try XCTUnwrap(info(name), name)
            XCTAssertEqual(info.dtype, Self.torchDTypes[tensor.dtype], name)
            XCTAssertEqual(info.shape, tensor.shape, name)
            XCTAssertEqual(info.elementCount, tensor.shape.reduce(1, *), name)
            if let bits = tensor.floatBits {
                assertSameFloats(try floats(name).map(\.bitPattern), bits, name)
            }
            if let values = tensor.ints {
                XCTAssertEqual(try ints(name), values, name)
            }
        }
    }

    /// Bit-for-bit equality, except that any NaN matches any NaN: torch's NaN payloads depend on
    /// its code path (half NaN widens to 0x7FFFFFFF, fp32 NaN narrows to bf16 0xFFFF) and mean nothing.
    private func assertSameFloats(_ actual: [UInt32], _ expected: [UInt32], _ message: String,
                                  file: StaticString = #filePath, line: UInt = #line) {
        func isNaN(_ bits: UInt32) -> Bool { Float(bitPattern: bits).isNaN }
        XCTAssertEqual(actual.count, expected.count, message, file: file, line: line)
        for (index, (a, e)) in zip(actual, expected).enumerated() where !(a == e || (isNaN(a) && isNaN(e))) {
            XCTFail("\(message)[\(index)]: 0x\(String(a, radix: 16)) != expected 0x\(String(e, radix: 16))", file: file, line: line)
        }
    }

    // MARK: Reading

    func testReadsEveryDTypeOfThePythonFixtureExactly() throws {
        let file = try SafetensorsFile(path: fixture("mixed.safetensors"))
        XCTAssertEqual(file.metadata, expected.mixed.metadata)
        XCTAssertEqual(file.tensorNames, expected.mixed.tensors.keys.sorted())
        try assertTensors(expected.mixed.tensors, info: { file.tensors[$0] },
                          floats: file.floats, ints: file.int64s)
    }

    func testReadFloatsChecksNameCountAndDType() throws {
        let path = fixture("mixed.safetensors")
        let file = try SafetensorsFile(path: path)
        var tooSmall = [Float](repeating: 0, count: 5)
        try tooSmall.withUnsafeMutableBufferPointer { buffer in
            assertThrows(try file.readFloats("f32", into: buffer), path, "tensor \"f32\" has shape [2, 3] (6 elements) but the destination holds 5")
        }
        assertThrows(try file.floats("ids"), path, "tensor \"ids\" has dtype I64")
        assertThrows(try file.int64s("f32"), path, "tensor \"f32\" has dtype F32; expected I64 or I32")
        assertThrows(try file.floats("missing"), path, "no tensor named \"missing\"")
    }

    func testShardedCheckpointIsOneLookup() throws {
        let checkpoint = try SafetensorsCheckpoint(directory: fixture("sharded"))
        XCTAssertEqual(checkpoint.tensorNames, expected.sharded.keys.sorted())
        try assertTensors(expected.sharded, info: checkpoint.info, floats: { name in
            var values = [Float](repeating: .nan, count: checkpoint.info(name)!.elementCount)
            try values.withUnsafeMutableBufferPointer { try checkpoint.readFloats(name, into: $0) }
            return values
        }, ints: { _ in [] })
        XCTAssertNil(checkpoint.info("model.layers.1.input_layernorm.weight"))
        var one: [Float] = [0]
        try one.withUnsafeMutableBufferPointer { buffer in
            assertThrows(try checkpoint.readFloats("nope", into: buffer), fixture("sharded"), "no tensor named \"nope\"")
        }
    }

    func testSingleFileCheckpoint() throws {
        try FileManager.default.copyItem(atPath: fixture("mixed.safetensors"), toPath: temporary("model.safetensors"))
        let checkpoint = try SafetensorsCheckpoint(directory: temporaryDirectory)
        XCTAssertEqual(checkpoint.tensorNames, expected.mixed.tensors.keys.sorted())
        XCTAssertEqual(checkpoint.info("f16")?.shape, [13])
    }

    // MARK: Conversions

    /// Every one of the 65,536 half bit patterns against the platform's Float16, where it exists.
    func testHalfConversionMatchesFloat16Exhaustively() throws {
        #if !(os(macOS) && arch(x86_64))
        for bits in UInt16.min...UInt16.max {
            let reference = Float(Float16(bitPattern: bits))
            let converted = floatFromHalfBits(bits)
            if reference.isNaN {
                // Hardware conversion sets the quiet bit; ours keeps the payload as is. Both are NaN with the same sign.
                XCTAssertTrue(converted.isNaN, "0x\(String(bits, radix: 16))")
                XCTAssertEqual(converted.sign, reference.sign)
            } else {
                XCTAssertEqual(converted.bitPattern, reference.bitPattern, "0x\(String(bits, radix: 16))")
            }
        }
        #else
        throw XCTSkip("Float16 is unavailable on macOS x86_64")
        #endif
    }

    func testHalfConversionSpecialValues() {
        XCTAssertEqual(floatFromHalfBits(0x0001), 0x1p-24)          // smallest subnormal
        XCTAssertEqual(floatFromHalfBits(0x03FF), 0x1p-14 - 0x1p-24) // largest subnormal
        XCTAssertEqual(floatFromHalfBits(0x0400), 0x1p-14)          // smallest normal
        XCTAssertEqual(floatFromHalfBits(0x7BFF), 65504)
        XCTAssertEqual(floatFromHalfBits(0x8000).bitPattern, (-0.0 as Float).bitPattern)
        XCTAssertEqual(floatFromHalfBits(0x7C00), .infinity)
        XCTAssertEqual(floatFromHalfBits(0xFC00), -.infinity)
        XCTAssertTrue(floatFromHalfBits(0x7E00).isNaN)
        XCTAssertTrue(floatFromHalfBits(0x7C01).isNaN)  // a NaN whose payload is only the lowest bit
    }

    func testBFloat16RoundsToNearestEven() {
        let cases: [(UInt32, UInt16)] = [
            (0x3F80_0000, 0x3F80),  // 1.0, exact
            (0x3F80_8000, 0x3F80),  // 1.00390625: halfway, the even neighbour is 1.0
            (0x3F81_8000, 0x3F82),  // 1.01171875: halfway, the even neighbour is above
            (0x3F80_8001, 0x3F81),  // just above halfway rounds up
            (0x3F80_7FFF, 0x3F80),  // just below halfway rounds down
            (0xBF81_8000, 0xBF82),  // negative halfway, magnitude to even
            (0x7F7F_FFFF, 0x7F80),  // largest fp32 becomes inf
            (0x0000_0001, 0x0000),  // smallest subnormal becomes +0
            (0x8000_0000, 0x8000),  // -0 stays -0
            (0xFF80_0000, 0xFF80),  // -inf
        ]
        for (input, output) in cases {
            XCTAssertEqual(bfloat16Bits(Float(bitPattern: input)), output, "0x\(String(input, radix: 16))")
        }
        // NaN stays NaN, even when its payload sits only in the bits that are dropped.
        for nan: UInt32 in [0x7FC0_0000, 0xFFC0_0000, 0x7F80_0001, 0xFF80_0001] {
            let rounded = bfloat16Bits(Float(bitPattern: nan))
            XCTAssertTrue(floatFromBFloat16Bits(rounded).isNaN, "0x\(String(nan, radix: 16))")
            XCTAssertEqual(rounded & 0x8000, UInt16(nan >> 16) & 0x8000)
        }
        XCTAssertEqual(floatFromBFloat16Bits(0x3F82), 1.015625)
    }

    // MARK: Writing

    /// Writes the fixture's writer inputs with our writer.
    private func writeInputs(to path: String, dtype: SafetensorsDType) throws {
        // One flat buffer with a view per tensor, the way the model hands its parameters over.
        let names = expected.writerInputs.keys.sorted()
        let flat = names.flatMap { expected.writerInputs[$0]!.bits.map { Float(bitPattern: $0) } }
        try flat.withUnsafeBufferPointer { all in
            var entries: [SafetensorsWriter.Entry] = []
            var offset = 0
            for name in names {
                let input = expected.writerInputs[name]!
                entries.append(.init(name: name, shape: input.shape,
                                     data: UnsafeBufferPointer(rebasing: all[offset..<(offset + input.bits.count)])))
                offset += input.bits.count
            }
            // Reversed: the writer sorts by name itself.
            try SafetensorsWriter.write(path: path, entries: entries.reversed(), dtype: dtype, metadata: ["format": "pt"])
        }
        if let exportDirectory = ProcessInfo.processInfo.environment["SAFETENSORS_EXPORT_DIR"] {
            // For `tools/make_safetensors_fixtures.py --check`: the files must load in Python too.
            let copy = (exportDirectory as NSString).appendingPathComponent("swift_written_\(dtype.rawValue.lowercased()).safetensors")
            try? FileManager.default.removeItem(atPath: copy)
            try FileManager.default.copyItem(atPath: path, toPath: copy)
        }
    }

    func testWriterF32RoundTripIsBitExactAndMatchesPythonBytes() throws {
        let path = temporary("out.safetensors")
        try writeInputs(to: path, dtype: .f32)
        let file = try SafetensorsFile(path: path)
        XCTAssertEqual(file.metadata, ["format": "pt"])
        for (name, input) in expected.writerInputs {
            XCTAssertEqual(file.tensors[name]?.shape, input.shape)
            XCTAssertEqual(try file.floats(name).map(\.bitPattern), input.bits, name)
        }
        let ours = try XCTUnwrap(FileManager.default.contents(atPath: path))
        let python = try XCTUnwrap(FileManager.default.contents(atPath: fixture("python_written_f32.safetensors")))
        XCTAssertEqual(ours, python, "our F32 file differs from the one the Python library wrote")
        XCTAssertEqual(UInt64(littleEndian: ours.withUnsafeBytes { $0.loadUnaligned(as: UInt64.self) }) % 8, 0)
        // Only the final file remains: the temporary one was renamed into place.
        XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: temporaryDirectory), ["out.safetensors"])
    }

    func testWriterBF16RoundsToNearestEvenLikeTorch() throws {
        let path = temporary("out.safetensors")
        try writeInputs(to: path, dtype: .bf16)
        let file = try SafetensorsFile(path: path)
        for (name, input) in expected.writerInputs {
            XCTAssertEqual(file.tensors[name]?.dtype, .bf16)
            let torchBits = try XCTUnwrap(expected.writerBF16Bits[name])
            XCTAssertEqual(input.bits.map { bfloat16Bits(Float(bitPattern: $0)) }, torchBits, name)
            XCTAssertEqual(try file.floats(name).map(\.bitPattern), torchBits.map { UInt32($0) << 16 }, name)
        }
        // Hand-computed: a.weight's second and third inputs are halfway cases that round to even.
        XCTAssertEqual(try file.floats("a.weight")[1], 1.0)
        XCTAssertEqual(try file.floats("a.weight")[2], 1.015625)
        let ours = try XCTUnwrap(FileManager.default.contents(atPath: path))
        let python = try XCTUnwrap(FileManager.default.contents(atPath: fixture("python_written_bf16.safetensors")))
        XCTAssertEqual(ours, python, "our BF16 file differs from the one the Python library wrote")
        // NaN survives the trip with its sign (the fixture inputs leave NaN out, see the script).
        let nans: [Float] = [.nan, -.nan, Float(bitPattern: 0x7F80_0001)]
        try nans.withUnsafeBufferPointer { data in
            try SafetensorsWriter.write(path: temporary("nan.safetensors"), entries: [.init(name: "nan", shape: [3], data: data)], dtype: .bf16, metadata: [:])
        }
        let readBack = try SafetensorsFile(path: temporary("nan.safetensors")).floats("nan")
        XCTAssertTrue(readBack.allSatisfy(\.isNaN))
        XCTAssertEqual(readBack.map(\.sign), [.plus, .minus, .plus])
    }

    /// A model written through a symlink lands in its target and leaves the link; written to a FIFO it
    /// goes to the reader and leaves the FIFO (never a file renamed over either).
    func testWriterFollowsSymlinksAndWritesFIFOsAsTheyAre() throws {
        let values: [Float] = [1, 2, 3, 4, 5, 6]
        let target = temporary("real.safetensors"), link = temporary("linked.safetensors")
        try FileManager.default.createSymbolicLink(atPath: link, withDestinationPath: target)
        try values.withUnsafeBufferPointer { data in
            try SafetensorsWriter.write(path: link, entries: [.init(name: "x", shape: [6], data: data)], dtype: .f32, metadata: [:])
        }
        XCTAssertEqual(try FileManager.default.attributesOfItem(atPath: link)[.type] as? FileAttributeType, .typeSymbolicLink)
        XCTAssertEqual(try SafetensorsFile(path: target).floats("x"), values)

        let fifo = temporary("model.fifo")
        guard mkfifo(fifo, 0o600) == 0 else { throw XCTSkip("mkfifo is not permitted here") }
        final class Received: @unchecked Sendable { var bytes = Data() }
        let received = Received(), done = DispatchSemaphore(value: 0)
        Thread {
            // Foundation's file readers expect a size; a FIFO is read until its writer closes.
            let fd = open(fifo, O_RDONLY)
            var chunk = [UInt8](repeating: 0, count: 65536)
            while fd >= 0 {
                let n = read(fd, &chunk, chunk.count)
                if n <= 0 { break }
                received.bytes.append(contentsOf: chunk[0..<n])
            }
            if fd >= 0 { close(fd) }
            done.signal()
        }.start()
        try values.withUnsafeBufferPointer { data in
            try SafetensorsWriter.write(path: fifo, entries: [.init(name: "x", shape: [6], data: data)], dtype: .f32, metadata: [:])
        }
        XCTAssertEqual(done.wait(timeout: .now() + 10), .success)
        XCTAssertEqual(received.bytes, try Data(contentsOf: URL(fileURLWithPath: target)))
        var info = stat()
        XCTAssertEqual(lstat(fifo, &info), 0)
        XCTAssertEqual(info.st_mode & S_IFMT, S_IFIFO, "the FIFO was replaced by a file")
    }

    func testWriterReplacesAnExistingFileAndRefusesBadEntries() throws {
        let path = temporary("model.safetensors")
        let values: [Float] = [1, 2, 3, 4, 5, 6]
        try values.withUnsafeBufferPointer { data in
            try SafetensorsWriter.write(path: path, entries: [.init(name: "x", shape: [2, 3], data: data)], dtype: .f32, metadata: [:])
            try SafetensorsWriter.write(path: path, entries: [.init(name: "y", shape: [6], data: data)], dtype: .f32, metadata: [:])
            XCTAssertEqual(try SafetensorsFile(path: path).tensorNames, ["y"])
            XCTAssertEqual(try SafetensorsFile(path: path).metadata, [:])

            assertThrows(try SafetensorsWriter.write(path: path, entries: [.init(name: "x", shape: [4], data: data)], dtype: .f32, metadata: [:]),
                         path, "tensor \"x\" has shape [4] but 6 values")
            assertThrows(try SafetensorsWriter.write(path: path, entries: [.init(name: "x", shape: [6], data: data)], dtype: .f16, metadata: [:]),
                         path, "cannot write dtype F16")
            assertThrows(try SafetensorsWriter.write(path: path, entries: [.init(name: "x", shape: [6], data: data), .init(name: "x", shape: [6], data: data)],
                                                     dtype: .f32, metadata: [:]),
                         path, "tensor \"x\" is given twice")
        }
        // Names and metadata that need JSON escaping survive the trip.
        let odd = "quote\" back\\slash\nnewline é"
        try values.withUnsafeBufferPointer { data in
            try SafetensorsWriter.write(path: path, entries: [.init(name: odd, shape: [6], data: data)], dtype: .bf16, metadata: [odd: odd])
        }
        let file = try SafetensorsFile(path: path)
        XCTAssertEqual(file.tensorNames, [odd])
        XCTAssertEqual(file.metadata, [odd: odd])
        XCTAssertEqual(try file.floats(odd), values)
        XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: temporaryDirectory), ["model.safetensors"])
    }

    // MARK: Damaged files

    /// A copy of a valid Python-written file whose header text `edit` changes; the data section stays.
    private func damaged(_ name: String, edit: (String) -> String) throws -> String {
        let valid = try XCTUnwrap(FileManager.default.contents(atPath: fixture("python_written_f32.safetensors")))
        let headerLength = Int(valid.withUnsafeBytes { UInt64(littleEndian: $0.loadUnaligned(as: UInt64.self)) })
        let header = String(decoding: valid[8..<(8 + headerLength)], as: UTF8.self)
        let edited = edit(header)
        XCTAssertNotEqual(edited, header, "the edit changed nothing")
        var bytes = withUnsafeBytes(of: UInt64(edited.utf8.count).littleEndian) { Data($0) }
        bytes.append(contentsOf: Array(edited.utf8))
        bytes.append(valid[(8 + headerLength)...])
        return try write(bytes, name)
    }

    private func write(_ bytes: Data, _ name: String) throws -> String {
        let path = temporary(name)
        try bytes.write(to: URL(fileURLWithPath: path))
        return path
    }

    /// `expression` must throw a DPOError whose message is "<path>: ..." and contains `fragment`.
    private func assertThrows<T>(_ expression: @autoclosure () throws -> T, _ path: String, _ fragment: String,
                                 file: StaticString = #filePath, line: UInt = #line) {
        do {
            _ = try expression()
            XCTFail("no error; expected one containing \(fragment)", file: file, line: line)
        } catch let error as DPOError {
            XCTAssertTrue(error.message.hasPrefix("\(path): "), "not named after the file: \(error.message)", file: file, line: line)
            XCTAssertTrue(error.message.contains(fragment), "\(error.message) lacks \(fragment)", file: file, line: line)
            XCTAssertFalse(error.message.contains("\n"), "not one line: \(error.message)", file: file, line: line)
        } catch {
            XCTFail("not a DPOError: \(error)", file: file, line: line)
        }
    }

    func testTruncatedFiles() throws {
        let valid = try XCTUnwrap(FileManager.default.contents(atPath: fixture("python_written_f32.safetensors")))
        let four = try write(valid.prefix(4), "four.safetensors")
        assertThrows(try SafetensorsFile(path: four), four, "truncated file (4 bytes, needs at least 8")
        let empty = try write(Data(), "empty.safetensors")
        assertThrows(try SafetensorsFile(path: empty), empty, "truncated file (0 bytes")
        // Cut anywhere short of the end, the file must be refused, never read past its end.
        for length in 0..<valid.count {
            let path = try write(valid.prefix(length), "cut.safetensors")
            XCTAssertThrowsError(try SafetensorsFile(path: path), "cut at \(length)")
        }
    }

    func testHeaderLengthLargerThanTheFile() throws {
        var bytes = try XCTUnwrap(FileManager.default.contents(atPath: fixture("python_written_f32.safetensors")))
        for length: UInt64 in [9_999_999, UInt64(bytes.count - 7), UInt64.max] {
            bytes.replaceSubrange(0..<8, with: withUnsafeBytes(of: length.littleEndian) { Data($0) })
            let path = try write(bytes, "long.safetensors")
            assertThrows(try SafetensorsFile(path: path), path, "header length \(length) exceeds file size \(bytes.count)")
        }
    }

    func testHeaderThatIsNotJSON() throws {
        let path = try damaged("notjson.safetensors") { String($0.dropLast(9)) + "<html>   " }
        assertThrows(try SafetensorsFile(path: path), path, "is not valid JSON")
        let array = try damaged("array.safetensors") { _ in "[1, 2, 3]" }
        assertThrows(try SafetensorsFile(path: array), array, "header is not a JSON object")
    }

    func testOffsetsOutsideTheDataSection() throws {
        // The data section holds 14 floats (56 bytes): "a.weight" at [0, 48), "b" at [48, 56).
        let path = try damaged("outside.safetensors") { $0.replacingOccurrences(of: "[48,56]", with: "[512,520]") }
        assertThrows(try SafetensorsFile(path: path), path, "tensor \"b\" data offsets [512, 520) lie outside the data section (56 bytes)")
        let reversed = try damaged("reversed.safetensors") { $0.replacingOccurrences(of: "[48,56]", with: "[56,48]") }
        assertThrows(try SafetensorsFile(path: reversed), reversed, "tensor \"b\" data offsets [56, 48) end before they begin")
        let negative = try damaged("negative.safetensors") { $0.replacingOccurrences(of: "[48,56]", with: "[-8,0]") }
        assertThrows(try SafetensorsFile(path: negative), negative, "tensor \"b\" has no \"data_offsets\" pair of non-negative integers")
    }

    /// Readers disagree on which of two equal keys wins, and tensors sharing bytes would change each
    /// other: both are refused by name.
    func testDuplicateNamesAndOverlappingTensors() throws {
        let twice = try damaged("twice.safetensors") { $0.replacingOccurrences(of: "\"b\":", with: "\"a.weight\":") }
        assertThrows(try SafetensorsFile(path: twice), twice, "tensor \"a.weight\" is named twice in the header")
        let overlap = try damaged("overlap.safetensors") { $0.replacingOccurrences(of: "[48,56]", with: "[40,48]") }
        assertThrows(try SafetensorsFile(path: overlap), overlap, "tensors \"a.weight\" and \"b\" overlap")
        let invalid = try damaged("utf8.safetensors") { $0.replacingOccurrences(of: "\"pt\"", with: "\"p\u{FFFD}\"") }
        XCTAssertNoThrow(try SafetensorsFile(path: invalid), "valid UTF-8 beyond ASCII is fine")
    }

    func testSizeNotMatchingShapeAndDType() throws {
        let path = try damaged("size.safetensors") { $0.replacingOccurrences(of: "\"shape\":[3,4]", with: "\"shape\":[3,5]") }
        assertThrows(try SafetensorsFile(path: path), path, "tensor \"a.weight\" has dtype F32 and shape [3, 5] (60 bytes) but its offsets span 48 bytes")
        // A shape whose byte count overflows Int must not wrap around to a plausible size.
        let huge = try damaged("huge.safetensors") {
            $0.replacingOccurrences(of: "\"shape\":[3,4]", with: "\"shape\":[4611686018427387904,4,0]")
        }
        assertThrows(try SafetensorsFile(path: huge), huge, "(too many bytes) but its offsets span 48 bytes")
        let fractional = try damaged("fraction.safetensors") { $0.replacingOccurrences(of: "\"shape\":[3,4]", with: "\"shape\":[3,4.5]") }
        assertThrows(try SafetensorsFile(path: fractional), fractional, "tensor \"a.weight\" has no \"shape\" array of non-negative integers")
    }

    func testUnknownDType() throws {
        let path = try damaged("dtype.safetensors") { $0.replacingOccurrences(of: "\"dtype\":\"F32\",\"shape\":[2]", with: "\"dtype\":\"F8_E4M3\",\"shape\":[2]") }
        assertThrows(try SafetensorsFile(path: path), path, "tensor \"b\" has unsupported dtype F8_E4M3")
    }

    func testMetadataMustBeStrings() throws {
        let path = try damaged("metadata.safetensors") { $0.replacingOccurrences(of: "\"format\":\"pt\"", with: "\"format\":1") }
        assertThrows(try SafetensorsFile(path: path), path, "__metadata__ value for \"format\" is not a string")
    }

    /// Random byte changes in the header: every result either loads and reads cleanly or throws a DPOError.
    func testRandomlyDamagedHeadersNeverCrash() throws {
        let valid = try XCTUnwrap(FileManager.default.contents(atPath: fixture("mixed.safetensors")))
        let headerEnd = 8 + Int(valid.withUnsafeBytes { UInt64(littleEndian: $0.loadUnaligned(as: UInt64.self)) })
        var generator = SplitMix64(seed: 42)
        for trial in 0..<300 {
            var bytes = valid
            for _ in 0..<(1 + trial % 3) {
                let position = Int(generator.next() % UInt64(headerEnd))
                bytes[position] = UInt8(truncatingIfNeeded: generator.next())
            }
            let path = try write(bytes, "random.safetensors")
            do {
                let file = try SafetensorsFile(path: path)
                for (name, info) in file.tensors {
                    switch info.dtype {
                    case .f32, .f16, .bf16, .f64: _ = try file.floats(name)
                    case .i64, .i32: _ = try file.int64s(name)
                    case .u8, .bool: break
                    }
                }
            } catch let error as DPOError {
                XCTAssertTrue(error.message.hasPrefix(path), error.message)
            }
        }
    }

    // MARK: Damaged checkpoints

    private func copyShardedCheckpoint() throws -> String {
        let directory = temporary("checkpoint")
        try FileManager.default.copyItem(atPath: fixture("sharded"), toPath: directory)
        return directory
    }

    func testIndexNamingAMissingShard() throws {
        let directory = try copyShardedCheckpoint()
        try FileManager.default.removeItem(atPath: directory + "/model-00002-of-00002.safetensors")
        assertThrows(try SafetensorsCheckpoint(directory: directory), directory + "/model.safetensors.index.json",
                     "names shard model-00002-of-00002.safetensors, which does not exist")
    }

    func testTensorInTwoShards() throws {
        let directory = try copyShardedCheckpoint()
        let values: [Float] = [1, 2]
        try values.withUnsafeBufferPointer { data in
            try SafetensorsWriter.write(path: directory + "/model-00002-of-00002.safetensors",
                                        entries: [.init(name: "model.norm.weight", shape: [2], data: data),
                                                  .init(name: "lm_head.weight", shape: [2], data: data),
                                                  .init(name: "model.embed_tokens.weight", shape: [2], data: data)],
                                        dtype: .f32, metadata: [:])
        }
        assertThrows(try SafetensorsCheckpoint(directory: directory), directory,
                     "tensor \"model.embed_tokens.weight\" appears in both model-00001-of-00002.safetensors and model-00002-of-00002.safetensors")
    }

    func testIndexPlacingATensorInTheWrongShard() throws {
        let directory = try copyShardedCheckpoint()
        let indexPath = directory + "/model.safetensors.index.json"
        let index = try String(contentsOfFile: indexPath, encoding: .utf8)
        try index.replacingOccurrences(of: "\"lm_head.weight\": \"model-00002", with: "\"lm_head.weight\": \"model-00001")
            .write(toFile: indexPath, atomically: true, encoding: .utf8)
        assertThrows(try SafetensorsCheckpoint(directory: directory), indexPath,
                     "places tensor \"lm_head.weight\" in model-00001-of-00002.safetensors, but that shard does not contain it")
    }

    func testDirectoryWithoutWeights() throws {
        assertThrows(try SafetensorsCheckpoint(directory: temporaryDirectory), temporaryDirectory,
                     "neither model.safetensors nor model.safetensors.index.json exists")
        let missing = temporary("missing.safetensors")
        assertThrows(try SafetensorsFile(path: missing), missing, "cannot open (No such file or directory)")
    }
}

/// A tiny deterministic generator, so a failing random trial can be replayed.
private struct SplitMix64 {
    var state: UInt64
    init(seed: UInt64) { state = seed }
    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}
