import Crypto
import Foundation
import SwiftASN1
@_spi(FixedExpiryValidationTime) import X509

/// Intel trust anchors shipped with the package.
public struct TDXTrustAnchors: Sendable {
    public let rootCA: DERCertificate
    /// Intel SGX TCB Signing certificates (both issuances; they share a key and serial).
    public let tcbSigning: [DERCertificate]

    public init(rootCA: DERCertificate, tcbSigning: [DERCertificate]) {
        self.rootCA = rootCA
        self.tcbSigning = tcbSigning
    }

    public static let intel: TDXTrustAnchors = {
        do {
            return TDXTrustAnchors(
                rootCA: try DERCertificate(pemEncoded: PinnedRoots.intelSGXRootCA),
                tcbSigning: [
                    try DERCertificate(pemEncoded: PinnedRoots.intelTCBSigning2025),
                    try DERCertificate(pemEncoded: PinnedRoots.intelTCBSigning2018),
                ])
        } catch {
            preconditionFailure("pinned Intel certificates do not parse: \(error)")
        }
    }()
}

/// SGX extension values of a PCK certificate (OID 1.2.840.113741.1.13.1).
public struct PCKCertificateInfo: Sendable {
    public let fmspc: [UInt8]
    public let pceID: [UInt8]
    public let sgxTCBComponents: [Int]
    public let pceSVN: Int

    static let sgxExtensionsOID = "1.2.840.113741.1.13.1"

    init(_ cert: DERCertificate) throws(AttestationError) {
        guard let value = cert.extensionValue(PCKCertificateInfo.sgxExtensionsOID) else {
            throw AttestationError(.malformedCertificate, "PCK certificate has no SGX extensions (\(PCKCertificateInfo.sgxExtensionsOID))")
        }
        let root = try DERWalk.parse(value, "SGX extensions")
        var fmspc: [UInt8]?
        var pceID: [UInt8]?
        var comps = [Int](repeating: -1, count: 16)
        var pcesvn: Int?
        let base: ASN1ObjectIdentifier = [1, 2, 840, 113741, 1, 13, 1]
        for item in try DERWalk.sequence(root, "SGX extensions") {
            let kv = try DERWalk.sequence(item, "SGX extension")
            guard kv.count == 2 else { continue }
            let oid = try DERWalk.oid(kv[0], "SGX extension id")
            let arcs = Array(oid.oidComponents)
            guard arcs.count == 8, Array(arcs.prefix(7)) == Array(base.oidComponents) else { continue }
            switch arcs[7] {
            case 2:
                for c in try DERWalk.sequence(kv[1], "SGX TCB") {
                    let p = try DERWalk.sequence(c, "SGX TCB component")
                    guard p.count == 2 else { continue }
                    let cArcs = Array(try DERWalk.oid(p[0], "SGX TCB component id").oidComponents)
                    guard cArcs.count == 9, let last = cArcs.last else { continue }
                    if (1...16).contains(last) { comps[Int(last) - 1] = try DERWalk.int(p[1], "SGX TCB component") }
                    if last == 17 { pcesvn = try DERWalk.int(p[1], "PCESVN") }
                }
            case 3: pceID = Array(try DERWalk.primitive(kv[1], "PCE-ID"))
            case 4: fmspc = Array(try DERWalk.primitive(kv[1], "FMSPC"))
            default: continue
            }
        }
        guard let fmspc, fmspc.count == 6, let pceID, let pcesvn, !comps.contains(-1) else {
            throw AttestationError(.malformedCertificate, "PCK certificate SGX extensions lack FMSPC, PCE-ID, PCESVN or a TCB component")
        }
        self.fmspc = fmspc
        self.pceID = pceID
        self.sgxTCBComponents = comps
        self.pceSVN = pcesvn
    }
}

