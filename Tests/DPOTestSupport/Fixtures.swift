import Foundation

/// Paths to committed fixtures and to the shared folder beside the repository.
public enum Fixtures {
    public static let root: String = {
        if let url = Bundle.module.url(forResource: "Fixtures", withExtension: nil) { return url.path }
        return URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("Fixtures").path
    }()
    public static let modelNames = ["llama-tied", "qwen2-untied", "llama3-bf16", "smollm3", "qwen3", "olmo2", "phi3",
                                    "mistral-window", "gemma3"]
    public static func model(_ name: String) -> String { root + "/models/" + name }
    public static let repositoryRoot = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent().path
    /// The published tokenizers in ../shared/tokenizers beside the repository (not ours to commit).
    public static let sharedTokenizers = (repositoryRoot as NSString).deletingLastPathComponent + "/shared/tokenizers"

    public static func temporaryDirectory(_ tag: String = "dpo-dist-test") -> String {
        let path = NSTemporaryDirectory() + "\(tag)-\(UUID().uuidString)"
        try! FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
        return path
    }

    /// A character device with /dev/null's numbers (1, 3) at `path`, made by mknod(1), for tests of
    /// writing to a device without touching the system's; nil where this user may not make device
    /// nodes (not root, or no CAP_MKNOD).
    public static func nullDevice(at path: String) throws -> String? {
        let p = Process()
        p.executableURL = URL(fileURLWithPath: "/usr/bin/mknod")
        p.arguments = [path, "c", "1", "3"]
        p.standardError = FileHandle.nullDevice
        try p.run()
        p.waitUntilExit()
        let attributes = try? FileManager.default.attributesOfItem(atPath: path)
        return p.terminationStatus == 0 && attributes?[.type] as? FileAttributeType == .typeCharacterSpecial ? path : nil
    }
}

/// max |a − b| over two equal-length sequences.
public func maxAbsDiff<A: Sequence, B: Sequence>(_ a: A, _ b: B) -> Float where A.Element == Float, B.Element == Float {
    zip(a, b).reduce(0) { max($0, abs($1.0 - $1.1)) }
}

public func norm<S: Sequence>(_ a: S) -> Float where S.Element == Float {
    a.reduce(0) { $0 + $1 * $1 }.squareRoot()
}
