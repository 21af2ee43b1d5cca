import BlindAITensor

extension StandardOperators {
    static func registerControlFlow(_ r: inout OperatorRegistry) {
    }
}
