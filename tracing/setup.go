package tracing

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"os"
	"strings"

	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracehttp"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	semconv "go.opentelemetry.io/otel/semconv/v1.43.0"
	"go.opentelemetry.io/otel/trace"
	"go.opentelemetry.io/otel/trace/noop"
)

// Environment variables Setup reads itself. The OTLP exporter and the SDK
// read the rest (OTEL_EXPORTER_OTLP_HEADERS, OTEL_EXPORTER_OTLP_TIMEOUT,
// OTEL_TRACES_SAMPLER, OTEL_SERVICE_NAME, OTEL_RESOURCE_ATTRIBUTES,
// OTEL_BSP_*).
const (
	EnvEndpoint       = "OTEL_EXPORTER_OTLP_ENDPOINT"
	EnvTracesEndpoint = "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT"
	EnvProtocol       = "OTEL_EXPORTER_OTLP_PROTOCOL"
	EnvTracesProtocol = "OTEL_EXPORTER_OTLP_TRACES_PROTOCOL"
	EnvTracesExporter = "OTEL_TRACES_EXPORTER"
	EnvSDKDisabled    = "OTEL_SDK_DISABLED"
)

// Setup returns the TracerProvider plyrtasks traces with, and the function
// that flushes and stops it (call it on shutdown, after the worker and the
// client have drained).
//
// Tracing is on only when OTEL_EXPORTER_OTLP_TRACES_ENDPOINT or
// OTEL_EXPORTER_OTLP_ENDPOINT is set (and neither OTEL_SDK_DISABLED=true
// nor OTEL_TRACES_EXPORTER=none says otherwise): spans are then batched and
// exported over OTLP/HTTP (protobuf). Otherwise tp is a no-op provider,
// which costs next to nothing, and shutdown does nothing. serviceName is
// the service.name resource attribute unless OTEL_SERVICE_NAME overrides
// it.
//
// A setting Setup cannot honour is an error naming the variable:
// OTEL_EXPORTER_OTLP_PROTOCOL other than http/protobuf (this build has no
// gRPC exporter), OTEL_TRACES_EXPORTER other than otlp or none, or an
// endpoint that is not a URL. logger (nil: slog.Default()) gets one line
// saying whether tracing is on and where spans go (scheme and host only:
// never credentials or headers).
func Setup(ctx context.Context, serviceName string, logger *slog.Logger) (shutdown func(context.Context) error, tp trace.TracerProvider, err error) {
	if logger == nil {
		logger = slog.Default()
	}
	off := func(context.Context) error { return nil }
	endpoint, on, err := exportTarget(os.Getenv)
	if err != nil {
		return off, noop.NewTracerProvider(), err
	}
	if !on {
		logger.Debug("tracing off (set OTEL_EXPORTER_OTLP_ENDPOINT to export spans over OTLP)")
		return off, noop.NewTracerProvider(), nil
	}
	exp, err := otlptracehttp.New(ctx)
	if err != nil {
		return off, noop.NewTracerProvider(), fmt.Errorf("tracing: OTLP exporter: %w", err)
	}
	res, err := resource.New(ctx,
		resource.WithAttributes(semconv.ServiceName(serviceName)),
		resource.WithTelemetrySDK(),
		resource.WithFromEnv(), // OTEL_SERVICE_NAME, OTEL_RESOURCE_ATTRIBUTES win
	)
	if err != nil && !errors.Is(err, resource.ErrPartialResource) {
		_ = exp.Shutdown(ctx)
		return off, noop.NewTracerProvider(), fmt.Errorf("tracing: resource: %w", err)
	}
	sdk := sdktrace.NewTracerProvider(sdktrace.WithBatcher(exp), sdktrace.WithResource(res))
	logger.Info("tracing on: exporting spans over OTLP/HTTP", slog.String("endpoint", endpoint))
	return sdk.Shutdown, sdk, nil
}

// ErrorHandler logs the errors OpenTelemetry reports asynchronously (a
// collector that cannot be reached, say) through logger at warn. Install it
// in main with otel.SetErrorHandler; without it they go to the standard
// log package.
func ErrorHandler(logger *slog.Logger) otel.ErrorHandler {
	return otel.ErrorHandlerFunc(func(err error) {
		logger.Warn("tracing: export failed", slog.String("error", err.Error()))
	})
}

// exportTarget decides from the environment whether to export, and
// returns the endpoint as logged (scheme and host).
func exportTarget(getenv func(string) string) (endpoint string, on bool, err error) {
	if strings.EqualFold(strings.TrimSpace(getenv(EnvSDKDisabled)), "true") {
		return "", false, nil
	}
	switch exp := strings.TrimSpace(getenv(EnvTracesExporter)); exp {
	case "", "otlp":
	case "none":
		return "", false, nil
	default:
		return "", false, fmt.Errorf("tracing: %s=%q is not supported: use otlp or none", EnvTracesExporter, exp)
	}
	name, raw := EnvTracesEndpoint, strings.TrimSpace(getenv(EnvTracesEndpoint))
	if raw == "" {
		name, raw = EnvEndpoint, strings.TrimSpace(getenv(EnvEndpoint))
	}
	if raw == "" {
		return "", false, nil
	}
	for _, v := range []string{EnvTracesProtocol, EnvProtocol} {
		p := strings.TrimSpace(getenv(v))
		if p == "" {
			continue
		}
		if p != "http/protobuf" {
			return "", false, fmt.Errorf("tracing: %s=%q is not supported: plyrtasks exports OTLP over HTTP; set http/protobuf and point %s at the collector's HTTP port (usually 4318)", v, p, name)
		}
		break // the traces-specific variable wins
	}
	u, err := url.Parse(raw)
	if err != nil || u.Host == "" || (u.Scheme != "http" && u.Scheme != "https") {
		return "", false, fmt.Errorf("tracing: %s must be an http:// or https:// URL with a host (got %d characters that are not)", name, len(raw))
	}
	return u.Scheme + "://" + u.Host, true, nil
}
