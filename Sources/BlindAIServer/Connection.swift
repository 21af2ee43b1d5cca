import Foundation
import HTTPTypes
import Hummingbird
import HummingbirdCore
import NIOConcurrencyHelpers
import NIOCore
import NIOHTTPTypes

/// The request context of the server's routes: Hummingbird's core context plus the connection the request
/// arrived on, so that a long inference can stop when its client goes away.
public struct ServerRequestContext: RequestContext {
    public var coreContext: CoreRequestContextStorage
    /// The connection (a socket channel; under TLS the same channel carries the TLS handler).
    let channel: any Channel

    public init(source: ApplicationRequestContextSource) {
        self.coreContext = .init(source: source)
        self.channel = source.channel
    }

    /// The state of this request's connection, or nil when the connection was not active when the request
    /// arrived (the in-process test channel: it is never closed and has no body deadline). Costs one hop to the
    /// connection's event loop.
    func connection() async -> ConnectionView {
        let channel = self.channel
        guard channel.isActive else { return ConnectionView(channel: nil, state: nil) }
        let state = try? await channel.eventLoop.submit {
            try channel.pipeline.syncOperations.handler(type: ConnectionHandler.self).state
        }.get()
        return ConnectionView(channel: channel, state: state)
    }
}

/// What a route needs of its connection: whether the client is gone, and the body deadline's verdict.
struct ConnectionView: Sendable {
    let channel: (any Channel)?
    let state: ConnectionState?

    /// A check that becomes true once the client has closed its side of the connection (or the connection is
    /// gone). Without the handler (already removed because the connection closed meanwhile) the channel tells.
    var closedCheck: @Sendable () -> Bool {
        guard let channel else { return { false } }
        guard let state else { return { !channel.isActive } }
        return { state.isClosed || !channel.isActive }
    }

    /// The request body, failing with `body_timeout` if the connection cut it off at its deadline.
    func body<S: AsyncSequence & Sendable>(_ body: S) -> GuardedBody<S> where S.Element == ByteBuffer {
        GuardedBody(base: body, cutOff: { [state] in state?.cutOffError })
    }
}

/// Whether the client of one connection is gone, and why its last body was cut off; set on the event loop, read
/// by routes and worker threads.
final class ConnectionState: Sendable {
    private let closed = NIOLockedValueBox(false)
    private let cutOff = NIOLockedValueBox<ServerError?>(nil)
    var isClosed: Bool { closed.withLockedValue { $0 } }
    func markClosed() { closed.withLockedValue { $0 = true } }
    var cutOffError: ServerError? { cutOff.withLockedValue { $0 } }
    func markCutOff(_ e: ServerError) { cutOff.withLockedValue { $0 = e } }
}

/// One per connection, after Hummingbird's HTTP/1 decoding:
/// - Records when the client closes its side of the connection. Hummingbird allows half-closed connections,
///   so a client that leaves shows up as `inputClosed` on a channel that stays active until the server's answer
///   is written; like nginx (499) and Go's net/http, the server takes the end of a client's input during a
///   request as the client having gone, and the inference routes stop their work. (A client that half-closes
///   on purpose after sending its request, TLS close_notify included, is treated the same: it gets 499.)
/// - Answers `Expect: 100-continue` with an interim `100 Continue` so that clients which wait for it (curl for
///   bodies over 1 KiB, many HTTP libraries for uploads) send their body at once, unless the declared length is
///   over the limit of the route it is for (`BodyLimits`): then no 100 is sent and the route answers 413
///   without the client having sent its body. Other expectations are passed on untouched (the routes ignore
///   them). The interim response goes straight to the encoder, so the connection state handler only sees the
///   final one.
/// - Holds each request body to its deadline (`BodyPace`: a total time and a minimum average rate), whether or
///   not a route reads it: a body still incomplete at its deadline is ended early (the route's `GuardedBody`
///   then fails with `body_timeout`, answered 408), the rest of the client's input is dropped, and the
///   connection is closed once the answer is written (at once if it was written already). The idle timeout alone
///   resets on every byte, so it cannot stop a client that trickles its body.
final class ConnectionHandler: ChannelDuplexHandler, RemovableChannelHandler {
    typealias InboundIn = HTTPRequestPart
    typealias InboundOut = HTTPRequestPart
    typealias OutboundIn = HTTPResponsePart
    typealias OutboundOut = HTTPResponsePart

