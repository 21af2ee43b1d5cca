import BlindAITensor

extension StandardOperators {
    static func registerRecurrent(_ r: inout OperatorRegistry) {
    }
}
