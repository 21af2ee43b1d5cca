import ArgumentParser

public struct BlindAICommand: AsyncParsableCommand {
    public static let configuration = CommandConfiguration(commandName: "blindai", abstract: "Confidential ONNX inference.")
    public init() {}
}
