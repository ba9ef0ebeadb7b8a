import Foundation

/// The one way dpo-dist writes a whole output file (scores, reports, configs, training_args.yaml):
/// written beside its final name and renamed into place, so a reader never sees half of it, and a
/// failure is an error naming the file and the reason.
public enum OutputFile {
    public static func write(_ data: Data, to path: String) throws {
        do { try data.write(to: URL(fileURLWithPath: path), options: .atomic) } catch {
            throw DPOError.file(path, "cannot write: \((error as NSError).localizedFailureReason ?? error.localizedDescription)")
        }
    }

    public static func write(_ text: String, to path: String) throws { try write(Data(text.utf8), to: path) }
}
