// Module BlindAIAttestation