    /// The largest body each kind of route accepts.
    struct BodyLimits {
        var upload: Int
        var inlineLoad: Int
        var inference: Int
        /// Every other route (small JSON bodies).
        var other = 64 << 10

        func limit(method: HTTPRequest.Method, path: String) -> Int {
            let p = path.split(separator: "?", maxSplits: 1).first.map(String.init) ?? path
            if method == .put && p.hasPrefix("/v2/repository/models/") { return upload }
            if method == .post && p.hasPrefix("/v2/repository/models/") && p.hasSuffix("/load") { return inlineLoad }
            if method == .post && p.hasPrefix("/v2/models/") && p.hasSuffix("/infer") { return inference }
            return other
        }
    }

    let state = ConnectionState()
    private let limits: BodyLimits
    private let pace: BodyPace?
    /// The body being received: when its request's headers came and its bytes so far.
    private var body: (start: NIODeadline, received: Int)?
    private var timer: Scheduled<Void>?
    /// The answer to the request whose body is being received was written in full (a route that answered
    /// without reading the body; Hummingbird then drains it).
    private var answered = false
    /// A body was cut off: its remaining input is dropped and the connection closes after the answer.
    private var cut = false

    init(limits: BodyLimits, pace: BodyPace?) {
        self.limits = limits
        self.pace = pace
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        if cut { return }
        switch unwrapInboundIn(data) {
        case .head(let head):
            if let expect = head.headerFields[.expect], expect.lowercased().trimmingCharacters(in: .whitespaces) == "100-continue" {
                let declared = head.headerFields[.contentLength].flatMap { Int($0) }
                let limit = limits.limit(method: head.method, path: head.path ?? "")
                if declared.map({ $0 > 0 && $0 <= limit }) ?? true {
                    context.writeAndFlush(wrapOutboundOut(.head(HTTPResponse(status: .continue))), promise: nil)
                }
            }
            body = (.now(), 0)
            answered = false
            scheduleDeadline(context: context)
        case .body(let chunk):
            body?.received += chunk.readableBytes
        case .end:
            body = nil
            cancelDeadline()
        }
        context.fireChannelRead(data)
    }

    func write(context: ChannelHandlerContext, data: NIOAny, promise: EventLoopPromise<Void>?) {
        guard case .end = unwrapOutboundIn(data) else { return context.write(data, promise: promise) }
        if cut {
            context.writeAndFlush(data, promise: promise)
            context.close(promise: nil)
            return
        }
        if body != nil { answered = true }
        context.write(data, promise: promise)
    }

    private func scheduleDeadline(context: ChannelHandlerContext) {
        cancelDeadline()
        guard let pace, let body else { return }
        let at = body.start + TimeAmount(pace.deadline(received: body.received))
        timer = context.eventLoop.assumeIsolated().scheduleTask(deadline: at) { [self] in
            timer = nil
            deadlineReached(context: context)
        }
    }

    private func cancelDeadline() {
        timer?.cancel()
        timer = nil
    }

    /// The body's deadline as it was when scheduled: cut the body off if it is still late with the bytes
    /// received since, otherwise wait for its new deadline.
    private func deadlineReached(context: ChannelHandlerContext) {
        guard let pace, let b = body else { return }
        let elapsed = Duration(NIODeadline.now() - b.start)
        guard pace.isLate(elapsed: elapsed, received: b.received) else { return scheduleDeadline(context: context) }
        state.markCutOff(pace.error(elapsed: elapsed, received: b.received))
        cut = true
        body = nil
        // The route (or Hummingbird's drain) sees the body end; the route's GuardedBody turns that into the error.
        context.fireChannelRead(wrapInboundOut(.end(nil)))
        if answered { context.close(promise: nil) }
    }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if let e = event as? ChannelEvent, e == .inputClosed { state.markClosed() }
        context.fireUserInboundEventTriggered(event)
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        cancelDeadline()
    }

    func channelInactive(context: ChannelHandlerContext) {
        cancelDeadline()
        state.markClosed()
        context.fireChannelInactive()
    }
}
