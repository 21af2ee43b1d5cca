@testable import BlindAIGraph
@testable import BlindAIOperators
import BlindAIONNX
import BlindAITensor
import BlindAITestSupport
import Foundation
import Testing

/// Every registered operator, with each integer attribute it reads set to extreme int64 values, over a few input
/// sets including empty tensors at the limits: compiling and running must end in a result or an `EngineError`,
/// never a trap (a trap stops every model of a server). Unlike OperatorFuzzTests, which draws attribute names at
/// random from a shared list, this learns each builder's own attributes (`AttributeProbe`) and tries every one
/// with every extreme value. CI runs it against the debug and the release build.
@Suite struct OperatorAttributeSweepTests {
    static let extremes: [Int] = [Int(Int64.max), Int(Int64.min), 1 << 62, -(1 << 62), Int(Int32.max), 1 << 32, -1, 0]
    static let limits = TensorLimits(maxTensorBytes: 16 << 20, maxTensorElements: 4 << 20)

    /// Values tried for string attributes while discovering a builder's attributes: the enumerations builders
    /// switch on (a builder that refuses a mode stops before reading the attributes after it).
    static let stringCandidates = ["", "NOTSET", "TF", "IDF", "TFIDF", "NONE", "SUM", "AVERAGE", "LOGISTIC", "SOFTMAX",
                                   "BRANCH_LEQ", "DCR", "avg", "max", "constant", "forward", "bidirectional", "half_pixel",
                                   "nearest", "linear", "none", "add", "relu", "tanh", "sigmoid", "stretch", "floor", "LOWER"]

    /// The attributes a builder reads (`AttributeProbe`), found by building it repeatedly and giving each
    /// attribute it asked for a plain value (for strings, the candidate that lets it read the most), so that
    /// builders that stop at a missing or refused attribute reveal the ones after it.
    static func attributesRead(domain: String, op: String, opset: Int) -> [(name: String, kind: AttributeProbe.Kind)] {
        guard let entry = StandardOperators.registry.builder(domain: domain, opType: op, opset: opset) else { return [] }
        func asked(_ attributes: [String: Attribute]) -> [(name: String, kind: AttributeProbe.Kind)] {
            let probe = AttributeProbe()
            var ctx = OpBuildContext(node: Node(name: "n", opType: op, domain: domain, inputs: ["x0", "x1", "x2"], outputs: ["y"],
                                                attributes: attributes),
                                     opset: opset, constantInputs: [],
                                     compileSubgraph: { _ in throw EngineError(.invalidModel, "no subgraph in the sweep") })
            ctx.probe = probe
            _ = try? entry.build(&ctx)
            return probe.asked
        }
        var attributes: [String: Attribute] = [:]
        var found: [(name: String, kind: AttributeProbe.Kind)] = []
        for _ in 0..<8 {
            let new = asked(attributes).filter { a in !found.contains { $0.name == a.name } }
            if new.isEmpty { break }
            for a in new {
                found.append(a)
                // Each attribute takes the value (or absence) that lets the builder read the most attributes.
                let candidates: [Attribute?]
                switch a.kind {
                case .int: candidates = [.int(1), nil]
                case .ints: candidates = [.ints([1]), nil]
                case .float: candidates = [.float(1), nil]
                case .floats: candidates = [.floats([1]), nil]
                case .string: candidates = [nil] + stringCandidates.map { .string($0) }
                case .strings: candidates = [nil, .strings([""])]
                case .tensor, .graph: candidates = [nil]
                }
                var best: (Attribute?, Int) = (nil, -1)
                for candidate in candidates {
                    var trial = attributes
                    trial[a.name] = candidate
                    let n = asked(trial).count
                    if n > best.1 { best = (candidate, n) }
                }
                attributes[a.name] = best.0
            }
        }
        return found
    }

    /// Input sets: (name, tensor, as an initializer).
    static let inputSets: [[(String, Tensor, Bool)]] = [
        [("x0", Tensor(shape: [1, 3, 8, 8], scalars: (0..<192).map { Float($0 % 7) - 3 }), false)],
        [("x0", Tensor(shape: [1, 3, 8, 8], scalars: (0..<192).map { Float($0 % 5) }), false),
         ("x1", Tensor(shape: [2, 3, 3, 3], scalars: (0..<54).map { Float($0 % 3) }), true)],
        [("x0", Tensor(shape: [2, 3, 4], scalars: (0..<24).map { Float($0) }), false),
         ("x1", Tensor(shape: [2], scalars: [Int64(1), 2]), true),
         ("x2", Tensor(scalar: Int64(1)), true)],
        [("x0", try! Tensor(zeros: .float32, shape: [0, 2048, 2048], limits: limits), false),
         ("x1", Tensor(shape: [3], scalars: [Int64.max, 0, -1]), true)],
    ]

    static var operators: [String] {
        StandardOperators.registry.operatorNames.filter { !["If", "Loop", "Scan", "SequenceMap"].contains($0.components(separatedBy: "::").last ?? $0) }
    }

    @Test(arguments: operators)
    func everyIntegerAttributeAtEveryExtreme(_ qualified: String) throws {
        var cases = 0
        defer { if cases > 0 { print("sweep \(qualified): \(cases) models") } }
        let parts = qualified.components(separatedBy: "::")
        let domain = parts[0], op = parts[1]
        let opset = domain.isEmpty ? 21 : 1
        let attributes = Self.attributesRead(domain: domain, op: op, opset: opset).filter { $0.kind == .int || $0.kind == .ints }
        for attribute in attributes {
            for value in Self.extremes {
                for inputs in Self.inputSets {
                    var b = ModelBuilder(opset: Int64(opset))
                    b.importDomain(domain)
                    var feeds: [String: Tensor] = [:]
                    for (name, t, constant) in inputs {
                        if constant {
                            b.initializer(name, t)
                        } else {
                            b.input(name, t.dataType, t.shape.map { $0 })
                            feeds[name] = t
                        }
                    }
                    let a = attribute.kind == .int ? ModelBuilder.intAttribute(attribute.name, value)
                                                   : ModelBuilder.intsAttribute(attribute.name, [value, value])
                    b.node(op, inputs.map(\.0), ["y"], domain: domain, attributes: [a])
                    b.output("y", .float32, [])
                    for optimize in [true, false] {
                        cases += 1
                        do {
                            let m = try ONNXModel(serialized: b.data(), options: PlanOptions(optimize: optimize, limits: Self.limits))
                            _ = try m.run(feeds, context: ExecutionContext(limits: Self.limits))
                        } catch {}
                    }
                }
            }
        }
    }

    /// The probe finds the attributes builders read (so the sweep above is not vacuous).
    @Test func probeFindsEachBuildersAttributes() {
        let conv = Self.attributesRead(domain: "", op: "Conv", opset: 21).map(\.name)
        #expect(["group", "dilations", "pads", "strides", "kernel_shape"].allSatisfy(conv.contains), "\(conv)")
        let tfidf = Self.attributesRead(domain: "", op: "TfIdfVectorizer", opset: 21).map(\.name)
        #expect(["max_skip_count", "ngram_indexes", "min_gram_length"].allSatisfy(tfidf.contains), "\(tfidf)")
        let withInts = Self.operators.filter { q in
            let p = q.components(separatedBy: "::")
            return Self.attributesRead(domain: p[0], op: p[1], opset: p[0].isEmpty ? 21 : 1).contains { $0.kind == .int || $0.kind == .ints }
        }
        #expect(withInts.count > 100, "only \(withInts.count) operators read an integer attribute")
    }
}
