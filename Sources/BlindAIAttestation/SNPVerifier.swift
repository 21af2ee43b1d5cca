import Crypto
import Foundation
import SwiftASN1

/// The common-name prefix that marks a simulated (non-AMD) root. Such a root is never pinned and is only
/// accepted when the caller explicitly allows simulated evidence.
public let simulatedRootCommonNamePrefix = "BlindAI Simulated"

/// The AMD roots (ARK) and intermediates (ASK for VCEKs, ASVK for VLEKs) per product.
public struct SNPTrustAnchors: Sendable {
    public struct ProductRoots: Sendable {
        public let product: SNPProduct
        public let ark: DERCertificate
        public let ask: DERCertificate
        public let asvk: DERCertificate
    }

    public let roots: [ProductRoots]

    public init(roots: [ProductRoots]) { self.roots = roots }

    /// The ARK/ASK/ASVK of Milan, Genoa and Turin shipped with the package.
    public static let amd: SNPTrustAnchors = {
        func load(_ product: SNPProduct, _ ark: String, _ ask: String, _ asvk: String) -> ProductRoots {
            do {
                return ProductRoots(
                    product: product, ark: try DERCertificate(pemEncoded: ark),
                    ask: try DERCertificate(pemEncoded: ask), asvk: try DERCertificate(pemEncoded: asvk))
            } catch {
                preconditionFailure("pinned AMD \(product) roots do not parse: \(error)")
            }
        }
        return SNPTrustAnchors(roots: [
            load(.milan, PinnedRoots.amdMilanArk, PinnedRoots.amdMilanAsk, PinnedRoots.amdMilanAsvk),
            load(.genoa, PinnedRoots.amdGenoaArk, PinnedRoots.amdGenoaAsk, PinnedRoots.amdGenoaAsvk),
            load(.turin, PinnedRoots.amdTurinArk, PinnedRoots.amdTurinAsk, PinnedRoots.amdTurinAsvk),
        ])
    }()

    public func restricted(to products: Set<SNPProduct>) -> SNPTrustAnchors {
        SNPTrustAnchors(roots: roots.filter { products.contains($0.product) })
    }
}

/// Where the chain of a validated report ends.
public enum RootKind: Sendable, Equatable, Codable {
    /// A vendor root pinned in the package (AMD ARK or Intel SGX Root CA).
    case vendor
    /// A simulated root, accepted only because the caller allowed simulated evidence.
    case simulated
}

/// An SNP report whose signature, certificate chain, validity dates and VCEK/VLEK bindings were checked.
/// Only `SNPVerifier` creates it.
public struct ValidatedSNPReport: Sendable {
    public let report: SNPReport
    public let product: SNPProduct
    public let signer: SNPSigner
    public let reportedTCB: SNPTCB
    public let rootKind: RootKind
    public let endorsementKey: DERCertificate
    /// SHA-256 of the root's SubjectPublicKeyInfo (lowercase hex): what a policy pins for a simulated root.
    public let rootKeySHA256: String
    /// The VLEK's cspID extension (the cloud provider the VLEK was issued to); nil for VCEK-signed reports.
    public let cspID: String?
    /// An AMD CRL signed by the root was checked and revokes neither the ASK/ASVK nor the ARK.
    public let checkedCRL: Bool
    public let verificationTime: Date

    fileprivate init(
        report: SNPReport, product: SNPProduct, signer: SNPSigner, rootKind: RootKind, root: DERCertificate, endorsementKey: DERCertificate,
        cspID: String?, checkedCRL: Bool, time: Date
    ) {
        self.report = report
        self.product = product
        self.signer = signer
        self.reportedTCB = report.reportedTCB(for: product)
        self.rootKind = rootKind
        self.rootKeySHA256 = Hex.encode(Array(SHA256.hash(data: root.subjectPublicKeyInfo)))
        self.endorsementKey = endorsementKey
        self.cspID = cspID
        self.checkedCRL = checkedCRL
        self.verificationTime = time
    }
}

