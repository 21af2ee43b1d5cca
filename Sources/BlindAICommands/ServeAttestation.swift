import ArgumentParser
import BlindAIServer
import BlindAIServerAttestation
import Foundation

/// The attestation part of `blindai serve`: `--tee`, `--attestation-certs`, `--write-policy`.
enum ServeAttestation {
    /// Chooses the TEE, prints the policy clients need (and writes it), and returns the server's provider.
    /// With plain HTTP there is no attestation (the server says so itself), so no TEE is required.
    /// `operatorModels` (name, SHA-256) are pinned in the written policy (`operatorModels`).
    static func setUp(tee: String, certificates: String?, writePolicy: String?, plainHTTP: Bool, tlsFromFiles: Bool,
                      operatorModels: [(name: String, sha256: String)] = []) async throws
        -> (any AttestationProvider)?
    {
        guard let mode = TEEMode(rawValue: tee) else {
            throw CLIError(message: "--tee must be one of \(TEEMode.allCases.map(\.rawValue).joined(separator: ", ")), not '\(tee)'")
        }
        if plainHTTP {
            if writePolicy != nil { throw CLIError(message: "--write-policy needs TLS: attestation is unavailable with --insecure-http") }
            return nil
        }
        let setup: TEESetup
        var policy: ServerTrustPolicy
        do {
            setup = try await TEESetup.make(
                mode: mode, certificatesDirectory: certificates.map { URL(fileURLWithPath: $0) }, tlsKeyFromFile: tlsFromFiles)
            policy = try await setup.trustPolicy()
        } catch let e as TEESetupError {
            throw CLIError(message: e.message)
        }
        policy.json = TrustPolicyJSON.pinning(operatorModels: operatorModels, in: policy.json)
        var out = policy.summary + "\n"
        if let path = setup.measuredExecutable?.path { out += "  measured file:   \(path) (SHA-384)\n" }
        out += "Client policy" + (writePolicy.map { " (written to \($0))" } ?? " (save it and give it to clients with --policy FILE)") + ":\n"
        out += policy.json
        if tlsFromFiles {
            out += "note: the TLS key was loaded from a file, so the claims say tlsKeyGeneratedInMemory=false and clients refuse this server "
                + "unless their policy sets \"allowTLSKeyFromFile\": true (development only)\n"
        }
        if let writePolicy {
            do {
                try Data(policy.json.utf8).write(to: URL(fileURLWithPath: writePolicy), options: .atomic)
            } catch {
                throw CLIError(message: "--write-policy \(writePolicy): \(error.localizedDescription)")
            }
        }
        FileHandle.standardOutput.write(Data(out.utf8))
        return setup.attestationProvider(tlsKeyGeneratedInMemory: !tlsFromFiles)
    }
}
