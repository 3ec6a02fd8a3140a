package export_test

import (
	"context"
	"os"
	"strconv"
	"testing"

	"github.com/plyr-fm/plyrtasks/export/exportbench"
	"github.com/plyr-fm/plyrtasks/storage"
	"github.com/plyr-fm/plyrtasks/storage/storagetest"
)

// BenchmarkExport exports synthesized tracks (1 GiB by default; set
// PLYRTASKS_BENCH_EXPORT_MB) through the S3 client to a discarding
// loopback server and to local files, and a smaller export through gofakes3
// (which keeps everything in memory, so its RSS is the server's too). Each
// reports MB/s, the export's peak RSS and the ratio to a plain copy of the
// same bytes in the same run:
//
//	go test -run '^$' -bench Export -benchtime 1x ./export/
func BenchmarkExport(b *testing.B) {
	total := int64(1 << 30)
	if v, err := strconv.ParseInt(os.Getenv("PLYRTASKS_BENCH_EXPORT_MB"), 10, 64); err == nil && v > 0 {
		total = v << 20
	}
	for _, tc := range []struct {
		name  string
		bytes int64
		o     func(b *testing.B) exportbench.Options
	}{
		{"s3sink", total, func(*testing.B) exportbench.Options { return exportbench.Options{Dest: exportbench.DestSink} }},
		{"file", total, func(*testing.B) exportbench.Options { return exportbench.Options{Dest: exportbench.DestFile} }},
		{"gofakes3", min(total, 128<<20), func(b *testing.B) exportbench.Options {
			s := storagetest.NewFakeS3(b).Storage(b, storage.S3Options{})
			return exportbench.Options{Storage: s}
		}},
	} {
		b.Run(tc.name, func(b *testing.B) {
			var res exportbench.Result
			for range b.N {
				o := tc.o(b)
				o.TotalBytes = tc.bytes
				var err error
				if res, err = exportbench.Run(context.Background(), o); err != nil {
					b.Fatal(err)
				}
			}
			b.SetBytes(tc.bytes)
			b.ReportMetric(res.Export.MBps(), "MB/s")
			b.ReportMetric(res.Copy.MBps(), "copy-MB/s")
			b.ReportMetric(res.Ratio, "ratio")
			b.ReportMetric(float64(res.Export.PeakRSS)/(1<<20), "peak-RSS-MiB")
			b.ReportMetric(float64(res.Export.PeakAnon)/(1<<20), "peak-anon-MiB")
			b.Log("\n" + res.String())
		})
	}
}
