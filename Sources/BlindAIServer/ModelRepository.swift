import BlindAIGraph
import BlindAIONNX
import BlindAIProtocol
import CBlindAIServerShims
import Foundation
import NIOConcurrencyHelpers

/// A model in the repository: compiled, immutable, shared by every inference that uses it.
public struct LoadedModel: Sendable {
    public let name: String
    public let version: Int
    public let model: ONNXModel
    /// Key id of the uploader (nil on an open server).
    public let owner: String?
    /// Whether any key may run it (otherwise its owner and admin keys only).
    public let shared: Bool
    public let sha256: String
    public let byteSize: Int
    public let inputs: [TensorMetadata]
    public let outputs: [TensorMetadata]
    public let loadedAt: Date
    /// Gives the model's memory back to the system once the last holder (the repository or a running
    /// inference) lets go of it, so that unloading brings the server back to its base memory.
    private let memory = FreedMemoryReturner()

    public var versionString: String { String(version) }

    func metadata(versions: Bool = true) -> ModelMetadataResponse {
        ModelMetadataResponse(name: name, versions: [versionString], platform: "onnx", inputs: inputs, outputs: outputs)
    }
}

/// Who may do what with a model.
enum AccessRules {
    /// Whether `p` may know the model exists (metadata, readiness, index).
    static func canSee(_ m: LoadedModel, _ p: Principal) -> Bool {
        switch p {
        case .open: true
        case .anonymous: m.shared
        case .key(let id, let admin): admin || m.shared || m.owner == id
        }
    }

    /// Whether `p` may run the model: any valid key for shared models, the owner and admins otherwise.
    static func canInfer(_ m: LoadedModel, _ p: Principal) -> Bool {
        p.isAuthenticated && canSee(m, p)
    }

    /// Whether `p` may replace or unload the model: its owner and admin keys.
    static func canManage(_ m: LoadedModel, _ p: Principal) -> Bool {
        switch p {
        case .open: true
        case .anonymous: false
        case .key(let id, let admin): admin || m.owner == id
        }
    }
}

