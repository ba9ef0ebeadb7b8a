import CDNNL
import Foundation

/// bf16 products with fp32 accumulation and an fp32 result, by oneDNN's matmul primitive (the library
/// PyTorch's CPU backend uses): both operands are rounded to bf16 (round to nearest even) and C stays
/// fp32, so master weights, gradients and every reduction stay fp32. On CPUs with AMX oneDNN picks its
/// AMX kernels, else its AVX512-BF16 ones; `kernelNames` says which it chose.
///
/// A primitive is made for each shape the model asks for and kept (making one takes about a
/// millisecond; running one with the same shape again takes none of that). The model's weights are
/// rounded once per forward pass, not once per product: `weightsAreFixed(_:)` names the buffer whose
/// values stay fixed until the next call, and an operand inside it is converted only the first time.
/// Nothing else is kept between calls.
public final class OneDNNBF16: MatmulBackend, @unchecked Sendable {
    private let engine: dnnl_engine_t
    private let stream: dnnl_stream_t
    private var primitives: [ShapeKey: Primitive] = [:]
    private var implementations: Set<String> = []
    /// fp32 → bf16 reorders (oneDNN's vectorised rounding) by operand shape.
    private var reorders: [OperandShape: Reorder] = [:]
    private var aBuffer = BF16Buffer(), bBuffer = BF16Buffer()
    /// A batch's dense result, when its C is not dense (see `gemm(batch:…)`).
    private var cBuffer = GrowableBuffer<Float>()
    /// bf16 copies of operands inside the fixed buffer, by their address and shape, with the pass
    /// they were rounded in: a copy from an earlier pass is rounded again into the same storage, so
    /// the copies' memory is allocated (and faulted in) once, not once per pass.
    private var fixedCopies: [OperandKey: (buffer: BF16Buffer, pass: Int)] = [:]
    private var pass = 0
    private var fixedRange: Range<UInt> = 0..<0
    /// Operand addresses `holdingOperands` holds now, innermost last, each with its hold's number;
    /// and bf16 copies of held operands, each valid while the hold it was made in lasts.
    private var holds: [(address: UInt, hold: Int)] = []
    private var heldCopies: [(key: OperandKey, hold: Int, buffer: BF16Buffer)] = []
    private var holdsMade = 0
    /// fp32 values rounded to bf16 so far (for tests of what a hold spares).
    public private(set) var roundedValues = 0
    /// Primitives made, and seconds spent making them, rounding operands, and running products.
    public private(set) var primitivesMade = 0
    public private(set) var makingSeconds = 0.0, roundingSeconds = 0.0, runningSeconds = 0.0
    /// Calls and seconds (rounding included) per product shape, when `keepsShapeTimes`.
    public var keepsShapeTimes = false
    private var shapeTimes: [ShapeKey: (calls: Int, seconds: Double)] = [:]
    /// Whether operands are rounded by `dpo_round_to_bf16` (the CPU has avx512_bf16) or by a oneDNN
    /// reorder; tests compare the two.
    var roundsNatively = BLASCore.cpuFlags().contains("avx512_bf16")
    /// Primitives kept at most; past that the cache starts again (a few hundred shapes is typical).
    private let capacity = 4096

    /// Why this CPU cannot run bf16 products at speed, or nil when it can.
    public static func unavailableReason(cpuFlags: Set<String> = BLASCore.cpuFlags()) -> String? {
        if cpuFlags.contains("avx512_bf16") || cpuFlags.contains("amx_bf16") { return nil }
        return "this CPU has no BF16 instructions (neither avx512_bf16 nor amx_bf16 in /proc/cpuinfo), so bf16 products would be emulated and slower than fp32; train in fp32 (leave out --bf16)"
    }

    public init() throws {
        var e: dnnl_engine_t?
        guard dnnl_engine_create(&e, dnnl_cpu, 0) == dnnl_success, let engine = e else {
            throw OneDNNError("oneDNN could not create a CPU engine")
        }
        var s: dnnl_stream_t?
        guard dnnl_stream_create(&s, engine, dnnl_stream_default_flags.rawValue) == dnnl_success, let stream = s else {
            dnnl_engine_destroy(engine)
            throw OneDNNError("oneDNN could not create a stream")
        }
        self.engine = engine
        self.stream = stream
    }

