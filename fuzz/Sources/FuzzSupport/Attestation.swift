import Foundation

/// An ISO 8601 UTC time ("2025-07-01T00:00:00Z") for verification times of the vectors.
public func utc(_ text: String) -> Date {
    guard let date = ISO8601DateFormatter().date(from: text) else { fatalError("fuzz target set-up: bad time \(text)") }
    return date
}

/// Where the committed attestation vectors are (Tests/BlindAIAttestationTests/Vectors).
public func vector(_ path: String) -> [UInt8] { repositoryFile("Tests/BlindAIAttestationTests/Vectors/" + path) }
