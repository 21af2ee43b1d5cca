import BlindAITensor
import CBlindAIKernels
import Foundation
import Testing

@Suite struct TensorTests {
    @Test func limitsRejectShapeBombs() {
        let limits = TensorLimits(maxTensorBytes: 1 << 20, maxTensorElements: 1 << 20)
        #expect(throws: EngineError.self) { try Tensor(zeros: .float32, shape: [1 << 20, 1 << 20], limits: limits) }
        #expect(throws: EngineError.self) { try Tensor(zeros: .float32, shape: [Int.max, 4], limits: limits) }
        #expect(throws: EngineError.self) { try Tensor(zeros: .float32, shape: [-1, 4], limits: limits) }
        do {
            _ = try Tensor(zeros: .float64, shape: [1 << 18], limits: limits)
            Issue.record("2 MiB tensor passed a 1 MiB limit")
        } catch {
            #expect((error as? EngineError)?.code == .memoryLimit)
        }
        #expect((try? Tensor(zeros: .float32, shape: [256, 256], limits: limits)) != nil)
    }

    @Test func reshapeSharesStorage() throws {
        let t = Tensor(shape: [2, 3], scalars: [Float](arrayLiteral: 1, 2, 3, 4, 5, 6))
        let r = try t.reshaped([3, 2])
        #expect(r.storage === t.storage)
        #expect(r.scalars(as: Float.self) == [1, 2, 3, 4, 5, 6])
    }

    @Test func storageIsAligned() throws {
        let t = try Tensor(zeros: .float32, shape: [17])
        #expect(Int(bitPattern: t.storage.base) % 64 == 0)
    }

    @Test func broadcastShapes() throws {
        #expect(try Shape.broadcast([[2, 1, 4], [3, 1]]) == [2, 3, 4])
        #expect(try Shape.broadcast([[], [5]]) == [5])
        #expect(throws: EngineError.self) { try Shape.broadcast([[2, 3], [4, 3]]) }
    }

    @Test func broadcastPlanVisitsEveryElementOnce() {
        let plan = BroadcastPlan(outShape: [2, 3, 4], inputShapes: [[2, 3, 4], [3, 1], [4]])
        var seen = [Int](repeating: 0, count: 24)
        var expectedB: [Int] = []
        var gotB: [Int] = []
        plan.forEachRow { o, offs, n, strides in
            for i in 0..<n {
                seen[o + i] += 1
                gotB.append(offs[1] + i * strides[1])
                expectedB.append(((o + i) / 4) % 3)
            }
        }
        #expect(seen.allSatisfy { $0 == 1 })
        #expect(gotB == expectedB)
    }

    @Test func npyRoundTrip() throws {
        let t = Tensor(shape: [2, 2], scalars: [Int64](arrayLiteral: 1, -2, 3, Int64.max))
        let back = try NPY.decode(NPY.encode(t))
        #expect(back.shape == [2, 2])
        #expect(back.dataType == .int64)
        #expect(back.scalars(as: Int64.self) == [1, -2, 3, Int64.max])
        let scalar = try NPY.decode(NPY.encode(Tensor(scalar: Float(2.5))))
        #expect(scalar.shape == [])
        #expect(scalar.scalars(as: Float.self) == [2.5])
    }

    @Test func npyRejectsGarbageAndTruncation() throws {
        #expect(throws: EngineError.self) { try NPY.decode(Data("not numpy".utf8)) }
        let good = try NPY.encode(Tensor(shape: [4], scalars: [Float](arrayLiteral: 1, 2, 3, 4)))
        #expect(throws: EngineError.self) { try NPY.decode(good.prefix(good.count - 3)) }
    }

    /// The packed GEMM kernel against a naive triple loop, over odd sizes and every transpose combination.
    @Test(arguments: [(1, 1, 1), (7, 5, 3), (13, 33, 17), (64, 70, 300), (6, 16, 256), (100, 1, 9)])
    func sgemmMatchesNaive(_ dims: (Int, Int, Int)) {
        let (m, n, k) = dims
        var rng = SystemRandomNumberGenerator()
        let a = (0..<(m * k)).map { _ in Float.random(in: -1...1, using: &rng) }
        let b = (0..<(k * n)).map { _ in Float.random(in: -1...1, using: &rng) }
        let c0 = (0..<(m * n)).map { _ in Float.random(in: -1...1, using: &rng) }
        for ta in [0, 1] {
            for tb in [0, 1] {
                // Lay A and B out as the transpose flags say.
                var aa = a, bb = b
                if ta == 1 { for i in 0..<m { for p in 0..<k { aa[p * m + i] = a[i * k + p] } } }
                if tb == 1 { for p in 0..<k { for j in 0..<n { bb[j * k + p] = b[p * n + j] } } }
                var c = c0
                blindai_sgemm(Int32(ta), Int32(tb), m, n, k, 0.5, aa, ta == 1 ? m : k, bb, tb == 1 ? k : n, 2, &c, n)
                var worst: Float = 0
                for i in 0..<m {
                    for j in 0..<n {
                        var s: Float = 0
                        for p in 0..<k { s += a[i * k + p] * b[p * n + j] }
                        worst = max(worst, abs(c[i * n + j] - (0.5 * s + 2 * c0[i * n + j])))
                    }
                }
                #expect(worst < 1e-3, "m=\(m) n=\(n) k=\(k) ta=\(ta) tb=\(tb) error \(worst)")
            }
        }
    }
}
