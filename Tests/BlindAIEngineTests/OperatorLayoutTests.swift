import BlindAIGraph
@testable import BlindAIOperators
import Testing

/// Each operator type is registered by exactly one family (one file of BlindAIOperators), and the families together
/// are the standard registry. scripts/check-operator-layout.py checks the files' side: one registration function
/// per file, each listed in `StandardOperators.families`.
@Suite struct OperatorLayoutTests {
    @Test func everyOperatorTypeIsRegisteredByExactlyOneFamily() {
        var owner: [String: String] = [:]
        var clashes: [String] = []
        for family in StandardOperators.families {
            var r = OperatorRegistry()
            family.register(&r)
            #expect(!r.operatorNames.isEmpty, "family \(family.name) registers nothing")
            for name in r.operatorNames {
                if let other = owner[name] {
                    clashes.append("\(name): \(other) and \(family.name)")
                } else {
                    owner[name] = family.name
                }
            }
        }
        #expect(clashes.isEmpty, "registered by two families: \(clashes)")
        #expect(Set(owner.keys) == Set(StandardOperators.registry.operatorNames))
    }

    @Test func familyNamesAreUnique() {
        let names = StandardOperators.families.map(\.name)
        #expect(Set(names).count == names.count)
    }
}
