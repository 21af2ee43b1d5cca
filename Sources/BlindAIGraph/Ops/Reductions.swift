import BlindAITensor

extension StandardOperators {
    static func registerReductions(_ r: inout OperatorRegistry) {
    }
}
