import Foundation
import NIOConcurrencyHelpers
#if canImport(Glibc)
import Glibc
#endif

/// Set once to cancel a job (client gone, server stopping); read by the engine between nodes.
public final class CancellationFlag: Sendable {
    private let value = NIOLockedValueBox(false)

    public init() {}

    public func cancel() { value.withLockedValue { $0 = true } }
    public var isCancelled: Bool { value.withLockedValue { $0 } }
}

/// A job's progress: queued → running → done, or queued → done when its deadline passes first.
private enum JobPhase { case queued, running, done }

/// A fixed set of threads that run CPU-heavy jobs (inference, model loading) away from the NIO event loops
/// and the Swift concurrency pool, with admission control: at most `threads` jobs run and at most
/// `maxQueued` more wait (reserved places count as waiting). Past that `reserve()` fails with 429.
///
/// Worker threads may run at a lower priority (`niceness`; on Linux `setpriority(PRIO_PROCESS, 0, …)` applies to
/// the calling thread only). The server uses 0: the event loops sleep most of the time, so the kernel's
/// scheduler already runs them first when they wake (16 clients saturating both cores: health checks within
/// 18 ms at worst), while nice +5 cost the worker its share against the engine's own helper threads (which
/// are not niced) and about 3 ms per resnet18 inference (docs/performance-results.md).
public final class WorkerPool: Sendable {
    public let name: String
    public let threadCount: Int
    public let maxQueued: Int

    struct State {
        var jobs: [@Sendable () -> Void] = []
        var reserved = 0   // places taken (waiting or running)
        var running = 0
        var stopped = false
    }

    private let state = NIOLockedValueBox(State())
    private let available = DispatchSemaphore(value: 0)
    private let finished = DispatchGroup()

    public init(name: String, threads: Int, maxQueued: Int, niceness: Int32 = 0) {
        self.name = name
        self.threadCount = max(threads, 1)
        self.maxQueued = max(maxQueued, 0)
        for i in 0..<threadCount {
            finished.enter()
            let thread = Thread { [self] in
                #if canImport(Glibc)
                if niceness != 0 { _ = setpriority(__priority_which_t(PRIO_PROCESS.rawValue), 0, niceness) }
                #endif
                self.workerLoop()
                self.finished.leave()
            }
            thread.name = "\(name)-\(i)"
            thread.stackSize = 8 << 20
            thread.start()
        }
    }

    /// A place in the pool (running or waiting). Released when used by `run`, by `release()`, or when dropped.
    public final class Reservation: Sendable {
        private let pool: WorkerPool
        private let released = NIOLockedValueBox(false)

        init(pool: WorkerPool) {
            self.pool = pool
        }

        public func release() {
            let first = released.withLockedValue { r in
                defer { r = true }
                return !r
            }
            if first { pool.state.withLockedValue { $0.reserved -= 1 } }
        }

        deinit { release() }
    }

    /// Takes a place, or throws `tooManyRequests` when `threads + maxQueued` are taken.
    public func reserve() throws -> Reservation {
        try state.withLockedValue { s in
            try admissionCheck(s)
            s.reserved += 1
        }
        return Reservation(pool: self)
    }

    /// Throws what `reserve()` would throw now, without taking a place (a check before reading a request body;
    /// the place is taken once the body is complete).
    public func checkAdmission() throws {
        try state.withLockedValue { try admissionCheck($0) }
    }

    private func admissionCheck(_ s: State) throws {
        guard !s.stopped else { throw ServerError(.unavailable, "the server is shutting down") }
        guard s.reserved < threadCount + maxQueued else {
            throw ServerError(.tooManyRequests, "the server is saturated (\(threadCount) running, \(maxQueued) waiting); retry later")
        }
    }

    /// Whether `shutdown` was called.
    public var isStopped: Bool { state.withLockedValue { $0.stopped } }
    /// Places taken (waiting or running).
    public var reservedCount: Int { state.withLockedValue { $0.reserved } }
    /// Jobs computing now.
    public var runningCount: Int { state.withLockedValue { $0.running } }
    /// Places taken by requests not computing yet (reading their body or waiting for a thread).
    public var waitingCount: Int { state.withLockedValue { $0.reserved - $0.running } }

    /// Runs `job` on a worker thread under `reservation`. If the calling task is cancelled, `flag` is set (the
    /// job should poll it); a job still waiting when the flag is set does not start. A job still waiting at
    /// `deadline` is dropped and the call fails with a timeout at once (a running job polls the deadline itself).
    public func run<T: Sendable>(_ reservation: Reservation, flag: CancellationFlag = CancellationFlag(),
                                 deadline: ContinuousClock.Instant? = nil,
                                 _ job: @escaping @Sendable (CancellationFlag) throws -> T) async throws -> T {
        // queued → running → done, or queued → done by the deadline timer: whoever leaves `queued` resumes.
        let phase = NIOLockedValueBox(JobPhase.queued)
        let (timerStarted, timerSignal) = AsyncStream<CheckedContinuation<T, any Error>>.makeStream()
        let timer: Task<Void, Never>? = deadline.map { deadline in
            Task {
                var it = timerStarted.makeAsyncIterator()
                guard let cont = await it.next() else { return }
                try? await Task.sleep(until: deadline, clock: .continuous)
                if Task.isCancelled { return }
                let drop = phase.withLockedValue { p -> Bool in
                    guard p == .queued else { return false }
                    p = .done
                    return true
                }
                if drop {
                    reservation.release()
                    cont.resume(throwing: ServerError(.timeout, "the request waited longer than the request timeout for a worker"))
                }
            }
        }
        defer { timer?.cancel() }
        return try await withTaskCancellationHandler {
            try await withCheckedThrowingContinuation { (cont: CheckedContinuation<T, any Error>) in
                let work: @Sendable () -> Void = { [self] in
                    let start = phase.withLockedValue { p -> Bool in
                        guard p == .queued else { return false }
                        p = .running
                        return true
                    }
                    guard start else { return }
                    state.withLockedValue { $0.running += 1 }
                    let result: Result<T, any Error>
                    if flag.isCancelled {
                        result = .failure(CancellationError())
                    } else {
                        result = Result { try job(flag) }
                    }
                    state.withLockedValue { $0.running -= 1 }
                    phase.withLockedValue { $0 = .done }
                    reservation.release()
                    cont.resume(with: result)
                }
                let accepted = state.withLockedValue { s -> Bool in
                    guard !s.stopped else { return false }
                    s.jobs.append(work)
                    return true
                }
                if accepted {
                    timerSignal.yield(cont)
                    timerSignal.finish()
                    available.signal()
                } else {
                    phase.withLockedValue { $0 = .done }
                    timerSignal.finish()
                    reservation.release()
                    cont.resume(throwing: ServerError(.unavailable, "the server is shutting down"))
                }
            }
        } onCancel: {
            flag.cancel()
        }
    }

    private func workerLoop() {
        while true {
            available.wait()
            let job: (@Sendable () -> Void)? = state.withLockedValue { s in
                s.jobs.isEmpty ? nil : s.jobs.removeFirst()
            }
            if let job {
                job()
            } else if state.withLockedValue({ $0.stopped }) {
                return
            }
        }
    }

    /// Stops accepting jobs, lets queued and running jobs finish, and ends the threads.
    public func shutdown() async {
        state.withLockedValue { $0.stopped = true }
        for _ in 0..<threadCount { available.signal() }
        await withCheckedContinuation { (cont: CheckedContinuation<Void, Never>) in
            finished.notify(queue: .global()) { cont.resume() }
        }
    }
}
