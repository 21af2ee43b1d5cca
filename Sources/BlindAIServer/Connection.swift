import Foundation
import HTTPTypes
import Hummingbird
import HummingbirdCore
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

    /// A check that becomes true once the client's connection has closed. A connection that was not active
    /// when the request started (the in-process test channel) never counts as closed.
    var connectionClosed: @Sendable () -> Bool {
        let channel = self.channel
        guard channel.isActive else { return { false } }
        return { !channel.isActive }
    }
}

/// Answers `Expect: 100-continue` with an interim `100 Continue` so that clients which wait for it (curl for
/// bodies over 1 KiB, many HTTP libraries for uploads) send their body at once, unless the declared length is
/// already over every body limit of the server: then no 100 is sent and the route answers 413 without the
/// client having sent its body. Other expectations are passed on untouched (the routes ignore them).
///
/// It sits after Hummingbird's HTTP/1 decoding, so the interim response goes straight to the encoder and the
/// connection state handler only ever sees the final response.
final class ExpectContinueHandler: ChannelInboundHandler, RemovableChannelHandler {
    typealias InboundIn = HTTPRequestPart
    typealias InboundOut = HTTPRequestPart
    typealias OutboundOut = HTTPResponsePart

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
}
