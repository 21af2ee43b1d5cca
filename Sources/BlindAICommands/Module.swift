import ArgumentParser
import BlindAIServer

/// The `blindai` command line.
public struct BlindAICommand: AsyncParsableCommand {
    public static let configuration = CommandConfiguration(
        commandName: "blindai",
        abstract: "BlindAI: confidential ONNX inference.",
        subcommands: [RunCommand.self, ConformanceCommand.self, BenchCommand.self, ServeCommand.self, AttestationCommand.self,
                      AttestCommand.self, UploadCommand.self, PredictCommand.self, ModelsCommand.self, UnloadCommand.self, ReceiptCommand.self,
                      DemoCommand.self]
    )
    public init() {}

    /// Process-wide settings for every `blindai` command, applied by the executable's main before any other
    /// thread exists: the allocator set up for a long-running server (`ServerLauncher.configureAllocator`),
    /// also for `bench` and `run`, so that the engine alone and the server are measured under the same allocator.
    public static func prepareProcess() {
        ServerLauncher.configureAllocator()
    }
}
