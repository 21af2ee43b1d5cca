import Foundation
import NIOConcurrencyHelpers

/// Dedicated threads for async code that blocks its thread (the TEE providers write and read configfs-tsm
/// files, call ioctls or wait for the host's quote service), so that it never holds a thread of Swift's
/// cooperative pool (a handful of such calls would stall every route, health checks included, and the
/// repository actor) or an event loop.
///
/// `run` executes its closure in a task that prefers this executor: the closure and every nonisolated async
/// function it calls run on these threads. Admission is bounded: at most `threadCount +
/// maxQueued` calls at once, past that `run` throws `too_many_requests` (429) without calling the closure.
public final class BlockingExecutor: TaskExecutor, Sendable {
    public let name: String
    public let threadCount: Int
    public let maxQueued: Int

    private struct State {
        var jobs: [UnownedJob] = []
        var admitted = 0
        var stopped = false
        /// Threads not ended yet.
        var live = 0
    }

    private let state = NIOLockedValueBox(State())
    private let workerThreads = NIOLockedValueBox<Set<ObjectIdentifier>>([])
    private let available = DispatchSemaphore(value: 0)

    public init(name: String, threads: Int, maxQueued: Int) {
        self.name = name
        self.threadCount = max(threads, 1)
        self.maxQueued = max(maxQueued, 0)
        state.withLockedValue { $0.live = threadCount }
        for i in 0..<threadCount {
            let thread = Thread { [self] in
                workerThreads.withLockedValue { _ = $0.insert(ObjectIdentifier(Thread.current)) }
                workerLoop()
            }
            thread.name = "\(name)-\(i)"
            thread.start()
        }
    }

    /// Whether the calling code runs on one of this executor's threads.
    func ownsCurrentThread() -> Bool {
        workerThreads.withLockedValue { $0.contains(ObjectIdentifier(Thread.current)) }
    }

    /// Calls admitted now (running or waiting for a thread).
    public var admittedCount: Int { state.withLockedValue { $0.admitted } }

    /// Runs `body` on this executor's threads, or throws 429 when `threadCount + maxQueued` calls are admitted
    /// already (503 once stopped).
    public func run<T: Sendable>(_ body: @escaping @Sendable () async throws -> T) async throws -> T {
        try state.withLockedValue { s in
            guard !s.stopped else { throw ServerError(.unavailable, "the server is shutting down") }
            guard s.admitted < threadCount + maxQueued else {
                throw ServerError(.tooManyRequests, "too many \(name) requests in progress (at most \(threadCount + maxQueued)); retry later")
            }
            s.admitted += 1
        }
        defer {
            let last = state.withLockedValue { s in
                s.admitted -= 1
                return s.stopped && s.admitted == 0
            }
            if last { for _ in 0..<threadCount { available.signal() } }
        }
        // A task of its own that prefers this executor: its first job is enqueued here, so even code that never
        // suspends runs on these threads (a preference pushed on the calling task takes effect only at its next hop).
        let task = Task(executorPreference: self) { try await body() }
        return try await withTaskCancellationHandler { try await task.value } onCancel: { task.cancel() }
    }

    public func enqueue(_ job: consuming ExecutorJob) {
        let job = UnownedJob(job)
        let queued = state.withLockedValue { s in
            guard s.live > 0 else { return false }
            s.jobs.append(job)
            return true
        }
        if queued {
            available.signal()
        } else {
            // A call's last step after the threads ended (shutdown with nothing admitted): run it anyway.
            Thread.detachNewThread { [self] in job.runSynchronously(on: asUnownedTaskExecutor()) }
        }
    }

    private func workerLoop() {
        while true {
            available.wait()
            let next: UnownedJob?? = state.withLockedValue { s in
                if !s.jobs.isEmpty { return .some(s.jobs.removeFirst()) }
                guard s.stopped && s.admitted == 0 else { return .some(nil) }
                s.live -= 1
                return .none
            }
            guard let next else { return }
            next?.runSynchronously(on: asUnownedTaskExecutor())
        }
    }

    /// Refuses new calls; the threads end once the calls admitted before have finished.
    public func shutdown() {
        state.withLockedValue { $0.stopped = true }
        for _ in 0..<threadCount { available.signal() }
    }
}
