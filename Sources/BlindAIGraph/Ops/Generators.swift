import BlindAITensor

extension StandardOperators {
    static func registerGenerators(_ r: inout OperatorRegistry) {
    }
}
