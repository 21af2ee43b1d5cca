import Foundation
import Testing

@testable import BlindAIAttestation

/// Duplicate JSON members: refused as the Python verifier refuses them (python/src/blindai: `json_no_duplicates`),
/// with the same codes and the same reasons.
@Suite("Duplicate JSON members")
struct StrictJSONTests {
    static let zero96 = String(repeating: "0", count: 96)
    static let mrtd = "91eb2b44d141d4ece09f0c75c2c53d247a3c68edd7fafe8a3520c942a604a407de03ae6dc5f87f27428b2538873118b7"

    func policy(_ json: String) throws -> AttestationPolicy { try AttestationPolicy.load(json: Data(json.utf8)) }

    @Test("a policy with a duplicate member, at any depth, is refused (JSONDecoder would keep one of them)")
    func policyDuplicateMembers() throws {
        let cases: [(json: String, name: String)] = [
            (#"{"allowTLSKeyFromFile":true,"snp":{"anyMeasurement":true},"snp":{"measurements":["\#(Self.zero96)"]}}"#, "snp"),
            (#"{"allowDebug":true,"allowDebug":false,"allowTLSKeyFromFile":true,"snp":{"anyMeasurement":true}}"#, "allowDebug"),
            (#"{"allowDebug":false,"snp":{"anyMeasurement":true},"allow\u0044ebug":true}"#, "allowDebug"),
            (#"{"snp":{"anyMeasurement":true,"minimumTCB":{"snp":1,"snp":0}}}"#, "snp"),
            (#"{"tdx":{"measurements":[{"mrtd":"\#(Self.mrtd)","mrtd":"\#(Self.zero96)"}]}}"#, "mrtd"),
            // Objects are checked as they close, inner before outer, as Python's object_pairs_hook reports them.
            (#"{"tdx":{"anyMeasurement":true},"tdx":{"anyMeasurement":true,"xfams":[{"a":1,"a":2}]}}"#, "a"),
        ]
        for c in cases {
            let e = expectCode(.malformedPolicy) { _ = try policy(c.json) }
            #expect(e?.reason == "policy: the data is not valid JSON (duplicate member \"\(c.name)\")", "\(c.json)")
        }
        // The same name in different objects is no duplicate.
        let p = try policy(#"{"snp":{"anyMeasurement":true,"minimumTCB":{"snp":1}},"tdx":{"anyMeasurement":true}}"#)
        #expect(p.snp?.anyMeasurement == true && p.snp?.minimumTCB?.snp == 1 && p.tdx?.anyMeasurement == true)
    }

    @Test("an evidence bundle with a duplicate member is malformed, before its format is looked at")
    func evidenceDuplicateMembers() throws {
        let e = expectCode(.malformedEvidence) {
            _ = try EvidenceBundle.decode(json: Data(#"{"format":"blindai-evidence/0","format":"blindai-evidence/1","tee":"sev-snp","report":""}"#.utf8))
        }
        #expect(e?.reason == "evidence bundle JSON is invalid: duplicate member \"format\"")
        let crl = expectCode(.malformedEvidence) {
            _ = try EvidenceBundle.decode(
                json: Data(#"{"format":"blindai-evidence/1","tee":"sev-snp","report":"","collateral":{"vcek_crl.der":"AA==","vcek_crl.der":"AQ=="}}"#.utf8))
        }
        #expect(crl?.reason == "evidence bundle JSON is invalid: duplicate member \"vcek_crl.der\"")
        // A bundle as the server encodes it still decodes.
        let bundle = EvidenceBundle(tee: .sevSNP, report: [1, 2, 3], collateral: ["vcek_crl.der": [4]], claims: [5], nonce: [6])
        #expect(try EvidenceBundle.decode(json: try bundle.jsonData()) == bundle)
    }

    @Test("a claims document with a duplicate member does not match")
    func claimsDuplicateMembers() throws {
        let json = #"{"attributes":{"tlsKeyGeneratedInMemory":"false","tlsKeyGeneratedInMemory":"true"},"issuedAt":"2024-01-01T00:00:00Z","tee":"sev-snp","version":1}"#
        let e = expectCode(.claimsDocumentMismatch) { _ = try ClaimsDocument.decode(Array(json.utf8)) }
        #expect(e?.reason == "claims document is not valid JSON of version 1: duplicate member \"tlsKeyGeneratedInMemory\"")
        let doc = ClaimsDocument(tee: .tdx, issuedAt: Date(timeIntervalSince1970: 0), attributes: ["tlsKeyGeneratedInMemory": "true"])
        #expect(try ClaimsDocument.decode(try doc.encoded()) == doc)
    }

    @Test("member names are compared as decoded code points, in every encoding Python's json reads")
    func memberNameComparison() {
        #expect(JSONMemberCheck.check(Array(#"{"\ud83d\ude00":1,"😀":2}"#.utf8)) == .duplicate("😀"))
        #expect(JSONMemberCheck.check(Array(#"{"\"":1,"\u0022":2}"#.utf8)) == .duplicate("\""))
        // Canonically equivalent but different code points (é and e + U+0301) are different names, as in Python.
        #expect(JSONMemberCheck.check(Array("{\"\u{E9}\":1,\"e\u{301}\":2}".utf8)) == .unique)
        #expect(JSONMemberCheck.check(Array(#"{"a":{"b":1},"b":[{"a":1}],"c":"\"a\":1,\"a\":2"}"#.utf8)) == .unique)
        var utf16 = [UInt8]()
        for u in #"{"a":1,"a":2}"#.utf16 { utf16 += [UInt8(u >> 8), UInt8(u & 0xFF)] }
        #expect(JSONMemberCheck.check(utf16) == .duplicate("a"))
        #expect(JSONMemberCheck.check([0xEF, 0xBB, 0xBF] + Array(#"{"a":1,"a":2}"#.utf8)) == .duplicate("a"))
        // What cannot be scanned is reported (and refused by the callers even if JSONDecoder reads it).
        if case .unreadable = JSONMemberCheck.check(Array(#"{"a":1,}"#.utf8)) {} else { Issue.record("a trailing comma was scanned") }
        if case .unreadable = JSONMemberCheck.check(Array(String(repeating: "[", count: 600).utf8)) {} else { Issue.record("deep nesting was scanned") }
    }
}
