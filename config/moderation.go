package config

// Moderation holds its task family's settings (placeholder: owned by that family).
type Moderation struct{}
