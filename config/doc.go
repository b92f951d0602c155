// Package config owns the root of Sluice's YAML file: it decodes the file
// into each package's own section (proxy, rewrite, cache, monitor), reports
// every unknown key and bad value with its full key path, applies SLUICE_*
// environment overrides, and runs each section's validation. It holds no
// runtime state: the binary keeps the current snapshot in an atomic pointer.
package config