/// The outcome of appraising the platform against Intel's TCB info and QE identity.
public struct TDXTCBEvaluation: Sendable, Codable, Equatable {
    /// The combined status (platform, TDX module and QE).
    public let status: TDXTCBStatus
    public let platformStatus: TDXTCBStatus
    public let tdxModuleStatus: TDXTCBStatus?
    public let qeStatus: TDXTCBStatus?
    public let tcbDate: String?
    public let advisoryIDs: [String]
}

/// A TDX quote whose signatures, QE binding, PCK chain and supplied collateral were checked.
/// Only `TDXVerifier` creates it.
public struct ValidatedTDXQuote: Sendable {
    public let quote: TDXQuote
    public let pck: PCKCertificateInfo
    /// nil when no tcbInfo was supplied.
    public let tcb: TDXTCBEvaluation?
    public let checkedPCKCRL: Bool
    public let checkedRootCACRL: Bool
    public let checkedQEIdentity: Bool
    /// tcbEvaluationDataNumber of the checked TCB info and QE identity (nil when absent from the collateral).
    public let tcbInfoEvaluationDataNumber: Int?
    public let qeIdentityEvaluationDataNumber: Int?
    public let verificationTime: Date

    fileprivate init(
        quote: TDXQuote, pck: PCKCertificateInfo, tcb: TDXTCBEvaluation?, checkedPCKCRL: Bool, checkedRootCACRL: Bool,
        checkedQEIdentity: Bool, tcbInfoEvaluationDataNumber: Int?, qeIdentityEvaluationDataNumber: Int?, time: Date
    ) {
        self.tcbInfoEvaluationDataNumber = tcbInfoEvaluationDataNumber
        self.qeIdentityEvaluationDataNumber = qeIdentityEvaluationDataNumber
        self.quote = quote
        self.pck = pck
        self.tcb = tcb
        self.checkedPCKCRL = checkedPCKCRL
        self.checkedRootCACRL = checkedRootCACRL
        self.checkedQEIdentity = checkedQEIdentity
        self.verificationTime = time
    }
}

/// Verifies TDX quotes v4/v5 against the Intel SGX Root CA and PCS collateral.
///
/// The PCK CRL, the Root CA CRL and the QE identity are required: without them a revoked PCK, or a quoting enclave
/// that is not Intel's (on a platform with Flexible Launch Control), would pass. The TCB info stays optional here;
/// a policy's `allowedTCBStatuses` requires it.
public struct TDXVerifier: Sendable {
    public var anchors: TDXTrustAnchors
    /// Tests of the quote layer alone turn this off to read vectors published without CRLs or QE identity.
    var requiresRevocationAndQEIdentity = true

    public init(anchors: TDXTrustAnchors = .intel) { self.anchors = anchors }

