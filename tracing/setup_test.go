package tracing_test

import (
	"bytes"
	"context"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	coltracepb "go.opentelemetry.io/proto/otlp/collector/trace/v1"
	"google.golang.org/protobuf/proto"

	"github.com/plyr-fm/plyrtasks/tracing"
)

// otlpEnv clears every variable Setup reads, then sets kv.
func otlpEnv(t *testing.T, kv ...string) {
	t.Helper()
	for _, k := range []string{tracing.EnvEndpoint, tracing.EnvTracesEndpoint, tracing.EnvProtocol,
		tracing.EnvTracesProtocol, tracing.EnvTracesExporter, tracing.EnvSDKDisabled, "OTEL_SERVICE_NAME",
		"OTEL_RESOURCE_ATTRIBUTES", "OTEL_EXPORTER_OTLP_HEADERS", "OTEL_TRACES_SAMPLER"} {
		t.Setenv(k, "")
	}
	for i := 0; i+1 < len(kv); i += 2 {
		t.Setenv(kv[i], kv[i+1])
	}
}

// collector is a minimal OTLP/HTTP trace receiver.
type collector struct {
	mu       sync.Mutex
	requests []*coltracepb.ExportTraceServiceRequest
	headers  []http.Header
}

func newCollector(t *testing.T) (*collector, string) {
	c := &collector{}
	ts := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/v1/traces" || r.Header.Get("Content-Type") != "application/x-protobuf" {
			http.Error(w, "want POST /v1/traces application/x-protobuf", http.StatusBadRequest)
			return
		}
		body, _ := io.ReadAll(r.Body)
		req := &coltracepb.ExportTraceServiceRequest{}
		if err := proto.Unmarshal(body, req); err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		c.mu.Lock()
		c.requests = append(c.requests, req)
		c.headers = append(c.headers, r.Header.Clone())
		c.mu.Unlock()
		w.Header().Set("Content-Type", "application/x-protobuf")
		b, _ := proto.Marshal(&coltracepb.ExportTraceServiceResponse{})
		_, _ = w.Write(b)
	}))
	t.Cleanup(ts.Close)
	return c, ts.URL
}

// TestSetupExportsOverOTLP runs Setup against a local OTLP/HTTP receiver
// and checks the exported span, its service name and the configured
// header.
func TestSetupExportsOverOTLP(t *testing.T) {
	for _, v := range []string{tracing.EnvEndpoint, tracing.EnvTracesEndpoint} {
		t.Run(v, func(t *testing.T) {
			col, url := newCollector(t)
			if v == tracing.EnvTracesEndpoint {
				url += "/v1/traces" // the signal-specific variable is the full URL
			}
			otlpEnv(t, v, url, "OTEL_EXPORTER_OTLP_HEADERS", "x-collector-key=k123")
			var logs bytes.Buffer
			shutdown, tp, err := tracing.Setup(context.Background(), "plyrtasks-test", slog.New(slog.NewTextHandler(&logs, nil)))
			if err != nil {
				t.Fatal(err)
			}
			_, span := tracing.StartEnqueue(context.Background(), tp, "pds:like")
			if !span.IsRecording() {
				t.Fatal("span is not recording with an endpoint set")
			}
			tracing.EndEnqueue(span, tracing.EnqueueEnqueued, nil)
			if err := shutdown(context.Background()); err != nil { // flushes the batch
				t.Fatal(err)
			}
			col.mu.Lock()
			defer col.mu.Unlock()
			if len(col.requests) != 1 {
				t.Fatalf("collector got %d export requests, want 1", len(col.requests))
			}
			if got := col.headers[0].Get("X-Collector-Key"); got != "k123" {
				t.Errorf("OTEL_EXPORTER_OTLP_HEADERS not sent: %q", got)
			}
			rs := col.requests[0].GetResourceSpans()
			if len(rs) != 1 {
				t.Fatalf("%d resource spans", len(rs))
			}
			service := ""
			for _, kv := range rs[0].GetResource().GetAttributes() {
				if kv.GetKey() == "service.name" {
					service = kv.GetValue().GetStringValue()
				}
			}
			if service != "plyrtasks-test" {
				t.Errorf("service.name = %q", service)
			}
			var names []string
			for _, ss := range rs[0].GetScopeSpans() {
				for _, s := range ss.GetSpans() {
					names = append(names, s.GetName())
				}
			}
			if len(names) != 1 || names[0] != "send pds:like" {
				t.Errorf("exported spans %q, want [send pds:like]", names)
			}
			if !strings.Contains(logs.String(), "tracing on") || strings.Contains(logs.String(), "k123") {
				t.Errorf("log = %q: want the on line and no header value", logs.String())
			}
		})
	}
}