    deinit {
        for p in primitives.values { p.destroy() }
        for r in reorders.values { r.destroy() }
        for b in fixedCopies.values { b.buffer.free() }
        for c in heldCopies { c.buffer.free() }
        aBuffer.free(); bBuffer.free(); cBuffer.free()
        dnnl_stream_destroy(stream)
        dnnl_engine_destroy(engine)
    }

    public var name: String {
        let kernels = implementations.isEmpty ? "none run yet" : implementations.sorted().joined(separator: ", ")
        return String(format: "oneDNN bf16 (kernels: %@; %d primitives made in %.2f s; rounding to bf16 %.2f s, products %.2f s)",
                      kernels, primitivesMade, makingSeconds, roundingSeconds, runningSeconds)
    }

    /// The instruction set oneDNN's kernels use on this CPU.
    public static var cpuISA: String {
        switch dnnl_get_effective_cpu_isa() {
        case dnnl_cpu_isa_avx512_core_amx: return "AMX and AVX-512 BF16"
        case dnnl_cpu_isa_avx512_core_bf16: return "AVX-512 BF16"
        case dnnl_cpu_isa_avx512_core_vnni, dnnl_cpu_isa_avx512_core: return "AVX-512 without BF16"
        default: return "no AVX-512"
        }
    }

    /// The oneDNN implementations run so far (for example `brg:avx512_core_amx_bf16`).
    public var kernelNames: [String] { implementations.sorted() }

    /// Sets the OpenMP threads oneDNN runs on; false when the OpenMP runtime was not found.
    @discardableResult
    public static func setThreads(_ n: Int) -> Bool { dpo_omp_set_num_threads(Int32(max(1, n))) != 0 }

    /// The values in `buffer` stay as they are until the next call: operands inside it are rounded to
    /// bf16 once and reused. Each call forgets the copies made before it.
    public func weightsAreFixed(_ buffer: UnsafeBufferPointer<Float>) {
        pass += 1
        let start = UInt(bitPattern: buffer.baseAddress)
        let range = start..<(start + UInt(buffer.count * MemoryLayout<Float>.stride))
        if range != fixedRange {
            for b in fixedCopies.values { b.buffer.free() }
            fixedCopies.removeAll(keepingCapacity: true)
            fixedRange = range
        }
    }

    public func holdingOperands(_ a: ConstFloatPtr?, _ b: ConstFloatPtr?, _ body: () -> Void) {
        let depth = holds.count
        holdsMade += 1
        if let a { holds.append((UInt(bitPattern: a), holdsMade)) }
        if let b { holds.append((UInt(bitPattern: b), holdsMade)) }
        defer { holds.removeLast(holds.count - depth) }
        body()
    }

    /// The bf16 copy of a held operand, kept under the outermost hold of its address (the longest
    /// promise that it does not change): the one made before in that hold, else made now in a copy
    /// that no live hold owns.
    private func heldOperand(_ x: ConstFloatPtr, hold: Int, rows: Int, cols: Int, ld: Int) -> UnsafePointer<UInt16> {
        let key = OperandKey(address: UInt(bitPattern: x), rows: rows, cols: cols, ld: ld)
        if let i = heldCopies.firstIndex(where: { $0.hold == hold && $0.key == key }) {
            return UnsafePointer(heldCopies[i].buffer.pointer)
        }
        let free = heldCopies.firstIndex { copy in !holds.contains { $0.hold == copy.hold } }
        let i = free ?? heldCopies.count
        if free == nil { heldCopies.append((key, hold, BF16Buffer())) }
        heldCopies[i].key = key
        heldCopies[i].hold = hold
        heldCopies[i].buffer.reserve(rows * cols)
        round(x, rows: rows, cols: cols, ld: ld, into: heldCopies[i].buffer.pointer)
        return UnsafePointer(heldCopies[i].buffer.pointer)
    }

