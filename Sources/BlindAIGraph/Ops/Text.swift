import BlindAITensor

extension StandardOperators {
    static func registerText(_ r: inout OperatorRegistry) {
    }
}
