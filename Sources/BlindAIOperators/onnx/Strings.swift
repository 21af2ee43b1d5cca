import BlindAITensor
import BlindAIKernels
import BlindAIGraph
import CBlindAIKernels
import Foundation

// String and text operators: StringNormalizer, StringConcat, StringSplit, RegexFullMatch and TfIdfVectorizer.

struct StringNormalizerOp: Operator {
    enum CaseChange: Sendable { case none, lower, upper }
    let caseChange: CaseChange
    let caseSensitive: Bool
    let stopwords: Set<String>

    func run(_ inputs: [Tensor?], _ ctx: ExecutionContext) throws -> [Tensor] {
        let x = try inputs.required(0)
        guard x.dataType == .string else { throw EngineError(.typeMismatch, "StringNormalizer needs a string tensor, got \(x.dataType)") }
        guard x.rank == 1 || (x.rank == 2 && x.shape[0] == 1) else {
            throw EngineError(.shapeMismatch, "StringNormalizer input must have shape [C] or [1, C], got \(x.shape)")
        }
        var out: [String] = []
        out.reserveCapacity(x.count)
        for s in x.strings {
            if !stopwords.isEmpty {
                let probe = caseSensitive ? s : s.lowercased()
                if stopwords.contains(probe) { continue }
            }
            switch caseChange {
            case .none: out.append(s)
            case .lower: out.append(s.lowercased())
            case .upper: out.append(s.uppercased())
            }
        }
        if out.isEmpty { out = [""] }
        return [Tensor(shape: x.rank == 2 ? [1, out.count] : [out.count], strings: out)]
    }
}

/// StringConcat: element-wise concatenation with broadcasting.
struct StringConcatOp: Operator {
    func run(_ inputs: [Tensor?], _ ctx: ExecutionContext) throws -> [Tensor] {
        let a = try inputs.required(0), b = try inputs.required(1)
        guard a.dataType == .string, b.dataType == .string else {
            throw EngineError(.typeMismatch, "StringConcat needs string tensors, got \(a.dataType) and \(b.dataType)")
        }
        let shape = try Shape.broadcast([a.shape, b.shape])
        let n = try ctx.limits.checkedCount(shape, .string)
        var out = [String](repeating: "", count: n)
        let sa = a.strings, sb = b.strings
        BroadcastPlan(outShape: shape, inputShapes: [a.shape, b.shape]).forEachRow { o, offs, count, st in
            for i in 0..<count { out[o + i] = sa[offs[0] + i * st[0]] + sb[offs[1] + i * st[1]] }
        }
        return [Tensor(shape: shape, strings: out)]
    }
}

/// StringSplit: splits each string by a delimiter (or by runs of whitespace), padding with empty strings.
struct StringSplitOp: Operator {
    let delimiter: String?
    let maxSplit: Int?

    func run(_ inputs: [Tensor?], _ ctx: ExecutionContext) throws -> [Tensor] {
        let x = try inputs.required(0)
        guard x.dataType == .string else { throw EngineError(.typeMismatch, "StringSplit needs a string tensor, got \(x.dataType)") }
        let parts = x.strings.map { split($0) }
        let width = parts.map(\.count).max() ?? 0
        let shape = x.shape + [width]
        let total = try ctx.limits.checkedCount(shape, .string)
        var out: [String] = []
        out.reserveCapacity(total)
        for p in parts {
            out.append(contentsOf: p)
            if p.count < width { out.append(contentsOf: repeatElement("", count: width - p.count)) }
        }
        return [Tensor(shape: shape, strings: out), Tensor(shape: x.shape, scalars: parts.map { Int64($0.count) })]
    }

    private func split(_ s: String) -> [String] {
        let limit = maxSplit ?? Int.max
        if let delimiter {
            var result: [String] = []
            var rest = Substring(s)
            while result.count < limit, let r = rest.range(of: delimiter) {
                result.append(String(rest[..<r.lowerBound]))
                rest = rest[r.upperBound...]
            }
            result.append(String(rest))
            return result
        }
        // Whitespace: runs of whitespace separate; leading and trailing whitespace is ignored (like Python's split()).
        var result: [String] = []
        var i = s.unicodeScalars.startIndex
        let scalars = s.unicodeScalars
        func isSpace(_ c: Unicode.Scalar) -> Bool { c.properties.isWhitespace }
        while i < scalars.endIndex {
            while i < scalars.endIndex && isSpace(scalars[i]) { i = scalars.index(after: i) }
            if i == scalars.endIndex { break }
            if result.count == limit {
                result.append(String(scalars[i...]))
                break
            }
            var j = i
            while j < scalars.endIndex && !isSpace(scalars[j]) { j = scalars.index(after: j) }
            result.append(String(scalars[i..<j]))
            i = j
        }
        return result
    }
}