    public func gemm(transA: Bool, transB: Bool, m: Int, n: Int, k: Int, alpha: Float,
                     a: ConstFloatPtr, lda: Int, b: ConstFloatPtr, ldb: Int, beta: Float, c: FloatPtr, ldc: Int) {
        if m == 0 || n == 0 { return }
        if k == 0 {  // C = beta · C, as BLAS does
            for i in 0..<m { let row = c + i * ldc; for j in 0..<n { row[j] = beta == 0 ? 0 : beta * row[j] } }
            return
        }
        // Stored shapes: A is m×k (k×m when transposed) with leading dimension lda; B likewise.
        let t0 = DispatchTime.now().uptimeNanoseconds
        let (aRows, aCols) = transA ? (k, m) : (m, k)
        let (bRows, bCols) = transB ? (n, k) : (k, n)
        let a16 = operand(a, rows: aRows, cols: aCols, ld: lda, scratch: &aBuffer)
        let b16 = operand(b, rows: bRows, cols: bCols, ld: ldb, scratch: &bBuffer)
        let key = ShapeKey(transA: transA, transB: transB, m: m, n: n, k: k, ldc: ldc, alpha: alpha, beta: beta)
        run(key, a: a16, b: b16, c: c, since: t0)
    }

    /// A batch as one primitive over 4-d operands (groups × items × rows × columns): each operand is
    /// rounded to one packed bf16 copy (a shared one once per group), and oneDNN broadcasts a shared
    /// operand over its group's items.
    public func gemm(batch: GemmBatch, transA: Bool, transB: Bool, m: Int, n: Int, k: Int, alpha: Float,
                     a: ConstFloatPtr, lda: Int, aStrides: BatchStrides, b: ConstFloatPtr, ldb: Int, bStrides: BatchStrides,
                     beta: Float, c: FloatPtr, ldc: Int, cStrides: BatchStrides) {
        if batch.count == 1 || k == 0 {
            loopGemm(batch: batch, transA: transA, transB: transB, m: m, n: n, k: k, alpha: alpha, a: a, lda: lda,
                     aStrides: aStrides, b: b, ldb: ldb, bStrides: bStrides, beta: beta, c: c, ldc: ldc, cStrides: cStrides)
            return
        }
        if m == 0 || n == 0 { return }
        let t0 = DispatchTime.now().uptimeNanoseconds
        let (aRows, aCols) = transA ? (k, m) : (m, k)
        let (bRows, bCols) = transB ? (n, k) : (k, n)
        let aBatch = BatchDims(batch, aStrides), bBatch = BatchDims(batch, bStrides)
        let a16 = operands(a, aBatch, aStrides, rows: aRows, cols: aCols, ld: lda, scratch: &aBuffer)
        let b16 = operands(b, bBatch, bStrides, rows: bRows, cols: bCols, ld: ldb, scratch: &bBuffer)
        // oneDNN runs its AMX kernels only on a dense result (on a strided one it falls back to
        // kernels several times slower), so a strided or summed C is computed densely here and then
        // added in, a summed one item after item.
        let size = m * n, sums = cStrides.item == 0 && batch.perGroup > 1
        let dense = !sums && ldc == n && (batch.perGroup == 1 || cStrides.item == size)
            && (batch.groups == 1 || cStrides.group == batch.perGroup * size)
        if dense {
            let key = ShapeKey(transA: transA, transB: transB, m: m, n: n, k: k, ldc: ldc, alpha: alpha, beta: beta,
                               batch: batch, a: aBatch, b: bBatch, c: cStrides)
            run(key, a: a16, b: b16, c: c, since: t0)
            return
        }
        let packed = BatchStrides(group: batch.perGroup * size, item: size)
        cBuffer.reserve(batch.count * size)
        run(ShapeKey(transA: transA, transB: transB, m: m, n: n, k: k, ldc: n, alpha: alpha, beta: 0,
                     batch: batch, a: aBatch, b: bBatch, c: packed), a: a16, b: b16, c: cBuffer.pointer, since: t0)
        for g in 0..<batch.groups {
            for j in 0..<batch.perGroup {
                let from = cBuffer.pointer + packed.offset(g, j), to = c + cStrides.offset(g, j)
                let scale = sums && j > 0 ? 1 : beta
                for i in 0..<m {  // y = x + scale · y, BLAS's beta (0 ignores what y held)
                    let x = from + i * n, y = to + i * ldc
                    if scale == 0 {
                        y.update(from: x, count: n)
                    } else {
                        if scale != 1 { scaleInPlace(y, n, scale) }
                        addInPlace(y, x, count: n)
                    }
                }
            }
        }
    }

