import CoreMetrics
import Foundation
import Metrics
import Prometheus

/// The server's metrics, on their own Prometheus registry (no global state, so tests can run several
/// servers). Labels are route templates, status codes and outcomes only: never a model's bytes, a tensor
/// value or a request's shape.
public final class ServerMetrics: Sendable {
    public let registry: PrometheusCollectorRegistry
    let factory: PrometheusMetricsFactory
    let modelCount: CoreMetrics.Gauge
    let modelBytes: CoreMetrics.Gauge
    let queueDepth: CoreMetrics.Gauge
    let running: CoreMetrics.Gauge
    let uploads: CoreMetrics.Gauge

    public init(registry: PrometheusCollectorRegistry = PrometheusCollectorRegistry()) {
        self.registry = registry
        var f = PrometheusMetricsFactory(registry: registry)
        f.defaultDurationHistogramBuckets = [
            .milliseconds(1), .milliseconds(2), .milliseconds(5), .milliseconds(10), .milliseconds(25), .milliseconds(50),
            .milliseconds(100), .milliseconds(250), .milliseconds(500), .seconds(1), .seconds(2), .seconds(5), .seconds(10), .seconds(30),
        ]
        factory = f
        modelCount = CoreMetrics.Gauge(label: "blindai_models_loaded", factory: f)
        modelBytes = CoreMetrics.Gauge(label: "blindai_model_bytes", factory: f)
        queueDepth = CoreMetrics.Gauge(label: "blindai_inference_queue_depth", factory: f)
        running = CoreMetrics.Gauge(label: "blindai_inferences_running", factory: f)
        uploads = CoreMetrics.Gauge(label: "blindai_uploads_in_progress", factory: f)
    }

    /// One HTTP request finished.
    func request(endpoint: String, method: String, status: Int, seconds: Double) {
        CoreMetrics.Counter(label: "blindai_http_requests_total", dimensions: [("endpoint", endpoint), ("method", method), ("status", String(status))], factory: factory).increment()
        CoreMetrics.Timer(label: "blindai_http_request_duration_seconds", dimensions: [("endpoint", endpoint)], factory: factory)
            .recordNanoseconds(Int64(seconds * 1e9))
    }

    /// One inference finished (`outcome`: ok, client_error, too_large, timeout, saturated, error).
    func inference(outcome: String, seconds: Double) {
        CoreMetrics.Counter(label: "blindai_inferences_total", dimensions: [("outcome", outcome)], factory: factory).increment()
        if outcome == "ok" {
            CoreMetrics.Timer(label: "blindai_inference_duration_seconds", factory: factory).recordNanoseconds(Int64(seconds * 1e9))
        }
    }

    /// The engine's part of one successful inference (the model's run alone, without reading, decoding or encoding).
    func computation(seconds: Double) {
        CoreMetrics.Timer(label: "blindai_inference_compute_seconds", factory: factory).recordNanoseconds(Int64(seconds * 1e9))
    }

    /// One upload or inline load finished (`outcome`: ok, or the error code).
    func upload(outcome: String) {
        CoreMetrics.Counter(label: "blindai_model_uploads_total", dimensions: [("outcome", outcome)], factory: factory).increment()
    }

    func models(count: Int, bytes: Int) {
        modelCount.record(count)
        modelBytes.record(bytes)
    }

    func pool(waiting: Int, running: Int) {
        queueDepth.record(waiting)
        self.running.record(running)
    }

    /// The Prometheus text exposition.
    public func exposition() -> String {
        registry.emitToString()
    }
}
