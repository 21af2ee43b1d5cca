@testable import BlindAIGraph
import BlindAIONNX
import BlindAITensor
import BlindAITestSupport
import CBlindAIKernels
import Foundation
import Testing

/// The engine's intra-operator pool (CBlindAIKernels/parallel.c): every index of a loop runs exactly once,
/// whoever calls, however many call at once, and nested loops run inline.
@Suite struct ThreadPoolTests {
    /// Runs `body` for 0..<count through the engine's bridge to `blindai_parallel_for`.
    static func parallelFor(_ count: Int, _ body: @Sendable (Int) -> Void) {
        CFParallel.forEach(count, body)
    }

    /// A buffer of counters that loop bodies on several threads bump at distinct indices.
    final class Counters: @unchecked Sendable {
        let pointer: UnsafeMutablePointer<Int>
        let count: Int
        init(_ count: Int) {
            self.count = count
            pointer = .allocate(capacity: count)
            pointer.initialize(repeating: 0, count: count)
        }
        deinit { pointer.deallocate() }
        var values: [Int] { Array(UnsafeBufferPointer(start: pointer, count: count)) }
    }

    @Test func everyIndexRunsExactlyOnce() {
        #expect(blindai_parallel_threads() >= 1)
        for count in [0, 1, 2, 3, 7, 64, 1000] {
            let c = Counters(max(count, 1))
            Self.parallelFor(count) { i in c.pointer[i] += 1 }
            #expect(c.values == Array(repeating: count == 0 ? 0 : 1, count: max(count, 1)), "count \(count)")
        }
    }

    @Test func concurrentCallersEachGetAllTheirIndices() async {
        // Eight callers at once, each running 200 loops: one of them holds the helpers at a time, the others run
        // inline; none loses or repeats an index, and no loop sees another's body.
        await withTaskGroup(of: Bool.self) { group in
            for caller in 0..<8 {
                group.addTask {
                    var ok = true
                    for round in 0..<200 {
                        let count = 2 + (caller * 7 + round) % 31
                        let c = Counters(count)
                        Self.parallelFor(count) { i in c.pointer[i] += i + caller }
                        ok = ok && c.values == (0..<count).map { $0 + caller }
                    }
                    return ok
                }
            }
            for await ok in group { #expect(ok) }
        }
    }

    @Test func asManyRunningInferencesAsCoresRunInline() {
        // Each running inference keeps a core busy: with as many as there are threads, a loop takes no helper.
        let threads = Int(blindai_parallel_threads())
        for _ in 0..<threads { blindai_parallel_run_began() }
        defer { for _ in 0..<threads { blindai_parallel_run_ended() } }
        let caller = pthread_self()
        let c = Counters(64)
        Self.parallelFor(64) { i in c.pointer[i] = pthread_equal(pthread_self(), caller) != 0 ? 1 : 2 }
        #expect(c.values == Array(repeating: 1, count: 64))
    }

    @Test func nestedLoopsRunInline() {
        let outer = 6, inner = 50
        let c = Counters(outer * inner)
        Self.parallelFor(outer) { o in
            Self.parallelFor(inner) { i in c.pointer[o * inner + i] += 1 }
        }
        #expect(c.values == Array(repeating: 1, count: outer * inner))
    }

    @Test func concurrentInferencesGiveTheSameAnswer() async throws {
        // A convolution large enough to be split across the pool, run from several threads at once.
        var b = ModelBuilder()
        b.input("x", .float32, [1, 16, 40, 40])
        let weights: [Float] = (0..<(32 * 16 * 9)).map { (i: Int) -> Float in Float(i % 13) / 13 - 0.5 }
        b.initializer("w", Tensor(shape: [32, 16, 3, 3], scalars: weights))
        b.node("Conv", ["x", "w"], ["y"], attributes: [ModelBuilder.intsAttribute("pads", [1, 1, 1, 1])])
        b.output("y", .float32, [1, 32, 40, 40])
        let model = try ONNXModel(serialized: b.data())
        let pixels: [Float] = (0..<(16 * 40 * 40)).map { (i: Int) -> Float in Float(i % 17) / 17 }
        let x = Tensor(shape: [1, 16, 40, 40], scalars: pixels)
        let expected: [Float] = try model.run(["x": x])["y"]!.scalars()
        await withTaskGroup(of: Bool.self) { group in
            for _ in 0..<4 {
                group.addTask {
                    for _ in 0..<10 {
                        guard let y = try? model.run(["x": x])["y"], y.scalars(as: Float.self) == expected else { return false }
                    }
                    return true
                }
            }
            for await ok in group { #expect(ok) }
        }
    }
}
