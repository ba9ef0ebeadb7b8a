import Foundation

/// A double-quoted string literal that is valid JSON and valid YAML: quotes, backslashes and control
/// characters (DEL included, which YAML does not allow raw) escaped, everything else as UTF-8.
package func quotedJSONString(_ text: String) -> String {
    var out = "\""
    for scalar in text.unicodeScalars {
        switch scalar {
        case "\"": out += "\\\""
        case "\\": out += "\\\\"
        case "\n": out += "\\n"
        case "\r": out += "\\r"
        case "\t": out += "\\t"
        case _ where scalar.value < 0x20 || scalar.value == 0x7F: out += String(format: "\\u%04x", scalar.value)
        default: out.unicodeScalars.append(scalar)
        }
    }
    return out + "\""
}

/// JSONSerialization returns booleans as NSNumber too; their Objective-C type code is "c".
package func isJSONBoolean(_ value: Any) -> Bool {
    guard let number = value as? NSNumber else { return false }
    return String(cString: number.objCType) == "c"
}
