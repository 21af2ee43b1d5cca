import ArgumentParser
import BlindAIConformance
import Foundation

/// `blindai conformance PATH... [--manifest FILE]`
struct ConformanceCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "conformance",
        abstract: "Run ONNX backend-style tests (model.onnx + test_data_set_*) and compare outputs."
    )

    @Argument(help: "Test directories, or folders of test directories.")
    var paths: [String]

    @Option(help: "Run only the tests named in this file (one name a line; '#' starts a comment).")
    var manifest: String?

    @Flag(name: .customLong("no-optimize"), help: "Run the plain (unoptimised) plan.")
    var noOptimize = false

    @Option(name: .customLong("write-passing"), help: "Write the names of the passing tests to this file.")
    var writePassing: String?

    @Flag(name: .customLong("verify-facts"), help: "Check every value against the shapes inferred at plan time.")
    var verifyFacts = false

    @Flag(help: "Print a line for every test, not only failures.")
    var verbose = false

    func run() throws {
        var dirs = ConformanceRunner.discover(paths)
        if let manifest {
            let text: String
            do { text = try String(contentsOfFile: manifest, encoding: .utf8) } catch {
                throw CLIError(message: "cannot read manifest '\(manifest)': \(error.localizedDescription)")
            }
            let wanted = Set(text.split(separator: "\n").compactMap { line -> String? in
                let name = line.split(separator: "#", maxSplits: 1, omittingEmptySubsequences: false).first?
                    .trimmingCharacters(in: .whitespaces) ?? ""
                return name.isEmpty ? nil : name
            })
            let present = Set(dirs.map(\.lastPathComponent))
            let missing = wanted.subtracting(present).sorted()
            dirs = dirs.filter { wanted.contains($0.lastPathComponent) }
            for m in missing { print("FAIL \(m): listed in the manifest but not found") }
            if !missing.isEmpty {
                print("\(dirs.count) found, \(missing.count) missing from the test data")
            }
            if dirs.isEmpty && missing.isEmpty { throw CLIError(message: "no test of the manifest was found under \(paths.joined(separator: " "))") }
            return try runAll(dirs, extraFailures: missing.count)
        }
        if dirs.isEmpty { throw CLIError(message: "no test directories found under \(paths.joined(separator: " "))") }
        try runAll(dirs, extraFailures: 0)
    }

    func runAll(_ dirs: [URL], extraFailures: Int) throws {
        var configured = ConformanceRunner(optimize: !noOptimize)
        configured.verifyFacts = verifyFacts
        let runner = configured
        let results = ResultsBox(count: dirs.count)
        DispatchQueue.concurrentPerform(iterations: dirs.count) { i in
            results.set(i, runner.run(dirs[i]))
        }
        var passed = 0, failed = extraFailures, skipped = 0
        var passing: [String] = []
        for (i, dir) in dirs.enumerated() {
            let name = dir.lastPathComponent
            switch results.get(i) {
            case .passed:
                passed += 1
                passing.append(name)
                if verbose { print("ok \(name)") }
            case .failed(let why):
                failed += 1
                print("FAIL \(name): \(why)")
            case .skipped(let why):
                skipped += 1
                if verbose { print("skip \(name): \(why)") }
            }
        }
        if let writePassing {
            try (passing.joined(separator: "\n") + "\n").write(toFile: writePassing, atomically: true, encoding: .utf8)
        }
        print("\(passed) passed, \(failed) failed" + (skipped > 0 ? ", \(skipped) skipped" : ""))
        if failed > 0 { throw ExitCode(1) }
    }
}

/// Results written from concurrent workers, each to its own index.
final class ResultsBox: @unchecked Sendable {
    private var outcomes: [ConformanceRunner.Outcome]
    private let lock = NSLock()
    init(count: Int) { outcomes = Array(repeating: .failed("not run"), count: count) }
    func set(_ i: Int, _ o: ConformanceRunner.Outcome) { lock.lock(); outcomes[i] = o; lock.unlock() }
    func get(_ i: Int) -> ConformanceRunner.Outcome { lock.lock(); defer { lock.unlock() }; return outcomes[i] }
}
