import BlindAITensor

extension StandardOperators {
    static func registerLinearAlgebra(_ r: inout OperatorRegistry) {
    }
}
