package store

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
)

// sealVersion prefixes every blob so a future key or format can coexist.
const sealVersion byte = 1

// sealer encrypts session tokens with AES-256-GCM. The session ID is the
// associated data, so a blob copied to another row does not open.
type sealer struct {
	aead      cipher.AEAD
	digestKey []byte // HMAC key for refresh-token digests, derived from the key
}

func newSealer(key []byte) (*sealer, error) {
	block, err := aes.NewCipher(key)
	if err != nil {
		return nil, fmt.Errorf("SESSION_ENCRYPTION_KEY: %w", err)
	}
	aead, err := cipher.NewGCM(block)
	if err != nil {
		return nil, fmt.Errorf("SESSION_ENCRYPTION_KEY: %w", err)
	}
	m := hmac.New(sha256.New, key)
	m.Write([]byte("plyrtasks refresh-token digest v1"))
	return &sealer{aead: aead, digestKey: m.Sum(nil)}, nil
}

// seal returns version || nonce || ciphertext of the tokens' JSON.
func (s *sealer) seal(sessionID string, t SessionTokens) ([]byte, error) {
	plain, err := json.Marshal(t)
	if err != nil {
		return nil, err
	}
	out := make([]byte, 1+s.aead.NonceSize(), 1+s.aead.NonceSize()+len(plain)+s.aead.Overhead())
	out[0] = sealVersion
	if _, err := rand.Read(out[1:]); err != nil {
		return nil, err
	}
	return s.aead.Seal(out, out[1:], plain, []byte(sessionID)), nil
}

func (s *sealer) open(sessionID string, blob []byte) (SessionTokens, error) {
	var t SessionTokens
	ns := s.aead.NonceSize()
	if len(blob) < 1+ns || blob[0] != sealVersion {
		return t, errors.New("token data is malformed")
	}
	plain, err := s.aead.Open(nil, blob[1:1+ns], blob[1+ns:], []byte(sessionID))
	if err != nil {
		return t, errors.New("token data does not decrypt: wrong SESSION_ENCRYPTION_KEY or tampered row")
	}
	if err := json.Unmarshal(plain, &t); err != nil {
		return t, fmt.Errorf("token data: %w", err)
	}
	return t, nil
}

// digest is a keyed hash of a refresh token, stored in the clear so
// UpdateSessionTokens can compare-and-swap in one statement without
// revealing the token.
func (s *sealer) digest(sessionID, refresh string) string {
	m := hmac.New(sha256.New, s.digestKey)
	m.Write([]byte(sessionID))
	m.Write([]byte{0})
	m.Write([]byte(refresh))
	return hex.EncodeToString(m.Sum(nil))
}
