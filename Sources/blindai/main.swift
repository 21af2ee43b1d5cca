import BlindAICommands

await BlindAICommand.main()
