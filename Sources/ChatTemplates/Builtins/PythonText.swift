import Foundation

// Python's string algorithms on Unicode scalars (as Python's str works on code points), and strftime.
extension TemplateBuiltins {
    // Python string algorithms (on Unicode scalars, as Python's str works on code points)

    static func findScalars(_ needle: [Unicode.Scalar], in haystack: [Unicode.Scalar], from start: Int) -> Int? {
        guard needle.count <= haystack.count - start else { return needle.isEmpty && start <= haystack.count ? start : nil }
        if needle.isEmpty { return start }
        var index = start
        while index + needle.count <= haystack.count {
            if haystack[index] == needle[0], haystack[index..<index + needle.count].elementsEqual(needle) { return index }
            index += 1
        }
        return nil
    }

    static func pythonStrip(_ text: String, chars: String?, left: Bool, right: Bool) -> String {
        let scalars = Array(text.unicodeScalars)
        let set = chars.map { Set($0.unicodeScalars) }
        let strip = { (scalar: Unicode.Scalar) in set.map { $0.contains(scalar) } ?? isPythonWhitespace(scalar) }
        var start = 0
        var end = scalars.count
        if left { while start < end, strip(scalars[start]) { start += 1 } }
        if right { while end > start, strip(scalars[end - 1]) { end -= 1 } }
        return String(String.UnicodeScalarView(scalars[start..<end]))
    }

    static func pythonSplit(_ text: String, separator: String?, maxSplit: Int, fromRight: Bool) throws -> [String] {
        var scalars = Array(text.unicodeScalars)
        let limit = maxSplit < 0 ? Int.max : maxSplit
        func make(_ part: ArraySlice<Unicode.Scalar>) -> String { String(String.UnicodeScalarView(part)) }
        guard let separator else {
            // Runs of whitespace separate; leading/trailing whitespace gives no empty parts.
            if fromRight { scalars.reverse() }
            var parts: [String] = []
            var index = 0
            while index < scalars.count {
                while index < scalars.count, isPythonWhitespace(scalars[index]) { index += 1 }
                guard index < scalars.count else { break }
                if parts.count == limit {
                    var end = scalars.count
                    while end > index, isPythonWhitespace(scalars[end - 1]) { end -= 1 }
                    parts.append(make(scalars[index..<end]))
                    break
                }
                let start = index
                while index < scalars.count, !isPythonWhitespace(scalars[index]) { index += 1 }
                parts.append(make(scalars[start..<index]))
            }
            if fromRight { return parts.reversed().map { String(String.UnicodeScalarView($0.unicodeScalars.reversed())) } }
            return parts
        }
        let needle = Array(separator.unicodeScalars)
        guard !needle.isEmpty else { throw TemplateError.runtime("empty separator") }
        if fromRight {
            let reversedParts = try pythonSplit(String(String.UnicodeScalarView(scalars.reversed())),
                                                separator: String(String.UnicodeScalarView(needle.reversed())), maxSplit: maxSplit, fromRight: false)
            return reversedParts.reversed().map { String(String.UnicodeScalarView($0.unicodeScalars.reversed())) }
        }
        var parts: [String] = []
        var start = 0
        while parts.count < limit, let found = findScalars(needle, in: scalars, from: start) {
            parts.append(make(scalars[start..<found]))
            start = found + needle.count
        }
        parts.append(make(scalars[start...]))
        return parts
    }

    /// Python's str.splitlines(): every line boundary Python knows, \r\n as one; no trailing empty line.
    static func splitLines(_ text: String) -> [String] {
        let scalars = Array(text.unicodeScalars)
        var lines: [String] = []
        var start = 0
        var index = 0
        while index < scalars.count {
            switch scalars[index].value {
            case 0x0A, 0x0B, 0x0C, 0x0D, 0x1C, 0x1D, 0x1E, 0x85, 0x2028, 0x2029:
                lines.append(String(String.UnicodeScalarView(scalars[start..<index])))
                if scalars[index] == "\r", index + 1 < scalars.count, scalars[index + 1] == "\n" { index += 1 }
                start = index + 1
            default:
                break
            }
            index += 1
        }
        if start < scalars.count { lines.append(String(String.UnicodeScalarView(scalars[start...]))) }
        return lines
    }

    static func replaceScalars(_ text: String, _ old: String, _ new: String, count: Int) -> String {
        let scalars = Array(text.unicodeScalars)
        let needle = Array(old.unicodeScalars)
        let replacement = Array(new.unicodeScalars)
        var limit = count < 0 ? Int.max : count
        var out: [Unicode.Scalar] = []
        if needle.isEmpty {
            // Python inserts `new` before every character and at the end.
            for scalar in scalars {
                if limit > 0 { out += replacement; limit -= 1 }
                out.append(scalar)
            }
            if limit > 0 { out += replacement }
            return String(String.UnicodeScalarView(out))
        }
        var start = 0
        while limit > 0, let found = findScalars(needle, in: scalars, from: start) {
            out += scalars[start..<found]
            out += replacement
            start = found + needle.count
            limit -= 1
        }
        out += scalars[start...]
        return String(String.UnicodeScalarView(out))
    }

    /// Python's str.title(): a letter after a cased letter is lowered, any other letter is uppered.
    static func pythonTitle(_ text: String) -> String {
        var out = ""
        var previousCased = false
        for scalar in text.unicodeScalars {
            let properties = scalar.properties
            if properties.isCased {
                out += previousCased ? String(scalar).lowercased() : (properties.titlecaseMapping)
                previousCased = true
            } else {
                out.unicodeScalars.append(scalar)
                previousCased = false
            }
        }
        return out
    }