    public func verify(quote quoteBytes: [UInt8], collateral: TDXCollateral = TDXCollateral(), at time: Date) async throws(AttestationError)
        -> ValidatedTDXQuote
    {
        let quote = try TDXQuote(bytes: quoteBytes)
        if requiresRevocationAndQEIdentity {
            let missing = [
                collateral.pckCRL == nil ? "the PCK CRL (pck_crl_platform.der or pck_crl_processor.der)" : nil,
                collateral.rootCACRL == nil ? "the Intel SGX Root CA CRL (root_ca_crl.der)" : nil,
                collateral.qeIdentityJSON == nil ? "the QE identity (qeIdentity.json)" : nil,
            ].compactMap { $0 }
            guard missing.isEmpty else {
                throw AttestationError(
                    .collateralMissing,
                    "TDX evidence needs \(missing.joined(separator: ", ")): without them a revoked PCK or a quoting enclave that is not Intel's would pass")
            }
        }

        // PCK chain: leaf <- intermediate(s) <- Intel SGX Root CA (pinned).
        var chain = [DERCertificate]()
        for der in PEM.decodeAll(quote.pckChainPEM) { chain.append(try DERCertificate(derEncoded: der)) }
        guard chain.count >= 2 else {
            throw AttestationError(.malformedEvidence, "TDX quote PCK chain has \(chain.count) certificate(s), expected leaf, intermediate and root")
        }
        let root = anchors.rootCA
        var path = chain.filter { !$0.isSelfIssued }
        if let suppliedRoot = chain.first(where: \.isSelfIssued), suppliedRoot.derBytes != root.derBytes {
            throw AttestationError(.untrustedRoot, "the PCK chain ends at '\(suppliedRoot.displayName)', which is not the pinned Intel SGX Root CA")
        }
        path.append(root)
        for cert in path { try cert.checkValidity(at: time) }
        for i in 0..<(path.count - 1) where !path[i].isSigned(by: path[i + 1]) {
            if path[i].issuerBytes != path[i + 1].subjectBytes {
                throw AttestationError(.untrustedRoot, "'\(path[i].displayName)' is not issued by '\(path[i + 1].displayName)'")
            }
            throw AttestationError(.certificateSignatureInvalid, "'\(path[i].displayName)' signature does not verify under '\(path[i + 1].displayName)'")
        }
        try await validateWithX509(path: path, at: time)
        let leaf = path[0]
        let pck = try PCKCertificateInfo(leaf)

        // QE report signed by the PCK key, and bound to the attestation key.
        guard case .p256(let pckKey) = leaf.publicKey,
            let qeSig = try? P256.Signing.ECDSASignature(rawRepresentation: quote.qeReportSignature),
            pckKey.isValidSignature(qeSig, for: SHA256.hash(data: quote.qeReport.rawBytes))
        else {
            throw AttestationError(.qeReportSignatureInvalid, "QE report signature does not verify with the PCK certificate '\(leaf.displayName)'")
        }
        let binding = Array(SHA256.hash(data: quote.attestationKey + quote.qeAuthData))
        guard constantTimeEqual(binding, Array(quote.qeReport.reportData[0..<32])), quote.qeReport.reportData[32...].allSatisfy({ $0 == 0 }) else {
            throw AttestationError(
                .qeReportBindingInvalid,
                "QE report data \(Hex.abbreviated(quote.qeReport.reportData[0..<32])) is not SHA-256(attestation key || QE auth data) \(Hex.abbreviated(binding))")
        }
        guard let akey = try? P256.Signing.PublicKey(rawRepresentation: quote.attestationKey),
            let sig = try? P256.Signing.ECDSASignature(rawRepresentation: quote.signature),
            akey.isValidSignature(sig, for: SHA256.hash(data: quote.signedBytes))
        else {
            throw AttestationError(.quoteSignatureInvalid, "TDX quote signature does not verify with its attestation key")
        }

        // CRLs.
        var checkedRoot = false
        var checkedPCK = false
        if let der = collateral.rootCACRL {
            let crl = try DERCertificateRevocationList(derEncoded: der)
            try crl.check(issuer: root, at: time, certificates: path + anchors.tcbSigning, name: "Intel SGX Root CA CRL")
            checkedRoot = true
        }
        if let der = collateral.pckCRL {
            let crl = try DERCertificateRevocationList(derEncoded: der)
            guard crl.issuerBytes == leaf.issuerBytes else {
                throw AttestationError(
                    .collateralMismatch, "PCK CRL issuer '\(crl.issuerCommonName ?? "?")' is not the PCK certificate's issuer '\(leaf.issuerCommonName ?? "?")'")
            }
            try crl.check(issuer: path[1], at: time, certificates: [leaf], name: "PCK CRL")
            checkedPCK = true
        }

        // QE identity.
        var qeStatus: TDXTCBStatus?
        var qeEvaluationNumber: Int?
        if let json = collateral.qeIdentityJSON {
            let identity: PCSEnclaveIdentity = try verifySignedCollateral(
                json, key: "enclaveIdentity", issuerChain: collateral.qeIdentityIssuerChainPEM, at: time, name: "QE identity")
            try checkDates(issue: identity.issueDate, next: identity.nextUpdate, at: time, name: "QE identity")
            qeStatus = try TDXTCBAppraisal.qeStatus(identity: identity, report: quote.qeReport)
            qeEvaluationNumber = identity.tcbEvaluationDataNumber
        }

        // TCB info.
        var evaluation: TDXTCBEvaluation?
        var tcbEvaluationNumber: Int?
        if let json = collateral.tcbInfoJSON {
            let info: PCSTCBInfo = try verifySignedCollateral(
                json, key: "tcbInfo", issuerChain: collateral.tcbInfoIssuerChainPEM, at: time, name: "TCB info")
            try checkDates(issue: info.issueDate, next: info.nextUpdate, at: time, name: "TCB info")
            evaluation = try TDXTCBAppraisal.evaluate(info: info, pck: pck, body: quote.body, qeStatus: qeStatus)
            tcbEvaluationNumber = info.tcbEvaluationDataNumber
        }

        return ValidatedTDXQuote(
            quote: quote, pck: pck, tcb: evaluation, checkedPCKCRL: checkedPCK, checkedRootCACRL: checkedRoot,
            checkedQEIdentity: qeStatus != nil, tcbInfoEvaluationDataNumber: tcbEvaluationNumber,
            qeIdentityEvaluationDataNumber: qeEvaluationNumber, time: time)
    }

