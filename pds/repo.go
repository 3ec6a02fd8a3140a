package pds

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/bluesky-social/indigo/api/agnostic"
	"github.com/bluesky-social/indigo/api/atproto"
	"github.com/bluesky-social/indigo/atproto/syntax"
	lexutil "github.com/bluesky-social/indigo/lex/util"
)

// Ref is a written record: its at:// URI and content CID (a strongRef).
type Ref struct {
	URI string
	CID string
}

// Record is a record read back from the PDS.
type Record struct {
	URI   string
	CID   string
	Value json.RawMessage
}

// Decode unmarshals the record's value into v.
func (r Record) Decode(v any) error {
	if err := json.Unmarshal(r.Value, v); err != nil {
		return fmt.Errorf("decode %s: %w", r.URI, err)
	}
	return nil
}

// RKey is the record key of the record's URI.
func (r Record) RKey() string {
	u, err := syntax.ParseATURI(r.URI)
	if err != nil {
		return ""
	}
	return u.RecordKey().String()
}

// Swap is putRecord's compare-and-swap condition. The zero Swap writes
// unconditionally; see IfMissing and IfCID.
type Swap struct {
	set bool
	cid string
}

// IfMissing writes only if no record exists at the key (else the write
// fails with InvalidSwap: see IsInvalidSwap).
func IfMissing() Swap { return Swap{set: true} }

// IfCID writes only if the record at the key is still at cid.
func IfCID(cid string) Swap { return Swap{set: true, cid: cid} }

// putRecordInput is com.atproto.repo.putRecord's input with swapRecord able
// to carry an explicit null ("must not exist"), which indigo's generated
// input types cannot express.
type putRecordInput struct {
	Repo       string          `json:"repo"`
	Collection string          `json:"collection"`
	Rkey       string          `json:"rkey"`
	Record     json.RawMessage `json:"record"`
	SwapRecord json.RawMessage `json:"swapRecord,omitempty"`
}

// PutRecord creates or replaces the record at collection/rkey in the
// session's repo (com.atproto.repo.putRecord). Writing the same content at
// the same key again is a no-op on the PDS, which is what makes retries safe.
// record marshals to a JSON object; its "$type" is set to collection when
// absent and must equal it when present.
func (s *Session) PutRecord(ctx context.Context, collection, rkey string, record any, swap Swap) (Ref, error) {
	body, err := EncodeRecord(collection, record)
	if err != nil {
		return Ref{}, err
	}
	in := putRecordInput{Repo: s.DID(), Collection: collection, Rkey: rkey, Record: body}
	if swap.set {
		if swap.cid == "" {
			in.SwapRecord = json.RawMessage("null")
		} else {
			b, _ := json.Marshal(swap.cid)
			in.SwapRecord = b
		}
	}
	var out agnostic.RepoPutRecord_Output
	if err := s.api.LexDo(ctx, lexutil.Procedure, "application/json", "com.atproto.repo.putRecord", nil, in, &out); err != nil {
		return Ref{}, fmt.Errorf("put %s/%s: %w", collection, rkey, err)
	}
	return Ref{URI: out.Uri, CID: out.Cid}, nil
}

// GetRecord reads collection/rkey from the session's repo. A missing record
// is an error matching ErrRecordNotFound.
func (s *Session) GetRecord(ctx context.Context, collection, rkey string) (Record, error) {
	out, err := agnostic.RepoGetRecord(ctx, s.api, "", collection, s.DID(), rkey)
	if err != nil {
		return Record{}, fmt.Errorf("get %s/%s: %w", collection, rkey, err)
	}
	r := Record{URI: out.Uri}
	if out.Cid != nil {
		r.CID = *out.Cid
	}
	if out.Value != nil {
		r.Value = *out.Value
	}
	return r, nil
}

// listPage is how many records one listRecords call asks for (the maximum).
const listPage = 100

// ListRecords returns the records of collection in the session's repo,
// newest record key first, at most limit (0 = all, following cursors).
func (s *Session) ListRecords(ctx context.Context, collection string, limit int) ([]Record, error) {
	var out []Record
	cursor := ""
	for {
		page := int64(listPage)
		if limit > 0 && limit-len(out) < listPage {
			page = int64(limit - len(out))
		}
		res, err := agnostic.RepoListRecords(ctx, s.api, collection, cursor, page, s.DID(), false)
		if err != nil {
			return nil, fmt.Errorf("list %s: %w", collection, err)
		}
		for _, r := range res.Records {
			rec := Record{URI: r.Uri, CID: r.Cid}
			if r.Value != nil {
				rec.Value = *r.Value
			}
			out = append(out, rec)
		}
		if res.Cursor == nil || *res.Cursor == "" || len(res.Records) == 0 || (limit > 0 && len(out) >= limit) {
			return out, nil
		}
		cursor = *res.Cursor
	}
}

// DeleteRecord deletes collection/rkey from the session's repo. Deleting a
// record that does not exist succeeds (the PDS answers 200).
func (s *Session) DeleteRecord(ctx context.Context, collection, rkey string) error {
	_, err := atproto.RepoDeleteRecord(ctx, s.api, &atproto.RepoDeleteRecord_Input{Repo: s.DID(), Collection: collection, Rkey: rkey})
	if err != nil && !errors.Is(err, ErrRecordNotFound) {
		return fmt.Errorf("delete %s/%s: %w", collection, rkey, err)
	}
	return nil
}

// EncodeRecord marshals record to the JSON object written to collection,
// with "$type" equal to collection (set when absent; a different value is
// an error, since the PDS refuses such a record).
func EncodeRecord(collection string, record any) (json.RawMessage, error) {
	raw, err := json.Marshal(record)
	if err != nil {
		return nil, fmt.Errorf("encode %s record: %w", collection, err)
	}
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	var m map[string]any
	if err := dec.Decode(&m); err != nil || m == nil {
		return nil, fmt.Errorf("encode %s record: not a JSON object", collection)
	}
	switch t := m["$type"]; t {
	case nil, "":
		m["$type"] = collection
	case collection:
	default:
		return nil, fmt.Errorf("encode %s record: $type is %v, must equal the collection", collection, t)
	}
	return json.Marshal(m)
}

// ParseRecordURI splits an at:// record URI into its DID, collection and
// record key.
func ParseRecordURI(uri string) (did, collection, rkey string, err error) {
	u, err := syntax.ParseATURI(uri)
	if err != nil {
		return "", "", "", fmt.Errorf("record URI %q: %w", uri, err)
	}
	if u.Collection() == "" || u.RecordKey() == "" {
		return "", "", "", fmt.Errorf("record URI %q: want at://did/collection/rkey", uri)
	}
	return u.Authority().String(), u.Collection().String(), u.RecordKey().String(), nil
}