func TestSetupOff(t *testing.T) {
	cases := []struct {
		name string
		env  []string
	}{
		{"no endpoint", nil},
		{"sdk disabled", []string{tracing.EnvEndpoint, "http://127.0.0.1:4318", tracing.EnvSDKDisabled, "true"}},
		{"exporter none", []string{tracing.EnvEndpoint, "http://127.0.0.1:4318", tracing.EnvTracesExporter, "none"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			otlpEnv(t, c.env...)
			shutdown, tp, err := tracing.Setup(context.Background(), "plyrtasks", slog.New(slog.DiscardHandler))
			if err != nil {
				t.Fatal(err)
			}
			_, span := tracing.StartEnqueue(context.Background(), tp, "pds:like")
			if span.IsRecording() {
				t.Error("span records while tracing is off")
			}
			span.End()
			if err := shutdown(context.Background()); err != nil {
				t.Error(err)
			}
		})
	}
}

func TestSetupRejectsWhatItCannotHonour(t *testing.T) {
	cases := []struct {
		name    string
		env     []string
		wantVar string
	}{
		{"grpc", []string{tracing.EnvEndpoint, "http://127.0.0.1:4317", tracing.EnvProtocol, "grpc"}, tracing.EnvProtocol},
		{"http/json", []string{tracing.EnvEndpoint, "http://127.0.0.1:4318", tracing.EnvTracesProtocol, "http/json"}, tracing.EnvTracesProtocol},
		{"zipkin exporter", []string{tracing.EnvEndpoint, "http://127.0.0.1:4318", tracing.EnvTracesExporter, "zipkin"}, tracing.EnvTracesExporter},
		{"not a URL", []string{tracing.EnvEndpoint, "collector:4318"}, tracing.EnvEndpoint},
		{"traces endpoint wins and is checked", []string{tracing.EnvEndpoint, "http://127.0.0.1:4318", tracing.EnvTracesEndpoint, "ftp://u:secretpw@x"}, tracing.EnvTracesEndpoint},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			otlpEnv(t, c.env...)
			_, tp, err := tracing.Setup(context.Background(), "plyrtasks", slog.New(slog.DiscardHandler))
			if err == nil || !strings.Contains(err.Error(), c.wantVar) {
				t.Fatalf("err = %v, want one naming %s", err, c.wantVar)
			}
			if strings.Contains(err.Error(), "secretpw") {
				t.Errorf("error shows the endpoint's password: %v", err)
			}
			if tp == nil {
				t.Error("tp is nil on error; want a usable no-op provider")
			}
		})
	}
}

func TestSetupTracesProtocolOverridesGeneric(t *testing.T) {
	// The signal-specific protocol wins over the generic one.
	otlpEnv(t, tracing.EnvEndpoint, "http://127.0.0.1:4318", tracing.EnvProtocol, "grpc", tracing.EnvTracesProtocol, "http/protobuf")
	shutdown, _, err := tracing.Setup(context.Background(), "plyrtasks", slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatalf("err = %v; OTEL_EXPORTER_OTLP_TRACES_PROTOCOL=http/protobuf should win", err)
	}
	_ = shutdown(context.Background())
}
