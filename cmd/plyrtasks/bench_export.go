package main

import (
	"fmt"

	"github.com/spf13/cobra"

	"github.com/plyr-fm/plyrtasks/config"
	"github.com/plyr-fm/plyrtasks/export/exportbench"
)

// newBenchExportCmd is `plyrtasks bench export` (returned as the `bench`
// command holding it).
func newBenchExportCmd() *cobra.Command {
	bench := &cobra.Command{
		Use:   "bench",
		Short: "Measure plyrtasks' heavy paths on this machine",
	}
	var (
		tracks   int
		size     = config.ByteSize(1 << 30)
		partSize config.ByteSize
		dest     string
		dir      string
		rounds   int
	)
	cmd := &cobra.Command{
		Use:   "export",
		Short: "Benchmark a media export against a plain copy of the same bytes",
		Long: `export measures a media export of synthesized tracks (generated on the fly
from a deterministic stream: nothing is read from disk) against a plain
io.Copy of the same bytes to the same destination, in the same run, and
prints throughput in MB/s, peak resident memory (VmHWM, reset per phase)
and the ratio of the two. Goals: peak RSS <= 64 MiB whatever the size,
throughput >= 0.8x the plain copy.

Destinations:
  s3sink  the real S3 client (multipart upload, EXPORT_PART_SIZE parts)
          over loopback to an in-process server that discards the bytes
  file    local files under --dir (needs the space for one copy)

It uses its own temporary SQLite store, never the configured one.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if partSize == 0 {
				cfg, _, err := loadConfig(cmd)
				if err != nil {
					return err
				}
				partSize = cfg.Storage.ExportPartSize
			}
			if partSize < config.MinExportPartSize {
				return fmt.Errorf("--part-size %s is below the S3 minimum %s", partSize, config.ByteSize(config.MinExportPartSize))
			}
			res, err := exportbench.Run(cmd.Context(), exportbench.Options{
				Tracks: tracks, TotalBytes: int64(size), Dest: dest, Dir: dir,
				PartSize: int64(partSize), Rounds: rounds,
			})
			if err != nil {
				return err
			}
			fmt.Fprintln(cmd.OutOrStdout(), res)
			return nil
		},
	}
	f := cmd.Flags()
	f.IntVar(&tracks, "tracks", 40, "number of tracks")
	f.Var(byteSizeFlag{&size}, "size", "total audio size (e.g. 1GiB, 4GiB, 500MB)")
	f.Var(byteSizeFlag{&partSize}, "part-size", "S3 part size (default EXPORT_PART_SIZE)")
	f.StringVar(&dest, "dest", exportbench.DestSink, "destination: s3sink or file")
	f.StringVar(&dir, "dir", "", "working directory for the store and file objects (default: a temporary directory)")
	f.IntVar(&rounds, "rounds", 2, "rounds of (copy, export), alternating order; the best of each is kept")
	bench.AddCommand(cmd)
	addBenchCommands(bench)
	return bench
}

// byteSizeFlag is a pflag.Value over config.ByteSize.
type byteSizeFlag struct{ v *config.ByteSize }

func (f byteSizeFlag) String() string {
	if f.v == nil || *f.v == 0 {
		return ""
	}
	return f.v.String()
}
func (f byteSizeFlag) Set(s string) error { return f.v.UnmarshalText([]byte(s)) }
func (f byteSizeFlag) Type() string       { return "size" }
