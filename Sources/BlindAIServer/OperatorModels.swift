import BlindAIONNX
import Crypto
import Foundation

/// A model file of the operator's repository (`blindai serve --model-repository DIR`), read and hashed once: the bytes
/// that are hashed are the bytes that are compiled.
public struct OperatorModelFile: Sendable {
    public let name: String
    public let version: Int
    public let data: Data
    /// SHA-256 (lowercase hex) of `data`.
    public let sha256: String
    public let path: String
}

/// The operator's model repository, in Triton's layout or as single files:
///
///     DIR/NAME/VERSION/model.onnx    VERSION a positive integer; the highest version of each NAME is loaded
///     DIR/NAME.onnx                  version 1
///
/// Entries starting with `.` are ignored, and so are a Triton `config.pbtxt` and other files inside `DIR/NAME/`; any
/// other entry of `DIR` is an error (a typo should not silently drop a model).
public enum OperatorModelRepository {
    public static func scan(_ directory: URL, maxModelBytes: Int) throws -> [OperatorModelFile] {
        let fm = FileManager.default
        var isDirectory: ObjCBool = false
        guard fm.fileExists(atPath: directory.path, isDirectory: &isDirectory), isDirectory.boolValue else {
            throw ServerError(.badRequest, "model repository \(directory.path) is not a directory")
        }
        var found: [String: (version: Int, file: URL)] = [:]
        for entry in try fm.contentsOfDirectory(atPath: directory.path).sorted() where !entry.hasPrefix(".") {
            let url = directory.appendingPathComponent(entry)
            isDirectory = false
            guard fm.fileExists(atPath: url.path, isDirectory: &isDirectory) else {
                throw ServerError(.badRequest, "model repository: \(url.path) cannot be read (a dangling link?)")
            }
            let name: String
            let pick: (version: Int, file: URL)
            if isDirectory.boolValue {
                name = entry
                // The highest VERSION directory; like Triton, it must hold model.onnx (no silent fallback).
                let versions = try fm.contentsOfDirectory(atPath: url.path).compactMap { sub -> Int? in
                    guard let v = Int(sub), v > 0, v <= Int(Int32.max), String(v) == sub else { return nil }
                    return v
                }
                guard let v = versions.max() else {
                    throw ServerError(.badRequest, "model repository: \(url.path) has no VERSION directory (a positive integer)")
                }
                let file = url.appendingPathComponent(String(v)).appendingPathComponent("model.onnx")
                guard fm.fileExists(atPath: file.path) else {
                    throw ServerError(.badRequest, "model repository: \(file.path) is missing (the highest version of '\(entry)')")
                }
                pick = (v, file)
            } else if entry.hasSuffix(".onnx") {
                name = String(entry.dropLast(".onnx".count))
                pick = (1, url)
            } else {
                throw ServerError(.badRequest, "model repository: \(url.path) is neither NAME/VERSION/model.onnx nor NAME.onnx")
            }
            guard ModelRepository.isValidName(name) else {
                throw ServerError(.badRequest, "model repository: '\(name)' is not a valid model name (1 to 128 characters of A-Z a-z 0-9 . _ -, not starting with . or -)")
            }
            guard found[name] == nil else { throw ServerError(.badRequest, "model repository: '\(name)' is there twice (NAME/ and NAME.onnx)") }
            found[name] = pick
        }
        return try found.sorted { $0.key < $1.key }.map { name, pick in
            let size = (try? fm.attributesOfItem(atPath: pick.file.path)[.size] as? Int) ?? 0
            guard size <= maxModelBytes else {
                throw ServerError(.payloadTooLarge, "model repository: \(pick.file.path) is \(size) bytes, over the model limit of \(maxModelBytes) bytes")
            }
            let data = try Data(contentsOf: pick.file)
            guard data.count <= maxModelBytes else {
                throw ServerError(.payloadTooLarge, "model repository: \(pick.file.path) is over the model limit of \(maxModelBytes) bytes")
            }
            // The same digest as an upload's (InferenceServer.hex).
            return OperatorModelFile(name: name, version: pick.version, data: data, sha256: InferenceServer.hex(SHA256.hash(data: data)),
                                     path: pick.file.path)
        }
    }
}

extension InferenceServer {
    /// Compiles and registers the operator's models, before the server answers any request. They are shared, owned
    /// by no key, listed in the attested claims, and cannot be replaced or unloaded through the API.
    public func preload(_ files: [OperatorModelFile]) async throws {
        let options = limits.planOptions
        for f in files {
            let model: ONNXModel
            do {
                model = try ONNXModel(serialized: f.data, options: options)
            } catch {
                throw ServerError(.badRequest, "model repository: \(f.path): \(ServerError.wrap(error).message)")
            }
            _ = try await repository.preload(name: f.name, version: f.version, model: model, sha256: f.sha256, byteSize: f.data.count)
            logger.info("operator model loaded", metadata: ["model": "\(f.name)", "version": "\(f.version)", "sha256": "\(f.sha256)"])
        }
    }
}
