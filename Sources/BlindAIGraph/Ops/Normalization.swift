import BlindAITensor

extension StandardOperators {
    static func registerNormalization(_ r: inout OperatorRegistry) {
    }
}
