import BlindAITensor

extension StandardOperators {
    static func registerShapeOps(_ r: inout OperatorRegistry) {
    }
}
