import Crypto
import Foundation

/// Who is making a request.
public enum Principal: Sendable, Equatable, CustomStringConvertible {
    /// No API keys are configured: the server is open and every caller has every right.
    case open
    /// Keys are configured and the request carries none.
    case anonymous
    /// A valid key.
    case key(id: String, admin: Bool)

    public var description: String {
        switch self {
        case .open: "open"
        case .anonymous: "anonymous"
        case .key(let id, let admin): admin ? "\(id) (admin)" : id
        }
    }

    /// The owner recorded on a model this principal uploads (nil on an open server).
    var ownerID: String? {
        if case .key(let id, _) = self { return id }
        return nil
    }

    var isAdmin: Bool {
        switch self {
        case .open: true
        case .anonymous: false
        case .key(_, let admin): admin
        }
    }

    /// Whether this principal may upload, unload or run anything at all.
    var isAuthenticated: Bool { self != .anonymous }
}

/// The API keys of the server, read from a file with one key per line:
///
///     # comment
///     key-id:secret
///     key-id:secret:admin
///
/// Key ids are 1 to 64 characters of `A-Z a-z 0-9 . _ -`; secrets are at least 16 characters, without `:` or
/// white space; no two keys may share a secret. Clients send `Authorization: Bearer <secret>`. Only SHA-256 digests of the secrets are kept,
/// and a presented secret is compared with every key in constant time.
public struct APIKeyStore: Sendable {
    struct Entry: Sendable {
        let id: String
        let digest: [UInt8]
        let admin: Bool
    }

    let entries: [Entry]

    public static let minimumSecretLength = 16

    public struct Key: Sendable {
        public var id: String
        public var secret: String
        public var admin: Bool

        public init(id: String, secret: String, admin: Bool = false) {
            self.id = id
            self.secret = secret
            self.admin = admin
        }
    }

    public init(keys: [Key]) throws {
        var seen = Set<String>()
        var secretOwners: [[UInt8]: String] = [:]
        var entries: [Entry] = []
        for k in keys {
            guard Self.isValidID(k.id) else { throw ServerError(.badRequest, "invalid API key id '\(k.id)'") }
            guard seen.insert(k.id).inserted else { throw ServerError(.badRequest, "API key id '\(k.id)' appears twice") }
            guard k.secret.count >= Self.minimumSecretLength, !k.secret.contains(":"),
                  !k.secret.contains(where: { $0.isWhitespace }) else {
                throw ServerError(.badRequest, "the secret of API key '\(k.id)' must be at least \(Self.minimumSecretLength) characters without ':' or spaces")
            }
            let digest = Array(SHA256.hash(data: Data(k.secret.utf8)))
            // One secret under two ids would authenticate as whichever came last (a copy-paste error could
            // make a user's secret an admin key): refuse the file instead.
            if let other = secretOwners.updateValue(k.id, forKey: digest) {
                throw ServerError(.badRequest, "API keys '\(other)' and '\(k.id)' have the same secret: give each key its own secret")
            }
            entries.append(Entry(id: k.id, digest: digest, admin: k.admin))
        }
        guard !entries.isEmpty else { throw ServerError(.badRequest, "the API key file has no keys") }
        self.entries = entries
    }

    /// Parses the key file format described above.
    public init(parsing text: String) throws {
        var keys: [Key] = []
        for (n, raw) in text.split(separator: "\n", omittingEmptySubsequences: false).enumerated() {
            let line = raw.trimmingCharacters(in: .whitespacesAndNewlines)
            if line.isEmpty || line.hasPrefix("#") { continue }
            let parts = line.split(separator: ":", omittingEmptySubsequences: false).map(String.init)
            guard parts.count == 2 || (parts.count == 3 && parts[2] == "admin") else {
                throw ServerError(.badRequest, "line \(n + 1) of the API key file is not 'key-id:secret' or 'key-id:secret:admin'")
            }
            keys.append(Key(id: parts[0], secret: parts[1], admin: parts.count == 3))
        }
        try self.init(keys: keys)
    }

    public init(contentsOf url: URL) throws {
        let text: String
        do {
            text = try String(contentsOf: url, encoding: .utf8)
        } catch {
            throw ServerError(.badRequest, "cannot read the API key file '\(url.path)'")
        }
        try self.init(parsing: text)
    }

    public var count: Int { entries.count }
    public var adminCount: Int { entries.filter(\.admin).count }

    static func isValidID(_ id: String) -> Bool {
        !id.isEmpty && id.count <= 64 && id.unicodeScalars.allSatisfy {
            ($0 >= "a" && $0 <= "z") || ($0 >= "A" && $0 <= "Z") || ($0 >= "0" && $0 <= "9") || $0 == "." || $0 == "_" || $0 == "-"
        }
    }

    /// The key whose secret is `secret`, or nil. Every key is compared, each in constant time, so the time
    /// taken does not depend on which key (if any) matches or on how much of a secret is right.
    public func authenticate(secret: String) -> Principal? {
        let digest = Array(SHA256.hash(data: Data(secret.utf8)))
        var found = -1
        for (i, e) in entries.enumerated() {
            var diff: UInt8 = 0
            for j in 0..<digest.count { diff |= digest[j] ^ e.digest[j] }
            // Branch-free select of the matching index.
            let match = Int(diff == 0 ? 1 : 0)
            found = match * i + (1 - match) * found
        }
        guard found >= 0 else { return nil }
        return .key(id: entries[found].id, admin: entries[found].admin)
    }
}

/// Resolves the principal of a request from its `Authorization` header.
public struct Authenticator: Sendable {
    /// nil: no keys configured, the server is open.
    public let keys: APIKeyStore?

    public init(keys: APIKeyStore?) {
        self.keys = keys
    }

    /// The principal for an `Authorization` header value. A header that is present but wrong is an error
    /// (401), not an anonymous request, so that a mistyped key is noticed.
    public func principal(authorization: String?) throws -> Principal {
        guard let keys else { return .open }
        guard let authorization, !authorization.isEmpty else { return .anonymous }
        let prefix = "bearer "
        guard authorization.count > prefix.count, authorization.lowercased().hasPrefix(prefix) else {
            throw ServerError(.unauthorized, "the Authorization header must be 'Bearer <api key>'")
        }
        let secret = String(authorization.dropFirst(prefix.count)).trimmingCharacters(in: .whitespaces)
        guard let p = keys.authenticate(secret: secret) else {
            throw ServerError(.unauthorized, "invalid API key")
        }
        return p
    }
}
