package control

import "encoding/json"

// Finished reports whether state is final: nothing more will happen to the
// task on its own.
func Finished(state string) bool {
	switch state {
	case "completed", "archived", "failed", "deleted":
		return true
	}
	return false
}

// Percent returns the progress percentage (0–100) in t, if any: the
// "percent" member of Progress, or Progress itself when it is a number.
func (t *Task) Percent() (float64, bool) {
	if len(t.Progress) == 0 {
		return 0, false
	}
	var p struct {
		Percent *float64 `json:"percent"`
	}
	if err := json.Unmarshal(t.Progress, &p); err == nil && p.Percent != nil {
		return *p.Percent, true
	}
	var n float64
	if err := json.Unmarshal(t.Progress, &n); err == nil {
		return n, true
	}
	return 0, false
}

// progressOf picks the progress out of a result: its "progress" member, or
// the whole result when it carries a "percent" (the export's shape).
func progressOf(result json.RawMessage) json.RawMessage {
	var obj map[string]json.RawMessage
	if json.Unmarshal(result, &obj) != nil {
		return nil
	}
	if p, ok := obj["progress"]; ok && string(p) != "null" {
		return p
	}
	if _, ok := obj["percent"]; ok {
		return result
	}
	return nil
}