/// The models in memory, by name. Only registration, lookup and removal happen here (fast, no compute):
/// parsing and compiling run on the load pool, inference on the inference pool, so loading a model never
/// blocks inference on the others.
public actor ModelRepository {
    /// A name reserved for an upload in progress. Nothing is registered until `commit`.
    public struct UploadTicket: Sendable, Equatable {
        let id: UInt64
        public let name: String
        let principal: Principal
    }

    private let limits: ServerLimits
    private var models: [String: LoadedModel] = [:]
    private var pending: [String: UploadTicket] = [:]
    private var nextVersion: [String: Int] = [:]
    private var nextTicket: UInt64 = 1
    /// Called after each change with the model count and total bytes (metrics).
    private let onChange: @Sendable (Int, Int) -> Void

    public init(limits: ServerLimits, onChange: @escaping @Sendable (Int, Int) -> Void = { _, _ in }) {
        self.limits = limits
        self.onChange = onChange
    }

    public var count: Int { models.count }
    public var totalBytes: Int { models.values.reduce(0) { $0 + $1.byteSize } }
    public var uploadsInProgress: Int { pending.count }

    /// Model names: 1 to 128 characters of `A-Z a-z 0-9 . _ -`, not starting with `.` or `-`.
    public static func isValidName(_ name: String) -> Bool {
        guard let first = name.unicodeScalars.first, name.utf8.count <= 128, first != ".", first != "-" else { return false }
        return name.unicodeScalars.allSatisfy {
            ($0 >= "a" && $0 <= "z") || ($0 >= "A" && $0 <= "Z") || ($0 >= "0" && $0 <= "9") || $0 == "." || $0 == "_" || $0 == "-"
        }
    }

    /// Reserves `name` for an upload by `principal`, checking rights and capacity before any byte is read.
    public func beginUpload(name: String, principal: Principal) throws -> UploadTicket {
        guard principal.isAuthenticated else { throw ServerError(.unauthorized, "uploading a model needs an API key") }
        guard Self.isValidName(name) else {
            throw ServerError(.badRequest, "invalid model name: use 1 to 128 characters of A-Z a-z 0-9 . _ - (not starting with . or -)")
        }
        if pending[name] != nil { throw ServerError(.conflict, "an upload of model '\(name)' is already in progress") }
        if let existing = models[name] {
            guard AccessRules.canManage(existing, principal) else {
                throw ServerError(.forbidden, "model '\(name)' belongs to another key: only its owner or an admin key can replace it")
            }
        } else {
            let newNames = pending.keys.filter { models[$0] == nil }.count
            guard models.count + newNames < limits.maxModels else {
                throw ServerError(.insufficientStorage, "the server holds its maximum of \(limits.maxModels) models")
            }
        }
        guard totalBytes < limits.maxTotalModelBytes else {
            throw ServerError(.insufficientStorage, "the models loaded use the total model memory of \(limits.maxTotalModelBytes) bytes")
        }
        let ticket = UploadTicket(id: nextTicket, name: name, principal: principal)
        nextTicket += 1
        pending[name] = ticket
        return ticket
    }

    /// Gives up an upload: nothing is registered and the previous version of the name (if any) stays.
    public func abort(_ ticket: UploadTicket) {
        if pending[ticket.name] == ticket { pending[ticket.name] = nil }
    }

    /// Registers the loaded model under the ticket's name, replacing the previous version atomically.
    /// `shared` nil keeps the previous version's setting (or the default: private when keys are configured).
    public func commit(_ ticket: UploadTicket, model: ONNXModel, sha256: String, byteSize: Int, shared: Bool?) throws -> (LoadedModel, replaced: Bool) {
        guard pending[ticket.name] == ticket else { throw ServerError(.internal, "internal error") }
        pending[ticket.name] = nil
        let name = ticket.name
        let existing = models[name]
        if let existing {
            guard AccessRules.canManage(existing, ticket.principal) else {
                throw ServerError(.forbidden, "model '\(name)' belongs to another key: only its owner or an admin key can replace it")
            }
        } else if models.count >= limits.maxModels {
            throw ServerError(.insufficientStorage, "the server holds its maximum of \(limits.maxModels) models")
        }
        let newTotal = totalBytes - (existing?.byteSize ?? 0) + byteSize
        guard newTotal <= limits.maxTotalModelBytes else {
            throw ServerError(.insufficientStorage, "loading this model would use \(newTotal) bytes of model memory, over the limit of \(limits.maxTotalModelBytes) bytes")
        }
        let version = nextVersion[name, default: 1]
        nextVersion[name] = version + 1
        let entry = LoadedModel(
            name: name, version: version, model: model,
            owner: existing?.owner ?? ticket.principal.ownerID,
            shared: shared ?? existing?.shared ?? (ticket.principal == .open),
            sha256: sha256, byteSize: byteSize,
            inputs: model.inputs.map(TensorCoding.metadata), outputs: model.outputs.map(TensorCoding.metadata),
            loadedAt: Date())
        models[name] = entry
        onChange(models.count, totalBytes)
        return (entry, existing != nil)
    }

    /// The model `name` (at `version` if given) as `principal` may see it; 404 when unknown or invisible.
    public func lookup(name: String, version: String?, principal: Principal) throws -> LoadedModel {
        guard let m = models[name], AccessRules.canSee(m, principal) else {
            throw ServerError(.notFound, "unknown model '\(name)'")
        }
        if let version, version != m.versionString {
            throw ServerError(.notFound, "model '\(name)' has no version '\(version)' (loaded: \(m.versionString))")
        }
        return m
    }

    /// The model for an inference by `principal`: 401 without a key, 404 when unknown or not allowed.
    public func modelForInference(name: String, version: String?, principal: Principal) throws -> LoadedModel {
        guard principal.isAuthenticated else { throw ServerError(.unauthorized, "inference needs an API key") }
        let m = try lookup(name: name, version: version, principal: principal)
        guard AccessRules.canInfer(m, principal) else { throw ServerError(.notFound, "unknown model '\(name)'") }
        return m
    }

    /// The model for an inline load without a file: it must exist and `principal` must manage it.
    public func existingForLoad(name: String, principal: Principal) throws -> LoadedModel {
        guard principal.isAuthenticated else { throw ServerError(.unauthorized, "loading a model needs an API key") }
        let m = try lookup(name: name, version: nil, principal: principal)
        guard AccessRules.canManage(m, principal) else {
            throw ServerError(.forbidden, "model '\(name)' belongs to another key")
        }
        return m
    }

    /// Removes a model. Inferences already running on it finish (they hold the compiled model).
    public func unload(name: String, principal: Principal) throws -> LoadedModel {
        guard principal.isAuthenticated else { throw ServerError(.unauthorized, "unloading a model needs an API key") }
        guard let m = models[name], AccessRules.canSee(m, principal) else {
            throw ServerError(.notFound, "unknown model '\(name)'")
        }
        guard AccessRules.canManage(m, principal) else {
            throw ServerError(.forbidden, "model '\(name)' belongs to another key: only its owner or an admin key can unload it")
        }
        models[name] = nil
        onChange(models.count, totalBytes)
        return m
    }

    /// The models `principal` may see, and the uploads in progress it started, sorted by name.
    public func index(principal: Principal, readyOnly: Bool) -> [RepositoryIndexEntry] {
        var entries: [RepositoryIndexEntry] = models.values.filter { AccessRules.canSee($0, principal) }.map {
            RepositoryIndexEntry(name: $0.name, version: $0.versionString, state: "READY", reason: "")
        }
        if !readyOnly {
            for t in pending.values where models[t.name] == nil && (t.principal == principal || principal.isAdmin) {
                entries.append(RepositoryIndexEntry(name: t.name, version: nil, state: "LOADING", reason: "upload in progress"))
            }
        }
        return entries.sorted { $0.name < $1.name }
    }
}

/// When freed (with the last copy of the model that holds it), asks the C allocator to hand its free pages
/// back to the operating system, on a background queue and coalesced: glibc keeps freed heap memory (the
/// model's weights, its last activations) otherwise, and the process would stay at its peak size.
final class FreedMemoryReturner: Sendable {
    private static let pending = NIOLockedValueBox(false)

    deinit {
        let first = Self.pending.withLockedValue { p in
            defer { p = true }
            return !p
        }
        guard first else { return }
        DispatchQueue.global(qos: .utility).asyncAfter(deadline: .now() + .milliseconds(50)) {
            Self.pending.withLockedValue { $0 = false }
            _ = blindai_release_free_memory()
        }
    }
}
