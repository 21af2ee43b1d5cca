import BlindAITensor

extension StandardOperators {
    static func registerSignal(_ r: inout OperatorRegistry) {
    }
}
