import FuzzDriver
import Foundation
import Safetensors

// A safetensors file with these bytes either opens and every tensor reads back as floats, or throws a
// DPOError; it never crashes, hangs or reads outside the file.
let path = scratchFile("model.safetensors")
fuzz { data in
    write(data, to: path)
    guard let file = try? SafetensorsFile(path: path) else { return }
    for (name, info) in file.tensors where info.elementCount <= 1 << 20 {
        var values = [Float](repeating: 0, count: info.elementCount)
        _ = values.withUnsafeMutableBufferPointer { try? file.readFloats(name, into: $0) }
    }
}
