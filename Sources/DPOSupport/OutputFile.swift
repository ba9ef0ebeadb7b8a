import Foundation
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// The one way dpo-dist writes a whole output file (scores, reports, configs, training_args.yaml, and
/// through `destination` the safetensors writer's models and checkpoints).
///
/// What the path names decides how:
/// - nothing, or a regular file: written beside its final name and renamed into place, so a reader
///   never sees half of it. A symlink is followed to its target (which is replaced; the link stays),
///   also a dangling one (its target is created).
/// - a character device, FIFO or socket (`/dev/null`, a pipe, `/dev/stdout`), or anything under
///   `/dev` or `/proc`: opened and written as it is, never replaced, so `--output /dev/null` leaves
///   `/dev/null` a device.
/// - a directory or a block device: refused, naming the path.
/// A failure is an error naming the file and the reason.
public enum OutputFile {
    public enum Destination: Equatable, Sendable {
        /// Write a temporary beside this path (symlinks resolved) and rename it onto the path.
        case replace(String)
        /// Open this path for writing and write into it as it is.
        case direct(String)
    }

    /// Where and how writing `path` goes (see the type's documentation).
    public static func destination(_ path: String) throws -> Destination {
        var info = stat()
        if stat(path, &info) == 0 {
            switch info.st_mode & S_IFMT {
            case S_IFREG:
                if inSystemTree(path) { return .direct(path) }
                return .replace(realpathOf(path) ?? path)
            case S_IFCHR, S_IFIFO, S_IFSOCK:
                return .direct(path)
            case S_IFDIR:
                throw DPOError.file(path, "is a directory; give the path of a file to write")
            case S_IFBLK:
                throw DPOError.file(path, "is a block device; dpo-dist writes no block devices")
            default:
                throw DPOError.file(path, "is neither a regular file nor a device, FIFO or socket; give the path of a file to write")
            }
        }
        // Nothing there: a dangling symlink's target is created (the link then names the file).
        var link = stat()
        if lstat(path, &link) == 0, link.st_mode & S_IFMT == S_IFLNK {
            return .replace(try danglingTarget(of: path))
        }
        return .replace(path)
    }

    public static func write(_ data: Data, to path: String) throws {
        switch try destination(path) {
        case .replace(let target):
            do { try data.write(to: URL(fileURLWithPath: target), options: .atomic) } catch {
                throw DPOError.file(path, "cannot write: \((error as NSError).localizedFailureReason ?? error.localizedDescription)")
            }
        case .direct(let target):
            let fd = open(target, O_WRONLY | O_CLOEXEC)
            guard fd >= 0 else { throw DPOError.file(path, "cannot open for writing (\(String(cString: strerror(errno))))") }
            defer { close(fd) }
            try data.withUnsafeBytes { try writeAll(fd, $0, path: path) }
        }
    }

    public static func write(_ text: String, to path: String) throws { try write(Data(text.utf8), to: path) }

    /// Writes all of `bytes` to `fd`, retrying short writes and interrupted calls.
    public static func writeAll(_ fd: Int32, _ bytes: UnsafeRawBufferPointer, path: String) throws {
        var offset = 0
        while offset < bytes.count {
            let n = Foundation.write(fd, bytes.baseAddress! + offset, bytes.count - offset)
            if n < 0 {
                if errno == EINTR { continue }
                throw DPOError.file(path, "write failed (\(String(cString: strerror(errno))))")
            }
            offset += n
        }
    }

    /// Refuses, before any work, an output directory that exists as something else than a directory
    /// (a symlink to a directory is a directory).
    public static func checkDirectory(_ path: String, key: String = "output_dir") throws {
        var info = stat()
        guard stat(path, &info) == 0 else { return }  // created when the run starts
        guard info.st_mode & S_IFMT == S_IFDIR else {
            throw DPOError.file(path, "is not a directory (\(key) must be a directory, or a path where one can be made)")
        }
    }

    private static func inSystemTree(_ path: String) -> Bool {
        let resolved = realpathOf(path) ?? path
        return [path, resolved].contains { $0.hasPrefix("/dev/") || $0.hasPrefix("/proc/") }
    }

    private static func realpathOf(_ path: String) -> String? {
        guard let p = realpath(path, nil) else { return nil }
        defer { free(p) }
        return String(cString: p)
    }

    /// The path a chain of symlinks ends at, when that end does not exist yet.
    private static func danglingTarget(of path: String) throws -> String {
        var current = path
        for _ in 0..<40 {
            var buffer = [CChar](repeating: 0, count: Int(PATH_MAX) + 1)
            let n = readlink(current, &buffer, buffer.count - 1)
            guard n >= 0 else { return current }  // not a link any more: the end of the chain
            let target = String(decoding: buffer[0..<n].map { UInt8(bitPattern: $0) }, as: UTF8.self)
            current = target.hasPrefix("/") ? target : ((current as NSString).deletingLastPathComponent as NSString).appendingPathComponent(target)
        }
        throw DPOError.file(path, "too many levels of symbolic links")
    }
}
