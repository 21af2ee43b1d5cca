import ArgumentParser

/// The `blindai` command line.
public struct BlindAICommand: AsyncParsableCommand {
    public static let configuration = CommandConfiguration(
        commandName: "blindai",
        abstract: "BlindAI: confidential ONNX inference.",
        subcommands: [RunCommand.self, ConformanceCommand.self, BenchCommand.self, ServeCommand.self, AttestationCommand.self,
                      AttestCommand.self, UploadCommand.self, PredictCommand.self, ModelsCommand.self, UnloadCommand.self, DemoCommand.self]
    )
    public init() {}
}
