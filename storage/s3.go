package storage

import (
	"context"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	awsconfig "github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"
	"github.com/aws/smithy-go"
)

// S3 stores objects in a bucket of an S3-compatible service (AWS S3,
// Cloudflare R2, MinIO) through aws-sdk-go-v2.
//
// Two choices are deliberate:
//   - Request checksums and response validation are "when required": newer
//     SDKs otherwise send CRC checksum headers and trailers
//     (x-amz-checksum-*, x-amz-sdk-checksum-algorithm) that R2 rejects on
//     some operations.
//   - Uploads are multipart uploads driven here, with a fixed part size and
//     at most two part buffers per upload (one filling, one in flight), so
//     memory stays at about 2×PartSize however large the object — instead of
//     an upload manager that sizes buffers from an unknown total.
type S3 struct {
	client   *s3.Client
	presign  *s3.PresignClient
	bucket   string
	prefix   string
	partSize int64
	desc     string
}

// S3 part size bounds and default.
const (
	DefaultPartSize = 8 << 20 // config's EXPORT_PART_SIZE default
	MinPartSize     = 5 << 20 // S3's minimum for every part but the last
	MaxParts        = 10000   // S3's maximum part count
)

// S3Options configure NewS3.
type S3Options struct {
	// Bucket is required.
	Bucket string
	// Prefix is prepended to every key ("" = none; otherwise it should end
	// with "/").
	Prefix string
	// Endpoint is the service URL, e.g. https://<account>.r2.cloudflarestorage.com.
	// Default: AWS S3 for Region.
	Endpoint string
	// Region default "auto" (R2).
	Region string
	// AccessKeyID and SecretAccessKey are static credentials. Both empty:
	// the AWS SDK's default credential chain.
	AccessKeyID     string
	SecretAccessKey string
	// ForcePathStyle addresses buckets as endpoint/bucket/key. Default false.
	ForcePathStyle bool
	// PartSize is the multipart part size. Default DefaultPartSize; at
	// least MinPartSize.
	PartSize int64
	// HTTPClient overrides the SDK's HTTP client (tests record requests).
	HTTPClient *http.Client
}

// NewS3 returns an S3 storage. It does not contact the service.
func NewS3(ctx context.Context, o S3Options) (*S3, error) {
	if o.Bucket == "" {
		return nil, errors.New("storage: S3 bucket is required")
	}
	if o.Region == "" {
		o.Region = "auto"
	}
	if o.PartSize == 0 {
		o.PartSize = DefaultPartSize
	}
	if o.PartSize < MinPartSize {
		return nil, fmt.Errorf("storage: S3 part size %d is below the minimum %d (5 MiB)", o.PartSize, MinPartSize)
	}
	if (o.AccessKeyID == "") != (o.SecretAccessKey == "") {
		return nil, errors.New("storage: set both S3 access key ID and secret access key, or neither")
	}
	var cfg aws.Config
	if o.AccessKeyID != "" {
		cfg = aws.Config{
			Region:      o.Region,
			Credentials: aws.NewCredentialsCache(credentials.NewStaticCredentialsProvider(o.AccessKeyID, o.SecretAccessKey, "")),
		}
	} else {
		var err error
		if cfg, err = awsconfig.LoadDefaultConfig(ctx, awsconfig.WithRegion(o.Region)); err != nil {
			return nil, fmt.Errorf("storage: load AWS configuration: %w", err)
		}
	}
	if o.HTTPClient != nil {
		cfg.HTTPClient = o.HTTPClient
	}
	client := s3.NewFromConfig(cfg, func(so *s3.Options) {
		if o.Endpoint != "" {
			so.BaseEndpoint = aws.String(o.Endpoint)
		}
		so.UsePathStyle = o.ForcePathStyle
		so.RequestChecksumCalculation = aws.RequestChecksumCalculationWhenRequired
		so.ResponseChecksumValidation = aws.ResponseChecksumValidationWhenRequired
	})
	desc := "s3://" + o.Bucket + "/" + o.Prefix
	if o.Endpoint != "" {
		desc += " at " + o.Endpoint
	}
	return &S3{
		client:   client,
		presign:  s3.NewPresignClient(client),
		bucket:   o.Bucket,
		prefix:   o.Prefix,
		partSize: o.PartSize,
		desc:     desc,
	}, nil
}

func (s *S3) String() string { return s.desc }

// PartSize is the multipart part size uploads use.
func (s *S3) PartSize() int64 { return s.partSize }

// Client is the underlying SDK client (for operations this package does not
// wrap, such as creating a bucket in tests).
func (s *S3) Client() *s3.Client { return s.client }

// Bucket is the bucket objects live in.
func (s *S3) Bucket() string { return s.bucket }

func (s *S3) fullKey(key string) (string, error) {
	if err := ValidKey(key); err != nil {
		return "", err
	}
	return s.prefix + key, nil
}

