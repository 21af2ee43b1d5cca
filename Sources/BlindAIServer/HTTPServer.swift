import BlindAIProtocol
import Foundation
import HTTPTypes
import Hummingbird
import HummingbirdCore
import HummingbirdTLS
import Logging
import NIOCore

// The HTTP boundary: routes of the Open Inference Protocol v2 (REST) and the repository extension, mapped onto
// `InferenceServer`, and the only place where `ServerError`s become HTTP statuses.

extension ServerError.Code {
    /// The HTTP status of each error code.
    var httpStatus: HTTPResponse.Status {
        switch self {
        case .badRequest: .badRequest
        case .unauthorized: .unauthorized
        case .forbidden: .forbidden
        case .notFound: .notFound
        case .conflict: .conflict
        case .payloadTooLarge: .contentTooLarge
        case .tooManyRequests: .tooManyRequests
        case .timeout: .serviceUnavailable
        case .bodyTimeout: .requestTimeout
        case .unavailable: .serviceUnavailable
        case .clientClosed: .init(code: 499, reasonPhrase: "Client Closed Request")
        case .insufficientStorage: .init(code: 507, reasonPhrase: "Insufficient Storage")
        case .notImplemented: .notImplemented
        case .internal: .internalServerError
        case .modelDigestMismatch: .preconditionFailed
        case .operatorModel: .forbidden
        // Codes are a growable struct: a code added without a status here is a bug that a test catches
        // (`everyServerCodeHasItsStatus`), and meanwhile it is answered as an internal error.
        default: .internalServerError
        }
    }
}

extension HTTPField.Name {
    static let inferenceHeaderContentLength = HTTPField.Name(BinaryFraming.headerContentLength)!
}

enum HTTPBodies {
    static let encoder: JSONEncoder = {
        let e = JSONEncoder()
        e.outputFormatting = [.withoutEscapingSlashes, .sortedKeys]
        return e
    }()

    static func json<T: Encodable>(_ value: T, status: HTTPResponse.Status = .ok, headers: HTTPFields = [:]) -> Response {
        let data = (try? encoder.encode(value)) ?? Data("{}".utf8)
        var h = headers
        h[.contentType] = "application/json"
        return Response(status: status, headers: h, body: ResponseBody(byteBuffer: ByteBuffer(bytes: data)))
    }

    /// The response for any error: `{"error": "..."}` with the code's status. Unknown errors say only
    /// "internal error"; nothing of a request's content is logged.
    static func error(_ error: any Error, logger: Logger, endpoint: String) -> Response {
        let e: ServerError
        if let se = error as? ServerError {
            e = se
        } else if let he = error as? HTTPError {
            let code: ServerError.Code = switch he.status.code {
            case 404: .notFound
            case 413: .payloadTooLarge
            case 401: .unauthorized
            case 400..<500: .badRequest
            default: .internal
            }
            let message = he.body ?? (he.status.code == 404 ? "not found" : he.status.reasonPhrase)
            var r = json(ErrorResponse(error: message), status: he.status)
            if code == .payloadTooLarge { r.headers[.connection] = "close" }
            return r
        } else {
            e = ServerError.wrap(error)
        }
        if e.code == .internal {
            logger.error("request failed", metadata: ["endpoint": "\(endpoint)", "error_type": "\(type(of: error))"])
        }
        var headers: HTTPFields = [:]
        switch e.code {
        case .unauthorized: headers[.wwwAuthenticate] = "Bearer"
        case .tooManyRequests, .unavailable, .timeout: headers[.retryAfter] = "1"
        case .payloadTooLarge, .bodyTimeout: headers[.connection] = "close"
        default: break
        }
        return json(ErrorResponse(error: e.message), status: e.code.httpStatus, headers: headers)
    }
}

/// Outermost middleware: turns errors into `{"error": ...}` responses and records metrics and an access
/// log line (method, route template, status, duration: no paths with model data, no bodies).
struct BoundaryMiddleware: RouterMiddleware {
    typealias Context = ServerRequestContext
    let server: InferenceServer

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        let start = ContinuousClock.now
        let response: Response
        do {
            response = try await next(request, context)
        } catch {
            response = HTTPBodies.error(error, logger: context.logger, endpoint: context.endpointPath ?? "unmatched")
        }
        let endpoint = context.endpointPath ?? "unmatched"
        let seconds = InferenceServer.seconds(since: start)
        server.metrics.request(endpoint: endpoint, method: request.method.rawValue, status: response.status.code, seconds: seconds)
        if !endpoint.hasPrefix("/v2/health") {
            context.logger.info("request", metadata: [
                "method": "\(request.method.rawValue)", "endpoint": "\(endpoint)", "status": "\(response.status.code)",
                "ms": "\(Int(seconds * 1000))",
            ])
        }
        return response
    }
}