    /// Jinja's `title` filter: split before runs of `-`, whitespace and opening brackets, then each
    /// piece gets its first character uppered and the rest lowered.
    static func jinjaTitle(_ text: String) -> String {
        let isBoundary = { (scalar: Unicode.Scalar) in isPythonWhitespace(scalar) || "-({[<".unicodeScalars.contains(scalar) }
        var pieces: [[Unicode.Scalar]] = []
        var current: [Unicode.Scalar] = []
        var currentIsBoundary = false
        for scalar in text.unicodeScalars {
            let boundary = isBoundary(scalar)
            if !current.isEmpty && boundary != currentIsBoundary {
                pieces.append(current)
                current = []
            }
            currentIsBoundary = boundary
            current.append(scalar)
        }
        if !current.isEmpty { pieces.append(current) }
        return pieces.map { piece in
            String(piece[0]).uppercased() + String(String.UnicodeScalarView(piece.dropFirst())).lowercased()
        }.joined()
    }

    static func parsePythonInt(_ text: String, base: Int) -> Int? {
        var body = pythonStrip(text, chars: nil, left: true, right: true)
        var negative = false
        if body.hasPrefix("-") || body.hasPrefix("+") {
            negative = body.hasPrefix("-")
            body.removeFirst()
        }
        var radix = base
        let lowered = body.lowercased()
        for (prefix, prefixRadix) in [("0x", 16), ("0o", 8), ("0b", 2)] where lowered.hasPrefix(prefix) && (base == prefixRadix || base == 0) {
            body.removeFirst(2)
            radix = prefixRadix
        }
        if radix == 0 { radix = 10 }
        guard !body.isEmpty, !body.hasPrefix("_"), !body.hasSuffix("_"), !body.contains("__") else { return nil }
        guard let magnitude = Int(body.replacingOccurrences(of: "_", with: ""), radix: radix) else { return nil }
        return negative ? -magnitude : magnitude
    }

    static func parsePythonFloat(_ text: String) -> Double? {
        let body = pythonStrip(text, chars: nil, left: true, right: true).lowercased()
        switch body {
        case "nan", "+nan", "-nan": return .nan
        case "inf", "+inf", "infinity", "+infinity": return .infinity
        case "-inf", "-infinity": return -.infinity
        default:
            guard !body.isEmpty, body.allSatisfy({ "0123456789.e+-_".contains($0) }) else { return nil }
            return Double(body.replacingOccurrences(of: "_", with: ""))
        }
    }

    // strftime

    static let monthNames = ["January", "February", "March", "April", "May", "June", "July", "August", "September", "October", "November", "December"]
    static let weekdayNames = ["Sunday", "Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday"]

    /// C strftime as Python's datetime.strftime gives it on Linux (C locale), in the local time zone.
    static func strftime(_ format: String, _ date: Date) throws -> String {
        var calendar = Calendar(identifier: .gregorian)
        calendar.timeZone = TimeZone.current
        let parts = calendar.dateComponents([.year, .month, .day, .hour, .minute, .second, .weekday], from: date)
        let (year, month, day) = (parts.year!, parts.month!, parts.day!)
        let (hour, minute, second, weekday) = (parts.hour!, parts.minute!, parts.second!, parts.weekday! - 1)
        let dayOfYear = calendar.ordinality(of: .day, in: .year, for: date) ?? 1
        func pad(_ number: Int, _ width: Int = 2) -> String {
            let digits = String(number)
            return String(repeating: "0", count: Swift.max(0, width - digits.count)) + digits
        }
        var out = ""
        var scalars = format.unicodeScalars.makeIterator()
        while let scalar = scalars.next() {
            guard scalar == "%" else { out.unicodeScalars.append(scalar); continue }
            guard var code = scalars.next() else { out += "%"; break }
            var unpadded = false
            if code == "-" {
                unpadded = true
                guard let next = scalars.next() else { throw TemplateError.unsupported("strftime format \"%-\"") }
                code = next
            }
            func number(_ value: Int, _ width: Int = 2) -> String { unpadded ? String(value) : pad(value, width) }
            switch code {
            case "d": out += number(day)
            case "e": out += unpadded ? String(day) : (day < 10 ? " \(day)" : String(day))
            case "m": out += number(month)
            case "Y": out += String(year)
            case "y": out += number(year % 100)
            case "B": out += monthNames[month - 1]
            case "b", "h": out += String(monthNames[month - 1].prefix(3))
            case "A": out += weekdayNames[weekday]
            case "a": out += String(weekdayNames[weekday].prefix(3))
            case "H": out += number(hour)
            case "I": out += number(hour % 12 == 0 ? 12 : hour % 12)
            case "M": out += number(minute)
            case "S": out += number(second)
            case "p": out += hour < 12 ? "AM" : "PM"
            case "j": out += number(dayOfYear, 3)
            case "F": out += "\(year)-\(pad(month))-\(pad(day))"
            case "T": out += "\(pad(hour)):\(pad(minute)):\(pad(second))"
            case "%": out += "%"
            default: throw TemplateError.unsupported("strftime format \"%\(unpadded ? "-" : "")\(Character(code))\"")
            }
        }
        return out
    }
}