    /// Runs the product `key` on rounded operands (rounding began at `t0`), making its primitive the
    /// first time.
    private func run(_ key: ShapeKey, a a16: UnsafePointer<UInt16>, b b16: UnsafePointer<UInt16>, c: FloatPtr, since t0: UInt64) {
        let t1 = DispatchTime.now().uptimeNanoseconds
        roundingSeconds += Double(t1 - t0) / 1e9
        let p: Primitive
        if let cached = primitives[key] {
            p = cached
        } else {
            if primitives.count >= capacity {
                for q in primitives.values { q.destroy() }
                primitives.removeAll(keepingCapacity: true)
            }
            p = makePrimitive(key)
            primitivesMade += 1
            makingSeconds += Double(DispatchTime.now().uptimeNanoseconds - t1) / 1e9
            primitives[key] = p
            implementations.insert(p.implementation)
        }
        let t2 = DispatchTime.now().uptimeNanoseconds
        defer {
            let t3 = DispatchTime.now().uptimeNanoseconds
            runningSeconds += Double(t3 - t2) / 1e9
            if keepsShapeTimes {
                let old = shapeTimes[key] ?? (0, 0)
                shapeTimes[key] = (old.calls + 1, old.seconds + Double(t3 - t0) / 1e9)
            }
        }
        dnnl_memory_set_data_handle(p.src, UnsafeMutableRawPointer(mutating: a16))
        dnnl_memory_set_data_handle(p.weights, UnsafeMutableRawPointer(mutating: b16))
        dnnl_memory_set_data_handle(p.dst, UnsafeMutableRawPointer(c))
        execute(p.primitive, (dpo_dnnl_arg_src(), p.src), (dpo_dnnl_arg_weights(), p.weights), (dpo_dnnl_arg_dst(), p.dst),
                for: key)
    }

    /// The operands of a batch rounded into one packed copy, item after item; an operand that a
    /// group shares (stride 0) is rounded once.
    private func operands(_ x: ConstFloatPtr, _ dims: BatchDims, _ strides: BatchStrides, rows: Int, cols: Int, ld: Int,
                          scratch: inout BF16Buffer) -> UnsafePointer<UInt16> {
        let size = rows * cols
        scratch.reserve(dims.groups * dims.items * size)
        for g in 0..<dims.groups {
            for j in 0..<dims.items {
                round(x + strides.offset(g, j), rows: rows, cols: cols, ld: ld, into: scratch.pointer + (g * dims.items + j) * size)
            }
        }
        return UnsafePointer(scratch.pointer)
    }

    /// The `count` shapes that took longest, with their calls, seconds, GFLOP/s and oneDNN kernel.
    public func slowestShapes(_ count: Int) -> [String] {
        shapeTimes.sorted { $0.value.seconds > $1.value.seconds }.prefix(count).map { key, value in
            let flops = 2 * Double(key.m) * Double(key.n) * Double(key.k) * Double(value.calls * key.batch.count)
            return String(format: "%@: %d calls, %.3f s, %.1f GFLOP/s, %@", key.description, value.calls, value.seconds,
                          flops / value.seconds / 1e9, primitives[key]?.implementation ?? "?")
        }
    }

    /// A bf16 copy of a stored operand, packed (leading dimension = cols): from the fixed copies when
    /// it lies in the fixed buffer, else converted into `scratch`.
    private func operand(_ x: ConstFloatPtr, rows: Int, cols: Int, ld: Int, scratch: inout BF16Buffer) -> UnsafePointer<UInt16> {
        let address = UInt(bitPattern: x)
        if fixedRange.contains(address) {
            let key = OperandKey(address: address, rows: rows, cols: cols, ld: ld)
            if let copy = fixedCopies[key], copy.pass == pass { return UnsafePointer(copy.buffer.pointer) }
            var copy = fixedCopies[key]?.buffer ?? BF16Buffer()
            copy.reserve(rows * cols)
            round(x, rows: rows, cols: cols, ld: ld, into: copy.pointer)
            fixedCopies[key] = (copy, pass)
            return UnsafePointer(copy.pointer)
        }
        if let held = holds.first(where: { $0.address == address }) {
            return heldOperand(x, hold: held.hold, rows: rows, cols: cols, ld: ld)
        }
        scratch.reserve(rows * cols)
        round(x, rows: rows, cols: cols, ld: ld, into: scratch.pointer)
        return UnsafePointer(scratch.pointer)
    }

