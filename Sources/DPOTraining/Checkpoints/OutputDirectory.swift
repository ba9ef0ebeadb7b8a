import DPOSupport
import Foundation
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

// What a run may do to OUTPUT_DIR: it owns the checkpoints it writes there, and nothing else.
extension Trainer {
    /// Refuses, before any work, a run that would destroy its own inputs: the final model written
    /// over `model`, or checkpoint rotation deleting a `model` that lies inside output_dir.
    func checkInputsAreSafe() throws {
        let out = Self.resolved(args.outputDir)
        for (key, directory) in [("model", args.model), ("ref_model", args.refModel), ("the adapter's base model", policySource.baseDirectory)] {
            guard let directory else { continue }
            let path = Self.resolved(directory)
            if path == out {
                throw DPOError("output_dir \(args.outputDir) is the \(key) directory: the final model would overwrite it; choose another --output-dir")
            }
            if path.hasPrefix(out + "/") {
                throw DPOError("\(key) \(directory) lies inside output_dir \(args.outputDir), where checkpoint rotation and new runs delete checkpoints; copy it out first or choose another --output-dir")
            }
        }
    }

    /// On rank 0, before the first step: OUTPUT_DIR exists, temporaries that a killed run left are
    /// gone, and a fresh run does not start among another run's checkpoints (unless told to delete
    /// them). Then training_args.yaml.
    func prepareOutputDirectory() throws {
        let out = args.outputDir, fm = FileManager.default
        do { try fm.createDirectory(atPath: out, withIntermediateDirectories: true) } catch {
            throw DPOError.file(out, "cannot create the output directory: \(error.localizedDescription)")
        }
        try removeStaleTemporaries()
        let existing = try checkpoints(in: out)
        if args.resumeFromCheckpoint == nil, !existing.isEmpty {
            let names = existing.map { "\(Self.checkpointPrefix)\($0)" }
            guard args.overwriteOutputDir else {
                throw DPOError.file(out, "holds the checkpoints of an earlier run (\(names.prefix(3).joined(separator: ", "))\(names.count > 3 ? ", ..." : "")); resume it with --resume-from-checkpoint auto, start in another --output-dir, or pass --overwrite-output-dir to delete them")
            }
            for name in names {
                do { try fm.removeItem(atPath: out + "/" + name) } catch {
                    throw DPOError.file(out + "/" + name, "cannot remove (--overwrite-output-dir): \(error.localizedDescription)")
                }
            }
            Console.note("deleted \(names.count) checkpoint(s) of an earlier run in \(out) (--overwrite-output-dir)\n")
        }
        try OutputFile.write(args.yaml, to: out + "/training_args.yaml")
    }

    /// `.tmp-checkpoint-STEP-PID` directories and `NAME.tmp-PID-N` files whose process is gone: a run
    /// killed while writing leaves them (a full checkpoint each), and nothing else would remove them.
    func removeStaleTemporaries() throws {
        let out = args.outputDir, fm = FileManager.default
        let names: [String]
        do { names = try fm.contentsOfDirectory(atPath: out) } catch {
            throw DPOError.file(out, "cannot list the output directory: \(error.localizedDescription)")
        }
        for name in names {
            guard let pid = Self.writerPID(ofTemporary: name), !Self.isRunning(pid) else { continue }
            do { try fm.removeItem(atPath: out + "/" + name) } catch {
                Console.note("warning: \(out)/\(name): cannot remove what an interrupted run left (\(error.localizedDescription))\n")
            }
        }
    }

    /// The process that was writing a temporary of ours, from its name; nil for any other name.
    static func writerPID(ofTemporary name: String) -> Int32? {
        if name.hasPrefix(".tmp-" + checkpointPrefix) {
            return name.split(separator: "-").last.flatMap { Int32($0) }
        }
        if let range = name.range(of: ".tmp-") {  // SafetensorsWriter: NAME.tmp-PID-RANDOM
            return name[range.upperBound...].split(separator: "-").first.flatMap { Int32($0) }
        }
        return nil
    }

    static func isRunning(_ pid: Int32) -> Bool { pid == getpid() || kill(pid, 0) == 0 || errno == EPERM }

    /// The path with symbolic links and `..` resolved, to compare two spellings of a directory.
    public static func resolved(_ path: String) -> String {
        URL(fileURLWithPath: path).standardizedFileURL.resolvingSymlinksInPath().path
    }
}
