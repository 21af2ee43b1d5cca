import ArgumentParser
import BlindAICommands

// Thin main: parse, then run the chosen (possibly asynchronous) subcommand.
do {
    var command = try await BlindAICommand.asyncParseAsRoot()
    if var asyncCommand = command as? AsyncParsableCommand {
        try await asyncCommand.run()
    } else {
        try command.run()
    }
} catch {
    BlindAICommand.exit(withError: error)
}
