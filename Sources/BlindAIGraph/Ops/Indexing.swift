import BlindAITensor

extension StandardOperators {
    static func registerIndexing(_ r: inout OperatorRegistry) {
    }
}