    /// The PCK path through swift-certificates' RFC 5280 verifier, rooted only at the pinned Intel root.
    private func validateWithX509(path: [DERCertificate], at time: Date) async throws(AttestationError) {
        let certs: [Certificate]
        do { certs = try path.map { try Certificate(derEncoded: $0.derBytes) } } catch {
            throw AttestationError(.malformedCertificate, "PCK chain certificate rejected by swift-certificates: \(error)")
        }
        var verifier = Verifier(rootCertificates: CertificateStore([certs[certs.count - 1]])) {
            RFC5280Policy(fixedExpiryValidationTime: time)
        }
        let result = await verifier.validate(leaf: certs[0], intermediates: CertificateStore(Array(certs.dropFirst().dropLast())))
        if case .couldNotValidate(let failures) = result {
            let reasons = failures.map { "\($0.policyFailureReason)" }.joined(separator: "; ")
            throw AttestationError(.untrustedRoot, "PCK chain does not validate to the Intel SGX Root CA at \(ISO8601.string(time)): \(reasons)")
        }
    }

    /// Verifies a PCS response's signature over the exact bytes of its inner object with a TCB Signing
    /// certificate (supplied chain or pinned) that chains to the pinned root and is valid at `time`.
    private func verifySignedCollateral<T: Decodable>(_ json: [UInt8], key: String, issuerChain: String?, at time: Date, name: String)
        throws(AttestationError) -> T
    {
        let (body, signatureBytes) = try RawJSON.signedObject(json, key: key)
        var candidates = [DERCertificate]()
        if let issuerChain {
            for der in PEM.decodeAll(issuerChain) {
                let c = try DERCertificate(derEncoded: der)
                if !c.isSelfIssued { candidates.append(c) }
            }
        }
        candidates += anchors.tcbSigning
        guard let sig = try? P256.Signing.ECDSASignature(rawRepresentation: signatureBytes) else {
            throw AttestationError(.malformedCollateral, "\(name) signature is not a P-256 r||s value")
        }
        let digest = SHA256.hash(data: body)
        let signers = candidates.filter { c in
            guard c.isSigned(by: anchors.rootCA), case .p256(let k) = c.publicKey else { return false }
            return k.isValidSignature(sig, for: digest)
        }
        guard !signers.isEmpty else {
            throw AttestationError(.collateralSignatureInvalid, "\(name) signature does not verify with any Intel SGX TCB Signing certificate")
        }
        guard signers.contains(where: { $0.isValid(at: time) }) else {
            throw AttestationError(
                .certificateNotValidAtTime, "no TCB Signing certificate that signed the \(name) is valid at \(ISO8601.string(time))")
        }
        do {
            return try JSONDecoder().decode(T.self, from: Data(body))
        } catch {
            throw AttestationError(.malformedCollateral, "\(name) JSON does not have the expected fields: \(error)")
        }
    }

