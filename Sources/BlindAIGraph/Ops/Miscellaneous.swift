import BlindAITensor

extension StandardOperators {
    static func registerMiscellaneous(_ r: inout OperatorRegistry) {
    }
}
