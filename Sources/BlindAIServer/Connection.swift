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
    /// gone). Costs one hop to the connection's event loop. Without a `ConnectionHandler` in the pipeline (the
    /// in-process test channel) it never turns true.
    func connectionClosedCheck() async -> @Sendable () -> Bool {
        let channel = self.channel
        let state = try? await channel.eventLoop.submit {
            try channel.pipeline.syncOperations.handler(type: ConnectionHandler.self).state
        }.get()
        guard let state else { return { false } }
        return { state.isClosed }
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
///   request as the client having gone, and the inference routes stop their work.
/// - Answers `Expect: 100-continue` with an interim `100 Continue` so that clients which wait for it (curl for
///   bodies over 1 KiB, many HTTP libraries for uploads) send their body at once, unless the declared length is
///   already over every body limit of the server: then no 100 is sent and the route answers 413 without the
///   client having sent its body. Other expectations are passed on untouched (the routes ignore them). The
///   interim response goes straight to the encoder, so the connection state handler only sees the final one.
final class ConnectionHandler: ChannelInboundHandler, RemovableChannelHandler {
    typealias InboundIn = HTTPRequestPart
    typealias InboundOut = HTTPRequestPart
    typealias OutboundOut = HTTPResponsePart

    let state = ConnectionState()
    private let maxBodyBytes: Int

    init(maxBodyBytes: Int) {
        self.maxBodyBytes = maxBodyBytes
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        if case .head(let head) = unwrapInboundIn(data), let expect = head.headerFields[.expect],
           expect.lowercased().trimmingCharacters(in: .whitespaces) == "100-continue" {
            let declared = head.headerFields[.contentLength].flatMap { Int($0) }
            if declared.map({ $0 <= maxBodyBytes }) ?? true {
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

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        state.markClosed()
        context.fireErrorCaught(error)
    }
}
