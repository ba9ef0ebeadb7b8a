import DPOData
import FuzzDriver
import Foundation

// A data file with these bytes either reads as preference pairs or throws a DPOError naming the
// file and line.
let path = scratchFile("pairs.jsonl")
fuzz { data in
    write(data, to: path)
    _ = try? PreferenceFile.load(path, skipInvalid: false)
    _ = try? PreferenceFile.load(path, skipInvalid: true)
}
