// Module BlindAITensor
