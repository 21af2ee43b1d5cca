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
    /// Loaded by the operator at start (`--model-repository`): listed in the attested claims, and no key may
    /// replace or unload it.
    public var operatorOwned = false
    /// Gives the model's memory back to the system once the last holder (the repository or a running
    /// inference) lets go of it, so that unloading brings the server back to its base memory.
    private let memory = FreedMemoryReturner()

    public var versionString: String { String(version) }

    func metadata(versions: Bool = true) -> ModelMetadataResponse {
        var parameters: Parameters = [ModelIdentityParameter.sha256: .string(sha256)]
        if operatorOwned { parameters[ModelIdentityParameter.operatorModel] = .bool(true) }
        return ModelMetadataResponse(name: name, versions: [versionString], platform: "onnx", inputs: inputs, outputs: outputs,
                                     parameters: parameters)
    }

    /// Refuses a change to an operator's model.
    func checkNotOperatorOwned(_ action: String) throws {
        if operatorOwned {
            throw ServerError(.operatorModel, "model '\(name)' was loaded by the operator at start (--model-repository): it cannot be \(action) through the API")
        }
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

/// A model's identity: the namespace of the key that owns it (nil on an open server) and its name there.
///
/// Each key has its own namespace: two keys may each have a model `m`, and a key's names never collide with
/// another key's private models, so no answer tells a key whether a name is used by a model it may not see.
/// A name is resolved in the caller's namespace first, then among the shared models (whose names are unique
/// among shared models). `owner:name` names a model of another namespace explicitly (`:` appears in neither
/// key ids nor model names); it resolves only to a model the caller may see.
public struct ModelID: Hashable, Sendable, CustomStringConvertible {
    public let owner: String?
    public let name: String

    /// `owner:name` outside the owner's own namespace (and on an open server, the bare name).
    public var description: String { owner.map { "\($0):\(name)" } ?? name }

    /// The name as `principal` should write it: bare in its own namespace, qualified otherwise.
    func name(for principal: Principal) -> String {
        owner == nil || owner == principal.ownerID ? name : description
    }

    /// Splits `owner:name`; nil for a bare name.
    static func qualified(_ text: String) -> (owner: String, name: String)? {
        let parts = text.split(separator: ":", maxSplits: 1, omittingEmptySubsequences: false)
        guard parts.count == 2 else { return nil }
        return (String(parts[0]), String(parts[1]))
    }
}

/// The models in memory, by namespace and name. Only registration, lookup and removal happen here (fast, no
/// compute): parsing and compiling run on the load pool, inference on the inference pool, so loading a model
/// never blocks inference on the others.
public actor ModelRepository {
    /// A name reserved for an upload whose body is complete, while it compiles. Nothing is registered until `commit`.
    public struct UploadTicket: Sendable, Equatable {
        let id: UInt64
        public let model: ModelID
        let principal: Principal
        public var name: String { model.name }
    }

    private let limits: ServerLimits
    private var models: [ModelID: LoadedModel] = [:]
    private var pending: [ModelID: UploadTicket] = [:]
    private var nextVersion: [ModelID: Int] = [:]
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

    /// The model `name` resolves to for `principal`, if it may see it: `owner:name` explicitly, otherwise the
    /// caller's own model of that name, otherwise the shared model of that name.
    private func visible(_ name: String, _ principal: Principal) -> LoadedModel? {
        let found: LoadedModel?
        if let (owner, bare) = ModelID.qualified(name) {
            found = models[ModelID(owner: owner, name: bare)]
        } else if principal == .open {
            found = models[ModelID(owner: nil, name: name)]
        } else {
            found = principal.ownerID.flatMap { models[ModelID(owner: $0, name: name)] } ?? sharedModel(named: name)
        }
        guard let found, AccessRules.canSee(found, principal) else { return nil }
        return found
    }

    private func sharedModel(named name: String) -> LoadedModel? {
        models.values.first { $0.shared && $0.name == name }
    }

    /// Where an upload of `name` by `principal` goes: its own namespace, or `owner:name` for an admin key.
    private func target(_ name: String, _ principal: Principal) throws -> ModelID {
        guard principal.isAuthenticated else { throw ServerError(.unauthorized, "uploading a model needs an API key") }
        var id = ModelID(owner: principal.ownerID, name: name)
        if let (owner, bare) = ModelID.qualified(name), principal.ownerID != nil {
            guard principal.isAdmin || principal.ownerID == owner else {
                throw ServerError(.forbidden, "a key uploads into its own namespace only: use the bare name")
            }
            id = ModelID(owner: owner, name: bare)
        }
        guard Self.isValidName(id.name), id.owner.map(APIKeyStore.isValidID) ?? true else {
            throw ServerError(.badRequest, "invalid model name: use 1 to 128 characters of A-Z a-z 0-9 . _ - (not starting with . or -)")
        }
        return id
    }

    /// Shared names are unique among shared models (they resolve by name for every key): the refusal when `id`
    /// would be shared next to another namespace's shared model of the same name. Only shared models, which every
    /// caller may see, are revealed by it.
    private func sharedNameTaken(_ id: ModelID, shared: Bool) -> ServerError? {
        guard shared, models.values.contains(where: { $0.shared && $0.name == id.name && $0.owner != id.owner }) else { return nil }
        return ServerError(.conflict, "another key shares a model named '\(id.name)': choose another name for a shared model")
    }

    /// Whether `principal` may upload `name` now (rights, a free name in its namespace, capacity), reserving
    /// nothing: checked before an upload's body is read; `beginUpload` checks again once it is complete.
    public func checkUpload(name: String, principal: Principal, shared: Bool? = nil) throws {
        let id = try target(name, principal)
        if pending[id] != nil { throw ServerError(.conflict, "an upload of model '\(id.name(for: principal))' is already in progress") }
        let existing = models[id]
        try refuseOperatorName(id)
        if existing == nil {
            let newNames = pending.keys.filter { models[$0] == nil }.count
            guard models.count + newNames < limits.maxModels else {
                throw ServerError(.insufficientStorage, "the server holds its maximum of \(limits.maxModels) models")
            }
        }
        guard totalBytes < limits.maxTotalModelBytes else {
            throw ServerError(.insufficientStorage, "the models loaded use the total model memory of \(limits.maxTotalModelBytes) bytes")
        }
        if let e = sharedNameTaken(id, shared: shared ?? existing?.shared ?? (principal == .open)) { throw e }
    }

    /// Reserves `name` for an upload by `principal` whose body is complete, checking rights and capacity.
    public func beginUpload(name: String, principal: Principal, shared: Bool? = nil) throws -> UploadTicket {
        try checkUpload(name: name, principal: principal, shared: shared)
        let ticket = UploadTicket(id: nextTicket, model: try target(name, principal), principal: principal)
        nextTicket += 1
        pending[ticket.model] = ticket
        return ticket
    }

    /// Gives up an upload: nothing is registered and the previous version of the name (if any) stays.
    public func abort(_ ticket: UploadTicket) {
        if pending[ticket.model] == ticket { pending[ticket.model] = nil }
    }

    /// Registers the loaded model under the ticket's name, replacing the previous version atomically.
    /// `shared` nil keeps the previous version's setting (or the default: private when keys are configured).
    public func commit(_ ticket: UploadTicket, model: ONNXModel, sha256: String, byteSize: Int, shared: Bool?) throws -> (LoadedModel, replaced: Bool) {
        guard pending[ticket.model] == ticket else { throw ServerError(.internal, "internal error") }
        pending[ticket.model] = nil
        let id = ticket.model
        let existing = models[id]
        try refuseOperatorName(id)
        if existing == nil, models.count >= limits.maxModels {
            throw ServerError(.insufficientStorage, "the server holds its maximum of \(limits.maxModels) models")
        }
        let newTotal = totalBytes - (existing?.byteSize ?? 0) + byteSize
        guard newTotal <= limits.maxTotalModelBytes else {
            throw ServerError(.insufficientStorage, "loading this model would use \(newTotal) bytes of model memory, over the limit of \(limits.maxTotalModelBytes) bytes")
        }
        let isShared = shared ?? existing?.shared ?? (ticket.principal == .open)
        if let e = sharedNameTaken(id, shared: isShared) { throw e }
        let version = nextVersion[id, default: 1]
        nextVersion[id] = version &+ 1
        let entry = LoadedModel(
            name: id.name, version: version, model: model,
            owner: id.owner, shared: isShared,
            sha256: sha256, byteSize: byteSize,
            inputs: model.inputs.map(TensorCoding.metadata), outputs: model.outputs.map(TensorCoding.metadata),
            loadedAt: Date())
        models[id] = entry
        onChange(models.count, totalBytes)
        return (entry, existing != nil)
    }

    /// Registers one of the operator's models at start (`--model-repository`): shared (every key may run it), in no
    /// key's namespace, never replaced or unloaded, with the version its directory gives. Counted against the limits.
    public func preload(name: String, version: Int, model: ONNXModel, sha256: String, byteSize: Int) throws -> LoadedModel {
        guard Self.isValidName(name) else {
            throw ServerError(.badRequest, "invalid model name '\(name)': use 1 to 128 characters of A-Z a-z 0-9 . _ - (not starting with . or -)")
        }
        let id = ModelID(owner: nil, name: name)
        guard models[id] == nil else { throw ServerError(.conflict, "the model repository names '\(name)' twice") }
        guard models.count < limits.maxModels else {
            throw ServerError(.insufficientStorage, "the model repository holds more than the maximum of \(limits.maxModels) models")
        }
        guard totalBytes + byteSize <= limits.maxTotalModelBytes else {
            throw ServerError(.insufficientStorage, "the model repository's models need more than the total model memory of \(limits.maxTotalModelBytes) bytes")
        }
        var entry = LoadedModel(
            name: name, version: version, model: model, owner: nil, shared: true, sha256: sha256, byteSize: byteSize,
            inputs: model.inputs.map(TensorCoding.metadata), outputs: model.outputs.map(TensorCoding.metadata), loadedAt: Date())
        entry.operatorOwned = true
        models[id] = entry
        nextVersion[id] = version + 1
        onChange(models.count, totalBytes)
        return entry
    }

    /// Refuses an upload named like one of the operator's models, in any namespace: a key's private model of that name
    /// would be found first by that key's requests (and an admin key could plant one in another key's namespace),
    /// shadowing the model the claims document lists.
    private func refuseOperatorName(_ id: ModelID) throws {
        if let m = models.values.first(where: { $0.operatorOwned && $0.name == id.name }) {
            try m.checkNotOperatorOwned("replaced or shadowed")
        }
    }

    /// The operator's models, sorted by name (what the attested claims list).
    public var operatorModels: [LoadedModel] { models.values.filter(\.operatorOwned).sorted { $0.name < $1.name } }

    /// The model `name` (at `version` if given) as `principal` may see it; 404 when unknown or invisible.
    public func lookup(name: String, version: String?, principal: Principal) throws -> LoadedModel {
        guard let m = visible(name, principal) else {
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
        try m.checkNotOperatorOwned("reloaded")
        guard AccessRules.canManage(m, principal) else {
            throw ServerError(.forbidden, "model '\(name)' belongs to another key")
        }
        return m
    }

    /// Removes a model. Inferences already running on it finish (they hold the compiled model).
    public func unload(name: String, principal: Principal) throws -> LoadedModel {
        guard principal.isAuthenticated else { throw ServerError(.unauthorized, "unloading a model needs an API key") }
        let m = try lookup(name: name, version: nil, principal: principal)
        try m.checkNotOperatorOwned("unloaded")
        guard AccessRules.canManage(m, principal) else {
            throw ServerError(.forbidden, "model '\(name)' belongs to another key: only its owner or an admin key can unload it")
        }
        models[ModelID(owner: m.owner, name: m.name)] = nil
        onChange(models.count, totalBytes)
        return m
    }

    /// The models `principal` may see, and the uploads in progress of its namespace (all of them for an admin
    /// key), sorted by name; models of other namespaces are named `owner:name`.
    public func index(principal: Principal, readyOnly: Bool) -> [RepositoryIndexEntry] {
        var entries: [RepositoryIndexEntry] = models.filter { AccessRules.canSee($0.value, principal) }.map {
            RepositoryIndexEntry(name: $0.key.name(for: principal), version: $0.value.versionString, state: "READY", reason: "")
        }
        if !readyOnly {
            for t in pending.values where models[t.model] == nil && (t.model.owner == principal.ownerID || principal.isAdmin) {
                entries.append(RepositoryIndexEntry(name: t.model.name(for: principal), version: nil, state: "LOADING", reason: "upload in progress"))
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
