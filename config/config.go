// Package config reads plyrtasks' configuration from environment variables
// (caarlos0/env v10). Every variable has a documented default; a bad or
// out-of-range value stops start-up with a message naming the variable and
// its allowed range.
package config

// Config is the whole configuration. Families of task types keep their
// settings in their own file and struct (atproto.go, storage.go,
// moderation.go).
type Config struct {
	// Core settings are filled in by config.go's owner.

	ATProto    ATProto
	Storage    Storage
	Moderation Moderation
}
