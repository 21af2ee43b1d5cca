import Foundation

/// PCS collateral for a TDX quote. Every part is optional so partial sets can be checked; what was
/// absent is reported in the validated result and policy decides whether that is acceptable.
public struct TDXCollateral: Sendable {
    /// The PCS `tcb` response bytes, exactly as served.
    public var tcbInfoJSON: [UInt8]?
    /// The PCS `qe/identity` response bytes, exactly as served.
    public var qeIdentityJSON: [UInt8]?
    public var pckCRL: [UInt8]?
    public var rootCACRL: [UInt8]?
    /// Issuer chains (PEM). When absent, the pinned TCB Signing certificates are used.
    public var tcbInfoIssuerChainPEM: String?
    public var qeIdentityIssuerChainPEM: String?
    public var pckCRLIssuerChainPEM: String?

    public init(
        tcbInfoJSON: [UInt8]? = nil, qeIdentityJSON: [UInt8]? = nil, pckCRL: [UInt8]? = nil, rootCACRL: [UInt8]? = nil,
        tcbInfoIssuerChainPEM: String? = nil, qeIdentityIssuerChainPEM: String? = nil, pckCRLIssuerChainPEM: String? = nil
    ) {
        self.tcbInfoJSON = tcbInfoJSON
        self.qeIdentityJSON = qeIdentityJSON
        self.pckCRL = pckCRL
        self.rootCACRL = rootCACRL
        self.tcbInfoIssuerChainPEM = tcbInfoIssuerChainPEM
        self.qeIdentityIssuerChainPEM = qeIdentityIssuerChainPEM
        self.pckCRLIssuerChainPEM = pckCRLIssuerChainPEM
    }

    public static let tcbInfoFilePrefix = "tcbInfo_fmspc_"

    /// Loads a PCS-style collateral directory: `tcbInfo_fmspc_<fmspc>.json`, `qeIdentity.json`,
    /// `pck_crl_platform.der`, `root_ca_crl.der`, `tcbInfo_issuer_chain.pem`, `qeIdentity_issuer_chain.pem`,
    /// `pck_crl_issuer_chain.pem`. Missing files are left nil. `fmspc` picks the tcbInfo file (lowercase hex).
    public static func load(directory: URL, fmspc: String) -> TDXCollateral {
        from(fmspc: fmspc) { name in
            FileManager.default.contents(atPath: directory.appendingPathComponent(name).path).map { [UInt8]($0) }
        }
    }

    /// The same layout from a file-name -> bytes map (as carried in an evidence bundle).
    public static func load(files: [String: [UInt8]], fmspc: String) -> TDXCollateral {
        from(fmspc: fmspc) { files[$0] }
    }

    /// Every file the directory layout defines, for packing into an evidence bundle.
    public static func files(inDirectory directory: URL) -> [String: [UInt8]] {
        var out = [String: [UInt8]]()
        let names = (try? FileManager.default.contentsOfDirectory(atPath: directory.path)) ?? []
        for name in names where name.hasPrefix(tcbInfoFilePrefix) || knownFileNames.contains(name) {
            if let d = FileManager.default.contents(atPath: directory.appendingPathComponent(name).path) { out[name] = [UInt8](d) }
        }
        return out
    }

    /// A "QuoteCollateralV3" JSON document (as produced by dcap-qvl and PCCS clients): `tcb_info` and `qe_identity`
    /// hold the exact signed JSON text, `*_signature` the hex r||s, CRLs are hex DER, issuer chains PEM.
    public static func load(quoteCollateralV3JSON json: [UInt8]) throws(AttestationError) -> TDXCollateral {
        struct V3: Decodable {
            let tcb_info: String?
            let tcb_info_signature: String?
            let tcb_info_issuer_chain: String?
            let qe_identity: String?
            let qe_identity_signature: String?
            let qe_identity_issuer_chain: String?
            let pck_crl: String?
            let root_ca_crl: String?
            let pck_crl_issuer_chain: String?
        }
        let v: V3
        do { v = try JSONDecoder().decode(V3.self, from: Data(json)) } catch {
            throw AttestationError(.malformedCollateral, "QuoteCollateralV3 JSON is invalid: \(error)")
        }
        func response(_ key: String, _ body: String?, _ signature: String?) throws(AttestationError) -> [UInt8]? {
            guard let body else { return nil }
            guard let signature, Hex.decode(signature) != nil else {
                throw AttestationError(.malformedCollateral, "QuoteCollateralV3 has \(key) without a hex signature")
            }
            // The PCS response shape, with the signed text kept byte for byte.
            return Array("{\"\(key)\":".utf8) + Array(body.utf8) + Array(",\"signature\":\"\(signature)\"}".utf8)
        }
        func der(_ hex: String?, _ name: String) throws(AttestationError) -> [UInt8]? {
            guard let hex else { return nil }
            guard let bytes = Hex.decode(hex) else { throw AttestationError(.malformedCollateral, "QuoteCollateralV3 \(name) is not hex") }
            return bytes
        }
        return TDXCollateral(
            tcbInfoJSON: try response("tcbInfo", v.tcb_info, v.tcb_info_signature),
            qeIdentityJSON: try response("enclaveIdentity", v.qe_identity, v.qe_identity_signature),
            pckCRL: try der(v.pck_crl, "pck_crl"), rootCACRL: try der(v.root_ca_crl, "root_ca_crl"),
            tcbInfoIssuerChainPEM: v.tcb_info_issuer_chain, qeIdentityIssuerChainPEM: v.qe_identity_issuer_chain,
            pckCRLIssuerChainPEM: v.pck_crl_issuer_chain)
    }

