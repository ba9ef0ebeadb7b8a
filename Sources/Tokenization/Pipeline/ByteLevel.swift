import Foundation

// GPT-2's byte-to-character map, shared by the ByteLevel pre-tokenizer and decoder.
extension Tokenizer {
    /// GPT-2's reversible map from bytes to printable characters: printable Latin-1 bytes map to
    /// themselves, the other 68 bytes to U+0100 onwards.
    enum ByteLevel {
        static let scalarForByte: [Unicode.Scalar] = {
            let printable = Array(UInt8(ascii: "!") ... UInt8(ascii: "~")) + Array(0xA1 ... 0xAC) + Array(0xAE ... 0xFF)
            var table = [Unicode.Scalar](repeating: " ", count: 256)
            for byte in printable { table[Int(byte)] = Unicode.Scalar(byte) }
            var next: UInt32 = 256
            for byte in 0 ... 255 where !printable.contains(UInt8(byte)) {
                table[byte] = Unicode.Scalar(next)!
                next += 1
            }
            return table
        }()

        static let byteForScalar: [Unicode.Scalar: UInt8] = {
            var map: [Unicode.Scalar: UInt8] = [:]
            for (byte, scalar) in scalarForByte.enumerated() { map[scalar] = UInt8(byte) }
            return map
        }()

        static func encode(_ text: String) -> String {
            var scalars = String.UnicodeScalarView()
            for byte in text.utf8 { scalars.append(scalarForByte[Int(byte)]) }
            return String(scalars)
        }

        /// `tokenizers` maps a token back to bytes only if every character is in the table;
        /// otherwise (an added token such as a run of spaces) it takes the token's own UTF-8.
        static func decode(_ token: String) -> [UInt8] {
            var bytes: [UInt8] = []
            bytes.reserveCapacity(token.unicodeScalars.count)
            for scalar in token.unicodeScalars {
                guard let byte = byteForScalar[scalar] else { return Array(token.utf8) }
                bytes.append(byte)
            }
            return bytes
        }

        /// The GPT-2 pre-tokenization regex that `ByteLevel` uses when `use_regex` is true.
        static let gpt2Pattern = #"'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+"#
    }
}
