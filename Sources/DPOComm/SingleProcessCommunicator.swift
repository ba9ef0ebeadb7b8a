import DPOSupport
import Foundation

public final class SingleProcessCommunicator: Communicator, BlockingCollectives {
    public init() {}
    public func reduceScatterSum(_ buffer: UnsafeMutablePointer<Double>, counts: [Int]) {}
    public func allGather(_ buffer: UnsafeMutablePointer<Float>, counts: [Int]) {}
    public var rank: Int { 0 }
    public var worldSize: Int { 1 }
    public func allReduceSum(_ buffer: UnsafeMutablePointer<Float>, count: Int) {}
    public func allReduceSum(_ buffer: UnsafeMutablePointer<Double>, count: Int) {}
    public func broadcast(_ bytes: [UInt8]) -> [UInt8] { bytes }
    public func barrier() {}
    public func abort(_ message: String, code: Int32) -> Never {
        DPOError.report(message)
        exit(code)
    }
}
