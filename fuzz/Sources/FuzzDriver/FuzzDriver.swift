import Foundation

// libFuzzer's driver, called from a harness's main.swift: the harness code and the package modules
// are built with -sanitize=address and -sanitize-coverage (see fuzz/run), and libFuzzer comes from
// the toolchain's libclang_rt.fuzzer_no_main, so SwiftPM's own main stays the entry point.

@_silgen_name("LLVMFuzzerRunDriver")
private func LLVMFuzzerRunDriver(
    _ argc: UnsafeMutablePointer<Int32>,
    _ argv: UnsafeMutablePointer<UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?>,
    _ callback: @convention(c) (UnsafePointer<UInt8>?, Int) -> Int32) -> Int32

private var harness: ((Data) -> Void)?

/// Runs libFuzzer over `body` with this process's arguments (corpus directories, -max_total_time, ...).
public func fuzz(_ body: @escaping (Data) -> Void) -> Never {
    harness = body
    var argc = CommandLine.argc
    var argv: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>? = CommandLine.unsafeArgv
    let status = LLVMFuzzerRunDriver(&argc, &argv) { data, size in
        harness?(data.map { Data(bytes: $0, count: size) } ?? Data())
        return 0
    }
    exit(status)
}

/// A file in the temporary directory, rewritten for each input.
public func scratchFile(_ name: String) -> String { NSTemporaryDirectory() + "fuzz-\(getpid())-" + name }

/// Writes an input where the code under test reads it; a failure to write ends the run loudly.
public func write(_ data: Data, to path: String) {
    guard FileManager.default.createFile(atPath: path, contents: data) else { fatalError("cannot write \(path)") }
}