    static let knownFileNames: Set<String> = [
        "qeIdentity.json", "pck_crl_platform.der", "pck_crl_processor.der", "root_ca_crl.der",
        "tcbInfo_issuer_chain.pem", "qeIdentity_issuer_chain.pem", "pck_crl_issuer_chain.pem",
    ]

    private static func from(fmspc: String, _ data: (String) -> [UInt8]?) -> TDXCollateral {
        func text(_ name: String) -> String? { data(name).map { String(decoding: $0, as: UTF8.self) } }
        return TDXCollateral(
            tcbInfoJSON: data("\(tcbInfoFilePrefix)\(fmspc.lowercased()).json") ?? data("\(tcbInfoFilePrefix)\(fmspc.uppercased()).json"),
            qeIdentityJSON: data("qeIdentity.json"),
            pckCRL: data("pck_crl_platform.der") ?? data("pck_crl_processor.der"),
            rootCACRL: data("root_ca_crl.der"),
            tcbInfoIssuerChainPEM: text("tcbInfo_issuer_chain.pem"),
            qeIdentityIssuerChainPEM: text("qeIdentity_issuer_chain.pem"),
            pckCRLIssuerChainPEM: text("pck_crl_issuer_chain.pem"))
    }
}

/// TCB status values used by Intel PCS.
public enum TDXTCBStatus: String, Sendable, Codable, CaseIterable {
    case upToDate = "UpToDate"
    case swHardeningNeeded = "SWHardeningNeeded"
    case configurationNeeded = "ConfigurationNeeded"
    case configurationAndSWHardeningNeeded = "ConfigurationAndSWHardeningNeeded"
    case outOfDate = "OutOfDate"
    case outOfDateConfigurationNeeded = "OutOfDateConfigurationNeeded"
    case revoked = "Revoked"
    /// No TCB level of the collateral matches the platform (Intel's "TCB not supported").
    case notSupported = "NotSupported"
}

// MARK: - PCS JSON models (tcbInfo v3, enclaveIdentity v2)

struct PCSTCBComponent: Decodable, Sendable { let svn: Int }

struct PCSTCBInfo: Decodable, Sendable {
    struct Module: Decodable, Sendable {
        let mrsigner: String
        let attributes: String
        let attributesMask: String
    }
    struct ModuleIdentity: Decodable, Sendable {
        let id: String
        let mrsigner: String
        let attributes: String
        let attributesMask: String
        let tcbLevels: [IdentityLevel]
    }
    struct Level: Decodable, Sendable {
        struct TCB: Decodable, Sendable {
            let sgxtcbcomponents: [PCSTCBComponent]
            let pcesvn: Int
            let tdxtcbcomponents: [PCSTCBComponent]?
        }
        let tcb: TCB
        let tcbDate: String
        let tcbStatus: String
        let advisoryIDs: [String]?
    }
    let id: String?
    let version: Int
    let issueDate: String
    let nextUpdate: String
    let fmspc: String
    let pceId: String
    let tcbEvaluationDataNumber: Int?
    let tdxModule: Module?
    let tdxModuleIdentities: [ModuleIdentity]?
    let tcbLevels: [Level]
}

struct IdentityLevel: Decodable, Sendable {
    struct TCB: Decodable, Sendable { let isvsvn: Int }
    let tcb: TCB
    let tcbDate: String
    let tcbStatus: String
    let advisoryIDs: [String]?
}

struct PCSEnclaveIdentity: Decodable, Sendable {
    let id: String
    let version: Int
    let issueDate: String
    let nextUpdate: String
    let tcbEvaluationDataNumber: Int?
    let miscselect: String
    let miscselectMask: String
    let attributes: String
    let attributesMask: String
    let mrsigner: String
    let isvprodid: Int
    let tcbLevels: [IdentityLevel]
}
