import BlindAITensor
import CBlindAIKernels

/// Intra-operator parallelism: work split into disjoint chunks run on the engine's thread pool
/// (CBlindAIKernels/parallel.c, which says why not `DispatchQueue.concurrentPerform`). Small problems run on
/// the calling thread.
package enum Parallel {
    /// Threads taking part in a parallel loop (the caller and the pool's helpers; `blindai_parallel_for`).
    package static let workers: Int = Int(blindai_parallel_threads())

    /// Runs body(i) for i in 0..<count, concurrently when count > 1, on the engine's thread pool
    /// (CBlindAIKernels/parallel.c says why not `DispatchQueue.concurrentPerform`).
    package static func forEach(_ count: Int, _ body: @Sendable (Int) -> Void) {
        if count <= 0 { return }
        if count == 1 { body(0); return }
        withoutActuallyEscaping(body) { body in
            var body = body
            withUnsafeMutablePointer(to: &body) { pointer in
                blindai_parallel_for(count, { context, index in
                    context!.assumingMemoryBound(to: (@Sendable (Int) -> Void).self).pointee(index)
                }, pointer)
            }
        }
    }

    /// Number of chunks for `work` units of `cost` each (1 when the total is small).
    package static func chunks(_ work: Int, cost: Int, minimum: Int = 1 << 16) -> Int {
        if workers == 1 || work <= 1 { return 1 }
        let total = work.multipliedReportingOverflow(by: Swift.max(cost, 1))
        if !total.overflow && total.partialValue < minimum { return 1 }
        return Swift.min(workers, work)
    }

    /// A value (typically a raw pointer into a tensor being written) handed to worker threads, each of which
    /// touches a disjoint part of the memory.
    package struct Shared<T>: @unchecked Sendable {
        package let value: T
        @inlinable package init(_ value: T) { self.value = value }
    }
}
