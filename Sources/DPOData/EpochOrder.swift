import DPOSupport

/// The order pairs are visited in: a permutation of the dataset per epoch, from the seed and the
/// epoch alone, so every rank computes the same one and a resumed run continues it exactly.
public struct EpochOrder: Sendable {
    public let count: Int
    public let seed: UInt64
    public let shuffle: Bool

    public init(count: Int, seed: UInt64, shuffle: Bool) {
        self.count = count; self.seed = seed; self.shuffle = shuffle
    }

    public func permutation(epoch: Int) -> [Int] {
        var order = Array(0..<count)
        guard shuffle else { return order }
        var rng = SplitMix64(seed: seed &+ 0x5DEE_CE66_D &* UInt64(epoch + 1))
        // Fisher–Yates with our own generator: the order must not depend on the platform's.
        for i in stride(from: count - 1, to: 0, by: -1) {
            let j = Int(rng.next() % UInt64(i + 1))
            order.swapAt(i, j)
        }
        return order
    }
}
