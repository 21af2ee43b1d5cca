import BlindAITensor

extension StandardOperators {
    static func registerResize(_ r: inout OperatorRegistry) {
    }
}
