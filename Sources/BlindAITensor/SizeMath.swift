/// Checked arithmetic for sizes, counts, indices and attribute values that come from a model or a request.
///
/// A model's author chooses its attributes and declared shapes, and a client chooses its inputs' shapes and
/// values: any product, sum or conversion of them may overflow, and Swift traps on overflow, which would stop
/// every model of a server. Operators, shape inference and the server compute such sizes through these functions,
/// which throw an `EngineError` instead. Hot loops over already-validated sizes need not.
public enum SizeMath {
    /// a × b, or an error naming `what`.
    @inlinable
    public static func mul(_ a: Int, _ b: Int, _ what: @autoclosure () -> String = "size") throws -> Int {
        let (m, o) = a.multipliedReportingOverflow(by: b)
        guard !o else { throw EngineError(.invalidArgument, "\(what()) overflows (\(a) × \(b))") }
        return m
    }

    /// a + b, or an error naming `what`.
    @inlinable
    public static func add(_ a: Int, _ b: Int, _ what: @autoclosure () -> String = "size") throws -> Int {
        let (s, o) = a.addingReportingOverflow(b)
        guard !o else { throw EngineError(.invalidArgument, "\(what()) overflows (\(a) + \(b))") }
        return s
    }

    /// a − b, or an error naming `what`.
    @inlinable
    public static func sub(_ a: Int, _ b: Int, _ what: @autoclosure () -> String = "size") throws -> Int {
        let (s, o) = a.subtractingReportingOverflow(b)
        guard !o else { throw EngineError(.invalidArgument, "\(what()) overflows (\(a) − \(b))") }
        return s
    }

    /// The product of `values`, or an error naming `what` (with `code`: a shape's overflow is a `memoryLimit`).
    @inlinable
    public static func product<S: Sequence<Int>>(_ values: S, _ what: @autoclosure () -> String = "size",
                                                 code: EngineError.Code = .invalidArgument) throws -> Int {
        guard let p = productIfRepresentable(values) else { throw EngineError(code, "\(what()) overflows") }
        return p
    }

    /// The product of `values`, or nil on overflow (for facts, where an unknowable product is simply unknown).
    @inlinable
    public static func productIfRepresentable<S: Sequence<Int>>(_ values: S) -> Int? {
        var p = 1
        for v in values {
            let (m, o) = p.multipliedReportingOverflow(by: v)
            if o { return nil }
            p = m
        }
        return p
    }

    /// The integer nearest below or at `x` (after the caller's rounding), or an error when `x` is NaN, infinite
    /// or outside Int's range: `Int(x)` traps on those.
    @inlinable
    public static func int(_ x: Double, _ what: @autoclosure () -> String = "value") throws -> Int {
        guard let v = Int(exactly: x.rounded(.towardZero)) else {
            throw EngineError(.invalidArgument, "\(what()) (\(x)) is not a representable integer")
        }
        return v
    }

    /// `x` clamped into `range` (NaN gives the lower bound): for positions and counts computed in floating point.
    @inlinable
    public static func clamp(_ x: Double, _ range: ClosedRange<Int>) -> Int {
        if !(x >= Double(range.lowerBound)) { return range.lowerBound }
        if x >= Double(range.upperBound) { return range.upperBound }
        return Int(x)
    }

    /// The volume of a shape with its zero dimensions counted as one: what strides and the products of trailing
    /// dimensions reach even when the tensor itself is empty. Nil on overflow.
    @inlinable
    public static func volume(_ shape: [Int]) -> Int? {
        var p = 1
        for d in shape where d != 0 {
            let (m, o) = p.multipliedReportingOverflow(by: d)
            if o { return nil }
            p = m
        }
        return p
    }
}
