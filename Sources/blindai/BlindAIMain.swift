import ArgumentParser
import BlindAICommands

/// Thin main: the command tree lives in BlindAICommands.
@main
struct BlindAIMain: AsyncParsableCommand {
    static let configuration = BlindAICommand.configuration

    static func main() async {
        // Before any other thread exists: the allocator settings only hold for threads that allocate after them.
        BlindAICommand.prepareProcess()
        await main(nil)
    }
}
