import BlindAITensor

extension StandardOperators {
    static func registerConvolution(_ r: inout OperatorRegistry) {
    }
}
