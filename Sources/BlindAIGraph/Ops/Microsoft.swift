import BlindAITensor

extension StandardOperators {
    static func registerMicrosoft(_ r: inout OperatorRegistry) {
    }
}
