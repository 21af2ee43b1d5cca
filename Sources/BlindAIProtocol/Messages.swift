import Foundation

// Wire types of the Open Inference Protocol v2 over HTTP/REST, plus the repository and upload extensions.
// Field names follow the specification exactly (snake_case on the wire).

/// `GET /v2`
public struct ServerMetadataResponse: Codable, Sendable, Equatable {
    public var name: String
    public var version: String
    public var extensions: [String]

    public init(name: String, version: String, extensions: [String]) {
        self.name = name
        self.version = version
        self.extensions = extensions
    }
}

/// An input or output of a model, as `GET /v2/models/{name}` describes it. `-1` marks a dynamic dimension.
public struct TensorMetadata: Codable, Sendable, Equatable {
    public var name: String
    public var datatype: String
    public var shape: [Int64]

    public init(name: String, datatype: String, shape: [Int64]) {
        self.name = name
        self.datatype = datatype
        self.shape = shape
    }
}

/// `GET /v2/models/{name}[/versions/{version}]`
public struct ModelMetadataResponse: Codable, Sendable, Equatable {
    public var name: String
    public var versions: [String]?
    public var platform: String
    public var inputs: [TensorMetadata]
    public var outputs: [TensorMetadata]
    public var parameters: Parameters?

    public init(name: String, versions: [String]?, platform: String, inputs: [TensorMetadata], outputs: [TensorMetadata], parameters: Parameters? = nil) {
        self.name = name
        self.versions = versions
        self.platform = platform
        self.inputs = inputs
        self.outputs = outputs
        self.parameters = parameters
    }
}

/// A tensor of an inference request or response: the OIP's `$request_input` and `$response_output` have the
/// same fields.
public struct InferenceTensor: Codable, Sendable, Equatable {
    public var name: String
    public var shape: [Int64]
    public var datatype: String
    public var parameters: Parameters?
    /// Absent when the tensor travels as binary data (`parameters.binary_data_size`).
    public var data: TensorData?

    public init(name: String, shape: [Int64], datatype: String, parameters: Parameters? = nil, data: TensorData? = nil) {
        self.name = name
        self.shape = shape
        self.datatype = datatype
        self.parameters = parameters
        self.data = data
    }
}

/// One input tensor of an inference request.
public typealias RequestInput = InferenceTensor
/// One output tensor of an inference response.
public typealias ResponseOutput = InferenceTensor

/// An output the client asks for.
public struct RequestOutput: Codable, Sendable, Equatable {
    public var name: String
    public var parameters: Parameters?

    public init(name: String, parameters: Parameters? = nil) {
        self.name = name
        self.parameters = parameters
    }
}

/// `POST /v2/models/{name}[/versions/{version}]/infer` request (the JSON part).
public struct InferenceRequest: Codable, Sendable, Equatable {
    public var id: String?
    public var parameters: Parameters?
    public var inputs: [RequestInput]
    public var outputs: [RequestOutput]?

    public init(id: String? = nil, parameters: Parameters? = nil, inputs: [RequestInput], outputs: [RequestOutput]? = nil) {
        self.id = id
        self.parameters = parameters
        self.inputs = inputs
        self.outputs = outputs
    }
}

/// `POST /v2/models/{name}[/versions/{version}]/infer` response (the JSON part).
public struct InferenceResponse: Codable, Sendable, Equatable {
    public var modelName: String
    public var modelVersion: String?
    public var id: String?
    public var parameters: Parameters?
    public var outputs: [ResponseOutput]

    enum CodingKeys: String, CodingKey {
        case modelName = "model_name"
        case modelVersion = "model_version"
        case id, parameters, outputs
    }

    public init(modelName: String, modelVersion: String?, id: String?, parameters: Parameters? = nil, outputs: [ResponseOutput]) {
        self.modelName = modelName
        self.modelVersion = modelVersion
        self.id = id
        self.parameters = parameters
        self.outputs = outputs
    }
}

/// The body of every error response.
public struct ErrorResponse: Codable, Sendable, Equatable {
    public var error: String

    public init(error: String) {
        self.error = error
    }
}

/// `POST /v2/repository/index` request (optional body).
public struct RepositoryIndexRequest: Codable, Sendable, Equatable {
    /// Only list models that are ready.
    public var ready: Bool?

    public init(ready: Bool? = nil) {
        self.ready = ready
    }
}

/// One entry of the `POST /v2/repository/index` response.
public struct RepositoryIndexEntry: Codable, Sendable, Equatable {
    public var name: String
    public var version: String?
    /// `READY` or `LOADING`.
    public var state: String
    public var reason: String

    public init(name: String, version: String?, state: String, reason: String) {
        self.name = name
        self.version = version
        self.state = state
        self.reason = reason
    }
}

/// `POST /v2/repository/models/{name}/load` and `/unload` request (optional body). The model may be given
/// inline as Triton's clients do: `parameters["file:1/model.onnx"]` holds the base64 of the ONNX file.
public struct RepositoryModelRequest: Codable, Sendable, Equatable {
    public var parameters: Parameters?

    public init(parameters: Parameters? = nil) {
        self.parameters = parameters
    }
}

/// Answer to a successful upload (`PUT /v2/repository/models/{name}`) or inline load.
public struct ModelUploadResponse: Codable, Sendable, Equatable {
    public var name: String
    public var version: String
    /// Lowercase hex SHA-256 of the ONNX bytes as received.
    public var sha256: String
    public var size: Int
    /// Whether any API key may run the model (otherwise only its owner and admin keys).
    public var shared: Bool
    /// Whether the upload replaced an earlier version of the same name.
    public var replaced: Bool
    public var inputs: [TensorMetadata]
    public var outputs: [TensorMetadata]

    public init(name: String, version: String, sha256: String, size: Int, shared: Bool, replaced: Bool, inputs: [TensorMetadata], outputs: [TensorMetadata]) {
        self.name = name
        self.version = version
        self.sha256 = sha256
        self.size = size
        self.shared = shared
        self.replaced = replaced
        self.inputs = inputs
        self.outputs = outputs
    }
}

/// `POST /v2/attestation` request: a fresh client nonce (base64 of exactly 32 bytes).
public struct AttestationRequest: Codable, Sendable, Equatable {
    public var nonce: String

    public init(nonce: String) {
        self.nonce = nonce
    }

    public static let nonceLength = 32
}
