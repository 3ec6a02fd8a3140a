package config_test

import (
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/plyr-fm/plyrtasks/config"
)

func TestStorageDefaults(t *testing.T) {
	dataDir := t.TempDir()
	cfg, err := config.LoadEnv(map[string]string{"DATA_DIR": dataDir})
	if err != nil {
		t.Fatal(err)
	}
	s := cfg.Storage
	if s.URL != "" || s.S3Region != "auto" || s.ExportURLExpiry != 24*time.Hour || s.ExportPartSize != 8<<20 || s.S3ForcePathStyle {
		t.Fatalf("defaults: %+v", s)
	}
	if got, want := s.ResolvedURL(cfg.DataDir), "file://"+filepath.ToSlash(filepath.Join(dataDir, "storage")); got != want {
		t.Fatalf("ResolvedURL = %q, want %q", got, want)
	}
}

func TestStorageEnv(t *testing.T) {
	for _, tc := range []struct {
		name    string
		env     map[string]string
		check   func(config.Storage) bool
		wantErr string // substring naming the variable
	}{
		{"r2", map[string]string{
			"STORAGE_URL": "s3://plyr-audio/exports", "S3_ENDPOINT": "https://acct.r2.cloudflarestorage.com",
			"S3_ACCESS_KEY_ID": "id", "S3_SECRET_ACCESS_KEY": "secret", "EXPORT_PART_SIZE": "32MiB", "EXPORT_URL_EXPIRY": "2h",
		}, func(s config.Storage) bool { return s.ExportPartSize == 32<<20 && s.ExportURLExpiry == 2*time.Hour }, ""},
		{"part size in bytes", map[string]string{"EXPORT_PART_SIZE": "5242880"}, func(s config.Storage) bool { return s.ExportPartSize == 5<<20 }, ""},
		{"part size in MB", map[string]string{"EXPORT_PART_SIZE": "8MB"}, func(s config.Storage) bool { return s.ExportPartSize == 8_000_000 }, ""},
		{"path style", map[string]string{"STORAGE_URL": "s3://b-1", "S3_FORCE_PATH_STYLE": "true"}, func(s config.Storage) bool { return s.S3ForcePathStyle }, ""},
		{"part size too small", map[string]string{"EXPORT_PART_SIZE": "4MiB"}, nil, "EXPORT_PART_SIZE"},
		{"part size not a size", map[string]string{"EXPORT_PART_SIZE": "big"}, nil, "EXPORT_PART_SIZE"},
		{"expiry too long", map[string]string{"EXPORT_URL_EXPIRY": "200h"}, nil, "EXPORT_URL_EXPIRY"},
		{"relative file URL", map[string]string{"STORAGE_URL": "file://data/storage"}, nil, "STORAGE_URL"},
		{"no scheme", map[string]string{"STORAGE_URL": "/srv/storage"}, nil, "STORAGE_URL"},
		{"credentials in URL", map[string]string{"STORAGE_URL": "s3://key:secret@bucket"}, nil, "STORAGE_URL"},
		{"bad bucket", map[string]string{"STORAGE_URL": "s3://Bad_Bucket"}, nil, "STORAGE_URL"},
		{"query options", map[string]string{"STORAGE_URL": "s3://bucket?endpoint=x"}, nil, "STORAGE_URL"},
		{"endpoint not a URL", map[string]string{"STORAGE_URL": "s3://bucket", "S3_ENDPOINT": "r2.example"}, nil, "S3_ENDPOINT"},
		{"half credentials", map[string]string{"STORAGE_URL": "s3://bucket", "S3_SECRET_ACCESS_KEY": "s"}, nil, "S3_ACCESS_KEY_ID"},
		{"empty region", map[string]string{"STORAGE_URL": "s3://bucket", "S3_REGION": " "}, nil, "S3_REGION"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			env := map[string]string{"DATA_DIR": t.TempDir()}
			for k, v := range tc.env {
				env[k] = v
			}
			cfg, err := config.LoadEnv(env)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("LoadEnv = %v, want an error naming %s", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !tc.check(cfg.Storage) {
				t.Fatalf("parsed %+v", cfg.Storage)
			}
		})
	}
}

func TestParseStorageURL(t *testing.T) {
	for _, tc := range []struct {
		url  string
		want config.StorageLocation
	}{
		{"file:///srv/plyr/storage", config.StorageLocation{Scheme: "file", Dir: "/srv/plyr/storage"}},
		{"file://localhost/srv/x/", config.StorageLocation{Scheme: "file", Dir: "/srv/x"}},
		{"s3://plyr-audio", config.StorageLocation{Scheme: "s3", Bucket: "plyr-audio"}},
		{"s3://plyr-audio/a/b/", config.StorageLocation{Scheme: "s3", Bucket: "plyr-audio", Prefix: "a/b/"}},
	} {
		got, err := config.ParseStorageURL(tc.url)
		if err != nil || got != tc.want {
			t.Errorf("ParseStorageURL(%q) = %+v, %v; want %+v", tc.url, got, err, tc.want)
		}
	}
	if _, err := config.ParseStorageURL("s3://b/../x"); err == nil {
		t.Error("s3 prefix with .. accepted")
	}
}

func TestByteSizeString(t *testing.T) {
	for _, tc := range []struct {
		b    config.ByteSize
		want string
	}{{16 << 20, "16MiB"}, {5 << 30, "5GiB"}, {3 << 10, "3KiB"}, {1000, "1000B"}, {0, "0B"}} {
		if got := tc.b.String(); got != tc.want {
			t.Errorf("%d.String() = %q, want %q", int64(tc.b), got, tc.want)
		}
	}
}

func TestStorageLogValueRedactsSecret(t *testing.T) {
	s := config.Storage{S3AccessKeyID: "AKIDEXAMPLE", S3SecretAccessKey: "wJalrXUtnFEMI/K7MDENG"}
	if v := s.LogValue().String(); strings.Contains(v, "wJalrXUtnFEMI") || !strings.Contains(v, "[redacted]") {
		t.Fatalf("LogValue = %s", v)
	}
}