extension InferenceServer {
    func principal(_ request: Request) throws -> Principal {
        try authenticator.principal(authorization: request.headers[.authorization])
    }

    static func name(_ context: ServerRequestContext) throws -> String {
        guard let name = context.parameters.get("name") else { throw ServerError.badRequest("missing model name") }
        return name
    }

    /// The body of a route that takes a small JSON body (at most `limit` bytes), held to the connection's body
    /// deadline and counted against the body budget while it is read.
    func smallBody(_ request: Request, _ context: ServerRequestContext, limit: Int = 64 * 1024) async throws -> Data {
        try await collectRequestBody(await context.connection().body(request.body), limit: limit, lease: bodyBudget.lease())
    }

    /// The router of the OIP v2 REST API.
    public func makeRouter() -> Router<ServerRequestContext> {
        let router = Router(context: ServerRequestContext.self)
        router.add(middleware: BoundaryMiddleware(server: self))

        // Health and server metadata.
        router.get("/v2/health/live") { _, _ in HTTPBodies.json(["live": true]) }
        router.get("/v2/health/ready") { [self] _, _ in
            if inferencePool.isStopped { return HTTPBodies.json(["ready": false], status: .serviceUnavailable) }
            return HTTPBodies.json(["ready": true])
        }
        router.get("/v2") { [self] _, _ in
            var extensions = ["binary_tensor_data", "model_repository", "blindai_model_upload", "blindai_access_control"]
            if attestation != nil && tlsIdentity != nil { extensions.append("blindai_attestation") }
            return HTTPBodies.json(ServerMetadataResponse(name: configuration.serverName, version: configuration.serverVersion, extensions: extensions))
        }

        // Model metadata and readiness.
        let metadata: @Sendable (Request, ServerRequestContext) async throws -> Response = { [self] request, context in
            let m = try await repository.lookup(name: try Self.name(context), version: context.parameters.get("version"), principal: try principal(request))
            return HTTPBodies.json(m.metadata())
        }
        router.get("/v2/models/:name", use: metadata)
        router.get("/v2/models/:name/versions/:version", use: metadata)
        let ready: @Sendable (Request, ServerRequestContext) async throws -> Response = { [self] request, context in
            let m = try await repository.lookup(name: try Self.name(context), version: context.parameters.get("version"), principal: try principal(request))
            return HTTPBodies.json(ModelReadyResponse(name: m.name, ready: true))
        }
        router.get("/v2/models/:name/ready", use: ready)
        router.get("/v2/models/:name/versions/:version/ready", use: ready)

        // Inference.
        let infer: @Sendable (Request, ServerRequestContext) async throws -> Response = { [self] request, context in
            let p = try principal(request)
            let model = try await repository.modelForInference(name: try Self.name(context), version: context.parameters.get("version"), principal: p)
            let connection = await context.connection()
            let (body, headerLength) = try await self.infer(model: model, headerLength: request.headers[.inferenceHeaderContentLength],
                                                            declaredLength: request.headers[.contentLength].flatMap { Int($0) },
                                                            body: connection.body(request.body), connectionClosed: connection.closedCheck)
            var headers: HTTPFields = [:]
            if let headerLength {
                headers[.contentType] = "application/octet-stream"
                headers[.inferenceHeaderContentLength] = String(headerLength)
            } else {
                headers[.contentType] = "application/json"
            }
            return Response(status: .ok, headers: headers, body: ResponseBody(byteBuffer: ByteBuffer(bytes: body)))
        }
        router.post("/v2/models/:name/infer", use: infer)
        router.post("/v2/models/:name/versions/:version/infer", use: infer)

        // Model repository extension.
        router.post("/v2/repository/index") { [self] request, context in
            let p = try principal(request)
            let raw = try await smallBody(request, context)
            var readyOnly = false
            if !raw.isEmpty, raw.contains(where: { !($0 == 0x20 || $0 == 0x0A || $0 == 0x0D || $0 == 0x09) }) {
                do {
                    readyOnly = try JSONDecoder().decode(RepositoryIndexRequest.self, from: raw).ready ?? false
                } catch let e as DecodingError {
                    throw ServerError.badRequest("malformed index request: \(Self.describe(e))")
                }
            }
            return HTTPBodies.json(await repository.index(principal: p, readyOnly: readyOnly))
        }
        router.post("/v2/repository/models/:name/load") { [self] request, context in
            let p = try principal(request)
            let r = try await inlineLoad(name: try Self.name(context), principal: p, body: await context.connection().body(request.body))
            return HTTPBodies.json(r)
        }
        router.post("/v2/repository/models/:name/unload") { [self] request, context in
            let p = try principal(request)
            _ = try await smallBody(request, context)
            try await unload(name: try Self.name(context), principal: p)
            return HTTPBodies.json([String: String]())
        }
        router.put("/v2/repository/models/:name") { [self] request, context in
            let p = try principal(request)
            var params: [String: ParameterValue] = [:]
            for (k, v) in request.uri.queryParameters { params[String(k)] = .string(String(v)) }
            let shared = try Self.sharedParameter(params)
            let declared = request.headers[.contentLength].flatMap { Int($0) }
            let r = try await upload(name: try Self.name(context), principal: p, shared: shared, declaredLength: declared,
                                     body: await context.connection().body(request.body))
            return HTTPBodies.json(r, status: r.replaced ? .ok : .created)
        }

        // Attestation seam.
        router.post("/v2/attestation") { [self] request, context in
            let raw = try await smallBody(request, context, limit: 4096)
            let nonce: String
            do {
                nonce = try JSONDecoder().decode(AttestationRequest.self, from: raw).nonce
            } catch {
                throw ServerError.badRequest("the body must be {\"nonce\": \"<base64 of \(AttestationRequest.nonceLength) bytes>\"}")
            }
            let evidence = try await attestationEvidence(nonceBase64: nonce)
            var headers: HTTPFields = [:]
            headers[.contentType] = evidence.contentType
            return Response(status: .ok, headers: headers, body: ResponseBody(byteBuffer: ByteBuffer(bytes: evidence.body)))
        }
        return router
    }