/// Verifies SEV-SNP reports: report signature by the VCEK/VLEK, VEK <- ASK/ASVK <- ARK (RSASSA-PSS),
/// ARK pinned per product, validity at an injected time, TCB and hardware-ID extensions against the report.
public struct SNPVerifier: Sendable {
    public var anchors: SNPTrustAnchors
    public var allowSimulated: Bool

    public init(anchors: SNPTrustAnchors = .amd, allowSimulated: Bool = false) {
        self.anchors = anchors
        self.allowSimulated = allowSimulated
    }

    /// - Parameters:
    ///   - report: the 1184-byte report.
    ///   - endorsementKey: the VCEK or VLEK certificate (DER or PEM).
    ///   - chain: certificates supplied with the evidence (ASK/ASVK and ARK, DER or PEM). If present they must
    ///     chain to a pinned ARK (or, only with `allowSimulated`, a simulated root); otherwise the pinned
    ///     intermediates are used.
    ///   - crl: AMD's CRL for the chain (KDS `/vcek/v1/<product>/crl` or `/vlek/v1/<product>/crl`, DER), when the
    ///     evidence or a collateral directory carries one: it must be signed by the root, be current at `time`, and
    ///     revoke neither the ASK/ASVK nor the ARK.
    ///   - time: the verification time.
    public func verify(report reportBytes: [UInt8], endorsementKey: [UInt8], chain: [[UInt8]] = [], crl: [UInt8]? = nil, at time: Date)
        throws(AttestationError) -> ValidatedSNPReport
    {
        let report = try SNPReport(bytes: reportBytes)
        let vek = try DERCertificate(bytes: endorsementKey)
        var supplied = [DERCertificate]()
        for c in chain { supplied.append(try DERCertificate(bytes: c)) }

        guard let signer = report.signer else {
            throw AttestationError(.malformedEvidence, "SNP report signer_info \(String(report.signerInfo, radix: 16)) names an unknown signing key")
        }
        let (intermediate, root, rootKind, chainProduct) = try resolveChain(vek: vek, signer: signer, supplied: supplied)

        // Validity of every certificate at the verification time.
        for cert in [vek, intermediate, root] { try cert.checkValidity(at: time) }

        // The product the chain belongs to must match the CPU the report came from.
        if let cpuProduct = report.cpuidProduct, cpuProduct != chainProduct {
            throw AttestationError(
                .productMismatch,
                "report CPUID family 0x\(String(report.cpuidFamily, radix: 16)) model 0x\(String(report.cpuidModel, radix: 16)) is \(cpuProduct.rawValue), but the certificate chain is \(chainProduct.rawValue)")
        }

        // Report signature: ECDSA P-384 / SHA-384 over [0, 0x2A0).
        guard !report.isChipKeyMasked else {
            throw AttestationError(
                .reportSignatureInvalid, "SNP report signer_info 0x\(String(report.signerInfo, radix: 16)) has MASK_CHIP_KEY (bit 1) set: the firmware did not sign it")
        }
        guard case .p384(let key) = vek.publicKey else {
            throw AttestationError(.malformedCertificate, "\(signer.rawValue) key is \(vek.publicKey.name), expected EC P-384")
        }
        guard let sig = try? P384.Signing.ECDSASignature(rawRepresentation: report.signatureR + report.signatureS),
            key.isValidSignature(sig, for: SHA384.hash(data: report.rawBytes[SNPReport.signedRange]))
        else {
            throw AttestationError(.reportSignatureInvalid, "SNP report signature does not verify with the \(signer.rawValue) '\(vek.displayName)'")
        }

        try checkTCBExtensions(vek: vek, report: report, product: chainProduct)
        if signer == .vcek { try checkHardwareID(vek: vek, report: report, product: chainProduct) }
        let cspID = signer == .vlek ? try Self.cspID(of: vek) : nil

        if let crl {
            let list = try DERCertificateRevocationList(derEncoded: crl)
            guard list.issuerBytes == root.subjectBytes else {
                throw AttestationError(
                    .crlInvalid, "AMD CRL issuer '\(list.issuerCommonName ?? "?")' is not the chain's root '\(root.displayName)'")
            }
            try list.check(issuer: root, at: time, certificates: [intermediate, root], name: "AMD CRL of '\(root.displayName)'")
        }

        return ValidatedSNPReport(
            report: report, product: chainProduct, signer: signer, rootKind: rootKind, root: root, endorsementKey: vek, cspID: cspID,
            checkedCRL: crl != nil, time: time)
    }