    /// `roundToBF16` by the CPU's vector conversion (the same round to nearest even; subnormal inputs
    /// flush to zero): our own loop over VCVTNE2PS2BF16 where the CPU has it, else a oneDNN reorder
    /// (which uses the same instruction where there is one, through more layers).
    func round(_ x: ConstFloatPtr, rows: Int, cols: Int, ld: Int, into out: UnsafeMutablePointer<UInt16>) {
        roundedValues += rows * cols
        if roundsNatively {
            dpo_round_to_bf16(x, rows, cols, ld, out)
            return
        }
        let shape = OperandShape(rows: rows, cols: cols, ld: ld)
        let r: Reorder
        if let cached = reorders[shape] {
            r = cached
        } else {
            if reorders.count >= capacity {
                for q in reorders.values { q.destroy() }
                reorders.removeAll(keepingCapacity: true)
            }
            r = makeReorder(shape)
            reorders[shape] = r
        }
        dnnl_memory_set_data_handle(r.from, UnsafeMutableRawPointer(mutating: x))
        dnnl_memory_set_data_handle(r.to, UnsafeMutableRawPointer(out))
        execute(r.primitive, (dpo_dnnl_arg_from(), r.from), (dpo_dnnl_arg_to(), r.to), for: shape)
    }

    /// A oneDNN call that cannot fail for shapes the model makes (a failure is a bug here, not bad input).
    private func check(_ status: dnnl_status_t, _ what: String, for context: @autoclosure () -> Any) {
        precondition(status == dnnl_success, "oneDNN: \(what) failed (status \(status.rawValue)) for \(context())")
    }

    /// A memory object of `desc` whose data handle each call sets.
    private func memory(_ desc: inout dnnl_memory_desc_t, for context: @autoclosure () -> Any) -> dnnl_memory_t {
        var m: dnnl_memory_t?
        check(dnnl_memory_create(&m, &desc, engine, nil), "memory", for: context())
        return m!
    }

    /// Runs a primitive on its two or three (argument id, memory) pairs and waits for it; the
    /// arguments live on the stack, since this runs for every product.
    private func execute(_ primitive: dnnl_primitive_t, _ first: (Int32, dnnl_memory_t), _ second: (Int32, dnnl_memory_t),
                         _ third: (Int32, dnnl_memory_t)? = nil, for context: @autoclosure () -> Any) {
        let count = third == nil ? 2 : 3
        let status = withUnsafeTemporaryAllocation(of: dnnl_exec_arg_t.self, capacity: 3) { buffer -> dnnl_status_t in
            buffer[0] = dnnl_exec_arg_t(arg: first.0, memory: first.1)
            buffer[1] = dnnl_exec_arg_t(arg: second.0, memory: second.1)
            if let third { buffer[2] = dnnl_exec_arg_t(arg: third.0, memory: third.1) }
            return dnnl_primitive_execute(primitive, stream, Int32(count), buffer.baseAddress)
        }
        check(status, "execution", for: context())
        dnnl_stream_wait(stream)
    }

