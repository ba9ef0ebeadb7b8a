import Foundation

extension Tokenizer {
    /// The entries of tokenizer.json's `model.vocab`, keys exactly as written and in file order.
    ///
    /// JSONDecoder and JSONSerialization build Swift dictionaries, whose String keys compare by
    /// canonical equivalence, so of two canonically equivalent tokens only one survives (Llama 2's
    /// SentencePiece vocab has six such pairs, Greek with tonos and with oxia: U+03AF and U+1F77);
    /// this scan reads the object itself. The file has already decoded as JSON when it runs.
    struct VocabEntries {
        private let bytes: [UInt8]
        private var position = 0

        static func read(_ data: Data) throws -> [(token: String, id: Int)] {
            var scanner = VocabEntries(bytes: [UInt8](data))
            guard try scanner.enterObject(key: "model"), try scanner.enterObject(key: "vocab") else {
                throw SchemaError("model: missing object \"vocab\"")
            }
            var entries: [(token: String, id: Int)] = []
            try scanner.members { scanner, key in
                guard let id = try scanner.integer() else { throw SchemaError("model: vocab entry \"\(key)\" is not an integer id") }
                entries.append((key, id))
            }
            return entries
        }

        private init(bytes: [UInt8]) { self.bytes = bytes }

        /// Moves into the value of `key` in the object at the current position, if it is an object.
        private mutating func enterObject(key wanted: String) throws -> Bool {
            var found = false
            try members { scanner, key in
                if !found, key == wanted, scanner.peek() == UInt8(ascii: "{") {
                    found = true
                    throw Found()
                }
                try scanner.skipValue()
            }
            return found
        }

        private struct Found: Error {}

        /// Calls `body` at each member's value of the object at the current position (`body` must consume it).
        /// Throwing `Found` from `body` stops with the position at that value.
        private mutating func members(_ body: (inout VocabEntries, String) throws -> Void) throws {
            skipWhitespace()
            try expect(UInt8(ascii: "{"))
            skipWhitespace()
            if peek() == UInt8(ascii: "}") { position += 1; return }
            while true {
                skipWhitespace()
                let key = try string()
                skipWhitespace()
                try expect(UInt8(ascii: ":"))
                skipWhitespace()
                do {
                    try body(&self, key)
                } catch is Found {
                    return
                }
                skipWhitespace()
                if peek() == UInt8(ascii: ",") { position += 1; continue }
                try expect(UInt8(ascii: "}"))
                return
            }
        }

        private func peek() -> UInt8? { position < bytes.count ? bytes[position] : nil }

        private mutating func expect(_ byte: UInt8) throws {
            guard peek() == byte else { throw SchemaError("vocab: malformed JSON at byte \(position)") }
            position += 1
        }

        private mutating func skipWhitespace() {
            while let byte = peek(), byte == 0x20 || byte == 0x0A || byte == 0x0D || byte == 0x09 { position += 1 }
        }

        private mutating func string() throws -> String {
            try expect(UInt8(ascii: "\""))
            var out: [UInt8] = []
            var pendingHighSurrogate: UInt32?
            func append(_ scalar: UInt32) {
                out.append(contentsOf: String(Unicode.Scalar(scalar).map(Character.init) ?? "\u{FFFD}").utf8)
            }
            while let byte = peek() {
                position += 1
                if byte == UInt8(ascii: "\"") {
                    if pendingHighSurrogate != nil { append(0xFFFD) }
                    return String(decoding: out, as: UTF8.self)
                }
                guard byte == UInt8(ascii: "\\") else {
                    if pendingHighSurrogate != nil { append(0xFFFD); pendingHighSurrogate = nil }
                    out.append(byte)
                    continue
                }
                guard let escape = peek() else { break }
                position += 1
                if escape == UInt8(ascii: "u") {
                    guard position + 4 <= bytes.count,
                          let unit = UInt32(String(decoding: bytes[position ..< position + 4], as: UTF8.self), radix: 16) else {
                        throw SchemaError("vocab: malformed \\u escape at byte \(position)")
                    }
                    position += 4
                    if let high = pendingHighSurrogate {
                        pendingHighSurrogate = nil
                        if (0xDC00 ... 0xDFFF).contains(unit) {
                            append(0x10000 + ((high - 0xD800) << 10) + (unit - 0xDC00))
                            continue
                        }
                        append(0xFFFD)
                    }
                    if (0xD800 ... 0xDBFF).contains(unit) { pendingHighSurrogate = unit } else { append(unit) }
                    continue
                }
                if pendingHighSurrogate != nil { append(0xFFFD); pendingHighSurrogate = nil }
                switch escape {
                case UInt8(ascii: "b"): out.append(0x08)
                case UInt8(ascii: "f"): out.append(0x0C)
                case UInt8(ascii: "n"): out.append(0x0A)
                case UInt8(ascii: "r"): out.append(0x0D)
                case UInt8(ascii: "t"): out.append(0x09)
                default: out.append(escape)  // \" \\ \/
                }
            }
            throw SchemaError("vocab: unterminated string")
        }

        private mutating func integer() throws -> Int? {
            let start = position
            while let byte = peek(), byte == UInt8(ascii: "-") || (UInt8(ascii: "0") ... UInt8(ascii: "9")).contains(byte) {
                position += 1
            }
            let value = Int(String(decoding: bytes[start ..< position], as: UTF8.self))
            if let byte = peek(), byte == UInt8(ascii: ".") || byte == UInt8(ascii: "e") || byte == UInt8(ascii: "E") {
                return nil
            }
            return value
        }

        private mutating func skipValue() throws {
            skipWhitespace()
            guard let byte = peek() else { throw SchemaError("vocab: malformed JSON at the end") }
            switch byte {
            case UInt8(ascii: "\""):
                _ = try string()
            case UInt8(ascii: "{"):
                try members { scanner, _ in try scanner.skipValue() }
            case UInt8(ascii: "["):
                position += 1
                skipWhitespace()
                if peek() == UInt8(ascii: "]") { position += 1; return }
                while true {
                    try skipValue()
                    skipWhitespace()
                    if peek() == UInt8(ascii: ",") { position += 1; continue }
                    try expect(UInt8(ascii: "]"))
                    return
                }
            default:  // a number, true, false or null
                while let next = peek(), !",}] \n\r\t".utf8.contains(next) { position += 1 }
            }
        }
    }
}
