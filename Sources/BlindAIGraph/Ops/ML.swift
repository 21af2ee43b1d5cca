import BlindAITensor

extension StandardOperators {
    static func registerML(_ r: inout OperatorRegistry) {
    }
}
