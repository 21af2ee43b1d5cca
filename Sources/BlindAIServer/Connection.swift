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

    /// A check that becomes true once the client has closed its side of the connection (or the connection is
    /// gone). Costs one hop to the connection's event loop. A connection that was not active when the request
    /// arrived (the in-process test channel) never counts as closed.
    func connectionClosedCheck() async -> @Sendable () -> Bool {
        let channel = self.channel
        guard channel.isActive else { return { false } }
        let state = try? await channel.eventLoop.submit {
            try channel.pipeline.syncOperations.handler(type: ConnectionHandler.self).state
        }.get()
        // Without the handler (already removed because the connection closed meanwhile) the channel still tells.
        guard let state else { return { !channel.isActive } }
        return { state.isClosed || !channel.isActive }
    }
}

/// Whether the client of one connection is gone; set on the event loop, read by worker threads.
final class ConnectionState: Sendable {
    private let closed = NIOLockedValueBox(false)
    var isClosed: Bool { closed.withLockedValue { $0 } }
    func markClosed() { closed.withLockedValue { $0 = true } }
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
final class ConnectionHandler: ChannelInboundHandler, RemovableChannelHandler {
    typealias InboundIn = HTTPRequestPart
    typealias InboundOut = HTTPRequestPart
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

    init(limits: BodyLimits) {
        self.limits = limits
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        if case .head(let head) = unwrapInboundIn(data), let expect = head.headerFields[.expect],
           expect.lowercased().trimmingCharacters(in: .whitespaces) == "100-continue" {
            let declared = head.headerFields[.contentLength].flatMap { Int($0) }
            let limit = limits.limit(method: head.method, path: head.path ?? "")
            if declared.map({ $0 > 0 && $0 <= limit }) ?? true {
                context.writeAndFlush(wrapOutboundOut(.head(HTTPResponse(status: .continue))), promise: nil)
            }
        }
        context.fireChannelRead(data)
    }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if let e = event as? ChannelEvent, e == .inputClosed { state.markClosed() }
        context.fireUserInboundEventTriggered(event)
    }

    func channelInactive(context: ChannelHandlerContext) {
        state.markClosed()
        context.fireChannelInactive()
    }
}
