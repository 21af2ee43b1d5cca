import BlindAIConformance
import Foundation
import Testing

/// Whole-model parity against onnxruntime on real architectures (BERT, GPT-2, LSTM/GRU, quantized CNN and BERT,
/// If/Loop, the digits demo MLP): `Fixtures/parity/<model>/` in the ONNX backend-test layout, written by
/// `scripts/make-parity-fixtures.py` and `scripts/train-digits.py` (random weights, onnxruntime outputs).
/// `Fixtures/parity/README.md` lists the models and the operators each one uses.
///
/// Models named in `Fixtures/parity/passing.txt` must pass; the others run as known issues (reported, not failing)
/// until the engine implements their operators. Add a model to `passing.txt` once it passes.
@Suite struct ParityTests {
    static let root: URL = {
        if let bundled = Bundle.module.url(forResource: "Fixtures", withExtension: nil)?.appendingPathComponent("parity"),
           FileManager.default.fileExists(atPath: bundled.path) {
            return bundled
        }
        return URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("Fixtures/parity")
    }()

    static let cases: [String] = ConformanceRunner.discover([root.path]).map(\.lastPathComponent)

    static let mustPass: Set<String> = {
        let text = (try? String(contentsOf: root.appendingPathComponent("passing.txt"), encoding: .utf8)) ?? ""
        return Set(text.split(separator: "\n").compactMap { line in
            let name = line.split(separator: "#", maxSplits: 1, omittingEmptySubsequences: false).first?
                .trimmingCharacters(in: .whitespaces) ?? ""
            return name.isEmpty ? nil : name
        })
    }()

    @Test func fixturesArePresent() throws {
        #expect(Self.cases.count >= 10, "parity fixtures not found under \(Self.root.path)")
        let fm = FileManager.default
        for name in Self.cases {
            let set = Self.root.appendingPathComponent(name).appendingPathComponent("test_data_set_0")
            #expect(fm.fileExists(atPath: set.appendingPathComponent("input_0.pb").path), "\(name): no input_0.pb")
            #expect(fm.fileExists(atPath: set.appendingPathComponent("output_0.pb").path), "\(name): no output_0.pb")
        }
        for name in Self.mustPass {
            #expect(Self.cases.contains(name), "passing.txt names '\(name)', which is not a fixture")
        }
    }

    @Test(arguments: cases, [true, false])
    func matchesOnnxruntime(_ name: String, optimize: Bool) {
        let outcome = ConformanceRunner(optimize: optimize).run(Self.root.appendingPathComponent(name))
        if Self.mustPass.contains(name) {
            #expect(outcome == .passed, "\(name) (optimize: \(optimize)): \(outcome)")
        } else {
            withKnownIssue("\(name) is not in passing.txt yet", isIntermittent: true) {
                #expect(outcome == .passed, "\(name) (optimize: \(optimize)): \(outcome)")
            }
        }
    }
}
