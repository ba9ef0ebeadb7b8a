import COpenBLAS
import Foundation

/// OpenBLAS's choice of kernels for this CPU.
///
/// OpenBLAS builds that predate a CPU fall back to generic SSE3 ("Prescott") kernels on it: Debian 12's
/// 0.3.21 does so on Sapphire Rapids, where its SkylakeX kernels are far faster (`dpo-dist
/// bench-kernels` prints the kernels and the sgemm rate; the README gives what we measured). The
/// choice is made when the library loads, from OPENBLAS_CORETYPE, so the only way to change it from
/// inside is to start the process again with that variable set.
public enum BLASCore {
    public static var name: String { String(cString: openblas_get_corename()) }
    public static var configuration: String { String(cString: openblas_get_config()) }
    /// Threads OpenBLAS uses for one product in this process now.
    public static var threads: Int { Int(openblas_get_num_threads()) }

    /// Kernel names OpenBLAS falls back to when it does not know the CPU.
    static let genericFallbacks: Set<String> = ["prescott", "core2", "katmai", "coppermine", "northwood", "banias", "penryn", "dunnington", "atom"]

    /// The best OpenBLAS kernel set the CPU's flags allow, or nil when OpenBLAS's own choice should stand.
    public static func betterCoreType(cpuFlags: Set<String>, current: String) -> String? {
        guard genericFallbacks.contains(current.lowercased()) else { return nil }
        if ["avx512f", "avx512bw", "avx512vl", "avx512dq", "avx512cd"].allSatisfy(cpuFlags.contains) { return "SkylakeX" }
        if ["avx2", "fma"].allSatisfy(cpuFlags.contains) { return "Haswell" }
        if cpuFlags.contains("avx") { return "SandyBridge" }
        return nil
    }

    /// The flags of the first CPU in /proc/cpuinfo (empty where there is none).
    public static func cpuFlags() -> Set<String> {
        Set((cpuInfo("flags") ?? "").split(separator: " ").map(String.init))
    }

    /// The first CPU's model name in /proc/cpuinfo, or "unknown CPU".
    public static func cpuName() -> String { cpuInfo("model name") ?? "unknown CPU" }

    /// The value of the first `key : value` line of /proc/cpuinfo. It only describes the machine
    /// (kernel choice, bench and report text), so a system without the file gets nil, not an error.
    static func cpuInfo(_ key: String) -> String? {
        let text: String
        do { text = try String(contentsOfFile: "/proc/cpuinfo", encoding: .utf8) } catch { return nil }
        guard let line = text.split(separator: "\n").first(where: { $0.hasPrefix(key) }),
              let colon = line.firstIndex(of: ":") else { return nil }
        return line[line.index(after: colon)...].trimmingCharacters(in: .whitespaces)
    }

    /// Restarts this process with OPENBLAS_CORETYPE set when OpenBLAS fell back to generic kernels on a
    /// CPU it could run faster. Does nothing when the user set OPENBLAS_CORETYPE, or DPO_DIST_KEEP_BLAS_CORE=1.
    /// Call first thing in main, before MPI or any thread starts.
    public static func restartWithFasterKernelsIfNeeded() {
        let env = ProcessInfo.processInfo.environment
        guard env["OPENBLAS_CORETYPE"] == nil, env["DPO_DIST_KEEP_BLAS_CORE"] == nil,
              let better = betterCoreType(cpuFlags: cpuFlags(), current: name) else { return }
        setenv("OPENBLAS_CORETYPE", better, 1)
        setenv("DPO_DIST_KEEP_BLAS_CORE", "1", 1)  // never loop
        execv("/proc/self/exe", CommandLine.unsafeArgv)
        // execv returns only on failure: carry on with the kernels we have.
    }
}
