import Foundation
import NIOConcurrencyHelpers
import NIOCore

// What bounds a request body besides its size: how long it may take to arrive (`BodyPace`, enforced per
// connection by `ConnectionHandler`) and how many body bytes all requests together may hold in memory
// (`BodyBudget`). Worker and upload slots are taken only once a body is complete, so a slow client holds a
// connection and a few buffered bytes, never a slot.

/// The deadline of a request body: `grace` plus one second per `minBytesPerSecond` bytes received, never more
/// than `total` after the request's headers. A client must therefore keep an average rate of at least
/// `minBytesPerSecond` once the grace period is spent, and finish within `total` however fast it sends.
public struct BodyPace: Sendable, Equatable {
    public var total: Duration
    public var grace: Duration
    /// 0: no rate rule, only the total deadline.
    public var minBytesPerSecond: Int

    public init(total: Duration, grace: Duration, minBytesPerSecond: Int) {
        self.total = total
        self.grace = grace
        self.minBytesPerSecond = minBytesPerSecond
    }

    /// Time after the headers by which the body must have ended, given the bytes received so far.
    public func deadline(received: Int) -> Duration {
        guard minBytesPerSecond > 0 else { return total }
        let whole = received / minBytesPerSecond
        // Seconds earned beyond the total deadline make no difference (and must not overflow a Duration).
        guard Duration.seconds(whole) < total else { return total }
        let earned = Duration.seconds(whole) + .seconds(Double(received % minBytesPerSecond) / Double(minBytesPerSecond))
        return min(total, grace + earned)
    }

    /// Whether a body still incomplete `elapsed` after its headers, with `received` bytes so far, is too late.
    public func isLate(elapsed: Duration, received: Int) -> Bool {
        elapsed >= deadline(received: received)
    }

    /// The error of a body that missed its deadline.
    func error(elapsed: Duration, received: Int) -> ServerError {
        if elapsed >= total {
            return ServerError(.bodyTimeout, "the request body did not arrive within \(total.secondsText) s")
        }
        return ServerError(.bodyTimeout, "the request body arrived too slowly (\(received) bytes in \(elapsed.secondsText) s; "
            + "after \(grace.secondsText) s it must average at least \(minBytesPerSecond) bytes/s)")
    }
}

extension Duration {
    /// Seconds with up to three decimals (for messages).
    var secondsText: String {
        let ms = components.seconds * 1000 + components.attoseconds / 1_000_000_000_000_000
        return ms % 1000 == 0 ? "\(ms / 1000)" : String(format: "%.3f", Double(ms) / 1000)
    }
}

/// The bytes of request bodies held in memory by all requests together, against `limit`. Each request takes a
/// `Lease` that grows as its bytes arrive and gives everything back when released or dropped.
public final class BodyBudget: Sendable {
    public let limit: Int
    private let used = NIOLockedValueBox(0)

    public init(limit: Int) {
        self.limit = max(limit, 0)
    }

    /// Bytes held now by all leases.
    public var bytesInUse: Int { used.withLockedValue { $0 } }

    public func lease() -> Lease { Lease(budget: self) }

    /// Takes `count` more bytes for a request that already holds `held`: 413 when the request alone would need
    /// more than the whole budget, 503 when the others hold too much of it now.
    fileprivate func take(_ count: Int, held: Int) throws {
        let (wanted, o) = held.addingReportingOverflow(count)
        if o || wanted > limit {
            throw ServerError(.payloadTooLarge, "the request needs more than the \(limit) bytes the server may hold for request bodies")
        }
        try used.withLockedValue { u in
            guard u + count <= limit else {
                throw ServerError(.unavailable, "the server holds as many request bodies in memory as it may (\(limit) bytes); retry later")
            }
            u += count
        }
    }

    fileprivate func give(_ count: Int) {
        used.withLockedValue { $0 -= count }
    }

    /// One request's share of the budget.
    public final class Lease: Sendable {
        private let budget: BodyBudget
        private let held = NIOLockedValueBox(0)

        fileprivate init(budget: BodyBudget) {
            self.budget = budget
        }

        public var bytes: Int { held.withLockedValue { $0 } }

        /// Takes `count` more bytes (before they are stored), or throws 413/503.
        public func grow(by count: Int) throws {
            guard count > 0 else { return }
            try held.withLockedValue { h in
                try budget.take(count, held: h)
                h += count
            }
        }

        /// Gives `count` bytes back (a buffer freed before the request ends).
        public func shrink(by count: Int) {
            let n = held.withLockedValue { h in
                let n = min(max(count, 0), h)
                h -= n
                return n
            }
            budget.give(n)
        }

        /// Gives everything back.
        public func release() { shrink(by: Int.max) }

        deinit { release() }
    }
}

/// A request body whose reading fails with the connection's cut-off error (`ConnectionHandler` ends a body that
/// missed its deadline early, so without this check a route would see a short body as a complete one).
struct GuardedBody<Base: AsyncSequence & Sendable>: AsyncSequence, Sendable where Base.Element == ByteBuffer {
    typealias Element = ByteBuffer
    let base: Base
    let cutOff: @Sendable () -> ServerError?

    struct AsyncIterator: AsyncIteratorProtocol {
        var base: Base.AsyncIterator
        let cutOff: @Sendable () -> ServerError?

        mutating func next() async throws -> ByteBuffer? {
            let chunk: ByteBuffer?
            do {
                chunk = try await base.next()
            } catch {
                if let e = cutOff() { throw e }
                throw error
            }
            if chunk == nil, let e = cutOff() { throw e }
            return chunk
        }
    }

    func makeAsyncIterator() -> AsyncIterator { AsyncIterator(base: base.makeAsyncIterator(), cutOff: cutOff) }
}
