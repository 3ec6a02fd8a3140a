//go:build deps

// Package deps pins modules the project is being built on while their first
// importers are written (the tools.go pattern). Removed once every module
// has a real importer.
package deps

import (
	_ "github.com/alicebob/miniredis/v2"
	_ "github.com/aws/aws-sdk-go-v2/config"
	_ "github.com/aws/aws-sdk-go-v2/credentials"
	_ "github.com/aws/aws-sdk-go-v2/service/s3"
	_ "github.com/bluesky-social/indigo/api/atproto"
	_ "github.com/bluesky-social/indigo/atproto/atclient"
	_ "github.com/caarlos0/env/v10"
	_ "github.com/chromedp/chromedp"
	_ "github.com/hibiken/asynq"
	_ "github.com/hibiken/asynqmon"
	_ "github.com/jackc/pgx/v5/stdlib"
	_ "github.com/johannesboyne/gofakes3"
	_ "github.com/lmittmann/tint"
	_ "github.com/pressly/goose/v3"
	_ "github.com/prometheus/client_golang/prometheus"
	_ "github.com/spf13/cobra"
	_ "go.opentelemetry.io/otel"
	_ "go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracehttp"
	_ "go.opentelemetry.io/otel/sdk/trace"
	_ "modernc.org/sqlite"
)
