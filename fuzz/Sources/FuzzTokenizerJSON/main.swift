import FuzzDriver
import Foundation
import Tokenization

// A tokenizer.json with these bytes either loads (and then encodes and decodes text) or throws a DPOError.
let directory = scratchFile("tokenizer")
try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
fuzz { data in
    write(data, to: directory + "/tokenizer.json")
    guard let tokenizer = try? Tokenizer(directory: directory) else { return }
    let ids = tokenizer.encode("Hello, wörld! 123  \n\t<|im_start|>ok")
    _ = tokenizer.decode(ids + [0, 1, 1_000_000, -1], skipSpecialTokens: true)
}
