package config

import (
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// Storage configures object storage: where track audio is read from and
// where media exports are written (package storage).
//
// STORAGE_URL picks the backend:
//
//	file:///abs/path      local directory (the embedded default)
//	s3://bucket[/prefix]  an S3-compatible service (AWS S3, Cloudflare R2, MinIO)
//
// For s3:// the endpoint, region and credentials come from the S3_*
// variables, never from the URL (a URL ends up in logs; a secret must not).
// The default location depends on DATA_DIR, so it is resolved by
// ResolvedURL rather than by an envDefault.
type Storage struct {
	// STORAGE_URL: where track audio is read and exports are written:
	// file:///abs/path (a local directory) or s3://bucket[/prefix] (an
	// S3-compatible service such as Cloudflare R2, configured by the S3_*
	// variables; credentials never go in the URL).
	// Default: unset, which uses file://$DATA_DIR/storage.
	URL string `env:"STORAGE_URL"`

	// S3_ENDPOINT: the S3 service URL, e.g.
	// https://<account>.r2.cloudflarestorage.com.
	// Default: unset, which uses AWS S3 for S3_REGION.
	S3Endpoint string `env:"S3_ENDPOINT"`

	// S3_REGION: the region requests are signed for; Cloudflare R2 uses
	// auto. Default: auto.
	S3Region string `env:"S3_REGION" envDefault:"auto"`

	// S3_ACCESS_KEY_ID: the access key ID (set together with
	// S3_SECRET_ACCESS_KEY).
	// Default: unset, which uses the AWS SDK's default credential chain.
	S3AccessKeyID string `env:"S3_ACCESS_KEY_ID"`

	// S3_SECRET_ACCESS_KEY: the secret access key (never printed).
	// Default: unset.
	S3SecretAccessKey string `env:"S3_SECRET_ACCESS_KEY" secret:"true"`

	// S3_FORCE_PATH_STYLE: address buckets as endpoint/bucket/key instead of
	// bucket.endpoint/key; MinIO and most local S3 servers need true.
	// Default: false.
	S3ForcePathStyle bool `env:"S3_FORCE_PATH_STYLE" envDefault:"false"`

	// EXPORT_URL_EXPIRY: how long the presigned download link of a finished
	// export stays valid (S3; a local export is a file path). Allowed:
	// 1m..168h (the SigV4 limit). Default: 24h.
	ExportURLExpiry time.Duration `env:"EXPORT_URL_EXPIRY" envDefault:"24h"`

	// EXPORT_PART_SIZE: the part size of an export's multipart upload to
	// S3, as bytes or with a KiB/MiB/GiB suffix (binary; KB/MB/GB are decimal: 5MB is less than 5MiB). An export holds
	// two part buffers, so it uses about twice this in memory; S3 allows
	// 10,000 parts, so it also caps one export's size (about 78 GiB at
	// 8MiB, far above any artist's catalogue: raise it for larger ones).
	// 8MiB keeps a worker running an export under 64 MiB RSS (plyrtasks
	// bench export). Allowed: 5MiB..512MiB. Default: 8MiB.
	ExportPartSize ByteSize `env:"EXPORT_PART_SIZE" envDefault:"8MiB"`
}

// Storage bounds, checked by Validate.
const (
	MinExportPartSize  = 5 << 20   // S3's minimum for every part but the last
	MaxExportPartSize  = 512 << 20 // two buffers of this must fit a worker
	MinExportURLExpiry = time.Minute
	MaxExportURLExpiry = 7 * 24 * time.Hour // S3 SigV4 presign limit
)

// ResolvedURL returns STORAGE_URL, or file://{dataDir}/storage (absolute)
// when it is unset.
func (s Storage) ResolvedURL(dataDir string) string {
	if strings.TrimSpace(s.URL) != "" {
		return strings.TrimSpace(s.URL)
	}
	if dataDir == "" {
		dataDir = "./data"
	}
	dir := filepath.Join(dataDir, "storage")
	if abs, err := filepath.Abs(dir); err == nil {
		dir = abs
	}
	return (&url.URL{Scheme: "file", Path: filepath.ToSlash(dir)}).String()
}

// StorageLocation is a parsed STORAGE_URL.
type StorageLocation struct {
	// Scheme is "file" or "s3".
	Scheme string
	// Dir is the local directory (file).
	Dir string
	// Bucket and Prefix locate objects (s3). Prefix has no leading slash
	// and, when set, ends with "/".
	Bucket string
	Prefix string
}

// ParseStorageURL parses a STORAGE_URL value. Errors name the variable.
func ParseStorageURL(raw string) (StorageLocation, error) {
	bad := func(format string, a ...any) (StorageLocation, error) {
		return StorageLocation{}, fmt.Errorf("STORAGE_URL: "+format+" (want file:///abs/path or s3://bucket[/prefix])", a...)
	}
	u, err := url.Parse(raw)
	if err != nil {
		return bad("not a URL: %v", err)
	}
	if u.User != nil {
		return bad("must not carry credentials; set S3_ACCESS_KEY_ID and S3_SECRET_ACCESS_KEY")
	}
	if u.RawQuery != "" || u.Fragment != "" {
		return bad("query and fragment are not supported; use the S3_* variables")
	}
	switch u.Scheme {
	case "file":
		if u.Host != "" && u.Host != "localhost" {
			return bad("file URL host %q: use file:///abs/path (three slashes)", u.Host)
		}
		if u.Path == "" || !strings.HasPrefix(u.Path, "/") {
			return bad("file URL needs an absolute path")
		}
		return StorageLocation{Scheme: "file", Dir: filepath.Clean(filepath.FromSlash(u.Path))}, nil
	case "s3":
		if u.Host == "" {
			return bad("s3 URL needs a bucket name as its host")
		}
		if !validBucket(u.Host) {
			return bad("bucket %q is not a valid bucket name (3-63 of a-z 0-9 . -)", u.Host)
		}
		prefix := strings.Trim(u.Path, "/")
		if prefix != "" {
			for _, el := range strings.Split(prefix, "/") {
				if el == "" || el == "." || el == ".." {
					return bad("prefix %q has an empty, . or .. element", prefix)
				}
			}
			prefix += "/"
		}
		return StorageLocation{Scheme: "s3", Bucket: u.Host, Prefix: prefix}, nil
	case "":
		return bad("%q has no scheme", raw)
	default:
		return bad("unsupported scheme %q", u.Scheme)
	}
}

func validBucket(b string) bool {
	if len(b) < 3 || len(b) > 63 {
		return false
	}
	for _, r := range b {
		if !(r >= 'a' && r <= 'z' || r >= '0' && r <= '9' || r == '.' || r == '-') {
			return false
		}
	}
	return true
}

// Validate checks the storage settings; each error names its variable.
// dataDir resolves the default STORAGE_URL.
func (s Storage) Validate(dataDir string) error {
	var errs []error
	loc, err := ParseStorageURL(s.ResolvedURL(dataDir))
	if err != nil {
		errs = append(errs, err)
	}
	if s.ExportURLExpiry < MinExportURLExpiry || s.ExportURLExpiry > MaxExportURLExpiry {
		errs = append(errs, fmt.Errorf("EXPORT_URL_EXPIRY: %s is outside the allowed range %s..%s", s.ExportURLExpiry, MinExportURLExpiry, MaxExportURLExpiry))
	}
	if s.ExportPartSize < MinExportPartSize || s.ExportPartSize > MaxExportPartSize {
		errs = append(errs, fmt.Errorf("EXPORT_PART_SIZE: %s is outside the allowed range %s..%s", s.ExportPartSize, ByteSize(MinExportPartSize), ByteSize(MaxExportPartSize)))
	}
	if loc.Scheme == "s3" {
		if s.S3Endpoint != "" {
			if u, err := url.Parse(s.S3Endpoint); err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
				errs = append(errs, fmt.Errorf("S3_ENDPOINT: %q is not an http(s) URL", s.S3Endpoint))
			}
		}
		if strings.TrimSpace(s.S3Region) == "" {
			errs = append(errs, errors.New(`S3_REGION: must not be empty (R2 uses "auto")`))
		}
		if (s.S3AccessKeyID == "") != (s.S3SecretAccessKey == "") {
			errs = append(errs, errors.New("S3_ACCESS_KEY_ID and S3_SECRET_ACCESS_KEY: set both or neither (neither = the AWS default credential chain)"))
		}
	}
	return errors.Join(errs...)
}

