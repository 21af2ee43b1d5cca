import CFuzzDriver
import Foundation

/// The libFuzzer callback type: `LLVMFuzzerTestOneInput`'s signature.
public typealias FuzzCallback = @convention(c) (UnsafePointer<UInt8>?, Int) -> CInt

/// Runs libFuzzer's driver on `callback` with the command line (corpus directories, `-max_total_time=...`)
/// and exits with its status. Each target's `@main` calls this (see CFuzzDriver.h for why).
public func runFuzzer(_ callback: FuzzCallback) -> Never {
    exit(blindai_fuzz_run(CommandLine.argc, CommandLine.unsafeArgv, callback))
}

/// The input as bytes (libFuzzer may pass a null pointer for the empty input).
public func bytes(_ data: UnsafePointer<UInt8>?, _ count: Int) -> [UInt8] {
    guard let data, count > 0 else { return [] }
    return Array(UnsafeBufferPointer(start: data, count: count))
}

/// A file of the repository (test vectors, fixtures) read once at start-up; a missing file stops the
/// target at once rather than fuzzing against nothing.
public func repositoryFile(_ path: String) -> [UInt8] {
    // This file is fuzz/Sources/FuzzSupport/Driver.swift: the repository root is four levels up.
    let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent().deletingLastPathComponent()
    guard let data = FileManager.default.contents(atPath: root.appendingPathComponent(path).path) else {
        fatalError("fuzz target set-up: cannot read \(path) under \(root.path)")
    }
    return [UInt8](data)
}

/// A fatal error for a broken property (a finding, reported by libFuzzer as a crash with its input).
public func property(_ condition: Bool, _ message: @autoclosure () -> String) {
    if !condition { fatalError("property violated: \(message())") }
}

/// Runs async code to completion from the (synchronous) fuzz callback.
public func blocking<T: Sendable>(_ body: @escaping @Sendable () async -> T) -> T {
    let box = ResultBox<T>()
    let done = DispatchSemaphore(value: 0)
    Task {
        box.value = await body()
        done.signal()
    }
    done.wait()
    return box.value!
}

/// Written by the task before it signals, read after the wait: the semaphore orders the two accesses.
private final class ResultBox<T>: @unchecked Sendable {
    var value: T?
}
