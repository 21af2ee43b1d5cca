import ArgumentParser
import BlindAICommands

/// Thin main: the command tree lives in BlindAICommands.
@main
struct BlindAIMain: AsyncParsableCommand {
    static let configuration = BlindAICommand.configuration
}
