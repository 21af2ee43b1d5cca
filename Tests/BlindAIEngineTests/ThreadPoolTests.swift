@testable import BlindAIGraph
import BlindAIKernels
import BlindAIONNX
import BlindAITensor
import BlindAITestSupport
import CBlindAIKernels
import Foundation
import Synchronization
import Testing

/// The engine's intra-operator pool (CBlindAIKernels/parallel.c): every index of a loop runs exactly once,
/// whoever calls, however many call at once, and nested loops run inline.
@Suite struct ThreadPoolTests {
    /// Runs `body` for 0..<count through the engine's bridge to `blindai_parallel_for`.
    static func parallelFor(_ count: Int, _ body: @Sendable (Int) -> Void) {
        Parallel.forEach(count, body)
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

/// The pool's claim race (hardening issue): a helper that loaded the last ticket of a finished loop, then was
/// delayed while the next loop's owner rewrote the job, must not claim an index of the new job from the stale
/// ticket. parallel.c closes a generation before rewriting the job; this test parks a helper exactly in that
/// window through the pool's test hook and counts how often each index of the second loop runs. Before the fix
/// index 4 ran twice (once from the stale ticket, once after the new ticket was published).
@Suite(.serialized) struct ThreadPoolClaimRaceTests {
    /// Shared with the C hook: the test's phase, who owns the loops, and the first loop's generation.
    final class Probe: @unchecked Sendable {
        /// 1: waiting for loop A's publication; 2: waiting for a helper to load A's final ticket; 3: that helper
        /// is parked; 4: loop B's job is written, the helper is released; 5: the helper attempted its claim.
        let phase = Atomic<Int>(0)
        let generationA = Atomic<UInt64>(0)
        let staleClaimSucceeded = Atomic<Bool>(false)
        var owner: pthread_t = pthread_self()
        let countA: UInt64

        init(countA: Int) { self.countA = UInt64(countA) }

        /// Waits (bounded) until `phase` reaches `value`.
        func wait(for value: Int, seconds: Double) -> Bool {
            let deadline = Date().addingTimeInterval(seconds)
            while phase.load(ordering: .acquiring) < value {
                if Date() > deadline { return false }
                usleep(50)
            }
            return true
        }
    }

    static let hook: blindai_parallel_hook = { context, point, ticket in
        guard let context else { return }
        let probe = Unmanaged<Probe>.fromOpaque(context).takeUnretainedValue()
        let onOwner = pthread_equal(pthread_self(), probe.owner) != 0
        switch Int(point) {
        case Int(BLINDAI_PARALLEL_HOOK_PUBLISH) where onOwner:
            if probe.phase.compareExchange(expected: 1, desired: 2, ordering: .acquiringAndReleasing).exchanged {
                probe.generationA.store(ticket >> 32, ordering: .releasing)
            } else if probe.phase.compareExchange(expected: 3, desired: 4, ordering: .acquiringAndReleasing).exchanged {
                // Loop B's job is written and its ticket not yet published: let the parked helper claim now.
                _ = probe.wait(for: 5, seconds: 3)
            }
        case Int(BLINDAI_PARALLEL_HOOK_CLAIM) where !onOwner:
            let a = probe.generationA.load(ordering: .acquiring)
            guard a != 0, ticket >> 32 == a, ticket & 0xFFFF_FFFF == probe.countA else { return }
            if probe.phase.compareExchange(expected: 2, desired: 3, ordering: .acquiringAndReleasing).exchanged {
                _ = probe.wait(for: 4, seconds: 3)
            }
        case Int(BLINDAI_PARALLEL_HOOK_CLAIMED) where !onOwner:
            if probe.phase.load(ordering: .acquiring) == 4 {
                let loaded = ticket >> 1
                if loaded >> 32 == probe.generationA.load(ordering: .acquiring) {
                    probe.staleClaimSucceeded.store(ticket & 1 == 1, ordering: .releasing)
                    probe.phase.store(5, ordering: .releasing)
                }
            }
        default: break
        }
    }

    @Test func aStaleTicketCannotClaimAnIndexOfTheNextLoop() throws {
        guard blindai_parallel_threads() >= 2 else {
            print("ThreadPoolClaimRaceTests: one thread in the pool, no helper to park; nothing to check here")
            return
        }
        // Other suites run loops and inferences at the same time (a loop then runs inline, or another loop holds
        // the helpers): retry until the window was staged three times, for at most 20 seconds.
        var staged = 0
        let deadline = Date().addingTimeInterval(20)
        while staged < 3 && Date() < deadline {
            let probe = Probe(countA: 4)
            probe.owner = pthread_self()
            let context = Unmanaged.passRetained(probe)
            defer { context.release() }
            blindai_parallel_set_test_hook(Self.hook, context.toOpaque())
            defer { blindai_parallel_set_test_hook(nil, nil) }

            probe.phase.store(1, ordering: .releasing)
            // Loop A: slow indices, so that the helper takes part and then loads A's final ticket.
            let a = ThreadPoolTests.Counters(4)
            ThreadPoolTests.parallelFor(4) { i in usleep(2000); a.pointer[i] += 1 }
            guard probe.wait(for: 3, seconds: 1) else { continue }  // the helper did not park this time: retry
            // Loop B, larger than A: the parked helper is released between its job and its ticket.
            let b = ThreadPoolTests.Counters(16)
            ThreadPoolTests.parallelFor(16) { i in b.pointer[i] += 1 }
            usleep(20_000)  // a duplicated index may still be running on the helper
            guard probe.phase.load(ordering: .acquiring) == 5 else { continue }
            staged += 1
            let stale = probe.staleClaimSucceeded.load(ordering: .acquiring)
            #expect(!stale, "a helper claimed from a stale ticket")
            #expect(b.values == Array(repeating: 1, count: 16), "indices of the second loop ran \(b.values) times")
            #expect(a.values == Array(repeating: 1, count: 4))
        }
        #expect(staged > 0, "the helper was never parked in the window; the race was not exercised")
    }
}
