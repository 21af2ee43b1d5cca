import BlindAITensor

extension StandardOperators {
    static func registerQuantization(_ r: inout OperatorRegistry) {
    }
}
