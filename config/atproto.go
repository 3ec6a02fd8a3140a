package config

// ATProto holds its task family's settings (placeholder: owned by that family).
type ATProto struct{}