    private func makeReorder(_ shape: OperandShape) -> Reorder {
        func check(_ s: dnnl_status_t, _ what: String) { self.check(s, what, for: shape) }
        var fromDesc = dnnl_memory_desc_t(), toDesc = dnnl_memory_desc_t()
        var dims: [Int64] = [Int64(shape.rows), Int64(shape.cols)]
        var fromStrides: [Int64] = [Int64(shape.ld), 1], toStrides: [Int64] = [Int64(shape.cols), 1]
        check(dnnl_memory_desc_init_by_strides(&fromDesc, 2, &dims, dnnl_f32, &fromStrides), "fp32 description")
        check(dnnl_memory_desc_init_by_strides(&toDesc, 2, &dims, dnnl_bf16, &toStrides), "bf16 description")
        var pd: dnnl_primitive_desc_t?
        check(dnnl_reorder_primitive_desc_create(&pd, &fromDesc, engine, &toDesc, engine, nil), "reorder fp32 → bf16")
        defer { dnnl_primitive_desc_destroy(pd) }
        var primitive: dnnl_primitive_t?
        check(dnnl_primitive_create(&primitive, pd), "reorder primitive")
        return Reorder(primitive: primitive!, from: memory(&fromDesc, for: shape), to: memory(&toDesc, for: shape))
    }

    private func makePrimitive(_ key: ShapeKey) -> Primitive {
        func check(_ s: dnnl_status_t, _ what: String) { self.check(s, what, for: key) }
        var aDesc = dnnl_memory_desc_t(), bDesc = dnnl_memory_desc_t(), cDesc = dnnl_memory_desc_t()
        // Packed operands: a transposed one is described by its strides, which oneDNN's kernels take as
        // they are. A batch adds two leading dimensions (groups, items); a shared operand has 1 item.
        var aDims: [Int64] = [Int64(key.m), Int64(key.k)], aStrides: [Int64] = key.transA ? [1, Int64(key.m)] : [Int64(key.k), 1]
        var bDims: [Int64] = [Int64(key.k), Int64(key.n)], bStrides: [Int64] = key.transB ? [1, Int64(key.k)] : [Int64(key.n), 1]
        var cDims: [Int64] = [Int64(key.m), Int64(key.n)], cStrides: [Int64] = [Int64(key.ldc), 1]
        if key.isBatch {
            let aSize = Int64(key.m * key.k), bSize = Int64(key.k * key.n)
            aDims = [Int64(key.a.groups), Int64(key.a.items)] + aDims
            aStrides = [Int64(key.a.items) * aSize, aSize] + aStrides
            bDims = [Int64(key.b.groups), Int64(key.b.items)] + bDims
            bStrides = [Int64(key.b.items) * bSize, bSize] + bStrides
            cDims = [Int64(key.batch.groups), Int64(key.batch.perGroup)] + cDims
            cStrides = [Int64(key.c.group), Int64(key.batch.perGroup == 1 ? key.m * key.ldc : key.c.item)] + cStrides
        }
        let rank = Int32(aDims.count)
        check(dnnl_memory_desc_init_by_strides(&aDesc, rank, &aDims, dnnl_bf16, &aStrides), "source description")
        check(dnnl_memory_desc_init_by_strides(&bDesc, rank, &bDims, dnnl_bf16, &bStrides), "weights description")
        check(dnnl_memory_desc_init_by_strides(&cDesc, rank, &cDims, dnnl_f32, &cStrides), "result description")
        var desc = dnnl_matmul_desc_t()
        check(dnnl_matmul_desc_init(&desc, &aDesc, &bDesc, nil, &cDesc), "matmul description")
        var attr: dnnl_primitive_attr_t?
        check(dnnl_primitive_attr_create(&attr), "attributes")
        defer { dnnl_primitive_attr_destroy(attr) }
        if key.alpha != 1 {
            var scale = key.alpha
            check(dnnl_primitive_attr_set_output_scales(attr, 1, 0, &scale), "alpha")
        }
        if key.beta != 0 {
            var ops: dnnl_post_ops_t?
            check(dnnl_post_ops_create(&ops), "post-ops")
            check(dnnl_post_ops_append_sum(ops, key.beta), "beta")
            check(dnnl_primitive_attr_set_post_ops(attr, ops), "post-ops")
            dnnl_post_ops_destroy(ops)
        }
        var pd: dnnl_primitive_desc_t?
        check(dnnl_primitive_desc_create(&pd, &desc, attr, engine, nil), "matmul for bf16 × bf16 → f32")
        defer { dnnl_primitive_desc_destroy(pd) }
        var primitive: dnnl_primitive_t?
        check(dnnl_primitive_create(&primitive, pd), "matmul primitive")
        var info: UnsafePointer<CChar>?
        check(dnnl_primitive_desc_query(pd, dnnl_query_impl_info_str, 0, &info), "implementation name")
        return Primitive(primitive: primitive!, src: memory(&aDesc, for: key), weights: memory(&bDesc, for: key),
                         dst: memory(&cDesc, for: key),
                         implementation: info.map { String(cString: $0) } ?? "?")
    }