    private func checkDates(issue: String, next: String, at time: Date, name: String) throws(AttestationError) {
        guard let i = ISO8601.parse(issue), let n = ISO8601.parse(next) else {
            throw AttestationError(.malformedCollateral, "\(name) issueDate/nextUpdate are not ISO 8601 times")
        }
        guard i <= time, time <= n else {
            throw AttestationError(.collateralNotValidAtTime, "\(name) is valid \(issue) .. \(next), not at \(ISO8601.string(time))")
        }
    }
}

/// Intel's TCB level matching (QVL / dcap-qvl algorithm).
enum TDXTCBAppraisal {
    static func status(_ text: String, _ what: String) throws(AttestationError) -> TDXTCBStatus {
        guard let s = TDXTCBStatus(rawValue: text), s != .notSupported else {
            throw AttestationError(.malformedCollateral, "\(what) has unknown tcbStatus \"\(text)\"")
        }
        return s
    }

    static func hexEqualMasked(_ value: [UInt8], expected: String, mask: String) -> Bool {
        guard let e = Hex.decode(expected), let m = Hex.decode(mask), e.count == value.count, m.count == value.count else { return false }
        return (0..<value.count).allSatisfy { value[$0] & m[$0] == e[$0] & m[$0] }
    }

    static func qeStatus(identity: PCSEnclaveIdentity, report: SGXEnclaveReport) throws(AttestationError) -> TDXTCBStatus {
        guard identity.id == "TD_QE" else {
            throw AttestationError(.collateralMismatch, "QE identity id is \"\(identity.id)\", expected \"TD_QE\"")
        }
        guard let signer = Hex.decode(identity.mrsigner), constantTimeEqual(signer, report.mrSigner) else {
            throw AttestationError(.qeIdentityMismatch, "QE MRSIGNER \(Hex.encode(report.mrSigner)) is not the identity's \(identity.mrsigner.lowercased())")
        }
        guard Int(report.isvProdID) == identity.isvprodid else {
            throw AttestationError(.qeIdentityMismatch, "QE ISVPRODID \(report.isvProdID) is not the identity's \(identity.isvprodid)")
        }
        let misc = withUnsafeBytes(of: report.miscSelect.bigEndian) { Array($0) }
        guard hexEqualMasked(misc, expected: identity.miscselect, mask: identity.miscselectMask) else {
            throw AttestationError(.qeIdentityMismatch, "QE MISCSELECT \(Hex.encode(misc)) does not match \(identity.miscselect) under mask \(identity.miscselectMask)")
        }
        guard hexEqualMasked(report.attributes, expected: identity.attributes, mask: identity.attributesMask) else {
            throw AttestationError(
                .qeIdentityMismatch, "QE ATTRIBUTES \(Hex.encode(report.attributes)) do not match \(identity.attributes) under mask \(identity.attributesMask)")
        }
        for level in identity.tcbLevels where Int(report.isvSVN) >= level.tcb.isvsvn {
            return try status(level.tcbStatus, "QE identity")
        }
        return .notSupported
    }