/// RegexFullMatch: whether each string matches the whole pattern (compiled once, anchored at both ends).
struct RegexFullMatchOp: Operator {
    let regex: NSRegularExpression

    func run(_ inputs: [Tensor?], _ ctx: ExecutionContext) throws -> [Tensor] {
        let x = try inputs.required(0)
        guard x.dataType == .string else { throw EngineError(.typeMismatch, "RegexFullMatch needs a string tensor, got \(x.dataType)") }
        let out = try ctx.zeros(.bool, x.shape)
        let d = out.mutableBuffer(Bool.self)
        for (i, s) in x.strings.enumerated() {
            let whole = NSRange(location: 0, length: (s as NSString).length)
            d[i] = regex.firstMatch(in: s, options: [], range: whole) != nil
        }
        return [out]
    }
}

// MARK: - TfIdfVectorizer

/// A child link in the n-gram trie: (parent node, token).
fileprivate struct TfIdfTrieKey: Hashable {
    let node: Int32
    let token: Int64
}

/// TfIdfVectorizer: counts the pool's n-grams (with skips) in each row of an int or string input.
struct TfIdfVectorizerOp: Operator {
    enum Mode { case tf, idf, tfidf }
    let mode: Mode
    let minGram: Int
    let maxGram: Int
    let maxSkip: Int
    let outputSize: Int
    /// Output column of each n-gram id - 1.
    let ngramIndexes: [Int]
    let weights: [Float]
    /// Trie: per node its n-gram id (0 = none) and number of children; children by (node, token).
    fileprivate let nodeIds: [Int32]
    fileprivate let childCounts: [Int32]
    fileprivate let children: [TfIdfTrieKey: Int32]
    /// For string pools: each pool string's token.
    let stringTokens: [String: Int64]?

    init(mode: Mode, minGram: Int, maxGram: Int, maxSkip: Int, ngramCounts: [Int], ngramIndexes: [Int],
         weights: [Float], poolInts: [Int]?, poolStrings: [String]?) throws {
        self.mode = mode
        self.minGram = minGram
        self.maxGram = maxGram
        self.maxSkip = maxSkip
        self.weights = weights
        self.ngramIndexes = ngramIndexes
        var pool: [Int64]
        if let poolStrings {
            var map: [String: Int64] = [:]
            pool = []
            pool.reserveCapacity(poolStrings.count)
            for s in poolStrings {
                if let t = map[s] { pool.append(t) } else {
                    let t = Int64(map.count)
                    map[s] = t
                    pool.append(t)
                }
            }
            stringTokens = map
        } else {
            pool = (poolInts ?? []).map { Int64($0) }
            stringTokens = nil
        }
        guard let maxIndex = ngramIndexes.max() else {
            throw EngineError(.invalidModel, "TfIdfVectorizer: ngram_indexes is empty")
        }
        guard ngramIndexes.allSatisfy({ $0 >= 0 }) else {
            throw EngineError(.invalidModel, "TfIdfVectorizer: ngram_indexes has negative values")
        }
        // The output has maxIndex + 1 columns: bounded so that the size (and maxIndex + 1) cannot overflow.
        guard maxIndex < 1 << 30 else {
            throw EngineError(.invalidModel, "TfIdfVectorizer: ngram_indexes value \(maxIndex) is over \(1 << 30)")
        }
        outputSize = maxIndex + 1
        if mode != .tf && !weights.isEmpty && weights.count < outputSize {
            throw EngineError(.invalidModel, "TfIdfVectorizer: \(weights.count) weights for \(outputSize) outputs")
        }
        var ids: [Int32] = [0]
        var counts: [Int32] = [0]
        var links: [TfIdfTrieKey: Int32] = [:]
        var ngramId = 1
        for (level, start) in ngramCounts.enumerated() {
            let size = level + 1
            let end = level + 1 < ngramCounts.count ? ngramCounts[level + 1] : pool.count
            guard start >= 0, start <= end, end <= pool.count else {
                throw EngineError(.invalidModel, "TfIdfVectorizer: ngram_counts \(ngramCounts) do not fit a pool of \(pool.count) items")
            }
            let grams = (end - start) / size
            if grams == 0 { continue }
            if size < minGram || size > maxGram {
                ngramId += grams
                continue
            }
            for g in 0..<grams {
                var node: Int32 = 0
                for t in 0..<size {
                    let key = TfIdfTrieKey(node: node, token: pool[start + g * size + t])
                    if let child = links[key] {
                        node = child
                    } else {
                        let child = Int32(ids.count)
                        ids.append(0)
                        counts.append(0)
                        links[key] = child
                        counts[Int(node)] += 1
                        node = child
                    }
                }
                guard ngramId <= ngramIndexes.count else {
                    throw EngineError(.invalidModel, "TfIdfVectorizer: the pool has more n-grams than ngram_indexes (\(ngramIndexes.count))")
                }
                ids[Int(node)] = Int32(ngramId)
                ngramId += 1
            }
        }
        nodeIds = ids
        childCounts = counts
        children = links
    }