    private struct ShapeKey: Hashable, CustomStringConvertible {
        let transA: Bool, transB: Bool, m: Int, n: Int, k: Int, ldc: Int, alpha: Float, beta: Float
        /// A batch's products, each operand's groups and items, and C's strides; 1 × 1 for one product.
        var batch = GemmBatch(groups: 1, perGroup: 1), a = BatchDims.one, b = BatchDims.one, c = BatchStrides(group: 0, item: 0)
        var isBatch: Bool { batch.count > 1 }
        var description: String {
            let batched = isBatch ? "\(batch.groups) × \(batch.perGroup) of " : ""
            return "\(batched)m \(m) n \(n) k \(k)\(transA ? " Aᵀ" : "")\(transB ? " Bᵀ" : "") ldc \(ldc) alpha \(alpha) beta \(beta)"
        }
    }

    /// The groups and items an operand of a batch has: 1 where its stride is 0 (shared).
    private struct BatchDims: Hashable {
        let groups: Int, items: Int
        static let one = BatchDims(groups: 1, items: 1)
        init(groups: Int, items: Int) { self.groups = groups; self.items = items }
        init(_ batch: GemmBatch, _ strides: BatchStrides) {
            groups = strides.group == 0 ? 1 : batch.groups
            items = strides.item == 0 ? 1 : batch.perGroup
        }
    }

    private struct OperandKey: Hashable { let address: UInt, rows: Int, cols: Int, ld: Int }
    private struct OperandShape: Hashable { let rows: Int, cols: Int, ld: Int }

    private struct Reorder {
        let primitive: dnnl_primitive_t, from: dnnl_memory_t, to: dnnl_memory_t
        func destroy() {
            dnnl_memory_destroy(from); dnnl_memory_destroy(to)
            dnnl_primitive_destroy(primitive)
        }
    }

    private struct Primitive {
        let primitive: dnnl_primitive_t, src: dnnl_memory_t, weights: dnnl_memory_t, dst: dnnl_memory_t
        let implementation: String
        func destroy() {
            dnnl_memory_destroy(src); dnnl_memory_destroy(weights); dnnl_memory_destroy(dst)
            dnnl_primitive_destroy(primitive)
        }
    }
}

public struct OneDNNError: Error, CustomStringConvertible {
    public let description: String
    init(_ d: String) { description = d }
}

/// A growable buffer, freed by hand (it lives in the backend's caches).
struct GrowableBuffer<Element> {
    private(set) var pointer = UnsafeMutablePointer<Element>.allocate(capacity: 1)
    private(set) var capacity = 1

    mutating func reserve(_ count: Int) {
        if count <= capacity { return }
        pointer.deallocate()
        capacity = max(count, capacity * 2)
        pointer = .allocate(capacity: capacity)
    }

    func free() { pointer.deallocate() }
}

typealias BF16Buffer = GrowableBuffer<UInt16>

/// Rounds a rows × cols fp32 matrix (leading dimension ld) to bf16, round to nearest even, packed.
/// A NaN stays a NaN (its top bits keep a quiet bit).
func roundToBF16(_ x: ConstFloatPtr, rows: Int, cols: Int, ld: Int, into out: UnsafeMutablePointer<UInt16>) {
    for r in 0..<rows {
        let src = x + r * ld, dst = out + r * cols
        for j in 0..<cols {
            let bits = src[j].bitPattern
            let rounded = (bits &+ 0x7FFF &+ ((bits >> 16) & 1)) >> 16
            let nan = (bits & 0x7FFF_FFFF) > 0x7F80_0000
            dst[j] = UInt16(truncatingIfNeeded: nan ? (bits >> 16) | 0x40 : rounded)
        }
    }
}