func (s *S3) Stat(ctx context.Context, key string) (Object, error) {
	k, err := s.fullKey(key)
	if err != nil {
		return Object{}, err
	}
	out, err := s.client.HeadObject(ctx, &s3.HeadObjectInput{Bucket: &s.bucket, Key: &k})
	if err != nil {
		return Object{}, s.wrap("stat", key, err)
	}
	return Object{Key: key, Size: aws.ToInt64(out.ContentLength)}, nil
}

func (s *S3) Open(ctx context.Context, key string, offset int64) (io.ReadCloser, error) {
	k, err := s.fullKey(key)
	if err != nil {
		return nil, err
	}
	in := &s3.GetObjectInput{Bucket: &s.bucket, Key: &k}
	if offset > 0 {
		in.Range = aws.String(fmt.Sprintf("bytes=%d-", offset))
	}
	out, err := s.client.GetObject(ctx, in)
	if err != nil {
		return nil, s.wrap("open", key, err)
	}
	return out.Body, nil
}

func (s *S3) Create(ctx context.Context, key string, opts CreateOptions) (Upload, error) {
	k, err := s.fullKey(key)
	if err != nil {
		return nil, err
	}
	ct := opts.ContentType
	if ct == "" {
		ct = "application/octet-stream"
	}
	out, err := s.client.CreateMultipartUpload(ctx, &s3.CreateMultipartUploadInput{
		Bucket: &s.bucket, Key: &k, ContentType: &ct,
	})
	if err != nil {
		return nil, s.wrap("create upload", key, err)
	}
	return newS3Upload(ctx, s, key, k, aws.ToString(out.UploadId)), nil
}

func (s *S3) AbortUploads(ctx context.Context, prefix string) (int, error) {
	full := s.prefix + prefix
	in := &s3.ListMultipartUploadsInput{Bucket: &s.bucket, Prefix: &full}
	n := 0
	for {
		out, err := s.client.ListMultipartUploads(ctx, in)
		if err != nil {
			return n, s.wrap("list uploads", prefix, err)
		}
		for _, u := range out.Uploads {
			_, err := s.client.AbortMultipartUpload(ctx, &s3.AbortMultipartUploadInput{
				Bucket: &s.bucket, Key: u.Key, UploadId: u.UploadId,
			})
			var nsu *types.NoSuchUpload
			if err != nil && !errors.As(err, &nsu) {
				return n, s.wrap("abort upload", strings.TrimPrefix(aws.ToString(u.Key), s.prefix), err)
			}
			n++
		}
		if !aws.ToBool(out.IsTruncated) {
			return n, nil
		}
		in.KeyMarker, in.UploadIdMarker = out.NextKeyMarker, out.NextUploadIdMarker
	}
}

func (s *S3) DownloadURL(ctx context.Context, key string, opts URLOptions) (string, error) {
	k, err := s.fullKey(key)
	if err != nil {
		return "", err
	}
	if opts.Expiry <= 0 {
		opts.Expiry = DefaultURLExpiry
	}
	in := &s3.GetObjectInput{Bucket: &s.bucket, Key: &k}
	if opts.Filename != "" {
		cd := mime.FormatMediaType("attachment", map[string]string{"filename": opts.Filename})
		if cd != "" {
			in.ResponseContentDisposition = &cd
		}
	}
	req, err := s.presign.PresignGetObject(ctx, in, s3.WithPresignExpires(opts.Expiry))
	if err != nil {
		return "", s.wrap("presign", key, err)
	}
	return req.URL, nil
}

func (s *S3) Delete(ctx context.Context, key string) error {
	k, err := s.fullKey(key)
	if err != nil {
		return err
	}
	if _, err := s.client.DeleteObject(ctx, &s3.DeleteObjectInput{Bucket: &s.bucket, Key: &k}); err != nil {
		if isNotFound(err) {
			return nil
		}
		return s.wrap("delete", key, err)
	}
	return nil
}

// wrap names the operation and key, and marks missing objects ErrNotExist.
func (s *S3) wrap(op, key string, err error) error {
	if isNotFound(err) {
		return fmt.Errorf("storage: %s %s: %w (%w)", op, key, ErrNotExist, err)
	}
	return fmt.Errorf("storage: %s %s: %w", op, key, err)
}

// isNotFound: GetObject says NoSuchKey; HeadObject's 404 has no body, so
// the SDK can only say NotFound.
func isNotFound(err error) bool {
	var nsk *types.NoSuchKey
	var nf *types.NotFound
	if errors.As(err, &nsk) || errors.As(err, &nf) {
		return true
	}
	var ae smithy.APIError
	return errors.As(err, &ae) && (ae.ErrorCode() == "NoSuchKey" || ae.ErrorCode() == "NotFound")
}