    func run(_ inputs: [Tensor?], _ ctx: ExecutionContext) throws -> [Tensor] {
        let x = try inputs.required(0)
        var tokens: [Int64]
        switch x.dataType {
        case .string:
            guard let map = stringTokens else {
                throw EngineError(.typeMismatch, "TfIdfVectorizer: string input but the pool is pool_int64s")
            }
            tokens = x.strings.map { map[$0] ?? -1 }
        case .int32, .int64:
            guard stringTokens == nil else {
                throw EngineError(.typeMismatch, "TfIdfVectorizer: \(x.dataType) input but the pool is pool_strings")
            }
            tokens = x.dataType == .int64 ? Array(x.buffer(Int64.self)) : x.buffer(Int32.self).map { Int64($0) }
        default:
            throw EngineError(.typeMismatch, "TfIdfVectorizer does not support \(x.dataType) tensors")
        }
        let rows: Int, width: Int, outShape: [Int]
        switch x.rank {
        case 0: rows = 1; width = 1; outShape = [outputSize]
        case 1: rows = 1; width = x.shape[0]; outShape = [outputSize]
        case 2: rows = x.shape[0]; width = x.shape[1]; outShape = [rows, outputSize]
        default: throw EngineError(.shapeMismatch, "TfIdfVectorizer: input must be [C] or [N, C], got \(x.shape)")
        }
        let out = try ctx.zeros(.float32, outShape)
        if out.count == 0 || width == 0 || nodeIds.count <= 1 { return [out] }
        let y = out.mutableBuffer(Float.self)
        let outputSize = self.outputSize
        nodeIds.withUnsafeBufferPointer { ids in
            childCounts.withUnsafeBufferPointer { childCount in
                ngramIndexes.withUnsafeBufferPointer { columns in
                    tokens.withUnsafeBufferPointer { tok in
                        for row in 0..<rows {
                            let base = row * width
                            let outBase = row * outputSize
                            var startSize = minGram
                            // A skip wider than the row finds no n-gram of two or more items: max_skip_count
                            // (any int64 from the model) is clamped to the row, so skip + 1 cannot overflow.
                            for skip in 1...(Swift.min(maxSkip, width) + 1) {
                                var s = 0
                                while s < width {
                                    let (span, overflow) = skip.multipliedReportingOverflow(by: startSize - 1)
                                    if overflow || span >= width - s { break }
                                    var node: Int32 = 0
                                    var size = 1
                                    var item = s
                                    while childCount[Int(node)] > 0 && size <= maxGram && item < width {
                                        guard let child = children[TfIdfTrieKey(node: node, token: tok[base + item])] else { break }
                                        let id = Int(ids[Int(child)])
                                        if size >= startSize && id != 0 {
                                            y[outBase + columns[id - 1]] += 1
                                        }
                                        node = child
                                        size += 1
                                        item += skip
                                    }
                                    s += 1
                                }
                                // Unigrams do not depend on the skip: count them once.
                                if startSize == 1 {
                                    startSize += 1
                                    if startSize > maxGram { break }
                                }
                            }
                        }
                    }
                }
            }
        }
        switch mode {
        case .tf: break
        case .idf:
            if weights.isEmpty {
                for i in 0..<y.count where y[i] > 0 { y[i] = 1 }
            } else {
                for row in 0..<(out.count / outputSize) {
                    for i in 0..<outputSize { let p = row * outputSize + i; y[p] = y[p] > 0 ? weights[i] : 0 }
                }
            }
        case .tfidf:
            if !weights.isEmpty {
                for row in 0..<(out.count / outputSize) {
                    for i in 0..<outputSize { let p = row * outputSize + i; y[p] *= weights[i] }
                }
            }
        }
        return [out]
    }
}

