// Package config owns the hub's configuration: one struct with defaults, read once in cmd/ from a
// YAML file and environment variables (addresses and secrets), and checked by Validate, which names
// the bad field.
package config