    static let cspIDOID = "1.3.6.1.4.1.3704.1.5"

    /// The VLEK's cspID (an IA5String naming the cloud provider).
    static func cspID(of vlek: DERCertificate) throws(AttestationError) -> String? {
        guard let value = vlek.extensionValue(cspIDOID) else { return nil }
        do {
            return String(try ASN1IA5String(derEncoded: value[...]))
        } catch {
            throw AttestationError(.malformedCertificate, "VLEK cspID extension (\(cspIDOID)) is not a DER IA5String")
        }
    }

    private func resolveChain(vek: DERCertificate, signer: SNPSigner, supplied: [DERCertificate])
        throws(AttestationError) -> (DERCertificate, DERCertificate, RootKind, SNPProduct)
    {
        let suppliedIntermediates = supplied.filter { !$0.isSelfIssued }
        let suppliedRoots = supplied.filter { $0.isSelfIssued }
        let pinnedIntermediates = anchors.roots.map { signer == .vcek ? $0.ask : $0.asvk }
        let candidates = suppliedIntermediates.isEmpty ? pinnedIntermediates : suppliedIntermediates

        let named = candidates.filter { $0.subjectBytes == vek.issuerBytes }
        guard !named.isEmpty else {
            throw AttestationError(
                .untrustedRoot,
                "no trusted \(signer == .vcek ? "ASK" : "ASVK") named '\(vek.issuerCommonName ?? "?")' issued the \(signer.rawValue); trusted products: \(anchors.roots.map(\.product.rawValue).joined(separator: ", "))")
        }
        guard let intermediate = named.first(where: { vek.isSigned(by: $0) }) else {
            throw AttestationError(.certificateSignatureInvalid, "\(signer.rawValue) signature does not verify under '\(named[0].displayName)' (RSASSA-PSS SHA-384)")
        }
        if signer == .vcek, intermediate.subjectCommonName?.contains("VLEK") == true {
            throw AttestationError(.signerMismatch, "report says VCEK but the endorsement key was issued by '\(intermediate.displayName)'")
        }
        if signer == .vlek, intermediate.subjectCommonName?.contains("VLEK") != true, !(intermediate.subjectCommonName ?? "").hasPrefix(simulatedRootCommonNamePrefix) {
            throw AttestationError(.signerMismatch, "report says VLEK but the endorsement key was issued by '\(intermediate.displayName)'")
        }

        let pinnedRoots = anchors.roots.map(\.ark)
        let rootCandidates = (suppliedRoots + pinnedRoots).filter { $0.subjectBytes == intermediate.issuerBytes }
        guard !rootCandidates.isEmpty else {
            throw AttestationError(.untrustedRoot, "no root named '\(intermediate.issuerCommonName ?? "?")' issued '\(intermediate.displayName)'")
        }
        guard let root = rootCandidates.first(where: { intermediate.isSigned(by: $0) }) else {
            throw AttestationError(.certificateSignatureInvalid, "'\(intermediate.displayName)' signature does not verify under '\(rootCandidates[0].displayName)'")
        }
        guard root.isSigned(by: root) else {
            throw AttestationError(.certificateSignatureInvalid, "root '\(root.displayName)' self-signature does not verify")
        }
        if let pinned = anchors.roots.first(where: { $0.ark.derBytes == root.derBytes }) {
            // A supplied intermediate must name the same product as the pinned root it chains to.
            return (intermediate, root, .vendor, pinned.product)
        }
        if (root.subjectCommonName ?? "").hasPrefix(simulatedRootCommonNamePrefix) {
            guard allowSimulated else {
                throw AttestationError(
                    .simulatedRootNotAllowed, "the chain ends at the simulated root '\(root.displayName)' and simulated evidence is not allowed")
            }
            guard let product = SNPProduct.fromCommonName(intermediate.subjectCommonName) ?? SNPProduct.fromCommonName(root.subjectCommonName) else {
                throw AttestationError(.malformedCertificate, "simulated chain '\(intermediate.displayName)' does not name a product")
            }
            return (intermediate, root, .simulated, product)
        }
        throw AttestationError(
            .untrustedRoot,
            "the chain ends at '\(root.displayName)' (SHA-256 \(Hex.abbreviated(Array(SHA256.hash(data: root.derBytes))))), which is not a pinned AMD ARK")
    }

