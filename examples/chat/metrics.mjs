// Prometheus metrics for the chat demo: the handler's requests, mints, token cache and token
// usage by model (OpenTelemetry, through @dashscope-token/core/opentelemetry), served as
// GET /metrics in the Prometheus text format by @opentelemetry/exporter-prometheus.
// Bound, like the demo, to 127.0.0.1: a real app puts /metrics behind its own access control.
import { instrumentDashScope } from '@dashscope-token/core/opentelemetry';
import { PrometheusExporter } from '@opentelemetry/exporter-prometheus';
import { MeterProvider } from '@opentelemetry/sdk-metrics';

/**
 * Starts collecting metrics of `handlers` (their token cache counters) and of every
 * dashscope-token handler in this process (requests, mints, usage).
 * @returns `handle(req, res)` answering `GET /metrics`, and `close()`.
 */
export function startMetrics(handlers) {
  // preventServerStart: the demo's own server answers /metrics (no second port).
  const exporter = new PrometheusExporter({ preventServerStart: true });
  const meterProvider = new MeterProvider({ readers: [exporter] });
  const instrumentation = instrumentDashScope({ meterProvider, cacheStats: handlers });
  return {
    handle: (req, res) => exporter.getMetricsRequestHandler(req, res),
    async close() {
      instrumentation.disable();
      await meterProvider.shutdown();
    },
  };
}