extension StandardOperators {
    static func registerStrings(_ r: inout OperatorRegistry) {
        r.register("StringNormalizer") { c in
            let action = try c.string("case_change_action", default: "NONE")
            let change: StringNormalizerOp.CaseChange
            switch action {
            case "NONE": change = .none
            case "LOWER": change = .lower
            case "UPPER": change = .upper
            default: throw c.error(.invalidModel, "unknown case_change_action '\(action)'")
            }
            let sensitive = try c.int("is_case_sensitive", default: 0) != 0
            let words = try c.strings("stopwords") ?? []
            return StringNormalizerOp(caseChange: change, caseSensitive: sensitive,
                                      stopwords: Set(sensitive ? words : words.map { $0.lowercased() }))
        }
        r.register("StringConcat") { _ in StringConcatOp() }
        r.register("StringSplit") { c in
            let d = try c.string("delimiter")
            let m = try c.int("maxsplit")
            if let m, m < 0 { throw c.error(.invalidModel, "maxsplit must be non-negative, got \(m)") }
            return StringSplitOp(delimiter: (d?.isEmpty ?? true) ? nil : d, maxSplit: m)
        }
        r.register("RegexFullMatch") { c in
            guard let p = try c.string("pattern") else { throw c.error(.invalidModel, "RegexFullMatch needs a 'pattern'") }
            do {
                return RegexFullMatchOp(regex: try NSRegularExpression(pattern: "\\A(?:" + p + ")\\z"))
            } catch {
                throw c.error(.invalidModel, "RegexFullMatch: invalid pattern '\(p)': \(error)")
            }
        }
        r.register("TfIdfVectorizer", since: 9) { c in
            let modeName = try c.string("mode") ?? ""
            let mode: TfIdfVectorizerOp.Mode
            switch modeName {
            case "TF": mode = .tf
            case "IDF": mode = .idf
            case "TFIDF": mode = .tfidf
            default: throw c.error(.invalidModel, "TfIdfVectorizer: mode must be TF, IDF or TFIDF, got '\(modeName)'")
            }
            let minGram = try c.int("min_gram_length", default: 1)
            let maxGram = try c.int("max_gram_length", default: 1)
            let maxSkip = try c.int("max_skip_count", default: 0)
            guard minGram >= 1, maxGram >= minGram, maxSkip >= 0 else {
                throw c.error(.invalidModel, "TfIdfVectorizer: need 1 <= min_gram_length (\(minGram)) <= max_gram_length (\(maxGram)) and max_skip_count (\(maxSkip)) >= 0")
            }
            let poolInts = try c.ints("pool_int64s"), poolStrings = try c.strings("pool_strings")
            guard (poolInts == nil) != (poolStrings == nil) else {
                throw c.error(.invalidModel, "TfIdfVectorizer: exactly one of pool_int64s and pool_strings must be set")
            }
            do {
                return try TfIdfVectorizerOp(
                    mode: mode, minGram: minGram, maxGram: maxGram, maxSkip: maxSkip,
                    ngramCounts: try c.ints("ngram_counts") ?? [], ngramIndexes: try c.ints("ngram_indexes") ?? [],
                    weights: try c.floats("weights") ?? [], poolInts: poolInts, poolStrings: poolStrings)
            } catch let e as EngineError {
                throw c.error(e.code, e.reason)
            }
        }
    }
}
