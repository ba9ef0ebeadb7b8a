import DPOTraining
import FuzzDriver
import Foundation

// A --config file with these bytes either loads and passes or fails validation, or throws a DPOError
// naming the file, line and key.
let path = scratchFile("train.yaml")
fuzz { data in
    write(data, to: path)
    for command in TrainingArguments.Command.allCases {
        guard let arguments = try? TrainingArguments.load(yamlFile: path, overrides: [], command: command) else { continue }
        _ = try? arguments.validate(for: command)
        _ = arguments.yaml
    }
}
