// Package config reads the daemon's YAML configuration (obdgw.yaml): state directory, gateway
// id, company, bays, broker, API and console settings and the emission limits.
//
// Parsing is strict: an unknown key, a duplicate key, a value of the wrong type and every value
// that fails validation is reported with its YAML path and line ("bays[1].obd"), all of them at
// once, so a technician fixes the file in one pass. Secrets never sit in the file itself: API
// tokens and the broker password are read from files that must not be readable by group or
// others (Load refuses them and says which chmod fixes it).
package config