    static let bootloaderOID = "1.3.6.1.4.1.3704.1.3.1"
    static let teeOID = "1.3.6.1.4.1.3704.1.3.2"
    static let snpOID = "1.3.6.1.4.1.3704.1.3.3"
    static let microcodeOID = "1.3.6.1.4.1.3704.1.3.8"
    static let fmcOID = "1.3.6.1.4.1.3704.1.3.9"
    static let hwIDOID = "1.3.6.1.4.1.3704.1.4"

    private func checkTCBExtensions(vek: DERCertificate, report: SNPReport, product: SNPProduct) throws(AttestationError) {
        let tcb = report.reportedTCB(for: product)
        var fields: [(String, UInt8, String)] = [
            (SNPVerifier.bootloaderOID, tcb.bootloader, "bootloader"), (SNPVerifier.teeOID, tcb.tee, "tee"),
            (SNPVerifier.snpOID, tcb.snp, "snp"), (SNPVerifier.microcodeOID, tcb.microcode, "microcode"),
        ]
        if product == .turin { fields.append((SNPVerifier.fmcOID, tcb.fmc ?? 0, "fmc")) }
        for (oid, reported, name) in fields {
            guard let value = vek.extensionValue(oid) else {
                throw AttestationError(.tcbMismatch, "endorsement key has no \(name) SPL extension (\(oid))")
            }
            let certified: Int
            do { certified = try Int(derEncoded: value[...]) } catch {
                throw AttestationError(.malformedCertificate, "\(name) SPL extension (\(oid)) is not a DER INTEGER")
            }
            guard certified == Int(reported) else {
                throw AttestationError(.tcbMismatch, "report \(name) SVN \(reported) differs from the endorsement key's \(name) SPL \(certified)")
            }
        }
    }

    private func checkHardwareID(vek: DERCertificate, report: SNPReport, product: SNPProduct) throws(AttestationError) {
        guard let raw = vek.extensionValue(SNPVerifier.hwIDOID) else {
            throw AttestationError(.chipIDMismatch, "VCEK has no hwID extension (\(SNPVerifier.hwIDOID))")
        }
        let expectedLength = product == .turin ? 8 : 64
        let hwid: [UInt8]
        if raw.count == expectedLength {
            hwid = raw
        } else if raw.count == expectedLength + 2, raw[0] == 0x04, Int(raw[1]) == expectedLength {
            hwid = Array(raw[2...])
        } else {
            throw AttestationError(.malformedCertificate, "VCEK hwID extension is \(raw.count) bytes; expected \(expectedLength) raw or OCTET STRING-wrapped")
        }
        if report.isChipIDMasked { return }
        let reportPrefix = Array(report.chipID.prefix(expectedLength))
        guard constantTimeEqual(reportPrefix, hwid), report.chipID.dropFirst(expectedLength).allSatisfy({ $0 == 0 }) else {
            throw AttestationError(.chipIDMismatch, "report chip_id \(Hex.abbreviated(report.chipID)) differs from the VCEK hwID \(Hex.abbreviated(hwid))")
        }
    }
}
