import BlindAITensor
import BlindAIKernels
import BlindAIGraph

/// The operators this engine implements. Each family is one file of this module (onnx/, com.microsoft/, ai.onnx.ml/)
/// with one `register...` function; `registry` calls them all. No operator type is registered by two families
/// (OperatorLayoutTests), and scripts/check-operator-layout.py checks that each file has its one function, listed here.
public enum StandardOperators {
    /// The registry of every standard operator (default domain, ai.onnx.ml, ai.onnx.preview and com.microsoft).
    public static let registry: OperatorRegistry = {
        var r = OperatorRegistry()
        for family in families { family.register(&r) }
        return r
    }()

    /// Every family, by name, with its registration function.
    static var families: [(name: String, register: (inout OperatorRegistry) -> Void)] {
        [
            ("Elementwise", registerElementwise),
            ("Cast", registerCast),
            ("Core", registerCore),
            ("ShapeOps", registerShapeOps),
            ("Indexing", registerIndexing),
            ("Reductions", registerReductions),
            ("Normalization", registerNormalization),
            ("LinearAlgebra", registerLinearAlgebra),
            ("Convolution", registerConvolution),
            ("Pooling", registerPooling),
            ("Resize", registerResize),
            ("Quantization", registerQuantization),
            ("ControlFlow", registerControlFlow),
            ("Recurrent", registerRecurrent),
            ("Random", registerRandom),
            ("Einsum", registerEinsum),
            ("Losses", registerLosses),
            ("Activations", registerActivations),
            ("NonMaxSuppression", registerNonMaxSuppression),
            ("Unique", registerUnique),
            ("Strings", registerStrings),
            ("Attention", registerAttention),
            ("ContribAttention", registerContribAttention),
            ("FusedActivations", registerFusedActivations),
            ("EmbedLayerNormalization", registerEmbedLayerNormalization),
            ("GatherBlockQuantized", registerGatherBlockQuantized),
            ("MatMulNBits", registerMatMulNBits),
            ("ML", registerML),
            ("Signal", registerSignal)
        ]
    }
}
