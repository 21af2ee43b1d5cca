import BlindAITensor

extension StandardOperators {
    static func registerPooling(_ r: inout OperatorRegistry) {
    }
}