    /// The HTTP(S) server: TLS with the server's identity unless `configuration.insecureHTTP`.
    public typealias HTTPApplication = Application<RouterResponder<ServerRequestContext>>

    public func makeApplication(alongside others: [HTTPApplication] = [], onServerRunning: @escaping @Sendable (any Channel) async -> Void = { _ in }) throws -> HTTPApplication {
        let idle = configuration.limits.idleTimeout.components.seconds
        let limits = configuration.limits
        let bodyLimits = ConnectionHandler.BodyLimits(upload: limits.maxModelBytes, inlineLoad: limits.maxInlineLoadBytes,
                                                      inference: limits.maxRequestBytes)
        let http1 = HTTPServerBuilder.http1(configuration: .init(
            additionalChannelHandlers: [ConnectionHandler(limits: bodyLimits, pace: limits.bodyPace)],
            idleTimeout: .seconds(max(idle, 1))))
        let server: HTTPServerBuilder
        if configuration.insecureHTTP {
            server = http1
        } else {
            guard let tlsIdentity else { throw ServerError(.internal, "TLS needs an identity") }
            server = try .tls(http1, tlsConfiguration: tlsIdentity.serverConfiguration)
        }
        return Application(
            router: makeRouter(),
            server: server,
            configuration: ApplicationConfiguration(address: .hostname(configuration.host, port: configuration.port), serverName: configuration.serverName),
            services: others,
            onServerRunning: onServerRunning,
            logger: logger)
    }

    /// The Prometheus endpoint (`GET /metrics`, plain HTTP), meant for a loopback or private address.
    public func makeMetricsApplication(port: Int, onServerRunning: @escaping @Sendable (any Channel) async -> Void = { _ in }) -> HTTPApplication {
        let router = Router(context: ServerRequestContext.self)
        router.get("/metrics") { [self] _, _ in
            updatePoolMetrics()
            var headers: HTTPFields = [:]
            headers[.contentType] = "text/plain; version=0.0.4"
            return Response(status: .ok, headers: headers, body: ResponseBody(byteBuffer: ByteBuffer(string: metrics.exposition())))
        }
        var metricsLogger = logger
        metricsLogger[metadataKey: "server"] = "metrics"
        return Application(
            router: router,
            configuration: ApplicationConfiguration(address: .hostname(configuration.metricsHost, port: port), serverName: configuration.serverName),
            onServerRunning: onServerRunning,
            logger: metricsLogger)
    }

    /// Runs the server (and the metrics endpoint) until SIGINT or SIGTERM, then stops the workers.
    public func run() async throws {
        let metricsApp = configuration.metricsPort.map { makeMetricsApplication(port: $0) }
        let app = try makeApplication(alongside: metricsApp.map { [$0] } ?? [])
        do {
            try await app.runService()
        } catch {
            await shutdown()
            throw error
        }
        await shutdown()
    }
}

/// `GET /v2/models/{name}/ready`
struct ModelReadyResponse: Codable, Sendable {
    var name: String
    var ready: Bool
}