// LogValue keeps the secret out of logs.
func (s Storage) LogValue() slog.Value {
	secret := ""
	if s.S3SecretAccessKey != "" {
		secret = "[redacted]"
	}
	return slog.GroupValue(
		slog.String("url", s.URL),
		slog.String("s3_endpoint", s.S3Endpoint),
		slog.String("s3_region", s.S3Region),
		slog.String("s3_access_key_id", s.S3AccessKeyID),
		slog.String("s3_secret_access_key", secret),
		slog.Bool("s3_force_path_style", s.S3ForcePathStyle),
		slog.Duration("export_url_expiry", s.ExportURLExpiry),
		slog.String("export_part_size", s.ExportPartSize.String()),
	)
}

// ByteSize is a size in bytes that parses "16MiB", "5MB", "1048576".
type ByteSize int64

var byteUnits = []struct {
	suffix string
	mult   int64
}{
	{"KiB", 1 << 10}, {"MiB", 1 << 20}, {"GiB", 1 << 30},
	{"KB", 1000}, {"MB", 1000 * 1000}, {"GB", 1000 * 1000 * 1000},
	{"B", 1},
}

// UnmarshalText parses a byte count with an optional unit suffix.
func (b *ByteSize) UnmarshalText(text []byte) error {
	s := strings.TrimSpace(string(text))
	mult := int64(1)
	for _, u := range byteUnits {
		if num, ok := strings.CutSuffix(s, u.suffix); ok {
			s, mult = strings.TrimSpace(num), u.mult
			break
		}
	}
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil || n < 0 {
		return fmt.Errorf("%q is not a size: want bytes or a number with KiB, MiB, GiB, KB, MB or GB", string(text))
	}
	if n > (1<<62)/mult {
		return fmt.Errorf("%q is too large", string(text))
	}
	*b = ByteSize(n * mult)
	return nil
}

// String formats b with the largest binary unit that divides it exactly.
func (b ByteSize) String() string {
	switch {
	case b != 0 && b%(1<<30) == 0:
		return fmt.Sprintf("%dGiB", b>>30)
	case b != 0 && b%(1<<20) == 0:
		return fmt.Sprintf("%dMiB", b>>20)
	case b != 0 && b%(1<<10) == 0:
		return fmt.Sprintf("%dKiB", b>>10)
	}
	return fmt.Sprintf("%dB", int64(b))
}
