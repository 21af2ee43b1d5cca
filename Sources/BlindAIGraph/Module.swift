// Module BlindAIGraph
