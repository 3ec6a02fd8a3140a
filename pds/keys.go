package pds

import (
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/bluesky-social/indigo/atproto/atcrypto"
)

// jwtExpiry reads a JWT's exp claim without verifying it (the PDS verifies;
// this only decides when to refresh). Zero when token is not a JWT with exp:
// such tokens refresh when the PDS rejects them.
func jwtExpiry(token string) time.Time {
	parts := strings.Split(token, ".")
	if len(parts) != 3 {
		return time.Time{}
	}
	b, err := base64.RawURLEncoding.DecodeString(strings.TrimRight(parts[1], "="))
	if err != nil {
		return time.Time{}
	}
	var claims struct {
		Exp json.Number `json:"exp"`
	}
	if json.Unmarshal(b, &claims) != nil || claims.Exp == "" {
		return time.Time{}
	}
	sec, err := claims.Exp.Float64()
	if err != nil || sec <= 0 {
		return time.Time{}
	}
	return time.Unix(int64(sec), 0).UTC()
}

// parseDPoPKey reads a session's DPoP private key: multibase (indigo's
// export format) or a P-256 private JWK ({"kty":"EC","crv":"P-256","d":…}).
func parseDPoPKey(s string) (atcrypto.PrivateKey, error) {
	s = strings.TrimSpace(s)
	if s == "" {
		return nil, errors.New("missing")
	}
	if !strings.HasPrefix(s, "{") {
		return atcrypto.ParsePrivateMultibase(s)
	}
	var jwk struct {
		Kty string `json:"kty"`
		Crv string `json:"crv"`
		D   string `json:"d"`
	}
	if err := json.Unmarshal([]byte(s), &jwk); err != nil {
		return nil, fmt.Errorf("JWK: %w", err)
	}
	if jwk.Kty != "EC" || jwk.Crv != "P-256" || jwk.D == "" {
		return nil, fmt.Errorf("JWK: want an EC P-256 private key, got kty=%q crv=%q", jwk.Kty, jwk.Crv)
	}
	d, err := base64.RawURLEncoding.DecodeString(strings.TrimRight(jwk.D, "="))
	if err != nil {
		return nil, fmt.Errorf("JWK d: %w", err)
	}
	return atcrypto.ParsePrivateBytesP256(d)
}
