package config

// Storage holds its task family's settings (placeholder: owned by that family).
type Storage struct{}