    static func evaluate(info: PCSTCBInfo, pck: PCKCertificateInfo, body: TDReportBody, qeStatus: TDXTCBStatus?) throws(AttestationError)
        -> TDXTCBEvaluation
    {
        guard info.id == "TDX", info.version == 3 else {
            throw AttestationError(.collateralMismatch, "TCB info is id \(info.id ?? "none") version \(info.version), expected TDX version 3")
        }
        guard Hex.decode(info.fmspc) == pck.fmspc else {
            throw AttestationError(.collateralMismatch, "TCB info FMSPC \(info.fmspc.lowercased()) is not the PCK certificate's \(Hex.encode(pck.fmspc))")
        }
        guard Hex.decode(info.pceId) == pck.pceID else {
            throw AttestationError(.collateralMismatch, "TCB info PCE-ID \(info.pceId) is not the PCK certificate's \(Hex.encode(pck.pceID))")
        }
        let svn = body.teeTCBSVN
        let moduleVersion = svn[1]

        // TDX module identity.
        var moduleStatus: TDXTCBStatus?
        if moduleVersion > 0 {
            let id = String(format: "TDX_%02X", moduleVersion)
            guard let identity = info.tdxModuleIdentities?.first(where: { $0.id.uppercased() == id }) else {
                moduleStatus = .notSupported
                return combine(platform: .notSupported, level: nil, module: moduleStatus, qe: qeStatus)
            }
            try checkModule(body: body, mrsigner: identity.mrsigner, attributes: identity.attributes, mask: identity.attributesMask)
            moduleStatus = .notSupported
            for level in identity.tcbLevels where Int(svn[0]) >= level.tcb.isvsvn {
                moduleStatus = try status(level.tcbStatus, "TDX module identity \(id)")
                break
            }
        } else if let module = info.tdxModule {
            try checkModule(body: body, mrsigner: module.mrsigner, attributes: module.attributes, mask: module.attributesMask)
        }

        // Platform level: the first level the PCK and the TEE TCB SVNs reach.
        let tdxStart = moduleVersion > 0 ? 2 : 0
        for level in info.tcbLevels {
            let sgx = level.tcb.sgxtcbcomponents
            guard sgx.count == 16, let tdx = level.tcb.tdxtcbcomponents, tdx.count == 16 else {
                throw AttestationError(.malformedCollateral, "TCB info level \(level.tcbDate) does not have 16 SGX and 16 TDX components")
            }
            let sgxOK = (0..<16).allSatisfy { pck.sgxTCBComponents[$0] >= sgx[$0].svn }
            let tdxOK = (tdxStart..<16).allSatisfy { Int(svn[$0]) >= tdx[$0].svn }
            if sgxOK && pck.pceSVN >= level.tcb.pcesvn && tdxOK {
                return combine(platform: try status(level.tcbStatus, "TCB info"), level: level, module: moduleStatus, qe: qeStatus)
            }
        }
        return combine(platform: .notSupported, level: nil, module: moduleStatus, qe: qeStatus)
    }

    private static func checkModule(body: TDReportBody, mrsigner: String, attributes: String, mask: String) throws(AttestationError) {
        guard let expected = Hex.decode(mrsigner), constantTimeEqual(expected, body.mrSignerSeam) else {
            throw AttestationError(.collateralMismatch, "MRSIGNERSEAM \(Hex.abbreviated(body.mrSignerSeam)) is not the TDX module identity's \(mrsigner.lowercased())")
        }
        guard hexEqualMasked(body.seamAttributes, expected: attributes, mask: mask) else {
            throw AttestationError(.collateralMismatch, "SEAMATTRIBUTES \(Hex.encode(body.seamAttributes)) do not match \(attributes) under mask \(mask)")
        }
    }

    /// Folds the TDX module and QE statuses into the platform status (QVL's convergence rules).
    static func combine(platform: TDXTCBStatus, level: PCSTCBInfo.Level?, module: TDXTCBStatus?, qe: TDXTCBStatus?) -> TDXTCBEvaluation {
        var result = platform
        for other in [module, qe].compactMap({ $0 }) {
            switch other {
            case .notSupported: result = .notSupported
            case .revoked: if result != .notSupported { result = .revoked }
            case .outOfDate, .outOfDateConfigurationNeeded:
                switch result {
                case .upToDate, .swHardeningNeeded: result = .outOfDate
                case .configurationNeeded, .configurationAndSWHardeningNeeded: result = .outOfDateConfigurationNeeded
                default: break
                }
            default: break
            }
        }
        return TDXTCBEvaluation(
            status: result, platformStatus: platform, tdxModuleStatus: module, qeStatus: qe, tcbDate: level?.tcbDate,
            advisoryIDs: level?.advisoryIDs ?? [])
    }
}
