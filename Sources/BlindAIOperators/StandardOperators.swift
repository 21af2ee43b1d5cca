import BlindAITensor
import BlindAIKernels
import BlindAIGraph

/// The operators this engine implements, registered by family (one file per family in Ops/).
public enum StandardOperators {
    /// The registry of every standard operator (default domain, ai.onnx.ml and com.microsoft).
    public static let registry: OperatorRegistry = {
        var r = OperatorRegistry()
        registerElementwise(&r)
        registerCast(&r)
        registerCore(&r)
        registerShapeOps(&r)
        registerIndexing(&r)
        registerReductions(&r)
        registerNormalization(&r)
        registerLinearAlgebra(&r)
        registerConvolution(&r)
        registerPooling(&r)
        registerResize(&r)
        registerQuantization(&r)
        registerControlFlow(&r)
        registerRecurrent(&r)
        registerGenerators(&r)
        registerEinsum(&r)
        registerLosses(&r)
        registerActivations(&r)
        registerNonMaxSuppression(&r)
        registerUnique(&r)
        registerStrings(&r)
        registerAttention(&r)
        registerContribAttention(&r)
        registerFusedActivations(&r)
        registerEmbedLayerNormalization(&r)
        registerML(&r)
        registerSignal(&r)
        return r
    }()
}
